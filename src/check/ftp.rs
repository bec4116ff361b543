//! ftp (`check_ftp`, Net::FTP): log in, `CWD /`, binary, passive RETR of the request; the
//! content must match receive. As in Perl, a failing step does not stop the check by
//! itself: it only leaves the content empty, and the verdict is the match.
//!
//! The data connection goes to the real's address at the port the server names (PASV, or
//! EPSV over IPv6), never to the address inside a PASV reply, so a check cannot be bounced
//! elsewhere. The file is read up to [`BODY_CAP`](super::http::BODY_CAP).

use tokio::io::AsyncReadExt;

use super::http::BODY_CAP;
use super::line::{open, read_coded_reply, shorten};
use super::net::{Deadline, LineConn, Stream, connect_tcp};
use super::outcome::{CheckResult, Failure, FailureKind};
use super::spec::{FtpSpec, Target};

/// The port of a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` reply.
pub(crate) fn pasv_port(text: &str) -> Option<u16> {
    let open = text.find('(').map(|i| i + 1).or_else(|| {
        // Some servers omit the parentheses: take the first run of six comma-separated numbers.
        text.get(4..)?
            .find(|c: char| c.is_ascii_digit())
            .map(|i| i + 4)
    })?;
    let numbers: Vec<u16> = text[open..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(6)
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    if numbers.len() != 6 || numbers.iter().any(|&n| n > 255) {
        return None;
    }
    Some(numbers[4] * 256 + numbers[5])
}

/// The port of a `229 Entering Extended Passive Mode (|||port|)` reply.
pub(crate) fn epsv_port(text: &str) -> Option<u16> {
    let inner = &text[text.find('(')? + 1..text.rfind(')')?];
    let delim = inner.chars().next()?;
    let parts: Vec<&str> = inner.split(delim).collect();
    parts.get(3)?.parse().ok()
}

async fn command(
    conn: &mut LineConn<Stream>,
    line: &str,
    what: &str,
) -> Result<(u16, String), Failure> {
    conn.write_all(format!("{line}\r\n").as_bytes(), what)
        .await?;
    read_coded_reply(conn, what).await
}

/// Runs the session; returns the retrieved content, or `None` when a step failed.
async fn fetch(
    spec: &FtpSpec,
    target: &Target,
    deadline: Deadline,
) -> Result<Option<Vec<u8>>, Failure> {
    let mut conn = open(target, None, deadline).await?;
    let (code, text) = read_coded_reply(&mut conn, "FTP greeting").await?;
    if code / 100 != 2 {
        return Err(Failure::new(
            FailureKind::NoMatch,
            format!("greeting: {}", shorten(&text)),
        ));
    }
    let c = &spec.credentials;
    if [c.login.as_str(), c.passwd.as_str(), spec.path.as_str()]
        .iter()
        .any(|s| s.contains(['\r', '\n']))
    {
        return Err(Failure::new(
            FailureKind::Protocol,
            "login, passwd or request contains a line break",
        ));
    }
    let (code, _) = command(&mut conn, &format!("USER {}", c.login), "USER").await?;
    if code == 331 || code == 332 {
        command(&mut conn, &format!("PASS {}", c.passwd), "PASS").await?;
    }
    command(&mut conn, "CWD /", "CWD").await?;
    command(&mut conn, "TYPE I", "TYPE").await?;
    let port = if target.addr.is_ipv4() {
        let (code, text) = command(&mut conn, "PASV", "PASV").await?;
        if code != 227 {
            return Ok(None);
        }
        pasv_port(&text)
    } else {
        let (code, text) = command(&mut conn, "EPSV", "EPSV").await?;
        if code != 229 {
            return Ok(None);
        }
        epsv_port(&text)
    };
    let Some(port) = port else {
        return Err(Failure::new(
            FailureKind::Protocol,
            "unreadable passive reply",
        ));
    };
    let mut data = connect_tcp(
        std::net::SocketAddr::new(target.addr, port),
        target.datapath,
        deadline,
    )
    .await?;
    let (code, _) = command(&mut conn, &format!("RETR {}", spec.path), "RETR").await?;
    if code / 100 != 1 {
        return Ok(None);
    }
    let mut content = Vec::new();
    let read = deadline
        .io("FTP data", async {
            let mut chunk = [0u8; 8192];
            loop {
                let n = data.read(&mut chunk).await?;
                if n == 0 || content.len() + n > BODY_CAP {
                    return Ok(n);
                }
                content.extend_from_slice(&chunk[..n]);
            }
        })
        .await?;
    if read > 0 {
        return Err(Failure::new(
            FailureKind::TooLarge,
            format!("file larger than {BODY_CAP} bytes"),
        ));
    }
    drop(data);
    let (code, _) = read_coded_reply(&mut conn, "RETR completion").await?;
    conn.farewell(b"QUIT\r\n").await;
    Ok((code / 100 == 2).then_some(content))
}

pub async fn check(spec: &FtpSpec, target: &Target, deadline: Deadline) -> CheckResult {
    let content = fetch(spec, target, deadline).await?;
    match (&spec.receive, content) {
        (Some(p), Some(c)) if p.is_match(&c) => Ok(()),
        (Some(p), None) if p.is_match(b"") => Ok(()),
        (None, Some(_)) => Ok(()),
        (Some(p), _) => Err(Failure::new(
            FailureKind::NoMatch,
            format!("{} does not match {:?}", spec.path, p.as_str()),
        )),
        (None, None) => Err(Failure::new(
            FailureKind::NoMatch,
            format!("{} was not retrieved", spec.path),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passive_replies() {
        assert_eq!(
            pasv_port("227 Entering Passive Mode (127,0,0,1,4,1)"),
            Some(1025)
        );
        assert_eq!(pasv_port("227 =127,0,0,1,200,10"), Some(51210));
        assert_eq!(pasv_port("227 nothing"), None);
        assert_eq!(pasv_port("227 (1,2,3,4,5,999)"), None);
        assert_eq!(
            epsv_port("229 Entering Extended Passive Mode (|||6446|)"),
            Some(6446)
        );
        assert_eq!(epsv_port("229 broken"), None);
    }
}
