//! Health checks: one file per service, all concurrent, each inside its own deadline.
//!
//! [`spec`] says what to check and [`outcome`] what was found; [`run`] runs one check;
//! [`engine`] runs many at once under a global cap, shares identical checks and schedules
//! them. Protocol encoding (BER, DNS, RADIUS, SIP, ICMP) is pure and tested on bytes;
//! sockets are opened only in [`net`] (and the ICMP socket in [`ping`]).

mod ber;
pub mod connect;
mod dns;
pub mod engine;
pub mod external;
mod ftp;
pub mod http;
mod imap;
mod ldap;
mod line;
pub mod net;
mod nntp;
pub mod outcome;
mod ping;
mod pop;
mod radius;
mod random;
pub mod run;
mod simpletcp;
mod sip;
mod smtp;
pub mod spec;
pub mod sql;
pub mod tls;

pub use engine::{Engine, Jitter, Report, ScheduledCheck, Scheduler};
pub use outcome::{Failure, FailureKind, Outcome, Verdict};
pub use run::{CheckState, run, run_once};
pub use spec::CheckSpec;
