//! The director against the real kernel through the netlink client: programming, the
//! make-before-break order of the fallback, adoption at restart with zero ops, drift
//! repair after `ipvsadm -d`/`-e`, foreign services left alone, cleanstop, and `plan`.
//!
//! HOW THESE RUN: like `tests/kernel_ipvs.rs`, every test is `#[ignore]`d and panics
//! unless `LDIRECTORD_VM=1`; `tests/vm/suite.sh` runs this binary inside the throwaway VM
//! as root with `--ignored --test-threads=1`. Each test starts and ends with an empty table.

use std::path::Path;
use std::process::Command as Process;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldirectord::config::{Config, FakeHost, parse_str};
use ldirectord::director::preview::{Assume, preview_start};
use ldirectord::director::{Command, Director, ExternalChecks, Observation, Probe, RealId, Status};
use ldirectord::ipvs::{
    Backend, Daemon, Dest, DestKey, Info, IpvsClient, IpvsError, Op, OpResults, Service,
    ServiceKey, Timeouts,
};
use tokio::sync::{mpsc, watch};

const IGNORE: &str = "needs the IPVS VM: tests/vm/suite.sh";

fn require_vm() {
    assert_eq!(
        std::env::var("LDIRECTORD_VM").as_deref(),
        Ok("1"),
        "kernel tests change the IPVS table: run them in the VM ({IGNORE})"
    );
}

fn ipvsadm(args: &str) -> String {
    let out = Process::new("ipvsadm")
        .args(args.split_whitespace())
        .output()
        .expect("ipvsadm runs");
    assert!(
        out.status.success(),
        "ipvsadm {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ipvsadm -Sn`, sorted, for comparisons.
fn saved() -> Vec<String> {
    let mut lines: Vec<String> = ipvsadm("-Sn").lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// The netlink client, recording every op the director applies.
#[derive(Clone)]
struct Recording {
    client: Arc<tokio::sync::Mutex<IpvsClient>>,
    ops: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    async fn new() -> Recording {
        require_vm();
        ipvsadm("-C");
        Recording {
            client: Arc::new(tokio::sync::Mutex::new(
                IpvsClient::connect().await.expect("connect to IPVS"),
            )),
            ops: Arc::default(),
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.ops.lock().unwrap())
    }
}

impl Backend for Recording {
    async fn services(&mut self) -> Result<Vec<Service>, IpvsError> {
        self.client.lock().await.services().await
    }
    async fn dests(&mut self, service: &ServiceKey) -> Result<Vec<Dest>, IpvsError> {
        self.client.lock().await.dests(service).await
    }
    async fn service(&mut self, key: &ServiceKey) -> Result<Service, IpvsError> {
        self.client.lock().await.service(key).await
    }
    async fn info(&mut self) -> Result<Info, IpvsError> {
        self.client.lock().await.info().await
    }
    async fn timeouts(&mut self) -> Result<Timeouts, IpvsError> {
        self.client.lock().await.timeouts().await
    }
    async fn daemons(&mut self) -> Result<Vec<Daemon>, IpvsError> {
        self.client.lock().await.daemons().await
    }
    async fn apply(&mut self, ops: &[Op]) -> Result<OpResults, IpvsError> {
        self.ops
            .lock()
            .unwrap()
            .extend(ops.iter().map(ToString::to_string));
        self.client.lock().await.apply(ops).await
    }
}

fn config(text: &str) -> Config {
    parse_str(text, Path::new("/etc/ha.d/kernel.cf"), &FakeHost::default())
        .unwrap()
        .config
}

struct Running {
    commands: mpsc::Sender<Command>,
    observations: mpsc::Sender<Observation>,
    status: watch::Receiver<Status>,
    handle: tokio::task::JoinHandle<Result<(), ldirectord::director::DirectorError>>,
}

async fn start(text: &str, kernel: &Recording) -> Running {
    let (obs_tx, obs_rx) = mpsc::channel(64);
    let (cmd_tx, cmd_rx) = mpsc::channel(4);
    let (status_tx, status_rx) = watch::channel(Status::new("kernel"));
    let director = Director::new(config(text), kernel.clone()).with_checks(ExternalChecks, obs_rx);
    let handle = tokio::spawn(director.run(cmd_rx, status_tx));
    let mut running = Running {
        commands: cmd_tx,
        observations: obs_tx,
        status: status_rx,
        handle,
    };
    while !running.status.borrow().ready {
        running.status.changed().await.unwrap();
    }
    running
}

impl Running {
    async fn report(&mut self, addr: &str, up: bool) {
        let name = format!("{addr}:80");
        let last_check = |status: &Status| {
            status.virtuals[0]
                .reals
                .iter()
                .find(|r| r.addr == name)
                .and_then(|r| r.last_check.clone())
        };
        let before = last_check(&self.status.borrow());
        let id = RealId {
            service: vip(),
            dest: DestKey {
                addr: addr.parse().unwrap(),
                port: 80,
            },
        };
        let probe = if up {
            Probe::up()
        } else {
            Probe::down("refused", "")
        };
        self.observations
            .send(Observation::one(id, probe))
            .await
            .unwrap();
        // Handled (and its reconcile applied) once the status shows the new check.
        tokio::time::timeout(Duration::from_secs(20), async {
            while last_check(&self.status.borrow()) == before {
                self.status.changed().await.unwrap();
            }
        })
        .await
        .expect("the director handled the check result");
    }

    async fn stop(self) {
        self.commands.send(Command::Stop).await.unwrap();
        self.handle.await.unwrap().unwrap();
    }
}

fn vip() -> ServiceKey {
    ServiceKey::tcp("10.0.0.100".parse().unwrap(), 80)
}

const CF: &str = "checkinterval=1\ncleanstop=no\n\
virtual=10.0.0.100:80\n\
\treal=10.0.0.11:80 gate\n\
\treal=10.0.0.12:80 gate 2\n\
\tchecktype=connect\n\
\tscheduler=wlc\n\
\tfallback=127.0.0.1:80 gate\n";

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn programs_the_kernel_make_before_break_and_adopts_at_restart() {
    let kernel = Recording::new().await;
    ipvsadm("-A -u 10.9.9.9:53 -s rr");
    ipvsadm("-a -u 10.9.9.9:53 -r 10.9.9.10:53 -m -w 3");
    let foreign = saved()
        .into_iter()
        .filter(|l| l.contains("10.9.9.9"))
        .collect::<Vec<_>>();

    let mut d = start(CF, &kernel).await;
    assert_eq!(kernel.take(), ["add service TCP 10.0.0.100:80 (wlc)"]);
    d.report("10.0.0.11", true).await;
    d.report("10.0.0.12", true).await;
    kernel.take();
    assert!(saved().contains(&"-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 2".to_string()));

    d.report("10.0.0.11", false).await;
    d.report("10.0.0.12", false).await;
    assert_eq!(
        kernel.take(),
        [
            "delete real server 10.0.0.11:80 of TCP 10.0.0.100:80",
            "add real server 127.0.0.1:80 to TCP 10.0.0.100:80 (Route, weight 1)",
            "delete real server 10.0.0.12:80 of TCP 10.0.0.100:80",
        ]
    );
    d.report("10.0.0.12", true).await;
    assert_eq!(
        kernel.take(),
        [
            "add real server 10.0.0.12:80 to TCP 10.0.0.100:80 (Route, weight 2)",
            "delete real server 127.0.0.1:80 of TCP 10.0.0.100:80",
        ]
    );
    d.report("10.0.0.11", true).await;
    d.stop().await;
    assert_eq!(
        kernel.take(),
        ["add real server 10.0.0.11:80 to TCP 10.0.0.100:80 (Route, weight 1)"],
        "cleanstop=no: stop leaves the table"
    );
    let programmed = saved();

    // A restart over the programmed table: not a single op, before or after the checks.
    let mut d = start(CF, &kernel).await;
    assert_eq!(kernel.take(), Vec::<String>::new());
    d.report("10.0.0.11", true).await;
    d.report("10.0.0.12", true).await;
    assert_eq!(kernel.take(), Vec::<String>::new());
    assert_eq!(saved(), programmed);

    // Behind the director's back: a deleted and a re-weighted destination.
    ipvsadm("-d -t 10.0.0.100:80 -r 10.0.0.11:80");
    ipvsadm("-e -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 9");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(saved(), programmed, "drift repaired within the interval");
    assert_eq!(kernel.take().len(), 2);

    d.stop().await;
    let left: Vec<String> = saved()
        .into_iter()
        .filter(|l| l.contains("10.9.9.9"))
        .collect();
    assert_eq!(left, foreign, "a foreign service is never touched");
    ipvsadm("-C");
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn cleanstop_removes_only_our_services() {
    let kernel = Recording::new().await;
    ipvsadm("-A -t 10.9.9.9:80 -s rr");
    let text = CF.replace("cleanstop=no", "cleanstop=yes");
    let mut d = start(&text, &kernel).await;
    d.report("10.0.0.11", true).await;
    d.stop().await;
    assert_eq!(saved(), ["-A -t 10.9.9.9:80 -s rr"]);
    ipvsadm("-C");
}

#[tokio::test]
#[ignore = "needs the IPVS VM: tests/vm/suite.sh"]
async fn plan_reads_the_kernel_and_changes_nothing() {
    let mut kernel = Recording::new().await;
    ipvsadm("-A -t 10.0.0.100:80 -s wlc");
    ipvsadm("-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1");
    ipvsadm("-a -t 10.0.0.100:80 -r 10.0.0.99:80 -g -w 1");
    let before = saved();
    let ops: Vec<String> = preview_start(&config(CF), &mut kernel, &Assume::Up)
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        ops,
        [
            "add real server 10.0.0.12:80 to TCP 10.0.0.100:80 (Route, weight 2)",
            "delete real server 10.0.0.99:80 of TCP 10.0.0.100:80",
        ]
    );
    assert_eq!(saved(), before);
    assert_eq!(kernel.take(), Vec::<String>::new());
    // The command line, when the VM suite says where the binary is.
    if let Ok(bin) = std::env::var("LDIRECTORD_BIN") {
        let dir = tempfile::tempdir().unwrap();
        let cf = dir.path().join("plan.cf");
        std::fs::write(&cf, CF).unwrap();
        let out = Process::new(bin)
            .args(["plan", "--assume", "up"])
            .arg(&cf)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("+ add real server 10.0.0.12:80"), "{text}");
        assert!(text.contains("- delete real server 10.0.0.99:80"), "{text}");
        assert_eq!(saved(), before);
    }
    ipvsadm("-C");
}
