//! The daemon's view of the director: start it with a configuration and a kernel backend,
//! send it `Reload`/`Stop`, watch its status snapshot.
//!
//! TEMPORARY: `src/director` has not published its entry point yet. Until it does, this
//! stand-in has the expected shape (`run(config, backend, commands, status)`) and only
//! publishes the configured virtuals and reals with unknown health; it never touches the
//! kernel. It is replaced by a re-export of `crate::director` as soon as that lands.

use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::ipvs::Backend;

/// What the daemon asks of the director.
#[derive(Debug)]
pub enum Command {
    /// Switch to this configuration, changing only what differs; answer when applied.
    Reload(Box<Config>, oneshot::Sender<Result<(), String>>),
    /// Stop checking, honour `cleanstop`, return.
    Stop,
}

/// Runs the director until [`Command::Stop`] (or until `commands` closes).
pub async fn run<B: Backend>(
    config: Config,
    backend: B,
    mut commands: mpsc::Receiver<Command>,
    status: watch::Sender<serde_json::Value>,
) -> Result<(), String> {
    let _backend = backend;
    status.send_replace(snapshot(&config));
    while let Some(command) = commands.recv().await {
        match command {
            Command::Reload(new, reply) => {
                status.send_replace(snapshot(&new));
                let _ = reply.send(Ok(()));
            }
            Command::Stop => break,
        }
    }
    Ok(())
}

fn snapshot(config: &Config) -> serde_json::Value {
    let virtuals: Vec<_> = config
        .virtuals
        .iter()
        .map(|v| {
            json!({
                "virtual": v.endpoint.to_string(),
                "reals": v.reals.iter().map(|r| json!({
                    "real": format!("{}:{}", r.addr, r.port),
                    "health": "unknown",
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "virtuals": virtuals })
}
