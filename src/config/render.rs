//! Model → `ldirectord.cf` text: every setting in effect written out, so the output reads back
//! to the same model (and shows an operator what the file means).

use std::fmt::Write as _;
use std::net::IpAddr;

use super::model::*;

/// Renders `config` as an `ldirectord.cf` that reads back to an equal [`Config`].
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    let g = &config.global;
    let yn = |b: bool| if b { "yes" } else { "no" };
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "# {}: every setting in effect, defaults included",
        config.file.display()
    ));
    line(format!("autoreload = {}", yn(g.autoreload)));
    if let Some(c) = &g.callback {
        line(format!("callback = \"{c}\""));
    }
    line(format!("checkinterval = {}", g.checkinterval.as_secs()));
    if let Some(t) = g.checktimeout {
        line(format!("checktimeout = {}", t.as_secs()));
    }
    if let Some(t) = g.negotiatetimeout {
        line(format!("negotiatetimeout = {}", t.as_secs()));
    }
    if g.checkcount != 1 {
        line(format!("checkcount = {}", g.checkcount));
    }
    line(format!("failurecount = {}", g.failurecount));
    line(format!("cleanstop = {}", yn(g.cleanstop)));
    if !g.emailalert.is_empty() {
        line(format!("emailalert = \"{}\"", g.emailalert.join(", ")));
    }
    line(format!("emailalertfreq = {}", g.emailalertfreq.as_secs()));
    line(format!(
        "emailalertstatus = {}",
        alert_statuses(g.emailalertstatus)
    ));
    if let Some(f) = &g.emailalertfrom {
        line(format!("emailalertfrom = {f}"));
    }
    for e in &g.execute {
        line(format!("execute = \"{e}\""));
    }
    for (key, fb) in [("fallback", &g.fallback), ("fallback6", &g.fallback6)] {
        if let Some(fb) = fb {
            let addr = match (&fb.port_name, fb.tcp_port.or(fb.udp_port)) {
                // A name may stand for different ports per protocol (or for one only).
                (Some(name), _) => format!("{}:{name}", host(fb.addr)),
                (None, Some(p)) => host_port(fb.addr, p),
                (None, None) => host(fb.addr),
            };
            line(format!("{key} = {addr} {}", fb.forwarding.as_str()));
        }
    }
    if let Some(c) = &g.fallbackcommand {
        line(format!("fallbackcommand = \"{c}\""));
    }
    line(format!("fork = {}", yn(g.fork)));
    match &g.logfile {
        LogTarget::File(p) => line(format!("logfile = \"{}\"", p.display())),
        LogTarget::Syslog(f) => line(format!("logfile = \"{f}\"")),
    }
    if let Some(d) = &g.maintenancedir {
        line(format!("maintenancedir = {}", d.display()));
    }
    if let Some(m) = g.metrics {
        line(format!("metrics = {m}"));
    }
    line(format!("quiescent = {}", yn(g.quiescent)));
    line(format!("readdquiescent = {}", yn(g.readdquiescent)));
    if let Some(s) = &g.smtp {
        line(format!("smtp = {s}"));
    }
    line(format!("supervised = {}", yn(g.supervised)));
    if let Some(sync) = &g.sync {
        line(format!("syncdaemon = {}", sync.role.as_str()));
        line(format!("syncinterface = {}", sync.interface));
        line(format!("syncid = {}", sync.syncid));
    }
    for v in &config.virtuals {
        out.push('\n');
        render_virtual(&mut out, v, g);
    }
    out
}

fn render_virtual(out: &mut String, v: &Virtual, g: &Global) {
    let yn = |b: bool| if b { "yes" } else { "no" };
    let six = v.endpoint.family() == Family::Inet6;
    let suffix = if six { "6" } else { "" };
    let header = match v.endpoint {
        Endpoint::Addr { addr, .. } => host_port(addr.ip(), addr.port()),
        Endpoint::Fwmark { mark, .. } => mark.to_string(),
    };
    let _ = writeln!(out, "virtual{suffix} = {header}");
    let mut line = |s: String| {
        out.push_str("    ");
        out.push_str(&s);
        out.push('\n');
    };
    if let Endpoint::Addr { protocol, .. } = v.endpoint {
        line(format!("protocol = {}", protocol.as_str()));
    }
    for r in &v.reals {
        let mut s = format!("real{suffix} = ");
        if r.port == 0 {
            s.push_str(&host(r.addr));
        } else {
            s.push_str(&host_port(r.addr, r.port));
        }
        let _ = write!(s, " {} {}", r.forwarding.as_str(), r.weight);
        if let Some(o) = &r.check_override {
            let _ = write!(s, " \"{}\", \"{}\"", o.request, o.receive);
        }
        if r.lower_threshold > 0 {
            let _ = write!(s, " l:{}", r.lower_threshold);
        }
        if r.upper_threshold > 0 {
            let _ = write!(s, " u:{}", r.upper_threshold);
        }
        line(s);
    }
    line(format!("scheduler = {}", v.scheduler));
    if let Some(p) = v.persistent {
        line(format!("persistent = {p}"));
    }
    match v.netmask {
        Some(Netmask::V4(m)) => line(format!("netmask = {m}")),
        Some(Netmask::Prefix(p)) => line(format!("netmask = {p}")),
        None => {}
    }
    if !v.schedflags.is_empty() {
        line(format!("schedflags = {}", v.schedflags.join(",")));
    }
    if matches!(
        v.endpoint,
        Endpoint::Addr {
            protocol: Protocol::Udp,
            ..
        }
    ) {
        line(format!("ops = {}", yn(v.ops)));
    }
    let c = &v.check;
    line(format!("checktype = {}", c.checktype));
    line(format!("service = {}", c.service));
    line(format!("request = \"{}\"", c.request));
    if let Some(r) = &c.receive {
        line(format!("receive = \"{r}\""));
    }
    line(format!("httpmethod = {}", c.httpmethod.as_str()));
    if let Some(h) = &c.virtualhost {
        line(format!("virtualhost = \"{h}\""));
    }
    if let Some(p) = c.checkport {
        line(format!("checkport = {p}"));
    }
    for (key, value) in [
        ("login", &c.login),
        ("passwd", &c.passwd),
        ("database", &c.database),
        ("secret", &c.secret),
    ] {
        if !value.is_empty() {
            line(format!("{key} = \"{value}\""));
        }
    }
    line(format!("checkcommand = \"{}\"", c.checkcommand));
    if c.tlsverify != TlsVerify::Chain {
        line(format!("tlsverify = {}", c.tlsverify.as_str()));
    }
    if let Some(f) = &c.tlscafile {
        line(format!("tlscafile = \"{}\"", f.display()));
    }
    if c.datapath {
        line("checkdatapath = yes".to_string());
    }
    line(format!("checktimeout = {}", c.checktimeout.as_secs()));
    line(format!(
        "negotiatetimeout = {}",
        c.negotiatetimeout.as_secs()
    ));
    // A block's checkinterval only counts with fork=yes (it draws a warning otherwise).
    if g.fork {
        line(format!("checkinterval = {}", c.checkinterval.as_secs()));
    }
    // Deprecated (it draws a warning): written only where it differs from the inherited value.
    if c.checkcount != g.checkcount {
        line(format!("checkcount = {}", c.checkcount));
    }
    line(format!("failurecount = {}", c.failurecount));
    line(format!("quiescent = {}", yn(v.quiescent)));
    line(format!("cleanstop = {}", yn(v.cleanstop)));
    if let Some(fb) = &v.fallback {
        line(format!(
            "fallback{suffix} = {} {}",
            host_port(fb.addr, fb.port),
            fb.forwarding.as_str()
        ));
    }
    if let Some(c) = &v.fallbackcommand {
        line(format!("fallbackcommand = \"{c}\""));
    }
    let e = &v.emailalert;
    if !e.to.is_empty() {
        line(format!("emailalert = \"{}\"", e.to.join(", ")));
    }
    line(format!("emailalertfreq = {}", e.freq.as_secs()));
    line(format!("emailalertstatus = {}", alert_statuses(e.status)));
    if let Some(s) = &e.smtp {
        line(format!("smtp = {s}"));
    }
    if let Some(m) = &v.monitorfile {
        line(format!("monitorfile = \"{}\"", m.display()));
    }
    if let Some(s) = &v.servicename {
        line(format!("servicename = {s}"));
    }
    if let Some(s) = &v.comment {
        line(format!("comment = {s}"));
    }
}

fn alert_statuses(s: AlertStatuses) -> String {
    if s == AlertStatuses::ALL {
        "all".into()
    } else if s == AlertStatuses::NONE {
        "none".into()
    } else {
        s.names().join(",")
    }
}

fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

fn host_port(ip: IpAddr, port: u16) -> String {
    format!("{}:{port}", host(ip))
}
