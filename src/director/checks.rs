//! The seam between the director and whatever runs health checks.
//!
//! The director says which real servers must be checked ([`HealthChecks::set`]); results
//! come back as [`Observation`]s on a channel. One observation may serve several real
//! servers: identical checks run once (the check engine shares them, as the Perl daemon
//! shares real ids), and the director applies the result to each.

use std::sync::Arc;

use crate::config::{Real, Virtual};

use super::layout::RealId;
use super::state::Probe;

/// One check result, for every real server that shares the check.
#[derive(Debug, Clone)]
pub struct Observation {
    pub reals: Arc<[RealId]>,
    pub probe: Probe,
}

impl Observation {
    pub fn one(real: RealId, probe: Probe) -> Observation {
        Observation {
            reals: Arc::from([real]),
            probe,
        }
    }
}

/// One real server to check, with its virtual.
#[derive(Debug, Clone, Copy)]
pub struct WantedCheck<'a> {
    pub id: RealId,
    pub virtual_server: &'a Virtual,
    pub real: &'a Real,
}

/// Runs checks on their schedule and sends each result as an [`Observation`] to the
/// channel the director was given with it.
pub trait HealthChecks: Send + 'static {
    /// Replaces the set of checks (start, reload; empty at stop). A check that is in both
    /// the old and the new set keeps running on its schedule.
    fn set(&mut self, wanted: &[WantedCheck<'_>]);
}

/// Runs nothing: results arrive only from whoever holds the observation sender (tests,
/// or a caller that runs its own checks).
#[derive(Debug, Default, Clone, Copy)]
pub struct ExternalChecks;

impl HealthChecks for ExternalChecks {
    fn set(&mut self, _wanted: &[WantedCheck<'_>]) {}
}
