//! Property: for any valid configuration text, `render(model)` reads back to the same model
//! (and renders to the same text again). The generator writes random but valid files: every
//! directive at both levels, IPv4/IPv6/fwmark virtuals, ranges, per-real checks, odd quoting.

use std::path::Path;

use ldirectord::config::{self, Config, FakeHost};
use proptest::prelude::*;
use proptest::sample::select;

fn yes_no() -> impl Strategy<Value = &'static str> {
    select(vec!["yes", "no"])
}

/// Printable text for quoted values, quotes and `#` included.
fn quoted_text() -> impl Strategy<Value = String> {
    "[ -~]{1,24}".prop_filter("needs a non-blank", |s| !s.trim().is_empty())
}

/// Unquoted free text (servicename, comment, …): no leading or trailing blanks, and no
/// `#`, which starts a comment there.
fn free_text() -> impl Strategy<Value = String> {
    "[!-\"$-~][ -\"$-~]{0,20}[!-\"$-~]".prop_map(|s| s)
}

fn path() -> impl Strategy<Value = String> {
    "(/[a-z0-9._-]{1,8}){1,3}"
}

fn email_list() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z]{1,6}@[a-z]{1,6}\\.example", 1..3).prop_map(|v| v.join(", "))
}

fn statuses() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("all".to_owned()),
        Just("none".to_owned()),
        prop::sample::subsequence(vec!["starting", "running", "stopping", "reloading"], 1..4)
            .prop_map(|v| v.join(",")),
    ]
}

fn forwarding() -> impl Strategy<Value = &'static str> {
    select(vec!["gate", "masq", "ipip"])
}

/// Directives valid at both levels, as `key = value` lines.
fn shared_lines(six: bool) -> impl Strategy<Value = Vec<String>> {
    let fb_key = if six { "fallback6" } else { "fallback" };
    let fb_host = if six {
        "[2001:db8::fb]".to_owned()
    } else {
        "127.0.0.1".to_owned()
    };
    prop::collection::vec(
        prop_oneof![
            (1u32..100).prop_map(|n| format!("checktimeout = {n}")),
            (1u32..100).prop_map(|n| format!("negotiatetimeout = {n}")),
            (1u32..100).prop_map(|n| format!("checkinterval = {n}")),
            (1u32..10).prop_map(|n| format!("checkcount = {n}")),
            (1u32..10).prop_map(|n| format!("failurecount = {n}")),
            yes_no().prop_map(|v| format!("quiescent = {v}")),
            yes_no().prop_map(|v| format!("cleanstop = {v}")),
            email_list().prop_map(|v| format!("emailalert = \"{v}\"")),
            (0u32..10_000).prop_map(|n| format!("emailalertfreq = {n}")),
            statuses().prop_map(|v| format!("emailalertstatus = {v}")),
            "[a-z]{1,8}\\.example\\.com".prop_map(|v| format!("smtp = {v}")),
            path().prop_map(|v| format!("fallbackcommand = \"{v}\"")),
            (prop::option::of(1u16..), forwarding(), any::<bool>()).prop_map(
                move |(port, fwd, named)| match (port, named) {
                    (_, true) => format!("{fb_key} = {fb_host}:domain {fwd}"),
                    (Some(p), false) => format!("{fb_key} = {fb_host}:{p} {fwd}"),
                    (None, false) => format!("{fb_key} = {fb_host} {fwd}"),
                }
            ),
        ],
        0..6,
    )
}

fn global_lines() -> impl Strategy<Value = Vec<String>> {
    let own = prop::collection::vec(
        prop_oneof![
            yes_no().prop_map(|v| format!("autoreload = {v}")),
            yes_no().prop_map(|v| format!("fork = {v}")),
            yes_no().prop_map(|v| format!("supervised = {v}")),
            yes_no().prop_map(|v| format!("readdquiescent = {v}")),
            path().prop_map(|v| format!("callback = \"{v}\"")),
            path().prop_map(|v| format!("logfile = \"{v}\"")),
            select(vec!["daemon", "local0", "local7"]).prop_map(|v| format!("logfile = \"{v}\"")),
            "[a-z]{1,8}\\.cf".prop_map(|v| format!("execute = {v}")),
            Just("maintenancedir = /tmp".to_owned()),
            free_text().prop_map(|v| format!("emailalertfrom = {v}")),
            Just("fallback6 = [::1]:80 gate".to_owned()),
            select(vec!["9469", "[::1]:9469", "192.0.2.1:9100", "no"])
                .prop_map(|v| format!("metrics = {v}")),
            (select(vec!["master", "backup", "both"]), 0u8..=255).prop_map(|(r, id)| format!(
                "syncdaemon = {r}\nsyncinterface = eth0\nsyncid = {id}"
            )),
            select(vec![
                "no",
                "9469",
                "127.0.0.1:9100",
                "[::1]:9469",
                "0.0.0.0:80"
            ])
            .prop_map(|v| format!("metrics = {v}")),
            (
                select(vec!["master", "backup", "both"]),
                "[a-z]{1,6}[0-9]?",
                0u32..256
            )
                .prop_map(|(r, i, id)| {
                    format!("syncdaemon = {r}\nsyncinterface = {i}\nsyncid = {id}")
                }),
        ],
        0..6,
    );
    (own, shared_lines(false)).prop_map(|(mut a, b)| {
        a.extend(b);
        a
    })
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    V4,
    V6,
    Mark,
}

fn real_lines(kind: Kind, index: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        (
            0u8..200,
            0u8..4,
            prop::option::of(1u16..),
            forwarding(),
            prop::option::of(0u32..=65_535),
            prop::option::of(("[ -!#-~]{0,10}", "[ -~]{0,10}")),
            prop::option::of(0u32..1000),
            prop::option::of(1000u32..100_000),
        ),
        0..5,
    )
    .prop_map(move |reals| {
        let mut seen = std::collections::HashSet::new();
        reals
            .into_iter()
            .filter(|r| seen.insert(r.0))
            .map(|(host, span, port, fwd, weight, pair, l, u)| {
                let h = 16 + index % 200;
                let (key, addr) = match kind {
                    Kind::V6 => ("real6", format!("[2001:db8:{h:x}::{host:x}]")),
                    _ => ("real", format!("10.{h}.{host}.1")),
                };
                let addr = match (kind, span) {
                    (Kind::V6, _) | (_, 0) => addr,
                    (_, n) => format!("10.{h}.{host}.2->10.{h}.{host}.{}", 2 + n),
                };
                let mut s = format!("{key} = {addr}");
                if let Some(p) = port {
                    s.push_str(&format!(":{p}"));
                }
                s.push_str(&format!(" {fwd}"));
                if let Some(w) = weight {
                    s.push_str(&format!(" {w}"));
                }
                if let Some((req, recv)) = pair {
                    s.push_str(&format!(" \"{req}\", \"{recv}\""));
                }
                if let Some(l) = l {
                    s.push_str(&format!(" l:{l}"));
                }
                if let Some(u) = u {
                    s.push_str(&format!(" u:{u}"));
                }
                s
            })
            .collect()
    })
}

fn virtual_block(index: usize) -> impl Strategy<Value = String> {
    select(vec![Kind::V4, Kind::V6, Kind::Mark]).prop_flat_map(move |kind| {
        let six = matches!(kind, Kind::V6);
        let block_lines = prop::collection::vec(
            prop_oneof![
                select(vec![
                    "connect",
                    "negotiate",
                    "ping",
                    "external",
                    "external-perl",
                    "on",
                    "off",
                    "3",
                    "0"
                ])
                .prop_map(|v| format!("checktype = {v}")),
                select(vec![
                    "dns",
                    "ftp",
                    "http",
                    "https",
                    "imap",
                    "ldap",
                    "mysql",
                    "none",
                    "pop",
                    "radius",
                    "sip",
                    "simpletcp",
                    "smtp",
                    "submission",
                    "pgsql",
                    "nntp"
                ])
                .prop_map(|v| format!("service = {v}")),
                quoted_text().prop_map(|v| format!("request = \"{v}\"")),
                quoted_text().prop_map(|v| format!("receive = \"{v}\"")),
                select(vec!["GET", "head", "Get"]).prop_map(|v| format!("httpmethod = {v}")),
                "[a-z]{1,8}\\.example\\.com".prop_map(|v| format!("virtualhost = \"{v}\"")),
                (1u16..).prop_map(|v| format!("checkport = {v}")),
                quoted_text().prop_map(|v| format!("login = \"{v}\"")),
                quoted_text().prop_map(|v| format!("passwd = \"{v}\"")),
                quoted_text().prop_map(|v| format!("database = \"{v}\"")),
                quoted_text().prop_map(|v| format!("secret = \"{v}\"")),
                path().prop_map(|v| format!("checkcommand = {v}")),
                select(vec!["chain", "full", "none"]).prop_map(|v| format!("tlsverify = {v}")),
                path().prop_map(|v| format!("tlscafile = \"{v}\"")),
                select(vec!["rr", "wrr", "lc", "wlc", "sh", "mh"])
                    .prop_map(|v| format!("scheduler = {v}")),
                (1u32..=2_678_400).prop_map(|v| format!("persistent = {v}")),
                select(vec![
                    "sh-fallback",
                    "sh-port",
                    "sh-fallback,sh-port",
                    "flag-1"
                ])
                .prop_map(|v| format!("schedflags = {v}")),
                yes_no().prop_map(|v| format!("ops = {v}")),
                Just("monitorfile = /tmp/monitor.log".to_owned()),
                free_text().prop_map(|v| format!("servicename = {v}")),
                free_text().prop_map(|v| format!("comment = {v}")),
                if six {
                    (1u8..=128).prop_map(|v| format!("netmask = {v}")).boxed()
                } else {
                    Just("netmask = 255.255.0.0".to_owned()).boxed()
                },
                if matches!(kind, Kind::Mark) {
                    Just("protocol = fwm".to_owned()).boxed()
                } else {
                    select(vec!["tcp", "udp"])
                        .prop_map(|v| format!("protocol = {v}"))
                        .boxed()
                },
            ],
            0..10,
        );
        (
            1u16..,
            real_lines(kind, index),
            block_lines,
            shared_lines(six),
        )
            .prop_map(move |(port, reals, mut lines, shared)| {
                let header = match kind {
                    Kind::V4 => format!("virtual = 192.0.2.{}:{port}", index + 1),
                    Kind::V6 => format!("virtual6 = [2001:db8::{:x}]:{port}", index + 1),
                    Kind::Mark => format!("virtual = {}", index + 1),
                };
                lines.extend(reals);
                lines.extend(shared);
                let mut s = header;
                for l in lines {
                    s.push_str("\n\t");
                    s.push_str(&l);
                }
                s
            })
    })
}

fn config_text() -> impl Strategy<Value = String> {
    (global_lines(), 0usize..4).prop_flat_map(|(globals, n)| {
        let blocks: Vec<_> = (0..n).map(virtual_block).collect();
        (Just(globals), blocks).prop_map(|(globals, blocks)| {
            let mut s = globals.join("\n");
            for b in blocks {
                s.push('\n');
                s.push_str(&b);
            }
            s.push('\n');
            s
        })
    })
}

fn read(text: &str) -> Config {
    match config::parse_str(text, Path::new("generated.cf"), &FakeHost::default()) {
        Ok(l) => l.config,
        Err(e) => panic!("generated file rejected:\n{text}\n{e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn render_reads_back_to_the_same_model(text in config_text()) {
        let first = read(&text);
        let rendered = config::render(&first);
        let again = match config::parse_str(&rendered, Path::new("generated.cf"), &FakeHost::default()) {
            Ok(l) => l.config,
            Err(e) => panic!("rendering rejected:\n--- source\n{text}\n--- rendered\n{rendered}\n{e}"),
        };
        prop_assert_eq!(&first, &again, "source:\n{}\nrendered:\n{}", text, rendered);
        prop_assert_eq!(config::render(&again), rendered);
    }
}
