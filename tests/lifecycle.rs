//! The Perl lifecycle commands against real daemon processes (double fork, pid file lock,
//! control socket), with an in-memory kernel (`LDIRECTORD_BACKEND=fake`) and a private
//! run directory (`LDIRECTORD_RUNDIR`), so nothing here needs root's `/run` or IPVS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt as _;

struct Site {
    dir: tempfile::TempDir,
}

const GOOD: &str = "\
checktimeout=3
checkinterval=5
autoreload=no
virtual=127.0.0.1:18080
\treal=127.0.0.2:18080 gate
\treal=127.0.0.3:18080 gate
\tservice=http
\tscheduler=rr
";

impl Site {
    fn new() -> Self {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        site.write_config(GOOD);
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("web.cf")
    }

    fn write_config(&self, body: &str) {
        let log = self.path("ldirectord.log");
        std::fs::write(
            self.config(),
            format!("logfile=\"{}\"\n{body}", log.display()),
        )
        .unwrap();
    }

    fn pid_file(&self) -> PathBuf {
        self.path("ldirectord.web.cf.pid")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("ldirectord").unwrap();
        cmd.env("LDIRECTORD_RUNDIR", self.dir.path())
            .env("LDIRECTORD_BACKEND", "fake")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `ldirectord <config> <command> [extra]`.
    fn run(&self, command: &str, extra: &[&str]) -> Output {
        let config = self.config();
        let mut args = vec![config.to_str().unwrap(), command];
        args.extend_from_slice(extra);
        self.command(&args).output().unwrap()
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.pid_file())
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("ldirectord.log")).unwrap_or_default()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Never leave a daemon behind, whatever the test did.
        let _ = self.run("stop", &[]);
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        std::thread::park_timeout(Duration::from_millis(25));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn start_status_stop_with_the_perl_codes_and_messages() {
    let site = Site::new();
    let shown = site.config().display().to_string();

    let o = site.run("status", &[]);
    assert_eq!(code(&o), 3, "{o:?}");
    assert_eq!(stdout(&o), format!("ldirectord is stopped for {shown}\n"));

    let o = site.run("start", &[]);
    assert_eq!(code(&o), 0, "{o:?}");
    let pid = site.pid();
    assert!(alive(pid));

    let o = site.run("status", &[]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(
        stderr(&o).contains(&format!(
            "ldirectord for {shown} is running with pid: {pid}"
        )),
        "{o:?}"
    );
    assert!(stdout(&o).contains("127.0.0.2:18080"), "{o:?}");

    // A second start is a no-op, exit 0, same daemon.
    let o = site.run("start", &[]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(site.pid(), pid);

    // stop waits for the daemon to be gone.
    let o = site.run("stop", &[]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(!site.pid_file().exists());
    assert!(!alive(pid));
    assert!(!site.path("ldirectord.web.cf.sock").exists());
    assert_eq!(code(&site.run("status", &[])), 3);
    assert_eq!(code(&site.run("stop", &[])), 0, "stop when stopped");

    let log = site.log();
    assert!(
        log.contains("Linux Director Daemon terminated on signal: TERM"),
        "{log}"
    );
    let prefix =
        regex::Regex::new(r"(?m)^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\|web\.cf\|\d+\] ")
            .unwrap();
    assert!(log.lines().all(|l| prefix.is_match(l)), "{log}");
}

#[test]
fn kill_9_leaves_a_stale_pid_file_and_start_takes_it_over() {
    let site = Site::new();
    assert_eq!(code(&site.run("start", &[])), 0);
    let pid = site.pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the daemon to die", || !alive(pid));

    let o = site.run("status", &[]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(
        stderr(&o).contains(&format!(
            "ldirectord stale pid file {} for",
            site.pid_file().display()
        )),
        "{o:?}"
    );
    assert!(stdout(&o).starts_with("ldirectord is stopped for"), "{o:?}");

    assert_eq!(code(&site.run("start", &[])), 0);
    assert_ne!(site.pid(), pid);
    assert_eq!(code(&site.run("status", &[])), 0);
}

#[test]
fn a_live_pid_that_is_not_our_daemon_is_stale() {
    // Quirk §6-14: the Perl check would accept any live process with "ldirectord" in
    // its command line, such as this very test binary.
    let site = Site::new();
    std::fs::write(site.pid_file(), format!("{}\n", std::process::id())).unwrap();
    let o = site.run("status", &[]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(stderr(&o).contains("stale pid file"), "{o:?}");
    // reload must not signal that pid.
    assert_eq!(code(&site.run("reload", &[])), 1);
}

#[test]
fn an_invalid_config_at_start_is_exit_2_and_touches_nothing() {
    let site = Site::new();
    site.write_config("virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\tbogus=1\n");
    let o = site.run("start", &[]);
    assert_eq!(code(&o), 2, "{o:?}");
    assert!(stderr(&o).contains("web.cf:"), "located: {o:?}");
    assert!(!site.pid_file().exists());

    // With a daemon running, a broken file neither stops it nor removes its pid file
    // (quirk §6-1), and stop/status still work.
    site.write_config(GOOD);
    assert_eq!(code(&site.run("start", &[])), 0);
    let pid = site.pid();
    site.write_config("this is not a config\n");
    assert_eq!(code(&site.run("start", &[])), 2);
    assert_eq!(code(&site.run("restart", &[])), 2);
    assert_eq!(site.pid(), pid);
    assert_eq!(code(&site.run("status", &[])), 0);
    assert_eq!(code(&site.run("stop", &[])), 0);
    assert!(!alive(pid));
}

#[test]
fn a_broken_reload_keeps_the_old_config_and_status_says_why() {
    let site = Site::new();
    assert_eq!(code(&site.run("start", &[])), 0);
    let pid = site.pid();
    site.write_config(&GOOD.replace("scheduler=rr", "scheduler=rr\n\tbogus=1"));
    let o = site.run("reload", &[]);
    assert_eq!(code(&o), 2, "{o:?}");
    assert!(stderr(&o).contains("unknown directive"), "{o:?}");

    let o = site.run("status", &[]);
    assert_eq!(code(&o), 0, "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("CONFIGURATION ERROR"), "{out}");
    assert!(out.contains("web.cf:"), "{out}");
    assert!(
        out.contains("127.0.0.3:18080"),
        "old config still shown: {out}"
    );
    assert_eq!(site.pid(), pid);
    assert!(site.log().contains("keeping the running configuration"));

    // Fixed file, one real more: the error is gone and the new real is there.
    site.write_config(&GOOD.replace(
        "\tservice=http",
        "\treal=127.0.0.4:18080 gate\n\tservice=http",
    ));
    assert_eq!(code(&site.run("force-reload", &[])), 0);
    let o = site.run("status", &["--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["state"], "running");
    assert_eq!(doc["pid"], pid);
    assert!(doc["daemon"]["config_error"].is_null(), "{doc}");
    assert_eq!(doc["daemon"]["last_reload"]["ok"], true);
    assert!(
        doc["daemon"]["director"]
            .to_string()
            .contains("127.0.0.4:18080")
    );
}

#[test]
fn hup_reloads_and_status_json_of_a_stopped_daemon() {
    let site = Site::new();
    let o = site.run("status", &["--json"]);
    assert_eq!(code(&o), 3);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["state"], "stopped");

    assert_eq!(code(&site.run("start", &[])), 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(site.pid()),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    wait_for("the reload", || {
        site.log().contains("Reloaded configuration file")
    });
    let o = site.run("status", &["--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["daemon"]["last_reload"]["trigger"], "signal");
    assert!(
        site.log()
            .contains("Reloading Linux Director Daemon config on signal")
    );
}

#[test]
fn autoreload_and_callback_on_a_changed_file() {
    let site = Site::new();
    let out = site.path("callback.out");
    let callback = site.path("callback.sh");
    std::fs::write(
        &callback,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&callback, std::fs::Permissions::from_mode(0o755)).unwrap();
    let with_callback = |body: &str| {
        format!(
            "callback=\"{}\"\n{}",
            callback.display(),
            body.replace("autoreload=no", "autoreload=yes")
        )
    };
    site.write_config(&with_callback(GOOD));
    assert_eq!(code(&site.run("start", &[])), 0);
    site.write_config(&with_callback(&GOOD.replace(
        "\tservice=http",
        "\treal=127.0.0.5:18080 gate\n\tservice=http",
    )));
    wait_for("the autoreload", || {
        site.log().contains("Reloaded configuration file")
    });
    let log = site.log();
    assert!(log.contains("has changed on disk"), "{log}");
    assert!(log.contains(" - reread new configuration"), "{log}");
    wait_for("the callback", || out.exists());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().trim(),
        site.config().display().to_string()
    );
    let o = site.run("status", &[]);
    assert!(stdout(&o).contains("127.0.0.5:18080"), "{o:?}");
}

#[test]
fn debug_mode_stays_in_the_foreground_and_logs_to_stderr() {
    let site = Site::new();
    let config = site.config();
    let mut child = site
        .command(&["-d", config.to_str().unwrap(), "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    wait_for("the foreground daemon", || {
        code(&site.run("status", &[])) == 0
    });
    assert_eq!(site.pid(), pid, "the foreground process is the daemon");
    assert_eq!(code(&site.run("stop", &[])), 0);
    let status = child.wait().unwrap();
    let mut err = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("Starting Linux Director Daemon"), "{err}");
    assert!(err.contains("terminated on signal: TERM"), "{err}");
    assert!(!err.contains('|'), "no file prefix on stderr: {err}");
}

#[test]
fn supervised_logs_to_stdout_with_a_timestamp() {
    let site = Site::new();
    site.write_config(&format!("supervised=yes\n{GOOD}"));
    let config = site.config();
    let mut child = site
        .command(&[config.to_str().unwrap(), "start"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the supervised daemon", || {
        code(&site.run("status", &[])) == 0
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let mut out = String::new();
    use std::io::Read as _;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let re =
        regex::Regex::new(r"(?m)^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] Starting").unwrap();
    assert!(re.is_match(&out), "{out}");
    assert!(out.contains("terminated on signal: INT"), "{out}");
    assert!(
        site.log().is_empty(),
        "supervised does not write the logfile"
    );
}

#[test]
fn missing_config_and_usage() {
    let site = Site::new();
    let o = site
        .command(&["/nonexistent/x.cf", "start"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert_eq!(stderr(&o), "Config file /nonexistent/x.cf not found\n");
    // status of a config that is gone still answers from the pid file.
    let o = site
        .command(&["/nonexistent/x.cf", "status"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3, "{o:?}");
}

#[test]
fn a_failed_start_says_why_and_leaves_nothing_behind() {
    let site = Site::new();
    let config = site.config();
    let o = site
        .command(&[config.to_str().unwrap(), "start"])
        .env("LDIRECTORD_RUNDIR", site.path("missing-dir"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(
        stderr(&o).contains("cannot open pid file"),
        "the daemon's reason reaches the foreground: {o:?}"
    );
    assert!(site.log().contains("cannot open pid file"), "and the log");
    let leftovers: Vec<_> = std::fs::read_dir(site.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("ldirectord.web"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
