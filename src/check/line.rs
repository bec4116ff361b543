//! Shared plumbing for the text protocols: open (with optional TLS) and read replies.

use super::net::{Deadline, LineConn, MAX_LINES, Stream, connect_tcp};
use super::outcome::{Failure, FailureKind};
use super::spec::{Target, TlsOptions};
use super::tls;

/// Connects to the target, with TLS first when `tls` is given (pops, imaps, ldaps, https).
pub async fn open(
    target: &Target,
    tls_opts: Option<&TlsOptions>,
    deadline: Deadline,
) -> Result<LineConn<Stream>, Failure> {
    let tcp = connect_tcp(target.socket_addr(), target.datapath, deadline).await?;
    let stream = match tls_opts {
        Some(opts) => Stream::Tls(Box::new(
            tls::handshake(tcp, target.addr, opts, deadline).await?,
        )),
        None => Stream::Plain(tcp),
    };
    Ok(LineConn::new(stream, deadline))
}

/// A numbered reply as SMTP and FTP send them (Net::Cmd): `250-more` lines continue,
/// `250 last` ends. Returns the code and the text of the last line.
pub async fn read_coded_reply<S>(
    conn: &mut LineConn<S>,
    what: &str,
) -> Result<(u16, String), Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for _ in 0..MAX_LINES {
        let line = conn.read_line(what).await?;
        let text = String::from_utf8_lossy(&line).into_owned();
        let code = text
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code else {
            return Err(Failure::new(
                FailureKind::Protocol,
                format!("{what}: not a numbered reply: {}", shorten(&text)),
            ));
        };
        if text.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text));
        }
    }
    Err(Failure::new(
        FailureKind::TooLarge,
        format!("{what}: more than {MAX_LINES} continuation lines"),
    ))
}

/// The first 120 characters of a reply, for failure details.
pub fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(120).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn coded_replies_fold_continuations() {
        let (client, mut server) = tokio::io::duplex(4096);
        server
            .write_all(b"250-first\r\n250-second\r\n250 last\r\n220 next\r\nhello\r\n")
            .await
            .unwrap();
        let mut conn = LineConn::new(client, Deadline::after(Duration::from_secs(1)));
        assert_eq!(
            read_coded_reply(&mut conn, "x").await.unwrap(),
            (250, "250 last".into())
        );
        assert_eq!(read_coded_reply(&mut conn, "x").await.unwrap().0, 220);
        let err = read_coded_reply(&mut conn, "x").await.unwrap_err();
        assert_eq!(err.kind, FailureKind::Protocol);
    }
}
