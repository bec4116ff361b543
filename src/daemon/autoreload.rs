//! Noticing a changed configuration file (`check_cfgfile`) and running `callback`.
//!
//! As in Perl: a changed mtime makes us hash the content, and only a different hash counts
//! as a change (a `touch` is not one). On a change the daemon logs it and reloads when
//! `autoreload=yes`; in both cases an executable `callback` runs with the config's full
//! path. Unlike Perl the callback runs without a shell (the value is one program path, as
//! Perl's own `-x $CALLBACK` test already demands), in its own process group, with a
//! deadline.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use md5::{Digest as _, Md5};

use crate::config::MAX_FILE_SIZE;

/// A callback still running after this is killed with its process group.
pub const CALLBACK_DEADLINE: Duration = Duration::from_secs(30);

/// The last seen state of the configuration file.
#[derive(Debug, Clone)]
pub struct ConfigWatch {
    path: PathBuf,
    mtime: Option<SystemTime>,
    digest: Option<[u8; 16]>,
}

impl ConfigWatch {
    /// Remembers the file as it is now.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut watch = Self {
            mtime: None,
            digest: None,
            path,
        };
        watch.rebase();
        watch
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the file as it is now as the reference (after any reload, so that an edit
    /// already applied through `HUP` does not trigger a second reload).
    pub fn rebase(&mut self) {
        self.mtime = mtime(&self.path);
        self.digest = digest(&self.path);
    }

    /// Whether the content changed since the last call (or [`rebase`](Self::rebase)).
    pub fn changed(&mut self) -> bool {
        let now = mtime(&self.path);
        if now == self.mtime {
            return false;
        }
        self.mtime = now;
        let new = digest(&self.path);
        let changed = new.is_some() && self.digest.is_some() && new != self.digest;
        if new.is_some() {
            self.digest = new;
        }
        changed
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn digest(path: &Path) -> Option<[u8; 16]> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes).ok()?;
    Some(Md5::digest(&bytes).into())
}

/// Whether `callback` names an executable file (Perl's `-x`).
pub fn is_executable(callback: &Path) -> bool {
    std::fs::metadata(callback)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs `callback CONFIG` and logs how it ended. Never fails the caller.
pub async fn run_callback(callback: &Path, config: &Path) {
    if !is_executable(callback) {
        tracing::debug!("callback {} is not executable", callback.display());
        return;
    }
    let mut command = tokio::process::Command::new(callback);
    command
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot run callback {}: {e}", callback.display());
            return;
        }
    };
    match tokio::time::timeout(CALLBACK_DEADLINE, child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tracing::warn!("callback {} exited with {status}", callback.display()),
        Ok(Err(e)) => tracing::warn!("callback {}: {e}", callback.display()),
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            tracing::warn!(
                "callback {} killed after {} s",
                callback.display(),
                CALLBACK_DEADLINE.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mtime(path: &Path, secs: u64) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn a_touch_is_not_a_change_but_an_edit_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldirectord.cf");
        std::fs::write(&path, "checktimeout=3\n").unwrap();
        set_mtime(&path, 1000);
        let mut watch = ConfigWatch::new(&path);
        assert!(!watch.changed());
        set_mtime(&path, 2000);
        assert!(!watch.changed(), "same content, new mtime");
        std::fs::write(&path, "checktimeout=4\n").unwrap();
        set_mtime(&path, 3000);
        assert!(watch.changed());
        assert!(!watch.changed(), "reported once");
    }

    #[test]
    fn rebase_swallows_an_already_applied_edit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldirectord.cf");
        std::fs::write(&path, "a\n").unwrap();
        set_mtime(&path, 1000);
        let mut watch = ConfigWatch::new(&path);
        std::fs::write(&path, "b\n").unwrap();
        set_mtime(&path, 2000);
        watch.rebase();
        assert!(!watch.changed());
    }

    #[test]
    fn a_vanished_file_is_not_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldirectord.cf");
        std::fs::write(&path, "a\n").unwrap();
        let mut watch = ConfigWatch::new(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(!watch.changed());
        std::fs::write(&path, "a\n").unwrap();
        assert!(!watch.changed(), "back with the same content");
    }

    #[tokio::test]
    async fn callback_gets_the_config_path_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = dir.path().join("cb");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$#:$1\" > {}\n", out.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A path with a space and a `;` would be split or run by a shell.
        let config = dir.path().join("my conf;touch x");
        run_callback(&script, &config).await;
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(got, format!("1:{}\n", config.display()));
        assert!(!dir.path().join("x").exists());
    }

    #[tokio::test]
    async fn a_non_executable_callback_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("cb");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        assert!(!is_executable(&script));
        run_callback(&script, Path::new("/x")).await;
    }
}
