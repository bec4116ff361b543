//! The real-server side of LVS-DR (and LVS-TUN): hold each VIP on the loopback as a host
//! address, keep the host from answering ARP for it, and undo exactly that.
//!
//! `ldirectord realserver start|stop|status VIP[,VIP…] [--dev lo]`:
//!
//! * [`vip`]: the VIPs, parsed strictly (host prefixes only).
//! * [`arp`]: which `arp_ignore`/`arp_announce` values are right, per interface, as the
//!   kernel combines them (pure).
//! * [`plan`]: facts + record → what to change, and what is wrong (pure).
//! * [`setup`]: [`RealServer`] runs a plan: ARP before VIPs on start, VIPs before ARP on
//!   stop, intent recorded before acting.
//! * [`addresses`]: the address table, over [`crate::rtnl`] (or in memory, for tests).
//! * [`sysctl`]: `/proc/sys/net/ipv4/conf` as files; [`state`]: the record in
//!   `/run/ldirectord`, written safely.
//!
//! This module depends only on [`crate::rtnl`].

pub mod addresses;
pub mod arp;
mod error;
pub mod plan;
pub mod setup;
pub mod state;
pub mod sysctl;
pub mod vip;

pub use crate::rtnl::RtnlClient;
pub use addresses::{AddressTable, Change, HostAddress, MemoryTable};
pub use error::RealServerError;
pub use plan::{Facts, Status};
pub use setup::{Event, Outcome, RealServer};
pub use state::{State, StateStore};
pub use sysctl::Sysctls;
pub use vip::{Vip, parse_vips};
