//! The `Backend` trait: what the director needs from a kernel IPVS table.

use std::future::Future;

use super::error::IpvsError;
use super::model::{
    Daemon, DaemonState, Dest, DestKey, Info, Service, ServiceKey, Table, Timeouts,
};
use super::op::Op;

/// The outcome of each op of an [`Backend::apply`] batch, in the order given.
pub type OpResults = Vec<Result<(), IpvsError>>;

/// A kernel IPVS table: the netlink client (netlink client) or the
/// in-memory kernel ([`FakeKernel`](super::FakeKernel)).
///
/// Methods take `&mut self`: one owner issues requests one after another, which is also
/// what keeps a dump from racing with writes (IPVS dumps carry no consistency marker).
///
/// Implementations write these methods as `async fn`; the trait spells out
/// `impl Future + Send` so that generic callers can spawn the futures.
///
/// Only [`apply`](Backend::apply) and the reads are required; the single-op methods
/// default to a one-op batch.
pub trait Backend: Send {
    /// Every virtual service, in the kernel's order.
    fn services(&mut self) -> impl Future<Output = Result<Vec<Service>, IpvsError>> + Send;

    /// The destinations of one service, in the kernel's order. A missing service gives an
    /// empty list (as the kernel's dump does), not an error.
    fn dests(
        &mut self,
        service: &ServiceKey,
    ) -> impl Future<Output = Result<Vec<Dest>, IpvsError>> + Send;

    /// One service; [`IpvsError::NoSuchService`] if absent.
    fn service(
        &mut self,
        key: &ServiceKey,
    ) -> impl Future<Output = Result<Service, IpvsError>> + Send;

    fn info(&mut self) -> impl Future<Output = Result<Info, IpvsError>> + Send;

    fn timeouts(&mut self) -> impl Future<Output = Result<Timeouts, IpvsError>> + Send;

    /// Running sync daemons (none, master, backup, or both).
    fn daemons(&mut self) -> impl Future<Output = Result<Vec<Daemon>, IpvsError>> + Send;

    /// Runs `ops` in order. Each op succeeds or fails on its own, as in the kernel: a
    /// failure does not stop the ops after it. The outer error means the batch's outcome
    /// is unknown (socket failure, deadline): some ops may have taken effect.
    fn apply(&mut self, ops: &[Op]) -> impl Future<Output = Result<OpResults, IpvsError>> + Send;

    /// Every service with its destinations.
    fn table(&mut self) -> impl Future<Output = Result<Table, IpvsError>> + Send {
        async move {
            let services = self.services().await?;
            let mut table = Table::default();
            for service in services {
                let dests = self.dests(&service.key).await?;
                table.services.push((service, dests));
            }
            Ok(table)
        }
    }

    fn add_service(
        &mut self,
        service: &Service,
    ) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::AddService(service.clone()))
    }

    fn edit_service(
        &mut self,
        service: &Service,
    ) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::EditService(service.clone()))
    }

    fn del_service(
        &mut self,
        key: &ServiceKey,
    ) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::DelService(*key))
    }

    fn add_dest(
        &mut self,
        service: &ServiceKey,
        dest: &Dest,
    ) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::AddDest {
            service: *service,
            dest: dest.clone(),
        })
    }

    fn edit_dest(
        &mut self,
        service: &ServiceKey,
        dest: &Dest,
    ) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::EditDest {
            service: *service,
            dest: dest.clone(),
        })
    }

    fn del_dest(
        &mut self,
        service: &ServiceKey,
        dest: &DestKey,
    ) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::DelDest {
            service: *service,
            dest: *dest,
        })
    }

    /// Deletes every service. Only for explicit operator commands and tests.
    fn flush(&mut self) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::Flush)
    }

    /// Zeroes the counters of one service, or of all with `None`.
    fn zero(
        &mut self,
        service: Option<&ServiceKey>,
    ) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::Zero(service.copied()))
    }

    /// Sets the connection timeouts; a 0 leaves that timeout unchanged.
    fn set_timeouts(
        &mut self,
        timeouts: &Timeouts,
    ) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::SetTimeouts(*timeouts))
    }

    fn start_daemon(
        &mut self,
        daemon: &Daemon,
    ) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::StartDaemon(daemon.clone()))
    }

    fn stop_daemon(
        &mut self,
        state: DaemonState,
    ) -> impl Future<Output = Result<(), IpvsError>> + Send {
        self.apply_one(Op::StopDaemon(state))
    }

    /// A batch of one; its result folded into one `Result`.
    fn apply_one(&mut self, op: Op) -> impl Future<Output = Result<(), IpvsError>> + Send {
        async move {
            let results = self.apply(std::slice::from_ref(&op)).await?;
            results
                .into_iter()
                .next()
                .unwrap_or_else(|| Err(IpvsError::Protocol("no result for a one-op batch".into())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::FakeKernel;

    async fn count_services<B: Backend>(backend: &mut B) -> usize {
        backend.table().await.map(|t| t.services.len()).unwrap_or(0)
    }

    #[tokio::test]
    async fn generic_callers_can_spawn_backend_futures() {
        let mut kernel = FakeKernel::new();
        let handle = tokio::spawn(async move { count_services(&mut kernel).await });
        assert_eq!(handle.await.unwrap(), 0);
    }
}
