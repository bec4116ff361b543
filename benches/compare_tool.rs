//! The measuring instruments of `bench/compare` (run inside the IPVS VM), in one binary so
//! that the bench needs nothing but what cargo builds:
//!
//!   compare_tool serve ADDR:PORT
//!       The real servers' HTTP server: one process answers every address routed to its
//!       namespace (`GET /anything` → `200 OK`, body `OK`). Control paths, for the bench:
//!       `/__dead/IP` makes IP's connections reset at once (a server process that died,
//!       the peer answering RST), `/__alive/IP` undoes it; both answer with the wall-clock
//!       time (Unix seconds) at which the change took effect. `/__watch/IP` records the
//!       time of every later request to IP. `/__stats` answers `requests N` (the
//!       health-check requests served), `first T` (the time of the first of them) and
//!       `watch T1 T2 …`; `/__reset` zeroes all three.
//!   compare_tool wait-live N TIMEOUT
//!       Polls the kernel's IPVS table over netlink until it holds exactly N destinations
//!       with weight > 0; prints the wall-clock time (Unix seconds) of the first poll that
//!       saw it, or `timeout LIVE` (exit 1) with the live count of the last poll. The pause between polls is 3 % of the time waited
//!       so far (10 ms to 5 s): the resolution is 3 %, and the poller costs little CPU
//!       (a dump of 100,000 destinations is itself work for the emulated VM).
//!   compare_tool wait-dest PROTO:VIP:PORT IP:PORT present|absent TIMEOUT
//!       Polls one service every 5 ms until the destination is there with weight > 0
//!       (`present`) or not there with weight > 0 (`absent`); prints the time as above.
//!   compare_tool live
//!       Prints the number of destinations with weight > 0.
//!   compare_tool follow FILE TEXT COUNT TIMEOUT
//!       Reads FILE as it grows (it may not exist yet), every 5 ms, until COUNT lines
//!       containing TEXT have been written; prints the time of the read that saw the last.
//!
//! Run by `cargo bench` (which passes `--bench`) it only says what it is.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ldirectord::ipvs::{Backend, IpvsClient, Protocol, ServiceKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep};

const USAGE: &str = "usage: compare_tool serve ADDR:PORT | wait-live N TIMEOUT | \
                     wait-dest PROTO:VIP:PORT IP:PORT present|absent TIMEOUT | live | \
                     follow FILE TEXT COUNT TIMEOUT";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--bench") || args.is_empty() {
        println!("compare_tool: the instruments of bench/compare, not a benchmark");
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let code = match words.as_slice() {
        ["serve", addr] => rt.block_on(serve(addr.parse().expect("serve ADDR:PORT"))),
        ["wait-live", n, timeout] => {
            rt.block_on(wait_live(n.parse().expect("wait-live N"), seconds(timeout)))
        }
        ["wait-dest", service, dest, state, timeout] => rt.block_on(wait_dest(
            parse_service(service),
            dest.parse().expect("wait-dest IP:PORT"),
            match *state {
                "present" => true,
                "absent" => false,
                _ => panic!("{USAGE}"),
            },
            seconds(timeout),
        )),
        ["follow", file, text, count, timeout] => rt.block_on(follow(
            file,
            text,
            count.parse().expect("follow COUNT"),
            seconds(timeout),
        )),
        ["live"] => rt.block_on(async {
            let mut client = IpvsClient::connect().await.expect("netlink");
            println!("{}", live(&mut client).await);
            0
        }),
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}

fn seconds(text: &str) -> Duration {
    Duration::from_secs_f64(text.parse().expect("a number of seconds"))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn parse_service(text: &str) -> ServiceKey {
    let (proto, addr) = text.split_once(':').expect("PROTO:VIP:PORT");
    let addr: SocketAddr = addr.parse().expect("PROTO:VIP:PORT");
    let protocol = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => panic!("protocol tcp or udp"),
    };
    ServiceKey::Addr {
        protocol,
        addr: addr.ip(),
        port: addr.port(),
    }
}

async fn live(client: &mut IpvsClient) -> usize {
    let table = client.table().await.expect("dump the IPVS table");
    table
        .services
        .iter()
        .flat_map(|(_, dests)| dests)
        .filter(|d| d.weight > 0)
        .count()
}

async fn wait_live(want: usize, timeout: Duration) -> i32 {
    let mut client = IpvsClient::connect().await.expect("netlink");
    let start = Instant::now();
    loop {
        let now_live = live(&mut client).await;
        if now_live == want {
            println!("{:.6}", unix_now());
            return 0;
        }
        let waited = start.elapsed();
        if waited > timeout {
            println!("timeout {now_live}");
            return 1;
        }
        let pause = waited.mul_f64(0.03);
        sleep(pause.clamp(Duration::from_millis(10), Duration::from_secs(5))).await;
    }
}

async fn wait_dest(service: ServiceKey, dest: SocketAddr, want: bool, timeout: Duration) -> i32 {
    let mut client = IpvsClient::connect().await.expect("netlink");
    let start = Instant::now();
    loop {
        let dests = client.dests(&service).await.expect("dump the destinations");
        let live = dests
            .iter()
            .any(|d| d.addr == dest.ip() && d.port == dest.port() && d.weight > 0);
        if live == want {
            println!("{:.6}", unix_now());
            return 0;
        }
        if start.elapsed() > timeout {
            println!("timeout");
            return 1;
        }
        sleep(Duration::from_millis(5)).await;
    }
}

async fn follow(file: &str, text: &str, want: usize, timeout: Duration) -> i32 {
    let start = Instant::now();
    let mut offset = 0usize;
    let mut partial = Vec::new();
    let mut seen = 0usize;
    loop {
        if let Ok(bytes) = std::fs::read(file) {
            if bytes.len() < offset {
                // replaced by a new file: start over
                offset = 0;
                partial.clear();
                seen = 0;
            }
            partial.extend_from_slice(&bytes[offset..]);
            offset = bytes.len();
            while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                if String::from_utf8_lossy(&line).contains(text) {
                    seen += 1;
                }
            }
            if seen >= want {
                println!("{:.6}", unix_now());
                return 0;
            }
        }
        if start.elapsed() > timeout {
            println!("timeout");
            return 1;
        }
        sleep(Duration::from_millis(5)).await;
    }
}

#[derive(Default)]
struct Server {
    dead: Mutex<HashSet<IpAddr>>,
    requests: AtomicU64,
    /// Time of the first request since the last reset, and of every request to the
    /// watched address.
    times: Mutex<Times>,
}

#[derive(Default)]
struct Times {
    first: Option<f64>,
    watched: Option<IpAddr>,
    watch: Vec<f64>,
}

async fn serve(addr: SocketAddr) -> i32 {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).expect("bind");
    // A short backlog would drop SYNs under a burst of checks and measure this server.
    let listener = socket.listen(65_535).expect("listen");
    let server = Arc::new(Server::default());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let local = match stream.local_addr() {
            Ok(a) => a.ip(),
            Err(_) => continue,
        };
        let dead = server.dead.lock().unwrap().contains(&local);
        if dead {
            // Closing with linger 0 sends RST: what a host answers when nothing listens.
            let _ = stream.set_zero_linger();
            drop(stream);
            continue;
        }
        tokio::spawn(answer(stream, server.clone()));
    }
}

async fn answer(mut stream: tokio::net::TcpStream, server: Arc<Server>) {
    let mut seen = Vec::with_capacity(512);
    let mut buf = [0u8; 2048];
    let read = async {
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(10), read).await,
        Ok(true)
    ) {
        return;
    }
    let line = String::from_utf8_lossy(&seen);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let body = if let Some(ip) = path.strip_prefix("/__dead/") {
        match ip.parse() {
            Ok(ip) => {
                server.dead.lock().unwrap().insert(ip);
                format!("{:.6}\n", unix_now())
            }
            Err(_) => "bad address\n".to_owned(),
        }
    } else if let Some(ip) = path.strip_prefix("/__alive/") {
        match ip.parse() {
            Ok(ip) => {
                server.dead.lock().unwrap().remove(&ip);
                format!("{:.6}\n", unix_now())
            }
            Err(_) => "bad address\n".to_owned(),
        }
    } else if let Some(ip) = path.strip_prefix("/__watch/") {
        match ip.parse() {
            Ok(ip) => {
                let mut times = server.times.lock().unwrap();
                times.watched = Some(ip);
                times.watch.clear();
                "watching\n".to_owned()
            }
            Err(_) => "bad address\n".to_owned(),
        }
    } else if path == "/__reset" {
        server.requests.store(0, Ordering::Relaxed);
        *server.times.lock().unwrap() = Times::default();
        "reset\n".to_owned()
    } else if path == "/__stats" {
        let times = server.times.lock().unwrap();
        let watch: Vec<String> = times.watch.iter().map(|t| format!("{t:.6}")).collect();
        format!(
            "requests {}\nfirst {}\nwatch {}\n",
            server.requests.load(Ordering::Relaxed),
            times.first.map_or("-".to_owned(), |t| format!("{t:.6}")),
            watch.join(" ")
        )
    } else {
        server.requests.fetch_add(1, Ordering::Relaxed);
        let local = stream.local_addr().map(|a| a.ip()).ok();
        let mut times = server.times.lock().unwrap();
        if times.first.is_none() || times.watched.is_some() && times.watched == local {
            let now = unix_now();
            times.first.get_or_insert(now);
            if times.watched.is_some() && times.watched == local {
                times.watch.push(now);
            }
        }
        "OK\n".to_owned()
    };
    let reply = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}
