//! Where log lines go, in the Perl formats (`ld_log`):
//!
//! | mode | sink | line |
//! |---|---|---|
//! | `-d` | stderr | `msg` |
//! | `supervised=yes` | stdout | `[<ctime>] msg` |
//! | `logfile=/path` | the file, opened for each line (so logrotate needs no signal) | `[<ctime>\|<CFGNAME>\|<pid>] msg` |
//! | `logfile=local0` | syslog (`/dev/log`), ident `ldirectord`, with pid | `msg` |
//!
//! Under systemd (a journal stream on stderr) lines also go to the journal with their
//! fields, except that a syslog facility is then left to journald's own forwarding.
//!
//! Everything logs through `tracing`; this module installs the subscriber and lets a reload
//! change the sink. Fields of an event are appended as `key=value` so that "one line per
//! state change with virtual, real and reason" survives in every sink.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::Registry;

use crate::config::LogTarget;

/// The syslog socket of every Linux distribution.
pub const DEV_LOG: &str = "/dev/log";

/// How the daemon was started, which decides the sink before the config does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-d`: stderr, debug lines included.
    Debug,
    /// `supervised=yes`: stdout with a timestamp.
    Supervised,
    /// A daemon: the config's `logfile`.
    Daemon,
}

/// One destination for lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    Stderr,
    Stdout,
    File {
        path: PathBuf,
        cfgname: String,
    },
    Syslog {
        facility: u8,
        socket: PathBuf,
    },
    /// Journald alone (a syslog facility under systemd).
    None,
}

impl Sink {
    /// The sink for `mode` and the config's `logfile`; `journal` says whether lines also go
    /// to the systemd journal.
    pub fn choose(mode: Mode, target: &LogTarget, cfgname: &str, journal: bool) -> Sink {
        match (mode, target) {
            (Mode::Debug, _) => Sink::Stderr,
            (Mode::Supervised, _) => Sink::Stdout,
            (Mode::Daemon, LogTarget::File(path)) => Sink::File {
                path: path.clone(),
                cfgname: cfgname.to_owned(),
            },
            (Mode::Daemon, LogTarget::Syslog(_)) if journal => Sink::None,
            (Mode::Daemon, LogTarget::Syslog(name)) => Sink::Syslog {
                facility: facility_code(name).unwrap_or(FACILITY_DAEMON),
                socket: PathBuf::from(DEV_LOG),
            },
        }
    }

    /// Writes one line. A file that cannot be written sends the line to stderr, as Perl
    /// does; nothing here can fail the caller.
    pub fn write(&self, level: Level, message: &str) {
        match self {
            Sink::Stderr => {
                let _ = writeln!(std::io::stderr().lock(), "{message}");
            }
            Sink::Stdout => {
                let _ = writeln!(std::io::stdout().lock(), "[{}] {message}", ctime_now());
            }
            Sink::File { path, cfgname } => {
                let line = format!(
                    "[{}|{cfgname}|{}] {message}\n",
                    ctime_now(),
                    std::process::id()
                );
                if append(path, &line).is_err() {
                    let _ = writeln!(std::io::stderr().lock(), "{message}");
                }
            }
            Sink::Syslog { facility, socket } => {
                let datagram = syslog_datagram(*facility, level, &ctime_syslog_now(), message);
                let sent = UnixDatagram::unbound().and_then(|s| s.send_to(&datagram, socket));
                if sent.is_err() {
                    let _ = writeln!(std::io::stderr().lock(), "{message}");
                }
            }
            Sink::None => {}
        }
    }
}

/// Appends `line` to `path`: created `0640`, never through a symlink (a log in a
/// world-writable directory must not become a way to write elsewhere).
fn append(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(line.as_bytes())
}

const FACILITY_DAEMON: u8 = 3;

/// The syslog facility code of a `logfile=` name (`daemon`, `local0`, …).
pub fn facility_code(name: &str) -> Option<u8> {
    const NAMES: [&str; 24] = [
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];
    let name = name.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// The datagram glibc's `syslog(3)` sends with `openlog("ldirectord", LOG_PID, facility)`.
pub fn syslog_datagram(facility: u8, level: Level, timestamp: &str, message: &str) -> Vec<u8> {
    let severity: u8 = match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    };
    let priority = u16::from(facility) * 8 + u16::from(severity);
    format!(
        "<{priority}>{timestamp} ldirectord[{}]: {message}",
        std::process::id()
    )
    .into_bytes()
}

/// Perl's scalar `localtime()`: `Fri Nov 27 09:07:00 2026`.
pub fn ctime_now() -> String {
    format_now("%a %b %e %H:%M:%S %Y")
}

fn ctime_syslog_now() -> String {
    format_now("%b %e %H:%M:%S")
}

fn format_now(format: &str) -> String {
    let now = jiff::ZonedDateTime::now();
    jiff::fmt::strtime::format(format, &now).unwrap_or_else(|_| now.to_string())
}

/// The daemon's subscriber: lines to the current [`Sink`], and optionally to journald.
#[derive(Debug, Clone)]
pub struct LogHandle {
    sink: Arc<RwLock<Sink>>,
}

impl LogHandle {
    /// Changes where lines go (a reload may change `logfile`).
    pub fn set_sink(&self, sink: Sink) {
        *self.sink.write().unwrap_or_else(PoisonError::into_inner) = sink;
    }

    pub fn sink(&self) -> Sink {
        self.sink
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Whether stderr is connected to the systemd journal (`JOURNAL_STREAM` names its
/// device and inode), which is how a service finds out that journald is listening.
pub fn under_journald() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Installs the global subscriber. `debug` lets debug lines through.
pub fn install(sink: Sink, debug: bool, journal: bool) -> LogHandle {
    let handle = LogHandle {
        sink: Arc::new(RwLock::new(sink)),
    };
    let max = if debug { Level::DEBUG } else { Level::INFO };
    let lines = LineLayer {
        sink: handle.sink.clone(),
        max,
    };
    let journald = if journal {
        tracing_journald::layer()
            .ok()
            .map(|l| l.with_syslog_identifier("ldirectord".into()))
    } else {
        None
    };
    let filter = tracing_subscriber::filter::LevelFilter::from_level(max);
    let subscriber = Registry::default()
        .with(lines)
        .with(journald.with_filter(filter));
    let _ = tracing::subscriber::set_global_default(subscriber);
    handle
}

/// A `tracing` layer that renders each event as one line and hands it to the sink.
struct LineLayer {
    sink: Arc<RwLock<Sink>>,
    max: Level,
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.max {
            return;
        }
        let line = render(event);
        self.sink
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .write(level, &line);
    }
}

/// `message key=value …`, with a level word in front of warnings, errors and debug lines.
fn render(event: &Event<'_>) -> String {
    let mut visitor = LineVisitor::default();
    event.record(&mut visitor);
    let prefix = match *event.metadata().level() {
        Level::ERROR => "error: ",
        Level::WARN => "warning: ",
        Level::INFO => "",
        _ => "DEBUG: ",
    };
    format!("{prefix}{}", visitor.finish())
}

#[derive(Default)]
struct LineVisitor {
    message: String,
    pending: Vec<(String, String)>,
}

impl LineVisitor {
    fn field(&mut self, name: &str, value: String) {
        self.pending.push((name.to_owned(), value));
    }

    /// The message, then the fields whose value it does not already say (the director's
    /// lines name virtual, real and reason in their text for the Perl-style logs, and carry
    /// them as fields for the journal).
    fn finish(self) -> String {
        let mut line = self.message;
        for (name, value) in self.pending {
            if !line.contains(&value) {
                let _ = write!(line, " {name}={}", quote(&value));
            }
        }
        line
    }
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.field(field.name(), value.to_owned());
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let text = format!("{value:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
        self.field(field.name(), text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.field(field.name(), format!("{value:?}"));
        }
    }
}

/// Values with spaces are quoted so that a line still splits into fields.
fn quote(value: &str) -> String {
    if value.is_empty() || value.contains(char::is_whitespace) || value.contains('"') {
        format!("{value:?}")
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_the_perl_sinks() {
        let file = LogTarget::File("/var/log/ldirectord.log".into());
        let syslog = LogTarget::Syslog("local0".into());
        assert_eq!(Sink::choose(Mode::Debug, &file, "x", false), Sink::Stderr);
        assert_eq!(
            Sink::choose(Mode::Supervised, &file, "x", true),
            Sink::Stdout
        );
        assert_eq!(
            Sink::choose(Mode::Daemon, &file, "web.cf", false),
            Sink::File {
                path: "/var/log/ldirectord.log".into(),
                cfgname: "web.cf".into()
            }
        );
        assert_eq!(
            Sink::choose(Mode::Daemon, &syslog, "x", false),
            Sink::Syslog {
                facility: 16,
                socket: DEV_LOG.into()
            }
        );
        assert_eq!(Sink::choose(Mode::Daemon, &syslog, "x", true), Sink::None);
    }

    #[test]
    fn file_lines_have_the_perl_prefix_and_survive_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldirectord.log");
        let sink = Sink::File {
            path: path.clone(),
            cfgname: "web.cf".into(),
        };
        sink.write(Level::INFO, "Added real server: 10.0.0.11:80");
        // logrotate moves the file away; the next line creates a new one.
        std::fs::rename(&path, dir.path().join("ldirectord.log.1")).unwrap();
        sink.write(Level::INFO, "second");
        let old = std::fs::read_to_string(dir.path().join("ldirectord.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        let re = regex::Regex::new(
            r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4}\|web\.cf\|\d+\] Added real server: 10\.0\.0\.11:80\n$",
        )
        .unwrap();
        assert!(re.is_match(&old), "{old:?}");
        assert!(new.ends_with("] second\n"), "{new:?}");
    }

    #[test]
    fn syslog_datagrams_carry_facility_and_severity() {
        let d = syslog_datagram(16, Level::INFO, "Nov 27 09:07:00", "hello");
        let text = String::from_utf8(d).unwrap();
        assert_eq!(
            text,
            format!(
                "<134>Nov 27 09:07:00 ldirectord[{}]: hello",
                std::process::id()
            )
        );
        assert_eq!(facility_code("LOCAL7"), Some(23));
        assert_eq!(facility_code("daemon"), Some(3));
        assert_eq!(facility_code("nonsense"), None);
    }

    #[test]
    fn syslog_sink_reaches_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("log");
        let server = UnixDatagram::bind(&socket).unwrap();
        Sink::Syslog {
            facility: 16,
            socket: socket.clone(),
        }
        .write(Level::WARN, "hi");
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("<132>"), "{text}");
        assert!(text.ends_with(": hi"), "{text}");
    }

    #[test]
    fn ctime_looks_like_perl_localtime() {
        let re = regex::Regex::new(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d \d{4}$")
            .unwrap();
        let now = ctime_now();
        assert!(re.is_match(&now), "{now:?}");
    }

    #[test]
    fn events_render_with_their_fields() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let sink = Arc::new(RwLock::new(Sink::File {
            path: path.clone(),
            cfgname: "c".into(),
        }));
        let layer = LineLayer {
            sink,
            max: Level::INFO,
        };
        let subscriber = Registry::default().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                real = "10.0.0.11:80",
                reason = "connect refused",
                "Deleted real server"
            );
            tracing::info!(
                real = "10.0.0.11:80",
                latency_ms = 0.25001,
                "Deleted real server: 10.0.0.11:80"
            );
            tracing::debug!("not shown");
            tracing::warn!("careful");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.split_once("] ").unwrap().1)
            .collect();
        assert_eq!(
            lines,
            [
                "Deleted real server real=10.0.0.11:80 reason=\"connect refused\"",
                "Deleted real server: 10.0.0.11:80 latency_ms=0.25",
                "warning: careful"
            ]
        );
    }
}
