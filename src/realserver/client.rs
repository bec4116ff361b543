//! `RtnlClient`: the host's addresses over one rtnetlink socket, every round trip inside
//! a deadline. The bytes are built and read in [`super::rtnl`].

use std::net::IpAddr;
use std::time::Duration;

use netlink_sys::{AsyncSocket, AsyncSocketExt, TokioSocket, protocols::NETLINK_ROUTE};
use tokio::time::{Instant, timeout_at};

use super::addresses::{AddressTable, Change, HostAddress};
use super::error::RealServerError;
use super::rtnl::{self, AddressEntry, Reply};
use super::vip::Vip;

/// The kernel sizes dump datagrams after the reader's buffer, up to 32 KiB.
const RECV_BUFFER: usize = 64 * 1024;
/// More addresses than any real host has; a longer dump is refused rather than held.
const MAX_ENTRIES: usize = 200_000;
/// A dump that raced with address changes is redone this many times.
const DUMP_ATTEMPTS: usize = 3;

const EEXIST: i32 = 17;
const EADDRNOTAVAIL: i32 = 99;

/// The current network namespace's address table.
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
    pub fn open(timeout: Duration) -> Result<RtnlClient, RealServerError> {
        let mut socket = TokioSocket::new(NETLINK_ROUTE).map_err(RealServerError::Netlink)?;
        socket
            .socket_mut()
            .bind_auto()
            .map_err(RealServerError::Netlink)?;
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
    fn connect_to(&mut self, port: u32) -> Result<(), RealServerError> {
        self.socket
            .socket_mut()
            .connect(&netlink_sys::SocketAddr::new(port, 0))
            .map_err(RealServerError::Netlink)
    }

    fn seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1).max(1);
        seq
    }

    /// Sends `request` (already numbered `seq`) and reads until the kernel closes it.
    /// Returns the dump entries and whether the dump was interrupted.
    async fn round_trip(
        &mut self,
        request: &[u8],
        seq: u32,
        what: &str,
    ) -> Result<(Vec<AddressEntry>, bool), RealServerError> {
        let deadline = Instant::now() + self.timeout;
        let timed_out = |_| RealServerError::Timeout(self.timeout);
        let sent = timeout_at(deadline, self.socket.send(request))
            .await
            .map_err(timed_out)?
            .map_err(RealServerError::Netlink)?;
        if sent != request.len() {
            return Err(RealServerError::Decode(format!(
                "short send: {sent} of {} bytes",
                request.len()
            )));
        }
        let mut entries = Vec::new();
        let mut interrupted = false;
        loop {
            let mut free: &mut [u8] = &mut self.buf[..];
            timeout_at(deadline, self.socket.recv(&mut free))
                .await
                .map_err(timed_out)?
                .map_err(RealServerError::Netlink)?;
            let len = RECV_BUFFER - free.len();
            for frame in rtnl::decode(&self.buf[..len])? {
                // Replies to a request that timed out earlier, or notifications.
                if frame.seq != seq {
                    continue;
                }
                interrupted |= frame.interrupted;
                match frame.reply {
                    Reply::Address(entry) => {
                        if entries.len() >= MAX_ENTRIES {
                            return Err(RealServerError::Decode(format!(
                                "more than {MAX_ENTRIES} addresses"
                            )));
                        }
                        entries.push(entry);
                    }
                    Reply::Ignored => {}
                    Reply::Done | Reply::Ack => return Ok((entries, interrupted)),
                    Reply::Error(errno) => {
                        return Err(RealServerError::Kernel {
                            what: what.to_string(),
                            errno,
                        });
                    }
                }
            }
        }
    }

    /// Every address, as the kernel reports it (interface indexes, no names).
    pub async fn entries(&mut self) -> Result<Vec<AddressEntry>, RealServerError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let seq = self.seq();
            let request = rtnl::dump_addresses(seq);
            let (entries, interrupted) =
                self.round_trip(&request, seq, "listing addresses").await?;
            if !interrupted || attempt >= DUMP_ATTEMPTS {
                return Ok(entries);
            }
        }
    }
}

/// The interface's name, or `if<N>` for one that vanished after the dump.
fn if_name(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .ok()
        .and_then(|c| c.into_string().ok())
        .unwrap_or_else(|| format!("if{index}"))
}

impl AddressTable for RtnlClient {
    async fn list(&mut self) -> Result<Vec<HostAddress>, RealServerError> {
        let entries = self.entries().await?;
        let mut names: Vec<(u32, String)> = Vec::new();
        Ok(entries
            .into_iter()
            .map(|e| {
                let dev = match names.iter().find(|(i, _)| *i == e.index) {
                    Some((_, n)) => n.clone(),
                    None => {
                        let n = if_name(e.index);
                        names.push((e.index, n.clone()));
                        n
                    }
                };
                HostAddress {
                    dev,
                    index: e.index,
                    addr: e.addr,
                    prefix_len: e.prefix_len,
                }
            })
            .collect())
    }

    fn index_of(&mut self, dev: &str) -> Result<u32, RealServerError> {
        super::sysctl::check_iface_name(dev)?;
        nix::net::if_::if_nametoindex(dev)
            .map_err(|_| RealServerError::NoSuchDevice(dev.to_string()))
    }

    async fn add(&mut self, index: u32, vip: Vip) -> Result<Change, RealServerError> {
        let seq = self.seq();
        let request = rtnl::add_address(seq, index, vip);
        match self
            .round_trip(&request, seq, &format!("adding {vip}"))
            .await
        {
            Ok(_) => Ok(Change::Made),
            Err(e) if e.errno() == Some(EEXIST) => Ok(Change::AlreadySo),
            Err(e) => Err(e),
        }
    }

    async fn remove(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<Change, RealServerError> {
        let seq = self.seq();
        let request = rtnl::delete_address(seq, index, addr, prefix_len);
        let what = format!("removing {addr}/{prefix_len}");
        match self.round_trip(&request, seq, &what).await {
            Ok(_) => Ok(Change::Made),
            Err(e) if e.errno() == Some(EADDRNOTAVAIL) => Ok(Change::AlreadySo),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading is harmless: the host's own loopback has 127.0.0.1/8.
    #[tokio::test]
    async fn lists_this_hosts_loopback() {
        let mut client = RtnlClient::open(Duration::from_secs(5)).unwrap();
        let all = client.list().await.unwrap();
        assert!(
            all.iter().any(|a| a.dev == "lo"
                && a.addr == IpAddr::from([127, 0, 0, 1])
                && a.prefix_len == 8),
            "{all:?}"
        );
        assert_eq!(client.index_of("lo").unwrap(), 1);
        assert!(matches!(
            client.index_of("nosuchif0"),
            Err(RealServerError::NoSuchDevice(_))
        ));
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
        let vip = Vip::new("10.0.0.100".parse().unwrap()).unwrap();
        match client.add(1, vip).await {
            Ok(change) => assert_eq!(change, Change::AlreadySo),
            Err(RealServerError::Netlink(e)) if e.raw_os_error() == Some(1) => {
                panic!("needs CAP_NET_ADMIN to play the kernel: run the tests as root")
            }
            Err(e) => panic!("{e}"),
        }
        let port = peer(|request| vec![error_frame(seq_of(request), -1)]).await;
        let mut client = client_talking_to(port, Duration::from_secs(5)).await;
        let err = client.add(1, vip).await.unwrap_err();
        assert_eq!(err.errno(), Some(1));
        assert!(err.hint().unwrap().contains("root"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_kernel_is_a_timeout_not_a_hang() {
        let port = peer(|_| Vec::new()).await;
        let mut client = client_talking_to(port, Duration::from_millis(300)).await;
        let err = client.entries().await.unwrap_err();
        assert!(matches!(err, RealServerError::Timeout(_)), "{err}");
    }
}
