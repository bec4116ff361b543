//! The pid file `/var/run/ldirectord.<CFGNAME>.pid`, guarded by a POSIX record lock.
//!
//! The Perl ldirectord trusts any live process whose command line contains "ldirectord"
//! (quirk §6-14: a recycled pid held by `vi ldirectord.cf` reads as "running"). Here the
//! running daemon holds a write lock on the whole file for its lifetime, and `F_GETLK`
//! asks the kernel which process holds it: that answer cannot be stale, survives a
//! `kill -9` correctly (the kernel drops the lock with the process) and needs no
//! `/proc` heuristics. The pid written in the file is cross-checked against the holder.
//!
//! Record locks belong to a process, not to a descriptor, and are lost when the process
//! closes *any* descriptor of the file; so only the daemon itself (after the double fork)
//! takes the lock, and it never opens the file a second time.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

/// Pid files are tiny; anything longer is not ours and is read as "no pid".
const MAX_PID_FILE: u64 = 64;

/// What a look at the pid file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// No pid file.
    NotRunning,
    /// A pid file that no process holds: a daemon died without cleaning up (or a file left
    /// by another program). `pid` is what the file says, if it says anything readable.
    Stale { pid: Option<i32> },
    /// A daemon holds the lock. `pid` is the lock holder as the kernel reports it.
    Running { pid: i32 },
}

#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("ldirectord is already running with pid {pid} ({path})")]
    AlreadyRunning { path: PathBuf, pid: i32 },
    #[error("cannot open pid file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock pid file {path}: {source}")]
    Lock { path: PathBuf, source: Errno },
    #[error("cannot write pid file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pid file {path} keeps being replaced while locking it")]
    Replaced { path: PathBuf },
}

/// The pid file of one configuration name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidFile {
    path: PathBuf,
}

/// The held pid file; dropping it (or the process dying) releases the lock, and
/// [`PidLock::remove`] deletes the file first.
#[derive(Debug)]
pub struct PidLock {
    file: File,
    path: PathBuf,
}

impl PidFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who, if anyone, holds the pid file. Never takes the lock, so it cannot disturb a
    /// daemon that is starting at the same moment.
    pub fn probe(&self) -> Result<Probe, std::io::Error> {
        let mut file = match open_nofollow(&self.path, false) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Probe::NotRunning),
            Err(e) => return Err(e),
        };
        if let Some(pid) = lock_holder(&file).map_err(std::io::Error::from)? {
            return Ok(Probe::Running { pid });
        }
        Ok(Probe::Stale {
            pid: read_pid(&mut file),
        })
    }

    /// Creates (or takes over a stale) pid file, locks it and writes this process's pid.
    /// Fails with [`PidFileError::AlreadyRunning`] when a live daemon holds it.
    pub fn acquire(&self) -> Result<PidLock, PidFileError> {
        // A stopping daemon unlinks the file while holding the lock; if we opened the old
        // inode just before that, our lock would guard a file nobody can see. Retry until
        // the locked inode is the one at the path.
        for _ in 0..8 {
            let file = open_nofollow(&self.path, true).map_err(|source| PidFileError::Open {
                path: self.path.clone(),
                source,
            })?;
            match fcntl(file.as_fd(), FcntlArg::F_SETLK(&whole_file(libc::F_WRLCK))) {
                Ok(_) => {}
                Err(Errno::EAGAIN | Errno::EACCES) => {
                    let pid = lock_holder(&file).ok().flatten().unwrap_or(0);
                    return Err(PidFileError::AlreadyRunning {
                        path: self.path.clone(),
                        pid,
                    });
                }
                Err(source) => {
                    return Err(PidFileError::Lock {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
            if same_inode(&file, &self.path) {
                let mut lock = PidLock {
                    file,
                    path: self.path.clone(),
                };
                lock.write_pid(std::process::id())?;
                return Ok(lock);
            }
        }
        Err(PidFileError::Replaced {
            path: self.path.clone(),
        })
    }
}

impl PidLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's content with `pid\n`, as the Perl daemon writes it.
    pub fn write_pid(&mut self, pid: u32) -> Result<(), PidFileError> {
        let write_err = |source| PidFileError::Write {
            path: self.path.clone(),
            source,
        };
        self.file.set_len(0).map_err(write_err)?;
        self.file.seek(SeekFrom::Start(0)).map_err(write_err)?;
        self.file
            .write_all(format!("{pid}\n").as_bytes())
            .map_err(write_err)?;
        self.file.sync_data().map_err(write_err)
    }

    /// Deletes the file, then releases the lock (in that order, so that nobody sees an
    /// unlocked file with a live-looking pid). A failure to unlink is returned but the
    /// lock is released all the same.
    pub fn remove(self) -> Result<(), std::io::Error> {
        let result = std::fs::remove_file(&self.path);
        drop(self.file);
        result
    }
}

fn open_nofollow(path: &Path, create: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(libc::O_NOFOLLOW);
    if create {
        options.write(true).create(true).mode(0o644);
    }
    options.open(path)
}

fn whole_file(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// The pid of the process holding a lock that would conflict with a write lock, if any.
fn lock_holder(file: &File) -> Result<Option<i32>, Errno> {
    let mut query = whole_file(libc::F_WRLCK);
    fcntl(file.as_fd(), FcntlArg::F_GETLK(&mut query))?;
    if query.l_type == libc::F_UNLCK as libc::c_short {
        Ok(None)
    } else {
        Ok(Some(query.l_pid))
    }
}

fn read_pid(file: &mut File) -> Option<i32> {
    let mut text = String::new();
    file.take(MAX_PID_FILE).read_to_string(&mut text).ok()?;
    parse_pid(&text)
}

/// The first line as a positive pid (the Perl daemon writes `pid\n`).
pub fn parse_pid(text: &str) -> Option<i32> {
    text.lines()
        .next()?
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
}

fn same_inode(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let pf = PidFile::new(dir.path().join("ldirectord.x.pid"));
        assert_eq!(pf.probe().unwrap(), Probe::NotRunning);
    }

    #[test]
    fn an_unlocked_file_is_stale_even_if_its_pid_is_alive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldirectord.x.pid");
        // Our own pid: alive, and its cmdline may well contain "ldirectord" (the test
        // binary's name does): the Perl check would call this running.
        std::fs::write(&path, format!("{}\n", std::process::id())).unwrap();
        let pf = PidFile::new(&path);
        assert_eq!(
            pf.probe().unwrap(),
            Probe::Stale {
                pid: Some(std::process::id() as i32)
            }
        );
        std::fs::write(&path, "garbage\n").unwrap();
        assert_eq!(pf.probe().unwrap(), Probe::Stale { pid: None });
    }

    #[test]
    fn acquire_takes_over_a_stale_file_and_remove_deletes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldirectord.x.pid");
        std::fs::write(&path, "999999\n").unwrap();
        let pf = PidFile::new(&path);
        let lock = pf.acquire().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        lock.remove().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn refuses_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "").unwrap();
        let path = dir.path().join("ldirectord.x.pid");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(matches!(
            PidFile::new(&path).acquire(),
            Err(PidFileError::Open { .. })
        ));
    }

    #[test]
    fn parses_the_perl_format() {
        assert_eq!(parse_pid("1234\n"), Some(1234));
        assert_eq!(parse_pid(" 1234 \nx"), Some(1234));
        assert_eq!(parse_pid("0\n"), None);
        assert_eq!(parse_pid("-5\n"), None);
        assert_eq!(parse_pid(""), None);
    }

    // Locks are per process, so "another daemon holds it" needs another process: the
    // behaviour tests in tests/lifecycle.rs start real daemons for that.
}
