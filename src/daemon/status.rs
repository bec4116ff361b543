//! What `ldirectord status` shows: the daemon's own state around the director's snapshot.
//!
//! The director's part travels as JSON and is read back field by field by the CLI, so that
//! a newer `ldirectord` binary can still talk to a daemon started from an older one.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The daemon's phase, as the Perl `daemon_status_str` names them (also the words of
/// `emailalertstatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Starting,
    Running,
    Reloading,
    Stopping,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Reloading => "reloading",
            Phase::Stopping => "stopping",
        }
    }
}

/// The answer to `{"command":"status"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub version: String,
    /// The configuration file in use (full path after the `/etc/ha.d` lookup).
    pub config_file: PathBuf,
    pub cfgname: String,
    pub phase: Phase,
    /// RFC 3339 timestamps.
    pub started_at: String,
    pub config_loaded_at: String,
    /// The last reload attempt, if any.
    #[serde(default)]
    pub last_reload: Option<ReloadOutcome>,
    /// Set while the file on disk is invalid: the daemon keeps running the configuration
    /// it loaded at `config_loaded_at`, and this says why the newer one was refused.
    #[serde(default)]
    pub config_error: Option<String>,
    /// The director's snapshot (virtuals, reals, health, kernel weights).
    #[serde(default)]
    pub director: serde_json::Value,
}

/// How a reload went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadOutcome {
    pub at: String,
    /// `signal`, `autoreload` or `control`.
    pub trigger: String,
    pub ok: bool,
    /// The file was invalid, so nothing changed (as opposed to the director failing).
    #[serde(default)]
    pub config_invalid: bool,
    /// The located configuration error(s), or the director's refusal.
    #[serde(default)]
    pub error: Option<String>,
}

/// Now, as RFC 3339 in local time with the offset.
pub fn now_rfc3339() -> String {
    let now = jiff::ZonedDateTime::now();
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S%:z", &now).unwrap_or_else(|_| now.to_string())
}

impl DaemonStatus {
    #[cfg(test)]
    pub(crate) fn sample() -> Self {
        Self {
            pid: 42,
            version: "0.1.0".into(),
            config_file: "/etc/ha.d/ldirectord.cf".into(),
            cfgname: "ldirectord".into(),
            phase: Phase::Running,
            started_at: "2026-11-27T10:00:00Z".into(),
            config_loaded_at: "2026-11-27T10:00:00Z".into(),
            last_reload: None,
            config_error: None,
            director: serde_json::json!({"virtuals": []}),
        }
    }
}
