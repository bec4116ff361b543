//! Serves the loopback servers of the check tests (`tests/support`) for
//! `tests/compat/compare-checks.sh`, which runs the Perl ldirectord's checks and ours against
//! them. Prints one `NAME ADDRESS:PORT` line per server, then `ready`, and serves until its
//! standard input closes. Every address is a loopback one (127.0.0.1, 127.0.0.2 and ::1).

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::OnceLock;

use support::services::*;
use support::*;

/// Where the `/away` redirect points: another host (127.0.0.2) serving the same page.
static OTHER_HOST: OnceLock<SocketAddr> = OnceLock::new();
/// The web server's own address, for a redirect that names it in full.
static SELF: OnceLock<SocketAddr> = OnceLock::new();

fn route(method: &str, target: &str, _host: &str) -> Vec<u8> {
    let url = |addr: Option<&SocketAddr>| {
        format!(
            "http://{}/ok",
            addr.copied().unwrap_or(([127, 0, 0, 1], 9).into())
        )
    };
    match target {
        "/ok" if method == "HEAD" => b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n".to_vec(),
        "/ok" => response("200 OK", &[], "hello world"),
        "/500" => response("500 Internal Server Error", &[], "hello world"),
        "/wrong" => response("200 OK", &[], "maintenance page"),
        "/moved" => response("301 Moved Permanently", &["Location: /ok"], ""),
        "/moved-full" => response(
            "301 Moved Permanently",
            &[&format!("Location: {}", url(SELF.get()))],
            "",
        ),
        "/away" => response(
            "301 Moved Permanently",
            &[&format!("Location: {}", url(OTHER_HOST.get()))],
            "",
        ),
        "/loop" => response("302 Found", &["Location: /loop"], ""),
        _ => response("404 Not Found", &[], "no"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut servers: Vec<(&str, SocketAddr)> = Vec::new();

    let other = http_server_on("127.0.0.2", route).await;
    let _ = OTHER_HOST.set(other);
    let web = http_server(route).await;
    let _ = SELF.set(web);
    servers.push(("http", web));
    servers.push(("http-other-host", other));
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        servers.push(("http-v6", http_server_on("::1", route).await));
    }
    servers.push(("https", https_server().await));
    servers.push(("closed", closed_port().await));

    servers.push(("silent", hostile::silent().await));
    servers.push(("drip", hostile::drip().await));
    servers.push(("endless-body", hostile::endless_body().await));
    servers.push(("reset", hostile::reset().await));
    servers.push(("reset-after-request", hostile::reset_after_request().await));
    servers.push((
        "garbage-instead-of-tls",
        hostile::garbage_instead_of_tls().await,
    ));
    servers.push(("huge-headers", hostile::huge_headers().await));
    servers.push(("half-close", hostile::half_close().await));

    servers.push(("smtp", smtp_server().await));
    servers.push(("smtp-busy", greeting_only("554 go away\r\n").await));
    servers.push(("pop", pop_server().await));
    servers.push(("pops", pops_server().await));
    servers.push(("imap", imap_server().await));
    servers.push(("imap-bye", greeting_only("* BYE overloaded\r\n").await));
    // Net::IMAP::Simple ignores its port option for an IP address and always connects to
    // 143: give the Perl check one there when this process may bind it.
    if let Ok(a) = imap_server_at(([127, 0, 0, 3], 143).into()).await {
        servers.push(("imap-port-143", a));
    }
    servers.push(("imaps", imaps_server().await));
    servers.push(("nntp", nntp_server().await));
    servers.push((
        "nntp-refusing",
        greeting_only("502 no permission\r\n").await,
    ));
    servers.push(("ftp", ftp_server([127, 0, 0, 1]).await));
    servers.push(("ldap", ldap_server().await));
    servers.push(("dns-udp", udp_server(LOCALHOST, dns_answer).await));
    servers.push(("dns-tcp", dns_tcp_server().await));
    servers.push(("radius", udp_server(LOCALHOST, radius_answer).await));
    servers.push(("sip-udp", udp_server(LOCALHOST, sip_answer).await));
    servers.push(("sip-tcp", sip_tcp_server().await));
    servers.push(("simpletcp", simpletcp_server().await));
    servers.push((
        "simpletcp-udp",
        udp_server(LOCALHOST, simpletcp_answer).await,
    ));

    for (name, addr) in &servers {
        println!("{name} {addr}");
    }
    println!("ready");

    // Serve until the script closes our stdin (or goes away).
    let _ =
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await;
}
