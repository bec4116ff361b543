//! What a check found: up, or down with a typed reason, plus how long it took.
//!
//! The reason taxonomy follows pingora's error kinds: a small closed set of kinds that become
//! log fields and JSON values, each with a free-text detail for humans.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Why a real server was judged down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The connection was refused (RST to the SYN, or ICMP port unreachable for UDP).
    Refused,
    /// The connect did not finish before the deadline.
    ConnectTimeout,
    /// No route, host unreachable, network down, or another connect error.
    Unreachable,
    /// The peer reset the connection after it was established.
    Reset,
    /// The peer closed the connection before the exchange was complete.
    Closed,
    /// The TLS handshake failed (bad certificate, not TLS at all, protocol mismatch).
    Tls,
    /// An HTTP status outside 2xx.
    Status(u16),
    /// A redirect that leaves the real server, loops, or is malformed.
    Redirect,
    /// The reply did not match `receive` (or, for services without receive, was not the
    /// expected greeting or code).
    NoMatch,
    /// Login, bind or RADIUS authentication was rejected.
    Auth,
    /// The server's reply broke its protocol.
    Protocol,
    /// A reply, header block or line exceeded its size cap.
    TooLarge,
    /// The check as a whole ran out of time after connecting.
    Deadline,
    /// An external check exited with this non-zero status.
    Exit(i32),
    /// An external check could not be started.
    Exec,
    /// The check cannot run here (for example ICMP without CAP_NET_RAW).
    Unsupported,
    /// Any other local I/O error.
    Io,
}

impl FailureKind {
    /// A stable machine name: log field and JSON value.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::ConnectTimeout => "connect-timeout",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Reset => "reset",
            FailureKind::Closed => "closed",
            FailureKind::Tls => "tls",
            FailureKind::Status(_) => "status",
            FailureKind::Redirect => "redirect",
            FailureKind::NoMatch => "no-match",
            FailureKind::Auth => "auth",
            FailureKind::Protocol => "protocol",
            FailureKind::TooLarge => "too-large",
            FailureKind::Deadline => "deadline",
            FailureKind::Exit(_) => "exit",
            FailureKind::Exec => "exec",
            FailureKind::Unsupported => "unsupported",
            FailureKind::Io => "io",
        }
    }

    /// The HTTP status or exit status, for the kinds that have one.
    pub fn code(self) -> Option<i32> {
        match self {
            FailureKind::Status(n) => Some(i32::from(n)),
            FailureKind::Exit(n) => Some(n),
            _ => None,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Refused => f.write_str("refused"),
            FailureKind::ConnectTimeout => f.write_str("connect timeout"),
            FailureKind::Unreachable => f.write_str("unreachable"),
            FailureKind::Reset => f.write_str("reset"),
            FailureKind::Closed => f.write_str("closed early"),
            FailureKind::Tls => f.write_str("TLS failure"),
            FailureKind::Status(n) => write!(f, "status {n}"),
            FailureKind::Redirect => f.write_str("redirect"),
            FailureKind::NoMatch => f.write_str("no match"),
            FailureKind::Auth => f.write_str("auth rejected"),
            FailureKind::Protocol => f.write_str("protocol error"),
            FailureKind::TooLarge => f.write_str("too large"),
            FailureKind::Deadline => f.write_str("deadline"),
            FailureKind::Exit(n) => write!(f, "exit {n}"),
            FailureKind::Exec => f.write_str("exec failed"),
            FailureKind::Unsupported => f.write_str("unsupported"),
            FailureKind::Io => f.write_str("I/O error"),
        }
    }
}

/// A down verdict: kind plus a human-readable detail. In JSON:
/// `{"kind": "status", "code": 500, "detail": "500 Internal Server Error"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub detail: String,
}

impl Failure {
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Failure {
        Failure {
            kind,
            detail: detail.into(),
        }
    }
}

impl Serialize for Failure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind.name())?;
        if let Some(code) = self.kind.code() {
            m.serialize_entry("code", &code)?;
        }
        m.serialize_entry("detail", &self.detail)?;
        m.end()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.kind, self.detail)
        }
    }
}

impl std::error::Error for Failure {}

/// Up or down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "verdict", content = "reason")]
pub enum Verdict {
    Up,
    Down(Failure),
    /// `checktype=off`: nothing was checked and nothing may change.
    Skipped,
}

impl Verdict {
    pub fn is_up(&self) -> bool {
        matches!(self, Verdict::Up)
    }
}

/// The result of one check run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub verdict: Verdict,
    /// From the moment the check got its slot to its verdict.
    #[serde(serialize_with = "serialize_millis", rename = "latency_ms")]
    pub latency: Duration,
}

impl Outcome {
    pub fn is_up(&self) -> bool {
        self.verdict.is_up()
    }
}

fn serialize_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// Result type of the per-service check functions: `Ok(())` is up.
pub type CheckResult = Result<(), Failure>;
