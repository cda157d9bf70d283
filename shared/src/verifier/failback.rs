//! Failback verification and reconcile: what the scheduled `failback` function does every
//! minute.
//!
//! Reconcile, in any state: every region's parameter is brought in line with the control
//! state, and every group's refresh for the latest transition is started if it never was.
//! Verification, while away from home: a streak of healthy checks of the home region, a
//! minimum hold since the failover, and drained replication (a sentinel written in the
//! active region shows up at home within a bounded wait and under the lag limit). Then,
//! by `FAILBACK_MODE`, fail back through the very same transition code (`auto`) or record
//! that we are ready and wait for a person (`approve`).

use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::FailbackMode;
use crate::controller::{Controller, Outcome, Response};
use crate::decision::switch::{Intent, SwitchRequest};
use crate::decision::window::rfc3339;
use crate::error::Result;
use crate::evidence::health;
use crate::evidence::samples::{Failing, ProbeSamples};
use crate::ports::{ControlStore, Deps, Heartbeats, ParameterStore, RunLease};
use crate::region::Region;
use crate::state::{ControlState, FailbackProgress, HistoryRecord, StepStatus, TriggerInfo};
use crate::transition::plan::{Ran, Record};
use crate::views::notices::{DataLossWindow, DetailType, HeldReport};

/// The drain is polled quickly at first (replication usually lands within a second),
/// then every `DRAIN_POLL_MAX`.
const DRAIN_POLL_FIRST: Duration = Duration::from_millis(25);
const DRAIN_POLL_MAX: Duration = Duration::from_millis(250);
/// Held events are sent for at most this long per run: they must not crowd out the
/// verification (the rest wait for the next run).
const HELD_EVENTS_BUDGET: Duration = Duration::from_secs(5);
/// A readiness evaluation (call budgets, a lag wait) starts only with this much time left.
const READINESS_RESERVE: Duration = Duration::from_secs(35);
/// An automatic failback (probes, every step, a Run Command followed for up to 20 s)
/// starts only with this much time left; otherwise the next run makes it.
const FAILBACK_RESERVE: Duration = Duration::from_secs(30);

/// Reconcile waits for a hook only with this much of the run left after it (a readiness
/// evaluation may start with 35 s left; a failback needs 30 s).
const HOOK_RESERVE: Duration = Duration::from_secs(20);

/// A verifier run holds the control plane this long past its deadline at most; without
/// a deadline (a test, a local call), for the template's 60 s function timeout.
const RUN_LEASE_WITHOUT_DEADLINE: Duration = Duration::from_secs(60);

/// The verifier asking again for a failover its alarm asked for once.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverRetry {
    /// What the probe's samples say.
    pub evidence: Failing,
    pub outcome: Outcome,
    pub reason: String,
}

/// What reconcile found out of line and what it did about it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    /// Everything found out of line, in words.
    pub drift: Vec<String>,
    /// What was brought back in line.
    pub fixed: Vec<String>,
    /// What could not be fixed this time (the region may still be down).
    pub failed: Vec<String>,
    /// Run Commands still running, followed again by the next run.
    pub following: Vec<String>,
    /// `TRAFFIC_SIGNAL=routing-control`: the routing controls as found, or as repaired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_controls: Option<crate::steps::routing::RoutingReport>,
}

/// The verifier's answer.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub outcome: &'static str,
    pub active_region: Region,
    pub home_region: Region,
    pub epoch: u64,
    pub reason: String,
    pub reconcile: ReconcileReport,
    /// Capacity snapshot and scale-ins.
    pub capacity: crate::verifier::scale_in::CapacityReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failback: Option<FailbackProgress>,
    /// The failback transition, when `auto` mode made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch: Option<Response>,
    /// When `FAILBACK_WINDOW` next opens (RFC 3339, UTC), while it holds a ready failback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failback_window_opens: Option<String>,
    /// Events a failing bus had left in the control table, sent again this run.
    pub held_events: HeldReport,
    /// Data-loss evidence of the failover being undone: writes in the old region after
    /// this heartbeat may have been lost or overwritten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_loss_window: Option<DataLossWindow>,
    /// Whether a failover would work now, when this run evaluated it (every
    /// `READINESS_INTERVAL_SECONDS`); `changed` says the result differs from the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<crate::verifier::readiness::ReadinessRun>,
    /// The active region was still failing by the probe's samples: the failover asked
    /// for again, and what came of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_retry: Option<FailoverRetry>,
}

impl VerifyReport {
    /// A report of a run that did nothing yet.
    fn empty(state: &ControlState, home: &Region) -> VerifyReport {
        VerifyReport {
            outcome: "home",
            active_region: state.active_region.clone(),
            home_region: home.clone(),
            epoch: state.epoch,
            reason: String::new(),
            reconcile: ReconcileReport::default(),
            capacity: crate::verifier::scale_in::CapacityReport::default(),
            failback: None,
            switch: None,
            failback_window_opens: None,
            held_events: HeldReport::default(),
            data_loss_window: None,
            readiness: None,
            failover_retry: None,
        }
    }
}

impl<D: Deps> Controller<D> {
    /// Brings every region's parameter and every group's refresh in line with the
    /// control state. Safe at any time: it only repeats idempotent steps.
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        self.reconcile_until(None).await
    }

    /// [`Self::reconcile`] inside `deadline` (a verifier run's): a hook is waited for
    /// at most `HOOK_TIMEOUT_SECONDS`, and never into the time the rest of the run needs.
    pub async fn reconcile_until(&self, deadline: Option<Instant>) -> Result<ReconcileReport> {
        let hook_wait = match deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .saturating_sub(HOOK_RESERVE)
                .min(self.config.hooks.timeout),
            None => self.config.hooks.timeout,
        };
        let current = self.load().await?;
        self.finish_abandoned(&current).await?;
        let state = self.load().await?.value;
        let mut report = ReconcileReport::default();
        let active = state.active_region.clone();
        let name = &self.config.active_region_parameter;

        let reads = join_all(self.config.regions.iter().map(|region| async move {
            (region, self.ports.parameters().get(region, name).await)
        }))
        .await;
        let mut republish = Vec::new();
        // A region that did not answer is left for the next run: each of its steps would
        // cost a call budget, and the verifier has a Lambda timeout to keep.
        let mut unreachable = Vec::new();
        for (region, read) in reads {
            match read {
                Ok(Some(value)) if value == active.as_str() => {}
                Ok(value) => {
                    report.drift.push(format!(
                        "{region}: {name} is {} but the active region is {active}",
                        value.as_deref().unwrap_or("missing")
                    ));
                    republish.push(region.clone());
                }
                Err(e) => {
                    if !e.kind.region_answered() {
                        unreachable.push(region.clone());
                    }
                    report
                        .failed
                        .push(format!("{region}: cannot read {name}: {e}"));
                }
            }
        }
        let description = format!(
            "regionpilot reconcile: epoch {} active {active}",
            state.epoch
        );
        let writes = join_all(republish.iter().map(|region| {
            let description = description.clone();
            let active = active.clone();
            async move {
                let result = self
                    .ports
                    .parameters()
                    .put(region, name, active.as_str(), &description)
                    .await;
                (region.clone(), result)
            }
        }))
        .await;
        let mut published = Vec::new();
        for (region, result) in writes {
            match result {
                Ok(()) => {
                    info!(region = %region, parameter = %name, value = %active, "re-published drifted parameter");
                    report
                        .fixed
                        .push(format!("{region}: {name} set to {active}"));
                    published.push(region);
                }
                Err(e) => report
                    .failed
                    .push(format!("{region}: re-publish failed: {e}")),
            }
        }

        if !published.is_empty()
            && let Some(transition) = state.transition.as_ref().filter(|t| t.completed)
        {
            let now = self.now();
            let records: Vec<Ran> = published
                .iter()
                .map(|region| {
                    let record = Record::of(region.to_string(), &StepStatus::Published);
                    Ran::at(format!("publish {region}"), record, now)
                })
                .collect();
            self.record_steps(transition.epoch, &records).await?;
        }
        // Every step of the latest transition that is not done yet: a region that was
        // down, a group that missed its capacity or reload, a Run Command still running.
        let epoch = state.epoch;
        let mut given_up = Vec::new();
        for ran in self.finish_steps(&unreachable, hook_wait).await? {
            let record = &ran.record;
            let entry = ran.entry();
            let kind = crate::steps::info(record.kind);
            if kind.is_some_and(|k| k.given_up(&entry)) {
                given_up.push(ran.clone());
            }
            let before = state
                .transition
                .as_ref()
                .and_then(|t| t.step(record.kind, &record.key));
            let summary = kind.map_or_else(
                || format!("{}: {}", record.key, record.kind),
                |k| k.summary(&entry, epoch),
            );
            if kind.is_some_and(|k| k.following(before, &entry)) {
                report.following.push(summary);
                continue;
            }
            report.drift.push(format!(
                "{}: {} not done for epoch {epoch}",
                record.key, ran.name
            ));
            match &record.error {
                Some(error) => report
                    .failed
                    .push(format!("{}: {}", record.key, error.message)),
                None => report.fixed.push(summary),
            }
        }
        // Completion implies a history record, unless writing it failed: write it now.
        // A table that does not answer is left for the next run, as a region is.
        if let Some(t) = state.transition.as_ref().filter(|t| t.completed) {
            match self.ports.control().history_of(t.epoch).await {
                Ok(Some(stored)) if stored.revision >= t.revision() => {}
                Ok(stored) => {
                    report.drift.push(format!(
                        "epoch {}: {}",
                        t.epoch,
                        if stored.is_some() {
                            "the history record is behind the control state"
                        } else {
                            "no history record"
                        }
                    ));
                    let written = match self.load().await {
                        Ok(current) => match current
                            .value
                            .transition
                            .as_ref()
                            .filter(|l| l.epoch == t.epoch)
                        {
                            Some(latest) => self
                                .ports
                                .control()
                                .put_history(&HistoryRecord::of(latest))
                                .await
                                .map(|()| true),
                            // Superseded since: the newer transition writes its own.
                            None => Ok(false),
                        },
                        Err(e) => Err(e),
                    };
                    match written {
                        Ok(true) => report
                            .fixed
                            .push(format!("epoch {}: history record written", t.epoch)),
                        Ok(false) => {}
                        Err(e) => report.failed.push(format!(
                            "epoch {}: history record not written: {e}",
                            t.epoch
                        )),
                    }
                }
                Err(e) => report.failed.push(format!(
                    "epoch {}: cannot read the history record: {e}",
                    t.epoch
                )),
            }
        }
        // Routing controls left wrong (a switch that reached no cluster endpoint, or a
        // person's change in the console) are set from the decision.
        if let Some(routing) =
            crate::steps::routing::reconcile_routing_controls(&self.config, &self.ports, &active)
                .await
        {
            if routing.repaired || routing.error.is_some() {
                report
                    .drift
                    .push(format!("routing controls not as {active} active needs"));
            }
            match (&routing.error, routing.repaired) {
                (Some(error), _) => report.failed.push(format!("routing controls: {error}")),
                (None, true) => report.fixed.push(format!(
                    "routing controls set for {active} through the endpoint in {}",
                    routing
                        .endpoint
                        .as_ref()
                        .map_or("?", crate::region::Region::as_str)
                )),
                (None, false) => {}
            }
            report.routing_controls = Some(routing);
        }
        if !report.drift.is_empty() {
            warn!(drift = ?report.drift, fixed = ?report.fixed, failed = ?report.failed, "reconcile found drift");
        }
        if !report.fixed.is_empty() {
            let at = self.now();
            self.notify(
                DetailType::DriftRepaired,
                format!("drift-{epoch}-{at}"),
                serde_json::json!({
                    "epoch": epoch,
                    "active_region": active,
                    "drift": report.drift,
                    "fixed": report.fixed,
                    "failed": report.failed,
                }),
            )
            .await;
        }
        // A step reconcile will not run again (a hook out of attempts) is told once: the
        // notice's id is the step's, so a repeat is the same event.
        for ran in given_up {
            let entry = ran.entry();
            let summary = crate::steps::info(&entry.kind)
                .map_or_else(|| entry.key.clone(), |k| k.summary(&entry, epoch));
            self.notify(
                DetailType::StepGivenUp,
                format!("given-up-{epoch}-{}-{}", entry.kind, entry.key),
                serde_json::json!({
                    "epoch": epoch,
                    "active_region": active,
                    "step": entry.kind,
                    "key": entry.key,
                    "outcome": summary,
                    "error": entry.error.as_ref().map(|e| &e.message),
                    "error_kind": entry.error.as_ref().map(|e| e.kind),
                    "record": entry.outcome,
                }),
            )
            .await;
        }
        Ok(report)
    }

    /// One run of the failback verification (reconcile first, in any state), with no
    /// deadline of its own.
    pub async fn verify(&self) -> Result<VerifyReport> {
        self.verify_until(None).await
    }

    /// A scheduled (or a person's) verifier run, `run` its unique id: it holds the run
    /// lease in the control table while it works, so no two runs overlap, whatever
    /// delivered them or in whichever region they run. A run that finds the lease held
    /// answers `busy` and changes nothing.
    pub async fn verify_run(&self, run: &str, deadline: Option<Instant>) -> Result<VerifyReport> {
        let now = self.now();
        let held_for = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(RUN_LEASE_WITHOUT_DEADLINE);
        let lease = RunLease {
            owner: run.to_owned(),
            now,
            until: now + held_for.as_millis() as u64,
        };
        if !self.ports.control().claim_run(&lease).await? {
            let state = self.load().await?.value;
            info!(
                run,
                "another verifier run holds the lease; this one does nothing"
            );
            return Ok(VerifyReport {
                outcome: "busy",
                reason: "another verifier run is in progress (the run lease in the control table); this run changed nothing".into(),
                ..VerifyReport::empty(&state, self.config.home())
            });
        }
        let report = self.verify_until(deadline).await;
        if let Err(e) = self.ports.control().end_run(&lease).await {
            warn!(error = %e, "the run lease was not given back; it lapses at the run's deadline");
        }
        report
    }

    /// Each vantage point's latest verdicts as `VantageHealthy`, for the dashboard. A table
    /// that does not answer costs this minute's points, never the run.
    fn emit_vantage_views(&self, vantage: &std::result::Result<Vec<ProbeSamples>, String>) {
        match vantage {
            Ok(all) => crate::views::metrics::emit(&crate::views::metrics::vantage_documents(
                &self.config.metrics_namespace,
                all,
                self.now(),
                self.config.quorum.window,
            )),
            Err(why) => warn!(
                error = %why,
                "the vantage points' samples could not be read; no VantageHealthy this run"
            ),
        }
    }

    /// Asks again for the failover of an active region the probe's samples say is still
    /// failing (the alarm invoked failover once; a refusal or a cooldown then left the
    /// application down). The same switch as an alarm's, so cooldown, the flap guard and
    /// the pre-flight probe apply. `None` when the samples say nothing of the kind.
    async fn retry_failover(&self, state: &ControlState) -> Option<FailoverRetry> {
        let active = &state.active_region;
        let samples = match self.ports.control().samples(&self.config.own_region).await {
            Ok(samples) => samples?,
            Err(e) => {
                warn!(error = %e, "the probe's samples could not be read; no failover retry this run");
                return None;
            }
        };
        let evidence = samples.failing(active, self.now())?;
        let reason = format!(
            "{active} still failing: the probe in {} saw it unhealthy in its last {} samples (since {}); its alarm invoked failover once",
            evidence.vantage,
            evidence.unhealthy_samples,
            rfc3339(evidence.since)
        );
        warn!(region = %active, "{reason}; asking for the failover again");
        let answer = self
            .switch(SwitchRequest {
                intent: Intent::AwayFrom(active.clone()),
                reason: reason.clone(),
                trigger: TriggerInfo::Verifier {
                    check: "failover".into(),
                },
                dry_run: false,
                force: false,
            })
            .await;
        let retry = match answer {
            Ok(response) => FailoverRetry {
                evidence,
                outcome: response.outcome,
                reason: response.reason,
            },
            Err(e) => FailoverRetry {
                evidence,
                outcome: Outcome::Refused,
                reason: format!("the failover could not be made: {e}"),
            },
        };
        if retry.outcome == Outcome::Ignored {
            info!(reason = %retry.reason, "failover retry ignored");
        } else {
            self.notify(
                DetailType::FailoverRetry,
                format!("failover-retry-{}-{}", state.epoch, retry.evidence.newest),
                serde_json::json!({
                    "epoch": state.epoch,
                    "active_region": active,
                    "outcome": retry.outcome,
                    "reason": retry.reason,
                    "evidence": retry.evidence,
                }),
            )
            .await;
        }
        Some(retry)
    }

    /// One run of the failback verification that keeps inside `deadline` (the Lambda
    /// invocation's, less a margin): work that can wait for the next run (held events
    /// past a budget, a readiness evaluation, an automatic failback) is left for it when
    /// too little time is left.
    pub async fn verify_until(&self, deadline: Option<Instant>) -> Result<VerifyReport> {
        let left = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // Events a failing bus left behind go first: they are older than anything below.
        let held_events = self
            .deliver_held(HELD_EVENTS_BUDGET)
            .await
            .unwrap_or_else(|e| {
                warn!(error = %e, "held events could not be read; the next run tries again");
                HeldReport::default()
            });
        let reconcile = self.reconcile_until(deadline).await?;
        let mut state = self.load().await?.value;
        let failover_retry = if left().is_none_or(|l| l >= FAILBACK_RESERVE) {
            self.retry_failover(&state).await
        } else {
            warn!(left = ?left(), "no failover retry this run: too little time left");
            None
        };
        if failover_retry
            .as_ref()
            .is_some_and(|r| r.outcome == Outcome::Switched)
        {
            state = self.load().await?.value;
        }
        let capacity = self.capacity_round(&state).await?;
        // Read once, for readiness's vantage_points check and the VantageHealthy points.
        let vantage = self.vantage_samples_within_budget().await;
        // Never fails: a check that cannot be made fails with its reason. Still due next
        // run when skipped for time.
        let readiness = if left().is_none_or(|l| l >= READINESS_RESERVE) {
            self.readiness_round(&state, &vantage).await
        } else {
            warn!(left = ?left(), "readiness not evaluated this run: too little time left");
            None
        };
        if let Some(run) = readiness.as_ref().filter(|r| r.changed) {
            let r = &run.readiness;
            self.notify(
                DetailType::ReadinessChanged,
                format!("readiness-{}", r.evaluated_at),
                serde_json::json!({
                    "ready": r.ready,
                    "previous_ready": run.previous_ready,
                    "evaluated_at": r.evaluated_at,
                    "active_region": r.active_region,
                    "epoch": state.epoch,
                    "failing": r.failing().collect::<Vec<_>>(),
                    "checks": r.checks,
                }),
            )
            .await;
        }
        let home = self.config.home().clone();
        // One sample a minute for the dashboard's "active region" widget.
        self.emit_metric(
            "Active",
            "None",
            &[("Region", state.active_region.as_str())],
        );
        self.emit_vantage_views(&vantage);
        let mut report = VerifyReport {
            reconcile,
            capacity,
            held_events,
            readiness,
            failover_retry,
            ..VerifyReport::empty(&state, &home)
        };
        if let Some(retry) = report
            .failover_retry
            .as_ref()
            .filter(|r| r.outcome == Outcome::Switched)
        {
            report.outcome = "failed_over";
            report.reason = retry.reason.clone();
            return Ok(report);
        }
        if state.active_region == home {
            report.reason = format!("{home} (home) is active; nothing to fail back");
            if state.failback.is_some() {
                self.update(|s| s.failback = None).await?;
            }
            return Ok(report);
        }

        let (progress, became_ready) = self.check_home(&state).await?;
        report.failback = Some(progress.clone());
        report.data_loss_window = state.transition.as_ref().map(DataLossWindow::of);
        if !progress.ready {
            report.outcome = "waiting";
            report.reason = format!(
                "not ready for failback: {}",
                progress.waiting_for.join("; ")
            );
            info!(streak = progress.healthy_streak, waiting_for = ?progress.waiting_for, "failback not ready");
            return Ok(report);
        }
        self.emit_metric("FailbackReady", "Count", &[("Region", home.as_str())]);
        let now = self.now();
        let window = self.config.failback_window.as_ref();
        let window_open = window.is_none_or(|w| w.contains(now));
        report.failback_window_opens = window
            .filter(|_| !window_open)
            .map(|w| rfc3339(w.next_open(now)));
        match self.config.failback.mode {
            FailbackMode::Approve => {
                report.outcome = "ready";
                report.reason = format!(
                    "ready for failback to {home}; send {{\"command\":\"failback\"}} to the failover function to approve"
                );
                if let (Some(window), Some(opens)) = (window, &report.failback_window_opens) {
                    report.reason += &format!(
                        " (FAILBACK_WINDOW {window} next opens at {opens}; a manual failback is not held by it)"
                    );
                }
                warn!(home = %home, "{}", report.reason);
                // Told by the run whose write made it ready; its id is the stored fact's, so
                // a run in another region, or a retry, that tells it again is dropped by
                // consumers. Ready again after a relapse is a new fact.
                if became_ready && let Some(since) = progress.ready_since {
                    self.notify(
                        DetailType::FailbackReady,
                        format!("failback-ready-{}-{since}", state.epoch),
                        serde_json::json!({
                            "epoch": state.epoch,
                            "home_region": home,
                            "active_region": state.active_region,
                            "reason": report.reason,
                            "failback_window": self.config.failback_window.as_ref().map(ToString::to_string),
                            "failback_window_opens": report.failback_window_opens,
                            "healthy_streak": progress.healthy_streak,
                            "replication_drain_seconds": progress.last_drain_seconds,
                            "data_loss_window": report.data_loss_window,
                            "approve": {"command": "failback"},
                        }),
                    )
                    .await;
                }
            }
            FailbackMode::Auto if !window_open => {
                report.outcome = "waiting";
                report.reason = format!(
                    "ready for failback to {home}, held by FAILBACK_WINDOW ({}) until {}; {{\"command\":\"failback\"}} fails back now",
                    window.map(ToString::to_string).unwrap_or_default(),
                    report.failback_window_opens.as_deref().unwrap_or("?")
                );
                info!(home = %home, "{}", report.reason);
            }
            FailbackMode::Auto if left().is_some_and(|l| l < FAILBACK_RESERVE) => {
                report.outcome = "waiting";
                report.reason = format!(
                    "ready for failback to {home}, but this run has too little time left to carry it out; the next run fails back"
                );
                warn!(home = %home, left = ?left(), "{}", report.reason);
            }
            FailbackMode::Auto => {
                let response = self
                    .switch(SwitchRequest {
                        intent: Intent::Home,
                        reason: format!(
                            "failback: {home} healthy for {} checks and replication drained",
                            progress.healthy_streak
                        ),
                        trigger: TriggerInfo::Verifier {
                            check: "failback".into(),
                        },
                        dry_run: false,
                        force: false,
                    })
                    .await?;
                report.outcome = match response.outcome {
                    Outcome::Switched => "failed_back",
                    _ => "failback_not_made",
                };
                report.reason = response.reason.clone();
                report.active_region = response.active_region.clone();
                report.epoch = response.epoch;
                report.switch = Some(response);
            }
        }
        Ok(report)
    }

    /// Probes home, updates the streak in the control state, checks the hold and the drain.
    /// Also says whether this run's write is the one that made home ready.
    async fn check_home(&self, state: &ControlState) -> Result<(FailbackProgress, bool)> {
        let policy = self.config.failback;
        let home = self.config.home().clone();
        let round = health::probe_round(
            std::slice::from_ref(&home),
            self.ports.probe(),
            self.ports.clock(),
            self.config.timeouts.probe,
        )
        .await;
        let seen_healthy = round.regions.first().is_some_and(|r| r.healthy);
        // Healthy from here is not enough when other vantage points see home down: a
        // streak counts only samples where home is healthy by quorum.
        let quorum = if seen_healthy {
            self.quorum_of(&home).await.filter(|q| !q.healthy())
        } else {
            None
        };
        let healthy = seen_healthy && quorum.is_none();
        let epoch = state.epoch;
        let now = self.now();
        let mut waiting_for = Vec::new();

        let updated = self
            .update(move |s| {
                let previous = s.failback.as_ref().filter(|f| f.epoch == epoch);
                let streak = match (healthy, previous) {
                    (true, Some(p)) => p.healthy_streak.saturating_add(1),
                    (true, None) => 1,
                    (false, _) => 0,
                };
                s.failback = Some(FailbackProgress {
                    epoch,
                    healthy_streak: streak,
                    last_check_at: now,
                    // Still ready until this run says otherwise: another region's verifier
                    // reading now must not take it for news.
                    ready: healthy && previous.is_some_and(|p| p.ready),
                    waiting_for: previous.map(|p| p.waiting_for.clone()).unwrap_or_default(),
                    last_drain_seconds: previous.and_then(|p| p.last_drain_seconds),
                    ready_since: previous.and_then(|p| p.ready_since).filter(|_| healthy),
                });
            })
            .await?;
        let streak = updated.failback.as_ref().map_or(0, |f| f.healthy_streak);
        if let Some(q) = &quorum {
            waiting_for.push(format!(
                "{home} is healthy from here but not by quorum: {} of {} vantage points see it healthy (a quorum is {}); streak reset",
                q.healthy_votes,
                q.counted(),
                q.required
            ));
        } else if !healthy {
            let why = round
                .regions
                .first()
                .and_then(|r| r.error.clone())
                .unwrap_or_else(|| "unhealthy".into());
            waiting_for.push(format!(
                "{home} failed its health check ({why}); streak reset"
            ));
        } else if streak < policy.healthy_checks {
            waiting_for.push(format!(
                "{} more healthy checks of {home} ({streak}/{})",
                policy.healthy_checks - streak,
                policy.healthy_checks
            ));
        }
        let failed_over_at = state.last_switch_at().unwrap_or(0);
        let held = Duration::from_millis(now.saturating_sub(failed_over_at));
        if held < policy.min_hold {
            waiting_for.push(format!(
                "hold: {}s since the failover, FAILBACK_MIN_HOLD_SECONDS is {}",
                held.as_secs(),
                policy.min_hold.as_secs()
            ));
        }
        let mut drain_seconds = None;
        if waiting_for.is_empty() {
            match self.drain(&state.active_region, &home).await {
                Ok(seconds) if seconds <= policy.max_lag.as_secs_f64() => {
                    drain_seconds = Some(seconds)
                }
                Ok(seconds) => {
                    drain_seconds = Some(seconds);
                    waiting_for.push(format!(
                        "replication lag {seconds:.1}s to {home} is over FAILBACK_MAX_LAG_SECONDS ({})",
                        policy.max_lag.as_secs()
                    ));
                }
                Err(why) => waiting_for.push(why),
            }
        }
        let ready = waiting_for.is_empty();
        let recorded = waiting_for.clone();
        let state = self
            .update(move |s| {
                if let Some(f) = s.failback.as_mut().filter(|f| f.epoch == epoch) {
                    f.ready = ready;
                    f.waiting_for = recorded.clone();
                    if drain_seconds.is_some() {
                        f.last_drain_seconds = drain_seconds;
                    }
                    f.ready_since = if ready {
                        f.ready_since.or(Some(now))
                    } else {
                        None
                    };
                }
            })
            .await?;
        let progress = state.failback.unwrap_or(FailbackProgress {
            epoch,
            healthy_streak: streak,
            last_check_at: now,
            ready,
            waiting_for,
            last_drain_seconds: drain_seconds,
            ready_since: None,
        });
        // Not ready after this run's first write, ready after its second: this run made it
        // so (a verifier elsewhere doing the same at once tells it with the same id).
        let was_ready = updated
            .failback
            .as_ref()
            .is_some_and(|f| f.ready_since.is_some());
        let became_ready = progress.ready && !was_ready;
        Ok((progress, became_ready))
    }

    /// Writes a sentinel (the active region's heartbeat) and waits, bounded, for home to
    /// see it. Returns how long that took, in seconds.
    async fn drain(&self, active: &Region, home: &Region) -> std::result::Result<f64, String> {
        let stamp = self.now();
        self.ports
            .probe()
            .write(active, stamp)
            .await
            .map_err(|e| format!("cannot write the drain sentinel in {active}: {e}"))?;
        let started = Instant::now();
        let wait = self.config.failback.drain_wait;
        let mut poll = DRAIN_POLL_FIRST;
        loop {
            if let Ok(Some(seen)) = self.ports.probe().read(home, active, false).await
                && seen >= stamp
            {
                return Ok(started.elapsed().as_secs_f64());
            }
            if started.elapsed() + poll > wait {
                return Err(format!(
                    "replication from {active} to {home} not drained: the sentinel did not arrive within FAILBACK_DRAIN_WAIT_SECONDS ({}s)",
                    wait.as_secs()
                ));
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(DRAIN_POLL_MAX);
        }
    }
}

/// What the verifier was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifierRequest {
    /// A scheduled run, `{"command":"verify"}`, or an empty payload.
    Verify,
    /// `{"command":"status"}`.
    Status,
}

pub fn decode_request(payload: &serde_json::Value) -> Result<VerifierRequest> {
    crate::decision::event::decode_scheduled(
        payload,
        VerifierRequest::Verify,
        VerifierRequest::Verify,
        &[
            ("verify", VerifierRequest::Verify),
            ("status", VerifierRequest::Status),
        ],
    )
}
