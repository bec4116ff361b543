//! simpletcp (`check_simpletcp`): send the request, half-close, and wait for a line that
//! matches receive. Over UDP (the virtual's protocol) the request is one datagram and
//! replies are read datagram by datagram.

use super::line::open;
use super::net::{Deadline, MAX_LINES, connect_udp, recv_datagram};
use super::outcome::{CheckResult, Failure, FailureKind};
use super::spec::{Pattern, Protocol, SimpleTcpSpec, Target};

fn line_matches(line: &[u8], receive: Option<&Pattern>) -> bool {
    receive.is_none_or(|p| p.is_match(line))
}

fn no_match(receive: Option<&Pattern>) -> Failure {
    match receive {
        Some(p) => Failure::new(
            FailureKind::NoMatch,
            format!("no line matches {:?}", p.as_str()),
        ),
        None => Failure::new(FailureKind::NoMatch, "no reply"),
    }
}

pub async fn check(spec: &SimpleTcpSpec, target: &Target, deadline: Deadline) -> CheckResult {
    let receive = spec.receive.as_ref();
    match target.protocol {
        Protocol::Tcp => {
            let mut conn = open(target, None, deadline).await?;
            conn.write_all(&spec.send, "request").await?;
            conn.shutdown_write().await?;
            for _ in 0..MAX_LINES {
                match conn.read_line("reply").await {
                    Ok(line) if line_matches(&line, receive) => return Ok(()),
                    Ok(_) => {}
                    Err(f) if f.kind == FailureKind::Closed => return Err(no_match(receive)),
                    Err(f) => return Err(f),
                }
            }
            Err(no_match(receive))
        }
        Protocol::Udp => {
            let socket = connect_udp(target.socket_addr(), target.datapath).await?;
            deadline.io("request", socket.send(&spec.send)).await?;
            for _ in 0..MAX_LINES {
                let datagram = recv_datagram(&socket, deadline, "reply").await?;
                if datagram
                    .split(|&b| b == b'\n')
                    .any(|l| line_matches(l.strip_suffix(b"\r").unwrap_or(l), receive))
                {
                    return Ok(());
                }
            }
            Err(no_match(receive))
        }
    }
}
