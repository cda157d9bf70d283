//! The scale-in: after a switch to X, regions regionpilot scaled up return to their
//! recorded desired capacity once X has been active for `SCALE_IN_DELAY_SECONDS` and is
//! healthy. The verifier does it, for every kind's scalable targets (groups, services),
//! and never in the active region; and it records every target's sizes each run (the
//! snapshot a switch falls back on when its source cannot be read).

use std::collections::BTreeMap;

use futures::future::join_all;
use tracing::{info, warn};

use crate::controller::Controller;
use crate::error::Result;
use crate::ports::Deps;
use crate::state::{ControlState, GroupSizes, Millis, ScaleInIntent, ScaledUp};
use crate::steps::capacity::scalables;
use crate::transition::kind::Scalable;

impl<D: Deps> Controller<D> {
    /// Puts a group whose scale-in a switch overtook back to the capacity it had, and
    /// clears the intent; a failure leaves the intent for the next run.
    async fn restore_scale_in(
        &self,
        target: &dyn Scalable<D>,
        intent: &ScaleInIntent,
        report: &mut CapacityReport,
    ) -> Result<()> {
        let key = target.key();
        match target.set_desired(&self.ports, intent.from).await {
            Ok(()) => {
                info!(group = %key, desired = intent.from, "scale-in overtaken by a switch; capacity put back");
                report.restored.push(format!(
                    "{key}: a switch landed during its scale-in to {}; desired capacity put back to {}",
                    intent.to, intent.from
                ));
                self.update(|s| {
                    if let Some(record) = s.scaled_up.get_mut(&key)
                        && record.scaling_in.as_ref() == Some(intent)
                    {
                        record.scaling_in = None;
                    }
                })
                .await?;
            }
            Err(e) => {
                warn!(group = %key, error = %e, "could not put back a group whose scale-in a switch overtook; the next run tries again");
                report
                    .failed
                    .push(format!("{key}: putting back to {}: {e}", intent.from));
            }
        }
        Ok(())
    }
}

/// What the verifier's capacity round did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CapacityReport {
    /// Groups returned to their pre-scale-up capacity.
    pub scaled_in: Vec<String>,
    /// Scale-ins still waiting, and why.
    pub waiting: Vec<String>,
    /// Groups put back to their capacity because a switch overtook their scale-in.
    pub restored: Vec<String>,
    pub failed: Vec<String>,
}

/// A scale-in that is due: the group, and the desired capacity to return to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleIn {
    pub group: String,
    pub to: i32,
}

/// Which recorded scale-ups may be undone now. Never the active region's; only once the
/// active region has been active for `delay` and is healthy.
pub fn due_scale_ins(
    state: &ControlState,
    now: Millis,
    delay: std::time::Duration,
    active_healthy: bool,
) -> (Vec<ScaleIn>, Vec<String>) {
    let mut due = Vec::new();
    let mut waiting = Vec::new();
    let active_since = state.last_switch_at().unwrap_or(0);
    let active_for = now.saturating_sub(active_since);
    for (key, record) in &state.scaled_up {
        let in_active = key
            .split_once('/')
            .is_some_and(|(region, _)| region == state.active_region.as_str());
        if in_active {
            continue;
        }
        if active_for < delay.as_millis() as u64 {
            waiting.push(format!(
                "{key}: scale-in to {} after {}s of {} active ({}s so far, SCALE_IN_DELAY_SECONDS)",
                record.previous_desired,
                delay.as_secs(),
                state.active_region,
                active_for / 1000
            ));
        } else if !active_healthy {
            waiting.push(format!(
                "{key}: scale-in waits until {} is healthy",
                state.active_region
            ));
        } else {
            due.push(ScaleIn {
                group: key.clone(),
                to: record.previous_desired,
            });
        }
    }
    (due, waiting)
}

impl<D: Deps> Controller<D> {
    /// The verifier's capacity round: records every group's sizes (the snapshot a switch
    /// falls back on when its source cannot be described), and scales in what is due.
    pub async fn capacity_round(&self, state: &ControlState) -> Result<CapacityReport> {
        let mut report = CapacityReport::default();
        let targets: BTreeMap<String, Box<dyn Scalable<D>>> = scalables::<D>(&self.config)
            .into_iter()
            .map(|t| (t.key(), t))
            .collect();
        let described = join_all(
            targets
                .iter()
                .map(|(key, t)| async move { (key.clone(), t.sizes(&self.ports).await) }),
        )
        .await;
        let now = self.now();
        // Each target as read this run; the scale-ins below use the same answers.
        let described: BTreeMap<String, _> = described.into_iter().collect();
        let sizes: BTreeMap<&String, GroupSizes> = described
            .iter()
            .filter_map(|(key, result)| match result {
                Ok(Some(sizes)) => Some((key, GroupSizes::of(sizes, now))),
                _ => None,
            })
            .collect();
        let is_new = |snapshot: &BTreeMap<String, GroupSizes>, key: &String, new: &GroupSizes| {
            snapshot.get(key).is_none_or(|old| !old.same_sizes(new))
        };
        if sizes
            .iter()
            .any(|(key, new)| is_new(&state.capacity_snapshot, key, new))
        {
            self.update(|s| {
                for (key, new) in &sizes {
                    if is_new(&s.capacity_snapshot, key, new) {
                        s.capacity_snapshot.insert((*key).clone(), new.clone());
                    }
                }
            })
            .await?;
        }

        if state.scaled_up.is_empty() {
            return Ok(report);
        }
        // A scale-in an earlier run began and a switch overtook (the run died, or its
        // putting back failed): the group goes back first.
        for (key, record) in &state.scaled_up {
            if let Some(intent) = record
                .scaling_in
                .as_ref()
                .filter(|i| i.epoch != state.epoch)
                && let Some(target) = targets.get(key)
            {
                self.restore_scale_in(target.as_ref(), intent, &mut report)
                    .await?;
            }
        }
        let round = crate::evidence::health::probe_round(
            std::slice::from_ref(&state.active_region),
            self.ports.probe(),
            self.ports.clock(),
            self.config.timeouts.probe,
        )
        .await;
        let active_healthy = round.regions.first().is_some_and(|r| r.healthy);
        let (due, waiting) = due_scale_ins(
            state,
            now,
            self.config.capacity.scale_in_delay,
            active_healthy,
        );
        report.waiting = waiting;
        let mut finished = Vec::new();
        for scale_in in due {
            let Some(target) = targets.get(&scale_in.group) else {
                // No longer configured: nothing regionpilot may touch.
                finished.push(scale_in.group.clone());
                continue;
            };
            let info = match described.get(&scale_in.group) {
                Some(Ok(Some(info))) => info,
                // Gone: nothing to scale in.
                Some(Ok(None)) | None => {
                    finished.push(scale_in.group.clone());
                    continue;
                }
                Some(Err(e)) => {
                    report.failed.push(format!("{}: {e}", scale_in.group));
                    continue;
                }
            };
            let to = scale_in.to.max(info.min);
            if info.desired <= to {
                finished.push(scale_in.group.clone());
                continue;
            }
            // A switch may land at any moment: the intent is written through the
            // compare-and-swap first, and only while the state is still the one the
            // decision read; after the call it is read again, and a switch that landed
            // meanwhile gets the group put back.
            let intent = ScaleInIntent {
                from: info.desired,
                to,
                epoch: state.epoch,
            };
            let decided = state.scaled_up.get(&scale_in.group).cloned();
            let written = self
                .update(|s| {
                    if s.active_region == state.active_region
                        && s.epoch == state.epoch
                        && s.scaled_up.get(&scale_in.group) == decided.as_ref()
                        && let Some(record) = s.scaled_up.get_mut(&scale_in.group)
                    {
                        record.scaling_in = Some(intent.clone());
                    }
                })
                .await?;
            if written
                .scaled_up
                .get(&scale_in.group)
                .and_then(|r| r.scaling_in.as_ref())
                != Some(&intent)
            {
                report.waiting.push(format!(
                    "{}: a switch happened during this run; scale-in decided again next run",
                    scale_in.group
                ));
                continue;
            }
            if let Err(e) = target.set_desired(&self.ports, to).await {
                // It may have been applied all the same: the intent stays, so the next
                // run finds the group scaled in and forgets the record, or decides again,
                // or (a switch having landed) puts it back.
                report.failed.push(format!("{}: {e}", scale_in.group));
                continue;
            }
            let after = self.load().await?.value;
            if after.epoch != state.epoch || after.active_region != state.active_region {
                warn!(group = %scale_in.group, from = info.desired, to, "a switch landed during the scale-in; putting the group back");
                self.restore_scale_in(target.as_ref(), &intent, &mut report)
                    .await?;
                continue;
            }
            info!(group = %scale_in.group, from = info.desired, to, "scaled back in after the scale-in delay");
            report.scaled_in.push(format!(
                "{}: desired capacity {} -> {to}",
                scale_in.group, info.desired
            ));
            finished.push(scale_in.group.clone());
        }
        if !finished.is_empty() {
            self.update(|s| {
                for key in &finished {
                    // Only the record this run acted on: a newer scale-up keeps its own.
                    let acted_on = |r: &ScaledUp| {
                        state
                            .scaled_up
                            .get(key)
                            .is_some_and(|d| d.epoch == r.epoch && d.at == r.at)
                    };
                    if s.scaled_up.get(key).is_some_and(acted_on) {
                        s.scaled_up.remove(key);
                    }
                }
            })
            .await?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::region;

    fn state_with(active: &str, switched_at: Millis) -> ControlState {
        let mut state = ControlState::initial(region(active));
        state.epoch = 1;
        state.transition = Some(crate::testing::transition(
            if active == "us-east-1" {
                "us-west-2"
            } else {
                "us-east-1"
            },
            active,
            switched_at,
        ));
        state.scaled_up.insert(
            "us-west-2/app".into(),
            ScaledUp {
                scaling_in: None,
                previous_desired: 1,
                epoch: 1,
                at: switched_at,
            },
        );
        state
    }

    #[test]
    fn scale_in_waits_for_the_delay_and_health_and_never_touches_the_active_region() {
        let delay = std::time::Duration::from_secs(900);
        let at = 1_000_000;
        // Back home: us-west-2 was scaled up by the failover.
        let home = state_with("us-east-1", at);
        let (due, waiting) = due_scale_ins(&home, at + 899_000, delay, true);
        assert!(due.is_empty());
        assert!(waiting[0].contains("SCALE_IN_DELAY_SECONDS"), "{waiting:?}");
        let (due, waiting) = due_scale_ins(&home, at + 900_000, delay, false);
        assert!(due.is_empty());
        assert!(waiting[0].contains("healthy"), "{waiting:?}");
        let (due, _) = due_scale_ins(&home, at + 900_000, delay, true);
        assert_eq!(
            due,
            vec![ScaleIn {
                group: "us-west-2/app".into(),
                to: 1
            }]
        );
        // Still failed over to us-west-2: its capacity is never taken away.
        let away = state_with("us-west-2", at);
        let (due, waiting) = due_scale_ins(&away, at + 10 * 900_000, delay, true);
        assert!(due.is_empty() && waiting.is_empty(), "{due:?} {waiting:?}");
    }
}
