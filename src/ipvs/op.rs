//! `Op`: one change to the kernel table, as plain data.
//!
//! A reconcile step computes an ordered `Vec<Op>` (pure), prints it for `--dry-run`, and
//! hands it to [`Backend::apply`](super::Backend::apply), which runs it in order.

use std::fmt;

use super::error::Subject;
use super::model::{Daemon, DaemonState, Dest, DestKey, Service, ServiceKey, Timeouts};

/// One mutating IPVS command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `NEW_SERVICE`; fails with [`ServiceExists`](super::IpvsError::ServiceExists).
    AddService(Service),
    /// `SET_SERVICE`: scheduler, flags, timeout, netmask and PE of an existing service.
    EditService(Service),
    /// `DEL_SERVICE`, with all its destinations.
    DelService(ServiceKey),
    AddDest {
        service: ServiceKey,
        dest: Dest,
    },
    /// `SET_DEST`: forwarding method, weight, thresholds and tunnel of an existing dest.
    EditDest {
        service: ServiceKey,
        dest: Dest,
    },
    DelDest {
        service: ServiceKey,
        dest: DestKey,
    },
    /// Zero the counters of one service, or of every service with `None`.
    Zero(Option<ServiceKey>),
    /// Delete every service. Never computed by a reconcile; here for the CLI and tests.
    Flush,
    SetTimeouts(Timeouts),
    StartDaemon(Daemon),
    StopDaemon(DaemonState),
}

impl Op {
    /// What the op is about, to read the kernel's errno correctly.
    pub fn subject(&self) -> Subject {
        match self {
            Op::AddService(_) | Op::EditService(_) | Op::DelService(_) | Op::Zero(Some(_)) => {
                Subject::Service
            }
            Op::AddDest { .. } | Op::EditDest { .. } | Op::DelDest { .. } => Subject::Dest,
            Op::Zero(None) | Op::Flush | Op::SetTimeouts(_) => Subject::Table,
            Op::StartDaemon(_) | Op::StopDaemon(_) => Subject::Daemon,
        }
    }
}

/// One line for logs and `--dry-run`: `add service TCP 10.0.0.1:80 (wlc)`.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddService(s) => write!(f, "add service {} ({})", s.key, s.scheduler)?,
            Op::EditService(s) => write!(f, "edit service {} ({})", s.key, s.scheduler)?,
            Op::DelService(k) => write!(f, "delete service {k}")?,
            Op::AddDest { service, dest } => write!(
                f,
                "add real server {} to {service} ({:?}, weight {})",
                dest.key(),
                dest.forward,
                dest.weight
            )?,
            Op::EditDest { service, dest } => write!(
                f,
                "edit real server {} of {service} ({:?}, weight {})",
                dest.key(),
                dest.forward,
                dest.weight
            )?,
            Op::DelDest { service, dest } => write!(f, "delete real server {dest} of {service}")?,
            Op::Zero(Some(k)) => write!(f, "zero counters of {k}")?,
            Op::Zero(None) => f.write_str("zero all counters")?,
            Op::Flush => f.write_str("flush the table")?,
            Op::SetTimeouts(t) => write!(
                f,
                "set timeouts tcp {} tcpfin {} udp {}",
                t.tcp, t.tcp_fin, t.udp
            )?,
            Op::StartDaemon(d) => write!(
                f,
                "start sync daemon {:?} on {} (syncid {})",
                d.state, d.mcast_ifn, d.sync_id
            )?,
            Op::StopDaemon(s) => write!(f, "stop sync daemon {s:?}")?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::model::Forward;

    #[test]
    fn display_is_one_readable_line() {
        let svc = ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80);
        let op = Op::AddDest {
            service: svc,
            dest: Dest::new("10.0.0.2".parse().unwrap(), 80, Forward::Route, 1),
        };
        assert_eq!(
            op.to_string(),
            "add real server 10.0.0.2:80 to TCP 10.0.0.1:80 (Route, weight 1)"
        );
        assert_eq!(op.subject(), Subject::Dest);
        assert_eq!(Op::Zero(None).subject(), Subject::Table);
    }
}
