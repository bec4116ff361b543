//! The IPVS table as typed values: services, destinations, sync daemons, timeouts.
//!
//! These types carry no wire details: the codec maps them to and from netlink attributes,
//! the in-memory kernel stores them, the listing renders them. They are plain data (no
//! tokio, no I/O) so that tests, fuzzing and property tests stay cheap.
//!
//! Read-only fields (statistics, connection counters) are ignored when a value is sent to
//! the kernel; they are filled in when one is read back.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address family as the kernel numbers it (`AF_INET` 2, `AF_INET6` 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    pub const AF_INET: u16 = 2;
    pub const AF_INET6: u16 = 10;

    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }

    pub fn to_af(self) -> u16 {
        match self {
            Family::Inet => Self::AF_INET,
            Family::Inet6 => Self::AF_INET6,
        }
    }

    /// `None` for a family IPVS does not know; the kernel answers those with `EAFNOSUPPORT`.
    pub fn from_af(af: u16) -> Option<Family> {
        match af {
            Self::AF_INET => Some(Family::Inet),
            Self::AF_INET6 => Some(Family::Inet6),
            _ => None,
        }
    }

    /// The all-zero address of this family (what the kernel stores for fwmark services).
    pub fn unspecified(self) -> IpAddr {
        match self {
            Family::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// The transport protocol of an address-based virtual service.
///
/// The netlink interface does not restrict the protocol number (only the legacy sockopt
/// interface did), so numbers other than TCP/UDP/SCTP are kept rather than refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Other(u16),
}

impl Protocol {
    pub fn from_number(number: u16) -> Protocol {
        match number {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            132 => Protocol::Sctp,
            other => Protocol::Other(other),
        }
    }

    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
            Protocol::Other(n) => n,
        }
    }

    /// The name ipvsadm prints (`TCP`, `UDP`, `SCTP`); `None` for other numbers.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Protocol::Tcp => Some("TCP"),
            Protocol::Udp => Some("UDP"),
            Protocol::Sctp => Some("SCTP"),
            Protocol::Other(_) => None,
        }
    }
}

/// What identifies a virtual service in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// `-t`/`-u`/`--sctp-service addr:port`; the family follows the address.
    Addr {
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    },
    /// `-f mark`: packets marked by netfilter. The family must be given because the kernel
    /// keeps separate IPv4 and IPv6 services for the same mark. A mark of 0 is not a fwmark
    /// service to the kernel (it becomes TCP on the zero address, port 0).
    Fwmark { family: Family, mark: u32 },
}

impl ServiceKey {
    pub fn tcp(addr: IpAddr, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr,
            port,
        }
    }

    pub fn udp(addr: IpAddr, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr,
            port,
        }
    }

    pub fn fwmark(family: Family, mark: u32) -> ServiceKey {
        ServiceKey::Fwmark { family, mark }
    }

    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    /// The key the kernel actually files the service under: a fwmark of 0 is read as "no
    /// fwmark" and the service lands on TCP, zero address, port 0.
    pub fn canonical(self) -> ServiceKey {
        match self {
            ServiceKey::Fwmark { family, mark: 0 } => ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: family.unspecified(),
                port: 0,
            },
            other => other,
        }
    }
}

/// `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`, `FWM 7`, `FWM 7 IPv6`: for logs and errors.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                match protocol.name() {
                    Some(name) => f.write_str(name)?,
                    None => write!(f, "proto-{}", protocol.number())?,
                }
                write!(f, " {}", SocketAddrDisplay(*addr, *port))
            }
            ServiceKey::Fwmark { family, mark } => match family {
                Family::Inet => write!(f, "FWM {mark}"),
                Family::Inet6 => write!(f, "FWM {mark} IPv6"),
            },
        }
    }
}

/// `addr:port` with brackets around IPv6 addresses.
struct SocketAddrDisplay(IpAddr, u16);

impl fmt::Display for SocketAddrDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// Service flags (`IP_VS_SVC_F_*`), a bit set as the kernel stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    pub const PERSISTENT: ServiceFlags = ServiceFlags(0x0001);
    /// Kernel-internal: set on every service in the table. Dumps report it; requests
    /// should not carry it. Compare flags with [`ServiceFlags::without_hashed`].
    pub const HASHED: ServiceFlags = ServiceFlags(0x0002);
    pub const ONEPACKET: ServiceFlags = ServiceFlags(0x0004);
    pub const SCHED1: ServiceFlags = ServiceFlags(0x0008);
    pub const SCHED2: ServiceFlags = ServiceFlags(0x0010);
    pub const SCHED3: ServiceFlags = ServiceFlags(0x0020);
    /// `sh` and `mh` give the scheduler flags these meanings (ipvsadm's names).
    pub const SH_FALLBACK: ServiceFlags = Self::SCHED1;
    pub const SH_PORT: ServiceFlags = Self::SCHED2;
    pub const MH_FALLBACK: ServiceFlags = Self::SCHED1;
    pub const MH_PORT: ServiceFlags = Self::SCHED2;

    pub const fn empty() -> ServiceFlags {
        ServiceFlags(0)
    }

    pub const fn bits(self) -> u32 {
        self.0
    }

    pub const fn contains(self, other: ServiceFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn insert(&mut self, other: ServiceFlags) {
        self.0 |= other.0;
    }

    pub fn remove(&mut self, other: ServiceFlags) {
        self.0 &= !other.0;
    }

    pub const fn without_hashed(self) -> ServiceFlags {
        ServiceFlags(self.0 & !Self::HASHED.0)
    }
}

impl std::ops::BitOr for ServiceFlags {
    type Output = ServiceFlags;
    fn bitor(self, rhs: ServiceFlags) -> ServiceFlags {
        ServiceFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for ServiceFlags {
    fn bitor_assign(&mut self, rhs: ServiceFlags) {
        self.0 |= rhs.0;
    }
}

/// Persistence granularity (`-M`): which client addresses share one persistent template.
///
/// The kernel keeps one 32-bit field with two meanings: for IPv4 services a netmask, for
/// IPv6 services a prefix length (1–128, checked on every add and edit, even for
/// non-persistent services).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    V4(Ipv4Addr),
    V6(u32),
}

impl Netmask {
    /// What ipvsadm sends when `-M` is not given: a host mask / a /128.
    pub fn full(family: Family) -> Netmask {
        match family {
            Family::Inet => Netmask::V4(Ipv4Addr::BROADCAST),
            Family::Inet6 => Netmask::V6(128),
        }
    }
}

/// Traffic counters and rates, as 64-bit values whatever the kernel sent (`STATS64` is
/// preferred over the older 32-bit `STATS` when both are present).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    /// Rates, estimated by the kernel every 2 s: connections, packets and bytes per second.
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// A virtual service as sent to or read from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    /// Scheduler module name without the `ip_vs_` prefix (`rr`, `wlc`, `mh`, `twos`, …;
    /// `none` on kernels that allow a service without one). A string, never a closed enum,
    /// so newer kernels' schedulers pass through.
    pub scheduler: String,
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds; meaningful only with [`ServiceFlags::PERSISTENT`].
    pub timeout: u32,
    pub netmask: Netmask,
    /// Persistence engine (`sip`), if any.
    pub pe_name: Option<String>,
    /// Read-only.
    pub stats: Stats,
}

impl Service {
    /// A non-persistent service with ipvsadm's defaults for everything but the scheduler.
    pub fn new(key: ServiceKey, scheduler: impl Into<String>) -> Service {
        Service {
            key,
            scheduler: scheduler.into(),
            flags: ServiceFlags::empty(),
            timeout: 0,
            netmask: Netmask::full(key.family()),
            pe_name: None,
            stats: Stats::default(),
        }
    }

    /// Persistent with this timeout (ipvsadm `-p TIMEOUT`).
    pub fn persistent(mut self, timeout: u32) -> Service {
        self.flags.insert(ServiceFlags::PERSISTENT);
        self.timeout = timeout;
        self
    }

    pub fn is_persistent(&self) -> bool {
        self.flags.contains(ServiceFlags::PERSISTENT)
    }

    /// Whether two services have the same configuration: identity, scheduler, flags
    /// (without the kernel's HASHED bit), timeout, netmask and PE; statistics ignored.
    pub fn same_config(&self, other: &Service) -> bool {
        self.key == other.key
            && self.scheduler == other.scheduler
            && self.flags.without_hashed() == other.flags.without_hashed()
            && self.timeout == other.timeout
            && self.netmask == other.netmask
            && self.pe_name.as_deref().unwrap_or("") == other.pe_name.as_deref().unwrap_or("")
    }
}

/// How the director forwards packets to a real server (`IP_VS_CONN_F_FWD_MASK` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forward {
    /// NAT (`-m`).
    Masq,
    /// The director itself; older kernels reported this for local addresses.
    Local,
    /// IP-in-IP, GUE or GRE (`-i`).
    Tunnel,
    /// Direct routing, "gatewaying" (`-g`).
    Route,
    Bypass,
    /// Values 5–7 of the 3-bit field: the kernel stores them as given.
    Other(u8),
}

impl Forward {
    /// The kernel keeps only the low three bits.
    pub fn from_wire(value: u32) -> Forward {
        match value & 0x7 {
            0 => Forward::Masq,
            1 => Forward::Local,
            2 => Forward::Tunnel,
            3 => Forward::Route,
            4 => Forward::Bypass,
            other => Forward::Other(other as u8),
        }
    }

    pub fn to_wire(self) -> u32 {
        match self {
            Forward::Masq => 0,
            Forward::Local => 1,
            Forward::Tunnel => 2,
            Forward::Route => 3,
            Forward::Bypass => 4,
            Forward::Other(v) => u32::from(v & 0x7),
        }
    }
}

/// Encapsulation of a tunnelled destination (`IP_VS_CONN_F_TUNNEL_TYPE_*`, kernel ≥ 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelType {
    #[default]
    Ipip,
    /// Generic UDP Encapsulation; needs a non-zero [`Tunnel::port`].
    Gue,
    /// Kernel ≥ 5.3.
    Gre,
    Other(u8),
}

impl TunnelType {
    pub fn from_wire(value: u8) -> TunnelType {
        match value {
            0 => TunnelType::Ipip,
            1 => TunnelType::Gue,
            2 => TunnelType::Gre,
            other => TunnelType::Other(other),
        }
    }

    pub fn to_wire(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
            TunnelType::Other(v) => v,
        }
    }
}

/// Tunnel checksum flags (`IP_VS_TUNNEL_ENCAP_FLAG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TunnelFlags(pub u16);

impl TunnelFlags {
    pub const NOCSUM: TunnelFlags = TunnelFlags(0);
    pub const CSUM: TunnelFlags = TunnelFlags(0x1);
    pub const REMCSUM: TunnelFlags = TunnelFlags(0x2);
}

/// Tunnel parameters of a destination; only used with [`Forward::Tunnel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tunnel {
    pub kind: TunnelType,
    pub port: u16,
    pub flags: TunnelFlags,
}

/// What identifies a destination within its service. The family follows the address; it
/// differs from the service's only for tunnelled mixed-family destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestKey {
    pub addr: IpAddr,
    pub port: u16,
}

impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        SocketAddrDisplay(self.addr, self.port).fmt(f)
    }
}

/// A real server of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: Forward,
    /// An `int` in the kernel, which refuses negative weights with `ERANGE`. 0 quiesces
    /// the server: no new connections, existing ones continue.
    pub weight: i32,
    /// Connection thresholds; 0 means no limit. The kernel refuses lower > upper.
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub tunnel: Tunnel,
    /// Read-only connection counters.
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persist_conns: u32,
    /// Read-only.
    pub stats: Stats,
}

impl Dest {
    pub fn new(addr: IpAddr, port: u16, forward: Forward, weight: i32) -> Dest {
        Dest {
            addr,
            port,
            forward,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
            tunnel: Tunnel::default(),
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            stats: Stats::default(),
        }
    }

    pub fn key(&self) -> DestKey {
        DestKey {
            addr: self.addr,
            port: self.port,
        }
    }

    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// Whether two destinations have the same configuration (counters ignored).
    pub fn same_config(&self, other: &Dest) -> bool {
        self.addr == other.addr
            && self.port == other.port
            && self.forward == other.forward
            && self.weight == other.weight
            && self.upper_threshold == other.upper_threshold
            && self.lower_threshold == other.lower_threshold
            && self.tunnel == other.tunnel
    }
}

/// `GET_INFO`: the IPVS version and the size of the connection hash table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Info {
    /// `0x010201` is 1.2.1.
    pub version: u32,
    pub conn_tab_size: u32,
}

impl Info {
    /// `1.2.1`, as ipvsadm prints it.
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

/// Connection timeouts in seconds (`--set tcp tcpfin udp`). When setting, 0 means "leave
/// this one unchanged", as the kernel reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// The role of a connection-synchronisation daemon (`IP_VS_STATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaemonState {
    Master,
    Backup,
    /// Any other value; the kernel refuses it with `EINVAL`.
    Other(u32),
}

impl DaemonState {
    pub fn from_wire(value: u32) -> DaemonState {
        match value {
            1 => DaemonState::Master,
            2 => DaemonState::Backup,
            other => DaemonState::Other(other),
        }
    }

    pub fn to_wire(self) -> u32 {
        match self {
            DaemonState::Master => 1,
            DaemonState::Backup => 2,
            DaemonState::Other(v) => v,
        }
    }
}

/// A connection-synchronisation daemon (`--start-daemon`). Optional fields are the
/// kernel ≥ 4.3 extensions; left out, the kernel picks its defaults (group 224.0.0.81,
/// port 8848, TTL 1, a max length from the interface MTU) and reports them in dumps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Daemon {
    pub state: DaemonState,
    pub mcast_ifn: String,
    pub sync_id: u32,
    pub sync_maxlen: Option<u16>,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: Option<u16>,
    pub mcast_ttl: Option<u8>,
}

impl Daemon {
    pub fn new(state: DaemonState, mcast_ifn: impl Into<String>, sync_id: u32) -> Daemon {
        Daemon {
            state,
            mcast_ifn: mcast_ifn.into(),
            sync_id,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        }
    }
}

/// A whole table: every service with its destinations, in the kernel's dump order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub services: Vec<(Service, Vec<Dest>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_keeps_the_low_three_bits() {
        for v in 0..16u32 {
            assert_eq!(Forward::from_wire(v).to_wire(), v & 7);
        }
        assert_eq!(Forward::from_wire(3), Forward::Route);
    }

    #[test]
    fn fwmark_zero_is_filed_as_tcp_port_zero() {
        let key = ServiceKey::fwmark(Family::Inet6, 0).canonical();
        assert_eq!(key, ServiceKey::tcp("::".parse().unwrap(), 0));
        let key = ServiceKey::fwmark(Family::Inet, 3);
        assert_eq!(key.canonical(), key);
    }

    #[test]
    fn keys_display_for_logs() {
        let v6 = ServiceKey::udp("2001:db8::1".parse().unwrap(), 53);
        assert_eq!(v6.to_string(), "UDP [2001:db8::1]:53");
        assert_eq!(ServiceKey::fwmark(Family::Inet, 7).to_string(), "FWM 7");
        let other = ServiceKey::Addr {
            protocol: Protocol::Other(33),
            addr: "10.0.0.1".parse().unwrap(),
            port: 1,
        };
        assert_eq!(other.to_string(), "proto-33 10.0.0.1:1");
    }

    #[test]
    fn same_config_ignores_hashed_and_stats() {
        let a = Service::new(ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80), "wlc");
        let mut b = a.clone();
        b.flags.insert(ServiceFlags::HASHED);
        b.stats.conns = 5;
        assert!(a.same_config(&b));
        b.flags.insert(ServiceFlags::ONEPACKET);
        assert!(!a.same_config(&b));
    }

    #[test]
    fn version_string() {
        let info = Info {
            version: 0x010201,
            conn_tab_size: 4096,
        };
        assert_eq!(info.version_string(), "1.2.1");
    }
}
