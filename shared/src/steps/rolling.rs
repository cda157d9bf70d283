//! The rolling update: an instance refresh per Auto Scaling group so instances boot again
//! and read the new active region. Safe to repeat: a refresh that began at or after the
//! transition belongs to it and is never started twice; one that began before is stale
//! (it rolls towards the old region) and is cancelled and replaced.

use std::time::Duration;

use tracing::{info, warn};

use crate::config::{Config, GroupRef, RefreshPreferences, ReloadMode};
use crate::error::{AwsError, ErrorKind};
use crate::ports::{Deps, RefreshInfo, ScalingGroups};
use crate::region::Region;
use crate::state::{RefreshStatus, Transition};
use crate::transition::kind::{Kind, StepKind};
use crate::transition::plan::{Action, OutcomeFuture, RegionPlan, Stage, StepContext};

/// The kind: `RELOAD_MODE=refresh`, one instance refresh per group of every region.
pub struct Refresh;

impl Kind for Refresh {
    type Outcome = RefreshStatus;
    const FIELD: &'static str = "refreshes";

    fn summary(key: &str, outcome: &RefreshStatus, epoch: u64) -> String {
        match outcome {
            RefreshStatus::Started { id } | RefreshStatus::AlreadyRunning { id } => {
                format!("{key}: refresh {id} for epoch {epoch}")
            }
            RefreshStatus::Failed { error, .. } => format!("{key}: {error}"),
        }
    }
}

impl<D: Deps> StepKind<D> for Refresh {
    fn plan(&self, config: &Config, _to: &Region, plan: &mut RegionPlan<D>) {
        if !matches!(config.reload.mode, ReloadMode::Refresh) {
            return;
        }
        let region = plan.region.clone();
        for group in config.groups_in(&region) {
            let step = Box::new(RefreshStep {
                group: group.clone(),
            });
            plan.add(Stage::Act, &group.key(), step);
        }
    }
}

/// The refresh step of `RELOAD_MODE=refresh`: one instance refresh per group.
pub struct RefreshStep {
    pub group: GroupRef,
}

impl<D: Deps> Action<D> for RefreshStep {
    type Outcome = RefreshStatus;
    const NAME: &'static str = "refresh";

    fn key(&self) -> String {
        self.group.key()
    }

    fn finished(&self, recorded: Option<&RefreshStatus>) -> bool {
        recorded.is_some_and(RefreshStatus::is_ok)
    }

    fn act<'a>(&'a self, cx: &'a StepContext<'a, D>) -> OutcomeFuture<'a, RefreshStatus> {
        Box::pin(async move {
            let groups = cx.ports.groups();
            // A transition this invocation has just created owns no refresh yet: start at
            // once, and describe only if Auto Scaling says one is in progress.
            let listed = if cx.fresh {
                None
            } else {
                Some(groups.refreshes(&self.group).await)
            };
            refresh_listed(
                groups,
                &self.group,
                &cx.config.refresh,
                cx.transition,
                listed,
            )
            .await
        })
    }
}

/// How long we wait for a cancelled refresh to leave the Cancelling state.
const CANCEL_POLLS: u32 = 20;
const CANCEL_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Makes sure exactly one refresh for this transition exists on `group`.
pub async fn refresh_one<S: ScalingGroups>(
    groups: &S,
    group: &GroupRef,
    preferences: &RefreshPreferences,
    transition: &Transition,
) -> RefreshStatus {
    let listed = groups.refreshes(group).await;
    refresh_listed(groups, group, preferences, transition, Some(listed)).await
}

/// `refresh_one` with the group's refreshes already described, or with `None` for a
/// transition this invocation has just created: nothing can belong to it yet, so it starts
/// at once and describes only if Auto Scaling says a refresh is in progress.
pub async fn refresh_listed<S: ScalingGroups>(
    groups: &S,
    group: &GroupRef,
    preferences: &RefreshPreferences,
    transition: &Transition,
    listed: Option<Result<Vec<RefreshInfo>, AwsError>>,
) -> RefreshStatus {
    let key = group.key();
    let mut listed = listed;
    let mut last_error = None;
    // Twice at most: a start refused as in progress is followed by a describe, and what
    // it finds (ours, or a stale one to cancel) decides the second round.
    for _ in 0..2 {
        let existing = match listed.take() {
            None => Vec::new(),
            Some(Ok(list)) => list,
            Some(Err(e)) => return RefreshStatus::failed(e.to_string(), e.kind),
        };
        if let Some(ours) = belonging_to_transition(&existing, transition) {
            info!(group = %key, refresh_id = %ours.id, status = %ours.status, "refresh for this transition already exists");
            return RefreshStatus::AlreadyRunning {
                id: ours.id.clone(),
            };
        }
        if let Some(stale) = existing.iter().find(|r| r.is_active()) {
            warn!(group = %key, refresh_id = %stale.id, "cancelling a refresh that began before this transition");
            if let Err(e) = groups.cancel_refresh(group).await
                && e.kind != ErrorKind::NotFound
            {
                return RefreshStatus::failed(e.to_string(), e.kind);
            }
            if let Err((error, kind)) = wait_until_idle(groups, group).await {
                return RefreshStatus::failed(error, kind);
            }
        }
        match groups.start_refresh(group, preferences).await {
            Ok(id) => {
                info!(group = %key, refresh_id = %id, "instance refresh started");
                return RefreshStatus::Started { id };
            }
            Err(e) if e.kind == ErrorKind::RefreshInProgress => {
                // A stale refresh we had not seen, or one someone else started for this
                // transition between our describe and our start: look again.
                listed = Some(groups.refreshes(group).await);
                last_error = Some(e);
            }
            Err(e) => return RefreshStatus::failed(e.to_string(), e.kind),
        }
    }
    if let Some(Ok(list)) = &listed
        && let Some(ours) = belonging_to_transition(list, transition)
    {
        return RefreshStatus::AlreadyRunning {
            id: ours.id.clone(),
        };
    }
    match last_error {
        Some(e) => RefreshStatus::failed(e.to_string(), e.kind),
        None => RefreshStatus::failed("instance refresh did not start", ErrorKind::Other),
    }
}

fn belonging_to_transition<'a>(
    list: &'a [RefreshInfo],
    transition: &Transition,
) -> Option<&'a RefreshInfo> {
    // Whole-second tolerance: Auto Scaling reports StartTime in seconds. The previous
    // transition's own refreshes are excluded, so two transitions within one second
    // each get their refresh.
    list.iter().find(|r| {
        r.started_at
            .is_some_and(|t| t + 1_000 >= transition.started_at)
            && !transition.previous_refresh_ids.contains(&r.id)
    })
}

async fn wait_until_idle<S: ScalingGroups>(
    groups: &S,
    group: &GroupRef,
) -> Result<(), (String, ErrorKind)> {
    for _ in 0..CANCEL_POLLS {
        match groups.refreshes(group).await {
            Ok(list) if !list.iter().any(RefreshInfo::is_active) => return Ok(()),
            Ok(_) => tokio::time::sleep(CANCEL_POLL_INTERVAL).await,
            Err(e) => return Err((e.to_string(), e.kind)),
        }
    }
    let error = format!(
        "the cancelled refresh on {} did not stop within {} s",
        group.key(),
        (CANCEL_POLL_INTERVAL * CANCEL_POLLS).as_secs()
    );
    Err((error, ErrorKind::RefreshInProgress))
}
