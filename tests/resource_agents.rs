//! The cluster resource agents against real daemon processes, with an in-memory kernel
//! (`LDIRECTORD_BACKEND=fake`, so the monitor's kernel comparison is left to the VM suite)
//! and a private run directory: the OCF agent's actions and exit codes through the
//! installed POSIX wrapper, heartbeat's view of the resource script's `status` (the
//! `ResourceManager` pattern, run by `sh`), the `sync` command's refusals, and the metrics
//! endpoint of a running daemon.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt as _;

const GOOD: &str = "\
checktimeout=3
checkinterval=5
virtual=127.0.0.1:18080
\treal=127.0.0.2:18080 gate
\tservice=http
\tscheduler=rr
";

struct Site {
    dir: tempfile::TempDir,
    name: &'static str,
}

impl Site {
    fn new(body: &str) -> Site {
        Site::named("lvs.cf", body)
    }

    fn named(name: &'static str, body: &str) -> Site {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
            name,
        };
        site.write_config(body);
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path(self.name)
    }

    fn write_config(&self, body: &str) {
        let log = self.path("ldirectord.log");
        std::fs::write(
            self.config(),
            format!("logfile=\"{}\"\n{body}", log.display()),
        )
        .unwrap();
    }

    fn binary() -> PathBuf {
        Command::cargo_bin("ldirectord")
            .unwrap()
            .get_program()
            .into()
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("LDIRECTORD_RUNDIR", self.dir.path())
            .env("LDIRECTORD_BACKEND", "fake")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null());
    }

    /// The installed agent script, as Pacemaker runs it.
    fn ocf(&self, action: &str, extra: &[(&str, &str)]) -> Output {
        let mut cmd =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/ocf/ldirectord"));
        self.env(&mut cmd);
        cmd.arg(action)
            .env("OCF_ROOT", "/usr/lib/ocf")
            .env("OCF_RESOURCE_INSTANCE", "lvs")
            .env("OCF_RESKEY_configfile", self.config())
            .env("OCF_RESKEY_ldirectord", Site::binary())
            .env("OCF_RESKEY_CRM_meta_timeout", "20000");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// The binary under heartbeat's resource-script name.
    fn heartbeat(&self, command: &str) -> Output {
        let dir = self.path("resource.d");
        let link = dir.join("ldirectord");
        if !link.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink(Site::binary(), &link).unwrap();
        }
        let mut cmd = Command::new(&link);
        self.env(&mut cmd);
        cmd.arg(self.config()).arg(command).output().unwrap()
    }

    fn ldirectord(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(Site::binary());
        self.env(&mut cmd);
        cmd.args(args).output().unwrap()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let config = self.config();
        let _ = self.ldirectord(&[config.to_str().unwrap(), "stop"]);
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn ocf_actions_and_exit_codes_through_the_installed_wrapper() {
    let site = Site::new(GOOD);
    let meta = site.ocf("meta-data", &[]);
    assert_eq!(code(&meta), 0);
    let xml = stdout(&meta);
    assert!(
        xml.starts_with(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">"
        )
    );
    assert!(xml.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))));

    assert_eq!(code(&site.ocf("validate-all", &[])), 0);
    assert_eq!(
        code(&site.ocf("monitor", &[])),
        7,
        "probe of a stopped resource"
    );
    assert_eq!(
        code(&site.ocf("stop", &[])),
        0,
        "stopping a stopped resource"
    );

    let started = site.ocf("start", &[]);
    assert_eq!(code(&started), 0, "{started:?}");
    assert_eq!(code(&site.ocf("monitor", &[])), 0);
    assert_eq!(
        code(&site.ocf("start", &[])),
        0,
        "starting a started resource"
    );
    assert_eq!(code(&site.ocf("reload", &[])), 0);

    // A broken file: validate and reload say so, the daemon keeps running the old one,
    // and the monitor (which never reads the file) still passes.
    site.write_config("virtual=10.0.0.1:80\n\treal=nonsense gate\n");
    assert_eq!(code(&site.ocf("validate-all", &[])), 6);
    assert_eq!(code(&site.ocf("reload", &[])), 6);
    assert_eq!(code(&site.ocf("monitor", &[])), 0);
    site.write_config(GOOD);

    assert_eq!(code(&site.ocf("stop", &[])), 0);
    assert_eq!(code(&site.ocf("monitor", &[])), 7);
    assert_eq!(code(&site.ocf("reload", &[])), 7);
    assert_eq!(code(&site.ocf("notify", &[])), 3);
    assert_eq!(code(&site.ocf("promote", &[])), 3);

    let missing = site.ocf(
        "validate-all",
        &[("OCF_RESKEY_configfile", "/nonexistent/lvs.cf")],
    );
    assert_eq!(code(&missing), 5);
    let missing = site.ocf("start", &[("OCF_RESKEY_configfile", "/nonexistent/lvs.cf")]);
    assert_eq!(code(&missing), 5);
}

#[test]
fn the_wrapper_without_its_binary() {
    let site = Site::new(GOOD);
    let none = [("OCF_RESKEY_ldirectord", "/nonexistent/ldirectord")];
    assert_eq!(code(&site.ocf("monitor", &none)), 7);
    assert_eq!(code(&site.ocf("stop", &none)), 0);
    assert_eq!(code(&site.ocf("start", &none)), 5);
    assert_eq!(code(&site.ocf("meta-data", &none)), 5);
}

#[test]
fn a_monitor_catches_a_daemon_that_no_longer_answers() {
    let site = Site::new(GOOD);
    assert_eq!(code(&site.ocf("start", &[])), 0);
    let pid: i32 = std::fs::read_to_string(site.path("ldirectord.lvs.cf.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Frozen: the lock is held, the socket accepts nothing.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    let o = site.ocf("monitor", &[("OCF_RESKEY_CRM_meta_timeout", "5000")]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGCONT,
    )
    .unwrap();
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not answer"));
    assert_eq!(code(&site.ocf("monitor", &[])), 0);
}

#[test]
fn a_monitor_that_cannot_confirm_the_kernel_table_retries_then_fails() {
    let site = Site::new(GOOD);
    assert_eq!(code(&site.ocf("start", &[])), 0);
    // The daemon programs the in-memory kernel; the agent, told otherwise, reads this
    // host's real table: no ip_vs, no permission, or a table without this service. It
    // looks again every 0.5 s within its budget, then says why.
    let o = site.ocf(
        "monitor",
        &[
            ("LDIRECTORD_BACKEND", "kernel"),
            ("OCF_RESKEY_CRM_meta_timeout", "4000"),
        ],
    );
    assert!(matches!(code(&o), 1 | 4), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("IPVS table"),
        "{o:?}"
    );
    assert_eq!(code(&site.ocf("stop", &[])), 0);
}

/// heartbeat's `we_own_resource`, verbatim in its logic: only stdout counts.
fn heartbeat_verdict(site: &Site) -> String {
    let link = site.path("resource.d/ldirectord");
    let script = format!(
        "case `{} {} status` in *[Nn][Oo][Tt]\\ *[Rr]unning*) echo 3;; *[Rr]unning*|*OK*) echo 0;; *) echo 3;; esac",
        link.display(),
        site.config().display()
    );
    let mut cmd = Command::new("sh");
    site.env(&mut cmd);
    let o = cmd.arg("-c").arg(script).output().unwrap();
    stdout(&o).trim().to_owned()
}

#[test]
fn heartbeat_reads_the_resource_scripts_status_right() {
    // A configuration whose name holds the word must not fool it.
    let site = Site::named("running.cf", GOOD);
    let o = site.heartbeat("status");
    assert_eq!(code(&o), 3);
    assert!(
        stdout(&o).starts_with("ldirectord is not running ("),
        "{o:?}"
    );
    assert_eq!(heartbeat_verdict(&site), "3");

    let o = site.heartbeat("start");
    assert_eq!(code(&o), 0, "{o:?}");
    let o = site.heartbeat("status");
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).starts_with("ldirectord is running with pid: "),
        "{o:?}"
    );
    assert_eq!(heartbeat_verdict(&site), "0");

    let o = site.heartbeat("stop");
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(code(&site.heartbeat("stop")), 0, "stop when stopped");
    assert_eq!(heartbeat_verdict(&site), "3");
}

#[test]
fn sync_needs_syncdaemon_in_the_configuration() {
    let site = Site::new(GOOD);
    let config = site.config();
    let o = site.ldirectord(&["sync", config.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    // Either the kernel cannot be opened here, or the file says nothing about sync.
    assert!(
        err.contains("sets no syncdaemon") || err.contains("IPVS"),
        "{err}"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_daemon_with_metrics_serves_them() {
    let port = free_port();
    let site = Site::new(&format!("metrics = {port}\n{GOOD}"));
    let config = site.config();
    let o = site.ldirectord(&[config.to_str().unwrap(), "start"]);
    assert_eq!(code(&o), 0, "{o:?}");
    let mut answer = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s.read_to_string(&mut answer).unwrap();
            break;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("\nldirectord_ready 1\n"), "{answer}");
    assert!(answer.contains("ldirectord_virtual_in_kernel{virtual=\"tcp:127.0.0.1:18080\"} 1"));
}
