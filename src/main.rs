//! The `ldirectord` binary: everything lives in the library; this only hands over argv.

use std::process::ExitCode;

fn main() -> ExitCode {
    ldirectord::cli::run(std::env::args_os().collect())
}
