//! Becoming a daemon: fork, `setsid`, fork, `chdir /`, stdio on `/dev/null`, as the Perl
//! `ld_daemon` does, plus a readiness pipe so that `ldirectord start` returns only once the
//! daemon has its pid file, control socket and kernel connection, and exits non-zero with
//! the daemon's own words when it could not get them (the Perl `start` exits 0 at fork
//! time and leaves the operator to read the log).
//!
//! This must run while the process has a single thread: before the tokio runtime exists
//! (a forked copy of a multi-threaded process may inherit locks held by threads that do
//! not exist in the child).

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::time::Duration;

use fork::Fork;

/// What the foreground learns from the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The daemon (this pid) is up.
    Ready { pid: u32 },
    /// The daemon gave up, with its reason.
    Failed(String),
    /// The daemon exited (or closed the pipe) without saying anything.
    Vanished,
    /// Nothing within the deadline; the daemon may still be starting.
    Timeout,
}

/// The foreground's end: wait for the daemon's word.
#[derive(Debug)]
pub struct ReadyWaiter {
    read: File,
    child: i32,
}

/// The daemon's end: say once whether start-up worked. Dropping it unsaid reads as
/// [`Readiness::Vanished`] in the foreground.
#[derive(Debug)]
pub struct ReadyNotifier {
    write: Option<File>,
}

/// Which process this is after [`detach`].
#[derive(Debug)]
pub enum Role {
    Foreground(ReadyWaiter),
    Daemon(ReadyNotifier),
}

#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    #[error("cannot create the readiness pipe: {0}")]
    Pipe(nix::errno::Errno),
    #[error("cannot fork: {0}")]
    Fork(std::io::Error),
}

/// Double-forks. In the foreground returns [`Role::Foreground`]; in the daemon (a
/// grandchild in its own session, cwd `/`, stdio on `/dev/null`) returns
/// [`Role::Daemon`]. The intermediate process exits here.
pub fn detach() -> Result<Role, DetachError> {
    // Close-on-exec: programs the daemon runs later must not hold the foreground waiting.
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(DetachError::Pipe)?;
    // Whatever the foreground buffered must not be written twice by the children.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    match fork::fork().map_err(DetachError::Fork)? {
        Fork::Parent(child) => {
            drop(write);
            Ok(Role::Foreground(ReadyWaiter {
                read: File::from(read),
                child,
            }))
        }
        Fork::Child => {
            drop(read);
            become_daemon(write)
        }
    }
}

fn become_daemon(write: OwnedFd) -> Result<Role, DetachError> {
    let mut write = File::from(write);
    // A process group leader cannot call setsid; the first fork made sure we are not one.
    if let Err(e) = fork::setsid() {
        let _ = writeln!(write, "error cannot setsid: {e}");
        std::process::exit(1);
    }
    match fork::fork() {
        // The session leader exits so that the daemon can never acquire a terminal.
        Ok(Fork::Parent(_)) => std::process::exit(0),
        Ok(Fork::Child) => {}
        Err(e) => {
            let _ = writeln!(write, "error cannot fork: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = fork::chdir() {
        let _ = writeln!(write, "error cannot chdir /: {e}");
        std::process::exit(1);
    }
    if let Err(e) = fork::redirect_stdio() {
        let _ = writeln!(write, "error cannot put stdio on /dev/null: {e}");
        std::process::exit(1);
    }
    Ok(Role::Daemon(ReadyNotifier { write: Some(write) }))
}

impl ReadyNotifier {
    /// Tells the foreground that start-up worked.
    pub fn ready(&mut self) {
        if let Some(mut w) = self.write.take() {
            let _ = writeln!(w, "ready {}", std::process::id());
        }
    }

    /// Tells the foreground why start-up failed.
    pub fn failed(&mut self, reason: &str) {
        if let Some(mut w) = self.write.take() {
            let _ = writeln!(w, "error {}", reason.replace('\n', " "));
        }
    }

    /// Whether nothing was said yet.
    pub fn pending(&self) -> bool {
        self.write.is_some()
    }
}

impl ReadyWaiter {
    /// Waits up to `deadline` for the daemon's word, and reaps the intermediate process.
    pub fn wait(self, deadline: Duration) -> Readiness {
        let ReadyWaiter { read, child } = self;
        // The intermediate child exits right after the second fork.
        let _ = fork::waitpid(child);
        let (tx, rx) = mpsc::channel();
        // A thread, because the foreground has no runtime and a blocking read has no
        // deadline; if the deadline passes the thread dies with the process.
        std::thread::spawn(move || {
            let mut line = String::new();
            let answer = match BufReader::new(read).take(4096).read_line(&mut line) {
                Ok(0) | Err(_) => Readiness::Vanished,
                Ok(_) => parse_readiness(&line),
            };
            let _ = tx.send(answer);
        });
        rx.recv_timeout(deadline).unwrap_or(Readiness::Timeout)
    }
}

fn parse_readiness(line: &str) -> Readiness {
    let line = line.trim_end();
    if let Some(pid) = line.strip_prefix("ready ") {
        return match pid.parse() {
            Ok(pid) => Readiness::Ready { pid },
            Err(_) => Readiness::Failed(format!("unreadable readiness message: {line}")),
        };
    }
    match line.strip_prefix("error ") {
        Some(reason) => Readiness::Failed(reason.to_owned()),
        None => Readiness::Failed(format!("unreadable readiness message: {line}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_pipe_protocol() {
        assert_eq!(parse_readiness("ready 42\n"), Readiness::Ready { pid: 42 });
        assert_eq!(
            parse_readiness("error cannot bind /run/x: denied\n"),
            Readiness::Failed("cannot bind /run/x: denied".into())
        );
        assert!(matches!(parse_readiness("what\n"), Readiness::Failed(_)));
    }
}
