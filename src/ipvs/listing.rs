//! The table as text, exactly as `ipvsadm -L` / `ipvsadm -S` (version 1.31) print it, and
//! as JSON. Pure: the caller fetches the table and supplies name resolution.
//!
//! The layouts, widths and quirks follow ipvsadm.c 1.31 line by line, including those an
//! operator's scripts may depend on: IPv4 names cut at 33/28 characters, `%d` of a fwmark
//! (marks above 2^31 print negative), `(null)` for forwarding methods ipvsadm has no name
//! for, and its sort comparator, whose unsigned subtraction wraps (so 10.x sorts after
//! 200.x) — reproduced with glibc's merge sort so that ties and wraps order alike.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::model::{
    Daemon, DaemonState, Dest, Family, Forward, Info, Netmask, Protocol, Service, ServiceFlags,
    ServiceKey, Stats, Table, Timeouts, TunnelFlags, TunnelType,
};

/// Which columns the listing shows (`ipvsadm -L` options). When several are given,
/// ipvsadm honours the first of: stats, rate, thresholds, persistent-conn, tun-info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Default,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    TunInfo,
}

/// Options of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOptions {
    pub view: View,
    /// `-n`: addresses and ports as numbers.
    pub numeric: bool,
    /// `--exact`: counters in full instead of K/M/G/T.
    pub exact: bool,
    /// `--sort` (the default) or `--nosort` (the kernel's order).
    pub sort: bool,
}

impl Default for ListOptions {
    fn default() -> ListOptions {
        ListOptions {
            view: View::Default,
            numeric: false,
            exact: false,
            sort: true,
        }
    }
}

/// Reverse name lookups for listings without `-n`, as ipvsadm does them
/// (`gethostbyaddr`, `getservbyport`).
pub trait Names {
    /// A host name for the address, if the system knows one.
    fn host(&mut self, addr: &IpAddr) -> Option<String>;
    /// The service name of a port for this protocol (`/etc/services`), if any.
    fn service(&mut self, port: u16, protocol: Protocol) -> Option<String>;
}

/// No lookups: what `-n` gives.
#[derive(Debug, Clone, Copy, Default)]
pub struct Numeric;

impl Names for Numeric {
    fn host(&mut self, _: &IpAddr) -> Option<String> {
        None
    }

    fn service(&mut self, _: u16, _: Protocol) -> Option<String> {
        None
    }
}

/// `inet_ntop(AF_INET6, …)` as glibc writes it: the first longest run of two or more zero
/// groups compressed, and IPv4-compatible or -mapped addresses ending in dotted quad.
pub fn inet_ntop6(addr: &Ipv6Addr) -> String {
    let words = addr.segments();
    // Runs of zero groups as (first index, length).
    type Run = Option<(usize, usize)>;
    let (mut best, mut cur): (Run, Run) = (None, None);
    for (i, w) in words.iter().enumerate() {
        if *w == 0 {
            cur = Some(cur.map_or((i, 1), |(base, len)| (base, len + 1)));
        } else if let Some(c) = cur.take()
            && best.is_none_or(|b| c.1 > b.1)
        {
            best = Some(c);
        }
    }
    if let Some(c) = cur
        && best.is_none_or(|b| c.1 > b.1)
    {
        best = Some(c);
    }
    let best = best.filter(|b| b.1 >= 2);
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if let Some((base, len)) = best
            && i >= base
            && i < base + len
        {
            if i == base {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6
            && let Some((0, len)) = best
            && (len == 6 || (len == 5 && words[5] == 0xffff))
        {
            let o = addr.octets();
            let _ = write!(out, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            break;
        }
        let _ = write!(out, "{w:x}");
    }
    if let Some((base, len)) = best
        && base + len == 8
    {
        out.push(':');
    }
    out
}

fn ntop(addr: &IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => inet_ntop6(a),
    }
}

/// `addrport_to_anyname`: `addr:port`, IPv6 in brackets, names unless numeric.
fn addrport(
    family: Family,
    addr: &IpAddr,
    port: u16,
    protocol: u16,
    numeric: bool,
    names: &mut dyn Names,
) -> String {
    let mut out = String::new();
    addrport_into(&mut out, family, addr, port, protocol, numeric, names);
    out
}

/// [`addrport`] appended to `out`: a listing formats one per real server, so the numeric
/// case writes straight into a reused buffer.
fn addrport_into(
    out: &mut String,
    family: Family,
    addr: &IpAddr,
    port: u16,
    protocol: u16,
    numeric: bool,
    names: &mut dyn Names,
) {
    let (open, close) = match family {
        Family::Inet => ("", ""),
        Family::Inet6 => ("[", "]"),
    };
    out.push_str(open);
    let host = if numeric { None } else { names.host(addr) };
    match (host, addr) {
        (Some(name), _) => out.push_str(&name),
        (None, IpAddr::V4(a)) => {
            let _ = write!(out, "{a}");
        }
        (None, IpAddr::V6(a)) => out.push_str(&inet_ntop6(a)),
    }
    out.push_str(close);
    out.push(':');
    // ipvsadm only looks up TCP, UDP and SCTP ports (a fwmark service has protocol 0).
    let service = match Protocol::from_number(protocol) {
        _ if numeric => None,
        Protocol::Other(_) => None,
        p => names.service(port, p),
    };
    match service {
        Some(name) => out.push_str(&name),
        None => {
            let _ = write!(out, "{port}");
        }
    }
}

/// C's `buf[n] = '\0'` on a string that may be shorter.
fn cut(mut s: String, n: usize) -> String {
    truncate_at(&mut s, n);
    s
}

fn truncate_at(s: &mut String, n: usize) {
    if s.len() > n {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// `print_largenum`.
fn largenum(out: &mut String, n: u64, exact: bool) {
    let _ = if exact {
        let digits = n.to_string().len();
        let width = if digits <= 8 { 9 } else { digits + 1 };
        write!(out, "{n:>width$}")
    } else if n < 100_000_000 {
        write!(out, "{n:>9}")
    } else if n < 1_000_000_000 {
        write!(out, "{:>8}K", n / 1000)
    } else if n < 100_000_000_000 {
        write!(out, "{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        write!(out, "{:>8}G", n / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", n / 1_000_000_000_000)
    };
}

fn protocol_name(p: u16) -> &'static str {
    match Protocol::from_number(p) {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
        Protocol::Other(_) => "?",
    }
}

fn protocol_option(p: u16) -> &'static str {
    match Protocol::from_number(p) {
        Protocol::Tcp => "-t",
        Protocol::Udp => "-u",
        Protocol::Sctp => "--sctp-service",
        Protocol::Other(_) => "--xxx-service",
    }
}

/// `fwd_name`; glibc prints a NULL `%s` as `(null)`.
fn fwd_name(f: Forward) -> &'static str {
    match f {
        Forward::Masq => "Masq",
        Forward::Local => "Local",
        Forward::Tunnel => "Tunnel",
        Forward::Route => "Route",
        Forward::Bypass | Forward::Other(_) => "(null)",
    }
}

/// `fwd_switch`.
fn fwd_switch(f: Forward) -> &'static str {
    match f {
        Forward::Masq => "-m",
        Forward::Tunnel => "-i",
        Forward::Local | Forward::Route => "-g",
        Forward::Bypass | Forward::Other(_) => "(null)",
    }
}

fn tun_name(t: TunnelType) -> Option<&'static str> {
    match t {
        TunnelType::Ipip => Some("ipip"),
        TunnelType::Gue => Some("gue"),
        TunnelType::Gre => Some("gre"),
        TunnelType::Other(_) => None,
    }
}

/// `tunflags[]`, indexed by the flags value as ipvsadm does (values past the table are
/// undefined behaviour there; we print nothing).
fn tun_flag_short(f: TunnelFlags) -> &'static str {
    ["-c", "+c", "r+c"]
        .get(usize::from(f.0))
        .copied()
        .unwrap_or("")
}

fn tun_flag_option(f: TunnelFlags) -> &'static str {
    ["--tun-nocsum", "--tun-csum", "--tun-remcsum"]
        .get(usize::from(f.0))
        .copied()
        .unwrap_or("")
}

/// `print_sched_flags`.
fn sched_flags(s: &Service) -> String {
    let f = s.flags;
    let names: &[(ServiceFlags, &str)] = match s.scheduler.as_str() {
        "sh" => &[
            (ServiceFlags::SH_FALLBACK, "sh-fallback"),
            (ServiceFlags::SH_PORT, "sh-port"),
        ],
        "mh" => &[
            (ServiceFlags::MH_FALLBACK, "mh-fallback"),
            (ServiceFlags::MH_PORT, "mh-port"),
        ],
        _ => &[
            (ServiceFlags::SCHED1, "flag-1"),
            (ServiceFlags::SCHED2, "flag-2"),
            (ServiceFlags::SCHED3, "flag-3"),
        ],
    };
    names
        .iter()
        .filter(|(flag, _)| f.contains(*flag))
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

fn has_sched_flags(s: &Service) -> bool {
    s.flags.bits() & (ServiceFlags::SCHED1 | ServiceFlags::SCHED2 | ServiceFlags::SCHED3).bits()
        != 0
}

/// What ipvsadm's service entry holds: fwmark services have protocol 0, address zero,
/// port 0.
struct Entry {
    family: Family,
    fwmark: u32,
    protocol: u16,
    addr: IpAddr,
    port: u16,
}

fn entry(key: &ServiceKey) -> Entry {
    match *key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => Entry {
            family: Family::of(&addr),
            fwmark: 0,
            protocol: protocol.number(),
            addr,
            port,
        },
        ServiceKey::Fwmark { family, mark } => Entry {
            family,
            fwmark: mark,
            protocol: 0,
            addr: family.unspecified(),
            port: 0,
        },
    }
}

/// The address as the four big-endian words `ntohl` gives ipvsadm's comparators.
fn words(addr: &IpAddr) -> [u32; 4] {
    let mut bytes = [0u8; 16];
    match addr {
        IpAddr::V4(a) => bytes[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => bytes = a.octets(),
    }
    std::array::from_fn(|i| {
        u32::from_be_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ])
    })
}

/// `int r = a - b` on unsigned operands: the difference wraps, then becomes signed.
fn wrapping_cmp(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn cmp_addr(v6: bool, a: &IpAddr, b: &IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    if v6 {
        (0..4)
            .map(|i| wrapping_cmp(wa[i], wb[i]))
            .find(|r| *r != 0)
            .unwrap_or(0)
    } else {
        wrapping_cmp(wa[0], wb[0])
    }
}

/// `ipvs_cmp_services`.
fn cmp_services(a: &Service, b: &Service) -> i32 {
    let (x, y) = (entry(&a.key), entry(&b.key));
    let r = wrapping_cmp(x.fwmark, y.fwmark);
    if r != 0 {
        return r;
    }
    let r = i32::from(x.family.to_af()) - i32::from(y.family.to_af());
    if r != 0 {
        return r;
    }
    let r = i32::from(x.protocol) - i32::from(y.protocol);
    if r != 0 {
        return r;
    }
    let r = cmp_addr(x.family == Family::Inet6, &x.addr, &y.addr);
    if r != 0 {
        return r;
    }
    i32::from(x.port) - i32::from(y.port)
}

/// `ipvs_cmp_dests` (the first destination's family decides the address width).
fn cmp_dests(a: &Dest, b: &Dest) -> i32 {
    let r = cmp_addr(a.family() == Family::Inet6, &a.addr, &b.addr);
    if r != 0 {
        return r;
    }
    i32::from(a.port) - i32::from(b.port)
}

/// glibc's `qsort` for arrays that fit in memory: a top-down merge sort taking from the
/// left run while `cmp <= 0`. Reproducing it (rather than using any stable sort) matters
/// because ipvsadm's comparators are not transitive once their subtractions wrap. Sort
/// references or indices: elements are copied at every merge.
pub fn glibc_msort<T: Copy>(items: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let mut scratch = Vec::with_capacity(items.len());
    msort_with(items, cmp, &mut scratch);
}

fn msort_with<T: Copy>(items: &mut [T], cmp: &dyn Fn(&T, &T) -> i32, scratch: &mut Vec<T>) {
    let n = items.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    msort_with(&mut items[..n1], cmp, scratch);
    msort_with(&mut items[n1..], cmp, scratch);
    scratch.clear();
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&items[i], &items[j]) <= 0 {
            scratch.push(items[i]);
            i += 1;
        } else {
            scratch.push(items[j]);
            j += 1;
        }
    }
    scratch.extend_from_slice(&items[i..n1]);
    // What is left of the right run is already in place.
    let done = scratch.len();
    items[..done].copy_from_slice(scratch);
}

/// The services (and their destinations) in the order ipvsadm prints them.
pub fn ordered(table: &Table, sort: bool) -> Vec<(&Service, Vec<&Dest>)> {
    let mut services: Vec<&(Service, Vec<Dest>)> = table.services.iter().collect();
    if sort {
        glibc_msort(&mut services, &|a, b| cmp_services(&a.0, &b.0));
    }
    services
        .into_iter()
        .map(|(service, dests)| {
            let mut dests: Vec<&Dest> = dests.iter().collect();
            if sort {
                glibc_msort(&mut dests, &|a, b| cmp_dests(a, b));
            }
            (service, dests)
        })
        .collect()
}

/// `print_title`.
fn title(view: View) -> String {
    let head = "Prot LocalAddress:Port";
    let rs = "  -> RemoteAddress:Port";
    match view {
        View::Stats => format!(
            "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{rs}\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        ),
        View::Rate => format!(
            "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{rs}\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        ),
        View::Thresholds => format!(
            "{head:<33} {:<10} {:<10} {:<10} {:<10}\n{rs}\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        ),
        View::PersistentConn => format!(
            "{head:<33} {:<9} {:<11} {:<10} {:<10}\n{rs}\n",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        ),
        View::TunInfo => format!(
            "{head} Scheduler Flags\n{rs}           Forward TunnelInfo    Weight ActiveConn InActConn\n"
        ),
        View::Default => {
            format!("{head} Scheduler Flags\n{rs}           Forward Weight ActiveConn InActConn\n")
        }
    }
}

/// The `IP Virtual Server version …` line of `ipvsadm -L`.
pub fn header(info: &Info) -> String {
    format!(
        "IP Virtual Server version {} (size={})\n",
        info.version_string(),
        info.conn_tab_size as i32
    )
}

fn netmask_v4_raw(netmask: &Netmask) -> Option<Ipv4Addr> {
    match netmask {
        Netmask::V4(m) => Some(*m),
        // An IPv6-style value on an IPv4 service: the kernel's four bytes, as a mask.
        Netmask::V6(p) => Some(Ipv4Addr::from(p.to_ne_bytes())),
    }
}

fn netmask_v6_raw(netmask: &Netmask) -> i32 {
    match netmask {
        Netmask::V6(p) => *p as i32,
        Netmask::V4(m) => u32::from_ne_bytes(m.octets()) as i32,
    }
}

/// The mask suffix (`" mask …"` or `" -M …"`), if not the full mask.
fn mask_suffix(s: &Service, family: Family, word: &str) -> String {
    match family {
        Family::Inet => match netmask_v4_raw(&s.netmask) {
            Some(m) if m != Ipv4Addr::BROADCAST => format!(" {word} {m}"),
            _ => String::new(),
        },
        Family::Inet6 => match netmask_v6_raw(&s.netmask) {
            128 => String::new(),
            p => format!(" {word} {p}"),
        },
    }
}

/// One service and its destinations (`print_service_entry`).
fn service_entry(
    out: &mut String,
    service: &Service,
    dests: &[&Dest],
    opts: &ListOptions,
    rule: bool,
    names: &mut dyn Names,
) {
    let e = entry(&service.key);
    let svc_name = if matches!(service.key, ServiceKey::Fwmark { .. }) {
        let mark = e.fwmark as i32;
        match (rule, e.family) {
            (true, Family::Inet6) => format!("-f {mark} -6"),
            (true, Family::Inet) => format!("-f {mark}"),
            (false, Family::Inet6) => format!("FWM  {mark} IPv6"),
            (false, Family::Inet) => format!("FWM  {mark}"),
        }
    } else {
        let vname = addrport(e.family, &e.addr, e.port, e.protocol, opts.numeric, names);
        if rule {
            format!("{} {vname}", protocol_option(e.protocol))
        } else {
            let name = format!("{:<4} {vname}", protocol_name(e.protocol));
            if e.family == Family::Inet6 {
                name
            } else {
                cut(name, 33)
            }
        }
    };

    let s = service;
    if rule {
        let _ = write!(out, "-A {svc_name} -s {}", s.scheduler);
        if s.is_persistent() {
            let _ = write!(out, " -p {}", s.timeout);
            out.push_str(&mask_suffix(s, e.family, "-M"));
        }
        if let Some(pe) = s.pe_name.as_deref().filter(|p| !p.is_empty()) {
            let _ = write!(out, " --pe {pe}");
        }
        if s.flags.contains(ServiceFlags::ONEPACKET) {
            out.push_str(" -o");
        }
        if has_sched_flags(s) {
            let _ = write!(out, " -b {}", sched_flags(s));
        }
    } else if opts.view == View::Stats {
        let _ = write!(out, "{svc_name:<33}");
        for n in [
            s.stats.conns,
            s.stats.inpkts,
            s.stats.outpkts,
            s.stats.inbytes,
            s.stats.outbytes,
        ] {
            largenum(out, n, opts.exact);
        }
    } else if opts.view == View::Rate {
        let _ = write!(out, "{svc_name:<33}");
        for n in [
            s.stats.cps,
            s.stats.inpps,
            s.stats.outpps,
            s.stats.inbps,
            s.stats.outbps,
        ] {
            largenum(out, n, opts.exact);
        }
    } else {
        let _ = write!(out, "{svc_name} {}", s.scheduler);
        if has_sched_flags(s) {
            let _ = write!(out, " ({})", sched_flags(s));
        }
        if s.is_persistent() {
            let _ = write!(out, " persistent {}", s.timeout);
            out.push_str(&mask_suffix(s, e.family, "mask"));
            if let Some(pe) = s.pe_name.as_deref().filter(|p| !p.is_empty()) {
                let _ = write!(out, " pe {pe}");
            }
        }
        if s.flags.contains(ServiceFlags::ONEPACKET) {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    let mut dname = String::new();
    for d in dests {
        dname.clear();
        addrport_into(
            &mut dname,
            d.family(),
            &d.addr,
            d.port,
            e.protocol,
            opts.numeric,
            names,
        );
        if !rule && d.family() != Family::Inet6 {
            truncate_at(&mut dname, 28);
        }
        if rule {
            dest_rule(out, &svc_name, &dname, d);
            continue;
        }
        match opts.view {
            View::Stats => {
                let _ = write!(out, "  -> {dname:<28}");
                for n in [
                    d.stats.conns,
                    d.stats.inpkts,
                    d.stats.outpkts,
                    d.stats.inbytes,
                    d.stats.outbytes,
                ] {
                    largenum(out, n, opts.exact);
                }
                out.push('\n');
            }
            View::Rate => {
                let _ = write!(
                    out,
                    "  -> {dname:<28} {:>8} {:>8} {:>8}",
                    d.stats.cps, d.stats.inpps, d.stats.outpps
                );
                largenum(out, d.stats.inbps, opts.exact);
                largenum(out, d.stats.outbps, opts.exact);
                out.push('\n');
            }
            View::Thresholds => {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                    d.upper_threshold, d.lower_threshold, d.active_conns, d.inactive_conns
                );
            }
            View::PersistentConn => {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                    d.weight as u32, d.persist_conns, d.active_conns, d.inactive_conns
                );
            }
            View::TunInfo => {
                let info = tun_info(d).unwrap_or_else(|| "n/a".to_string());
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<7} {info:<13} {:<6} {:<10} {:<10}",
                    fwd_name(d.forward),
                    d.weight,
                    d.active_conns,
                    d.inactive_conns
                );
            }
            View::Default => {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                    fwd_name(d.forward),
                    d.weight,
                    d.active_conns,
                    d.inactive_conns
                );
            }
        }
    }
}

/// `fwd_tun_info` (at most 15 characters, as its buffer).
fn tun_info(d: &Dest) -> Option<String> {
    if d.forward != Forward::Tunnel {
        return None;
    }
    let t = d.tunnel;
    let info = match t.kind {
        TunnelType::Ipip => "ipip".to_string(),
        TunnelType::Gue => format!("gue:{}:{}", t.port, tun_flag_short(t.flags)),
        TunnelType::Gre => format!("gre:{}", tun_flag_short(t.flags)),
        TunnelType::Other(_) => return None,
    };
    Some(cut(info, 15))
}

/// `-a …` lines of `ipvsadm -S` (`print_tunnel_rule` for tunnels).
fn dest_rule(out: &mut String, svc: &str, dname: &str, d: &Dest) {
    let base = format!(
        "-a {svc} -r {dname} {} -w {}",
        fwd_switch(d.forward),
        d.weight
    );
    let t = d.tunnel;
    let _ = match (d.forward, tun_name(t.kind)) {
        (Forward::Tunnel, Some(name)) => match t.kind {
            TunnelType::Gre => {
                writeln!(out, "{base} --tun-type {name} {}", tun_flag_option(t.flags))
            }
            TunnelType::Gue => writeln!(
                out,
                "{base} --tun-type {name} --tun-port {} {}",
                t.port,
                tun_flag_option(t.flags)
            ),
            _ => writeln!(out, "{base} --tun-type {name}"),
        },
        _ => writeln!(out, "{base}"),
    };
}

/// Room for a listing of `table` in one allocation: about 80 bytes a line covers the
/// default view of IPv4 tables; growing past it only costs a reallocation.
fn text_estimate(table: &Table) -> usize {
    let lines: usize = table.services.iter().map(|(_, d)| 1 + d.len()).sum();
    256 + 80 * lines
}

/// `ipvsadm -L [options]`: header, title, every service.
pub fn render_list(
    info: &Info,
    table: &Table,
    opts: &ListOptions,
    names: &mut dyn Names,
) -> String {
    let mut out = String::with_capacity(text_estimate(table));
    out.push_str(&header(info));
    out.push_str(&title(opts.view));
    for (service, dests) in ordered(table, opts.sort) {
        service_entry(&mut out, service, &dests, opts, false, names);
    }
    out
}

/// `ipvsadm -L -t|-u|-f SERVICE [options]`: title and that service, no header.
pub fn render_one(
    service: &Service,
    dests: &[Dest],
    opts: &ListOptions,
    names: &mut dyn Names,
) -> String {
    let mut dests: Vec<&Dest> = dests.iter().collect();
    if opts.sort {
        glibc_msort(&mut dests, &|a, b| cmp_dests(a, b));
    }
    let mut out = title(opts.view);
    service_entry(&mut out, service, &dests, opts, false, names);
    out
}

/// `ipvsadm -S [-n]`: the table as `ipvsadm -R` input.
pub fn render_save(table: &Table, numeric: bool, names: &mut dyn Names) -> String {
    let opts = ListOptions {
        numeric,
        ..ListOptions::default()
    };
    let mut out = String::with_capacity(text_estimate(table));
    for (service, dests) in ordered(table, true) {
        service_entry(&mut out, service, &dests, &opts, true, names);
    }
    out
}

/// `ipvsadm -L --timeout`.
pub fn render_timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp as i32, t.tcp_fin as i32, t.udp as i32
    )
}

/// `ipvsadm -L --daemon`.
pub fn render_daemons(daemons: &[Daemon]) -> String {
    let mut out = String::new();
    for d in daemons {
        let kind = match d.state.to_wire() {
            s if s & 1 != 0 => "master",
            s if s & 2 != 0 => "backup",
            _ => continue,
        };
        let _ = write!(
            out,
            "{kind} sync daemon (mcast={}, syncid={}",
            d.mcast_ifn, d.sync_id as i32
        );
        if let Some(n) = d.sync_maxlen.filter(|n| *n != 0) {
            let _ = write!(out, ", maxlen={n}");
        }
        if let Some(g) = d.mcast_group {
            let _ = write!(out, ", group={}", ntop(&g));
        }
        if let Some(p) = d.mcast_port.filter(|p| *p != 0) {
            let _ = write!(out, ", port={p}");
        }
        if let Some(t) = d.mcast_ttl.filter(|t| *t != 0) {
            let _ = write!(out, ", ttl={t}");
        }
        out.push_str(")\n");
    }
    out
}

// ---------------------------------------------------------------------------- JSON

/// Version of the JSON documents below; bumped only on incompatible changes.
pub const JSON_SCHEMA: u32 = 1;

/// `ldirectord list --json`; see docs/json-schema.md.
#[derive(Debug, Serialize)]
pub struct JsonList {
    pub schema: u32,
    pub version: String,
    pub conn_tab_size: u32,
    pub services: Vec<JsonService>,
}

#[derive(Debug, Serialize)]
pub struct JsonService {
    pub family: &'static str,
    pub protocol: Option<String>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub fwmark: Option<u32>,
    pub scheduler: String,
    pub persistent: bool,
    pub timeout: u32,
    pub netmask: Option<String>,
    pub prefix_length: Option<u32>,
    pub pe: Option<String>,
    pub one_packet: bool,
    pub sched_flags: Vec<&'static str>,
    pub flags: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<JsonStats>,
    pub destinations: Vec<JsonDest>,
}

#[derive(Debug, Serialize)]
pub struct JsonDest {
    pub family: &'static str,
    pub address: String,
    pub port: u16,
    pub forward: String,
    pub weight: i32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub tunnel: Option<JsonTunnel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_conns: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_conns: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persist_conns: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<JsonStats>,
}

#[derive(Debug, Serialize)]
pub struct JsonTunnel {
    #[serde(rename = "type")]
    pub kind: String,
    pub port: u16,
    pub checksum: &'static str,
}

#[derive(Debug, Serialize)]
pub struct JsonStats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

impl From<&Stats> for JsonStats {
    fn from(s: &Stats) -> JsonStats {
        JsonStats {
            conns: s.conns,
            inpkts: s.inpkts,
            outpkts: s.outpkts,
            inbytes: s.inbytes,
            outbytes: s.outbytes,
            cps: s.cps,
            inpps: s.inpps,
            outpps: s.outpps,
            inbps: s.inbps,
            outbps: s.outbps,
        }
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Inet => "inet",
        Family::Inet6 => "inet6",
    }
}

fn forward_name(f: Forward) -> String {
    match f {
        Forward::Masq => "masq".into(),
        Forward::Local => "local".into(),
        Forward::Tunnel => "tunnel".into(),
        Forward::Route => "route".into(),
        Forward::Bypass => "bypass".into(),
        Forward::Other(n) => format!("other-{n}"),
    }
}

fn json_service(service: &Service, dests: &[Dest], counters: bool) -> JsonService {
    let family = service.key.family();
    let (protocol, address, port, fwmark) = match service.key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => (
            Some(
                protocol
                    .name()
                    .map(str::to_lowercase)
                    .unwrap_or_else(|| protocol.number().to_string()),
            ),
            Some(ntop(&addr)),
            Some(port),
            None,
        ),
        ServiceKey::Fwmark { mark, .. } => (None, None, None, Some(mark)),
    };
    let (netmask, prefix_length) = match family {
        Family::Inet => (
            netmask_v4_raw(&service.netmask).map(|m| m.to_string()),
            None,
        ),
        Family::Inet6 => (None, Some(netmask_v6_raw(&service.netmask) as u32)),
    };
    let flag_names = sched_flags(service);
    JsonService {
        family: family_name(family),
        protocol,
        address,
        port,
        fwmark,
        scheduler: service.scheduler.clone(),
        persistent: service.is_persistent(),
        timeout: service.timeout,
        netmask,
        prefix_length,
        pe: service.pe_name.clone().filter(|p| !p.is_empty()),
        one_packet: service.flags.contains(ServiceFlags::ONEPACKET),
        sched_flags: if flag_names.is_empty() {
            Vec::new()
        } else {
            flag_names.split(',').map(static_flag_name).collect()
        },
        flags: service.flags.without_hashed().bits(),
        stats: counters.then(|| JsonStats::from(&service.stats)),
        destinations: dests.iter().map(|d| json_dest(d, counters)).collect(),
    }
}

fn static_flag_name(name: &str) -> &'static str {
    [
        "sh-fallback",
        "sh-port",
        "mh-fallback",
        "mh-port",
        "flag-1",
        "flag-2",
        "flag-3",
    ]
    .into_iter()
    .find(|n| *n == name)
    .unwrap_or("flag")
}

fn json_dest(d: &Dest, counters: bool) -> JsonDest {
    let t = d.tunnel;
    JsonDest {
        family: family_name(d.family()),
        address: ntop(&d.addr),
        port: d.port,
        forward: forward_name(d.forward),
        weight: d.weight,
        upper_threshold: d.upper_threshold,
        lower_threshold: d.lower_threshold,
        tunnel: (d.forward == Forward::Tunnel).then(|| JsonTunnel {
            kind: tun_name(t.kind)
                .map(str::to_string)
                .unwrap_or_else(|| format!("other-{}", t.kind.to_wire())),
            port: t.port,
            checksum: match t.flags.0 {
                0 => "none",
                1 => "csum",
                2 => "remcsum",
                _ => "other",
            },
        }),
        active_conns: counters.then_some(d.active_conns),
        inactive_conns: counters.then_some(d.inactive_conns),
        persist_conns: counters.then_some(d.persist_conns),
        stats: counters.then(|| JsonStats::from(&d.stats)),
    }
}

/// The document of `list --json` (counters included) or `save --json` (configuration
/// only). Unlike the text, JSON is ordered naturally (services by protocol, address and
/// port, then firewall marks; destinations by address and port), or in the kernel's order
/// with `sort == false`: ipvsadm's wrapping comparator is kept for the text only.
pub fn json_table(info: &Info, table: &Table, sort: bool, counters: bool) -> JsonList {
    let mut services = table.services.clone();
    if sort {
        services.sort_by_key(|(s, _)| s.key);
        for (_, dests) in &mut services {
            dests.sort_by_key(Dest::key);
        }
    }
    JsonList {
        schema: JSON_SCHEMA,
        version: info.version_string(),
        conn_tab_size: info.conn_tab_size,
        services: services
            .iter()
            .map(|(s, d)| json_service(s, d, counters))
            .collect(),
    }
}

/// `list --timeout --json`.
#[derive(Debug, Serialize)]
pub struct JsonTimeouts {
    pub schema: u32,
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

pub fn json_timeouts(t: &Timeouts) -> JsonTimeouts {
    JsonTimeouts {
        schema: JSON_SCHEMA,
        tcp: t.tcp,
        tcp_fin: t.tcp_fin,
        udp: t.udp,
    }
}

/// `list --daemon --json`.
#[derive(Debug, Serialize)]
pub struct JsonDaemons {
    pub schema: u32,
    pub daemons: Vec<JsonDaemon>,
}

#[derive(Debug, Serialize)]
pub struct JsonDaemon {
    pub state: String,
    pub mcast_interface: String,
    pub sync_id: u32,
    pub sync_maxlen: Option<u16>,
    pub mcast_group: Option<String>,
    pub mcast_port: Option<u16>,
    pub mcast_ttl: Option<u8>,
}

pub fn json_daemons(daemons: &[Daemon]) -> JsonDaemons {
    JsonDaemons {
        schema: JSON_SCHEMA,
        daemons: daemons
            .iter()
            .map(|d| JsonDaemon {
                state: match d.state {
                    DaemonState::Master => "master".into(),
                    DaemonState::Backup => "backup".into(),
                    DaemonState::Other(n) => format!("other-{n}"),
                },
                mcast_interface: d.mcast_ifn.clone(),
                sync_id: d.sync_id,
                sync_maxlen: d.sync_maxlen,
                mcast_group: d.mcast_group.as_ref().map(ntop),
                mcast_port: d.mcast_port,
                mcast_ttl: d.mcast_ttl,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_ntop6_matches_glibc() {
        for (addr, glibc) in [
            ("::", "::"),
            ("::1", "::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:db8:0:0:1::", "2001:db8:0:0:1::"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
            ("::10.0.0.1", "::10.0.0.1"),
            ("::1:0:0:0", "::1:0:0:0"),
            ("fe80::", "fe80::"),
        ] {
            assert_eq!(inet_ntop6(&addr.parse().unwrap()), glibc, "{addr}");
        }
    }

    #[test]
    fn largenum_scales_like_ipvsadm() {
        let cases = [
            (0u64, false, "        0"),
            (99_999_999, false, " 99999999"),
            (100_000_000, false, "  100000K"),
            (999_999_999, false, "  999999K"),
            (1_000_000_000, false, "    1000M"),
            (99_999_999_999, false, "   99999M"),
            (100_000_000_000, false, "     100G"),
            (100_000_000_000_000, false, "     100T"),
            (u64::MAX, false, "18446744T"),
            (12_345_678, true, " 12345678"),
            (123_456_789, true, " 123456789"),
        ];
        for (n, exact, want) in cases {
            let mut out = String::new();
            largenum(&mut out, n, exact);
            assert_eq!(out, want, "{n}");
        }
    }

    #[test]
    fn msort_is_a_stable_sort_for_sane_comparators() {
        let mut v: Vec<(u8, usize)> = [5u8, 3, 5, 1, 3, 9, 0, 5]
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        let mut expected = v.clone();
        expected.sort_by_key(|(k, _)| *k);
        glibc_msort(&mut v, &|a, b| i32::from(a.0) - i32::from(b.0));
        assert_eq!(v, expected);
    }

    #[test]
    fn ipvsadms_comparator_wraps() {
        let s = |a: &str| Service::new(ServiceKey::tcp(a.parse().unwrap(), 80), "rr");
        // 10.x - 200.x wraps to a positive int: 10.x sorts after 200.x.
        assert!(cmp_services(&s("10.0.0.1"), &s("200.0.0.1")) > 0);
        assert!(cmp_services(&s("10.0.0.1"), &s("20.0.0.1")) < 0);
    }
}
