//! `ldirectord plan [configfile] [--assume checked|kernel|up] [--json]`: print what starting
//! with this configuration would change in the kernel's IPVS table, and change nothing.
//! The Perl ldirectord has nothing like it.
//!
//! Only the services the configuration names are read; a start never touches the others.
//! By default every configured check runs once first (as `ldirectord check` does) and its
//! verdict goes through the daemon's own state machine, so the plan shows the table after
//! the first checks; `--assume kernel` shows the start before any check answers (adoption:
//! nothing but service settings and weights of servers found serving), `--assume up` the
//! table with every real server up.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use serde::Serialize;

use super::args::parse_args;
use super::exit;
use crate::check::Engine;
use crate::config::{self, Config};
use crate::director::checks::probe;
use crate::director::preview::{Assume, preview_start};
use crate::director::{Probe, Reason, Verdict, check_specs};
use crate::ipvs::{Backend, Forward, IpvsClient, Op};

#[derive(Parser, Debug)]
#[command(
    name = "ldirectord plan",
    about = "Show what a start with this configuration would change in the IPVS table"
)]
struct Args {
    /// Configuration file (as for the daemon: a bare name is looked up in /etc/ha.d).
    #[arg(default_value = "ldirectord.cf")]
    configfile: String,
    /// Health assumed for the real servers.
    #[arg(long, value_enum, default_value_t = AssumeArg::Checked)]
    assume: AssumeArg,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum AssumeArg {
    /// Run every check once now and use its verdict.
    Checked,
    /// No check has answered: what the start itself does.
    Kernel,
    /// Every checked real server is up.
    Up,
}

#[derive(Serialize)]
struct Change {
    /// `add`, `change` or `remove`.
    action: &'static str,
    /// `service` or `real server`.
    object: &'static str,
    service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    real: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forwarding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<i32>,
    text: String,
}

#[derive(Serialize)]
struct Output {
    config_file: String,
    assume: AssumeArg,
    changes: Vec<Change>,
}

fn forwarding(forward: Forward) -> &'static str {
    match forward {
        Forward::Masq => "masq",
        Forward::Route => "gate",
        Forward::Tunnel => "ipip",
        Forward::Local => "local",
        Forward::Bypass => "bypass",
        Forward::Other(_) => "other",
    }
}

fn change(op: &Op) -> Option<Change> {
    let text = op.to_string();
    Some(match op {
        Op::AddService(s) | Op::EditService(s) => Change {
            action: if matches!(op, Op::AddService(_)) {
                "add"
            } else {
                "change"
            },
            object: "service",
            service: s.key.to_string(),
            real: None,
            forwarding: None,
            weight: None,
            text,
        },
        Op::DelService(k) => Change {
            action: "remove",
            object: "service",
            service: k.to_string(),
            real: None,
            forwarding: None,
            weight: None,
            text,
        },
        Op::AddDest { service, dest } | Op::EditDest { service, dest } => Change {
            action: if matches!(op, Op::AddDest { .. }) {
                "add"
            } else {
                "change"
            },
            object: "real server",
            service: service.to_string(),
            real: Some(dest.key().to_string()),
            forwarding: Some(forwarding(dest.forward)),
            weight: Some(dest.weight),
            text,
        },
        Op::DelDest { service, dest } => Change {
            action: "remove",
            object: "real server",
            service: service.to_string(),
            real: Some(dest.to_string()),
            forwarding: None,
            weight: None,
            text,
        },
        _ => return None,
    })
}

/// Runs each check of `config` once and returns the verdicts as the preview wants them.
async fn first_verdicts(config: &Config) -> Vec<(usize, usize, Probe)> {
    let mut verdicts = Vec::new();
    let mut specs = Vec::new();
    let mut places = Vec::new();
    for (vi, ri, spec) in check_specs(config) {
        match spec {
            Ok(spec) => {
                places.push((vi, ri));
                specs.push(spec);
            }
            Err(e) => verdicts.push((
                vi,
                ri,
                Probe {
                    verdict: Verdict::Down(Reason::new("unsupported", e.to_string())),
                    latency: Default::default(),
                },
            )),
        }
    }
    let outcomes = Engine::default().run_all(&specs).await;
    verdicts.extend(
        places
            .into_iter()
            .zip(outcomes)
            .map(|((vi, ri), outcome)| (vi, ri, probe(&outcome))),
    );
    verdicts
}

/// The plan of `config` against `backend`, written to `out`. Returns whether anything
/// would change.
async fn plan<B: Backend>(
    config: &Config,
    backend: &mut B,
    assume: AssumeArg,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let assumption = match assume {
        AssumeArg::Kernel => Assume::Kernel,
        AssumeArg::Up => Assume::Up,
        AssumeArg::Checked => Assume::Checked(first_verdicts(config).await),
    };
    let ops = preview_start(config, backend, &assumption)
        .await
        .context("reading the IPVS table")?;
    let changes: Vec<Change> = ops.iter().filter_map(change).collect();
    if json {
        let output = Output {
            config_file: config.file.display().to_string(),
            assume,
            changes,
        };
        serde_json::to_writer_pretty(&mut *out, &output)?;
        writeln!(out)?;
        return Ok(!ops.is_empty());
    }
    let health = match assume {
        AssumeArg::Checked => "as checked now",
        AssumeArg::Kernel => "before any check answers",
        AssumeArg::Up => "every real server up",
    };
    writeln!(
        out,
        "Plan for {} (health: {health}):",
        config.file.display()
    )?;
    if changes.is_empty() {
        writeln!(out, "No changes: the kernel table already matches.")?;
        return Ok(false);
    }
    let count = |action: &str| changes.iter().filter(|c| c.action == action).count();
    for c in &changes {
        let mark = match c.action {
            "add" => '+',
            "remove" => '-',
            _ => '~',
        };
        writeln!(out, "  {mark} {}", c.text)?;
    }
    writeln!(
        out,
        "{} changes: {} to add, {} to change, {} to remove.",
        changes.len(),
        count("add"),
        count("change"),
        count("remove")
    )?;
    Ok(true)
}

/// `args` is the command line after the program name; the word `plan` is in it.
pub fn run(args: &[String]) -> ExitCode {
    let args = match parse_args::<Args>("ldirectord plan", "plan", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let path = config::find_config_file(&args.configfile)
        .unwrap_or_else(|| std::path::PathBuf::from(&args.configfile));
    let config = match config::load(&path) {
        Ok(loaded) => loaded.config,
        Err(e) => {
            eprintln!("ldirectord plan: {e}");
            return ExitCode::from(exit::CONFIG_ERROR);
        }
    };
    let result = (|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the runtime")?;
        let mut backend = runtime
            .block_on(IpvsClient::connect())
            .map_err(|e| match e.hint() {
                Some(hint) => anyhow::anyhow!("{e} ({hint})"),
                None => anyhow::anyhow!("{e}"),
            })
            .context("connecting to the kernel's IPVS")?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        runtime.block_on(plan(
            &config,
            &mut backend,
            args.assume,
            args.json,
            &mut out,
        ))
    })();
    match result {
        Ok(_) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("ldirectord plan: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FakeHost, parse_str};
    use crate::ipvs::{Dest, FakeKernel, Service, ServiceKey};
    use std::path::Path;

    fn config(text: &str) -> Config {
        parse_str(text, Path::new("/etc/ha.d/web.cf"), &FakeHost::default())
            .unwrap()
            .config
    }

    async fn render(text: &str, kernel: &mut FakeKernel, assume: AssumeArg, json: bool) -> String {
        let mut out = Vec::new();
        plan(&config(text), kernel, assume, json, &mut out)
            .await
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    const CF: &str = "virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 masq 2\n\tchecktype=on\n";

    #[tokio::test]
    async fn text_and_json() {
        let mut kernel = FakeKernel::new();
        let svc = ServiceKey::tcp("10.0.0.100".parse().unwrap(), 80);
        kernel
            .apply(&[
                Op::AddService(Service::new(svc, "wrr")),
                Op::AddDest {
                    service: svc,
                    dest: Dest::new("10.0.0.9".parse().unwrap(), 80, Forward::Route, 1),
                },
            ])
            .await
            .unwrap();
        insta::assert_snapshot!(render(CF, &mut kernel, AssumeArg::Checked, false).await);
        insta::assert_snapshot!(render(CF, &mut kernel, AssumeArg::Kernel, true).await);
        assert_eq!(kernel.journal().len(), 2, "nothing applied by the plan");
    }

    #[tokio::test]
    async fn nothing_to_do() {
        let mut kernel = FakeKernel::new();
        let text = "virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\tchecktype=off\n";
        kernel
            .apply(&[Op::AddService(Service::new(
                ServiceKey::tcp("10.0.0.100".parse().unwrap(), 80),
                "wrr",
            ))])
            .await
            .unwrap();
        assert_eq!(
            render(text, &mut kernel, AssumeArg::Up, false).await,
            "Plan for /etc/ha.d/web.cf (health: every real server up):\nNo changes: the kernel table already matches.\n"
        );
    }
}
