//! `RtnlClient`: the host's addresses and routes over one rtnetlink socket, every round
//! trip inside a deadline. The bytes are built and read in [`super::codec`].

use std::net::IpAddr;
use std::time::Duration;

use netlink_sys::{AsyncSocket, AsyncSocketExt, TokioSocket, protocols::NETLINK_ROUTE};
use tokio::time::{Instant, timeout_at};

use super::codec::{self, AddressEntry, Reply, RouteEntry};
use super::error::RtnlError;

/// The kernel sizes dump datagrams after the reader's buffer, up to 32 KiB.
const RECV_BUFFER: usize = 64 * 1024;
/// More addresses than any real host has; a longer dump is refused rather than held.
const MAX_ENTRIES: usize = 200_000;
/// A dump that raced with address changes is redone this many times.
const DUMP_ATTEMPTS: usize = 3;

const EEXIST: i32 = 17;
const EADDRNOTAVAIL: i32 = 99;

/// Whether a change was made or the table was already so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Made,
    AlreadySo,
}

/// The current network namespace's addresses and routes.
pub struct RtnlClient {
    socket: TokioSocket,
    next_seq: u32,
    timeout: Duration,
    buf: Vec<u8>,
}

impl std::fmt::Debug for RtnlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtnlClient")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RtnlClient {
    /// Opens the socket; `timeout` bounds each round trip.
    pub fn open(timeout: Duration) -> Result<RtnlClient, RtnlError> {
        let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
        socket.socket_mut().bind_auto()?;
        Ok(RtnlClient {
            socket,
            // Unpredictable, so that a late reply to an earlier user of the port cannot
            // pass for ours; never 0, which the kernel's own notifications carry.
            next_seq: getrandom::u32().unwrap_or(1).max(1),
            timeout,
            buf: vec![0u8; RECV_BUFFER],
        })
    }

    /// Talks to netlink port `port` instead of the kernel (tests play the kernel).
    #[cfg(test)]
    fn connect_to(&mut self, port: u32) -> Result<(), RtnlError> {
        Ok(self
            .socket
            .socket_mut()
            .connect(&netlink_sys::SocketAddr::new(port, 0))?)
    }

    fn seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1).max(1);
        seq
    }

    /// Sends `request` (already numbered `seq`) and reads until the kernel closes it,
    /// handing every reply for it to `each`. Returns whether a dump was interrupted.
    async fn round_trip(
        &mut self,
        request: &[u8],
        seq: u32,
        what: &str,
        mut each: impl FnMut(Reply) -> Result<(), RtnlError>,
    ) -> Result<bool, RtnlError> {
        let deadline = Instant::now() + self.timeout;
        let timed_out = |_| RtnlError::Timeout(self.timeout);
        let sent = timeout_at(deadline, self.socket.send(request))
            .await
            .map_err(timed_out)??;
        if sent != request.len() {
            return Err(RtnlError::Decode(format!(
                "short send: {sent} of {} bytes",
                request.len()
            )));
        }
        let mut interrupted = false;
        loop {
            let mut free: &mut [u8] = &mut self.buf[..];
            timeout_at(deadline, self.socket.recv(&mut free))
                .await
                .map_err(timed_out)??;
            let len = RECV_BUFFER - free.len();
            for frame in codec::decode(&self.buf[..len])? {
                // Replies to a request that timed out earlier, or notifications.
                if frame.seq != seq {
                    continue;
                }
                interrupted |= frame.interrupted;
                match frame.reply {
                    Reply::Done | Reply::Ack => return Ok(interrupted),
                    Reply::Error(errno) => {
                        return Err(RtnlError::Kernel {
                            what: what.to_string(),
                            errno,
                        });
                    }
                    Reply::Ignored => {}
                    reply => {
                        each(reply)?;
                        // A lookup (no dump, no ACK asked) ends with its one answer.
                        if matches!(request_kind(request), RequestKind::Single) {
                            return Ok(interrupted);
                        }
                    }
                }
            }
        }
    }

    /// Every address, as the kernel reports it (interface indexes, no names).
    pub async fn addresses(&mut self) -> Result<Vec<AddressEntry>, RtnlError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let seq = self.seq();
            let request = codec::dump_addresses(seq);
            let mut entries = Vec::new();
            let interrupted = self
                .round_trip(&request, seq, "listing addresses", |reply| {
                    if let Reply::Address(entry) = reply {
                        if entries.len() >= MAX_ENTRIES {
                            return Err(RtnlError::Decode(format!(
                                "more than {MAX_ENTRIES} addresses"
                            )));
                        }
                        entries.push(entry);
                    }
                    Ok(())
                })
                .await?;
            if !interrupted || attempt >= DUMP_ATTEMPTS {
                return Ok(entries);
            }
        }
    }

    /// Adds `addr/prefix_len` to interface `index`.
    pub async fn add_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<Change, RtnlError> {
        let seq = self.seq();
        let request = codec::add_address(seq, index, addr, prefix_len);
        let what = format!("adding {addr}/{prefix_len}");
        match self.round_trip(&request, seq, &what, |_| Ok(())).await {
            Ok(_) => Ok(Change::Made),
            Err(e) if e.errno() == Some(EEXIST) => Ok(Change::AlreadySo),
            Err(e) => Err(e),
        }
    }

    /// Removes `addr/prefix_len` from interface `index`.
    pub async fn delete_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<Change, RtnlError> {
        let seq = self.seq();
        let request = codec::delete_address(seq, index, addr, prefix_len);
        let what = format!("removing {addr}/{prefix_len}");
        match self.round_trip(&request, seq, &what, |_| Ok(())).await {
            Ok(_) => Ok(Change::Made),
            Err(e) if e.errno() == Some(EADDRNOTAVAIL) => Ok(Change::AlreadySo),
            Err(e) => Err(e),
        }
    }

    /// How this host would route a packet to `dst` (carrying firewall mark `mark`).
    pub async fn route_to(
        &mut self,
        dst: IpAddr,
        mark: Option<u32>,
    ) -> Result<RouteEntry, RtnlError> {
        let seq = self.seq();
        let request = codec::get_route(seq, dst, mark);
        let what = format!("a route lookup for {dst}");
        let mut found = None;
        self.round_trip(&request, seq, &what, |reply| {
            if let Reply::Route(r) = reply {
                found = Some(r);
            }
            Ok(())
        })
        .await?;
        found.ok_or_else(|| RtnlError::Decode(format!("no route in the answer for {dst}")))
    }
}

enum RequestKind {
    /// Answered by a dump (`NLMSG_DONE`) or an ACK.
    Closed,
    /// Answered by one message and nothing after it.
    Single,
}

/// `NLM_F_DUMP` and `NLM_F_ACK` requests end with DONE or an ACK; anything else with its
/// one answer (or an error).
fn request_kind(request: &[u8]) -> RequestKind {
    let flags = request
        .get(6..8)
        .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
    let closed = netlink_packet_core::NLM_F_DUMP | netlink_packet_core::NLM_F_ACK;
    if flags & closed != 0 {
        RequestKind::Closed
    } else {
        RequestKind::Single
    }
}

/// The name of interface `index`, or `if<N>` for one that vanished.
pub fn if_name(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .ok()
        .and_then(|c| c.into_string().ok())
        .unwrap_or_else(|| format!("if{index}"))
}

/// The index of interface `name`, if there is one.
pub fn if_index(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading is harmless: the host's own loopback has 127.0.0.1/8, and the route to
    /// 127.0.0.1 is a local one.
    #[tokio::test]
    async fn reads_this_hosts_loopback() {
        let mut client = RtnlClient::open(Duration::from_secs(5)).unwrap();
        let all = client.addresses().await.unwrap();
        let lo = if_index("lo").unwrap();
        assert_eq!(if_name(lo), "lo");
        assert!(
            all.iter().any(|a| a.index == lo
                && a.addr == IpAddr::from([127, 0, 0, 1])
                && a.prefix_len == 8),
            "{all:?}"
        );
        assert_eq!(if_index("nosuchif0"), None);
        let route = client
            .route_to(IpAddr::from([127, 0, 0, 1]), None)
            .await
            .unwrap();
        assert_eq!(route.kind, super::super::RouteKind::Local);
        assert_eq!(route.oif, Some(lo));
    }

    /// A peer socket that reads requests and answers with `answer(request)`.
    async fn peer<F>(answer: F) -> u32
    where
        F: Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
    {
        let mut socket = TokioSocket::new(NETLINK_ROUTE).unwrap();
        let addr = socket.socket_mut().bind_auto().unwrap();
        tokio::spawn(async move {
            loop {
                let mut buf = Vec::with_capacity(65536);
                let Ok(from) = socket.recv_from(&mut buf).await else {
                    return;
                };
                for datagram in answer(&buf) {
                    let _ = socket.send_to(&datagram, &from).await;
                }
            }
        });
        addr.port_number()
    }

    fn error_frame(seq: u32, code: i32) -> Vec<u8> {
        let mut f = vec![36, 0, 0, 0, 2, 0, 0, 1];
        f.extend(seq.to_ne_bytes());
        f.extend([0, 0, 0, 0]);
        f.extend(code.to_ne_bytes());
        f.extend([16, 0, 0, 0, 20, 0, 5, 6]);
        f.extend(seq.to_ne_bytes());
        f.extend([0, 0, 0, 0]);
        f
    }

    fn seq_of(request: &[u8]) -> u32 {
        u32::from_ne_bytes(request[8..12].try_into().unwrap())
    }

    /// Unicast between user sockets on NETLINK_ROUTE needs CAP_NET_ADMIN, which the test
    /// machines (and the VM) have; anywhere else, say so instead of failing obscurely.
    async fn client_talking_to(port: u32, timeout: Duration) -> RtnlClient {
        let mut client = RtnlClient::open(timeout).unwrap();
        client.connect_to(port).unwrap();
        client
    }

    #[tokio::test]
    async fn stale_replies_are_skipped_and_errnos_mapped() {
        let port = peer(|request| {
            let seq = seq_of(request);
            // a late answer to an older request first, then ours
            vec![error_frame(seq.wrapping_sub(1), -1), error_frame(seq, -17)]
        })
        .await;
        let mut client = client_talking_to(port, Duration::from_secs(5)).await;
        let vip: IpAddr = "10.0.0.100".parse().unwrap();
        match client.add_address(1, vip, 32).await {
            Ok(change) => assert_eq!(change, Change::AlreadySo),
            Err(RtnlError::Io(e)) if e.raw_os_error() == Some(1) => {
                panic!("needs CAP_NET_ADMIN to play the kernel: run the tests as root")
            }
            Err(e) => panic!("{e}"),
        }
        let port = peer(|request| vec![error_frame(seq_of(request), -1)]).await;
        let mut client = client_talking_to(port, Duration::from_secs(5)).await;
        let err = client.add_address(1, vip, 32).await.unwrap_err();
        assert_eq!(err.errno(), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_kernel_is_a_timeout_not_a_hang() {
        let port = peer(|_| Vec::new()).await;
        let mut client = client_talking_to(port, Duration::from_millis(300)).await;
        let err = client.addresses().await.unwrap_err();
        assert!(matches!(err, RtnlError::Timeout(_)), "{err}");
    }
}
