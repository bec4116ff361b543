//! imap and imaps (`check_imap`, `check_imaps`, Net::IMAP::Simple): the greeting must be
//! untagged OK or PREAUTH; with a login, LOGIN must end in a tagged OK.

use super::line::{open, shorten};
use super::net::{Deadline, MAX_LINES};
use super::outcome::{CheckResult, Failure, FailureKind};
use super::spec::{Credentials, Target, TlsOptions};

/// An IMAP quoted string (RFC 3501): backslash and double quote are escaped.
pub(crate) fn quoted(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

pub async fn check(
    target: &Target,
    tls: Option<&TlsOptions>,
    credentials: Option<&Credentials>,
    deadline: Deadline,
) -> CheckResult {
    let mut conn = open(target, tls, deadline).await?;
    let greeting = conn.read_line("IMAP greeting").await?;
    let upper = greeting.to_ascii_uppercase();
    if !(upper.starts_with(b"* OK") || upper.starts_with(b"* PREAUTH")) {
        return Err(Failure::new(
            FailureKind::NoMatch,
            format!("greeting: {}", shorten(&String::from_utf8_lossy(&greeting))),
        ));
    }
    if let Some(c) = credentials.filter(|c| !c.login.is_empty()) {
        let command = format!("a1 LOGIN {} {}\r\n", quoted(&c.login), quoted(&c.passwd));
        if c.login.contains(['\r', '\n']) || c.passwd.contains(['\r', '\n']) {
            return Err(Failure::new(
                FailureKind::Auth,
                "login or passwd contains a line break",
            ));
        }
        conn.write_all(command.as_bytes(), "LOGIN").await?;
        let mut answered = false;
        for _ in 0..MAX_LINES {
            let line = conn.read_line("LOGIN reply").await?;
            let upper = line.to_ascii_uppercase();
            if upper.starts_with(b"A1 ") {
                if !upper.starts_with(b"A1 OK") {
                    return Err(Failure::new(
                        FailureKind::Auth,
                        format!("LOGIN: {}", shorten(&String::from_utf8_lossy(&line))),
                    ));
                }
                answered = true;
                break;
            }
        }
        if !answered {
            return Err(Failure::new(FailureKind::TooLarge, "no tagged LOGIN reply"));
        }
        conn.farewell(b"a2 LOGOUT\r\n").await;
    } else {
        conn.farewell(b"a1 LOGOUT\r\n").await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
