//! What a configuration means for the kernel table, computed once per (re)load: each
//! virtual's service, each real's destination, the fallback's destination, indexes to find
//! them again, and the names the Perl log lines use.
//!
//! Destination ports follow ipvsadm, which the Perl daemon drove: for an address service
//! (not a firewall mark) with direct routing or tunnelling, the destination port is the
//! virtual port whatever the `real=` line says, because only NAT can map ports. The kernel
//! entries an earlier Perl daemon left behind therefore match what this one wants.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::{self, Config, Endpoint, Forwarding, Virtual};

use super::datapath::Datapath;
use crate::ipvs::{Dest, DestKey, Forward, Netmask, Protocol, Service, ServiceFlags, ServiceKey};

/// A real server of a virtual service, as the kernel identifies it: the key of health
/// state and of check results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealId {
    pub service: ServiceKey,
    pub dest: DestKey,
}

impl std::fmt::Display for RealId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.dest, self.service)
    }
}

/// What makes two checks of a real the same check across a reload: everything in the
/// virtual's check settings except how often it runs and how many failures it takes, plus
/// the real's own request/receive and its address. A real whose identity is unchanged keeps
/// its health and failure count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckIdentity {
    check: config::Check,
    check_override: Option<config::CheckOverride>,
    addr: IpAddr,
    port: u16,
}

impl CheckIdentity {
    fn of(v: &Virtual, r: &config::Real) -> CheckIdentity {
        let mut check = v.check.clone();
        check.checkinterval = Default::default();
        check.failurecount = 0;
        CheckIdentity {
            check,
            check_override: r.check_override.clone(),
            addr: r.addr,
            port: r.port,
        }
    }
}

/// One real server of one virtual.
#[derive(Debug, Clone)]
pub struct RealLayout {
    pub id: RealId,
    /// The destination when up: configured weight, method and thresholds.
    pub dest: Dest,
    pub identity: CheckIdentity,
    pub forwarding: Forwarding,
    pub weight: u32,
}

/// One virtual service.
#[derive(Debug, Clone)]
pub struct VirtualLayout {
    pub key: ServiceKey,
    pub service: Service,
    pub reals: Vec<RealLayout>,
    /// The fallback destination (weight 1, no thresholds, as Perl adds it).
    pub fallback: Option<Dest>,
    /// Perl `get_virtual`: `10.0.0.1:80`, `[2001:db8::1]:80`, or the mark.
    pub name: String,
    /// Perl virtual id: `tcp:10.0.0.1:80`, `fwm6:7`.
    pub id: String,
}

/// What a destination of a managed service is to the director.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Real {
        virtual_index: usize,
        real_index: usize,
    },
    Fallback {
        virtual_index: usize,
    },
}

/// The layout of a whole configuration.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub virtuals: Vec<VirtualLayout>,
    /// The firewall-mark services of checks through the data path.
    pub datapath: Datapath,
    by_service: HashMap<ServiceKey, usize>,
    by_real: HashMap<RealId, Vec<(usize, usize)>>,
    by_check: HashMap<(ServiceKey, CheckIdentity), (usize, usize)>,
}

impl Layout {
    pub fn new(config: &Config) -> Layout {
        let virtuals: Vec<VirtualLayout> = config.virtuals.iter().map(virtual_layout).collect();
        let mut by_service = HashMap::with_capacity(virtuals.len());
        let mut by_real: HashMap<RealId, Vec<(usize, usize)>> = HashMap::new();
        let mut by_check = HashMap::new();
        for (vi, v) in virtuals.iter().enumerate() {
            // Two blocks for one service cannot both be obeyed; the first one wins, like
            // the first `-A` of a Perl start.
            by_service.entry(v.key.canonical()).or_insert(vi);
            for (ri, r) in v.reals.iter().enumerate() {
                by_real.entry(r.id).or_default().push((vi, ri));
                by_check
                    .entry((v.key.canonical(), r.identity.clone()))
                    .or_insert((vi, ri));
            }
        }
        Layout {
            virtuals,
            datapath: Datapath::new(config),
            by_service,
            by_real,
            by_check,
        }
    }

    /// The virtual that owns `service`, if the configuration manages it.
    pub fn virtual_index(&self, service: &ServiceKey) -> Option<usize> {
        self.by_service.get(&service.canonical()).copied()
    }

    /// Every (virtual, real) index pair with this id (usually one).
    pub fn reals(&self, id: &RealId) -> &[(usize, usize)] {
        self.by_real.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    /// The real of `service` checked exactly like `identity` (same address, port as
    /// written, check settings), wherever its kernel destination now is.
    pub fn real_with_check(
        &self,
        service: &ServiceKey,
        identity: &CheckIdentity,
    ) -> Option<(usize, usize)> {
        self.by_check
            .get(&(service.canonical(), identity.clone()))
            .copied()
    }

    /// Whether the virtual at `vi` is the one that programs its service (not a duplicate
    /// block for the same service).
    pub fn owns_service(&self, vi: usize) -> bool {
        self.virtuals
            .get(vi)
            .is_some_and(|v| self.virtual_index(&v.key) == Some(vi))
    }

    /// What `dest` of `service` is: a configured real, the fallback, or neither.
    pub fn role(&self, service: &ServiceKey, dest: &DestKey) -> Option<Role> {
        let vi = self.virtual_index(service)?;
        let v = &self.virtuals[vi];
        if let Some(ri) = v.reals.iter().position(|r| r.dest.key() == *dest) {
            return Some(Role::Real {
                virtual_index: vi,
                real_index: ri,
            });
        }
        v.fallback
            .as_ref()
            .filter(|f| f.key() == *dest)
            .map(|_| Role::Fallback { virtual_index: vi })
    }

    /// Every service the configuration manages: the virtuals' and the data-path ones.
    pub fn service_keys(&self) -> impl Iterator<Item = ServiceKey> + '_ {
        self.virtuals
            .iter()
            .map(|v| v.key)
            .chain(self.datapath.keys())
    }
}

fn virtual_layout(v: &Virtual) -> VirtualLayout {
    let service = service_of(v);
    let key = service.key;
    let reals = v
        .reals
        .iter()
        .map(|r| {
            let dest = Dest {
                upper_threshold: r.upper_threshold,
                lower_threshold: r.lower_threshold,
                ..Dest::new(
                    r.addr,
                    dest_port(v, r.forwarding, r.port),
                    forward(r.forwarding),
                    i32::try_from(r.weight).unwrap_or(i32::MAX),
                )
            };
            RealLayout {
                id: RealId {
                    service: key,
                    dest: dest.key(),
                },
                dest,
                identity: CheckIdentity::of(v, r),
                forwarding: r.forwarding,
                weight: r.weight,
            }
        })
        .collect();
    let fallback = v.fallback.as_ref().map(|f| {
        Dest::new(
            f.addr,
            dest_port(v, f.forwarding, f.port),
            forward(f.forwarding),
            1,
        )
    });
    VirtualLayout {
        key,
        service,
        reals,
        fallback,
        name: virtual_name(&v.endpoint),
        id: v.endpoint.to_string(),
    }
}

/// The kernel service a virtual block asks for (Perl `ld_setup` flags: `-s`, `-p`, `-M`
/// only with `-p`, `-o` only for UDP, `-b`).
pub fn service_of(v: &Virtual) -> Service {
    let key = match v.endpoint {
        Endpoint::Addr { addr, protocol } => ServiceKey::Addr {
            protocol: match protocol {
                config::Protocol::Tcp => Protocol::Tcp,
                config::Protocol::Udp => Protocol::Udp,
            },
            addr: addr.ip(),
            port: addr.port(),
        },
        Endpoint::Fwmark { mark, family } => ServiceKey::fwmark(
            match family {
                config::Family::Inet => crate::ipvs::Family::Inet,
                config::Family::Inet6 => crate::ipvs::Family::Inet6,
            },
            mark,
        ),
    };
    let mut service = Service::new(key, v.scheduler.clone());
    if let Some(timeout) = v.persistent {
        service = service.persistent(timeout);
        match v.netmask {
            Some(config::Netmask::V4(mask)) => service.netmask = Netmask::V4(mask),
            Some(config::Netmask::Prefix(len)) => service.netmask = Netmask::V6(u32::from(len)),
            None => {}
        }
    }
    let udp = matches!(
        v.endpoint,
        Endpoint::Addr {
            protocol: config::Protocol::Udp,
            ..
        }
    );
    if v.ops && udp {
        service.flags.insert(ServiceFlags::ONEPACKET);
    }
    for flag in &v.schedflags {
        service.flags.insert(match flag.as_str() {
            "flag-1" | "sh-fallback" | "mh-fallback" => ServiceFlags::SCHED1,
            "flag-2" | "sh-port" | "mh-port" => ServiceFlags::SCHED2,
            "flag-3" => ServiceFlags::SCHED3,
            // The configuration reader refuses other names.
            _ => ServiceFlags::empty(),
        });
    }
    service
}

/// ipvsadm's rule: only NAT maps ports, so a direct-routing or tunnelled destination of an
/// address service gets the virtual port.
fn dest_port(v: &Virtual, forwarding: Forwarding, port: u16) -> u16 {
    match v.endpoint {
        Endpoint::Addr { addr, .. } if forwarding != Forwarding::Masq => addr.port(),
        _ => port,
    }
}

pub fn forward(forwarding: Forwarding) -> Forward {
    match forwarding {
        Forwarding::Gate => Forward::Route,
        Forwarding::Masq => Forward::Masq,
        Forwarding::Ipip => Forward::Tunnel,
    }
}

/// Perl `get_virtual`.
fn virtual_name(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Addr { addr, .. } => addr.to_string(),
        Endpoint::Fwmark { mark, .. } => mark.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FakeHost, parse_str};
    use std::path::Path;

    fn layout(text: &str) -> Layout {
        let config = parse_str(text, Path::new("/etc/ha.d/t.cf"), &FakeHost::default())
            .unwrap()
            .config;
        Layout::new(&config)
    }

    #[test]
    fn ports_follow_ipvsadm_and_names_follow_perl() {
        let l = layout(
            "virtual=10.0.0.100:80\n\
             \treal=10.0.0.2:8080 gate 3\n\
             \treal=10.0.0.3:8080 masq\n\
             \treal=10.0.0.4 ipip\n\
             \tfallback=127.0.0.1:8000 gate\n\
             virtual=7\n\
             \treal=10.0.0.5:8080 gate\n\
             virtual6=[2001:db8::1]:53\n\
             \treal6=[2001:db8::2]:53 masq\n",
        );
        let v = &l.virtuals[0];
        let ports: Vec<u16> = v.reals.iter().map(|r| r.dest.port).collect();
        assert_eq!(ports, [80, 8080, 80]);
        assert_eq!(v.reals[0].dest.weight, 3);
        assert_eq!(v.fallback.as_ref().unwrap().port, 80);
        assert_eq!(
            (v.name.as_str(), v.id.as_str()),
            ("10.0.0.100:80", "tcp:10.0.0.100:80")
        );
        assert_eq!(l.virtuals[1].reals[0].dest.port, 8080);
        assert_eq!(
            (l.virtuals[1].name.as_str(), l.virtuals[1].id.as_str()),
            ("7", "fwm:7")
        );
        assert_eq!(l.virtuals[2].name, "[2001:db8::1]:53");
        assert_eq!(l.virtuals[2].key.to_string(), "UDP [2001:db8::1]:53");
        let id = v.reals[1].id;
        assert_eq!(l.reals(&id), &[(0, 1)]);
        assert_eq!(
            l.role(&v.key, &v.fallback.as_ref().unwrap().key()),
            Some(Role::Fallback { virtual_index: 0 })
        );
    }

    #[test]
    fn service_flags_follow_ld_setup() {
        let l = layout(
            "virtual=10.0.0.100:53\n\
             \tprotocol=udp\n\
             \tops=yes\n\
             \tpersistent=600\n\
             \tnetmask=255.255.255.0\n\
             \tscheduler=sh\n\
             \tschedflags=sh-port\n\
             \treal=10.0.0.2 gate\n",
        );
        let s = &l.virtuals[0].service;
        assert!(s.is_persistent() && s.timeout == 600);
        assert!(
            s.flags
                .contains(ServiceFlags::ONEPACKET | ServiceFlags::SH_PORT)
        );
        assert_eq!(s.netmask, Netmask::V4("255.255.255.0".parse().unwrap()));
        assert_eq!(s.scheduler, "sh");
    }
}
