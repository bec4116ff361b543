//! Differential test against the real `ipvsadm`, on a real kernel (inside the IPVS VM:
//! `tests/vm/suite.sh --only kernel_diff`).
//!
//! Random tables (TCP/UDP/SCTP/fwmark, IPv4/IPv6, persistence with netmasks, every scheduler and
//! forwarding method, tunnel types, thresholds, sync daemons, timeouts, some traffic) are
//! programmed with `ipvsadm -R`, then every listing option set is run through both
//! `ipvsadm -L`/`-S` and `ldirectord list`/`save`: stdout and exit status must be identical.
//!
//! Ours runs in this process (`cli::list::capture`, `cli::save::capture`: what the binary's
//! `list`/`save` run, minus the printing) for most tables, and as the `ldirectord` binary for
//! every tenth: under TCG a process start costs 50-500 ms, and that was most of the test's time.
//!
//! The reverse direction, on the same tables: `examples/ipvs-restore.rs` programs each one
//! through the library's netlink client, and `ipvsadm -Sn` must read back exactly what it
//! reads after `ipvsadm -R` programmed it.
//!
//! Counters and rates move while traffic drains and the kernel's rate estimator ticks (every
//! 2 s), so a mismatch only counts on a quiet table: ipvsadm is asked again, and the case fails
//! when ipvsadm's answer held still and ours still differs from it.
//!
//! Knobs: `LDIRECTORD_DIFF_SEED` (printed on every run; set it to replay one),
//! `LDIRECTORD_DIFF_TABLES` (default 200), `LDIRECTORD_DIFF_ONLY` (one table index, with the
//! seed: replays exactly that table), `LDIRECTORD_DIFF_OURS` (another program to hold against
//! ipvsadm, e.g. a wrapper around ipvsadm itself, to test this test).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

/// How `list`/`save` run for a table.
#[derive(Clone)]
enum Ours {
    /// As a process: the `ldirectord` binary, or `LDIRECTORD_DIFF_OURS` (a wrapper around
    /// ipvsadm, say, to test this test).
    Program(String),
    /// In this process, through the functions the binary's `list`/`save` run
    /// (`cli::list::capture`). Under TCG a process start costs 50-500 ms and a table has
    /// about 20 option sets, so most tables use this; every tenth uses the binary.
    InProcess,
}

impl Ours {
    fn for_table(index: u64) -> Ours {
        match std::env::var("LDIRECTORD_DIFF_OURS") {
            Ok(program) => Ours::Program(program),
            Err(_) if index.is_multiple_of(10) => {
                Ours::Program(env!("CARGO_BIN_EXE_ldirectord").to_string())
            }
            Err(_) => Ours::InProcess,
        }
    }

    fn start(&self, args: &[String]) -> Started {
        match self {
            Ours::Program(program) => Started::Child(spawn(program, args)),
            Ours::InProcess => Started::InProcess(args.to_vec()),
        }
    }

    fn run(&self, args: &[String]) -> Run {
        self.start(args).finish()
    }
}

/// A run of ours under way (a process) or yet to happen (in-process).
enum Started {
    Child(std::process::Child),
    InProcess(Vec<String>),
}

impl Started {
    fn finish(self) -> Run {
        match self {
            Started::Child(child) => Run::from(child.wait_with_output().unwrap()),
            Started::InProcess(args) => {
                let captured = if args[0] == "save" {
                    ldirectord::cli::save::capture(&args)
                } else {
                    ldirectord::cli::list::capture(&args)
                };
                Run {
                    status: Some(i32::from(captured.status)),
                    stdout: captured.stdout.into_bytes(),
                    stderr: captured.stderr.into_bytes(),
                }
            }
        }
    }
}
/// Where the generated services live; routed into a dummy interface so that traffic to them
/// passes IPVS and then disappears.
const V4_NETS: [&str; 3] = ["10.100.0.0/16", "10.200.0.0/16", "10.250.0.0/16"];
const V6_NETS: [&str; 3] = ["fd00:100::/32", "fd00:200::/32", "fd00:250::/32"];
/// Names for some of the addresses and ports, so that listings without `-n` resolve some and
/// print others as numbers.
const HOSTS: &str = "\
10.100.0.1 www.example.test www
10.200.0.1 real-one.example.test
10.200.0.2 a-rather-long-real-server-name.example.test
fd00:100::1 www6.example.test
fd00:200::1 real6.example.test
";
const NAMED_PORTS: [u16; 8] = [80, 443, 53, 22, 25, 3306, 8080, 5060];
const SCHEDULERS: [&str; 13] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
];

/// A tiny deterministic generator (splitmix64): the same seed gives the same tables on
/// every machine and every version of every crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// 0..n
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Tcp,
    Udp,
    Sctp,
    Fwmark,
}

/// One generated virtual service: what to list it by, and its `ipvsadm -R` lines.
struct GenService {
    selector: Vec<String>,
    target: Option<SocketAddr>,
    kind: Kind,
    lines: Vec<String>,
    /// an IPv4 real server behind an IPv6 service or the reverse
    mixed_family: bool,
}

/// One generated table: `ipvsadm -R` input plus the settings that live outside it.
struct GenTable {
    services: Vec<GenService>,
    timeouts: Option<(u32, u32, u32)>,
    daemons: Vec<Vec<String>>,
    traffic: bool,
}

impl GenTable {
    fn restore_input(&self) -> String {
        self.services
            .iter()
            .flat_map(|s| s.lines.iter())
            .fold(String::new(), |mut all, line| {
                all.push_str(line);
                all.push('\n');
                all
            })
    }
}

/// 10.`net`.x.y
fn v4(net: u8, host: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, net, (host >> 8) as u8, host as u8))
}

/// fd00:`net`::x:y
fn v6(net: u16, host: u64) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0xfd00,
        net,
        0,
        0,
        0,
        0,
        (host >> 16) as u16,
        host as u16,
    ))
}

fn endpoint(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn generate(rng: &mut Rng) -> GenTable {
    // mostly small tables, some large enough for sorting and widths to matter
    let count = match rng.below(20) {
        0 => 0,
        1 | 2 => rng.range(20, 60),
        _ => rng.range(1, 10),
    };
    let mut used = BTreeSet::new();
    let mut services = Vec::new();
    for _ in 0..count {
        if let Some(service) = generate_service(rng, &mut used) {
            services.push(service);
        }
    }
    let timeouts = rng.chance(50).then(|| {
        (
            rng.range(1, 100_000) as u32,
            rng.range(1, 1000) as u32,
            rng.range(1, 100_000) as u32,
        )
    });
    let mut daemons = Vec::new();
    // the kernel refuses sync daemons while any service mixes address families
    let mixed_family = services.iter().any(|s| s.mixed_family);
    if !mixed_family && rng.chance(20) {
        for state in ["master", "backup"] {
            if !rng.chance(60) {
                continue;
            }
            let mut args = vec![
                "--start-daemon".to_string(),
                state.to_string(),
                "--mcast-interface".to_string(),
                "sink0".to_string(),
            ];
            if rng.chance(70) {
                args.extend(["--syncid".to_string(), rng.range(0, 255).to_string()]);
            }
            if rng.chance(30) {
                args.extend([
                    "--sync-maxlen".to_string(),
                    rng.range(600, 1400).to_string(),
                ]);
            }
            if rng.chance(30) {
                let group = format!("224.0.0.{}", rng.range(100, 200));
                args.extend(["--mcast-group".to_string(), group]);
            }
            if rng.chance(30) {
                args.extend([
                    "--mcast-port".to_string(),
                    rng.range(1024, 60000).to_string(),
                ]);
            }
            if rng.chance(30) {
                args.extend(["--mcast-ttl".to_string(), rng.range(1, 255).to_string()]);
            }
            daemons.push(args);
        }
    }
    GenTable {
        services,
        timeouts,
        daemons,
        traffic: rng.chance(40),
    }
}

fn generate_service(rng: &mut Rng, used: &mut BTreeSet<String>) -> Option<GenService> {
    let ipv6 = rng.chance(30);
    let kind = *rng.pick(&[
        Kind::Tcp,
        Kind::Tcp,
        Kind::Tcp,
        Kind::Udp,
        Kind::Udp,
        Kind::Sctp,
        Kind::Fwmark,
        Kind::Fwmark,
    ]);
    let persistent = rng.chance(35);
    let port = if persistent && rng.chance(15) {
        0
    } else if rng.chance(40) {
        *rng.pick(&NAMED_PORTS)
    } else {
        rng.range(1, 65535) as u16
    };
    let addr = if ipv6 {
        v6(0x100, rng.range(1, 40))
    } else {
        v4(100, rng.range(1, 40))
    };
    let (mut selector, target) = match kind {
        Kind::Fwmark => {
            let highest = if rng.chance(80) { 50 } else { u32::MAX as u64 };
            let mark = rng.range(1, highest);
            let mut sel = vec!["-f".to_string(), mark.to_string()];
            if ipv6 {
                sel.push("-6".to_string());
            }
            (sel, None)
        }
        Kind::Tcp | Kind::Udp | Kind::Sctp => {
            let flag = match kind {
                Kind::Tcp => "-t",
                Kind::Udp => "-u",
                _ => "--sctp-service",
            };
            (
                vec![flag.to_string(), endpoint(addr, port)],
                Some(SocketAddr::new(addr, port)),
            )
        }
    };
    if !used.insert(selector.join(" ")) {
        return None;
    }
    let mut line = format!("-A {}", selector.join(" "));
    let scheduler = if rng.chance(10) {
        None
    } else {
        Some(*rng.pick(&SCHEDULERS))
    };
    if let Some(s) = scheduler {
        write!(line, " -s {s}").unwrap();
    }
    if persistent || port == 0 {
        line.push_str(" -p");
        if rng.chance(70) {
            write!(line, " {}", rng.range(1, 100_000)).unwrap();
        }
        if rng.chance(50) {
            if ipv6 {
                write!(line, " -M {}", rng.range(1, 128)).unwrap();
            } else {
                let bits = rng.range(1, 32) as u32;
                let mask = u32::MAX << (32 - bits);
                write!(line, " -M {}", Ipv4Addr::from(mask)).unwrap();
            }
        }
        if kind == Kind::Udp && rng.chance(15) {
            line.push_str(" --pe sip");
        }
    }
    if kind == Kind::Udp && rng.chance(15) {
        line.push_str(" -o");
    }
    let flag_names: &[&str] = match scheduler {
        Some("sh") => &["sh-fallback", "sh-port"],
        Some("mh") => &["mh-fallback", "mh-port"],
        _ => &["flag-1", "flag-2", "flag-3"],
    };
    let chance = if matches!(scheduler, Some("sh" | "mh")) {
        60
    } else {
        5
    };
    if rng.chance(chance) {
        let flags: Vec<&str> = flag_names
            .iter()
            .copied()
            .filter(|_| rng.chance(60))
            .collect();
        if !flags.is_empty() {
            write!(line, " -b {}", flags.join(",")).unwrap();
        }
    }
    let mut lines = vec![line];

    let dests = match rng.below(10) {
        0 | 1 => 0,
        2..=7 => rng.range(1, 4),
        _ => rng.range(5, 12),
    };
    let mut dest_used = BTreeSet::new();
    let mut mixed_family = false;
    for _ in 0..dests {
        let forward = *rng.pick(&["-g", "-i", "-m"]);
        // an IPv4 service may send to an IPv6 real server (and back) only through a tunnel
        let dest_v6 = if forward == "-i" && rng.chance(15) {
            !ipv6
        } else {
            ipv6
        };
        // now and then the director's own address
        let local = rng.chance(5);
        let host = if local { 1 } else { rng.range(1, 300) };
        let dest_addr = match (dest_v6, local) {
            (true, true) => v6(0x250, host),
            (true, false) => v6(0x200, host),
            (false, true) => v4(250, host),
            (false, false) => v4(200, host),
        };
        // direct routing and tunnels keep the service's port; fwmark services have none
        let dest_port = if forward == "-m" || kind == Kind::Fwmark {
            if rng.chance(30) {
                *rng.pick(&NAMED_PORTS)
            } else {
                rng.range(1, 65535) as u16
            }
        } else {
            port
        };
        if !dest_used.insert((dest_addr, dest_port)) {
            continue;
        }
        mixed_family |= dest_v6 != ipv6;
        let mut line = format!(
            "-a {} -r {} {forward}",
            selector.join(" "),
            endpoint(dest_addr, dest_port)
        );
        if rng.chance(85) {
            let weight = match rng.below(6) {
                0 => 0,
                1 => 65535,
                _ => rng.range(1, 1000),
            };
            write!(line, " -w {weight}").unwrap();
        }
        // the kernel wants lower <= upper (ERANGE otherwise), and an upper of 0 means none
        if rng.chance(30) {
            let upper = rng.range(0, 5_000_000);
            write!(line, " -x {upper}").unwrap();
            if upper > 0 && rng.chance(60) {
                write!(line, " -y {}", rng.range(0, upper)).unwrap();
            }
        }
        if forward == "-i" && rng.chance(60) {
            let tun = *rng.pick(&["ipip", "gue", "gre"]);
            write!(line, " --tun-type {tun}").unwrap();
            if tun == "gue" {
                write!(line, " --tun-port {}", rng.range(1, 65535)).unwrap();
            }
            if tun != "ipip" {
                let csum: &[&str] = if tun == "gue" {
                    &["", " --tun-nocsum", " --tun-csum", " --tun-remcsum"]
                } else {
                    &["", " --tun-nocsum", " --tun-csum"]
                };
                let suffix = *rng.pick(csum);
                line.push_str(suffix);
            }
        }
        lines.push(line);
    }
    // `-L -t addr:port` takes the service the way it was written; keep the family hint for
    // IPv6 fwmark services, which ipvsadm needs to find them
    if kind == Kind::Fwmark && ipv6 {
        selector.truncate(3);
    }
    Some(GenService {
        selector,
        target,
        kind,
        lines,
        mixed_family,
    })
}

/// The listing option sets every table is compared under (each with `-L`/`list`), plus the
/// save forms (`-S`/`save`).
fn option_sets(rng: &mut Rng, table: &GenTable) -> Vec<(bool, Vec<String>)> {
    let list = |args: &[&str]| (false, args.iter().map(|a| a.to_string()).collect());
    let mut sets = vec![
        list(&[]),
        list(&["-n"]),
        list(&["--stats"]),
        list(&["-n", "--stats"]),
        list(&["-n", "--stats", "--exact"]),
        list(&["-n", "--rate"]),
        list(&["-n", "--rate", "--exact"]),
        list(&["-n", "--thresholds"]),
        list(&["-n", "--persistent-conn"]),
        list(&["-n", "--tun-info"]),
        list(&["-n", "--stats", "--rate"]),
        list(&["-n", "--sort"]),
        list(&["-n", "--nosort"]),
        list(&["--timeout"]),
        list(&["--daemon"]),
        (true, vec![]),
        (true, vec!["-n".to_string()]),
    ];
    if !table.services.is_empty() {
        let service = &table.services[rng.below(table.services.len() as u64) as usize];
        let mut args = vec!["-n".to_string()];
        args.extend(service.selector.iter().cloned());
        sets.push((false, args.clone()));
        args[0] = "--stats".to_string();
        sets.push((false, args));
    }
    if rng.chance(10) {
        // a service that is not there: both must fail the same way
        sets.push((
            false,
            vec![
                "-n".to_string(),
                "-t".to_string(),
                "10.99.99.99:1".to_string(),
            ],
        ));
    }
    sets
}

struct Run {
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            status: output.status.code(),
            stdout: output.stdout,
            stderr: output.stderr,
        }
    }
    /// What must be identical: stdout, exit status, and whether anything went to stderr.
    fn same_as(&self, other: &Run) -> bool {
        self.stdout == other.stdout
            && self.status == other.status
            && self.stderr.is_empty() == other.stderr.is_empty()
    }
}

fn spawn(program: &str, args: &[String]) -> std::process::Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// The command lines of one option set: `(ipvsadm's, ours)`.
fn command_lines(save: bool, args: &[String]) -> (Vec<String>, Vec<String>) {
    let mut ipvsadm_args = vec![if save { "-S" } else { "-L" }.to_string()];
    ipvsadm_args.extend(args.iter().cloned());
    let mut our_args = vec![if save { "save" } else { "list" }.to_string()];
    our_args.extend(args.iter().cloned());
    (ipvsadm_args, our_args)
}

/// Compares every option set on the current table. Starting a process under TCG costs
/// tens of milliseconds, mostly spent waiting (9p, page faults), and a table has about 20
/// option sets: so the first pass starts both programs for every set at once and only
/// the sets that differ go through [`compare`]'s retries. Results are in `sets` order;
/// `Ok(n)`: equal after `n` retries on a moving table.
fn compare_all(ours: &Ours, sets: &[(bool, Vec<String>)]) -> Vec<Result<u32, String>> {
    let running: Vec<_> = sets
        .iter()
        .map(|(save, args)| {
            let (ipvsadm_args, our_args) = command_lines(*save, args);
            (spawn("ipvsadm", &ipvsadm_args), ours.start(&our_args))
        })
        .collect();
    // Collected in order: a child whose pipe is full waits for its turn, never for another.
    let first: Vec<bool> = running
        .into_iter()
        .map(|(theirs, our_run)| {
            let our_run = our_run.finish();
            let theirs = Run::from(theirs.wait_with_output().unwrap());
            our_run.same_as(&theirs)
        })
        .collect();
    sets.iter()
        .zip(first)
        .map(|((save, args), same)| {
            if same {
                Ok(0)
            } else {
                compare(ours, *save, args)
            }
        })
        .collect()
}

/// Runs ipvsadm and ours side by side (the VM has two vCPUs and starting a process there is
/// slow), then sandwiches a mismatch between two ipvsadm runs to tell a moving table from a
/// wrong listing.
/// `Ok(n)`: equal after `n` retries on a moving table.
fn compare(our_runner: &Ours, save: bool, args: &[String]) -> Result<u32, String> {
    let (ipvsadm_args, our_args) = command_lines(save, args);
    let mut last = None;
    for attempt in 0..6 {
        let theirs = spawn("ipvsadm", &ipvsadm_args);
        // The sandwich needs ours to read the kernel between the two ipvsadm runs; an
        // in-process listing reads long before a starting ipvsadm does, so it waits.
        let (theirs, ours) = match our_runner {
            Ours::InProcess => {
                let theirs = Run::from(theirs.wait_with_output().unwrap());
                (theirs, our_runner.run(&our_args))
            }
            Ours::Program(_) => {
                let ours = our_runner.run(&our_args);
                (Run::from(theirs.wait_with_output().unwrap()), ours)
            }
        };
        if ours.same_as(&theirs) {
            return Ok(attempt);
        }
        let again = Run::from(spawn("ipvsadm", &ipvsadm_args).wait_with_output().unwrap());
        if ours.same_as(&again) {
            return Ok(attempt);
        }
        if again.same_as(&theirs) {
            return Err(mismatch(&ipvsadm_args, &our_args, &theirs, &ours));
        }
        last = Some((theirs, ours));
        Command::new("sleep").arg("0.5").status().unwrap();
    }
    let (theirs, ours) = last.unwrap();
    Err(format!(
        "the table never held still for ipvsadm {}\n{}",
        ipvsadm_args.join(" "),
        mismatch(&ipvsadm_args, &our_args, &theirs, &ours)
    ))
}

fn mismatch(theirs_args: &[String], our_args: &[String], theirs: &Run, ours: &Run) -> String {
    let mut out = format!(
        "ipvsadm {} (status {:?}) vs ldirectord {} (status {:?})\n",
        theirs_args.join(" "),
        theirs.status,
        our_args.join(" "),
        ours.status
    );
    out.push_str(&line_diff(
        &String::from_utf8_lossy(&theirs.stdout),
        &String::from_utf8_lossy(&ours.stdout),
    ));
    for (who, run) in [("ipvsadm", theirs), ("ours", ours)] {
        if !run.stderr.is_empty() {
            writeln!(
                out,
                " stderr ({who}): {}",
                String::from_utf8_lossy(&run.stderr).trim_end()
            )
            .unwrap();
        }
    }
    out
}

/// The lines that differ between `expected` (`-`, ipvsadm) and `actual` (`+`, ours), with
/// one line of context, from a longest-common-subsequence alignment.
fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.split('\n').collect();
    let b: Vec<&str> = actual.split('\n').collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            lines.push(('+', b[j]));
            j += 1;
        } else {
            lines.push(('-', a[i]));
            i += 1;
        }
    }
    let near_change = |k: usize| {
        lines[k.saturating_sub(1)..(k + 2).min(lines.len())]
            .iter()
            .any(|(tag, _)| *tag != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (tag, line)) in lines.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("    ...\n");
            }
            writeln!(out, "  {tag} {line:?}").unwrap();
            skipped = false;
        } else {
            skipped = true;
        }
    }
    out
}

fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim_end()
    );
}

/// Runs `program` with `input` on stdin; `Err(stderr)` when it fails.
fn run_with_input(program: &str, args: &[&str], input: &str) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn save_numeric() -> String {
    let out = Command::new("ipvsadm").arg("-Sn").output().unwrap();
    assert!(out.status.success(), "ipvsadm -Sn failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The library's `ipvsadm -R` (examples/ipvs-restore.rs), built next to this test binary
/// (`tests/vm/suite.sh` builds it) unless `LDIRECTORD_RESTORE_BIN` names it.
fn restore() -> String {
    std::env::var("LDIRECTORD_RESTORE_BIN").unwrap_or_else(|_| {
        let exe = std::env::current_exe().unwrap();
        // <target>/debug/deps/kernel_diff-<hash> -> <target>/debug/examples/ipvs-restore
        let path = exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples/ipvs-restore");
        assert!(
            path.exists(),
            "{} is missing: cargo build --example ipvs-restore",
            path.display()
        );
        path.to_string_lossy().into_owned()
    })
}

/// The VM-wide scene: a dummy interface that swallows whatever IPVS forwards, routes to it
/// for every generated address, host names for some of them.
fn set_up_scene() {
    sh("ip", &["link", "add", "sink0", "type", "dummy"]);
    sh("ip", &["link", "set", "sink0", "mtu", "65535", "up"]);
    sh("ip", &["addr", "add", "10.250.0.1/32", "dev", "sink0"]);
    sh(
        "ip",
        &["addr", "add", "fd00:250::1/128", "dev", "sink0", "nodad"],
    );
    for net in V4_NETS.iter().chain(V6_NETS.iter()) {
        if !net.starts_with("10.250") && !net.starts_with("fd00:250") {
            sh("ip", &["route", "add", net, "dev", "sink0"]);
        }
    }
    // the VM's / is an overlay whose writes vanish at power-off
    let mut hosts = std::fs::OpenOptions::new()
        .append(true)
        .open("/etc/hosts")
        .unwrap();
    hosts.write_all(HOSTS.as_bytes()).unwrap();
}

/// Leaves the VM as it was, even when the test panics: the suite runs more tests after it.
///
/// The traffic leaves connection entries behind (UDP ones live as long as the generated
/// UDP timeout, up to 100,000 s), and while they hold destinations that routed through
/// sink0, `ip link del sink0` waits in the kernel, unkillable, for the device to be free
/// ("unregister_netdevice: waiting for sink0 to become free"): it hung a CI run. So the
/// table is cleared with `expire_nodest_conn` on (the kernel then expires every connection
/// whose destination is gone), and the device is deleted only once no entry is left.
struct Scene;

const EXPIRE_NODEST_CONN: &str = "/proc/sys/net/ipv4/vs/expire_nodest_conn";

impl Drop for Scene {
    // A Drop runs outside any runtime and must block until the kernel is done.
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    fn drop(&mut self) {
        for state in ["master", "backup"] {
            let _ = Command::new("ipvsadm")
                .args(["--stop-daemon", state])
                .stderr(Stdio::null())
                .status();
        }
        let expire_before = std::fs::read_to_string(EXPIRE_NODEST_CONN).ok();
        let _ = std::fs::write(EXPIRE_NODEST_CONN, "1\n");
        let _ = Command::new("ipvsadm").arg("-C").status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut left = connection_entries();
        while !left.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
            left = connection_entries();
        }
        if let Some(before) = expire_before {
            let _ = std::fs::write(EXPIRE_NODEST_CONN, before);
        }
        let _ = Command::new("ipvsadm")
            .args(["--set", "900", "120", "300"])
            .status();
        if left.is_empty() {
            let _ = Command::new("ip").args(["link", "del", "sink0"]).status();
        } else {
            // Better a dummy device left down than a VM hung until its timeout.
            eprintln!(
                "kernel_diff: {} connection entries outlived the table; sink0 is left down, \
                 not deleted:\n{}",
                left.len(),
                left.join("\n")
            );
            let _ = Command::new("ip")
                .args(["link", "set", "sink0", "down"])
                .status();
            let _ = Command::new("ip")
                .args(["addr", "flush", "dev", "sink0"])
                .status();
        }
    }
}

/// `ipvsadm -Lnc` without its two header lines.
fn connection_entries() -> Vec<String> {
    Command::new("ipvsadm")
        .arg("-Lnc")
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .skip(2)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A few connections and datagrams through every address-based service with a destination,
/// so that counters are non-zero (and large enough, now and then, for K/M scaling).
fn send_traffic(rng: &mut Rng, table: &GenTable) {
    for service in &table.services {
        let (Some(target), true) = (service.target, service.lines.len() > 1) else {
            continue;
        };
        if target.port() == 0 {
            continue;
        }
        match service.kind {
            Kind::Tcp => {
                for _ in 0..rng.range(1, 3) {
                    // nothing answers: the SYN is counted, the socket closed before a retry
                    let _ = TcpStream::connect_timeout(&target, Duration::from_millis(30));
                }
            }
            Kind::Udp => {
                let bind: SocketAddr = if target.is_ipv4() {
                    "0.0.0.0:0".parse().unwrap()
                } else {
                    "[::]:0".parse().unwrap()
                };
                let socket = UdpSocket::bind(bind).unwrap();
                for _ in 0..rng.range(1, 4) {
                    let size = if rng.chance(30) { 60_000 } else { 100 };
                    let _ = socket.send_to(&vec![0u8; size], target);
                }
            }
            Kind::Sctp | Kind::Fwmark => {}
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

fn in_vm_or_panic() {
    assert_eq!(
        std::env::var("LDIRECTORD_VM").as_deref(),
        Ok("1"),
        "this test rewrites the IPVS table: run it inside the VM (tests/vm/suite.sh)"
    );
}

#[test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
fn listings_match_ipvsadm_on_random_tables() {
    in_vm_or_panic();
    let seed = env_u64("LDIRECTORD_DIFF_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let tables = env_u64("LDIRECTORD_DIFF_TABLES").unwrap_or(200);
    let only = env_u64("LDIRECTORD_DIFF_ONLY");
    let restore_program = restore();
    eprintln!(
        "differential test: seed {seed}, {tables} tables (replay: LDIRECTORD_DIFF_SEED={seed})"
    );
    let _scene = Scene;
    set_up_scene();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut services = 0;
    let mut tables_with_counters = 0;
    let mut daemons_running = false;
    for index in 0..tables {
        if only.is_some_and(|o| o != index) {
            continue;
        }
        let mut rng = Rng(seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let table = generate(&mut rng);
        let started = SystemTime::now();
        services += table.services.len();
        // every process counts under TCG: only stop daemons that were started
        if daemons_running {
            for state in ["master", "backup"] {
                let _ = Command::new("ipvsadm")
                    .args(["--stop-daemon", state])
                    .stderr(Stdio::null())
                    .status();
            }
            daemons_running = false;
        }
        let input = table.restore_input();
        // both restores start from an empty table: `-C` as their first rule, rather than
        // an `ipvsadm -C` process each
        let cleared_input = format!("-C\n{input}");
        // the reverse direction first: our client programs the table, ipvsadm reads it back
        let ours_programmed =
            run_with_input(&restore_program, &[], &cleared_input).map(|()| save_numeric());
        if let Err(e) = run_with_input("ipvsadm", &["-R"], &cleared_input) {
            failures.push(format!(
                "table {index}: ipvsadm -R refused the generated table: {e}\n{input}"
            ));
            continue;
        }
        let reference = save_numeric();
        if ours_programmed.as_ref() != Ok(&reference) {
            failures.push(format!(
                "table {index} (replay: LDIRECTORD_DIFF_SEED={seed} LDIRECTORD_DIFF_ONLY={index}): \
                 ipvsadm -Sn after ipvs-restore (+) vs after ipvsadm -R (-):\n{}",
                match &ours_programmed {
                    Ok(text) => line_diff(&reference, text),
                    Err(e) => format!("  ipvs-restore failed: {e}"),
                }
            ));
        }
        if let Some((tcp, fin, udp)) = table.timeouts {
            let (tcp, fin, udp) = (tcp.to_string(), fin.to_string(), udp.to_string());
            sh("ipvsadm", &["--set", &tcp, &fin, &udp]);
        }
        for daemon in &table.daemons {
            let args: Vec<&str> = daemon.iter().map(String::as_str).collect();
            sh("ipvsadm", &args);
            daemons_running = true;
        }
        if table.traffic {
            send_traffic(&mut rng, &table);
            tables_with_counters += usize::from(counters_moved());
        }
        let sets = option_sets(&mut rng, &table);
        let mut retries = 0;
        for result in compare_all(&Ours::for_table(index), &sets) {
            compared += 1;
            match result {
                Ok(n) => retries += n,
                Err(e) => failures.push(format!(
                    "table {index} (replay: LDIRECTORD_DIFF_SEED={seed} LDIRECTORD_DIFF_ONLY={index}): {e}\n  the table (ipvsadm -R):\n{}",
                    input.lines().map(|l| format!("    {l}\n")).collect::<String>()
                )),
            }
        }
        eprintln!(
            "table {index}: {} services, {} real servers, {}{} option sets{}, {retries} retries, {:.1} s",
            table.services.len(),
            table
                .services
                .iter()
                .map(|s| s.lines.len() - 1)
                .sum::<usize>(),
            if table.traffic { "traffic, " } else { "" },
            sets.len(),
            match Ours::for_table(index) {
                Ours::Program(_) => " (processes)",
                Ours::InProcess => "",
            },
            started.elapsed().unwrap_or_default().as_secs_f64()
        );
        if failures.len() >= 5 {
            failures.push("(stopped after 5 failing comparisons)".to_string());
            break;
        }
    }
    eprintln!(
        "differential test: seed {seed}: {compared} comparisons over {services} services \
         ({tables_with_counters} tables with non-zero counters), {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // the stats and rate comparisons only mean something if traffic reached the counters
    if only.is_none() && tables >= 20 {
        assert!(
            tables_with_counters > 0,
            "no table had non-zero counters after its traffic"
        );
    }
}

/// Whether any counter in the table is non-zero (`ipvsadm -Ln --stats --exact`).
fn counters_moved() -> bool {
    let out = Command::new("ipvsadm")
        .args(["-Ln", "--stats", "--exact"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(3)
        .any(|line| line.split_whitespace().skip(2).any(|n| n != "0"))
}
