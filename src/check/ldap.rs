//! ldap and ldaps (`check_ldap`, Net::LDAP): bind (simple when login and passwd are both
//! set, anonymous otherwise), then a base-scope search of the request's base with the
//! filter `(objectClass=*)`; up when exactly one entry comes back and, if receive is set,
//! its DN matches. ldaps speaks TLS from the first byte. The deadline is checktimeout, the
//! Perl alarm.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::ber::{self, BerError, Element, Reader};
use super::line::open;
use super::net::{Deadline, LineConn, Stream};
use super::outcome::{CheckResult, Failure, FailureKind};
use super::spec::{LdapSpec, Target};

/// Largest LDAP message accepted (a base search returns one entry).
pub const MESSAGE_CAP: usize = 1024 * 1024;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const ENUMERATED: u8 = 0x0a;
const BOOLEAN: u8 = 0x01;
const BIND_REQUEST: u8 = 0x60;
const BIND_RESPONSE: u8 = 0x61;
const UNBIND_REQUEST: u8 = 0x42;
const SEARCH_REQUEST: u8 = 0x63;
const SEARCH_ENTRY: u8 = 0x64;
const SEARCH_DONE: u8 = 0x65;
const AUTH_SIMPLE: u8 = 0x80;
const FILTER_PRESENT: u8 = 0x87;

fn message(id: u32, op: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    ber::put_int(&mut inner, INTEGER, id);
    inner.extend_from_slice(op);
    let mut out = Vec::new();
    ber::put(&mut out, SEQUENCE, &inner);
    out
}

pub(crate) fn bind_request(id: u32, dn: &str, password: &str) -> Vec<u8> {
    let mut body = Vec::new();
    ber::put_int(&mut body, INTEGER, 3);
    ber::put(&mut body, OCTET_STRING, dn.as_bytes());
    ber::put(&mut body, AUTH_SIMPLE, password.as_bytes());
    let mut op = Vec::new();
    ber::put(&mut op, BIND_REQUEST, &body);
    message(id, &op)
}

pub(crate) fn search_request(id: u32, base: &str) -> Vec<u8> {
    let mut body = Vec::new();
    ber::put(&mut body, OCTET_STRING, base.as_bytes());
    ber::put_int(&mut body, ENUMERATED, 0); // scope: baseObject
    ber::put_int(&mut body, ENUMERATED, 0); // derefAliases: never
    ber::put_int(&mut body, INTEGER, 0); // sizeLimit
    ber::put_int(&mut body, INTEGER, 0); // timeLimit
    ber::put(&mut body, BOOLEAN, &[0]); // typesOnly
    ber::put(&mut body, FILTER_PRESENT, b"objectClass");
    ber::put(&mut body, SEQUENCE, &[]); // all attributes
    let mut op = Vec::new();
    ber::put(&mut op, SEARCH_REQUEST, &body);
    message(id, &op)
}

fn unbind_request(id: u32) -> Vec<u8> {
    let mut op = Vec::new();
    ber::put(&mut op, UNBIND_REQUEST, &[]);
    message(id, &op)
}

/// A parsed server message: id, operation tag and the operation's content.
#[derive(Debug)]
pub(crate) struct Reply {
    pub id: i64,
    pub op: u8,
    pub body: Vec<u8>,
}

pub(crate) fn parse_reply(e: Element<'_>) -> Result<Reply, BerError> {
    if e.tag != SEQUENCE {
        return Err(BerError::UnexpectedTag {
            found: e.tag,
            wanted: SEQUENCE,
        });
    }
    let mut r = Reader::new(e.content);
    let id = r.int(INTEGER)?;
    let op = r.next()?;
    Ok(Reply {
        id,
        op: op.tag,
        body: op.content.to_vec(),
    })
}

/// resultCode and diagnosticMessage of an LDAPResult.
pub(crate) fn result_code(body: &[u8]) -> Result<(i64, String), BerError> {
    let mut r = Reader::new(body);
    let code = r.int(ENUMERATED)?;
    let _matched = r.expect(OCTET_STRING)?;
    let diag = r.expect(OCTET_STRING)?;
    Ok((code, String::from_utf8_lossy(diag.content).into_owned()))
}

pub(crate) fn entry_dn(body: &[u8]) -> Result<Vec<u8>, BerError> {
    Ok(Reader::new(body).expect(OCTET_STRING)?.content.to_vec())
}

struct Messages<S> {
    conn: LineConn<S>,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Messages<S> {
    async fn next(&mut self, deadline: Deadline) -> Result<Reply, Failure> {
        let protocol = |e: BerError| match e {
            BerError::TooLarge(_) => {
                Failure::new(FailureKind::TooLarge, format!("LDAP reply: {e}"))
            }
            e => Failure::new(FailureKind::Protocol, format!("LDAP reply: {e}")),
        };
        loop {
            if let Some((e, used)) = ber::element(&self.buf, MESSAGE_CAP).map_err(protocol)? {
                let reply = parse_reply(e).map_err(protocol)?;
                self.buf.drain(..used);
                return Ok(reply);
            }
            let mut chunk = [0u8; 4096];
            let stream = self.conn.stream_mut();
            let n = deadline.io("LDAP reply", stream.read(&mut chunk)).await?;
            if n == 0 {
                return Err(Failure::new(FailureKind::Closed, "LDAP connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

pub async fn check(
    spec: &LdapSpec,
    target: &Target,
    tls: Option<&super::spec::TlsOptions>,
    deadline: Deadline,
) -> CheckResult {
    let conn: LineConn<Stream> = open(target, tls, deadline).await?;
    let mut m = Messages {
        conn,
        buf: Vec::new(),
    };
    let c = &spec.credentials;
    let (dn, pw) = if !c.login.is_empty() && !c.passwd.is_empty() {
        (c.login.as_str(), c.passwd.as_str())
    } else {
        ("", "")
    };
    m.conn.write_all(&bind_request(1, dn, pw), "bind").await?;
    let reply = loop {
        let r = m.next(deadline).await?;
        if r.id == 1 {
            break r;
        }
    };
    if reply.op != BIND_RESPONSE {
        return Err(Failure::new(
            FailureKind::Protocol,
            format!("bind answered with op {:#04x}", reply.op),
        ));
    }
    let (code, diag) = result_code(&reply.body)
        .map_err(|e| Failure::new(FailureKind::Protocol, format!("bind result: {e}")))?;
    if code != 0 {
        return Err(Failure::new(
            FailureKind::Auth,
            format!("bind failed: result {code} {diag}"),
        ));
    }
    m.conn
        .write_all(&search_request(2, &spec.base), "search")
        .await?;
    let mut dns = Vec::new();
    loop {
        let r = m.next(deadline).await?;
        if r.id != 2 {
            continue;
        }
        match r.op {
            SEARCH_ENTRY => {
                let dn = entry_dn(&r.body)
                    .map_err(|e| Failure::new(FailureKind::Protocol, format!("entry: {e}")))?;
                dns.push(dn);
                if dns.len() > 1000 {
                    return Err(Failure::new(
                        FailureKind::TooLarge,
                        "more than 1000 entries",
                    ));
                }
            }
            SEARCH_DONE => break,
            _ => {} // references and intermediate responses do not count
        }
    }
    m.conn.farewell(&unbind_request(3)).await;
    if dns.len() != 1 {
        return Err(Failure::new(
            FailureKind::NoMatch,
            format!(
                "base search of {:?} returned {} entries",
                spec.base,
                dns.len()
            ),
        ));
    }
    match &spec.receive {
        Some(p) if !p.is_match(&dns[0]) => Err(Failure::new(
            FailureKind::NoMatch,
            format!(
                "DN {:?} does not match {:?}",
                String::from_utf8_lossy(&dns[0]),
                p.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_bind_bytes() {
        // The classic anonymous simple bind, as ldapsearch -x sends it.
        assert_eq!(
            bind_request(1, "", ""),
            [
                0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00
            ]
        );
    }

    #[test]
    fn search_request_bytes() {
        let s = search_request(2, "dc=x");
        assert_eq!(
            s,
            [
                0x30, 0x29, 0x02, 0x01, 0x02, 0x63, 0x24, 0x04, 0x04, b'd', b'c', b'=', b'x', 0x0a,
                0x01, 0x00, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00,
                0x87, 0x0b, b'o', b'b', b'j', b'e', b'c', b't', b'C', b'l', b'a', b's', b's', 0x30,
                0x00
            ]
        );
    }

    #[test]
    fn replies_parse() {
        // BindResponse success: id 1, resultCode 0, matchedDN "", diag "".
        let bytes = [
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        let (e, used) = ber::element(&bytes, 100).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        let r = parse_reply(e).unwrap();
        assert_eq!((r.id, r.op), (1, BIND_RESPONSE));
        assert_eq!(result_code(&r.body).unwrap(), (0, String::new()));
        assert!(
            parse_reply(Element {
                tag: 0x31,
                content: &[]
            })
            .is_err()
        );
        assert!(result_code(&[0x0a]).is_err());
    }
}
