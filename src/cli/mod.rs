//! Command line: the Perl-compatible synopsis plus this project's extra subcommands.
//!
//! The Perl ldirectord takes `[-d] [--] [configfile] command`, where the words are
//! positional; clap cannot express that shape next to real subcommands, so the first
//! non-option word decides: one of [`EXTRA_COMMANDS`] goes to its own clap parser, anything
//! else goes to the legacy parser in [`legacy`].

pub mod check;
pub mod doctor;
pub mod dump_config;
pub mod exit;
pub mod legacy;
pub mod lifecycle;
pub mod list;
pub mod names;
pub mod plan;
pub mod realserver;
pub mod save;
pub mod status_view;

use std::ffi::OsString;
use std::process::ExitCode;

/// Subcommands this project adds; each has a module with `run(args) -> ExitCode`.
pub const EXTRA_COMMANDS: &[&str] = &[
    "list",
    "save",
    "check",
    "plan",
    "dump-config",
    "realserver",
    "doctor",
];

/// Entry point for the binary: `args` is the whole argv, program name included.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let rest = args.get(1..).unwrap_or_default();
    match rest.iter().find(|a| !a.starts_with('-')) {
        Some(word) if word == "check" => check::run(rest),
        Some(word) if word == "list" => list::run(rest),
        Some(word) if word == "save" => save::run(rest),
        Some(word) if word == "plan" => plan::run(rest),
        Some(word) if word == "dump-config" => dump_config::run(rest),
        Some(word) if word == "realserver" => realserver::run(rest),
        Some(word) if word == "doctor" => doctor::run(rest),
        Some(word) if EXTRA_COMMANDS.contains(&word.as_str()) => exit::not_implemented(word),
        _ => legacy::run(rest),
    }
}
