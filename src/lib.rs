//! ldirectord: a Linux Virtual Server (IPVS) director, compatible with the Perl ldirectord.
//!
//! Layers, with dependencies running one way:
//! `config` and `ipvs` depend on nothing else here; `check` neither (it has its own spec
//! types); `director` joins the three; `daemon` runs the director; `cli` and `ra` sit on top.
//! `realserver` (the real-server side of LVS-DR) stands alone on `rtnl` (addresses and
//! routes over rtnetlink).

pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod director;
pub mod doctor;
pub mod ipvs;
pub mod ra;
pub mod realserver;
pub mod rtnl;
