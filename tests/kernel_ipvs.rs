//! The netlink client against the real kernel: every command and every error path.
//!
//! HOW THESE RUN. Every test here is `#[ignore]`d: it programs the IPVS table of the
//! machine it runs on, needs root and `ip_vs`, and must never run on a developer's or a
//! real director's host. The VM suite (`tests/vm/suite.sh`) builds this binary on the host
//! and runs it inside a throwaway VM as root with
//!
//! ```text
//! kernel_ipvs-<hash> --ignored --test-threads=1
//! ```
//!
//! The tests share the VM's one IPVS table, so they run one at a time; each starts and
//! ends with an empty table (flushed, no sync daemon, default timeouts). As a last guard
//! they panic unless `LDIRECTORD_VM=1` is set, which only the VM sets.
//!
//! Each scenario also runs against [`FakeKernel`] and requires the same outcome, so the
//! in-memory kernel the director's tests rely on stays faithful to this kernel.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use ldirectord::ipvs::{
    Backend, ClientOptions, Daemon, DaemonState, Dest, DestKey, FakeKernel, Family, Forward,
    IpvsClient, IpvsError, Netmask, Op, Protocol, Service, ServiceFlags, ServiceKey, Timeouts,
    Tunnel, TunnelFlags, TunnelType,
};

const IGNORE: &str = "needs the IPVS VM: tests/vm/suite.sh";
const DEFAULT_TIMEOUTS: Timeouts = Timeouts {
    tcp: 900,
    tcp_fin: 120,
    udp: 300,
};

fn require_vm() {
    assert_eq!(
        std::env::var("LDIRECTORD_VM").as_deref(),
        Ok("1"),
        "kernel tests change the IPVS table: run them in the VM ({IGNORE})"
    );
}

/// Connects, and empties the table before and after the test (also when it panics).
struct Kernel {
    client: IpvsClient,
}

impl Kernel {
    async fn new() -> Kernel {
        require_vm();
        let mut client = IpvsClient::connect().await.expect("connect to IPVS");
        reset(&mut client).await;
        Kernel { client }
    }
}

async fn reset<B: Backend>(backend: &mut B) {
    backend.flush().await.expect("flush");
    for state in [DaemonState::Master, DaemonState::Backup] {
        let _ = backend.stop_daemon(state).await;
    }
    backend
        .set_timeouts(&DEFAULT_TIMEOUTS)
        .await
        .expect("timeouts");
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // Async cleanup from a destructor: a fresh runtime on a fresh thread.
        let cleaned = std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut client = IpvsClient::connect().await.ok()?;
                reset(&mut client).await;
                client.services().await.ok()
            })
        })
        .join();
        if !std::thread::panicking() {
            let left = cleaned.ok().flatten().map(|s| s.len());
            assert_eq!(left, Some(0), "the table was not left empty");
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip(port: u16) -> ServiceKey {
    ServiceKey::tcp(ip("10.0.0.100"), port)
}

fn errno_of(result: &Result<(), IpvsError>) -> Option<i32> {
    result
        .as_ref()
        .err()
        .map(|e| e.errno().expect("a kernel errno"))
}

/// Runs `ops` one batch at a time against the kernel and the fake; both must give the
/// same errno for every op and end with the same table.
async fn same_as_fake(kernel: &mut IpvsClient, batches: &[Vec<Op>]) {
    let mut fake = FakeKernel::new();
    for ops in batches {
        let real = kernel.apply(ops).await.expect("kernel batch");
        let faked = fake.apply(ops).await.expect("fake batch");
        for ((op, r), f) in ops.iter().zip(&real).zip(&faked) {
            assert_eq!(errno_of(r), errno_of(f), "{op}: kernel {r:?}, fake {f:?}");
        }
    }
    let real = kernel.table().await.unwrap();
    let faked = fake.table().await.unwrap();
    let mut real_services: Vec<_> = real.services.iter().collect();
    let mut fake_services: Vec<_> = faked.services.iter().collect();
    // Service order is the kernel's hash order, which the fake does not imitate.
    real_services.sort_by_key(|(s, _)| s.key);
    fake_services.sort_by_key(|(s, _)| s.key);
    assert_eq!(real_services.len(), fake_services.len());
    for ((rs, rd), (fs, fd)) in real_services.iter().zip(&fake_services) {
        assert_eq!(rs.flags, fs.flags, "{}", rs.key);
        assert!(rs.same_config(fs), "{rs:?}\n{fs:?}");
        let r: Vec<_> = rd.iter().map(|d| (d.key(), d.forward, d.weight)).collect();
        let f: Vec<_> = fd.iter().map(|d| (d.key(), d.forward, d.weight)).collect();
        assert_eq!(r, f, "destinations of {} (order included)", rs.key);
        for (a, b) in rd.iter().zip(fd.iter()) {
            assert!(a.same_config(b), "{a:?}\n{b:?}");
        }
    }
}

fn sample_services() -> Vec<Service> {
    let mut udp6 = Service::new(ServiceKey::udp(ip("2001:db8::100"), 53), "rr").persistent(600);
    udp6.netmask = Netmask::V6(64);
    let mut sh = Service::new(ServiceKey::fwmark(Family::Inet, 7), "sh");
    sh.flags = ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT;
    let mut mh = Service::new(ServiceKey::fwmark(Family::Inet6, 7), "mh");
    mh.flags = ServiceFlags::MH_PORT;
    let mut sip = Service::new(ServiceKey::udp(ip("10.0.0.100"), 5060), "rr").persistent(60);
    sip.pe_name = Some("sip".into());
    sip.flags.insert(ServiceFlags::ONEPACKET);
    let mut sctp = Service::new(
        ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr: ip("10.0.0.100"),
            port: 9,
        },
        "lc",
    )
    .persistent(360);
    sctp.netmask = Netmask::V4("255.255.255.0".parse().unwrap());
    let mut every = vec![Service::new(vip(80), "wlc"), udp6, sh, mh, sip, sctp];
    for scheduler in [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
    ] {
        let port = 1000 + every.len() as u16;
        every.push(Service::new(vip(port), scheduler));
    }
    every
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn info_and_family() {
    let k = Kernel::new().await;
    let mut client = IpvsClient::connect().await.unwrap();
    assert!(client.family_id() > 0x10);
    let info = client.info().await.unwrap();
    assert_eq!(info.version_string(), "1.2.1");
    assert!(info.conn_tab_size >= 4096, "{info:?}");
    drop(k);
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn services_are_added_read_back_edited_and_deleted() {
    let mut k = Kernel::new().await;
    let c = &mut k.client;
    let services = sample_services();
    for s in &services {
        c.add_service(s)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", s.key));
    }
    let listed = c.services().await.unwrap();
    assert_eq!(listed.len(), services.len());
    for s in &services {
        let got = c.service(&s.key).await.unwrap();
        assert!(got.same_config(s), "{got:?}\n{s:?}");
        assert!(
            got.flags.contains(ServiceFlags::HASHED),
            "the kernel marks stored services"
        );
        assert!(listed.iter().any(|l| l.same_config(s)));
    }
    let edited = Service::new(vip(80), "rr").persistent(300);
    c.edit_service(&edited).await.unwrap();
    assert!(c.service(&vip(80)).await.unwrap().same_config(&edited));
    // Dropping the PE and the persistence on edit.
    let plain = Service::new(ServiceKey::udp(ip("10.0.0.100"), 5060), "wrr");
    c.edit_service(&plain).await.unwrap();
    assert!(c.service(&plain.key).await.unwrap().same_config(&plain));
    for s in &services {
        c.del_service(&s.key).await.unwrap();
    }
    assert!(c.services().await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn service_errors() {
    let mut k = Kernel::new().await;
    let c = &mut k.client;
    let web = Service::new(vip(80), "wlc");
    c.add_service(&web).await.unwrap();
    let missing = Service::new(vip(81), "wlc");
    assert!(matches!(
        c.add_service(&web).await,
        Err(IpvsError::ServiceExists)
    ));
    assert!(matches!(
        c.edit_service(&missing).await,
        Err(IpvsError::NoSuchService)
    ));
    assert!(matches!(
        c.del_service(&missing.key).await,
        Err(IpvsError::NoSuchService)
    ));
    assert!(matches!(
        c.service(&missing.key).await,
        Err(IpvsError::NoSuchService)
    ));
    assert!(matches!(
        c.zero(Some(&missing.key)).await,
        Err(IpvsError::NoSuchService)
    ));
    assert!(matches!(
        c.add_service(&Service::new(vip(82), "nosuch")).await,
        Err(IpvsError::NoSuchModule)
    ));
    let mut pe = Service::new(vip(83), "rr");
    pe.pe_name = Some("nosuch".into());
    assert!(matches!(
        c.add_service(&pe).await,
        Err(IpvsError::NoSuchModule)
    ));
    assert!(matches!(
        c.add_service(&Service::new(vip(84), "a-very-long-name"))
            .await,
        Err(IpvsError::Invalid)
    ));
    for prefix in [0, 129] {
        let mut v6 = Service::new(ServiceKey::tcp(ip("2001:db8::1"), 80), "rr");
        v6.netmask = Netmask::V6(prefix);
        assert!(
            matches!(c.add_service(&v6).await, Err(IpvsError::Invalid)),
            "/{prefix}"
        );
    }
    // "none" is a valid scheduler name on this kernel.
    c.add_service(&Service::new(vip(85), "none")).await.unwrap();
    assert_eq!(c.service(&vip(85)).await.unwrap().scheduler, "none");
    // A fwmark of 0 is not a fwmark service: the kernel files it as TCP 0.0.0.0:0.
    c.add_service(&Service::new(ServiceKey::fwmark(Family::Inet, 0), "rr"))
        .await
        .unwrap();
    c.service(&ServiceKey::tcp(ip("0.0.0.0"), 0)).await.unwrap();
}

fn sample_dests() -> Vec<Dest> {
    let mut masq = Dest::new(ip("10.0.0.11"), 8080, Forward::Masq, 3);
    masq.upper_threshold = 100;
    masq.lower_threshold = 10;
    let mut gue = Dest::new(ip("10.0.0.13"), 80, Forward::Tunnel, 1);
    gue.tunnel = Tunnel {
        kind: TunnelType::Gue,
        port: 6080,
        flags: TunnelFlags::REMCSUM,
    };
    let mut gre = Dest::new(ip("10.0.0.14"), 80, Forward::Tunnel, 1);
    gre.tunnel = Tunnel {
        kind: TunnelType::Gre,
        port: 0,
        flags: TunnelFlags::CSUM,
    };
    vec![
        masq,
        Dest::new(ip("10.0.0.12"), 80, Forward::Route, 1),
        gue,
        gre,
        Dest::new(ip("10.0.0.15"), 80, Forward::Tunnel, 0),
        Dest::new(ip("127.0.0.1"), 80, Forward::Local, 1),
        Dest::new(ip("10.0.0.16"), 80, Forward::Bypass, 1),
        // Mixed family: only tunnelled destinations may differ from the service.
        Dest::new(ip("2001:db8::17"), 80, Forward::Tunnel, 2),
    ]
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn destinations_are_added_read_back_edited_and_deleted() {
    let mut k = Kernel::new().await;
    let c = &mut k.client;
    c.add_service(&Service::new(vip(80), "wlc")).await.unwrap();
    let dests = sample_dests();
    for d in &dests {
        c.add_dest(&vip(80), d)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", d.key()));
    }
    let listed = c.dests(&vip(80)).await.unwrap();
    // Newest first, as stored.
    let order: Vec<DestKey> = listed.iter().map(Dest::key).collect();
    let expected: Vec<DestKey> = dests.iter().rev().map(Dest::key).collect();
    assert_eq!(order, expected);
    for (got, want) in listed.iter().zip(dests.iter().rev()) {
        assert!(got.same_config(want), "{got:?}\n{want:?}");
    }
    // Quiesce, change method and thresholds, then delete.
    let mut edited = dests[0].clone();
    edited.weight = 0;
    edited.forward = Forward::Route;
    edited.upper_threshold = 0;
    edited.lower_threshold = 0;
    c.edit_dest(&vip(80), &edited).await.unwrap();
    let got = c.dests(&vip(80)).await.unwrap();
    assert!(got.iter().any(|d| d.same_config(&edited)));
    for d in &dests {
        c.del_dest(&vip(80), &d.key()).await.unwrap();
    }
    assert!(c.dests(&vip(80)).await.unwrap().is_empty());
    // Destinations of fwmark and IPv6 services.
    let fwm = ServiceKey::fwmark(Family::Inet6, 9);
    c.add_service(&Service::new(fwm, "rr")).await.unwrap();
    c.add_dest(&fwm, &Dest::new(ip("2001:db8::5"), 0, Forward::Route, 4))
        .await
        .unwrap();
    assert_eq!(c.dests(&fwm).await.unwrap()[0].weight, 4);
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn destination_errors() {
    let mut k = Kernel::new().await;
    let c = &mut k.client;
    c.add_service(&Service::new(vip(80), "wlc")).await.unwrap();
    let rs = Dest::new(ip("10.0.0.11"), 80, Forward::Route, 1);
    c.add_dest(&vip(80), &rs).await.unwrap();
    let other = Dest::new(ip("10.0.0.12"), 80, Forward::Route, 1);
    assert!(matches!(
        c.add_dest(&vip(80), &rs).await,
        Err(IpvsError::DestExists)
    ));
    assert!(matches!(
        c.edit_dest(&vip(80), &other).await,
        Err(IpvsError::NoSuchDest)
    ));
    assert!(matches!(
        c.del_dest(&vip(80), &other.key()).await,
        Err(IpvsError::NoSuchDest)
    ));
    assert!(matches!(
        c.add_dest(&vip(81), &rs).await,
        Err(IpvsError::NoSuchService)
    ));
    assert!(matches!(
        c.edit_dest(&vip(81), &rs).await,
        Err(IpvsError::NoSuchService)
    ));
    assert!(matches!(
        c.del_dest(&vip(81), &rs.key()).await,
        Err(IpvsError::NoSuchService)
    ));
    // A missing service's destination dump is empty, not an error.
    assert!(c.dests(&vip(81)).await.unwrap().is_empty());
    let negative = Dest::new(ip("10.0.0.13"), 80, Forward::Route, -1);
    assert!(matches!(
        c.add_dest(&vip(80), &negative).await,
        Err(IpvsError::OutOfRange)
    ));
    assert!(matches!(
        c.edit_dest(
            &vip(80),
            &Dest {
                weight: -5,
                ..rs.clone()
            }
        )
        .await,
        Err(IpvsError::OutOfRange)
    ));
    let mut crossed = Dest::new(ip("10.0.0.13"), 80, Forward::Route, 1);
    crossed.lower_threshold = 5;
    assert!(matches!(
        c.add_dest(&vip(80), &crossed).await,
        Err(IpvsError::OutOfRange)
    ));
    let mut gue = Dest::new(ip("10.0.0.13"), 80, Forward::Tunnel, 1);
    gue.tunnel.kind = TunnelType::Gue;
    assert!(matches!(
        c.add_dest(&vip(80), &gue).await,
        Err(IpvsError::Invalid)
    ));
    for bad in ["224.0.0.1", "255.255.255.255", "0.0.0.0"] {
        let d = Dest::new(ip(bad), 80, Forward::Route, 1);
        assert!(
            matches!(c.add_dest(&vip(80), &d).await, Err(IpvsError::Invalid)),
            "{bad}"
        );
    }
    let v6 = ServiceKey::tcp(ip("2001:db8::1"), 80);
    c.add_service(&Service::new(v6, "rr")).await.unwrap();
    for bad in ["ff02::1", "fe80::1", "::", "::ffff:10.0.0.1"] {
        let d = Dest::new(ip(bad), 80, Forward::Route, 1);
        assert!(
            matches!(c.add_dest(&v6, &d).await, Err(IpvsError::Invalid)),
            "{bad}"
        );
    }
    let mixed = Dest::new(ip("10.0.0.20"), 80, Forward::Route, 1);
    assert!(matches!(
        c.add_dest(&v6, &mixed).await,
        Err(IpvsError::Invalid)
    ));
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn zero_flush_and_timeouts() {
    let mut k = Kernel::new().await;
    let c = &mut k.client;
    for s in sample_services() {
        c.add_service(&s).await.unwrap();
    }
    c.zero(Some(&vip(80))).await.unwrap();
    c.zero(None).await.unwrap();
    c.flush().await.unwrap();
    assert!(c.services().await.unwrap().is_empty());
    // Flushing an empty table is fine too.
    c.flush().await.unwrap();

    assert_eq!(c.timeouts().await.unwrap(), DEFAULT_TIMEOUTS);
    c.set_timeouts(&Timeouts {
        tcp: 1000,
        tcp_fin: 0,
        udp: 200,
    })
    .await
    .unwrap();
    let t = c.timeouts().await.unwrap();
    assert_eq!(
        (t.tcp, t.tcp_fin, t.udp),
        (1000, 120, 200),
        "0 leaves a timeout unchanged"
    );
}

fn ip_link(args: &[&str]) {
    let status = Command::new("ip").arg("link").args(args).status().unwrap();
    assert!(status.success(), "ip link {args:?}");
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn sync_daemons() {
    let k = Kernel::new().await;
    // Stopping a sync thread waits for the kernel to schedule it; under emulation on a busy
    // host that once took more than the default 5 s (CI rehearsal r5). This test is about
    // the answers, not their latency.
    let options = ClientOptions {
        timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    };
    let mut client = IpvsClient::connect_with(options).await.unwrap();
    let c = &mut client;
    assert!(c.daemons().await.unwrap().is_empty());
    let master = Daemon::new(DaemonState::Master, "lo", 5);
    c.start_daemon(&master).await.unwrap();
    assert!(matches!(
        c.start_daemon(&master).await,
        Err(IpvsError::DaemonRunning)
    ));

    ip_link(&["add", "ldsync0", "type", "dummy"]);
    let _device = DeleteLinkOnDrop("ldsync0");
    ip_link(&["set", "ldsync0", "up"]);
    let mut backup = Daemon::new(DaemonState::Backup, "ldsync0", 6);
    backup.sync_maxlen = Some(1400);
    backup.mcast_group = Some(ip("224.0.0.100"));
    backup.mcast_port = Some(8849);
    backup.mcast_ttl = Some(2);
    c.start_daemon(&backup).await.unwrap();
    let listed = c.daemons().await.unwrap();
    let mut expected_master = master.clone();
    expected_master.sync_maxlen = Some(1472);
    expected_master.mcast_group = Some(ip("224.0.0.81"));
    expected_master.mcast_port = Some(8848);
    expected_master.mcast_ttl = Some(1);
    assert_eq!(listed, [expected_master, backup.clone()]);

    c.stop_daemon(DaemonState::Backup).await.unwrap();
    let missing_dev = Daemon::new(DaemonState::Backup, "nosuchdev0", 1);
    assert!(matches!(
        c.start_daemon(&missing_dev).await,
        Err(IpvsError::NoSuchDevice)
    ));
    let mut not_multicast = Daemon::new(DaemonState::Backup, "ldsync0", 1);
    not_multicast.mcast_group = Some(ip("10.0.0.1"));
    assert!(matches!(
        c.start_daemon(&not_multicast).await,
        Err(IpvsError::Invalid)
    ));
    assert!(matches!(
        c.start_daemon(&Daemon::new(DaemonState::Other(4), "lo", 1))
            .await,
        Err(IpvsError::Invalid)
    ));
    c.stop_daemon(DaemonState::Master).await.unwrap();
    assert!(matches!(
        c.stop_daemon(DaemonState::Master).await,
        Err(IpvsError::NoSuchDaemon)
    ));
    assert!(matches!(
        c.stop_daemon(DaemonState::Other(4)).await,
        Err(IpvsError::Invalid)
    ));
    // Sync and mixed-family destinations exclude each other, both ways.
    c.add_service(&Service::new(vip(80), "rr")).await.unwrap();
    c.add_dest(
        &vip(80),
        &Dest::new(ip("2001:db8::1"), 80, Forward::Tunnel, 1),
    )
    .await
    .unwrap();
    assert!(matches!(
        c.start_daemon(&master).await,
        Err(IpvsError::Invalid)
    ));
    c.flush().await.unwrap();
    c.start_daemon(&master).await.unwrap();
    c.add_service(&Service::new(vip(80), "rr")).await.unwrap();
    assert!(matches!(
        c.add_dest(
            &vip(80),
            &Dest::new(ip("2001:db8::1"), 80, Forward::Tunnel, 1)
        )
        .await,
        Err(IpvsError::Invalid)
    ));
    c.stop_daemon(DaemonState::Master).await.unwrap();
    drop(k);
}

/// Deletes a link this test added, also when the test fails half-way (the next items of the
/// VM suite would otherwise meet it).
struct DeleteLinkOnDrop(&'static str);

impl Drop for DeleteLinkOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn batches_report_each_op_in_place() {
    let mut k = Kernel::new().await;
    let c = &mut k.client;
    let web = Service::new(vip(80), "rr");
    let rs = |last: u8| Dest::new(IpAddr::from([10, 0, 1, last]), 80, Forward::Route, 1);
    let ops = vec![
        Op::AddService(web.clone()),
        Op::AddDest {
            service: vip(80),
            dest: rs(1),
        },
        Op::AddService(web.clone()),
        Op::AddDest {
            service: vip(80),
            dest: rs(1),
        },
        Op::DelDest {
            service: vip(80),
            dest: rs(9).key(),
        },
        Op::AddDest {
            service: vip(80),
            dest: rs(2),
        },
        Op::DelService(vip(81)),
    ];
    let results = c.apply(&ops).await.unwrap();
    let errnos: Vec<Option<i32>> = results.iter().map(errno_of).collect();
    assert_eq!(
        errnos,
        [None, None, Some(17), Some(17), Some(2), None, Some(3)]
    );
    assert_eq!(c.dests(&vip(80)).await.unwrap().len(), 2);
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn large_batches_lose_no_acks() {
    let k = Kernel::new().await;
    // 100 services × 50 destinations, in batches far larger than the default.
    for max_batch in [128, 1024] {
        let options = ClientOptions {
            max_batch,
            timeout: Duration::from_secs(30),
            ..ClientOptions::default()
        };
        let mut c = IpvsClient::connect_with(options).await.unwrap();
        assert!(c.batch_limit() >= 128.min(max_batch), "{}", c.batch_limit());
        let mut ops = Vec::new();
        for s in 0..100u16 {
            ops.push(Op::AddService(Service::new(vip(2000 + s), "wlc")));
            for d in 0..50u8 {
                ops.push(Op::AddDest {
                    service: vip(2000 + s),
                    dest: Dest::new(IpAddr::from([10, 1, s as u8, d + 1]), 80, Forward::Masq, 1),
                });
            }
        }
        let results = c
            .apply(&ops)
            .await
            .unwrap_or_else(|e| panic!("batch {max_batch}: {e}"));
        assert!(results.iter().all(Result::is_ok), "batch {max_batch}");
        let table = c.table().await.unwrap();
        assert_eq!(table.services.len(), 100);
        assert!(table.services.iter().all(|(_, d)| d.len() == 50));
        c.flush().await.unwrap();
    }
    drop(k);
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn without_cap_net_admin_every_request_is_refused() {
    let k = Kernel::new().await;
    // Capabilities are per thread, and netlink checks the opener's: drop CAP_NET_ADMIN in
    // a thread of our own, then open the socket there.
    let outcome = std::thread::spawn(|| {
        caps::drop(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_NET_ADMIN,
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // The family lookup itself needs no privilege.
            let mut c = IpvsClient::connect().await.unwrap();
            let info = c.info().await.map(drop);
            let list = c.services().await.map(drop);
            let add = c.add_service(&Service::new(vip(80), "rr")).await;
            [info, list, add].map(|r| match r {
                Err(IpvsError::PermissionDenied) => Ok(()),
                other => Err(format!("{other:?}")),
            })
        })
    })
    .join()
    .unwrap();
    for result in outcome {
        result.unwrap();
    }
    assert!(
        IpvsError::PermissionDenied
            .hint()
            .unwrap()
            .contains("CAP_NET_ADMIN")
    );
    drop(k);
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn the_fake_kernel_answers_like_this_one() {
    let mut k = Kernel::new().await;
    let svc = sample_services();
    let web = vip(80);
    let v6 = ServiceKey::tcp(ip("2001:db8::1"), 443);
    let d = |s: &str, port, fwd, w| Dest::new(ip(s), port, fwd, w);
    let mut crossed = d("10.0.0.30", 80, Forward::Route, 1);
    crossed.lower_threshold = 9;
    let mut gue_no_port = d("10.0.0.31", 80, Forward::Tunnel, 1);
    gue_no_port.tunnel.kind = TunnelType::Gue;
    let mut bad_prefix = Service::new(ServiceKey::udp(ip("2001:db8::2"), 53), "rr");
    bad_prefix.netmask = Netmask::V6(200);
    let batches = vec![
        svc.iter().cloned().map(Op::AddService).collect::<Vec<_>>(),
        svc.iter().take(3).cloned().map(Op::AddService).collect(),
        vec![
            Op::AddService(Service::new(v6, "rr")),
            Op::AddService(Service::new(vip(90), "nosuch")),
            Op::AddService(Service::new(vip(91), "much-too-long-name")),
            Op::AddService(bad_prefix),
            Op::EditService(Service::new(vip(92), "rr")),
            Op::DelService(vip(93)),
            Op::Zero(Some(vip(93))),
        ],
        sample_dests()
            .into_iter()
            .map(|dest| Op::AddDest { service: web, dest })
            .collect(),
        vec![
            Op::AddDest {
                service: web,
                dest: d("10.0.0.12", 80, Forward::Route, 1),
            },
            Op::AddDest {
                service: web,
                dest: d("10.0.0.40", 80, Forward::Route, -1),
            },
            Op::AddDest {
                service: web,
                dest: crossed,
            },
            Op::AddDest {
                service: web,
                dest: gue_no_port,
            },
            Op::AddDest {
                service: web,
                dest: d("224.1.1.1", 80, Forward::Route, 1),
            },
            Op::AddDest {
                service: vip(99),
                dest: d("10.0.0.41", 80, Forward::Route, 1),
            },
            Op::AddDest {
                service: v6,
                dest: d("10.0.0.42", 80, Forward::Masq, 1),
            },
            Op::AddDest {
                service: v6,
                dest: d("fe80::1", 80, Forward::Masq, 1),
            },
            Op::AddDest {
                service: v6,
                dest: d("2001:db8::42", 443, Forward::Masq, 1),
            },
            Op::EditDest {
                service: web,
                dest: d("10.0.0.99", 80, Forward::Route, 1),
            },
            Op::EditDest {
                service: web,
                dest: d("10.0.0.12", 80, Forward::Masq, 0),
            },
            Op::DelDest {
                service: web,
                dest: DestKey {
                    addr: ip("10.0.0.99"),
                    port: 80,
                },
            },
            Op::DelDest {
                service: web,
                dest: DestKey {
                    addr: ip("10.0.0.13"),
                    port: 80,
                },
            },
            Op::StartDaemon(Daemon::new(DaemonState::Master, "lo", 1)),
            Op::StopDaemon(DaemonState::Backup),
        ],
        vec![Op::DelService(svc[1].key), Op::Zero(None)],
    ];
    same_as_fake(&mut k.client, &batches).await;
}
