//! sip (`check_sip`): an OPTIONS request over the virtual's protocol; the reply's first line
//! must start with `SIP/2.0 200 OK`, and the header block must end (blank line, or end of
//! stream over TCP) before the deadline. The request is byte for byte the Perl one, Via
//! naming the local address and port; unlike Perl nothing is printed to stdout.

use std::net::SocketAddr;

use super::line::{open, shorten};
use super::net::{Deadline, MAX_LINES, Stream, connect_udp, recv_datagram};
use super::outcome::{CheckResult, Failure, FailureKind};
use super::random;
use super::spec::{Protocol, SipSpec, Target};

pub(crate) fn request(login: &str, local: SocketAddr, call_id: u64) -> String {
    let via = match local {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    format!(
        "OPTIONS sip:{login} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {via};branch=z9hG4bKhjhs8ass877\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{login}>\r\n\
         From: <sip:{login}>;tag=1928301774\r\n\
         Call-ID: {call_id:016x}\r\n\
         CSeq: 63104 OPTIONS\r\n\
         Contact: <sip:{login}>\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn judge_first(line: &[u8]) -> CheckResult {
    if line.starts_with(b"SIP/2.0 200 OK") {
        Ok(())
    } else {
        Err(Failure::new(
            FailureKind::NoMatch,
            format!("reply: {}", shorten(&String::from_utf8_lossy(line))),
        ))
    }
}

pub async fn check(spec: &SipSpec, target: &Target, deadline: Deadline) -> CheckResult {
    if spec.login.contains(['\r', '\n']) {
        return Err(Failure::new(
            FailureKind::Protocol,
            "login contains a line break",
        ));
    }
    let call_id = random::u64();
    match target.protocol {
        Protocol::Tcp => {
            let mut conn = open(target, None, deadline).await?;
            let local = match conn_local(&conn) {
                Some(a) => a,
                None => return Err(Failure::new(FailureKind::Io, "no local address")),
            };
            conn.write_all(request(&spec.login, local, call_id).as_bytes(), "OPTIONS")
                .await?;
            let first = conn.read_line("reply").await.map_err(|f| {
                if f.kind == FailureKind::Closed {
                    Failure::new(FailureKind::NoMatch, "no reply")
                } else {
                    f
                }
            })?;
            judge_first(&first)?;
            for _ in 0..MAX_LINES {
                match conn.read_line("reply headers").await {
                    Ok(line) if line.is_empty() => return Ok(()),
                    Ok(_) => {}
                    Err(f) if f.kind == FailureKind::Closed => return Ok(()),
                    Err(f) => return Err(f),
                }
            }
            Err(Failure::new(FailureKind::TooLarge, "header block too long"))
        }
        Protocol::Udp => {
            let socket = connect_udp(target.socket_addr(), target.datapath).await?;
            let local = socket
                .local_addr()
                .map_err(|e| super::net::io_failure(&e, "local address"))?;
            let req = request(&spec.login, local, call_id);
            deadline.io("OPTIONS", socket.send(req.as_bytes())).await?;
            let mut first: Option<Vec<u8>> = None;
            for _ in 0..MAX_LINES {
                let datagram = recv_datagram(&socket, deadline, "reply").await?;
                for line in datagram.split_inclusive(|&b| b == b'\n') {
                    let line = line.strip_suffix(b"\n").unwrap_or(line);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    match &first {
                        None => {
                            judge_first(line)?;
                            first = Some(line.to_vec());
                        }
                        Some(_) if line.is_empty() => return Ok(()),
                        Some(_) => {}
                    }
                }
            }
            Err(Failure::new(FailureKind::TooLarge, "header block too long"))
        }
    }
}

fn conn_local(conn: &super::net::LineConn<Stream>) -> Option<SocketAddr> {
    conn.local_addr()
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_is_the_perl_one() {
        let r = super::request("ldirectord@host", "127.0.0.1:5070".parse().unwrap(), 0xab);
        assert!(r.starts_with("OPTIONS sip:ldirectord@host SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKhjhs8ass877\r\n"));
        assert!(r.contains("Call-ID: 00000000000000ab\r\n"));
        assert!(r.ends_with("Content-Length: 0\r\n\r\n"));
    }
}
