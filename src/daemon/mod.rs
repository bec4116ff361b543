//! The long-running process: lifecycle, signals, pid file, logging, control socket.
//!
//! * [`detach`]: double fork with a readiness pipe, before any thread exists.
//! * [`pidfile`]: `/var/run/ldirectord.<CFGNAME>.pid` under a record lock.
//! * [`logging`]: the Perl log formats on stderr, stdout, a file, syslog or journald.
//! * [`signals`], [`notify`] (sd_notify), [`autoreload`] (changed file, `callback`).
//! * [`control`]: the root-only JSON socket behind `ldirectord status` and `reload`.
//! * [`metrics`]: the optional Prometheus endpoint (`metrics=`).
//! * [`run`]: the main loop around the director.
//! * [`metrics`]: the optional Prometheus endpoint.

pub mod autoreload;
pub mod control;
pub mod detach;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod pidfile;
pub mod run;
pub mod signals;
pub mod status;

pub use detach::{Readiness, ReadyNotifier, ReadyWaiter, Role, detach};
pub use pidfile::{PidFile, PidFileError, PidLock, Probe};
pub use run::{Options, Paths, run};
pub use status::{DaemonStatus, Phase, ReloadOutcome};
