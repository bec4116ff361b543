//! `ocf:heartbeat:ldirectord`: the OCF resource agent, parameter-compatible with the one in
//! resource-agents (`configfile`, `ldirectord`), plus `check_kernel`.
//!
//! The installed agent (`/usr/lib/ocf/resource.d/heartbeat/ldirectord`) is a three-line
//! POSIX script that runs `ldirectord ocf ACTION`; everything else is here:
//!
//! | action | does | exit |
//! |---|---|---|
//! | `start` | validate, `ldirectord CONFIG start`, then wait until `monitor` passes | 0; 5 no file; 6 invalid; 1 |
//! | `stop` | `ldirectord CONFIG stop` (waits for the exit); KILL if that fails | 0; 1 only if it still runs |
//! | `monitor` | pid file lock → control socket answers → IPVS table as the daemon says | 0; 7 stopped; 1 |
//! | `reload` | validate, `ldirectord CONFIG reload` (the daemon keeps its configuration on error) | 0; 6; 7; 1 |
//! | `validate-all` | read the file as `ldirectord -t` does | 0; 5; 6 |
//! | `meta-data`, `usage` | print them | 0 |
//! | anything else | | 3 |
//!
//! `monitor` never reads the configuration file (an edited, broken file must not make a
//! running director look failed), and a table that differs is looked at again until the
//! daemon's periodic repair had its chance, within the operation's timeout.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::table_check;
use crate::config::{self, ConfigError};
use crate::daemon::control::{self, Request};
use crate::daemon::run::BACKEND_ENV;
use crate::daemon::{Paths, PidFile, Probe};
use crate::ipvs::{Backend, IpvsClient, IpvsError, Table};

/// OCF exit codes.
pub const SUCCESS: u8 = 0;
pub const ERR_GENERIC: u8 = 1;
pub const ERR_ARGS: u8 = 2;
pub const ERR_UNIMPLEMENTED: u8 = 3;
pub const ERR_PERM: u8 = 4;
pub const ERR_INSTALLED: u8 = 5;
pub const ERR_CONFIGURED: u8 = 6;
pub const NOT_RUNNING: u8 = 7;

/// The configuration file when `configfile` is not set (as in the original agent).
pub const DEFAULT_CONFIG: &str = "/etc/ha.d/ldirectord.cf";
/// The binary when `ldirectord` is not set.
pub const DEFAULT_BINARY: &str = "/usr/sbin/ldirectord";

const METADATA: &str = include_str!("metadata.xml");

/// What the agent was given, from the `OCF_*` environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// `OCF_RESKEY_configfile`, as given (the daemon does the `/etc/ha.d` lookup).
    pub configfile: String,
    /// Names the pid file and control socket: the base name of `configfile`.
    pub cfgname: String,
    /// `OCF_RESKEY_ldirectord`: the binary that runs the daemon.
    pub binary: PathBuf,
    /// `OCF_RESKEY_check_kernel`.
    pub check_kernel: bool,
    /// `OCF_RESKEY_CRM_meta_timeout`, if the cluster gave one.
    pub timeout: Option<Duration>,
    /// `OCF_RESOURCE_INSTANCE`, for log lines.
    pub instance: String,
}

impl Params {
    /// Reads the parameters through `var` (the process environment in production).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Params {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        let configfile = set("OCF_RESKEY_configfile").unwrap_or_else(|| DEFAULT_CONFIG.into());
        let cfgname = configfile
            .rsplit('/')
            .next()
            .unwrap_or(&configfile)
            .to_owned();
        Params {
            cfgname,
            configfile,
            binary: set("OCF_RESKEY_ldirectord")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_BINARY)),
            check_kernel: set("OCF_RESKEY_check_kernel").is_none_or(|v| is_true(&v)),
            timeout: set("OCF_RESKEY_CRM_meta_timeout")
                .and_then(|ms| ms.parse::<u64>().ok())
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
            instance: set("OCF_RESOURCE_INSTANCE").unwrap_or_else(|| "ldirectord".into()),
        }
    }

    /// The time an action may use: the cluster's timeout less a margin to report in, else
    /// the meta-data's default for `action`.
    fn budget(&self, action: &str) -> Duration {
        let default = match action {
            "monitor" | "status" => 30,
            "validate-all" => 20,
            _ => 60,
        };
        let total = self.timeout.unwrap_or(Duration::from_secs(default));
        total
            .saturating_sub(Duration::from_secs(3))
            .max(Duration::from_secs(2))
    }
}

/// `ocf_is_true`.
fn is_true(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "yes" | "true" | "1" | "on" | "y"
    )
}

/// Runs one action; returns its OCF exit code.
pub fn run(action: Option<&str>, params: &Params) -> u8 {
    let log = Log {
        instance: &params.instance,
    };
    match action {
        Some("meta-data") => {
            print!(
                "{}",
                METADATA.replace("@VERSION@", env!("CARGO_PKG_VERSION"))
            );
            SUCCESS
        }
        Some("usage" | "help") => {
            println!("{}", usage());
            SUCCESS
        }
        Some("validate-all") => validate(params, &log).map_or_else(|code| code, |_| SUCCESS),
        Some("start") => start(params, &log),
        Some("stop") => stop(params, &log),
        Some("monitor" | "status") => monitor(params, &log, params.budget("monitor")),
        Some("reload") => reload(params, &log),
        Some(_) => ERR_UNIMPLEMENTED,
        None => {
            eprintln!("{}", usage());
            ERR_ARGS
        }
    }
}

pub fn usage() -> String {
    "usage: ldirectord ocf {start|stop|monitor|status|reload|validate-all|meta-data|usage}\n\n\
     The OCF resource agent ocf:heartbeat:ldirectord; expects the OCF environment\n\
     (OCF_RESKEY_configfile, OCF_RESKEY_ldirectord, OCF_RESKEY_check_kernel)."
        .to_owned()
}

/// `ocf_log`-style lines on stderr, which the cluster's executor logs.
struct Log<'a> {
    instance: &'a str,
}

impl Log<'_> {
    fn line(&self, level: &str, message: &str) {
        eprintln!(
            "ldirectord({})[{}]: {level}: {message}",
            self.instance,
            std::process::id()
        );
    }
    fn info(&self, message: &str) {
        self.line("INFO", message);
    }
    fn warn(&self, message: &str) {
        self.line("WARNING", message);
    }
    fn err(&self, message: &str) {
        self.line("ERROR", message);
    }
}

/// The configuration file, found and valid; or the exit code saying why not.
fn validate(params: &Params, log: &Log<'_>) -> Result<PathBuf, u8> {
    let Some(path) = config::find_config_file(&params.configfile) else {
        log.err(&format!(
            "configuration file {} not found (looked in /etc/ha.d/ too)",
            params.configfile
        ));
        return Err(ERR_INSTALLED);
    };
    match config::load(&path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                log.warn(w.to_string().lines().next().unwrap_or_default());
            }
            Ok(path)
        }
        Err(ConfigError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            log.err(&format!("cannot read {}: {source}", path.display()));
            Err(ERR_PERM)
        }
        Err(e @ ConfigError::Read { .. }) => {
            log.err(&e.to_string());
            Err(ERR_INSTALLED)
        }
        Err(ConfigError::Invalid(report)) => {
            for line in report.to_string().lines().filter(|l| !l.trim().is_empty()) {
                log.err(line);
            }
            log.err(&format!("{} is invalid", path.display()));
            Err(ERR_CONFIGURED)
        }
    }
}

/// `ldirectord CONFIG COMMAND`, with the agent's stdout and stderr; its exit code.
fn ldirectord(params: &Params, command: &str, log: &Log<'_>) -> Option<i32> {
    let mut cmd = Command::new(&params.binary);
    cmd.arg(&params.configfile)
        .arg(command)
        .stdin(Stdio::null())
        // The daemon must not think the cluster's service manager waits for its
        // readiness: the agent waits, through the monitor.
        .env_remove("NOTIFY_SOCKET");
    match cmd.status() {
        Ok(status) => status.code(),
        Err(e) => {
            log.err(&format!("cannot run {}: {e}", params.binary.display()));
            None
        }
    }
}

fn start(params: &Params, log: &Log<'_>) -> u8 {
    let deadline = tokio_deadline(params.budget("start"));
    if let Err(code) = validate(params, log) {
        return code;
    }
    let pid_file = PidFile::new(&Paths::for_cfgname(&params.cfgname).pid_file);
    if !matches!(pid_file.probe(), Ok(Probe::Running { .. })) {
        log.info(&format!("starting ldirectord for {}", params.configfile));
        match ldirectord(params, "start", log) {
            Some(0) => {}
            Some(2) => {
                log.err("ldirectord refused the configuration");
                return ERR_CONFIGURED;
            }
            Some(code) => {
                log.err(&format!("ldirectord start failed (exit {code})"));
                return ERR_GENERIC;
            }
            None => return ERR_GENERIC,
        }
    }
    // Started (or found running): it counts once the monitor passes.
    let code = monitor(params, log, remaining(deadline));
    if code == NOT_RUNNING {
        log.err("ldirectord exited right after it started; see its log");
        return ERR_GENERIC;
    }
    code
}

fn stop(params: &Params, log: &Log<'_>) -> u8 {
    let pid_file = PidFile::new(&Paths::for_cfgname(&params.cfgname).pid_file);
    let running = |f: &PidFile| match f.probe() {
        Ok(Probe::Running { pid }) => Some(pid),
        _ => None,
    };
    if running(&pid_file).is_none() {
        return SUCCESS;
    }
    log.info(&format!("stopping ldirectord for {}", params.configfile));
    if ldirectord(params, "stop", log) == Some(0) && running(&pid_file).is_none() {
        return SUCCESS;
    }
    // Stop failed: the cluster must be able to move the service, so the process goes.
    let Some(pid) = running(&pid_file) else {
        return SUCCESS;
    };
    if pid <= 1 {
        log.err(&format!("pid file lock held by pid {pid}; not killing it"));
        return ERR_GENERIC;
    }
    log.warn(&format!(
        "ldirectord (pid {pid}) did not stop; sending KILL"
    ));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let gone = Runtime::new()
        .is_ok_and(|rt| rt.poll_until(Duration::from_secs(10), || running(&pid_file).is_none()));
    if gone {
        SUCCESS
    } else {
        log.err(&format!("ldirectord (pid {pid}) survived KILL"));
        ERR_GENERIC
    }
}

fn reload(params: &Params, log: &Log<'_>) -> u8 {
    let pid_file = PidFile::new(&Paths::for_cfgname(&params.cfgname).pid_file);
    if !matches!(pid_file.probe(), Ok(Probe::Running { .. })) {
        log.err("reload: ldirectord is not running");
        return NOT_RUNNING;
    }
    if let Err(code) = validate(params, log) {
        log.err("reload refused; the daemon keeps its running configuration");
        return code;
    }
    match ldirectord(params, "reload", log) {
        Some(0) => SUCCESS,
        Some(2) => ERR_CONFIGURED,
        _ => ERR_GENERIC,
    }
}

/// How long the control socket may take to answer.
const STATUS_DEADLINE: Duration = Duration::from_secs(5);
/// Pause between two looks at a table that differs.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The monitor: process, control socket, kernel table; within `budget`.
fn monitor(params: &Params, log: &Log<'_>, budget: Duration) -> u8 {
    let deadline = tokio_deadline(budget);
    let rt = match Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            log.err(&format!("cannot start a runtime: {e}"));
            return ERR_GENERIC;
        }
    };
    let paths = Paths::for_cfgname(&params.cfgname);
    let pid = match PidFile::new(&paths.pid_file).probe() {
        Ok(Probe::Running { pid }) => pid,
        Ok(Probe::NotRunning) => return NOT_RUNNING,
        Ok(Probe::Stale { .. }) => {
            log.info(&format!(
                "stale pid file {}: ldirectord is not running",
                paths.pid_file.display()
            ));
            return NOT_RUNNING;
        }
        Err(e) => {
            log.err(&format!(
                "cannot read pid file {}: {e}",
                paths.pid_file.display()
            ));
            return ERR_GENERIC;
        }
    };
    let fake = std::env::var(BACKEND_ENV).as_deref() == Ok("fake");
    let problems = loop {
        let director = match daemon_status(&paths.socket, remaining(deadline)) {
            Ok(director) => director,
            Err(e) => {
                // A daemon that is still starting has its lock but maybe not yet its socket.
                if remaining(deadline) > RETRY_PAUSE {
                    rt.sleep(RETRY_PAUSE);
                    continue;
                }
                log.err(&format!(
                    "ldirectord (pid {pid}) runs but does not answer on its control socket: {e}"
                ));
                return ERR_GENERIC;
            }
        };
        if !params.check_kernel || fake {
            return SUCCESS;
        }
        let problems = match rt.read_table() {
            Ok(table) => table_check::compare(&director, &table),
            Err(IpvsError::PermissionDenied) => {
                log.err("cannot read the IPVS table: permission denied (needs CAP_NET_ADMIN)");
                return ERR_PERM;
            }
            Err(e) => vec![format!("cannot read the IPVS table: {e}")],
        };
        if problems.is_empty() {
            return SUCCESS;
        }
        if remaining(deadline) <= RETRY_PAUSE {
            break problems;
        }
        rt.sleep(RETRY_PAUSE);
    };
    for p in &problems {
        log.err(p);
    }
    log.err("the IPVS table is not what ldirectord says it programmed");
    ERR_GENERIC
}

/// The director's part of the daemon's status.
fn daemon_status(socket: &Path, limit: Duration) -> Result<Value, String> {
    let limit = limit.clamp(Duration::from_millis(200), STATUS_DEADLINE);
    let response = control::request(socket, Request::Status, limit).map_err(|e| e.to_string())?;
    match response.status {
        Some(status) => Ok(status.director),
        None => Err(response
            .error
            .unwrap_or_else(|| "no status in the answer".into())),
    }
}

/// The agent's one runtime (a short-lived CLI process, one thread): pauses on tokio's
/// clock, and the netlink read of the table.
struct Runtime(tokio::runtime::Runtime);

impl Runtime {
    fn new() -> std::io::Result<Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(Runtime)
    }

    fn sleep(&self, d: Duration) {
        // `sleep` finds its timer when it is created: create it inside the runtime.
        self.0.block_on(async { tokio::time::sleep(d).await });
    }

    /// A fresh read of the whole IPVS table (the netlink client bounds every request).
    fn read_table(&self) -> Result<Table, IpvsError> {
        self.0.block_on(async {
            let mut client = IpvsClient::connect().await?;
            client.table().await
        })
    }

    /// Polls `done` every 100 ms for up to `limit`.
    fn poll_until(&self, limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = tokio_deadline(limit);
        loop {
            if done() {
                return true;
            }
            if remaining(deadline).is_zero() {
                return false;
            }
            self.sleep(Duration::from_millis(100));
        }
    }
}

/// A deadline on tokio's clock (the only clock this crate reads).
fn tokio_deadline(budget: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + budget
}

fn remaining(deadline: tokio::time::Instant) -> Duration {
    deadline.saturating_duration_since(tokio::time::Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_runtime_pauses_and_polls() {
        let rt = Runtime::new().unwrap();
        rt.sleep(Duration::from_millis(1));
        let mut calls = 0;
        assert!(rt.poll_until(Duration::from_secs(5), || {
            calls += 1;
            calls == 2
        }));
        assert!(!rt.poll_until(Duration::from_millis(150), || false));
    }
    use std::collections::HashMap;

    fn params(vars: &[(&str, &str)]) -> Params {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Params::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_original_agents() {
        let p = params(&[]);
        assert_eq!(p.configfile, "/etc/ha.d/ldirectord.cf");
        assert_eq!(p.cfgname, "ldirectord.cf");
        assert_eq!(p.binary, PathBuf::from("/usr/sbin/ldirectord"));
        assert!(p.check_kernel);
        assert_eq!(p.timeout, None);
        assert_eq!(p.budget("start"), Duration::from_secs(57));
    }

    #[test]
    fn parameters_and_the_clusters_timeout() {
        let p = params(&[
            ("OCF_RESKEY_configfile", "web.cf"),
            ("OCF_RESKEY_ldirectord", "/opt/ld/ldirectord"),
            ("OCF_RESKEY_check_kernel", "false"),
            ("OCF_RESKEY_CRM_meta_timeout", "20000"),
            ("OCF_RESOURCE_INSTANCE", "lvs"),
        ]);
        assert_eq!(
            (p.configfile.as_str(), p.cfgname.as_str()),
            ("web.cf", "web.cf")
        );
        assert_eq!(p.binary, PathBuf::from("/opt/ld/ldirectord"));
        assert!(!p.check_kernel);
        assert_eq!(p.budget("monitor"), Duration::from_secs(17));
        assert_eq!(p.instance, "lvs");
        // An empty value is unset, as in ocf-shellfuncs.
        assert!(params(&[("OCF_RESKEY_check_kernel", "")]).check_kernel);
        assert!(params(&[("OCF_RESKEY_check_kernel", "yes")]).check_kernel);
    }

    #[test]
    fn unknown_and_missing_actions() {
        let p = params(&[]);
        assert_eq!(run(Some("promote"), &p), ERR_UNIMPLEMENTED);
        assert_eq!(run(Some("notify"), &p), ERR_UNIMPLEMENTED);
        assert_eq!(run(None, &p), ERR_ARGS);
        assert_eq!(run(Some("meta-data"), &p), SUCCESS);
    }

    #[test]
    fn metadata_names_every_action_it_implements() {
        for action in [
            "start",
            "stop",
            "monitor",
            "reload",
            "meta-data",
            "validate-all",
        ] {
            assert!(
                METADATA.contains(&format!("<action name=\"{action}\"")),
                "{action}"
            );
        }
        for param in ["configfile", "ldirectord", "check_kernel"] {
            assert!(METADATA.contains(&format!("<parameter name=\"{param}\"")));
        }
    }
}
