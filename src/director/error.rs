//! `DirectorError`: why the director could not run at all.

use crate::ipvs::IpvsError;

/// Failures that end [`super::run`]. Everything after the start (a refused op, a kernel
/// that stops answering for a while) is logged, shown in the status and retried instead.
#[derive(Debug, thiserror::Error)]
pub enum DirectorError {
    /// The kernel table could not be read at start (no IPVS, no permission). Nothing was
    /// changed.
    #[error("cannot read the IPVS table: {source}{}", hint(.source))]
    Kernel {
        #[source]
        source: IpvsError,
    },
}

fn hint(e: &IpvsError) -> String {
    e.hint().map(|h| format!(" ({h})")).unwrap_or_default()
}
