//! `plan(desired, actual) -> Vec<Op>`: the ordered changes that turn the kernel table into
//! the desired one. Pure: no I/O, no clock, so `ldirectord plan` can print it and tests
//! can check it without a kernel.
//!
//! Only what [`Desired`] names is looked at. A service of `actual` that `desired` neither
//! wants nor lists in [`Desired::remove`] is never touched (somebody else's service).
//!
//! The order is make-before-break, in three global phases:
//!
//! 1. everything that adds capacity or keeps it: new services, changed service settings,
//!    new destinations, edits that leave a destination's weight above zero (or raise it
//!    from zero);
//! 2. everything that takes capacity away: edits to weight 0 (quiescing), deleted
//!    destinations;
//! 3. deleted services.
//!
//! So within a service the fallback server goes in (phase 1) before the last real server
//! goes out (phase 2), and a recovered real server comes back (phase 1) before the fallback
//! leaves (phase 2): the service never has fewer live destinations than necessary.
//!
//! Inside a phase, ops follow the order of `desired` (services, then their destinations),
//! so a plan is deterministic and stable for snapshots.

use std::collections::{HashMap, HashSet};

use super::model::{Dest, DestKey, Forward, Service, ServiceKey, Table};
use super::op::Op;

/// What the table should look like, for the services the caller manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub services: Vec<DesiredService>,
    /// Services to delete if they are present (dropped by a reload, or a clean stop).
    /// A key that is also in `services` is kept.
    pub remove: Vec<ServiceKey>,
}

/// One managed service and its complete set of destinations: a destination of the
/// service that is in neither list is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    pub service: Service,
    /// Destinations that must be present, exactly like this.
    pub dests: Vec<Dest>,
    /// Destinations that must look like this *if* they are present, but are not added
    /// when missing (a quiesced real server with `readdquiescent=no`; a real server whose
    /// first check has not answered yet and that was found at weight 0).
    pub if_present: Vec<Dest>,
}

impl DesiredService {
    pub fn new(service: Service) -> DesiredService {
        DesiredService {
            service,
            dests: Vec::new(),
            if_present: Vec::new(),
        }
    }
}

/// The ops that make `actual` match `desired`, make-before-break (see the module doc).
pub fn plan(desired: &Desired, actual: &Table) -> Vec<Op> {
    let current: HashMap<ServiceKey, &(Service, Vec<Dest>)> = actual
        .services
        .iter()
        .map(|entry| (entry.0.key.canonical(), entry))
        .collect();

    let mut make = Vec::new();
    let mut brk = Vec::new();
    for want in &desired.services {
        let key = want.service.key;
        let Some((have_service, have_dests)) = current.get(&key.canonical()).map(|e| (&e.0, &e.1))
        else {
            make.push(Op::AddService(want.service.clone()));
            make.extend(want.dests.iter().map(|dest| Op::AddDest {
                service: key,
                dest: dest.clone(),
            }));
            continue;
        };
        if !want.service.same_config(have_service) {
            make.push(Op::EditService(want.service.clone()));
        }
        plan_dests(key, want, have_dests, &mut make, &mut brk);
    }

    let kept: HashSet<ServiceKey> = desired
        .services
        .iter()
        .map(|s| s.service.key.canonical())
        .collect();
    let mut removed = HashSet::new();
    let gone = desired.remove.iter().filter(|key| {
        let key = key.canonical();
        !kept.contains(&key) && current.contains_key(&key) && removed.insert(key)
    });
    brk.extend(gone.map(|key| Op::DelService(*key)));

    make.extend(brk);
    make
}

/// `table` as the kernel holds it once every op of `ops` has succeeded: what a reader
/// would get back, without reading. The kernel acknowledges each op it performed, so after
/// a batch with no failure this replaces a read-back; counters of new entries start at 0.
/// Ops that change no table entry (daemons, timeouts, zeroing counters) are ignored.
pub fn project(table: &mut Table, ops: &[Op]) {
    for op in ops {
        let position = |table: &Table, key: &ServiceKey| {
            table
                .services
                .iter()
                .position(|(s, _)| s.key.canonical() == key.canonical())
        };
        match op {
            Op::AddService(service) => {
                if position(table, &service.key).is_none() {
                    table.services.push((service.clone(), Vec::new()));
                }
            }
            Op::EditService(service) => {
                if let Some(i) = position(table, &service.key) {
                    let stats = table.services[i].0.stats;
                    table.services[i].0 = Service {
                        stats,
                        ..service.clone()
                    };
                }
            }
            Op::DelService(key) => {
                if let Some(i) = position(table, key) {
                    table.services.remove(i);
                }
            }
            Op::AddDest { service, dest } | Op::EditDest { service, dest } => {
                if let Some(i) = position(table, service) {
                    let dests = &mut table.services[i].1;
                    match dests.iter_mut().find(|d| d.key() == dest.key()) {
                        Some(have) => {
                            *have = Dest {
                                active_conns: have.active_conns,
                                inactive_conns: have.inactive_conns,
                                persist_conns: have.persist_conns,
                                stats: have.stats,
                                ..dest.clone()
                            };
                        }
                        None => dests.insert(0, dest.clone()),
                    }
                }
            }
            Op::DelDest { service, dest } => {
                if let Some(i) = position(table, service) {
                    table.services[i].1.retain(|d| d.key() != *dest);
                }
            }
            Op::Flush => table.services.clear(),
            Op::Zero(_) | Op::SetTimeouts(_) | Op::StartDaemon(_) | Op::StopDaemon(_) => {}
        }
    }
}

fn plan_dests(
    service: ServiceKey,
    want: &DesiredService,
    have: &[Dest],
    make: &mut Vec<Op>,
    brk: &mut Vec<Op>,
) {
    let have_by_key: HashMap<DestKey, &Dest> = have.iter().map(|d| (d.key(), d)).collect();
    let mut wanted: HashMap<DestKey, ()> =
        HashMap::with_capacity(want.dests.len() + want.if_present.len());

    let mut converge = |dest: &Dest, add_if_missing: bool| {
        let key = dest.key();
        if wanted.insert(key, ()).is_some() {
            // Listed twice: the first entry wins, as it would in the kernel.
            return;
        }
        match have_by_key.get(&key) {
            None if add_if_missing => make.push(Op::AddDest {
                service,
                dest: dest.clone(),
            }),
            None => {}
            Some(current) if same_dest(dest, current) => {}
            Some(current) => {
                let edit = Op::EditDest {
                    service,
                    dest: dest.clone(),
                };
                if dest.weight == 0 && current.weight > 0 {
                    brk.push(edit);
                } else {
                    make.push(edit);
                }
            }
        }
    };
    for dest in &want.dests {
        converge(dest, true);
    }
    for dest in &want.if_present {
        converge(dest, false);
    }
    // Deletions in the kernel's order of the service's destinations: deterministic for a
    // given table.
    brk.extend(
        have.iter()
            .filter(|d| !wanted.contains_key(&d.key()))
            .map(|d| Op::DelDest {
                service,
                dest: d.key(),
            }),
    );
}

/// Whether a destination needs no edit. Kernels before 2.6.37 reported destinations on a
/// local address as [`Forward::Local`] whatever they were added with; re-sending the
/// configured method would not change that, so it is accepted as equal rather than
/// edited on every pass.
fn same_dest(want: &Dest, have: &Dest) -> bool {
    if have.forward == Forward::Local {
        let mut want = want.clone();
        want.forward = Forward::Local;
        return want.same_config(have);
    }
    want.same_config(have)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::model::Forward;
    use crate::ipvs::{Backend, FakeKernel};
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn vip(port: u16) -> ServiceKey {
        ServiceKey::tcp("10.0.0.100".parse().unwrap(), port)
    }

    fn real(last: u8, weight: i32) -> Dest {
        Dest::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            80,
            Forward::Route,
            weight,
        )
    }

    fn svc(port: u16, dests: Vec<Dest>) -> DesiredService {
        DesiredService {
            service: Service::new(vip(port), "wrr"),
            dests,
            if_present: Vec::new(),
        }
    }

    fn table(entries: Vec<(u16, Vec<Dest>)>) -> Table {
        Table {
            services: entries
                .into_iter()
                .map(|(port, dests)| (Service::new(vip(port), "wrr"), dests))
                .collect(),
        }
    }

    fn names(ops: &[Op]) -> Vec<String> {
        ops.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn empty_kernel_gets_service_then_dests() {
        let desired = Desired {
            services: vec![svc(80, vec![real(1, 1), real(2, 2)])],
            remove: vec![],
        };
        assert_eq!(
            names(&plan(&desired, &Table::default())),
            [
                "add service TCP 10.0.0.100:80 (wrr)",
                "add real server 10.0.0.1:80 to TCP 10.0.0.100:80 (Route, weight 1)",
                "add real server 10.0.0.2:80 to TCP 10.0.0.100:80 (Route, weight 2)",
            ]
        );
    }

    #[test]
    fn equal_table_needs_nothing() {
        let desired = Desired {
            services: vec![svc(80, vec![real(1, 1)])],
            remove: vec![],
        };
        assert!(plan(&desired, &table(vec![(80, vec![real(1, 1)])])).is_empty());
    }

    #[test]
    fn fallback_goes_in_before_the_last_real_goes_out() {
        let fallback = Dest::new("127.0.0.1".parse().unwrap(), 80, Forward::Route, 1);
        let desired = Desired {
            services: vec![svc(80, vec![fallback.clone()])],
            remove: vec![],
        };
        let ops = plan(&desired, &table(vec![(80, vec![real(1, 1)])]));
        assert_eq!(
            names(&ops),
            [
                "add real server 127.0.0.1:80 to TCP 10.0.0.100:80 (Route, weight 1)",
                "delete real server 10.0.0.1:80 of TCP 10.0.0.100:80",
            ]
        );
        // And back: the real first, then the fallback out.
        let desired = Desired {
            services: vec![svc(80, vec![real(1, 1)])],
            remove: vec![],
        };
        let ops = plan(&desired, &table(vec![(80, vec![fallback])]));
        assert_eq!(
            names(&ops),
            [
                "add real server 10.0.0.1:80 to TCP 10.0.0.100:80 (Route, weight 1)",
                "delete real server 127.0.0.1:80 of TCP 10.0.0.100:80",
            ]
        );
    }

    #[test]
    fn quiescing_comes_after_every_addition_of_every_service() {
        let desired = Desired {
            services: vec![
                svc(80, vec![real(1, 0), real(2, 1)]),
                svc(443, vec![real(3, 1)]),
            ],
            remove: vec![],
        };
        let actual = table(vec![(80, vec![real(1, 5)]), (443, vec![])]);
        assert_eq!(
            names(&plan(&desired, &actual)),
            [
                "add real server 10.0.0.2:80 to TCP 10.0.0.100:80 (Route, weight 1)",
                "add real server 10.0.0.3:80 to TCP 10.0.0.100:443 (Route, weight 1)",
                "edit real server 10.0.0.1:80 of TCP 10.0.0.100:80 (Route, weight 0)",
            ]
        );
    }

    #[test]
    fn weight_changes_and_restores_are_make_ops() {
        let desired = Desired {
            services: vec![svc(80, vec![real(1, 3), real(2, 1)])],
            remove: vec![],
        };
        let actual = table(vec![(80, vec![real(1, 1), real(2, 0)])]);
        let ops = plan(&desired, &actual);
        assert_eq!(ops.len(), 2);
        assert!(ops.iter().all(|o| matches!(o, Op::EditDest { .. })));
    }

    #[test]
    fn unmanaged_services_and_their_dests_are_never_touched() {
        let desired = Desired {
            services: vec![svc(80, vec![real(1, 1)])],
            remove: vec![],
        };
        let actual = table(vec![(80, vec![real(1, 1)]), (8080, vec![real(9, 1)])]);
        assert!(plan(&desired, &actual).is_empty());
    }

    #[test]
    fn removed_services_go_last_and_only_if_present() {
        let desired = Desired {
            services: vec![svc(80, vec![real(1, 1)])],
            remove: vec![vip(443), vip(8443), vip(80)],
        };
        let actual = table(vec![(443, vec![real(1, 1)])]);
        assert_eq!(
            names(&plan(&desired, &actual)),
            [
                "add service TCP 10.0.0.100:80 (wrr)",
                "add real server 10.0.0.1:80 to TCP 10.0.0.100:80 (Route, weight 1)",
                "delete service TCP 10.0.0.100:443",
            ]
        );
    }

    #[test]
    fn if_present_dests_are_edited_but_never_added() {
        let mut want = svc(80, vec![]);
        want.if_present = vec![real(1, 0), real(2, 0)];
        let desired = Desired {
            services: vec![want],
            remove: vec![],
        };
        let actual = table(vec![(80, vec![real(1, 4)])]);
        assert_eq!(
            names(&plan(&desired, &actual)),
            ["edit real server 10.0.0.1:80 of TCP 10.0.0.100:80 (Route, weight 0)"]
        );
    }

    #[test]
    fn changed_service_settings_are_edited_in_place() {
        let mut want = svc(80, vec![real(1, 1)]);
        want.service = want.service.clone().persistent(300);
        let desired = Desired {
            services: vec![want],
            remove: vec![],
        };
        let actual = table(vec![(80, vec![real(1, 1)])]);
        assert_eq!(
            names(&plan(&desired, &actual)),
            ["edit service TCP 10.0.0.100:80 (wrr)"]
        );
    }

    #[test]
    fn local_forwarding_reported_by_old_kernels_is_not_an_edit() {
        let desired = Desired {
            services: vec![svc(80, vec![real(1, 1)])],
            remove: vec![],
        };
        let mut local = real(1, 1);
        local.forward = Forward::Local;
        assert!(plan(&desired, &table(vec![(80, vec![local])])).is_empty());
    }

    fn arb_dest() -> impl Strategy<Value = Dest> {
        (
            1u8..12,
            prop_oneof![Just(80u16), Just(8080)],
            0i32..4,
            0u8..3,
        )
            .prop_map(|(last, port, weight, fwd)| {
                let forward = [Forward::Route, Forward::Masq, Forward::Tunnel][fwd as usize];
                Dest::new(
                    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
                    port,
                    forward,
                    weight,
                )
            })
    }

    fn arb_service() -> impl Strategy<Value = (u16, Vec<Dest>)> {
        (
            prop_oneof![Just(80u16), Just(443), Just(8080)],
            proptest::collection::vec(arb_dest(), 0..6),
        )
    }

    fn dedup(entries: Vec<(u16, Vec<Dest>)>) -> Vec<(u16, Vec<Dest>)> {
        let mut out: Vec<(u16, Vec<Dest>)> = Vec::new();
        for (port, dests) in entries {
            if out.iter().any(|(p, _)| *p == port) {
                continue;
            }
            let mut seen = Vec::new();
            let dests = dests
                .into_iter()
                .filter(|d| {
                    let fresh = !seen.contains(&d.key());
                    seen.push(d.key());
                    fresh
                })
                .collect();
            out.push((port, dests));
        }
        out
    }

    fn live(table: &Table, key: ServiceKey) -> usize {
        table
            .services
            .iter()
            .find(|(s, _)| s.key == key)
            .map_or(0, |(_, d)| d.iter().filter(|d| d.weight > 0).count())
    }

    /// Services and their destinations with weights, in a canonical order.
    fn summary(table: &Table) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = table
            .services
            .iter()
            .map(|(s, dests)| {
                let mut d: Vec<String> = dests
                    .iter()
                    .map(|d| format!("{} {:?} {}", d.key(), d.forward, d.weight))
                    .collect();
                d.sort();
                (format!("{} {}", s.key, s.scheduler), d)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn projection_keeps_counters_and_ignores_missing_entries() {
        let mut t = table(vec![(80, vec![real(1, 1)])]);
        t.services[0].1[0].active_conns = 7;
        project(
            &mut t,
            &[
                Op::EditDest {
                    service: vip(80),
                    dest: real(1, 0),
                },
                Op::DelDest {
                    service: vip(81),
                    dest: real(1, 0).key(),
                },
                Op::AddDest {
                    service: vip(80),
                    dest: real(2, 3),
                },
            ],
        );
        assert_eq!(t.services[0].1.len(), 2);
        let one = t.services[0]
            .1
            .iter()
            .find(|d| d.key() == real(1, 0).key())
            .unwrap();
        assert_eq!((one.weight, one.active_conns), (0, 7));
    }

    proptest! {
        /// Applying the plan to a kernel that holds `actual` yields `desired` (for the
        /// managed services), leaves the rest alone, and never lets a kept service drop
        /// below min(live before, live after) live destinations on the way.
        #[test]
        fn applying_the_plan_converges_make_before_break(
            actual in proptest::collection::vec(arb_service(), 0..4),
            wanted in proptest::collection::vec(arb_service(), 0..4),
            foreign in proptest::collection::vec(arb_dest(), 0..3),
        ) {
            let actual = dedup(actual);
            let wanted = dedup(wanted);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut kernel = FakeKernel::new();
                let mut setup = Vec::new();
                for (port, dests) in &actual {
                    setup.push(Op::AddService(Service::new(vip(*port), "wrr")));
                    for d in dests {
                        setup.push(Op::AddDest { service: vip(*port), dest: d.clone() });
                    }
                }
                // A service nobody manages.
                let other = ServiceKey::udp("10.9.9.9".parse().unwrap(), 53);
                setup.push(Op::AddService(Service::new(other, "rr")));
                for d in &foreign {
                    setup.push(Op::AddDest { service: other, dest: d.clone() });
                }
                kernel.apply(&setup).await.unwrap();
                let before = kernel.snapshot();
                let desired = Desired {
                    services: wanted.iter().map(|(p, d)| svc(*p, d.clone())).collect(),
                    remove: actual.iter().map(|(p, _)| vip(*p)).collect(),
                };
                let ops = plan(&desired, &before);
                let mut floor = HashMap::new();
                for (port, dests) in &wanted {
                    let after = dests.iter().filter(|d| d.weight > 0).count();
                    floor.insert(vip(*port), live(&before, vip(*port)).min(after));
                }
                for op in &ops {
                    let results = kernel.apply(std::slice::from_ref(op)).await.unwrap();
                    prop_assert!(results[0].is_ok(), "{op} failed: {:?}", results[0]);
                    let now = kernel.snapshot();
                    for (key, min) in &floor {
                        prop_assert!(live(&now, *key) >= *min, "{op} left {key} below {min}");
                    }
                }
                let after = kernel.snapshot();
                prop_assert!(plan(&desired, &after).is_empty());
                // The projection of the acknowledged ops is what a read-back finds.
                let mut projected = before.clone();
                project(&mut projected, &ops);
                prop_assert!(plan(&desired, &projected).is_empty());
                prop_assert_eq!(summary(&projected), summary(&after));
                let foreign_before = before.services.iter().find(|(s, _)| s.key == other);
                let foreign_after = after.services.iter().find(|(s, _)| s.key == other);
                prop_assert_eq!(foreign_before, foreign_after);
                for (port, dests) in &wanted {
                    let (_, have) = after.services.iter().find(|(s, _)| s.key == vip(*port)).unwrap();
                    prop_assert_eq!(have.len(), dests.len());
                }
                Ok(())
            })?;
        }
    }
}
