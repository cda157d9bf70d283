//! The controller turns one decoded trigger into at most one transition and carries the
//! transition out. Every step is idempotent: the compare-and-swap makes the transition
//! happen once, the state records how far its side effects got, and any later invocation
//! (after the lease of a crashed one has run out) finishes what is left.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::join_all;
use serde::Serialize;
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use crate::config::Config;
use crate::decision::event::{AlarmSignal, AlarmState, Command, Trigger};
use crate::decision::switch::{self, Decision, Intent, Plan, SwitchRequest};
use crate::error::{Error, Result};
use crate::ports::{Clock, ControlStore, Deps, HealthProbe, Heartbeats, ProbeResult};
use crate::region::Region;
use crate::state::{
    ControlState, HistoryRecord, Millis, Pause, Transition, TriggerInfo, Versioned,
};
use crate::views::notices::DetailType;
use crate::views::status::StatusReport;

pub(crate) use crate::store::MAX_CAS_ATTEMPTS;
use crate::store::{StateStore, Swap};
use crate::transition::plan::{self, Executor, Ran};
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
    Report,
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
    /// A switch's steps, one field per kind of step, each outcome by key: `publish` (per
    /// region: whether the active-region parameter was written), `refreshes` (per group
    /// `region/name`: the instance refresh and its id), `capacity` (per group of the
    /// target region: the desired capacity raised, or why not), `reload` (per group, in
    /// `run-command` mode: the command id and per-instance counts), and each further
    /// kind's own. Empty unless the answer is a switch.
    #[serde(flatten)]
    pub steps: BTreeMap<&'static str, BTreeMap<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<Vec<ProbeResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<TransitionPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
    /// `{"command":"report"}`: one transition's full record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<crate::views::report::TransitionReport>>,
    /// The same record as Markdown, with `"format":"markdown"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    /// An alarm whose actions CloudWatch suppressed (`Alarm`, `WaitPeriod`,
    /// `ExtensionPeriod`): why it was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions_suppressed_by: Option<String>,
    /// `TRAFFIC_SIGNAL=routing-control`: the routing controls set at the switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_controls: Option<crate::steps::routing::RoutingReport>,
    /// What the vantage points said of the region left (with two or more of them), for
    /// an alarm's failover, a verifier's retry or a person's unforced failover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<crate::evidence::quorum::RegionQuorum>,
}

impl Response {
    /// The outcomes of `O`'s kind in this answer, by key (`None` unless it is a switch).
    pub fn outcomes<O: crate::state::Outcome>(&self) -> Option<BTreeMap<String, O>> {
        let field = crate::steps::info(O::KIND)?.field();
        let listed = self.steps.get(field)?;
        Some(
            listed
                .iter()
                .filter_map(|(key, value)| {
                    Some((key.clone(), serde_json::from_value(value.clone()).ok()?))
                })
                .collect(),
        )
    }
}

/// What a transition would do, returned by `dry_run`.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionPlan {
    pub parameters: Vec<PlannedParameter>,
    pub auto_scaling_groups: Vec<PlannedRefresh>,
    /// `refresh` or `run-command`: how running instances learn the new region.
    pub reload_mode: &'static str,
    /// The target's groups are raised to this share of their counterparts' capacity.
    pub capacity_percent: u32,
    /// Every step a switch would run, in the plan's order: the same `plan::build` as the
    /// switch's own, so the two cannot drift.
    pub steps: Vec<PlannedStep>,
}

/// One step of the plan: its region's stage (`prepare`, `act`, `follow`, `verify`), kind
/// and key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStep {
    pub region: Region,
    pub stage: &'static str,
    pub step: &'static str,
    pub key: String,
    /// What else the step would do: a hook's function, region and payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<serde_json::Value>,
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

/// Turns decoded triggers into transitions over the ports bundle `D`.
pub struct Controller<D> {
    pub config: Arc<Config>,
    pub ports: D,
}

impl<D: Deps> Controller<D> {
    pub fn new(config: Arc<Config>, ports: D) -> Self {
        Controller { config, ports }
    }

    pub async fn handle(&self, trigger: Trigger) -> Result<Response> {
        // Boxed: a transition's future nests deep (switch, carry out, record, verify the
        // write); on the heap it keeps every caller's future small and its type shallow.
        match trigger {
            Trigger::Alarm(alarm) => Box::pin(self.on_alarm(alarm)).await,
            Trigger::Command(command) => Box::pin(self.on_command(command)).await,
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
        if let Some(suppressed) = &alarm.actions_suppressed {
            let state = self.load().await?.value;
            let reason = format!(
                "alarm {} is ALARM but its actions are suppressed by {}{}: no transition",
                alarm.alarm_name,
                suppressed.by,
                suppressed
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
            info!(alarm = %alarm.alarm_name, region = %alarm.region, actions_suppressed_by = %suppressed.by, "ignored: {reason}");
            let mut response = self.simple(Outcome::Ignored, &state, reason, Some(&trigger));
            response.actions_suppressed_by = Some(suppressed.by.clone());
            return Ok(response);
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
            Command::Report { epoch, markdown } => self.report(*epoch, *markdown).await,
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

    /// The control state's compare-and-swap over this controller's ports.
    pub(crate) fn store(&self) -> StateStore<'_, D> {
        StateStore::new(&self.config, &self.ports)
    }

    /// The stored state, or the implicit initial one (home active, epoch 0).
    pub async fn load(&self) -> Result<Versioned<ControlState>> {
        self.store().load().await
    }

    /// See [`StateStore::compare_and_swap`].
    pub(crate) async fn compare_and_swap(
        &self,
        current: &Versioned<ControlState>,
        next: ControlState,
    ) -> Result<Swap> {
        self.store().compare_and_swap(current, next).await
    }

    pub(crate) fn now(&self) -> u64 {
        self.ports.clock().now_millis()
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
        // The regions whose probes this request reports: those a plan asked for (the
        // first round may have probed others on a guess).
        let mut probed: BTreeSet<Region> = BTreeSet::new();
        // The state a lost compare-and-swap read back: the next attempt decides on it.
        let mut read_back: Option<Versioned<ControlState>> = None;
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let current = if attempt == 0 {
                // One round, not two: the likely candidates are probed beside the read of
                // the control state. Their evidence is about the region the guess says we
                // leave; if the state says otherwise, it is read again below.
                let (leaving, likely) = switch::likely_probes(&request.intent, &self.config);
                let (current, ()) = tokio::join!(
                    self.load(),
                    self.probe_candidates(&leaving, &likely, &mut probes, &mut evidence)
                );
                let current = current?;
                if current.value.active_region != leaving {
                    evidence.clear();
                }
                current
            } else {
                match read_back.take() {
                    Some(state) => state,
                    None => self.load().await?,
                }
            };
            let state = &current.value;
            self.finish_abandoned(&current).await?;
            let decision = match switch::plan(state, &request, self.now(), &self.config) {
                Plan::Decided(decision) => decision,
                Plan::Probe(candidates) => {
                    self.probe_candidates(
                        &state.active_region,
                        &candidates,
                        &mut probes,
                        &mut evidence,
                    )
                    .await;
                    self.vouch_for_unreachable(&candidates, &mut probes).await;
                    probed.extend(candidates.iter().cloned());
                    switch::pick(state, &candidates, &probes)
                }
            };
            let probe_report = (!probed.is_empty()).then(|| {
                probed
                    .iter()
                    .filter_map(|r| probes.get(r))
                    .cloned()
                    .collect()
            });
            let (from, to) =
                match self.answer_without_switch(decision, state, &request, probe_report.clone()) {
                    Ok(pair) => pair,
                    Err(answer) => {
                        if answer.outcome == Outcome::Refused && !request.dry_run {
                            self.notify_refused(state, &request, &answer).await;
                        }
                        return Ok(*answer);
                    }
                };
            // A partition between one vantage point and `from` is not an outage: an
            // automatic failover needs `from` down by quorum. Before the flap guard, so a
            // suspected partition does not count towards it. A person is not held.
            let quorum = if request.force {
                None
            } else {
                self.quorum_of(&from).await
            };
            if let Some(q) = quorum.as_ref().filter(|q| !q.down())
                && request.trigger.is_automatic()
                && matches!(request.intent, Intent::AwayFrom(_))
            {
                let reason = format!("partition suspected: {}", q.summary());
                warn!(trigger = %request.trigger.label(), verdicts = ?q.verdicts, "{reason}");
                let mut answer =
                    self.simple(Outcome::Refused, state, reason, Some(&request.trigger));
                answer.probes = probe_report;
                answer.quorum = quorum;
                self.notify_refused(state, &request, &answer).await;
                return Ok(answer);
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
            let (mut transition, mut next) = self.begin(state, &request, &from, &to, evidence);
            transition.probes = probe_report.clone().unwrap_or_default();
            next.transition = Some(transition.clone());
            // The compare-and-swap alone decides the transition. Its history record is
            // written, idempotently by epoch, before the transition is marked completed
            // (`record_steps`), so a crash in between is finished by whoever takes the
            // transition over.
            let saved = match self.compare_and_swap(&current, next.clone()).await? {
                // Ours, unless written over by a newer transition before we could tell.
                Swap::Written(saved) if saved.value.epoch == transition.epoch => saved,
                Swap::Written(newer) => {
                    read_back = Some(newer);
                    continue;
                }
                Swap::Lost(stored) => {
                    info!(
                        epoch = transition.epoch,
                        "lost the compare-and-swap; deciding again on the state read back"
                    );
                    read_back = stored;
                    continue;
                }
            };
            let span = info_span!("transition", epoch = transition.epoch, from = %from, to = %to, trigger = %request.trigger.label());
            info!(parent: &span, reason = %request.reason, "switched the control state");
            self.emit_metric("Switches", "Count", &[("ToRegion", to.as_str())]);
            // DNS follows at once, not at the probe's next minute.
            self.emit_active_region(&to);
            // Routing controls beside the steps: a dead cluster endpoint holds up neither.
            let (done, routing) = tokio::join!(
                self.carry_out(transition, saved, failing_deadline, true)
                    .instrument(span),
                crate::steps::routing::set_routing_controls(&self.config, &self.ports, &to),
            );
            let done = done?;
            // The transition this one superseded keeps a whole history record even if its
            // last write was lost (a no-op when the record is there already); written
            // beside the notice, as neither waits for the other.
            let rewrite_superseded = async {
                if let Some(previous) = state.transition.as_ref()
                    && let Err(e) = self
                        .ports
                        .control()
                        .put_history(&HistoryRecord::of(previous))
                        .await
                {
                    warn!(epoch = previous.epoch, error = %e, "could not rewrite the superseded transition's history record");
                }
            };
            tokio::join!(
                self.notify_switched(&done, routing.as_ref()),
                rewrite_superseded
            );
            let mut response = self.simple(
                Outcome::Switched,
                &next,
                request.reason.clone(),
                Some(&request.trigger),
            );
            response.from = Some(from);
            response.to = Some(to);
            response.steps = crate::views::answer_fields(&done);
            response.probes = probe_report;
            response.routing_controls = routing;
            response.quorum = quorum;
            return Ok(response);
        }
        Err(Error::Contention {
            attempts: MAX_CAS_ATTEMPTS,
        })
    }

    /// The candidates' health and the replication evidence in each (the newest heartbeat
    /// of the region we leave), read in one concurrent round; only what earlier rounds of
    /// this request have not read.
    async fn probe_candidates(
        &self,
        leaving: &Region,
        candidates: &[Region],
        probes: &mut BTreeMap<Region, ProbeResult>,
        evidence: &mut BTreeMap<Region, Option<Millis>>,
    ) {
        let missing: Vec<Region> = candidates
            .iter()
            .filter(|r| !probes.contains_key(*r))
            .cloned()
            .collect();
        let (results, seen) =
            tokio::join!(
                self.probe_all(&missing),
                join_all(missing.iter().map(|to| async move {
                    (to.clone(), self.last_replicated(leaving, to).await)
                })),
            );
        for result in results {
            probes.insert(result.region.clone(), result);
        }
        evidence.extend(seen);
    }

    /// The answer to every decision but a switch (`Err`), or the switch's `(from, to)`.
    /// A dry run answers with the plan here too.
    fn answer_without_switch(
        &self,
        decision: Decision,
        state: &ControlState,
        request: &SwitchRequest,
        probes: Option<Vec<ProbeResult>>,
    ) -> std::result::Result<(Region, Region), Box<Response>> {
        let trigger = Some(&request.trigger);
        let label = request.trigger.label();
        let answer = match decision {
            Decision::Ignore { reason } => {
                info!(trigger = %label, "ignored: {reason}");
                self.simple(Outcome::Ignored, state, reason, trigger)
            }
            Decision::AlreadyActive { reason } => {
                info!(trigger = %label, "already active: {reason}");
                let mut response = self.simple(Outcome::AlreadyActive, state, reason, trigger);
                response.from = state.transition.as_ref().map(|t| t.from.clone());
                response.to = Some(state.active_region.clone());
                response
            }
            Decision::Refuse { reason } => {
                warn!(trigger = %label, "refused: {reason}");
                let mut response = self.simple(Outcome::Refused, state, reason, trigger);
                response.probes = probes;
                response
            }
            Decision::Switch { from, to } if request.dry_run => {
                let mut response = self.simple(
                    Outcome::DryRun,
                    state,
                    format!("dry run: would switch {from} -> {to}: {}", request.reason),
                    trigger,
                );
                // The transition this switch would make, for what the steps would send.
                let (would_be, _) = self.begin(state, request, &from, &to, None);
                response.plan = Some(self.plan_for(&would_be));
                response.from = Some(from);
                response.to = Some(to);
                response.probes = probes;
                response
            }
            Decision::Switch { from, to } => return Ok((from, to)),
        };
        Err(Box::new(answer))
    }

    /// The transition `from -> to` and the control state that records it, to be written
    /// with one compare-and-swap.
    fn begin(
        &self,
        state: &ControlState,
        request: &SwitchRequest,
        from: &Region,
        to: &Region,
        evidence: Option<Millis>,
    ) -> (Transition, ControlState) {
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
            steps: Vec::new(),
            completed: false,
            forced: request.force,
            probes: Vec::new(),
            // Going home: the verification that said home was ready.
            failback: state
                .failback
                .clone()
                .filter(|f| to == self.config.home() && f.epoch == state.epoch && f.ready),
            takeovers: 0,
        };
        let next = ControlState {
            active_region: to.clone(),
            epoch: transition.epoch,
            paused: state.paused.clone(),
            transition: Some(transition.clone()),
            failback: None,
            recent_automatic_switches: self.recent_automatic(state, request.trigger.is_automatic()),
            capacity_snapshot: state.capacity_snapshot.clone(),
            scaled_up: state.scaled_up.clone(),
            // Made against the old active region, as it says; the next is due by the interval.
            readiness: state.readiness.clone(),
        };
        (transition, next)
    }

    /// Builds the plan of `transition` from every registered kind and hands it to the
    /// executor (see [`Executor::run`]); then emits the kinds' metrics for what ran.
    pub(crate) async fn carry_out(
        &self,
        transition: Transition,
        saved: Versioned<ControlState>,
        failing_deadline: tokio::time::Instant,
        fresh: bool,
    ) -> Result<Transition> {
        let plans = plan::build::<D>(&self.config, &transition.to, &crate::steps::kinds());
        let (done, records) = Executor::new(&self.config, &self.ports)
            .run(&plans, transition, saved, failing_deadline, fresh)
            .await?;
        self.emit_step_metrics(&records);
        Ok(done)
    }

    /// Records steps run outside a plan (reconcile's re-publish) in the transition of
    /// `epoch`: see [`Executor::record_steps`].
    pub(crate) async fn record_steps(&self, epoch: u64, records: &[Ran]) -> Result<()> {
        self.emit_step_metrics(records);
        let executor = Executor::new(&self.config, &self.ports);
        executor.record_steps(None, epoch, records, None).await
    }

    /// Runs the steps the latest, completed transition still lacks and records them (see
    /// [`Executor::finish`]). The verifier's reconcile calls this every run. Regions in
    /// `skip` (found unreachable this run) are left for the next run.
    /// A hook is waited for at most `hook_wait`.
    pub(crate) async fn finish_steps(
        &self,
        skip: &[Region],
        hook_wait: std::time::Duration,
    ) -> Result<Vec<Ran>> {
        let current = self.load().await?;
        let Some(to) = current.value.transition.as_ref().map(|t| t.to.clone()) else {
            return Ok(Vec::new());
        };
        let plans = plan::build::<D>(&self.config, &to, &crate::steps::kinds());
        let records = Executor::new(&self.config, &self.ports)
            .with_hook_wait(hook_wait)
            .finish(&plans, &current, skip)
            .await?;
        self.emit_step_metrics(&records);
        Ok(records)
    }

    /// The counts kinds emit for their records (capacity raised, reloads that needed the
    /// refresh safety net, failed deployments), as EMF per key, so a dashboard or an
    /// alarm can watch them.
    fn emit_step_metrics(&self, records: &[Ran]) {
        for ran in records {
            let entry = ran.entry();
            if let Some(name) = crate::steps::info(ran.record.kind).and_then(|k| k.metric(&entry)) {
                self.emit_metric(name, "Count", &[("Group", &ran.record.key)]);
            }
        }
    }

    /// Emits one count-style metric (EMF on stdout) in the configured namespace.
    pub(crate) fn emit_metric(&self, name: &str, unit: &'static str, dimensions: &[(&str, &str)]) {
        crate::views::metrics::emit(&crate::views::metrics::signal(
            &self.config.metrics_namespace,
            name,
            unit,
            1.0,
            dimensions,
            self.now(),
        ));
    }

    /// A `Region Switch` event for a refusal: someone wanted a switch and did not get it.
    async fn notify_refused(
        &self,
        state: &ControlState,
        request: &SwitchRequest,
        answer: &Response,
    ) {
        let at = self.now();
        self.notify(
            DetailType::RegionSwitch,
            format!("refused-{}-{at}", state.epoch),
            json!({
                "outcome": "refused",
                "epoch": state.epoch,
                "from": state.active_region,
                "to": match &request.intent {
                    Intent::To(region) => region.clone(),
                    Intent::Home => Some(self.config.home().clone()),
                    Intent::AwayFrom(_) => None,
                },
                "trigger": request.trigger,
                "reason": answer.reason,
                "forced": request.force,
                "probes": answer.probes,
                // The vote (counts and each vantage point's verdict), and the verdicts
                // alone at the top, for a reader who wants only who saw what.
                "quorum": answer.quorum,
                "verdicts": answer.quorum.as_ref().map(|q| &q.verdicts),
            }),
        )
        .await;
    }

    /// A candidate only this region cannot reach is not refused for it: when the other
    /// vantage points see it healthy by quorum, its probe counts as reachable, with a
    /// note saying why. One vantage point (or none) vouches for nothing.
    async fn vouch_for_unreachable(
        &self,
        candidates: &[Region],
        probes: &mut BTreeMap<Region, ProbeResult>,
    ) {
        let unreachable: Vec<&Region> = candidates
            .iter()
            .filter(|r| probes.get(*r).is_some_and(|p| !p.reachable))
            .collect();
        if unreachable.is_empty() {
            return;
        }
        // One read of the samples for every candidate.
        let all = match self.ports.control().vantage_samples().await {
            Ok(all) => all,
            Err(e) => {
                warn!(error = %e, "the vantage points' samples could not be read; the probes from here decide");
                return;
            }
        };
        let now = self.now();
        for region in unreachable {
            let q = crate::evidence::quorum::judge(&all, region, now, &self.config.quorum);
            if q.single() || !q.healthy() {
                continue;
            }
            let Some(probe) = probes.get_mut(region) else {
                continue;
            };
            let note = format!(
                "unreachable from {} ({}), but healthy by quorum: {} of {} vantage points see it healthy",
                self.config.own_region,
                probe.error.as_deref().unwrap_or("probe failed"),
                q.healthy_votes,
                q.counted()
            );
            warn!(region = %region, "{note}");
            probe.reachable = true;
            probe.error = Some(note);
        }
    }

    /// What the vantage points say of `region`, when there are two or more of them; an
    /// unreadable table is no evidence (the switch goes on as with one vantage point).
    pub(crate) async fn quorum_of(
        &self,
        region: &Region,
    ) -> Option<crate::evidence::quorum::RegionQuorum> {
        match self.quorum(region).await {
            Ok(q) if !q.single() => Some(q),
            Ok(_) => None,
            Err(e) => {
                warn!(region = %region, error = %e, "the vantage points' samples could not be read; deciding as with one");
                None
            }
        }
    }

    /// `ActiveRegion` for every region, unless `TRAFFIC=off`. Callers pass the active
    /// region of a state they have just read or written, never a guess: a control plane
    /// that cannot read its state emits nothing and the serving alarms keep their state.
    pub fn emit_active_region(&self, active: &Region) {
        if !self.config.traffic {
            return;
        }
        crate::views::metrics::emit(&crate::views::metrics::active_region_documents(
            &self.config.metrics_namespace,
            &self.config.regions,
            active,
            self.now(),
        ));
    }

    /// Reads the control state (strongly consistent) and emits `ActiveRegion` from it: the
    /// health probe's once-a-minute beat that keeps the serving alarms fed. Returns the
    /// active region emitted; `None` with `TRAFFIC=off` or when the state cannot be read.
    pub async fn announce_active_region(&self) -> Option<Region> {
        if !self.config.traffic {
            return None;
        }
        match self.load().await {
            Ok(state) => {
                self.emit_active_region(&state.value.active_region);
                Some(state.value.active_region)
            }
            Err(e) => {
                warn!(error = %e, "ActiveRegion not emitted: the control state could not be read; the serving alarms keep their last state");
                None
            }
        }
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
            let paused = self
                .update(move |s| {
                    if s.paused.is_none() {
                        s.paused = Some(Pause {
                            reason: pause_reason.clone(),
                            at: now,
                            by: "flap-guard".into(),
                        });
                    }
                })
                .await?;
            // Concurrent alarms may all see no pause: only the one whose pause landed
            // tells.
            let ours = paused
                .paused
                .as_ref()
                .is_some_and(|p| p.at == now && p.by == "flap-guard" && p.reason == reason);
            if !ours {
                return Ok(Some(reason));
            }
            self.emit_metric("FlapGuardPaused", "Count", &[]);
            self.notify(
                DetailType::FlapGuardPaused,
                format!("flap-guard-{}-{now}", state.epoch),
                json!({
                    "reason": reason,
                    "paused_at": now,
                    "automatic_switches_24h": recent,
                    "limit": limit,
                    "active_region": state.active_region,
                    "epoch": state.epoch,
                    "resume": {"command": "resume"},
                }),
            )
            .await;
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
        match self.ports.probe().read(to, from, false).await {
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
            t.takeovers += 1;
        }
        if let Swap::Written(saved) = self.compare_and_swap(current, taken).await?
            && let Some(t) = saved
                .value
                .transition
                .clone()
                .filter(|t| t.epoch == transition.epoch && !t.completed)
        {
            let deadline = tokio::time::Instant::now() + self.config.timeouts.probe;
            let done = self.carry_out(t, saved, deadline, false).await?;
            // The invocation that made it may have died before telling: tell now, with
            // the same id (consumers drop a duplicate).
            self.notify_switched(&done, None).await;
        }
        Ok(())
    }

    /// Probes the regions concurrently; the slowest costs at most the probe timeout.
    pub async fn probe_all(&self, regions: &[Region]) -> Vec<ProbeResult> {
        join_all(regions.iter().map(|r| self.ports.probe().check(r))).await
    }

    fn plan_for(&self, transition: &Transition) -> TransitionPlan {
        let to = &transition.to;
        // The switch's own plan, described; the target region's part first, as it runs.
        let mut plans =
            crate::transition::plan::build::<D>(&self.config, to, &crate::steps::kinds());
        plans.sort_by_key(|p| &p.region != to);
        let steps: Vec<PlannedStep> = plans
            .iter()
            .flat_map(|p| {
                p.described().map(|(stage, step)| {
                    let (kind, key) = step.planned();
                    PlannedStep {
                        region: p.region.clone(),
                        stage,
                        step: kind,
                        key,
                        call: step.preview(&self.config, transition),
                    }
                })
            })
            .collect();
        let reloaded = |s: &&PlannedStep| s.step == "refresh" || s.step == "reload";
        TransitionPlan {
            parameters: steps
                .iter()
                .filter(|s| s.step == "publish")
                .map(|s| PlannedParameter {
                    region: s.region.clone(),
                    name: self.config.active_region_parameter.clone(),
                    value: to.to_string(),
                })
                .collect(),
            auto_scaling_groups: steps
                .iter()
                .filter(reloaded)
                .filter_map(|s| {
                    self.config
                        .auto_scaling_groups
                        .iter()
                        .find(|g| g.key() == s.key)
                })
                .map(|g| PlannedRefresh {
                    region: g.region.clone(),
                    name: g.name.clone(),
                    min_healthy_percentage: self.config.refresh.min_healthy_percent,
                    instance_warmup_seconds: self.config.refresh.warmup.as_secs(),
                    skip_matching: false,
                })
                .collect(),
            reload_mode: match self.config.reload.mode {
                crate::config::ReloadMode::Refresh => "refresh",
                crate::config::ReloadMode::RunCommand { .. } => "run-command",
            },
            capacity_percent: self.config.capacity.percent,
            steps,
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
            steps: BTreeMap::new(),
            probes: None,
            plan: None,
            status: None,
            report: None,
            markdown: None,
            actions_suppressed_by: None,
            routing_controls: None,
            quorum: None,
        }
    }

    /// See [`StateStore::update`].
    pub(crate) async fn update(&self, change: impl Fn(&mut ControlState)) -> Result<ControlState> {
        self.store().update(change).await
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
}
