//! The exit-code contract shared by every command (LSB codes as the Perl ldirectord uses them).

use std::process::ExitCode;

/// Success; for `status`: running.
pub const OK: u8 = 0;
/// Generic failure; for `status`: stale pid file; for `-t`: the config is invalid.
pub const FAILURE: u8 = 1;
/// A config error while starting (any lifecycle command), as in the Perl code.
pub const CONFIG_ERROR: u8 = 2;
/// `status`: not running.
pub const NOT_RUNNING: u8 = 3;
/// Usage error (the Perl code exits 255 through pod2usage).
pub const USAGE: u8 = 255;

/// Placeholder answer for commands whose issue has not landed yet.
pub fn not_implemented(what: &str) -> ExitCode {
    eprintln!("ldirectord: {what}: not implemented yet");
    ExitCode::from(FAILURE)
}
