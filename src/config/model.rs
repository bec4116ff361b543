//! The fully resolved configuration: what an `ldirectord.cf` means once every default of the
//! Perl ldirectord (`set_defaults`, `read_config`, `ld_setup`) has been applied, every host and
//! service name resolved and every `real=` range expanded.
//!
//! Consumers never need to look at the global section to know how a virtual service behaves:
//! each [`Virtual`] carries its *effective* settings (its own value, else the global one, else
//! the Perl default). [`Global`] keeps the global values too, for `dump-config` and reload diffs.
//!
//! Source locations ([`Location`]) are metadata: they never take part in equality, so two
//! configurations that differ only in line numbers compare equal (what a reload diff wants).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// The file this was read from (after the `/etc/ha.d` lookup).
    #[serde(serialize_with = "ser_path")]
    pub file: Arc<Path>,
    pub global: Global,
    pub virtuals: Vec<Virtual>,
}

/// Global settings: the daemon-wide ones, and the defaults virtuals inherit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Global {
    /// `autoreload`: reload when the file changes on disk.
    pub autoreload: bool,
    /// `callback`: program run with the config path when the file changes on disk.
    pub callback: Option<String>,
    /// `logfile`: a path (leading `/`) or a syslog facility.
    pub logfile: LogTarget,
    /// `execute`: other configurations started/stopped together with this one, in file order.
    pub execute: Vec<String>,
    /// `fork`: one checker per virtual service.
    pub fork: bool,
    /// `supervised`: stay in the foreground, log to stdout.
    pub supervised: bool,
    /// `readdquiescent`: re-add a missing real at weight 0 when it goes down.
    pub readdquiescent: bool,
    /// `maintenancedir`: a directory whose files force real servers down.
    pub maintenancedir: Option<PathBuf>,
    /// `emailalertfrom`: the From header of alert mails.
    pub emailalertfrom: Option<String>,
    /// `checkinterval`: seconds between check passes.
    #[serde(serialize_with = "ser_secs")]
    pub checkinterval: Duration,
    /// Global `checktimeout`, if set (the effective value is per virtual).
    #[serde(serialize_with = "ser_opt_secs")]
    pub checktimeout: Option<Duration>,
    /// Global `negotiatetimeout`, if set (the effective value is per virtual).
    #[serde(serialize_with = "ser_opt_secs")]
    pub negotiatetimeout: Option<Duration>,
    /// Global `checkcount` (deprecated; ICMP tries per ping check).
    pub checkcount: u32,
    /// Global `failurecount`.
    pub failurecount: u32,
    /// Global `quiescent`.
    pub quiescent: bool,
    /// Global `cleanstop`.
    pub cleanstop: bool,
    /// Global `fallback` (used by IPv4 virtuals without their own).
    pub fallback: Option<GlobalFallback>,
    /// Global `fallback6` (used by IPv6 virtuals without their own).
    pub fallback6: Option<GlobalFallback>,
    /// Global `fallbackcommand`.
    pub fallbackcommand: Option<String>,
    /// Global `emailalert` recipients.
    pub emailalert: Vec<String>,
    /// Global `emailalertfreq`: seconds between repeated alerts; 0 = none.
    #[serde(serialize_with = "ser_secs")]
    pub emailalertfreq: Duration,
    /// Global `emailalertstatus`.
    pub emailalertstatus: AlertStatuses,
    /// Global `smtp` relay host.
    pub smtp: Option<String>,
    /// `metrics` (extension): where the Prometheus endpoint listens; `None` = off.
    pub metrics: Option<SocketAddr>,
    /// `syncdaemon`, `syncinterface`, `syncid` (extension): the kernel's connection
    /// synchronisation daemon(s) to keep running; `None` = left as they are.
    pub sync: Option<SyncDaemon>,
}

/// The IPVS connection synchronisation wanted by `syncdaemon=` (extension directives).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SyncDaemon {
    pub role: SyncRole,
    /// `syncinterface`: the interface the multicast goes out of and comes in on.
    pub interface: String,
    /// `syncid`: sent in every message; a backup with a non-zero id ignores other ids.
    pub syncid: u8,
}

/// `syncdaemon=`: which of the kernel's two sync threads run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncRole {
    /// Send the state of this director's connections.
    Master,
    /// Receive the other director's connections.
    Backup,
    /// Both at once: either director can be the active one (kernel ≥ 2.6.39).
    Both,
}

impl SyncRole {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
            SyncRole::Both => "both",
        }
    }

    pub fn master(self) -> bool {
        matches!(self, SyncRole::Master | SyncRole::Both)
    }

    pub fn backup(self) -> bool {
        matches!(self, SyncRole::Backup | SyncRole::Both)
    }
}

/// Where log lines go (`logfile=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// Appended to this file, opened for each line.
    File(PathBuf),
    /// Sent to syslog with this facility (`daemon`, `local0`, …).
    Syslog(String),
}

/// A global `fallback=`/`fallback6=`: its port may be left for each virtual to fill in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct GlobalFallback {
    pub location: Location,
    pub addr: IpAddr,
    /// The port for TCP virtuals; `None` = the virtual's own port.
    pub tcp_port: Option<u16>,
    /// The port for UDP virtuals; `None` = the virtual's own port.
    pub udp_port: Option<u16>,
    /// Whether a port was written at all (a name may resolve for one protocol only).
    pub port_written: bool,
    /// The port's service name, when it was written as one (for rendering).
    pub port_name: Option<String>,
    pub forwarding: Forwarding,
}

/// One `virtual=`/`virtual6=` block, with every setting in effect.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Virtual {
    /// The `virtual=` line.
    pub location: Location,
    pub endpoint: Endpoint,
    /// `scheduler`: an IPVS scheduler name; the kernel decides whether it exists.
    pub scheduler: String,
    /// `persistent`: persistence timeout in seconds.
    pub persistent: Option<u32>,
    /// `netmask`: persistence granularity (only meaningful with `persistent`).
    pub netmask: Option<Netmask>,
    /// `schedflags`: ipvsadm `-b` flag names, in the order written.
    pub schedflags: Vec<String>,
    /// `ops`: one-packet scheduling (UDP only).
    pub ops: bool,
    pub reals: Vec<Real>,
    pub check: Check,
    /// `quiescent`: a dead real gets weight 0 instead of being deleted.
    pub quiescent: bool,
    /// `cleanstop`: remove this virtual from the kernel on exit.
    pub cleanstop: bool,
    /// The fallback server in effect (this block's, else the global one for its family).
    pub fallback: Option<Fallback>,
    /// `fallbackcommand` in effect: run with `start|stop <vip:port> <proto>`.
    pub fallbackcommand: Option<String>,
    pub emailalert: EmailAlert,
    /// `monitorfile`: per-check log file.
    pub monitorfile: Option<PathBuf>,
    /// `servicename`: shown in alert mails.
    pub servicename: Option<String>,
    /// `comment`: shown in alert mails.
    pub comment: Option<String>,
}

/// What the kernel matches packets on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Endpoint {
    /// An address, port and transport protocol (`virtual=VIP:PORT`).
    Addr {
        addr: SocketAddr,
        protocol: Protocol,
    },
    /// A firewall mark (`virtual=N`), for the given address family.
    Fwmark { mark: u32, family: Family },
}

/// Transport protocol of an address virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
}

/// `netmask=`: a dotted quad for IPv4, a prefix length for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Netmask {
    V4(std::net::Ipv4Addr),
    Prefix(u8),
}

/// One real server (a `real=` range yields one per address).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Real {
    /// The `real=` line.
    pub location: Location,
    pub addr: IpAddr,
    /// As written; 0 when no port was given (the Perl code's "unset").
    pub port: u16,
    pub forwarding: Forwarding,
    /// 0..=65535; 1 when not written.
    pub weight: u32,
    /// `l:N`, ipvsadm `-y`; 0 = none.
    pub lower_threshold: u32,
    /// `u:N`, ipvsadm `-x`; 0 = none.
    pub upper_threshold: u32,
    /// The per-real `"request", "receive"` pair, when given.
    pub check_override: Option<CheckOverride>,
}

/// A per-real request/receive pair; both are present or neither.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CheckOverride {
    /// With a leading `/` added, as the Perl code does.
    pub request: String,
    pub receive: String,
}

/// IPVS forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarding {
    /// Direct routing (`-g`).
    Gate,
    /// NAT (`-m`).
    Masq,
    /// IP-in-IP tunnel (`-i`).
    Ipip,
}

/// The fallback server of a virtual service (weight 1, no thresholds, as in the Perl code).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Fallback {
    /// The `fallback=` line (in the block, or the global one).
    pub location: Location,
    pub addr: IpAddr,
    pub port: u16,
    pub forwarding: Forwarding,
}

/// How and how often the real servers of a virtual are checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Check {
    pub checktype: CheckType,
    /// `service`, else derived from the virtual port (`none` for unknown ports and fwmarks).
    pub service: Service,
    /// `request`, with a leading `/` added as the Perl code does; default `/`.
    pub request: String,
    /// `receive`: a regular expression; `None` when unset (the Perl empty string).
    pub receive: Option<String>,
    pub httpmethod: HttpMethod,
    /// `virtualhost`: the HTTP Host header; `None` = the real's address.
    pub virtualhost: Option<String>,
    /// `checkport`; `None` = the real's port, else the service's well-known port.
    pub checkport: Option<u16>,
    /// `login`, with the ftp/sip defaults filled in; "" = none.
    pub login: String,
    /// `passwd`, with the ftp default filled in; "" = none.
    pub passwd: String,
    /// `database`; "" = none.
    pub database: String,
    /// `secret` (RADIUS); "" = none.
    pub secret: String,
    /// `checkcommand` for external checks; default `/bin/true`.
    pub checkcommand: String,
    /// `tlsverify` (extension): how https, pops, imaps and ldaps checks judge the server
    /// certificate; default `chain`, what the Perl ldirectord does on current Debian.
    pub tlsverify: TlsVerify,
    /// `tlscafile` (extension): PEM trust anchors instead of the system store.
    pub tlscafile: Option<PathBuf>,
    /// `checkdatapath` (extension): send the check to the VIP along the path client traffic
    /// takes (through IPVS, pinned to one real server by a firewall mark), so that a real
    /// server that does not accept traffic for the VIP fails it. Off by default.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub datapath: bool,
    /// Effective timeout of connect, ping, external checks (see `ld_setup`).
    #[serde(serialize_with = "ser_secs")]
    pub checktimeout: Duration,
    /// Effective timeout of negotiate checks (see `ld_setup`).
    #[serde(serialize_with = "ser_secs")]
    pub negotiatetimeout: Duration,
    /// Effective interval: the block's value only when `fork=yes`, else the global one.
    #[serde(serialize_with = "ser_secs")]
    pub checkinterval: Duration,
    /// ICMP tries per ping check (deprecated `checkcount`).
    pub checkcount: u32,
    /// Consecutive failed checks before an up real server is taken down.
    pub failurecount: u32,
}

/// `checktype=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckType {
    Connect,
    Negotiate,
    Ping,
    External,
    ExternalPerl,
    On,
    Off,
    /// `checktype=N`: negotiate, then N connect checks, then negotiate again.
    Combined(u32),
}

/// `service=`: the protocol a negotiate check speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Dns,
    Ftp,
    Http,
    Https,
    HttpProxy,
    Imap,
    Imaps,
    Ldap,
    Ldaps,
    Mysql,
    Nntp,
    None,
    Oracle,
    Pgsql,
    Pop,
    Pops,
    Radius,
    Sip,
    Simpletcp,
    Smtp,
    Submission,
}

/// `tlsverify=` (an extension; the Perl ldirectord has no such directive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsVerify {
    /// The chain must lead to a trusted root; the host name is not checked (Perl on
    /// current Debian: `verify_hostname => 0`, but IO::Socket::SSL still checks the chain).
    Chain,
    /// Chain and host name (the virtualhost, else the real's address).
    Full,
    /// No verification: for self-signed back ends.
    None,
}

impl TlsVerify {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVerify::Chain => "chain",
            TlsVerify::Full => "full",
            TlsVerify::None => "none",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [TlsVerify::Chain, TlsVerify::Full, TlsVerify::None]
            .into_iter()
            .find(|t| t.as_str() == name)
    }
}

/// `httpmethod=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
}

/// E-mail alert settings in effect for one virtual.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EmailAlert {
    /// `emailalert` recipients; empty = no mail.
    pub to: Vec<String>,
    /// `emailalertfrom` (global only).
    pub from: Option<String>,
    /// `emailalertfreq`: seconds between repeated alerts; 0 = none.
    #[serde(serialize_with = "ser_secs")]
    pub freq: Duration,
    /// `emailalertstatus`.
    pub status: AlertStatuses,
    /// `smtp`: relay host; `None` = the local mailer.
    pub smtp: Option<String>,
}

/// The daemon states in which alert mails go out (`emailalertstatus=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AlertStatuses {
    pub starting: bool,
    pub running: bool,
    pub stopping: bool,
    pub reloading: bool,
}

/// Where something was written: file and 1-based line.
///
/// Equality and hashing ignore it on purpose (see the module doc).
#[derive(Clone)]
pub struct Location {
    pub file: Arc<Path>,
    pub line: u32,
}

// ---------------------------------------------------------------------------------------------
// Names as written in the configuration language.

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl Forwarding {
    pub const ALL: [Forwarding; 3] = [Forwarding::Gate, Forwarding::Masq, Forwarding::Ipip];

    pub fn as_str(self) -> &'static str {
        match self {
            Forwarding::Gate => "gate",
            Forwarding::Masq => "masq",
            Forwarding::Ipip => "ipip",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl CheckType {
    /// The keyword forms (the numeric `Combined` form is not listed).
    pub const KEYWORDS: [CheckType; 7] = [
        CheckType::Connect,
        CheckType::Negotiate,
        CheckType::Ping,
        CheckType::External,
        CheckType::ExternalPerl,
        CheckType::On,
        CheckType::Off,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            CheckType::Connect => "connect",
            CheckType::Negotiate => "negotiate",
            CheckType::Ping => "ping",
            CheckType::External => "external",
            CheckType::ExternalPerl => "external-perl",
            CheckType::On => "on",
            CheckType::Off => "off",
            CheckType::Combined(_) => "combined",
        }
    }

    pub fn from_keyword(name: &str) -> Option<Self> {
        Self::KEYWORDS.into_iter().find(|c| c.keyword() == name)
    }
}

impl fmt::Display for CheckType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckType::Combined(n) => write!(f, "{n}"),
            other => f.write_str(other.keyword()),
        }
    }
}

impl Service {
    pub const ALL: [Service; 21] = [
        Service::Dns,
        Service::Ftp,
        Service::Http,
        Service::Https,
        Service::HttpProxy,
        Service::Imap,
        Service::Imaps,
        Service::Ldap,
        Service::Ldaps,
        Service::Mysql,
        Service::Nntp,
        Service::None,
        Service::Oracle,
        Service::Pgsql,
        Service::Pop,
        Service::Pops,
        Service::Radius,
        Service::Sip,
        Service::Simpletcp,
        Service::Smtp,
        Service::Submission,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Dns => "dns",
            Service::Ftp => "ftp",
            Service::Http => "http",
            Service::Https => "https",
            Service::HttpProxy => "http_proxy",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Ldap => "ldap",
            Service::Ldaps => "ldaps",
            Service::Mysql => "mysql",
            Service::Nntp => "nntp",
            Service::None => "none",
            Service::Oracle => "oracle",
            Service::Pgsql => "pgsql",
            Service::Pop => "pop",
            Service::Pops => "pops",
            Service::Radius => "radius",
            Service::Sip => "sip",
            Service::Simpletcp => "simpletcp",
            Service::Smtp => "smtp",
            Service::Submission => "submission",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// `ld_port_to_service`: the default service of a virtual port.
    pub fn from_port(port: u16) -> Self {
        Self::ALL
            .into_iter()
            .find(|s| s.well_known_port() == Some(port))
            .unwrap_or(Service::None)
    }

    /// `ld_service_to_port`: the port a check uses when neither checkport nor the real's
    /// port is set.
    pub fn well_known_port(self) -> Option<u16> {
        Some(match self {
            Service::Ftp => 21,
            Service::Smtp => 25,
            Service::Dns => 53,
            Service::Http => 80,
            Service::Pop => 110,
            Service::Nntp => 119,
            Service::Imap => 143,
            Service::Ldap => 389,
            Service::Https => 443,
            Service::Submission => 587,
            Service::Ldaps => 636,
            Service::Imaps => 993,
            Service::Pops => 995,
            Service::Oracle => 1521,
            Service::Radius => 1812,
            Service::HttpProxy => 3128,
            Service::Mysql => 3306,
            Service::Sip => 5060,
            Service::Pgsql => 5432,
            Service::None | Service::Simpletcp => return None,
        })
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        }
    }
}

impl AlertStatuses {
    pub const ALL: AlertStatuses = AlertStatuses {
        starting: true,
        running: true,
        stopping: true,
        reloading: true,
    };
    pub const NONE: AlertStatuses = AlertStatuses {
        starting: false,
        running: false,
        stopping: false,
        reloading: false,
    };

    /// The keywords of the enabled states, in the Perl order.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.starting, "starting"),
            (self.running, "running"),
            (self.stopping, "stopping"),
            (self.reloading, "reloading"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Derived facts other layers need, computed the way the Perl code does.

impl Endpoint {
    pub fn family(&self) -> Family {
        match self {
            Endpoint::Addr { addr, .. } if addr.is_ipv4() => Family::Inet,
            Endpoint::Addr { .. } => Family::Inet6,
            Endpoint::Fwmark { family, .. } => *family,
        }
    }

    /// The virtual port; 0 for a firewall mark.
    pub fn port(&self) -> u16 {
        match self {
            Endpoint::Addr { addr, .. } => addr.port(),
            Endpoint::Fwmark { .. } => 0,
        }
    }

    /// `tcp`, `udp` or `fwm`, as in the Perl ids and the fallbackcommand arguments.
    pub fn protocol_name(&self) -> &'static str {
        match self {
            Endpoint::Addr { protocol, .. } => protocol.as_str(),
            Endpoint::Fwmark { .. } => "fwm",
        }
    }
}

impl fmt::Display for Endpoint {
    /// `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `fwm:7`, `fwm6:7`: the Perl virtual id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Addr { addr, protocol } => write!(f, "{}:{addr}", protocol.as_str()),
            Endpoint::Fwmark { mark, family } => {
                let six = if *family == Family::Inet6 { "6" } else { "" };
                write!(f, "fwm{six}:{mark}")
            }
        }
    }
}

impl Virtual {
    /// `ld_checkport`: the port a check of `real` connects to; `None` when neither
    /// checkport, the real's port nor the service gives one.
    pub fn check_port(&self, real: &Real) -> Option<u16> {
        self.check
            .checkport
            .or((real.port > 0).then_some(real.port))
            .or_else(|| self.check.service.well_known_port())
    }

    /// The request a check of `real` sends: the real's override, else the virtual's.
    pub fn request_for<'a>(&'a self, real: &'a Real) -> &'a str {
        match &real.check_override {
            Some(o) => &o.request,
            None => &self.check.request,
        }
    }

    /// The receive pattern a check of `real` expects: the real's override, else the
    /// virtual's (`None` = unset).
    pub fn receive_for<'a>(&'a self, real: &'a Real) -> Option<&'a str> {
        match &real.check_override {
            Some(o) => Some(&o.receive),
            None => self.check.receive.as_deref(),
        }
    }
}

impl Check {
    /// `negotiate` with `service=none` (the default for unknown ports and fwmarks) and `on`
    /// never look at the real server: it is always up.
    pub fn always_up(&self) -> bool {
        matches!(self.checktype, CheckType::On)
            || (matches!(self.checktype, CheckType::Negotiate) && self.service == Service::None)
    }
}

impl Location {
    pub fn new(file: Arc<Path>, line: u32) -> Self {
        Location { file, line }
    }
}

impl PartialEq for Location {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Location {}
impl Hash for Location {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn ser_path<S: Serializer>(p: &Arc<Path>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&p.display())
}

fn ser_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn ser_opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}
