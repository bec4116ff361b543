//! What a start (or a reload) would change in the kernel table, computed without changing
//! anything: the engine of `ldirectord plan`.
//!
//! A start adopts the kernel table, so before any check has answered it changes only
//! services and the settings of servers found serving ([`Assume::Kernel`]). What follows
//! depends on the checks: [`Assume::Checked`] feeds each real server's first verdict (run
//! now, by the caller) through the same state machine the daemon uses, so failurecount
//! and quiescent apply as they would; [`Assume::Up`] pretends every checked real is up
//! (the table the configuration describes when all is well).

use std::collections::HashSet;

use tokio::time::Instant;

use crate::config::{CheckType, Config};
use crate::ipvs::{Backend, IpvsError, Op, ServiceKey, Table, plan};

use super::desired::desired;
use super::layout::Layout;
use super::maintenance::Maintenance;
use super::run::{adopt, read_services, weights};
use super::state::{Health, Input, Probe, RealState};

/// Which health the preview assumes for real servers.
#[derive(Debug, Clone)]
pub enum Assume {
    /// None checked yet: the first reconcile of a start.
    Kernel,
    /// Every real server that has a check is up.
    Up,
    /// These first verdicts, one per `(virtual index, real index)` (as
    /// [`crate::director::check_specs`] lists them); missing ones stay unchecked.
    Checked(Vec<(usize, usize, Probe)>),
}

/// The ops a start of `config` would apply to the kernel table `actual` under `assume`.
/// Pure; `maintenance` is consulted like the daemon does at each check.
pub fn preview(
    config: &Config,
    actual: &Table,
    assume: &Assume,
    maintenance: &Maintenance,
) -> Vec<Op> {
    let layout = Layout::new(config);
    let now = Instant::now();
    let mut states = adopt(config, &layout, &weights(actual), None, now);
    match assume {
        Assume::Kernel => {}
        Assume::Up => {
            for (vi, reals) in states.iter_mut().enumerate() {
                if config.virtuals[vi].check.checktype == CheckType::Off {
                    continue;
                }
                for state in reals {
                    state.health = Health::Up;
                }
            }
        }
        Assume::Checked(verdicts) => {
            for (vi, ri, probe) in verdicts {
                let (Some(v), Some(state)) = (
                    config.virtuals.get(*vi),
                    states.get_mut(*vi).and_then(|s| s.get_mut(*ri)),
                ) else {
                    continue;
                };
                let input = if maintenance.covers(&v.reals[*ri]) {
                    Input::Maintenance
                } else {
                    Input::Probe(probe.clone())
                };
                state.observe(input, v.check.failurecount, now);
            }
        }
    }
    plan(&desired(config, &layout, &states, &[]), actual)
}

/// Reads the services `config` manages from `backend` (and nothing else) and previews a
/// start against them.
pub async fn preview_start<B: Backend>(
    config: &Config,
    backend: &mut B,
    assume: &Assume,
) -> Result<Vec<Op>, IpvsError> {
    let keys: HashSet<ServiceKey> = Layout::new(config)
        .service_keys()
        .map(|k| k.canonical())
        .collect();
    let actual = read_services(backend, &keys).await?;
    let maintenance = Maintenance::new(config.global.maintenancedir.clone());
    Ok(preview(config, &actual, assume, &maintenance))
}

/// A reload preview: the states of `layout` carried into `config` as a reload would, then
/// planned against `actual` (which must hold the services of both configurations).
pub(crate) fn preview_reload(
    config: &Config,
    old: (&Layout, &[Vec<RealState>]),
    retired: &[ServiceKey],
    actual: &Table,
) -> Vec<Op> {
    let layout = Layout::new(config);
    let keep: HashSet<ServiceKey> = layout.service_keys().map(|k| k.canonical()).collect();
    let mut retired: Vec<ServiceKey> = retired.to_vec();
    for key in old.0.service_keys() {
        if !keep.contains(&key.canonical()) && !retired.contains(&key) {
            retired.push(key);
        }
    }
    retired.retain(|k| !keep.contains(&k.canonical()));
    let states = adopt(config, &layout, &weights(actual), Some(old), Instant::now());
    plan(&desired(config, &layout, &states, &retired), actual)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FakeHost, parse_str};
    use crate::ipvs::{Dest, FakeKernel, Forward, Service};
    use std::path::Path;

    fn config(text: &str) -> Config {
        parse_str(text, Path::new("/t.cf"), &FakeHost::default())
            .unwrap()
            .config
    }

    const CF: &str = "virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 gate 3\n\tchecktype=connect\n\tfallback=127.0.0.1:80\n";

    fn names(ops: &[Op]) -> Vec<String> {
        ops.iter().map(ToString::to_string).collect()
    }

    #[tokio::test]
    async fn start_on_an_empty_kernel_under_each_assumption() {
        let c = config(CF);
        let mut kernel = FakeKernel::new();
        assert_eq!(
            names(
                &preview_start(&c, &mut kernel, &Assume::Kernel)
                    .await
                    .unwrap()
            ),
            ["add service TCP 10.0.0.100:80 (wrr)"]
        );
        assert_eq!(
            names(&preview_start(&c, &mut kernel, &Assume::Up).await.unwrap()),
            [
                "add service TCP 10.0.0.100:80 (wrr)",
                "add real server 10.0.0.2:80 to TCP 10.0.0.100:80 (Route, weight 1)",
                "add real server 10.0.0.3:80 to TCP 10.0.0.100:80 (Route, weight 3)",
            ]
        );
        let checked = Assume::Checked(vec![
            (0, 0, Probe::down("refused", "")),
            (0, 1, Probe::down("refused", "")),
        ]);
        assert_eq!(
            names(&preview_start(&c, &mut kernel, &checked).await.unwrap()),
            [
                "add service TCP 10.0.0.100:80 (wrr)",
                "add real server 127.0.0.1:80 to TCP 10.0.0.100:80 (Route, weight 1)",
            ]
        );
        assert!(kernel.journal().is_empty(), "a preview changes nothing");
    }

    #[tokio::test]
    async fn start_over_a_running_table_only_shows_real_changes() {
        let c = config(CF);
        let mut kernel = FakeKernel::new();
        let svc = ServiceKey::tcp("10.0.0.100".parse().unwrap(), 80);
        let dest = |last: &str, w| Dest::new(last.parse().unwrap(), 80, Forward::Route, w);
        kernel
            .apply(&[
                Op::AddService(Service::new(svc, "wrr")),
                Op::AddDest {
                    service: svc,
                    dest: dest("10.0.0.2", 1),
                },
                Op::AddDest {
                    service: svc,
                    dest: dest("10.0.0.3", 1),
                },
                Op::AddDest {
                    service: svc,
                    dest: dest("10.0.0.9", 1),
                },
            ])
            .await
            .unwrap();
        let ops = preview_start(&c, &mut kernel, &Assume::Kernel)
            .await
            .unwrap();
        assert_eq!(
            names(&ops),
            [
                "edit real server 10.0.0.3:80 of TCP 10.0.0.100:80 (Route, weight 3)",
                "delete real server 10.0.0.9:80 of TCP 10.0.0.100:80",
            ]
        );
    }
}
