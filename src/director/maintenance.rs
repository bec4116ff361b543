//! `maintenancedir`: a file named after a real server forces it down (Perl
//! `_check_real_for_maintenance`).
//!
//! The names tried, in the Perl order: `<ip>:<port>`, `<ip>`, `<fqdn>:<port>`, `<fqdn>`,
//! `<short>:<port>`, `<short>`, where IPv6 addresses are written in brackets, `<fqdn>` is
//! the reverse lookup of the address, and `<short>` its first label when the name matches
//! `^[a-z][a-z0-9-]+\.`.
//!
//! Perl looks the name up (a blocking call) before every check. Here the names are looked
//! up in the background through the system resolver (`getent hosts`, so `/etc/hosts` and
//! DNS answer as they do for Perl's `gethostbyaddr`), each lookup with a deadline, and
//! refreshed every few minutes; a check consults the cache and never waits. Until a name
//! is known, only the address forms are tried.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::config::Real;

/// How long one reverse lookup may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// How often names are looked up again.
pub const REFRESH: Duration = Duration::from_secs(300);
/// Lookups in flight at once.
const PARALLEL_LOOKUPS: usize = 8;

/// Reverse name lookup, injectable for tests.
pub trait ReverseLookup: Send + Sync + 'static {
    /// The canonical name of `addr`, if it has one.
    fn lookup(&self, addr: IpAddr) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>>;
}

/// `getent hosts <addr>`: the system's name service switch, as `gethostbyaddr` uses it.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemLookup;

impl ReverseLookup for SystemLookup {
    fn lookup(&self, addr: IpAddr) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
        Box::pin(async move {
            let child = tokio::process::Command::new("getent")
                .arg("hosts")
                .arg(addr.to_string())
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .output();
            let output = tokio::time::timeout(LOOKUP_TIMEOUT, child)
                .await
                .ok()?
                .ok()?;
            if !output.status.success() {
                return None;
            }
            // "10.0.0.2   web1.example.com web1": the first name is the canonical one.
            let text = String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(4096)])
                .into_owned();
            text.lines()
                .next()?
                .split_whitespace()
                .nth(1)
                .map(str::to_owned)
        })
    }
}

type Names = Arc<Mutex<HashMap<IpAddr, Option<String>>>>;

/// The maintenance directory of the running configuration, with its name cache.
pub struct Maintenance {
    dir: Option<PathBuf>,
    names: Names,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl Maintenance {
    /// Without a directory, nothing is ever in maintenance and nothing is looked up.
    pub fn new(dir: Option<PathBuf>) -> Maintenance {
        Maintenance {
            dir,
            names: Names::default(),
            refresher: None,
        }
    }

    pub fn is_set(&self) -> bool {
        self.dir.is_some()
    }

    /// Starts looking up the names of `addrs` in the background (and again every
    /// [`REFRESH`]). Does nothing without a directory.
    pub fn resolve(&mut self, addrs: Vec<IpAddr>, lookup: Arc<dyn ReverseLookup>) {
        if self.dir.is_none() {
            return;
        }
        if let Some(old) = self.refresher.take() {
            old.abort();
        }
        let names = self.names.clone();
        self.refresher = Some(tokio::spawn(async move {
            let mut addrs = addrs;
            addrs.sort();
            addrs.dedup();
            loop {
                for chunk in addrs.chunks(PARALLEL_LOOKUPS) {
                    let found = lookup_all(chunk, &lookup).await;
                    let mut map = names.lock().unwrap_or_else(PoisonError::into_inner);
                    for (addr, name) in chunk.iter().zip(found) {
                        map.insert(*addr, name);
                    }
                }
                tokio::time::sleep(REFRESH).await;
            }
        }));
    }

    /// Whether a file in the directory names `real`.
    pub fn covers(&self, real: &Real) -> bool {
        let Some(dir) = &self.dir else {
            return false;
        };
        let name = self
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&real.addr)
            .cloned()
            .flatten();
        candidates(real.addr, real.port, name.as_deref())
            .iter()
            .any(|file| exists(dir, file))
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        if let Some(refresher) = self.refresher.take() {
            refresher.abort();
        }
    }
}

/// Looks up every address in `chunk` concurrently.
async fn lookup_all(chunk: &[IpAddr], lookup: &Arc<dyn ReverseLookup>) -> Vec<Option<String>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, addr) in chunk.iter().copied().enumerate() {
        let lookup = lookup.clone();
        set.spawn(async move { (i, lookup.lookup(addr).await) });
    }
    let mut out = vec![None; chunk.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, name)) = joined {
            out[i] = name;
        }
    }
    out
}

fn exists(dir: &Path, file: &str) -> bool {
    // A name with a path separator or a dot-dot cannot come from an address or a host
    // name; refuse it rather than look outside the directory.
    if file.contains('/') || file == ".." || file == "." {
        return false;
    }
    dir.join(file).exists()
}

/// The file names that put a real in maintenance, in the Perl order.
pub fn candidates(addr: IpAddr, port: u16, name: Option<&str>) -> Vec<String> {
    let ip = match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let mut out = vec![format!("{ip}:{port}"), ip];
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        out.push(format!("{name}:{port}"));
        out.push(name.to_owned());
        if let Some(short) = short_name(name) {
            out.push(format!("{short}:{port}"));
            out.push(short.to_owned());
        }
    }
    out
}

/// `^([a-z][a-z0-9\-]+)\.`
fn short_name(name: &str) -> Option<&str> {
    let (first, _) = name.split_once('.')?;
    let mut chars = first.chars();
    let lead = chars.next()?;
    (lead.is_ascii_lowercase()
        && first.len() >= 2
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    .then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Forwarding, Location};

    fn real(addr: &str, port: u16) -> Real {
        Real {
            location: Location::new(Arc::from(Path::new("/t.cf")), 1),
            addr: addr.parse().unwrap(),
            port,
            forwarding: Forwarding::Gate,
            weight: 1,
            lower_threshold: 0,
            upper_threshold: 0,
            check_override: None,
        }
    }

    #[test]
    fn candidates_follow_the_perl_order() {
        assert_eq!(
            candidates("10.0.0.2".parse().unwrap(), 80, Some("web1.example.com")),
            [
                "10.0.0.2:80",
                "10.0.0.2",
                "web1.example.com:80",
                "web1.example.com",
                "web1:80",
                "web1"
            ]
        );
        assert_eq!(
            candidates("2001:db8::2".parse().unwrap(), 0, None),
            ["[2001:db8::2]:0", "[2001:db8::2]"]
        );
        assert_eq!(short_name("Web1.example.com"), None);
        assert_eq!(short_name("w.example.com"), None);
        assert_eq!(short_name("localhost"), None);
    }

    struct Fixed;
    impl ReverseLookup for Fixed {
        fn lookup(
            &self,
            addr: IpAddr,
        ) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
            Box::pin(async move {
                (addr.to_string() == "10.0.0.3").then(|| "web3.example.com".to_string())
            })
        }
    }

    #[tokio::test]
    async fn files_by_address_and_by_looked_up_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Maintenance::new(Some(dir.path().to_owned()));
        assert!(!m.covers(&real("10.0.0.2", 80)));
        std::fs::write(dir.path().join("10.0.0.2:80"), "").unwrap();
        assert!(m.covers(&real("10.0.0.2", 80)));
        assert!(!m.covers(&real("10.0.0.2", 81)));
        std::fs::write(dir.path().join("web3"), "").unwrap();
        assert!(!m.covers(&real("10.0.0.3", 80)), "name not known yet");
        m.resolve(vec!["10.0.0.3".parse().unwrap()], Arc::new(Fixed));
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(m.covers(&real("10.0.0.3", 80)));
        assert!(!Maintenance::new(None).covers(&real("10.0.0.2", 80)));
    }
}
