//! E-mail alerts (Perl `ld_emailalert_send`, `ld_emailalert_resend`).
//!
//! * Sent for: Deleted, Quiescent and Readd-Quiescent real servers (these arm a repeat
//!   timer), Added, Restored and Purged ones (these disarm it), and a deleted fallback
//!   (no timer). Virtual-service changes send nothing.
//! * Only when the daemon status is one of `emailalertstatus` and `emailalert` is not
//!   empty; the timer is armed or disarmed either way.
//! * With `emailalertfreq` > 0, every armed timer older than the frequency sends
//!   `Inaccessible real server: <rip:port> (<virtual>)` and re-arms.
//! * Subject: the log text, with `[<servicename>] ` in front when set. Body:
//!   `ldirectord host:`, `Log-Message:`, `Daemon-Status:`, then `Service name:` and
//!   `Comment:` when set.
//! * Transport: the `smtp` relay when set (plain SMTP, envelope sender `<user>@<host>`, as
//!   Net::SMTP), else the local `sendmail -i` (lettre; no shell). Each recipient is its own
//!   RCPT (Perl sends the whole list as one, reference §6-12).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{EmailAlert, Virtual};
use crate::ipvs::DestKey;

use super::status::Phase;

/// How long one mail may take to hand over.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// One alert mail, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// `smtp` relay (`host` or `host:port`); `None` = the local sendmail.
    pub smtp: Option<String>,
    /// The From header (`emailalertfrom`, else `<user>@<host>`).
    pub from: String,
    /// The envelope sender: `<user>@<host>`.
    pub sender: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// Hands mails to a mail system; injectable so tests need no MTA.
pub trait Mailer: Send + Sync + 'static {
    fn send(&self, mail: Mail) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// The machine's mail system through lettre: `sendmail -i -f <sender> -- <to>…`, or plain
/// SMTP to the relay.
#[derive(Debug, Default, Clone)]
pub struct SystemMailer {
    /// The sendmail program; `None` = `/usr/sbin/sendmail`, `/usr/lib/sendmail`, or
    /// `sendmail` on the PATH, the first that exists.
    pub sendmail: Option<std::path::PathBuf>,
}

impl Mailer for SystemMailer {
    fn send(&self, mail: Mail) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            let sendmail = self.sendmail.clone().unwrap_or_else(|| sendmail().into());
            match tokio::time::timeout(SEND_TIMEOUT, send_with_lettre(&mail, &sendmail)).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {}s", SEND_TIMEOUT.as_secs())),
            }
        })
    }
}

async fn send_with_lettre(mail: &Mail, sendmail: &std::path::Path) -> Result<(), String> {
    use lettre::message::{Mailbox, header::ContentType};
    use lettre::{Address, AsyncTransport, Message, Tokio1Executor};

    let parse_mailbox = |s: &str| {
        s.parse::<Mailbox>()
            .map_err(|e| format!("address {s:?}: {e}"))
    };
    let mut builder = Message::builder()
        .from(parse_mailbox(&mail.from)?)
        .subject(mail.subject.clone());
    let mut recipients = Vec::new();
    for to in &mail.to {
        let mailbox = parse_mailbox(to)?;
        recipients.push(mailbox.email.clone());
        builder = builder.to(mailbox);
    }
    let sender: Option<Address> = mail.sender.parse().ok();
    let envelope = lettre::address::Envelope::new(sender, recipients).map_err(|e| e.to_string())?;
    let message = builder
        .envelope(envelope)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| e.to_string())?;
    match &mail.smtp {
        Some(relay) => {
            let (host, port) = match relay.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() && !h.contains(':') => {
                    (h.to_owned(), p.parse().unwrap_or(25))
                }
                _ => (relay.trim_matches(['[', ']']).to_owned(), 25),
            };
            let transport = lettre::AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(port)
                .timeout(Some(SEND_TIMEOUT))
                .build();
            transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        None => {
            let transport =
                lettre::AsyncSendmailTransport::<Tokio1Executor>::new_with_command(sendmail);
            transport.send(message).await.map_err(|e| e.to_string())
        }
    }
}

/// Where sendmail lives (a daemon's PATH may not include /usr/sbin).
fn sendmail() -> &'static str {
    ["/usr/sbin/sendmail", "/usr/lib/sendmail"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("sendmail")
}

/// What an applied change does to the repeat timer of its real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// Down or quiesced: mail, and repeat every `emailalertfreq`.
    Raise,
    /// Back, or purged: mail, and stop repeating.
    Clear,
    /// A deleted fallback: mail once.
    Once,
}

/// An applied change of a real server, as the alert logic needs it.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub virtual_server: &'a Virtual,
    /// The virtual the Perl way (`10.0.0.1:80`, `[2001:db8::1]:80`, the mark).
    pub vname: &'a str,
    pub real: DestKey,
    /// The log line, which is also the subject.
    pub text: &'a str,
    pub kind: AlertKind,
}

struct Armed {
    since: Instant,
    alert: EmailAlert,
    servicename: Option<String>,
    comment: Option<String>,
}

/// The alert state of the director: repeat timers and who this host is.
pub struct Alerts {
    hostname: String,
    user: String,
    armed: HashMap<String, Armed>,
}

impl Alerts {
    pub fn new(hostname: String, user: String) -> Alerts {
        Alerts {
            hostname,
            user,
            armed: HashMap::new(),
        }
    }

    /// The host's name and the daemon's user, as Perl's `hostname` and `getpwuid($<)`.
    pub fn for_this_host() -> Alerts {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map_or_else(|| "root".into(), |u| u.name);
        Alerts::new(hostname, user)
    }

    /// Records an applied change and returns the mail to send, if any.
    pub fn on_change(&mut self, change: &Change<'_>, phase: Phase, now: Instant) -> Option<Mail> {
        let Change {
            virtual_server: v,
            vname,
            real,
            text,
            kind,
        } = *change;
        let id = format!("{real} ({vname})");
        if kind == AlertKind::Raise && !v.emailalert.freq.is_zero() {
            self.armed.insert(
                id,
                Armed {
                    since: now,
                    alert: v.emailalert.clone(),
                    servicename: v.servicename.clone(),
                    comment: v.comment.clone(),
                },
            );
        } else {
            self.armed.remove(&id);
        }
        self.compose(
            &v.emailalert,
            v.servicename.as_deref(),
            v.comment.as_deref(),
            text,
            phase,
        )
    }

    /// `Inaccessible real server: …` for every armed timer that is due; re-arms them.
    pub fn due(&mut self, phase: Phase, now: Instant) -> Vec<Mail> {
        let mut mails = Vec::new();
        let mut ids: Vec<&String> = self
            .armed
            .iter()
            .filter(|(_, a)| now.duration_since(a.since) >= a.alert.freq)
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        for id in ids {
            let Some(armed) = self.armed.get_mut(&id) else {
                continue;
            };
            armed.since = now;
            let (alert, name, comment) = (
                armed.alert.clone(),
                armed.servicename.clone(),
                armed.comment.clone(),
            );
            let text = format!("Inaccessible real server: {id}");
            if let Some(mail) =
                self.compose(&alert, name.as_deref(), comment.as_deref(), &text, phase)
            {
                mails.push(mail);
            }
        }
        mails
    }

    fn compose(
        &self,
        alert: &EmailAlert,
        servicename: Option<&str>,
        comment: Option<&str>,
        text: &str,
        phase: Phase,
    ) -> Option<Mail> {
        let allowed = match phase {
            Phase::Starting => alert.status.starting,
            Phase::Running => alert.status.running,
            Phase::Reloading => alert.status.reloading,
            Phase::Stopping | Phase::Stopped => alert.status.stopping,
        };
        if !allowed || alert.to.is_empty() {
            return None;
        }
        tracing::info!("emailalert: {text}");
        let subject = match servicename.filter(|s| !s.is_empty()) {
            Some(name) => format!("[{name}] {text}"),
            None => text.to_owned(),
        };
        let status = match phase {
            Phase::Stopped => "stopping",
            other => other.name(),
        };
        let mut body = format!(
            "ldirectord host: {}\nLog-Message: {subject}\nDaemon-Status: {status}\n",
            self.hostname
        );
        let mut details = String::new();
        if let Some(name) = servicename.filter(|s| !s.is_empty()) {
            details.push_str(&format!("Service name: {name}\n"));
        }
        if let Some(comment) = comment.filter(|s| !s.is_empty()) {
            details.push_str(&format!("Comment: {comment}\n"));
        }
        if !details.is_empty() {
            body.push('\n');
            body.push_str(&details);
            body.push('\n');
        }
        let sender = format!("{}@{}", self.user, self.hostname);
        Some(Mail {
            smtp: alert.smtp.clone(),
            from: alert.from.clone().unwrap_or_else(|| sender.clone()),
            sender,
            to: alert.to.clone(),
            subject,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AlertStatuses, FakeHost, parse_str};
    use std::path::Path;

    fn virtual_with(lines: &str) -> Virtual {
        let text = format!(
            "{lines}\nvirtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\tservicename=web\n\tcomment=front\n"
        );
        parse_str(&text, Path::new("/t.cf"), &FakeHost::default())
            .unwrap()
            .config
            .virtuals
            .remove(0)
    }

    fn dest() -> DestKey {
        DestKey {
            addr: "10.0.0.2".parse().unwrap(),
            port: 80,
        }
    }

    fn mail(smtp: Option<String>) -> Mail {
        Mail {
            smtp,
            from: "lb@example.com".into(),
            sender: "root@director".into(),
            to: vec!["a@example.com".into(), "b@example.com".into()],
            subject: "[web] Deleted real server: 10.0.0.2:80 (10.0.0.100:80)".into(),
            body: "ldirectord host: director\nLog-Message: x\nDaemon-Status: running\n".into(),
        }
    }

    /// A minimal SMTP server on loopback: records the commands of one session.
    async fn smtp_server() -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let session = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut seen = Vec::new();
            write.write_all(b"220 relay ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            while let Ok(Some(line)) = lines.next_line().await {
                if in_data {
                    if line == "." {
                        in_data = false;
                        write.write_all(b"250 queued\r\n").await.unwrap();
                    } else {
                        seen.push(format!("| {line}"));
                    }
                    continue;
                }
                seen.push(line.clone());
                let reply: &[u8] = match line.split(' ').next().unwrap_or("") {
                    "EHLO" => b"250 relay\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT" => {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                write.write_all(reply).await.unwrap();
            }
            seen
        });
        (port, session)
    }

    #[tokio::test]
    async fn smtp_relay_gets_one_rcpt_per_recipient() {
        let (port, session) = smtp_server().await;
        SystemMailer::default()
            .send(mail(Some(format!("127.0.0.1:{port}"))))
            .await
            .unwrap();
        let seen = session.await.unwrap();
        let commands: Vec<&str> = seen
            .iter()
            .filter(|l| !l.starts_with("| ") && !l.starts_with("EHLO"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            commands,
            [
                "MAIL FROM:<root@director>",
                "RCPT TO:<a@example.com>",
                "RCPT TO:<b@example.com>",
                "DATA",
                "QUIT"
            ]
        );
        let data = seen.join("\n");
        assert!(data.contains("| From: lb@example.com"), "{data}");
        assert!(
            data.contains("| Subject: [web] Deleted real server: 10.0.0.2:80 (10.0.0.100:80)"),
            "{data}"
        );
        assert!(data.contains("| Daemon-Status: running"), "{data}");
    }

    #[tokio::test]
    async fn local_sendmail_gets_the_envelope_as_arguments() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = dir.path().join("sendmail");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$@\" > {0}\ncat >> {0}\n", out.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mailer = SystemMailer {
            sendmail: Some(script),
        };
        mailer.send(mail(None)).await.unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        let first = got.lines().next().unwrap();
        assert_eq!(first, "-i -f root@director -- a@example.com b@example.com");
        assert!(got.contains("Subject: [web] Deleted real server"), "{got}");
        // A failing sendmail is an error for the log, not a panic.
        let failing = SystemMailer {
            sendmail: Some("/bin/false".into()),
        };
        assert!(failing.send(mail(None)).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn mail_content_follows_perl() {
        let v = virtual_with("emailalert=ops@example.com\nemailalertfrom=lb@example.com");
        let mut alerts = Alerts::new("director".into(), "root".into());
        let mail = alerts
            .on_change(
                &Change {
                    virtual_server: &v,
                    vname: "10.0.0.100:80",
                    real: dest(),
                    text: "Deleted real server: 10.0.0.2:80 (10.0.0.100:80)",
                    kind: AlertKind::Raise,
                },
                Phase::Running,
                Instant::now(),
            )
            .unwrap();
        assert_eq!(
            mail.subject,
            "[web] Deleted real server: 10.0.0.2:80 (10.0.0.100:80)"
        );
        assert_eq!(
            mail.body,
            "ldirectord host: director\nLog-Message: [web] Deleted real server: 10.0.0.2:80 (10.0.0.100:80)\nDaemon-Status: running\n\nService name: web\nComment: front\n\n"
        );
        assert_eq!(
            (mail.from.as_str(), mail.sender.as_str()),
            ("lb@example.com", "root@director")
        );
        assert_eq!(mail.to, ["ops@example.com"]);
        assert_eq!(mail.smtp, None);
    }

    #[tokio::test(start_paused = true)]
    async fn repeats_every_freq_until_cleared_and_status_filters() {
        let v =
            virtual_with("emailalert=ops@example.com\nemailalertfreq=60\nemailalertstatus=running");
        let mut alerts = Alerts::new("director".into(), "root".into());
        let t0 = Instant::now();
        // Filtered out while starting, but the timer is armed all the same.
        assert!(
            alerts
                .on_change(
                    &Change {
                        virtual_server: &v,
                        vname: "10.0.0.100:80",
                        real: dest(),
                        text: "Deleted …",
                        kind: AlertKind::Raise
                    },
                    Phase::Starting,
                    t0
                )
                .is_none()
        );
        assert!(
            alerts
                .due(Phase::Running, t0 + Duration::from_secs(59))
                .is_empty()
        );
        let again = alerts.due(Phase::Running, t0 + Duration::from_secs(60));
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].subject,
            "[web] Inaccessible real server: 10.0.0.2:80 (10.0.0.100:80)"
        );
        assert!(
            alerts
                .due(Phase::Running, t0 + Duration::from_secs(90))
                .is_empty()
        );
        assert_eq!(
            alerts
                .due(Phase::Running, t0 + Duration::from_secs(120))
                .len(),
            1
        );
        alerts.on_change(
            &Change {
                virtual_server: &v,
                vname: "10.0.0.100:80",
                real: dest(),
                text: "Added …",
                kind: AlertKind::Clear,
            },
            Phase::Running,
            t0,
        );
        assert!(
            alerts
                .due(Phase::Running, t0 + Duration::from_secs(600))
                .is_empty()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_recipients_no_mail_and_smtp_relay_is_carried() {
        let v = virtual_with("emailalertstatus=all");
        let mut alerts = Alerts::new("h".into(), "u".into());
        let now = Instant::now();
        assert!(
            alerts
                .on_change(
                    &Change {
                        virtual_server: &v,
                        vname: "x",
                        real: dest(),
                        text: "t",
                        kind: AlertKind::Once
                    },
                    Phase::Running,
                    now
                )
                .is_none()
        );
        let mut v = virtual_with("emailalert=a@example.com, b@example.com\nsmtp=relay.example.com");
        v.emailalert.status = AlertStatuses::ALL;
        let mail = alerts
            .on_change(
                &Change {
                    virtual_server: &v,
                    vname: "x",
                    real: dest(),
                    text: "t",
                    kind: AlertKind::Once,
                },
                Phase::Stopping,
                now,
            )
            .unwrap();
        assert_eq!(mail.to, ["a@example.com", "b@example.com"]);
        assert_eq!(mail.smtp.as_deref(), Some("relay.example.com"));
        assert!(mail.body.contains("Daemon-Status: stopping"));
    }
}
