//! The kernel's IPVS table over generic netlink: sans-IO codec, client, in-memory kernel.
//!
//! * [`model`]: services, destinations, daemons, timeouts as plain values.
//! * [`Op`]: one mutating command as data; a reconcile computes a `Vec<Op>`.
//! * [`Backend`]: what a kernel table offers; implemented by [`FakeKernel`] (in memory,
//!   same errors as the kernel) and by the netlink client.
//! * [`plan`]: desired vs actual → ordered ops, make-before-break (pure).
//! * [`IpvsError`]: every failure, with [`IpvsError::errno`] and [`IpvsError::hint`].
//!
//! This module depends on nothing else in the crate.

pub mod backend;
pub mod error;
pub mod fake;
pub mod model;
pub mod op;
pub mod plan;

pub use backend::{Backend, OpResults};
pub use error::{IpvsError, Subject};
pub use fake::{FakeKernel, Fault};
pub use model::{
    Daemon, DaemonState, Dest, DestKey, Family, Forward, Info, Netmask, Protocol, Service,
    ServiceFlags, ServiceKey, Stats, Table, Timeouts, Tunnel, TunnelFlags, TunnelType,
};
pub use op::Op;
pub use plan::{Desired, DesiredService, plan};
