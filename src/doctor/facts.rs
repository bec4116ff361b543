//! What `doctor` reads from the host, as plain values: the rules in [`super::rules`] judge
//! these, so they are tested without a kernel.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::ipvs::Daemon;
use crate::rtnl::RouteKind;

/// Whether a kernel module can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    /// Loaded, or built into the kernel.
    Loaded,
    /// Not loaded, but its file is under `/lib/modules/<release>`.
    Available,
    /// Neither.
    Missing,
}

/// One address of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddress {
    pub dev: String,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// How this host reaches an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: RouteKind,
    pub dev: Option<String>,
    pub gateway: Option<IpAddr>,
}

/// The IPVS sync daemons, or why they were not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    Daemons(Vec<Daemon>),
    NotRead(String),
}

/// Everything the rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub kernel_release: String,
    /// `ip_vs` and the `ip_vs_*` modules the configuration needs.
    pub modules: BTreeMap<String, Module>,
    /// `None` when the address list could not be read (the reason is in `notes`).
    pub addresses: Option<Vec<LocalAddress>>,
    /// The route to each real server (an error text when the lookup failed).
    pub routes: BTreeMap<IpAddr, Result<Route, String>>,
    /// `/proc/sys` values by sysctl name (`net.ipv4.ip_forward`,
    /// `net.ipv4.conf.eth0.arp_ignore`, …); absent = not there or unreadable.
    pub sysctl: BTreeMap<String, i64>,
    pub cap_net_admin: bool,
    pub cap_net_raw: bool,
    /// Unprivileged ICMP sockets are allowed for this process's group
    /// (`net.ipv4.ping_group_range`).
    pub ping_sockets_allowed: bool,
    pub sync: Sync,
    /// What could not be read, for the report.
    pub notes: Vec<String>,
}

impl Facts {
    /// A host with nothing: no modules, no addresses, no privileges (tests start here).
    pub fn empty() -> Facts {
        Facts {
            kernel_release: String::new(),
            modules: BTreeMap::new(),
            addresses: Some(Vec::new()),
            routes: BTreeMap::new(),
            sysctl: BTreeMap::new(),
            cap_net_admin: false,
            cap_net_raw: false,
            ping_sockets_allowed: false,
            sync: Sync::Daemons(Vec::new()),
            notes: Vec::new(),
        }
    }

    pub fn module(&self, name: &str) -> Module {
        self.modules.get(name).copied().unwrap_or(Module::Missing)
    }

    /// The value the kernel uses for a per-interface setting it combines by maximum
    /// (`arp_ignore`, `arp_announce`, `rp_filter`): the larger of `all` and the
    /// interface's own.
    pub fn effective_max(&self, iface: &str, knob: &str) -> Option<i64> {
        let all = self.sysctl.get(&format!("net.ipv4.conf.all.{knob}"));
        let own = self.sysctl.get(&format!("net.ipv4.conf.{iface}.{knob}"));
        match (all, own) {
            (Some(a), Some(o)) => Some(*a.max(o)),
            (a, o) => a.or(o).copied(),
        }
    }

    /// `accept_local` and the like, which the kernel takes from `all` OR the interface.
    pub fn effective_or(&self, iface: &str, knob: &str) -> Option<bool> {
        let all = self.sysctl.get(&format!("net.ipv4.conf.all.{knob}"));
        let own = self.sysctl.get(&format!("net.ipv4.conf.{iface}.{knob}"));
        match (all, own) {
            (None, None) => None,
            (a, o) => Some(a.is_some_and(|v| *v != 0) || o.is_some_and(|v| *v != 0)),
        }
    }
}
