//! What to check: a self-contained description of one health check of one real server.
//!
//! The director builds a [`CheckSpec`] per (virtual, real) pair from the configuration, with
//! every Perl `ld_setup` rule already applied (URL, Host header, effective timeouts, per-real
//! request/receive, login defaults). The check layer never looks at the configuration.
//!
//! Two specs that compare equal send the same bytes to the same server and get the same
//! verdict, so the engine runs them once and shares the result (see `engine`). That is
//! deliberately stricter than the Perl id (`get_real_id_str`), which ignores `httpmethod`,
//! credentials and timeouts and so can merge checks that would answer differently, and
//! looser in one place: weight and forwarding method, which the Perl id includes, do not
//! change what a check sends and are not part of a spec.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Serialize;

/// Transport of the virtual service, which some checks follow (dns, sip, simpletcp, connect).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// The real server as the check sees it: address and the port checks connect to
/// (`checkport`, else the real's port, else the service's port, as `ld_checkport` does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub addr: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    /// Check through the data path: `addr` is then the VIP, and every socket of the check
    /// carries this firewall mark (which an IPVS service steers to one real server) and
    /// leaves from this host's address towards that real server.
    pub datapath: Option<DataPath>,
}

/// How a data-path check reaches one real server through the VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DataPath {
    /// `SO_MARK` of the check's sockets.
    pub mark: u32,
    /// The real server the mark leads to. The check's source address is the one this host
    /// uses towards it: the VIP (what a socket bound to nothing would use, the VIP being
    /// local) would come back to the real server as its own address and be dropped there.
    pub real: IpAddr,
}

impl Target {
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
}

/// The two Perl timeouts after `ld_setup` resolved their mutual defaults. Which one bounds a
/// given check is decided here, per check function, by [`CheckSpec::deadline`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// `checktimeout`: connect, ping (per try), external, ldap, radius.
    pub check: Duration,
    /// `negotiatetimeout`: the other negotiate checks.
    pub negotiate: Duration,
}

impl Default for Timeouts {
    /// The Perl defaults when nothing is configured.
    fn default() -> Self {
        Timeouts {
            check: Duration::from_secs(5),
            negotiate: Duration::from_secs(30),
        }
    }
}

/// A `receive=` pattern. Perl treats it as a regular expression; Rust's `regex` accepts the
/// common subset (no look-around or back-references) and runs in linear time. Equality and
/// hashing use the source text.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    /// Shared, not cloned: a cloned `Regex` gets its own matcher-cache pool, and 10,000
    /// reals with the same receive would each grow one.
    regex: Arc<regex::bytes::Regex>,
}

/// A `receive=` pattern that Rust's regex engine does not accept.
#[derive(Debug, thiserror::Error)]
#[error("receive pattern {pattern:?} is not a supported regular expression: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Pattern, PatternError> {
        // Thousands of reals usually share a handful of patterns; a compiled regex is tens of
        // kilobytes, and clones share it, so each distinct text is compiled once.
        static CACHE: OnceLock<Mutex<HashMap<String, Arc<regex::bytes::Regex>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(regex) = cache.lock().ok().and_then(|c| c.get(source).cloned()) {
            return Ok(Pattern {
                source: source.to_owned(),
                regex,
            });
        }
        // Perl's `=~ /$recstr/` compiles the text as a pattern with no flags; the same holds
        // here, except that `regex` rejects a few constructs Perl knows.
        let regex = Arc::new(
            regex::bytes::RegexBuilder::new(source)
                .unicode(false)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| PatternError {
                    pattern: source.to_owned(),
                    reason: e.to_string(),
                })?,
        );
        if let Ok(mut c) = cache.lock()
            && c.len() < 4096
        {
            c.insert(source.to_owned(), regex.clone());
        }
        Ok(Pattern {
            source: source.to_owned(),
            regex,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, haystack: &[u8]) -> bool {
        self.regex.is_match(haystack)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl Hash for Pattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.source.hash(state);
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

/// How a TLS server certificate is judged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsVerify {
    /// The chain must lead to a trusted root; the host name is not checked. This is what the
    /// Perl ldirectord does on current Debian (`verify_hostname => 0`, but IO::Socket::SSL
    /// still verifies the chain), so it is the default.
    #[default]
    Chain,
    /// Chain and host name (the virtualhost, else the real's address) are both checked.
    Full,
    /// Nothing is checked except that the handshake signatures are valid: for self-signed
    /// back ends.
    None,
}

/// TLS settings shared by https, pops, imaps and ldaps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    pub verify: TlsVerify,
    /// Trust anchors in PEM instead of the system store (`/etc/ssl/certs` through
    /// rustls-native-certs).
    pub ca_file: Option<PathBuf>,
    /// Name sent as SNI and, with [`TlsVerify::Full`], checked against the certificate.
    /// `None` sends no SNI (an IP address never goes into SNI) and checks the real's address.
    pub server_name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum HttpMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        }
    }
}

/// An http, https or http_proxy negotiate check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpSpec {
    /// The URL as `ld_setup` built it, e.g. `http://192.0.2.7:80/index.html`. For
    /// `http_proxy` it is the absolute URL requested through the real server.
    pub url: String,
    pub method: HttpMethod,
    /// `Host` header: the virtualhost, else the real's address (Perl sets it explicitly).
    /// `None` for http_proxy, where the Host comes from the URL.
    pub host_header: Option<String>,
    /// The real server is an HTTP proxy: connect to it and send the URL in absolute form.
    pub proxy: bool,
    /// Matched against the raw body; `None` when receive is empty.
    pub receive: Option<Pattern>,
}

/// A login for pop, imap, ldap, radius, sql, ftp, sip.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub login: String,
    pub passwd: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FtpSpec {
    pub credentials: Credentials,
    /// Path retrieved with RETR, after `cwd /` (the request, with its leading `/`).
    pub path: String,
    /// `None`: Perl's empty pattern is "the last successful match", which is unpredictable;
    /// here an empty receive means "the file was retrieved".
    pub receive: Option<Pattern>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LdapSpec {
    pub tls: bool,
    /// Simple bind with these when both are non-empty, anonymous bind otherwise.
    pub credentials: Credentials,
    /// Search base: the request without its first character.
    pub base: String,
    pub receive: Option<Pattern>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsSpec {
    /// The name to look up (request without its leading `/`); an IP address becomes a PTR
    /// query, anything else an A query.
    pub query: String,
    /// Matched against the A addresses and PTR names of the answer; `None` (empty receive)
    /// is always down, as in Perl.
    pub receive: Option<Pattern>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RadiusSpec {
    pub credentials: Credentials,
    pub secret: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SipSpec {
    /// The SIP user in `OPTIONS sip:<login>`.
    pub login: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SqlSpec {
    pub credentials: Credentials,
    pub database: String,
    /// The SQL text (request without its leading `/`); at least one row must come back.
    pub query: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimpleTcpSpec {
    /// Sent as is: the request without its leading `/`, with `\n` already turned into
    /// newlines.
    pub send: Vec<u8>,
    /// Some received line must match; `None` (Perl's unpredictable empty pattern) means
    /// "some line arrived".
    pub receive: Option<Pattern>,
}

/// The protocol spoken by a negotiate check (`service=`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// `service=none`: always up.
    None,
    Http(HttpSpec),
    /// smtp and submission.
    Smtp,
    Pop {
        tls: bool,
        credentials: Option<Credentials>,
    },
    Imap {
        tls: bool,
        credentials: Option<Credentials>,
    },
    Nntp,
    Ftp(FtpSpec),
    Ldap(LdapSpec),
    Dns(DnsSpec),
    Radius(RadiusSpec),
    Sip(SipSpec),
    Mysql(SqlSpec),
    Pgsql(SqlSpec),
    SimpleTcp(SimpleTcpSpec),
}

impl Service {
    /// The service's name as written in `service=`.
    pub fn name(&self) -> &'static str {
        match self {
            Service::None => "none",
            Service::Http(h) if h.proxy => "http_proxy",
            Service::Http(h) if h.url.starts_with("https:") => "https",
            Service::Http(_) => "http",
            Service::Smtp => "smtp",
            Service::Pop { tls: false, .. } => "pop",
            Service::Pop { tls: true, .. } => "pops",
            Service::Imap { tls: false, .. } => "imap",
            Service::Imap { tls: true, .. } => "imaps",
            Service::Nntp => "nntp",
            Service::Ftp(_) => "ftp",
            Service::Ldap(l) if l.tls => "ldaps",
            Service::Ldap(_) => "ldap",
            Service::Dns(_) => "dns",
            Service::Radius(_) => "radius",
            Service::Sip(_) => "sip",
            Service::Mysql(_) => "mysql",
            Service::Pgsql(_) => "pgsql",
            Service::SimpleTcp(_) => "simpletcp",
        }
    }
}

/// An external program and its four arguments, already formatted as Perl does:
/// virtual address (v6 in brackets) or fwmark, virtual port (0 for marks), real address,
/// real port (0 if unset).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExternalSpec {
    pub program: PathBuf,
    pub args: [String; 4],
}

/// `checktype=` and what it needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// TCP connect; over UDP the Perl code pings instead, and so does this.
    Connect,
    Negotiate(Service),
    /// `checktype=N`: negotiate, then N connects, then negotiate again; a failed connect
    /// brings the negotiate forward. N = 0 negotiates every time.
    Combined {
        connects: u32,
        service: Service,
    },
    /// ICMP echo, `checkcount` tries of `checktimeout` each.
    Ping,
    External(ExternalSpec),
    /// The Perl file is run by `perl` as a separate process with the same four arguments;
    /// its exit statuses mean what they mean in-process (see `external`).
    ExternalPerl(ExternalSpec),
    /// Always up.
    On,
    /// No check at all: the director leaves the real as it is.
    Off,
}

impl CheckKind {
    pub fn name(&self) -> String {
        match self {
            CheckKind::Connect => "connect".into(),
            CheckKind::Negotiate(s) => format!("negotiate:{}", s.name()),
            CheckKind::Combined { connects, service } => {
                format!("combined{connects}:{}", service.name())
            }
            CheckKind::Ping => "ping".into(),
            CheckKind::External(_) => "external".into(),
            CheckKind::ExternalPerl(_) => "external-perl".into(),
            CheckKind::On => "on".into(),
            CheckKind::Off => "off".into(),
        }
    }
}

/// One health check of one real server, ready to run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    pub kind: CheckKind,
    pub target: Target,
    pub timeouts: Timeouts,
    /// `checkcount`: ICMP tries per ping check (nothing else uses it, as in Perl).
    pub check_count: u32,
    pub tls: TlsOptions,
}

/// Which step of a check is running; the engine picks a timeout per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The negotiate part (or the only part) of the check.
    Main,
    /// The connect step of a combined check.
    CombinedConnect,
}

impl CheckSpec {
    /// The one deadline of a check step, per the Perl check function that bounds it.
    pub fn deadline(&self, step: Step) -> Duration {
        let t = self.timeouts;
        if step == Step::CombinedConnect {
            return t.check;
        }
        let service = match &self.kind {
            CheckKind::Connect if self.target.protocol == Protocol::Udp => {
                return self.ping_deadline();
            }
            CheckKind::Connect | CheckKind::External(_) | CheckKind::ExternalPerl(_) => {
                return t.check;
            }
            CheckKind::Ping => return self.ping_deadline(),
            CheckKind::On | CheckKind::Off => return Duration::ZERO,
            CheckKind::Negotiate(s) | CheckKind::Combined { service: s, .. } => s,
        };
        match service {
            // check_ldap and check_radius run under alarm(checktimeout); negotiatetimeout
            // only bounds single operations inside it.
            Service::Ldap(_) | Service::Radius(_) => t.check,
            // check_sql has no timeout at all in Perl; a hung database must not hang us.
            _ => t.negotiate,
        }
    }

    fn ping_deadline(&self) -> Duration {
        self.timeouts.check.saturating_mul(self.check_count.max(1))
    }
}
