//! The contract of `dist/systemd/ldirectord.service` (Type=notify) without systemd: with
//! `NOTIFY_SOCKET` set, `ldirectord CONFIG start` stays in the foreground as the daemon
//! (the process systemd started is the one holding the pid file), says `READY=1` once the
//! table is programmed, `RELOADING=1` then `READY=1` around `ExecReload`, and `STOPPING=1`
//! on SIGTERM, then exits 0.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt as _;

const CONFIG: &str = "\
checkinterval=5
virtual=127.0.0.1:18081
\treal=127.0.0.2:18081 gate
\tservice=http
";

fn recv_until(socket: &UnixDatagram, word: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {word} (saw {seen:?}): {e}"));
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = message.lines().any(|l| l == word);
        seen.push(message);
        if done {
            return seen;
        }
    }
}

#[test]
fn type_notify_start_reload_stop() {
    let dir = tempfile::tempdir().unwrap();
    let config: PathBuf = dir.path().join("lvs.cf");
    std::fs::write(
        &config,
        format!(
            "logfile=\"{}\"\n{CONFIG}",
            dir.path().join("ldirectord.log").display()
        ),
    )
    .unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let env = |cmd: &mut Command| {
        cmd.env("LDIRECTORD_RUNDIR", dir.path())
            .env("LDIRECTORD_BACKEND", "fake")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null());
    };

    let mut cmd = Command::cargo_bin("ldirectord").unwrap();
    env(&mut cmd);
    let mut daemon = cmd
        .env("NOTIFY_SOCKET", &notify_path)
        .arg(&config)
        .arg("start")
        .spawn()
        .unwrap();
    recv_until(&notify, "READY=1");
    let pid: u32 = std::fs::read_to_string(dir.path().join("ldirectord.lvs.cf.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, daemon.id(), "the started process is the daemon");

    let mut reload = Command::cargo_bin("ldirectord").unwrap();
    env(&mut reload);
    let o = reload
        .env_remove("NOTIFY_SOCKET")
        .arg(&config)
        .arg("reload")
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let seen = recv_until(&notify, "READY=1");
    assert!(
        seen.iter().any(|m| m.lines().any(|l| l == "RELOADING=1")),
        "{seen:?}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    recv_until(&notify, "STOPPING=1");
    let status = daemon.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!dir.path().join("ldirectord.lvs.cf.pid").exists());
}
