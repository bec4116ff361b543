//! `ldirectord doctor [configfile] [--json]`: check that this host has what the
//! configuration needs, print each finding with its fix, exit 0 only when nothing blocks.
//! See [`crate::doctor`]. The Perl ldirectord has nothing like it.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use super::args::parse_args;
use super::exit;
use crate::config;
use crate::director::check_specs;
use crate::doctor::{self, Paths};

#[derive(Parser, Debug)]
#[command(
    name = "ldirectord doctor",
    about = "Check that this host has what the configuration needs (IPVS, schedulers, VIPs, forwarding, routes, ARP, privileges)"
)]
struct Args {
    /// Configuration file (as for the daemon: a bare name is looked up in /etc/ha.d).
    #[arg(default_value = "ldirectord.cf")]
    configfile: String,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

fn run_inner(args: Args) -> anyhow::Result<bool> {
    let path = config::find_config_file(&args.configfile)
        .unwrap_or_else(|| std::path::PathBuf::from(&args.configfile));
    let loaded = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = loaded.config;
    let specs: Vec<_> = check_specs(&cfg)
        .into_iter()
        .filter_map(|(_, _, s)| s.ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let facts = runtime.block_on(doctor::collect(&cfg, &Paths::default()));
    let findings = doctor::diagnose(&cfg, &specs, &facts);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        print!("{}", doctor::render(&findings));
    }
    Ok(!doctor::blocking(&findings))
}

/// `args` is the command line after the program name; the word `doctor` is in it.
pub fn run(args: &[String]) -> ExitCode {
    let args = match parse_args::<Args>("ldirectord doctor", "doctor", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run_inner(args) {
        Ok(true) => ExitCode::from(exit::OK),
        Ok(false) => ExitCode::from(exit::FAILURE),
        Err(e) => {
            eprintln!("ldirectord doctor: {e:#}");
            ExitCode::from(exit::CONFIG_ERROR)
        }
    }
}
