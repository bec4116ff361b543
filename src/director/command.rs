//! What the daemon tells a running director.

use tokio::sync::oneshot;

use crate::config::Config;
use crate::ipvs::Op;

/// A request to the director's run loop (see [`super::run`]).
#[derive(Debug)]
pub enum Command {
    /// Apply this configuration (already read and valid). Only the difference reaches the
    /// kernel; real servers whose check is unchanged keep their health. Clears
    /// [`Status::last_reload_error`](super::Status::last_reload_error) and bumps
    /// [`Status::generation`](super::Status::generation) once applied.
    Reload(Box<Config>),
    /// A reload was refused (the new file does not read): keep running the current
    /// configuration and show this text (`file:line: …`) in the status.
    ReloadFailed(String),
    /// What `Reload` of this configuration would change in the kernel now, with the
    /// current health (`ldirectord plan` against a running daemon). Nothing is applied;
    /// the error is a kernel read failure.
    Plan {
        config: Box<Config>,
        reply: oneshot::Sender<Result<Vec<Op>, String>>,
    },
    /// The configuration file changed on disk (Perl `check_cfgfile`: new mtime and a
    /// different checksum). Runs the `callback` program of the configuration in effect
    /// (send this after the `Reload`, if autoreload reloads) as `<callback> <path>`,
    /// without a shell, when it is executable — whether or not autoreload is on, as Perl
    /// does. Logging the change is the daemon's.
    ConfigChanged { path: std::path::PathBuf },
    /// Stop: checks end, virtuals with `cleanstop=yes` are removed from the kernel, the
    /// others are left as they are; then [`super::run`] returns.
    Stop,
}
