//! Health → desired kernel table: per-real state machine, desired table, reconcile.
