//! Loopback servers for the check tests: one small fake per service, plus hostile ones.
//! Every server listens on 127.0.0.1 (or ::1) only, and every connection task ends when its
//! client goes away, so the leak test can compare task counts.

#![allow(dead_code)]

pub mod hostile;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldirectord::check::spec::{
    CheckKind, CheckSpec, Protocol, Service, Target, Timeouts, TlsOptions,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

pub const LOCALHOST: &str = "127.0.0.1";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn spec(kind: CheckKind, addr: SocketAddr, protocol: Protocol, timeout: Duration) -> CheckSpec {
    CheckSpec {
        kind,
        target: Target {
            addr: addr.ip(),
            port: addr.port(),
            protocol,
            datapath: None,
        },
        timeouts: Timeouts {
            check: timeout,
            negotiate: timeout,
        },
        check_count: 1,
        tls: TlsOptions::default(),
    }
}

pub fn negotiate(service: Service, addr: SocketAddr, timeout: Duration) -> CheckSpec {
    spec(CheckKind::Negotiate(service), addr, Protocol::Tcp, timeout)
}

/// A listener with a large backlog; `handle` runs per connection in its own task.
pub async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve_on(LOCALHOST, handle).await
}

pub async fn serve_on<F, Fut>(ip: &str, handle: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr: SocketAddr = format!(
        "{}:0",
        if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        }
    )
    .parse()
    .unwrap();
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4().unwrap()
    } else {
        tokio::net::TcpSocket::new_v6().unwrap()
    };
    socket.bind(addr).unwrap();
    let listener = socket.listen(4096).unwrap();
    let local = listener.local_addr().unwrap();
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move { handle(stream).await });
        }
    });
    local
}

/// A TCP listener that is bound and then closed: connecting to it is refused.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// Reads until the end of an HTTP request head (or EOF), at most 64 KiB.
pub async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 65536 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Waits until the client closes (or errors), so that the task ends with the check.
pub async fn drain<S: AsyncRead + Unpin>(s: &mut S) {
    let mut chunk = [0u8; 1024];
    while let Ok(n) = s.read(&mut chunk).await {
        if n == 0 {
            break;
        }
    }
}

/// An HTTP/1.1 server answering from a routing function: path and Host in, raw response out.
pub async fn http_server(route: fn(&str, &str, &str) -> Vec<u8>) -> SocketAddr {
    serve(move |mut s| async move {
        let Some(head) = read_head(&mut s).await else {
            return;
        };
        let request_line = head.lines().next().unwrap_or("").to_string();
        let host = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("host: ")
                    .or_else(|| l.strip_prefix("Host: "))
            })
            .unwrap_or("")
            .to_string();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let response = route(&method, &target, &host);
        let _ = s.write_all(&response).await;
        let _ = s.shutdown().await;
    })
    .await
}

pub fn response(status: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

pub fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fixture("tls/server.pem"))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("tls/server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Serves `handle` over TLS with the fixture certificate (CN/SAN check.example).
pub async fn serve_tls<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(tokio_rustls::server::TlsStream<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let acceptor = tls_acceptor();
    let handle = Arc::new(handle);
    serve(move |s| {
        let acceptor = acceptor.clone();
        let handle = handle.clone();
        async move {
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(5), acceptor.accept(s)).await
            {
                handle(tls).await;
            }
        }
    })
    .await
}

/// A line-protocol script: send the greeting, then for each received line answer with the
/// first matching (prefix, reply) pair; `None` reply closes.
pub async fn line_session<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    greeting: &str,
    answers: &[(&str, Option<&str>)],
) {
    let (r, mut w) = tokio::io::split(s);
    let mut r = BufReader::new(r);
    if w.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let upper = line.to_ascii_uppercase();
        let answer = answers
            .iter()
            .find(|(p, _)| upper.starts_with(&p.to_ascii_uppercase()));
        match answer {
            Some((_, Some(reply))) => {
                if w.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
            Some((_, None)) => return,
            None => {
                if w.write_all(b"500 unknown\r\n").await.is_err() {
                    return;
                }
            }
        }
    }
}

pub async fn udp_server<F>(ip: &str, answer: F) -> SocketAddr
where
    F: Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
{
    let socket = UdpSocket::bind(format!("{ip}:0")).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(reply) = answer(&buf[..n]) {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    addr
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Runs `check` beside a timer armed for `deadline` and returns its output, how long it
/// took, and how late the timer fired: what this host's load (CI runs VMs and compilers
/// beside the tests) adds to any deadline, so a deadline test can allow exactly that.
pub async fn timed_against_reference<T>(
    deadline: Duration,
    check: impl std::future::Future<Output = T>,
) -> (T, Duration, Duration) {
    let started = tokio::time::Instant::now();
    let reference = tokio::spawn(async move {
        tokio::time::sleep(deadline).await;
        started.elapsed().saturating_sub(deadline)
    });
    let output = check.await;
    let took = started.elapsed();
    let load_delay = if took > deadline {
        reference.await.unwrap_or_default()
    } else {
        reference.abort();
        Duration::ZERO
    };
    (output, took, load_delay)
}
