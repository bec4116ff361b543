//! nntp (`check_nntp`): the first bytes of the banner (at most 64, one read) must start
//! with `2`.

use super::line::{open, shorten};
use super::net::Deadline;
use super::outcome::{CheckResult, Failure, FailureKind};
use super::spec::Target;

pub async fn check(target: &Target, deadline: Deadline) -> CheckResult {
    let mut conn = open(target, None, deadline).await?;
    let banner = conn.read_some(64, "NNTP banner").await?;
    if banner.starts_with(b"2") {
        conn.farewell(b"QUIT\r\n").await;
        Ok(())
    } else {
        Err(Failure::new(
            FailureKind::NoMatch,
            format!("banner: {}", shorten(&String::from_utf8_lossy(&banner))),
        ))
    }
}
