//! `ldirectord dump-config [configfile] [--json]`: the configuration with every setting in
//! effect (defaults filled in, names resolved, ranges expanded), as `ldirectord.cf` text that
//! reads back to the same thing, or as JSON.

use std::process::ExitCode;

use clap::Parser;

use crate::config;

use super::args::parse_args;
use super::exit;
use super::legacy::{DEFAULT_CONFIG, locate, print_load_error};

#[derive(Debug, Parser)]
#[command(
    name = "ldirectord dump-config",
    about = "Print the configuration with every setting in effect"
)]
struct Args {
    /// Configuration file (a bare name is looked up under /etc/ha.d, as for the other commands)
    #[arg(default_value = DEFAULT_CONFIG)]
    configfile: String,
    /// Print the model as JSON instead of ldirectord.cf text
    #[arg(long)]
    json: bool,
}

/// `args`: the words after the program name, `dump-config` included.
pub fn run(args: &[String]) -> ExitCode {
    let args = match parse_args::<Args>("ldirectord dump-config", "dump-config", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let path = match locate(&args.configfile) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match config::load(&path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            if args.json {
                match serde_json::to_string_pretty(&loaded.config) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("ldirectord: {e}");
                        return ExitCode::from(exit::FAILURE);
                    }
                }
            } else {
                print!("{}", config::render(&loaded.config));
            }
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            print_load_error(&path, &e);
            ExitCode::from(exit::FAILURE)
        }
    }
}
