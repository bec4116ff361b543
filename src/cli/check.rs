//! `ldirectord check [configfile] [--virtual V] [--real R] [--json]`: run every configured
//! check once, concurrently, and print one row per (virtual, real). Exit 0 only if every
//! checked real server is up (`checktype=off` rows are skipped and do not count).
//! The Perl ldirectord has nothing like it.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use serde::Serialize;

use super::args::parse_args;
use super::exit;
use crate::check::{Engine, Outcome, Verdict};
use crate::config::{self, Endpoint, Real, Virtual};
use crate::director::check_specs;

#[derive(Parser, Debug)]
#[command(
    name = "ldirectord check",
    about = "Run the configured health checks once and print their verdicts"
)]
struct Args {
    /// Configuration file (as for the daemon: a bare name is looked up in /etc/ha.d).
    #[arg(default_value = "ldirectord.cf")]
    configfile: String,
    /// Only this virtual service: `VIP:PORT`, `tcp:VIP:PORT`, or a firewall mark.
    #[arg(long = "virtual", value_name = "V")]
    virtual_: Option<String>,
    /// Only this real server: `ADDRESS` or `ADDRESS:PORT`.
    #[arg(long, value_name = "R")]
    real: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Checks in flight at once.
    #[arg(long, default_value_t = crate::check::engine::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
}

#[derive(Serialize)]
struct Row {
    #[serde(rename = "virtual")]
    virtual_: String,
    real: String,
    check: String,
    #[serde(flatten)]
    outcome: RowOutcome,
}

#[derive(Serialize)]
#[serde(untagged)]
enum RowOutcome {
    Ran(Outcome),
    Invalid {
        verdict: &'static str,
        reason: String,
    },
}

fn virtual_matches(v: &Virtual, want: &str) -> bool {
    let id = v.endpoint.to_string();
    match v.endpoint {
        Endpoint::Addr { addr, .. } => {
            id == want || addr.to_string() == want || addr.ip().to_string() == want
        }
        Endpoint::Fwmark { mark, .. } => id == want || mark.to_string() == want,
    }
}

fn real_name(r: &Real) -> String {
    std::net::SocketAddr::new(r.addr, r.port).to_string()
}

fn real_matches(r: &Real, want: &str) -> bool {
    real_name(r) == want || r.addr.to_string() == want
}

fn run_inner(args: Args) -> anyhow::Result<bool> {
    let path = config::find_config_file(&args.configfile)
        .unwrap_or_else(|| std::path::PathBuf::from(&args.configfile));
    let loaded = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = loaded.config;

    let mut rows = Vec::new();
    let mut specs = Vec::new();
    for (vi, ri, spec) in check_specs(&cfg) {
        let v = &cfg.virtuals[vi];
        let r = &v.reals[ri];
        if args
            .virtual_
            .as_deref()
            .is_some_and(|w| !virtual_matches(v, w))
            || args.real.as_deref().is_some_and(|w| !real_matches(r, w))
        {
            continue;
        }
        let (check, outcome) = match spec {
            Ok(s) => {
                specs.push((rows.len(), s.clone()));
                (s.kind.name(), None)
            }
            Err(e) => (
                v.check.checktype.to_string(),
                Some(RowOutcome::Invalid {
                    verdict: "invalid",
                    reason: e.to_string(),
                }),
            ),
        };
        rows.push((v.endpoint.to_string(), real_name(r), check, outcome));
    }
    if rows.is_empty() {
        anyhow::bail!("no real server matches");
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let engine = Engine::new(args.max_in_flight);
    let only: Vec<_> = specs.iter().map(|(_, s)| s.clone()).collect();
    let outcomes = runtime.block_on(engine.run_all(&only));
    for ((row, _), outcome) in specs.iter().zip(outcomes) {
        rows[*row].3 = Some(RowOutcome::Ran(outcome));
    }

    let rows: Vec<Row> = rows
        .into_iter()
        .filter_map(|(virtual_, real, check, outcome)| {
            Some(Row {
                virtual_,
                real,
                check,
                outcome: outcome?,
            })
        })
        .collect();
    let all_up = rows.iter().all(|r| match &r.outcome {
        RowOutcome::Ran(o) => !matches!(o.verdict, Verdict::Down(_)),
        RowOutcome::Invalid { .. } => false,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    Ok(all_up)
}

fn print_table(rows: &[Row]) {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let (verdict, reason, latency) = match &r.outcome {
                RowOutcome::Ran(o) => {
                    let (v, reason) = match &o.verdict {
                        Verdict::Up => ("up", String::new()),
                        Verdict::Skipped => ("skipped", "checktype=off".into()),
                        Verdict::Down(f) => ("down", f.to_string()),
                    };
                    (
                        v.to_string(),
                        reason,
                        format!("{:.1} ms", o.latency.as_secs_f64() * 1000.0),
                    )
                }
                RowOutcome::Invalid { verdict, reason } => {
                    (verdict.to_string(), reason.clone(), "-".into())
                }
            };
            [
                r.virtual_.clone(),
                r.real.clone(),
                r.check.clone(),
                verdict,
                latency,
                reason,
            ]
        })
        .collect();
    let header = ["VIRTUAL", "REAL", "CHECK", "VERDICT", "LATENCY", "REASON"];
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; 6]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i == 5 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header);
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
    }
}

/// `args` is the command line after the program name; the word `check` is in it.
pub fn run(args: &[String]) -> ExitCode {
    let args = match parse_args::<Args>("ldirectord check", "check", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run_inner(args) {
        Ok(true) => ExitCode::from(exit::OK),
        Ok(false) => ExitCode::from(exit::FAILURE),
        Err(e) => {
            eprintln!("ldirectord check: {e:#}");
            ExitCode::from(exit::CONFIG_ERROR)
        }
    }
}
