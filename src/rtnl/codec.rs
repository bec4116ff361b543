//! The rtnetlink messages this crate sends, sans-IO: RTM_GETADDR (dump), RTM_NEWADDR and
//! RTM_DELADDR for `realserver`, RTM_GETROUTE (one lookup, as `ip route get`) for `doctor`.
//! Built and parsed with `netlink-packet-route` and pinned here by bytes. The socket lives
//! in [`super::client`].

use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST, NetlinkBuffer,
    NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};

use super::error::RtnlError;

/// One address of the host as the kernel lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressEntry {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// What a route lookup found, as far as the director's checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Delivered out of an interface, directly or through a gateway.
    Unicast,
    /// A local address of this host.
    Local,
    /// Unreachable, prohibited, blackhole, or anything else that does not forward.
    NoRoute,
}

/// The answer to "how would this host send to that address?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub kind: RouteKind,
    /// The outgoing interface's index.
    pub oif: Option<u32>,
    /// The next hop, when the destination is not on a directly attached network.
    pub gateway: Option<IpAddr>,
    /// The source address this host would use.
    pub prefsrc: Option<IpAddr>,
}

/// What one received frame says about the request with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A dump entry (IPv4 or IPv6 address).
    Address(AddressEntry),
    /// The answer to a route lookup.
    Route(RouteEntry),
    /// A data frame of no interest (another family, another message type).
    Ignored,
    /// The end of a dump.
    Done,
    /// The request succeeded.
    Ack,
    /// The kernel refused: a positive errno.
    Error(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub seq: u32,
    pub reply: Reply,
    /// `NLM_F_DUMP_INTR`: the address list changed during the dump; it must be redone.
    pub interrupted: bool,
}

fn message(seq: u32, flags: u16, inner: RouteNetlinkMessage) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
    msg.finalize();
    let mut buf = vec![0u8; msg.header.length as usize];
    msg.serialize(&mut buf);
    buf
}

fn address_message(index: u32, addr: IpAddr, prefix_len: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = prefix_len;
    msg.header.scope = AddressScope::Universe;
    msg.header.index = index;
    // As `ip address add` sends it: IFA_LOCAL is the address, IFA_ADDRESS the same
    // address again (the peer of a point-to-point link, which a loopback has not).
    msg.attributes = vec![
        AddressAttribute::Local(addr),
        AddressAttribute::Address(addr),
    ];
    msg
}

/// Every address of every interface (both families).
pub fn dump_addresses(seq: u32) -> Vec<u8> {
    message(
        seq,
        NLM_F_REQUEST | NLM_F_DUMP,
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
    )
}

/// Adds `addr/prefix_len` to interface `index`; EEXIST if it is already there.
pub fn add_address(seq: u32, index: u32, addr: IpAddr, prefix_len: u8) -> Vec<u8> {
    let mut msg = address_message(index, addr, prefix_len);
    if addr.is_ipv6() {
        // Duplicate address detection would hold a VIP back as "tentative" for a second on
        // an interface that does it (not on `lo`); the director owns the VIP by design.
        msg.header.flags = AddressHeaderFlags::Nodad;
    }
    message(
        seq,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        RouteNetlinkMessage::NewAddress(msg),
    )
}

/// Removes `addr/prefix_len` from interface `index`; EADDRNOTAVAIL if it is not there.
pub fn delete_address(seq: u32, index: u32, addr: IpAddr, prefix_len: u8) -> Vec<u8> {
    message(
        seq,
        NLM_F_REQUEST | NLM_F_ACK,
        RouteNetlinkMessage::DelAddress(address_message(index, addr, prefix_len)),
    )
}

/// Looks up the route to `dst` (as `ip route get DST` does), optionally as a packet
/// carrying firewall mark `mark` would be routed.
pub fn get_route(seq: u32, dst: IpAddr, mark: Option<u32>) -> Vec<u8> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match dst {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
    msg.attributes = vec![RouteAttribute::Destination(RouteAddress::from(dst))];
    if let Some(mark) = mark {
        msg.attributes.push(RouteAttribute::Mark(mark));
    }
    message(seq, NLM_F_REQUEST, RouteNetlinkMessage::GetRoute(msg))
}

/// Splits a datagram into frames and reads each one.
pub fn decode(datagram: &[u8]) -> Result<Vec<Frame>, RtnlError> {
    let bad = |e: String| RtnlError::Decode(e);
    let mut frames = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let len = NetlinkBuffer::new_checked(rest)
            .map_err(|e| bad(e.to_string()))?
            .length() as usize;
        if len < 16 || len > rest.len() {
            return Err(bad(format!("frame length {len} of {} bytes", rest.len())));
        }
        let raw = &rest[..len];
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw)
            .map_err(|e| bad(e.to_string()))?;
        let reply = match msg.payload {
            NetlinkPayload::Done(_) => Reply::Done,
            NetlinkPayload::Error(e) => match e.code {
                None => Reply::Ack,
                Some(code) => Reply::Error(code.get().saturating_abs()),
            },
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => {
                entry(&a).map_or(Reply::Ignored, Reply::Address)
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
                Reply::Route(route(&r))
            }
            _ => Reply::Ignored,
        };
        frames.push(Frame {
            seq: msg.header.sequence_number,
            reply,
            interrupted: msg.header.flags & NLM_F_DUMP_INTR != 0,
        });
    }
    Ok(frames)
}

/// The address an entry stands for: IFA_LOCAL for IPv4 (IFA_ADDRESS is the peer on a
/// point-to-point link), IFA_ADDRESS for IPv6 (IFA_LOCAL appears only with a peer).
fn entry(msg: &AddressMessage) -> Option<AddressEntry> {
    let pick = |want_local: bool| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if want_local => Some(*ip),
            AddressAttribute::Address(ip) if !want_local => Some(*ip),
            _ => None,
        })
    };
    let addr = match msg.header.family {
        AddressFamily::Inet => pick(true).or_else(|| pick(false)),
        AddressFamily::Inet6 => pick(false).or_else(|| pick(true)),
        _ => None,
    }?;
    Some(AddressEntry {
        index: msg.header.index,
        addr,
        prefix_len: msg.header.prefix_len,
    })
}

fn ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route(msg: &RouteMessage) -> RouteEntry {
    let mut entry = RouteEntry {
        kind: match msg.header.kind {
            RouteType::Unicast => RouteKind::Unicast,
            RouteType::Local => RouteKind::Local,
            _ => RouteKind::NoRoute,
        },
        oif: None,
        gateway: None,
        prefsrc: None,
    };
    for a in &msg.attributes {
        match a {
            RouteAttribute::Oif(i) => entry.oif = Some(*i),
            RouteAttribute::Gateway(g) => entry.gateway = ip(g),
            RouteAttribute::PrefSource(p) => entry.prefsrc = ip(p),
            _ => {}
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(s: &str) -> (IpAddr, u8) {
        let addr: IpAddr = s.parse().unwrap();
        (addr, if addr.is_ipv4() { 32 } else { 128 })
    }

    /// `ip address add 10.0.0.100/32 dev lo` as strace shows it (seq 7, lo = index 1).
    #[rustfmt::skip]
    const NEWADDR_V4: &[u8] = &[
        40, 0, 0, 0,                    // nlmsg_len 40
        20, 0,                          // RTM_NEWADDR
        0x05, 0x06,                     // REQUEST | ACK | EXCL | CREATE
        7, 0, 0, 0,                     // seq
        0, 0, 0, 0,                     // port id: the kernel fills it in
        2, 32, 0, 0,                    // ifaddrmsg: AF_INET, /32, no flags, RT_SCOPE_UNIVERSE
        1, 0, 0, 0,                     //   ifa_index
        8, 0, 2, 0, 10, 0, 0, 100,      // IFA_LOCAL 10.0.0.100
        8, 0, 1, 0, 10, 0, 0, 100,      // IFA_ADDRESS 10.0.0.100
    ];

    #[test]
    fn newaddr_v4_bytes() {
        let (addr, prefix) = vip("10.0.0.100");
        assert_eq!(add_address(7, 1, addr, prefix), NEWADDR_V4);
    }

    #[test]
    fn newaddr_v6_is_nodad_host_route() {
        let (addr, prefix) = vip("fd00::100");
        let bytes = add_address(8, 1, addr, prefix);
        #[rustfmt::skip]
        let head: &[u8] = &[
            64, 0, 0, 0, 20, 0, 0x05, 0x06, 8, 0, 0, 0, 0, 0, 0, 0,
            10, 128, 0x02, 0, 1, 0, 0, 0,   // AF_INET6, /128, IFA_F_NODAD, universe, lo
            20, 0, 2, 0,                    // IFA_LOCAL, 16 bytes follow
        ];
        assert_eq!(&bytes[..head.len()], head);
        let addr: std::net::Ipv6Addr = "fd00::100".parse().unwrap();
        assert_eq!(&bytes[28..44], addr.octets());
        assert_eq!(&bytes[44..48], &[20, 0, 1, 0]);
        assert_eq!(&bytes[48..64], addr.octets());
    }

    #[test]
    fn deladdr_and_dump_bytes() {
        let del = delete_address(9, 1, "10.0.0.100".parse().unwrap(), 32);
        let mut want = NEWADDR_V4.to_vec();
        want[4] = 21; // RTM_DELADDR
        want[6..8].copy_from_slice(&[0x05, 0x00]); // REQUEST | ACK
        want[8] = 9;
        assert_eq!(del, want);
        #[rustfmt::skip]
        assert_eq!(dump_addresses(3), [
            24, 0, 0, 0, 22, 0, 0x01, 0x03, 3, 0, 0, 0, 0, 0, 0, 0, // RTM_GETADDR, REQUEST|DUMP
            0, 0, 0, 0, 0, 0, 0, 0,                                 // AF_UNSPEC: every family
        ]);
    }

    /// A dump reply as the kernel sends it (trimmed of IFA_CACHEINFO) followed by DONE, an
    /// ACK and an EEXIST error, all in one datagram.
    #[test]
    fn decodes_entries_done_ack_and_errors() {
        #[rustfmt::skip]
        let entry: &[u8] = &[
            76, 0, 0, 0, 20, 0, 0x02, 0x00, 3, 0, 0, 0, 0x39, 0x30, 0, 0, // NEWADDR, MULTI
            2, 8, 0x80, 0, 2, 0, 0, 0,          // AF_INET /8 PERMANENT universe, index 2
            8, 0, 1, 0, 10, 0, 0, 255,          // IFA_ADDRESS (peer)
            8, 0, 2, 0, 10, 0, 0, 1,            // IFA_LOCAL 10.0.0.1
            8, 0, 4, 0, 10, 255, 255, 255,      // IFA_BROADCAST
            9, 0, 3, 0, b'e', b't', b'h', b'0', 0, 0, 0, 0, // IFA_LABEL "eth0", padded
            8, 0, 8, 0, 0x80, 0, 0, 0,          // IFA_FLAGS
            8, 0, 0x63, 0, 1, 2, 3, 4,          // attribute 99: from a newer kernel
        ];
        let mut datagram = entry.to_vec();
        datagram.extend([
            20, 0, 0, 0, 3, 0, 0x02, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        let error = |seq: u8, code: i32| {
            let mut f = vec![36, 0, 0, 0, 2, 0, 0, 1, seq, 0, 0, 0, 0, 0, 0, 0];
            f.extend(code.to_ne_bytes());
            f.extend([16, 0, 0, 0, 20, 0, 5, 6, seq, 0, 0, 0, 0, 0, 0, 0]); // the request's header
            f
        };
        datagram.extend(error(4, 0));
        datagram.extend(error(5, -17));
        let frames = decode(&datagram).unwrap();
        let replies: Vec<(u32, Reply)> = frames.iter().map(|f| (f.seq, f.reply.clone())).collect();
        assert_eq!(
            replies,
            [
                (
                    3,
                    Reply::Address(AddressEntry {
                        index: 2,
                        addr: "10.0.0.1".parse().unwrap(),
                        prefix_len: 8
                    })
                ),
                (3, Reply::Done),
                (4, Reply::Ack),
                (5, Reply::Error(17)),
            ]
        );
        assert!(frames.iter().all(|f| !f.interrupted));
    }

    /// `ip route get 10.0.0.11 mark 0x10000` as strace shows it, and a kernel answer
    /// (a route through a gateway, attributes as 6.1 sends them).
    #[test]
    fn route_lookup_bytes_and_answer() {
        #[rustfmt::skip]
        assert_eq!(get_route(5, "10.0.0.11".parse().unwrap(), Some(0x10000)), [
            44, 0, 0, 0, 26, 0, 0x01, 0x00, 5, 0, 0, 0, 0, 0, 0, 0, // RTM_GETROUTE, REQUEST
            2, 32, 0, 0,                    // rtmsg: AF_INET, dst /32, src /0, tos 0
            0, 0, 0, 0,                     //   table, protocol, scope, type: unspecified
            0, 0, 0, 0,                     //   flags
            8, 0, 1, 0, 10, 0, 0, 11,       // RTA_DST
            8, 0, 16, 0, 0, 0, 1, 0,        // RTA_MARK 0x10000
        ]);
        #[rustfmt::skip]
        let answer: &[u8] = &[
            68, 0, 0, 0, 24, 0, 0, 0, 5, 0, 0, 0, 0x39, 0x30, 0, 0, // RTM_NEWROUTE
            2, 32, 0, 0, 254, 0, 0, 1,      // AF_INET /32, table main, unicast
            0, 2, 0, 0,                     // flags: RTM_F_CLONED
            8, 0, 15, 0, 254, 0, 0, 0,      // RTA_TABLE
            8, 0, 1, 0, 192, 0, 2, 7,       // RTA_DST
            8, 0, 4, 0, 3, 0, 0, 0,         // RTA_OIF 3
            8, 0, 7, 0, 10, 0, 0, 1,        // RTA_PREFSRC 10.0.0.1
            8, 0, 5, 0, 10, 0, 0, 254,      // RTA_GATEWAY 10.0.0.254
        ];
        let frames = decode(answer).unwrap();
        assert_eq!(
            frames[0].reply,
            Reply::Route(RouteEntry {
                kind: RouteKind::Unicast,
                oif: Some(3),
                gateway: Some("10.0.0.254".parse().unwrap()),
                prefsrc: Some("10.0.0.1".parse().unwrap()),
            })
        );
    }

    #[test]
    fn an_interrupted_dump_is_flagged() {
        let mut datagram = vec![20, 0, 0, 0, 3, 0, 0x12, 0, 3, 0, 0, 0, 0, 0, 0, 0];
        datagram.extend([0, 0, 0, 0]);
        assert!(decode(&datagram).unwrap()[0].interrupted);
    }

    #[test]
    fn short_or_overlong_frames_are_errors() {
        assert!(decode(&[1, 2, 3]).is_err());
        assert!(decode(&[200, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode(&[8, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    proptest::proptest! {
        /// Arbitrary bytes behind a plausible header: an error or frames, never a panic.
        #[test]
        fn decoding_never_panics(
            kind in proptest::sample::select(vec![2u16, 3, 20, 21, 22, 16, 99]),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let mut bytes = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
            bytes.extend(kind.to_ne_bytes());
            bytes.extend([0u8; 10]);
            bytes.extend(&body);
            let _ = decode(&bytes);
            let _ = decode(&body);
        }
    }
}
