//! Model values ⇄ IPVS attributes, and the request message for each command.
//!
//! Requests carry attributes in the order ipvsadm 1.31 (libipvs) sends them, so that the
//! golden tests can compare our bytes with its bytes. Identity-only commands (delete,
//! zero, destination commands' service part) send only the identifying attributes, which
//! is all the kernel reads for them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::codec::{
    DaemonAttr, DestAttr, FlagsMask, IpvsAttr, IpvsCmd, IpvsMessage, Nested, StatKind, StatsAttr,
    SvcAttr,
};
use super::error::IpvsError;
use super::model::{
    Daemon, DaemonState, Dest, DestKey, Family, Forward, Info, Netmask, Protocol, Service,
    ServiceFlags, ServiceKey, Stats, Timeouts, TunnelFlags, TunnelType,
};
use super::op::Op;

/// `union nf_inet_addr`: IPv4 in the first four bytes, zero-padded to 16, as libipvs
/// sends it and the kernel dumps it.
fn addr_bytes(addr: &IpAddr) -> Vec<u8> {
    let mut bytes = vec![0u8; 16];
    match addr {
        IpAddr::V4(a) => bytes[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => bytes.copy_from_slice(&a.octets()),
    }
    bytes
}

fn addr_from(bytes: &[u8], family: Family) -> Result<IpAddr, IpvsError> {
    // The kernel zero-pads short payloads, so a short IPv4 address is not an error.
    let mut full = [0u8; 16];
    let n = bytes.len().min(16);
    full[..n].copy_from_slice(&bytes[..n]);
    Ok(match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::new(full[0], full[1], full[2], full[3])),
        Family::Inet6 => IpAddr::V6(Ipv6Addr::from(full)),
    })
}

fn malformed(what: &str) -> IpvsError {
    IpvsError::Protocol(what.to_string())
}

/// The identifying attributes of a service: AF, then FWMARK or PROTOCOL/ADDR/PORT.
pub fn service_key_attrs(key: &ServiceKey) -> Vec<SvcAttr> {
    let mut attrs = vec![SvcAttr::Af(key.family().to_af())];
    match key {
        ServiceKey::Fwmark { mark, .. } => attrs.push(SvcAttr::Fwmark(*mark)),
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            attrs.push(SvcAttr::Protocol(protocol.number()));
            attrs.push(SvcAttr::Addr(addr_bytes(addr)));
            attrs.push(SvcAttr::Port(*port));
        }
    }
    attrs
}

fn netmask_raw(netmask: Netmask) -> u32 {
    match netmask {
        // The mask travels in network order: its octets in wire order.
        Netmask::V4(mask) => u32::from_ne_bytes(mask.octets()),
        Netmask::V6(prefix) => prefix,
    }
}

/// Everything `NEW_SERVICE`/`SET_SERVICE` need. The flags mask is all ones so the kernel
/// takes the flags as given; HASHED is the kernel's own and is not sent.
pub fn service_attrs(service: &Service) -> Vec<SvcAttr> {
    let mut attrs = service_key_attrs(&service.key);
    attrs.push(SvcAttr::SchedName(service.scheduler.clone()));
    if let Some(pe) = service.pe_name.as_ref().filter(|pe| !pe.is_empty()) {
        attrs.push(SvcAttr::PeName(pe.clone()));
    }
    attrs.push(SvcAttr::Flags(FlagsMask {
        flags: service.flags.without_hashed().bits(),
        mask: u32::MAX,
    }));
    attrs.push(SvcAttr::Timeout(service.timeout));
    attrs.push(SvcAttr::Netmask(netmask_raw(service.netmask)));
    attrs
}

fn stats_from(nest: &Nested<StatsAttr>) -> Stats {
    fold_stats(nest.attrs.iter())
}

fn fold_stats<'a>(attrs: impl Iterator<Item = &'a StatsAttr>) -> Stats {
    let mut stats = Stats::default();
    for attr in attrs {
        add_stat(&mut stats, attr);
    }
    stats
}

fn add_stat(stats: &mut Stats, attr: &StatsAttr) {
    let (kind, value) = match attr {
        StatsAttr::U32(k, v) => (*k, u64::from(*v)),
        StatsAttr::U64(k, v) => (*k, *v),
        StatsAttr::Other(_) => return,
    };
    let slot = match kind {
        StatKind::Conns => &mut stats.conns,
        StatKind::InPkts => &mut stats.inpkts,
        StatKind::OutPkts => &mut stats.outpkts,
        StatKind::InBytes => &mut stats.inbytes,
        StatKind::OutBytes => &mut stats.outbytes,
        StatKind::Cps => &mut stats.cps,
        StatKind::InPps => &mut stats.inpps,
        StatKind::OutPps => &mut stats.outpps,
        StatKind::InBps => &mut stats.inbps,
        StatKind::OutBps => &mut stats.outbps,
    };
    *slot = value;
}

/// The `STATS64` nest for these counters (what a kernel ≥ 4.1 sends).
pub fn stats64_attrs(stats: &Stats) -> Nested<StatsAttr> {
    let values = [
        stats.conns,
        stats.inpkts,
        stats.outpkts,
        stats.inbytes,
        stats.outbytes,
        stats.cps,
        stats.inpps,
        stats.outpps,
        stats.inbps,
        stats.outbps,
    ];
    Nested {
        attrs: StatKind::ALL
            .into_iter()
            .zip(values)
            .map(|(k, v)| StatsAttr::U64(k, v))
            .collect(),
        flag: false,
    }
}

/// The `STATS` nest for these counters: 32-bit except the byte counts, which the kernel
/// sends as 64-bit (truncating the others).
pub fn stats32_attrs(stats: &Stats) -> Nested<StatsAttr> {
    let mut nest = stats64_attrs(stats);
    for attr in &mut nest.attrs {
        if let StatsAttr::U64(kind, value) = *attr
            && !matches!(kind, StatKind::InBytes | StatKind::OutBytes)
        {
            *attr = StatsAttr::U32(kind, value as u32);
        }
    }
    nest
}

/// A service from a `NEW_SERVICE` reply. Statistics come from `STATS64` when present
/// (the 32-bit counters of `STATS` wrap), else from `STATS`.
pub fn service_from_attrs(attrs: &[SvcAttr]) -> Result<Service, IpvsError> {
    let (mut af, mut protocol, mut addr, mut port, mut fwmark) = (None, None, None, None, None);
    let (mut sched, mut flags, mut timeout, mut netmask, mut pe) = (None, None, None, None, None);
    let (mut stats32, mut stats64) = (None, None);
    for attr in attrs {
        match attr {
            SvcAttr::Af(v) => af = Some(*v),
            SvcAttr::Protocol(v) => protocol = Some(*v),
            SvcAttr::Addr(v) => addr = Some(v.as_slice()),
            SvcAttr::Port(v) => port = Some(*v),
            SvcAttr::Fwmark(v) => fwmark = Some(*v),
            SvcAttr::SchedName(v) => sched = Some(v.clone()),
            SvcAttr::Flags(v) => flags = Some(v.flags),
            SvcAttr::Timeout(v) => timeout = Some(*v),
            SvcAttr::Netmask(v) => netmask = Some(*v),
            SvcAttr::Stats(n) => stats32 = Some(n),
            SvcAttr::PeName(v) => pe = Some(v.clone()),
            SvcAttr::Stats64(n) => stats64 = Some(n),
            SvcAttr::Other(_) => {}
        }
    }
    let af = af.ok_or_else(|| malformed("service without AF"))?;
    let family =
        Family::from_af(af).ok_or_else(|| malformed(&format!("service with unknown AF {af}")))?;
    let key = match (fwmark, protocol, addr, port) {
        (Some(mark), ..) => ServiceKey::Fwmark { family, mark },
        (None, Some(protocol), Some(addr), Some(port)) => ServiceKey::Addr {
            protocol: Protocol::from_number(protocol),
            addr: addr_from(addr, family)?,
            port,
        },
        _ => return Err(malformed("service without FWMARK or PROTOCOL/ADDR/PORT")),
    };
    let raw_mask = netmask.unwrap_or(u32::MAX);
    Ok(Service {
        key,
        scheduler: sched.unwrap_or_default(),
        flags: ServiceFlags(flags.unwrap_or(0)),
        timeout: timeout.unwrap_or(0),
        netmask: match family {
            Family::Inet => Netmask::V4(Ipv4Addr::from(raw_mask.to_ne_bytes())),
            Family::Inet6 => Netmask::V6(raw_mask),
        },
        pe_name: pe.filter(|p| !p.is_empty()),
        stats: stats64.or(stats32).map(stats_from).unwrap_or_default(),
    })
}

/// The attributes a kernel (6.1) dump carries for this service, in its order: identity,
/// configuration (flags as stored, HASHED included), `STATS`, `STATS64`. For tests, fake
/// kernels and the fuzzer's seeds.
pub fn service_dump_attrs(service: &Service) -> Vec<SvcAttr> {
    let mut attrs = service_attrs(service);
    if let Some(SvcAttr::Flags(f)) = attrs.iter_mut().find(|a| matches!(a, SvcAttr::Flags(_))) {
        f.flags = service.flags.bits();
    }
    attrs.push(SvcAttr::Stats(stats32_attrs(&service.stats)));
    attrs.push(SvcAttr::Stats64(stats64_attrs(&service.stats)));
    attrs
}

/// The identifying attributes of a destination, ADDR_FAMILY first as libipvs sends them.
pub fn dest_key_attrs(key: &DestKey) -> Vec<DestAttr> {
    vec![
        DestAttr::AddrFamily(Family::of(&key.addr).to_af()),
        DestAttr::Addr(addr_bytes(&key.addr)),
        DestAttr::Port(key.port),
    ]
}

/// Everything `NEW_DEST`/`SET_DEST` need, in libipvs's order.
pub fn dest_attrs(dest: &Dest) -> Vec<DestAttr> {
    let mut attrs = dest_key_attrs(&dest.key());
    attrs.extend([
        DestAttr::FwdMethod(dest.forward.to_wire()),
        // An int in the kernel: a negative weight travels as its two's complement and is
        // refused there with ERANGE.
        DestAttr::Weight(dest.weight as u32),
        DestAttr::TunType(dest.tunnel.kind.to_wire()),
        DestAttr::TunPort(dest.tunnel.port),
        DestAttr::TunFlags(dest.tunnel.flags.0),
        DestAttr::UThresh(dest.upper_threshold),
        DestAttr::LThresh(dest.lower_threshold),
    ]);
    attrs
}

/// The attributes a kernel (6.1) dump carries for this destination, in its order.
pub fn dest_dump_attrs(dest: &Dest) -> Vec<DestAttr> {
    vec![
        DestAttr::Addr(addr_bytes(&dest.addr)),
        DestAttr::Port(dest.port),
        DestAttr::FwdMethod(dest.forward.to_wire()),
        DestAttr::Weight(dest.weight as u32),
        DestAttr::TunType(dest.tunnel.kind.to_wire()),
        DestAttr::TunPort(dest.tunnel.port),
        DestAttr::TunFlags(dest.tunnel.flags.0),
        DestAttr::UThresh(dest.upper_threshold),
        DestAttr::LThresh(dest.lower_threshold),
        DestAttr::ActiveConns(dest.active_conns),
        DestAttr::InactConns(dest.inactive_conns),
        DestAttr::PersistConns(dest.persist_conns),
        DestAttr::AddrFamily(dest.family().to_af()),
        DestAttr::Stats(stats32_attrs(&dest.stats)),
        DestAttr::Stats64(stats64_attrs(&dest.stats)),
    ]
}

/// A destination's attributes, gathered one at a time (by [`dest_from_attrs`] from a
/// parsed nest, and by [`dest_from_frame`] straight from the bytes).
struct DestFold {
    dest: Dest,
    /// Zero-padded, as the kernel pads short addresses.
    addr: Option<[u8; 16]>,
    port: Option<u16>,
    family: Option<u16>,
    stats32: Option<Stats>,
    stats64: Option<Stats>,
}

impl DestFold {
    fn new() -> DestFold {
        DestFold {
            dest: Dest::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0, Forward::Masq, 0),
            addr: None,
            port: None,
            family: None,
            stats32: None,
            stats64: None,
        }
    }

    fn take(&mut self, attr: &DestAttr) {
        let d = &mut self.dest;
        match attr {
            DestAttr::Addr(v) => self.set_addr(v),
            DestAttr::Port(v) => self.port = Some(*v),
            DestAttr::FwdMethod(v) => d.forward = Forward::from_wire(*v),
            DestAttr::Weight(v) => d.weight = *v as i32,
            DestAttr::UThresh(v) => d.upper_threshold = *v,
            DestAttr::LThresh(v) => d.lower_threshold = *v,
            DestAttr::ActiveConns(v) => d.active_conns = *v,
            DestAttr::InactConns(v) => d.inactive_conns = *v,
            DestAttr::PersistConns(v) => d.persist_conns = *v,
            DestAttr::Stats(n) => self.stats32 = Some(stats_from(n)),
            DestAttr::AddrFamily(v) => self.family = Some(*v),
            DestAttr::Stats64(n) => self.stats64 = Some(stats_from(n)),
            DestAttr::TunType(v) => d.tunnel.kind = TunnelType::from_wire(*v),
            DestAttr::TunPort(v) => d.tunnel.port = *v,
            DestAttr::TunFlags(v) => d.tunnel.flags = TunnelFlags(*v),
            DestAttr::Other(_) => {}
        }
    }

    fn set_addr(&mut self, bytes: &[u8]) {
        let mut full = [0u8; 16];
        let n = bytes.len().min(16);
        full[..n].copy_from_slice(&bytes[..n]);
        self.addr = Some(full);
    }

    fn finish(self, service_family: Family) -> Result<Dest, IpvsError> {
        let mut dest = self.dest;
        let family = match self.family {
            Some(af) => Family::from_af(af)
                .ok_or_else(|| malformed(&format!("destination with unknown AF {af}")))?,
            None => service_family,
        };
        let addr = self
            .addr
            .ok_or_else(|| malformed("destination without ADDR"))?;
        dest.addr = addr_from(&addr, family)?;
        dest.port = self
            .port
            .ok_or_else(|| malformed("destination without PORT"))?;
        dest.stats = self.stats64.or(self.stats32).unwrap_or_default();
        Ok(dest)
    }
}

/// A destination from a `NEW_DEST` reply; `service_family` is used when the kernel does
/// not say the destination's own family (kernels before 3.18).
pub fn dest_from_attrs(attrs: &[DestAttr], service_family: Family) -> Result<Dest, IpvsError> {
    let mut fold = DestFold::new();
    for attr in attrs {
        fold.take(attr);
    }
    fold.finish(service_family)
}

/// `dest_from_reply(&decode(frame)?, family)` without building the attribute tree: the
/// hot path of listing large tables, where destinations outnumber everything else. Same
/// per-attribute parsers, so the same answers and the same errors; a property test and
/// the fuzz target hold the two paths together.
pub fn dest_from_frame(frame: &[u8], service_family: Family) -> Result<Dest, IpvsError> {
    use netlink_packet_core::{NetlinkBuffer, NlaBuffer, NlasIterator};
    let bad = |e: netlink_packet_core::DecodeError| IpvsError::Protocol(e.to_string());
    let header = NetlinkBuffer::new_checked(frame).map_err(bad)?;
    if matches!(header.message_type(), 1..=4) {
        return Err(malformed(
            "expected a generic netlink message, got a control message",
        ));
    }
    let payload = header.payload();
    let (Some(&cmd), Some(attrs)) = (payload.first(), payload.get(4..)) else {
        return Err(malformed("generic netlink header too short"));
    };
    let cmd = IpvsCmd::from(cmd);
    let mut fold = None;
    for nla in NlasIterator::new(attrs) {
        let nla = nla.map_err(bad)?;
        let dest_nest = cmd != IpvsCmd::SetInfo && nla.kind() == 2 && codec_flags_fit(&nla, true);
        if !(dest_nest && fold.is_none()) {
            IpvsAttr::parse(&nla, cmd).map_err(bad)?;
            continue;
        }
        let mut f = DestFold::new();
        for inner in NlasIterator::new(nla.value()) {
            let inner: NlaBuffer<&[u8]> = inner.map_err(bad)?;
            let stats_nest = matches!(inner.kind(), 10 | 12) && codec_flags_fit(&inner, true);
            if stats_nest {
                let mut stats = Stats::default();
                for s in NlasIterator::new(inner.value()) {
                    add_stat(
                        &mut stats,
                        &StatsAttr::parse(&s.map_err(bad)?).map_err(bad)?,
                    );
                }
                if inner.kind() == 10 {
                    f.stats32 = Some(stats);
                } else {
                    f.stats64 = Some(stats);
                }
            } else if inner.kind() == 1
                && codec_flags_fit(&inner, false)
                && inner.value().len() <= 16
            {
                // What DestAttr::parse makes of it, without allocating the Vec.
                f.set_addr(inner.value());
            } else {
                f.take(&DestAttr::parse(&inner).map_err(bad)?);
            }
        }
        fold = Some(f);
    }
    if cmd != IpvsCmd::NewDest {
        return Err(malformed(&format!("expected a NewDest reply, got {cmd:?}")));
    }
    fold.ok_or_else(|| malformed("NEW_DEST reply without DEST"))?
        .finish(service_family)
}

fn codec_flags_fit(buf: &netlink_packet_core::NlaBuffer<&[u8]>, is_nest: bool) -> bool {
    super::codec::flags_fit(buf, is_nest)
}

/// `NEW_DAEMON` attributes in libipvs's order; options left `None` are not sent.
pub fn daemon_attrs(daemon: &Daemon) -> Vec<DaemonAttr> {
    let mut attrs = vec![
        DaemonAttr::State(daemon.state.to_wire()),
        DaemonAttr::McastIfn(daemon.mcast_ifn.clone()),
        DaemonAttr::SyncId(daemon.sync_id),
    ];
    attrs.extend(daemon.sync_maxlen.map(DaemonAttr::SyncMaxlen));
    attrs.extend(daemon.mcast_port.map(DaemonAttr::McastPort));
    attrs.extend(daemon.mcast_ttl.map(DaemonAttr::McastTtl));
    match daemon.mcast_group {
        Some(IpAddr::V6(g)) => attrs.push(DaemonAttr::McastGroup6(g)),
        Some(IpAddr::V4(g)) => attrs.push(DaemonAttr::McastGroup(g)),
        None => {}
    }
    attrs
}

pub fn daemon_from_attrs(attrs: &[DaemonAttr]) -> Result<Daemon, IpvsError> {
    let mut daemon = Daemon::new(DaemonState::Other(0), "", 0);
    let mut state = None;
    for attr in attrs {
        match attr {
            DaemonAttr::State(v) => state = Some(DaemonState::from_wire(*v)),
            DaemonAttr::McastIfn(v) => daemon.mcast_ifn = v.clone(),
            DaemonAttr::SyncId(v) => daemon.sync_id = *v,
            DaemonAttr::SyncMaxlen(v) => daemon.sync_maxlen = Some(*v),
            DaemonAttr::McastGroup(v) => daemon.mcast_group = Some(IpAddr::V4(*v)),
            DaemonAttr::McastGroup6(v) => daemon.mcast_group = Some(IpAddr::V6(*v)),
            DaemonAttr::McastPort(v) => daemon.mcast_port = Some(*v),
            DaemonAttr::McastTtl(v) => daemon.mcast_ttl = Some(*v),
            DaemonAttr::Other(_) => {}
        }
    }
    daemon.state = state.ok_or_else(|| malformed("daemon without STATE"))?;
    Ok(daemon)
}

fn service_nest(attrs: Vec<SvcAttr>) -> IpvsAttr {
    IpvsAttr::Service(Nested::new(attrs))
}

fn dest_nest(attrs: Vec<DestAttr>) -> IpvsAttr {
    IpvsAttr::Dest(Nested::new(attrs))
}

/// The request that performs `op`.
pub fn op_request(op: &Op) -> IpvsMessage {
    use IpvsCmd as C;
    match op {
        Op::AddService(s) => IpvsMessage::new(C::NewService, vec![service_nest(service_attrs(s))]),
        Op::EditService(s) => IpvsMessage::new(C::SetService, vec![service_nest(service_attrs(s))]),
        Op::DelService(k) => {
            IpvsMessage::new(C::DelService, vec![service_nest(service_key_attrs(k))])
        }
        Op::AddDest { service, dest } => IpvsMessage::new(
            C::NewDest,
            vec![
                service_nest(service_key_attrs(service)),
                dest_nest(dest_attrs(dest)),
            ],
        ),
        Op::EditDest { service, dest } => IpvsMessage::new(
            C::SetDest,
            vec![
                service_nest(service_key_attrs(service)),
                dest_nest(dest_attrs(dest)),
            ],
        ),
        Op::DelDest { service, dest } => IpvsMessage::new(
            C::DelDest,
            vec![
                service_nest(service_key_attrs(service)),
                dest_nest(dest_key_attrs(dest)),
            ],
        ),
        Op::Zero(Some(k)) => IpvsMessage::new(C::Zero, vec![service_nest(service_key_attrs(k))]),
        Op::Zero(None) => IpvsMessage::new(C::Zero, vec![]),
        Op::Flush => IpvsMessage::new(C::Flush, vec![]),
        Op::SetTimeouts(t) => IpvsMessage::new(
            C::SetConfig,
            vec![
                IpvsAttr::TimeoutTcp(t.tcp),
                IpvsAttr::TimeoutTcpFin(t.tcp_fin),
                IpvsAttr::TimeoutUdp(t.udp),
            ],
        ),
        Op::StartDaemon(d) => IpvsMessage::new(
            C::NewDaemon,
            vec![IpvsAttr::Daemon(Nested::new(daemon_attrs(d)))],
        ),
        Op::StopDaemon(state) => IpvsMessage::new(
            C::DelDaemon,
            vec![IpvsAttr::Daemon(Nested::new(vec![DaemonAttr::State(
                state.to_wire(),
            )]))],
        ),
    }
}

/// `GET_SERVICE` as a dump request (every service).
pub fn get_services_request() -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::GetService, vec![])
}

/// `GET_SERVICE` as a do request for one service.
pub fn get_service_request(key: &ServiceKey) -> IpvsMessage {
    IpvsMessage::new(
        IpvsCmd::GetService,
        vec![service_nest(service_key_attrs(key))],
    )
}

/// `GET_DEST` (dump only) for one service.
pub fn get_dests_request(key: &ServiceKey) -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::GetDest, vec![service_nest(service_key_attrs(key))])
}

pub fn get_info_request() -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::GetInfo, vec![])
}

pub fn get_config_request() -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::GetConfig, vec![])
}

pub fn get_daemons_request() -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::GetDaemon, vec![])
}

fn expect_cmd(msg: &IpvsMessage, cmd: IpvsCmd) -> Result<(), IpvsError> {
    if msg.cmd == cmd {
        Ok(())
    } else {
        Err(malformed(&format!(
            "expected a {cmd:?} reply, got {:?}",
            msg.cmd
        )))
    }
}

/// The service in a `GET_SERVICE` reply.
pub fn service_from_reply(msg: &IpvsMessage) -> Result<Service, IpvsError> {
    expect_cmd(msg, IpvsCmd::NewService)?;
    msg.attrs
        .iter()
        .find_map(|a| match a {
            IpvsAttr::Service(n) => Some(service_from_attrs(&n.attrs)),
            _ => None,
        })
        .unwrap_or_else(|| Err(malformed("NEW_SERVICE reply without SERVICE")))
}

/// The destination in a `GET_DEST` reply.
pub fn dest_from_reply(msg: &IpvsMessage, service_family: Family) -> Result<Dest, IpvsError> {
    expect_cmd(msg, IpvsCmd::NewDest)?;
    msg.attrs
        .iter()
        .find_map(|a| match a {
            IpvsAttr::Dest(n) => Some(dest_from_attrs(&n.attrs, service_family)),
            _ => None,
        })
        .unwrap_or_else(|| Err(malformed("NEW_DEST reply without DEST")))
}

/// The daemon in a `GET_DAEMON` reply.
pub fn daemon_from_reply(msg: &IpvsMessage) -> Result<Daemon, IpvsError> {
    expect_cmd(msg, IpvsCmd::NewDaemon)?;
    msg.attrs
        .iter()
        .find_map(|a| match a {
            IpvsAttr::Daemon(n) => Some(daemon_from_attrs(&n.attrs)),
            _ => None,
        })
        .unwrap_or_else(|| Err(malformed("NEW_DAEMON reply without DAEMON")))
}

/// The `GET_INFO` reply.
pub fn info_from_reply(msg: &IpvsMessage) -> Result<Info, IpvsError> {
    expect_cmd(msg, IpvsCmd::SetInfo)?;
    let (mut version, mut size) = (None, None);
    for attr in &msg.attrs {
        match attr {
            IpvsAttr::InfoVersion(v) => version = Some(*v),
            IpvsAttr::InfoConnTabSize(v) => size = Some(*v),
            _ => {}
        }
    }
    Ok(Info {
        version: version.ok_or_else(|| malformed("SET_INFO reply without VERSION"))?,
        conn_tab_size: size.ok_or_else(|| malformed("SET_INFO reply without CONN_TAB_SIZE"))?,
    })
}

/// The `GET_CONFIG` reply.
pub fn timeouts_from_reply(msg: &IpvsMessage) -> Result<Timeouts, IpvsError> {
    expect_cmd(msg, IpvsCmd::SetConfig)?;
    let mut t = Timeouts::default();
    for attr in &msg.attrs {
        match attr {
            IpvsAttr::TimeoutTcp(v) => t.tcp = *v,
            IpvsAttr::TimeoutTcpFin(v) => t.tcp_fin = *v,
            IpvsAttr::TimeoutUdp(v) => t.udp = *v,
            _ => {}
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::model::Tunnel;

    #[test]
    fn services_survive_the_wire() {
        let mut s =
            Service::new(ServiceKey::udp("2001:db8::1".parse().unwrap(), 53), "rr").persistent(600);
        s.netmask = Netmask::V6(64);
        s.pe_name = Some("sip".into());
        s.flags.insert(ServiceFlags::HASHED);
        s.stats.inbytes = u64::MAX;
        assert_eq!(service_from_attrs(&service_dump_attrs(&s)).unwrap(), s);

        let mut v4 = Service::new(ServiceKey::fwmark(Family::Inet, 9), "sh");
        v4.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(service_from_attrs(&service_dump_attrs(&v4)).unwrap(), v4);
    }

    #[test]
    fn requests_never_send_hashed() {
        let mut s = Service::new(ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80), "rr");
        s.flags = ServiceFlags::HASHED | ServiceFlags::PERSISTENT;
        let flags = service_attrs(&s)
            .into_iter()
            .find_map(|a| match a {
                SvcAttr::Flags(f) => Some(f),
                _ => None,
            })
            .unwrap();
        assert_eq!((flags.flags, flags.mask), (1, u32::MAX));
    }

    #[test]
    fn dests_survive_the_wire_including_negative_weights() {
        let mut d = Dest::new("2001:db8::5".parse().unwrap(), 443, Forward::Tunnel, -3);
        d.tunnel = Tunnel {
            kind: TunnelType::Gue,
            port: 6080,
            flags: TunnelFlags::REMCSUM,
        };
        d.active_conns = 7;
        d.stats.conns = 1 << 40;
        assert_eq!(
            dest_from_attrs(&dest_dump_attrs(&d), Family::Inet).unwrap(),
            d
        );
    }

    #[test]
    fn dest_family_defaults_to_the_services() {
        let attrs = [
            DestAttr::Addr(vec![10, 0, 0, 1]),
            DestAttr::Port(80),
            DestAttr::FwdMethod(3),
            DestAttr::Weight(1),
        ];
        let d = dest_from_attrs(&attrs, Family::Inet).unwrap();
        assert_eq!(d.addr, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert!(dest_from_attrs(&attrs[1..], Family::Inet).is_err());
    }

    #[test]
    fn stats64_wins_over_stats() {
        let attrs = [
            SvcAttr::Af(2),
            SvcAttr::Fwmark(1),
            SvcAttr::Stats(Nested {
                attrs: vec![StatsAttr::U32(StatKind::Conns, 5)],
                flag: false,
            }),
            SvcAttr::Stats64(Nested {
                attrs: vec![StatsAttr::U64(StatKind::Conns, 1 << 33)],
                flag: false,
            }),
        ];
        assert_eq!(service_from_attrs(&attrs).unwrap().stats.conns, 1 << 33);
    }

    #[test]
    fn daemons_survive_the_wire() {
        let mut d = Daemon::new(DaemonState::Backup, "eth0", 6);
        d.mcast_group = Some("ff02::1:2".parse().unwrap());
        d.mcast_port = Some(8849);
        d.mcast_ttl = Some(2);
        d.sync_maxlen = Some(1400);
        assert_eq!(daemon_from_attrs(&daemon_attrs(&d)).unwrap(), d);
    }
}
