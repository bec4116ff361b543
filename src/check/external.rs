//! external and external-perl (`check_external`, `system_timeout`, `check_external_perl`).
//!
//! The program runs without a shell, with the four Perl arguments (virtual address or mark,
//! virtual port, real address, real port), the daemon's environment plus `PERLIO=perlio`
//! when unset (the Perl ldirectord sets it for itself and so for its children), stdin from
//! /dev/null, in a process group of its own. At the deadline (checktimeout) the whole group
//! gets SIGKILL (Perl sends TERM to the child only and leaves grandchildren behind); when the
//! program exits first, whatever it left running in its group is killed too, so nothing a
//! check started outlives it. Output is captured up to [`OUTPUT_CAP`] bytes per stream (the
//! rest is read and dropped so that the program never blocks on a full pipe) and shown in
//! the failure detail.
//!
//! Exit status, as `system_timeout` reports it: 0 is up; any other status, a failed exec
//! (Perl's 127) or the deadline is down; **death by a signal other than ours is up**, because
//! Perl returns `$? >> 8`, which is 0 then. That quirk is kept for `external` (a check that
//! crashes counts as passing, as it did) and logged as a warning; `external-perl` ran inside
//! the Perl daemon, where a signal could not be "survived", so there it is down.
//!
//! external-perl runs the file with `perl` as a separate process: `exit(0)`, `exit` and
//! falling off the end are up; `exit(n)` and `die` (exit 255) are down, exactly the in-process
//! meanings. Unlike Perl nothing is cached across reloads.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::timeout_at;

use super::net::Deadline;
use super::outcome::{CheckResult, Failure, FailureKind};
use super::spec::ExternalSpec;

/// Bytes of stdout and of stderr kept from an external check.
pub const OUTPUT_CAP: usize = 4096;
/// How long output is still collected after the program exits.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// Where external-perl finds its interpreter.
fn perl() -> &'static str {
    if Path::new("/usr/bin/perl").exists() {
        "/usr/bin/perl"
    } else {
        "perl"
    }
}

/// Kills the process group when dropped, unless disarmed: covers the deadline and a check
/// future that is dropped half-way.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH (nothing left in the group) is the normal case after a clean exit.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn capture(reader: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut reader) = reader else {
        return kept;
    };
    let mut chunk = [0u8; 4096];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

fn summary(stdout: &[u8], stderr: &[u8]) -> String {
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout
    };
    let text = String::from_utf8_lossy(text);
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(200).collect()
}

/// What a Perl caller would have concluded from this status.
fn judge(status: ExitStatus, signal_is_up: bool, program: &str, output: String) -> CheckResult {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        if code == 0 {
            return Ok(());
        }
        let detail = if output.is_empty() {
            format!("{program} exited with {code}")
        } else {
            format!("{program} exited with {code}: {output}")
        };
        return Err(Failure::new(FailureKind::Exit(code), detail));
    }
    let signal = status.signal().unwrap_or(0);
    if signal_is_up {
        tracing::warn!(
            program,
            signal,
            "external check killed by a signal counts as up (Perl ldirectord compatibility)"
        );
        Ok(())
    } else {
        Err(Failure::new(
            FailureKind::Exit(128 + signal),
            format!("{program} killed by signal {signal}"),
        ))
    }
}

async fn run(program: &Path, args: &[&str], signal_is_up: bool, deadline: Deadline) -> CheckResult {
    let name = program.display().to_string();
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if std::env::var_os("PERLIO").is_none() {
        command.env("PERLIO", "perlio");
    }
    let mut child = command
        .spawn()
        .map_err(|e| Failure::new(FailureKind::Exec, format!("exec {name}: {e}")))?;
    let mut group = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    let stdout = capture(child.stdout.take());
    let stderr = capture(child.stderr.take());
    tokio::pin!(stdout);
    tokio::pin!(stderr);
    let mut out = None;
    let mut err = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            o = &mut stdout, if out.is_none() => out = Some(o),
            e = &mut stderr, if err.is_none() => err = Some(e),
            () = tokio::time::sleep_until(deadline.at()) => {
                group.kill();
                // SIGKILL cannot be ignored; reaping is a matter of microseconds.
                let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
                return Err(Failure::new(
                    FailureKind::Deadline,
                    format!("{name} still running at the deadline; process group killed"),
                ));
            }
        }
    };
    let status =
        status.map_err(|e| Failure::new(FailureKind::Io, format!("wait for {name}: {e}")))?;
    group.kill();
    let grace = (tokio::time::Instant::now() + DRAIN_GRACE).min(deadline.at());
    let out = match out {
        Some(o) => o,
        None => timeout_at(grace, &mut stdout).await.unwrap_or_default(),
    };
    let err = match err {
        Some(e) => e,
        None => timeout_at(grace, &mut stderr).await.unwrap_or_default(),
    };
    judge(status, signal_is_up, &name, summary(&out, &err))
}

pub async fn check(spec: &ExternalSpec, deadline: Deadline) -> CheckResult {
    let args: Vec<&str> = spec.args.iter().map(String::as_str).collect();
    run(&spec.program, &args, true, deadline).await
}

pub async fn check_perl(spec: &ExternalSpec, deadline: Deadline) -> CheckResult {
    let script = spec.program.to_string_lossy();
    let mut args: Vec<&str> = vec!["--", &script];
    args.extend(spec.args.iter().map(String::as_str));
    run(Path::new(perl()), &args, false, deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn statuses_mean_what_they_meant_in_perl() {
        assert!(judge(ExitStatus::from_raw(0), true, "x", String::new()).is_ok());
        let f = judge(ExitStatus::from_raw(3 << 8), true, "x", "boom".into()).unwrap_err();
        assert_eq!(f.kind, FailureKind::Exit(3));
        assert!(f.detail.contains("boom"));
        // Killed by SIGSEGV: Perl's `$? >> 8` is 0.
        assert!(judge(ExitStatus::from_raw(11), true, "x", String::new()).is_ok());
        assert_eq!(
            judge(ExitStatus::from_raw(11), false, "x", String::new())
                .unwrap_err()
                .kind,
            FailureKind::Exit(139)
        );
    }

    #[test]
    fn summary_prefers_stderr() {
        assert_eq!(summary(b"out\n", b"\n  err line \nmore"), "err line");
        assert_eq!(summary(b"out\n", b" \n"), "out");
    }
}
