//! The kernel's IPVS table over generic netlink: sans-IO codec, client, in-memory kernel.
//!
//! * [`model`]: services, destinations, daemons, timeouts as plain values.
//! * [`Op`]: one mutating command as data; a reconcile computes a `Vec<Op>`.
//! * [`Backend`]: what a kernel table offers; implemented by [`IpvsClient`] (netlink) and
//!   [`FakeKernel`] (in memory, same errors as the kernel).
//! * [`plan`]: desired vs actual → ordered ops, make-before-break (pure).
//! * [`IpvsError`]: every failure, with [`IpvsError::errno`] and [`IpvsError::hint`].
//! * Wire layers, all without I/O: [`codec`] (attributes and messages of the `IPVS`
//!   family), [`convert`] (model ⇄ attributes, one request per command), [`ctrl`] (family
//!   lookup), [`exchange`] (sequence numbers, ACKs, multipart dumps).
//! * [`listing`]: the table as `ipvsadm -L`/`-S` text and as JSON, without I/O.
//!
//! This module depends on nothing else in the crate.

pub mod backend;
pub mod client;
pub mod codec;
pub mod convert;
pub mod ctrl;
pub mod error;
pub mod exchange;
pub mod fake;
pub mod listing;
pub mod model;
pub mod op;
pub mod plan;

pub use backend::{Backend, OpResults};
pub use client::{ClientOptions, IpvsClient};
pub use error::{IpvsError, Subject};
pub use fake::{FakeKernel, Fault};
pub use model::{
    Daemon, DaemonState, Dest, DestKey, Family, Forward, Info, Netmask, Protocol, Service,
    ServiceFlags, ServiceKey, Stats, Table, Timeouts, Tunnel, TunnelFlags, TunnelType,
};
pub use op::Op;
pub use plan::{Desired, DesiredService, plan, project};
