//! http, https and http_proxy negotiate checks (`check_http`), on hyper's HTTP/1 client
//! connection API over a socket opened here.
//!
//! Verdict as in Perl: the final status must be 2xx and, when receive is set, the raw body
//! must match it (headers are not searched). Redirects are followed like LWP does for GET and
//! HEAD (301, 302, 303, 307, 308; at most 7), but only while they stay on the real server:
//! the new URL must name the real's address or the virtualhost, and the connection always
//! goes to the real's address (LWP would resolve a name and might probe someone else).
//! Anything else is down with the reason.
//!
//! Bounds: response head at most [`HEAD_CAP`] bytes (more is `TooLarge`, e.g. 1 MiB of
//! headers), body at most [`BODY_CAP`] (a larger or endless body is `TooLarge`), one deadline
//! (negotiatetimeout) across every hop.

use std::error::Error as _;
use std::io;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::header::{CONNECTION, HOST, LOCATION, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use url::{Position, Url};

use super::net::{Deadline, Stream, connect_tcp, io_failure};
use super::outcome::{CheckResult, Failure, FailureKind};
use super::spec::{HttpMethod, HttpSpec, Target, TlsOptions};
use super::tls;

/// Largest response head (status line and headers) accepted.
pub const HEAD_CAP: usize = 64 * 1024;
/// Largest response body read; the receive pattern is matched against at most this much.
pub const BODY_CAP: usize = 1024 * 1024;
/// LWP's default `max_redirect`.
pub const MAX_REDIRECTS: usize = 7;
/// What LWP sends; kept so that access-log filters and WAF rules written for the Perl
/// ldirectord keep working.
const USER_AGENT_VALUE: &str = "libwww-perl/6.68";

/// One request: where to connect and what to send.
#[derive(Debug)]
struct Hop {
    url: Url,
    connect: SocketAddr,
    tls: bool,
    request_target: String,
    host: String,
}

fn is_https(url: &Url) -> bool {
    url.scheme() == "https"
}

fn authority(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

fn url_host_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(a) => Some(a.into()),
        url::Host::Ipv6(a) => Some(a.into()),
        url::Host::Domain(_) => None,
    }
}

fn parse_url(s: &str) -> Result<Url, Failure> {
    let url = Url::parse(s)
        .map_err(|e| Failure::new(FailureKind::Protocol, format!("URL {s:?}: {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(Failure::new(
            FailureKind::Unsupported,
            format!("URL scheme {other:?} in {s:?}"),
        )),
    }
}

fn first_hop(spec: &HttpSpec, target: &Target) -> Result<Hop, Failure> {
    let url = parse_url(&spec.url)?;
    if spec.proxy {
        if is_https(&url) {
            return Err(Failure::new(
                FailureKind::Unsupported,
                "https through http_proxy (CONNECT) is not checked",
            ));
        }
        return Ok(Hop {
            connect: target.socket_addr(),
            tls: false,
            request_target: url[..Position::AfterQuery].to_owned(),
            host: authority(&url),
            url,
        });
    }
    let port = url.port_or_known_default().unwrap_or(target.port);
    Ok(Hop {
        // Always the real server, even when a per-real absolute URL names another host.
        connect: SocketAddr::new(target.addr, port),
        tls: is_https(&url),
        request_target: url[Position::BeforePath..Position::AfterQuery].to_owned(),
        host: spec.host_header.clone().unwrap_or_else(|| authority(&url)),
        url,
    })
}

/// Where a redirect may go: the same real server only.
fn redirect_hop(
    spec: &HttpSpec,
    target: &Target,
    from: &Hop,
    location: &str,
) -> Result<Hop, Failure> {
    let url = from.url.join(location).map_err(|e| {
        Failure::new(
            FailureKind::Redirect,
            format!("bad Location {location:?}: {e}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::new(
            FailureKind::Redirect,
            format!("redirect to {url} leaves HTTP"),
        ));
    }
    if spec.proxy {
        if is_https(&url) {
            return Err(Failure::new(
                FailureKind::Redirect,
                format!("redirect to {url} needs CONNECT through the proxy"),
            ));
        }
        return Ok(Hop {
            connect: target.socket_addr(),
            tls: false,
            request_target: url[..Position::AfterQuery].to_owned(),
            host: authority(&url),
            url,
        });
    }
    let same_address = url_host_ip(&url) == Some(target.addr);
    let same_vhost = match (&spec.host_header, url.host_str()) {
        (Some(vhost), Some(host)) => {
            let vhost = vhost.rsplit_once(':').map_or(vhost.as_str(), |(h, p)| {
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    vhost.as_str()
                }
            });
            vhost.eq_ignore_ascii_case(host)
        }
        _ => false,
    };
    if !same_address && !same_vhost {
        return Err(Failure::new(
            FailureKind::Redirect,
            format!("redirect to {url} leaves the real server"),
        ));
    }
    let port = url.port_or_known_default().unwrap_or(target.port);
    Ok(Hop {
        connect: SocketAddr::new(target.addr, port),
        tls: is_https(&url),
        request_target: url[Position::BeforePath..Position::AfterQuery].to_owned(),
        // LWP drops the Host header on redirect, so the new URL's authority is sent.
        host: authority(&url),
        url,
    })
}

fn hyper_failure(err: &hyper::Error, what: &str) -> Failure {
    // `is_parse_too_large` exists only with hyper's server feature; the message is stable.
    if err.is_parse() && err.to_string().contains("too large") {
        return Failure::new(
            FailureKind::TooLarge,
            format!("{what}: response head larger than {HEAD_CAP} bytes"),
        );
    }
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return io_failure(io, what);
        }
        source = e.source();
    }
    let kind = if err.is_incomplete_message() || err.is_closed() || err.is_canceled() {
        FailureKind::Closed
    } else {
        FailureKind::Protocol
    };
    Failure::new(kind, format!("{what}: {err}"))
}

enum Answer {
    Done,
    Redirect(String),
}

async fn exchange(
    hop: &Hop,
    method: HttpMethod,
    receive: Option<&super::spec::Pattern>,
    target: &Target,
    tls_opts: &TlsOptions,
    deadline: Deadline,
) -> Result<Answer, Failure> {
    let tcp = connect_tcp(hop.connect, target.datapath, deadline).await?;
    let stream = if hop.tls {
        let mut opts = tls_opts.clone();
        if opts.server_name.is_none() && hop.url.domain().is_some() {
            opts.server_name = hop.url.domain().map(str::to_owned);
        }
        Stream::Tls(Box::new(
            tls::handshake(tcp, target.addr, &opts, deadline).await?,
        ))
    } else {
        Stream::Plain(tcp)
    };
    let (mut sender, conn) = http1::Builder::new()
        .max_buf_size(HEAD_CAP)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_failure(&e, "HTTP handshake"))?;
    let request = Request::builder()
        .method(method.as_str())
        .uri(hop.request_target.as_str())
        .header(HOST, hop.host.as_str())
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| Failure::new(FailureKind::Protocol, format!("request: {e}")))?;

    let work = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| hyper_failure(&e, "HTTP request"))?;
        let status = response.status();
        if status.is_redirection() {
            let redirectable = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
            if let (true, Some(loc)) = (redirectable, response.headers().get(LOCATION)) {
                let loc = String::from_utf8_lossy(loc.as_bytes()).into_owned();
                return Ok(Answer::Redirect(loc));
            }
        }
        if !status.is_success() {
            return Err(status_failure(status));
        }
        let Some(pattern) = receive else {
            return Ok(Answer::Done);
        };
        let mut body = response.into_body();
        let mut content = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| hyper_failure(&e, "HTTP body"))?;
            if let Some(data) = frame.data_ref() {
                if content.len() + data.len() > BODY_CAP {
                    return Err(Failure::new(
                        FailureKind::TooLarge,
                        format!("body larger than {BODY_CAP} bytes"),
                    ));
                }
                content.extend_from_slice(data);
            }
        }
        if pattern.is_match(&content) {
            Ok(Answer::Done)
        } else {
            Err(Failure::new(
                FailureKind::NoMatch,
                format!("{status}: body does not match {:?}", pattern.as_str()),
            ))
        }
    };

    // The connection future does the actual I/O; it is driven here, in the check's own task,
    // so nothing outlives the check.
    deadline
        .step("HTTP exchange", async {
            tokio::pin!(work);
            tokio::pin!(conn);
            let mut conn_done = false;
            loop {
                tokio::select! {
                    answer = &mut work => return answer,
                    result = &mut conn, if !conn_done => {
                        conn_done = true;
                        if let Err(e) = result {
                            return Err(hyper_failure(&e, "HTTP connection"));
                        }
                    }
                }
            }
        })
        .await
}

fn status_failure(status: StatusCode) -> Failure {
    Failure::new(
        FailureKind::Status(status.as_u16()),
        format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_owned(),
    )
}

pub async fn check(
    spec: &HttpSpec,
    target: &Target,
    tls_opts: &TlsOptions,
    deadline: Deadline,
) -> CheckResult {
    let mut hop = first_hop(spec, target)?;
    let mut redirects = 0;
    loop {
        // A HEAD response has an empty body, which Perl matches receive against too.
        match exchange(
            &hop,
            spec.method,
            spec.receive.as_ref(),
            target,
            tls_opts,
            deadline,
        )
        .await?
        {
            Answer::Done => return Ok(()),
            Answer::Redirect(loc) => {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(too_many(&loc));
                }
                hop = redirect_hop(spec, target, &hop, &loc)?;
            }
        }
    }
}

fn too_many(location: &str) -> Failure {
    Failure::new(
        FailureKind::Redirect,
        format!("more than {MAX_REDIRECTS} redirects (last to {location})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::spec::Protocol;

    fn spec(url: &str, host: Option<&str>) -> HttpSpec {
        HttpSpec {
            url: url.into(),
            method: HttpMethod::Get,
            host_header: host.map(Into::into),
            proxy: false,
            receive: None,
        }
    }

    fn target() -> Target {
        Target {
            addr: "192.0.2.7".parse().unwrap(),
            port: 8080,
            protocol: Protocol::Tcp,
            datapath: None,
        }
    }

    #[test]
    fn first_hop_connects_to_the_real_with_the_vhost() {
        let hop = first_hop(
            &spec("http://192.0.2.7:8080/a/b?c=d", Some("www.example.com")),
            &target(),
        )
        .unwrap();
        assert_eq!(hop.connect, "192.0.2.7:8080".parse().unwrap());
        assert_eq!(hop.request_target, "/a/b?c=d");
        assert_eq!(hop.host, "www.example.com");
        assert!(!hop.tls);
        // A per-real absolute URL naming another host is still checked on the real server.
        let hop = first_hop(&spec("https://other.example/x", None), &target()).unwrap();
        assert_eq!(hop.connect, "192.0.2.7:443".parse().unwrap());
        assert!(hop.tls);
        assert_eq!(hop.host, "other.example");
    }

    #[test]
    fn proxy_requests_use_absolute_form() {
        let mut s = spec("http://www.example.com/x?y", None);
        s.proxy = true;
        let hop = first_hop(&s, &target()).unwrap();
        assert_eq!(hop.connect, "192.0.2.7:8080".parse().unwrap());
        assert_eq!(hop.request_target, "http://www.example.com/x?y");
        assert_eq!(hop.host, "www.example.com");
    }

    #[test]
    fn redirects_stay_on_the_real_server() {
        let s = spec("http://192.0.2.7:8080/a/b", Some("www.example.com"));
        let hop = first_hop(&s, &target()).unwrap();
        let next = redirect_hop(&s, &target(), &hop, "c").unwrap();
        assert_eq!(next.request_target, "/a/c");
        assert_eq!(next.connect, "192.0.2.7:8080".parse().unwrap());
        let next = redirect_hop(&s, &target(), &hop, "https://www.example.com/login").unwrap();
        assert_eq!(next.connect, "192.0.2.7:443".parse().unwrap());
        assert!(next.tls);
        assert_eq!(next.host, "www.example.com");
        let err = redirect_hop(&s, &target(), &hop, "http://elsewhere.example/").unwrap_err();
        assert_eq!(err.kind, FailureKind::Redirect);
        let err = redirect_hop(&s, &target(), &hop, "http://192.0.2.8/").unwrap_err();
        assert_eq!(err.kind, FailureKind::Redirect);
        let err = redirect_hop(&s, &target(), &hop, "ftp://192.0.2.7/").unwrap_err();
        assert_eq!(err.kind, FailureKind::Redirect);
    }
}
