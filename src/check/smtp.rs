//! smtp and submission (`check_smtp`): what `Net::SMTP->new` does, then QUIT. The greeting
//! must be 2xx, then EHLO, or HELO if EHLO is refused, must be 2xx.

use super::line::{open, read_coded_reply, shorten};
use super::net::Deadline;
use super::outcome::{CheckResult, Failure, FailureKind};
use super::spec::Target;

/// Net::SMTP's default `Hello` domain.
const HELLO_DOMAIN: &str = "localhost.localdomain";

pub async fn check(target: &Target, deadline: Deadline) -> CheckResult {
    let mut conn = open(target, None, deadline).await?;
    let (code, text) = read_coded_reply(&mut conn, "SMTP greeting").await?;
    if code / 100 != 2 {
        return Err(Failure::new(
            FailureKind::NoMatch,
            format!("greeting: {}", shorten(&text)),
        ));
    }
    conn.write_all(format!("EHLO {HELLO_DOMAIN}\r\n").as_bytes(), "EHLO")
        .await?;
    let (code, _) = read_coded_reply(&mut conn, "EHLO reply").await?;
    if code / 100 != 2 {
        conn.write_all(format!("HELO {HELLO_DOMAIN}\r\n").as_bytes(), "HELO")
            .await?;
        let (code, text) = read_coded_reply(&mut conn, "HELO reply").await?;
        if code / 100 != 2 {
            return Err(Failure::new(
                FailureKind::NoMatch,
                format!("HELO: {}", shorten(&text)),
            ));
        }
    }
    conn.farewell(b"QUIT\r\n").await;
    Ok(())
}
