//! The deep part of the OCF monitor: does the kernel's IPVS table hold what the daemon
//! says it programmed?
//!
//! The daemon's status (the director's snapshot, read from the control socket as JSON)
//! names every virtual service with the weight each real server and the fallback have in
//! the kernel; this compares that with a fresh read of the table. A mismatch means the
//! table changed behind the daemon's back (the daemon repairs that at its next periodic
//! pass, so the caller retries for a while) or that the daemon cannot program it (it says
//! so itself: `kernel.in_sync` false, with its last error).
//!
//! The snapshot is read field by field, tolerating missing and unknown fields, so that an
//! agent from one version can judge a daemon started from another.

use std::collections::HashMap;

use serde_json::Value;

use crate::ipvs::{Dest, Table};

/// What is wrong, one line each; empty when the table is as the daemon says.
pub fn compare(director: &Value, table: &Table) -> Vec<String> {
    let mut problems = Vec::new();
    if director.get("ready").and_then(Value::as_bool) == Some(false) {
        problems.push("the daemon has not programmed the IPVS table yet".to_owned());
    }
    if let Some(kernel) = director.get("kernel")
        && kernel.get("in_sync").and_then(Value::as_bool) == Some(false)
    {
        let pending = kernel
            .get("pending_changes")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let error = kernel
            .get("last_error")
            .and_then(Value::as_str)
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default();
        problems.push(format!(
            "the daemon reports the IPVS table out of step: {pending} change(s) pending{error}"
        ));
    }
    let services: HashMap<String, &Vec<Dest>> = table
        .services
        .iter()
        .map(|(s, dests)| (s.key.to_string(), dests))
        .collect();
    let virtuals = director
        .get("virtuals")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for v in virtuals {
        let Some(service) = v.get("service").and_then(Value::as_str) else {
            continue;
        };
        let Some(dests) = services.get(service) else {
            problems.push(format!(
                "virtual service {service} is not in the IPVS table"
            ));
            continue;
        };
        let in_table: HashMap<String, i32> = dests
            .iter()
            .map(|d| (d.key().to_string(), d.weight))
            .collect();
        let mut expected: Vec<(&str, Option<i64>, &str)> = Vec::new();
        for r in v
            .get("reals")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(addr) = r.get("addr").and_then(Value::as_str) {
                expected.push((addr, r.get("kernel_weight").and_then(Value::as_i64), "real"));
            }
        }
        if let Some(f) = v.get("fallback").filter(|f| !f.is_null())
            && let Some(addr) = f.get("addr").and_then(Value::as_str)
        {
            expected.push((
                addr,
                f.get("kernel_weight").and_then(Value::as_i64),
                "fallback",
            ));
        }
        for (addr, weight, what) in &expected {
            match (weight, in_table.get(*addr)) {
                (Some(w), Some(k)) if i64::from(*k) == *w => {}
                (Some(w), Some(k)) => problems.push(format!(
                    "{what} server {addr} of {service} has weight {k} in the IPVS table; the daemon set {w}"
                )),
                (Some(w), None) => problems.push(format!(
                    "{what} server {addr} of {service} is missing from the IPVS table (the daemon set weight {w})"
                )),
                (None, Some(k)) => problems.push(format!(
                    "{what} server {addr} of {service} is in the IPVS table (weight {k}); the daemon removed it"
                )),
                (None, None) => {}
            }
        }
        let mut unknown: Vec<&String> = in_table
            .keys()
            .filter(|addr| !expected.iter().any(|(a, _, _)| a == addr))
            .collect();
        unknown.sort();
        for addr in unknown {
            problems.push(format!(
                "{service} has a real server {addr} that is not in the configuration"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::{Forward, Service, ServiceKey};
    use serde_json::json;

    fn table(dests: &[(&str, i32)]) -> Table {
        let key = ServiceKey::tcp("10.0.0.100".parse().unwrap(), 80);
        Table {
            services: vec![(
                Service::new(key, "wlc"),
                dests
                    .iter()
                    .map(|(a, w)| Dest::new(a.parse().unwrap(), 80, Forward::Route, *w))
                    .collect(),
            )],
        }
    }

    fn status(reals: Value, fallback: Value) -> Value {
        json!({
            "ready": true,
            "phase": "running",
            "kernel": {"in_sync": true, "pending_changes": 0, "last_error": null},
            "virtuals": [{
                "id": "tcp:10.0.0.100:80",
                "service": "TCP 10.0.0.100:80",
                "in_kernel": true,
                "reals": reals,
                "fallback": fallback,
                "future_field": 1
            }]
        })
    }

    #[test]
    fn a_table_as_the_daemon_says_is_fine() {
        let s = status(
            json!([
                {"addr": "10.0.0.11:80", "health": "up", "kernel_weight": 1},
                {"addr": "10.0.0.12:80", "health": "down", "kernel_weight": null}
            ]),
            json!({"addr": "127.0.0.1:80", "active": false, "kernel_weight": null}),
        );
        assert_eq!(
            compare(&s, &table(&[("10.0.0.11", 1)])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_flushed_table_is_reported() {
        let s = status(
            json!([{"addr": "10.0.0.11:80", "kernel_weight": 1}]),
            Value::Null,
        );
        assert_eq!(
            compare(&s, &Table::default()),
            ["virtual service TCP 10.0.0.100:80 is not in the IPVS table"]
        );
    }

    #[test]
    fn each_difference_of_a_real_or_fallback_is_reported() {
        let s = status(
            json!([
                {"addr": "10.0.0.11:80", "kernel_weight": 3},
                {"addr": "10.0.0.12:80", "kernel_weight": 1},
                {"addr": "10.0.0.13:80", "kernel_weight": null}
            ]),
            json!({"addr": "127.0.0.1:80", "kernel_weight": 1}),
        );
        let t = table(&[("10.0.0.11", 1), ("10.0.0.13", 1), ("10.9.9.9", 1)]);
        assert_eq!(
            compare(&s, &t),
            [
                "real server 10.0.0.11:80 of TCP 10.0.0.100:80 has weight 1 in the IPVS table; the daemon set 3",
                "real server 10.0.0.12:80 of TCP 10.0.0.100:80 is missing from the IPVS table (the daemon set weight 1)",
                "real server 10.0.0.13:80 of TCP 10.0.0.100:80 is in the IPVS table (weight 1); the daemon removed it",
                "fallback server 127.0.0.1:80 of TCP 10.0.0.100:80 is missing from the IPVS table (the daemon set weight 1)",
                "TCP 10.0.0.100:80 has a real server 10.9.9.9:80 that is not in the configuration",
            ]
        );
    }

    #[test]
    fn the_daemons_own_verdict_counts() {
        let mut s = status(json!([]), Value::Null);
        s["ready"] = json!(false);
        s["kernel"] =
            json!({"in_sync": false, "pending_changes": 2, "last_error": "add dest: ENOMEM"});
        assert_eq!(
            compare(&s, &table(&[])),
            [
                "the daemon has not programmed the IPVS table yet",
                "the daemon reports the IPVS table out of step: 2 change(s) pending (last error: add dest: ENOMEM)",
            ]
        );
    }

    #[test]
    fn an_unknown_shape_is_not_a_crash() {
        assert!(compare(&json!("nonsense"), &Table::default()).is_empty());
        assert!(compare(&json!({"virtuals": [{"reals": 5}]}), &Table::default()).is_empty());
    }
}
