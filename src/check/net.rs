//! The only place checks touch sockets: connect under a deadline, optional TLS, bounded reads.
//!
//! Every probe goes through [`connect_tcp`] or [`connect_udp`]: a fresh socket per check, no
//! proxy from the environment, no pooling. Reads never buffer more than their cap. A
//! data-path check ([`DataPath`]) marks its sockets and binds them to this host's address
//! towards the real server.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

use super::outcome::{Failure, FailureKind};
use super::spec::DataPath;

/// Longest line accepted from a line protocol (SMTP, POP, IMAP, FTP, NNTP, SIP, simpletcp).
pub const LINE_CAP: usize = 8 * 1024;
/// Most lines read while waiting for one that matters (multi-line greetings, simpletcp).
pub const MAX_LINES: usize = 1024;
/// Largest datagram or whole reply read for UDP checks and for protocols without framing.
pub const DATAGRAM_CAP: usize = 64 * 1024;

/// The single point in time by which a check must have its verdict.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    pub fn after(timeout: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + timeout,
        }
    }

    pub fn at(self) -> Instant {
        self.at
    }

    /// Time left, zero once passed.
    pub fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Runs one step of a check; running out of time names the step.
    pub async fn step<T>(
        self,
        what: &str,
        fut: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        match timeout_at(self.at, fut).await {
            Ok(r) => r,
            Err(_) => Err(Failure::new(
                FailureKind::Deadline,
                format!("timed out during {what}"),
            )),
        }
    }

    /// Like [`Deadline::step`] for plain I/O: errors are classified by [`io_failure`].
    pub async fn io<T>(
        self,
        what: &str,
        fut: impl Future<Output = io::Result<T>>,
    ) -> Result<T, Failure> {
        self.step(what, async { fut.await.map_err(|e| io_failure(&e, what)) })
            .await
    }
}

/// Maps an I/O error after the connection was up to a failure kind.
pub fn io_failure(err: &io::Error, what: &str) -> Failure {
    use io::ErrorKind as K;
    let kind = match err.kind() {
        K::ConnectionRefused => FailureKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => FailureKind::Reset,
        K::UnexpectedEof => FailureKind::Closed,
        K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown | K::AddrNotAvailable => {
            FailureKind::Unreachable
        }
        K::TimedOut => FailureKind::Deadline,
        _ => FailureKind::Io,
    };
    Failure::new(kind, format!("{what}: {err}"))
}

fn connect_failure(err: &io::Error, addr: SocketAddr) -> Failure {
    let mut f = io_failure(err, &format!("connect to {addr}"));
    if f.kind == FailureKind::Io {
        f.kind = FailureKind::Unreachable;
    }
    f
}

/// The address this host sends from towards `via.real`, with `via.mark` (so that policy
/// routing on the mark is followed as the check's packets will follow it). A connected UDP
/// socket only looks the route up; nothing is sent.
fn source_towards(via: DataPath) -> Result<IpAddr, Failure> {
    let any: SocketAddr = if via.real.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = std::net::UdpSocket::bind(any).map_err(|e| io_failure(&e, "udp socket"))?;
    socket2::SockRef::from(&probe)
        .set_mark(via.mark)
        .map_err(|e| io_failure(&e, "SO_MARK (needs CAP_NET_ADMIN)"))?;
    probe
        .connect((via.real, 9))
        .map_err(|e| connect_failure(&e, SocketAddr::new(via.real, 9)))?;
    Ok(probe
        .local_addr()
        .map_err(|e| io_failure(&e, "getsockname"))?
        .ip())
}

/// Marks a check's socket and binds it for a data-path check.
fn steer(socket: socket2::SockRef<'_>, via: DataPath) -> Result<(), Failure> {
    socket
        .set_mark(via.mark)
        .map_err(|e| io_failure(&e, "SO_MARK (needs CAP_NET_ADMIN)"))?;
    let source = SocketAddr::new(source_towards(via)?, 0);
    socket
        .bind(&source.into())
        .map_err(|e| io_failure(&e, &format!("bind to {source}")))
}

/// Opens a fresh TCP connection; the connect itself is bounded by the check's deadline and
/// reported as a connect timeout when it runs out.
pub async fn connect_tcp(
    addr: SocketAddr,
    via: Option<DataPath>,
    deadline: Deadline,
) -> Result<TcpStream, Failure> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| io_failure(&e, "socket"))?;
    if let Some(via) = via {
        steer(socket2::SockRef::from(&socket), via)?;
    }
    match timeout_at(deadline.at(), socket.connect(addr)).await {
        Ok(Ok(stream)) => {
            // Checks write small requests and wait for the answer; Nagle only adds delay.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(connect_failure(&e, addr)),
        Err(_) => Err(Failure::new(
            FailureKind::ConnectTimeout,
            format!("connect to {addr}"),
        )),
    }
}

/// A connected UDP socket: `connect` sends nothing, it only fixes the peer so that ICMP
/// errors come back as `ConnectionRefused` on the next receive.
pub async fn connect_udp(addr: SocketAddr, via: Option<DataPath>) -> Result<UdpSocket, Failure> {
    let local: SocketAddr = match via {
        Some(via) => SocketAddr::new(source_towards(via)?, 0),
        None if addr.is_ipv4() => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        None => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| io_failure(&e, "udp socket"))?;
    if let Some(via) = via {
        socket2::SockRef::from(&socket)
            .set_mark(via.mark)
            .map_err(|e| io_failure(&e, "SO_MARK (needs CAP_NET_ADMIN)"))?;
    }
    socket
        .connect(addr)
        .await
        .map_err(|e| connect_failure(&e, addr))?;
    Ok(socket)
}

/// Receives one datagram of at most [`DATAGRAM_CAP`] bytes.
pub async fn recv_datagram(
    socket: &UdpSocket,
    deadline: Deadline,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    let mut buf = vec![0u8; DATAGRAM_CAP];
    let n = deadline.io(what, socket.recv(&mut buf)).await?;
    buf.truncate(n);
    Ok(buf)
}

/// A TCP stream with or without TLS, so that line protocols are written once.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl LineConn<Stream> {
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.stream {
            Stream::Plain(s) => s.local_addr().ok(),
            Stream::Tls(s) => s.get_ref().0.local_addr().ok(),
        }
    }
}

/// A connection read line by line with bounded buffering, for the text protocols.
pub struct LineConn<S> {
    stream: S,
    buf: Vec<u8>,
    deadline: Deadline,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineConn<S> {
    pub fn new(stream: S, deadline: Deadline) -> LineConn<S> {
        LineConn {
            stream,
            buf: Vec::with_capacity(512),
            deadline,
        }
    }

    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    pub fn into_inner(self) -> S {
        self.stream
    }

    /// The stream itself, for protocols with their own framing (LDAP). Bytes already
    /// buffered by `read_line` are not visible there, so do not mix the two.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// One line without its line ending (`\n`, `\r\n`). End of stream before a newline
    /// returns what was read if anything was, else a `Closed` failure.
    pub async fn read_line(&mut self, what: &str) -> Result<Vec<u8>, Failure> {
        let deadline = self.deadline;
        deadline
            .step(what, async {
                loop {
                    if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                        let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                        return Ok(line);
                    }
                    if self.buf.len() >= LINE_CAP {
                        return Err(Failure::new(
                            FailureKind::TooLarge,
                            format!("{what}: line longer than {LINE_CAP} bytes"),
                        ));
                    }
                    let mut chunk = [0u8; 2048];
                    let room = (LINE_CAP - self.buf.len()).min(chunk.len());
                    let n = self
                        .stream
                        .read(&mut chunk[..room])
                        .await
                        .map_err(|e| io_failure(&e, what))?;
                    if n == 0 {
                        if self.buf.is_empty() {
                            return Err(Failure::new(
                                FailureKind::Closed,
                                format!("{what}: connection closed"),
                            ));
                        }
                        return Ok(std::mem::take(&mut self.buf));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            })
            .await
    }

    /// Whatever arrives first, at most `cap` bytes (NNTP's `sysread($sock, $buf, 64)`).
    pub async fn read_some(&mut self, cap: usize, what: &str) -> Result<Vec<u8>, Failure> {
        if !self.buf.is_empty() {
            let n = cap.min(self.buf.len());
            return Ok(self.buf.drain(..n).collect());
        }
        let mut chunk = vec![0u8; cap];
        let n = self.deadline.io(what, self.stream.read(&mut chunk)).await?;
        if n == 0 {
            return Err(Failure::new(
                FailureKind::Closed,
                format!("{what}: connection closed"),
            ));
        }
        chunk.truncate(n);
        Ok(chunk)
    }

    pub async fn write_all(&mut self, data: &[u8], what: &str) -> Result<(), Failure> {
        let stream = &mut self.stream;
        self.deadline
            .io(what, async {
                stream.write_all(data).await?;
                stream.flush().await
            })
            .await
    }

    /// Half-closes the sending side (simpletcp).
    pub async fn shutdown_write(&mut self) -> Result<(), Failure> {
        let stream = &mut self.stream;
        self.deadline.io("half-close", stream.shutdown()).await
    }

    /// Best-effort goodbye (QUIT/LOGOUT) that never delays the verdict by more than a
    /// moment and never turns an up into a down.
    pub async fn farewell(&mut self, data: &[u8]) {
        let stream = &mut self.stream;
        let grace = self.deadline.remaining().min(Duration::from_millis(200));
        let _ = tokio::time::timeout(grace, async {
            stream.write_all(data).await?;
            stream.flush().await
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_and_capped() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        server
            .write_all(b"220 hello\r\nsecond\nthird")
            .await
            .unwrap();
        drop(server);
        let mut conn = LineConn::new(client, Deadline::after(Duration::from_secs(5)));
        assert_eq!(conn.read_line("a").await.unwrap(), b"220 hello");
        assert_eq!(conn.read_line("b").await.unwrap(), b"second");
        assert_eq!(conn.read_line("c").await.unwrap(), b"third");
        let err = conn.read_line("d").await.unwrap_err();
        assert_eq!(err.kind, FailureKind::Closed);

        let (client, mut server) = tokio::io::duplex(64 * 1024);
        server.write_all(&vec![b'x'; LINE_CAP + 10]).await.unwrap();
        let mut conn = LineConn::new(client, Deadline::after(Duration::from_secs(5)));
        let err = conn.read_line("long").await.unwrap_err();
        assert_eq!(err.kind, FailureKind::TooLarge);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_hits_the_deadline() {
        let (client, _server) = tokio::io::duplex(64);
        let mut conn = LineConn::new(client, Deadline::after(Duration::from_secs(3)));
        let err = conn.read_line("greeting").await.unwrap_err();
        assert_eq!(err.kind, FailureKind::Deadline);
        assert!(err.detail.contains("greeting"));
    }

    /// A data-path socket carries its mark and leaves from the address towards the real
    /// server (here: loopback to loopback; the kernel part is tested in the VM suite).
    #[tokio::test]
    async fn a_datapath_socket_is_marked_and_bound() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let via = DataPath {
            mark: 0x4c44_0007,
            real: "127.0.0.1".parse().unwrap(),
        };
        let deadline = Deadline::after(Duration::from_secs(5));
        let stream = match connect_tcp(listener.local_addr().unwrap(), Some(via), deadline).await {
            Ok(s) => s,
            Err(f) if f.detail.contains("SO_MARK") => {
                panic!("SO_MARK needs CAP_NET_ADMIN: run the tests as root ({f})")
            }
            Err(f) => panic!("{f}"),
        };
        assert_eq!(socket2::SockRef::from(&stream).mark().unwrap(), via.mark);
        assert_eq!(stream.local_addr().unwrap().ip(), via.real);

        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let udp = connect_udp(echo.local_addr().unwrap(), Some(via))
            .await
            .unwrap();
        assert_eq!(socket2::SockRef::from(&udp).mark().unwrap(), via.mark);
        assert_eq!(udp.local_addr().unwrap().ip(), via.real);

        // without a data path nothing changes: no mark, any source
        let plain = connect_tcp(listener.local_addr().unwrap(), None, deadline)
            .await
            .unwrap();
        assert_eq!(socket2::SockRef::from(&plain).mark().unwrap(), 0);
    }
}
