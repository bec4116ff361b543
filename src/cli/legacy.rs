//! The Perl synopsis: `ldirectord [-d|--debug] [--] [configfile] start|stop|…`.
//!
//! TEMPORARY minimal parser until the config branch's full legacy parser lands; only the
//! shape needed to drive the lifecycle commands.

use std::process::ExitCode;

use super::exit;
use super::lifecycle::{self, Lifecycle};

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
    let json = args.iter().any(|a| a == "--json");
    let mut debug = false;
    let mut words = Vec::new();
    for a in args.iter().filter(|a| *a != "--json") {
        match a.as_str() {
            "-d" | "--debug" if words.is_empty() => debug = true,
            "--" => {}
            _ => words.push(a.clone()),
        }
    }
    let (config, cfgname, command) = match words.as_slice() {
        [command] => ("ldirectord.cf".to_owned(), "ldirectord".to_owned(), command),
        [config, command, ..] => (
            config.clone(),
            config.rsplit('/').next().unwrap_or(config).to_owned(),
            command,
        ),
        [] => return ExitCode::from(exit::USAGE),
    };
    if !COMMANDS.contains(&command.as_str()) {
        return ExitCode::from(exit::USAGE);
    }
    lifecycle::run(&Lifecycle {
        debug,
        command: command.clone(),
        config,
        cfgname,
        json,
    })
}
