//! Health → desired kernel table: per-real state machine, desired table, reconcile.

pub mod check_spec;

pub use check_spec::{CheckSpecError, check_spec, check_specs};
