//! What to change, and what is wrong: pure functions over the facts read from the host
//! and the record of what `start` changed before.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::addresses::HostAddress;
use super::arp::{self, ArpChange, ArpProblem};
use super::state::{OwnedAddress, State};
use super::sysctl::{ArpValues, ConfKey, Knob};
use super::vip::Vip;

/// The host as read just now.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub addresses: Vec<HostAddress>,
    pub arp: ArpValues,
}

/// Where a VIP stands on the interface meant to hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDev {
    Present,
    Missing,
    /// Held with a shorter prefix: the whole subnet around the VIP is local, so the real
    /// server can no longer reach its neighbours in it.
    WidePrefix(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipStatus {
    pub vip: Vip,
    pub dev: String,
    pub on_dev: OnDev,
    /// Added by `start` (and so removed by `stop`).
    pub owned: bool,
    /// Other interfaces holding the VIP: they answer ARP (IPv4) or neighbour solicitations
    /// (IPv6) for it, and the real server takes the VIP's traffic from the director.
    pub elsewhere: Vec<String>,
}

impl VipStatus {
    pub fn ok(&self) -> bool {
        self.on_dev == OnDev::Present && self.elsewhere.is_empty()
    }
}

/// `status`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub vips: Vec<VipStatus>,
    /// `None` when no VIP is IPv4 (ARP does not matter then).
    pub arp: Option<Vec<ArpProblem>>,
}

impl Status {
    pub fn ok(&self) -> bool {
        self.vips.iter().all(VipStatus::ok) && self.arp.as_ref().is_none_or(Vec::is_empty)
    }

    /// One line per finding: `ok …` or `FAIL …` followed by an indented `fix: …`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for v in &self.vips {
            let owner = if v.owned {
                " (added by ldirectord realserver start)"
            } else {
                ""
            };
            match v.on_dev {
                OnDev::Present => {
                    let _ = writeln!(out, "ok    {} on {}{owner}", v.vip, v.dev);
                }
                OnDev::Missing => {
                    let _ = writeln!(out, "FAIL  {} is not on {}", v.vip, v.dev);
                    let _ = writeln!(
                        out,
                        "      fix: ldirectord realserver start {}{}",
                        v.vip.addr(),
                        dev_option(&v.dev)
                    );
                }
                OnDev::WidePrefix(p) => {
                    let _ = writeln!(
                        out,
                        "FAIL  {} is on {} as /{p}: every address of that /{p} is local to this host",
                        v.vip.addr(),
                        v.dev
                    );
                    let _ = writeln!(
                        out,
                        "      fix: ip address del {}/{p} dev {}; ldirectord realserver start {}{}",
                        v.vip.addr(),
                        v.dev,
                        v.vip.addr(),
                        dev_option(&v.dev)
                    );
                }
            }
            for other in &v.elsewhere {
                let what = if v.vip.is_ipv4() {
                    "ARP requests"
                } else {
                    "neighbour solicitations"
                };
                let _ = writeln!(
                    out,
                    "FAIL  {} is also on {other}, which answers {what} for it: this host takes the VIP's traffic from the director",
                    v.vip.addr()
                );
                let _ = writeln!(
                    out,
                    "      fix: remove it from {other} (ip address del {} dev {other})",
                    v.vip.addr()
                );
            }
        }
        match &self.arp {
            None => {}
            Some(problems) if problems.is_empty() => {
                let _ = writeln!(
                    out,
                    "ok    ARP: no interface answers or announces for addresses it does not hold (arp_ignore, arp_announce)"
                );
            }
            Some(problems) => render_arp(&mut out, problems),
        }
        out
    }
}

/// One line per knob and fix: with `all` wrong, every interface shares one fix.
fn render_arp(out: &mut String, problems: &[ArpProblem]) {
    let mut groups: Vec<(String, Vec<&ArpProblem>)> = Vec::new();
    for p in problems {
        let fix = p.fix();
        match groups.iter_mut().find(|(f, _)| *f == fix) {
            Some((_, members)) => members.push(p),
            None => groups.push((fix, vec![p])),
        }
    }
    for (fix, members) in groups {
        let knob = members[0].key.knob();
        let mut members = members;
        // the interfaces there are first, then the ones to come
        members.sort_by_key(|p| p.key.iface() == "default");
        let values: Vec<String> = members
            .iter()
            .map(|p| match p.key.iface() {
                "default" => format!("interfaces created later={}", p.effective()),
                iface => format!("{iface}={}", p.effective()),
            })
            .collect();
        let harm = match knob {
            Knob::ArpIgnore => {
                "ARP requests for the VIP are answered, and its traffic taken from the director"
            }
            Knob::ArpAnnounce => "the VIP may be announced in this host's own ARP requests",
        };
        let _ = writeln!(
            out,
            "FAIL  {}: {} (in effect, with all={}): {harm}",
            knob.file_name(),
            values.join(", "),
            members[0].all
        );
        let _ = writeln!(out, "      fix: {fix} (or: ldirectord realserver start)");
    }
}

fn dev_option(dev: &str) -> String {
    if dev == "lo" {
        String::new()
    } else {
        format!(" --dev {dev}")
    }
}

fn vip_status(vip: Vip, dev: &str, facts: &Facts, state: Option<&State>) -> VipStatus {
    let holders: Vec<&HostAddress> = facts
        .addresses
        .iter()
        .filter(|a| a.addr == vip.addr())
        .collect();
    let on_dev = holders
        .iter()
        .filter(|a| a.dev == dev)
        .map(|a| a.prefix_len)
        .max()
        .map_or(OnDev::Missing, |p| {
            if p == vip.prefix_len() {
                OnDev::Present
            } else {
                OnDev::WidePrefix(p)
            }
        });
    let mut elsewhere: Vec<String> = holders
        .iter()
        .filter(|a| a.dev != dev && a.dev != "lo")
        .map(|a| a.dev.clone())
        .collect();
    elsewhere.dedup();
    VipStatus {
        vip,
        dev: dev.to_string(),
        on_dev,
        owned: state.is_some_and(|s| s.owns_address(dev, vip.addr(), vip.prefix_len())),
        elsewhere,
    }
}

/// Is every VIP on `dev` as a host address, held nowhere else, and is ARP right?
pub fn status(vips: &[Vip], dev: &str, facts: &Facts, state: Option<&State>) -> Status {
    Status {
        vips: vips
            .iter()
            .map(|v| vip_status(*v, dev, facts, state))
            .collect(),
        arp: vips
            .iter()
            .any(|v| v.is_ipv4())
            .then(|| arp::problems(&facts.arp)),
    }
}

/// `start`: the ARP writes (made first, so the VIP never appears on a host that still
/// answers ARP for it) and the VIPs to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartPlan {
    pub arp: Vec<ArpChange>,
    pub add: Vec<Vip>,
    pub before: Status,
}

pub fn plan_start(vips: &[Vip], dev: &str, facts: &Facts, state: &State) -> StartPlan {
    let before = status(vips, dev, facts, Some(state));
    StartPlan {
        arp: if before.arp.is_some() {
            arp::changes(&facts.arp)
        } else {
            Vec::new()
        },
        add: before
            .vips
            .iter()
            .filter(|v| v.on_dev == OnDev::Missing)
            .map(|v| v.vip)
            .collect(),
        before,
    }
}

/// A sysctl `stop` puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub key: ConfKey,
    pub from: i64,
    pub to: i64,
}

/// A sysctl `start` changed that `stop` leaves as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// Someone wrote another value since: theirs wins.
    ChangedSince { key: ConfKey, set: i64, now: i64 },
    /// The interface is gone, and its settings with it.
    InterfaceGone { key: ConfKey },
}

/// `stop`: the addresses to remove (first), then the sysctls to restore once no VIP
/// added by `start` remains.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopPlan {
    pub remove: Vec<OwnedAddress>,
    /// Added by `start` but removed by someone else since: only forgotten.
    pub gone: Vec<OwnedAddress>,
    /// Asked for, but `start` did not add them (they were there before): left alone.
    pub not_ours: Vec<IpAddr>,
    pub restore: Vec<Restore>,
    pub left: Vec<Left>,
    /// Sysctls kept because VIPs added by `start` remain.
    pub kept_for: Vec<OwnedAddress>,
}

/// `vips`: the VIPs to take away; `None` = everything `start` added.
pub fn plan_stop(vips: Option<&[Vip]>, facts: &Facts, state: &State) -> StopPlan {
    let wanted = |a: &OwnedAddress| vips.is_none_or(|v| v.iter().any(|v| v.addr() == a.addr));
    let mut plan = StopPlan::default();
    for owned in &state.addresses {
        if !wanted(owned) {
            plan.kept_for.push(owned.clone());
            continue;
        }
        let present = facts.addresses.iter().any(|a| {
            a.dev == owned.dev && a.addr == owned.addr && a.prefix_len == owned.prefix_len
        });
        if present {
            plan.remove.push(owned.clone());
        } else {
            plan.gone.push(owned.clone());
        }
    }
    for v in vips.unwrap_or_default() {
        if !state.addresses.iter().any(|a| a.addr == v.addr()) {
            plan.not_ours.push(v.addr());
        }
    }
    if !plan.kept_for.is_empty() {
        return plan;
    }
    for owned in &state.sysctls {
        let Ok(key) = owned.key() else { continue };
        match facts.arp.get(&key) {
            None => plan.left.push(Left::InterfaceGone { key }),
            Some(now) if now == owned.set => plan.restore.push(Restore {
                key,
                from: now,
                to: owned.previous,
            }),
            // already back where it was: nothing to do
            Some(now) if now == owned.previous => {}
            Some(now) => plan.left.push(Left::ChangedSince {
                key,
                set: owned.set,
                now,
            }),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::super::sysctl::ArpKnobs;
    use super::*;

    fn vips(s: &str) -> Vec<Vip> {
        super::super::vip::parse_vips(&[s]).unwrap()
    }

    fn addr(dev: &str, a: &str, p: u8) -> HostAddress {
        HostAddress {
            dev: dev.into(),
            index: 0,
            addr: a.parse().unwrap(),
            prefix_len: p,
        }
    }

    fn arp(entries: &[(&str, i64, i64)]) -> ArpValues {
        ArpValues(
            entries
                .iter()
                .map(|(i, ignore, announce)| {
                    (
                        i.to_string(),
                        ArpKnobs {
                            ignore: *ignore,
                            announce: *announce,
                        },
                    )
                })
                .collect(),
        )
    }

    fn fresh_host() -> Facts {
        Facts {
            addresses: vec![addr("lo", "127.0.0.1", 8), addr("eth0", "10.0.0.11", 24)],
            arp: arp(&[
                ("all", 0, 0),
                ("default", 0, 0),
                ("lo", 0, 0),
                ("eth0", 0, 0),
            ]),
        }
    }

    #[test]
    fn a_fresh_host_needs_everything() {
        let facts = fresh_host();
        let plan = plan_start(
            &vips("10.0.0.100,fd00::100"),
            "lo",
            &facts,
            &State::default(),
        );
        assert_eq!(plan.add, vips("10.0.0.100,fd00::100"));
        assert_eq!(plan.arp.len(), 2);
        assert!(!plan.before.ok());
        insta::assert_snapshot!(plan.before.render(), @r"
        FAIL  10.0.0.100/32 is not on lo
              fix: ldirectord realserver start 10.0.0.100
        FAIL  fd00::100/128 is not on lo
              fix: ldirectord realserver start fd00::100
        FAIL  arp_ignore: eth0=0, interfaces created later=0 (in effect, with all=0): ARP requests for the VIP are answered, and its traffic taken from the director
              fix: sysctl -w net.ipv4.conf.all.arp_ignore=1 (or: ldirectord realserver start)
        FAIL  arp_announce: eth0=0, interfaces created later=0 (in effect, with all=0): the VIP may be announced in this host's own ARP requests
              fix: sysctl -w net.ipv4.conf.all.arp_announce=2 (or: ldirectord realserver start)
        ");
    }

    #[test]
    fn an_interface_whose_own_value_wins_gets_its_own_fix() {
        let mut facts = fresh_host();
        facts.arp = arp(&[
            ("all", 1, 2),
            ("default", 0, 0),
            ("eth0", 3, 0),
            ("eth1", 0, 0),
        ]);
        let s = status(&vips("10.0.0.100"), "lo", &facts, None);
        insta::assert_snapshot!(s.render(), @r"
        FAIL  10.0.0.100/32 is not on lo
              fix: ldirectord realserver start 10.0.0.100
        FAIL  arp_ignore: eth0=3 (in effect, with all=1): ARP requests for the VIP are answered, and its traffic taken from the director
              fix: sysctl -w net.ipv4.conf.eth0.arp_ignore=1 (or: ldirectord realserver start)
        ");
    }

    #[test]
    fn ipv6_only_leaves_arp_alone() {
        let plan = plan_start(&vips("fd00::100"), "lo", &fresh_host(), &State::default());
        assert!(plan.arp.is_empty());
        assert_eq!(plan.before.arp, None);
    }

    #[test]
    fn a_prepared_host_needs_nothing_and_says_who_added_what() {
        let mut facts = fresh_host();
        facts.addresses.push(addr("lo", "10.0.0.100", 32));
        facts.arp = arp(&[
            ("all", 1, 2),
            ("default", 0, 0),
            ("lo", 0, 0),
            ("eth0", 0, 0),
        ]);
        let mut state = State::default();
        state.record_address("lo", "10.0.0.100".parse().unwrap(), 32);
        let plan = plan_start(&vips("10.0.0.100"), "lo", &facts, &state);
        assert!(plan.add.is_empty() && plan.arp.is_empty());
        assert!(plan.before.ok());
        insta::assert_snapshot!(plan.before.render(), @r"
        ok    10.0.0.100/32 on lo (added by ldirectord realserver start)
        ok    ARP: no interface answers or announces for addresses it does not hold (arp_ignore, arp_announce)
        ");
    }

    #[test]
    fn conflicts_are_reported_not_touched() {
        let mut facts = fresh_host();
        facts.addresses.push(addr("lo", "10.0.0.100", 24));
        facts.addresses.push(addr("eth0", "10.0.0.101", 24));
        facts.arp = arp(&[("all", 1, 2), ("eth0", 0, 0)]);
        let plan = plan_start(
            &vips("10.0.0.100,10.0.0.101"),
            "lo",
            &facts,
            &State::default(),
        );
        assert_eq!(
            plan.add,
            vips("10.0.0.101"),
            "the wide one is not added over"
        );
        let s = &plan.before;
        assert_eq!(s.vips[0].on_dev, OnDev::WidePrefix(24));
        assert_eq!(s.vips[1].elsewhere, ["eth0"]);
        insta::assert_snapshot!(s.render(), @r"
        FAIL  10.0.0.100 is on lo as /24: every address of that /24 is local to this host
              fix: ip address del 10.0.0.100/24 dev lo; ldirectord realserver start 10.0.0.100
        FAIL  10.0.0.101/32 is not on lo
              fix: ldirectord realserver start 10.0.0.101
        FAIL  10.0.0.101 is also on eth0, which answers ARP requests for it: this host takes the VIP's traffic from the director
              fix: remove it from eth0 (ip address del 10.0.0.101 dev eth0)
        ok    ARP: no interface answers or announces for addresses it does not hold (arp_ignore, arp_announce)
        ");
    }

    fn started() -> (Facts, State) {
        let mut facts = fresh_host();
        facts.addresses.push(addr("lo", "10.0.0.100", 32));
        facts.addresses.push(addr("lo", "10.0.0.101", 32));
        facts.arp = arp(&[("all", 1, 2), ("eth0", 0, 0)]);
        let mut state = State::default();
        state.record_address("lo", "10.0.0.100".parse().unwrap(), 32);
        state.record_address("lo", "10.0.0.101".parse().unwrap(), 32);
        state.record_sysctl(&ConfKey::new("all", Knob::ArpIgnore).unwrap(), 0, 1);
        state.record_sysctl(&ConfKey::new("all", Knob::ArpAnnounce).unwrap(), 1, 2);
        (facts, state)
    }

    #[test]
    fn stop_all_removes_then_restores() {
        let (facts, state) = started();
        let plan = plan_stop(None, &facts, &state);
        assert_eq!(plan.remove, state.addresses);
        let restored: Vec<_> = plan
            .restore
            .iter()
            .map(|r| (r.key.to_string(), r.to))
            .collect();
        assert_eq!(
            restored,
            [
                ("net.ipv4.conf.all.arp_ignore".to_string(), 0),
                ("net.ipv4.conf.all.arp_announce".to_string(), 1)
            ]
        );
    }

    #[test]
    fn stop_some_keeps_arp_for_the_others() {
        let (facts, state) = started();
        let plan = plan_stop(Some(&vips("10.0.0.100,10.0.0.102")), &facts, &state);
        assert_eq!(plan.remove.len(), 1);
        assert_eq!(plan.not_ours, ["10.0.0.102".parse::<IpAddr>().unwrap()]);
        assert_eq!(plan.kept_for.len(), 1);
        assert!(plan.restore.is_empty());
    }

    #[test]
    fn stop_leaves_what_others_changed_since() {
        let (mut facts, state) = started();
        facts
            .addresses
            .retain(|a| a.addr != "10.0.0.101".parse::<IpAddr>().unwrap());
        // arp_ignore rewritten by someone (1 -> 2); arp_announce already put back (2 -> 1)
        facts.arp = arp(&[("all", 2, 1), ("eth0", 0, 0)]);
        let plan = plan_stop(None, &facts, &state);
        assert_eq!(plan.remove.len(), 1);
        assert_eq!(plan.gone.len(), 1);
        assert!(plan.restore.is_empty());
        assert_eq!(
            plan.left,
            [Left::ChangedSince {
                key: ConfKey::new("all", Knob::ArpIgnore).unwrap(),
                set: 1,
                now: 2
            }]
        );
        // an interface that went away takes its settings with it
        let mut state = state;
        state.record_sysctl(&ConfKey::new("eth1", Knob::ArpIgnore).unwrap(), 3, 1);
        let plan = plan_stop(None, &facts, &state);
        assert!(plan.left.contains(&Left::InterfaceGone {
            key: ConfKey::new("eth1", Knob::ArpIgnore).unwrap()
        }));
    }
}
