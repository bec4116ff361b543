//! The director's run loop: observations in, kernel table out.
//!
//! Start: read the managed part of the kernel table and ADOPT it (each real server keeps
//! what the kernel has until its first check answers), then reconcile. After that, every
//! batch of check results that changes a real server's health reconciles at once, and a
//! timer reconciles every `checkinterval` to repair entries changed behind the director's
//! back. A reconcile is: read → `desired` → `plan` → apply (one batch) → read back → verify.
//! A failed op is logged with its errno and retried at the next reconcile; nothing is
//! ever flushed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{CheckType, Config, Virtual};
use crate::ipvs::{Backend, Desired, DestKey, IpvsError, Op, ServiceKey, Table, plan, project};

use super::checks::{EngineChecks, HealthChecks, Observation, WantedCheck};
use super::command::Command;
use super::datapath::is_datapath;
use super::desired::{FallbackNeed, desired};
use super::effects::{AlertKind, Change, Effects};
use super::error::DirectorError;
use super::layout::{Layout, Role};
use super::maintenance::{Maintenance, ReverseLookup, SystemLookup};
use super::metrics::Metrics;
use super::preview::preview_reload;
use super::state::{Adopted, Health, Input, RealState, Step, Verdict};
use super::status::{
    Clock, FallbackStatus, KernelStatus, Phase, RealStatus, Status, VirtualStatus,
};
use super::sync::{describe, sync_ops};
use crate::check::{Engine, Jitter};

/// Runs `config` against `backend` until [`Command::Stop`] (or until `commands` closes),
/// publishing a [`Status`] after every change. See the module doc of [`super`].
pub async fn run<B: Backend>(
    config: Config,
    backend: B,
    commands: mpsc::Receiver<Command>,
    status: watch::Sender<Status>,
) -> Result<(), DirectorError> {
    Director::new(config, backend).run(commands, status).await
}

/// A failing op is logged as an error again after this many passes.
const REPEAT_LOG_EVERY: u32 = 60;

/// Why a reconcile runs: it decides how a change is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Start,
    Reload,
    Health,
    /// The periodic pass: anything to do was changed behind the director's back (or is
    /// a retry of a failed op).
    Timer,
}

/// What `Director::apply` does with an op the kernel refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failures {
    /// Log it, count it, retry it at the next pass.
    Report,
    /// An op refused because the table it was planned against is out of date (exists
    /// already, or no longer exists) is not reported: the caller reads the kernel and
    /// plans again at once. Other refusals are reported.
    Retry,
}

/// How a `Director::apply` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    /// The kernel acknowledged every op.
    All,
    /// Some op found the table other than planned ([`Failures::Retry`] only).
    Stale,
    /// Some op failed, or the batch did; reported, retried at the next pass.
    Failed,
}

/// The director: owns the health state and drives the kernel table.
pub struct Director<B> {
    backend: B,
    config: Arc<Config>,
    layout: Layout,
    /// `states[v][r]`: real `r` of virtual `v`.
    states: Vec<Vec<RealState>>,
    /// Services of earlier configurations still to delete.
    retired: Vec<ServiceKey>,
    /// The last `fallbackcommand` argument run per service.
    fallback_commands: HashMap<ServiceKey, &'static str>,
    checks: Box<dyn HealthChecks>,
    observations: Option<mpsc::Receiver<Observation>>,
    effects: Effects,
    maintenance: Maintenance,
    lookup: Arc<dyn ReverseLookup>,
    clock: Clock,
    phase: Phase,
    ready: bool,
    generation: u64,
    reload_error: Option<String>,
    kernel: KernelStatus,
    /// Weights in the kernel at the last read, per managed service.
    kernel_weights: HashMap<ServiceKey, HashMap<DestKey, i32>>,
    /// The last apply left something undone; the next timer pass retries it.
    retrying: bool,
    /// Ops that failed at the last apply, with how many times in a row: a failure is
    /// logged as an error the first time and every [`REPEAT_LOG_EVERY`] times after.
    failing: HashMap<String, u32>,
    /// Services whose reals changed health since the last reconcile.
    dirty: HashSet<ServiceKey>,
    /// The managed services as last read, with every acknowledged change since applied
    /// ([`project`]). Health passes plan against it instead of reading; `None` after
    /// anything went wrong, so that the next pass reads.
    known: Option<Table>,
    metrics: Metrics,
    /// Marks of the data-path services found in the kernel at the last full read: only
    /// their checks run.
    datapath_present: HashSet<u32>,
    /// What changed since the status was last published, so that a check result costs
    /// an update of its own entries, not a new snapshot of every real (which made each
    /// check O(reals): 0.7 ms of CPU per check at 1,000 reals).
    touched: Touched,
}

/// Status entries to refresh at the next publication.
#[derive(Default)]
struct Touched {
    /// (virtual, real) whose last check or state changed.
    reals: Vec<(usize, usize)>,
    /// Virtuals whose kernel weights, fallback or fallback command may have changed.
    virtuals: HashSet<usize>,
}

impl<B: Backend> Director<B> {
    /// A director whose real servers are checked by the check engine
    /// ([`EngineChecks`]); [`Director::with_checks`] replaces it.
    pub fn new(config: Config, backend: B) -> Director<B> {
        let layout = Layout::new(&config);
        let (checks, observations) = EngineChecks::new(Engine::default(), Jitter::default());
        Director {
            backend,
            maintenance: Maintenance::new(config.global.maintenancedir.clone()),
            lookup: Arc::new(SystemLookup),
            config: Arc::new(config),
            layout,
            states: Vec::new(),
            retired: Vec::new(),
            fallback_commands: HashMap::new(),
            checks: Box::new(checks),
            observations: Some(observations),
            effects: Effects::default(),
            clock: Clock::now(),
            phase: Phase::Starting,
            ready: false,
            generation: 0,
            reload_error: None,
            kernel: KernelStatus::default(),
            kernel_weights: HashMap::new(),
            retrying: false,
            failing: HashMap::new(),
            dirty: HashSet::new(),
            known: None,
            metrics: Metrics::default(),
            datapath_present: HashSet::new(),
            touched: Touched::default(),
        }
    }

    /// Health checks come from `checks`, which sends its results to `observations`.
    pub fn with_checks(
        mut self,
        checks: impl HealthChecks,
        observations: mpsc::Receiver<Observation>,
    ) -> Director<B> {
        self.checks = Box::new(checks);
        self.observations = Some(observations);
        self
    }

    /// Side effects (mail, `fallbackcommand`, monitor file) go through `effects`.
    pub fn with_effects(mut self, effects: Effects) -> Director<B> {
        self.effects = effects;
        self
    }

    /// Names of real servers for the maintenance directory come from `lookup`.
    pub fn with_reverse_lookup(mut self, lookup: Arc<dyn ReverseLookup>) -> Director<B> {
        self.lookup = lookup;
        self
    }

    /// Check latencies, health changes and failed kernel changes are counted in `metrics`
    /// (the Prometheus endpoint reads them).
    pub fn with_metrics(mut self, metrics: Metrics) -> Director<B> {
        self.metrics = metrics;
        self
    }

    /// Status times are computed against `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Director<B> {
        self.clock = clock;
        self
    }

    /// Runs until [`Command::Stop`] or until `commands` closes (treated the same).
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        status: watch::Sender<Status>,
    ) -> Result<(), DirectorError> {
        self.start().await?;
        self.publish(&status, true);
        let mut timer = self.timer();
        let mut observations = self.observations.take();
        loop {
            // Commands and the periodic pass may change anything: they republish it all.
            let mut everything = true;
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Reload(config)) => {
                        self.reload(*config).await;
                        timer = self.timer();
                    }
                    Some(Command::ReloadFailed(error)) => {
                        tracing::warn!(error = %error, "reload failed; the running configuration stays in effect");
                        self.reload_error = Some(error);
                    }
                    Some(Command::Plan { config, reply }) => {
                        let _ = reply.send(self.preview_reload(&config).await);
                    }
                    Some(Command::ConfigChanged { path }) => {
                        if let Some(callback) = &self.config.global.callback {
                            self.effects.callback(callback, &path);
                        }
                    }
                    Some(Command::Stop) | None => break,
                },
                received = recv_some(&mut observations) => {
                    match received {
                        Some(first) => {
                            everything = false;
                            self.observe(first);
                            // Drain what is already queued so that one reconcile (one
                            // batch to the kernel) serves all of it.
                            while let Some(more) = observations.as_mut().and_then(|rx| rx.try_recv().ok()) {
                                self.observe(more);
                            }
                            if !self.dirty.is_empty() {
                                self.reconcile(Trigger::Health).await;
                            }
                            self.leave_starting();
                        }
                        None => observations = None,
                    }
                },
                _ = timer.tick() => {
                    self.reconcile(Trigger::Timer).await;
                    self.reconcile_sync().await;
                    self.effects.resend_due(self.phase);
                }
            }
            self.publish(&status, everything);
        }
        self.stop().await;
        self.publish(&status, true);
        Ok(())
    }

    /// Publishes the status: all of it, or only the entries touched since the last time.
    fn publish(&mut self, status: &watch::Sender<Status>, everything: bool) {
        let touched = std::mem::take(&mut self.touched);
        let in_place = !everything
            && status.send_if_modified(|published| {
                if published.virtuals.len() != self.layout.virtuals.len() {
                    return false;
                }
                self.patch(published, &touched);
                true
            });
        if !in_place {
            status.send_replace(self.snapshot());
        }
    }

    fn timer(&self) -> tokio::time::Interval {
        let period = self.config.global.checkinterval.max(Duration::from_secs(1));
        let mut timer = tokio::time::interval_at(Instant::now() + period, period);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        timer
    }

    async fn start(&mut self) -> Result<(), DirectorError> {
        // Data-path services an earlier run left behind (its configuration differed).
        let wanted: HashSet<ServiceKey> = self.layout.datapath.keys().collect();
        let stale: Vec<ServiceKey> = self
            .backend
            .services()
            .await
            .map_err(|source| DirectorError::Kernel { source })?
            .into_iter()
            .map(|s| s.key)
            .filter(|k| is_datapath(k) && !wanted.contains(k))
            .collect();
        self.retired.extend(stale);
        let actual = self
            .read_managed()
            .await
            .map_err(|source| DirectorError::Kernel { source })?;
        self.states = adopt(
            &self.config,
            &self.layout,
            &weights(&actual),
            None,
            Instant::now(),
        );
        self.resolve_names();
        self.set_checks();
        self.reconcile_with(Trigger::Start, Some(actual)).await;
        self.reconcile_sync().await;
        // Ready once the first pass is done, even if some op was refused: the daemon
        // runs (as Perl does), and the status says what is missing.
        self.ready = true;
        self.generation = 1;
        self.leave_starting();
        Ok(())
    }

    async fn reload(&mut self, config: Config) {
        let previous = self.phase;
        self.phase = Phase::Reloading;
        let layout = Layout::new(&config);
        let keep: HashSet<ServiceKey> = layout.service_keys().map(|k| k.canonical()).collect();
        for key in self.layout.service_keys() {
            if !keep.contains(&key.canonical()) && !self.retired.contains(&key) {
                self.retired.push(key);
            }
        }
        self.retired.retain(|k| !keep.contains(&k.canonical()));
        self.fallback_commands
            .retain(|k, _| keep.contains(&k.canonical()));
        self.maintenance = Maintenance::new(config.global.maintenancedir.clone());
        let actual = match self.read_managed_for(&layout).await {
            Ok(table) => Some(table),
            Err(e) => {
                // New reals are adopted from the table as last read instead: taking them
                // for absent could delete servers that carry traffic.
                tracing::warn!(error = %e, "cannot read the IPVS table during reload; using the last reading");
                None
            }
        };
        let found = actual
            .as_ref()
            .map_or_else(|| self.kernel_weights.clone(), weights);
        let old = (&self.layout, self.states.as_slice());
        let states = adopt(&config, &layout, &found, Some(old), Instant::now());
        self.config = Arc::new(config);
        self.layout = layout;
        self.states = states;
        self.resolve_names();
        self.set_checks();
        self.reconcile_with(Trigger::Reload, actual).await;
        self.reconcile_sync().await;
        self.generation += 1;
        self.reload_error = None;
        self.phase = if previous == Phase::Starting {
            Phase::Starting
        } else {
            Phase::Running
        };
        self.leave_starting();
        tracing::info!(
            file = %self.config.file.display(),
            virtuals = self.layout.virtuals.len(),
            "configuration reloaded"
        );
    }

    async fn preview_reload(&mut self, config: &Config) -> Result<Vec<Op>, String> {
        let layout = Layout::new(config);
        let actual = self
            .read_managed_for(&layout)
            .await
            .map_err(|e| e.to_string())?;
        Ok(preview_reload(
            config,
            (&self.layout, &self.states),
            &self.retired,
            &actual,
        ))
    }

    async fn stop(&mut self) {
        self.phase = Phase::Stopping;
        self.checks.set(&[]);
        let clean: HashSet<ServiceKey> = self
            .layout
            .virtuals
            .iter()
            .enumerate()
            .filter(|(vi, _)| self.layout.owns_service(*vi))
            .filter(|(vi, _)| self.config.virtuals.get(*vi).is_some_and(|v| v.cleanstop))
            .map(|(_, v)| v.key)
            // no client traffic goes through a data-path service: always removed
            .chain(self.layout.datapath.keys())
            .collect();
        if !clean.is_empty() {
            match self.read_managed().await {
                Ok(actual) => {
                    let ops: Vec<Op> = actual
                        .services
                        .iter()
                        .filter(|(s, _)| clean.contains(&s.key))
                        .map(|(s, _)| Op::DelService(s.key))
                        .collect();
                    self.apply(&ops, &actual, Trigger::Start, "stop", Failures::Report)
                        .await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the IPVS table to clean up at stop")
                }
            }
        }
        self.effects.finish().await;
        self.phase = Phase::Stopped;
    }

    fn resolve_names(&mut self) {
        let addrs = self
            .config
            .virtuals
            .iter()
            .flat_map(|v| v.reals.iter().map(|r| r.addr))
            .collect();
        self.maintenance.resolve(addrs, self.lookup.clone());
    }

    fn set_checks(&mut self) {
        let mut wanted = Vec::new();
        for (vi, v) in self.layout.virtuals.iter().enumerate() {
            let Some(cv) = self.config.virtuals.get(vi) else {
                continue;
            };
            for (ri, r) in v.reals.iter().enumerate() {
                if let Some(real) = cv.reals.get(ri) {
                    let datapath = self.layout.datapath.mark_of(vi, ri);
                    // Without its service a marked check would be delivered to this host.
                    if datapath.is_some_and(|m| !self.datapath_present.contains(&m)) {
                        continue;
                    }
                    wanted.push(WantedCheck {
                        id: r.id,
                        virtual_server: cv,
                        real,
                        datapath,
                    });
                }
            }
        }
        self.checks.set(&wanted);
    }

    fn leave_starting(&mut self) {
        if self.phase != Phase::Starting {
            return;
        }
        let pending = self
            .states
            .iter()
            .flatten()
            .any(|s| matches!(s.health, Health::Pending(_)));
        if !pending {
            self.phase = Phase::Running;
        }
    }

    /// Applies one check result to every real that shares it.
    fn observe(&mut self, observation: Observation) {
        let now = Instant::now();
        for id in observation.reals.iter() {
            let places = self.layout.reals(id).to_vec();
            for (vi, ri) in places {
                let Some(cv) = self.config.virtuals.get(vi) else {
                    continue;
                };
                let input = if self.maintenance.is_set() && self.maintenance.covers(&cv.reals[ri]) {
                    Input::Maintenance
                } else {
                    let probe = &observation.probe;
                    let up = matches!(probe.verdict, Verdict::Up);
                    self.metrics
                        .check(&self.layout.virtuals[vi].id, up, probe.latency);
                    Input::Probe(probe.clone())
                };
                let failurecount = cv.check.failurecount;
                self.touched.reals.push((vi, ri));
                let state = &mut self.states[vi][ri];
                let step = state.observe(input, failurecount, now);
                self.effects.monitor(cv, &cv.reals[ri], state);
                self.log_step(vi, ri, &step);
                if let Step::Changed { to, .. } = step {
                    let v = &self.layout.virtuals[vi];
                    let real = v.reals[ri].dest.key().to_string();
                    self.metrics.change(&v.id, &real, to.name());
                    self.dirty.insert(v.key.canonical());
                    self.touched.virtuals.insert(vi);
                }
            }
        }
    }

    fn log_step(&self, vi: usize, ri: usize, step: &Step) {
        let v = &self.layout.virtuals[vi];
        let real = v.reals[ri].dest.key();
        let reason = down_reason(&self.states[vi][ri]);
        match step {
            Step::Unchanged => {}
            Step::SoftFailure { count, of } => tracing::info!(
                "virtual" = %v.id, real = %real, reason = reason.as_deref(),
                "Soft failure real server: {real} ({}) failure {count}/{of}", v.id
            ),
            Step::Reset { .. } => tracing::info!(
                "virtual" = %v.id, real = %real,
                "Resetting soft failure count: {real} ({})", v.id
            ),
            Step::Changed { from, to, reset } => {
                if reset.is_some() {
                    tracing::info!(
                        "virtual" = %v.id, real = %real,
                        "Resetting soft failure count: {real} ({})", v.id
                    );
                }
                tracing::info!(
                    "virtual" = %v.id,
                    real = %real,
                    from = from.name(),
                    to = to.name(),
                    reason = reason.as_deref(),
                    "real server {real} ({}) is {}{}",
                    v.id,
                    to.name(),
                    match (&reason, to) {
                        (Some(reason), Health::Down) => format!(": {reason}"),
                        _ => String::new(),
                    }
                );
            }
        }
    }

    async fn reconcile(&mut self, trigger: Trigger) {
        self.reconcile_with(trigger, None).await;
    }

    /// One reconcile pass; `known` is a table read a moment ago by the caller.
    ///
    /// A pass after health changes reads and plans only the services whose reals changed
    /// (a mass failure must not turn into one full table dump per batch); start, reload
    /// and the periodic pass cover every managed service.
    async fn reconcile_with(&mut self, trigger: Trigger, known: Option<Table>) {
        let dirty = std::mem::take(&mut self.dirty);
        let scope = (trigger == Trigger::Health).then_some(dirty);
        // Health alone decides these; a kernel that cannot be read must not delay them.
        self.run_fallback_commands();
        if let (Some(scope), None) = (&scope, &known)
            && self.reconcile_known(scope).await
        {
            return;
        }
        let actual = match known {
            Some(table) => table,
            None => match self.read_scope(scope.as_ref()).await {
                Ok(table) => table,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the IPVS table; retrying at the next pass");
                    self.known = None;
                    self.kernel.last_error = Some(format!("reading the table: {e}"));
                    self.kernel.in_sync = false;
                    self.retrying = true;
                    return;
                }
            },
        };
        let want = self.desired_in(scope.as_ref());
        let ops = plan(&want, &actual);
        if ops.is_empty() {
            self.synced(&actual, 0, scope.as_ref());
            return;
        }
        if trigger == Trigger::Timer && !self.retrying {
            tracing::warn!(
                changes = ops.len(),
                "the IPVS table was changed behind ldirectord's back; repairing"
            );
        }
        let purge = match trigger {
            Trigger::Start | Trigger::Reload => "start",
            Trigger::Health | Trigger::Timer => "drift",
        };
        if self
            .apply(&ops, &actual, trigger, purge, Failures::Report)
            .await
            == Applied::All
        {
            // Every op acknowledged: the kernel did exactly this, no need to read it back.
            // The periodic pass reads the whole table again.
            let mut after = actual;
            project(&mut after, &ops);
            if scope.is_none() {
                let live: HashSet<ServiceKey> = after
                    .services
                    .iter()
                    .map(|(s, _)| s.key.canonical())
                    .collect();
                self.retired.retain(|k| live.contains(&k.canonical()));
            }
            self.synced(&after, 0, scope.as_ref());
            return;
        }
        self.read_back(&want, scope.as_ref()).await;
    }

    /// Reads `scope` (or every managed service) after an apply that did not fully succeed,
    /// and records what is still missing.
    async fn read_back(&mut self, want: &Desired, scope: Option<&HashSet<ServiceKey>>) {
        match self.read_scope(scope).await {
            Ok(after) => {
                let remaining = plan(want, &after);
                if !remaining.is_empty() {
                    tracing::warn!(
                        pending = remaining.len(),
                        first = %remaining[0],
                        "the IPVS table still differs after applying; retrying at the next pass"
                    );
                }
                let live: HashSet<ServiceKey> = after
                    .services
                    .iter()
                    .map(|(s, _)| s.key.canonical())
                    .collect();
                if scope.is_none() {
                    self.retired.retain(|k| live.contains(&k.canonical()));
                }
                self.synced(&after, remaining.len(), scope);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the IPVS table back after applying");
                self.known = None;
                self.kernel.in_sync = false;
                self.kernel.last_error = Some(format!("reading the table back: {e}"));
                self.retrying = true;
            }
        }
    }

    /// A health pass against `known`, without reading the kernel. False when
    /// there is no such table or the kernel refused an op (the table was out of date,
    /// e.g. changed behind the director's back): the caller then reads and plans again.
    async fn reconcile_known(&mut self, scope: &HashSet<ServiceKey>) -> bool {
        let Some(known) = &self.known else {
            return false;
        };
        let mut actual = Table {
            services: known
                .services
                .iter()
                .filter(|(s, _)| scope.contains(&s.key.canonical()))
                .cloned()
                .collect(),
        };
        let want = self.desired_in(Some(scope));
        let ops = plan(&want, &actual);
        match self
            .apply(&ops, &actual, Trigger::Health, "drift", Failures::Retry)
            .await
        {
            Applied::All => {
                project(&mut actual, &ops);
                self.synced(&actual, 0, Some(scope));
                true
            }
            Applied::Stale => false,
            Applied::Failed => {
                self.read_back(&want, Some(scope)).await;
                true
            }
        }
    }

    /// The desired table, limited to `scope` (which then removes nothing).
    fn desired_in(&self, scope: Option<&HashSet<ServiceKey>>) -> Desired {
        let mut want = desired(&self.config, &self.layout, &self.states, &self.retired);
        if let Some(scope) = scope {
            want.services
                .retain(|s| scope.contains(&s.service.key.canonical()));
            want.remove.clear();
        }
        want
    }

    /// Records a read-back. A scoped pass (`scope`) only updates its services, and can
    /// report trouble but not declare the whole table in sync.
    fn synced(&mut self, table: &Table, pending: usize, scope: Option<&HashSet<ServiceKey>>) {
        if let Some(scope) = scope {
            for key in scope {
                self.kernel_weights.remove(key);
            }
            self.kernel_weights.extend(weights(table));
            if let Some(known) = &mut self.known {
                known
                    .services
                    .retain(|(s, _)| !scope.contains(&s.key.canonical()));
                known.services.extend(table.services.iter().cloned());
            }
            if pending > 0 {
                self.kernel.in_sync = false;
                self.kernel.pending_changes = pending;
                self.retrying = true;
            }
            return;
        }
        let present: HashSet<u32> = table
            .services
            .iter()
            .filter_map(|(s, dests)| match s.key {
                ServiceKey::Fwmark { mark, .. } if is_datapath(&s.key) && !dests.is_empty() => {
                    Some(mark)
                }
                _ => None,
            })
            .collect();
        if present != self.datapath_present && self.phase != Phase::Stopping {
            self.datapath_present = present;
            self.set_checks();
        }
        self.kernel_weights = weights(table);
        self.known = Some(table.clone());
        self.kernel.in_sync = pending == 0;
        self.kernel.pending_changes = pending;
        self.retrying = pending > 0;
        if pending == 0 {
            self.kernel.last_sync = Some(self.clock.rfc3339(Instant::now()));
            self.kernel.last_error = None;
        }
    }

    /// Applies `ops` as one batch and logs each op's outcome.
    async fn apply(
        &mut self,
        ops: &[Op],
        actual: &Table,
        trigger: Trigger,
        purge: &str,
        failures: Failures,
    ) -> Applied {
        if ops.is_empty() {
            return Applied::All;
        }
        let results = match self.backend.apply(ops).await {
            Ok(results) => results,
            Err(e) => {
                self.known = None;
                self.metrics.apply_batch_error();
                tracing::error!(error = %e, changes = ops.len(), "applying changes to the IPVS table failed; retrying at the next pass");
                self.kernel.last_error = Some(format!("applying {} changes: {e}", ops.len()));
                self.retrying = true;
                return Applied::Failed;
            }
        };
        let mut failing = HashMap::new();
        let mut outcome = Applied::All;
        for (op, result) in ops.iter().zip(results) {
            match result {
                Ok(()) => self.log_op(op, actual, trigger, purge),
                Err(e) if failures == Failures::Retry && out_of_date(&e) => {
                    outcome = Applied::Stale;
                    tracing::debug!(op = %op, error = %e, "IPVS change refused; reading the table and planning again");
                }
                Err(e) => {
                    if outcome == Applied::All {
                        outcome = Applied::Failed;
                    }
                    self.metrics.apply_error(op);
                    let text = op.to_string();
                    let times = self.failing.get(&text).copied().unwrap_or(0) + 1;
                    let errno = e.errno().unwrap_or(0);
                    let hint = e.hint().unwrap_or("");
                    if times == 1 || times.is_multiple_of(REPEAT_LOG_EVERY) {
                        tracing::error!(op = %text, errno, error = %e, hint, times, "IPVS change failed; retrying at the next pass");
                    } else {
                        tracing::debug!(op = %text, errno, error = %e, times, "IPVS change failed again");
                    }
                    self.kernel.last_error = Some(format!("{text}: {e} (errno {errno})"));
                    self.retrying = true;
                    failing.insert(text, times);
                }
            }
        }
        self.failing = failing;
        if outcome != Applied::All {
            self.known = None;
        }
        outcome
    }

    /// The Perl log line of an applied op, and its alert.
    fn log_op(&mut self, op: &Op, actual: &Table, trigger: Trigger, purge: &str) {
        let (service, dest) = match op {
            Op::AddService(s) | Op::EditService(s) => (s.key, None),
            Op::DelService(k) => (*k, None),
            Op::AddDest { service, dest } | Op::EditDest { service, dest } => {
                (*service, Some((dest.key(), dest.weight)))
            }
            Op::DelDest { service, dest } => (*service, Some((*dest, 0))),
            _ => return,
        };
        if is_datapath(&service) {
            // Not a virtual service of the configuration: no Perl text, no alert.
            let what = match (op, dest) {
                (Op::AddService(_), _) => "added".to_string(),
                (Op::DelService(_), _) => "removed".to_string(),
                (Op::DelDest { .. }, Some((d, _))) => format!("lost destination {d}"),
                (_, Some((d, _))) => format!("points at {d}"),
                _ => "changed".to_string(),
            };
            tracing::info!(service = %service, "data-path check service {service} {what}");
            return;
        }
        let vi = self.layout.virtual_index(&service);
        let (vname, vid) = match vi {
            Some(vi) => (
                self.layout.virtuals[vi].name.clone(),
                self.layout.virtuals[vi].id.clone(),
            ),
            None => (service.to_string(), service.to_string()),
        };
        let Some((dest, weight)) = dest else {
            let text = match op {
                Op::AddService(_) => format!("Added virtual server: {vname}"),
                Op::EditService(_) => format!("Changed virtual server: {vname}"),
                _ => {
                    // Perl purges each real server of the virtual, then the virtual.
                    let dests = actual
                        .services
                        .iter()
                        .find(|(s, _)| s.key.canonical() == service.canonical())
                        .map(|(_, d)| d.iter().map(|d| d.key()).collect::<Vec<_>>())
                        .unwrap_or_default();
                    for d in dests {
                        let text = format!("Purged real server ({purge}): {d} ({vname})");
                        tracing::info!("virtual" = %vid, real = %d, "{text}");
                        if let Some(vi) = vi {
                            let change = Change {
                                virtual_server: &self.config.virtuals[vi],
                                vname: &vname,
                                real: d,
                                text: &text,
                                kind: AlertKind::Clear,
                            };
                            self.effects.alert(&change, self.phase);
                        }
                    }
                    format!("Purged virtual server ({purge}): {vname}")
                }
            };
            tracing::info!("virtual" = %vid, "{text}");
            return;
        };
        let role = self.layout.role(&service, &dest);
        let tag = match role {
            Some(Role::Fallback { .. }) => "fallback",
            _ => "real",
        };
        let (text, alert) = match (op, role) {
            (Op::DelDest { .. }, None) => (
                format!("Purged real server ({purge}): {dest} ({vname})"),
                AlertKind::Clear,
            ),
            (Op::DelDest { .. }, Some(Role::Fallback { .. })) => (
                format!("Deleted fallback server: {dest} ({vname})"),
                AlertKind::Once,
            ),
            (Op::DelDest { .. }, _) => (
                format!("Deleted real server: {dest} ({vname})"),
                AlertKind::Raise,
            ),
            (Op::AddDest { .. }, _) if weight == 0 => (
                format!("Readd Quiescent {tag} server: {dest} ({vname}) (Weight set to 0)"),
                AlertKind::Raise,
            ),
            (Op::AddDest { .. }, _) => (
                format!("Added {tag} server: {dest} ({vname}) (Weight set to {weight})"),
                AlertKind::Clear,
            ),
            (_, _) if weight == 0 => (
                format!("Quiescent {tag} server: {dest} ({vname}) (Weight set to 0)"),
                AlertKind::Raise,
            ),
            (_, _) => (
                format!("Restored {tag} server: {dest} ({vname}) (Weight set to {weight})"),
                AlertKind::Clear,
            ),
        };
        let reason = match role {
            Some(Role::Real {
                virtual_index,
                real_index,
            }) => down_reason(&self.states[virtual_index][real_index]),
            _ => None,
        };
        if trigger == Trigger::Timer && !self.retrying {
            tracing::warn!(
                "virtual" = %vid, real = %dest, reason = "drift",
                "{text} (repairing a change made behind ldirectord's back)"
            );
        } else {
            tracing::info!("virtual" = %vid, real = %dest, reason = reason.as_deref(), "{text}");
        }
        if let Some(vi) = vi {
            // Perl mails a re-added quiesced server as plain "Quiescent …".
            let subject = text.strip_prefix("Readd ").unwrap_or(&text);
            let change = Change {
                virtual_server: &self.config.virtuals[vi],
                vname: &vname,
                real: dest,
                text: subject,
                kind: alert,
            };
            self.effects.alert(&change, self.phase);
        }
    }

    /// Keeps the kernel's sync daemons as `syncdaemon=` wants them (see [`super::sync`]).
    async fn reconcile_sync(&mut self) {
        let Some(wanted) = self.config.global.sync.clone() else {
            self.kernel.sync_daemons.clear();
            return;
        };
        let running = match self.backend.daemons().await {
            Ok(running) => running,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the IPVS sync daemons; retrying at the next pass");
                self.kernel.last_error = Some(format!("reading the sync daemons: {e}"));
                return;
            }
        };
        let ops = sync_ops(Some(&wanted), &running);
        let mut now_running = running;
        if !ops.is_empty() {
            match self.backend.apply(&ops).await {
                Ok(results) => {
                    for (op, result) in ops.iter().zip(results) {
                        match (op, result) {
                            (Op::StartDaemon(d), Ok(())) => {
                                tracing::info!("Started IPVS sync daemon: {}", describe(d));
                                now_running.retain(|r| r.state != d.state);
                                now_running.push(d.clone());
                            }
                            (Op::StopDaemon(state), Ok(())) => {
                                tracing::info!("Stopped IPVS sync daemon: {state:?}");
                                now_running.retain(|r| r.state != *state);
                            }
                            (_, Ok(())) => {}
                            (op, Err(e)) => {
                                self.metrics.apply_error(op);
                                tracing::error!(op = %op, errno = e.errno().unwrap_or(0), error = %e, "IPVS sync daemon change failed; retrying at the next pass");
                                self.kernel.last_error = Some(format!("{op}: {e}"));
                            }
                        }
                    }
                }
                Err(e) => {
                    self.metrics.apply_batch_error();
                    tracing::error!(error = %e, "changing the IPVS sync daemons failed; retrying at the next pass");
                    self.kernel.last_error = Some(format!("changing the sync daemons: {e}"));
                }
            }
        }
        now_running.sort_by_key(|d| d.state.to_wire());
        self.kernel.sync_daemons = now_running.iter().map(describe).collect();
    }

    /// Runs `fallbackcommand start|stop` where the need changed.
    fn run_fallback_commands(&mut self) {
        for (vi, v) in self.layout.virtuals.iter().enumerate() {
            if !self.layout.owns_service(vi) {
                continue;
            }
            let Some(cv) = self.config.virtuals.get(vi) else {
                continue;
            };
            let Some(command) = &cv.fallbackcommand else {
                continue;
            };
            let argument = match FallbackNeed::of(&self.states[vi]) {
                FallbackNeed::Off => "stop",
                FallbackNeed::On => "start",
                FallbackNeed::Undecided => continue,
            };
            if self.fallback_commands.get(&v.key) == Some(&argument) {
                continue;
            }
            self.fallback_commands.insert(v.key, argument);
            self.effects.fallback_command(command, argument, cv);
        }
    }

    /// The services in `scope`, or every managed one.
    async fn read_scope(
        &mut self,
        scope: Option<&HashSet<ServiceKey>>,
    ) -> Result<Table, IpvsError> {
        match scope {
            Some(keys) => read_services(&mut self.backend, keys).await,
            None => self.read_managed().await,
        }
    }

    async fn read_managed(&mut self) -> Result<Table, IpvsError> {
        let mut keys: HashSet<ServiceKey> =
            self.layout.service_keys().map(|k| k.canonical()).collect();
        keys.extend(self.retired.iter().map(|k| k.canonical()));
        read_services(&mut self.backend, &keys).await
    }

    async fn read_managed_for(&mut self, layout: &Layout) -> Result<Table, IpvsError> {
        let mut keys: HashSet<ServiceKey> = layout.service_keys().map(|k| k.canonical()).collect();
        keys.extend(self.layout.service_keys().map(|k| k.canonical()));
        keys.extend(self.retired.iter().map(|k| k.canonical()));
        read_services(&mut self.backend, &keys).await
    }

    fn snapshot(&self) -> Status {
        let virtuals = (0..self.layout.virtuals.len())
            .filter_map(|vi| self.virtual_status(vi))
            .collect();
        let mut status = Status {
            virtuals,
            ..Status::new(self.config.file.display().to_string())
        };
        self.patch_header(&mut status);
        status
    }

    /// Brings `status` (a snapshot of the same layout) up to date for what `touched` names.
    fn patch(&self, status: &mut Status, touched: &Touched) {
        self.patch_header(status);
        for &vi in &touched.virtuals {
            if let Some(v) = self.virtual_status(vi) {
                status.virtuals[vi] = v;
            }
        }
        for &(vi, ri) in &touched.reals {
            if touched.virtuals.contains(&vi) {
                continue;
            }
            let (Some(cv), Some(slot)) = (
                self.config.virtuals.get(vi),
                status.virtuals[vi].reals.get_mut(ri),
            ) else {
                continue;
            };
            let weights = self
                .kernel_weights
                .get(&self.layout.virtuals[vi].key.canonical());
            *slot = self.real_status(vi, ri, cv, weights);
        }
    }

    fn patch_header(&self, status: &mut Status) {
        status.phase = self.phase;
        status.ready = self.ready;
        status.last_reload_error.clone_from(&self.reload_error);
        status.generation = self.generation;
        status.kernel.clone_from(&self.kernel);
    }

    fn virtual_status(&self, vi: usize) -> Option<VirtualStatus> {
        let v = &self.layout.virtuals[vi];
        let cv = self.config.virtuals.get(vi)?;
        let weights = self.kernel_weights.get(&v.key.canonical());
        let reals = (0..v.reals.len().min(self.states[vi].len()))
            .map(|ri| self.real_status(vi, ri, cv, weights))
            .collect();
        let fallback = v.fallback.as_ref().map(|f| FallbackStatus {
            addr: f.key().to_string(),
            forwarding: cv
                .fallback
                .as_ref()
                .map_or("gate", |f| f.forwarding.as_str()),
            active: FallbackNeed::of(&self.states[vi]) == FallbackNeed::On,
            kernel_weight: weights.and_then(|w| w.get(&f.key()).copied()),
        });
        Some(VirtualStatus {
            id: v.id.clone(),
            service: v.key.to_string(),
            location: cv.location.to_string(),
            scheduler: cv.scheduler.clone(),
            checktype: cv.check.checktype.to_string(),
            in_kernel: weights.is_some(),
            reals,
            fallback,
            fallback_command: self.fallback_commands.get(&v.key).copied(),
        })
    }

    fn real_status(
        &self,
        vi: usize,
        ri: usize,
        cv: &Virtual,
        weights: Option<&HashMap<DestKey, i32>>,
    ) -> RealStatus {
        let r = &self.layout.virtuals[vi].reals[ri];
        let s = &self.states[vi][ri];
        let last = s.last.as_ref();
        RealStatus {
            addr: r.dest.key().to_string(),
            forwarding: r.forwarding.as_str(),
            weight: r.weight,
            health: s.health.name(),
            maintenance: s.maintenance,
            since: self.clock.rfc3339(s.since),
            last_check: last.map(|(at, _)| self.clock.rfc3339(*at)),
            verdict: last.map(|(_, p)| p.verdict.name()),
            reason: last.and_then(|(_, p)| match &p.verdict {
                Verdict::Down(r) => Some(r.clone()),
                _ => None,
            }),
            latency_ms: last.map(|(_, p)| p.latency.as_secs_f64() * 1000.0),
            failures: s.failures,
            failurecount: cv.check.failurecount,
            kernel_weight: weights.and_then(|w| w.get(&r.dest.key()).copied()),
        }
    }
}

/// The reason of the last down verdict, for log fields; empty after an up verdict.
fn down_reason(state: &RealState) -> Option<String> {
    match state.last.as_ref().map(|(_, p)| &p.verdict) {
        Some(Verdict::Down(reason)) => Some(reason.to_string()),
        _ => None,
    }
}

/// The kernel refused an op because the entry exists already or no longer exists: the
/// table the op was planned against is out of date.
fn out_of_date(error: &IpvsError) -> bool {
    matches!(
        error,
        IpvsError::ServiceExists
            | IpvsError::DestExists
            | IpvsError::NoSuchService
            | IpvsError::NoSuchDest
    )
}

/// Receives from `rx` if there is one; pends forever otherwise (a `select!` branch that
/// never fires).
async fn recv_some(rx: &mut Option<mpsc::Receiver<Observation>>) -> Option<Observation> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The services in `keys` with their destinations; other services are not read.
pub(crate) async fn read_services<B: Backend>(
    backend: &mut B,
    keys: &HashSet<ServiceKey>,
) -> Result<Table, IpvsError> {
    let services = backend.services().await?;
    let mut table = Table::default();
    for service in services {
        if !keys.contains(&service.key.canonical()) {
            continue;
        }
        let dests = backend.dests(&service.key).await?;
        table.services.push((service, dests));
    }
    Ok(table)
}

/// Destination weights per service, as last read from the kernel.
pub(crate) type Weights = HashMap<ServiceKey, HashMap<DestKey, i32>>;

pub(crate) fn weights(table: &Table) -> Weights {
    table
        .services
        .iter()
        .map(|(s, dests)| {
            (
                s.key.canonical(),
                dests.iter().map(|d| (d.key(), d.weight)).collect(),
            )
        })
        .collect()
}

/// The health of every real of `layout`: carried over from `old` where the real and its
/// check are unchanged, otherwise taken over from the kernel table.
pub(crate) fn adopt(
    config: &Config,
    layout: &Layout,
    kernel: &Weights,
    old: Option<(&Layout, &[Vec<RealState>])>,
    now: Instant,
) -> Vec<Vec<RealState>> {
    layout
        .virtuals
        .iter()
        .enumerate()
        .map(|(vi, v)| {
            let cv = &config.virtuals[vi];
            v.reals
                .iter()
                .map(|r| {
                    let carried = old.and_then(|(old_layout, old_states)| {
                        let same_dest = old_layout.reals(&r.id).iter().find(|&&(ovi, ori)| {
                            old_layout.virtuals[ovi].reals[ori].identity == r.identity
                        });
                        // A new forwarding method can move the kernel destination (only
                        // NAT maps ports) without changing the server or its check.
                        let (ovi, ori) = same_dest
                            .copied()
                            .or_else(|| old_layout.real_with_check(&v.key, &r.identity))?;
                        old_states.get(ovi)?.get(ori).cloned()
                    });
                    if let Some(state) = carried {
                        return state;
                    }
                    let found = kernel
                        .get(&v.key.canonical())
                        .and_then(|dests| dests.get(&r.dest.key()));
                    let adopted = match found {
                        Some(w) if *w > 0 => Adopted::Serving,
                        Some(_) => Adopted::Quiesced,
                        None => Adopted::Absent,
                    };
                    let health = if cv.check.always_up() {
                        Health::Up
                    } else if cv.check.checktype == CheckType::Off {
                        // Never checked: what the kernel has is final (Perl's start
                        // forces these up or down once and never looks again).
                        if adopted == Adopted::Serving {
                            Health::Up
                        } else {
                            Health::Down
                        }
                    } else {
                        Health::Pending(adopted)
                    };
                    RealState::new(health, now)
                })
                .collect()
        })
        .collect()
}
