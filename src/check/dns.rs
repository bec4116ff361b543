//! dns (`check_dns`, Net::DNS `search`): ask the real server itself for the request name
//! (a PTR query when the request is an IP address, else A) over UDP, or TCP when the
//! virtual is TCP; a truncated UDP answer is asked again over TCP, as Net::DNS does. Up
//! when an A address or PTR name in the answer matches receive; an empty receive is always
//! down, as in Perl. The resolver's search list is not applied: the name is asked as given.
//!
//! Messages are built and parsed with hickory-proto (no resolver), over sockets opened here.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::net::{Deadline, MAX_LINES, connect_tcp, connect_udp, recv_datagram};
use super::outcome::{CheckResult, Failure, FailureKind};
use super::random;
use super::spec::{DnsSpec, Pattern, Protocol, Target};

pub(crate) fn build_query(name: &str, id: u16) -> Result<Vec<u8>, Failure> {
    let (qname, qtype) = match name.parse::<IpAddr>() {
        Ok(ip) => (Name::from(ip), RecordType::PTR),
        Err(_) => {
            let mut n = Name::from_ascii(name).map_err(|e| {
                Failure::new(FailureKind::Protocol, format!("query name {name:?}: {e}"))
            })?;
            n.set_fqdn(true);
            (n, RecordType::A)
        }
    };
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(qname, qtype));
    message
        .to_vec()
        .map_err(|e| Failure::new(FailureKind::Protocol, format!("encode query: {e}")))
}

/// The strings Perl matches receive against: A addresses and PTR names (no trailing dot).
pub(crate) fn answer_strings(message: &Message) -> Vec<String> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::PTR(p) => Some(p.0.to_utf8().trim_end_matches('.').to_owned()),
            _ => None,
        })
        .collect()
}

fn parse_reply(bytes: &[u8], id: u16) -> Option<Message> {
    let m = Message::from_vec(bytes).ok()?;
    (m.metadata.id == id && m.metadata.message_type == MessageType::Response).then_some(m)
}

async fn ask_tcp(
    target: &Target,
    query: &[u8],
    id: u16,
    deadline: Deadline,
) -> Result<Message, Failure> {
    let mut stream = connect_tcp(target.socket_addr(), target.datapath, deadline).await?;
    let len = u16::try_from(query.len())
        .map_err(|_| Failure::new(FailureKind::Protocol, "query too long"))?;
    let bytes = deadline
        .io("DNS over TCP", async {
            let mut framed = len.to_be_bytes().to_vec();
            framed.extend_from_slice(query);
            stream.write_all(&framed).await?;
            let mut lenbuf = [0u8; 2];
            stream.read_exact(&mut lenbuf).await?;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(lenbuf))];
            stream.read_exact(&mut reply).await?;
            Ok(reply)
        })
        .await?;
    parse_reply(&bytes, id)
        .ok_or_else(|| Failure::new(FailureKind::Protocol, "unreadable or mismatched DNS reply"))
}

async fn ask_udp(
    target: &Target,
    query: &[u8],
    id: u16,
    deadline: Deadline,
) -> Result<Message, Failure> {
    let socket = connect_udp(target.socket_addr(), target.datapath).await?;
    deadline.io("DNS query", socket.send(query)).await?;
    // Stray or forged datagrams are skipped; only a reply with our id counts.
    for _ in 0..MAX_LINES {
        let datagram = recv_datagram(&socket, deadline, "DNS reply").await?;
        if let Some(m) = parse_reply(&datagram, id) {
            return Ok(m);
        }
    }
    Err(Failure::new(FailureKind::Protocol, "no matching DNS reply"))
}

fn judge(message: &Message, receive: &Pattern) -> CheckResult {
    let answers = answer_strings(message);
    if answers.is_empty() {
        return Err(Failure::new(
            FailureKind::NoMatch,
            format!("no answer ({})", message.metadata.response_code),
        ));
    }
    if answers.iter().any(|a| receive.is_match(a.as_bytes())) {
        Ok(())
    } else {
        Err(Failure::new(
            FailureKind::NoMatch,
            format!("answers {answers:?} do not match {:?}", receive.as_str()),
        ))
    }
}

pub async fn check(spec: &DnsSpec, target: &Target, deadline: Deadline) -> CheckResult {
    let Some(receive) = &spec.receive else {
        return Err(Failure::new(
            FailureKind::NoMatch,
            "receive is empty: a dns check needs it (always down in Perl too)",
        ));
    };
    let id = random::u16();
    let query = build_query(&spec.query, id)?;
    let reply = match target.protocol {
        Protocol::Tcp => ask_tcp(target, &query, id, deadline).await?,
        Protocol::Udp => {
            let reply = ask_udp(target, &query, id, deadline).await?;
            if reply.metadata.truncation {
                ask_tcp(target, &query, id, deadline).await?
            } else {
                reply
            }
        }
    };
    judge(&reply, receive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_a_or_ptr() {
        let q = build_query("www.example.com", 0x1234).unwrap();
        // id, flags RD, 1 question; QTYPE A (1), QCLASS IN (1) at the end.
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[4..6], &[0, 1]);
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1]);
        let m = Message::from_vec(&build_query("192.0.2.1", 1).unwrap()).unwrap();
        assert_eq!(m.queries[0].query_type(), RecordType::PTR);
        assert_eq!(m.queries[0].name().to_ascii(), "1.2.0.192.in-addr.arpa.");
    }
}
