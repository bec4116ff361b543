//! Command line: the Perl-compatible synopsis plus this project's extra subcommands.
//!
//! The Perl ldirectord takes `[-d] [--] [configfile] command`, where the words are
//! positional; clap cannot express that shape next to real subcommands, so the first
//! non-option word decides: one of [`EXTRA_COMMANDS`] goes to its own clap parser, anything
//! else goes to the legacy parser in [`legacy`]. An extra command word followed by a
//! lifecycle command (`ldirectord check start`) is a config name, as it was in Perl.

pub mod args;
pub mod check;
pub mod doctor;
pub mod dump_config;
pub mod exit;
pub mod legacy;
pub mod lifecycle;
pub mod list;
pub mod names;
pub mod ocf;
pub mod plan;
pub mod realserver;
pub mod save;
pub mod status_view;
pub mod sync;

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
    "ocf",
    "sync",
];

/// Entry point for the binary: `args` is the whole argv, program name included.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let rest = args.get(1..).unwrap_or_default();
    // heartbeat runs /etc/ha.d/resource.d/ldirectord, a symlink to this binary.
    if args
        .first()
        .is_some_and(|a| crate::ra::heartbeat::invoked_as_resource_script(a))
    {
        return crate::ra::heartbeat::run(rest);
    }
    if names_a_config_file(rest) {
        return legacy::run(rest);
    }
    match rest.iter().find(|a| !a.starts_with('-')) {
        Some(word) if word == "check" => check::run(rest),
        Some(word) if word == "list" => list::run(rest),
        Some(word) if word == "save" => save::run(rest),
        Some(word) if word == "plan" => plan::run(rest),
        Some(word) if word == "dump-config" => dump_config::run(rest),
        Some(word) if word == "ocf" => ocf::run(rest),
        Some(word) if word == "sync" => sync::run(rest),
        Some(word) if word == "realserver" => realserver::run(rest),
        Some(word) if word == "doctor" => doctor::run(rest),
        Some(word) if EXTRA_COMMANDS.contains(&word.as_str()) => exit::not_implemented(word),
        _ => legacy::run(rest),
    }
}

/// Subcommands whose own arguments include lifecycle words (`realserver start VIP`, the OCF
/// agent's `ocf start`).
const TAKES_LIFECYCLE_WORDS: &[&str] = &["realserver", "ocf"];

/// `ldirectord check start` is, for the Perl ldirectord, the configuration `check`
/// (`/etc/ha.d/check`) and the command `start`: an extra command word followed by a
/// lifecycle command is a config name, so existing scripts keep working.
fn names_a_config_file(args: &[String]) -> bool {
    let mut words = args.iter().filter(|a| !a.starts_with('-'));
    match (words.next(), words.next()) {
        (Some(first), Some(second)) => {
            EXTRA_COMMANDS.contains(&first.as_str())
                && !TAKES_LIFECYCLE_WORDS.contains(&first.as_str())
                && legacy::COMMANDS.contains(&second.as_str())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::names_a_config_file;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn an_extra_command_word_before_a_lifecycle_command_is_a_config_name() {
        assert!(names_a_config_file(&words("check start")));
        assert!(names_a_config_file(&words("-d list status")));
        assert!(!names_a_config_file(&words("check web.cf")));
        assert!(!names_a_config_file(&words("list -n")));
        assert!(!names_a_config_file(&words("realserver start 10.0.0.100")));
        assert!(!names_a_config_file(&words("ocf start")));
        assert!(!names_a_config_file(&words("ocf reload")));
        assert!(!names_a_config_file(&words("web.cf start")));
    }
}
