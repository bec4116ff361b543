//! `IpvsError`: every way an IPVS request can fail, kernel refusals and transport alike.

use std::time::Duration;

/// Linux errno values the IPVS code returns (stable ABI; spelled out so that this module
/// needs no libc binding).
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const ENOMEM: i32 = 12;
    pub const EEXIST: i32 = 17;
    pub const ENODEV: i32 = 19;
    pub const EINVAL: i32 = 22;
    pub const ERANGE: i32 = 34;
    pub const EMSGSIZE: i32 = 90;
    pub const ENOPROTOOPT: i32 = 92;
    pub const EOPNOTSUPP: i32 = 95;
    pub const EAFNOSUPPORT: i32 = 97;
}

/// What a request was about; the kernel reuses errnos (ENOENT means "no such destination"
/// for a destination command but "no such scheduler module" for a service command), so
/// the meaning of an errno depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Service,
    Dest,
    Daemon,
    /// Flush, zero-all, timeouts, info: no object of their own.
    Table,
    /// Resolving the `IPVS` generic netlink family through nlctrl.
    Family,
}

/// An IPVS operation failed.
///
/// Kernel refusals keep their errno ([`IpvsError::errno`]) so that idempotent callers can
/// treat "exists" on add and "no such …" on delete as success. [`IpvsError::hint`] gives
/// the operator the likely fix where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpvsError {
    #[error("the virtual service already exists")]
    ServiceExists,
    #[error("the real server already exists in this virtual service")]
    DestExists,
    #[error("a sync daemon in this state is already running")]
    DaemonRunning,
    #[error("no such virtual service")]
    NoSuchService,
    #[error("no such real server in this virtual service")]
    NoSuchDest,
    #[error("no sync daemon in this state is running")]
    NoSuchDaemon,
    /// ENOENT on a service add/edit: `ip_vs_<name>` or `ip_vs_pe_<name>` is not available.
    #[error("scheduler or persistence engine not available in the kernel")]
    NoSuchModule,
    #[error("no such network interface")]
    NoSuchDevice,
    #[error("invalid argument (the kernel refused the request with EINVAL)")]
    Invalid,
    #[error("value out of range (negative weight, or lower threshold above upper)")]
    OutOfRange,
    #[error("address family not supported (IPv6 disabled?)")]
    AddressFamilyNotSupported,
    #[error("permission denied")]
    PermissionDenied,
    /// The `IPVS` generic netlink family is not registered: the module is not loaded.
    #[error("the kernel has no IPVS support loaded")]
    IpvsMissing,
    #[error("the kernel refused the request: {}", describe(*.errno))]
    Kernel { errno: i32 },
    /// The kernel did not answer within the request's deadline. Whether a change took
    /// effect is unknown: read the table back.
    #[error("no answer from the kernel within {0:?}")]
    Timeout(Duration),
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// A reply that does not parse, or one that does not fit the request.
    #[error("malformed netlink reply: {0}")]
    Protocol(String),
}

impl IpvsError {
    /// Maps a kernel errno (positive) to the error it means for this subject.
    pub fn from_errno(code: i32, subject: Subject) -> IpvsError {
        use errno::*;
        let code = code.abs();
        match (code, subject) {
            (EEXIST, Subject::Service) => IpvsError::ServiceExists,
            (EEXIST, Subject::Dest) => IpvsError::DestExists,
            (EEXIST, Subject::Daemon) => IpvsError::DaemonRunning,
            (ESRCH, Subject::Daemon) => IpvsError::NoSuchDaemon,
            (ESRCH, Subject::Service | Subject::Dest | Subject::Table) => IpvsError::NoSuchService,
            (ENOENT, Subject::Dest) => IpvsError::NoSuchDest,
            (ENOENT, Subject::Service) => IpvsError::NoSuchModule,
            (ENOENT, Subject::Family) => IpvsError::IpvsMissing,
            (ENODEV, Subject::Daemon) => IpvsError::NoSuchDevice,
            (EINVAL, _) => IpvsError::Invalid,
            (ERANGE, _) => IpvsError::OutOfRange,
            (EAFNOSUPPORT, _) => IpvsError::AddressFamilyNotSupported,
            (EPERM, _) => IpvsError::PermissionDenied,
            _ => IpvsError::Kernel { errno: code },
        }
    }

    /// The kernel's errno behind this error; `None` for transport and decoding failures.
    pub fn errno(&self) -> Option<i32> {
        use errno::*;
        Some(match self {
            IpvsError::ServiceExists | IpvsError::DestExists | IpvsError::DaemonRunning => EEXIST,
            IpvsError::NoSuchService | IpvsError::NoSuchDaemon => ESRCH,
            IpvsError::NoSuchDest | IpvsError::NoSuchModule | IpvsError::IpvsMissing => ENOENT,
            IpvsError::NoSuchDevice => ENODEV,
            IpvsError::Invalid => EINVAL,
            IpvsError::OutOfRange => ERANGE,
            IpvsError::AddressFamilyNotSupported => EAFNOSUPPORT,
            IpvsError::PermissionDenied => EPERM,
            IpvsError::Kernel { errno } => *errno,
            IpvsError::Timeout(_) | IpvsError::Io(_) | IpvsError::Protocol(_) => return None,
        })
    }

    /// Adding something that is already there.
    pub fn is_exists(&self) -> bool {
        matches!(
            self,
            IpvsError::ServiceExists | IpvsError::DestExists | IpvsError::DaemonRunning
        )
    }

    /// Touching something that is not there (ESRCH for services, ENOENT for destinations).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            IpvsError::NoSuchService | IpvsError::NoSuchDest | IpvsError::NoSuchDaemon
        )
    }

    /// Advice for the operator, where the fix is usually the same.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            IpvsError::PermissionDenied => Some(
                "IPVS needs CAP_NET_ADMIN in the network namespace: run as root or grant the capability",
            ),
            IpvsError::IpvsMissing => Some("load the IPVS kernel module: modprobe ip_vs"),
            IpvsError::NoSuchModule => Some(
                "check the scheduler name; the kernel loads ip_vs_<scheduler> on demand (modprobe ip_vs_<scheduler>)",
            ),
            IpvsError::AddressFamilyNotSupported => {
                Some("IPv6 may be disabled on this host (net.ipv6.conf.all.disable_ipv6)")
            }
            IpvsError::Timeout(_) => {
                Some("the change may or may not have been made: list the table")
            }
            _ => None,
        }
    }

    /// A copy for places that must hand the same failure out more than once (the error
    /// owns an `io::Error`, which is not `Clone`).
    pub fn duplicate(&self) -> IpvsError {
        match self {
            IpvsError::Io(e) => IpvsError::Io(std::io::Error::new(e.kind(), e.to_string())),
            IpvsError::Timeout(d) => IpvsError::Timeout(*d),
            IpvsError::Protocol(m) => IpvsError::Protocol(m.clone()),
            IpvsError::Kernel { errno } => IpvsError::Kernel { errno: *errno },
            IpvsError::ServiceExists => IpvsError::ServiceExists,
            IpvsError::DestExists => IpvsError::DestExists,
            IpvsError::DaemonRunning => IpvsError::DaemonRunning,
            IpvsError::NoSuchService => IpvsError::NoSuchService,
            IpvsError::NoSuchDest => IpvsError::NoSuchDest,
            IpvsError::NoSuchDaemon => IpvsError::NoSuchDaemon,
            IpvsError::NoSuchModule => IpvsError::NoSuchModule,
            IpvsError::NoSuchDevice => IpvsError::NoSuchDevice,
            IpvsError::Invalid => IpvsError::Invalid,
            IpvsError::OutOfRange => IpvsError::OutOfRange,
            IpvsError::AddressFamilyNotSupported => IpvsError::AddressFamilyNotSupported,
            IpvsError::PermissionDenied => IpvsError::PermissionDenied,
            IpvsError::IpvsMissing => IpvsError::IpvsMissing,
        }
    }
}

fn describe(code: i32) -> String {
    format!("{} (errno {code})", std::io::Error::from_raw_os_error(code))
}

#[cfg(test)]
mod tests {
    use super::errno::*;
    use super::*;

    #[test]
    fn errno_depends_on_the_subject() {
        assert!(matches!(
            IpvsError::from_errno(ENOENT, Subject::Dest),
            IpvsError::NoSuchDest
        ));
        assert!(matches!(
            IpvsError::from_errno(ENOENT, Subject::Service),
            IpvsError::NoSuchModule
        ));
        assert!(matches!(
            IpvsError::from_errno(-ESRCH, Subject::Dest),
            IpvsError::NoSuchService
        ));
    }

    #[test]
    fn errno_round_trips() {
        for subject in [
            Subject::Service,
            Subject::Dest,
            Subject::Daemon,
            Subject::Table,
            Subject::Family,
        ] {
            for code in [
                EPERM,
                ENOENT,
                ESRCH,
                ENOMEM,
                EEXIST,
                ENODEV,
                EINVAL,
                ERANGE,
                EMSGSIZE,
                EOPNOTSUPP,
                EAFNOSUPPORT,
            ] {
                let err = IpvsError::from_errno(code, subject);
                assert_eq!(err.errno(), Some(code), "{code} {subject:?} -> {err:?}");
                assert_eq!(err.duplicate().errno(), Some(code));
            }
        }
    }

    #[test]
    fn hints_name_the_fix() {
        assert!(
            IpvsError::PermissionDenied
                .hint()
                .unwrap()
                .contains("CAP_NET_ADMIN")
        );
        assert!(
            IpvsError::IpvsMissing
                .hint()
                .unwrap()
                .contains("modprobe ip_vs")
        );
        let other = IpvsError::Kernel { errno: ENOMEM };
        assert!(other.to_string().contains("errno 12"), "{other}");
    }
}
