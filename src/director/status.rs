//! The status snapshot the director publishes after every change: what `ldirectord status`
//! shows. Plain data with `Serialize`, so the control socket can send it as JSON as is.
//!
//! Times are wall-clock RFC 3339 (UTC, milliseconds), computed from tokio's clock against
//! one wall-clock reading taken when the director started ([`Clock`]), so they are stable
//! under paused time in tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::time::Instant;

use super::state::Reason;

/// Where the director is in its life (Perl's daemon status, used by `emailalertstatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// From start until every real server has answered its first check.
    Starting,
    Running,
    /// While a reload is being applied.
    Reloading,
    Stopping,
    /// `run` has returned.
    Stopped,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Reloading => "reloading",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
        }
    }
}

/// The whole snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The configuration file in effect.
    pub config_file: String,
    pub phase: Phase,
    /// The kernel table has been adopted and programmed once: the daemon may report
    /// readiness (sd_notify `READY=1`).
    pub ready: bool,
    /// `last reload failed: <located error>`, set by [`Command::ReloadFailed`]
    /// (see [`super::Command`]) and cleared by the next successful reload.
    pub last_reload_error: Option<String>,
    /// Configurations applied: 1 once the start is done, one more per applied reload.
    pub generation: u64,
    pub kernel: KernelStatus,
    pub virtuals: Vec<VirtualStatus>,
}

impl Status {
    /// An empty snapshot for a daemon that has not started the director yet.
    pub fn new(config_file: impl Into<String>) -> Status {
        Status {
            config_file: config_file.into(),
            phase: Phase::Starting,
            ready: false,
            last_reload_error: None,
            generation: 0,
            kernel: KernelStatus::default(),
            virtuals: Vec::new(),
        }
    }
}

/// How the kernel table relates to what the director wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KernelStatus {
    /// The last time the managed part of the table was read back equal to the desired one.
    pub last_sync: Option<String>,
    /// The table was equal to the desired one at the last read-back.
    pub in_sync: bool,
    /// Changes that were still missing at the last read-back (they are retried).
    pub pending_changes: usize,
    /// The last failure talking to the kernel, with the op and errno; cleared once in sync.
    pub last_error: Option<String>,
    /// With `syncdaemon=`: the sync daemons running (`master on eth0 (syncid 7)`).
    pub sync_daemons: Vec<String>,
}

/// One virtual service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualStatus {
    /// Perl virtual id: `tcp:10.0.0.100:80`, `fwm:7`.
    pub id: String,
    /// The kernel service, as ipvsadm names it: `TCP 10.0.0.100:80`.
    pub service: String,
    /// `file:line` of the `virtual=` line.
    pub location: String,
    pub scheduler: String,
    pub checktype: String,
    /// The service exists in the kernel.
    pub in_kernel: bool,
    pub reals: Vec<RealStatus>,
    pub fallback: Option<FallbackStatus>,
    /// The last `fallbackcommand` argument run (`start` or `stop`), if any.
    pub fallback_command: Option<&'static str>,
}

/// One real server of one virtual.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealStatus {
    /// The destination as the kernel lists it: `10.0.0.2:80`.
    pub addr: String,
    pub forwarding: &'static str,
    /// Configured weight.
    pub weight: u32,
    /// `up`, `down`, or `unknown` (not checked yet: the kernel entry is kept as found).
    pub health: &'static str,
    /// Forced down by the maintenance directory.
    pub maintenance: bool,
    /// When the health last changed.
    pub since: String,
    pub last_check: Option<String>,
    /// The last check's verdict (`up`, `down`).
    pub verdict: Option<&'static str>,
    pub reason: Option<Reason>,
    pub latency_ms: Option<f64>,
    /// Consecutive failed checks while up, against `failurecount`.
    pub failures: u32,
    pub failurecount: u32,
    /// The weight in the kernel; `None` when the destination is absent.
    pub kernel_weight: Option<i32>,
}

/// The fallback server of a virtual.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FallbackStatus {
    pub addr: String,
    pub forwarding: &'static str,
    /// The director wants it in the kernel (no real server is live).
    pub active: bool,
    pub kernel_weight: Option<i32>,
}

/// Maps tokio instants to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    wall: SystemTime,
}

impl Clock {
    /// Now, on both clocks.
    pub fn now() -> Clock {
        Clock {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// A fixed wall-clock origin for tests.
    pub fn fixed(wall: SystemTime) -> Clock {
        Clock {
            instant: Instant::now(),
            wall,
        }
    }

    pub fn wall(&self, at: Instant) -> SystemTime {
        if at >= self.instant {
            self.wall + (at - self.instant)
        } else {
            self.wall - (self.instant - at)
        }
    }

    pub fn rfc3339(&self, at: Instant) -> String {
        rfc3339(self.wall(at))
    }
}

/// `2026-11-27T10:16:14.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_774_574_123);
        assert_eq!(rfc3339(t), "2026-11-27T10:16:14.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[tokio::test(start_paused = true)]
    async fn clock_follows_paused_time() {
        let clock = Clock::fixed(UNIX_EPOCH);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(clock.rfc3339(Instant::now()), "1970-01-01T00:00:01.500Z");
    }
}
