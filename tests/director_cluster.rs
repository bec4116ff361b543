//! The director's cluster extensions against the in-memory kernel, with paused time:
//! `syncdaemon=` keeps the kernel's sync daemons as configured (and leaves them running at
//! stop), and the metrics hook counts checks, health changes and failed kernel changes.

use std::path::Path;
use std::time::Duration;

use ldirectord::config::{Config, FakeHost, parse_str};
use ldirectord::director::{
    Command, Director, DirectorError, ExternalChecks, Metrics, Observation, Probe, RealId, Status,
};
use ldirectord::ipvs::error::errno;
use ldirectord::ipvs::{Backend, DaemonState, DestKey, FakeKernel, Fault, ServiceKey};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

fn config(text: &str) -> Config {
    parse_str(
        text,
        Path::new("/etc/ha.d/ldirectord.cf"),
        &FakeHost::default(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
    .config
}

struct Harness {
    kernel: FakeKernel,
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
    observations: mpsc::Sender<Observation>,
    director: JoinHandle<Result<(), DirectorError>>,
    metrics: Metrics,
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn real(addr: &str) -> RealId {
    RealId {
        service: ServiceKey::tcp("10.0.0.100".parse().unwrap(), 80),
        dest: DestKey {
            addr: addr.parse().unwrap(),
            port: 80,
        },
    }
}

impl Harness {
    async fn start(text: &str, kernel: FakeKernel) -> Harness {
        let (obs_tx, obs_rx) = mpsc::channel(64);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (status_tx, status_rx) = watch::channel(Status::new("test"));
        let metrics = Metrics::new();
        let director = Director::new(config(text), kernel.clone())
            .with_checks(ExternalChecks, obs_rx)
            .with_metrics(metrics.clone());
        let handle = tokio::spawn(director.run(cmd_rx, status_tx));
        settle().await;
        Harness {
            kernel,
            commands: cmd_tx,
            status: status_rx,
            observations: obs_tx,
            director: handle,
            metrics,
        }
    }

    async fn report(&self, addr: &str, probe: Probe) {
        self.observations
            .send(Observation::one(real(addr), probe))
            .await
            .unwrap();
        settle().await;
    }

    async fn daemons(&self) -> Vec<String> {
        let mut k = self.kernel.clone();
        let mut out: Vec<String> = k
            .daemons()
            .await
            .unwrap()
            .iter()
            .map(|d| format!("{:?} {} {}", d.state, d.mcast_ifn, d.sync_id))
            .collect();
        out.sort();
        out
    }

    async fn stop(self) -> FakeKernel {
        self.commands.send(Command::Stop).await.unwrap();
        self.director.await.unwrap().unwrap();
        self.kernel
    }
}

const BASE: &str = "checkinterval=10\n\
virtual=10.0.0.100:80\n\
\treal=10.0.0.2:80 gate\n\
\treal=10.0.0.3:80 gate\n\
\tchecktype=connect\n";

fn with_sync(role: &str, interface: &str, id: u8) -> String {
    format!("syncdaemon={role}\nsyncinterface={interface}\nsyncid={id}\n{BASE}")
}

fn kernel() -> FakeKernel {
    let k = FakeKernel::new();
    k.set_interfaces(&["lo", "eth0", "eth1"]);
    k
}

#[tokio::test(start_paused = true)]
async fn syncdaemon_both_starts_master_and_backup_and_leaves_them_at_stop() {
    let h = Harness::start(&with_sync("both", "eth0", 7), kernel()).await;
    assert_eq!(h.daemons().await, ["Backup eth0 7", "Master eth0 7"]);
    assert_eq!(
        h.status.borrow().kernel.sync_daemons,
        ["master on eth0 (syncid 7)", "backup on eth0 (syncid 7)"]
    );
    let kernel = h.stop().await;
    let mut k = kernel.clone();
    assert_eq!(
        k.daemons().await.unwrap().len(),
        2,
        "stop keeps them running"
    );
}

#[tokio::test(start_paused = true)]
async fn without_syncdaemon_the_sync_daemons_are_not_touched() {
    let k = kernel();
    let mut setup = k.clone();
    setup
        .start_daemon(&ldirectord::ipvs::Daemon::new(
            DaemonState::Master,
            "eth1",
            3,
        ))
        .await
        .unwrap();
    let h = Harness::start(BASE, k).await;
    assert_eq!(h.daemons().await, ["Master eth1 3"]);
    assert!(h.status.borrow().kernel.sync_daemons.is_empty());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_moves_the_daemons_and_the_timer_repairs_a_stopped_one() {
    let h = Harness::start(&with_sync("both", "eth0", 7), kernel()).await;
    h.commands
        .send(Command::Reload(Box::new(config(&with_sync(
            "backup", "eth1", 9,
        )))))
        .await
        .unwrap();
    settle().await;
    assert_eq!(h.daemons().await, ["Backup eth1 9"]);
    // Someone runs `ipvsadm --stop-daemon backup`: the next periodic pass restarts it.
    let mut k = h.kernel.clone();
    k.stop_daemon(DaemonState::Backup).await.unwrap();
    assert!(h.daemons().await.is_empty());
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(h.daemons().await, ["Backup eth1 9"]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_missing_interface_is_reported_and_retried() {
    let h = Harness::start(&with_sync("master", "eth9", 1), kernel()).await;
    assert!(h.daemons().await.is_empty());
    let status = h.status.borrow().clone();
    let error = status.kernel.last_error.unwrap_or_default();
    assert!(error.contains("sync daemon"), "{error}");
    assert_eq!(h.metrics.snapshot().apply_errors["start-daemon"], 1);
    h.kernel.set_interfaces(&["eth9"]);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(h.daemons().await, ["Master eth9 1"]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn metrics_count_checks_changes_and_failed_changes() {
    let h = Harness::start(BASE, kernel()).await;
    let mut slow = Probe::up();
    slow.latency = Duration::from_millis(40);
    h.report("10.0.0.2", slow).await;
    h.report("10.0.0.3", Probe::down("refused", "connection refused"))
        .await;
    // The kernel refuses the next change: the real going down cannot be applied.
    h.kernel.push_fault(Fault::Errno(errno::ENOMEM));
    h.report("10.0.0.2", Probe::down("refused", "connection refused"))
        .await;
    let m = h.metrics.snapshot();
    let v = "tcp:10.0.0.100:80".to_owned();
    let up = &m.checks[&(v.clone(), "up")];
    assert_eq!((up.count, up.sum), (1, 0.04));
    assert_eq!(m.checks[&(v.clone(), "down")].count, 2);
    assert_eq!(m.changes[&(v.clone(), "10.0.0.2:80".into(), "up")], 1);
    assert_eq!(m.changes[&(v.clone(), "10.0.0.2:80".into(), "down")], 1);
    assert_eq!(m.changes[&(v.clone(), "10.0.0.3:80".into(), "down")], 1);
    let failed: u64 = m.apply_errors.values().sum::<u64>() + m.apply_batch_errors;
    assert!(failed >= 1, "{m:?}");
    h.stop().await;
}
