//! Running many checks: a global cap on checks in flight, identical checks run once, and a
//! scheduler that runs each check on its interval with jitter and reports over a channel.
//!
//! Identity: two [`CheckSpec`]s that compare equal are one check (see `spec` for why that is
//! stricter than the Perl id). The scheduler keeps one task per distinct spec; each report
//! carries the tags of every (virtual, real) pair that asked for it, so the director applies
//! one result to all of them, as the Perl `_ld_main_check_all` does.
//!
//! Time goes through tokio's clock, so tests drive intervals and jitter with paused time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::sleep;

use super::outcome::Outcome;
use super::random;
use super::run::{CheckState, run_once};
use super::spec::CheckSpec;

/// Default cap on checks in flight: well under the default `ulimit -n` of 1024 minus what
/// the daemon itself holds, and enough to finish 10,000 loopback checks within a second.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;

/// Runs checks under a global cap on how many are in flight. Cheap to clone; clones share
/// the cap.
#[derive(Clone, Debug)]
pub struct Engine {
    permits: Arc<Semaphore>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(DEFAULT_MAX_IN_FLIGHT)
    }
}

impl Engine {
    pub fn new(max_in_flight: usize) -> Engine {
        Engine {
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }

    /// Runs one check as soon as a slot is free. The check's deadline starts when it gets
    /// its slot, not while it queues.
    pub async fn run(&self, spec: &CheckSpec, state: &mut CheckState) -> Outcome {
        // The semaphore is never closed, so acquire cannot fail; if it ever did, running
        // the check unthrottled is better than not checking.
        let _permit = self.permits.acquire().await.ok();
        // Boxed, and only once a slot is free: the check's future (connect, TLS, HTTP) is
        // ~10 KB; inline, it would live in every caller's task between checks too, and
        // 10,000 reals waiting for a slot at start would hold 10,000 of them (100 MB).
        Box::pin(run_once(spec, state)).await
    }

    /// Runs every check once, concurrently, each distinct spec once; the outcomes come back
    /// in input order.
    // A spec's compiled regex caches matcher state inside, but equality and hashing use only
    // the pattern text, which never changes: keys are stable.
    #[allow(clippy::mutable_key_type)]
    pub async fn run_all(&self, specs: &[CheckSpec]) -> Vec<Outcome> {
        let mut distinct: HashMap<&CheckSpec, usize> = HashMap::new();
        let mut slot_of = Vec::with_capacity(specs.len());
        let mut unique = Vec::new();
        for spec in specs {
            let next = unique.len();
            let slot = *distinct.entry(spec).or_insert_with(|| {
                unique.push(Arc::new(spec.clone()));
                next
            });
            slot_of.push(slot);
        }
        // A JoinSet aborts whatever is left if this future is dropped. Tasks are spawned only
        // once they have a slot, so 10,000 checks are never 10,000 idle futures in memory.
        let mut results: Vec<Option<Outcome>> = vec![None; unique.len()];
        let mut set = JoinSet::new();
        let mut store = |joined: Result<(usize, Outcome), tokio::task::JoinError>| {
            if let Ok((slot, outcome)) = joined {
                results[slot] = Some(outcome);
            }
        };
        for (slot, spec) in unique.into_iter().enumerate() {
            let permit = self.permits.clone().acquire_owned().await.ok();
            while let Some(joined) = set.try_join_next() {
                store(joined);
            }
            set.spawn(async move {
                let outcome = run_once(&spec, &mut CheckState::default()).await;
                drop(permit);
                (slot, outcome)
            });
        }
        while let Some(joined) = set.join_next().await {
            store(joined);
        }
        slot_of
            .into_iter()
            .map(|slot| {
                results[slot].clone().unwrap_or_else(|| Outcome {
                    verdict: super::Verdict::Down(super::Failure::new(
                        super::FailureKind::Io,
                        "check task failed",
                    )),
                    latency: Duration::ZERO,
                })
            })
            .collect()
    }
}

/// One check the director wants run, tagged with whatever identifies its (virtual, real).
#[derive(Clone, Debug)]
pub struct ScheduledCheck<T> {
    pub spec: CheckSpec,
    /// Pause between the end of one run and the start of the next (`checkinterval`; the
    /// Perl daemon sleeps that long after each pass).
    pub interval: Duration,
    pub tag: T,
}

/// A check result, for every tag that shares the check.
#[derive(Clone, Debug)]
pub struct Report<T> {
    pub spec: Arc<CheckSpec>,
    pub tags: Arc<[T]>,
    pub outcome: Outcome,
    /// The verdict differs from this check's previous one (or it is the first).
    pub changed: bool,
}

/// How much the scheduler spreads checks in time.
#[derive(Clone, Copy, Debug)]
pub struct Jitter {
    /// Each pause is `interval - random(0..=fraction × interval)`, so checks configured
    /// together drift apart. The pause never exceeds the interval: a real server that dies
    /// is seen within `checkinterval` plus the check's own time, as with the Perl daemon.
    /// The first run starts at once, so a fresh start programs the table within one check.
    pub fraction: f64,
}

impl Default for Jitter {
    fn default() -> Self {
        Jitter { fraction: 0.1 }
    }
}

impl Jitter {
    fn spread(self, interval: Duration) -> Duration {
        interval.mul_f64(self.fraction.clamp(0.0, 1.0))
    }

    fn pause(self, interval: Duration) -> Duration {
        let spread = self.spread(interval).as_micros() as u64;
        interval.saturating_sub(Duration::from_micros(random::below(spread + 1)))
    }
}

struct Running<T> {
    handle: JoinHandle<()>,
    settings: watch::Sender<(Arc<[T]>, Duration)>,
}

/// Runs each distinct check on its own interval and sends every result to the director.
/// Dropping the scheduler stops every check task.
#[allow(clippy::mutable_key_type)] // see `Engine::run_all`
pub struct Scheduler<T> {
    engine: Engine,
    jitter: Jitter,
    reports: mpsc::Sender<Report<T>>,
    running: HashMap<CheckSpec, Running<T>>,
}

impl<T: Clone + Send + Sync + 'static> Scheduler<T> {
    pub fn new(engine: Engine, jitter: Jitter, reports: mpsc::Sender<Report<T>>) -> Scheduler<T> {
        Scheduler {
            engine,
            jitter,
            reports,
            running: HashMap::new(),
        }
    }

    /// Number of distinct checks being run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Replaces the set of checks (start, reload). A check whose spec is unchanged keeps
    /// running on its schedule with its state (combined-check count, last verdict); only
    /// its tags and interval are updated. New specs start, vanished ones stop.
    #[allow(clippy::mutable_key_type)] // see `Engine::run_all`
    pub fn set(&mut self, checks: Vec<ScheduledCheck<T>>) {
        let mut wanted: HashMap<CheckSpec, (Vec<T>, Duration)> = HashMap::new();
        for c in checks {
            let entry = wanted
                .entry(c.spec)
                .or_insert_with(|| (Vec::new(), c.interval));
            entry.0.push(c.tag);
            // Shared checks run as often as the most demanding virtual asks.
            entry.1 = entry.1.min(c.interval);
        }
        self.running.retain(|spec, running| {
            let keep = wanted.contains_key(spec);
            if !keep {
                running.handle.abort();
            }
            keep
        });
        for (spec, (tags, interval)) in wanted {
            let tags: Arc<[T]> = tags.into();
            match self.running.get(&spec) {
                Some(running) => {
                    running.settings.send_replace((tags, interval));
                }
                None => {
                    let (settings, watch) = watch::channel((tags, interval));
                    let handle = tokio::spawn(check_loop(
                        self.engine.clone(),
                        self.jitter,
                        Arc::new(spec.clone()),
                        watch,
                        self.reports.clone(),
                    ));
                    self.running.insert(spec, Running { handle, settings });
                }
            }
        }
    }
}

impl<T> Drop for Scheduler<T> {
    fn drop(&mut self) {
        for running in self.running.values() {
            running.handle.abort();
        }
    }
}

async fn check_loop<T: Clone + Send + Sync + 'static>(
    engine: Engine,
    jitter: Jitter,
    spec: Arc<CheckSpec>,
    settings: watch::Receiver<(Arc<[T]>, Duration)>,
    reports: mpsc::Sender<Report<T>>,
) {
    let mut state = CheckState::default();
    let mut last_up: Option<bool> = None;
    loop {
        let outcome = engine.run(&spec, &mut state).await;
        let changed = last_up != Some(outcome.is_up());
        last_up = Some(outcome.is_up());
        if changed {
            log_change(&spec, &outcome);
        }
        let (tags, interval) = settings.borrow().clone();
        let report = Report {
            spec: spec.clone(),
            tags,
            outcome,
            changed,
        };
        if reports.send(report).await.is_err() {
            return; // the director is gone
        }
        sleep(jitter.pause(interval)).await;
    }
}

fn log_change(spec: &CheckSpec, outcome: &Outcome) {
    let check = spec.kind.name();
    // A data-path check connects to the VIP; the operator wants to know which real server
    // it was about, and that it went through the VIP.
    let (real, datapath) = match spec.target.datapath {
        Some(d) => (
            SocketAddr::new(d.real, spec.target.port),
            Some(tracing::field::display(spec.target.socket_addr())),
        ),
        None => (spec.target.socket_addr(), None),
    };
    let latency_ms = outcome.latency.as_secs_f64() * 1000.0;
    match &outcome.verdict {
        super::Verdict::Down(f) => tracing::info!(
            %check, %real, datapath, verdict = "down", reason = f.kind.name(), detail = %f.detail, latency_ms,
            "check verdict changed"
        ),
        v => tracing::info!(
            %check, %real, datapath, verdict = if v.is_up() { "up" } else { "skipped" }, latency_ms,
            "check verdict changed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::spec::{CheckKind, Protocol, Target, Timeouts, TlsOptions};

    fn on(port: u16) -> CheckSpec {
        CheckSpec {
            kind: CheckKind::On,
            target: Target {
                addr: "127.0.0.1".parse().unwrap(),
                port,
                protocol: Protocol::Tcp,
                datapath: None,
            },
            timeouts: Timeouts::default(),
            check_count: 1,
            tls: TlsOptions::default(),
        }
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let j = Jitter::default();
        let i = Duration::from_secs(10);
        for _ in 0..1000 {
            let p = j.pause(i);
            assert!(
                p >= Duration::from_secs(9) && p <= Duration::from_secs(10),
                "{p:?}"
            );
        }
        assert_eq!(Jitter { fraction: 0.0 }.pause(i), i);
    }

    #[tokio::test(start_paused = true)]
    async fn identical_checks_run_once_and_report_to_every_tag() {
        let (tx, mut rx) = mpsc::channel(64);
        let mut s = Scheduler::new(Engine::new(4), Jitter { fraction: 0.0 }, tx);
        let interval = Duration::from_secs(10);
        s.set(vec![
            ScheduledCheck {
                spec: on(80),
                interval,
                tag: "v1/r1",
            },
            ScheduledCheck {
                spec: on(80),
                interval: Duration::from_secs(20),
                tag: "v2/r1",
            },
            ScheduledCheck {
                spec: on(81),
                interval,
                tag: "v1/r2",
            },
        ]);
        assert_eq!(s.len(), 2);
        let mut seen = Vec::new();
        for _ in 0..6 {
            let r = rx.recv().await.unwrap();
            seen.push((r.spec.target.port, r.tags.to_vec(), r.changed));
        }
        let port80: Vec<_> = seen.iter().filter(|s| s.0 == 80).collect();
        assert_eq!(port80.len(), 3);
        assert_eq!(port80[0].1, vec!["v1/r1", "v2/r1"]);
        assert!(port80[0].2 && !port80[1].2);
    }

    #[tokio::test(start_paused = true)]
    async fn intervals_follow_tokio_time_and_set_keeps_unchanged_checks() {
        let (tx, mut rx) = mpsc::channel(64);
        let mut s = Scheduler::new(Engine::new(4), Jitter { fraction: 0.0 }, tx);
        let interval = Duration::from_secs(10);
        s.set(vec![ScheduledCheck {
            spec: on(80),
            interval,
            tag: 1,
        }]);
        let start = tokio::time::Instant::now();
        for n in 0..3u32 {
            let _ = rx.recv().await.unwrap();
            assert_eq!(start.elapsed(), interval * n);
        }
        // Reload with the same spec and a new tag: same schedule, new tag, not "changed".
        s.set(vec![ScheduledCheck {
            spec: on(80),
            interval,
            tag: 2,
        }]);
        let r = rx.recv().await.unwrap();
        assert_eq!(start.elapsed(), interval * 3);
        assert_eq!(&*r.tags, &[2]);
        assert!(!r.changed);
        // Removing it stops it.
        s.set(vec![]);
        assert!(s.is_empty());
        tokio::time::sleep(interval * 5).await;
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn run_all_keeps_input_order_and_shares_identical_specs() {
        let engine = Engine::new(2);
        let specs = vec![
            on(1),
            on(2),
            on(1),
            CheckSpec {
                kind: CheckKind::Off,
                ..on(3)
            },
        ];
        let out = engine.run_all(&specs).await;
        assert_eq!(out.len(), 4);
        assert!(out[0].is_up() && out[1].is_up() && out[2].is_up());
        assert_eq!(out[3].verdict, super::super::Verdict::Skipped);
    }
}
