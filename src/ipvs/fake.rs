//! `FakeKernel`: an in-memory IPVS table that answers like the kernel does.
//!
//! It follows `net/netfilter/ipvs/ip_vs_ctl.c` (Linux 6.1) for what it accepts and in which
//! order it checks: the same errno for the same mistake (EEXIST on a duplicate, ESRCH for a
//! missing service, ENOENT for a missing destination or an unknown scheduler, ERANGE for a
//! negative weight or crossed thresholds, EINVAL for the rest), the HASHED flag on every
//! stored service, destinations listed newest first, weights and flags stored as sent.
//! The kernel tests run the same scenarios against the real kernel to keep the two honest.
//!
//! Clones share one table, so a test can keep a handle while the code under test owns
//! another. Faults can be queued to simulate a kernel that refuses or never answers.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::backend::{Backend, OpResults};
use super::error::{IpvsError, errno};
use super::model::{
    Daemon, DaemonState, Dest, DestKey, Family, Forward, Info, Netmask, Service, ServiceFlags,
    ServiceKey, Stats, Timeouts, TunnelType,
};
use super::op::Op;

/// Scheduler modules of Debian's 6.1 kernel (`ip_vs_*.ko`).
pub const KERNEL_SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
];

/// Persistence engines of the same kernel (`ip_vs_pe_*.ko`).
pub const KERNEL_PES: &[&str] = &["sip"];

/// `IP_VS_SCHEDNAME_MAXLEN - 1`, `IP_VS_PENAME_MAXLEN - 1`, `IP_VS_IFNAME_MAXLEN - 1`: the
/// attribute policy refuses longer names with EINVAL.
const NAME_MAX: usize = 15;

/// The kernel stores the persistence timeout in jiffies in an `unsigned int`; Debian's
/// kernels run at 250 Hz, so very large timeouts wrap as they do there.
const HZ: u32 = 250;

/// A failure to inject into the next call(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The next op of an `apply` fails with this errno and has no effect.
    Errno(i32),
    /// The next backend call (read or `apply`) fails with [`IpvsError::Timeout`] and has
    /// no effect, like a kernel that never answered.
    Timeout,
}

/// One op as the fake saw it, with its result (`Err(errno)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub op: Op,
    pub result: Result<(), i32>,
}

#[derive(Debug, Clone)]
struct Entry {
    service: Service,
    /// Newest first: the kernel adds destinations at the head of the service's list.
    dests: Vec<Dest>,
}

#[derive(Debug)]
struct State {
    services: Vec<Entry>,
    timeouts: Timeouts,
    master: Option<Daemon>,
    backup: Option<Daemon>,
    info: Info,
    schedulers: Vec<String>,
    pes: Vec<String>,
    interfaces: Vec<String>,
    faults: VecDeque<Fault>,
    journal: Vec<JournalEntry>,
}

impl Default for State {
    fn default() -> State {
        State {
            services: Vec::new(),
            timeouts: Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300,
            },
            master: None,
            backup: None,
            info: Info {
                version: 0x010201,
                conn_tab_size: 4096,
            },
            schedulers: KERNEL_SCHEDULERS.iter().map(|s| s.to_string()).collect(),
            pes: KERNEL_PES.iter().map(|s| s.to_string()).collect(),
            interfaces: vec!["lo".to_string()],
            faults: VecDeque::new(),
            journal: Vec::new(),
        }
    }
}

/// An in-memory kernel IPVS table implementing [`Backend`].
#[derive(Debug, Clone, Default)]
pub struct FakeKernel {
    state: Arc<Mutex<State>>,
}

impl FakeKernel {
    pub fn new() -> FakeKernel {
        FakeKernel::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the list of scheduler modules the kernel "has".
    pub fn set_schedulers(&self, names: &[&str]) {
        self.lock().schedulers = names.iter().map(|s| s.to_string()).collect();
    }

    /// Names of network interfaces a sync daemon may bind to (default: `lo`).
    pub fn set_interfaces(&self, names: &[&str]) {
        self.lock().interfaces = names.iter().map(|s| s.to_string()).collect();
    }

    pub fn set_info(&self, info: Info) {
        self.lock().info = info;
    }

    /// Queues a fault; faults are consumed in order.
    pub fn push_fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Every op applied so far, with its result.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.lock().journal.clone()
    }

    pub fn clear_journal(&self) {
        self.lock().journal.clear();
    }

    /// The table as a dump would show it, without going through `async`.
    pub fn snapshot(&self) -> super::model::Table {
        let state = self.lock();
        super::model::Table {
            services: state
                .services
                .iter()
                .map(|e| (e.service.clone(), e.dests.clone()))
                .collect(),
        }
    }

    /// Changes read-only fields of a service (statistics) the way traffic would.
    pub fn update_service(&self, key: &ServiceKey, f: impl FnOnce(&mut Service)) -> bool {
        let mut state = self.lock();
        match state.find_mut(key) {
            Some(entry) => {
                let before = (entry.service.key, entry.service.flags);
                f(&mut entry.service);
                // Identity and the kernel's own flag are not the caller's to change.
                (entry.service.key, entry.service.flags) = (before.0, before.1);
                true
            }
            None => false,
        }
    }

    /// Changes read-only fields of a destination (connection counters, statistics).
    pub fn update_dest(
        &self,
        service: &ServiceKey,
        dest: &DestKey,
        f: impl FnOnce(&mut Dest),
    ) -> bool {
        let mut state = self.lock();
        let Some(entry) = state.find_mut(service) else {
            return false;
        };
        match entry.dests.iter_mut().find(|d| d.key() == *dest) {
            Some(d) => {
                f(d);
                (d.addr, d.port) = (dest.addr, dest.port);
                true
            }
            None => false,
        }
    }

    fn take_timeout(&self) -> Result<(), IpvsError> {
        let mut state = self.lock();
        if state.faults.front() == Some(&Fault::Timeout) {
            state.faults.pop_front();
            return Err(IpvsError::Timeout(Duration::from_secs(1)));
        }
        Ok(())
    }
}

impl State {
    fn find(&self, key: &ServiceKey) -> Option<&Entry> {
        let key = key.canonical();
        self.services.iter().find(|e| e.service.key == key)
    }

    fn find_mut(&mut self, key: &ServiceKey) -> Option<&mut Entry> {
        let key = key.canonical();
        self.services.iter_mut().find(|e| e.service.key == key)
    }

    fn apply(&mut self, op: &Op) -> Result<(), i32> {
        match op {
            Op::AddService(s) | Op::EditService(s) => {
                check_names(s)?;
                let exists = self.find(&s.key).is_some();
                match (op, exists) {
                    (Op::AddService(_), true) => return Err(errno::EEXIST),
                    (Op::EditService(_), false) => return Err(errno::ESRCH),
                    _ => {}
                }
                self.check_modules(s)?;
                let netmask = stored_netmask(s)?;
                let stored = Service {
                    key: s.key.canonical(),
                    scheduler: s.scheduler.clone(),
                    flags: s.flags | ServiceFlags::HASHED,
                    timeout: s.timeout.wrapping_mul(HZ) / HZ,
                    netmask,
                    pe_name: s.pe_name.clone().filter(|p| !p.is_empty()),
                    stats: Stats::default(),
                };
                match self.find_mut(&s.key) {
                    Some(entry) => {
                        entry.service = Service {
                            stats: entry.service.stats,
                            ..stored
                        }
                    }
                    None => self.services.push(Entry {
                        service: stored,
                        dests: Vec::new(),
                    }),
                }
                Ok(())
            }
            Op::DelService(key) => {
                let key = key.canonical();
                let before = self.services.len();
                self.services.retain(|e| e.service.key != key);
                if self.services.len() == before {
                    return Err(errno::ESRCH);
                }
                Ok(())
            }
            Op::AddDest { service, dest } | Op::EditDest { service, dest } => {
                let syncing = self.master.is_some() || self.backup.is_some();
                let entry = self.find_mut(service).ok_or(errno::ESRCH)?;
                if dest.family() != entry.service.key.family()
                    && (syncing || dest.forward != Forward::Tunnel)
                {
                    return Err(errno::EINVAL);
                }
                if dest.weight < 0 || dest.lower_threshold > dest.upper_threshold {
                    return Err(errno::ERANGE);
                }
                if dest.tunnel.kind == TunnelType::Gue && dest.tunnel.port == 0 {
                    return Err(errno::EINVAL);
                }
                let existing = entry.dests.iter_mut().find(|d| d.key() == dest.key());
                let stored = Dest {
                    forward: Forward::from_wire(dest.forward.to_wire()),
                    active_conns: 0,
                    inactive_conns: 0,
                    persist_conns: 0,
                    stats: Stats::default(),
                    ..dest.clone()
                };
                match (op, existing) {
                    (Op::AddDest { .. }, Some(_)) => Err(errno::EEXIST),
                    (Op::AddDest { .. }, None) => {
                        if !usable_dest_addr(&dest.addr) {
                            return Err(errno::EINVAL);
                        }
                        entry.dests.insert(0, stored);
                        Ok(())
                    }
                    (_, Some(d)) => {
                        *d = Dest {
                            active_conns: d.active_conns,
                            inactive_conns: d.inactive_conns,
                            persist_conns: d.persist_conns,
                            stats: d.stats,
                            ..stored
                        };
                        Ok(())
                    }
                    (_, None) => Err(errno::ENOENT),
                }
            }
            Op::DelDest { service, dest } => {
                let entry = self.find_mut(service).ok_or(errno::ESRCH)?;
                let before = entry.dests.len();
                entry.dests.retain(|d| d.key() != *dest);
                if entry.dests.len() == before {
                    return Err(errno::ENOENT);
                }
                Ok(())
            }
            Op::Zero(Some(key)) => {
                let entry = self.find_mut(key).ok_or(errno::ESRCH)?;
                zero(entry);
                Ok(())
            }
            Op::Zero(None) => {
                self.services.iter_mut().for_each(zero);
                Ok(())
            }
            Op::Flush => {
                self.services.clear();
                Ok(())
            }
            Op::SetTimeouts(t) => {
                for (new, current) in [
                    (t.tcp, &mut self.timeouts.tcp),
                    (t.tcp_fin, &mut self.timeouts.tcp_fin),
                    (t.udp, &mut self.timeouts.udp),
                ] {
                    if new != 0 {
                        *current = new;
                    }
                }
                Ok(())
            }
            Op::StartDaemon(d) => self.start_daemon(d),
            Op::StopDaemon(state) => {
                let slot = match state {
                    DaemonState::Master => &mut self.master,
                    DaemonState::Backup => &mut self.backup,
                    DaemonState::Other(_) => return Err(errno::EINVAL),
                };
                slot.take().map(|_| ()).ok_or(errno::ESRCH)
            }
        }
    }

    fn check_modules(&self, s: &Service) -> Result<(), i32> {
        if s.scheduler != "none" && !self.schedulers.contains(&s.scheduler) {
            return Err(errno::ENOENT);
        }
        match s.pe_name.as_deref() {
            Some(pe) if !pe.is_empty() && !self.pes.iter().any(|p| p == pe) => Err(errno::ENOENT),
            _ => Ok(()),
        }
    }

    fn start_daemon(&mut self, d: &Daemon) -> Result<(), i32> {
        if d.mcast_ifn.len() > NAME_MAX {
            return Err(errno::EINVAL);
        }
        match d.mcast_group {
            Some(IpAddr::V4(g)) if !g.is_multicast() => return Err(errno::EINVAL),
            Some(IpAddr::V6(g)) if !g.is_multicast() => return Err(errno::EINVAL),
            _ => {}
        }
        let mixed = self
            .services
            .iter()
            .any(|e| e.dests.iter().any(|d| d.family() != e.service.key.family()));
        if mixed {
            return Err(errno::EINVAL);
        }
        let running = match d.state {
            DaemonState::Master => self.master.is_some(),
            DaemonState::Backup => self.backup.is_some(),
            DaemonState::Other(_) => return Err(errno::EINVAL),
        };
        if running {
            return Err(errno::EEXIST);
        }
        if !self.interfaces.contains(&d.mcast_ifn) {
            return Err(errno::ENODEV);
        }
        // What the kernel reports for omitted settings.
        let stored = Daemon {
            sync_maxlen: Some(d.sync_maxlen.unwrap_or(1472)),
            mcast_group: Some(
                d.mcast_group
                    .unwrap_or(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81))),
            ),
            mcast_port: Some(d.mcast_port.filter(|p| *p != 0).unwrap_or(8848)),
            mcast_ttl: Some(d.mcast_ttl.filter(|t| *t != 0).unwrap_or(1)),
            ..d.clone()
        };
        match d.state {
            DaemonState::Master => self.master = Some(stored),
            _ => self.backup = Some(stored),
        }
        Ok(())
    }
}

/// The attribute policy's limits on name lengths.
fn check_names(s: &Service) -> Result<(), i32> {
    let too_long = |name: &str| name.len() > NAME_MAX || name.contains('\0');
    if too_long(&s.scheduler) || s.pe_name.as_deref().is_some_and(too_long) {
        return Err(errno::EINVAL);
    }
    Ok(())
}

/// The netmask as the kernel stores it: one 32-bit field whose meaning follows the
/// service's family. IPv6 prefixes outside 1–128 are refused.
fn stored_netmask(s: &Service) -> Result<Netmask, i32> {
    // On the wire an IPv4 mask is big-endian and a prefix length is host-order; the
    // kernel reads the same four bytes either way.
    let raw_host = match s.netmask {
        Netmask::V4(mask) => u32::from_ne_bytes(mask.octets()),
        Netmask::V6(plen) => plen,
    };
    match s.key.family() {
        Family::Inet => Ok(Netmask::V4(Ipv4Addr::from(raw_host.to_ne_bytes()))),
        Family::Inet6 if (1..=128).contains(&raw_host) => Ok(Netmask::V6(raw_host)),
        Family::Inet6 => Err(errno::EINVAL),
    }
}

/// `ip_vs_new_dest`: the address must be unicast (or local) in its family.
fn usable_dest_addr(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_broadcast() || a.is_multicast()),
        IpAddr::V6(a) => {
            let link_local = a.segments()[0] & 0xffc0 == 0xfe80;
            let mapped = a.to_ipv4_mapped().is_some();
            !(a.is_unspecified() || a.is_multicast() || link_local || mapped)
                || *a == Ipv6Addr::LOCALHOST
        }
    }
}

fn zero(entry: &mut Entry) {
    entry.service.stats = Stats::default();
    for d in &mut entry.dests {
        d.stats = Stats::default();
    }
}

impl Backend for FakeKernel {
    async fn services(&mut self) -> Result<Vec<Service>, IpvsError> {
        self.take_timeout()?;
        Ok(self
            .lock()
            .services
            .iter()
            .map(|e| e.service.clone())
            .collect())
    }

    async fn dests(&mut self, service: &ServiceKey) -> Result<Vec<Dest>, IpvsError> {
        self.take_timeout()?;
        Ok(self
            .lock()
            .find(service)
            .map(|e| e.dests.clone())
            .unwrap_or_default())
    }

    async fn service(&mut self, key: &ServiceKey) -> Result<Service, IpvsError> {
        self.take_timeout()?;
        self.lock()
            .find(key)
            .map(|e| e.service.clone())
            .ok_or(IpvsError::NoSuchService)
    }

    async fn info(&mut self) -> Result<Info, IpvsError> {
        self.take_timeout()?;
        Ok(self.lock().info)
    }

    async fn timeouts(&mut self) -> Result<Timeouts, IpvsError> {
        self.take_timeout()?;
        Ok(self.lock().timeouts)
    }

    async fn daemons(&mut self) -> Result<Vec<Daemon>, IpvsError> {
        self.take_timeout()?;
        let state = self.lock();
        Ok(state.master.iter().chain(&state.backup).cloned().collect())
    }

    async fn apply(&mut self, ops: &[Op]) -> Result<OpResults, IpvsError> {
        self.take_timeout()?;
        let mut state = self.lock();
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let result = match state.faults.front() {
                Some(Fault::Errno(code)) => {
                    let code = *code;
                    state.faults.pop_front();
                    Err(code)
                }
                _ => state.apply(op),
            };
            state.journal.push(JournalEntry {
                op: op.clone(),
                result,
            });
            results.push(result.map_err(|code| IpvsError::from_errno(code, op.subject())));
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn web() -> ServiceKey {
        ServiceKey::tcp(v4("10.0.0.100"), 80)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn errno_of(r: Result<(), IpvsError>) -> Option<i32> {
        r.err().and_then(|e| e.errno())
    }

    #[test]
    fn duplicates_and_missing_entries_get_the_kernels_errnos() {
        block_on(async {
            let mut k = FakeKernel::new();
            let svc = Service::new(web(), "wlc");
            k.add_service(&svc).await.unwrap();
            assert_eq!(errno_of(k.add_service(&svc).await), Some(errno::EEXIST));
            let other = Service::new(ServiceKey::tcp(v4("10.0.0.1"), 80), "wlc");
            assert_eq!(errno_of(k.edit_service(&other).await), Some(errno::ESRCH));
            assert_eq!(
                errno_of(k.del_service(&other.key).await),
                Some(errno::ESRCH)
            );
            assert!(matches!(
                k.service(&other.key).await,
                Err(IpvsError::NoSuchService)
            ));

            let rs = Dest::new(v4("10.0.0.11"), 80, Forward::Route, 1);
            k.add_dest(&web(), &rs).await.unwrap();
            assert!(matches!(
                k.add_dest(&web(), &rs).await,
                Err(IpvsError::DestExists)
            ));
            let missing = Dest::new(v4("10.0.0.12"), 80, Forward::Route, 1);
            assert!(matches!(
                k.edit_dest(&web(), &missing).await,
                Err(IpvsError::NoSuchDest)
            ));
            assert!(matches!(
                k.del_dest(&web(), &missing.key()).await,
                Err(IpvsError::NoSuchDest)
            ));
            // A destination command on a missing service: ESRCH before anything else.
            assert!(matches!(
                k.add_dest(&other.key, &rs).await,
                Err(IpvsError::NoSuchService)
            ));
            assert!(k.dests(&other.key).await.unwrap().is_empty());
        });
    }

    #[test]
    fn stored_services_carry_hashed_and_dests_are_newest_first() {
        block_on(async {
            let mut k = FakeKernel::new();
            k.add_service(&Service::new(web(), "rr").persistent(300))
                .await
                .unwrap();
            let s = k.service(&web()).await.unwrap();
            assert_eq!(s.flags, ServiceFlags::PERSISTENT | ServiceFlags::HASHED);
            for last in [11, 12, 13] {
                let d = Dest::new(v4(&format!("10.0.0.{last}")), 80, Forward::Masq, 1);
                k.add_dest(&web(), &d).await.unwrap();
            }
            let order: Vec<_> = k
                .dests(&web())
                .await
                .unwrap()
                .iter()
                .map(|d| d.addr.to_string())
                .collect();
            assert_eq!(order, ["10.0.0.13", "10.0.0.12", "10.0.0.11"]);
        });
    }

    #[test]
    fn validation_order_and_errnos() {
        block_on(async {
            let mut k = FakeKernel::new();
            assert!(matches!(
                k.add_service(&Service::new(web(), "nosuch")).await,
                Err(IpvsError::NoSuchModule)
            ));
            assert!(matches!(
                k.add_service(&Service::new(web(), "a-very-long-scheduler"))
                    .await,
                Err(IpvsError::Invalid)
            ));
            let mut v6 = Service::new(ServiceKey::tcp(v4("2001:db8::1"), 80), "rr");
            v6.netmask = Netmask::V6(0);
            assert!(matches!(k.add_service(&v6).await, Err(IpvsError::Invalid)));
            v6.netmask = Netmask::V6(64);
            k.add_service(&v6).await.unwrap();

            k.add_service(&Service::new(web(), "rr")).await.unwrap();
            let mut d = Dest::new(v4("10.0.0.11"), 80, Forward::Route, -1);
            assert!(matches!(
                k.add_dest(&web(), &d).await,
                Err(IpvsError::OutOfRange)
            ));
            d.weight = 1;
            d.lower_threshold = 5;
            assert!(matches!(
                k.add_dest(&web(), &d).await,
                Err(IpvsError::OutOfRange)
            ));
            d.lower_threshold = 0;
            d.tunnel.kind = TunnelType::Gue;
            assert!(matches!(
                k.add_dest(&web(), &d).await,
                Err(IpvsError::Invalid)
            ));
            d.tunnel.kind = TunnelType::Ipip;
            d.addr = v4("224.0.0.1");
            assert!(matches!(
                k.add_dest(&web(), &d).await,
                Err(IpvsError::Invalid)
            ));
            // Mixed family needs tunnelling.
            d.addr = v4("2001:db8::11");
            assert!(matches!(
                k.add_dest(&web(), &d).await,
                Err(IpvsError::Invalid)
            ));
            d.forward = Forward::Tunnel;
            k.add_dest(&web(), &d).await.unwrap();
            // ... and then no sync daemon may start.
            let daemon = Daemon::new(DaemonState::Master, "lo", 1);
            assert!(matches!(
                k.start_daemon(&daemon).await,
                Err(IpvsError::Invalid)
            ));
        });
    }

    #[test]
    fn ipv4_netmask_and_fwmark_zero_are_stored_like_the_kernel() {
        block_on(async {
            let mut k = FakeKernel::new();
            let mut s = Service::new(ServiceKey::fwmark(Family::Inet, 0), "rr");
            s.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
            k.add_service(&s).await.unwrap();
            let stored = k.services().await.unwrap().remove(0);
            assert_eq!(stored.key, ServiceKey::tcp(v4("0.0.0.0"), 0));
            assert_eq!(stored.netmask, Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)));
        });
    }

    #[test]
    fn edits_keep_counters_and_zero_clears_them() {
        block_on(async {
            let mut k = FakeKernel::new();
            k.add_service(&Service::new(web(), "rr")).await.unwrap();
            let d = Dest::new(v4("10.0.0.11"), 80, Forward::Route, 1);
            k.add_dest(&web(), &d).await.unwrap();
            assert!(k.update_dest(&web(), &d.key(), |d| {
                d.active_conns = 3;
                d.stats.conns = 10;
            }));
            k.edit_dest(
                &web(),
                &Dest {
                    weight: 0,
                    ..d.clone()
                },
            )
            .await
            .unwrap();
            let got = k.dests(&web()).await.unwrap().remove(0);
            assert_eq!((got.weight, got.active_conns, got.stats.conns), (0, 3, 10));
            k.zero(None).await.unwrap();
            let got = k.dests(&web()).await.unwrap().remove(0);
            assert_eq!((got.active_conns, got.stats.conns), (3, 0));
            assert!(matches!(
                k.zero(Some(&ServiceKey::udp(v4("10.0.0.1"), 1))).await,
                Err(IpvsError::NoSuchService)
            ));
        });
    }

    #[test]
    fn batches_run_every_op_and_report_each() {
        block_on(async {
            let mut k = FakeKernel::new();
            let svc = Service::new(web(), "rr");
            let ops = [
                Op::AddService(svc.clone()),
                Op::AddService(svc.clone()),
                Op::AddDest {
                    service: web(),
                    dest: Dest::new(v4("10.0.0.11"), 80, Forward::Route, 1),
                },
            ];
            let results = k.apply(&ops).await.unwrap();
            assert!(results[0].is_ok());
            assert!(matches!(results[1], Err(IpvsError::ServiceExists)));
            assert!(results[2].is_ok());
            assert_eq!(k.journal().len(), 3);
            assert_eq!(k.journal()[1].result, Err(errno::EEXIST));
        });
    }

    #[test]
    fn faults_are_consumed_in_order() {
        block_on(async {
            let mut k = FakeKernel::new();
            k.push_fault(Fault::Timeout);
            k.push_fault(Fault::Errno(errno::EPERM));
            assert!(matches!(k.services().await, Err(IpvsError::Timeout(_))));
            let err = k.add_service(&Service::new(web(), "rr")).await.unwrap_err();
            assert!(matches!(err, IpvsError::PermissionDenied));
            assert!(k.services().await.unwrap().is_empty());
            k.add_service(&Service::new(web(), "rr")).await.unwrap();
        });
    }

    #[test]
    fn timeouts_and_daemons() {
        block_on(async {
            let mut k = FakeKernel::new();
            k.set_timeouts(&Timeouts {
                tcp: 0,
                tcp_fin: 30,
                udp: 0,
            })
            .await
            .unwrap();
            let t = k.timeouts().await.unwrap();
            assert_eq!((t.tcp, t.tcp_fin, t.udp), (900, 30, 300));

            let master = Daemon::new(DaemonState::Master, "lo", 7);
            k.start_daemon(&master).await.unwrap();
            assert!(matches!(
                k.start_daemon(&master).await,
                Err(IpvsError::DaemonRunning)
            ));
            let eth9 = Daemon::new(DaemonState::Backup, "eth9", 7);
            assert!(matches!(
                k.start_daemon(&eth9).await,
                Err(IpvsError::NoSuchDevice)
            ));
            let listed = k.daemons().await.unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].mcast_port, Some(8848));
            k.stop_daemon(DaemonState::Master).await.unwrap();
            assert!(matches!(
                k.stop_daemon(DaemonState::Master).await,
                Err(IpvsError::NoSuchDaemon)
            ));
        });
    }
}
