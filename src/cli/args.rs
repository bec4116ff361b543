//! Handing a subcommand's words to its clap parser.

use std::process::ExitCode;

use clap::Parser;

use super::exit;

/// Parses the words after `ldirectord` (the subcommand word included) with clap; on
/// `--help` or a usage error clap's text is printed and the exit status returned.
pub(crate) fn parse_args<A: Parser>(
    name: &str,
    word: &str,
    args: &[String],
) -> Result<A, ExitCode> {
    A::try_parse_from(argv_for(name, word, args)).map_err(|e| {
        let _ = e.print();
        ExitCode::from(if e.use_stderr() {
            exit::USAGE
        } else {
            exit::OK
        })
    })
}

/// The command line clap sees: the subcommand word replaced by the command's name.
pub(crate) fn argv_for(name: &str, word: &str, args: &[String]) -> Vec<String> {
    let mut argv = vec![name.to_string()];
    let mut skipped = false;
    for a in args {
        if !skipped && a == word {
            skipped = true;
            continue;
        }
        argv.push(a.clone());
    }
    argv
}
