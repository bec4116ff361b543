//! `checktype=ping`: ICMP echo, up to `checkcount` tries of `checktimeout` each (Net::Ping
//! `icmp` in Perl). IPv6 gets ICMPv6 echo, which the Perl man page does not promise.
//!
//! An unprivileged ICMP datagram socket is tried first (allowed by
//! `net.ipv4.ping_group_range`), then a raw socket (needs CAP_NET_RAW).

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol as SockProtocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::timeout;

use super::net::{Deadline, io_failure};
use super::outcome::{CheckResult, Failure, FailureKind};
use super::random;

const PAYLOAD_LEN: usize = 56;

struct Pinger {
    fd: AsyncFd<Socket>,
    /// Raw IPv4 sockets deliver the IP header too; datagram sockets and IPv6 do not.
    has_ip_header: bool,
    /// Raw sockets see every echo on the host, so replies are matched on our identifier.
    match_id: bool,
    v6: bool,
}

fn open(addr: IpAddr) -> Result<Pinger, Failure> {
    let (domain, proto) = match addr {
        IpAddr::V4(_) => (Domain::IPV4, SockProtocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, SockProtocol::ICMPV6),
    };
    let (socket, raw) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(_) => match Socket::new(domain, Type::RAW, Some(proto)) {
            Ok(s) => (s, true),
            Err(e) => {
                return Err(Failure::new(
                    FailureKind::Unsupported,
                    format!("ICMP socket (needs CAP_NET_RAW or ping_group_range): {e}"),
                ));
            }
        },
    };
    socket
        .set_nonblocking(true)
        .map_err(|e| io_failure(&e, "icmp socket"))?;
    // The AsyncFd owns the socket (and so its descriptor) for its whole life, which is the
    // I/O-safety condition `AsyncFd::new`'s deprecation is about; the replacement is unsafe.
    #[allow(deprecated)]
    let fd = AsyncFd::new(socket).map_err(|e| io_failure(&e, "icmp socket"))?;
    Ok(Pinger {
        fd,
        has_ip_header: raw && addr.is_ipv4(),
        match_id: raw,
        v6: addr.is_ipv6(),
    })
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request; for IPv6 the kernel fills in the checksum (it needs the pseudo-header).
pub(crate) fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + payload.len());
    p.push(if v6 { 128 } else { 8 });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Is this packet the echo reply to our request?
pub(crate) fn is_reply(
    packet: &[u8],
    has_ip_header: bool,
    v6: bool,
    id: Option<u16>,
    seq: u16,
    payload: &[u8],
) -> bool {
    let icmp = if has_ip_header {
        let Some(&first) = packet.first() else {
            return false;
        };
        let ihl = usize::from(first & 0x0f) * 4;
        match packet.get(ihl..) {
            Some(rest) => rest,
            None => return false,
        }
    } else {
        packet
    };
    if icmp.len() < 8 || icmp[0] != if v6 { 129 } else { 0 } || icmp[1] != 0 {
        return false;
    }
    if let Some(id) = id
        && icmp[4..6] != id.to_be_bytes()
    {
        return false;
    }
    icmp[6..8] == seq.to_be_bytes() && &icmp[8..] == payload
}

impl Pinger {
    async fn send(&self, to: SocketAddr, packet: &[u8]) -> io::Result<()> {
        let to = SockAddr::from(to);
        self.fd
            .async_io(Interest::WRITABLE, |s| s.send_to(packet, &to))
            .await
            .map(|_| ())
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |mut s| s.read(buf))
            .await
    }

    async fn try_once(&self, addr: IpAddr, id: u16, seq: u16) -> Result<bool, Failure> {
        let mut payload = [0u8; PAYLOAD_LEN];
        random::fill(&mut payload);
        let request = echo_request(self.v6, id, seq, &payload);
        self.send(SocketAddr::new(addr, 0), &request)
            .await
            .map_err(|e| io_failure(&e, "icmp send"))?;
        let mut buf = [0u8; 2048];
        loop {
            let n = self
                .recv(&mut buf)
                .await
                .map_err(|e| io_failure(&e, "icmp receive"))?;
            let id = self.match_id.then_some(id);
            if is_reply(&buf[..n], self.has_ip_header, self.v6, id, seq, &payload) {
                return Ok(true);
            }
        }
    }
}

pub async fn check(addr: IpAddr, tries: u32, per_try: Duration, deadline: Deadline) -> CheckResult {
    let pinger = open(addr)?;
    let id = random::u16();
    for attempt in 0..tries.max(1) {
        let seq = attempt as u16;
        let limit = per_try.min(deadline.remaining());
        match timeout(limit, pinger.try_once(addr, id, seq)).await {
            Ok(Ok(true)) => return Ok(()),
            Ok(Ok(false)) | Err(_) => continue,
            Ok(Err(e)) => return Err(e),
        }
    }
    Err(Failure::new(
        FailureKind::Deadline,
        format!("no echo reply to {} tries of {per_try:?}", tries.max(1)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_bytes() {
        // type 8, code 0, checksum, id 0x1234, seq 1, payload "ab"
        let p = echo_request(false, 0x1234, 1, b"ab");
        assert_eq!(p, [8, 0, 0x84, 0x68, 0x12, 0x34, 0, 1, b'a', b'b']);
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn replies_are_matched_on_type_seq_and_payload() {
        let mut reply = echo_request(false, 7, 3, b"xyz");
        reply[0] = 0;
        assert!(is_reply(&reply, false, false, Some(7), 3, b"xyz"));
        assert!(!is_reply(&reply, false, false, Some(8), 3, b"xyz"));
        assert!(!is_reply(&reply, false, false, None, 4, b"xyz"));
        assert!(!is_reply(&reply, false, false, None, 3, b"xyq"));
        let request = echo_request(false, 7, 3, b"xyz");
        assert!(!is_reply(&request, false, false, None, 3, b"xyz"));
        let mut with_ip = vec![0x45; 1];
        with_ip.extend_from_slice(&[0; 19]);
        with_ip.extend_from_slice(&reply);
        assert!(is_reply(&with_ip, true, false, Some(7), 3, b"xyz"));
        assert!(!is_reply(&[0x4f], true, false, None, 3, b""));
    }
}
