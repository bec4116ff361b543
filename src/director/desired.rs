//! `desired(config, health) -> Desired`: the kernel table the configuration asks for, given
//! what the director believes about each real server. Pure; [`crate::ipvs::plan`] turns the
//! difference with the kernel into ops.
//!
//! Per real server (Perl `_restore_service` / `_remove_service`):
//! * up, or not yet checked but found serving: present with the configured weight, method
//!   and thresholds;
//! * down with `quiescent=no`: absent;
//! * down with `quiescent=yes`: weight 0 (no thresholds, as Perl's `-e … -w 0` leaves it);
//!   added at weight 0 when missing only with `readdquiescent=yes`;
//! * not yet checked and found at weight 0: left at weight 0 if still there.
//!
//! The fallback server (weight 1) is present while no real server of the virtual is live,
//! and absent as soon as one is. While some real server has not been checked yet and none
//! is live, a fallback found in the kernel is kept but none is added: the first check
//! decides, so a restart neither flaps the fallback nor runs `fallbackcommand` for nothing.

use crate::config::Config;
use crate::ipvs::{Desired, DesiredService, Dest, ServiceKey};

use super::layout::{Layout, VirtualLayout};
use super::state::{Adopted, Health, RealState};

/// Whether a virtual needs its fallback (and which `fallbackcommand` argument applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackNeed {
    /// Some real server is live: fallback out, `fallbackcommand stop`.
    Off,
    /// Nothing live, but not every real server has been checked: keep what is there.
    Undecided,
    /// No real server is live: fallback in, `fallbackcommand start`.
    On,
}

impl FallbackNeed {
    pub fn of(states: &[RealState]) -> FallbackNeed {
        if states.iter().any(|s| s.health.is_live()) {
            FallbackNeed::Off
        } else if states
            .iter()
            .any(|s| matches!(s.health, Health::Pending(_)))
        {
            FallbackNeed::Undecided
        } else {
            FallbackNeed::On
        }
    }
}

/// The desired table for every service `config` manages, plus `retired` services (of an
/// earlier configuration) to delete. `states[v][r]` is real `r` of virtual `v`.
pub fn desired(
    config: &Config,
    layout: &Layout,
    states: &[Vec<RealState>],
    retired: &[ServiceKey],
) -> Desired {
    let mut services = Vec::with_capacity(layout.virtuals.len());
    for (vi, v) in layout.virtuals.iter().enumerate() {
        if !layout.owns_service(vi) {
            continue;
        }
        let (Some(cv), Some(states)) = (config.virtuals.get(vi), states.get(vi)) else {
            continue;
        };
        services.push(desired_service(
            v,
            states,
            cv.quiescent,
            config.global.readdquiescent,
        ));
    }
    services.extend(layout.datapath.desired());
    Desired {
        services,
        remove: retired.to_vec(),
    }
}

fn desired_service(
    v: &VirtualLayout,
    states: &[RealState],
    quiescent: bool,
    readdquiescent: bool,
) -> DesiredService {
    let mut out = DesiredService::new(v.service.clone());
    out.dests.reserve(v.reals.len() + 1);
    for (real, state) in v.reals.iter().zip(states) {
        let quiesced = || Dest {
            weight: 0,
            upper_threshold: 0,
            lower_threshold: 0,
            ..real.dest.clone()
        };
        match state.health {
            Health::Up | Health::Pending(Adopted::Serving) => out.dests.push(real.dest.clone()),
            Health::Pending(Adopted::Quiesced) => out.if_present.push(quiesced()),
            Health::Pending(Adopted::Absent) => {}
            Health::Down if !quiescent => {}
            Health::Down if readdquiescent => out.dests.push(quiesced()),
            Health::Down => out.if_present.push(quiesced()),
        }
    }
    if let Some(fallback) = &v.fallback {
        let key = fallback.key();
        let taken = out
            .dests
            .iter()
            .chain(&out.if_present)
            .any(|d| d.key() == key);
        if !taken {
            match FallbackNeed::of(states) {
                FallbackNeed::Off => {}
                FallbackNeed::Undecided => out.if_present.push(fallback.clone()),
                FallbackNeed::On => out.dests.push(fallback.clone()),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FakeHost, parse_str};
    use crate::ipvs::{Table, plan};
    use std::path::Path;
    use tokio::time::Instant;

    fn config(extra: &str) -> Config {
        let text = format!(
            "{extra}\nvirtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate 5 l:1 u:9\n\treal=10.0.0.3:80 gate 2\n\tfallback=127.0.0.1:80 gate\n"
        );
        parse_str(&text, Path::new("/t.cf"), &FakeHost::default())
            .unwrap()
            .config
    }

    fn states(h: &[Health]) -> Vec<Vec<RealState>> {
        let now = Instant::now();
        vec![h.iter().map(|h| RealState::new(*h, now)).collect()]
    }

    fn ops(config: &Config, h: &[Health]) -> Vec<String> {
        let layout = Layout::new(config);
        let d = desired(config, &layout, &states(h), &[]);
        plan(&d, &Table::default())
            .iter()
            .map(|o| o.to_string())
            .collect()
    }

    use Health::*;

    #[test]
    fn every_combination_of_quiescent_and_readd() {
        // (global lines, health of both reals, expected dests after programming an empty
        // kernel: "addr weight")
        let cases: &[(&str, [Health; 2], &[&str])] = &[
            ("", [Up, Up], &["10.0.0.2:80 5", "10.0.0.3:80 2"]),
            ("", [Up, Down], &["10.0.0.2:80 5"]),
            ("", [Down, Down], &["127.0.0.1:80 1"]),
            ("quiescent=yes", [Up, Down], &["10.0.0.2:80 5"]),
            (
                "quiescent=yes\nreaddquiescent=yes",
                [Up, Down],
                &["10.0.0.2:80 5", "10.0.0.3:80 0"],
            ),
            (
                "quiescent=yes\nreaddquiescent=yes",
                [Down, Down],
                &["10.0.0.2:80 0", "10.0.0.3:80 0", "127.0.0.1:80 1"],
            ),
            ("", [Pending(Adopted::Serving), Down], &["10.0.0.2:80 5"]),
            ("", [Pending(Adopted::Absent), Down], &[]),
            ("", [Pending(Adopted::Quiesced), Down], &[]),
            ("", [Pending(Adopted::Absent), Up], &["10.0.0.3:80 2"]),
        ];
        for (extra, health, want) in cases {
            let config = config(extra);
            let layout = Layout::new(&config);
            let d = desired(&config, &layout, &states(health), &[]);
            let got: Vec<String> = d.services[0]
                .dests
                .iter()
                .map(|d| format!("{} {}", d.key(), d.weight))
                .collect();
            assert_eq!(got, *want, "{extra:?} {health:?}");
        }
    }

    #[test]
    fn quiesced_dests_drop_thresholds_as_perl_does() {
        let c = config("quiescent=yes\nreaddquiescent=yes");
        let layout = Layout::new(&c);
        let d = desired(&c, &layout, &states(&[Down, Up]), &[]);
        let q = &d.services[0].dests[0];
        assert_eq!((q.weight, q.upper_threshold, q.lower_threshold), (0, 0, 0));
        let d = desired(&c, &layout, &states(&[Up, Up]), &[]);
        let up = &d.services[0].dests[0];
        assert_eq!(
            (up.weight, up.upper_threshold, up.lower_threshold),
            (5, 9, 1)
        );
    }

    #[test]
    fn undecided_keeps_a_fallback_found_in_the_kernel_but_adds_none() {
        let c = config("");
        let layout = Layout::new(&c);
        let d = desired(&c, &layout, &states(&[Pending(Adopted::Absent), Down]), &[]);
        assert!(d.services[0].dests.is_empty());
        assert_eq!(
            d.services[0].if_present[0].key().to_string(),
            "127.0.0.1:80"
        );
        assert_eq!(
            FallbackNeed::of(&states(&[Pending(Adopted::Absent), Down])[0]),
            FallbackNeed::Undecided
        );
        assert_eq!(
            FallbackNeed::of(&states(&[Pending(Adopted::Serving), Down])[0]),
            FallbackNeed::Off
        );
        assert_eq!(
            FallbackNeed::of(&states(&[Down, Down])[0]),
            FallbackNeed::On
        );
    }

    #[test]
    fn retired_services_are_removed() {
        let c = config("");
        let layout = Layout::new(&c);
        let old = ServiceKey::tcp("10.0.0.100".parse().unwrap(), 443);
        let d = desired(&c, &layout, &states(&[Up, Up]), &[old]);
        assert_eq!(d.remove, [old]);
        assert_eq!(ops(&c, &[Up, Up]).len(), 3);
    }
}
