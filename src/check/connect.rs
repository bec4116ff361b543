//! `checktype=connect`, and the connect step of a combined check (`check_connect`).

use super::net::{Deadline, connect_tcp, connect_udp};
use super::outcome::{CheckResult, FailureKind};
use super::spec::{Protocol, Target};

/// Opens and at once closes a connection. Over UDP the Perl code connects a datagram
/// socket, which sends nothing and so nearly always succeeds; kept for combined checks
/// (a plain `checktype=connect` over UDP pings instead, decided in `run`).
pub async fn check(target: &Target, deadline: Deadline) -> CheckResult {
    match target.protocol {
        Protocol::Tcp => match connect_tcp(target.socket_addr(), target.datapath, deadline).await {
            Ok(stream) => drop(stream),
            // A reset (not a refusal: that is ECONNREFUSED) means the handshake completed
            // and the server dropped the connection before we looked at it. The connect
            // check asks only whether the handshake completes, and Perl's blocking
            // connect() returns before the reset arrives; without this, the verdict would
            // depend on which task the scheduler ran first.
            Err(f) if f.kind == FailureKind::Reset => {}
            Err(f) => return Err(f),
        },
        Protocol::Udp => {
            connect_udp(target.socket_addr(), target.datapath).await?;
        }
    }
    Ok(())
}
