//! The director under test: the in-memory kernel, a channel for check results, recorded
//! side effects, paused time.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldirectord::config::{Config, FakeHost, parse_str};
use ldirectord::director::{
    Alerts, Command, Director, DirectorError, Effects, ExternalChecks, Launcher, Mail, Mailer,
    Observation, Probe, RealId, Status,
};
use ldirectord::ipvs::{Backend, Dest, DestKey, FakeKernel, Forward, Op, Service, ServiceKey};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub fn config(text: &str) -> Config {
    parse_str(
        text,
        Path::new("/etc/ha.d/ldirectord.cf"),
        &FakeHost::default(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
    .config
}

#[derive(Default, Clone)]
pub struct Recorded {
    pub commands: Arc<Mutex<Vec<Vec<String>>>>,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl Launcher for Recorded {
    fn run(
        &self,
        argv: Vec<String>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        self.commands.lock().unwrap().push(argv);
        Box::pin(async { Ok(()) })
    }
}

impl Mailer for Recorded {
    fn send(&self, mail: Mail) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        self.mails.lock().unwrap().push(mail);
        Box::pin(async { Ok(()) })
    }
}

pub struct Harness {
    pub kernel: FakeKernel,
    pub commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<Status>,
    pub observations: mpsc::Sender<Observation>,
    pub director: JoinHandle<Result<(), DirectorError>>,
    pub recorded: Recorded,
}

pub const VIP: &str = "10.0.0.100";

pub fn svc(port: u16) -> ServiceKey {
    ServiceKey::tcp(VIP.parse().unwrap(), port)
}

pub fn dest_key(addr: &str, port: u16) -> DestKey {
    DestKey {
        addr: addr.parse().unwrap(),
        port,
    }
}

pub fn real(addr: &str) -> RealId {
    RealId {
        service: svc(80),
        dest: dest_key(addr, 80),
    }
}

/// Lets every task run until all are idle (paused time advances only then).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

impl Harness {
    pub async fn start(text: &str, kernel: FakeKernel) -> Harness {
        let recorded = Recorded::default();
        let (obs_tx, obs_rx) = mpsc::channel(1024);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (status_tx, status_rx) = watch::channel(Status::new("test"));
        let effects = Effects::new(
            Arc::new(recorded.clone()),
            Arc::new(recorded.clone()),
            Alerts::new("director".into(), "root".into()),
        );
        let director = Director::new(config(text), kernel.clone())
            .with_checks(ExternalChecks, obs_rx)
            .with_effects(effects);
        let handle = tokio::spawn(director.run(cmd_rx, status_tx));
        settle().await;
        Harness {
            kernel,
            commands: cmd_tx,
            status: status_rx,
            observations: obs_tx,
            director: handle,
            recorded,
        }
    }

    pub async fn report(&self, addr: &str, up: bool) {
        let probe = if up {
            Probe::up()
        } else {
            Probe::down("refused", "connection refused")
        };
        self.observations
            .send(Observation::one(real(addr), probe))
            .await
            .unwrap();
        settle().await;
    }

    /// `addr weight` of every destination of the VIP:80 service, sorted; `None` when the
    /// service is absent.
    pub fn dests(&self) -> Option<Vec<String>> {
        self.dests_of(svc(80))
    }

    pub fn dests_of(&self, key: ServiceKey) -> Option<Vec<String>> {
        let table = self.kernel.snapshot();
        let (_, dests) = table.services.iter().find(|(s, _)| s.key == key)?;
        let mut out: Vec<String> = dests
            .iter()
            .map(|d| format!("{} {}", d.key(), d.weight))
            .collect();
        out.sort();
        Some(out)
    }

    pub fn ops(&self) -> Vec<String> {
        self.kernel
            .journal()
            .into_iter()
            .map(|e| e.op.to_string())
            .collect()
    }

    pub fn commands(&self) -> Vec<String> {
        self.recorded
            .commands
            .lock()
            .unwrap()
            .iter()
            .map(|a| a[1..].join(" "))
            .collect()
    }

    pub fn subjects(&self) -> Vec<String> {
        self.recorded
            .mails
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.subject.clone())
            .collect()
    }

    pub async fn stop(self) -> FakeKernel {
        self.commands.send(Command::Stop).await.unwrap();
        self.director.await.unwrap().unwrap();
        assert_eq!(self.status.borrow().phase.name(), "stopped");
        self.kernel
    }
}

pub fn dest(addr: &str, weight: i32) -> Dest {
    Dest::new(addr.parse().unwrap(), 80, Forward::Route, weight)
}

pub async fn kernel_with(dests: &[(&str, i32)]) -> FakeKernel {
    let mut kernel = FakeKernel::new();
    let mut ops = vec![Op::AddService(Service::new(svc(80), "wrr"))];
    for (addr, weight) in dests {
        ops.push(Op::AddDest {
            service: svc(80),
            dest: dest(addr, *weight),
        });
    }
    kernel.apply(&ops).await.unwrap();
    kernel.clear_journal();
    kernel
}
