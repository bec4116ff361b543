//! Health → kernel table: the per-real state machine, the desired table, and the loop that
//! keeps the IPVS table equal to "the configuration, minus the dead real servers, plus the
//! fallback where nothing is alive".
//!
//! # Using it (the daemon's side)
//!
//! ```no_run
//! # async fn demo(config: ldirectord::config::Config, backend: ldirectord::ipvs::FakeKernel)
//! # -> Result<(), ldirectord::director::DirectorError> {
//! use ldirectord::director::{self, Command, Status};
//! use tokio::sync::{mpsc, watch};
//!
//! let (commands, rx) = mpsc::channel(8);
//! let (status_tx, status_rx) = watch::channel(Status::new(config.file.display().to_string()));
//! let director = tokio::spawn(director::run(config, backend, rx, status_tx));
//! // … on SIGHUP with a good file:  commands.send(Command::Reload(Box::new(new))).await
//! // … on SIGHUP with a bad file:   commands.send(Command::ReloadFailed(located_error)).await
//! // … when the file changes on disk:   commands.send(Command::ConfigChanged { path }).await
//! // … on SIGTERM:                  commands.send(Command::Stop).await, then join `director`.
//! // `status_rx.borrow()` is the snapshot for `ldirectord status` (serde::Serialize);
//! // `ready` turns true once the table has been adopted and programmed (sd_notify READY=1).
//! # let _ = (commands, status_rx, director); Ok(()) }
//! ```
//!
//! * [`run`] = `Director::new(config, backend).run(commands, status)`. The [`Director`]
//!   builder injects the check runner ([`Director::with_checks`]), the side effects (mail
//!   transport, process launcher: [`Director::with_effects`]), the reverse lookup of the
//!   maintenance directory and the wall clock of the status.
//! * [`Command`]: `Reload(Box<Config>)`, `ReloadFailed(String)`, `Plan { config, reply }`
//!   (what a reload would change, with live health; nothing applied), `ConfigChanged
//!   { path }` (runs `callback`), `Stop` (honours `cleanstop`). A closed command channel
//!   counts as `Stop`.
//! * [`Status`]: every virtual and real with health, last check time, verdict, reason,
//!   latency and kernel weight; the phase (starting/running/reloading/stopping/stopped),
//!   `ready`, the configuration generation, `last_reload_error`, and the kernel's sync
//!   state (last sync, pending changes, last error with op and errno).
//! * [`DirectorError`]: only for a table that cannot be read at start; everything later is
//!   retried.
//!
//! # How it works
//!
//! * [`state`]: per-real state machine with the Perl semantics (failurecount, soft
//!   failures, maintenance forcing down, `off` changing nothing).
//! * [`desired()`]: (config, health) → desired table (quiescent, readdquiescent, fallback).
//! * [`crate::ipvs::plan`]: desired vs actual → ordered ops, make-before-break.
//! * [`run`](Director::run): adopt the kernel table at start, reconcile after each batch of
//!   health changes and every `checkinterval` (drift repair), read back and verify.
//! * [`effects`]/[`alerts`]: mail, `fallbackcommand` (no shell), monitor file; never fatal.
//! * [`maintenance`]: the maintenance directory, names looked up in the background.
//! * [`preview`]: what a start or reload would change, changing nothing (`ldirectord plan`).
//! * [`sync`]: the kernel's connection-sync daemons (`syncdaemon=`), kept as configured.
//! * [`metrics`]: counters only the run loop sees, for the Prometheus endpoint.
//! * [`checks`]: the seam to the check engine: [`HealthChecks`] in, [`Observation`] out.
//! * [`check_spec`]: the pure mapping of the configuration to a check (Perl `ld_setup`).
//! * [`datapath`]: the firewall-mark services of checks through the data path
//!   (`checkdatapath=yes`).

pub mod alerts;
pub mod check_spec;
pub mod checks;
mod command;
pub mod datapath;
pub mod desired;
pub mod effects;
mod error;
pub mod layout;
pub mod maintenance;
pub mod metrics;
pub mod preview;
mod run;
pub mod state;
pub mod status;
pub mod sync;

pub use alerts::{Alerts, Mail, Mailer, SystemMailer};
pub use check_spec::{CheckSpecError, check_spec, check_specs};
pub use checks::{EngineChecks, ExternalChecks, HealthChecks, Observation, WantedCheck};
pub use command::Command;
pub use desired::{FallbackNeed, desired};
pub use effects::{Effects, Launcher, SystemLauncher};
pub use error::DirectorError;
pub use layout::{Layout, RealId};
pub use maintenance::{ReverseLookup, SystemLookup};
pub use metrics::{Metrics, MetricsSnapshot};
pub use run::{Director, run};
pub use state::{Probe, Reason, Verdict};
pub use status::{Clock, FallbackStatus, KernelStatus, Phase, RealStatus, Status, VirtualStatus};
