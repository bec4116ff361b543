//! Side effects of state changes: alert mails, `fallbackcommand`, `callback`, monitor-file
//! lines.
//!
//! None of them may stall or kill the director: they are queued (bounded; a full queue
//! drops with a warning) to two background workers, one for mail and one for local work
//! (commands and monitor lines, in order), and every failure is logged and forgotten.
//!
//! `fallbackcommand` runs without a shell: the configured text is split on whitespace
//! into a program and its arguments (no quoting, globbing, variables or redirection), then
//! `start|stop <vip>:<vport> <tcp|udp|fwm>` is appended, as the Perl daemon appends them.
//! For a firewall-mark virtual the second argument is `<mark>:0` (Perl passes `:0`, with
//! the mark left out). The program runs in its own process group, with stdin, stdout and
//! stderr on /dev/null, and is killed with its group after [`COMMAND_TIMEOUT`].

use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{CheckType, Endpoint, Real, Virtual};

pub use super::alerts::{AlertKind, Change};
use super::alerts::{Alerts, Mail, Mailer, SystemMailer};
use super::state::{RealState, Verdict};
use super::status::Phase;

/// How long a `fallbackcommand` may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// A monitor file larger than this is renamed to `<file>.old` and started afresh.
pub const MONITOR_MAX_BYTES: u64 = 16 << 20;
/// Jobs waiting per worker; more are dropped (with a warning) rather than waited for.
const QUEUE: usize = 1024;
/// How long [`Effects::finish`] waits for queued work at stop.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a program (`fallbackcommand`); injectable so tests need no processes.
pub trait Launcher: Send + Sync + 'static {
    fn run(
        &self,
        argv: Vec<String>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// Runs the program for real: no shell, own process group, killed after the timeout.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemLauncher;

impl Launcher for SystemLauncher {
    fn run(
        &self,
        argv: Vec<String>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            let (program, args) = argv.split_first().ok_or("empty command")?;
            let mut child = tokio::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot run {program}: {e}"))?;
            let pid = child.id();
            match tokio::time::timeout(COMMAND_TIMEOUT, child.wait()).await {
                Ok(Ok(status)) if status.success() => Ok(()),
                Ok(Ok(status)) => Err(format!("{program} exited with {status}")),
                Ok(Err(e)) => Err(format!("waiting for {program}: {e}")),
                Err(_) => {
                    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    Err(format!(
                        "{program} did not finish within {}s; killed",
                        COMMAND_TIMEOUT.as_secs()
                    ))
                }
            }
        })
    }
}

enum LocalJob {
    Command(Vec<String>),
    Monitor { path: PathBuf, line: String },
}

struct Workers {
    mail: mpsc::Sender<Mail>,
    local: mpsc::Sender<LocalJob>,
    handles: Vec<JoinHandle<()>>,
}

/// The director's side effects.
pub struct Effects {
    mailer: Arc<dyn Mailer>,
    launcher: Arc<dyn Launcher>,
    alerts: Alerts,
    workers: Option<Workers>,
}

impl Default for Effects {
    /// The machine's sendmail or SMTP relay, real processes, this host's name.
    fn default() -> Effects {
        Effects::new(
            Arc::new(SystemMailer::default()),
            Arc::new(SystemLauncher),
            Alerts::for_this_host(),
        )
    }
}

impl Effects {
    pub fn new(mailer: Arc<dyn Mailer>, launcher: Arc<dyn Launcher>, alerts: Alerts) -> Effects {
        Effects {
            mailer,
            launcher,
            alerts,
            workers: None,
        }
    }

    /// Workers start on first use, inside the runtime.
    fn workers(&mut self) -> &Workers {
        self.workers.get_or_insert_with(|| {
            let (mail, mut mail_rx) = mpsc::channel::<Mail>(QUEUE);
            let (local, mut local_rx) = mpsc::channel::<LocalJob>(QUEUE);
            let mailer = self.mailer.clone();
            let launcher = self.launcher.clone();
            let mail_worker = tokio::spawn(async move {
                while let Some(mail) = mail_rx.recv().await {
                    let subject = mail.subject.clone();
                    if let Err(e) = mailer.send(mail).await {
                        tracing::error!(error = %e, subject = %subject, "failed to send email message");
                    }
                }
            });
            let local_worker = tokio::spawn(async move {
                let mut monitor = MonitorWriter::default();
                while let Some(job) = local_rx.recv().await {
                    match job {
                        LocalJob::Command(argv) => {
                            let shown = argv.join(" ");
                            match launcher.run(argv).await {
                                Ok(()) => tracing::info!(command = %shown, "command finished"),
                                Err(e) => tracing::error!(command = %shown, error = %e, "command failed"),
                            }
                        }
                        LocalJob::Monitor { path, line } => monitor.append(&path, &line),
                    }
                }
            });
            Workers {
                mail,
                local,
                handles: vec![mail_worker, local_worker],
            }
        })
    }

    fn queue_mail(&mut self, mail: Mail) {
        if let Err(e) = self.workers().mail.try_send(mail) {
            tracing::warn!(error = %e, "alert mail queue full; mail dropped");
        }
    }

    fn queue_local(&mut self, job: LocalJob) {
        if let Err(e) = self.workers().local.try_send(job) {
            tracing::warn!(error = %e, "command/monitor queue full; job dropped");
        }
    }

    /// An applied change of a real server: mail and repeat timer.
    pub fn alert(&mut self, change: &Change<'_>, phase: Phase) {
        if let Some(mail) = self.alerts.on_change(change, phase, Instant::now()) {
            self.queue_mail(mail);
        }
    }

    /// Sends the repeat mails that are due (`emailalertfreq`).
    pub fn resend_due(&mut self, phase: Phase) {
        for mail in self.alerts.due(phase, Instant::now()) {
            self.queue_mail(mail);
        }
    }

    /// `fallbackcommand <argument> <vip>:<vport> <proto>`.
    pub fn fallback_command(&mut self, command: &str, argument: &'static str, v: &Virtual) {
        let argv = fallback_argv(command, argument, &v.endpoint);
        if argv.len() <= 3 {
            return;
        }
        tracing::info!("virtual" = %v.endpoint, command = %argv.join(" "), "running fallbackcommand {argument}");
        self.queue_local(LocalJob::Command(argv));
    }

    /// `callback <config path>`, when the program is executable (Perl: `-x $CALLBACK`).
    /// Like `fallbackcommand`, the text is split on whitespace and run without a shell.
    pub fn callback(&mut self, callback: &str, config: &Path) {
        let mut argv: Vec<String> = callback.split_whitespace().map(str::to_owned).collect();
        let Some(program) = argv.first() else {
            return;
        };
        if !is_executable(Path::new(program)) {
            tracing::warn!(callback = %program, "callback is not an executable file; not run");
            return;
        }
        argv.push(config.display().to_string());
        tracing::info!(command = %argv.join(" "), "running callback");
        self.queue_local(LocalJob::Command(argv));
    }

    /// One monitor-file line for a check result of `real` (Perl `service_set` with
    /// `do_log`). Written for every up or down verdict, except `checktype=on` and
    /// skipped checks, which Perl does not log either.
    pub fn monitor(&mut self, v: &Virtual, real: &Real, state: &RealState) {
        let Some(path) = &v.monitorfile else {
            return;
        };
        if v.check.checktype == CheckType::On {
            return;
        }
        let Some((_, probe)) = &state.last else {
            return;
        };
        let (word, message) = match &probe.verdict {
            Verdict::Up => ("up", "-".to_owned()),
            Verdict::Down(reason) if reason.detail.is_empty() => ("down", reason.kind.clone()),
            Verdict::Down(reason) => ("down", reason.detail.clone()),
            Verdict::Skipped => return,
        };
        let line = format!(
            "[{}] [{}] {} [{word}] {}\n",
            ctime(SystemTime::now()),
            std::process::id(),
            monitor_real_id(v, real),
            escape(&message)
        );
        self.queue_local(LocalJob::Monitor {
            path: path.clone(),
            line,
        });
    }

    /// Waits (bounded) for queued mails and commands, then stops the workers.
    pub async fn finish(&mut self) {
        let Some(workers) = self.workers.take() else {
            return;
        };
        drop(workers.mail);
        drop(workers.local);
        let all = async {
            for handle in workers.handles {
                let _ = handle.await;
            }
        };
        if tokio::time::timeout(FINISH_TIMEOUT, all).await.is_err() {
            tracing::warn!("alerts or commands still running at stop; abandoned");
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The argument vector of a `fallbackcommand` run (see the module doc).
pub fn fallback_argv(command: &str, argument: &str, endpoint: &Endpoint) -> Vec<String> {
    let mut argv: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    let (target, proto) = match endpoint {
        Endpoint::Addr { addr, protocol } => (addr.to_string(), protocol.as_str()),
        Endpoint::Fwmark { mark, .. } => (format!("{mark}:0"), "fwm"),
    };
    argv.extend([argument.to_owned(), target, proto.to_owned()]);
    argv
}

/// Perl `get_real_id_str` as the monitor file prints it: colons squeezed into spaces,
/// backslashes dropped.
pub fn monitor_real_id(v: &Virtual, real: &Real) -> String {
    let check = match v.check.checktype {
        CheckType::Negotiate => format!("negotiate:{}", v.check.service),
        CheckType::Combined(_) => format!("combined:{}", v.check.service),
        CheckType::External | CheckType::ExternalPerl => {
            format!("{}:{}", v.check.checktype.keyword(), v.check.checkcommand)
        }
        other => other.keyword().to_owned(),
    };
    let id = [
        check,
        v.endpoint.protocol_name().to_owned(),
        real.addr.to_string(),
        real.port.to_string(),
        v.check.virtualhost.clone().unwrap_or_default(),
        v.check.checkport.map(|p| p.to_string()).unwrap_or_default(),
        real.weight.to_string(),
        real.forwarding.as_str().to_owned(),
        quotemeta(v.request_for(real)),
        quotemeta(v.receive_for(real).unwrap_or("")),
    ]
    .join(":");
    let mut out = String::with_capacity(id.len());
    let mut last_colon = false;
    for c in id.chars() {
        if c == ':' {
            if !last_colon {
                out.push(' ');
            }
            last_colon = true;
        } else {
            last_colon = false;
            out.push(c);
        }
    }
    out.retain(|c| c != '\\');
    out
}

/// Perl `quotemeta`: a backslash before every character that is not a word character.
fn quotemeta(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if !(c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `%`, `|`, CR and LF as `%xx`, as Perl escapes monitor messages.
fn escape(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '%' | '|' | '\r' | '\n' => out.push_str(&format!("%{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `Fri Nov 27 09:07:00 2026`: Perl's scalar `localtime`, in the system's time zone.
pub fn ctime(t: SystemTime) -> String {
    ctime_in(t, &jiff::tz::TimeZone::system())
}

fn ctime_in(t: SystemTime, zone: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => {
            let local = ts.to_zoned_datetime(zone.clone());
            jiff::fmt::strtime::format("%a %b %e %H:%M:%S %Y", &local)
                .unwrap_or_else(|_| local.to_string())
        }
        // Outside jiff's range (years beyond ±9999): a clock this wrong is shown as is.
        Err(_) => super::status::rfc3339(t),
    }
}

/// Appends monitor lines; a failure is logged (the first, then every hundredth) and never fatal
/// (Perl dies on it, reference §6-16).
#[derive(Default)]
struct MonitorWriter {
    errors_since: u64,
}

impl MonitorWriter {
    fn append(&mut self, path: &Path, line: &str) {
        if let Err(e) = append_bounded(path, line.as_bytes()) {
            self.errors_since += 1;
            if self.errors_since == 1 || self.errors_since.is_multiple_of(100) {
                tracing::error!(file = %path.display(), error = %e, failures = self.errors_since, "cannot write to monitorfile");
            }
        } else if self.errors_since > 0 {
            tracing::info!(file = %path.display(), "monitorfile writable again");
            self.errors_since = 0;
        }
    }
}

fn append_bounded(path: &Path, line: &[u8]) -> std::io::Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.is_file()
        && meta.len() + line.len() as u64 > MONITOR_MAX_BYTES
    {
        let mut old = path.as_os_str().to_owned();
        old.push(".old");
        std::fs::rename(path, PathBuf::from(old))?;
    }
    // No following a symlink planted where the file should be.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    file.write_all(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FakeHost, parse_str};
    use std::sync::Mutex;

    fn config(text: &str) -> crate::config::Config {
        parse_str(text, Path::new("/t.cf"), &FakeHost::default())
            .unwrap()
            .config
    }

    #[test]
    fn fallback_arguments_follow_perl() {
        let c = config(
            "virtual=10.0.0.100:80\n\treal=10.0.0.2 gate\nvirtual=7\n\treal=10.0.0.2 gate\nvirtual6=[2001:db8::1]:53\n\treal6=[2001:db8::2] gate\n",
        );
        assert_eq!(
            fallback_argv("/usr/local/bin/fb  -q", "start", &c.virtuals[0].endpoint),
            ["/usr/local/bin/fb", "-q", "start", "10.0.0.100:80", "tcp"]
        );
        assert_eq!(
            fallback_argv("/bin/fb", "stop", &c.virtuals[1].endpoint),
            ["/bin/fb", "stop", "7:0", "fwm"]
        );
        assert_eq!(
            fallback_argv("/bin/fb", "stop", &c.virtuals[2].endpoint),
            ["/bin/fb", "stop", "[2001:db8::1]:53", "udp"]
        );
    }

    #[test]
    fn monitor_id_matches_the_perl_example() {
        let c = config("virtual=127.0.0.1:8081\n\treal=127.0.0.1:8081 gate\n\tchecktype=connect\n");
        assert_eq!(
            monitor_real_id(&c.virtuals[0], &c.virtuals[0].reals[0]),
            "connect tcp 127.0.0.1 8081 1 gate / "
        );
        let c = config(
            "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 masq 2 \"/a:b\", \"OK|x\"\n\tvirtualhost=www\n\tcheckport=81\n",
        );
        assert_eq!(
            monitor_real_id(&c.virtuals[0], &c.virtuals[0].reals[0]),
            "negotiate http tcp 10.0.0.2 80 www 81 2 masq /a b OK|x"
        );
    }

    #[test]
    fn ctime_and_escape() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_770_420);
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(ctime_in(t, &utc), "Fri Nov 27 09:07:00 2026");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 3);
        assert_eq!(ctime_in(t, &utc), "Sun Jan  4 00:00:00 1970");
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin");
        if let Ok(berlin) = berlin {
            assert_eq!(ctime_in(t, &berlin), "Sun Jan  4 01:00:00 1970");
        }
        assert_eq!(escape("a|b%c\r\n"), "a%7cb%25c%0d%0a");
    }

    #[test]
    fn monitor_file_is_bounded_and_never_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mon.log");
        let big = vec![b'x'; (MONITOR_MAX_BYTES - 4) as usize];
        append_bounded(&path, &big).unwrap();
        append_bounded(&path, b"12345\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"12345\n");
        assert_eq!(
            std::fs::metadata(dir.path().join("mon.log.old"))
                .unwrap()
                .len(),
            MONITOR_MAX_BYTES - 4
        );
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
        assert!(append_bounded(&link, b"x\n").is_err());
        assert!(!dir.path().join("target").exists());
        // A write error is logged, not fatal.
        let mut w = MonitorWriter::default();
        w.append(&dir.path().join("no/such/dir/file"), "x\n");
        assert_eq!(w.errors_since, 1);
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Vec<String>>>);
    impl Launcher for Arc<Recorder> {
        fn run(
            &self,
            argv: Vec<String>,
        ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
            self.0.lock().unwrap().push(argv);
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn commands_run_in_order_through_the_worker() {
        let rec = Arc::new(Recorder::default());
        let mut effects = Effects::new(
            Arc::new(SystemMailer::default()),
            Arc::new(rec.clone()),
            Alerts::new("h".into(), "u".into()),
        );
        let c = config("virtual=10.0.0.100:80\n\treal=10.0.0.2 gate\n");
        effects.fallback_command("/bin/fb", "start", &c.virtuals[0]);
        effects.fallback_command("/bin/fb", "stop", &c.virtuals[0]);
        effects.finish().await;
        let got = rec.0.lock().unwrap().clone();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0][1], "start");
        assert_eq!(got[1][1], "stop");
    }

    #[tokio::test]
    async fn system_launcher_runs_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("touched");
        let argv = vec!["/usr/bin/touch".to_owned(), out.display().to_string()];
        SystemLauncher.run(argv).await.unwrap();
        assert!(out.exists());
        // Shell syntax is just an argument.
        let argv = vec!["/bin/true".to_owned(), ";".to_owned(), "false".to_owned()];
        assert!(SystemLauncher.run(argv).await.is_ok());
        let err = SystemLauncher
            .run(vec!["/no/such/program".into()])
            .await
            .unwrap_err();
        assert!(err.contains("cannot run"), "{err}");
    }
}
