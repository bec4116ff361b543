//! `ldirectord realserver start|stop|status VIP[,VIP…] [--dev lo]`: prepare this host as
//! an LVS-DR (or LVS-TUN) real server, or undo it, or say what is missing. The Perl
//! ldirectord leaves this to the operator; see [`crate::realserver`].
//!
//! Exit status: 0 done / everything in place; 1 something failed or is still wrong
//! (each such line says how to fix it); 3 (`status`) something is missing, as LSB
//! `status` says "not running"; 255 usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use super::args::parse_args;
use super::exit;
use crate::realserver::state::DEFAULT_DIR;
use crate::realserver::{Outcome, RealServer, RtnlClient, StateStore, Sysctls, parse_vips};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Action {
    /// Add the VIPs to the loopback and make the ARP settings (idempotent).
    Start,
    /// Remove the VIPs `start` added (all of them if none is named) and, once none
    /// remains, put back the ARP settings it changed.
    Stop,
    /// Say what is in place and what is missing; exit 3 if anything is.
    Status,
}

#[derive(Parser, Debug)]
#[command(
    name = "ldirectord realserver",
    about = "Prepare this host as an LVS-DR real server: VIPs on the loopback, ARP kept quiet",
    after_help = "Every change is recorded in /run/ldirectord (one file per network namespace); \
                  stop undoes exactly those changes and nothing else."
)]
struct Args {
    action: Action,
    /// VIPs, comma- or space-separated (IPv4 and IPv6).
    #[arg(value_name = "VIP[,VIP...]")]
    vips: Vec<String>,
    /// The interface that holds the VIPs.
    #[arg(long, default_value = "lo", value_name = "IFACE")]
    dev: String,
    /// The record of what `start` changed (default: one file per network namespace under
    /// /run/ldirectord).
    #[arg(long, value_name = "PATH")]
    state_file: Option<PathBuf>,
    /// Seconds to wait for the kernel's answer to each netlink request.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    timeout: u64,
}

fn print_outcome(outcome: &Outcome) {
    for e in &outcome.events {
        println!("{e}");
    }
    for e in &outcome.errors {
        match e.hint() {
            Some(h) => eprintln!("ldirectord realserver: {e} ({h})"),
            None => eprintln!("ldirectord realserver: {e}"),
        }
    }
    if let Some(after) = &outcome.after
        && !after.ok()
    {
        eprintln!("ldirectord realserver: still not right:");
        eprint!("{}", after.render());
    }
}

fn run_inner(args: Args) -> anyhow::Result<u8> {
    let vips = match (args.action, args.vips.is_empty()) {
        (Action::Stop, true) => None,
        _ => match parse_vips(&args.vips) {
            Ok(vips) => Some(vips),
            Err(e) => {
                eprintln!("ldirectord realserver: {e}");
                return Ok(exit::USAGE);
            }
        },
    };
    let store = match &args.state_file {
        Some(path) => StateStore::at(path)?,
        None => StateStore::for_this_namespace(DEFAULT_DIR)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let mut rs = RealServer {
            table: RtnlClient::open(Duration::from_secs(args.timeout.max(1)))?,
            sysctls: Sysctls::default(),
            store,
        };
        // `start` and `status` always have VIPs: parse_vips refuses an empty list.
        let named = vips.as_deref().unwrap_or_default();
        Ok(match args.action {
            Action::Start => {
                let outcome = rs.start(named, &args.dev).await?;
                print_outcome(&outcome);
                if outcome.ok() {
                    exit::OK
                } else {
                    exit::FAILURE
                }
            }
            Action::Stop => {
                let outcome = rs.stop(vips.as_deref()).await?;
                print_outcome(&outcome);
                if outcome.ok() {
                    exit::OK
                } else {
                    exit::FAILURE
                }
            }
            Action::Status => {
                let (status, note) = rs.status(named, &args.dev).await?;
                print!("{}", status.render());
                if let Some(note) = note {
                    eprintln!("ldirectord realserver: cannot tell who added what: {note}");
                }
                if status.ok() {
                    exit::OK
                } else {
                    exit::NOT_RUNNING
                }
            }
        })
    })
}

/// `args` is the command line after the program name; the word `realserver` is in it.
pub fn run(args: &[String]) -> ExitCode {
    let args = match parse_args::<Args>("ldirectord realserver", "realserver", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run_inner(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let hint = e
                .downcast_ref::<crate::realserver::RealServerError>()
                .and_then(|e| e.hint())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            eprintln!("ldirectord realserver: {e:#}{hint}");
            ExitCode::from(exit::FAILURE)
        }
    }
}
