//! The Prometheus endpoint (`metrics=`, an extension; off by default, 127.0.0.1 when
//! only a port is given): `GET /metrics` in the text exposition format 0.0.4.
//!
//! What it shows comes from three places, read at scrape time:
//! * the director's status snapshot: readiness, generation, health and kernel weight of
//!   every real, the fallback, the kernel's sync state;
//! * the director's [`Metrics`]: the check-latency histogram, health changes, failed
//!   kernel changes;
//! * the kernel itself: the IPVS counters of the managed services and their
//!   destinations, read over a netlink socket of the endpoint's own.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (more are closed at once),
//! [`CONNECTION_DEADLINE`] per connection, requests of at most [`MAX_REQUEST`] bytes, and
//! one kernel read at a time, each under the netlink client's own deadline.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore, watch};

use crate::director::{Metrics, MetricsSnapshot, Status};
use crate::ipvs::{Backend, IpvsError, Table};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 8;
/// Time one connection may take, request and answer included.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// Bytes of request head accepted.
pub const MAX_REQUEST: usize = 16 * 1024;

/// What a scrape reads.
pub struct Source<B> {
    pub status: watch::Receiver<Status>,
    pub metrics: Metrics,
    /// The endpoint's own kernel connection; `None` leaves the IPVS counters out.
    pub kernel: Option<Mutex<B>>,
    pub version: &'static str,
}

/// A bound endpoint.
pub struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        Ok(MetricsServer {
            listener: TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the task is dropped.
    pub async fn serve<B: Backend + 'static>(self, source: Source<B>) {
        let source = Arc::new(source);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let source = source.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req| {
                    let source = source.clone();
                    async move { Ok::<_, Infallible>(answer(&req, &source).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(5))
                    .max_buf_size(MAX_REQUEST)
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_DEADLINE, connection).await;
            });
        }
    }
}

/// The endpoint as the daemon runs it; dropping it stops serving.
pub struct Endpoint {
    task: tokio::task::JoinHandle<()>,
    pub addr: SocketAddr,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` and serves in the background, with a kernel connection of its own (or the
/// in-memory kernel of `LDIRECTORD_BACKEND=fake`, which has no counters). A failure is
/// logged and leaves the director running without an endpoint: a monitoring port taken
/// by something else must not stop a load balancer.
pub async fn start(
    addr: SocketAddr,
    status: watch::Receiver<Status>,
    metrics: Metrics,
    fake_kernel: bool,
) -> Option<Endpoint> {
    let server = match MetricsServer::bind(addr).await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!(address = %addr, error = %e, "cannot listen for metrics; running without the endpoint");
            return None;
        }
    };
    let addr = server.local_addr().unwrap_or(addr);
    let version = env!("CARGO_PKG_VERSION");
    let task = if fake_kernel {
        let source: Source<crate::ipvs::FakeKernel> = Source {
            status,
            metrics,
            kernel: None,
            version,
        };
        tokio::spawn(server.serve(source))
    } else {
        let kernel = match crate::ipvs::IpvsClient::connect().await {
            Ok(client) => Some(Mutex::new(client)),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: cannot open IPVS; serving without the IPVS counters");
                None
            }
        };
        tokio::spawn(server.serve(Source {
            status,
            metrics,
            kernel,
            version,
        }))
    };
    tracing::info!(address = %addr, "Serving metrics on http://{addr}/metrics");
    Some(Endpoint { task, addr })
}

async fn answer<B: Backend>(req: &Request<Incoming>, source: &Source<B>) -> Response<Full<Bytes>> {
    let reply = |code: StatusCode, content_type: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = code;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => {
            let table = match &source.kernel {
                Some(kernel) => Some(read_kernel(&mut *kernel.lock().await).await),
                None => None,
            };
            let status = source.status.borrow().clone();
            let text = render(
                source.version,
                &status,
                &source.metrics.snapshot(),
                table.as_ref(),
            );
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text,
            )
        }
        "/" => reply(
            StatusCode::OK,
            "text/html",
            "<html><body><a href=\"/metrics\">metrics</a></body></html>\n".into(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

async fn read_kernel<B: Backend>(kernel: &mut B) -> Result<Table, IpvsError> {
    kernel.table().await
}

/// The exposition text. `kernel` is the IPVS table with its counters (`None`: not read;
/// `Err`: the read failed, shown as `ldirectord_ipvs_scrape_error 1`).
pub fn render(
    version: &str,
    status: &Status,
    counters: &MetricsSnapshot,
    kernel: Option<&Result<Table, IpvsError>>,
) -> String {
    let mut out = Exposition::default();
    out.family(
        "ldirectord_build_info",
        "gauge",
        "Always 1; the version of the running ldirectord.",
    );
    out.sample("ldirectord_build_info", &[("version", version)], 1);
    out.family(
        "ldirectord_ready",
        "gauge",
        "1 once the kernel table has been adopted and programmed.",
    );
    out.sample("ldirectord_ready", &[], u8::from(status.ready));
    out.family(
        "ldirectord_config_generation",
        "gauge",
        "Configurations applied: 1 after the start, one more per applied reload.",
    );
    out.sample("ldirectord_config_generation", &[], status.generation);
    out.family(
        "ldirectord_last_reload_failed",
        "gauge",
        "1 while the last reload was refused (the running configuration stays).",
    );
    out.sample(
        "ldirectord_last_reload_failed",
        &[],
        u8::from(status.last_reload_error.is_some()),
    );
    out.family(
        "ldirectord_kernel_in_sync",
        "gauge",
        "1 when the managed part of the IPVS table was read back equal to the desired one.",
    );
    out.sample(
        "ldirectord_kernel_in_sync",
        &[],
        u8::from(status.kernel.in_sync),
    );
    out.family(
        "ldirectord_kernel_pending_changes",
        "gauge",
        "Changes still missing from the IPVS table at the last read-back (retried).",
    );
    out.sample(
        "ldirectord_kernel_pending_changes",
        &[],
        status.kernel.pending_changes,
    );
    out.family(
        "ldirectord_kernel_apply_errors_total",
        "counter",
        "IPVS changes the kernel refused, per kind of change; op=\"batch\": whole batches whose outcome is unknown.",
    );
    for (op, n) in &counters.apply_errors {
        out.sample("ldirectord_kernel_apply_errors_total", &[("op", op)], n);
    }
    out.sample(
        "ldirectord_kernel_apply_errors_total",
        &[("op", "batch")],
        counters.apply_batch_errors,
    );
    out.family(
        "ldirectord_sync_daemons",
        "gauge",
        "IPVS connection-sync daemons running (with syncdaemon=).",
    );
    out.sample(
        "ldirectord_sync_daemons",
        &[],
        status.kernel.sync_daemons.len(),
    );

    out.family(
        "ldirectord_virtual_in_kernel",
        "gauge",
        "1 when the virtual service exists in the IPVS table.",
    );
    for v in &status.virtuals {
        out.sample(
            "ldirectord_virtual_in_kernel",
            &[("virtual", &v.id)],
            u8::from(v.in_kernel),
        );
    }
    out.family(
        "ldirectord_fallback_active",
        "gauge",
        "1 when no real server is live and the fallback server is wanted in the table.",
    );
    for v in &status.virtuals {
        if let Some(f) = &v.fallback {
            out.sample(
                "ldirectord_fallback_active",
                &[("virtual", &v.id), ("fallback", &f.addr)],
                u8::from(f.active),
            );
        }
    }
    out.family(
        "ldirectord_real_up",
        "gauge",
        "1 when the real server is up, 0 when down or not checked yet (see ldirectord_real_checked).",
    );
    for v in &status.virtuals {
        for r in &v.reals {
            out.sample(
                "ldirectord_real_up",
                &[("virtual", &v.id), ("real", &r.addr)],
                u8::from(r.health == "up"),
            );
        }
    }
    out.family(
        "ldirectord_real_checked",
        "gauge",
        "1 once the real server's health is known (its first check answered).",
    );
    for v in &status.virtuals {
        for r in &v.reals {
            out.sample(
                "ldirectord_real_checked",
                &[("virtual", &v.id), ("real", &r.addr)],
                u8::from(r.health != "unknown"),
            );
        }
    }
    out.family(
        "ldirectord_real_maintenance",
        "gauge",
        "1 when the maintenance directory forces the real server down.",
    );
    for v in &status.virtuals {
        for r in &v.reals {
            out.sample(
                "ldirectord_real_maintenance",
                &[("virtual", &v.id), ("real", &r.addr)],
                u8::from(r.maintenance),
            );
        }
    }
    out.family(
        "ldirectord_real_kernel_weight",
        "gauge",
        "The real server's weight in the IPVS table (absent when it is not in the table).",
    );
    for v in &status.virtuals {
        for r in &v.reals {
            if let Some(w) = r.kernel_weight {
                out.sample(
                    "ldirectord_real_kernel_weight",
                    &[("virtual", &v.id), ("real", &r.addr)],
                    w,
                );
            }
        }
    }
    out.family(
        "ldirectord_real_check_latency_seconds",
        "gauge",
        "How long the real server's last check took.",
    );
    for v in &status.virtuals {
        for r in &v.reals {
            if let Some(ms) = r.latency_ms {
                out.sample_f64(
                    "ldirectord_real_check_latency_seconds",
                    &[("virtual", &v.id), ("real", &r.addr)],
                    ms / 1000.0,
                );
            }
        }
    }
    out.family(
        "ldirectord_real_state_changes_total",
        "counter",
        "Health changes of the real server, by the health it changed to.",
    );
    for ((virtual_id, real, to), n) in &counters.changes {
        out.sample(
            "ldirectord_real_state_changes_total",
            &[("virtual", virtual_id), ("real", real), ("to", to)],
            n,
        );
    }
    out.family(
        "ldirectord_check_duration_seconds",
        "histogram",
        "Duration of health checks, per virtual service and verdict.",
    );
    for ((virtual_id, result), h) in &counters.checks {
        for (bound, n) in h.cumulative() {
            let le = if bound.is_infinite() {
                "+Inf".to_owned()
            } else {
                bound.to_string()
            };
            out.sample(
                "ldirectord_check_duration_seconds_bucket",
                &[("virtual", virtual_id), ("result", result), ("le", &le)],
                n,
            );
        }
        let labels = [("virtual", virtual_id.as_str()), ("result", result)];
        out.sample_f64("ldirectord_check_duration_seconds_sum", &labels, h.sum);
        out.sample("ldirectord_check_duration_seconds_count", &labels, h.count);
    }
    render_kernel(&mut out, status, kernel);
    out.text
}

/// The IPVS counters of the services this director manages.
fn render_kernel(out: &mut Exposition, status: &Status, kernel: Option<&Result<Table, IpvsError>>) {
    let Some(kernel) = kernel else {
        return;
    };
    out.family(
        "ldirectord_ipvs_scrape_error",
        "gauge",
        "1 when the IPVS table could not be read for this scrape.",
    );
    out.sample(
        "ldirectord_ipvs_scrape_error",
        &[],
        u8::from(kernel.is_err()),
    );
    let Ok(table) = kernel else {
        return;
    };
    // Virtual id by kernel service name (`TCP 10.0.0.100:80`).
    let ids: BTreeMap<&str, &str> = status
        .virtuals
        .iter()
        .map(|v| (v.service.as_str(), v.id.as_str()))
        .collect();
    let managed: Vec<(&str, &crate::ipvs::Service, &Vec<crate::ipvs::Dest>)> = table
        .services
        .iter()
        .filter_map(|(s, dests)| {
            let name = s.key.to_string();
            ids.get(name.as_str()).map(|id| (*id, s, dests))
        })
        .collect();
    let counter = |out: &mut Exposition, name: &str, help: &str| {
        out.family(name, "counter", help);
    };
    counter(
        out,
        "ldirectord_ipvs_service_connections_total",
        "Connections scheduled by the virtual service (IPVS counter).",
    );
    for (id, s, _) in &managed {
        out.sample(
            "ldirectord_ipvs_service_connections_total",
            &[("virtual", id)],
            s.stats.conns,
        );
    }
    counter(
        out,
        "ldirectord_ipvs_service_packets_total",
        "Packets through the virtual service (IPVS counter).",
    );
    for (id, s, _) in &managed {
        for (direction, n) in [("in", s.stats.inpkts), ("out", s.stats.outpkts)] {
            out.sample(
                "ldirectord_ipvs_service_packets_total",
                &[("virtual", id), ("direction", direction)],
                n,
            );
        }
    }
    counter(
        out,
        "ldirectord_ipvs_service_bytes_total",
        "Bytes through the virtual service (IPVS counter).",
    );
    for (id, s, _) in &managed {
        for (direction, n) in [("in", s.stats.inbytes), ("out", s.stats.outbytes)] {
            out.sample(
                "ldirectord_ipvs_service_bytes_total",
                &[("virtual", id), ("direction", direction)],
                n,
            );
        }
    }
    counter(
        out,
        "ldirectord_ipvs_real_connections_total",
        "Connections scheduled to the real server (IPVS counter).",
    );
    for (id, _, dests) in &managed {
        for d in dests.iter() {
            out.sample(
                "ldirectord_ipvs_real_connections_total",
                &[("virtual", id), ("real", &d.key().to_string())],
                d.stats.conns,
            );
        }
    }
    counter(
        out,
        "ldirectord_ipvs_real_packets_total",
        "Packets to and from the real server (IPVS counter; \"out\" stays 0 with direct routing).",
    );
    for (id, _, dests) in &managed {
        for d in dests.iter() {
            let real = d.key().to_string();
            for (direction, n) in [("in", d.stats.inpkts), ("out", d.stats.outpkts)] {
                out.sample(
                    "ldirectord_ipvs_real_packets_total",
                    &[("virtual", id), ("real", &real), ("direction", direction)],
                    n,
                );
            }
        }
    }
    counter(
        out,
        "ldirectord_ipvs_real_bytes_total",
        "Bytes to and from the real server (IPVS counter).",
    );
    for (id, _, dests) in &managed {
        for d in dests.iter() {
            let real = d.key().to_string();
            for (direction, n) in [("in", d.stats.inbytes), ("out", d.stats.outbytes)] {
                out.sample(
                    "ldirectord_ipvs_real_bytes_total",
                    &[("virtual", id), ("real", &real), ("direction", direction)],
                    n,
                );
            }
        }
    }
    for (name, help, pick) in [
        (
            "ldirectord_ipvs_real_active_connections",
            "Active connections of the real server (IPVS).",
            (|d: &crate::ipvs::Dest| d.active_conns) as fn(&crate::ipvs::Dest) -> u32,
        ),
        (
            "ldirectord_ipvs_real_inactive_connections",
            "Inactive connections of the real server (IPVS).",
            |d: &crate::ipvs::Dest| d.inactive_conns,
        ),
    ] {
        out.family(name, "gauge", help);
        for (id, _, dests) in &managed {
            for d in dests.iter() {
                out.sample(
                    name,
                    &[("virtual", id), ("real", &d.key().to_string())],
                    pick(d),
                );
            }
        }
    }
}

/// The text format, one family at a time.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.text, " {value}");
    }

    fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        self.labels(labels);
        // Rust prints whole floats without a fraction ("3"), which Prometheus reads fine.
        let _ = writeln!(self.text, " {value}");
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.text.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{k}=\"{}\"", escape(v));
        }
        self.text.push('}');
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }

    #[test]
    fn an_empty_director_renders_its_gauges() {
        let text = render(
            "0.1.0",
            &Status::new("/etc/ha.d/ldirectord.cf"),
            &MetricsSnapshot::default(),
            None,
        );
        assert!(text.contains("ldirectord_build_info{version=\"0.1.0\"} 1\n"));
        assert!(text.contains("ldirectord_ready 0\n"));
        assert!(text.contains("ldirectord_kernel_apply_errors_total{op=\"batch\"} 0\n"));
        assert!(!text.contains("ldirectord_ipvs_scrape_error"));
    }

    #[test]
    fn a_failed_kernel_read_is_a_gauge_not_a_failed_scrape() {
        let failed: Result<Table, IpvsError> = Err(IpvsError::Timeout(Duration::from_secs(1)));
        let text = render(
            "0.1.0",
            &Status::new("x"),
            &MetricsSnapshot::default(),
            Some(&failed),
        );
        assert!(text.contains("ldirectord_ipvs_scrape_error 1\n"));
    }
}
