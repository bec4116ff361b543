//! `ldirectord sync [configfile] [--stop]`: make the kernel's connection-sync daemons what
//! the configuration's `syncdaemon=`, `syncinterface=` and `syncid=` say, once, and exit.
//!
//! The daemon does the same while it runs, and leaves them running when it stops. This is
//! for the director that does not run ldirectord (the standby of a heartbeat pair, where
//! ldirectord runs only on the active node): run it at boot there, so that it receives the
//! active director's connections before the first failover. `--stop` stops both.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;

use super::args::parse_args;
use super::exit;
use crate::config;
use crate::director::sync::{describe, sync_ops};
use crate::ipvs::{Backend, IpvsClient, Op};

#[derive(Parser, Debug)]
#[command(
    name = "ldirectord sync",
    about = "Start (or move, or --stop) the IPVS connection-sync daemons as the configuration says"
)]
struct Args {
    /// Configuration file (a bare name is looked up in /etc/ha.d).
    #[arg(default_value = "ldirectord.cf")]
    configfile: String,
    /// Stop the master and backup sync daemons instead.
    #[arg(long)]
    stop: bool,
}

pub fn run(args: &[String]) -> ExitCode {
    let args = match parse_args::<Args>("ldirectord sync", "sync", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run_inner(&args) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("ldirectord sync: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

fn run_inner(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ops = |running: &[crate::ipvs::Daemon]| -> anyhow::Result<Vec<Op>> {
        if args.stop {
            return Ok(running.iter().map(|d| Op::StopDaemon(d.state)).collect());
        }
        let path = config::find_config_file(&args.configfile)
            .with_context(|| format!("config file {} not found", args.configfile))?;
        let loaded = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(wanted) = loaded.config.global.sync else {
            bail!("{} sets no syncdaemon", path.display());
        };
        Ok(sync_ops(Some(&wanted), running))
    };
    runtime.block_on(async {
        let mut kernel = IpvsClient::connect().await.context("opening IPVS")?;
        let running = kernel.daemons().await.context("reading the sync daemons")?;
        let ops = ops(&running)?;
        let mut failed = 0;
        if !ops.is_empty() {
            let results = kernel
                .apply(&ops)
                .await
                .context("changing the sync daemons")?;
            for (op, result) in ops.iter().zip(results) {
                match result {
                    Ok(()) => println!("{op}"),
                    Err(e) => {
                        eprintln!("{op}: {e}");
                        failed += 1;
                    }
                }
            }
        }
        let mut now = kernel.daemons().await.context("reading the sync daemons")?;
        now.sort_by_key(|d| d.state.to_wire());
        if now.is_empty() {
            println!("no sync daemon runs");
        }
        for d in &now {
            println!("running: {}", describe(d));
        }
        if failed > 0 {
            bail!("{failed} change(s) failed");
        }
        Ok(())
    })
}
