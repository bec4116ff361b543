//! radius (`check_radius`, Authen::Radius `check_pwd`): an Access-Request with User-Name,
//! User-Password (hidden with the shared secret, RFC 2865 §5.2) and NAS-IP-Address; up only
//! on an Access-Accept whose identifier and Response Authenticator check out (a forged or
//! stray datagram is ignored). One request, no retransmission, as in Perl.

use std::net::IpAddr;

use md5::{Digest, Md5};

use super::net::{Deadline, MAX_LINES, connect_udp, recv_datagram};
use super::outcome::{CheckResult, Failure, FailureKind};
use super::random;
use super::spec::{RadiusSpec, Target};

const ACCESS_REQUEST: u8 = 1;
const ACCESS_ACCEPT: u8 = 2;
const ACCESS_REJECT: u8 = 3;
const USER_NAME: u8 = 1;
const USER_PASSWORD: u8 = 2;
const NAS_IP_ADDRESS: u8 = 4;
const NAS_IPV6_ADDRESS: u8 = 95;

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// RFC 2865 §5.2: the password padded to 16-byte blocks, each XORed with
/// MD5(secret + previous block), the first previous block being the authenticator.
pub(crate) fn hide_password(password: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let mut padded = password.to_vec();
    let len = padded.len().clamp(16, 128).div_ceil(16) * 16;
    padded.resize(len, 0);
    let mut out = Vec::with_capacity(len);
    let mut prev: [u8; 16] = *authenticator;
    for block in padded.chunks(16) {
        let key = md5(&[secret, &prev]);
        let mut c = [0u8; 16];
        for i in 0..16 {
            c[i] = block[i] ^ key[i];
        }
        out.extend_from_slice(&c);
        prev = c;
    }
    out
}

fn attribute(out: &mut Vec<u8>, kind: u8, value: &[u8]) -> Result<(), Failure> {
    let len = u8::try_from(value.len() + 2)
        .map_err(|_| Failure::new(FailureKind::Protocol, "RADIUS attribute too long"))?;
    out.push(kind);
    out.push(len);
    out.extend_from_slice(value);
    Ok(())
}

pub(crate) fn access_request(
    spec: &RadiusSpec,
    id: u8,
    authenticator: &[u8; 16],
    nas: IpAddr,
) -> Result<Vec<u8>, Failure> {
    let mut attrs = Vec::new();
    attribute(&mut attrs, USER_NAME, spec.credentials.login.as_bytes())?;
    let hidden = hide_password(
        spec.credentials.passwd.as_bytes(),
        spec.secret.as_bytes(),
        authenticator,
    );
    attribute(&mut attrs, USER_PASSWORD, &hidden)?;
    match nas {
        IpAddr::V4(a) => attribute(&mut attrs, NAS_IP_ADDRESS, &a.octets())?,
        IpAddr::V6(a) => attribute(&mut attrs, NAS_IPV6_ADDRESS, &a.octets())?,
    }
    let len = u16::try_from(20 + attrs.len())
        .map_err(|_| Failure::new(FailureKind::Protocol, "RADIUS packet too long"))?;
    let mut p = vec![ACCESS_REQUEST, id];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(authenticator);
    p.extend_from_slice(&attrs);
    Ok(p)
}

/// The reply's code when it answers our request: identifier matches and the Response
/// Authenticator is MD5(code | id | length | request authenticator | attributes | secret).
pub(crate) fn reply_code(
    reply: &[u8],
    id: u8,
    authenticator: &[u8; 16],
    secret: &[u8],
) -> Option<u8> {
    if reply.len() < 20 || reply[1] != id {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([reply[2], reply[3]]));
    if len < 20 || len > reply.len() {
        return None;
    }
    let expected = md5(&[&reply[..4], authenticator, &reply[20..len], secret]);
    (reply[4..20] == expected).then_some(reply[0])
}

pub async fn check(spec: &RadiusSpec, target: &Target, deadline: Deadline) -> CheckResult {
    let socket = connect_udp(target.socket_addr(), target.datapath).await?;
    let nas = socket
        .local_addr()
        .map(|a| a.ip())
        .map_err(|e| super::net::io_failure(&e, "local address"))?;
    let mut authenticator = [0u8; 16];
    random::fill(&mut authenticator);
    let id = random::u16() as u8;
    let request = access_request(spec, id, &authenticator, nas)?;
    deadline.io("Access-Request", socket.send(&request)).await?;
    for _ in 0..MAX_LINES {
        let reply = recv_datagram(&socket, deadline, "RADIUS reply").await?;
        match reply_code(&reply, id, &authenticator, spec.secret.as_bytes()) {
            Some(ACCESS_ACCEPT) => return Ok(()),
            Some(ACCESS_REJECT) => return Err(Failure::new(FailureKind::Auth, "Access-Reject")),
            Some(code) => {
                return Err(Failure::new(
                    FailureKind::Protocol,
                    format!("unexpected RADIUS code {code}"),
                ));
            }
            None => continue,
        }
    }
    Err(Failure::new(FailureKind::Protocol, "no valid RADIUS reply"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::spec::Credentials;

    #[test]
    fn password_hiding_round_trips() {
        let auth = [7u8; 16];
        let hidden = hide_password(b"secret-password-longer-than-16", b"s3cr3t", &auth);
        assert_eq!(hidden.len(), 32);
        // Undo it the way a server does.
        let mut prev = auth;
        let mut plain = Vec::new();
        for block in hidden.chunks(16) {
            let key = md5(&[b"s3cr3t", &prev]);
            plain.extend(block.iter().zip(key).map(|(c, k)| c ^ k));
            prev.copy_from_slice(block);
        }
        assert_eq!(&plain[..30], b"secret-password-longer-than-16");
        assert!(plain[30..].iter().all(|&b| b == 0));
        assert_eq!(hide_password(b"", b"x", &auth).len(), 16);
    }

    #[test]
    fn request_layout_and_reply_verification() {
        let spec = RadiusSpec {
            credentials: Credentials {
                login: "bob".into(),
                passwd: "pw".into(),
            },
            secret: "sec".into(),
        };
        let auth = [1u8; 16];
        let p = access_request(&spec, 9, &auth, "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(&p[..2], &[ACCESS_REQUEST, 9]);
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
        assert_eq!(&p[20..25], &[USER_NAME, 5, b'b', b'o', b'b']);
        assert_eq!(&p[p.len() - 6..], &[NAS_IP_ADDRESS, 6, 127, 0, 0, 1]);

        let mut reply = vec![ACCESS_ACCEPT, 9, 0, 20];
        let ra = md5(&[&reply[..4], &auth, b"sec"]);
        reply.extend_from_slice(&ra);
        assert_eq!(reply_code(&reply, 9, &auth, b"sec"), Some(ACCESS_ACCEPT));
        assert_eq!(reply_code(&reply, 8, &auth, b"sec"), None);
        assert_eq!(reply_code(&reply, 9, &auth, b"wrong"), None);
        assert_eq!(reply_code(&reply[..10], 9, &auth, b"sec"), None);
    }
}
