//! Checks through the data path (`checkdatapath=yes`) in the director, against the
//! in-memory kernel with paused time: the per-real firewall-mark services it keeps, the
//! checks it asks for (only once their service is in the kernel), and the cleanup at
//! reload, at stop and of what an earlier run left behind.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldirectord::config::{Config, FakeHost, parse_str};
use ldirectord::director::checks::wanted_spec;
use ldirectord::director::datapath::MARK_BASE;
use ldirectord::director::{Command, Director, HealthChecks, Status, WantedCheck};
use ldirectord::ipvs::{Backend, Dest, FakeKernel, Family, Forward, Service, ServiceKey, Table};
use tokio::sync::{mpsc, watch};

fn config(text: &str) -> Config {
    parse_str(
        text,
        Path::new("/etc/ha.d/ldirectord.cf"),
        &FakeHost::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .config
}

/// One `set` call: (real address, data-path mark, where the check connects).
type Set = Vec<(String, Option<u32>, String)>;

/// Records what the director asks to check.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Set>>>);

impl HealthChecks for Recorder {
    fn set(&mut self, wanted: &[WantedCheck<'_>]) {
        let set = wanted
            .iter()
            .map(|w| {
                let spec = wanted_spec(w).unwrap();
                (
                    w.real.addr.to_string(),
                    w.datapath,
                    format!(
                        "{} via {:?}",
                        spec.target.socket_addr(),
                        spec.target.datapath
                    ),
                )
            })
            .collect();
        self.0.lock().unwrap().push(set);
    }
}

impl Recorder {
    fn sets(&self) -> Vec<Set> {
        self.0.lock().unwrap().clone()
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

const DP: &str = "cleanstop=no\nvirtual=10.0.0.100:80\n\treal=10.0.0.11:80 gate\n\treal=10.0.0.12:80 gate\n\tscheduler=wlc\n\tcheckdatapath=yes\n";

struct Run {
    kernel: FakeKernel,
    recorder: Recorder,
    commands: mpsc::Sender<Command>,
    _status: watch::Receiver<Status>,
    director: tokio::task::JoinHandle<Result<(), ldirectord::director::DirectorError>>,
    _observations: mpsc::Sender<ldirectord::director::Observation>,
}

async fn start(text: &str, kernel: FakeKernel) -> Run {
    let recorder = Recorder::default();
    let (obs_tx, obs_rx) = mpsc::channel(16);
    let (cmd_tx, cmd_rx) = mpsc::channel(8);
    let (status_tx, status_rx) = watch::channel(Status::new("test"));
    let director =
        Director::new(config(text), kernel.clone()).with_checks(recorder.clone(), obs_rx);
    let handle = tokio::spawn(director.run(cmd_rx, status_tx));
    settle().await;
    Run {
        kernel,
        recorder,
        commands: cmd_tx,
        _status: status_rx,
        director: handle,
        _observations: obs_tx,
    }
}

fn fwm(mark: u32) -> ServiceKey {
    ServiceKey::fwmark(Family::Inet, mark)
}

fn find(table: &Table, key: ServiceKey) -> Option<&(Service, Vec<Dest>)> {
    table.services.iter().find(|(s, _)| s.key == key)
}

#[tokio::test(start_paused = true)]
async fn one_mark_service_per_real_and_checks_only_once_it_is_there() {
    let run = start(DP, FakeKernel::new()).await;
    let table = run.kernel.snapshot();
    for (n, real) in ["10.0.0.11", "10.0.0.12"].iter().enumerate() {
        let (service, dests) = find(&table, fwm(MARK_BASE + n as u32)).expect("mark service");
        assert_eq!(service.scheduler, "rr");
        assert_eq!(dests.len(), 1, "the real server alone");
        assert_eq!(dests[0].addr, real.parse::<std::net::IpAddr>().unwrap());
        assert_eq!(
            (dests[0].port, dests[0].forward, dests[0].weight),
            (0, Forward::Route, 1)
        );
    }
    let sets = run.recorder.sets();
    assert_eq!(
        sets.first().map(Vec::len),
        Some(0),
        "nothing checked before the services exist"
    );
    let last = sets.last().unwrap();
    assert_eq!(
        *last,
        [
            (
                "10.0.0.11".to_string(),
                Some(MARK_BASE),
                format!(
                    "10.0.0.100:80 via Some(DataPath {{ mark: {MARK_BASE}, real: 10.0.0.11 }})"
                )
            ),
            (
                "10.0.0.12".to_string(),
                Some(MARK_BASE + 1),
                format!(
                    "10.0.0.100:80 via Some(DataPath {{ mark: {}, real: 10.0.0.12 }})",
                    MARK_BASE + 1
                )
            ),
        ]
    );

    // drift: someone deletes a mark service; its check stops until it is back
    run.kernel
        .clone()
        .apply(&[ldirectord::ipvs::Op::DelService(fwm(MARK_BASE))])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    settle().await;
    assert!(
        find(&run.kernel.snapshot(), fwm(MARK_BASE)).is_some(),
        "repaired"
    );

    // stop: the mark services go even with cleanstop=no; the virtual service stays
    run.commands.send(Command::Stop).await.unwrap();
    run.director.await.unwrap().unwrap();
    let table = run.kernel.snapshot();
    assert!(find(&table, ServiceKey::tcp("10.0.0.100".parse().unwrap(), 80)).is_some());
    assert!(
        table
            .services
            .iter()
            .all(|(s, _)| !matches!(s.key, ServiceKey::Fwmark { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_mark_service_means_no_check_not_a_local_one() {
    let kernel = FakeKernel::new();
    // the kernel has no rr: the mark services cannot be added, the virtual (wlc) can
    kernel.set_schedulers(&["wlc"]);
    let run = start(DP, kernel).await;
    let table = run.kernel.snapshot();
    assert!(find(&table, ServiceKey::tcp("10.0.0.100".parse().unwrap(), 80)).is_some());
    assert!(find(&table, fwm(MARK_BASE)).is_none());
    assert!(
        run.recorder.sets().iter().all(Vec::is_empty),
        "a marked check without its service would reach this host"
    );
    run.commands.send(Command::Stop).await.unwrap();
    run.director.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn leftovers_are_removed_and_other_marks_left_alone() {
    let mut kernel = FakeKernel::new();
    let stale = Service::new(fwm(MARK_BASE + 7), "rr");
    let operators = Service::new(fwm(7), "wrr");
    kernel
        .apply(&[
            ldirectord::ipvs::Op::AddService(stale),
            ldirectord::ipvs::Op::AddService(operators),
        ])
        .await
        .unwrap();
    let run = start(DP, kernel).await;
    let table = run.kernel.snapshot();
    assert!(
        find(&table, fwm(MARK_BASE + 7)).is_none(),
        "an earlier run's service"
    );
    assert!(
        find(&table, fwm(7)).is_some(),
        "not in ldirectord's range: not ours"
    );
    assert!(find(&table, fwm(MARK_BASE)).is_some());

    // reload without checkdatapath: the services go, the checks lose their mark
    let plain = DP.replace("\tcheckdatapath=yes\n", "");
    run.commands
        .send(Command::Reload(Box::new(config(&plain))))
        .await
        .unwrap();
    settle().await;
    let table = run.kernel.snapshot();
    assert!(find(&table, fwm(MARK_BASE)).is_none());
    assert!(find(&table, fwm(MARK_BASE + 1)).is_none());
    let last = run.recorder.sets().last().cloned().unwrap();
    assert!(
        last.iter()
            .all(|(_, mark, to)| mark.is_none() && !to.contains("10.0.0.100")),
        "{last:?}"
    );
    run.commands.send(Command::Stop).await.unwrap();
    run.director.await.unwrap().unwrap();
}
