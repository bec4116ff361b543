//! Hostile servers: every check must end down, with the right reason, within its timeout
//! plus 100 ms.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ldirectord::check::spec::{
    CheckKind, DnsSpec, HttpMethod, HttpSpec, Pattern, Protocol, RadiusSpec, Service, SipSpec,
    TlsVerify,
};
use ldirectord::check::{CheckSpec, FailureKind, Verdict, run};
use support::hostile;
use support::*;

const TIMEOUT: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_millis(100);

fn http(addr: SocketAddr, https: bool, receive: Option<&str>) -> CheckSpec {
    let scheme = if https { "https" } else { "http" };
    let h = HttpSpec {
        url: format!("{scheme}://{addr}/"),
        method: HttpMethod::Get,
        host_header: Some(addr.ip().to_string()),
        proxy: false,
        receive: receive.map(|r| Pattern::new(r).unwrap()),
    };
    let mut s = negotiate(Service::Http(h), addr, TIMEOUT);
    s.tls.verify = TlsVerify::None;
    s
}

async fn expect_down_in_time(spec: &CheckSpec, kinds: &[FailureKind]) {
    let (o, took, load_delay) = timed_against_reference(TIMEOUT, run(spec)).await;
    match &o.verdict {
        Verdict::Down(f) => assert!(
            kinds.contains(&f.kind),
            "{:?}: reason {f}, wanted one of {kinds:?}",
            spec.kind.name()
        ),
        v => panic!("expected down, got {v:?}"),
    }
    assert!(
        took <= TIMEOUT + SLACK + load_delay,
        "took {took:?} (a timer armed with it was {load_delay:?} late)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_and_never_answer() {
    let addr = hostile::silent().await;
    expect_down_in_time(&http(addr, false, None), &[FailureKind::Deadline]).await;
    // The line protocols and TLS handshakes hit the same deadline.
    expect_down_in_time(&http(addr, true, None), &[FailureKind::Deadline]).await;
    expect_down_in_time(
        &negotiate(Service::Smtp, addr, TIMEOUT),
        &[FailureKind::Deadline],
    )
    .await;
    expect_down_in_time(
        &negotiate(Service::Nntp, addr, TIMEOUT),
        &[FailureKind::Deadline],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_a_second() {
    let addr = hostile::drip().await;
    expect_down_in_time(&http(addr, false, None), &[FailureKind::Deadline]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_body() {
    let addr = hostile::endless_body().await;
    expect_down_in_time(&http(addr, false, Some("never")), &[FailureKind::TooLarge]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_after_accept() {
    let addr = hostile::reset().await;
    expect_down_in_time(
        &http(addr, false, None),
        &[FailureKind::Reset, FailureKind::Closed],
    )
    .await;
    let addr = hostile::reset_after_request().await;
    expect_down_in_time(
        &http(addr, false, None),
        &[FailureKind::Reset, FailureKind::Closed],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_tls() {
    let addr = hostile::garbage_instead_of_tls().await;
    expect_down_in_time(&http(addr, true, None), &[FailureKind::Tls]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_500() {
    let addr = hostile::status_500().await;
    expect_down_in_time(&http(addr, false, None), &[FailureKind::Status(500)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_301_off_the_real() {
    let addr = hostile::redirect_away().await;
    expect_down_in_time(&http(addr, false, None), &[FailureKind::Redirect]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_without_the_text() {
    let addr = hostile::wrong_page().await;
    expect_down_in_time(&http(addr, false, Some("Welcome")), &[FailureKind::NoMatch]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_of_headers() {
    let addr = hostile::huge_headers().await;
    expect_down_in_time(&http(addr, false, None), &[FailureKind::TooLarge]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close() {
    let addr = hostile::half_close().await;
    expect_down_in_time(&http(addr, false, None), &[FailureKind::Closed]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_udp_services() {
    let addr = udp_server(LOCALHOST, |_| None).await;
    let udp = |service: Service| spec(CheckKind::Negotiate(service), addr, Protocol::Udp, TIMEOUT);
    let dns = Service::Dns(DnsSpec {
        query: "www.example.com".into(),
        receive: Some(Pattern::new(".").unwrap()),
    });
    expect_down_in_time(&udp(dns), &[FailureKind::Deadline]).await;
    let radius = Service::Radius(RadiusSpec {
        credentials: Default::default(),
        secret: "s".into(),
    });
    expect_down_in_time(&udp(radius), &[FailureKind::Deadline]).await;
    let sip = Service::Sip(SipSpec { login: "x".into() });
    expect_down_in_time(&udp(sip), &[FailureKind::Deadline]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connect_is_immediate() {
    let addr = closed_port().await;
    let s = spec(CheckKind::Connect, addr, Protocol::Tcp, TIMEOUT);
    expect_down_in_time(&s, &[FailureKind::Refused]).await;
}
