//! The kernel's connection-synchronisation daemons (`syncdaemon=`, an extension).
//!
//! With `syncdaemon` set, the director keeps the kernel's sync threads as configured: at
//! start, after each reload and at every periodic pass (someone may have run
//! `ipvsadm --stop-daemon`). Without it, they are left alone, as the Perl ldirectord
//! does. They are never stopped when the director stops: a director that hands its
//! virtual IP over must go on receiving the new active director's connections, so that
//! they survive the next failover back.

use crate::config::SyncDaemon;
use crate::ipvs::{Daemon, DaemonState, Op};

/// The ops that turn the `running` daemons into the `wanted` ones; none when nothing is
/// wanted (the daemons are not ours to manage then).
pub fn sync_ops(wanted: Option<&SyncDaemon>, running: &[Daemon]) -> Vec<Op> {
    let Some(wanted) = wanted else {
        return Vec::new();
    };
    let mut ops = Vec::new();
    for (state, want) in [
        (DaemonState::Master, wanted.role.master()),
        (DaemonState::Backup, wanted.role.backup()),
    ] {
        let current = running.iter().find(|d| d.state == state);
        let target = want.then(|| wanted_daemon(wanted, state));
        match (current, target) {
            (Some(current), Some(target)) if same(current, &target) => {}
            (Some(_), Some(target)) => {
                // The kernel refuses to start a role that runs: stop it first.
                ops.push(Op::StopDaemon(state));
                ops.push(Op::StartDaemon(target));
            }
            (None, Some(target)) => ops.push(Op::StartDaemon(target)),
            (Some(_), None) => ops.push(Op::StopDaemon(state)),
            (None, None) => {}
        }
    }
    ops
}

/// The daemon of one role, as `ipvsadm --start-daemon` would ask for it: the kernel picks
/// the multicast group, port, TTL and message size.
pub fn wanted_daemon(wanted: &SyncDaemon, state: DaemonState) -> Daemon {
    Daemon::new(state, wanted.interface.clone(), u32::from(wanted.syncid))
}

/// What the configuration decides; the kernel fills in the rest in its dumps.
fn same(running: &Daemon, wanted: &Daemon) -> bool {
    running.mcast_ifn == wanted.mcast_ifn && running.sync_id == wanted.sync_id
}

/// `master on eth0 (syncid 7)`, for logs and the status.
pub fn describe(daemon: &Daemon) -> String {
    let role = match daemon.state {
        DaemonState::Master => "master".to_owned(),
        DaemonState::Backup => "backup".to_owned(),
        DaemonState::Other(n) => format!("state {n}"),
    };
    format!("{role} on {} (syncid {})", daemon.mcast_ifn, daemon.sync_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SyncRole;

    fn want(role: SyncRole) -> SyncDaemon {
        SyncDaemon {
            role,
            interface: "eth0".into(),
            syncid: 7,
        }
    }

    fn running(state: DaemonState, ifn: &str, id: u32) -> Daemon {
        let mut d = Daemon::new(state, ifn, id);
        // What the kernel reports besides what was asked for.
        d.mcast_port = Some(8848);
        d.mcast_ttl = Some(1);
        d
    }

    #[test]
    fn nothing_wanted_touches_nothing() {
        let r = [running(DaemonState::Master, "eth9", 1)];
        assert!(sync_ops(None, &r).is_empty());
    }

    #[test]
    fn both_starts_master_and_backup() {
        let ops = sync_ops(Some(&want(SyncRole::Both)), &[]);
        assert_eq!(
            ops,
            vec![
                Op::StartDaemon(Daemon::new(DaemonState::Master, "eth0", 7)),
                Op::StartDaemon(Daemon::new(DaemonState::Backup, "eth0", 7)),
            ]
        );
    }

    #[test]
    fn running_as_wanted_is_left_alone_whatever_the_kernel_adds() {
        let r = [
            running(DaemonState::Backup, "eth0", 7),
            running(DaemonState::Master, "eth0", 7),
        ];
        assert!(sync_ops(Some(&want(SyncRole::Both)), &r).is_empty());
    }

    #[test]
    fn a_changed_interface_or_id_restarts_that_role() {
        let r = [
            running(DaemonState::Master, "eth1", 7),
            running(DaemonState::Backup, "eth0", 8),
        ];
        let ops = sync_ops(Some(&want(SyncRole::Both)), &r);
        assert_eq!(
            ops,
            vec![
                Op::StopDaemon(DaemonState::Master),
                Op::StartDaemon(Daemon::new(DaemonState::Master, "eth0", 7)),
                Op::StopDaemon(DaemonState::Backup),
                Op::StartDaemon(Daemon::new(DaemonState::Backup, "eth0", 7)),
            ]
        );
    }

    #[test]
    fn a_role_not_wanted_is_stopped() {
        let r = [
            running(DaemonState::Master, "eth0", 7),
            running(DaemonState::Backup, "eth0", 7),
        ];
        let ops = sync_ops(Some(&want(SyncRole::Backup)), &r);
        assert_eq!(ops, vec![Op::StopDaemon(DaemonState::Master)]);
    }

    #[test]
    fn describes_for_logs() {
        let d = Daemon::new(DaemonState::Backup, "eth0", 7);
        assert_eq!(describe(&d), "backup on eth0 (syncid 7)");
    }
}
