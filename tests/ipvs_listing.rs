//! `ldirectord list`/`save` must print what ipvsadm 1.31 printed for the same table.
//!
//! The fixtures come from `tests/golden/ipvs/capture_listing.py`, run in the project's VM:
//! the netlink traffic behind ipvsadm's listings (so the very table it printed), its
//! outputs for 23 option sets, and what the VM's resolver answered for each address and
//! port. Here the table is decoded from that traffic, rendered with the same options, and
//! compared byte for byte.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use clap::Parser;
use ldirectord::cli::list::{Fetched, ListArgs, Mode, render};
use ldirectord::cli::save::{self, SaveArgs};
use ldirectord::ipvs::codec::{IpvsAttr, IpvsCmd, IpvsMessage};
use ldirectord::ipvs::exchange;
use ldirectord::ipvs::listing::{Names, Numeric};
use ldirectord::ipvs::{Dest, Family, Protocol, Service, convert};
use netlink_packet_core::NetlinkBuffer;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/ipvs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Messages of an annotated capture file: (to the kernel?, bytes).
fn annotated(text: &str) -> Vec<(bool, Vec<u8>)> {
    let mut out: Vec<(bool, Vec<u8>)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("> ").or(line.strip_prefix("< ")) {
            let _ = rest;
            out.push((line.starts_with('>'), Vec::new()));
            continue;
        }
        let data = line.split(';').next().unwrap_or("").trim();
        if line.starts_with('#') || data.is_empty() {
            continue;
        }
        let last = out.last_mut().unwrap();
        last.1.extend(
            data.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap()),
        );
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// What ipvsadm asked and the kernel answered, turned into what `list` fetches.
fn fetched_from(traffic: &[(bool, Vec<u8>)]) -> Fetched {
    let mut requests: HashMap<(u32, u32), IpvsMessage> = HashMap::new();
    let mut fetched = Fetched::default();
    let mut dests_of: Vec<(ldirectord::ipvs::ServiceKey, Vec<Dest>)> = Vec::new();
    for (to_kernel, bytes) in traffic {
        let h = NetlinkBuffer::new_checked(&bytes[..]).unwrap();
        let id = (h.sequence_number(), h.port_number());
        let Ok(msg) = exchange::decode::<IpvsMessage>(bytes) else {
            continue; // ACK, DONE
        };
        if *to_kernel {
            requests.insert(id, msg);
            continue;
        }
        let request = &requests[&id];
        match request.cmd {
            IpvsCmd::GetInfo => fetched.info = Some(convert::info_from_reply(&msg).unwrap()),
            IpvsCmd::GetService => {
                let s = convert::service_from_reply(&msg).unwrap();
                fetched.table.services.push((s, Vec::new()));
            }
            IpvsCmd::GetDest => {
                let IpvsAttr::Service(nest) = &request.attrs[0] else {
                    panic!("GET_DEST without a service")
                };
                let key = convert::service_from_attrs(&with_sched(&nest.attrs))
                    .unwrap()
                    .key;
                let dest = convert::dest_from_reply(&msg, key.family()).unwrap();
                match dests_of.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, list)) => list.push(dest),
                    None => dests_of.push((key, vec![dest])),
                }
            }
            IpvsCmd::GetConfig => {
                fetched.timeouts = Some(convert::timeouts_from_reply(&msg).unwrap())
            }
            IpvsCmd::GetDaemon => fetched
                .daemons
                .push(convert::daemon_from_reply(&msg).unwrap()),
            other => panic!("unexpected request {other:?}"),
        }
    }
    for (service, dests) in &mut fetched.table.services {
        if let Some((_, d)) = dests_of.iter().find(|(k, _)| *k == service.key) {
            *dests = d.clone();
        }
    }
    fetched
}

/// ipvsadm's identity-only nests still decode as services.
fn with_sched(attrs: &[ldirectord::ipvs::codec::SvcAttr]) -> Vec<ldirectord::ipvs::codec::SvcAttr> {
    attrs.to_vec()
}

/// The names the VM's resolver gave (tests/golden/ipvs/listing_names.txt).
struct FixtureNames {
    hosts: HashMap<IpAddr, String>,
    services: HashMap<(u16, String), String>,
}

impl FixtureNames {
    fn load() -> FixtureNames {
        let mut names = FixtureNames {
            hosts: HashMap::new(),
            services: HashMap::new(),
        };
        for line in fixture("listing_names.txt").lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["host", addr, name] => {
                    names.hosts.insert(addr.parse().unwrap(), name.to_string());
                }
                ["service", port, proto, name] => {
                    names
                        .services
                        .insert((port.parse().unwrap(), proto.to_string()), name.to_string());
                }
                _ => {}
            }
        }
        names
    }
}

impl Names for FixtureNames {
    fn host(&mut self, addr: &IpAddr) -> Option<String> {
        self.hosts.get(addr).cloned()
    }

    fn service(&mut self, port: u16, protocol: Protocol) -> Option<String> {
        let proto = protocol.name()?.to_ascii_lowercase();
        self.services.get(&(port, proto)).cloned()
    }
}

struct Section {
    args: Vec<String>,
    traffic: Vec<(bool, Vec<u8>)>,
    expected: String,
}

fn sections() -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in fixture("listing_outputs.txt").split_inclusive('\n') {
        if let Some(cmd) = line.strip_prefix("### ipvsadm ") {
            out.push(Section {
                args: cmd.split_whitespace().map(str::to_string).collect(),
                traffic: Vec::new(),
                expected: String::new(),
            });
        } else if let Some(hex) = line.strip_prefix("#> ").or(line.strip_prefix("#< ")) {
            let s = out.last_mut().unwrap();
            s.traffic.push((line.starts_with("#>"), unhex(hex.trim())));
        } else {
            out.last_mut().unwrap().expected.push_str(line);
        }
    }
    out
}

fn ours(section: &Section, base: &Fetched) -> String {
    let data = if section.traffic.is_empty() {
        base.clone()
    } else {
        fetched_from(&section.traffic)
    };
    let numeric = section.args.iter().any(|a| a == "-n");
    let mut fixture_names = FixtureNames::load();
    let names: &mut dyn Names = if numeric {
        &mut Numeric
    } else {
        &mut fixture_names
    };
    if section.args[0] == "-S" {
        let args = SaveArgs::try_parse_from(
            std::iter::once("save").chain(section.args[1..].iter().map(String::as_str)),
        )
        .unwrap();
        let info = data.info.unwrap();
        return save::render(&args, &info, &data.table, names);
    }
    let args = ListArgs::try_parse_from(
        std::iter::once("list").chain(section.args[1..].iter().map(String::as_str)),
    )
    .unwrap();
    let mode = args.mode().unwrap();
    let data = match &mode {
        // What `fetch` would have read: that one service.
        Mode::One(_, key) => Fetched {
            table: ldirectord::ipvs::Table {
                services: data
                    .table
                    .services
                    .iter()
                    .filter(|(s, _)| s.key == *key)
                    .cloned()
                    .collect(),
            },
            ..data
        },
        _ => data,
    };
    render(&mode, false, &data, names)
}

#[test]
fn every_listing_is_byte_identical_to_ipvsadm() {
    let base = fetched_from(&annotated(&fixture("listing_dump.txt")));
    assert_eq!(base.table.services.len(), 14);
    let all = sections();
    assert_eq!(all.len(), 23);
    let mut failures = Vec::new();
    for section in &all {
        let got = ours(section, &base);
        if got != section.expected {
            let theirs: Vec<&str> = section.expected.split_inclusive('\n').collect();
            let mine: Vec<&str> = got.split_inclusive('\n').collect();
            let diff: Vec<String> = (0..theirs.len().max(mine.len()))
                .filter(|i| theirs.get(*i) != mine.get(*i))
                .take(6)
                .map(|i| {
                    format!(
                        "  line {}: ipvsadm {:?}\n          ours    {:?}",
                        i + 1,
                        theirs.get(i),
                        mine.get(i)
                    )
                })
                .collect();
            failures.push(format!(
                "ipvsadm {}\n{}",
                section.args.join(" "),
                diff.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_fixture_exercises_the_quirks() {
    let text = fixture("listing_outputs.txt");
    for quirk in [
        "FWM  -1294967296",                     // %d of a mark above 2^31
        "TCP  192.168.0.1:8081 sh ()",          // SCHED3 alone under sh
        "TCP  a-rather-long-virtual-servic rr", // IPv4 names cut at 33
        "  -> realserver-number-eleven.exa ",   // and at 28
        "[2001:db8:0:0:1::]",                   // inet_ntop's choice of run
        "-s sh -b \n",                          // trailing space in -S
        "gue:6080:+c",
    ] {
        assert!(text.contains(quirk), "{quirk}");
    }
    // 200.x before 1.x before 10.x: ipvsadm's comparator wraps.
    let first = text.find("TCP  200.1.1.1:443").unwrap();
    assert!(first < text.find("TCP  1.2.3.4:22").unwrap());
    assert!(text.find("TCP  1.2.3.4:22").unwrap() < text.find("TCP  10.0.0.100:80").unwrap());
}

#[test]
fn stats_traffic_was_recorded() {
    let with_counters = sections()
        .into_iter()
        .find(|s| s.args.join(" ") == "-L -n --stats")
        .unwrap();
    let data = fetched_from(&with_counters.traffic);
    let busy: Vec<&Service> = data
        .table
        .services
        .iter()
        .map(|(s, _)| s)
        .filter(|s| s.stats.conns > 0)
        .collect();
    assert_eq!(busy.len(), 1);
    assert_eq!(busy[0].key.family(), Family::Inet);
}

fn fixture_data() -> Fetched {
    let mut base = fetched_from(&annotated(&fixture("listing_dump.txt")));
    let extra = sections();
    for s in extra.iter().filter(|s| !s.traffic.is_empty()) {
        let f = fetched_from(&s.traffic);
        if f.timeouts.is_some() {
            base.timeouts = f.timeouts;
        }
        if !f.daemons.is_empty() {
            base.daemons = f.daemons;
        }
    }
    base
}

fn json_of(words: &[&str]) -> String {
    let data = fixture_data();
    if words[0] == "save" {
        let args = SaveArgs::try_parse_from(words.iter().copied()).unwrap();
        return save::render(&args, &data.info.unwrap(), &data.table, &mut Numeric);
    }
    let args = ListArgs::try_parse_from(words.iter().copied()).unwrap();
    render(&args.mode().unwrap(), true, &data, &mut Numeric)
}

#[test]
fn json_documents() {
    let list = json_of(&["list", "--json"]);
    let parsed: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(parsed["schema"], 1);
    assert_eq!(parsed["services"].as_array().unwrap().len(), 14);
    insta::assert_snapshot!("list_json", list);
    insta::assert_snapshot!("save_json", json_of(&["save", "--json"]));
    insta::assert_snapshot!(
        "list_timeout_json",
        json_of(&["list", "--timeout", "--json"])
    );
    insta::assert_snapshot!("list_daemon_json", json_of(&["list", "--daemon", "--json"]));
    insta::assert_snapshot!(
        "list_one_json",
        json_of(&["list", "-u", "[2001:db8::100]:53", "--json"])
    );
}

/// The in-memory kernel through the same fetch and render as the real one.
#[tokio::test]
async fn listing_the_fake_kernel() {
    use ldirectord::cli::list::fetch;
    use ldirectord::ipvs::{
        Backend, Daemon, DaemonState, FakeKernel, Forward, Netmask, Op, ServiceKey,
    };
    let mut kernel = FakeKernel::new();
    let web = ServiceKey::tcp("192.0.2.10".parse().unwrap(), 80);
    let dns6 = ServiceKey::udp("2001:db8::53".parse().unwrap(), 53);
    let mut dns = Service::new(dns6, "sh").persistent(3600);
    dns.netmask = Netmask::V6(48);
    let ops = vec![
        Op::AddService(Service::new(web, "wlc")),
        Op::AddDest {
            service: web,
            dest: Dest::new("192.0.2.21".parse().unwrap(), 8080, Forward::Masq, 2),
        },
        Op::AddDest {
            service: web,
            dest: Dest::new("192.0.2.20".parse().unwrap(), 8080, Forward::Masq, 0),
        },
        Op::AddService(dns),
        Op::AddDest {
            service: dns6,
            dest: Dest::new("2001:db8::1:5".parse().unwrap(), 53, Forward::Route, 1),
        },
        Op::StartDaemon(Daemon::new(DaemonState::Master, "lo", 3)),
    ];
    assert!(kernel.apply(&ops).await.unwrap().iter().all(Result::is_ok));
    kernel.update_dest(
        &web,
        &"192.0.2.21:8080"
            .parse::<std::net::SocketAddr>()
            .map(|a| ldirectord::ipvs::DestKey {
                addr: a.ip(),
                port: a.port(),
            })
            .unwrap(),
        |d| {
            d.active_conns = 12;
            d.inactive_conns = 345;
            d.stats.conns = 123_456_789;
            d.stats.inbytes = 98_765_432_101;
        },
    );
    let mut out = String::new();
    for words in [
        &["list", "-n"][..],
        &["list", "-n", "--stats"],
        &["list", "-n", "--stats", "--exact"],
        &["list", "-n", "--thresholds"],
        &["list", "-n", "-t", "192.0.2.10:80"],
        &["list", "--daemon"],
        &["list", "--timeout"],
    ] {
        let args = ListArgs::try_parse_from(words.iter().copied()).unwrap();
        let mode = args.mode().unwrap();
        let data = fetch(&mut kernel, &mode).await.unwrap();
        out.push_str(&format!("$ ldirectord {}\n", words.join(" ")));
        out.push_str(&render(&mode, false, &data, &mut Numeric));
    }
    let table = kernel.table().await.unwrap();
    out.push_str("$ ldirectord save -n\n");
    out.push_str(&save::render(
        &SaveArgs::try_parse_from(["save", "-n"]).unwrap(),
        &kernel.info().await.unwrap(),
        &table,
        &mut Numeric,
    ));
    insta::assert_snapshot!("fake_kernel_listings", out);
}

#[test]
fn command_line_errors() {
    use assert_cmd::Command;
    let usage = Command::cargo_bin("ldirectord")
        .unwrap()
        .args(["list", "--timeout", "--stats"])
        .assert()
        .code(255);
    let stderr = String::from_utf8_lossy(&usage.get_output().stderr).into_owned();
    assert!(
        stderr.contains("options conflicts in the list command"),
        "{stderr}"
    );
    Command::cargo_bin("ldirectord")
        .unwrap()
        .args(["save", "--bogus"])
        .assert()
        .code(255);
    let help = Command::cargo_bin("ldirectord")
        .unwrap()
        .args(["list", "--help"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&help.get_output().stdout).contains("--persistent-conn"));
}
