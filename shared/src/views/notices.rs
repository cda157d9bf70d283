//! What operators hear: an EventBridge event (source `regionpilot`) for every transition
//! and every state that needs a person. The template routes them to an SNS topic.
//!
//! Delivery is at least once and never in a transition's way: a notice the bus does not
//! take within one call timeout is kept in the control table, and the verifier sends it
//! again on its next run. Each notice has an `id` that stays the same on every re-send,
//! so consumers can drop duplicates.

use serde::Serialize;
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::controller::Controller;
use crate::error::Result;
use crate::ports::{ControlStore, Deps, EventBus, Notice};
use crate::state::{Millis, Transition};

/// How many held notices one verifier run sends; the rest wait for the next run.
const HELD_PER_RUN: usize = 50;
/// PutEvents takes at most 10 entries.
const PUT_EVENTS_MAX: usize = 10;

/// The events' `DetailType`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailType {
    /// Switched, or refused with the reason.
    RegionSwitch,
    /// Home passed failback verification and waits for a person (`approve` mode).
    FailbackReady,
    /// Too many automatic switches: automation paused until `resume`.
    FlapGuardPaused,
    /// The readiness evaluation's result changed.
    ReadinessChanged,
    /// Reconcile found drift and repaired it.
    DriftRepaired,
    /// The active region is still failing after its alarm's one delivery: the verifier
    /// asked for the failover again (switched or refused).
    FailoverRetry,
    /// A step failed for good and nothing will run it again (a hook out of attempts).
    StepGivenUp,
}

impl DetailType {
    pub fn as_str(self) -> &'static str {
        match self {
            DetailType::RegionSwitch => "Region Switch",
            DetailType::FailbackReady => "Failback Ready",
            DetailType::FlapGuardPaused => "Flap Guard Paused",
            DetailType::ReadinessChanged => "Readiness Changed",
            DetailType::DriftRepaired => "Drift Repaired",
            DetailType::FailoverRetry => "Failover Retry",
            DetailType::StepGivenUp => "Step Given Up",
        }
    }
}

/// Newest heartbeat of the region left behind that had replicated when we switched:
/// writes there after it may be lost or arrive late.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataLossWindow {
    pub region: crate::region::Region,
    pub last_replicated_at: Option<Millis>,
    pub failover_at: Millis,
    /// `failover_at - last_replicated_at`, in seconds.
    pub seconds: Option<f64>,
}

impl DataLossWindow {
    pub fn of(t: &Transition) -> Self {
        DataLossWindow {
            region: t.from.clone(),
            last_replicated_at: t.last_replicated_from_old,
            failover_at: t.started_at,
            seconds: t
                .last_replicated_from_old
                .map(|seen| t.started_at.saturating_sub(seen) as f64 / 1000.0),
        }
    }
}

/// Each step of `t` with its outcome, for an event's detail.
pub fn step_outcomes(t: &Transition) -> Vec<Value> {
    crate::views::in_plan_order(t)
        .map(|(kind, entry)| {
            let mut step = json!({
                "step": kind.name(),
                "key": entry.key,
                "ok": entry.ok(),
                "outcome": kind.summary(entry, t.epoch),
            });
            if let Some(error) = &entry.error {
                step["error_kind"] = json!(error.kind);
            }
            step
        })
        .collect()
}

/// The detail of a `Region Switch` that happened.
pub fn switched(t: &Transition) -> Value {
    json!({
        "outcome": "switched",
        "epoch": t.epoch,
        "from": t.from,
        "to": t.to,
        "trigger": t.trigger,
        "reason": t.reason,
        "forced": t.forced,
        "steps": step_outcomes(t),
        "data_loss_window": DataLossWindow::of(t),
    })
}

impl<D: Deps> Controller<D> {
    /// The `Region Switch` of a transition carried out, with the id every invocation that
    /// carries it out uses (`switch-<epoch>`), so a takeover's repeat is dropped.
    /// With the routing controls the switch set, when it set any (the takeover of an
    /// abandoned transition has none: the verifier's reconcile sets them).
    pub async fn notify_switched(
        &self,
        t: &Transition,
        routing: Option<&crate::steps::routing::RoutingReport>,
    ) {
        let mut detail = switched(t);
        if let (Some(routing), Some(fields)) = (routing, detail.as_object_mut()) {
            fields.insert("routing_controls".into(), json!(routing));
        }
        self.notify(
            DetailType::RegionSwitch,
            format!("switch-{}", t.epoch),
            detail,
        )
        .await;
    }

    /// Puts `notices` on the bus within one call timeout, and before `deadline`: the ids
    /// it refused, or why nothing was put.
    async fn put_bounded(
        &self,
        notices: &[Notice],
        deadline: Option<tokio::time::Instant>,
    ) -> std::result::Result<Vec<String>, PutFailure> {
        let started = tokio::time::Instant::now();
        let until = started + self.config.timeouts.call_attempt;
        let until = deadline.map_or(until, |d| d.min(until));
        match tokio::time::timeout_at(until, self.ports.bus().put(notices)).await {
            Ok(Ok(refused)) => Ok(refused),
            Ok(Err(e)) => Err(PutFailure {
                bus_answered: e.kind.region_answered() && !e.kind.is_transient(),
                why: e.to_string(),
            }),
            Err(_) => Err(PutFailure {
                bus_answered: false,
                why: format!(
                    "no answer within {} ms",
                    until.saturating_duration_since(started).as_millis()
                ),
            }),
        }
    }

    /// Puts one notice on the bus within one call timeout; keeps it in the control table
    /// when the bus does not take it. Never fails: callers are transitions.
    pub async fn notify(&self, detail_type: DetailType, id: String, mut detail: Value) {
        if let Some(fields) = detail.as_object_mut() {
            fields.insert("id".into(), json!(id));
            fields.insert("app".into(), json!(self.config.events.app));
        }
        let notice = Notice {
            id,
            detail_type: detail_type.as_str().to_owned(),
            detail,
            at: self.now(),
        };
        let why = match self.put_bounded(std::slice::from_ref(&notice), None).await {
            Ok(refused) if refused.is_empty() => {
                info!(event = %notice.detail_type, id = %notice.id, "event published");
                return;
            }
            Ok(_) => "the bus refused the entry".to_owned(),
            Err(failure) => failure.why,
        };
        match self.ports.control().hold(&notice).await {
            Ok(()) => {
                warn!(event = %notice.detail_type, id = %notice.id, error = %why, "event held in the control table; the verifier sends it again")
            }
            Err(e) => {
                error!(event = %notice.detail_type, id = %notice.id, detail = %notice.detail, error = %why, hold_error = %e, "event lost: neither the bus nor the control table took it")
            }
        }
    }

    /// Sends the held notices again, oldest first, and forgets the ones the bus took.
    /// Every send and every release ends by `budget`; what is left waits for the next
    /// run. A batch the bus refuses as a whole (one entry too large or malformed makes
    /// PutEvents fail them all) is sent again one by one, so one bad notice holds back
    /// only itself.
    pub async fn deliver_held(&self, budget: std::time::Duration) -> Result<HeldReport> {
        let deadline = tokio::time::Instant::now() + budget;
        let held = self.ports.control().held(HELD_PER_RUN).await?;
        let mut report = HeldReport::default();
        'batches: for batch in held.chunks(PUT_EVENTS_MAX) {
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            let refused = match self.put_bounded(batch, Some(deadline)).await {
                Ok(refused) => refused,
                Err(failure) if failure.bus_answered && batch.len() > 1 => {
                    warn!(error = %failure.why, "a batch of held events was refused as a whole; sending them one by one");
                    let mut refused = Vec::new();
                    for notice in batch {
                        let one = std::slice::from_ref(notice);
                        match self.put_bounded(one, Some(deadline)).await {
                            Ok(ids) => refused.extend(ids),
                            Err(failure) => {
                                warn!(id = %notice.id, event = %notice.detail_type, error = %failure.why, "held event refused; kept for the next run");
                                refused.push(notice.id.clone());
                            }
                        }
                    }
                    refused
                }
                Err(failure) => {
                    warn!(error = %failure.why, "held events not delivered; the next run tries again");
                    break;
                }
            };
            for notice in batch.iter().filter(|n| !refused.contains(&n.id)) {
                info!(event = %notice.detail_type, id = %notice.id, "held event delivered");
                report.delivered += 1;
                // Delivered either way; a notice not released is sent again next run, and
                // its id lets consumers drop the duplicate.
                match tokio::time::timeout_at(deadline, self.ports.control().release(notice)).await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        warn!(id = %notice.id, error = %e, "delivered event not released; it will be sent again");
                    }
                    Err(_) => {
                        warn!(id = %notice.id, "the run's budget ended while releasing a delivered event; it will be sent again");
                        break 'batches;
                    }
                }
            }
        }
        report.still_held = held.len() - report.delivered;
        Ok(report)
    }
}

/// Why a PutEvents call put nothing.
struct PutFailure {
    why: String,
    /// The bus answered and refused the request itself (not a timeout, throttling or
    /// 5xx): retrying the same batch would fail the same way.
    bus_answered: bool,
}

/// What one verifier run did with the held notices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeldReport {
    pub delivered: usize,
    pub still_held: usize,
}
