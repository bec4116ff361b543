//! Checks through the data path (`checkdatapath=yes`): the kernel objects they need.
//!
//! A check sent to a real server's own address proves that the server answers there, not
//! that it accepts traffic for the VIP: a real server without the VIP on its loopback passes
//! it while dropping every client packet. A data-path check goes to the VIP instead, along
//! the path clients take, pinned to one real server:
//!
//! * one firewall-mark IPVS service per (real server address, forwarding method) that some
//!   virtual with `checkdatapath=yes` uses, scheduler `rr`, whose only destination is that
//!   real server (port 0: the packet's port is kept; weight 1);
//! * the check's sockets carry that mark (`SO_MARK`), so the kernel's IPVS hook for locally
//!   generated packets sends them to that real server exactly as it forwards client traffic
//!   (direct routing, tunnel or NAT); they leave from this host's address towards the real
//!   server (see [`crate::check::spec::DataPath`]).
//!
//! No netfilter rule, route or policy rule is created. The marks are
//! [`MARK_BASE`]`..`[`MARK_BASE`]` + `[`MARK_RANGE`], a range reserved for ldirectord:
//! fwmark services in it are ldirectord's. They are numbered in the order of the sorted
//! (family, address, method) keys, so the same configuration always gives the same marks
//! and a restarted daemon adopts them. They carry no client traffic, so they are removed at
//! every stop (whatever `cleanstop` says), when a reload no longer needs them, and, at
//! start, when left behind by an earlier run.
//!
//! A marked packet that no IPVS service claims is delivered locally: a check would then
//! reach a server on this host instead of the real server. So a data-path check runs only
//! while its service is in the kernel (read back after each change); until then the real
//! server is not checked and keeps its state, and the failure to add the service is logged
//! and shown in the kernel status like any other.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::config::{Config, Endpoint, Forwarding};
use crate::ipvs::{DesiredService, Dest, Family, Service, ServiceKey};

use super::layout::forward;

/// First mark of the range reserved for data-path services ("LD" in the high half).
pub const MARK_BASE: u32 = 0x4c44_0000;
/// Marks in the range: at most this many distinct (real server, method) pairs.
pub const MARK_RANGE: u32 = 0x1_0000;

/// Whether an IPVS service is one of ldirectord's data-path services.
pub fn is_datapath(key: &ServiceKey) -> bool {
    matches!(key, ServiceKey::Fwmark { mark, .. } if (MARK_BASE..MARK_BASE + MARK_RANGE).contains(mark))
}

/// One data-path service: its mark, the service and its one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatapathService {
    pub mark: u32,
    pub service: Service,
    pub dest: Dest,
}

/// The data-path services a configuration needs, and which real uses which.
#[derive(Debug, Clone, Default)]
pub struct Datapath {
    pub services: Vec<DatapathService>,
    /// (virtual index, real index) → mark.
    marks: HashMap<(usize, usize), u32>,
}

type Key = (bool, IpAddr, u8);

fn method(f: Forwarding) -> u8 {
    match f {
        Forwarding::Gate => 0,
        Forwarding::Masq => 1,
        Forwarding::Ipip => 2,
    }
}

impl Datapath {
    pub fn new(config: &Config) -> Datapath {
        let mut wanted: BTreeMap<Key, Forwarding> = BTreeMap::new();
        let mut uses: Vec<((usize, usize), Key)> = Vec::new();
        for (vi, v) in config.virtuals.iter().enumerate() {
            // The reader refuses checkdatapath on firewall-mark virtuals.
            if !v.check.datapath || !matches!(v.endpoint, Endpoint::Addr { .. }) {
                continue;
            }
            for (ri, r) in v.reals.iter().enumerate() {
                let key = (r.addr.is_ipv6(), r.addr, method(r.forwarding));
                wanted.insert(key, r.forwarding);
                uses.push(((vi, ri), key));
            }
        }
        let mut by_key: HashMap<Key, u32> = HashMap::new();
        let mut services = Vec::new();
        for ((key, forwarding), n) in wanted.into_iter().zip(0..MARK_RANGE) {
            let mark = MARK_BASE + n;
            let family = if key.0 { Family::Inet6 } else { Family::Inet };
            services.push(DatapathService {
                mark,
                service: Service::new(ServiceKey::fwmark(family, mark), "rr"),
                dest: Dest::new(key.1, 0, forward(forwarding), 1),
            });
            by_key.insert(key, mark);
        }
        let marks = uses
            .into_iter()
            .filter_map(|(at, key)| Some((at, *by_key.get(&key)?)))
            .collect();
        Datapath { services, marks }
    }

    /// The mark of real `ri` of virtual `vi`, if that virtual checks through the data path.
    pub fn mark_of(&self, vi: usize, ri: usize) -> Option<u32> {
        self.marks.get(&(vi, ri)).copied()
    }

    pub fn keys(&self) -> impl Iterator<Item = ServiceKey> + '_ {
        self.services.iter().map(|s| s.service.key)
    }

    /// The services as the kernel must have them, whatever the health of the real servers.
    pub fn desired(&self) -> impl Iterator<Item = DesiredService> + '_ {
        self.services.iter().map(|s| {
            let mut d = DesiredService::new(s.service.clone());
            d.dests.push(s.dest.clone());
            d
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FakeHost, parse_str};
    use std::path::Path;

    fn datapath(text: &str) -> Datapath {
        let config = parse_str(text, Path::new("/t.cf"), &FakeHost::default())
            .unwrap()
            .config;
        Datapath::new(&config)
    }

    #[test]
    fn one_service_per_real_and_method_shared_across_virtuals() {
        let d = datapath(
            "virtual=10.0.0.100:80\n\treal=10.0.0.12:80 gate\n\treal=10.0.0.11:80 gate\n\tcheckdatapath=yes\n\
             virtual=10.0.0.100:443\n\treal=10.0.0.11:443 gate\n\treal=10.0.0.11:8443 masq\n\tcheckdatapath=yes\n\
             virtual=10.0.0.100:25\n\treal=10.0.0.13:25 gate\n",
        );
        let listed: Vec<String> = d
            .services
            .iter()
            .map(|s| format!("{:#x} {} {:?}", s.mark, s.dest.addr, s.dest.forward))
            .collect();
        assert_eq!(
            listed,
            [
                "0x4c440000 10.0.0.11 Route",
                "0x4c440001 10.0.0.11 Masq",
                "0x4c440002 10.0.0.12 Route"
            ]
        );
        assert_eq!(d.mark_of(0, 0), Some(0x4c44_0002));
        assert_eq!(d.mark_of(0, 1), Some(0x4c44_0000));
        assert_eq!(d.mark_of(1, 0), Some(0x4c44_0000), "shared");
        assert_eq!(d.mark_of(1, 1), Some(0x4c44_0001));
        assert_eq!(d.mark_of(2, 0), None, "checkdatapath=no");
        assert!(
            d.services
                .iter()
                .all(|s| s.dest.port == 0 && s.dest.weight == 1)
        );
        assert!(d.keys().all(|k| is_datapath(&k)));
        assert!(!is_datapath(&ServiceKey::fwmark(Family::Inet, 7)));
        assert!(!is_datapath(&ServiceKey::tcp(
            "10.0.0.100".parse().unwrap(),
            80
        )));
    }

    #[test]
    fn off_by_default_and_stable_across_loads() {
        let text = "virtual=10.0.0.100:80\n\treal=10.0.0.11:80 gate\n";
        assert!(datapath(text).services.is_empty());
        let on = "virtual6=[fd00::100]:80\n\treal6=[fd00::11]:80 gate\n\tcheckdatapath=yes\n";
        let (a, b) = (datapath(on), datapath(on));
        assert_eq!(a.services, b.services);
        assert_eq!(
            a.services[0].service.key,
            ServiceKey::fwmark(Family::Inet6, MARK_BASE)
        );
    }
}
