//! Operators grep for the Perl log texts: this checks them, and the structured fields of
//! each state change. A test binary of its own: tracing's per-callsite interest cache
//! races with tests on other threads that run without a subscriber.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldirectord::director::{Observation, Probe, RealId};
use ldirectord::ipvs::{Backend, FakeKernel};

#[path = "support/harness.rs"]
mod harness;
use harness::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Operators grep for the Perl texts; each state change also carries structured fields.
#[tokio::test(start_paused = true)]
async fn log_lines_keep_the_perl_texts() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let text = "checkinterval=10\ncleanstop=yes\n\
virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 gate\n\tchecktype=connect\n\
\tfailurecount=2\n\tfallback=127.0.0.1:80 gate\n\
virtual=10.0.0.100:81\n\treal=10.0.0.2:81 gate 3\n\tchecktype=connect\n\tquiescent=yes\n";
    let h = Harness::start(text, FakeKernel::new()).await;
    let other = RealId {
        service: svc(81),
        dest: dest_key("10.0.0.2", 81),
    };
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.3", false).await;
    h.report("10.0.0.2", false).await;
    h.report("10.0.0.2", true).await;
    h.report("10.0.0.2", false).await;
    h.report("10.0.0.2", false).await;
    h.report("10.0.0.2", true).await;
    for up in [true, false] {
        let probe = if up {
            Probe::up()
        } else {
            Probe::down("status", "500 Internal Server Error")
        };
        h.observations
            .send(Observation::one(other, probe))
            .await
            .unwrap();
        settle().await;
    }
    let mut k = h.kernel.clone();
    k.del_dest(&svc(80), &dest_key("10.0.0.2", 80))
        .await
        .unwrap();
    k.add_dest(&svc(80), &dest("10.0.0.9", 1)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    h.stop().await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for line in [
        "Added virtual server: 10.0.0.100:80",
        "Added real server: 10.0.0.2:80 (10.0.0.100:80) (Weight set to 1)",
        "Soft failure real server: 10.0.0.2:80 (tcp:10.0.0.100:80) failure 1/2",
        "Resetting soft failure count: 10.0.0.2:80 (tcp:10.0.0.100:80)",
        "Added fallback server: 127.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
        "Deleted real server: 10.0.0.2:80 (10.0.0.100:80)",
        "Deleted fallback server: 127.0.0.1:80 (10.0.0.100:80)",
        "Quiescent real server: 10.0.0.2:81 (10.0.0.100:81) (Weight set to 0)",
        "real server 10.0.0.2:81 (tcp:10.0.0.100:81) is down: status: 500 Internal Server Error",
        "repairing a change made behind ldirectord's back",
        "Purged real server (drift): 10.0.0.9:80 (10.0.0.100:80)",
        "Purged real server (stop): 10.0.0.2:80 (10.0.0.100:80)",
        "Purged virtual server (stop): 10.0.0.100:80",
        "virtual=tcp:10.0.0.100:80",
        "real=10.0.0.2:80",
        "reason=\"refused: connection refused\"",
    ] {
        assert!(log.contains(line), "missing {line:?} in:\n{log}");
        if std::env::var_os("SHOW_LOG").is_some() {
            eprintln!("{log}");
        }
    }
}
