//! The IPVS codec against bytes captured from the real ipvsadm 1.31 and Linux 6.1.
//!
//! `tests/golden/ipvs/*.txt` were written by `tests/golden/ipvs/capture.py` inside the
//! project's VM (each file names the ipvsadm command that produced it). Every message in
//! them must parse and emit back to the same bytes; our requests must equal ipvsadm's
//! wherever we send the same thing; and decoding the kernel's replies must give the table
//! ipvsadm printed.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ldirectord::ipvs::codec::{DestAttr, IpvsAttr, IpvsCmd, IpvsMessage, SvcAttr};
use ldirectord::ipvs::ctrl::{CTRL_FAMILY_ID, CtrlMessage};
use ldirectord::ipvs::exchange::{self, Exchange};
use ldirectord::ipvs::{
    Daemon, DaemonState, Dest, DestKey, Family, Forward, IpvsError, Netmask, Op, Protocol, Service,
    ServiceFlags, ServiceKey, Subject, Timeouts, Tunnel, TunnelFlags, TunnelType, convert,
};
use netlink_packet_core::{Emitable, NetlinkBuffer, NetlinkMessage};
use netlink_packet_generic::GenlMessage;

const IPVS_FAMILY: u16 = 0x20;

#[derive(Debug)]
struct Captured {
    to_kernel: bool,
    title: String,
    bytes: Vec<u8>,
}

fn load(name: &str) -> Vec<Captured> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/ipvs")
        .join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut messages: Vec<Captured> = Vec::new();
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("> ").or(line.strip_prefix("< ")) {
            messages.push(Captured {
                to_kernel: line.starts_with('>'),
                title: title.to_string(),
                bytes: Vec::new(),
            });
            continue;
        }
        let data = line.split(';').next().unwrap_or("").trim();
        if line.starts_with('#') || data.is_empty() {
            continue;
        }
        let current = messages.last_mut().expect("bytes before the first message");
        for byte in data.split_whitespace() {
            current.bytes.push(u8::from_str_radix(byte, 16).unwrap());
        }
    }
    messages
}

fn all_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ipvs");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            // NN_name.txt: one command each (listing_*.txt belong to tests/ipvs_listing.rs)
            let numbered = name.starts_with(|c: char| c.is_ascii_digit());
            name.strip_suffix(".txt")
                .filter(|_| numbered)
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// The first message whose title is `title`, in the given direction.
fn find<'a>(messages: &'a [Captured], to_kernel: bool, title: &str) -> &'a Captured {
    messages
        .iter()
        .find(|m| m.to_kernel == to_kernel && m.title == title)
        .unwrap_or_else(|| panic!("no {title} in {messages:#?}"))
}

fn ipvs(frame: &[u8]) -> IpvsMessage {
    exchange::decode::<IpvsMessage>(frame).unwrap()
}

/// Our bytes for `msg`, with the header fields (flags, sequence, port) ipvsadm used.
fn encode_like(captured: &[u8], msg: IpvsMessage) -> Vec<u8> {
    let h = NetlinkBuffer::new_checked(captured).unwrap();
    let mut bytes = exchange::encode(msg, h.message_type(), h.flags(), h.sequence_number());
    bytes[12..16].copy_from_slice(&h.port_number().to_ne_bytes());
    bytes
}

fn request(name: &str, title: &str) -> Vec<u8> {
    find(&load(name), true, title).bytes.clone()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip80() -> ServiceKey {
    ServiceKey::tcp(ip("10.0.0.100"), 80)
}

fn service_nest(msg: &IpvsMessage) -> &[SvcAttr] {
    msg.attrs
        .iter()
        .find_map(|a| match a {
            IpvsAttr::Service(n) => Some(n.attrs.as_slice()),
            _ => None,
        })
        .expect("a SERVICE nest")
}

fn dest_nest(msg: &IpvsMessage) -> &[DestAttr] {
    msg.attrs
        .iter()
        .find_map(|a| match a {
            IpvsAttr::Dest(n) => Some(n.attrs.as_slice()),
            _ => None,
        })
        .expect("a DEST nest")
}

#[test]
fn every_captured_message_parses_and_emits_the_same_bytes() {
    let mut count = 0;
    for name in all_files() {
        for m in load(&name) {
            let kind = NetlinkBuffer::new_checked(&m.bytes[..])
                .unwrap()
                .message_type();
            let emitted = if kind == CTRL_FAMILY_ID {
                let msg = NetlinkMessage::<GenlMessage<CtrlMessage>>::deserialize(&m.bytes)
                    .unwrap_or_else(|e| panic!("{name} {}: {e}", m.title));
                let mut out = vec![0; msg.buffer_len()];
                msg.emit(&mut out);
                out
            } else {
                let msg = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&m.bytes)
                    .unwrap_or_else(|e| panic!("{name} {}: {e}", m.title));
                if let netlink_packet_core::NetlinkPayload::InnerMessage(genl) = &msg.payload {
                    let unknown = format!("{:?}", genl.payload).contains("Other(");
                    assert!(!unknown, "{name} {}: unknown attribute", m.title);
                }
                let mut out = vec![0; msg.buffer_len()];
                msg.emit(&mut out);
                out
            };
            assert_eq!(emitted, m.bytes, "{name}: {}", m.title);
            count += 1;
        }
    }
    assert!(count > 200, "only {count} messages");
}

#[test]
fn family_lookup_is_byte_identical_and_yields_the_id() {
    let msgs = load("01_list_empty");
    let req = find(&msgs, true, "nlctrl GETFAMILY");
    let h = NetlinkBuffer::new_checked(&req.bytes[..]).unwrap();
    let mut ours = exchange::encode(
        CtrlMessage::get_family("IPVS"),
        CTRL_FAMILY_ID,
        h.flags(),
        h.sequence_number(),
    );
    ours[12..16].copy_from_slice(&h.port_number().to_ne_bytes());
    assert_eq!(ours, req.bytes);
    let reply = find(&msgs, false, "nlctrl NEWFAMILY");
    let reply = exchange::decode::<CtrlMessage>(&reply.bytes).unwrap();
    assert_eq!(reply.family_id(), Some(IPVS_FAMILY));
}

#[test]
fn info_request_and_reply() {
    let msgs = load("01_list_empty");
    let req = find(&msgs, true, "IPVS GET_INFO");
    assert_eq!(
        encode_like(&req.bytes, convert::get_info_request()),
        req.bytes
    );
    let info = convert::info_from_reply(&ipvs(&find(&msgs, false, "IPVS SET_INFO").bytes)).unwrap();
    assert_eq!(
        (info.version_string(), info.conn_tab_size),
        ("1.2.1".into(), 4096)
    );
    // ipvsadm's dump request carries ROOT|MATCH (NLM_F_DUMP) and ACK; ours the same
    // command without ACK: compare the payload.
    let dump = find(&msgs, true, "IPVS GET_SERVICE");
    assert_eq!(ipvs(&dump.bytes), convert::get_services_request());
}

#[test]
fn service_requests_are_byte_identical_to_ipvsadm() {
    let mut udp6 = Service::new(ServiceKey::udp(ip("2001:db8::100"), 53), "rr").persistent(600);
    udp6.netmask = Netmask::V6(64);
    let mut fwm = Service::new(ServiceKey::fwmark(Family::Inet, 7), "sh");
    fwm.flags = ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT;
    let mut fwm6 = Service::new(ServiceKey::fwmark(Family::Inet6, 8), "mh");
    fwm6.flags = ServiceFlags::MH_PORT;
    let mut sip = Service::new(ServiceKey::udp(ip("10.0.0.100"), 5060), "rr").persistent(60);
    sip.pe_name = Some("sip".into());
    sip.flags.insert(ServiceFlags::ONEPACKET);
    let sctp_key = ServiceKey::Addr {
        protocol: Protocol::Sctp,
        addr: ip("10.0.0.100"),
        port: 9,
    };
    let mut sctp = Service::new(sctp_key, "lc").persistent(360);
    sctp.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
    let cases = [
        (
            "02_new_service_tcp",
            Op::AddService(Service::new(vip80(), "wlc")),
        ),
        ("04_new_service_udp6_persistent", Op::AddService(udp6)),
        ("05_new_service_fwmark_sh_flags", Op::AddService(fwm)),
        ("06_new_service_fwmark6_mh", Op::AddService(fwm6)),
        ("07_new_service_sip_ops", Op::AddService(sip)),
        ("08_new_service_sctp_netmask", Op::AddService(sctp)),
        (
            "09_set_service",
            Op::EditService(Service::new(vip80(), "rr").persistent(300)),
        ),
    ];
    for (name, op) in cases {
        let title = match op {
            Op::AddService(_) => "IPVS NEW_SERVICE",
            _ => "IPVS SET_SERVICE",
        };
        let captured = request(name, title);
        assert_eq!(
            encode_like(&captured, convert::op_request(&op)),
            captured,
            "{name}"
        );
    }
}

#[test]
fn other_whole_requests_are_byte_identical_to_ipvsadm() {
    let mut backup = Daemon::new(DaemonState::Backup, "sync0", 6);
    backup.sync_maxlen = Some(1400);
    backup.mcast_group = Some(ip("224.0.0.100"));
    backup.mcast_port = Some(8849);
    backup.mcast_ttl = Some(2);
    let cases = [
        (
            "22_zero_all",
            "IPVS ZERO",
            convert::op_request(&Op::Zero(None)),
        ),
        (
            "23_set_config",
            "IPVS SET_CONFIG",
            convert::op_request(&Op::SetTimeouts(Timeouts {
                tcp: 1000,
                tcp_fin: 100,
                udp: 200,
            })),
        ),
        (
            "24_get_config",
            "IPVS GET_CONFIG",
            convert::get_config_request(),
        ),
        (
            "27_new_daemon",
            "IPVS NEW_DAEMON",
            convert::op_request(&Op::StartDaemon(Daemon::new(DaemonState::Master, "lo", 5))),
        ),
        (
            "28_new_daemon_options",
            "IPVS NEW_DAEMON",
            convert::op_request(&Op::StartDaemon(backup)),
        ),
        ("33_flush", "IPVS FLUSH", convert::op_request(&Op::Flush)),
        (
            "20_get_service",
            "IPVS GET_SERVICE",
            // ipvsadm sends its whole service struct; the kernel reads the identity only.
            {
                let mut m = convert::get_service_request(&vip80());
                let captured = ipvs(&request("20_get_service", "IPVS GET_SERVICE"));
                if let IpvsAttr::Service(n) = &mut m.attrs[0] {
                    n.attrs.extend_from_slice(&service_nest(&captured)[4..]);
                }
                m
            },
        ),
    ];
    for (name, title, ours) in cases {
        let captured = request(name, title);
        assert_eq!(encode_like(&captured, ours), captured, "{name}");
    }
    // The dump of a service's destinations: same command and identity as ipvsadm's.
    let captured = ipvs(&request("19_list", "IPVS GET_DEST"));
    let ours = convert::get_dests_request(&vip80());
    assert_eq!(captured.cmd, ours.cmd);
    assert_eq!(&service_nest(&captured)[..4], service_nest(&ours));
    let daemons = ipvs(&request("29_get_daemon", "IPVS GET_DAEMON"));
    assert_eq!(daemons, convert::get_daemons_request());
}

#[test]
fn destination_requests_carry_ipvsadms_destination_attributes() {
    let mut masq = Dest::new(ip("10.0.0.11"), 8080, Forward::Masq, 3);
    masq.upper_threshold = 100;
    masq.lower_threshold = 10;
    let mut gue = Dest::new(ip("10.0.0.13"), 80, Forward::Tunnel, 1);
    gue.tunnel = Tunnel {
        kind: TunnelType::Gue,
        port: 6080,
        flags: TunnelFlags::CSUM,
    };
    let udp6 = ServiceKey::udp(ip("2001:db8::100"), 53);
    let fwm = ServiceKey::fwmark(Family::Inet, 7);
    let cases = [
        (
            "11_new_dest_masq_thresholds",
            vip80(),
            masq.clone(),
            IpvsCmd::NewDest,
        ),
        (
            "12_new_dest_route",
            vip80(),
            Dest::new(ip("10.0.0.12"), 80, Forward::Route, 1),
            IpvsCmd::NewDest,
        ),
        ("13_new_dest_tunnel_gue", vip80(), gue, IpvsCmd::NewDest),
        (
            "14_new_dest6",
            udp6,
            Dest::new(ip("2001:db8::11"), 5353, Forward::Masq, 2),
            IpvsCmd::NewDest,
        ),
        (
            "15_new_dest_fwmark",
            fwm,
            Dest::new(ip("10.0.0.11"), 0, Forward::Route, 5),
            IpvsCmd::NewDest,
        ),
        (
            "17_set_dest",
            vip80(),
            Dest { weight: 0, ..masq },
            IpvsCmd::SetDest,
        ),
    ];
    for (name, service, dest, cmd) in cases {
        let title = if cmd == IpvsCmd::NewDest {
            "IPVS NEW_DEST"
        } else {
            "IPVS SET_DEST"
        };
        let captured = ipvs(&request(name, title));
        let op = if cmd == IpvsCmd::NewDest {
            Op::AddDest { service, dest }
        } else {
            Op::EditDest { service, dest }
        };
        let ours = convert::op_request(&op);
        assert_eq!(captured.cmd, ours.cmd, "{name}");
        assert_eq!(dest_nest(&captured), dest_nest(&ours), "{name}");
        // ipvsadm sends its whole (mostly empty) service; the identity comes first.
        let identity = service_nest(&ours);
        assert_eq!(
            &service_nest(&captured)[..identity.len()],
            identity,
            "{name}"
        );
    }
    // Deletes: ipvsadm sends the full destination, we send its identity, which it starts with.
    let captured = ipvs(&request("25_del_dest", "IPVS DEL_DEST"));
    let ours = convert::op_request(&Op::DelDest {
        service: vip80(),
        dest: DestKey {
            addr: ip("10.0.0.13"),
            port: 80,
        },
    });
    assert_eq!(&dest_nest(&captured)[..3], dest_nest(&ours));
    for (name, title, op) in [
        (
            "31_del_service",
            "IPVS DEL_SERVICE",
            Op::DelService(vip80()),
        ),
        ("21_zero_service", "IPVS ZERO", Op::Zero(Some(vip80()))),
    ] {
        let captured = ipvs(&request(name, title));
        let ours = convert::op_request(&op);
        assert_eq!(captured.cmd, ours.cmd, "{name}");
        assert_eq!(&service_nest(&captured)[..4], service_nest(&ours), "{name}");
    }
    let captured = ipvs(&request("30_del_daemon", "IPVS DEL_DAEMON"));
    let ours = convert::op_request(&Op::StopDaemon(DaemonState::Master));
    let (IpvsAttr::Daemon(theirs), IpvsAttr::Daemon(mine)) = (&captured.attrs[0], &ours.attrs[0])
    else {
        panic!("DAEMON nests expected")
    };
    assert_eq!(theirs.attrs[..1], mine.attrs[..]);
}

/// Feeds the kernel's replies to an exchange and decodes the frames of the one request.
fn replies_to(name: &str, request_title: &str) -> Vec<IpvsMessage> {
    let msgs = load(name);
    let req = find(&msgs, true, request_title);
    let header = NetlinkBuffer::new_checked(&req.bytes[..]).unwrap();
    let (seq, port) = (header.sequence_number(), header.port_number());
    let mut x = Exchange::new(seq);
    assert_eq!(x.register(), seq);
    let mut outcome = None;
    // ipvsadm opens a socket per request and libnl seeds sequence numbers from the clock,
    // so requests on different sockets share numbers: tell them apart by port.
    let to_this_socket = |m: &&Captured| {
        !m.to_kernel
            && NetlinkBuffer::new_checked(&m.bytes[..])
                .unwrap()
                .port_number()
                == port
    };
    for m in msgs.iter().filter(to_this_socket) {
        for (s, o) in x.feed(&m.bytes).unwrap() {
            assert_eq!(s, seq);
            outcome = Some(o);
        }
    }
    let frames = outcome.expect("the request was closed").expect("no error");
    frames.iter().map(|f| ipvs(f)).collect()
}

#[test]
fn the_dumped_table_is_what_ipvsadm_listed() {
    let services: Vec<Service> = replies_to("19_list", "IPVS GET_SERVICE")
        .iter()
        .map(|m| convert::service_from_reply(m).unwrap())
        .collect();
    // The dump follows the kernel's hash table, whose order changes from boot to boot
    // (ipvsadm sorts before printing): compare as a set.
    let mut keys: Vec<String> = services.iter().map(|s| s.key.to_string()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "FWM 7",
            "FWM 8 IPv6",
            "SCTP 10.0.0.100:9",
            "TCP 10.0.0.100:80",
            "UDP 10.0.0.100:5060",
            "UDP [2001:db8::100]:53",
        ]
    );
    let by_key = |k: &str| services.iter().find(|s| s.key.to_string() == k).unwrap();
    let tcp = by_key("TCP 10.0.0.100:80");
    assert_eq!(tcp.scheduler, "rr");
    assert_eq!(tcp.flags, ServiceFlags::PERSISTENT | ServiceFlags::HASHED);
    assert_eq!(tcp.timeout, 300);
    assert_eq!(
        by_key("SCTP 10.0.0.100:9").netmask,
        Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))
    );
    assert_eq!(by_key("UDP [2001:db8::100]:53").netmask, Netmask::V6(64));
    assert_eq!(
        by_key("UDP 10.0.0.100:5060").pe_name.as_deref(),
        Some("sip")
    );
    assert_eq!(
        by_key("FWM 7").flags.without_hashed(),
        ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT
    );

    // Destinations come newest first.
    let dests: Vec<Dest> = replies_to("20_get_service", "IPVS GET_DEST")
        .iter()
        .map(|m| convert::dest_from_reply(m, Family::Inet).unwrap())
        .collect();
    let summary: Vec<(String, Forward, i32)> = dests
        .iter()
        .map(|d| (d.key().to_string(), d.forward, d.weight))
        .collect();
    assert_eq!(
        summary,
        [
            ("10.0.0.13:80".to_string(), Forward::Tunnel, 1),
            ("10.0.0.12:80".to_string(), Forward::Route, 1),
            ("10.0.0.11:8080".to_string(), Forward::Masq, 0),
        ]
    );
    assert_eq!(dests[0].tunnel.kind, TunnelType::Gue);
    assert_eq!(dests[0].tunnel.port, 6080);
    assert_eq!(
        (dests[2].upper_threshold, dests[2].lower_threshold),
        (100, 10)
    );
}

#[test]
fn our_dump_layout_matches_the_kernels_byte_for_byte() {
    for m in replies_to("19_list", "IPVS GET_SERVICE") {
        let service = convert::service_from_reply(&m).unwrap();
        assert_eq!(
            service_nest(&m),
            convert::service_dump_attrs(&service),
            "{service:?}"
        );
    }
    for m in replies_to("19_list", "IPVS GET_DEST") {
        let dest = convert::dest_from_reply(&m, Family::Inet).unwrap();
        assert_eq!(dest_nest(&m), convert::dest_dump_attrs(&dest), "{dest:?}");
    }
}

#[test]
fn get_service_config_and_daemon_replies() {
    let one = replies_to("20_get_service", "IPVS GET_SERVICE");
    let service = convert::service_from_reply(&one[0]).unwrap();
    assert_eq!(service.key, vip80());
    assert!(service.same_config(&Service::new(vip80(), "rr").persistent(300)));

    let config = replies_to("24_get_config", "IPVS GET_CONFIG");
    let t = convert::timeouts_from_reply(&config[0]).unwrap();
    assert_eq!((t.tcp, t.tcp_fin, t.udp), (1000, 100, 200));

    let daemons: Vec<Daemon> = replies_to("29_get_daemon", "IPVS GET_DAEMON")
        .iter()
        .map(|m| convert::daemon_from_reply(m).unwrap())
        .collect();
    let mut master = Daemon::new(DaemonState::Master, "lo", 5);
    master.sync_maxlen = Some(1472);
    master.mcast_group = Some(ip("224.0.0.81"));
    master.mcast_port = Some(8848);
    master.mcast_ttl = Some(1);
    let mut backup = Daemon::new(DaemonState::Backup, "sync0", 6);
    backup.sync_maxlen = Some(1400);
    backup.mcast_group = Some(ip("224.0.0.100"));
    backup.mcast_port = Some(8849);
    backup.mcast_ttl = Some(2);
    assert_eq!(daemons, [master, backup]);
}

#[test]
fn kernel_refusals_map_to_typed_errors() {
    let cases = [
        (
            "03_new_service_exists",
            "IPVS NEW_SERVICE",
            Subject::Service,
            17,
        ),
        (
            "10_set_service_missing",
            "IPVS SET_SERVICE",
            Subject::Service,
            3,
        ),
        ("16_new_dest_exists", "IPVS NEW_DEST", Subject::Dest, 17),
        ("18_set_dest_missing", "IPVS SET_DEST", Subject::Dest, 2),
        ("26_del_dest_missing", "IPVS DEL_DEST", Subject::Dest, 2),
        (
            "32_del_service_missing",
            "IPVS DEL_SERVICE",
            Subject::Service,
            3,
        ),
        ("34_list_unprivileged", "IPVS GET_INFO", Subject::Table, 1),
    ];
    for (name, title, subject, errno) in cases {
        let msgs = load(name);
        let req = find(&msgs, true, title);
        let seq = NetlinkBuffer::new_checked(&req.bytes[..])
            .unwrap()
            .sequence_number();
        let mut x = Exchange::new(seq);
        x.register();
        let reply = msgs
            .iter()
            .find(|m| !m.to_kernel && m.title.starts_with("ERROR -"))
            .unwrap();
        let done = x.feed(&reply.bytes).unwrap();
        assert_eq!(done, vec![(seq, Err(errno))], "{name}");
        let err = IpvsError::from_errno(errno, subject);
        let expected = match name {
            "03_new_service_exists" => matches!(err, IpvsError::ServiceExists),
            "16_new_dest_exists" => matches!(err, IpvsError::DestExists),
            "10_set_service_missing" | "32_del_service_missing" => {
                matches!(err, IpvsError::NoSuchService)
            }
            "18_set_dest_missing" | "26_del_dest_missing" => matches!(err, IpvsError::NoSuchDest),
            _ => matches!(err, IpvsError::PermissionDenied),
        };
        assert!(expected, "{name}: {err:?}");
    }
}
