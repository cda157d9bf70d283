//! The controller turns one decoded trigger into at most one transition and carries the
//! transition out. Every step is idempotent: the compare-and-swap makes the transition
//! happen once, the state records how far its side effects got, and any later invocation
//! (after the lease of a crashed one has run out) finishes what is left.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;
use serde::Serialize;
use tracing::{Instrument, info, info_span, warn};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::event::{AlarmSignal, AlarmState, Command, Trigger};
use crate::ports::{
    Clock, ControlStore, HealthProbe, Heartbeats, ParameterStore, Ports, ProbeResult, RefreshInfo,
    ScalingGroups,
};
use crate::region::Region;
use crate::rolling;
use crate::state::{
    ControlState, HistoryRecord, Millis, Pause, RefreshStatus, StepStatus, Transition, TriggerInfo,
    Versioned,
};
use crate::switch::{self, Decision, Intent, Plan, SwitchRequest};

/// What one region's pipeline got done.
#[derive(Default)]
struct RegionProgress {
    publish: Option<StepStatus>,
    refreshes: Vec<(String, RefreshStatus)>,
}

impl RegionProgress {
    /// Marks every step the deadline cut off as failed, so reconcile knows to redo it.
    fn fill_missed(
        &mut self,
        region: &Region,
        transition: &Transition,
        groups: &[crate::config::GroupRef],
        deadline: std::time::Duration,
    ) {
        let error = format!(
            "{region} did not finish within the {} ms deadline for a failing region",
            deadline.as_millis()
        );
        if self.publish.is_none() && !transition.published_in(region) {
            self.publish = Some(StepStatus::Failed {
                error: error.clone(),
            });
        }
        for group in groups.iter().filter(|g| &g.region == region) {
            let key = group.key();
            let known = self.refreshes.iter().any(|(k, _)| k == &key) || transition.refreshed(&key);
            if !known {
                self.refreshes.push((
                    key,
                    RefreshStatus::Failed {
                        error: error.clone(),
                    },
                ));
            }
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How often we re-read and retry after losing a compare-and-swap.
const MAX_CAS_ATTEMPTS: u32 = 8;
/// The flap guard's window.
const DAY_MILLIS: Millis = 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Switched,
    AlreadyActive,
    Ignored,
    Refused,
    DryRun,
    Status,
    Paused,
    Resumed,
}

/// The JSON answer of every invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Response {
    pub outcome: Outcome,
    /// The region switched (or, for a dry run, that would be switched) away from.
    pub from: Option<Region>,
    /// The region switched to; for `already_active`, the region that is active.
    pub to: Option<Region>,
    pub active_region: Region,
    pub epoch: u64,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Per region: whether the active-region parameter was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<BTreeMap<Region, StepStatus>>,
    /// Per Auto Scaling group (`region/name`): the instance refresh and its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshes: Option<BTreeMap<String, RefreshStatus>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<Vec<ProbeResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<TransitionPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
}

/// What a transition would do, returned by `dry_run`.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionPlan {
    pub parameters: Vec<PlannedParameter>,
    pub auto_scaling_groups: Vec<PlannedRefresh>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedParameter {
    pub region: Region,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedRefresh {
    pub region: Region,
    pub name: String,
    pub min_healthy_percentage: i32,
    pub instance_warmup_seconds: u64,
    pub skip_matching: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub home_region: Region,
    pub active_region: Region,
    pub epoch: u64,
    /// `home`, `failed_over`, or `transitioning` while a transition's steps are unfinished.
    pub phase: &'static str,
    pub paused: Option<Pause>,
    /// Failback readiness while away from home: healthy streak, what it still waits for.
    pub failback: Option<crate::state::FailbackProgress>,
    pub parameters: BTreeMap<Region, ParameterValue>,
    pub auto_scaling_groups: BTreeMap<String, GroupRefreshReport>,
    pub last_transition: Option<Transition>,
    pub history: Vec<HistoryRecord>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ParameterValue {
    Value {
        value: Option<String>,
        in_sync: bool,
    },
    Unreachable {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum GroupRefreshReport {
    Latest { refresh: Option<RefreshInfo> },
    Unreachable { error: String },
}

pub struct Controller<C, P, S, H, K> {
    pub config: Arc<Config>,
    pub ports: Ports<C, P, S, H, K>,
}

impl<C, P, S, H, K> Controller<C, P, S, H, K>
where
    C: ControlStore,
    P: ParameterStore,
    S: ScalingGroups,
    H: HealthProbe + Heartbeats,
    K: Clock,
{
    pub fn new(config: Arc<Config>, ports: Ports<C, P, S, H, K>) -> Self {
        Controller { config, ports }
    }

    pub async fn handle(&self, trigger: Trigger) -> Result<Response> {
        match trigger {
            Trigger::Alarm(alarm) => self.on_alarm(alarm).await,
            Trigger::Command(command) => self.on_command(command).await,
        }
    }

    async fn on_alarm(&self, alarm: AlarmSignal) -> Result<Response> {
        let trigger = TriggerInfo::Alarm {
            alarm_name: alarm.alarm_name.clone(),
            source: alarm.source.as_str().to_owned(),
        };
        if alarm.state != AlarmState::Alarm {
            let state = self.load().await?.value;
            let reason = format!(
                "alarm {} is {}: only ALARM acts",
                alarm.alarm_name,
                alarm.state.as_str()
            );
            info!(alarm = %alarm.alarm_name, region = %alarm.region, state = alarm.state.as_str(), "ignored: {reason}");
            return Ok(self.simple(Outcome::Ignored, &state, reason, Some(&trigger)));
        }
        let reason = match &alarm.state_reason {
            Some(why) => format!("alarm {} on {}: {why}", alarm.alarm_name, alarm.region),
            None => format!("alarm {} on {}", alarm.alarm_name, alarm.region),
        };
        self.switch(SwitchRequest {
            intent: Intent::AwayFrom(alarm.region),
            reason,
            trigger,
            dry_run: false,
            force: false,
        })
        .await
    }

    async fn on_command(&self, command: Command) -> Result<Response> {
        let manual = |force: bool| TriggerInfo::Manual {
            command: command.name().to_owned(),
            force,
        };
        match &command {
            Command::Status => self.status().await,
            Command::Pause { reason } => self.pause(reason).await,
            Command::Resume => self.resume().await,
            Command::Failover {
                target_region,
                reason,
                dry_run,
                force,
            } => {
                self.switch(SwitchRequest {
                    intent: Intent::To(target_region.clone()),
                    reason: reason.clone(),
                    trigger: manual(*force),
                    dry_run: *dry_run,
                    force: *force,
                })
                .await
            }
            Command::Failback {
                reason,
                dry_run,
                force,
            } => {
                self.switch(SwitchRequest {
                    intent: Intent::Home,
                    reason: reason.clone(),
                    trigger: manual(*force),
                    dry_run: *dry_run,
                    force: *force,
                })
                .await
            }
        }
    }

    /// The stored state, or the implicit initial one (home active, epoch 0).
    pub async fn load(&self) -> Result<Versioned<ControlState>> {
        Ok(self
            .ports
            .control
            .load()
            .await?
            .unwrap_or_else(|| Versioned {
                version: 0,
                value: ControlState::initial(self.config.home().clone()),
            }))
    }

    pub(crate) fn now(&self) -> u64 {
        self.ports.clock.now_millis()
    }

    /// Decides and, if warranted, makes one transition. Concurrent callers race on the
    /// compare-and-swap; losers re-read and re-decide, which turns a duplicate alarm into
    /// `already_active`.
    pub async fn switch(&self, request: SwitchRequest) -> Result<Response> {
        // A region an alarm says is down gets one probe timeout, counted from here, for all
        // of its steps: the decision's latency is bounded by it.
        let failing_deadline = tokio::time::Instant::now() + self.config.timeouts.probe;
        let mut probes: BTreeMap<Region, ProbeResult> = BTreeMap::new();
        // Newest heartbeat of the region we leave, as each candidate has seen it.
        let mut evidence: BTreeMap<Region, Option<Millis>> = BTreeMap::new();
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.load().await?;
            let state = &current.value;
            self.finish_abandoned(&current).await?;
            let decision = match switch::plan(state, &request, self.now(), &self.config) {
                Plan::Decided(decision) => decision,
                Plan::Probe(candidates) => {
                    let missing: Vec<Region> = candidates
                        .iter()
                        .filter(|r| !probes.contains_key(*r))
                        .cloned()
                        .collect();
                    // What the decision and the transition record need, read in one
                    // concurrent round: the candidates' health and the replication
                    // evidence in each.
                    let leaving = &state.active_region;
                    let (results, seen) = tokio::join!(
                        self.probe_all(&missing),
                        join_all(missing.iter().map(|to| async move {
                            (to.clone(), self.last_replicated(leaving, to).await)
                        })),
                    );
                    for result in results {
                        probes.insert(result.region.clone(), result);
                    }
                    evidence.extend(seen);
                    switch::pick(state, &candidates, &probes)
                }
            };
            let probe_report = (!probes.is_empty()).then(|| probes.values().cloned().collect());
            let (from, to) = match decision {
                Decision::Ignore { reason } => {
                    info!(trigger = %request.trigger.label(), "ignored: {reason}");
                    return Ok(self.simple(
                        Outcome::Ignored,
                        state,
                        reason,
                        Some(&request.trigger),
                    ));
                }
                Decision::AlreadyActive { reason } => {
                    info!(trigger = %request.trigger.label(), "already active: {reason}");
                    let mut response = self.simple(
                        Outcome::AlreadyActive,
                        state,
                        reason,
                        Some(&request.trigger),
                    );
                    response.from = state.transition.as_ref().map(|t| t.from.clone());
                    response.to = Some(state.active_region.clone());
                    return Ok(response);
                }
                Decision::Refuse { reason } => {
                    warn!(trigger = %request.trigger.label(), "refused: {reason}");
                    let mut response =
                        self.simple(Outcome::Refused, state, reason, Some(&request.trigger));
                    response.probes = probe_report;
                    return Ok(response);
                }
                Decision::Switch { from, to } => (from, to),
            };
            if request.dry_run {
                let mut response = self.simple(
                    Outcome::DryRun,
                    state,
                    format!("dry run: would switch {from} -> {to}: {}", request.reason),
                    Some(&request.trigger),
                );
                response.from = Some(from.clone());
                response.to = Some(to.clone());
                response.plan = Some(self.plan_for(&to));
                response.probes = probe_report;
                return Ok(response);
            }

            if request.trigger.is_automatic()
                && let Some(reason) = self.flap_guard(state).await?
            {
                warn!(trigger = %request.trigger.label(), "{reason}");
                let paused = self.load().await?.value;
                return Ok(self.simple(Outcome::Ignored, &paused, reason, Some(&request.trigger)));
            }
            let evidence = match evidence.get(&to) {
                Some(seen) => *seen,
                None => self.last_replicated(&from, &to).await,
            };
            let now = self.now();
            let transition = Transition {
                last_replicated_from_old: evidence,
                previous_refresh_ids: state
                    .transition
                    .as_ref()
                    .map(Transition::refresh_ids)
                    .unwrap_or_default(),
                epoch: state.epoch + 1,
                from: from.clone(),
                to: to.clone(),
                reason: request.reason.clone(),
                trigger: request.trigger.clone(),
                started_at: now,
                lease_until: now + self.config.transition_lease.as_millis() as u64,
                publish: BTreeMap::new(),
                refreshes: BTreeMap::new(),
                completed: false,
            };
            let next = ControlState {
                active_region: to.clone(),
                epoch: transition.epoch,
                paused: state.paused.clone(),
                transition: Some(transition.clone()),
                failback: None,
                recent_automatic_switches: self
                    .recent_automatic(state, request.trigger.is_automatic()),
            };
            let history = HistoryRecord::from(&transition);
            if !self
                .ports
                .control
                .save(current.version, &next, Some(&history))
                .await?
            {
                info!(
                    epoch = transition.epoch,
                    "lost the compare-and-swap; re-reading the control state"
                );
                continue;
            }
            let span = info_span!("transition", epoch = transition.epoch, from = %from, to = %to, trigger = %request.trigger.label());
            info!(parent: &span, reason = %request.reason, "switched the control state");
            self.emit_metric("Switches", "Count", &[("ToRegion", to.as_str())]);
            let saved = Versioned {
                version: current.version + 1,
                value: next.clone(),
            };
            let done = self
                .carry_out(transition, saved, failing_deadline, true)
                .instrument(span)
                .await?;
            let mut response = self.simple(
                Outcome::Switched,
                &next,
                request.reason.clone(),
                Some(&request.trigger),
            );
            response.from = Some(from);
            response.to = Some(to);
            response.publish = Some(done.publish);
            response.refreshes = Some(done.refreshes);
            response.probes = probe_report;
            return Ok(response);
        }
        Err(Error::Contention {
            attempts: MAX_CAS_ATTEMPTS,
        })
    }

    /// Emits one count-style metric (EMF on stdout) in the configured namespace.
    pub(crate) fn emit_metric(&self, name: &str, unit: &'static str, dimensions: &[(&str, &str)]) {
        crate::metrics::emit(&crate::metrics::signal(
            &self.config.metrics_namespace,
            name,
            unit,
            1.0,
            dimensions,
            self.now(),
        ));
    }

    /// The flap guard: more than `MAX_AUTOMATIC_SWITCHES_PER_DAY` automatic switches in 24
    /// hours pauses automation until a person sends `resume`. Returns why it stopped us.
    async fn flap_guard(&self, state: &ControlState) -> Result<Option<String>> {
        let limit = self.config.failback.max_automatic_switches_per_day;
        let recent = self.recent_automatic(state, false).len();
        if recent < limit as usize {
            return Ok(None);
        }
        let reason = format!(
            "flap guard: {recent} automatic switches in the last 24 h (MAX_AUTOMATIC_SWITCHES_PER_DAY is {limit}); automation paused until {{\"command\":\"resume\"}}"
        );
        let now = self.now();
        if state.paused.is_none() {
            let pause_reason = reason.clone();
            self.update(move |s| {
                if s.paused.is_none() {
                    s.paused = Some(Pause {
                        reason: pause_reason.clone(),
                        at: now,
                        by: "flap-guard".into(),
                    });
                }
            })
            .await?;
            self.emit_metric("FlapGuardPaused", "Count", &[]);
        }
        Ok(Some(reason))
    }

    /// The automatic switches of the last 24 hours, as the state records them, plus one
    /// at `now` when this transition is automatic; at most the flap guard's limit + 1.
    fn recent_automatic(&self, state: &ControlState, automatic: bool) -> Vec<Millis> {
        let limit = self.config.failback.max_automatic_switches_per_day as usize;
        let since = self.now().saturating_sub(DAY_MILLIS);
        let mut recent: Vec<Millis> = state
            .recent_automatic_switches
            .iter()
            .copied()
            .filter(|at| *at >= since)
            .collect();
        if automatic {
            recent.push(self.now());
        }
        let excess = recent.len().saturating_sub(limit + 1);
        recent.drain(..excess);
        recent
    }

    /// Data-loss evidence: the newest heartbeat from `from` that `to` has seen. Writes made
    /// in `from` after it may arrive late (last writer wins) or never.
    async fn last_replicated(&self, from: &Region, to: &Region) -> Option<u64> {
        match self.ports.probe.read(to, from, false).await {
            Ok(seen) => seen,
            Err(e) => {
                warn!(from = %from, to = %to, error = %e, "could not read the replication evidence");
                None
            }
        }
    }

    /// Finishes a transition whose owner crashed (lease expired, not completed).
    pub(crate) async fn finish_abandoned(&self, current: &Versioned<ControlState>) -> Result<()> {
        let Some(transition) = &current.value.transition else {
            return Ok(());
        };
        if transition.completed || transition.lease_until > self.now() {
            return Ok(());
        }
        warn!(epoch = transition.epoch, from = %transition.from, to = %transition.to, "finishing a transition abandoned by an earlier invocation");
        // Take the lease first so only one invocation resumes it.
        let mut taken = current.value.clone();
        if let Some(t) = taken.transition.as_mut() {
            t.lease_until = self.now() + self.config.transition_lease.as_millis() as u64;
        }
        if self
            .ports
            .control
            .save(current.version, &taken, None)
            .await?
            && let Some(t) = taken.transition.clone()
        {
            let saved = Versioned {
                version: current.version + 1,
                value: taken,
            };
            let deadline = tokio::time::Instant::now() + self.config.timeouts.probe;
            self.carry_out(t, saved, deadline, false).await?;
        }
        Ok(())
    }

    /// Publishes the parameter and starts the refreshes in every region, then records the
    /// outcome. Each region runs its own pipeline concurrently (publish, then its groups'
    /// refreshes, the target region's groups before any other's), so a dead region costs
    /// one timeout and never delays the others. A region we leave because an alarm says it
    /// is down gets one probe timeout for all its steps: we already believe it is gone, and
    /// whatever it misses is recorded for reconcile. Every step is safe to repeat, so a
    /// crash anywhere here is finished by a later invocation.
    /// `saved` is the control state as this invocation last wrote it, so recording the
    /// outcome usually needs no re-read; `failing_deadline` ends the failing region's work.
    /// `fresh`: this invocation has just created the transition, so no refresh can belong
    /// to it yet and groups are described only when a start is refused.
    pub(crate) async fn carry_out(
        &self,
        mut transition: Transition,
        saved: Versioned<ControlState>,
        failing_deadline: tokio::time::Instant,
        fresh: bool,
    ) -> Result<Transition> {
        let epoch = transition.epoch;
        let failing = transition
            .trigger
            .is_automatic()
            .then(|| transition.from.clone());
        let (target_done, target_done_rx) = tokio::sync::watch::channel(false);
        let steps = join_all(self.config.regions.iter().map(|region| {
            let mut target_done_rx = target_done_rx.clone();
            let target_done = &target_done;
            let transition = &transition;
            let failing = failing.as_ref();
            async move {
                let progress = std::sync::Mutex::new(RegionProgress::default());
                let work = async {
                    let pending: Vec<&crate::config::GroupRef> = self
                        .config
                        .auto_scaling_groups
                        .iter()
                        .filter(|g| &g.region == region && !transition.refreshed(&g.key()))
                        .collect();
                    // Describing the groups' refreshes does not depend on the parameter, so
                    // it runs alongside the publish; starting one waits for the publish, so
                    // new instances read the new value.
                    let publish = async {
                        if !transition.published_in(region) {
                            let status = self.publish_one(transition, region).await;
                            lock(&progress).publish = Some(status);
                        }
                    };
                    let describe = join_all(pending.iter().map(|g| async move {
                        if fresh {
                            None
                        } else {
                            Some(self.ports.groups.refreshes(g).await)
                        }
                    }));
                    let ((), listed) = tokio::join!(publish, describe);
                    if region != &transition.to {
                        // Ignoring a closed channel: the target pipeline ended either way.
                        let _ = target_done_rx.wait_for(|done| *done).await;
                    }
                    for (group, listed) in pending.into_iter().zip(listed) {
                        let status = rolling::refresh_listed(
                            &self.ports.groups,
                            group,
                            &self.config.refresh,
                            transition,
                            listed,
                        )
                        .await;
                        lock(&progress).refreshes.push((group.key(), status));
                    }
                };
                let finished = match failing {
                    Some(f) if f == region => tokio::time::timeout_at(failing_deadline, work).await.is_ok(),
                    _ => {
                        work.await;
                        true
                    }
                };
                if region == &transition.to {
                    let _ = target_done.send(true);
                }
                let mut progress = std::mem::take(&mut *lock(&progress));
                if !finished {
                    warn!(region = %region, "region missed its deadline; its remaining steps are left to reconcile");
                    progress.fill_missed(region, transition, &self.config.auto_scaling_groups, self.config.timeouts.probe);
                }
                (region.clone(), progress)
            }
        }))
        .await;
        for (region, progress) in steps {
            if let Some(status) = progress.publish {
                transition.publish.insert(region, status);
            }
            transition.refreshes.extend(progress.refreshes);
        }
        transition.completed = true;
        let done = transition.clone();
        self.record_from(Some(saved), epoch, move |t| {
            t.publish.extend(done.publish.clone());
            t.refreshes.extend(done.refreshes.clone());
            t.completed = true;
        })
        .await?;
        let failed = transition.failed_regions();
        if failed.is_empty() {
            info!(epoch, "transition carried out in every region");
        } else {
            warn!(epoch, failed = ?failed, "parameter not published in some regions; reconcile will retry");
        }
        Ok(transition)
    }

    async fn publish_one(&self, transition: &Transition, region: &Region) -> StepStatus {
        let name = &self.config.active_region_parameter;
        let value = transition.to.as_str();
        let description = format!(
            "regionpilot epoch {}: {} -> {}",
            transition.epoch, transition.from, transition.to
        );
        match self
            .ports
            .parameters
            .put(region, name, value, &description)
            .await
        {
            Ok(()) => {
                info!(region = %region, parameter = %name, value, "published");
                StepStatus::Published
            }
            Err(e) => {
                warn!(region = %region, parameter = %name, error = %e, "publish failed");
                StepStatus::Failed {
                    error: e.to_string(),
                }
            }
        }
    }

    /// Applies `change` to the stored transition of `epoch`, retrying on contention. A newer
    /// epoch means our transition was superseded: nothing to record.
    pub(crate) async fn record(&self, epoch: u64, change: impl Fn(&mut Transition)) -> Result<()> {
        self.record_from(None, epoch, change).await
    }

    /// `record`, first trying `known` (the state as we last wrote it) without a re-read.
    async fn record_from(
        &self,
        mut known: Option<Versioned<ControlState>>,
        epoch: u64,
        change: impl Fn(&mut Transition),
    ) -> Result<()> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = match known.take() {
                Some(known) => known,
                None => self.load().await?,
            };
            let mut next = current.value.clone();
            match next.transition.as_mut() {
                Some(t) if t.epoch == epoch => change(t),
                _ => return Ok(()),
            }
            if self
                .ports
                .control
                .save(current.version, &next, None)
                .await?
            {
                return Ok(());
            }
        }
        Err(Error::Contention {
            attempts: MAX_CAS_ATTEMPTS,
        })
    }

    /// Probes the regions concurrently; the slowest costs at most the probe timeout.
    pub async fn probe_all(&self, regions: &[Region]) -> Vec<ProbeResult> {
        join_all(regions.iter().map(|r| self.ports.probe.check(r))).await
    }

    fn plan_for(&self, to: &Region) -> TransitionPlan {
        let mut groups: Vec<_> = self.config.auto_scaling_groups.iter().collect();
        groups.sort_by_key(|g| &g.region != to);
        TransitionPlan {
            parameters: self
                .config
                .regions
                .iter()
                .map(|region| PlannedParameter {
                    region: region.clone(),
                    name: self.config.active_region_parameter.clone(),
                    value: to.to_string(),
                })
                .collect(),
            auto_scaling_groups: groups
                .into_iter()
                .map(|g| PlannedRefresh {
                    region: g.region.clone(),
                    name: g.name.clone(),
                    min_healthy_percentage: self.config.refresh.min_healthy_percent,
                    instance_warmup_seconds: self.config.refresh.warmup.as_secs(),
                    skip_matching: false,
                })
                .collect(),
        }
    }

    pub(crate) fn simple(
        &self,
        outcome: Outcome,
        state: &ControlState,
        reason: String,
        trigger: Option<&TriggerInfo>,
    ) -> Response {
        Response {
            outcome,
            from: None,
            to: None,
            active_region: state.active_region.clone(),
            epoch: state.epoch,
            reason,
            trigger: trigger.map(TriggerInfo::label),
            publish: None,
            refreshes: None,
            probes: None,
            plan: None,
            status: None,
        }
    }

    /// Changes the state with `change` under compare-and-swap, retrying on contention.
    pub(crate) async fn update(&self, change: impl Fn(&mut ControlState)) -> Result<ControlState> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.load().await?;
            let mut next = current.value.clone();
            change(&mut next);
            if next == current.value
                || self
                    .ports
                    .control
                    .save(current.version, &next, None)
                    .await?
            {
                return Ok(next);
            }
        }
        Err(Error::Contention {
            attempts: MAX_CAS_ATTEMPTS,
        })
    }

    async fn pause(&self, reason: &str) -> Result<Response> {
        let now = self.now();
        let state = self
            .update(|s| {
                if s.paused.is_none() {
                    s.paused = Some(Pause {
                        reason: reason.to_owned(),
                        at: now,
                        by: "operator".into(),
                    });
                }
            })
            .await?;
        let pause = state.paused.clone();
        warn!(reason, "automatic switching paused");
        let text = match pause {
            Some(p) if p.at != now => {
                format!("already paused since {} ({} by {})", p.at, p.reason, p.by)
            }
            _ => format!("automatic switching paused: {reason}"),
        };
        Ok(self.simple(Outcome::Paused, &state, text, None))
    }

    async fn resume(&self) -> Result<Response> {
        let before = self.load().await?.value.paused;
        let state = self.update(|s| s.paused = None).await?;
        let text = match before {
            Some(p) => format!(
                "automatic switching resumed (was paused: {} by {})",
                p.reason, p.by
            ),
            None => "automatic switching was not paused".to_owned(),
        };
        info!("{text}");
        Ok(self.simple(Outcome::Resumed, &state, text, None))
    }

    /// Reads everything an operator needs, every region concurrently.
    pub async fn status(&self) -> Result<Response> {
        let current = self.load().await?;
        let state = current.value;
        let name = &self.config.active_region_parameter;
        let active = &state.active_region;
        let params = join_all(self.config.regions.iter().map(|region| async move {
            let value = match self.ports.parameters.get(region, name).await {
                Ok(value) => ParameterValue::Value {
                    in_sync: value.as_deref() == Some(active.as_str()),
                    value,
                },
                Err(e) => ParameterValue::Unreachable {
                    error: e.to_string(),
                },
            };
            (region.clone(), value)
        }));
        let groups = join_all(self.config.auto_scaling_groups.iter().map(|g| async move {
            let report = match self.ports.groups.refreshes(g).await {
                Ok(list) => GroupRefreshReport::Latest {
                    refresh: list.into_iter().next(),
                },
                Err(e) => GroupRefreshReport::Unreachable {
                    error: e.to_string(),
                },
            };
            (g.key(), report)
        }));
        let (params, groups, history) =
            futures::join!(params, groups, self.ports.control.history(10));
        let report = StatusReport {
            home_region: self.config.home().clone(),
            active_region: state.active_region.clone(),
            epoch: state.epoch,
            phase: if state.transition.as_ref().is_some_and(|t| !t.completed) {
                "transitioning"
            } else if &state.active_region == self.config.home() {
                "home"
            } else {
                "failed_over"
            },
            paused: state.paused.clone(),
            failback: state.failback.clone(),
            parameters: params.into_iter().collect(),
            auto_scaling_groups: groups.into_iter().collect(),
            last_transition: state.transition.clone(),
            history: history?,
        };
        let mut response = self.simple(
            Outcome::Status,
            &state,
            format!("{} is active at epoch {}", state.active_region, state.epoch),
            None,
        );
        response.status = Some(report);
        Ok(response)
    }
}
