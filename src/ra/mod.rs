//! Cluster resource agents: OCF (Pacemaker) and heartbeat v1 `haresources`.
//!
//! * [`ocf`]: `ocf:heartbeat:ldirectord` (`ldirectord ocf ACTION`), whose monitor checks
//!   the process, its control socket and the kernel's table ([`table_check`]).
//! * [`heartbeat`]: `/etc/ha.d/resource.d/ldirectord`, the binary under another name,
//!   with a `status` that heartbeat's ResourceManager reads right.

pub mod heartbeat;
pub mod ocf;
pub mod table_check;
