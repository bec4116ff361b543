//! systemd's readiness protocol (`sd_notify`): `READY=1` once the table is programmed,
//! `RELOADING=1` around a reload (with the monotonic timestamp `Type=notify-reload`
//! requires), `STOPPING=1` when stopping, and a `STATUS=` line for `systemctl status`.
//! Without `NOTIFY_SOCKET` every call does nothing.

use sd_notify::NotifyState;

/// Whether a service manager is listening.
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// After a reload, successful or not: the service is ready again either way (a failed
/// reload keeps the old configuration running).
pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify failed: {e}");
    }
}
