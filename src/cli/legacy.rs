//! The Perl synopsis: `ldirectord [-d|--debug] [-t] [--] [configfile] start|stop|…`.

use std::process::ExitCode;

use super::exit;

/// The lifecycle commands the Perl ldirectord accepts.
pub const COMMANDS: &[&str] = &[
    "start",
    "stop",
    "restart",
    "try-restart",
    "reload",
    "force-reload",
    "status",
];

pub fn run(args: &[String]) -> ExitCode {
    let _ = args;
    exit::not_implemented("lifecycle commands")
}
