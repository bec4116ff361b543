//! What only the run loop sees, counted for the Prometheus endpoint (`metrics=`, an
//! extension): check latencies, health changes and failed kernel changes.
//!
//! Everything else the endpoint shows (health, weights, the IPVS counters) is read at
//! scrape time from the status snapshot and the kernel, so the director's hook stays
//! three calls. No I/O here: the daemon serves and renders ([`MetricsSnapshot`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::ipvs::Op;

/// Upper bounds of the check-latency histogram, in seconds: a loopback check takes well
/// under a millisecond, a negotiate check against a slow server up to its timeout.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Shared between the director (which counts) and the endpoint (which reads).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<MetricsSnapshot>>,
}

/// A copy of every counter, for rendering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Check durations per (virtual id, `up`|`down`).
    pub checks: BTreeMap<(String, &'static str), Histogram>,
    /// Health changes per (virtual id, real, new health).
    pub changes: BTreeMap<(String, String, &'static str), u64>,
    /// Kernel changes that failed, per kind of op (`add-dest`, …).
    pub apply_errors: BTreeMap<&'static str, u64>,
    /// Kernel batches whose outcome is unknown (socket failure, deadline).
    pub apply_batch_errors: u64,
}

/// A Prometheus histogram: cumulative counts come from `buckets` at render time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket of [`LATENCY_BUCKETS`], not cumulative; the last entry is
    /// the overflow (`+Inf`).
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, value: f64) {
        let i = LATENCY_BUCKETS
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += value;
    }

    /// `(upper bound, cumulative count)`, ending with `+Inf`.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
        bounds.zip(self.buckets.iter().scan(0u64, |total, n| {
            *total += n;
            Some(*total)
        }))
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// One check result for one real of `virtual_id`.
    pub fn check(&self, virtual_id: &str, up: bool, latency: Duration) {
        let result = if up { "up" } else { "down" };
        self.with(|m| {
            m.checks
                .entry((virtual_id.to_owned(), result))
                .or_default()
                .observe(latency.as_secs_f64());
        });
    }

    /// A real server's health changed to `to` (`up`, `down`).
    pub fn change(&self, virtual_id: &str, real: &str, to: &'static str) {
        self.with(|m| {
            *m.changes
                .entry((virtual_id.to_owned(), real.to_owned(), to))
                .or_default() += 1;
        });
    }

    /// One op of a batch failed in the kernel.
    pub fn apply_error(&self, op: &Op) {
        self.with(|m| *m.apply_errors.entry(op_kind(op)).or_default() += 1);
    }

    /// A whole batch failed (its outcome is unknown).
    pub fn apply_batch_error(&self) {
        self.with(|m| m.apply_batch_errors += 1);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn with(&self, f: impl FnOnce(&mut MetricsSnapshot)) {
        // A panic elsewhere while holding the lock leaves plain counters behind: still valid.
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// The label of an op's kind.
pub fn op_kind(op: &Op) -> &'static str {
    match op {
        Op::AddService(_) => "add-service",
        Op::EditService(_) => "edit-service",
        Op::DelService(_) => "del-service",
        Op::AddDest { .. } => "add-dest",
        Op::EditDest { .. } => "edit-dest",
        Op::DelDest { .. } => "del-dest",
        Op::Zero(_) => "zero",
        Op::Flush => "flush",
        Op::SetTimeouts(_) => "set-timeouts",
        Op::StartDaemon(_) => "start-daemon",
        Op::StopDaemon(_) => "stop-daemon",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::{DaemonState, ServiceKey};

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut h = Histogram::default();
        for v in [0.0005, 0.002, 0.002, 0.3, 9.0] {
            h.observe(v);
        }
        let c: Vec<(f64, u64)> = h.cumulative().collect();
        assert_eq!(c.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(c[0], (0.001, 1));
        assert_eq!(c[1], (0.0025, 3));
        assert_eq!(c[8], (0.5, 4));
        assert_eq!(c[11], (5.0, 4));
        assert_eq!(c[12], (f64::INFINITY, 5));
        assert_eq!(h.count, 5);
        assert!((h.sum - 9.3045).abs() < 1e-9);
    }

    #[test]
    fn counts_by_label() {
        let m = Metrics::new();
        m.check("tcp:10.0.0.100:80", true, Duration::from_millis(3));
        m.check("tcp:10.0.0.100:80", true, Duration::from_millis(30));
        m.check("tcp:10.0.0.100:80", false, Duration::from_secs(3));
        m.change("tcp:10.0.0.100:80", "10.0.0.11:80", "down");
        m.change("tcp:10.0.0.100:80", "10.0.0.11:80", "down");
        m.apply_error(&Op::DelService(ServiceKey::fwmark(
            crate::ipvs::Family::Inet,
            1,
        )));
        m.apply_error(&Op::StopDaemon(DaemonState::Master));
        m.apply_batch_error();
        let s = m.snapshot();
        assert_eq!(s.checks[&("tcp:10.0.0.100:80".into(), "up")].count, 2);
        assert_eq!(s.checks[&("tcp:10.0.0.100:80".into(), "down")].count, 1);
        assert_eq!(
            s.changes[&("tcp:10.0.0.100:80".into(), "10.0.0.11:80".into(), "down")],
            2
        );
        assert_eq!(s.apply_errors["del-service"], 1);
        assert_eq!(s.apply_errors["stop-daemon"], 1);
        assert_eq!(s.apply_batch_errors, 1);
    }
}
