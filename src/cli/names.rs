//! Reverse lookups for `list`/`save` without `-n`, the way ipvsadm's `gethostbyaddr` and
//! `getservbyport` see the system: the `hosts:` line of /etc/nsswitch.conf decides the
//! order of `files` (/etc/hosts) and `dns` (a PTR query to the servers of
//! /etc/resolv.conf, honouring its `timeout:` and `attempts:`); ports come from
//! /etc/services. Other NSS modules (`myhostname`, `mdns`, `resolve`, LDAP…) are not
//! consulted, so a name only they know prints as a number here.
//!
//! The parsers are pure and tested on text; [`SystemNames`] reads the files once.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::ipvs::Protocol;
use crate::ipvs::listing::Names;

/// The first name of the first `/etc/hosts` line for each address (glibc's `h_name`).
pub fn parse_hosts(text: &str) -> Vec<(IpAddr, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let addr = fields.next()?.parse().ok()?;
            Some((addr, fields.next()?.to_string()))
        })
        .collect()
}

/// `(port, protocol, official name)` from /etc/services, in file order.
pub fn parse_services(text: &str) -> Vec<(u16, String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            let (port, proto) = fields.next()?.split_once('/')?;
            Some((port.parse().ok()?, proto.to_string(), name.to_string()))
        })
        .collect()
}

/// The sources of the `hosts:` database we can emulate, in order. Without the file, glibc
/// uses `dns [!UNAVAIL=return] files`.
pub fn parse_nsswitch_hosts(text: Option<&str>) -> Vec<&'static str> {
    let Some(text) = text else {
        return vec!["dns", "files"];
    };
    let line = text.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or("").trim();
        l.strip_prefix("hosts:")
    });
    match line {
        Some(sources) => sources
            .split_whitespace()
            .filter_map(|s| match s {
                "files" => Some("files"),
                "dns" => Some("dns"),
                _ => None,
            })
            .collect(),
        None => vec!["dns", "files"],
    }
}

/// Name servers and retry policy from /etc/resolv.conf (glibc defaults: 5 s, 2 attempts,
/// at most three servers, 127.0.0.1 when none is listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub servers: Vec<IpAddr>,
    pub timeout: Duration,
    pub attempts: u32,
}

pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf {
        servers: Vec::new(),
        timeout: Duration::from_secs(5),
        attempts: 2,
    };
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => {
                if let Some(addr) = fields.next().and_then(|a| a.parse().ok())
                    && conf.servers.len() < 3
                {
                    conf.servers.push(addr);
                }
            }
            Some("options") => {
                for option in fields {
                    if let Some(n) = option
                        .strip_prefix("timeout:")
                        .and_then(|n| n.parse::<u64>().ok())
                    {
                        conf.timeout = Duration::from_secs(n.clamp(1, 30));
                    }
                    if let Some(n) = option
                        .strip_prefix("attempts:")
                        .and_then(|n| n.parse::<u32>().ok())
                    {
                        conf.attempts = u32::clamp(n, 1, 5);
                    }
                }
            }
            _ => {}
        }
    }
    if conf.servers.is_empty() {
        conf.servers.push(IpAddr::from([127, 0, 0, 1]));
    }
    conf
}

/// A PTR query for `addr`, and the first PTR name in `reply` to it.
fn ptr_query(addr: &IpAddr) -> Option<(u16, Vec<u8>)> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from(*addr), RecordType::PTR));
    let id = msg.metadata.id;
    msg.to_vec().ok().map(|bytes| (id, bytes))
}

fn ptr_answer(id: u16, reply: &[u8]) -> Option<String> {
    let msg = Message::from_vec(reply).ok()?;
    if msg.metadata.id != id {
        return None;
    }
    msg.answers.iter().find_map(|r| match &r.data {
        RData::PTR(ptr) => {
            let name = ptr.0.to_utf8();
            Some(name.strip_suffix('.').unwrap_or(&name).to_string())
        }
        _ => None,
    })
}

fn dns_ptr(conf: &ResolvConf, addr: &IpAddr) -> Option<String> {
    let (id, query) = ptr_query(addr)?;
    for _ in 0..conf.attempts {
        for server in &conf.servers {
            let bind: SocketAddr = match server {
                IpAddr::V4(_) => "0.0.0.0:0".parse().ok()?,
                IpAddr::V6(_) => "[::]:0".parse().ok()?,
            };
            let Ok(socket) = UdpSocket::bind(bind) else {
                continue;
            };
            if socket.set_read_timeout(Some(conf.timeout)).is_err()
                || socket.send_to(&query, (*server, 53)).is_err()
            {
                continue;
            }
            let mut buf = [0u8; 4096];
            // A reply from anywhere but the server, or for another id, is not ours.
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                if from.ip() == *server {
                    return ptr_answer(id, &buf[..n]);
                }
            }
        }
    }
    None
}

/// Name resolution from the system's files and DNS, with a cache per address.
#[derive(Debug, Default)]
pub struct SystemNames {
    hosts: Vec<(IpAddr, String)>,
    services: Vec<(u16, String, String)>,
    sources: Vec<&'static str>,
    resolv: Option<ResolvConf>,
    cache: HashMap<IpAddr, Option<String>>,
}

impl SystemNames {
    pub fn load() -> SystemNames {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let sources = parse_nsswitch_hosts(read("/etc/nsswitch.conf").as_deref());
        SystemNames {
            hosts: parse_hosts(&read("/etc/hosts").unwrap_or_default()),
            services: parse_services(&read("/etc/services").unwrap_or_default()),
            resolv: sources
                .contains(&"dns")
                .then(|| parse_resolv_conf(&read("/etc/resolv.conf").unwrap_or_default())),
            sources,
            cache: HashMap::new(),
        }
    }

    fn lookup(&self, addr: &IpAddr) -> Option<String> {
        for source in &self.sources {
            let found = match *source {
                "files" => self
                    .hosts
                    .iter()
                    .find(|(a, _)| a == addr)
                    .map(|(_, n)| n.clone()),
                _ => self.resolv.as_ref().and_then(|r| dns_ptr(r, addr)),
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

impl Names for SystemNames {
    fn host(&mut self, addr: &IpAddr) -> Option<String> {
        if let Some(hit) = self.cache.get(addr) {
            return hit.clone();
        }
        let found = self.lookup(addr);
        self.cache.insert(*addr, found.clone());
        found
    }

    fn service(&mut self, port: u16, protocol: Protocol) -> Option<String> {
        let proto = protocol.name()?.to_ascii_lowercase();
        self.services
            .iter()
            .find(|(p, pr, _)| *p == port && *pr == proto)
            .map(|(_, _, name)| name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_take_the_first_name_of_the_first_line() {
        let hosts = parse_hosts(
            "127.0.0.1\tlocalhost\n# comment\n10.0.0.1 a.example a # alias\n10.0.0.1 b\n::1 ip6-localhost\nbogus line\n",
        );
        let mut names = SystemNames {
            hosts,
            sources: vec!["files"],
            ..SystemNames::default()
        };
        assert_eq!(
            names.host(&"10.0.0.1".parse().unwrap()).as_deref(),
            Some("a.example")
        );
        assert_eq!(
            names.host(&"::1".parse().unwrap()).as_deref(),
            Some("ip6-localhost")
        );
        assert_eq!(names.host(&"10.0.0.2".parse().unwrap()), None);
    }

    #[test]
    fn services_match_port_and_protocol() {
        let mut names = SystemNames {
            services: parse_services(
                "http\t\t80/tcp\t\twww\t# WorldWideWeb\ndomain 53/tcp\ndomain 53/udp\nmdns 5353/udp\n",
            ),
            ..SystemNames::default()
        };
        assert_eq!(names.service(80, Protocol::Tcp).as_deref(), Some("http"));
        assert_eq!(names.service(80, Protocol::Udp), None);
        assert_eq!(names.service(5353, Protocol::Udp).as_deref(), Some("mdns"));
        assert_eq!(names.service(53, Protocol::Other(0)), None);
    }

    #[test]
    fn nsswitch_and_resolv_conf() {
        assert_eq!(parse_nsswitch_hosts(None), ["dns", "files"]);
        let conf =
            "passwd: files\nhosts:          files mdns4_minimal [NOTFOUND=return] dns myhostname\n";
        assert_eq!(parse_nsswitch_hosts(Some(conf)), ["files", "dns"]);
        let r = parse_resolv_conf(
            "nameserver 192.0.2.1\nnameserver 2001:db8::53\noptions timeout:1 attempts:3 rotate\n",
        );
        assert_eq!(r.servers.len(), 2);
        assert_eq!((r.timeout, r.attempts), (Duration::from_secs(1), 3));
        assert_eq!(
            parse_resolv_conf("").servers,
            [IpAddr::from([127, 0, 0, 1])]
        );
    }

    #[test]
    fn ptr_queries_and_answers() {
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        let (id, query) = ptr_query(&addr).unwrap();
        let parsed = Message::from_vec(&query).unwrap();
        assert_eq!(
            parsed.queries[0].name().to_utf8(),
            "7.2.0.192.in-addr.arpa."
        );
        let mut reply = Message::response(id, hickory_proto::op::OpCode::Query);
        reply.add_query(parsed.queries[0].clone());
        reply.answers.push(hickory_proto::rr::Record::from_rdata(
            parsed.queries[0].name().clone(),
            60,
            RData::PTR(hickory_proto::rr::rdata::PTR(
                Name::from_ascii("host.example.").unwrap(),
            )),
        ));
        let bytes = reply.to_vec().unwrap();
        assert_eq!(ptr_answer(id, &bytes).as_deref(), Some("host.example"));
        assert_eq!(ptr_answer(id.wrapping_add(1), &bytes), None);
    }
}
