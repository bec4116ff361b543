//! What the daemon tells a running director.

use crate::config::Config;

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
    /// Stop: checks end, virtuals with `cleanstop=yes` are removed from the kernel, the
    /// others are left as they are; then [`super::run`] returns.
    Stop,
}
