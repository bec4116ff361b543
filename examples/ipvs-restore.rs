//! `ipvs-restore`: the library's counterpart of `ipvsadm -R`. Reads rules in the format
//! `ipvsadm -S` writes (one command a line: `-A`/`-E`/`-D` services, `-a`/`-e`/`-d` real
//! servers, `-C`) from stdin and applies them through [`IpvsClient`]: one netlink socket,
//! requests batched, no ipvsadm.
//!
//! The real-kernel tests use it to program tables that `ipvsadm -Sn` must read back as
//! ipvsadm itself would have programmed them (`tests/kernel_diff.rs`), and the benchmark
//! times it against `ipvsadm -R` (`tests/vm/bench-ipvs.sh`).
//!
//! ```text
//! ipvs-restore [--dry-run] < rules
//! ```
//!
//! `--dry-run` prints the operations instead of applying them. Exit status 1 when a line does
//! not parse (nothing is applied then) or the kernel refuses an operation (the others are
//! still applied, as `ipvsadm -R` does line by line).

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::str::FromStr;

use ldirectord::ipvs::{
    Backend, Dest, DestKey, Family, Forward, IpvsClient, Netmask, Op, Protocol, Service,
    ServiceFlags, ServiceKey, Tunnel, TunnelFlags, TunnelType,
};

/// ipvsadm's defaults: `-p` without a value, and `-s` left out.
const DEFAULT_PERSISTENCE: u32 = 360;
const DEFAULT_SCHEDULER: &str = "wlc";
/// Rules files are small; a bigger stdin is a mistake, not a table.
const MAX_INPUT: u64 = 256 << 20;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let dry_run = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--dry-run") => true,
        Some(_) => {
            eprintln!("usage: ipvs-restore [--dry-run] < rules");
            return ExitCode::from(2);
        }
    };
    let mut input = String::new();
    if let Err(e) = std::io::stdin().take(MAX_INPUT).read_to_string(&mut input) {
        eprintln!("ipvs-restore: reading stdin: {e}");
        return ExitCode::FAILURE;
    }
    let ops = match parse_rules(&input) {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("ipvs-restore: {e}");
            return ExitCode::FAILURE;
        }
    };
    if dry_run {
        for op in &ops {
            println!("{op}");
        }
        return ExitCode::SUCCESS;
    }
    let mut client = match IpvsClient::connect().await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("ipvs-restore: {e}");
            return ExitCode::FAILURE;
        }
    };
    let results = match client.apply(&ops).await {
        Ok(results) => results,
        Err(e) => {
            eprintln!("ipvs-restore: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    for (op, result) in ops.iter().zip(&results) {
        if let Err(e) = result {
            failed += 1;
            eprintln!("ipvs-restore: {op}: {e}");
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every line of `text` as operations, in order; blank lines and `#` comments are skipped.
fn parse_rules(text: &str) -> Result<Vec<Op>, String> {
    let mut ops = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let op = parse_line(line).map_err(|e| format!("line {}: {e}: {line}", number + 1))?;
        ops.push(op);
    }
    Ok(ops)
}

/// What one line says, before it becomes an [`Op`].
#[derive(Default)]
struct Line<'a> {
    command: Option<&'a str>,
    service: Option<ServiceKey>,
    /// the service was given without a port (`-t addr`): ipvsadm then means port 0
    real: Option<(IpAddr, Option<u16>)>,
    scheduler: Option<&'a str>,
    persistence: Option<u32>,
    netmask: Option<&'a str>,
    flags: ServiceFlags,
    pe_name: Option<&'a str>,
    forward: Option<Forward>,
    weight: Option<i32>,
    upper: Option<u32>,
    lower: Option<u32>,
    tunnel_type: Option<TunnelType>,
    tunnel_port: Option<u16>,
    tunnel_flags: Option<TunnelFlags>,
    ipv6_fwmark: bool,
    fwmark: Option<u32>,
}

fn parse_line(line: &str) -> Result<Op, String> {
    let mut words = line.split_whitespace().peekable();
    let mut l = Line::default();
    while let Some(word) = words.next() {
        let mut value = |what: &str| words.next().ok_or_else(|| format!("{word} needs {what}"));
        match word {
            "-A" | "--add-service" | "-E" | "--edit-service" | "-D" | "--delete-service" | "-a"
            | "--add-server" | "-e" | "--edit-server" | "-d" | "--delete-server" | "-C"
            | "--clear" => {
                if l.command.replace(word).is_some() {
                    return Err("more than one command".into());
                }
            }
            "-t" | "--tcp-service" => {
                l.service = Some(parse_service(Protocol::Tcp, value("an address")?)?)
            }
            "-u" | "--udp-service" => {
                l.service = Some(parse_service(Protocol::Udp, value("an address")?)?)
            }
            "--sctp-service" => {
                l.service = Some(parse_service(Protocol::Sctp, value("an address")?)?)
            }
            "-f" | "--fwmark-service" => l.fwmark = Some(number(value("a mark")?)?),
            "-6" | "--ipv6" => l.ipv6_fwmark = true,
            "-s" | "--scheduler" => l.scheduler = Some(value("a scheduler")?),
            "-p" | "--persistent" => {
                // the timeout is optional: the next word is it only if it is a number
                l.persistence = Some(DEFAULT_PERSISTENCE);
                if let Some(next) = words.next_if(|w| w.bytes().all(|b| b.is_ascii_digit())) {
                    l.persistence = Some(number(next)?);
                }
            }
            "-M" | "--netmask" => l.netmask = Some(value("a netmask")?),
            "-b" | "--sched-flags" => {
                for name in value("flags")?.split(',') {
                    l.flags |= match name {
                        "flag-1" | "sh-fallback" | "mh-fallback" => ServiceFlags::SCHED1,
                        "flag-2" | "sh-port" | "mh-port" => ServiceFlags::SCHED2,
                        "flag-3" => ServiceFlags::SCHED3,
                        other => return Err(format!("unknown scheduler flag {other}")),
                    };
                }
            }
            "-o" | "--ops" => l.flags |= ServiceFlags::ONEPACKET,
            "--pe" => l.pe_name = Some(value("an engine")?),
            "-r" | "--real-server" => l.real = Some(parse_real(value("an address")?)?),
            "-g" | "--gatewaying" => l.forward = Some(Forward::Route),
            "-i" | "--ipip" => l.forward = Some(Forward::Tunnel),
            "-m" | "--masquerading" => l.forward = Some(Forward::Masq),
            "-w" | "--weight" => l.weight = Some(number(value("a weight")?)?),
            "-x" | "--u-threshold" => l.upper = Some(number(value("a threshold")?)?),
            "-y" | "--l-threshold" => l.lower = Some(number(value("a threshold")?)?),
            "--tun-type" => {
                l.tunnel_type = Some(match value("a type")? {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue,
                    "gre" => TunnelType::Gre,
                    other => return Err(format!("unknown tunnel type {other}")),
                })
            }
            "--tun-port" => l.tunnel_port = Some(number(value("a port")?)?),
            "--tun-nocsum" => l.tunnel_flags = Some(TunnelFlags::NOCSUM),
            "--tun-csum" => l.tunnel_flags = Some(TunnelFlags::CSUM),
            "--tun-remcsum" => l.tunnel_flags = Some(TunnelFlags::REMCSUM),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if let Some(mark) = l.fwmark {
        let family = if l.ipv6_fwmark {
            Family::Inet6
        } else {
            Family::Inet
        };
        l.service = Some(ServiceKey::fwmark(family, mark));
    }
    let command = l.command.ok_or("no command (-A, -a, -D, …)")?;
    if matches!(command, "-C" | "--clear") {
        return Ok(Op::Flush);
    }
    let key = l
        .service
        .ok_or("no service (-t, -u, --sctp-service or -f)")?;
    match command {
        "-A" | "--add-service" => Ok(Op::AddService(service(&l, key)?)),
        "-E" | "--edit-service" => Ok(Op::EditService(service(&l, key)?)),
        "-D" | "--delete-service" => Ok(Op::DelService(key)),
        "-a" | "--add-server" => Ok(Op::AddDest {
            service: key,
            dest: dest(&l, &key)?,
        }),
        "-e" | "--edit-server" => Ok(Op::EditDest {
            service: key,
            dest: dest(&l, &key)?,
        }),
        _ => {
            let dest = dest(&l, &key)?;
            Ok(Op::DelDest {
                service: key,
                dest: DestKey {
                    addr: dest.addr,
                    port: dest.port,
                },
            })
        }
    }
}

fn service(l: &Line<'_>, key: ServiceKey) -> Result<Service, String> {
    let mut service = Service::new(key, l.scheduler.unwrap_or(DEFAULT_SCHEDULER));
    service.flags = l.flags;
    if let Some(timeout) = l.persistence {
        service = service.persistent(timeout);
    }
    if let Some(mask) = l.netmask {
        service.netmask = match key.family() {
            Family::Inet => {
                Netmask::V4(Ipv4Addr::from_str(mask).map_err(|_| format!("bad netmask {mask}"))?)
            }
            Family::Inet6 => Netmask::V6(number(mask)?),
        };
    }
    service.pe_name = l.pe_name.map(str::to_string);
    Ok(service)
}

fn dest(l: &Line<'_>, key: &ServiceKey) -> Result<Dest, String> {
    let (addr, port) = l.real.ok_or("no real server (-r)")?;
    let forward = l.forward.unwrap_or(Forward::Route);
    let service_port = match key {
        ServiceKey::Addr { port, .. } => Some(*port),
        ServiceKey::Fwmark { .. } => None,
    };
    // as ipvsadm: a real server without a port takes the service's, and direct routing or
    // a tunnel cannot change the port at all (fwmark services have none to keep)
    let port = match (service_port, forward) {
        (Some(service_port), Forward::Route | Forward::Tunnel) => service_port,
        (service_port, _) => port.or(service_port).unwrap_or(0),
    };
    let mut dest = Dest::new(addr, port, forward, l.weight.unwrap_or(1));
    dest.upper_threshold = l.upper.unwrap_or(0);
    dest.lower_threshold = l.lower.unwrap_or(0);
    if forward == Forward::Tunnel {
        dest.tunnel = Tunnel {
            kind: l.tunnel_type.unwrap_or_default(),
            port: l.tunnel_port.unwrap_or(0),
            flags: l.tunnel_flags.unwrap_or_default(),
        };
    }
    Ok(dest)
}

/// `addr:port`, `[v6]:port`, or an address alone (port 0, as ipvsadm takes it).
fn parse_service(protocol: Protocol, text: &str) -> Result<ServiceKey, String> {
    let (addr, port) = parse_endpoint(text)?;
    Ok(ServiceKey::Addr {
        protocol,
        addr,
        port: port.unwrap_or(0),
    })
}

fn parse_real(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    parse_endpoint(text)
}

fn parse_endpoint(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad = || format!("bad address {text} (numeric addresses only)");
    let (addr, port) = if let Some(rest) = text.strip_prefix('[') {
        let (addr, rest) = rest.split_once(']').ok_or_else(bad)?;
        (addr, rest.strip_prefix(':'))
    } else if text.matches(':').count() > 1 {
        (text, None)
    } else {
        match text.split_once(':') {
            Some((addr, port)) => (addr, Some(port)),
            None => (text, None),
        }
    };
    let addr = IpAddr::from_str(addr).map_err(|_| bad())?;
    let port = port.map(number).transpose()?;
    Ok((addr, port))
}

fn number<T: FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("bad number {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Op {
        parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn services_take_ipvsadm_defaults() {
        let Op::AddService(s) = one("-A -t 10.0.0.1:80") else {
            panic!()
        };
        assert_eq!(s.scheduler, "wlc");
        assert!(!s.is_persistent());
        let Op::AddService(s) = one("-A -u [fd00::1]:53 -s sh -p -M 64 -b sh-port,sh-fallback -o")
        else {
            panic!()
        };
        assert_eq!((s.timeout, s.netmask), (360, Netmask::V6(64)));
        assert_eq!(
            s.flags,
            ServiceFlags::PERSISTENT
                | ServiceFlags::SCHED1
                | ServiceFlags::SCHED2
                | ServiceFlags::ONEPACKET
        );
        let Op::AddService(s) = one("-A -f 7 -6 -s rr -p 60 --pe sip") else {
            panic!()
        };
        assert_eq!(s.key, ServiceKey::fwmark(Family::Inet6, 7));
        assert_eq!((s.timeout, s.pe_name.as_deref()), (60, Some("sip")));
    }

    #[test]
    fn real_servers_follow_ipvsadm_port_rules() {
        let port = |line| match one(line) {
            Op::AddDest { dest, .. } => dest.port,
            other => panic!("{other:?}"),
        };
        assert_eq!(port("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -g"), 80);
        assert_eq!(port("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m"), 8080);
        assert_eq!(port("-a -t 10.0.0.1:80 -r 10.0.0.2 -m"), 80);
        assert_eq!(port("-a -f 3 -r 10.0.0.2 -i"), 0);
        assert_eq!(port("-a -f 3 -r 10.0.0.2:25 -g"), 25);
    }

    #[test]
    fn tunnels_and_thresholds() {
        let Op::AddDest { dest, .. } = one(
            "-a -t [fd00::1]:80 -r 10.0.0.2:80 -i -w 0 -x 10 -y 5 --tun-type gue --tun-port 6080 --tun-remcsum",
        ) else {
            panic!()
        };
        assert_eq!(
            (dest.weight, dest.upper_threshold, dest.lower_threshold),
            (0, 10, 5)
        );
        assert_eq!(
            dest.tunnel,
            Tunnel {
                kind: TunnelType::Gue,
                port: 6080,
                flags: TunnelFlags::REMCSUM
            }
        );
    }

    #[test]
    fn deletions_and_errors() {
        assert_eq!(
            one("-D -t 10.0.0.1:80"),
            Op::DelService(ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80))
        );
        assert_eq!(one("-C"), Op::Flush);
        for bad in [
            "-A",
            "-t 10.0.0.1:80",
            "-A -t host:80",
            "-A -t 10.0.0.1:80 -s",
            "-A -a -t 1.2.3.4:1",
            "-A -t 1.2.3.4:1 --frob",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
        assert!(
            parse_rules("# comment\n\n-C\n-A -t 1.2.3.4:99999\n")
                .unwrap_err()
                .starts_with("line 4:")
        );
    }
}
