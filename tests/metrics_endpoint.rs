//! The Prometheus endpoint over real loopback HTTP, fed by a director running against the
//! in-memory kernel: what a scrape shows (pinned by a snapshot), the IPVS counters, other
//! paths and methods, and a client that never sends its request.

use std::path::Path;
use std::time::Duration;

use ldirectord::config::{FakeHost, parse_str};
use ldirectord::daemon::metrics::{MetricsServer, Source};
use ldirectord::director::{
    Command, Director, ExternalChecks, Metrics, Observation, Probe, RealId, Status,
};
use ldirectord::ipvs::{DestKey, FakeKernel, ServiceKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, watch};

const CONFIG: &str = "checkinterval=10\n\
virtual=10.0.0.100:80\n\
\treal=10.0.0.2:80 gate 3\n\
\treal=10.0.0.3:80 gate\n\
\tfallback=127.0.0.1:80\n\
\tchecktype=connect\n";

fn real(addr: &str) -> RealId {
    RealId {
        service: ServiceKey::tcp("10.0.0.100".parse().unwrap(), 80),
        dest: DestKey {
            addr: addr.parse().unwrap(),
            port: 80,
        },
    }
}

async fn get(addr: std::net::SocketAddr, request: &str) -> String {
    try_get(addr, request).await.unwrap()
}

async fn try_get(addr: std::net::SocketAddr, request: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(request.as_bytes()).await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("answer within 10 s")?;
    Ok(out)
}

/// Everything after the head, with the version line made stable.
fn body(response: &str) -> String {
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    body.replace(env!("CARGO_PKG_VERSION"), "VERSION")
}

#[tokio::test]
async fn a_scrape_shows_health_checks_changes_and_ipvs_counters() {
    let config = parse_str(
        CONFIG,
        Path::new("/etc/ha.d/ldirectord.cf"),
        &FakeHost::default(),
    )
    .unwrap()
    .config;
    let kernel = FakeKernel::new();
    let metrics = Metrics::new();
    let (obs_tx, obs_rx) = mpsc::channel(8);
    let (cmd_tx, cmd_rx) = mpsc::channel(8);
    let (status_tx, status_rx) = watch::channel(Status::new("test"));
    let director = Director::new(config, kernel.clone())
        .with_checks(ExternalChecks, obs_rx)
        .with_metrics(metrics.clone());
    let director = tokio::spawn(director.run(cmd_rx, status_tx));

    let mut up = Probe::up();
    up.latency = Duration::from_millis(2);
    obs_tx
        .send(Observation::one(real("10.0.0.2"), up))
        .await
        .unwrap();
    let mut down = Probe::down("refused", "connection refused");
    down.latency = Duration::from_millis(1);
    obs_tx
        .send(Observation::one(real("10.0.0.3"), down))
        .await
        .unwrap();
    let mut status = status_rx.clone();
    status
        .wait_for(|s| {
            s.virtuals
                .first()
                .is_some_and(|v| v.reals.iter().all(|r| r.health != "unknown"))
        })
        .await
        .unwrap();
    // Traffic the kernel counted.
    let service = ServiceKey::tcp("10.0.0.100".parse().unwrap(), 80);
    kernel.update_service(&service, |s| {
        s.stats.conns = 12;
        s.stats.inpkts = 120;
        s.stats.inbytes = 9000;
    });
    kernel.update_dest(
        &service,
        &DestKey {
            addr: "10.0.0.2".parse().unwrap(),
            port: 80,
        },
        |d| {
            d.stats.conns = 12;
            d.active_conns = 2;
        },
    );

    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let source = Source {
        status: status_rx,
        metrics,
        kernel: Some(Mutex::new(kernel.clone())),
        version: env!("CARGO_PKG_VERSION"),
    };
    let serving = tokio::spawn(server.serve(source));

    let response = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("content-type: text/plain; version=0.0.4"));
    insta::assert_snapshot!("scrape", body(&response));

    let missing = get(addr, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let post = get(
        addr,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");

    cmd_tx.send(Command::Stop).await.unwrap();
    director.await.unwrap().unwrap();
    serving.abort();
}

#[tokio::test]
async fn silent_clients_do_not_block_the_endpoint() {
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (_tx, status) = watch::channel(Status::new("test"));
    let source: Source<FakeKernel> = Source {
        status,
        metrics: Metrics::new(),
        kernel: None,
        version: "test",
    };
    let serving = tokio::spawn(server.serve(source));
    // More idle connections than slots: they are closed, or time out, and a real scrape
    // still gets its answer once the header deadline (5 s) has freed the slots.
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let started = tokio::time::Instant::now();
    let response = loop {
        let r = try_get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        if let Ok(r) = &r
            && r.starts_with("HTTP/1.1 200")
        {
            break r.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "no answer: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(response.contains("ldirectord_ready 0"));
    // The silent ones were closed by the server.
    for mut s in idle {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(8), s.read(&mut buf))
            .await
            .expect("closed by the server");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
    serving.abort();
}
