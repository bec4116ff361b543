//! What the configuration needs from this host, judged over [`Facts`]: pure functions,
//! one finding per thing checked, each failure with its fix.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use super::facts::{Facts, Module, Sync};
use crate::check::CheckSpec;
use crate::check::spec::{CheckKind, Protocol as CheckProtocol};
use crate::config::{Config, Endpoint, Forwarding, Location, Protocol, Virtual};
use crate::ipvs::DaemonState;
use crate::rtnl::RouteKind;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Info,
    /// Works, but probably not as intended (or only once someone else acts).
    Warn,
    /// The configuration cannot work on this host as it is.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// What was checked: `privileges`, `ip_vs`, `scheduler`, `vip`, `forwarding`,
    /// `route`, `arp`, `datapath`, `sync`.
    pub topic: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn new(severity: Severity, topic: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            topic,
            message: message.into(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// Does anything block?
pub fn blocking(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Fail)
}

/// `ok`/`info`/`WARN`/`FAIL` lines, fixes indented below, and a count.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let tag = match f.severity {
            Severity::Ok => "ok  ",
            Severity::Info => "info",
            Severity::Warn => "WARN",
            Severity::Fail => "FAIL",
        };
        let _ = writeln!(out, "{tag}  {}", f.message);
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "      fix: {fix}");
        }
    }
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        out,
        "doctor: {} blocking, {} warnings, {} ok",
        count(Severity::Fail),
        count(Severity::Warn),
        count(Severity::Ok) + count(Severity::Info)
    );
    out
}

/// `file:line` of a virtual, for messages.
fn at(v: &Virtual) -> String {
    located(&v.location)
}

fn located(l: &Location) -> String {
    format!("{}:{}", l.file.display(), l.line)
}

/// Every real server and fallback: where it is written, its address, its forwarding.
fn all_reals(config: &Config) -> impl Iterator<Item = (String, IpAddr, Forwarding)> + '_ {
    config.virtuals.iter().flat_map(|v| {
        v.reals
            .iter()
            .map(|r| (located(&r.location), r.addr, r.forwarding))
            .chain(
                v.fallback
                    .iter()
                    .map(|f| (located(&f.location), f.addr, f.forwarding)),
            )
    })
}

/// Everything, in the order an operator fixes things: privileges, kernel, addresses,
/// forwarding, routes, ARP, sync.
pub fn diagnose(config: &Config, specs: &[CheckSpec], facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    privileges(specs, facts, &mut out);
    kernel(config, facts, &mut out);
    vips(config, facts, &mut out);
    forwarding(config, facts, &mut out);
    routes(config, facts, &mut out);
    datapath(config, facts, &mut out);
    sync(facts, &mut out);
    for note in &facts.notes {
        out.push(Finding::new(
            Severity::Info,
            "host",
            format!("not checked: {note}"),
        ));
    }
    out
}

fn privileges(specs: &[CheckSpec], facts: &Facts, out: &mut Vec<Finding>) {
    if facts.cap_net_admin {
        out.push(Finding::new(
            Severity::Ok,
            "privileges",
            "CAP_NET_ADMIN: can program IPVS",
        ));
    } else {
        out.push(
            Finding::new(
                Severity::Fail,
                "privileges",
                "no CAP_NET_ADMIN: the kernel refuses every IPVS change",
            )
            .fix("run ldirectord (and this doctor) as root"),
        );
    }
    let pings = specs.iter().any(|s| {
        matches!(s.kind, CheckKind::Ping)
            || (matches!(s.kind, CheckKind::Connect) && s.target.protocol == CheckProtocol::Udp)
    });
    if pings {
        if facts.cap_net_raw || facts.ping_sockets_allowed {
            out.push(Finding::new(
                Severity::Ok,
                "privileges",
                "ping checks can open ICMP sockets",
            ));
        } else {
            out.push(
                Finding::new(
                    Severity::Fail,
                    "privileges",
                    "ping checks (checktype=ping, or connect on UDP) need CAP_NET_RAW or a group in net.ipv4.ping_group_range",
                )
                .fix("run as root"),
            );
        }
    }
}

fn kernel(config: &Config, facts: &Facts, out: &mut Vec<Finding>) {
    let release = &facts.kernel_release;
    match facts.module("ip_vs") {
        Module::Loaded => out.push(Finding::new(Severity::Ok, "ip_vs", "ip_vs is loaded")),
        Module::Available => out.push(Finding::new(
            Severity::Ok,
            "ip_vs",
            "ip_vs is not loaded; the kernel loads it when ldirectord first asks for it",
        )),
        Module::Missing => out.push(
            Finding::new(
                Severity::Fail,
                "ip_vs",
                format!("this kernel ({release}) has no ip_vs module"),
            )
            .fix("install the kernel's modules package, or a kernel with CONFIG_IP_VS"),
        ),
    }

    let mut schedulers: Vec<(&str, &Virtual)> = Vec::new();
    for v in &config.virtuals {
        if !schedulers.iter().any(|(s, _)| *s == v.scheduler) {
            schedulers.push((&v.scheduler, v));
        }
    }
    for (name, first) in schedulers {
        let module = format!("ip_vs_{name}");
        match facts.module(&module) {
            Module::Loaded => out.push(Finding::new(
                Severity::Ok,
                "scheduler",
                format!("scheduler {name}: {module} is loaded"),
            )),
            Module::Available => out.push(Finding::new(
                Severity::Ok,
                "scheduler",
                format!("scheduler {name}: {module} is available (loaded on demand)"),
            )),
            Module::Missing => out.push(
                Finding::new(
                    Severity::Fail,
                    "scheduler",
                    format!(
                        "scheduler {name} (first used at {}): no {module} in this kernel ({release})",
                        at(first)
                    ),
                )
                .fix("use a scheduler this kernel has: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos"),
            ),
        }
    }

    // FTP through NAT needs the helper that rewrites PORT/PASV; IPVS never loads it itself.
    let ftp_nat = config.virtuals.iter().find(|v| {
        matches!(v.endpoint, Endpoint::Addr { addr, protocol: Protocol::Tcp } if addr.port() == 21)
            && v.reals.iter().any(|r| r.forwarding == Forwarding::Masq)
    });
    if let Some(v) = ftp_nat {
        match facts.module("ip_vs_ftp") {
            Module::Loaded => out.push(Finding::new(Severity::Ok, "ip_vs", "ip_vs_ftp is loaded (FTP through NAT)")),
            _ => out.push(
                Finding::new(
                    Severity::Warn,
                    "ip_vs",
                    format!("FTP through NAT ({}) needs ip_vs_ftp, which is not loaded and is never loaded on demand", at(v)),
                )
                .fix("modprobe ip_vs_ftp, and list it in /etc/modules-load.d/"),
            ),
        }
    }
}

fn vips(config: &Config, facts: &Facts, out: &mut Vec<Finding>) {
    let Some(addresses) = &facts.addresses else {
        return;
    };
    let mut seen = BTreeSet::new();
    for v in &config.virtuals {
        let vip = match v.endpoint {
            Endpoint::Addr { addr, .. } => addr.ip(),
            Endpoint::Fwmark { mark, .. } => {
                out.push(Finding::new(
                    Severity::Info,
                    "vip",
                    format!("virtual {mark} ({}): firewall-marked traffic; the marking rules are yours and not checked", at(v)),
                ));
                continue;
            }
        };
        if !seen.insert(vip) {
            continue;
        }
        let holders: Vec<&str> = addresses
            .iter()
            .filter(|a| a.addr == vip)
            .map(|a| a.dev.as_str())
            .collect();
        if holders.is_empty() {
            out.push(
                Finding::new(
                    Severity::Warn,
                    "vip",
                    format!("VIP {vip} ({}) is not on this host: clients reach it only once the cluster manager (Pacemaker IPaddr2, heartbeat) adds it here", at(v)),
                )
                .fix(format!("let the cluster manage it, or: ip address add {vip}/{} dev IFACE", if vip.is_ipv4() { 32 } else { 128 })),
            );
            continue;
        }
        let answering: Vec<&str> = holders.iter().copied().filter(|d| *d != "lo").collect();
        if answering.is_empty() {
            out.push(
                Finding::new(
                    Severity::Warn,
                    "vip",
                    format!("VIP {vip} is held only on lo: no interface answers ARP or neighbour solicitations for it, so traffic reaches this director only if routed to it"),
                )
                .fix(format!("put it on the interface the clients reach: ip address add {vip}/{} dev IFACE", if vip.is_ipv4() { 32 } else { 128 })),
            );
            continue;
        }
        for dev in &answering {
            if vip.is_ipv4() && facts.effective_max(dev, "arp_ignore") == Some(8) {
                out.push(
                    Finding::new(
                        Severity::Fail,
                        "arp",
                        format!("VIP {vip} is on {dev}, but arp_ignore=8 there: the director answers no ARP request, so clients cannot reach the VIP"),
                    )
                    .fix(format!("sysctl -w net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.{dev}.arp_ignore=0")),
                );
            } else {
                out.push(Finding::new(
                    Severity::Ok,
                    "vip",
                    format!("VIP {vip} is on {dev}"),
                ));
            }
        }
    }
}

fn forwarding(config: &Config, facts: &Facts, out: &mut Vec<Finding>) {
    let masq = |v6: bool| {
        all_reals(config).find(|(_, addr, fwd)| *fwd == Forwarding::Masq && addr.is_ipv6() == v6)
    };
    for (v6, key) in [
        (false, "net.ipv4.ip_forward"),
        (true, "net.ipv6.conf.all.forwarding"),
    ] {
        let Some((loc, addr, _)) = masq(v6) else {
            continue;
        };
        match facts.sysctl.get(key) {
            Some(1) => out.push(Finding::new(
                Severity::Ok,
                "forwarding",
                format!("{key}=1 (NAT)"),
            )),
            value => out.push(
                Finding::new(
                    Severity::Fail,
                    "forwarding",
                    format!(
                        "NAT (real {addr} masq at {loc}) needs {key}=1, it is {}: the real servers' replies are dropped on their way back",
                        value.map_or("unreadable".to_string(), |v| v.to_string())
                    ),
                )
                .fix(format!("sysctl -w {key}=1, and set it in /etc/sysctl.d/")),
            ),
        }
    }
}

fn routes(config: &Config, facts: &Facts, out: &mut Vec<Finding>) {
    let mut seen = BTreeSet::new();
    for (loc, addr, fwd) in all_reals(config) {
        if !seen.insert((addr, fwd == Forwarding::Gate)) {
            continue;
        }
        let Some(route) = facts.routes.get(&addr) else {
            continue;
        };
        let route = match route {
            Ok(r) => r,
            Err(e) => {
                out.push(Finding::new(
                    Severity::Info,
                    "route",
                    format!("real {addr}: route not looked up ({e})"),
                ));
                continue;
            }
        };
        match (route.kind, fwd) {
            (RouteKind::NoRoute, _) => out.push(
                Finding::new(
                    Severity::Fail,
                    "route",
                    format!("real {addr} ({loc}): this host has no route to it"),
                )
                .fix("add an address on the real servers' network, or a route to it"),
            ),
            (RouteKind::Local, _) => out.push(Finding::new(
                Severity::Ok,
                "route",
                format!("real {addr} is this host (served locally)"),
            )),
            (RouteKind::Unicast, Forwarding::Gate) => match route.gateway {
                Some(gw) => out.push(
                    Finding::new(
                        Severity::Fail,
                        "route",
                        format!(
                            "real {addr} ({loc}, gate) is reached through the gateway {gw}: direct routing only rewrites the MAC address, so the real server must be on a network this director is attached to"
                        ),
                    )
                    .fix("attach the director to the real servers' network, or use ipip (tunnel) or masq"),
                ),
                None => out.push(Finding::new(
                    Severity::Ok,
                    "route",
                    format!(
                        "real {addr} (gate) is on a directly attached network ({})",
                        route.dev.as_deref().unwrap_or("?")
                    ),
                )),
            },
            (RouteKind::Unicast, _) => out.push(Finding::new(
                Severity::Ok,
                "route",
                format!(
                    "real {addr} is reachable via {}",
                    route
                        .gateway
                        .map_or_else(|| route.dev.clone().unwrap_or_default(), |g| g.to_string())
                ),
            )),
        }
    }
}

/// `checkdatapath=yes` with direct routing or tunnelling: the real server answers the check
/// from the VIP, which is an address of this director, and the kernel drops packets that
/// arrive with a local source address unless `accept_local` is on for the interface they
/// arrive on (measured in the VM). With strict `rp_filter` the kernel also wants the source
/// to be routed back through that interface, which a local address is only when it sits on
/// that very interface: a VIP on `lo` or on another interface fails the reverse-path test
/// (measured in the VM too; loose mode, 2, passes). NAT replies come from the real server's
/// address and need nothing.
fn datapath(config: &Config, facts: &Facts, out: &mut Vec<Finding>) {
    let mut seen = BTreeSet::new();
    let mut seen_rpf = BTreeSet::new();
    for v in config.virtuals.iter().filter(|v| v.check.datapath) {
        for r in &v.reals {
            if r.addr.is_ipv6() || r.forwarding == Forwarding::Masq {
                continue;
            }
            let Some(Ok(route)) = facts.routes.get(&r.addr) else {
                continue;
            };
            let Some(dev) = route.dev.as_deref() else {
                continue;
            };
            if let (Endpoint::Addr { addr: vip, .. }, Some(addresses)) =
                (&v.endpoint, &facts.addresses)
                && facts.effective_max(dev, "rp_filter") == Some(1)
                && !addresses.iter().any(|a| a.addr == vip.ip() && a.dev == dev)
                && seen_rpf.insert((dev.to_string(), vip.ip()))
            {
                out.push(
                    Finding::new(
                        Severity::Fail,
                        "datapath",
                        format!(
                            "checkdatapath ({}): {dev} has strict rp_filter and the VIP {} is not on {dev}, so the real servers' answers from the VIP fail the reverse-path test; every data-path check would fail",
                            at(v),
                            vip.ip()
                        ),
                    )
                    .fix(format!("sysctl -w net.ipv4.conf.{dev}.rp_filter=2 (loose), and set it in /etc/sysctl.d/")),
                );
            }
            if !seen.insert(dev.to_string()) {
                continue;
            }
            match facts.effective_or(dev, "accept_local") {
                Some(true) => out.push(Finding::new(
                    Severity::Ok,
                    "datapath",
                    format!("checks through the data path: accept_local is on for {dev}"),
                )),
                _ => out.push(
                    Finding::new(
                        Severity::Fail,
                        "datapath",
                        format!(
                            "checkdatapath ({}): real servers answer the check from the VIP, an address of this host, and {dev} drops such packets unless accept_local=1; every data-path check would fail",
                            at(v)
                        ),
                    )
                    .fix(format!("sysctl -w net.ipv4.conf.{dev}.accept_local=1, and set it in /etc/sysctl.d/")),
                ),
            }
        }
    }
}

fn sync(facts: &Facts, out: &mut Vec<Finding>) {
    match &facts.sync {
        Sync::NotRead(why) => out.push(Finding::new(
            Severity::Info,
            "sync",
            format!("sync daemon state not read: {why}"),
        )),
        Sync::Daemons(d) if d.is_empty() => out.push(Finding::new(
            Severity::Info,
            "sync",
            "no IPVS sync daemon runs: a standby director starts without the connection table (ipvsadm --start-daemon)",
        )),
        Sync::Daemons(daemons) => {
            for d in daemons {
                let role = match d.state {
                    DaemonState::Master => "master".to_string(),
                    DaemonState::Backup => "backup".to_string(),
                    DaemonState::Other(n) => format!("state {n}"),
                };
                out.push(Finding::new(
                    Severity::Info,
                    "sync",
                    format!(
                        "IPVS sync daemon: {role} on {}, syncid {}",
                        d.mcast_ifn, d.sync_id
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::facts::{LocalAddress, Route};
    use super::*;
    use crate::config::{FakeHost, parse_str};
    use crate::director::check_specs;
    use crate::ipvs::Daemon;

    fn config(text: &str) -> Config {
        parse_str(text, Path::new("/etc/ha.d/t.cf"), &FakeHost::default())
            .unwrap()
            .config
    }

    fn specs(c: &Config) -> Vec<CheckSpec> {
        check_specs(c)
            .into_iter()
            .filter_map(|(_, _, s)| s.ok())
            .collect()
    }

    const DR: &str = "virtual=10.0.0.100:80\n\treal=10.0.0.11:80 gate\n\treal=10.0.0.12:80 gate\n\tscheduler=wlc\n\tchecktype=connect\n";

    /// The director of tests/vm's topology, ready: root, modules there, VIP on br0.
    fn ready() -> Facts {
        let mut f = Facts::empty();
        f.kernel_release = "6.1.0-56-amd64".into();
        f.cap_net_admin = true;
        f.cap_net_raw = true;
        f.modules.insert("ip_vs".into(), Module::Loaded);
        f.modules.insert("ip_vs_wlc".into(), Module::Available);
        f.addresses = Some(vec![
            LocalAddress {
                dev: "br0".into(),
                addr: "10.0.0.1".parse().unwrap(),
                prefix_len: 24,
            },
            LocalAddress {
                dev: "br0".into(),
                addr: "10.0.0.100".parse().unwrap(),
                prefix_len: 32,
            },
        ]);
        for real in ["10.0.0.11", "10.0.0.12"] {
            f.routes.insert(
                real.parse().unwrap(),
                Ok(Route {
                    kind: RouteKind::Unicast,
                    dev: Some("br0".into()),
                    gateway: None,
                }),
            );
        }
        f.sysctl.insert("net.ipv4.ip_forward".into(), 0);
        f.sysctl.insert("net.ipv4.conf.all.arp_ignore".into(), 0);
        f.sysctl.insert("net.ipv4.conf.br0.arp_ignore".into(), 0);
        f
    }

    fn run(text: &str, facts: &Facts) -> (bool, String) {
        let c = config(text);
        let findings = diagnose(&c, &specs(&c), facts);
        (blocking(&findings), render(&findings))
    }

    #[test]
    fn a_ready_dr_director() {
        let (blocks, text) = run(DR, &ready());
        assert!(!blocks, "{text}");
        insta::assert_snapshot!(text, @r"
        ok    CAP_NET_ADMIN: can program IPVS
        ok    ip_vs is loaded
        ok    scheduler wlc: ip_vs_wlc is available (loaded on demand)
        ok    VIP 10.0.0.100 is on br0
        ok    real 10.0.0.11 (gate) is on a directly attached network (br0)
        ok    real 10.0.0.12 (gate) is on a directly attached network (br0)
        info  no IPVS sync daemon runs: a standby director starts without the connection table (ipvsadm --start-daemon)
        doctor: 0 blocking, 0 warnings, 7 ok
        ");
    }

    #[test]
    fn what_blocks_a_director() {
        let mut f = ready();
        f.cap_net_admin = false;
        f.cap_net_raw = false;
        f.modules.clear();
        f.routes.insert(
            "10.0.0.12".parse().unwrap(),
            Ok(Route {
                kind: RouteKind::Unicast,
                dev: Some("eth1".into()),
                gateway: Some("192.0.2.1".parse().unwrap()),
            }),
        );
        f.routes.insert(
            "10.0.0.11".parse().unwrap(),
            Ok(Route {
                kind: RouteKind::NoRoute,
                dev: None,
                gateway: None,
            }),
        );
        f.sysctl.insert("net.ipv4.conf.all.arp_ignore".into(), 8);
        let text = format!(
            "{DR}virtual=10.0.0.200:53\n\tprotocol=udp\n\treal=10.0.0.13:53 masq\n\tchecktype=ping\n\tscheduler=foo\n"
        );
        f.routes.insert(
            "10.0.0.13".parse().unwrap(),
            Ok(Route {
                kind: RouteKind::Unicast,
                dev: Some("br0".into()),
                gateway: None,
            }),
        );
        let (blocks, text) = run(&text, &f);
        assert!(blocks);
        insta::assert_snapshot!(text, @r"
        FAIL  no CAP_NET_ADMIN: the kernel refuses every IPVS change
              fix: run ldirectord (and this doctor) as root
        FAIL  ping checks (checktype=ping, or connect on UDP) need CAP_NET_RAW or a group in net.ipv4.ping_group_range
              fix: run as root
        FAIL  this kernel (6.1.0-56-amd64) has no ip_vs module
              fix: install the kernel's modules package, or a kernel with CONFIG_IP_VS
        FAIL  scheduler wlc (first used at /etc/ha.d/t.cf:1): no ip_vs_wlc in this kernel (6.1.0-56-amd64)
              fix: use a scheduler this kernel has: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos
        FAIL  scheduler foo (first used at /etc/ha.d/t.cf:6): no ip_vs_foo in this kernel (6.1.0-56-amd64)
              fix: use a scheduler this kernel has: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos
        FAIL  VIP 10.0.0.100 is on br0, but arp_ignore=8 there: the director answers no ARP request, so clients cannot reach the VIP
              fix: sysctl -w net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.br0.arp_ignore=0
        WARN  VIP 10.0.0.200 (/etc/ha.d/t.cf:6) is not on this host: clients reach it only once the cluster manager (Pacemaker IPaddr2, heartbeat) adds it here
              fix: let the cluster manage it, or: ip address add 10.0.0.200/32 dev IFACE
        FAIL  NAT (real 10.0.0.13 masq at /etc/ha.d/t.cf:8) needs net.ipv4.ip_forward=1, it is 0: the real servers' replies are dropped on their way back
              fix: sysctl -w net.ipv4.ip_forward=1, and set it in /etc/sysctl.d/
        FAIL  real 10.0.0.11 (/etc/ha.d/t.cf:2): this host has no route to it
              fix: add an address on the real servers' network, or a route to it
        FAIL  real 10.0.0.12 (/etc/ha.d/t.cf:3, gate) is reached through the gateway 192.0.2.1: direct routing only rewrites the MAC address, so the real server must be on a network this director is attached to
              fix: attach the director to the real servers' network, or use ipip (tunnel) or masq
        ok    real 10.0.0.13 is reachable via br0
        info  no IPVS sync daemon runs: a standby director starts without the connection table (ipvsadm --start-daemon)
        doctor: 9 blocking, 1 warnings, 2 ok
        ");
    }

    #[test]
    fn warnings_do_not_block() {
        let mut f = ready();
        f.addresses = Some(vec![LocalAddress {
            dev: "lo".into(),
            addr: "10.0.0.100".parse().unwrap(),
            prefix_len: 32,
        }]);
        f.sync = Sync::Daemons(vec![Daemon::new(DaemonState::Master, "br0", 7)]);
        let text = "virtual=10.0.0.100:21\n\treal=10.0.0.11:21 masq\n\tscheduler=wlc\n\tchecktype=connect\n";
        f.sysctl.insert("net.ipv4.ip_forward".into(), 1);
        let (blocks, text) = run(text, &f);
        assert!(!blocks, "{text}");
        assert!(text.contains("WARN  FTP through NAT"), "{text}");
        assert!(
            text.contains("WARN  VIP 10.0.0.100 is held only on lo"),
            "{text}"
        );
        assert!(
            text.contains("info  IPVS sync daemon: master on br0, syncid 7"),
            "{text}"
        );
        assert!(text.contains("ok    net.ipv4.ip_forward=1 (NAT)"), "{text}");
    }

    #[test]
    fn fwmark_and_unreadable_facts_are_said_not_guessed() {
        let mut f = ready();
        f.addresses = None;
        f.routes.clear();
        f.sync = Sync::NotRead("ip_vs is not loaded".into());
        f.notes.push("addresses: permission denied".into());
        let (blocks, text) = run(
            "virtual=1\n\treal=10.0.0.11 gate\n\tscheduler=wlc\n\tchecktype=connect\n",
            &f,
        );
        assert!(!blocks, "{text}");
        assert!(text.contains("info  sync daemon state not read: ip_vs is not loaded"));
        assert!(text.contains("info  not checked: addresses: permission denied"));
    }

    #[test]
    fn datapath_checks_need_accept_local_for_dr() {
        let text = format!("{DR}\tcheckdatapath=yes\n");
        let mut f = ready();
        let (blocks, out) = run(&text, &f);
        assert!(blocks, "{out}");
        assert!(
            out.contains(
                "FAIL  checkdatapath (/etc/ha.d/t.cf:1): real servers answer the check from the VIP"
            ),
            "{out}"
        );
        assert!(
            out.contains("fix: sysctl -w net.ipv4.conf.br0.accept_local=1"),
            "{out}"
        );
        f.sysctl.insert("net.ipv4.conf.br0.accept_local".into(), 1);
        let (blocks, out) = run(&text, &f);
        assert!(!blocks, "{out}");
        assert!(
            out.contains("ok    checks through the data path: accept_local is on for br0"),
            "{out}"
        );
        // without checkdatapath, nothing is said about it
        let (_, out) = run(DR, &ready());
        assert!(!out.contains("accept_local"), "{out}");
    }

    #[test]
    fn datapath_checks_and_strict_rp_filter() {
        let text = format!("{DR}\tcheckdatapath=yes\n");
        let mut f = ready();
        f.sysctl.insert("net.ipv4.conf.br0.accept_local".into(), 1);
        f.sysctl.insert("net.ipv4.conf.all.rp_filter".into(), 1);
        // the VIP on the interface the answers come in on: strict mode lets them through
        let (blocks, out) = run(&text, &f);
        assert!(!blocks, "{out}");
        assert!(!out.contains("rp_filter"), "{out}");
        // the VIP on lo: they fail the reverse-path test
        if let Some(a) = f.addresses.as_mut() {
            a.retain(|a| a.addr != "10.0.0.100".parse::<IpAddr>().unwrap());
            a.push(LocalAddress {
                dev: "lo".into(),
                addr: "10.0.0.100".parse().unwrap(),
                prefix_len: 32,
            });
        }
        let (blocks, out) = run(&text, &f);
        assert!(blocks, "{out}");
        assert_eq!(
            out.matches("rp_filter").count(),
            2,
            "one finding, one fix: {out}"
        );
        assert!(
            out.contains("FAIL  checkdatapath (/etc/ha.d/t.cf:1): br0 has strict rp_filter and the VIP 10.0.0.100 is not on br0"),
            "{out}"
        );
        assert!(
            out.contains("fix: sysctl -w net.ipv4.conf.br0.rp_filter=2 (loose)"),
            "{out}"
        );
        // loose mode on the interface wins over strict `all`
        f.sysctl.insert("net.ipv4.conf.br0.rp_filter".into(), 2);
        let (blocks, out) = run(&text, &f);
        assert!(!blocks, "{out}");
        // and without checkdatapath nothing is said about rp_filter
        f.sysctl.insert("net.ipv4.conf.br0.rp_filter".into(), 1);
        let (_, out) = run(DR, &f);
        assert!(!out.contains("rp_filter"), "{out}");
    }

    #[test]
    fn effective_values_follow_the_kernel() {
        let mut f = Facts::empty();
        f.sysctl.insert("net.ipv4.conf.all.rp_filter".into(), 1);
        f.sysctl.insert("net.ipv4.conf.eth0.rp_filter".into(), 2);
        f.sysctl.insert("net.ipv4.conf.all.accept_local".into(), 0);
        f.sysctl.insert("net.ipv4.conf.eth0.accept_local".into(), 1);
        assert_eq!(f.effective_max("eth0", "rp_filter"), Some(2));
        assert_eq!(f.effective_max("eth1", "rp_filter"), Some(1));
        assert_eq!(f.effective_or("eth0", "accept_local"), Some(true));
        assert_eq!(f.effective_or("eth1", "accept_local"), Some(false));
        assert_eq!(f.effective_or("eth1", "nothing"), None);
    }
}
