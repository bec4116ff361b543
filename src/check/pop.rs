//! pop and pops (`check_pop`, Mail::POP3Client): the greeting must be `+OK`; with a login,
//! USER and PASS must both be accepted. pops speaks TLS from the first byte.

use super::line::{open, shorten};
use super::net::{Deadline, LineConn, Stream};
use super::outcome::{CheckResult, Failure, FailureKind};
use super::spec::{Credentials, Target, TlsOptions};

async fn expect_ok(conn: &mut LineConn<Stream>, what: &str, kind: FailureKind) -> CheckResult {
    let line = conn.read_line(what).await?;
    if line.starts_with(b"+OK") {
        Ok(())
    } else {
        Err(Failure::new(
            kind,
            format!("{what}: {}", shorten(&String::from_utf8_lossy(&line))),
        ))
    }
}

pub async fn check(
    target: &Target,
    tls: Option<&TlsOptions>,
    credentials: Option<&Credentials>,
    deadline: Deadline,
) -> CheckResult {
    let mut conn = open(target, tls, deadline).await?;
    expect_ok(&mut conn, "POP3 greeting", FailureKind::NoMatch).await?;
    if let Some(c) = credentials.filter(|c| !c.login.is_empty()) {
        conn.write_all(format!("USER {}\r\n", c.login).as_bytes(), "USER")
            .await?;
        expect_ok(&mut conn, "USER reply", FailureKind::Auth).await?;
        conn.write_all(format!("PASS {}\r\n", c.passwd).as_bytes(), "PASS")
            .await?;
        expect_ok(&mut conn, "PASS reply", FailureKind::Auth).await?;
    }
    conn.farewell(b"QUIT\r\n").await;
    Ok(())
}
