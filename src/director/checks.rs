//! The seam between the director and whatever runs health checks.
//!
//! The director says which real servers must be checked ([`HealthChecks::set`]); results
//! come back as [`Observation`]s on a channel. One observation may serve several real
//! servers: identical checks run once (the check engine shares them, as the Perl daemon
//! shares real ids), and the director applies the result to each.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::check::{self, Engine, Jitter, Outcome, Report, ScheduledCheck, Scheduler};
use crate::config::{Endpoint, Real, Virtual};

use super::check_spec::check_spec;
use super::layout::RealId;
use super::state::{Probe, Reason, Verdict};

/// One check result, for every real server that shares the check.
#[derive(Debug, Clone)]
pub struct Observation {
    pub reals: Arc<[RealId]>,
    pub probe: Probe,
}

impl Observation {
    pub fn one(real: RealId, probe: Probe) -> Observation {
        Observation {
            reals: Arc::from([real]),
            probe,
        }
    }
}

/// One real server to check, with its virtual.
#[derive(Debug, Clone, Copy)]
pub struct WantedCheck<'a> {
    pub id: RealId,
    pub virtual_server: &'a Virtual,
    pub real: &'a Real,
    /// Check through the data path: the firewall mark of the real server's data-path
    /// service (see [`super::datapath`]), which the kernel has.
    pub datapath: Option<u32>,
}

/// The check of `w`, sent to the VIP with the data-path mark when it has one.
pub fn wanted_spec(w: &WantedCheck<'_>) -> Result<check::CheckSpec, super::CheckSpecError> {
    let mut spec = check_spec(w.virtual_server, w.real)?;
    if let (Some(mark), Endpoint::Addr { addr, .. }) = (w.datapath, w.virtual_server.endpoint) {
        spec.target.datapath = Some(check::spec::DataPath {
            mark,
            real: spec.target.addr,
        });
        spec.target.addr = addr.ip();
    }
    Ok(spec)
}

/// Runs checks on their schedule and sends each result as an [`Observation`] to the
/// channel the director was given with it.
pub trait HealthChecks: Send + 'static {
    /// Replaces the set of checks (start, reload; empty at stop). A check that is in both
    /// the old and the new set keeps running on its schedule.
    fn set(&mut self, wanted: &[WantedCheck<'_>]);
}

/// Runs nothing: results arrive only from whoever holds the observation sender (tests,
/// or a caller that runs its own checks).
#[derive(Debug, Default, Clone, Copy)]
pub struct ExternalChecks;

impl HealthChecks for ExternalChecks {
    fn set(&mut self, _wanted: &[WantedCheck<'_>]) {}
}

/// The check engine (`crate::check`): one scheduled task per distinct check, identical
/// checks shared, each on its virtual's `checkinterval` with jitter.
pub struct EngineChecks {
    engine: Engine,
    jitter: Jitter,
    /// Where results go; also used to report checks that cannot be built.
    observations: mpsc::Sender<Observation>,
    /// Started inside the runtime, at the first `set`.
    running: Option<(Scheduler<RealId>, JoinHandle<()>)>,
}

/// Results in flight between the engine and the director.
const CHANNEL: usize = 4096;

impl EngineChecks {
    /// The engine's checker and the receiver the director reads its results from.
    pub fn new(engine: Engine, jitter: Jitter) -> (EngineChecks, mpsc::Receiver<Observation>) {
        let (observations, rx) = mpsc::channel(CHANNEL);
        let checks = EngineChecks {
            engine,
            jitter,
            observations,
            running: None,
        };
        (checks, rx)
    }

    /// The scheduler, and a task that turns its reports into observations.
    fn start(&self) -> (Scheduler<RealId>, JoinHandle<()>) {
        let (reports, mut rx) = mpsc::channel::<Report<RealId>>(CHANNEL);
        let observations = self.observations.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(report) = rx.recv().await {
                let observation = Observation {
                    reals: report.tags,
                    probe: probe(&report.outcome),
                };
                if observations.send(observation).await.is_err() {
                    return; // the director is gone
                }
            }
        });
        let scheduler = Scheduler::new(self.engine.clone(), self.jitter, reports);
        (scheduler, forwarder)
    }
}

impl HealthChecks for EngineChecks {
    fn set(&mut self, wanted: &[WantedCheck<'_>]) {
        let mut checks = Vec::with_capacity(wanted.len());
        for w in wanted {
            match wanted_spec(w) {
                Ok(spec) => checks.push(ScheduledCheck {
                    spec,
                    interval: w.virtual_server.check.checkinterval,
                    tag: w.id,
                }),
                Err(e) => {
                    tracing::error!(real = %w.id, error = %e, "cannot check this real server; it counts as down");
                    let probe = Probe {
                        verdict: Verdict::Down(Reason::new("unsupported", e.to_string())),
                        latency: Duration::ZERO,
                    };
                    let _ = self.observations.try_send(Observation::one(w.id, probe));
                }
            }
        }
        let (mut scheduler, forwarder) = self.running.take().unwrap_or_else(|| self.start());
        scheduler.set(checks);
        self.running = Some((scheduler, forwarder));
    }
}

impl Drop for EngineChecks {
    fn drop(&mut self) {
        // Dropping the scheduler stops the check tasks; the forwarder goes with them.
        if let Some((_, forwarder)) = self.running.take() {
            forwarder.abort();
        }
    }
}

/// The director's view of a check outcome.
pub fn probe(outcome: &Outcome) -> Probe {
    let verdict = match &outcome.verdict {
        check::Verdict::Up => Verdict::Up,
        check::Verdict::Skipped => Verdict::Skipped,
        check::Verdict::Down(failure) => Verdict::Down(Reason {
            kind: failure.kind.name().to_owned(),
            code: failure.kind.code(),
            detail: failure.detail.clone(),
        }),
    };
    Probe {
        verdict,
        latency: outcome.latency,
    }
}
