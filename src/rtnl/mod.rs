//! The host's addresses and routes over rtnetlink: what `realserver` changes and what
//! `doctor` reads.
//!
//! * [`codec`]: RTM_GETADDR/NEWADDR/DELADDR and RTM_GETROUTE as bytes (sans-IO, pinned
//!   by golden tests), built with `netlink-packet-route`.
//! * [`RtnlClient`]: one socket, every round trip inside a deadline.
//!
//! This module depends on nothing else in the crate.

pub mod client;
pub mod codec;
mod error;

pub use client::{Change, RtnlClient, if_index, if_name};
pub use codec::{AddressEntry, RouteEntry, RouteKind};
pub use error::RtnlError;
