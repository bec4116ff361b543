//! Which ARP settings keep an LVS-DR real server from answering for the VIP: pure rules
//! over the values read from `/proc/sys`.
//!
//! The kernel consults the larger of `conf/all/<knob>` and `conf/<iface>/<knob>` for both
//! `arp_ignore` and `arp_announce` (`IN_DEV_MAXCONF`), so `all` covers every interface,
//! present and future, unless an interface's own value is larger and wrong:
//!
//! * `arp_ignore`: 1 (reply only for addresses of the incoming interface), 2 (and only
//!   to senders of its subnet) and 8 (never reply) keep the VIP on the loopback silent.
//!   0 and 4–7 reply for it; 3 replies for every address not of host scope, which the
//!   VIP (global scope) is not.
//! * `arp_announce`: only 2 makes the real server pick a source address of the outgoing
//!   interface for its own ARP requests instead of the VIP; values above 2 count as 0.
//!
//! `default` is what interfaces created later start with; it is judged like an interface.
//! IPv6 needs nothing: neighbour discovery answers only for addresses of the interface a
//! solicitation arrived on.

use super::sysctl::{ArpValues, ConfKey, Knob};

/// `arp_ignore` values that keep a VIP on the loopback silent.
pub fn ignore_ok(value: i64) -> bool {
    matches!(value, 1 | 2 | 8)
}

/// `arp_announce` values that keep the VIP out of the real server's own ARP requests.
pub fn announce_ok(value: i64) -> bool {
    value == 2
}

fn knob_ok(knob: Knob, value: i64) -> bool {
    match knob {
        Knob::ArpIgnore => ignore_ok(value),
        Knob::ArpAnnounce => announce_ok(value),
    }
}

/// The value `start` writes where one is needed.
pub fn wanted(knob: Knob) -> i64 {
    match knob {
        Knob::ArpIgnore => 1,
        Knob::ArpAnnounce => 2,
    }
}

/// The loopback never sends or answers ARP, and `all` is judged through the others.
fn judged(iface: &str) -> bool {
    iface != "all" && iface != "lo"
}

/// One write `start` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpChange {
    pub key: ConfKey,
    pub from: i64,
    pub to: i64,
}

/// The fewest writes that make every interface's effective values right: `all` when it
/// is not right by itself (so later interfaces are covered too), then each interface
/// whose own larger value would still win. Values that are already right are kept, even
/// when they differ from what `start` would write (an `arp_ignore` of 2 stays 2).
pub fn changes(values: &ArpValues) -> Vec<ArpChange> {
    let mut out = Vec::new();
    for knob in [Knob::ArpIgnore, Knob::ArpAnnounce] {
        let all_now = values.0.get("all").map_or(0, |k| k.get(knob));
        let all = if knob_ok(knob, all_now) {
            all_now
        } else {
            if let Ok(key) = ConfKey::new("all", knob) {
                out.push(ArpChange {
                    key,
                    from: all_now,
                    to: wanted(knob),
                });
            }
            wanted(knob)
        };
        for (iface, knobs) in values.0.iter().filter(|(i, _)| judged(i)) {
            let own = knobs.get(knob);
            if !knob_ok(knob, own.max(all))
                && let Ok(key) = ConfKey::new(iface, knob)
            {
                // `all` is right now, so the interface's value only has to stop winning.
                out.push(ArpChange {
                    key,
                    from: own,
                    to: wanted(knob),
                });
            }
        }
    }
    out
}

/// An interface whose effective value lets it answer (or announce) for the VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpProblem {
    pub key: ConfKey,
    /// The interface's own value.
    pub own: i64,
    /// `all`'s value.
    pub all: i64,
}

impl ArpProblem {
    pub fn effective(&self) -> i64 {
        self.own.max(self.all)
    }

    /// The smallest fix by hand.
    pub fn fix(&self) -> String {
        let knob = self.key.knob();
        let target = if knob_ok(knob, self.all) {
            self.key.clone()
        } else {
            ConfKey::new("all", knob).unwrap_or_else(|_| self.key.clone())
        };
        format!("sysctl -w {target}={}", wanted(knob))
    }
}

/// Every interface (and `default`) whose effective settings are wrong for LVS-DR.
pub fn problems(values: &ArpValues) -> Vec<ArpProblem> {
    let mut out = Vec::new();
    for knob in [Knob::ArpIgnore, Knob::ArpAnnounce] {
        let all = values.0.get("all").map_or(0, |k| k.get(knob));
        for (iface, knobs) in values.0.iter().filter(|(i, _)| judged(i)) {
            let own = knobs.get(knob);
            if !knob_ok(knob, own.max(all))
                && let Ok(key) = ConfKey::new(iface, knob)
            {
                out.push(ArpProblem { key, own, all });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::sysctl::ArpKnobs;
    use super::*;

    fn values(entries: &[(&str, i64, i64)]) -> ArpValues {
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

    fn apply(v: &ArpValues, changes: &[ArpChange]) -> ArpValues {
        let mut v = v.clone();
        for c in changes {
            let k = v.0.get_mut(c.key.iface()).unwrap();
            assert_eq!(k.get(c.key.knob()), c.from);
            match c.key.knob() {
                Knob::ArpIgnore => k.ignore = c.to,
                Knob::ArpAnnounce => k.announce = c.to,
            }
        }
        v
    }

    fn names(changes: &[ArpChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| format!("{}={}", c.key, c.to))
            .collect()
    }

    #[test]
    fn a_fresh_host_needs_only_all() {
        let v = values(&[
            ("all", 0, 0),
            ("default", 0, 0),
            ("lo", 0, 0),
            ("eth0", 0, 0),
        ]);
        assert_eq!(problems(&v).len(), 4);
        let c = changes(&v);
        assert_eq!(
            names(&c),
            [
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2"
            ]
        );
        assert!(problems(&apply(&v, &c)).is_empty());
        assert!(changes(&apply(&v, &c)).is_empty(), "idempotent");
    }

    #[test]
    fn an_interface_whose_own_value_wins_is_set_too() {
        // eth1's 3 beats all=1 (3 answers for global addresses); eth2's announce 5 counts as 0
        let v = values(&[
            ("all", 0, 0),
            ("eth0", 0, 0),
            ("eth1", 3, 0),
            ("eth2", 1, 5),
        ]);
        let c = changes(&v);
        assert_eq!(
            names(&c),
            [
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.eth1.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
                "net.ipv4.conf.eth2.arp_announce=2",
            ]
        );
        assert!(problems(&apply(&v, &c)).is_empty());
    }

    #[test]
    fn right_values_are_kept_even_if_different() {
        let v = values(&[("all", 2, 2), ("eth0", 8, 0), ("default", 0, 0)]);
        assert!(changes(&v).is_empty());
        assert!(problems(&v).is_empty());
        // per-interface settings alone protect the interfaces there are, not later ones
        let v = values(&[
            ("all", 0, 0),
            ("eth0", 1, 2),
            ("default", 0, 0),
            ("lo", 0, 0),
        ]);
        let p = problems(&v);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| p.key.iface() == "default"));
        assert_eq!(p[0].fix(), "sysctl -w net.ipv4.conf.all.arp_ignore=1");
    }

    #[test]
    fn every_value_is_judged_like_the_kernel() {
        let ok: Vec<i64> = (-1..=10).filter(|v| ignore_ok(*v)).collect();
        assert_eq!(ok, [1, 2, 8]);
        let ok: Vec<i64> = (-1..=10).filter(|v| announce_ok(*v)).collect();
        assert_eq!(ok, [2]);
        for all in -1..=10 {
            for own in -1..=10 {
                let v = values(&[("all", all, all), ("eth0", own, own)]);
                let after = apply(&v, &changes(&v));
                assert!(problems(&after).is_empty(), "all={all} eth0={own}");
            }
        }
    }
}
