//! The in-place reload (`RELOAD_MODE=run-command`): one SSM Run Command
//! (`AWS-RunShellScript` with `RELOAD_COMMANDS`) per group, targeting the group's running
//! instances by their `aws:autoscaling:groupName` tag, followed per instance. Instances
//! that failed or did not answer within `RELOAD_TIMEOUT_SECONDS` are replaced: the group
//! gets an instance refresh as the safety net. Instances already in the group that the
//! command could not reach (still booting, or not yet registered with SSM) are reloaded by
//! id once they can be; instances launched after the publish read the parameter at boot,
//! as in refresh mode.
//!
//! Two steps: `ReloadSend` in the act stage (fast, so every region's command goes out at
//! once) and `ReloadFollow` in the follow stage. A command SSM does not take
//! (AccessDenied, throttling, a 5xx, a bad document) falls back to the refresh in the same
//! run. A crash between sending and recording sends the command again on retry: reload
//! commands re-read the parameter and reload, so running one twice is harmless (say so to
//! users writing `RELOAD_COMMANDS`).

use std::time::Duration;

use tracing::{info, warn};

use serde_json::Value;

use crate::config::{Config, GroupRef, ReloadMode};
use crate::error::ErrorKind;
use crate::ports::{Deps, InvocationInfo, RunCommands, ScalingGroups};
use crate::region::Region;
use crate::state::{Millis, ReloadPhase, ReloadStatus};
use crate::steps::rolling;
use crate::transition::kind::{Kind, StepKind};
use crate::transition::plan::{Action, OutcomeFuture, RegionPlan, Stage, StepContext};

/// The kind: `RELOAD_MODE=run-command`, a send and a follow per group of every region.
pub struct Reload;

impl Kind for Reload {
    type Outcome = ReloadStatus;
    const FIELD: &'static str = "reload";

    fn summary(key: &str, status: &ReloadStatus, _epoch: u64) -> String {
        format!(
            "{key}: reload {:?} (command {}: {} succeeded, {} failed, {} timed out, {} pending){}",
            status.status,
            status.command_id.as_deref().unwrap_or("-"),
            status.succeeded,
            status.failed,
            status.timed_out,
            status.pending,
            status
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )
    }

    /// A Run Command still running, or one this run followed to a clean end: the
    /// transition's own course, not drift. (A fallback refresh is a repair, and reported
    /// as one.)
    fn following(before: Option<&ReloadStatus>, after: &ReloadStatus) -> bool {
        let was_running = before.is_some_and(|r| r.status == ReloadPhase::InProgress);
        let running = after.status == ReloadPhase::InProgress && after.error.is_none();
        let succeeded = matches!(
            after.status,
            ReloadPhase::Succeeded | ReloadPhase::NoInstances
        );
        running || (was_running && succeeded)
    }

    fn metric(outcome: &ReloadStatus) -> Option<&'static str> {
        (outcome.status == ReloadPhase::FellBack).then_some("ReloadFellBack")
    }

    /// The fallback refresh is a refresh like any other: the answer's `refreshes` lists
    /// it too, as it always has.
    fn also_listed(outcome: &ReloadStatus) -> Option<(&'static str, Value)> {
        let fallback = outcome.fallback_refresh.as_ref()?;
        Some(("refreshes", serde_json::to_value(fallback).ok()?))
    }
}

impl<D: Deps> StepKind<D> for Reload {
    fn plan(&self, config: &Config, _to: &Region, plan: &mut RegionPlan<D>) {
        if !matches!(config.reload.mode, ReloadMode::RunCommand { .. }) {
            return;
        }
        let region = plan.region.clone();
        for group in config.groups_in(&region) {
            let key = group.key();
            let send = Box::new(ReloadSend {
                group: group.clone(),
            });
            plan.add(Stage::Act, &key, send);
            let follow = Box::new(ReloadFollow {
                group: group.clone(),
            });
            plan.add(Stage::Follow, &key, follow);
        }
    }
}

const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Sends the reload command to one group's instances.
pub struct ReloadSend {
    pub group: GroupRef,
}

/// Follows one group's reload command and falls back to an instance refresh.
pub struct ReloadFollow {
    pub group: GroupRef,
}

impl<D: Deps> Action<D> for ReloadSend {
    type Outcome = ReloadStatus;
    const NAME: &'static str = "reload";

    fn key(&self) -> String {
        self.group.key()
    }

    /// Sent, or nothing left to send.
    fn finished(&self, recorded: Option<&ReloadStatus>) -> bool {
        recorded.is_some_and(|r| r.command_id.is_some() || r.is_done() || !r.awaiting.is_empty())
    }

    fn act<'a>(&'a self, cx: &'a StepContext<'a, D>) -> OutcomeFuture<'a, ReloadStatus> {
        Box::pin(send(cx, &self.group))
    }
}

impl<D: Deps> Action<D> for ReloadFollow {
    type Outcome = ReloadStatus;
    const NAME: &'static str = "reload-follow";

    fn key(&self) -> String {
        self.group.key()
    }

    fn finished(&self, recorded: Option<&ReloadStatus>) -> bool {
        recorded.is_some_and(ReloadStatus::is_done)
    }

    fn act<'a>(&'a self, cx: &'a StepContext<'a, D>) -> OutcomeFuture<'a, ReloadStatus> {
        Box::pin(async move {
            match cx.transition.outcome::<ReloadStatus>(&self.group.key()) {
                // Sent (now or by an earlier invocation): follow it. Not sendable: refresh.
                Some(status)
                    if status.command_id.is_some()
                        || status.status == ReloadPhase::FellBack
                        || !status.awaiting.is_empty() =>
                {
                    follow(cx, &self.group, status).await
                }
                // Never sent (the group could not be read): the send step tries again.
                Some(status) => status,
                None => {
                    ReloadStatus::failed("the reload command was not sent".into(), ErrorKind::Other)
                }
            }
        })
    }
}

async fn send<D: Deps>(cx: &StepContext<'_, D>, group: &GroupRef) -> ReloadStatus {
    let ReloadMode::RunCommand { commands } = &cx.config.reload.mode else {
        return ReloadStatus::failed("RELOAD_MODE is not run-command".into(), ErrorKind::Other);
    };
    // Read after this region's parameter was published (and before any capacity raise):
    // an instance not in the group yet launches after the publish and reads the new value
    // at boot. Every one already there is followed until it has reloaded: the command
    // reaches those in service and known to SSM; the rest (booting, or not registered
    // yet) are reloaded by id later.
    let (running, awaiting) = match cx.ports.groups().describe(group).await {
        Ok(None) => {
            return ReloadStatus::failed(
                format!("{} does not exist", group.key()),
                ErrorKind::NotFound,
            );
        }
        Ok(Some(info)) => (
            info.in_service,
            info.members
                .iter()
                .map(|m| m.id.clone())
                .collect::<Vec<_>>(),
        ),
        Err(e) => return ReloadStatus::failed(e.to_string(), e.kind),
    };
    let sent_at = cx.now();
    if running == 0 {
        if awaiting.is_empty() {
            info!(group = %group.key(), "no instance to reload; instances that launch read the parameter at boot");
            return ReloadStatus::new(ReloadPhase::NoInstances);
        }
        info!(group = %group.key(), booting = awaiting.len(), "no instance in service yet; each is reloaded once in service");
        return ReloadStatus {
            sent_at: Some(sent_at),
            awaiting,
            ..ReloadStatus::new(ReloadPhase::InProgress)
        };
    }
    let t = cx.transition;
    let comment = format!("regionpilot epoch {}: {} -> {}", t.epoch, t.from, t.to);
    match cx
        .ports
        .commands()
        .send(group, None, commands, cx.config.reload.timeout, &comment)
        .await
    {
        Ok(sent) => {
            // With tag targets SSM resolves the instances after it answers, so its
            // TargetCount may still be 0: every instance in service is expected to answer,
            // and one SSM never reports on (no agent, not registered) times out and gets
            // its group refreshed.
            let expected = sent.target_count.max(running);
            info!(group = %group.key(), command_id = %sent.command_id, targets = sent.target_count, in_service = running, "reload command sent");
            ReloadStatus {
                status: ReloadPhase::InProgress,
                command_id: Some(sent.command_id),
                sent_at: Some(sent_at),
                targeted: expected,
                pending: expected,
                awaiting,
                ..ReloadStatus::new(ReloadPhase::InProgress)
            }
        }
        // AccessDenied, throttling past the retries, a 5xx, a bad document: the instances
        // would keep the old region until someone fixed it, so the safety net takes over
        // now (the follow step starts the refresh in this run).
        Err(e) => {
            warn!(group = %group.key(), error = %e, "reload command not sent; replacing the instances with an instance refresh");
            ReloadStatus {
                error: Some(format!("the reload command could not be sent: {e}")),
                error_kind: Some(e.kind),
                ..ReloadStatus::new(ReloadPhase::FellBack)
            }
        }
    }
}

/// How long after sending regionpilot stops waiting for instances SSM has not reported
/// on: SSM's delivery timeout (an invocation must start by then) plus one execution
/// timeout, and a few seconds for the last status to arrive. SSM marks its own timeouts
/// `TimedOut` before that; this is the backstop for instances it never reports on.
pub fn backstop(execution: Duration) -> Millis {
    let delivery = execution.max(Duration::from_secs(30));
    (delivery + execution + Duration::from_secs(5)).as_millis() as Millis
}

/// Per-instance counts of one command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub succeeded: u32,
    pub failed: u32,
    pub timed_out: u32,
    pub pending: u32,
}

/// Sorts SSM's per-instance statuses into what regionpilot acts on.
pub fn count(invocations: &[InvocationInfo]) -> Counts {
    let mut counts = Counts::default();
    for invocation in invocations {
        match invocation.status.as_str() {
            "Success" => counts.succeeded += 1,
            "TimedOut" => counts.timed_out += 1,
            "Pending" | "InProgress" | "Delayed" | "Cancelling" => counts.pending += 1,
            // Failed, Cancelled, Undeliverable, Terminated, and anything new.
            _ => counts.failed += 1,
        }
    }
    counts
}

/// What a follow-up concludes from the counts and the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Succeeded,
    /// Keep following (the next verifier run continues).
    Waiting,
    /// Some instances failed or timed out: refresh the group.
    FallBack,
}

/// `pending` instances past the deadline count as timed out.
pub fn judge(counts: &mut Counts, now: Millis, deadline: Millis) -> Verdict {
    if counts.pending > 0 && now >= deadline {
        counts.timed_out += counts.pending;
        counts.pending = 0;
    }
    if counts.pending > 0 {
        Verdict::Waiting
    } else if counts.failed + counts.timed_out > 0 {
        Verdict::FallBack
    } else {
        Verdict::Succeeded
    }
}

async fn follow<D: Deps>(
    cx: &StepContext<'_, D>,
    group: &GroupRef,
    mut status: ReloadStatus,
) -> ReloadStatus {
    // A command already judged (every target done, instances that were booting still
    // awaited) is not polled again: its counts stand, and the late phase goes on.
    let judged = status.pending == 0 && !status.awaiting.is_empty();
    if status.status == ReloadPhase::InProgress
        && !judged
        && let Some(command_id) = status.command_id.clone()
    {
        let deadline = status.sent_at.unwrap_or(0) + backstop(cx.config.reload.timeout);
        let budget = tokio::time::Instant::now() + cx.follow_budget;
        loop {
            match cx
                .ports
                .commands()
                .invocations(&group.region, &command_id)
                .await
            {
                Ok(invocations) => {
                    let mut counts = count(&invocations);
                    let listed =
                        counts.succeeded + counts.failed + counts.timed_out + counts.pending;
                    if status.awaiting.is_empty() {
                        // An instance SSM has not listed yet is still pending.
                        counts.pending += status.targeted.saturating_sub(listed);
                    } else if listed == 0 {
                        // SSM resolves tag targets after it answers: nothing listed yet.
                        counts.pending += status.targeted;
                    }
                    // Those it reached and reloaded are done; those it did not reach (not
                    // registered yet) stay awaited and are reloaded by id.
                    for done in invocations.iter().filter(|i| i.status == "Success") {
                        status.awaiting.retain(|id| *id != done.instance_id);
                    }
                    let verdict = judge(&mut counts, cx.now(), deadline);
                    status.succeeded = counts.succeeded;
                    status.failed = counts.failed;
                    status.timed_out = counts.timed_out;
                    status.pending = counts.pending;
                    status.error = None;
                    match verdict {
                        Verdict::Succeeded if !status.awaiting.is_empty() => {
                            info!(group = %group.key(), command_id = %command_id, succeeded = counts.succeeded, booting = status.awaiting.len(), "every instance in service reloaded; following the ones that were booting");
                            break;
                        }
                        Verdict::Succeeded => {
                            info!(group = %group.key(), command_id = %command_id, succeeded = counts.succeeded, "every instance reloaded");
                            status.status = ReloadPhase::Succeeded;
                            break;
                        }
                        Verdict::FallBack => {
                            warn!(group = %group.key(), command_id = %command_id, failed = counts.failed, timed_out = counts.timed_out, "some instances did not reload; replacing them with an instance refresh");
                            status.status = ReloadPhase::FellBack;
                            break;
                        }
                        Verdict::Waiting => {}
                    }
                }
                Err(e) if cx.now() < deadline => {
                    // Keep following next time; the region may be down for now.
                    status.error = Some(e.to_string());
                    return status;
                }
                Err(e) => {
                    // Past the deadline with no answer about the rest: they did not reload.
                    warn!(group = %group.key(), command_id = %command_id, error = %e, "cannot read the reload's results past its deadline; replacing the instances with an instance refresh");
                    status.timed_out += status.pending;
                    status.pending = 0;
                    status.error = Some(e.to_string());
                    status.status = ReloadPhase::FellBack;
                    break;
                }
            }
            if tokio::time::Instant::now() + POLL_INTERVAL > budget {
                info!(group = %group.key(), command_id = %command_id, pending = status.pending, "reload still running; the verifier keeps following it");
                return status;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    if status.status == ReloadPhase::InProgress && !status.awaiting.is_empty() {
        status = follow_late(cx, group, status).await;
    }
    if status.status == ReloadPhase::FellBack
        && !status
            .fallback_refresh
            .as_ref()
            .is_some_and(crate::state::RefreshStatus::is_ok)
    {
        let refresh =
            rolling::refresh_one(cx.ports.groups(), group, &cx.config.refresh, cx.transition).await;
        status.fallback_refresh = Some(refresh);
    }
    status
}

/// Follows the instances that were booting when the command went out: each is reloaded
/// by id once in service and known to SSM (until then SendCommand answers
/// `InvalidInstanceId`), or dropped once it has left the group. Past the backstop (twice
/// the command's, counted from the send) the group falls back to a refresh.
async fn follow_late<D: Deps>(
    cx: &StepContext<'_, D>,
    group: &GroupRef,
    mut status: ReloadStatus,
) -> ReloadStatus {
    let ReloadMode::RunCommand { commands } = &cx.config.reload.mode else {
        return status;
    };
    let timeout = cx.config.reload.timeout;
    let deadline = status.sent_at.unwrap_or(0) + 2 * backstop(timeout);
    let budget = tokio::time::Instant::now() + cx.follow_budget;
    loop {
        if let Some(late) = status.late_command_id.clone() {
            match cx.ports.commands().invocations(&group.region, &late).await {
                Ok(invocations) => {
                    let counts = count(&invocations);
                    if counts.failed + counts.timed_out > 0 {
                        warn!(group = %group.key(), command_id = %late, failed = counts.failed, timed_out = counts.timed_out, "instances that were booting did not reload; replacing them with an instance refresh");
                        status.failed += counts.failed;
                        status.timed_out += counts.timed_out;
                        status.status = ReloadPhase::FellBack;
                        break;
                    }
                    if counts.pending == 0 && !invocations.is_empty() {
                        let reloaded: Vec<&str> =
                            invocations.iter().map(|i| i.instance_id.as_str()).collect();
                        status
                            .awaiting
                            .retain(|id| !reloaded.contains(&id.as_str()));
                        status.succeeded += counts.succeeded;
                        status.late_command_id = None;
                        info!(group = %group.key(), command_id = %late, reloaded = counts.succeeded, "instances that were booting reloaded");
                    }
                }
                Err(e) => {
                    status.error = Some(e.to_string());
                    return status;
                }
            }
        } else {
            match cx.ports.groups().describe(group).await {
                Ok(Some(info)) => {
                    status
                        .awaiting
                        .retain(|id| info.members.iter().any(|m| &m.id == id));
                    let ready: Vec<String> = status
                        .awaiting
                        .iter()
                        .filter(|id| info.members.iter().any(|m| &m.id == *id && m.in_service))
                        .cloned()
                        .collect();
                    if !ready.is_empty() {
                        let comment = format!(
                            "regionpilot epoch {}: reload of instances that were booting",
                            cx.transition.epoch
                        );
                        match cx
                            .ports
                            .commands()
                            .send(group, Some(&ready), commands, timeout, &comment)
                            .await
                        {
                            Ok(sent) => {
                                info!(group = %group.key(), command_id = %sent.command_id, instances = ready.len(), "reload sent to instances that were booting");
                                status.late_command_id = Some(sent.command_id);
                            }
                            // In service, but its agent has not registered yet.
                            Err(e) if e.code.as_deref() == Some("InvalidInstanceId") => {}
                            Err(e) => {
                                warn!(group = %group.key(), error = %e, "cannot reload the instances that were booting; replacing them with an instance refresh");
                                status.error = Some(format!(
                                    "the reload of instances that were booting could not be sent: {e}"
                                ));
                                status.status = ReloadPhase::FellBack;
                                break;
                            }
                        }
                    }
                }
                // The group is gone, and its instances with it.
                Ok(None) => status.awaiting.clear(),
                Err(e) => {
                    status.error = Some(e.to_string());
                    return status;
                }
            }
        }
        if status.awaiting.is_empty() {
            info!(group = %group.key(), "every instance reloaded, including those that were booting");
            status.status = ReloadPhase::Succeeded;
            status.error = None;
            break;
        }
        if cx.now() >= deadline {
            warn!(group = %group.key(), left = status.awaiting.len(), "instances that were booting never became reloadable; replacing them with an instance refresh");
            status.timed_out += u32::try_from(status.awaiting.len()).unwrap_or(u32::MAX);
            status.status = ReloadPhase::FellBack;
            break;
        }
        if tokio::time::Instant::now() + POLL_INTERVAL > budget {
            info!(group = %group.key(), booting = status.awaiting.len(), "instances that were booting are still to be reloaded; the verifier keeps following them");
            return status;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocations(statuses: &[&str]) -> Vec<InvocationInfo> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| InvocationInfo {
                instance_id: format!("i-{i}"),
                status: (*s).to_owned(),
            })
            .collect()
    }

    #[test]
    fn statuses_are_counted_and_judged() {
        let mut all_ok = count(&invocations(&["Success", "Success"]));
        assert_eq!(judge(&mut all_ok, 0, 10), Verdict::Succeeded);

        let mut running = count(&invocations(&["Success", "InProgress", "Delayed"]));
        assert_eq!(running.pending, 2);
        assert_eq!(judge(&mut running, 5, 10), Verdict::Waiting);
        // Past the deadline the ones still running have timed out.
        assert_eq!(judge(&mut running, 10, 10), Verdict::FallBack);
        assert_eq!((running.timed_out, running.pending), (2, 0));

        let mut partial = count(&invocations(&[
            "Success",
            "Failed",
            "TimedOut",
            "Undeliverable",
            "Cancelled",
        ]));
        assert_eq!(
            partial,
            Counts {
                succeeded: 1,
                failed: 3,
                timed_out: 1,
                pending: 0
            }
        );
        assert_eq!(judge(&mut partial, 0, 10), Verdict::FallBack);

        // SSM ran a wave, the errors passed MaxErrors, and it cancelled the rest: nothing
        // is left to wait for, so the group falls back now, long before the backstop.
        let mut stopped = count(&invocations(&[
            "Success",
            "Failed",
            "Failed",
            "Failed",
            "Cancelled",
            "Cancelled",
        ]));
        assert_eq!(judge(&mut stopped, 0, 1_000_000), Verdict::FallBack);
        // A wave still waiting its turn is pending.
        let mut waves = count(&invocations(&["Success", "Pending"]));
        assert_eq!(judge(&mut waves, 0, 1_000_000), Verdict::Waiting);
    }
}
