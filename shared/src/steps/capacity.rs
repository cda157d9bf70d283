//! Standby capacity. A switch to region T raises each of T's groups to at least
//! `ceil(desired of its counterpart in the region switched away from × CAPACITY_PERCENT / 100)`,
//! never above MaxSize (regionpilot never raises MaxSize; the answer says `capped`). The
//! counterpart is the group of the same name in the source region, else the group at the
//! same position among that region's groups. Its capacity is read live when the source
//! answers, else from the snapshot the verifier records every run (a dead region's groups
//! cannot be described).
//!
//! Later, once the active region has been active for `SCALE_IN_DELAY_SECONDS` and is
//! healthy, the verifier returns every other region that regionpilot scaled up to its
//! recorded desired capacity. The active region is never scaled in.

use std::collections::BTreeMap;

use futures::future::join_all;
use tracing::{info, warn};

use crate::config::{Config, GroupRef};
use crate::controller::Controller;
use crate::error::{AwsError, ErrorKind, Result};
use crate::ports::{Deps, ScalingGroups};
use crate::region::Region;
use crate::state::{CapacityStatus, ControlState, GroupSizes, Millis, ScaleInIntent, ScaledUp};
use crate::transition::kind::{
    BoxFuture, Described, Kind, Scalable, ScalableKind, Sizes, StepKind, counterpart_of,
};
use crate::transition::plan::{Action, OutcomeFuture, RegionPlan, Stage, StepContext};

/// The kind: the target region's groups raised, when `CAPACITY_PERCENT` is above 0.
pub struct Capacity;

impl Kind for Capacity {
    type Outcome = CapacityStatus;
    const FIELD: &'static str = "capacity";

    fn summary(key: &str, outcome: &CapacityStatus, epoch: u64) -> String {
        match outcome {
            CapacityStatus::Raised {
                previous,
                desired,
                capped,
                ..
            } => format!(
                "{key}: desired capacity {previous} -> {desired}{} for epoch {epoch}",
                if *capped {
                    " (capped at its maximum)"
                } else {
                    ""
                }
            ),
            CapacityStatus::Sufficient {
                desired, wanted, ..
            } => format!("{key}: desired capacity {desired} covers {wanted}"),
            CapacityStatus::AtMax {
                desired, wanted, ..
            } => format!(
                "{key}: desired capacity {desired} is its maximum; {wanted} wanted (capped)"
            ),
            CapacityStatus::Skipped { reason } => format!("{key}: capacity left alone: {reason}"),
            CapacityStatus::Failed { error, .. } => format!("{key}: capacity: {error}"),
        }
    }

    fn metric(outcome: &CapacityStatus) -> Option<&'static str> {
        matches!(outcome, CapacityStatus::Raised { .. }).then_some("CapacityRaised")
    }
}

impl<D: Deps> StepKind<D> for Capacity {
    /// Every scalable target of the target region, whichever kind offers it (groups
    /// here, services in `steps/ecs.rs`).
    fn plan(&self, config: &Config, to: &Region, plan: &mut RegionPlan<D>) {
        if &plan.region != to || config.capacity.percent == 0 {
            return;
        }
        for target in scalables::<D>(config) {
            if target.region() == to {
                let key = target.key();
                plan.add(Stage::Act, &key, Box::new(CapacityStep { target }));
            }
        }
    }

    fn scalables(&self, config: &Config) -> Vec<Box<dyn Scalable<D>>> {
        config
            .auto_scaling_groups
            .iter()
            .map(|g| Box::new(GroupTarget(g.clone())) as Box<dyn Scalable<D>>)
            .collect()
    }
}

/// Every scalable target of every registered kind.
pub fn scalables<D: Deps>(config: &Config) -> Vec<Box<dyn Scalable<D>>> {
    crate::steps::kinds::<D>()
        .into_iter()
        .flat_map(|kind| kind.scalables(config))
        .collect()
}

/// An Auto Scaling group as the capacity step sees it.
pub struct GroupTarget(pub GroupRef);

const GROUP: ScalableKind = ScalableKind {
    check: "group_capacity",
    max_name: "MaxSize",
    read_call: ("autoscaling", "DescribeAutoScalingGroups"),
};

impl<D: Deps> Scalable<D> for GroupTarget {
    fn describe(&self) -> Described<'_> {
        Described {
            key: self.0.key(),
            region: &self.0.region,
            resource: self.0.resource(),
            kind: &GROUP,
        }
    }

    fn counterpart(&self, config: &Config, source: &Region) -> Option<Box<dyn Scalable<D>>> {
        counterpart(&config.auto_scaling_groups, &self.0, source)
            .map(|g| Box::new(GroupTarget(g.clone())) as Box<dyn Scalable<D>>)
    }

    fn sizes<'a>(
        &'a self,
        ports: &'a D,
    ) -> BoxFuture<'a, std::result::Result<Option<Sizes>, AwsError>> {
        Box::pin(async move {
            Ok(ports.groups().describe(&self.0).await?.map(|info| Sizes {
                min: info.min,
                desired: info.desired,
                max: info.max,
            }))
        })
    }

    fn set_desired<'a>(
        &'a self,
        ports: &'a D,
        desired: i32,
    ) -> BoxFuture<'a, std::result::Result<(), AwsError>> {
        Box::pin(ports.groups().set_desired(&self.0, desired))
    }
}

/// The group in `source` that stands for `group`: same name, else same position.
pub fn counterpart<'a>(
    groups: &'a [GroupRef],
    group: &GroupRef,
    source: &Region,
) -> Option<&'a GroupRef> {
    counterpart_of(groups, group, source, |g| &g.region, |g| g.name.clone())
}

/// The desired capacity the rule asks for: `ceil(source × percent / 100)`.
pub fn wanted(source_desired: i32, percent: u32) -> i32 {
    let product = i64::from(source_desired.max(0)) * i64::from(percent);
    i32::try_from((product + 99) / 100).unwrap_or(i32::MAX)
}

/// What to do with one target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Set desired capacity to `to` (`capped`: MaxSize held it below `wanted`).
    Raise { to: i32, wanted: i32, capped: bool },
    /// Already enough.
    Sufficient { wanted: i32 },
    /// Not enough, but already at MaxSize.
    AtMax { wanted: i32 },
}

pub fn decide(source_desired: i32, percent: u32, target: &Sizes) -> Scale {
    let wanted = wanted(source_desired, percent);
    if target.desired >= wanted {
        return Scale::Sufficient { wanted };
    }
    let to = wanted.min(target.max);
    if to <= target.desired {
        Scale::AtMax { wanted }
    } else {
        Scale::Raise {
            to,
            wanted,
            capped: to < wanted,
        }
    }
}

/// Raises one group or service of the target region to the capacity its counterpart had.
pub struct CapacityStep<D: Deps> {
    pub target: Box<dyn Scalable<D>>,
}

impl<D: Deps> Action<D> for CapacityStep<D> {
    type Outcome = CapacityStatus;
    const NAME: &'static str = "capacity";

    fn key(&self) -> String {
        self.target.key()
    }

    fn finished(&self, recorded: Option<&CapacityStatus>) -> bool {
        recorded.is_some_and(CapacityStatus::is_ok)
    }

    fn act<'a>(&'a self, cx: &'a StepContext<'a, D>) -> OutcomeFuture<'a, CapacityStatus> {
        Box::pin(raise(cx, self.target.as_ref()))
    }
}

async fn raise<D: Deps>(cx: &StepContext<'_, D>, target: &dyn Scalable<D>) -> CapacityStatus {
    let config = cx.config;
    let t = cx.transition;
    let key = target.key();
    let Some(source) = target.counterpart(config, &t.from) else {
        return CapacityStatus::Skipped {
            reason: format!("no counterpart in {}", t.from),
        };
    };
    let source_key = source.key();
    // The source may be the region that is down: one probe timeout for the live read (no
    // later than the failing region's deadline), then the snapshot. The target's own
    // read runs alongside.
    let limit = tokio::time::Instant::now() + config.timeouts.probe;
    let deadline = cx.failing_deadline.map_or(limit, |d| d.min(limit));
    let live = tokio::time::timeout_at(deadline, source.sizes(cx.ports));
    let (live, sizes) = tokio::join!(live, target.sizes(cx.ports));
    let (source_desired, origin) = match live {
        Ok(Ok(Some(sizes))) => (sizes.desired, "live"),
        other => {
            let (why, kind) = match other {
                Ok(Ok(None)) => ("does not exist".to_owned(), ErrorKind::NotFound),
                Ok(Err(e)) => (e.to_string(), e.kind),
                _ => (
                    format!("no answer within {} ms", config.timeouts.probe.as_millis()),
                    ErrorKind::Timeout,
                ),
            };
            match cx.state.capacity_snapshot.get(&source_key) {
                Some(sizes) => {
                    info!(target = %key, source = %source_key, "source capacity from the snapshot: {why}");
                    (sizes.desired, "snapshot")
                }
                None => {
                    // Failed, not skipped: reconcile tries again, and reads the source live
                    // once it answers.
                    return CapacityStatus::failed(
                        format!(
                            "the capacity of {source_key} is unknown: {why}, and no snapshot was recorded"
                        ),
                        kind,
                    );
                }
            }
        }
    };
    let sizes = match sizes {
        Ok(Some(sizes)) => sizes,
        Ok(None) => {
            return CapacityStatus::failed(
                format!("{key}: {} does not exist", target.describe().resource),
                ErrorKind::NotFound,
            );
        }
        Err(e) => return CapacityStatus::failed(e.to_string(), e.kind),
    };
    let percent = config.capacity.percent;
    let origin = origin.to_owned();
    match decide(source_desired, percent, &sizes) {
        Scale::Sufficient { wanted } => CapacityStatus::Sufficient {
            desired: sizes.desired,
            wanted,
            source: origin,
            counterpart: source_key,
        },
        Scale::AtMax { wanted } => {
            warn!(target = %key, desired = sizes.desired, wanted, max = sizes.max, "capacity capped: at its {}", target.describe().kind.max_name);
            CapacityStatus::AtMax {
                desired: sizes.desired,
                wanted,
                max: sizes.max,
                capped: true,
                source: origin,
                counterpart: source_key,
            }
        }
        Scale::Raise { to, wanted, capped } => {
            // Record what to return to before acting: a crash after the scale-up must not
            // lose the scale-in. The first scale-up's figure is kept.
            let scaled = ScaledUp {
                previous_desired: sizes.desired,
                epoch: t.epoch,
                at: cx.now(),
                scaling_in: None,
            };
            // Home is never scaled in by regionpilot (its own scaling policies own it): a
            // failback may raise it, and records nothing to undo.
            let record = target.region() != config.home();
            if record && let Err(e) = cx.writes.record_scale_up(&key, &scaled).await {
                let kind = match &e {
                    crate::error::Error::Aws(aws) => aws.kind,
                    crate::error::Error::Contention { .. } => ErrorKind::ConditionFailed,
                    _ => ErrorKind::Other,
                };
                return CapacityStatus::failed(format!("could not record the scale-up: {e}"), kind);
            }
            match target.set_desired(cx.ports, to).await {
                Ok(()) => {
                    info!(target = %key, previous = sizes.desired, desired = to, wanted, capped, "standby capacity raised");
                    CapacityStatus::Raised {
                        previous: sizes.desired,
                        desired: to,
                        wanted,
                        max: sizes.max,
                        capped,
                        source: origin,
                        counterpart: source_key,
                    }
                }
                Err(e) => CapacityStatus::failed(e.to_string(), e.kind),
            }
        }
    }
}

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

    fn group(region_name: &str, name: &str) -> GroupRef {
        GroupRef {
            region: region(region_name),
            name: name.into(),
        }
    }

    fn info(desired: i32, max: i32) -> Sizes {
        Sizes {
            min: 1,
            desired,
            max,
        }
    }

    #[test]
    fn counterpart_is_the_same_name_else_the_same_position() {
        let groups = vec![
            group("us-east-1", "web"),
            group("us-east-1", "worker"),
            group("us-west-2", "worker"),
            group("us-west-2", "web-dr"),
        ];
        let east = region("us-east-1");
        assert_eq!(
            counterpart(&groups, &groups[2], &east),
            Some(&groups[1]),
            "same name wins over position"
        );
        // web-dr is second in us-west-2; us-east-1's second group is worker.
        assert_eq!(counterpart(&groups, &groups[3], &east), Some(&groups[1]));
        let lone = vec![
            group("us-east-1", "web"),
            group("us-west-2", "a"),
            group("us-west-2", "b"),
        ];
        assert_eq!(counterpart(&lone, &lone[2], &east), None, "no second group");
    }

    #[test]
    fn the_rule_rounds_up_and_max_size_caps_it() {
        type Case = (i32, u32, i32, i32, Scale);
        let cases: &[Case] = &[
            // source desired, percent, target desired, target max, expected
            (
                20,
                100,
                1,
                30,
                Scale::Raise {
                    to: 20,
                    wanted: 20,
                    capped: false,
                },
            ),
            (
                20,
                50,
                1,
                30,
                Scale::Raise {
                    to: 10,
                    wanted: 10,
                    capped: false,
                },
            ),
            (
                5,
                50,
                1,
                30,
                Scale::Raise {
                    to: 3,
                    wanted: 3,
                    capped: false,
                },
            ),
            (
                20,
                100,
                1,
                12,
                Scale::Raise {
                    to: 12,
                    wanted: 20,
                    capped: true,
                },
            ),
            (20, 100, 12, 12, Scale::AtMax { wanted: 20 }),
            (10, 100, 10, 12, Scale::Sufficient { wanted: 10 }),
            (10, 100, 15, 20, Scale::Sufficient { wanted: 10 }),
            (0, 100, 1, 4, Scale::Sufficient { wanted: 0 }),
            (
                3,
                1000,
                2,
                100,
                Scale::Raise {
                    to: 30,
                    wanted: 30,
                    capped: false,
                },
            ),
        ];
        for (source, percent, desired, max, expected) in cases {
            assert_eq!(
                decide(*source, *percent, &info(*desired, *max)),
                *expected,
                "source {source} × {percent}% onto desired {desired} max {max}"
            );
        }
        assert_eq!(wanted(i32::MAX, 1000), i32::MAX, "no overflow");
    }

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
