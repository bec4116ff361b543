//! `start|stop|restart|try-restart|reload|force-reload|status`: the Perl `ld_init` table
//! (reference §1), with its exit codes and messages, and these deliberate differences:
//!
//! * the pid file is trusted only while a process holds its lock (quirk §6-14);
//! * `stop`, `status` and `reload` never read the configuration, so a broken or missing
//!   file cannot make them fail or orphan the daemon (quirk §6-1);
//! * `start` returns once the daemon is up, and fails with its reason when it is not;
//! * `stop` (and so `restart`) waits for the daemon to exit, for at most [`STOP_WAIT`];
//! * `reload` goes through the control socket and reports the daemon's verdict: exit 2
//!   with the located error when the new file is invalid (the old configuration stays);
//! * `status` also prints every virtual and real from the control socket (`--json`: as
//!   JSON).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::exit;
use super::status_view;
use crate::config::{self, ConfigError};
use crate::daemon::control::{self, Request};
use crate::daemon::logging::Mode;
use crate::daemon::run::{LOAD_DEADLINE, READY_DEADLINE, STOP_DEADLINE};
use crate::daemon::{self, Options, Paths, PidFile, Probe, Readiness, Role};

/// How long `stop` waits for the daemon to exit: its own stop deadline plus slack.
pub const STOP_WAIT: Duration = Duration::from_secs(STOP_DEADLINE.as_secs() + 10);
/// How long `status` waits for the control socket.
pub const STATUS_WAIT: Duration = Duration::from_secs(5);
/// LSB `status`: the state could not be determined.
pub const STATUS_UNKNOWN: u8 = 4;

/// A lifecycle command as the legacy parser gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub debug: bool,
    pub command: String,
    /// As given on the command line.
    pub config: String,
    /// Names the pid file.
    pub cfgname: String,
    /// `status --json`.
    pub json: bool,
}

pub fn run(l: &Lifecycle) -> ExitCode {
    let located = config::find_config_file(&l.config);
    let shown = located
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| l.config.clone());
    let paths = Paths::for_cfgname(&l.cfgname);
    let pid_file = PidFile::new(&paths.pid_file);
    let code = match l.command.as_str() {
        "start" => start(l, located.as_deref(), &paths),
        "stop" => stop(&pid_file, &shown),
        "restart" => restart(l, located.as_deref(), &paths, &shown, false),
        "try-restart" => restart(l, located.as_deref(), &paths, &shown, true),
        "reload" | "force-reload" => reload(&pid_file, &paths, &shown),
        "status" => status(&pid_file, &paths, &shown, l.json),
        other => {
            eprintln!("ldirectord: unknown command {other}");
            exit::USAGE
        }
    };
    ExitCode::from(code)
}

fn not_found(config: &str) -> u8 {
    eprintln!("Config file {config} not found");
    exit::FAILURE
}

fn start(l: &Lifecycle, located: Option<&Path>, paths: &Paths) -> u8 {
    let Some(path) = located else {
        return not_found(&l.config);
    };
    // Perl reads the configuration before anything else; an invalid one is exit 2, and
    // (unlike Perl) the pid file of a running daemon is not touched.
    let loaded = match config::load(path) {
        Ok(loaded) => loaded,
        Err(e) => {
            print_config_error(path, &e);
            return exit::CONFIG_ERROR;
        }
    };
    for w in &loaded.warnings {
        eprintln!("{}", w.to_string().trim_end());
    }
    match PidFile::new(&paths.pid_file).probe() {
        Ok(Probe::Running { pid }) => {
            eprintln!(
                "ldirectord for {} is already running with pid: {pid}",
                path.display()
            );
            return exit::OK;
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!(
                "ldirectord: cannot read pid file {}: {e}",
                paths.pid_file.display()
            );
            return exit::FAILURE;
        }
    }
    let mode = if l.debug {
        Mode::Debug
    } else if loaded.config.global.supervised {
        Mode::Supervised
    } else {
        Mode::Daemon
    };
    let options = Options {
        config_file: absolute(path),
        cfgname: l.cfgname.clone(),
        mode,
        paths: paths.clone(),
    };
    // Under a service manager that waits for READY=1 (systemd's Type=notify), the
    // process it started is the daemon: no fork, logging as configured.
    if mode != Mode::Daemon || daemon::notify::enabled() {
        return daemon::run(options, loaded, None);
    }
    match daemon::detach() {
        Err(e) => {
            eprintln!("ldirectord: {e}");
            exit::FAILURE
        }
        Ok(Role::Daemon(notifier)) => daemon::run(options, loaded, Some(notifier)),
        Ok(Role::Foreground(waiter)) => {
            match waiter.wait(READY_DEADLINE + Duration::from_secs(10)) {
                Readiness::Ready { .. } => exit::OK,
                Readiness::Failed(reason) => {
                    eprintln!("ldirectord: {reason}");
                    exit::FAILURE
                }
                Readiness::Vanished => {
                    eprintln!("ldirectord: the daemon exited during start-up; see the log");
                    exit::FAILURE
                }
                Readiness::Timeout => {
                    eprintln!(
                        "ldirectord: the daemon did not report ready within {} s; see the log",
                        READY_DEADLINE.as_secs() + 10
                    );
                    exit::FAILURE
                }
            }
        }
    }
}

/// The daemon's cwd is `/`: it must know the configuration by its full path.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn print_config_error(path: &Path, e: &ConfigError) {
    match e {
        ConfigError::Read { .. } => eprintln!("ldirectord: {e}"),
        ConfigError::Invalid(report) => {
            eprintln!("{}", report.to_string().trim_end());
            eprintln!(
                "ldirectord: configuration file {} is invalid",
                path.display()
            );
        }
    }
}

/// Sends TERM and waits for the lock to go. `Ok(true)` = stopped, `Ok(false)` = nothing
/// was running.
fn stop_daemon(pid_file: &PidFile) -> Result<bool, String> {
    let pid = match pid_file.probe() {
        Ok(Probe::Running { pid }) => pid,
        Ok(_) => return Ok(false),
        Err(e) => {
            return Err(format!(
                "cannot read pid file {}: {e}",
                pid_file.path().display()
            ));
        }
    };
    if pid <= 1 {
        return Err(format!(
            "pid file lock held by pid {pid}; not signalling it"
        ));
    }
    match kill(Pid::from_raw(pid), Signal::SIGTERM) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => return Err(format!("cannot signal pid {pid}: {e}")),
    }
    // The pid file goes last, just before the process exits; wait for both.
    if wait_until(STOP_WAIT, || {
        !matches!(pid_file.probe(), Ok(Probe::Running { .. })) && gone(pid)
    }) {
        Ok(true)
    } else {
        Err(format!(
            "the daemon (pid {pid}) did not stop within {} s",
            STOP_WAIT.as_secs()
        ))
    }
}

/// Whether `pid` has exited (a zombie counts: it no longer runs any code).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses, which may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Polls `done` every 50 ms for up to `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return done();
    };
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if done() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

fn stop(pid_file: &PidFile, _shown: &str) -> u8 {
    match stop_daemon(pid_file) {
        Ok(_) => exit::OK,
        Err(e) => {
            eprintln!("ldirectord: {e}");
            exit::FAILURE
        }
    }
}

fn restart(
    l: &Lifecycle,
    located: Option<&Path>,
    paths: &Paths,
    shown: &str,
    only_if_running: bool,
) -> u8 {
    let pid_file = PidFile::new(&paths.pid_file);
    // Validate before stopping: a restart into a broken file would leave nothing running.
    let Some(path) = located else {
        return not_found(&l.config);
    };
    if let Err(e) = config::load(path) {
        print_config_error(path, &e);
        eprintln!("ldirectord: not restarting; the running daemon (if any) is left alone");
        return exit::CONFIG_ERROR;
    }
    match stop_daemon(&pid_file) {
        Ok(false) if only_if_running => exit::OK,
        Ok(_) => start(l, located, paths),
        Err(e) => {
            eprintln!("ldirectord: {e}; not starting for {shown}");
            exit::FAILURE
        }
    }
}

fn reload(pid_file: &PidFile, paths: &Paths, shown: &str) -> u8 {
    let pid = match pid_file.probe() {
        Ok(Probe::Running { pid }) => pid,
        Ok(_) => {
            eprintln!("ldirectord is stopped for {shown}");
            return exit::FAILURE;
        }
        Err(e) => {
            eprintln!(
                "ldirectord: cannot read pid file {}: {e}",
                pid_file.path().display()
            );
            return exit::FAILURE;
        }
    };
    match control::request(
        &paths.socket,
        Request::Reload,
        LOAD_DEADLINE + Duration::from_secs(10),
    ) {
        Ok(response) if response.ok => exit::OK,
        Ok(response) => {
            let outcome = response.reload;
            let text = response.error.unwrap_or_else(|| "reload failed".to_owned());
            eprintln!("{text}");
            if outcome.is_some_and(|o| o.config_invalid) {
                eprintln!(
                    "ldirectord: {shown} is invalid; the daemon keeps its running configuration"
                );
                exit::CONFIG_ERROR
            } else {
                exit::FAILURE
            }
        }
        // No socket (an older daemon, a removed file): the Perl way still works.
        Err(e) => {
            eprintln!("ldirectord: {e}; sending SIGHUP instead");
            match kill(Pid::from_raw(pid), Signal::SIGHUP) {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("ldirectord: cannot signal pid {pid}: {e}");
                    exit::FAILURE
                }
            }
        }
    }
}

fn status(pid_file: &PidFile, paths: &Paths, shown: &str, json: bool) -> u8 {
    let probe = match pid_file.probe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "ldirectord: cannot read pid file {}: {e}",
                pid_file.path().display()
            );
            return STATUS_UNKNOWN;
        }
    };
    match probe {
        Probe::Running { pid } => {
            eprintln!("ldirectord for {shown} is running with pid: {pid}");
            let details = control::request(&paths.socket, Request::Status, STATUS_WAIT);
            match details {
                Ok(response) => match response.status {
                    Some(status) if json => {
                        println!("{}", status_view::json_running(pid, &status));
                    }
                    Some(status) => print!("{}", status_view::render(&status)),
                    None => eprintln!(
                        "ldirectord: the daemon did not give its status: {}",
                        response.error.unwrap_or_default()
                    ),
                },
                Err(e) => {
                    eprintln!("ldirectord: cannot read the daemon's status: {e}");
                    if json {
                        println!("{}", status_view::json_running_unknown(pid));
                    }
                }
            }
            exit::OK
        }
        Probe::Stale { pid } => {
            eprintln!(
                "ldirectord stale pid file {} for {shown}",
                pid_file.path().display()
            );
            if json {
                println!(
                    "{}",
                    status_view::json_stopped(shown, Some(pid_file.path()), pid)
                );
                eprintln!("ldirectord is stopped for {shown}");
            } else {
                println!("ldirectord is stopped for {shown}");
            }
            exit::FAILURE
        }
        Probe::NotRunning => {
            if json {
                println!("{}", status_view::json_stopped(shown, None, None));
                eprintln!("ldirectord is stopped for {shown}");
            } else {
                println!("ldirectord is stopped for {shown}");
            }
            exit::NOT_RUNNING
        }
    }
}
