//! The long-running process: lifecycle, signals, pid file, logging, control socket.

pub mod metrics;
