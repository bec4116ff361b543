//! The daemon's view of the director: start it with a configuration and a kernel backend,
//! send it `Reload`/`ReloadFailed`/`Stop`, watch its status snapshot.
//!
//! TEMPORARY: `src/director` has not landed yet. This stand-in has the shape of its
//! published API (`director::run(config, backend, commands, status)`, `Command`, a
//! `Status` with `ready` and `generation`) and only lists the configured virtuals and reals
//! with unknown health; it never touches the kernel. It becomes a re-export of
//! `crate::director` as soon as that lands.

use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::ipvs::Backend;

/// What the daemon tells the director.
#[derive(Debug)]
pub enum Command {
    /// Apply this (valid) configuration; `generation` goes up once applied.
    Reload(Box<Config>),
    /// A reload was refused: keep running, show this text.
    ReloadFailed(String),
    /// Honour `cleanstop`, then return.
    Stop,
}

/// The snapshot `ldirectord status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub config_file: String,
    pub phase: &'static str,
    pub ready: bool,
    pub last_reload_error: Option<String>,
    pub generation: u64,
    pub virtuals: Vec<serde_json::Value>,
}

impl Status {
    pub fn new(config_file: impl Into<String>) -> Status {
        Status {
            config_file: config_file.into(),
            phase: "starting",
            ready: false,
            last_reload_error: None,
            generation: 0,
            virtuals: Vec::new(),
        }
    }
}

/// Runs until [`Command::Stop`] or until `commands` closes.
pub async fn run<B: Backend>(
    config: Config,
    backend: B,
    mut commands: mpsc::Receiver<Command>,
    status: watch::Sender<Status>,
) -> Result<(), String> {
    let _backend = backend;
    status.send_modify(|s| {
        s.virtuals = virtuals(&config);
        s.ready = true;
        s.phase = "running";
        s.generation = 1;
    });
    while let Some(command) = commands.recv().await {
        match command {
            Command::Reload(new) => status.send_modify(|s| {
                s.virtuals = virtuals(&new);
                s.generation += 1;
                s.last_reload_error = None;
            }),
            Command::ReloadFailed(text) => status.send_modify(|s| {
                s.last_reload_error = Some(text);
            }),
            Command::Stop => break,
        }
    }
    status.send_modify(|s| s.phase = "stopped");
    Ok(())
}

fn virtuals(config: &Config) -> Vec<serde_json::Value> {
    config
        .virtuals
        .iter()
        .map(|v| {
            json!({
                "id": v.endpoint.to_string(),
                "service": v.endpoint.to_string(),
                "scheduler": v.scheduler,
                "reals": v.reals.iter().map(|r| json!({
                    "addr": format!("{}:{}", r.addr, r.port),
                    "weight": r.weight,
                    "health": "unknown",
                    "kernel_weight": null,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}
