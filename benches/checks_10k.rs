//! 10,000 real servers on distinct 127.x.y.z addresses, each checked once with the HTTP
//! negotiate check (GET /, receive "ok"), all within one interval; one loopback HTTP server
//! in a separate process answers them. Prints wall time, CPU time (user + system) and peak
//! RSS of the checking process, and the CPU cost per check.
//!
//!   cargo bench --bench checks_10k                    # 10,000 checks, 512 in flight
//!   cargo bench --bench checks_10k -- 20000 1024      # checks, in-flight cap
//!
//! The server listens on 0.0.0.0 (the only way one socket accepts every 127/8 address) and
//! drops any connection that does not come from and go to loopback. Its backlog is 4096:
//! smaller backlogs drop SYNs and measure the server, not the checker.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::Duration;

use ldirectord::check::spec::{
    CheckKind, CheckSpec, HttpMethod, HttpSpec, Pattern, Protocol, Service, Target, Timeouts,
    TlsOptions,
};
use ldirectord::check::{Engine, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let listener = socket.listen(4096).unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        loop {
            let Ok((mut s, peer)) = listener.accept().await else {
                continue;
            };
            let local = s.local_addr().map(|a| a.ip());
            if !peer.ip().is_loopback() || !local.is_ok_and(|a| a.is_loopback()) {
                continue;
            }
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
}

/// (utime, stime) of this process, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_times() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields 14 and 15 of stat(5); after the command name they are the 12th and 13th.
    (
        Duration::from_millis(ticks(11) * 10),
        Duration::from_millis(ticks(12) * 10),
    )
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn spec(addr: IpAddr, port: u16) -> CheckSpec {
    CheckSpec {
        kind: CheckKind::Negotiate(Service::Http(HttpSpec {
            url: format!("http://{addr}:{port}/"),
            method: HttpMethod::Get,
            host_header: Some(addr.to_string()),
            proxy: false,
            receive: Some(Pattern::new("ok").unwrap()),
        })),
        target: Target {
            addr,
            port,
            protocol: Protocol::Tcp,
            datapath: None,
        },
        timeouts: Timeouts {
            check: Duration::from_secs(5),
            negotiate: Duration::from_secs(5),
        },
        check_count: 1,
        tls: TlsOptions::default(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--server") {
        server();
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and a debug-build load test has no place in the test suite.
    if !args.iter().any(|a| a == "--bench") {
        println!("checks_10k: a benchmark; run it with `cargo bench --bench checks_10k`");
        return;
    }
    // Numbers are our own arguments.
    let numbers: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let checks = numbers.first().copied().unwrap_or(10_000);
    let in_flight = numbers.get(1).copied().unwrap_or(512);

    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .arg("--server")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port: u16 = line.trim().parse().expect("server port");

    // 127.1.0.1, 127.1.0.2, …: distinct real servers, never 127.0.0.1.
    let specs: Vec<CheckSpec> = (0..checks)
        .map(|i| {
            let n = i as u32 + 1;
            let a = Ipv4Addr::new(127, 1 + (n >> 16) as u8, (n >> 8) as u8, n as u8);
            spec(IpAddr::V4(a), port)
        })
        .collect();

    // LDIRECTORD_BENCH_RUNTIME=current runs the checker on one thread.
    let rt = if std::env::var("LDIRECTORD_BENCH_RUNTIME").as_deref() == Ok("current") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build()
    .unwrap();
    let engine = Engine::new(in_flight);
    // One warm-up check: runtime and allocator start-up are not part of an interval.
    rt.block_on(engine.run_all(&specs[..1]));

    let rss_before = peak_rss_kib();
    let (user0, sys0) = cpu_times();
    let wall0 = tokio::time::Instant::now();
    let outcomes = rt.block_on(engine.run_all(&specs));
    let wall = wall0.elapsed();
    let (user1, sys1) = cpu_times();
    let (user, sys) = (user1.saturating_sub(user0), sys1.saturating_sub(sys0));
    let cpu = user + sys;
    let _ = child.kill();
    let _ = child.wait();

    let up = outcomes.iter().filter(|o| o.is_up()).count();
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for o in &outcomes {
        if let Verdict::Down(f) = &o.verdict {
            *reasons.entry(f.kind.to_string()).or_default() += 1;
        }
    }
    println!("checks            {checks} (in flight at most {in_flight})");
    println!("up                {up}");
    if !reasons.is_empty() {
        println!("down              {reasons:?}");
    }
    println!("wall time         {:.3} s", wall.as_secs_f64());
    println!(
        "CPU time          {:.3} s (user {:.3} + system {:.3}, checking process)",
        cpu.as_secs_f64(),
        user.as_secs_f64(),
        sys.as_secs_f64()
    );
    println!(
        "CPU per check     {:.1} µs",
        cpu.as_secs_f64() * 1e6 / checks as f64
    );
    println!(
        "peak RSS          {:.1} MiB ({:.1} MiB before the checks)",
        peak_rss_kib() as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
}
