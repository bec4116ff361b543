//! `ldirectord list`: the kernel's IPVS table as `ipvsadm -L` prints it, byte for byte,
//! read over netlink without ipvsadm. `--json` prints the documented JSON form instead
//! (docs/json-schema.md).
//!
//! ```text
//! ldirectord list [-n] [--stats|--rate|--thresholds|--persistent-conn|--tun-info]
//!                 [--exact] [--sort|--nosort] [-t|-u|--sctp-service ADDR:PORT | -f MARK [-6]]
//!                 [--timeout|--daemon] [--json]
//! ```

use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Parser;

use super::args::{argv_for, parse_args};
use super::exit;
use super::names::{SystemNames, parse_hosts, parse_services};
use crate::ipvs::listing::{self, ListOptions, Names, Numeric, View};
use crate::ipvs::{
    Backend, Daemon, Family, Info, IpvsClient, IpvsError, Protocol, ServiceKey, Table, Timeouts,
};

#[derive(Parser, Debug, Clone, Default, PartialEq, Eq)]
#[command(
    name = "ldirectord list",
    about = "Print the kernel's IPVS table as `ipvsadm -L` does",
    disable_help_flag = false
)]
pub struct ListArgs {
    /// Numeric output of addresses and ports.
    #[arg(short = 'n', long)]
    pub numeric: bool,
    /// Connection, packet and byte counters.
    #[arg(long)]
    pub stats: bool,
    /// Connection, packet and byte rates.
    #[arg(long)]
    pub rate: bool,
    /// Upper and lower connection thresholds.
    #[arg(long)]
    pub thresholds: bool,
    /// Persistent connections per real server.
    #[arg(long = "persistent-conn")]
    pub persistent_conn: bool,
    /// Tunnel type, port and checksum options.
    #[arg(long = "tun-info")]
    pub tun_info: bool,
    /// Counters in full, without K/M/G/T.
    #[arg(long)]
    pub exact: bool,
    /// Sort services and real servers (the default).
    #[arg(long)]
    pub sort: bool,
    /// Keep the kernel's order.
    #[arg(long)]
    pub nosort: bool,
    /// Only this TCP service (`host[:port]`, IPv6 as `[addr]:port`).
    #[arg(short = 't', long = "tcp-service", value_name = "SERVICE")]
    pub tcp: Option<String>,
    /// Only this UDP service.
    #[arg(short = 'u', long = "udp-service", value_name = "SERVICE")]
    pub udp: Option<String>,
    /// Only this SCTP service.
    #[arg(long = "sctp-service", value_name = "SERVICE")]
    pub sctp: Option<String>,
    /// Only this firewall-mark service.
    #[arg(short = 'f', long = "fwmark-service", value_name = "MARK")]
    pub fwmark: Option<u32>,
    /// The firewall-mark service is IPv6.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// The connection timeouts (tcp tcpfin udp).
    #[arg(long)]
    pub timeout: bool,
    /// The connection-synchronisation daemons.
    #[arg(long)]
    pub daemon: bool,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What a listing shows, decided the way ipvsadm decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Every service (with the header line).
    All(ListOptions),
    /// One service (no header line).
    One(ListOptions, ServiceKey),
    Timeouts,
    Daemons,
}

/// Everything a listing needs from the kernel.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub info: Option<Info>,
    pub table: Table,
    pub timeouts: Option<Timeouts>,
    pub daemons: Vec<Daemon>,
}

impl ListArgs {
    fn view(&self) -> View {
        if self.stats {
            View::Stats
        } else if self.rate {
            View::Rate
        } else if self.thresholds {
            View::Thresholds
        } else if self.persistent_conn {
            View::PersistentConn
        } else if self.tun_info {
            View::TunInfo
        } else {
            View::Default
        }
    }

    pub fn options(&self) -> ListOptions {
        ListOptions {
            view: self.view(),
            numeric: self.numeric,
            exact: self.exact,
            sort: !self.nosort,
        }
    }

    /// ipvsadm's precedence: a service, then `--timeout`, then `--daemon`, then all.
    pub fn mode(&self) -> anyhow::Result<Mode> {
        let counters = self.stats || self.rate || self.thresholds;
        if (self.timeout || self.daemon) && (counters || self.persistent_conn) {
            bail!("options conflicts in the list command");
        }
        let chosen = [
            self.tcp.is_some(),
            self.udp.is_some(),
            self.sctp.is_some(),
            self.fwmark.is_some(),
        ];
        if chosen.iter().filter(|c| **c).count() > 1 {
            bail!("only one service can be listed at a time");
        }
        if let Some(key) = self.service()? {
            return Ok(Mode::One(self.options(), key));
        }
        Ok(if self.timeout {
            Mode::Timeouts
        } else if self.daemon {
            Mode::Daemons
        } else {
            Mode::All(self.options())
        })
    }

    fn service(&self) -> anyhow::Result<Option<ServiceKey>> {
        if let Some(mark) = self.fwmark {
            let family = if self.ipv6 {
                Family::Inet6
            } else {
                Family::Inet
            };
            return Ok(Some(ServiceKey::fwmark(family, mark)));
        }
        let (protocol, spec) = match (&self.tcp, &self.udp, &self.sctp) {
            (Some(s), _, _) => (Protocol::Tcp, s),
            (_, Some(s), _) => (Protocol::Udp, s),
            (_, _, Some(s)) => (Protocol::Sctp, s),
            _ => return Ok(None),
        };
        let (addr, port) = parse_service_address(spec, protocol)?;
        Ok(Some(ServiceKey::Addr {
            protocol,
            addr,
            port,
        }))
    }
}

/// `host[:port]` as ipvsadm reads it: IPv6 in brackets, a host name through the system
/// resolver (IPv4 only, like its `gethostbyname`), a port number or a service name from
/// /etc/services; a missing port is 0.
pub fn parse_service_address(spec: &str, protocol: Protocol) -> anyhow::Result<(IpAddr, u16)> {
    let bad = || anyhow!("illegal virtual server address[:port] specified");
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match spec.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (spec, None),
        }
    };
    let addr = match host.parse::<IpAddr>() {
        Ok(a) => a,
        Err(_) if !spec.starts_with('[') => resolve_ipv4(host).ok_or_else(bad)?,
        Err(_) => return Err(bad()),
    };
    let port = match port {
        None => 0,
        Some(p) => match p.parse::<u16>() {
            Ok(n) => n,
            Err(_) => service_port(p, protocol).ok_or_else(bad)?,
        },
    };
    Ok((addr, port))
}

fn resolve_ipv4(host: &str) -> Option<IpAddr> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let from_file = parse_hosts(&hosts).into_iter().find_map(|(addr, _)| {
        let line_has = hosts.lines().any(|l| {
            let l = l.split('#').next().unwrap_or("");
            let mut f = l.split_whitespace();
            f.next().and_then(|a| a.parse::<IpAddr>().ok()) == Some(addr)
                && f.any(|name| name == host)
        });
        (addr.is_ipv4() && line_has).then_some(addr)
    });
    from_file.or_else(|| {
        use std::net::ToSocketAddrs;
        (host, 0)
            .to_socket_addrs()
            .ok()?
            .map(|a| a.ip())
            .find(IpAddr::is_ipv4)
    })
}

fn service_port(name: &str, protocol: Protocol) -> Option<u16> {
    let proto = protocol.name()?.to_ascii_lowercase();
    let text = std::fs::read_to_string("/etc/services").ok()?;
    parse_services(&text)
        .into_iter()
        .find(|(_, p, n)| *p == proto && n == name)
        .map(|(port, _, _)| port)
}

/// Reads what `mode` needs from `backend`.
pub async fn fetch<B: Backend>(backend: &mut B, mode: &Mode) -> Result<Fetched, IpvsError> {
    let mut fetched = Fetched::default();
    match mode {
        Mode::All(_) => {
            fetched.info = Some(backend.info().await?);
            fetched.table = backend.table().await?;
        }
        Mode::One(_, key) => {
            let service = backend.service(key).await?;
            let dests = backend.dests(&service.key).await?;
            fetched.table.services.push((service, dests));
        }
        Mode::Timeouts => fetched.timeouts = Some(backend.timeouts().await?),
        Mode::Daemons => fetched.daemons = backend.daemons().await?,
    }
    Ok(fetched)
}

/// The text (or JSON) of a listing.
pub fn render(mode: &Mode, json: bool, data: &Fetched, names: &mut dyn Names) -> String {
    let info = data.info.unwrap_or(Info {
        version: 0,
        conn_tab_size: 0,
    });
    match mode {
        Mode::All(opts) if json => {
            to_json(&listing::json_table(&info, &data.table, opts.sort, true))
        }
        Mode::All(opts) => listing::render_list(&info, &data.table, opts, names),
        Mode::One(opts, _) if json => {
            to_json(&listing::json_table(&info, &data.table, opts.sort, true))
        }
        Mode::One(opts, _) => match data.table.services.first() {
            Some((service, dests)) => listing::render_one(service, dests, opts, names),
            None => String::new(),
        },
        Mode::Timeouts => {
            let t = data.timeouts.unwrap_or_default();
            if json {
                to_json(&listing::json_timeouts(&t))
            } else {
                listing::render_timeouts(&t)
            }
        }
        Mode::Daemons if json => to_json(&listing::json_daemons(&data.daemons)),
        Mode::Daemons => listing::render_daemons(&data.daemons),
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain structs of strings and numbers cannot fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Connects to the kernel, runs `work`, and explains failures the way an operator needs.
pub(crate) fn with_kernel<T>(
    work: impl AsyncFnOnce(&mut IpvsClient) -> Result<T, IpvsError>,
) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let mut client = IpvsClient::connect().await.map_err(explain)?;
        work(&mut client).await.map_err(explain)
    })
}

pub(crate) fn explain(e: IpvsError) -> anyhow::Error {
    let message = match &e {
        IpvsError::NoSuchService => "No such service".to_string(),
        other => other.to_string(),
    };
    match e.hint() {
        Some(hint) => anyhow!("{message} ({hint})"),
        None => anyhow!("{message}"),
    }
}

pub fn run(args: &[String]) -> ExitCode {
    match parse_args("ldirectord list", "list", args) {
        Ok(args) => execute(&args).emit(),
        Err(code) => code,
    }
}

/// [`run`] without printing: what it would print and its exit status.
pub fn capture(args: &[String]) -> Captured {
    match parse_args_captured("ldirectord list", "list", args) {
        Ok(args) => execute(&args),
        Err(captured) => captured,
    }
}

fn execute(args: &ListArgs) -> Captured {
    let mode = match args.mode() {
        Ok(m) => m,
        Err(e) => return Captured::failed(exit::USAGE, format!("ldirectord list: {e}\n")),
    };
    let data = match with_kernel(async |client: &mut IpvsClient| fetch(client, &mode).await) {
        Ok(d) => d,
        Err(e) => return Captured::failed(exit::FAILURE, format!("ldirectord list: {e}\n")),
    };
    let text = if args.numeric || args.json {
        render(&mode, args.json, &data, &mut Numeric)
    } else {
        render(&mode, args.json, &data, &mut SystemNames::load())
    };
    Captured::printed(text)
}

/// What a `list` or `save` run prints, and its exit status. The differential test
/// (tests/kernel_diff.rs) runs thousands of listings; under emulation a process per
/// listing was most of its time, so it runs most of them in-process through this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub status: u8,
    pub stdout: String,
    pub stderr: String,
}

impl Captured {
    pub(crate) fn printed(stdout: String) -> Captured {
        Captured {
            status: exit::OK,
            stdout,
            stderr: String::new(),
        }
    }

    pub(crate) fn failed(status: u8, stderr: String) -> Captured {
        Captured {
            status,
            stdout: String::new(),
            stderr,
        }
    }

    /// Prints it as the binary does; the exit code.
    pub fn emit(&self) -> ExitCode {
        if !self.stderr.is_empty() {
            eprint!("{}", self.stderr);
        }
        if self.stdout.is_empty() {
            ExitCode::from(self.status)
        } else {
            print_or_fail(&self.stdout)
        }
    }
}

/// [`parse_args`] for [`Captured`] runs: clap's message goes into the result instead of
/// the terminal.
pub(crate) fn parse_args_captured<A: Parser>(
    name: &str,
    word: &str,
    args: &[String],
) -> Result<A, Captured> {
    A::try_parse_from(argv_for(name, word, args)).map_err(|e| {
        let text = e.render().to_string();
        if e.use_stderr() {
            Captured::failed(exit::USAGE, text)
        } else {
            Captured::printed(text)
        }
    })
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
pub(crate) fn print_or_fail(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("ldirectord: writing the listing: {e}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> ListArgs {
        let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        parse_args("ldirectord list", "list", &words).unwrap()
    }

    #[test]
    fn views_follow_ipvsadms_precedence() {
        assert_eq!(
            args(&["list", "--rate", "--stats"]).options().view,
            View::Stats
        );
        assert_eq!(
            args(&["list", "--tun-info", "--thresholds"]).options().view,
            View::Thresholds
        );
        assert!(!args(&["list", "--nosort"]).options().sort);
        assert!(args(&["list", "--sort"]).options().sort);
    }

    #[test]
    fn modes() {
        assert_eq!(args(&["list", "--timeout"]).mode().unwrap(), Mode::Timeouts);
        assert_eq!(args(&["list", "--daemon"]).mode().unwrap(), Mode::Daemons);
        assert!(args(&["list", "--timeout", "--stats"]).mode().is_err());
        assert!(
            args(&["list", "--daemon", "--persistent-conn"])
                .mode()
                .is_err()
        );
        let one = args(&["list", "-n", "-t", "10.0.0.1:80", "--timeout"])
            .mode()
            .unwrap();
        assert!(
            matches!(one, Mode::One(_, k) if k == ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80))
        );
        let fwm = args(&["list", "-f", "7", "-6"]).mode().unwrap();
        assert!(matches!(fwm, Mode::One(_, k) if k == ServiceKey::fwmark(Family::Inet6, 7)));
        assert!(
            args(&["list", "-t", "10.0.0.1:80", "-f", "1"])
                .mode()
                .is_err()
        );
    }

    #[test]
    fn captured_runs_report_what_the_binary_would_print() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Both fail before any kernel is asked.
        let conflict = capture(&words(&["list", "--timeout", "--stats"]));
        assert_eq!(conflict.status, exit::USAGE);
        assert_eq!(
            conflict.stderr,
            "ldirectord list: options conflicts in the list command\n"
        );
        assert!(conflict.stdout.is_empty());
        let unknown = capture(&words(&["list", "--no-such-option"]));
        assert_eq!(unknown.status, exit::USAGE);
        assert!(unknown.stderr.contains("--no-such-option"), "{unknown:?}");
        let help = capture(&words(&["list", "--help"]));
        assert_eq!(help.status, exit::OK);
        assert!(help.stdout.contains("ipvsadm -L"), "{help:?}");
    }

    #[test]
    fn service_addresses() {
        let p = |s| parse_service_address(s, Protocol::Udp);
        assert_eq!(p("10.0.0.1:53").unwrap(), ("10.0.0.1".parse().unwrap(), 53));
        assert_eq!(p("10.0.0.1").unwrap(), ("10.0.0.1".parse().unwrap(), 0));
        assert_eq!(
            p("[2001:db8::1]:53").unwrap(),
            ("2001:db8::1".parse().unwrap(), 53)
        );
        assert_eq!(
            p("[2001:db8::1]").unwrap(),
            ("2001:db8::1".parse().unwrap(), 0)
        );
        assert!(p("[2001:db8::1").is_err());
        assert!(p("10.0.0.1:99999").is_err());
        assert!(p("[not-an-address]:53").is_err());
    }
}
