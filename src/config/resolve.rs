//! What reading a configuration asks of the machine: host names (the system resolver, like the
//! Perl `getaddrinfo`), service names (`/etc/services`, like `getservbyname`), the host name
//! used in default logins, and whether directories exist.
//!
//! Behind a trait so tests, the fuzzer and benchmarks never touch DNS or the file system.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::OnceLock;

use super::model::{Family, Protocol};

/// The machine as the configuration reader sees it.
pub trait Host {
    /// The first address of `name` in `family` (never called for address literals).
    fn lookup_host(&self, name: &str, family: Family) -> Option<IpAddr>;
    /// The port of service `name` for `protocol`, or for any protocol when `None`
    /// (never called for numbers).
    fn lookup_service(&self, name: &str, protocol: Option<Protocol>) -> Option<u16>;
    /// `$HOSTNAME`, else the node name: used in the ftp/sip default logins.
    fn hostname(&self) -> String;
    /// Whether `path` is an existing directory.
    fn is_dir(&self, path: &Path) -> bool;
}

/// The real machine: system resolver, `/etc/services`, `uname`.
#[derive(Debug, Default)]
pub struct SystemHost {
    services: OnceLock<Services>,
}

impl SystemHost {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Host for SystemHost {
    fn lookup_host(&self, name: &str, family: Family) -> Option<IpAddr> {
        // getaddrinfo through std; the first address of the wanted family, as Perl's
        // `getaddrinfo($name, 0, $af)` returns first.
        let addrs = (name, 0u16).to_socket_addrs().ok()?;
        addrs.map(|a| a.ip()).find(|ip| {
            matches!(
                (family, ip),
                (Family::Inet, IpAddr::V4(_)) | (Family::Inet6, IpAddr::V6(_))
            )
        })
    }

    fn lookup_service(&self, name: &str, protocol: Option<Protocol>) -> Option<u16> {
        self.services
            .get_or_init(|| {
                std::fs::read_to_string("/etc/services")
                    .map(|text| Services::parse(&text))
                    .unwrap_or_default()
            })
            .lookup(name, protocol)
    }

    fn hostname(&self) -> String {
        if let Ok(h) = std::env::var("HOSTNAME")
            && !h.is_empty()
        {
            return h;
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_owned())
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}

/// A parsed `/etc/services`: `name port/proto [aliases…] [# comment]`.
#[derive(Debug, Default, Clone)]
pub struct Services {
    /// (name or alias, protocol) → port; the first entry in the file wins, as in glibc.
    by_proto: HashMap<(String, String), u16>,
    /// name or alias → port of its first entry in any protocol.
    any: HashMap<String, u16>,
}

impl Services {
    pub fn parse(text: &str) -> Self {
        let mut s = Services::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                s.by_proto
                    .entry((n.to_owned(), proto.to_owned()))
                    .or_insert(port);
                s.any.entry(n.to_owned()).or_insert(port);
            }
        }
        s
    }

    pub fn lookup(&self, name: &str, protocol: Option<Protocol>) -> Option<u16> {
        match protocol {
            Some(p) => self
                .by_proto
                .get(&(name.to_owned(), p.as_str().to_owned()))
                .copied(),
            None => self.any.get(name).copied(),
        }
    }
}

/// A machine with fixed answers: for tests, the fuzzer and benchmarks.
#[derive(Debug, Clone)]
pub struct FakeHost {
    pub hosts: HashMap<String, Vec<IpAddr>>,
    pub services: Services,
    pub hostname: String,
    pub dirs: Vec<std::path::PathBuf>,
}

impl Default for FakeHost {
    /// `localhost`, a few names under `example.com`, the usual services, host name
    /// `director.example.com`, and `/tmp`, `/var/log` as the existing directories.
    fn default() -> Self {
        let mut hosts = HashMap::new();
        let v = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        hosts.insert("localhost".into(), vec![v("127.0.0.1"), v("::1")]);
        hosts.insert(
            "www.example.com".into(),
            vec![v("192.0.2.80"), v("2001:db8::80")],
        );
        hosts.insert("web1.example.com".into(), vec![v("192.0.2.11")]);
        hosts.insert("web2.example.com".into(), vec![v("192.0.2.12")]);
        hosts.insert("v6only.example.com".into(), vec![v("2001:db8::6")]);
        FakeHost {
            hosts,
            services: Services::parse(FAKE_SERVICES),
            hostname: "director.example.com".into(),
            dirs: vec!["/tmp".into(), "/var/log".into(), "/var/lib".into()],
        }
    }
}

const FAKE_SERVICES: &str = "\
ftp 21/tcp
ssh 22/tcp
smtp 25/tcp mail
domain 53/tcp
domain 53/udp
http 80/tcp www
pop3 110/tcp pop-3
nntp 119/tcp readnews untp
imap2 143/tcp imap
ldap 389/tcp
ldap 389/udp
https 443/tcp
https 443/udp
submission 587/tcp
ldaps 636/tcp
imaps 993/tcp
pop3s 995/tcp
mysql 3306/tcp
sip 5060/tcp
sip 5060/udp
postgresql 5432/tcp
";

impl Host for FakeHost {
    fn lookup_host(&self, name: &str, family: Family) -> Option<IpAddr> {
        self.hosts.get(name)?.iter().copied().find(|ip| {
            matches!(
                (family, ip),
                (Family::Inet, IpAddr::V4(_)) | (Family::Inet6, IpAddr::V6(_))
            )
        })
    }

    fn lookup_service(&self, name: &str, protocol: Option<Protocol>) -> Option<u16> {
        self.services.lookup(name, protocol)
    }

    fn hostname(&self) -> String {
        self.hostname.clone()
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.dirs.iter().any(|d| d == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_first_entry_wins_and_aliases_resolve() {
        let s = Services::parse("http 80/tcp www # web\nhttp 8080/tcp\nfoo 7/udp\n");
        assert_eq!(s.lookup("http", Some(Protocol::Tcp)), Some(80));
        assert_eq!(s.lookup("www", Some(Protocol::Tcp)), Some(80));
        assert_eq!(s.lookup("http", Some(Protocol::Udp)), None);
        assert_eq!(s.lookup("foo", None), Some(7));
        assert_eq!(s.lookup("foo", Some(Protocol::Tcp)), None);
    }

    #[test]
    fn system_host_resolves_localhost_from_etc_hosts() {
        let h = SystemHost::new();
        assert_eq!(
            h.lookup_host("localhost", Family::Inet),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
    }
}
