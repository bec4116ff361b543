//! `RealServerError`: why preparing (or inspecting) a real server failed.

use std::path::PathBuf;

use crate::rtnl::RtnlError;

/// A failure of `ldirectord realserver`. Kernel refusals keep their errno so that the
/// caller can tell "already there" from "not allowed".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RealServerError {
    #[error("{0:?} is not a usable VIP: {1}")]
    BadVip(String, &'static str),
    #[error("no VIP given")]
    NoVip,
    #[error("no network interface called {0:?}")]
    NoSuchDevice(String),
    #[error("{0:?} is not a valid interface name")]
    BadDeviceName(String),
    #[error("netlink: {0}")]
    Rtnl(#[from] RtnlError),
    #[error("{path}: {source}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unexpected content {content:?}")]
    SysctlValue { path: PathBuf, content: String },
    #[error("state file {path}: {source}")]
    StateIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The state file or its directory could be tampered with by someone other than its
    /// owner; nothing in it is trusted.
    #[error("state file {path}: {why}")]
    StateUnsafe { path: PathBuf, why: String },
    #[error("state file {path}: {why}")]
    StateCorrupt { path: PathBuf, why: String },
    #[error("state file {0}: another `ldirectord realserver` holds its lock")]
    StateLocked(PathBuf),
}

impl RealServerError {
    /// The kernel's errno, for kernel refusals.
    pub fn errno(&self) -> Option<i32> {
        match self {
            RealServerError::Rtnl(e) => e.errno(),
            RealServerError::Sysctl { source: e, .. }
            | RealServerError::StateIo { source: e, .. } => e.raw_os_error(),
            _ => None,
        }
    }

    /// What the operator can do about it, where that is clear.
    pub fn hint(&self) -> Option<&'static str> {
        match self.errno() {
            Some(EPERM | EACCES) => {
                Some("needs root (CAP_NET_ADMIN and write access to /proc/sys)")
            }
            Some(EAFNOSUPPORT) => {
                Some("IPv6 is disabled on this interface (net.ipv6.conf.*.disable_ipv6)")
            }
            _ => None,
        }
    }
}

const EPERM: i32 = 1;
const EACCES: i32 = 13;
const EAFNOSUPPORT: i32 = 97;
