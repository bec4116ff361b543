//! The director's run loop against the in-memory kernel, with paused time: adoption at
//! start, the per-real state machine in every combination of quiescent / readdquiescent /
//! failurecount / fallback, drift repair, reloads that change only the difference, stop,
//! failed ops, maintenance, alerts and fallbackcommand.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ldirectord::config::{FakeHost, parse_str};
use ldirectord::director::{
    Alerts, Command, Director, Effects, ExternalChecks, Observation, Probe, RealId, Status,
};
use ldirectord::ipvs::error::errno;
use ldirectord::ipvs::{Backend, Dest, FakeKernel, Fault, Forward, Op, Service, ServiceKey};
use tokio::sync::{mpsc, watch};

#[path = "support/harness.rs"]
mod harness;
use harness::*;

const TWO_REALS: &str = "checkinterval=10\n\
virtual=10.0.0.100:80\n\
\treal=10.0.0.2:80 gate\n\
\treal=10.0.0.3:80 gate\n\
\tchecktype=connect\n";

#[tokio::test(start_paused = true)]
async fn fresh_start_adds_reals_as_their_checks_answer() {
    let h = Harness::start(TWO_REALS, FakeKernel::new()).await;
    assert_eq!(h.ops(), ["add service TCP 10.0.0.100:80 (wrr)"]);
    assert_eq!(h.dests(), Some(vec![]));
    assert!(h.status.borrow().ready);
    assert_eq!(h.status.borrow().phase.name(), "starting");
    h.report("10.0.0.2", true).await;
    assert_eq!(h.dests(), Some(vec!["10.0.0.2:80 1".into()]));
    h.report("10.0.0.3", false).await;
    assert_eq!(h.dests(), Some(vec!["10.0.0.2:80 1".into()]));
    let status = h.status.borrow().clone();
    assert_eq!(status.phase.name(), "running");
    let r = &status.virtuals[0].reals;
    assert_eq!((r[0].health, r[0].kernel_weight), ("up", Some(1)));
    assert_eq!((r[1].health, r[1].kernel_weight), ("down", None));
    assert_eq!(r[1].reason.as_ref().unwrap().kind, "refused");
    assert_eq!(r[1].verdict, Some("down"));
    assert!(r[1].last_check.is_some());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn restart_adopts_the_table_without_a_single_op() {
    // What a previous daemon (Perl or this one) left: both reals serving.
    let kernel = kernel_with(&[("10.0.0.2", 1), ("10.0.0.3", 1)]).await;
    let h = Harness::start(TWO_REALS, kernel).await;
    assert!(h.ops().is_empty(), "{:?}", h.ops());
    let status = h.status.borrow().clone();
    assert_eq!(status.virtuals[0].reals[0].health, "unknown");
    assert_eq!(status.virtuals[0].reals[0].kernel_weight, Some(1));
    // Checks confirm: still nothing to do.
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.3", true).await;
    assert!(h.ops().is_empty(), "{:?}", h.ops());
    // A real that was serving and is found dead goes after failurecount (1).
    h.report("10.0.0.3", false).await;
    assert_eq!(
        h.ops(),
        ["delete real server 10.0.0.3:80 of TCP 10.0.0.100:80"]
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unmanaged_services_are_never_touched() {
    let mut kernel = kernel_with(&[("10.0.0.2", 1)]).await;
    let other = ServiceKey::udp("10.9.9.9".parse().unwrap(), 53);
    kernel
        .apply(&[
            Op::AddService(Service::new(other, "rr")),
            Op::AddDest {
                service: other,
                dest: Dest::new("10.9.9.10".parse().unwrap(), 53, Forward::Masq, 3),
            },
        ])
        .await
        .unwrap();
    kernel.clear_journal();
    let h = Harness::start(TWO_REALS, kernel).await;
    h.report("10.0.0.2", false).await;
    h.report("10.0.0.3", false).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let kernel = h.stop().await;
    assert_eq!(
        kernel
            .journal()
            .iter()
            .filter(|e| e.op.to_string().contains("10.9.9.9"))
            .count(),
        0
    );
    let table = kernel.snapshot();
    assert!(
        table
            .services
            .iter()
            .any(|(s, d)| s.key == other && d.len() == 1)
    );
}

/// Every combination of quiescent × readdquiescent × failurecount × fallback × (entry
/// present or absent when the real goes down): the kernel after each step must match what
/// the Perl `_remove_service` / `_restore_service` / `fallback_on` would leave.
#[tokio::test(start_paused = true)]
async fn state_machine_in_every_combination() {
    for quiescent in [false, true] {
        for readd in [false, true] {
            for failurecount in [1u32, 3] {
                for fallback in [false, true] {
                    for present_when_down in [true, false] {
                        combination(quiescent, readd, failurecount, fallback, present_when_down)
                            .await;
                    }
                }
            }
        }
    }
}

async fn combination(
    quiescent: bool,
    readd: bool,
    failurecount: u32,
    fallback: bool,
    present: bool,
) {
    let yn = |b: bool| if b { "yes" } else { "no" };
    let text = format!(
        "checkinterval=10\nreaddquiescent={}\nvirtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate 5\n\treal=10.0.0.3:80 gate 2\n\tchecktype=connect\n\tquiescent={}\n\tfailurecount={failurecount}\n{}",
        yn(readd),
        yn(quiescent),
        if fallback {
            "\tfallback=127.0.0.1:80 gate\n"
        } else {
            ""
        }
    );
    let case = format!(
        "quiescent={quiescent} readd={readd} fc={failurecount} fallback={fallback} present={present}"
    );
    let h = Harness::start(&text, FakeKernel::new()).await;
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.3", true).await;
    assert_eq!(
        h.dests().unwrap(),
        ["10.0.0.2:80 5", "10.0.0.3:80 2"],
        "{case}"
    );

    // Real 2 fails: soft failures first.
    for _ in 1..failurecount {
        h.report("10.0.0.3", false).await;
        assert_eq!(
            h.dests().unwrap(),
            ["10.0.0.2:80 5", "10.0.0.3:80 2"],
            "{case} soft"
        );
    }
    if !present {
        // Someone removed it a moment before it was found dead.
        let mut k = h.kernel.clone();
        k.del_dest(&svc(80), &dest_key("10.0.0.3", 80))
            .await
            .unwrap();
    }
    h.report("10.0.0.3", false).await;
    let down = |addr: &str| -> Option<String> {
        match (quiescent, readd, present) {
            (false, _, _) => None,
            (true, _, true) | (true, true, false) => Some(format!("{addr}:80 0")),
            (true, false, false) => None,
        }
    };
    let mut want: Vec<String> = vec!["10.0.0.2:80 5".into()];
    want.extend(down("10.0.0.3"));
    want.sort();
    assert_eq!(h.dests().unwrap(), want, "{case} one down");

    // The drift timer must not "repair" a quiesced-and-absent real with readd=no.
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(h.dests().unwrap(), want, "{case} after timer");

    // The last real fails: the fallback goes in before it goes out.
    for _ in 1..failurecount {
        h.report("10.0.0.2", false).await;
    }
    let before = h.ops().len();
    h.report("10.0.0.2", false).await;
    let mut want: Vec<String> = Vec::new();
    want.extend(down("10.0.0.3"));
    if quiescent {
        want.push("10.0.0.2:80 0".into());
    }
    if fallback {
        want.push("127.0.0.1:80 1".into());
    }
    want.sort();
    assert_eq!(h.dests().unwrap(), want, "{case} all down");
    let ops = h.ops()[before..].to_vec();
    if fallback {
        assert!(
            ops[0].starts_with("add real server 127.0.0.1:80"),
            "{case}: {ops:?}"
        );
        assert_eq!(ops.len(), 2, "{case}: {ops:?}");
    }

    // One comes back: it goes in first, then the fallback goes out.
    let before = h.ops().len();
    h.report("10.0.0.3", true).await;
    let mut want: Vec<String> = vec!["10.0.0.3:80 2".into()];
    if quiescent {
        want.push("10.0.0.2:80 0".into());
    }
    want.sort();
    assert_eq!(h.dests().unwrap(), want, "{case} one back");
    let ops = h.ops()[before..].to_vec();
    assert!(
        ops[0].contains("10.0.0.3:80"),
        "{case}: the real first: {ops:?}"
    );
    if fallback {
        assert_eq!(
            ops.last().unwrap(),
            "delete real server 127.0.0.1:80 of TCP 10.0.0.100:80",
            "{case}"
        );
    }
    // Recovery restores the configured weight.
    h.report("10.0.0.2", true).await;
    assert_eq!(
        h.dests().unwrap(),
        ["10.0.0.2:80 5", "10.0.0.3:80 2"],
        "{case} all back"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn drift_is_repaired_within_one_interval() {
    let h = Harness::start(TWO_REALS, FakeKernel::new()).await;
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.3", true).await;
    // ipvsadm -d behind our back, and an edited weight.
    let mut k = h.kernel.clone();
    k.del_dest(&svc(80), &dest_key("10.0.0.2", 80))
        .await
        .unwrap();
    k.edit_dest(&svc(80), &dest("10.0.0.3", 7)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1", "10.0.0.3:80 1"]);
    // ipvsadm -D of the whole service.
    k.del_service(&svc(80)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1", "10.0.0.3:80 1"]);
    // A dest added by hand into a managed service is purged.
    k.add_dest(&svc(80), &dest("10.0.0.9", 1)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1", "10.0.0.3:80 1"]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_health_change_after_drift_reads_and_plans_again_without_an_error() {
    let h = Harness::start(TWO_REALS, FakeKernel::new()).await;
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.3", true).await;
    // ipvsadm -d behind our back, then the check finds the same real dead: the delete is
    // refused (no such real server), so the director reads the table and has nothing to do.
    let mut k = h.kernel.clone();
    k.del_dest(&svc(80), &dest_key("10.0.0.3", 80))
        .await
        .unwrap();
    h.report("10.0.0.3", false).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1"]);
    let status = h.status.borrow().clone();
    assert!(status.kernel.in_sync);
    assert_eq!(status.kernel.last_error, None);
    // ipvsadm -D of the whole service, then a recovery: the add is refused (no such
    // service), the director reads and puts back the service with both reals.
    k.del_service(&svc(80)).await.unwrap();
    h.report("10.0.0.3", true).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1", "10.0.0.3:80 1"]);
    assert_eq!(h.status.borrow().kernel.last_error, None);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_op_is_retried_at_the_next_pass_and_nothing_is_flushed() {
    let h = Harness::start(TWO_REALS, FakeKernel::new()).await;
    h.report("10.0.0.2", true).await;
    h.kernel.push_fault(Fault::Errno(errno::ENOMEM));
    h.report("10.0.0.3", true).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1"]);
    let status = h.status.borrow().clone();
    assert!(!status.kernel.in_sync);
    let error = status.kernel.last_error.clone().unwrap();
    assert!(error.contains("10.0.0.3:80"), "{error}");
    // A kernel that does not answer at all for one pass.
    h.kernel.push_fault(Fault::Timeout);
    tokio::time::sleep(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1", "10.0.0.3:80 1"]);
    assert!(h.status.borrow().kernel.in_sync);
    assert!(
        !h.ops()
            .iter()
            .any(|o| o.contains("flush") || o.contains("delete service"))
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn reload_applies_only_the_difference_and_keeps_health() {
    let h = Harness::start(TWO_REALS, FakeKernel::new()).await;
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.3", false).await;
    h.kernel.clear_journal();

    // One real added (and its kernel entry already there, e.g. by a previous daemon).
    let three = format!("{TWO_REALS}\treal=10.0.0.4:80 gate\n");
    h.commands
        .send(Command::Reload(Box::new(config(&three))))
        .await
        .unwrap();
    settle().await;
    assert!(
        h.ops().is_empty(),
        "a new real waits for its check: {:?}",
        h.ops()
    );
    h.report("10.0.0.4", true).await;
    assert_eq!(
        h.ops(),
        ["add real server 10.0.0.4:80 to TCP 10.0.0.100:80 (Route, weight 1)"]
    );
    let status = h.status.borrow().clone();
    assert_eq!(status.generation, 2);
    assert_eq!(status.virtuals[0].reals[1].health, "down", "health kept");
    assert_eq!(status.virtuals[0].reals[0].health, "up", "health kept");

    // A weight change is one edit.
    h.kernel.clear_journal();
    let heavier = three.replace("real=10.0.0.2:80 gate", "real=10.0.0.2:80 gate 4");
    h.commands
        .send(Command::Reload(Box::new(config(&heavier))))
        .await
        .unwrap();
    settle().await;
    assert_eq!(
        h.ops(),
        ["edit real server 10.0.0.2:80 of TCP 10.0.0.100:80 (Route, weight 4)"]
    );

    // A virtual dropped from the file is removed; a new one is added.
    h.kernel.clear_journal();
    let moved = heavier.replace("virtual=10.0.0.100:80", "virtual=10.0.0.100:8080");
    h.commands
        .send(Command::Reload(Box::new(config(&moved))))
        .await
        .unwrap();
    settle().await;
    let ops = h.ops();
    assert_eq!(
        ops.first().unwrap(),
        "add service TCP 10.0.0.100:8080 (wrr)"
    );
    assert_eq!(ops.last().unwrap(), "delete service TCP 10.0.0.100:80");
    assert!(h.dests().is_none());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failed_reload_is_reported_and_cleared_by_the_next_good_one() {
    let h = Harness::start(TWO_REALS, FakeKernel::new()).await;
    h.commands
        .send(Command::ReloadFailed(
            "/etc/ha.d/ldirectord.cf:3: unknown directive `chektype`".into(),
        ))
        .await
        .unwrap();
    settle().await;
    assert!(
        h.status
            .borrow()
            .last_reload_error
            .as_ref()
            .unwrap()
            .contains(":3:")
    );
    assert_eq!(h.dests(), Some(vec![]), "table unchanged");
    h.commands
        .send(Command::Reload(Box::new(config(TWO_REALS))))
        .await
        .unwrap();
    settle().await;
    assert_eq!(h.status.borrow().last_reload_error, None);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn cleanstop_decides_what_stop_leaves() {
    for (cleanstop, left) in [(true, false), (false, true)] {
        let text = format!(
            "cleanstop={}\n{TWO_REALS}",
            if cleanstop { "yes" } else { "no" }
        );
        let h = Harness::start(&text, FakeKernel::new()).await;
        h.report("10.0.0.2", true).await;
        let kernel = h.stop().await;
        let there = kernel
            .snapshot()
            .services
            .iter()
            .any(|(s, _)| s.key == svc(80));
        assert_eq!(there, left, "cleanstop={cleanstop}");
    }
}

#[tokio::test(start_paused = true)]
async fn fallbackcommand_arguments() {
    let text = "checkinterval=10\nfallbackcommand=/usr/local/sbin/fb -v\n\
virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\tchecktype=connect\n";
    let h = Harness::start(text, FakeKernel::new()).await;
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.2", false).await;
    h.report("10.0.0.2", false).await;
    h.report("10.0.0.2", true).await;
    assert_eq!(h.commands().len(), 3);
    let recorded = h.recorded.clone();
    h.stop().await;
    let got: Vec<Vec<String>> = recorded.commands.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            ["/usr/local/sbin/fb", "-v", "stop", "10.0.0.100:80", "tcp"],
            ["/usr/local/sbin/fb", "-v", "start", "10.0.0.100:80", "tcp"],
            ["/usr/local/sbin/fb", "-v", "stop", "10.0.0.100:80", "tcp"],
        ]
        .map(|a| a.map(String::from).to_vec())
    );
}

#[tokio::test(start_paused = true)]
async fn maintenance_file_forces_down_and_its_removal_lets_the_check_decide() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "checkinterval=10\nmaintenancedir={}\n{}",
        dir.path().display(),
        TWO_REALS.trim_start_matches("checkinterval=10\n")
    );
    let host = FakeHost {
        dirs: vec![dir.path().to_owned()],
        ..FakeHost::default()
    };
    let config = parse_str(&text, Path::new("/t.cf"), &host).unwrap().config;
    let (obs_tx, obs_rx) = mpsc::channel(16);
    let (cmd_tx, cmd_rx) = mpsc::channel(8);
    let (status_tx, status_rx) = watch::channel(Status::new("t"));
    let kernel = FakeKernel::new();
    let recorded = Recorded::default();
    let director = Director::new(config, kernel.clone())
        .with_checks(ExternalChecks, obs_rx)
        .with_effects(Effects::new(
            Arc::new(recorded.clone()),
            Arc::new(recorded.clone()),
            Alerts::new("d".into(), "r".into()),
        ));
    let handle = tokio::spawn(director.run(cmd_rx, status_tx));
    let h = Harness {
        kernel,
        commands: cmd_tx,
        status: status_rx,
        observations: obs_tx,
        director: handle,
        recorded,
    };
    settle().await;
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.3", true).await;
    std::fs::write(dir.path().join("10.0.0.2:80"), "").unwrap();
    h.report("10.0.0.2", true).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.3:80 1"]);
    let status = h.status.borrow().clone();
    assert!(status.virtuals[0].reals[0].maintenance);
    assert_eq!(
        status.virtuals[0].reals[0].reason.as_ref().unwrap().detail,
        "Server in maintenance"
    );
    std::fs::remove_file(dir.path().join("10.0.0.2:80")).unwrap();
    h.report("10.0.0.2", true).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1", "10.0.0.3:80 1"]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn checktype_on_is_up_at_once_and_off_keeps_what_the_kernel_has() {
    let on =
        "virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\tchecktype=on\n\tfallback=127.0.0.1:80\n";
    let h = Harness::start(on, FakeKernel::new()).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1"]);
    assert_eq!(h.status.borrow().phase.name(), "running");
    h.stop().await;

    let off = "virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 gate\n\tchecktype=off\n\tfallback=127.0.0.1:80\n";
    // One real serving: it stays, the absent one stays out, no fallback.
    let kernel = kernel_with(&[("10.0.0.2", 1)]).await;
    let h = Harness::start(off, kernel).await;
    assert!(h.ops().is_empty(), "{:?}", h.ops());
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert!(h.ops().is_empty(), "{:?}", h.ops());
    h.stop().await;
    // Nothing serving: the fallback goes in at start (as Perl does).
    let h = Harness::start(off, FakeKernel::new()).await;
    assert_eq!(h.dests().unwrap(), ["127.0.0.1:80 1"]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn alerts_go_out_for_kernel_changes_and_repeat() {
    let text = "checkinterval=10\nemailalert=ops@example.com\nemailalertfreq=60\n\
virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 gate\n\tchecktype=connect\n";
    let h = Harness::start(text, FakeKernel::new()).await;
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.3", true).await;
    h.report("10.0.0.3", false).await;
    // Repeats are sent by the periodic pass: the first one due at 60 s goes out at the
    // pass at 70 s (the Perl resend also runs once per check interval).
    tokio::time::sleep(Duration::from_secs(75)).await;
    h.report("10.0.0.3", true).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    let subjects = h.subjects();
    h.stop().await;
    assert_eq!(
        subjects,
        [
            "Added real server: 10.0.0.2:80 (10.0.0.100:80) (Weight set to 1)",
            "Added real server: 10.0.0.3:80 (10.0.0.100:80) (Weight set to 1)",
            "Deleted real server: 10.0.0.3:80 (10.0.0.100:80)",
            "Inaccessible real server: 10.0.0.3:80 (10.0.0.100:80)",
            "Added real server: 10.0.0.3:80 (10.0.0.100:80) (Weight set to 1)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn shared_checks_update_every_virtual_that_holds_the_real() {
    let text = "checkinterval=10\n\
virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\tchecktype=connect\n\
virtual=10.0.0.100:81\n\treal=10.0.0.2:81 masq\n\tchecktype=connect\n";
    let h = Harness::start(text, FakeKernel::new()).await;
    let second = RealId {
        service: svc(81),
        dest: dest_key("10.0.0.2", 81),
    };
    h.observations
        .send(Observation {
            reals: Arc::from([real("10.0.0.2"), second]),
            probe: Probe::up(),
        })
        .await
        .unwrap();
    settle().await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1"]);
    assert_eq!(h.dests_of(svc(81)).unwrap(), ["10.0.0.2:81 1"]);
    // One batch for both: a single apply.
    assert_eq!(h.ops().len(), 4);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn start_fails_cleanly_when_the_table_cannot_be_read() {
    let kernel = FakeKernel::new();
    kernel.push_fault(Fault::Timeout);
    let (_cmd_tx, cmd_rx) = mpsc::channel(1);
    let (status_tx, _status_rx) = watch::channel(Status::new("t"));
    let err = ldirectord::director::run(config(TWO_REALS), kernel.clone(), cmd_rx, status_tx)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot read the IPVS table"),
        "{err}"
    );
    assert!(kernel.journal().is_empty());
}

/// The default director runs the real check engine: one loopback listener is up, a closed
/// port is down, and the table follows within a check interval.
#[tokio::test]
async fn the_check_engine_drives_the_table() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_port = listener.local_addr().unwrap().port();
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down_port = closed.local_addr().unwrap().port();
    drop(closed);
    tokio::spawn(async move {
        loop {
            if let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        }
    });
    let text = format!(
        "checkinterval=1\ncheckcount=1\nvirtual=10.0.0.100:80\n\treal=127.0.0.1:{up_port} masq\n\treal=127.0.0.1:{down_port} masq\n\tchecktype=connect\n\tchecktimeout=1\n"
    );
    let kernel = FakeKernel::new();
    let (_cmd_tx, cmd_rx) = mpsc::channel(1);
    let (status_tx, mut status_rx) = watch::channel(Status::new("t"));
    let director = tokio::spawn(ldirectord::director::run(
        config(&text),
        kernel.clone(),
        cmd_rx,
        status_tx,
    ));
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            status_rx.changed().await.unwrap();
            let s = status_rx.borrow().clone();
            if s.phase.name() == "running" {
                return s;
            }
        }
    })
    .await
    .expect("both checks answered");
    let reals = &settled.virtuals[0].reals;
    assert_eq!(reals[0].health, "up");
    assert_eq!(reals[1].health, "down");
    assert_eq!(reals[1].reason.as_ref().unwrap().kind, "refused");
    let table = kernel.snapshot();
    assert_eq!(table.services[0].1.len(), 1);
    assert_eq!(table.services[0].1[0].port, up_port);
    director.abort();
}

#[tokio::test(start_paused = true)]
async fn plan_command_previews_a_reload_with_live_health_and_applies_nothing() {
    let h = Harness::start(TWO_REALS, FakeKernel::new()).await;
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.3", false).await;
    h.kernel.clear_journal();
    let three = format!("{TWO_REALS}\treal=10.0.0.4:80 gate 2\n")
        .replace("real=10.0.0.2:80 gate", "real=10.0.0.2:80 gate 3");
    let (reply, answer) = tokio::sync::oneshot::channel();
    h.commands
        .send(Command::Plan {
            config: Box::new(config(&three)),
            reply,
        })
        .await
        .unwrap();
    let ops: Vec<String> = answer
        .await
        .unwrap()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    // The new real waits for its check; the down one stays out; the weight changes.
    assert_eq!(
        ops,
        ["edit real server 10.0.0.2:80 of TCP 10.0.0.100:80 (Route, weight 3)"]
    );
    assert!(h.ops().is_empty());
    assert_eq!(h.status.borrow().generation, 1);
    h.stop().await;
}

/// Counts which services' destinations are read.
#[derive(Clone)]
struct CountingReads {
    inner: FakeKernel,
    reads: Arc<std::sync::Mutex<Vec<ServiceKey>>>,
}

impl Backend for CountingReads {
    async fn services(&mut self) -> Result<Vec<Service>, ldirectord::ipvs::IpvsError> {
        self.inner.services().await
    }
    async fn dests(
        &mut self,
        service: &ServiceKey,
    ) -> Result<Vec<Dest>, ldirectord::ipvs::IpvsError> {
        self.reads.lock().unwrap().push(*service);
        self.inner.dests(service).await
    }
    async fn service(&mut self, key: &ServiceKey) -> Result<Service, ldirectord::ipvs::IpvsError> {
        self.inner.service(key).await
    }
    async fn info(&mut self) -> Result<ldirectord::ipvs::Info, ldirectord::ipvs::IpvsError> {
        self.inner.info().await
    }
    async fn timeouts(
        &mut self,
    ) -> Result<ldirectord::ipvs::Timeouts, ldirectord::ipvs::IpvsError> {
        self.inner.timeouts().await
    }
    async fn daemons(
        &mut self,
    ) -> Result<Vec<ldirectord::ipvs::Daemon>, ldirectord::ipvs::IpvsError> {
        self.inner.daemons().await
    }
    async fn apply(
        &mut self,
        ops: &[Op],
    ) -> Result<ldirectord::ipvs::OpResults, ldirectord::ipvs::IpvsError> {
        self.inner.apply(ops).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_health_change_reads_only_its_own_service() {
    let text = "checkinterval=10\n\
virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\tchecktype=connect\n\
virtual=10.0.0.100:81\n\treal=10.0.0.2:81 masq\n\tchecktype=connect\n\
virtual=10.0.0.100:82\n\treal=10.0.0.2:82 masq\n\tchecktype=connect\n";
    let backend = CountingReads {
        inner: FakeKernel::new(),
        reads: Arc::default(),
    };
    let (obs_tx, obs_rx) = mpsc::channel(16);
    let (_cmd_tx, cmd_rx) = mpsc::channel(1);
    let (status_tx, _status_rx) = watch::channel(Status::new("t"));
    let director = Director::new(config(text), backend.clone()).with_checks(ExternalChecks, obs_rx);
    let _handle = tokio::spawn(director.run(cmd_rx, status_tx));
    settle().await;
    backend.reads.lock().unwrap().clear();
    obs_tx
        .send(Observation::one(real("10.0.0.2"), Probe::up()))
        .await
        .unwrap();
    settle().await;
    let reads = backend.reads.lock().unwrap().clone();
    // Planned against the table as last read plus the changes the kernel acknowledged
    // since: a health change costs one batch and no read.
    assert!(reads.is_empty(), "{reads:?}");
    assert_eq!(backend.inner.snapshot().services[0].1.len(), 1);
    // The periodic pass still covers everything.
    backend.reads.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(backend.reads.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn config_change_runs_the_executable_callback_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("on-change");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = format!("callback=\"{} --quiet\"\n{TWO_REALS}", script.display());
    let h = Harness::start(&text, FakeKernel::new()).await;
    h.commands
        .send(Command::ConfigChanged {
            path: "/etc/ha.d/ldirectord.cf".into(),
        })
        .await
        .unwrap();
    settle().await;
    let got = h.recorded.commands.lock().unwrap().clone();
    assert_eq!(
        got,
        [vec![
            script.display().to_string(),
            "--quiet".to_string(),
            "/etc/ha.d/ldirectord.cf".to_string()
        ]]
    );
    // Not executable: not run.
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    h.commands
        .send(Command::ConfigChanged {
            path: "/etc/ha.d/ldirectord.cf".into(),
        })
        .await
        .unwrap();
    settle().await;
    assert_eq!(h.recorded.commands.lock().unwrap().len(), 1);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_forwarding_change_that_moves_the_destination_keeps_health() {
    let gate =
        "checkinterval=10\nvirtual=10.0.0.100:80\n\treal=10.0.0.2:8080 gate\n\tchecktype=connect\n";
    let h = Harness::start(gate, FakeKernel::new()).await;
    h.report("10.0.0.2", true).await;
    assert_eq!(h.dests().unwrap(), ["10.0.0.2:80 1"]);
    h.kernel.clear_journal();
    let masq = gate.replace("8080 gate", "8080 masq");
    h.commands
        .send(Command::Reload(Box::new(config(&masq))))
        .await
        .unwrap();
    settle().await;
    // Up before, up after: the new entry goes in before the old one goes out.
    assert_eq!(
        h.ops(),
        [
            "add real server 10.0.0.2:8080 to TCP 10.0.0.100:80 (Masq, weight 1)",
            "delete real server 10.0.0.2:80 of TCP 10.0.0.100:80",
        ]
    );
    assert_eq!(h.status.borrow().virtuals[0].reals[0].health, "up");
    h.stop().await;
}

/// Check results update the published status in place (a full snapshot per result cost
/// O(reals) each); what they leave must equal what a full republish (the periodic pass)
/// shows: health, verdicts, kernel weights, the fallback.
#[tokio::test(start_paused = true)]
async fn status_updated_in_place_equals_a_full_snapshot() {
    let text = "checkinterval=10\nquiescent=no\n\
        virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 gate 3\n\
        \tchecktype=connect\n\tfallback=127.0.0.1:80 gate\n\
        virtual=10.0.0.100:81\n\treal=10.0.0.2:81 gate\n\tchecktype=connect\n";
    let h = Harness::start(text, FakeKernel::new()).await;
    for (addr, up) in [
        ("10.0.0.2", true),
        ("10.0.0.3", true),
        ("10.0.0.3", false),
        ("10.0.0.2", false),
        ("10.0.0.2", true),
    ] {
        h.report(addr, up).await;
    }
    // a result that changes no health: only that real's entry (last check) moves
    tokio::time::sleep(Duration::from_secs(2)).await;
    h.report("10.0.0.2", true).await;
    let patched = h.status.borrow().clone();
    let fallback = patched.virtuals[0].fallback.as_ref().unwrap();
    assert!(!fallback.active);
    assert_eq!(patched.virtuals[0].reals[1].health, "down");
    assert_eq!(patched.virtuals[0].reals[0].kernel_weight, Some(1));
    // the periodic pass republishes everything
    tokio::time::sleep(Duration::from_secs(11)).await;
    let full = h.status.borrow().clone();
    assert_eq!(patched.virtuals, full.virtuals);
    assert_eq!(patched.generation, full.generation);
    h.stop().await;
}
