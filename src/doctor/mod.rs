//! `ldirectord doctor`: does this host have what the configuration needs? IPVS and the
//! schedulers, the VIPs, forwarding for NAT, routes that direct routing can use, ARP and
//! reverse-path settings that break DR or NAT, privileges, the sync daemon.
//!
//! * [`facts`]: what is read, as plain values.
//! * [`collect`]: reads them (changes nothing; loads no module).
//! * [`rules`]: judges them, one [`Finding`] per thing checked, each failure with its fix
//!   (pure, tested without a kernel).

pub mod collect;
pub mod facts;
pub mod rules;

pub use collect::{Paths, collect};
pub use facts::Facts;
pub use rules::{Finding, Severity, blocking, diagnose, render};
