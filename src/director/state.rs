//! The per-real state machine: what one check result does to one real server of one
//! virtual service (Perl `service_set`, `_service_up`, `_service_down`). Pure: the caller
//! turns the resulting [`Step`] into log lines, and the desired table follows [`Health`].
//!
//! Perl semantics kept:
//! * up: the failure counter goes to 0 (logging `Resetting soft failure count` if it was
//!   above 0); a real that was not up comes up.
//! * down: ignored while the real is already down (the counter does not move). Otherwise
//!   the counter goes up; below `failurecount` it is a soft failure and nothing changes;
//!   at `failurecount` the real goes down.
//! * maintenance: forced down at once, whatever the counter (Perl's `force`).
//! * skipped (`checktype=off`): nothing changes.
//!
//! One difference, deliberately: the Perl daemon starts every real from the kernel table by
//! forcing it up and then down again (reference §6-5). Here a real starts
//! [`Health::Pending`] with what the kernel had ([`Adopted`]) and keeps exactly that until
//! its first check answers, so a restart changes nothing in the kernel by itself.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// A down verdict's reason, as a check reports it. Serialised like the checker's failure:
/// `{"kind": "status", "code": 500, "detail": "500 Internal Server Error"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// Stable machine name (`refused`, `connect-timeout`, `status`, `maintenance`, …).
    pub kind: String,
    /// HTTP status or exit status, for the kinds that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// For humans.
    pub detail: String,
}

impl Reason {
    pub fn new(kind: impl Into<String>, detail: impl Into<String>) -> Reason {
        Reason {
            kind: kind.into(),
            code: None,
            detail: detail.into(),
        }
    }

    /// The Perl monitor-file text for a real found in the maintenance directory.
    pub fn maintenance() -> Reason {
        Reason::new("maintenance", "Server in maintenance")
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.detail.is_empty(), self.code) {
            (true, Some(code)) => write!(f, "{} {code}", self.kind),
            (true, None) => f.write_str(&self.kind),
            (false, _) => write!(f, "{}: {}", self.kind, self.detail),
        }
    }
}

/// What one check run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Up,
    Down(Reason),
    /// `checktype=off`: nothing was checked, nothing may change.
    Skipped,
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Up => "up",
            Verdict::Down(_) => "down",
            Verdict::Skipped => "skipped",
        }
    }
}

/// A check result with its duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub verdict: Verdict,
    pub latency: Duration,
}

impl Probe {
    pub fn up() -> Probe {
        Probe {
            verdict: Verdict::Up,
            latency: Duration::ZERO,
        }
    }

    pub fn down(kind: &str, detail: &str) -> Probe {
        Probe {
            verdict: Verdict::Down(Reason::new(kind, detail)),
            latency: Duration::ZERO,
        }
    }
}

/// What the kernel held for a real server when the director took it over (start, or a
/// reload that added it or changed its check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Adopted {
    /// Present with a weight above 0: it keeps serving, with the configured settings.
    Serving,
    /// Present at weight 0: it stays quiesced.
    Quiesced,
    /// Not in the kernel: it stays out.
    Absent,
}

/// The director's belief about a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No check has answered yet; the kernel entry is kept as found.
    Pending(Adopted),
    Up,
    Down,
}

impl Health {
    /// Carries traffic, for the fallback decision (quiesced reals count as down, as in
    /// Perl).
    pub fn is_live(self) -> bool {
        matches!(self, Health::Up | Health::Pending(Adopted::Serving))
    }

    /// Counts as up for `failurecount` (Perl forced these up at start).
    fn counts_as_up(self) -> bool {
        self.is_live()
    }

    pub fn name(self) -> &'static str {
        match self {
            Health::Pending(_) => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The state of one real server in one virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealState {
    pub health: Health,
    /// Consecutive failed checks while up (Perl `failcount`).
    pub failures: u32,
    /// When `health` last changed (or the real was taken over).
    pub since: Instant,
    /// The last check result and when it arrived.
    pub last: Option<(Instant, Probe)>,
    /// Found in the maintenance directory at the last check.
    pub maintenance: bool,
}

/// What an observation did, for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing worth a log line.
    Unchanged,
    /// A failed check below `failurecount`: `Soft failure real server: … failure n/m`.
    SoftFailure { count: u32, of: u32 },
    /// An up verdict cleared earlier soft failures: `Resetting soft failure count: …`.
    Reset { count: u32 },
    /// Health changed; `reset` carries the soft failures an up verdict cleared.
    Changed {
        from: Health,
        to: Health,
        reset: Option<u32>,
    },
}

/// What a check result means once the maintenance directory has been consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Probe(Probe),
    /// A file in the maintenance directory names the real (the check is not run).
    Maintenance,
}

impl RealState {
    pub fn new(health: Health, now: Instant) -> RealState {
        RealState {
            health,
            failures: 0,
            since: now,
            last: None,
            maintenance: false,
        }
    }

    /// Applies one result. `failurecount` is the virtual's effective value.
    pub fn observe(&mut self, input: Input, failurecount: u32, now: Instant) -> Step {
        let probe = match input {
            Input::Maintenance => {
                self.maintenance = true;
                self.last = Some((
                    now,
                    Probe {
                        verdict: Verdict::Down(Reason::maintenance()),
                        latency: Duration::ZERO,
                    },
                ));
                // Perl's forced down: the counter moves but is not consulted.
                self.failures = self.failures.saturating_add(1);
                return self.set(Health::Down, None, now);
            }
            Input::Probe(probe) => probe,
        };
        self.maintenance = false;
        let verdict = probe.verdict.clone();
        if verdict != Verdict::Skipped {
            self.last = Some((now, probe));
        }
        match verdict {
            Verdict::Skipped => Step::Unchanged,
            Verdict::Up => {
                let cleared = std::mem::take(&mut self.failures);
                let reset = (cleared > 0).then_some(cleared);
                if self.health == Health::Up {
                    return match reset {
                        Some(count) => Step::Reset { count },
                        None => Step::Unchanged,
                    };
                }
                self.set(Health::Up, reset, now)
            }
            Verdict::Down(_) => {
                if !self.health.counts_as_up() {
                    // Already down (or found down): Perl ignores the verdict entirely.
                    return match self.health {
                        Health::Pending(_) => self.set(Health::Down, None, now),
                        _ => Step::Unchanged,
                    };
                }
                self.failures = self.failures.saturating_add(1);
                if self.failures < failurecount {
                    return Step::SoftFailure {
                        count: self.failures,
                        of: failurecount,
                    };
                }
                self.set(Health::Down, None, now)
            }
        }
    }

    fn set(&mut self, to: Health, reset: Option<u32>, now: Instant) -> Step {
        let from = self.health;
        if from == to {
            return Step::Unchanged;
        }
        self.health = to;
        self.since = now;
        Step::Changed { from, to, reset }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: Health, failurecount: u32, inputs: &[&str]) -> (Health, u32, Vec<Step>) {
        let now = Instant::now();
        let mut s = RealState::new(start, now);
        let steps = inputs
            .iter()
            .map(|i| {
                let input = match *i {
                    "up" => Input::Probe(Probe::up()),
                    "down" => Input::Probe(Probe::down("refused", "")),
                    "skip" => Input::Probe(Probe {
                        verdict: Verdict::Skipped,
                        latency: Duration::ZERO,
                    }),
                    "maint" => Input::Maintenance,
                    other => panic!("{other}"),
                };
                s.observe(input, failurecount, now)
            })
            .collect();
        (s.health, s.failures, steps)
    }

    use Health::*;

    fn changed(from: Health, to: Health) -> Step {
        Step::Changed {
            from,
            to,
            reset: None,
        }
    }

    #[test]
    fn table_of_transitions() {
        let serving = Pending(Adopted::Serving);
        let quiesced = Pending(Adopted::Quiesced);
        let absent = Pending(Adopted::Absent);
        // (start, failurecount, inputs, final health, final failures)
        let cases: &[(Health, u32, &[&str], Health, u32)] = &[
            (Up, 1, &["down"], Down, 1),
            (Up, 0, &["down"], Down, 1),
            (Up, 3, &["down", "down"], Up, 2),
            (Up, 3, &["down", "down", "down"], Down, 3),
            (Up, 3, &["down", "down", "up", "down", "down"], Up, 2),
            (Down, 3, &["down", "down", "down", "down"], Down, 0),
            (Down, 1, &["up"], Up, 0),
            (serving, 2, &["down"], serving, 1),
            (serving, 2, &["down", "down"], Down, 2),
            (serving, 1, &["up"], Up, 0),
            (quiesced, 3, &["down"], Down, 0),
            (absent, 3, &["down"], Down, 0),
            (absent, 3, &["up"], Up, 0),
            (Up, 5, &["maint"], Down, 1),
            (Down, 5, &["maint", "maint"], Down, 2),
            (Down, 5, &["maint", "up"], Up, 0),
            (Up, 1, &["skip", "skip"], Up, 0),
            (absent, 1, &["skip"], absent, 0),
        ];
        for (start, fc, inputs, health, failures) in cases {
            let (h, f, _) = run(*start, *fc, inputs);
            assert_eq!((h, f), (*health, *failures), "{start:?} fc={fc} {inputs:?}");
        }
    }

    #[test]
    fn steps_carry_what_perl_logs() {
        let (_, _, steps) = run(Up, 3, &["down", "down", "up", "down", "down", "down"]);
        assert_eq!(
            steps,
            [
                Step::SoftFailure { count: 1, of: 3 },
                Step::SoftFailure { count: 2, of: 3 },
                Step::Reset { count: 2 },
                Step::SoftFailure { count: 1, of: 3 },
                Step::SoftFailure { count: 2, of: 3 },
                changed(Up, Down),
            ]
        );
        let (_, _, steps) = run(Pending(Adopted::Serving), 3, &["down", "up"]);
        assert_eq!(
            steps[1],
            Step::Changed {
                from: Pending(Adopted::Serving),
                to: Up,
                reset: Some(1)
            }
        );
    }

    #[test]
    fn skipped_keeps_the_last_real_result() {
        let now = Instant::now();
        let mut s = RealState::new(Up, now);
        s.observe(Input::Probe(Probe::up()), 1, now);
        s.observe(
            Input::Probe(Probe {
                verdict: Verdict::Skipped,
                latency: Duration::ZERO,
            }),
            1,
            now,
        );
        assert_eq!(s.last.unwrap().1.verdict, Verdict::Up);
    }

    #[test]
    fn reason_display() {
        assert_eq!(
            Reason::maintenance().to_string(),
            "maintenance: Server in maintenance"
        );
        let r = Reason {
            kind: "status".into(),
            code: Some(500),
            detail: String::new(),
        };
        assert_eq!(r.to_string(), "status 500");
    }
}
