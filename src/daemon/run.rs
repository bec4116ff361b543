//! The daemon's main loop: start-up, signals, reloads, autoreload, control requests, stop.
//!
//! Start-up order matters: logging first (so every failure is logged), then the pid file
//! (a second daemon for the same name must not get further), the control socket, the
//! signal handlers, the kernel connection, and only then the director. The foreground
//! `ldirectord start` hears "ready" after the director published its first snapshot.
//!
//! A reload loads the file in a blocking task while the loop keeps answering `status`;
//! an invalid file changes nothing: the director never sees it, the running configuration
//! stays, the located error is logged and kept for `status` until a valid file is loaded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::autoreload::{self, ConfigWatch};
use super::control::{ControlServer, Incoming, Request, Response};
use super::detach::ReadyNotifier;
use super::logging::{self, LogHandle, Mode, Sink};
use super::notify;
use super::pidfile::{PidFile, PidFileError, PidLock};
use super::signals::{SignalEvent, Signals};
use super::status::{DaemonStatus, Phase, ReloadOutcome, now_rfc3339};
use crate::config::{self, Config, ConfigError, Loaded};
use crate::director::{self, Command, Status};
use crate::ipvs::{Backend, FakeKernel};

/// Where the pid file and control socket of a configuration name live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub pid_file: PathBuf,
    pub socket: PathBuf,
}

/// Overrides the directories of the pid file and the socket (tests; unusual layouts).
pub const RUNDIR_ENV: &str = "LDIRECTORD_RUNDIR";
/// `fake` runs the director against an in-memory kernel (tests on hosts without IPVS).
pub const BACKEND_ENV: &str = "LDIRECTORD_BACKEND";

impl Paths {
    /// `/var/run/ldirectord.<CFGNAME>.pid` (the Perl name) and
    /// `/run/ldirectord.<CFGNAME>.sock`, or both in `$LDIRECTORD_RUNDIR`.
    pub fn for_cfgname(cfgname: &str) -> Self {
        let (pid_dir, socket_dir) = match std::env::var_os(RUNDIR_ENV) {
            Some(dir) if !dir.is_empty() => (PathBuf::from(&dir), PathBuf::from(dir)),
            _ => (PathBuf::from("/var/run"), PathBuf::from("/run")),
        };
        Self {
            pid_file: pid_dir.join(format!("ldirectord.{cfgname}.pid")),
            socket: socket_dir.join(format!("ldirectord.{cfgname}.sock")),
        }
    }
}

/// Everything the daemon needs from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file after the `/etc/ha.d` lookup.
    pub config_file: PathBuf,
    pub cfgname: String,
    pub mode: Mode,
    pub paths: Paths,
}

/// Time for the director to publish its first snapshot before start-up counts as failed.
pub const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Time for the director to stop (and clean the table with `cleanstop`).
pub const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// Time for a reload to read, resolve and validate the file.
pub const LOAD_DEADLINE: Duration = Duration::from_secs(60);
/// Time for the director to apply a valid configuration.
pub const APPLY_DEADLINE: Duration = Duration::from_secs(30);
/// How often the configuration file's mtime is looked at.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the daemon to the end; returns the process exit code. `notifier` is the readiness
/// pipe of a detached daemon (`None` with `-d` or `supervised`).
pub fn run(options: Options, loaded: Loaded, mut notifier: Option<ReadyNotifier>) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ldirectord")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let reason = format!("cannot start the runtime: {e}");
            if let Some(n) = notifier.as_mut() {
                n.failed(&reason);
            }
            eprintln!("ldirectord: {reason}");
            return 1;
        }
    };
    let (code, pid_lock) = runtime.block_on(serve(options, loaded, notifier));
    // Tasks still blocked in a DNS lookup or a check must not delay the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    // Last: once the pid file is gone, `stop` and `restart` consider the daemon finished.
    if let Some(lock) = pid_lock {
        let _ = lock.remove();
    }
    code
}

/// Logs a fatal start-up error, tells the foreground, returns the exit code.
fn fail(notifier: &mut Option<ReadyNotifier>, reason: &str) -> u8 {
    tracing::error!("{reason}");
    if let Some(n) = notifier.as_mut() {
        n.failed(reason);
    }
    1
}

async fn serve(
    options: Options,
    loaded: Loaded,
    mut notifier: Option<ReadyNotifier>,
) -> (u8, Option<PidLock>) {
    let journal = options.mode == Mode::Daemon && logging::under_journald();
    let Loaded { config, warnings } = loaded;
    let log = logging::install(
        Sink::choose(
            options.mode,
            &config.global.logfile,
            &options.cfgname,
            journal,
        ),
        options.mode == Mode::Debug,
        journal,
    );
    tracing::info!(
        "Starting Linux Director Daemon (ldirectord {}) with pid: {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    for w in &warnings {
        log_config_warning(w);
    }

    // Before the pid file: once `status` can see us, a TERM must mean "stop cleanly",
    // not the default action.
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            let reason = format!("cannot install signal handlers: {e}");
            return (fail(&mut notifier, &reason), None);
        }
    };

    // A second daemon for this name must stop here, whatever the mode.
    let pid_lock = match PidFile::new(&options.paths.pid_file).acquire() {
        Ok(lock) => Some(lock),
        Err(e @ PidFileError::AlreadyRunning { .. }) => {
            return (fail(&mut notifier, &e.to_string()), None);
        }
        Err(e) if options.mode == Mode::Daemon => {
            return (fail(&mut notifier, &e.to_string()), None);
        }
        Err(e) => {
            tracing::warn!("{e}; running without a pid file");
            None
        }
    };

    let (control_tx, control_rx) = mpsc::channel::<Incoming>(16);
    let control = match ControlServer::bind(&options.paths.socket) {
        Ok(server) => {
            let path = server.path().to_owned();
            Some(ServingSocket {
                task: tokio::spawn(server.serve(control_tx)),
                path,
            })
        }
        Err(e) if options.mode == Mode::Daemon => {
            return (fail(&mut notifier, &e.to_string()), pid_lock);
        }
        Err(e) => {
            tracing::warn!("{e}; `ldirectord status` will not show details");
            None
        }
    };

    let (director_tx, director_rx) = mpsc::channel::<Command>(4);
    let (status_tx, status_rx) =
        watch::channel(Status::new(options.config_file.display().to_string()));
    let metrics = director::Metrics::new();
    let director =
        match start_director(config.clone(), director_rx, status_tx, metrics.clone()).await {
            Ok(handle) => handle,
            Err(reason) => return (fail(&mut notifier, &reason), pid_lock),
        };
    // Bound once, at start: a reload that moves it is logged and waits for a restart.
    let _metrics = match config.global.metrics {
        Some(addr) => {
            let fake = std::env::var(BACKEND_ENV).as_deref() == Ok("fake");
            super::metrics::start(addr, status_rx.clone(), metrics, fake).await
        }
        None => None,
    };

    let mut daemon = Daemon {
        started_at: now_rfc3339(),
        config_loaded_at: now_rfc3339(),
        watch: ConfigWatch::new(&options.config_file),
        options,
        log,
        config,
        phase: Phase::Starting,
        last_reload: None,
        config_error: None,
        director_tx,
        status_rx,
        director,
        control_rx,
        signals,
        reload: None,
        reload_waiters: Vec::new(),
        reload_again: None,
    };
    let code = daemon.main(&mut notifier).await;
    drop(control);
    (code, pid_lock)
}

/// The control socket being served: stops serving and deletes the file when dropped, so
/// that every way out of start-up or the main loop cleans it up.
struct ServingSocket {
    task: JoinHandle<()>,
    path: PathBuf,
}

impl Drop for ServingSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

type DirectorTask = JoinHandle<Result<(), String>>;

/// Opens the kernel and starts the director on it.
async fn start_director(
    config: Config,
    commands: mpsc::Receiver<Command>,
    status: watch::Sender<Status>,
    metrics: director::Metrics,
) -> Result<DirectorTask, String> {
    if std::env::var(BACKEND_ENV).as_deref() == Ok("fake") {
        tracing::warn!("{BACKEND_ENV}=fake: using an in-memory kernel, not IPVS");
        return Ok(spawn_director(
            config,
            FakeKernel::new(),
            commands,
            status,
            metrics,
        ));
    }
    match crate::ipvs::IpvsClient::connect().await {
        Ok(client) => Ok(spawn_director(config, client, commands, status, metrics)),
        Err(e) => Err(match e.hint() {
            Some(hint) => format!("cannot open IPVS: {e} ({hint})"),
            None => format!("cannot open IPVS: {e}"),
        }),
    }
}

fn spawn_director<B: Backend + 'static>(
    config: Config,
    backend: B,
    commands: mpsc::Receiver<Command>,
    status: watch::Sender<Status>,
    metrics: director::Metrics,
) -> DirectorTask {
    tokio::spawn(async move {
        director::Director::new(config, backend)
            .with_metrics(metrics)
            .run(commands, status)
            .await
            .map_err(|e| e.to_string())
    })
}

/// What started a reload (for the log and `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Signal,
    Autoreload,
    Control,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "signal",
            Trigger::Autoreload => "autoreload",
            Trigger::Control => "control",
        }
    }
}

/// The result of a reload task: the new configuration, or why not.
struct ReloadDone {
    trigger: Trigger,
    result: Result<Config, ReloadError>,
}

enum ReloadError {
    /// The file is invalid (or unreadable): nothing was sent to the director. `text` is
    /// the full rendering (for `status`), `lines` one line per diagnostic (for the log).
    Config { text: String, lines: Vec<String> },
    /// The director refused or failed to apply it.
    Director(String),
}

struct Daemon {
    options: Options,
    log: LogHandle,
    config: Config,
    phase: Phase,
    started_at: String,
    config_loaded_at: String,
    last_reload: Option<ReloadOutcome>,
    config_error: Option<String>,
    watch: ConfigWatch,
    director_tx: mpsc::Sender<Command>,
    status_rx: watch::Receiver<Status>,
    director: DirectorTask,
    control_rx: mpsc::Receiver<Incoming>,
    signals: Signals,
    reload: Option<JoinHandle<ReloadDone>>,
    reload_waiters: Vec<oneshot::Sender<Response>>,
    /// A reload asked for while one was running: run one more afterwards.
    reload_again: Option<Trigger>,
}

impl Daemon {
    async fn main(&mut self, notifier: &mut Option<ReadyNotifier>) -> u8 {
        // Ready = the director adopted and programmed the table once.
        let mut ready_rx = self.status_rx.clone();
        // A HUP while starting (e.g. the file was edited right after `start`) is kept and
        // served once running, so the edit is not lost.
        let mut reload_while_starting = false;
        // (`wait_for` hands back a read guard of the channel: drop it at once, or the
        // director could never publish again.)
        let first = tokio::select! {
            first = tokio::time::timeout(READY_DEADLINE, ready_rx.wait_for(|s| s.ready)) => {
                first.map(|r| r.map(drop))
            }
            // Stopped while starting: still a clean stop (cleanstop, pid file).
            name = stop_while_starting(&mut self.signals, &mut reload_while_starting) => {
                if let Some(n) = notifier.as_mut() {
                    n.failed(&format!("stopped by SIG{name} while starting"));
                }
                return self.stop(name).await;
            }
        };
        match first {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                let reason = match (&mut self.director).await {
                    Ok(Err(e)) => format!("the director failed at start: {e}"),
                    Ok(Ok(())) => "the director stopped at start".to_owned(),
                    Err(e) => format!("the director crashed at start: {e}"),
                };
                return fail(notifier, &reason);
            }
            Err(_) => {
                return fail(
                    notifier,
                    &format!(
                        "the director did not program the table within {} s",
                        READY_DEADLINE.as_secs()
                    ),
                );
            }
        }
        self.phase = Phase::Running;
        if let Some(n) = notifier.as_mut() {
            n.ready();
        }
        notify::ready("running");
        tracing::info!(
            "ldirectord for {} is running with pid: {}",
            self.options.config_file.display(),
            std::process::id()
        );
        if reload_while_starting {
            tracing::info!(
                "Reloading Linux Director Daemon config on signal received while starting"
            );
            self.request_reload(Trigger::Signal, None);
        }

        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.signals.recv() => match event {
                    SignalEvent::Reload => {
                        tracing::info!("Reloading Linux Director Daemon config on signal");
                        self.request_reload(Trigger::Signal, None);
                    }
                    SignalEvent::Stop(name) => return self.stop(name).await,
                },
                Some(incoming) = self.control_rx.recv() => self.answer(incoming),
                done = async {
                    match self.reload.as_mut() {
                        Some(task) => task.await,
                        None => std::future::pending().await,
                    }
                }, if self.reload.is_some() => {
                    self.reload = None;
                    match done {
                        Ok(done) => self.finish_reload(done),
                        Err(e) => self.finish_reload(ReloadDone {
                            trigger: Trigger::Control,
                            result: Err(ReloadError::Director(format!("reload task failed: {e}"))),
                        }),
                    }
                    if let Some(trigger) = self.reload_again.take() {
                        self.request_reload(trigger, None);
                    }
                },
                _ = tick.tick() => self.check_config_file(),
                ended = &mut self.director => {
                    let reason = match ended {
                        Ok(Ok(())) => "the director stopped on its own".to_owned(),
                        Ok(Err(e)) => format!("the director failed: {e}"),
                        Err(e) => format!("the director crashed: {e}"),
                    };
                    tracing::error!("{reason}; exiting");
                    return 1;
                }
            }
        }
    }

    fn answer(&mut self, incoming: Incoming) {
        match incoming.request {
            Request::Status => {
                let _ = incoming.reply.send(Response::status(self.status()));
            }
            Request::Reload => {
                tracing::info!("Reloading Linux Director Daemon config on request");
                self.request_reload(Trigger::Control, Some(incoming.reply));
            }
        }
    }

    fn status(&self) -> DaemonStatus {
        DaemonStatus {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config_file: self.options.config_file.clone(),
            cfgname: self.options.cfgname.clone(),
            phase: self.phase,
            started_at: self.started_at.clone(),
            config_loaded_at: self.config_loaded_at.clone(),
            last_reload: self.last_reload.clone(),
            config_error: self.config_error.clone(),
            director: serde_json::to_value(&*self.status_rx.borrow())
                .unwrap_or(serde_json::Value::Null),
        }
    }

    /// `check_cfgfile`: a changed file is logged, reloaded with `autoreload=yes`, and
    /// handed to `callback` either way.
    fn check_config_file(&mut self) {
        if !self.watch.changed() {
            return;
        }
        let path = self.options.config_file.display().to_string();
        tracing::info!("Configuration file '{path}' has changed on disk");
        if self.config.global.autoreload {
            tracing::info!(" - reread new configuration");
            self.request_reload(Trigger::Autoreload, None);
        } else {
            tracing::info!(" - ignore new configuration");
        }
        if let Some(callback) = self.config.global.callback.clone() {
            let config_file = self.options.config_file.clone();
            tokio::spawn(async move {
                autoreload::run_callback(Path::new(&callback), &config_file).await;
            });
        }
    }

    fn request_reload(&mut self, trigger: Trigger, reply: Option<oneshot::Sender<Response>>) {
        if let Some(reply) = reply {
            self.reload_waiters.push(reply);
        }
        if self.reload.is_some() {
            // The running reload may have read the file before the latest edit.
            self.reload_again = Some(trigger);
            return;
        }
        self.phase = Phase::Reloading;
        notify::reloading();
        let path = self.options.config_file.clone();
        let director = self.director_tx.clone();
        let status = self.status_rx.clone();
        self.reload = Some(tokio::spawn(reload(trigger, path, director, status)));
    }

    fn finish_reload(&mut self, done: ReloadDone) {
        self.phase = Phase::Running;
        self.watch.rebase();
        let file = self.options.config_file.display().to_string();
        let outcome = match done.result {
            Ok(config) => {
                if config.global.supervised != self.config.global.supervised {
                    tracing::warn!("supervised changed: it takes effect at the next start");
                }
                if config.global.metrics != self.config.global.metrics {
                    tracing::warn!("metrics changed: it takes effect at the next start");
                }
                self.log.set_sink(Sink::choose(
                    self.options.mode,
                    &config.global.logfile,
                    &self.options.cfgname,
                    self.options.mode == Mode::Daemon && logging::under_journald(),
                ));
                self.config = config;
                self.config_loaded_at = now_rfc3339();
                self.config_error = None;
                tracing::info!("Reloaded configuration file {file}");
                ReloadOutcome {
                    at: now_rfc3339(),
                    trigger: done.trigger.as_str().to_owned(),
                    ok: true,
                    config_invalid: false,
                    error: None,
                }
            }
            Err(ReloadError::Config { text, lines }) => {
                tracing::error!(
                    "configuration file {file} is invalid; keeping the running configuration"
                );
                for line in &lines {
                    tracing::info!("{line}");
                }
                self.config_error = Some(text.clone());
                let first = lines.first().cloned().unwrap_or_else(|| text.clone());
                let _ = self.director_tx.try_send(Command::ReloadFailed(first));
                ReloadOutcome {
                    at: now_rfc3339(),
                    trigger: done.trigger.as_str().to_owned(),
                    ok: false,
                    config_invalid: true,
                    error: Some(text),
                }
            }
            Err(ReloadError::Director(text)) => {
                tracing::error!("reload of {file} failed: {text}");
                ReloadOutcome {
                    at: now_rfc3339(),
                    trigger: done.trigger.as_str().to_owned(),
                    ok: false,
                    config_invalid: false,
                    error: Some(text),
                }
            }
        };
        notify::reloaded(if outcome.ok {
            "running"
        } else {
            "running; the last reload failed"
        });
        for waiter in self.reload_waiters.drain(..) {
            let _ = waiter.send(Response::reload(outcome.clone()));
        }
        self.last_reload = Some(outcome);
    }

    async fn stop(&mut self, signal: &'static str) -> u8 {
        self.phase = Phase::Stopping;
        notify::stopping();
        if let Some(reload) = self.reload.take() {
            reload.abort();
        }
        let _ = self.director_tx.send(Command::Stop).await;
        let signals = &mut self.signals;
        let outcome = tokio::select! {
            ended = tokio::time::timeout(STOP_DEADLINE, &mut self.director) => match ended {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(format!("the director failed while stopping: {e}")),
                Ok(Err(e)) => Err(format!("the director crashed while stopping: {e}")),
                Err(_) => Err(format!("the director did not stop within {} s", STOP_DEADLINE.as_secs())),
            },
            // "Exit Handler Repeatedly Called": a second stop signal skips the cleanup.
            SignalEvent::Stop(again) = stop_again(signals) => {
                Err(format!("second signal {again} while stopping: exiting without cleanup"))
            }
        };
        match outcome {
            Ok(()) => {
                tracing::info!("Linux Director Daemon terminated on signal: {signal}");
                0
            }
            Err(reason) => {
                tracing::error!("{reason}");
                tracing::info!("Linux Director Daemon terminated on signal: {signal}");
                1
            }
        }
    }
}

/// Waits for a stop signal while starting; a reload signal is only noted.
async fn stop_while_starting(signals: &mut Signals, reload_seen: &mut bool) -> &'static str {
    loop {
        match signals.recv().await {
            SignalEvent::Stop(name) => return name,
            SignalEvent::Reload => *reload_seen = true,
        }
    }
}

async fn stop_again(signals: &mut Signals) -> SignalEvent {
    loop {
        if let e @ SignalEvent::Stop(_) = signals.recv().await {
            return e;
        }
    }
}

/// Loads the file off the runtime's threads (name resolution blocks), then hands a valid
/// configuration to the director and waits for it to be applied.
async fn reload(
    trigger: Trigger,
    path: PathBuf,
    director: mpsc::Sender<Command>,
    mut status: watch::Receiver<Status>,
) -> ReloadDone {
    let load = tokio::task::spawn_blocking(move || config::load(&path));
    let loaded = match tokio::time::timeout(LOAD_DEADLINE, load).await {
        Ok(Ok(Ok(loaded))) => loaded,
        Ok(Ok(Err(e))) => {
            return ReloadDone {
                trigger,
                result: Err(config_error(&e)),
            };
        }
        Ok(Err(e)) => {
            return ReloadDone {
                trigger,
                result: Err(ReloadError::Config {
                    text: format!("loading failed: {e}"),
                    lines: Vec::new(),
                }),
            };
        }
        Err(_) => {
            return ReloadDone {
                trigger,
                result: Err(ReloadError::Config {
                    text: format!(
                        "loading did not finish within {} s (name resolution?)",
                        LOAD_DEADLINE.as_secs()
                    ),
                    lines: Vec::new(),
                }),
            };
        }
    };
    for w in &loaded.warnings {
        log_config_warning(w);
    }
    let config = loaded.config;
    let before = status.borrow_and_update().generation;
    if director
        .send(Command::Reload(Box::new(config.clone())))
        .await
        .is_err()
    {
        return ReloadDone {
            trigger,
            result: Err(ReloadError::Director("the director is gone".into())),
        };
    }
    // Applied = the director counted one more configuration.
    let applied = tokio::time::timeout(APPLY_DEADLINE, status.wait_for(|s| s.generation > before))
        .await
        .map(|r| r.map(drop));
    let result = match applied {
        Ok(Ok(_)) => Ok(config),
        Ok(Err(_)) => Err(ReloadError::Director("the director is gone".into())),
        Err(_) => Err(ReloadError::Director(format!(
            "the director did not apply the new configuration within {} s",
            APPLY_DEADLINE.as_secs()
        ))),
    };
    ReloadDone { trigger, result }
}

/// A failed load: the full located rendering, and one line per diagnostic for the log.
fn config_error(e: &ConfigError) -> ReloadError {
    let text = e.to_string().trim_end().to_owned();
    let lines = match e.report() {
        Some(report) => report
            .errors
            .iter()
            .map(|d| d.one_line())
            .chain(
                (report.errors_not_shown > 0)
                    .then(|| format!("… and {} more error(s)", report.errors_not_shown)),
            )
            .collect(),
        None => vec![text.clone()],
    };
    ReloadError::Config { text, lines }
}

/// A configuration warning at WARN level; the log line already says "warning: ".
fn log_config_warning(w: &config::Diagnostic) {
    tracing::warn!("{}", w.without_severity().to_string().trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_pid_file_names() {
        // Not touching the environment: the default directories.
        if std::env::var_os(RUNDIR_ENV).is_some() {
            return;
        }
        let p = Paths::for_cfgname("ldirectord.cf");
        assert_eq!(
            p.pid_file,
            PathBuf::from("/var/run/ldirectord.ldirectord.cf.pid")
        );
        assert_eq!(
            p.socket,
            PathBuf::from("/run/ldirectord.ldirectord.cf.sock")
        );
    }
}
