//! Fake servers for the services (one or two behaviours each), shared by the loopback tests
//! and by `examples/check-servers.rs`, which serves them to the Perl verdict comparison.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::{drain, line_session, read_head, response, serve, serve_at, serve_tls};

/// HTTPS (the fixture certificate): 200 "secure hello" to any GET.
pub async fn https_server() -> SocketAddr {
    serve_tls(|mut s| async move {
        if let Some(head) = read_head(&mut s).await {
            let body = if head.contains("GET /") {
                "secure hello"
            } else {
                "?"
            };
            let _ = s.write_all(&response("200 OK", &[], body)).await;
            let _ = s.shutdown().await;
        }
    })
    .await
}

/// SMTP with a multi-line greeting and EHLO.
pub async fn smtp_server() -> SocketAddr {
    serve(|s| async move {
        line_session(
            s,
            "220-mail.example ESMTP\r\n220 ready\r\n",
            &[
                ("EHLO", Some("250-mail.example\r\n250 PIPELINING\r\n")),
                ("QUIT", None),
            ],
        )
        .await
    })
    .await
}

/// A server that greets with `greeting` and answers nothing else (a refusal, mostly).
pub async fn greeting_only(greeting: &'static str) -> SocketAddr {
    serve(move |s| async move { line_session(s, greeting, &[]).await }).await
}

pub async fn pop_server() -> SocketAddr {
    serve(|s| async move { line_session(s, "+OK POP3 ready\r\n", POP_SCRIPT).await }).await
}

pub async fn pops_server() -> SocketAddr {
    serve_tls(|s| async move { line_session(s, "+OK POP3S ready\r\n", POP_SCRIPT).await }).await
}

pub async fn imap_server() -> SocketAddr {
    serve(imap_session).await
}

/// [`imap_server`] on a given address and port.
pub async fn imap_server_at(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    serve_at(addr, imap_session).await
}

async fn imap_session(s: tokio::net::TcpStream) {
    imap(s, "* OK IMAP4rev1 ready\r\n").await
}

pub async fn imaps_server() -> SocketAddr {
    serve_tls(|s| async move { imap(s, "* OK IMAPS ready\r\n").await }).await
}

/// A tag-aware IMAP session, as far as a check goes: LOGIN succeeds for bob/pw (quoted or
/// not), LOGOUT says BYE and closes, CAPABILITY and NOOP succeed, anything else is BAD.
/// Every command gets its tagged answer: a client waits for it (Net::IMAP::Simple with no
/// deadline at all).
pub async fn imap<S: AsyncRead + AsyncWrite + Unpin>(s: S, greeting: &str) {
    let (r, mut w) = tokio::io::split(s);
    let mut r = BufReader::new(r);
    if w.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut words = line.split_whitespace();
        let tag = words.next().unwrap_or("*").to_string();
        let command = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<&str> = words.map(|w| w.trim_matches('"')).collect();
        let reply = match command.as_str() {
            "LOGIN" if args == ["bob", "pw"] => {
                format!("* CAPABILITY IMAP4rev1\r\n{tag} OK LOGIN completed\r\n")
            }
            "LOGIN" => format!("{tag} NO bad password\r\n"),
            "LOGOUT" => {
                let _ = w
                    .write_all(format!("* BYE\r\n{tag} OK LOGOUT completed\r\n").as_bytes())
                    .await;
                return;
            }
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n"),
            "NOOP" => format!("{tag} OK done\r\n"),
            _ => format!("{tag} BAD unknown command\r\n"),
        };
        if w.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

pub async fn nntp_server() -> SocketAddr {
    serve(|s| async move { line_session(s, "200 news.example ready\r\n", &[("QUIT", None)]).await })
        .await
}

/// DNS over TCP (two-byte length prefix), answering as [`dns_answer`].
pub async fn dns_tcp_server() -> SocketAddr {
    serve(|mut s| async move {
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if s.read_exact(&mut q).await.is_err() {
            return;
        }
        if let Some(a) = dns_answer(&q) {
            let mut framed = (a.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&a);
            let _ = s.write_all(&framed).await;
        }
        drain(&mut s).await;
    })
    .await
}

/// SIP over UDP: 200 OK to an OPTIONS for `ldirectord@test`, silence otherwise.
pub fn sip_answer(req: &[u8]) -> Option<Vec<u8>> {
    req.starts_with(b"OPTIONS sip:ldirectord@test SIP/2.0\r\n")
        .then(|| b"SIP/2.0 200 OK\r\nVia: x\r\nContent-Length: 0\r\n\r\n".to_vec())
}

/// SIP over TCP: 200 OK to any request.
pub async fn sip_tcp_server() -> SocketAddr {
    serve(|mut s| async move {
        if read_head(&mut s).await.is_some() {
            let _ = s
                .write_all(b"SIP/2.0 200 OK\r\nCSeq: 63104 OPTIONS\r\n\r\n")
                .await;
        }
        drain(&mut s).await;
    })
    .await
}

/// simpletcp: after the client's half-close, answers `STATUS\n` with two lines.
pub async fn simpletcp_server() -> SocketAddr {
    serve(|mut s| async move {
        let mut req = Vec::new();
        if s.read_to_end(&mut req).await.is_ok() && req == b"STATUS\n" {
            let _ = s.write_all(b"hello\nSTATUS OK\n").await;
        }
    })
    .await
}

/// simpletcp over UDP: `STATUS OK` to `STATUS\n`.
pub fn simpletcp_answer(req: &[u8]) -> Option<Vec<u8>> {
    (req == b"STATUS\n").then(|| b"STATUS OK\n".to_vec())
}

pub const POP_SCRIPT: &[(&str, Option<&str>)] = &[
    ("USER bob", Some("+OK\r\n")),
    ("PASS pw", Some("+OK logged in\r\n")),
    ("PASS", Some("-ERR denied\r\n")),
    ("QUIT", None),
];

/// Where the next transfer's data connection comes from.
enum FtpData {
    /// PASV: the client connects to this listener.
    Passive(tokio::net::TcpListener),
    /// PORT: the server connects to the client (loopback addresses only).
    Active(SocketAddr),
}

/// An FTP server: any login; `/index.html` holds "<h1>ftp works</h1>". Transfers in passive
/// mode (PASV, answered with `pasv_host` and the data listener's port; the listener is on
/// 127.0.0.1 whatever the reply says) or active mode (PORT, to a loopback address only:
/// Net::FTP, and so the Perl check, uses it).
pub async fn ftp_server(pasv_host: [u8; 4]) -> SocketAddr {
    serve(move |s| async move {
        let (r, mut w) = s.into_split();
        let mut r = tokio::io::BufReader::new(r);
        let _ = w.write_all(b"220 FTP ready\r\n").await;
        let mut data: Option<FtpData> = None;
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let cmd = line.trim_end();
            let (verb, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
            let reply: String = match verb {
                "USER" => "331 password please\r\n".into(),
                "PASS" => "230 logged in\r\n".into(),
                "CWD" => "250 ok\r\n".into(),
                "TYPE" => "200 binary\r\n".into(),
                "PASV" => {
                    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let p = l.local_addr().unwrap().port();
                    data = Some(FtpData::Passive(l));
                    let [a, b, c, d] = pasv_host;
                    format!(
                        "227 Entering Passive Mode ({a},{b},{c},{d},{},{})\r\n",
                        p / 256,
                        p % 256
                    )
                }
                "PORT" => {
                    let n: Vec<u8> = arg.split(',').filter_map(|x| x.parse().ok()).collect();
                    match n[..] {
                        [127, b, c, d, p1, p2] => {
                            let port = u16::from(p1) << 8 | u16::from(p2);
                            data = Some(FtpData::Active(([127, b, c, d], port).into()));
                            "200 PORT ok\r\n".into()
                        }
                        _ => "501 loopback addresses only\r\n".into(),
                    }
                }
                "RETR" if arg != "/index.html" => "550 no such file\r\n".into(),
                "RETR" => {
                    let _ = w.write_all(b"150 opening\r\n").await;
                    let d = match data.take() {
                        Some(FtpData::Passive(l)) => l.accept().await.map(|(d, _)| d),
                        Some(FtpData::Active(to)) => tokio::net::TcpStream::connect(to).await,
                        None => return,
                    };
                    let Ok(mut d) = d else { return };
                    let _ = d.write_all(b"<h1>ftp works</h1>").await;
                    drop(d);
                    "226 done\r\n".into()
                }
                "QUIT" => return,
                _ => "500 what\r\n".into(),
            };
            if w.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// A fake directory: anonymous or bob/pw binds; one entry at dc=example,dc=com.
pub async fn ldap_server() -> SocketAddr {
    serve(|mut s| async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            // Messages here are short: 0x30, one length byte (short or 0x81 form).
            while buf.len() < 2 || buf.len() < msg_len(&buf) {
                let Ok(n) = s.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let len = msg_len(&buf);
            let msg: Vec<u8> = buf.drain(..len).collect();
            let hdr = if msg[1] == 0x81 { 3 } else { 2 };
            let id = msg[hdr + 2];
            let op = msg[hdr + 3];
            let reply = match op {
                0x60 => {
                    let ok = msg.windows(6).any(|w| w == b"cn=bob") && msg.ends_with(b"pw")
                        || msg.ends_with(&[0x04, 0x00, 0x80, 0x00]);
                    let code = if ok { 0 } else { 49 };
                    vec![
                        0x30, 0x0c, 0x02, 0x01, id, 0x61, 0x07, 0x0a, 0x01, code, 0x04, 0x00, 0x04,
                        0x00,
                    ]
                }
                0x63 => {
                    let base_ok = msg.windows(17).any(|w| w == b"dc=example,dc=com");
                    let mut r = Vec::new();
                    if base_ok {
                        let dn = b"dc=example,dc=com";
                        r.extend_from_slice(&[0x30, 26, 0x02, 0x01, id, 0x64, 21, 0x04, 17]);
                        r.extend_from_slice(dn);
                        r.extend_from_slice(&[0x30, 0x00]);
                    }
                    let code = if base_ok { 0 } else { 32 };
                    r.extend_from_slice(&[
                        0x30, 0x0c, 0x02, 0x01, id, 0x65, 0x07, 0x0a, 0x01, code, 0x04, 0x00, 0x04,
                        0x00,
                    ]);
                    r
                }
                _ => return, // unbind
            };
            if s.write_all(&reply).await.is_err() {
                return;
            }
        }
    })
    .await
}

fn msg_len(buf: &[u8]) -> usize {
    match buf.get(1) {
        Some(&0x81) => buf.get(2).map_or(usize::MAX, |&l| 3 + usize::from(l)),
        Some(&l) => 2 + usize::from(l),
        None => usize::MAX,
    }
}

pub fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::rdata::{A, PTR};
    use hickory_proto::rr::{RData, Record, RecordType};
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?.clone();
    let mut r = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    r.add_query(question.clone());
    let name = question.name().clone();
    match question.query_type() {
        RecordType::A if name.to_ascii() == "www.example.com." => {
            r.add_answer(Record::from_rdata(
                name,
                60,
                RData::A(A("192.0.2.10".parse().unwrap())),
            ));
        }
        RecordType::PTR => {
            r.add_answer(Record::from_rdata(
                name,
                60,
                RData::PTR(PTR("host.example.com.".parse().unwrap())),
            ));
        }
        _ => {}
    }
    r.to_vec().ok()
}

pub fn radius_answer(req: &[u8]) -> Option<Vec<u8>> {
    use md5::{Digest, Md5};
    let secret = b"s3cret";
    let (id, auth) = (req[1], &req[4..20]);
    let mut attrs = &req[20..];
    let (mut user, mut hidden) = (Vec::new(), Vec::new());
    while attrs.len() >= 2 {
        let (t, l) = (attrs[0], usize::from(attrs[1]));
        match t {
            1 => user = attrs[2..l].to_vec(),
            2 => hidden = attrs[2..l].to_vec(),
            _ => {}
        }
        attrs = &attrs[l..];
    }
    let mut prev = auth.to_vec();
    let mut password = Vec::new();
    for block in hidden.chunks(16) {
        let key = Md5::new()
            .chain_update(secret)
            .chain_update(&prev)
            .finalize();
        password.extend(block.iter().zip(key).map(|(c, k)| c ^ k));
        prev = block.to_vec();
    }
    while password.last() == Some(&0) {
        password.pop();
    }
    let code = if user == b"bob" && password == b"pw" {
        2
    } else {
        3
    };
    let mut reply = vec![code, id, 0, 20];
    let ra = Md5::new()
        .chain_update(&reply)
        .chain_update(auth)
        .chain_update(secret)
        .finalize();
    reply.extend_from_slice(&ra);
    Some(reply)
}
