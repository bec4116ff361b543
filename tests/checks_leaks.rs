//! 10,000 checks against the hostile servers leave the process's file descriptors and tokio
//! tasks where they started. Alone in its own test binary so that no other test opens or
//! closes descriptors meanwhile.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ldirectord::check::spec::{HttpMethod, HttpSpec, Pattern, Service, TlsVerify};
use ldirectord::check::{CheckSpec, Engine};
use support::hostile;
use support::*;

const CHECKS: usize = 10_000;

fn http(addr: SocketAddr, https: bool, n: usize) -> CheckSpec {
    let scheme = if https { "https" } else { "http" };
    let h = HttpSpec {
        // A distinct URL per check, so that the engine does not merge them.
        url: format!("{scheme}://{addr}/?n={n}"),
        method: HttpMethod::Get,
        host_header: Some(addr.ip().to_string()),
        proxy: false,
        receive: Some(Pattern::new("Welcome").unwrap()),
    };
    let mut s = negotiate(Service::Http(h), addr, Duration::from_millis(300));
    s.tls.verify = TlsVerify::None;
    s
}

fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits until the servers' connection tasks have noticed their clients left.
async fn settled(fds: usize, tasks_before: usize) -> (usize, usize) {
    let mut now = (open_fds(), tasks());
    for _ in 0..100 {
        if now.0 <= fds && now.1 <= tasks_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = (open_fds(), tasks());
    }
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hostile_checks_leak_nothing() {
    let servers = [
        (hostile::silent().await, false),
        (hostile::drip().await, false),
        (hostile::endless_body().await, false),
        (hostile::reset().await, false),
        (hostile::reset_after_request().await, false),
        (hostile::garbage_instead_of_tls().await, true),
        (hostile::status_500().await, false),
        (hostile::redirect_away().await, false),
        (hostile::wrong_page().await, false),
        (hostile::huge_headers().await, false),
        (hostile::half_close().await, false),
    ];
    let specs: Vec<CheckSpec> = (0..CHECKS)
        .map(|n| {
            let (addr, https) = servers[n % servers.len()];
            http(addr, https, n)
        })
        .collect();
    let engine = Engine::new(256);
    // Warm up once so that lazily created runtime and TLS state is not counted as a leak.
    let _ = engine.run_all(&specs[..servers.len()]).await;
    let (fds_before, tasks_before) = settled(usize::MAX, usize::MAX).await;
    let (fds_before, tasks_before) = settled(fds_before, tasks_before).await;

    let outcomes = engine.run_all(&specs).await;
    assert_eq!(outcomes.len(), CHECKS);
    let up = outcomes.iter().filter(|o| o.is_up()).count();
    assert_eq!(up, 0, "every hostile server must be down");

    let (fds_after, tasks_after) = settled(fds_before, tasks_before).await;
    assert!(fds_after <= fds_before, "fds {fds_before} -> {fds_after}");
    assert!(
        tasks_after <= tasks_before,
        "tasks {tasks_before} -> {tasks_after}"
    );
}
