//! One loopback test per check type and service: each starts a small fake server on
//! 127.0.0.1 (or ::1) and runs the real check against it, for an up and a down verdict.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ldirectord::check::spec::{
    CheckKind, Credentials, DnsSpec, ExternalSpec, FtpSpec, HttpMethod, HttpSpec, LdapSpec,
    Pattern, Protocol, RadiusSpec, Service, SimpleTcpSpec, SipSpec, SqlSpec, TlsVerify,
};
use ldirectord::check::{FailureKind, Outcome, Verdict, run};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(3);

fn pattern(s: &str) -> Option<Pattern> {
    Some(Pattern::new(s).unwrap())
}

#[track_caller]
fn assert_up(o: &Outcome) {
    assert_eq!(o.verdict, Verdict::Up, "expected up, got {o:?}");
}

#[track_caller]
fn assert_down(o: &Outcome, kind: FailureKind) {
    match &o.verdict {
        Verdict::Down(f) => assert_eq!(f.kind, kind, "wrong reason: {f}"),
        v => panic!("expected down ({kind}), got {v:?}"),
    }
}

fn http(addr: SocketAddr, path: &str, receive: Option<Pattern>) -> HttpSpec {
    HttpSpec {
        url: format!("http://{addr}{path}"),
        method: HttpMethod::Get,
        host_header: Some(addr.ip().to_string()),
        proxy: false,
        receive,
    }
}

fn route(method: &str, target: &str, host: &str) -> Vec<u8> {
    match target {
        "/ok" if method == "HEAD" => b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n".to_vec(),
        "/ok" => response("200 OK", &[], "hello world"),
        "/vhost" => response("200 OK", &[], host),
        "/500" => response("500 Internal Server Error", &[], "oops"),
        "/moved" => response("301 Moved Permanently", &["Location: /ok"], ""),
        "/by-name" => response("302 Found", &[&format!("Location: http://{host}/ok")], ""),
        "/away" => response("302 Found", &["Location: http://elsewhere.example/"], ""),
        "/loop" => response("302 Found", &["Location: /loop"], ""),
        t if t.starts_with("http://") => response("200 OK", &[], "proxied"),
        _ => response("404 Not Found", &[], "no"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_up_and_refused() {
    let addr = serve(|mut s| async move { drain(&mut s).await }).await;
    assert_up(&run(&spec(CheckKind::Connect, addr, Protocol::Tcp, T)).await);
    let closed = closed_port().await;
    assert_down(
        &run(&spec(CheckKind::Connect, closed, Protocol::Tcp, T)).await,
        FailureKind::Refused,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_loopback() {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let o = run(&spec(CheckKind::Ping, addr, Protocol::Tcp, T)).await;
    assert_up(&o);
    // A connect check over UDP pings, as in Perl.
    assert_up(&run(&spec(CheckKind::Connect, addr, Protocol::Udp, T)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_and_off() {
    let addr = closed_port().await;
    assert_up(&run(&spec(CheckKind::On, addr, Protocol::Tcp, T)).await);
    assert_eq!(
        run(&spec(CheckKind::Off, addr, Protocol::Tcp, T))
            .await
            .verdict,
        Verdict::Skipped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_verdicts() {
    let addr = http_server(route).await;
    let check = |h: HttpSpec| async move { run(&negotiate(Service::Http(h), addr, T)).await };
    assert_up(&check(http(addr, "/ok", pattern("hel+o"))).await);
    assert_up(&check(http(addr, "/ok", None)).await);
    assert_down(
        &check(http(addr, "/ok", pattern("absent"))).await,
        FailureKind::NoMatch,
    );
    assert_down(
        &check(http(addr, "/500", None)).await,
        FailureKind::Status(500),
    );
    assert_down(
        &check(http(addr, "/nothing", None)).await,
        FailureKind::Status(404),
    );
    assert_up(&check(http(addr, "/moved", pattern("hello"))).await);
    assert_down(
        &check(http(addr, "/away", None)).await,
        FailureKind::Redirect,
    );
    assert_down(
        &check(http(addr, "/loop", None)).await,
        FailureKind::Redirect,
    );

    // virtualhost goes into Host, and a redirect naming the virtualhost stays on the real.
    let mut vhost = http(addr, "/vhost", pattern(r"^www\.example\.com$"));
    vhost.host_header = Some("www.example.com".into());
    assert_up(&check(vhost).await);
    let mut by_name = http(addr, "/by-name", pattern("hello"));
    by_name.host_header = Some(format!("www.example.com:{}", addr.port()));
    assert_up(&check(by_name).await);

    // HEAD: no body, so a receive pattern cannot match (as in Perl).
    let mut head = http(addr, "/ok", None);
    head.method = HttpMethod::Head;
    assert_up(&check(head.clone()).await);
    head.receive = pattern("hello");
    assert_down(&check(head).await, FailureKind::NoMatch);

    // http_proxy: the real is a proxy and gets the absolute URL.
    let proxy = HttpSpec {
        url: "http://www.example.com/".into(),
        method: HttpMethod::Get,
        host_header: None,
        proxy: true,
        receive: pattern("proxied"),
    };
    assert_up(&check(proxy).await);

    let closed = closed_port().await;
    assert_down(
        &run(&negotiate(
            Service::Http(http(closed, "/ok", None)),
            closed,
            T,
        ))
        .await,
        FailureKind::Refused,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_over_ipv6() {
    let Ok(probe) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no ::1 here; IPv6 loopback test not applicable");
        return;
    };
    drop(probe);
    let addr = serve_on("::1", |mut s| async move {
        if read_head(&mut s).await.is_some() {
            let _ = s.write_all(&response("200 OK", &[], "v6 ok")).await;
        }
    })
    .await;
    let h = HttpSpec {
        url: format!("http://{addr}/"),
        method: HttpMethod::Get,
        host_header: Some(format!("[{}]", addr.ip())),
        proxy: false,
        receive: pattern("v6"),
    };
    assert_up(&run(&negotiate(Service::Http(h), addr, T)).await);
}

async fn https_server() -> SocketAddr {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_verification_modes() {
    let addr = https_server().await;
    let h = HttpSpec {
        url: format!("https://{addr}/"),
        method: HttpMethod::Get,
        host_header: Some(addr.ip().to_string()),
        proxy: false,
        receive: pattern("secure"),
    };
    let mut s = negotiate(Service::Http(h), addr, T);

    // Default (chain against the system roots): our test CA is unknown, like a self-signed
    // back end under the Perl ldirectord on bookworm.
    assert_down(&run(&s).await, FailureKind::Tls);

    s.tls.verify = TlsVerify::None;
    assert_up(&run(&s).await);

    // Chain against our CA: up although the certificate names check.example, not 127.0.0.1.
    s.tls.verify = TlsVerify::Chain;
    s.tls.ca_file = Some(fixture("tls/ca.pem"));
    assert_up(&run(&s).await);

    // Full verification needs the right name.
    s.tls.verify = TlsVerify::Full;
    assert_down(&run(&s).await, FailureKind::Tls);
    s.tls.server_name = Some("check.example".into());
    assert_up(&run(&s).await);
    s.tls.server_name = Some("other.example".into());
    assert_down(&run(&s).await, FailureKind::Tls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp() {
    let good = serve(|s| async move {
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
    .await;
    assert_up(&run(&negotiate(Service::Smtp, good, T)).await);
    // EHLO refused, HELO accepted: still up, as Net::SMTP falls back.
    let helo = serve(|s| async move {
        line_session(
            s,
            "220 old\r\n",
            &[
                ("EHLO", Some("502 no\r\n")),
                ("HELO", Some("250 hi\r\n")),
                ("QUIT", None),
            ],
        )
        .await
    })
    .await;
    assert_up(&run(&negotiate(Service::Smtp, helo, T)).await);
    let busy = serve(|s| async move { line_session(s, "554 go away\r\n", &[]).await }).await;
    assert_down(
        &run(&negotiate(Service::Smtp, busy, T)).await,
        FailureKind::NoMatch,
    );
}

fn creds(login: &str, passwd: &str) -> Credentials {
    Credentials {
        login: login.into(),
        passwd: passwd.into(),
    }
}

const POP_SCRIPT: &[(&str, Option<&str>)] = &[
    ("USER bob", Some("+OK\r\n")),
    ("PASS pw", Some("+OK logged in\r\n")),
    ("PASS", Some("-ERR denied\r\n")),
    ("QUIT", None),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop_and_pops() {
    let addr =
        serve(|s| async move { line_session(s, "+OK POP3 ready\r\n", POP_SCRIPT).await }).await;
    let pop = |c: Option<Credentials>| Service::Pop {
        tls: false,
        credentials: c,
    };
    assert_up(&run(&negotiate(pop(None), addr, T)).await);
    assert_up(&run(&negotiate(pop(Some(creds("bob", "pw"))), addr, T)).await);
    assert_down(
        &run(&negotiate(pop(Some(creds("bob", "bad"))), addr, T)).await,
        FailureKind::Auth,
    );

    let secure =
        serve_tls(|s| async move { line_session(s, "+OK POP3S ready\r\n", POP_SCRIPT).await })
            .await;
    let mut s = negotiate(
        Service::Pop {
            tls: true,
            credentials: Some(creds("bob", "pw")),
        },
        secure,
        T,
    );
    s.tls.ca_file = Some(fixture("tls/ca.pem"));
    assert_up(&run(&s).await);
    // pops against a plain server: the TLS handshake fails.
    let mut plain = negotiate(
        Service::Pop {
            tls: true,
            credentials: None,
        },
        addr,
        T,
    );
    plain.tls.verify = TlsVerify::None;
    assert_down(&run(&plain).await, FailureKind::Tls);
}

const IMAP_SCRIPT: &[(&str, Option<&str>)] = &[
    (
        "a1 LOGIN \"bob\" \"pw\"",
        Some("* CAPABILITY IMAP4rev1\r\na1 OK LOGIN completed\r\n"),
    ),
    ("a1 LOGIN", Some("a1 NO bad password\r\n")),
    ("a2 LOGOUT", None),
    ("a1 LOGOUT", None),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_and_imaps() {
    let addr =
        serve(|s| async move { line_session(s, "* OK IMAP4rev1 ready\r\n", IMAP_SCRIPT).await })
            .await;
    let imap = |c: Option<Credentials>| Service::Imap {
        tls: false,
        credentials: c,
    };
    assert_up(&run(&negotiate(imap(None), addr, T)).await);
    assert_up(&run(&negotiate(imap(Some(creds("bob", "pw"))), addr, T)).await);
    assert_down(
        &run(&negotiate(imap(Some(creds("bob", "no"))), addr, T)).await,
        FailureKind::Auth,
    );
    let bye = serve(|s| async move { line_session(s, "* BYE overloaded\r\n", &[]).await }).await;
    assert_down(
        &run(&negotiate(imap(None), bye, T)).await,
        FailureKind::NoMatch,
    );

    let secure =
        serve_tls(|s| async move { line_session(s, "* OK IMAPS ready\r\n", IMAP_SCRIPT).await })
            .await;
    let mut s = negotiate(
        Service::Imap {
            tls: true,
            credentials: Some(creds("bob", "pw")),
        },
        secure,
        T,
    );
    s.tls.verify = TlsVerify::None;
    assert_up(&run(&s).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nntp() {
    let good = serve(|s| async move {
        line_session(s, "200 news.example ready\r\n", &[("QUIT", None)]).await
    })
    .await;
    assert_up(&run(&negotiate(Service::Nntp, good, T)).await);
    let bad = serve(|s| async move { line_session(s, "502 no permission\r\n", &[]).await }).await;
    assert_down(
        &run(&negotiate(Service::Nntp, bad, T)).await,
        FailureKind::NoMatch,
    );
}

async fn ftp_server() -> SocketAddr {
    serve(|s| async move {
        let (r, mut w) = s.into_split();
        let mut r = tokio::io::BufReader::new(r);
        let _ = w.write_all(b"220 FTP ready\r\n").await;
        let mut data: Option<tokio::net::TcpListener> = None;
        let mut line = String::new();
        loop {
            line.clear();
            use tokio::io::AsyncBufReadExt;
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let cmd = line.trim_end();
            let reply: String = match cmd.split(' ').next().unwrap_or("") {
                "USER" => "331 password please\r\n".into(),
                "PASS" => "230 logged in\r\n".into(),
                "CWD" => "250 ok\r\n".into(),
                "TYPE" => "200 binary\r\n".into(),
                "PASV" => {
                    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let p = l.local_addr().unwrap().port();
                    data = Some(l);
                    // The address in the reply is deliberately wrong: the check must ignore it.
                    format!(
                        "227 Entering Passive Mode (10,9,8,7,{},{})\r\n",
                        p / 256,
                        p % 256
                    )
                }
                "RETR" => {
                    let Some(l) = data.take() else { return };
                    let _ = w.write_all(b"150 opening\r\n").await;
                    let Ok((mut d, _)) = l.accept().await else {
                        return;
                    };
                    let content: &[u8] = if cmd == "RETR /index.html" {
                        b"<h1>ftp works</h1>"
                    } else {
                        b""
                    };
                    if cmd != "RETR /index.html" {
                        let _ = w.write_all(b"550 no such file\r\n").await;
                        continue;
                    }
                    let _ = d.write_all(content).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp() {
    let addr = ftp_server().await;
    let ftp = |path: &str, receive: Option<Pattern>| {
        Service::Ftp(FtpSpec {
            credentials: creds("anonymous", "ldirectord@host"),
            path: path.into(),
            receive,
        })
    };
    assert_up(&run(&negotiate(ftp("/index.html", pattern("works")), addr, T)).await);
    assert_up(&run(&negotiate(ftp("/index.html", None), addr, T)).await);
    assert_down(
        &run(&negotiate(ftp("/index.html", pattern("absent")), addr, T)).await,
        FailureKind::NoMatch,
    );
    assert_down(
        &run(&negotiate(ftp("/missing", pattern("works")), addr, T)).await,
        FailureKind::NoMatch,
    );
}

/// A fake directory: anonymous or bob/pw binds; one entry at dc=example,dc=com.
async fn ldap_server() -> SocketAddr {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap() {
    let addr = ldap_server().await;
    let ldap = |c: Credentials, base: &str, receive: Option<Pattern>| {
        Service::Ldap(LdapSpec {
            tls: false,
            credentials: c,
            base: base.into(),
            receive,
        })
    };
    assert_up(
        &run(&negotiate(
            ldap(creds("", ""), "dc=example,dc=com", None),
            addr,
            T,
        ))
        .await,
    );
    assert_up(
        &run(&negotiate(
            ldap(
                creds("cn=bob", "pw"),
                "dc=example,dc=com",
                pattern("example"),
            ),
            addr,
            T,
        ))
        .await,
    );
    assert_down(
        &run(&negotiate(
            ldap(creds("cn=bob", "wrong"), "dc=example,dc=com", None),
            addr,
            T,
        ))
        .await,
        FailureKind::Auth,
    );
    assert_down(
        &run(&negotiate(ldap(creds("", ""), "dc=nowhere", None), addr, T)).await,
        FailureKind::NoMatch,
    );
    assert_down(
        &run(&negotiate(
            ldap(creds("", ""), "dc=example,dc=com", pattern("^ou=")),
            addr,
            T,
        ))
        .await,
        FailureKind::NoMatch,
    );
}

fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_udp_and_tcp() {
    let udp = udp_server(LOCALHOST, dns_answer).await;
    let dns = |q: &str, receive: Option<Pattern>| {
        Service::Dns(DnsSpec {
            query: q.into(),
            receive,
        })
    };
    let mut s = spec(
        CheckKind::Negotiate(dns("www.example.com", pattern(r"^192\.0\.2\.10$"))),
        udp,
        Protocol::Udp,
        T,
    );
    assert_up(&run(&s).await);
    s.kind = CheckKind::Negotiate(dns("192.0.2.10", pattern("host.example.com")));
    assert_up(&run(&s).await);
    s.kind = CheckKind::Negotiate(dns("www.example.com", pattern("10.0.0.1")));
    assert_down(&run(&s).await, FailureKind::NoMatch);
    s.kind = CheckKind::Negotiate(dns("unknown.example.com", pattern(".")));
    assert_down(&run(&s).await, FailureKind::NoMatch);
    // An empty receive is always down, as in Perl.
    s.kind = CheckKind::Negotiate(dns("www.example.com", None));
    assert_down(&run(&s).await, FailureKind::NoMatch);

    let tcp = serve(|mut s| async move {
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
    .await;
    let s = spec(
        CheckKind::Negotiate(dns("www.example.com", pattern("192.0.2.10"))),
        tcp,
        Protocol::Tcp,
        T,
    );
    assert_up(&run(&s).await);
}

fn radius_answer(req: &[u8]) -> Option<Vec<u8>> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radius() {
    let addr = udp_server(LOCALHOST, radius_answer).await;
    let radius = |login: &str, pw: &str, secret: &str| {
        Service::Radius(RadiusSpec {
            credentials: creds(login, pw),
            secret: secret.into(),
        })
    };
    let mk = |s: Service| {
        spec(
            CheckKind::Negotiate(s),
            addr,
            Protocol::Udp,
            Duration::from_millis(800),
        )
    };
    assert_up(&run(&mk(radius("bob", "pw", "s3cret"))).await);
    assert_down(
        &run(&mk(radius("bob", "bad", "s3cret"))).await,
        FailureKind::Auth,
    );
    // A wrong secret makes the reply's authenticator fail: ignored, so the check times out.
    assert_down(
        &run(&mk(radius("bob", "pw", "wrong"))).await,
        FailureKind::Deadline,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_over_udp_and_tcp() {
    let udp = udp_server(LOCALHOST, |req| {
        req.starts_with(b"OPTIONS sip:ldirectord@test SIP/2.0\r\n")
            .then(|| b"SIP/2.0 200 OK\r\nVia: x\r\nContent-Length: 0\r\n\r\n".to_vec())
    })
    .await;
    let sip = |login: &str| {
        CheckKind::Negotiate(Service::Sip(SipSpec {
            login: login.into(),
        }))
    };
    assert_up(&run(&spec(sip("ldirectord@test"), udp, Protocol::Udp, T)).await);
    let busy = udp_server(LOCALHOST, |_| {
        Some(b"SIP/2.0 486 Busy Here\r\n\r\n".to_vec())
    })
    .await;
    assert_down(
        &run(&spec(sip("x"), busy, Protocol::Udp, T)).await,
        FailureKind::NoMatch,
    );

    let tcp = serve(|mut s| async move {
        if read_head(&mut s).await.is_some() {
            let _ = s
                .write_all(b"SIP/2.0 200 OK\r\nCSeq: 63104 OPTIONS\r\n\r\n")
                .await;
        }
        drain(&mut s).await;
    })
    .await;
    assert_up(&run(&spec(sip("ldirectord@test"), tcp, Protocol::Tcp, T)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simpletcp_over_tcp_and_udp() {
    let tcp = serve(|mut s| async move {
        let mut req = Vec::new();
        // Read to the client's half-close, then answer.
        if s.read_to_end(&mut req).await.is_ok() && req == b"STATUS\n" {
            let _ = s.write_all(b"hello\nSTATUS OK\n").await;
        }
    })
    .await;
    let simple = |receive: Option<Pattern>| {
        Service::SimpleTcp(SimpleTcpSpec {
            send: b"STATUS\n".to_vec(),
            receive,
        })
    };
    assert_up(&run(&negotiate(simple(pattern("^STATUS OK")), tcp, T)).await);
    assert_down(
        &run(&negotiate(simple(pattern("FAIL")), tcp, T)).await,
        FailureKind::NoMatch,
    );

    let udp = udp_server(LOCALHOST, |req| {
        (req == b"STATUS\n").then(|| b"STATUS OK\n".to_vec())
    })
    .await;
    assert_up(
        &run(&spec(
            CheckKind::Negotiate(simple(pattern("OK"))),
            udp,
            Protocol::Udp,
            T,
        ))
        .await,
    );
}

// --- SQL: minimal MySQL and PostgreSQL wire servers ---------------------------------------

fn mysql_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    p.push(seq);
    p.extend_from_slice(payload);
    p
}

fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

async fn read_mysql_packet(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut hdr = [0u8; 4];
    s.read_exact(&mut hdr).await.ok()?;
    let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], 0]) as usize;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.ok()?;
    Some(payload)
}

async fn mysql_server() -> SocketAddr {
    serve(|mut s| async move {
        // HandshakeV10 with mysql_native_password, protocol 4.1, no SSL, classic EOF.
        let caps: u32 = 0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x20000 | 0x80000;
        let mut h = vec![0x0a];
        h.extend_from_slice(b"8.0.36-fake\0");
        h.extend_from_slice(&7u32.to_le_bytes());
        h.extend_from_slice(b"abcdefgh\0");
        h.extend_from_slice(&(caps as u16).to_le_bytes());
        h.push(0x21);
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        h.push(21);
        h.extend_from_slice(&[0; 10]);
        h.extend_from_slice(b"ijklmnopqrst\0");
        h.extend_from_slice(b"mysql_native_password\0");
        if s.write_all(&mysql_packet(0, &h)).await.is_err() {
            return;
        }
        let Some(response) = read_mysql_packet(&mut s).await else {
            return;
        };
        let ok = [0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];
        let user_ok = response.windows(5).any(|w| w == b"bob\0\x14")
            || response.windows(4).any(|w| w == b"bob\0");
        if !user_ok {
            let mut err = vec![0xff, 0x15, 0x04, b'#'];
            err.extend_from_slice(b"28000Access denied");
            let _ = s.write_all(&mysql_packet(2, &err)).await;
            return;
        }
        if s.write_all(&mysql_packet(2, &ok)).await.is_err() {
            return;
        }
        while let Some(cmd) = read_mysql_packet(&mut s).await {
            match cmd.first() {
                Some(0x03) => {
                    let rows = if cmd[1..].starts_with(b"SELECT 1") {
                        1
                    } else {
                        0
                    };
                    let mut out = mysql_packet(1, &[0x01]);
                    let mut col = Vec::new();
                    for part in [&b"def"[..], b"", b"", b"", b"1", b""] {
                        lenenc_str(&mut col, part);
                    }
                    col.push(0x0c);
                    col.extend_from_slice(&0x3fu16.to_le_bytes());
                    col.extend_from_slice(&1u32.to_le_bytes());
                    col.push(0x08);
                    col.extend_from_slice(&0x81u16.to_le_bytes());
                    col.push(0);
                    col.extend_from_slice(&[0, 0]);
                    out.extend(mysql_packet(2, &col));
                    let eof = [0xfe, 0, 0, 0x02, 0];
                    out.extend(mysql_packet(3, &eof));
                    let mut seq = 4;
                    for _ in 0..rows {
                        out.extend(mysql_packet(seq, &[0x01, b'1']));
                        seq += 1;
                    }
                    out.extend(mysql_packet(seq, &eof));
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
                _ => return, // COM_QUIT or anything else
            }
        }
    })
    .await
}

fn sql(login: &str, query: &str) -> SqlSpec {
    SqlSpec {
        credentials: creds(login, "pw"),
        database: "db".into(),
        query: query.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql() {
    let addr = mysql_server().await;
    assert_up(&run(&negotiate(Service::Mysql(sql("bob", "SELECT 1")), addr, T)).await);
    assert_down(
        &run(&negotiate(
            Service::Mysql(sql("bob", "SELECT none")),
            addr,
            T,
        ))
        .await,
        FailureKind::NoMatch,
    );
    assert_down(
        &run(&negotiate(Service::Mysql(sql("eve", "SELECT 1")), addr, T)).await,
        FailureKind::Auth,
    );
    // A login and a request are required, as in Perl.
    assert_down(
        &run(&negotiate(Service::Mysql(sql("", "SELECT 1")), addr, T)).await,
        FailureKind::Unsupported,
    );
}

fn pg_msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

async fn pgsql_server() -> SocketAddr {
    serve(|mut s| async move {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut startup = vec![0u8; i32::from_be_bytes(len) as usize - 4];
        if s.read_exact(&mut startup).await.is_err() {
            return;
        }
        let _ = s.write_all(&pg_msg(b'R', &3i32.to_be_bytes())).await;
        let mut tag = [0u8; 1];
        if s.read_exact(&mut tag).await.is_err() || s.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut pw = vec![0u8; i32::from_be_bytes(len) as usize - 4];
        if s.read_exact(&mut pw).await.is_err() {
            return;
        }
        if pw != b"pw\0" {
            let mut e = b"SFATAL\0C28P01\0Mpassword authentication failed\0".to_vec();
            e.push(0);
            let _ = s.write_all(&pg_msg(b'E', &e)).await;
            return;
        }
        let mut out = pg_msg(b'R', &0i32.to_be_bytes());
        out.extend(pg_msg(b'Z', b"I"));
        if s.write_all(&out).await.is_err() {
            return;
        }
        loop {
            if s.read_exact(&mut tag).await.is_err() || s.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut body = vec![0u8; i32::from_be_bytes(len) as usize - 4];
            if s.read_exact(&mut body).await.is_err() || tag[0] != b'Q' {
                return;
            }
            let rows = usize::from(body.starts_with(b"SELECT 1"));
            let mut field = b"x\0".to_vec();
            field.extend_from_slice(&0i32.to_be_bytes());
            field.extend_from_slice(&0i16.to_be_bytes());
            field.extend_from_slice(&23i32.to_be_bytes());
            field.extend_from_slice(&4i16.to_be_bytes());
            field.extend_from_slice(&(-1i32).to_be_bytes());
            field.extend_from_slice(&0i16.to_be_bytes());
            let mut desc = 1i16.to_be_bytes().to_vec();
            desc.extend(field);
            let mut out = pg_msg(b'T', &desc);
            for _ in 0..rows {
                let mut row = 1i16.to_be_bytes().to_vec();
                row.extend_from_slice(&1i32.to_be_bytes());
                row.push(b'1');
                out.extend(pg_msg(b'D', &row));
            }
            out.extend(pg_msg(b'C', format!("SELECT {rows}\0").as_bytes()));
            out.extend(pg_msg(b'Z', b"I"));
            if s.write_all(&out).await.is_err() {
                return;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgsql() {
    let addr = pgsql_server().await;
    assert_up(&run(&negotiate(Service::Pgsql(sql("bob", "SELECT 1")), addr, T)).await);
    assert_down(
        &run(&negotiate(
            Service::Pgsql(sql("bob", "SELECT none")),
            addr,
            T,
        ))
        .await,
        FailureKind::NoMatch,
    );
    let mut bad = sql("bob", "SELECT 1");
    bad.credentials.passwd = "wrong".into();
    assert_down(
        &run(&negotiate(Service::Pgsql(bad), addr, T)).await,
        FailureKind::Auth,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_none_is_up() {
    let addr = closed_port().await;
    assert_up(&run(&negotiate(Service::None, addr, T)).await);
}

// --- external and external-perl -----------------------------------------------------------

fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn external(program: std::path::PathBuf, timeout: Duration) -> ldirectord::check::CheckSpec {
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let args = [
        "192.0.2.1".to_string(),
        "80".into(),
        "127.0.0.1".into(),
        "8080".into(),
    ];
    spec(
        CheckKind::External(ExternalSpec { program, args }),
        addr,
        Protocol::Tcp,
        timeout,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_checks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("args");
    let ok = script(
        &dir,
        "ok.sh",
        &format!("#!/bin/sh\necho \"$@\" > {}\nexit 0\n", out.display()),
    );
    assert_up(&run(&external(ok, T)).await);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "192.0.2.1 80 127.0.0.1 8080\n"
    );

    let fail = script(
        &dir,
        "fail.sh",
        "#!/bin/sh\necho 'backend sad' >&2\nexit 3\n",
    );
    let o = run(&external(fail, T)).await;
    assert_down(&o, FailureKind::Exit(3));
    assert!(format!("{o:?}").contains("backend sad"));

    // Death by a signal is up, because Perl's system_timeout returns `$? >> 8`.
    let segv = script(&dir, "segv.sh", "#!/bin/sh\nkill -SEGV $$\n");
    assert_up(&run(&external(segv, T)).await);

    assert_down(
        &run(&external(dir.path().join("missing"), T)).await,
        FailureKind::Exec,
    );

    // Output is capped: a flood does not hurt.
    let flood = script(
        &dir,
        "flood.sh",
        "#!/bin/sh\nhead -c 10000000 /dev/zero\nexit 0\n",
    );
    assert_up(&run(&external(flood, T)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_deadline_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild");
    let hang = script(
        &dir,
        "hang.sh",
        &format!(
            "#!/bin/sh\nsleep 1000 &\necho $! > {}\nwait\n",
            pidfile.display()
        ),
    );
    let timeout = Duration::from_millis(500);
    let (o, took, load_delay) =
        timed_against_reference(timeout, run(&external(hang, timeout))).await;
    assert_down(&o, FailureKind::Deadline);
    assert!(
        took < timeout + Duration::from_millis(100) + load_delay,
        "took {took:?} (a timer armed with it was {load_delay:?} late)"
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The grandchild got SIGKILL with its group; give the kernel a moment to reap it.
    let mut gone = false;
    for _ in 0..50 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.split(' ').nth(2) == Some("Z") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "grandchild {pid} survived the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_perl_semantics() {
    if !std::path::Path::new("/usr/bin/perl").exists() {
        panic!("external-perl needs /usr/bin/perl (perl-base is part of every Debian system)");
    }
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let perl = |name: &str, body: &str| {
        let program = script(&dir, name, body);
        let args = [
            "192.0.2.1".to_string(),
            "80".into(),
            "127.0.0.1".into(),
            "8080".into(),
        ];
        spec(
            CheckKind::ExternalPerl(ExternalSpec { program, args }),
            addr,
            Protocol::Tcp,
            T,
        )
    };
    assert_up(&run(&perl("zero.pl", "exit(0);\n")).await);
    assert_up(&run(&perl("end.pl", "my $x = 1;\n")).await);
    assert_up(&run(&perl("args.pl", "exit($ARGV[3] eq '8080' ? 0 : 1);\n")).await);
    assert_down(
        &run(&perl("one.pl", "exit(1);\n")).await,
        FailureKind::Exit(1),
    );
    assert_down(
        &run(&perl("die.pl", "die 'no';\n")).await,
        FailureKind::Exit(255),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combined_negotiates_then_connects() {
    use ldirectord::check::{CheckState, run_once};
    use std::sync::atomic::{AtomicUsize, Ordering};
    static REQUESTS: AtomicUsize = AtomicUsize::new(0);
    let addr = serve(|mut s| async move {
        if read_head(&mut s).await.is_some() {
            REQUESTS.fetch_add(1, Ordering::SeqCst);
            let _ = s.write_all(&response("200 OK", &[], "ok")).await;
        }
    })
    .await;
    let s = spec(
        CheckKind::Combined {
            connects: 2,
            service: Service::Http(http(addr, "/", None)),
        },
        addr,
        Protocol::Tcp,
        T,
    );
    let mut state = CheckState::default();
    // negotiate, connect, connect, negotiate, connect
    for _ in 0..5 {
        assert_up(&run_once(&s, &mut state).await);
    }
    assert_eq!(REQUESTS.load(Ordering::SeqCst), 2);
}
