//! How `ldirectord status` shows the daemon: a readable table, or JSON with `--json`.
//!
//! The director's part of the status is read field by field from JSON, tolerating
//! missing and unknown fields, so that this binary can describe a daemon started from an
//! older or newer one.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::daemon::DaemonStatus;

/// `status --json` for a running daemon.
pub fn json_running(pid: i32, status: &DaemonStatus) -> String {
    let doc = json!({ "state": "running", "pid": pid, "daemon": status });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// `status --json` for a running daemon whose socket did not answer.
pub fn json_running_unknown(pid: i32) -> String {
    let doc = json!({ "state": "running", "pid": pid, "daemon": Value::Null });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// `status --json` when nothing runs (`pid_file` is set for a stale one).
pub fn json_stopped(config: &str, pid_file: Option<&Path>, pid: Option<i32>) -> String {
    let doc = match pid_file {
        Some(file) => json!({
            "state": "stale",
            "config": config,
            "pid_file": file,
            "pid": pid,
        }),
        None => json!({ "state": "stopped", "config": config }),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The first of `keys` present in `obj`, as display text.
fn field(obj: &Value, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| obj.get(*k).filter(|v| !v.is_null()))
        .map(text)
        .unwrap_or_else(|| "-".to_owned())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        other => other.to_string(),
    }
}

/// Latency in ms with one decimal, from whichever unit the snapshot uses.
fn latency(real: &Value) -> String {
    if let Some(ms) = real.get("latency_ms").and_then(Value::as_f64) {
        return format!("{ms:.1} ms");
    }
    if let Some(us) = real.get("latency_us").and_then(Value::as_f64) {
        return format!("{:.1} ms", us / 1000.0);
    }
    field(real, &["latency"])
}

/// The human view: the daemon's state, then one table per virtual service.
pub fn render(status: &DaemonStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ldirectord {} (pid {}) {} since {}",
        status.version,
        status.pid,
        status.phase.as_str(),
        status.started_at
    );
    let _ = writeln!(
        out,
        "configuration {} loaded at {}",
        status.config_file.display(),
        status.config_loaded_at
    );
    if let Some(error) = &status.config_error {
        let _ = writeln!(
            out,
            "CONFIGURATION ERROR: the file on disk is invalid; still running the configuration loaded at {}:",
            status.config_loaded_at
        );
        for line in error.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    if let Some(reload) = &status.last_reload {
        let verdict = if reload.ok { "ok" } else { "FAILED" };
        let _ = writeln!(
            out,
            "last reload: {verdict} at {} ({})",
            reload.at, reload.trigger
        );
        if let (false, false, Some(error)) = (reload.ok, reload.config_invalid, &reload.error) {
            let _ = writeln!(out, "    {error}");
        }
    }
    if let Some(kernel) = status.director.get("kernel") {
        let in_sync = kernel.get("in_sync").and_then(Value::as_bool);
        let pending = kernel
            .get("pending_changes")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match in_sync {
            Some(true) => {
                let _ = writeln!(
                    out,
                    "kernel table in sync (checked {})",
                    field(kernel, &["last_sync"])
                );
            }
            Some(false) => {
                let _ = writeln!(out, "kernel table NOT in sync: {pending} change(s) pending");
            }
            None => {}
        }
        if let Some(error) = kernel.get("last_error").and_then(Value::as_str) {
            let _ = writeln!(out, "last kernel error: {error}");
        }
    }
    let virtuals = status
        .director
        .get("virtuals")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if virtuals.is_empty() {
        let _ = writeln!(out, "\nno virtual services");
    }
    for v in &virtuals {
        render_virtual(&mut out, v);
    }
    out
}

const HEADERS: [&str; 7] = [
    "REAL",
    "HEALTH",
    "LAST CHECK",
    "VERDICT",
    "LATENCY",
    "WEIGHT",
    "REASON",
];

/// A failure reason: `{kind, code, detail}` or plain text.
fn reason(real: &Value) -> String {
    match real.get("reason") {
        Some(Value::Object(r)) => r
            .get("detail")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .or_else(|| r.get("kind").and_then(Value::as_str))
            .unwrap_or("-")
            .to_owned(),
        Some(other) => text(other),
        None => "-".to_owned(),
    }
}

/// Health, with `(maintenance)` and soft failures (`up 1/3`) when there are any.
fn health(real: &Value) -> String {
    let mut h = field(real, &["health", "state"]);
    let failures = real.get("failures").and_then(Value::as_u64).unwrap_or(0);
    // Soft failures: an up real counting towards failurecount.
    if failures > 0 && h == "up" {
        let of = real
            .get("failurecount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        h.push_str(&format!(" {failures}/{of}"));
    }
    if real.get("maintenance").and_then(Value::as_bool) == Some(true) {
        h.push_str(" (maintenance)");
    }
    h
}

/// The kernel weight, and the configured one when they differ (`0/5`: quiesced).
fn weight(real: &Value) -> String {
    let kernel = real.get("kernel_weight").filter(|v| !v.is_null());
    let configured = real.get("weight").filter(|v| !v.is_null());
    match (kernel, configured) {
        (None, _) => "absent".to_owned(),
        (Some(k), Some(c)) if k != c => format!("{}/{}", text(k), text(c)),
        (Some(k), _) => text(k),
    }
}

fn render_virtual(out: &mut String, v: &Value) {
    let name = field(v, &["service", "id", "virtual", "name"]);
    let _ = write!(out, "\nvirtual {name}");
    for (key, label) in [("scheduler", "scheduler"), ("checktype", "check")] {
        if let Some(value) = v.get(key).filter(|x| x.is_string()) {
            let _ = write!(out, "  {label} {}", text(value));
        }
    }
    if v.get("in_kernel").and_then(Value::as_bool) == Some(false) {
        let _ = write!(out, "  (not in the kernel)");
    }
    let _ = writeln!(out);
    if let Some(fallback) = v.get("fallback").filter(|f| !f.is_null()) {
        let (addr, active) = if fallback.is_object() {
            (
                field(fallback, &["addr", "real", "address"]),
                fallback.get("active").and_then(Value::as_bool),
            )
        } else {
            (
                text(fallback),
                v.get("fallback_active").and_then(Value::as_bool),
            )
        };
        let state = match active {
            Some(true) => " (active: no real server is up)",
            Some(false) => " (standing by)",
            None => "",
        };
        let _ = writeln!(out, "  fallback {addr}{state}");
    }
    let reals = v
        .get("reals")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rows: Vec<[String; 7]> = reals
        .iter()
        .map(|r| {
            [
                field(r, &["addr", "real", "address"]),
                health(r),
                field(r, &["last_check", "checked_at"]),
                field(r, &["verdict", "outcome"]),
                latency(r),
                weight(r),
                reason(r),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::from(" ");
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                let _ = write!(s, " {cell}");
            } else {
                let _ = write!(s, " {cell:<w$}");
            }
        }
        s.trim_end().to_owned()
    };
    let _ = writeln!(out, "{}", line(&HEADERS.map(str::to_owned)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::{Phase, ReloadOutcome};

    fn status(director: Value) -> DaemonStatus {
        DaemonStatus {
            pid: 4242,
            version: "0.1.0".into(),
            config_file: "/etc/ha.d/web.cf".into(),
            cfgname: "web.cf".into(),
            phase: Phase::Running,
            started_at: "2026-11-27T10:00:00Z".into(),
            config_loaded_at: "2026-11-27T10:00:00Z".into(),
            last_reload: None,
            config_error: None,
            director,
        }
    }

    #[test]
    fn renders_a_table_per_virtual() {
        let s = status(json!({
            "config_file": "/etc/ha.d/web.cf", "phase": "running", "ready": true,
            "last_reload_error": null, "generation": 1,
            "kernel": {"last_sync": "2026-11-27T10:00:02Z", "in_sync": true,
                       "pending_changes": 0, "last_error": null},
            "virtuals": [{
                "id": "tcp:10.0.0.100:80", "service": "TCP 10.0.0.100:80",
                "location": "web.cf:4", "scheduler": "wrr", "checktype": "negotiate",
                "in_kernel": true,
                "fallback": {"addr": "127.0.0.1:80", "forwarding": "gate", "active": false,
                             "kernel_weight": null},
                "fallback_command": null,
                "reals": [
                    {"addr": "10.0.0.11:80", "forwarding": "gate", "weight": 1, "health": "up",
                     "maintenance": false, "since": "x", "last_check": "10:00:01",
                     "verdict": "up", "reason": null, "latency_ms": 1.25, "failures": 0,
                     "failurecount": 1, "kernel_weight": 1},
                    {"addr": "10.0.0.12:80", "forwarding": "gate", "weight": 1,
                     "health": "down", "maintenance": false, "since": "x",
                     "last_check": "10:00:01", "verdict": "down",
                     "reason": {"kind": "connect-timeout",
                                "detail": "connect: timed out after 3 s"},
                     "latency_ms": 3000.0, "failures": 0, "failurecount": 1,
                     "kernel_weight": null},
                ]
            }]
        }));
        let text = render(&s);
        assert!(
            text.contains("virtual TCP 10.0.0.100:80  scheduler wrr  check negotiate\n"),
            "{text}"
        );
        assert!(
            text.contains("fallback 127.0.0.1:80 (standing by)\n"),
            "{text}"
        );
        assert!(text.contains("kernel table in sync"), "{text}");
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  10.0.0.1"))
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert!(
            rows[0].contains("up") && rows[0].contains("1.2 ms"),
            "{}",
            rows[0]
        );
        assert!(rows[1].contains("absent"), "{}", rows[1]);
        assert!(
            rows[1].ends_with("connect: timed out after 3 s"),
            "{}",
            rows[1]
        );
    }

    #[test]
    fn says_why_the_file_on_disk_is_not_running() {
        let mut s = status(json!({"virtuals": []}));
        s.config_error = Some("web.cf:3:9: error: unknown scheduler `wrong`".into());
        s.last_reload = Some(ReloadOutcome {
            at: "2026-11-27T10:05:00Z".into(),
            trigger: "signal".into(),
            ok: false,
            config_invalid: true,
            error: s.config_error.clone(),
        });
        let text = render(&s);
        assert!(text.contains("CONFIGURATION ERROR"), "{text}");
        assert!(
            text.contains("    web.cf:3:9: error: unknown scheduler"),
            "{text}"
        );
        assert!(text.contains("last reload: FAILED at 2026-11-27T10:05:00Z (signal)"));
    }

    #[test]
    fn json_documents_have_a_state() {
        let v: Value = serde_json::from_str(&json_stopped("x.cf", None, None)).unwrap();
        assert_eq!(v["state"], "stopped");
        let v: Value =
            serde_json::from_str(&json_stopped("x.cf", Some(Path::new("/p")), Some(7))).unwrap();
        assert_eq!(v["state"], "stale");
        assert_eq!(v["pid"], 7);
        let v: Value =
            serde_json::from_str(&json_running(9, &status(json!({"virtuals": []})))).unwrap();
        assert_eq!(v["daemon"]["cfgname"], "web.cf");
    }
}
