//! Property tests: every IPVS attribute and message survives emit → parse, and model
//! values survive model → attributes → model. Hand-written kind/parse tables drift
//! (ethtool once mapped a TX attribute to the RX number); these catch that for every
//! variant.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ldirectord::ipvs::codec::{
    DaemonAttr, DestAttr, FlagsMask, IpvsAttr, IpvsCmd, IpvsMessage, Nested, StatKind, StatsAttr,
    SvcAttr,
};
use ldirectord::ipvs::exchange;
use ldirectord::ipvs::{
    Daemon, DaemonState, Dest, Family, Forward, Netmask, Protocol, Service, ServiceFlags,
    ServiceKey, Stats, Tunnel, TunnelFlags, TunnelType, convert,
};
use netlink_packet_core::{DefaultNla, Emitable, Nla, NlaBuffer};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9_.-]{0,15}"
}

/// An attribute number none of the tables use, with an arbitrary payload.
fn unknown(first_free: u16) -> impl Strategy<Value = DefaultNla> {
    (
        first_free..0x3fff,
        proptest::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(kind, value)| DefaultNla::new(kind, value))
}

fn stats_attr() -> impl Strategy<Value = StatsAttr> {
    let kind = proptest::sample::select(StatKind::ALL.to_vec());
    prop_oneof![
        (kind.clone(), any::<u32>()).prop_map(|(k, v)| StatsAttr::U32(k, v)),
        (kind, any::<u64>()).prop_map(|(k, v)| StatsAttr::U64(k, v)),
        // 11 is PAD, kept raw like anything unknown.
        unknown(11).prop_map(StatsAttr::Other),
    ]
}

fn nest<T: std::fmt::Debug>(inner: impl Strategy<Value = T>) -> impl Strategy<Value = Nested<T>> {
    (proptest::collection::vec(inner, 0..6), any::<bool>())
        .prop_map(|(attrs, flag)| Nested { attrs, flag })
}

fn addr_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=16)
}

fn svc_attr() -> impl Strategy<Value = SvcAttr> {
    prop_oneof![
        any::<u16>().prop_map(SvcAttr::Af),
        any::<u16>().prop_map(SvcAttr::Protocol),
        addr_bytes().prop_map(SvcAttr::Addr),
        any::<u16>().prop_map(SvcAttr::Port),
        any::<u32>().prop_map(SvcAttr::Fwmark),
        name().prop_map(SvcAttr::SchedName),
        (any::<u32>(), any::<u32>())
            .prop_map(|(flags, mask)| SvcAttr::Flags(FlagsMask { flags, mask })),
        any::<u32>().prop_map(SvcAttr::Timeout),
        any::<u32>().prop_map(SvcAttr::Netmask),
        nest(stats_attr()).prop_map(SvcAttr::Stats),
        name().prop_map(SvcAttr::PeName),
        nest(stats_attr()).prop_map(SvcAttr::Stats64),
        unknown(13).prop_map(SvcAttr::Other),
    ]
}

fn dest_attr() -> impl Strategy<Value = DestAttr> {
    prop_oneof![
        addr_bytes().prop_map(DestAttr::Addr),
        any::<u16>().prop_map(DestAttr::Port),
        any::<u32>().prop_map(DestAttr::FwdMethod),
        any::<u32>().prop_map(DestAttr::Weight),
        any::<u32>().prop_map(DestAttr::UThresh),
        any::<u32>().prop_map(DestAttr::LThresh),
        any::<u32>().prop_map(DestAttr::ActiveConns),
        any::<u32>().prop_map(DestAttr::InactConns),
        any::<u32>().prop_map(DestAttr::PersistConns),
        nest(stats_attr()).prop_map(DestAttr::Stats),
        any::<u16>().prop_map(DestAttr::AddrFamily),
        nest(stats_attr()).prop_map(DestAttr::Stats64),
        any::<u8>().prop_map(DestAttr::TunType),
        any::<u16>().prop_map(DestAttr::TunPort),
        any::<u16>().prop_map(DestAttr::TunFlags),
        unknown(16).prop_map(DestAttr::Other),
    ]
}

fn daemon_attr() -> impl Strategy<Value = DaemonAttr> {
    prop_oneof![
        any::<u32>().prop_map(DaemonAttr::State),
        name().prop_map(DaemonAttr::McastIfn),
        any::<u32>().prop_map(DaemonAttr::SyncId),
        any::<u16>().prop_map(DaemonAttr::SyncMaxlen),
        any::<[u8; 4]>().prop_map(|a| DaemonAttr::McastGroup(Ipv4Addr::from(a))),
        any::<[u8; 16]>().prop_map(|a| DaemonAttr::McastGroup6(Ipv6Addr::from(a))),
        any::<u16>().prop_map(DaemonAttr::McastPort),
        any::<u8>().prop_map(DaemonAttr::McastTtl),
        unknown(9).prop_map(DaemonAttr::Other),
    ]
}

fn ipvs_attr() -> impl Strategy<Value = IpvsAttr> {
    prop_oneof![
        nest(svc_attr()).prop_map(IpvsAttr::Service),
        nest(dest_attr()).prop_map(IpvsAttr::Dest),
        nest(daemon_attr()).prop_map(IpvsAttr::Daemon),
        any::<u32>().prop_map(IpvsAttr::TimeoutTcp),
        any::<u32>().prop_map(IpvsAttr::TimeoutTcpFin),
        any::<u32>().prop_map(IpvsAttr::TimeoutUdp),
        unknown(7).prop_map(IpvsAttr::Other),
    ]
}

fn emit<T: Nla>(attr: &T) -> Vec<u8> {
    let mut bytes = vec![0u8; attr.buffer_len()];
    attr.emit(&mut bytes);
    bytes
}

fn buf(bytes: &[u8]) -> NlaBuffer<&[u8]> {
    NlaBuffer::new_checked(bytes).unwrap()
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::Inet), Just(Family::Inet6)]
}

fn stats() -> impl Strategy<Value = Stats> {
    any::<[u64; 10]>().prop_map(|v| Stats {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
        cps: v[5],
        inpps: v[6],
        outpps: v[7],
        inbps: v[8],
        outbps: v[9],
    })
}

fn service() -> impl Strategy<Value = Service> {
    let key = prop_oneof![
        (any::<u16>(), ip(), any::<u16>()).prop_map(|(p, addr, port)| ServiceKey::Addr {
            protocol: Protocol::from_number(p),
            addr,
            port
        }),
        (family(), 1..=u32::MAX).prop_map(|(family, mark)| ServiceKey::Fwmark { family, mark }),
    ];
    (
        key,
        name(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of("[a-z]{1,15}"),
        stats(),
    )
        .prop_map(
            |(key, scheduler, flags, timeout, mask, pe_name, stats)| Service {
                netmask: match key.family() {
                    Family::Inet => Netmask::V4(Ipv4Addr::from(mask)),
                    Family::Inet6 => Netmask::V6(mask),
                },
                key,
                scheduler,
                flags: ServiceFlags(flags),
                timeout,
                pe_name,
                stats,
            },
        )
}

fn dest() -> impl Strategy<Value = Dest> {
    (
        ip(),
        any::<u16>(),
        0u32..8,
        any::<i32>(),
        any::<(u32, u32)>(),
        any::<(u8, u16, u16)>(),
        any::<(u32, u32, u32)>(),
        stats(),
    )
        .prop_map(
            |(addr, port, fwd, weight, (u, l), tun, conns, stats)| Dest {
                addr,
                port,
                forward: Forward::from_wire(fwd),
                weight,
                upper_threshold: u,
                lower_threshold: l,
                tunnel: Tunnel {
                    kind: TunnelType::from_wire(tun.0),
                    port: tun.1,
                    flags: TunnelFlags(tun.2),
                },
                active_conns: conns.0,
                inactive_conns: conns.1,
                persist_conns: conns.2,
                stats,
            },
        )
}

fn daemon() -> impl Strategy<Value = Daemon> {
    (
        any::<u32>(),
        name(),
        any::<u32>(),
        proptest::option::of(any::<u16>()),
        proptest::option::of(ip()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(state, ifn, id, maxlen, group, port, ttl)| Daemon {
            state: DaemonState::from_wire(state),
            mcast_ifn: ifn,
            sync_id: id,
            sync_maxlen: maxlen,
            mcast_group: group,
            mcast_port: port,
            mcast_ttl: ttl,
        })
}

proptest! {
    #[test]
    fn service_attributes_round_trip(attr in svc_attr()) {
        prop_assert_eq!(SvcAttr::parse(&buf(&emit(&attr))).unwrap(), attr);
    }

    #[test]
    fn dest_attributes_round_trip(attr in dest_attr()) {
        prop_assert_eq!(DestAttr::parse(&buf(&emit(&attr))).unwrap(), attr);
    }

    #[test]
    fn daemon_attributes_round_trip(attr in daemon_attr()) {
        prop_assert_eq!(DaemonAttr::parse(&buf(&emit(&attr))).unwrap(), attr);
    }

    #[test]
    fn stats_attributes_round_trip(attr in stats_attr()) {
        prop_assert_eq!(StatsAttr::parse(&buf(&emit(&attr))).unwrap(), attr);
    }

    #[test]
    fn top_level_attributes_round_trip(attr in ipvs_attr(), cmd in 0u8..=20) {
        let cmd = IpvsCmd::from(cmd);
        prop_assume!(cmd != IpvsCmd::SetInfo);
        prop_assert_eq!(IpvsAttr::parse(&buf(&emit(&attr)), cmd).unwrap(), attr);
    }

    #[test]
    fn info_attributes_round_trip(version in any::<u32>(), size in any::<u32>()) {
        for attr in [IpvsAttr::InfoVersion(version), IpvsAttr::InfoConnTabSize(size)] {
            prop_assert_eq!(IpvsAttr::parse(&buf(&emit(&attr)), IpvsCmd::SetInfo).unwrap(), attr);
        }
    }

    #[test]
    fn whole_messages_round_trip(
        attrs in proptest::collection::vec(ipvs_attr(), 0..5),
        cmd in 1u8..=17,
        family_id in 17u16..0x1000,
        flags in any::<u16>(),
        seq in any::<u32>(),
    ) {
        let cmd = IpvsCmd::from(cmd);
        prop_assume!(cmd != IpvsCmd::SetInfo);
        let msg = IpvsMessage::new(cmd, attrs);
        let bytes = exchange::encode(msg.clone(), family_id, flags, seq);
        prop_assert_eq!(exchange::decode::<IpvsMessage>(&bytes).unwrap(), msg);
    }

    #[test]
    fn services_round_trip_through_attributes(s in service()) {
        let back = convert::service_from_attrs(&convert::service_dump_attrs(&s)).unwrap();
        prop_assert_eq!(back, s.clone());
        // Requests carry the configuration (not HASHED, not the counters).
        let sent = convert::service_from_attrs(&convert::service_attrs(&s)).unwrap();
        let expected = Service { flags: s.flags.without_hashed(), ..s.clone() };
        prop_assert!(sent.same_config(&expected), "{:?} vs {:?}", sent, expected);
    }

    #[test]
    fn dests_round_trip_through_attributes(d in dest(), svc_family in family()) {
        let back = convert::dest_from_attrs(&convert::dest_dump_attrs(&d), svc_family).unwrap();
        prop_assert_eq!(back, d.clone());
        let sent = convert::dest_from_attrs(&convert::dest_attrs(&d), svc_family).unwrap();
        prop_assert!(sent.same_config(&d));
    }

    #[test]
    fn daemons_round_trip_through_attributes(d in daemon()) {
        prop_assert_eq!(convert::daemon_from_attrs(&convert::daemon_attrs(&d)).unwrap(), d);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = exchange::decode::<IpvsMessage>(&bytes);
        let mut x = exchange::Exchange::new(1);
        x.register();
        let _ = x.feed(&bytes);
        if let Ok(msg) = IpvsMessage::parse_attrs(&bytes, IpvsCmd::NewService).map(|a| IpvsMessage::new(IpvsCmd::NewService, a)) {
            for attr in &msg.attrs {
                if let IpvsAttr::Service(n) = attr {
                    let _ = convert::service_from_attrs(&n.attrs);
                }
                if let IpvsAttr::Dest(n) = attr {
                    let _ = convert::dest_from_attrs(&n.attrs, Family::Inet6);
                }
            }
        }
    }
}

/// Found by the fuzzer: both flag bits on one attribute did not survive a round trip.
#[test]
fn attributes_with_both_flag_bits_are_refused() {
    let bytes = [8u8, 0, 7, 0xff, 0, 0, 0, 0];
    assert!(SvcAttr::parse(&buf(&bytes)).is_err());
    assert!(IpvsAttr::parse(&buf(&bytes), IpvsCmd::NewService).is_err());
}

fn same_outcome(
    a: &Result<Dest, ldirectord::ipvs::IpvsError>,
    b: &Result<Dest, ldirectord::ipvs::IpvsError>,
) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x == y,
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

proptest! {
    /// The listing's fast path and the attribute tree agree on every frame.
    #[test]
    fn dest_fast_path_agrees_with_the_tree(
        attrs in proptest::collection::vec(ipvs_attr(), 0..4),
        dest_attrs in proptest::collection::vec(dest_attr(), 0..18),
        cmd in prop_oneof![Just(5u8), 0u8..=20],
        family in family(),
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut all = vec![IpvsAttr::Dest(Nested { attrs: dest_attrs, flag: false })];
        all.extend(attrs);
        let msg = IpvsMessage::new(IpvsCmd::from(cmd), all);
        let frame = exchange::encode(msg, 0x20, 2, 1);
        let tree = exchange::decode::<IpvsMessage>(&frame)
            .map_err(|e| ldirectord::ipvs::IpvsError::Protocol(e.to_string()))
            .and_then(|m| convert::dest_from_reply(&m, family));
        let fast = convert::dest_from_frame(&frame, family);
        prop_assert!(same_outcome(&tree, &fast), "{:?} vs {:?}", tree, fast);
        // Corrupted and truncated frames too.
        let mut bad = frame.clone();
        let at = cut.index(bad.len());
        bad.truncate(at);
        bad.extend(&garbage);
        // Keep the length field honest so that decoding gets past the header.
        if bad.len() >= 4 {
            let len = bad.len() as u32;
            bad[..4].copy_from_slice(&len.to_ne_bytes());
        }
        let tree = exchange::decode::<IpvsMessage>(&bad)
            .map_err(|e| ldirectord::ipvs::IpvsError::Protocol(e.to_string()))
            .and_then(|m| convert::dest_from_reply(&m, family));
        let fast = convert::dest_from_frame(&bad, family);
        prop_assert!(same_outcome(&tree, &fast), "{:?} vs {:?}", tree, fast);
    }
}
