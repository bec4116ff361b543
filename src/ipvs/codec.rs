//! The `IPVS` generic netlink family on the wire: commands and attributes, sans I/O.
//!
//! Constants and layouts follow `include/uapi/linux/ip_vs.h`; the kernel side is
//! `net/netfilter/ipvs/ip_vs_ctl.c`. Attributes are kept in the order they came, every
//! attribute enum ends in `Other(DefaultNla)` so that what a newer kernel adds survives a
//! parse/emit round trip, and names (schedulers, persistence engines, interfaces) are
//! strings, never closed enums.
//!
//! Byte order is the attribute's own, not the attribute type's: ports travel big-endian
//! inside "u16" attributes, and the service netmask is a big-endian mask for IPv4 but a
//! host-order prefix length for IPv6 (the field is kept raw here; [`super::convert`]
//! interprets it with the service's family).

use std::net::{Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, NLA_F_NESTED, Nla, NlaBuffer, NlasIterator, Parseable,
    ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

/// The name the family is registered under (`IPVS_GENL_NAME`).
pub const FAMILY_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const GENL_VERSION: u8 = 1;

/// `IPVS_CMD_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IpvsCmd {
    /// Add a service; also the command of `GET_SERVICE` replies.
    NewService,
    SetService,
    DelService,
    GetService,
    /// Add a destination; also the command of `GET_DEST` replies.
    NewDest,
    SetDest,
    DelDest,
    GetDest,
    /// Start a sync daemon; also the command of `GET_DAEMON` replies.
    NewDaemon,
    DelDaemon,
    GetDaemon,
    /// Set timeouts; also the command of the `GET_CONFIG` reply.
    SetConfig,
    GetConfig,
    /// Only the command of the `GET_INFO` reply.
    SetInfo,
    GetInfo,
    Zero,
    Flush,
    Other(u8),
}

impl From<u8> for IpvsCmd {
    fn from(value: u8) -> IpvsCmd {
        use IpvsCmd::*;
        match value {
            1 => NewService,
            2 => SetService,
            3 => DelService,
            4 => GetService,
            5 => NewDest,
            6 => SetDest,
            7 => DelDest,
            8 => GetDest,
            9 => NewDaemon,
            10 => DelDaemon,
            11 => GetDaemon,
            12 => SetConfig,
            13 => GetConfig,
            14 => SetInfo,
            15 => GetInfo,
            16 => Zero,
            17 => Flush,
            other => Other(other),
        }
    }
}

impl From<IpvsCmd> for u8 {
    fn from(cmd: IpvsCmd) -> u8 {
        use IpvsCmd::*;
        match cmd {
            NewService => 1,
            SetService => 2,
            DelService => 3,
            GetService => 4,
            NewDest => 5,
            SetDest => 6,
            DelDest => 7,
            GetDest => 8,
            NewDaemon => 9,
            DelDaemon => 10,
            GetDaemon => 11,
            SetConfig => 12,
            GetConfig => 13,
            SetInfo => 14,
            GetInfo => 15,
            Zero => 16,
            Flush => 17,
            Other(v) => v,
        }
    }
}

/// A list of attributes nested in one attribute, with the `NLA_F_NESTED` bit it carried.
///
/// The kernel parses IPVS nests with the lenient parser and ignores the bit; libnl (and so
/// ipvsadm) sets it on requests, the kernel leaves it off in replies. It is kept so that
/// parse then emit reproduces the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nested<T> {
    pub attrs: Vec<T>,
    pub flag: bool,
}

impl<T> Nested<T> {
    /// A nest as requests send it (flag set, like libnl).
    pub fn new(attrs: Vec<T>) -> Nested<T> {
        Nested { attrs, flag: true }
    }
}

impl<T: Nla> Nested<T> {
    fn value_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }

    fn kind_with_flag(&self, kind: u16) -> u16 {
        if self.flag { kind | NLA_F_NESTED } else { kind }
    }
}

fn parse_nested<T, F>(buf: &NlaBuffer<&[u8]>, parse: F) -> Result<Nested<T>, DecodeError>
where
    F: Fn(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
{
    let attrs = NlasIterator::new(buf.value())
        .map(|nla| nla.and_then(|nla| parse(&nla)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Nested {
        attrs,
        flag: buf.nested_flag(),
    })
}

fn parse_list<T, F>(payload: &[u8], parse: F) -> Result<Vec<T>, DecodeError>
where
    F: Fn(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
{
    NlasIterator::new(payload)
        .map(|nla| nla.and_then(|nla| parse(&nla)))
        .collect()
}

/// Keeps an attribute as it came: kind with its flag bits, raw value.
///
/// An attribute with both `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER` is refused: netlink
/// defines them as exclusive, no kernel sends both, and netlink-packet-core 0.9 would
/// emit such an attribute without its byte-order bit (found by the fuzzer).
pub(crate) fn other(buf: &NlaBuffer<&[u8]>) -> Result<DefaultNla, DecodeError> {
    if buf.nested_flag() && buf.network_byte_order_flag() {
        return Err(DecodeError::from(format!(
            "attribute {} has both NLA_F_NESTED and NLA_F_NET_BYTEORDER",
            buf.kind()
        )));
    }
    DefaultNla::parse(buf)
}

fn fixed<const N: usize>(buf: &NlaBuffer<&[u8]>, what: &str) -> Result<[u8; N], DecodeError> {
    buf.value().try_into().map_err(|_| {
        DecodeError::from(format!(
            "{what}: expected {N} bytes, got {}",
            buf.value().len()
        ))
    })
}

fn u8_of(buf: &NlaBuffer<&[u8]>, what: &str) -> Result<u8, DecodeError> {
    Ok(fixed::<1>(buf, what)?[0])
}

fn u16_of(buf: &NlaBuffer<&[u8]>, what: &str) -> Result<u16, DecodeError> {
    Ok(u16::from_ne_bytes(fixed(buf, what)?))
}

/// A port: big-endian on the wire whatever the attribute type says.
fn be16_of(buf: &NlaBuffer<&[u8]>, what: &str) -> Result<u16, DecodeError> {
    Ok(u16::from_be_bytes(fixed(buf, what)?))
}

fn u32_of(buf: &NlaBuffer<&[u8]>, what: &str) -> Result<u32, DecodeError> {
    Ok(u32::from_ne_bytes(fixed(buf, what)?))
}

fn u64_of(buf: &NlaBuffer<&[u8]>, what: &str) -> Result<u64, DecodeError> {
    Ok(u64::from_ne_bytes(fixed(buf, what)?))
}

/// A NUL-terminated string. Names are ASCII in practice; anything else is kept lossily
/// rather than failing a whole dump.
fn string_of(buf: &NlaBuffer<&[u8]>) -> String {
    let value = buf.value();
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

fn emit_string(s: &str, buffer: &mut [u8]) {
    buffer[..s.len()].copy_from_slice(s.as_bytes());
    buffer[s.len()] = 0;
}

/// The ten counters of `IPVS_STATS_ATTR_*` (1–10); 11 is `PAD`, kept as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatKind {
    Conns,
    InPkts,
    OutPkts,
    InBytes,
    OutBytes,
    Cps,
    InPps,
    OutPps,
    InBps,
    OutBps,
}

impl StatKind {
    pub const ALL: [StatKind; 10] = [
        StatKind::Conns,
        StatKind::InPkts,
        StatKind::OutPkts,
        StatKind::InBytes,
        StatKind::OutBytes,
        StatKind::Cps,
        StatKind::InPps,
        StatKind::OutPps,
        StatKind::InBps,
        StatKind::OutBps,
    ];

    pub fn number(self) -> u16 {
        match self {
            StatKind::Conns => 1,
            StatKind::InPkts => 2,
            StatKind::OutPkts => 3,
            StatKind::InBytes => 4,
            StatKind::OutBytes => 5,
            StatKind::Cps => 6,
            StatKind::InPps => 7,
            StatKind::OutPps => 8,
            StatKind::InBps => 9,
            StatKind::OutBps => 10,
        }
    }

    pub fn from_number(number: u16) -> Option<StatKind> {
        StatKind::ALL.into_iter().find(|k| k.number() == number)
    }
}

/// One counter inside `STATS` (32-bit counters, 64-bit byte counts) or `STATS64` (all
/// 64-bit). The width is read from the length, so both nests share this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsAttr {
    U32(StatKind, u32),
    U64(StatKind, u64),
    Other(DefaultNla),
}

impl Nla for StatsAttr {
    fn value_len(&self) -> usize {
        match self {
            StatsAttr::U32(..) => 4,
            StatsAttr::U64(..) => 8,
            StatsAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            StatsAttr::U32(k, _) | StatsAttr::U64(k, _) => k.number(),
            StatsAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            StatsAttr::U32(_, v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            StatsAttr::U64(_, v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            StatsAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl StatsAttr {
    pub fn parse(buf: &NlaBuffer<&[u8]>) -> Result<StatsAttr, DecodeError> {
        Ok(
            match (StatKind::from_number(buf.kind()), buf.value().len()) {
                (Some(k), 4) if plain(buf) => StatsAttr::U32(k, u32_of(buf, "stats")?),
                (Some(k), 8) if plain(buf) => StatsAttr::U64(k, u64_of(buf, "stats")?),
                _ => StatsAttr::Other(other(buf)?),
            },
        )
    }
}

/// `struct ip_vs_flags`: the new flags and which bits of them to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlagsMask {
    pub flags: u32,
    pub mask: u32,
}

/// `IPVS_SVC_ATTR_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvcAttr {
    Af(u16),
    /// IP protocol number (6, 17, 132).
    Protocol(u16),
    /// `union nf_inet_addr`: 16 bytes from the kernel, IPv4 in the first four.
    Addr(Vec<u8>),
    /// Host-order value; big-endian on the wire.
    Port(u16),
    Fwmark(u32),
    SchedName(String),
    Flags(FlagsMask),
    /// Persistence timeout, seconds.
    Timeout(u32),
    /// The four bytes as a native-endian u32: for IPv4 read them as the mask's octets, for
    /// IPv6 the value is the prefix length.
    Netmask(u32),
    Stats(Nested<StatsAttr>),
    PeName(String),
    Stats64(Nested<StatsAttr>),
    Other(DefaultNla),
}

impl Nla for SvcAttr {
    fn value_len(&self) -> usize {
        use SvcAttr::*;
        match self {
            Af(_) | Protocol(_) | Port(_) => 2,
            Fwmark(_) | Timeout(_) | Netmask(_) => 4,
            Addr(a) => a.len(),
            SchedName(s) | PeName(s) => s.len() + 1,
            Flags(_) => 8,
            Stats(n) | Stats64(n) => n.value_len(),
            Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use SvcAttr::*;
        match self {
            Af(_) => 1,
            Protocol(_) => 2,
            Addr(_) => 3,
            Port(_) => 4,
            Fwmark(_) => 5,
            SchedName(_) => 6,
            Flags(_) => 7,
            Timeout(_) => 8,
            Netmask(_) => 9,
            Stats(n) => n.kind_with_flag(10),
            PeName(_) => 11,
            Stats64(n) => n.kind_with_flag(12),
            Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        use SvcAttr::*;
        match self {
            Af(v) | Protocol(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Port(v) => buffer.copy_from_slice(&v.to_be_bytes()),
            Fwmark(v) | Timeout(v) | Netmask(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Addr(a) => buffer.copy_from_slice(a),
            SchedName(s) | PeName(s) => emit_string(s, buffer),
            Flags(f) => {
                buffer[..4].copy_from_slice(&f.flags.to_ne_bytes());
                buffer[4..].copy_from_slice(&f.mask.to_ne_bytes());
            }
            Stats(n) | Stats64(n) => n.emit_value(buffer),
            Other(nla) => nla.emit_value(buffer),
        }
    }
}

/// Whether an attribute carries no flag bit (the kernel sets none on plain values).
fn plain(buf: &NlaBuffer<&[u8]>) -> bool {
    !buf.nested_flag() && !buf.network_byte_order_flag()
}

/// Whether the flag bits fit the attribute: `NLA_F_NESTED` is allowed on nests only, and
/// `NLA_F_NET_BYTEORDER` never. Misfits are kept raw rather than guessed at.
pub(crate) fn flags_fit(buf: &NlaBuffer<&[u8]>, is_nest: bool) -> bool {
    !buf.network_byte_order_flag() && (is_nest || !buf.nested_flag())
}

impl SvcAttr {
    pub fn parse(buf: &NlaBuffer<&[u8]>) -> Result<SvcAttr, DecodeError> {
        use SvcAttr::*;
        if !flags_fit(buf, matches!(buf.kind(), 10 | 12)) {
            return Ok(Other(other(buf)?));
        }
        Ok(match buf.kind() {
            1 => Af(u16_of(buf, "service AF")?),
            2 => Protocol(u16_of(buf, "service PROTOCOL")?),
            3 if buf.value().len() <= 16 => Addr(buf.value().to_vec()),
            4 => Port(be16_of(buf, "service PORT")?),
            5 => Fwmark(u32_of(buf, "service FWMARK")?),
            6 if buf.value().last() == Some(&0) => SchedName(string_of(buf)),
            7 => {
                let [f0, f1, f2, f3, m0, m1, m2, m3] = fixed(buf, "service FLAGS")?;
                Flags(FlagsMask {
                    flags: u32::from_ne_bytes([f0, f1, f2, f3]),
                    mask: u32::from_ne_bytes([m0, m1, m2, m3]),
                })
            }
            8 => Timeout(u32_of(buf, "service TIMEOUT")?),
            9 => Netmask(u32_of(buf, "service NETMASK")?),
            10 => Stats(parse_nested(buf, StatsAttr::parse)?),
            11 if buf.value().last() == Some(&0) => PeName(string_of(buf)),
            12 => Stats64(parse_nested(buf, StatsAttr::parse)?),
            _ => Other(other(buf)?),
        })
    }
}

/// `IPVS_DEST_ATTR_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestAttr {
    Addr(Vec<u8>),
    /// Host-order value; big-endian on the wire.
    Port(u16),
    /// `IP_VS_CONN_F_FWD_MASK` part of the connection flags.
    FwdMethod(u32),
    /// An `int` in the kernel.
    Weight(u32),
    UThresh(u32),
    LThresh(u32),
    ActiveConns(u32),
    InactConns(u32),
    PersistConns(u32),
    Stats(Nested<StatsAttr>),
    AddrFamily(u16),
    Stats64(Nested<StatsAttr>),
    TunType(u8),
    /// Host-order value; big-endian on the wire.
    TunPort(u16),
    TunFlags(u16),
    Other(DefaultNla),
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        use DestAttr::*;
        match self {
            Addr(a) => a.len(),
            Port(_) | AddrFamily(_) | TunPort(_) | TunFlags(_) => 2,
            TunType(_) => 1,
            FwdMethod(_) | Weight(_) | UThresh(_) | LThresh(_) | ActiveConns(_) | InactConns(_)
            | PersistConns(_) => 4,
            Stats(n) | Stats64(n) => n.value_len(),
            Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use DestAttr::*;
        match self {
            Addr(_) => 1,
            Port(_) => 2,
            FwdMethod(_) => 3,
            Weight(_) => 4,
            UThresh(_) => 5,
            LThresh(_) => 6,
            ActiveConns(_) => 7,
            InactConns(_) => 8,
            PersistConns(_) => 9,
            Stats(n) => n.kind_with_flag(10),
            AddrFamily(_) => 11,
            Stats64(n) => n.kind_with_flag(12),
            TunType(_) => 13,
            TunPort(_) => 14,
            TunFlags(_) => 15,
            Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        use DestAttr::*;
        match self {
            Addr(a) => buffer.copy_from_slice(a),
            Port(v) | TunPort(v) => buffer.copy_from_slice(&v.to_be_bytes()),
            AddrFamily(v) | TunFlags(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            TunType(v) => buffer[0] = *v,
            FwdMethod(v) | Weight(v) | UThresh(v) | LThresh(v) | ActiveConns(v) | InactConns(v)
            | PersistConns(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Stats(n) | Stats64(n) => n.emit_value(buffer),
            Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl DestAttr {
    pub fn parse(buf: &NlaBuffer<&[u8]>) -> Result<DestAttr, DecodeError> {
        use DestAttr::*;
        if !flags_fit(buf, matches!(buf.kind(), 10 | 12)) {
            return Ok(Other(other(buf)?));
        }
        Ok(match buf.kind() {
            1 if buf.value().len() <= 16 => Addr(buf.value().to_vec()),
            2 => Port(be16_of(buf, "dest PORT")?),
            3 => FwdMethod(u32_of(buf, "dest FWD_METHOD")?),
            4 => Weight(u32_of(buf, "dest WEIGHT")?),
            5 => UThresh(u32_of(buf, "dest U_THRESH")?),
            6 => LThresh(u32_of(buf, "dest L_THRESH")?),
            7 => ActiveConns(u32_of(buf, "dest ACTIVE_CONNS")?),
            8 => InactConns(u32_of(buf, "dest INACT_CONNS")?),
            9 => PersistConns(u32_of(buf, "dest PERSIST_CONNS")?),
            10 => Stats(parse_nested(buf, StatsAttr::parse)?),
            11 => AddrFamily(u16_of(buf, "dest ADDR_FAMILY")?),
            12 => Stats64(parse_nested(buf, StatsAttr::parse)?),
            13 => TunType(u8_of(buf, "dest TUN_TYPE")?),
            14 => TunPort(be16_of(buf, "dest TUN_PORT")?),
            15 => TunFlags(u16_of(buf, "dest TUN_FLAGS")?),
            _ => Other(other(buf)?),
        })
    }
}

/// `IPVS_DAEMON_ATTR_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonAttr {
    /// `IP_VS_STATE_MASTER` 1, `IP_VS_STATE_BACKUP` 2.
    State(u32),
    McastIfn(String),
    SyncId(u32),
    SyncMaxlen(u16),
    McastGroup(Ipv4Addr),
    McastGroup6(Ipv6Addr),
    /// Host order, as ipvsadm sends it and the kernel dumps it.
    McastPort(u16),
    McastTtl(u8),
    Other(DefaultNla),
}

impl Nla for DaemonAttr {
    fn value_len(&self) -> usize {
        use DaemonAttr::*;
        match self {
            State(_) | SyncId(_) | McastGroup(_) => 4,
            McastIfn(s) => s.len() + 1,
            SyncMaxlen(_) | McastPort(_) => 2,
            McastGroup6(_) => 16,
            McastTtl(_) => 1,
            Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use DaemonAttr::*;
        match self {
            State(_) => 1,
            McastIfn(_) => 2,
            SyncId(_) => 3,
            SyncMaxlen(_) => 4,
            McastGroup(_) => 5,
            McastGroup6(_) => 6,
            McastPort(_) => 7,
            McastTtl(_) => 8,
            Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        use DaemonAttr::*;
        match self {
            State(v) | SyncId(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            McastIfn(s) => emit_string(s, buffer),
            SyncMaxlen(v) | McastPort(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            McastGroup(a) => buffer.copy_from_slice(&a.octets()),
            McastGroup6(a) => buffer.copy_from_slice(&a.octets()),
            McastTtl(v) => buffer[0] = *v,
            Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl DaemonAttr {
    pub fn parse(buf: &NlaBuffer<&[u8]>) -> Result<DaemonAttr, DecodeError> {
        use DaemonAttr::*;
        if !flags_fit(buf, false) {
            return Ok(Other(other(buf)?));
        }
        Ok(match buf.kind() {
            1 => State(u32_of(buf, "daemon STATE")?),
            2 if buf.value().last() == Some(&0) => McastIfn(string_of(buf)),
            3 => SyncId(u32_of(buf, "daemon SYNC_ID")?),
            4 => SyncMaxlen(u16_of(buf, "daemon SYNC_MAXLEN")?),
            5 => McastGroup(Ipv4Addr::from(fixed::<4>(buf, "daemon MCAST_GROUP")?)),
            6 => McastGroup6(Ipv6Addr::from(fixed::<16>(buf, "daemon MCAST_GROUP6")?)),
            7 => McastPort(u16_of(buf, "daemon MCAST_PORT")?),
            8 => McastTtl(u8_of(buf, "daemon MCAST_TTL")?),
            _ => Other(other(buf)?),
        })
    }
}

/// Top-level attributes (`IPVS_CMD_ATTR_*`, and `IPVS_INFO_ATTR_*` in `SET_INFO`
/// replies, which reuse the numbers 1 and 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsAttr {
    Service(Nested<SvcAttr>),
    Dest(Nested<DestAttr>),
    Daemon(Nested<DaemonAttr>),
    TimeoutTcp(u32),
    TimeoutTcpFin(u32),
    TimeoutUdp(u32),
    /// `IPVS_INFO_ATTR_VERSION`, e.g. `0x010201`.
    InfoVersion(u32),
    /// `IPVS_INFO_ATTR_CONN_TAB_SIZE`.
    InfoConnTabSize(u32),
    Other(DefaultNla),
}

impl Nla for IpvsAttr {
    fn value_len(&self) -> usize {
        use IpvsAttr::*;
        match self {
            Service(n) => n.value_len(),
            Dest(n) => n.value_len(),
            Daemon(n) => n.value_len(),
            TimeoutTcp(_) | TimeoutTcpFin(_) | TimeoutUdp(_) | InfoVersion(_)
            | InfoConnTabSize(_) => 4,
            Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use IpvsAttr::*;
        match self {
            Service(n) => n.kind_with_flag(1),
            Dest(n) => n.kind_with_flag(2),
            Daemon(n) => n.kind_with_flag(3),
            TimeoutTcp(_) => 4,
            TimeoutTcpFin(_) => 5,
            TimeoutUdp(_) => 6,
            InfoVersion(_) => 1,
            InfoConnTabSize(_) => 2,
            Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        use IpvsAttr::*;
        match self {
            Service(n) => n.emit_value(buffer),
            Dest(n) => n.emit_value(buffer),
            Daemon(n) => n.emit_value(buffer),
            TimeoutTcp(v) | TimeoutTcpFin(v) | TimeoutUdp(v) | InfoVersion(v)
            | InfoConnTabSize(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl IpvsAttr {
    /// Parses one top-level attribute of a message with command `cmd`.
    pub fn parse(buf: &NlaBuffer<&[u8]>, cmd: IpvsCmd) -> Result<IpvsAttr, DecodeError> {
        use IpvsAttr::*;
        let is_nest = cmd != IpvsCmd::SetInfo && matches!(buf.kind(), 1..=3);
        if !flags_fit(buf, is_nest) {
            return Ok(Other(other(buf)?));
        }
        Ok(match (cmd, buf.kind()) {
            (IpvsCmd::SetInfo, 1) => InfoVersion(u32_of(buf, "info VERSION")?),
            (IpvsCmd::SetInfo, 2) => InfoConnTabSize(u32_of(buf, "info CONN_TAB_SIZE")?),
            (IpvsCmd::SetInfo, _) => Other(other(buf)?),
            (_, 1) => Service(parse_nested(buf, SvcAttr::parse)?),
            (_, 2) => Dest(parse_nested(buf, DestAttr::parse)?),
            (_, 3) => Daemon(parse_nested(buf, DaemonAttr::parse)?),
            (_, 4) => TimeoutTcp(u32_of(buf, "TIMEOUT_TCP")?),
            (_, 5) => TimeoutTcpFin(u32_of(buf, "TIMEOUT_TCP_FIN")?),
            (_, 6) => TimeoutUdp(u32_of(buf, "TIMEOUT_UDP")?),
            _ => Other(other(buf)?),
        })
    }
}

/// The payload of one `IPVS` generic netlink message (after the genl header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    pub cmd: IpvsCmd,
    /// The genl header's version byte; requests send [`GENL_VERSION`].
    pub version: u8,
    pub attrs: Vec<IpvsAttr>,
}

impl IpvsMessage {
    pub fn new(cmd: IpvsCmd, attrs: Vec<IpvsAttr>) -> IpvsMessage {
        IpvsMessage {
            cmd,
            version: GENL_VERSION,
            attrs,
        }
    }

    /// Parses the attribute part of a message whose genl header says `cmd`.
    pub fn parse_attrs(payload: &[u8], cmd: IpvsCmd) -> Result<Vec<IpvsAttr>, DecodeError> {
        parse_list(payload, |nla| IpvsAttr::parse(nla, cmd))
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }

    fn command(&self) -> u8 {
        self.cmd.into()
    }

    fn version(&self) -> u8 {
        self.version
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<IpvsMessage, DecodeError> {
        let cmd = IpvsCmd::from(header.cmd);
        Ok(IpvsMessage {
            cmd,
            version: header.version,
            attrs: IpvsMessage::parse_attrs(buf, cmd)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Nla + std::fmt::Debug + PartialEq>(
        attr: &T,
        parse: impl Fn(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
    ) {
        let mut bytes = vec![0u8; attr.buffer_len()];
        attr.emit(&mut bytes);
        let back = parse(&NlaBuffer::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(&back, attr);
    }

    #[test]
    fn commands_round_trip_through_numbers() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(IpvsCmd::from(n)), n);
        }
    }

    #[test]
    fn ports_are_big_endian_inside_u16_attributes() {
        let mut bytes = vec![0u8; SvcAttr::Port(80).buffer_len()];
        SvcAttr::Port(80).emit(&mut bytes);
        assert_eq!(bytes, [6, 0, 4, 0, 0x00, 0x50, 0, 0]);
    }

    #[test]
    fn unknown_and_flagged_attributes_are_kept() {
        round_trip(
            &SvcAttr::Other(DefaultNla::new(99, vec![1, 2, 3])),
            SvcAttr::parse,
        );
        round_trip(
            &DestAttr::Other(DefaultNla::new(40, vec![])),
            DestAttr::parse,
        );
        // A known number with the byte-order flag is not what the kernel sends: keep raw.
        round_trip(
            &SvcAttr::Other(DefaultNla::new(4 | 0x4000, vec![0, 80])),
            SvcAttr::parse,
        );
        round_trip(&IpvsAttr::Other(DefaultNla::new(7, vec![0; 4])), |b| {
            IpvsAttr::parse(b, IpvsCmd::NewService)
        });
    }

    #[test]
    fn wrong_sizes_are_decode_errors_not_panics() {
        let bytes = [5u8, 0, 1, 0, 2, 0, 0, 0]; // AF with one byte
        assert!(SvcAttr::parse(&NlaBuffer::new_checked(&bytes[..]).unwrap()).is_err());
    }

    #[test]
    fn info_attributes_reuse_numbers_in_set_info() {
        let bytes = [8u8, 0, 1, 0, 1, 2, 1, 0];
        let buf = NlaBuffer::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            IpvsAttr::parse(&buf, IpvsCmd::SetInfo).unwrap(),
            IpvsAttr::InfoVersion(0x010201)
        );
        assert!(matches!(
            IpvsAttr::parse(&buf, IpvsCmd::NewService),
            Err(_) | Ok(IpvsAttr::Service(_))
        ));
    }
}
