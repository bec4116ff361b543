//! `checktype=connect`, and the connect step of a combined check (`check_connect`).

use super::net::{Deadline, connect_tcp, connect_udp};
use super::outcome::CheckResult;
use super::spec::{Protocol, Target};

/// Opens and at once closes a connection. Over UDP the Perl code connects a datagram
/// socket, which sends nothing and so nearly always succeeds; kept for combined checks
/// (a plain `checktype=connect` over UDP pings instead, decided in `run`).
pub async fn check(target: &Target, deadline: Deadline) -> CheckResult {
    match target.protocol {
        Protocol::Tcp => {
            let stream = connect_tcp(target.socket_addr(), target.datapath, deadline).await?;
            drop(stream);
        }
        Protocol::Udp => {
            connect_udp(target.socket_addr(), target.datapath).await?;
        }
    }
    Ok(())
}
