//! `RtnlError`: why an rtnetlink request failed.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtnlError {
    #[error("the kernel refused {what}: {}", describe(*.errno))]
    Kernel { what: String, errno: i32 },
    #[error("no answer from the kernel within {0:?}")]
    Timeout(Duration),
    #[error("malformed reply: {0}")]
    Decode(String),
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
}

impl RtnlError {
    /// The kernel's (or the socket's) errno.
    pub fn errno(&self) -> Option<i32> {
        match self {
            RtnlError::Kernel { errno, .. } => Some(*errno),
            RtnlError::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

fn describe(errno: i32) -> String {
    format!(
        "{} (errno {errno})",
        std::io::Error::from_raw_os_error(errno)
    )
}
