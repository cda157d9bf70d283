//! Standby capacity, for every kind's scalable targets (Auto Scaling groups here, ECS
//! services in `ecs.rs`). A switch to region T raises each of T's targets to at least
//! `ceil(desired of its counterpart in the region switched away from × CAPACITY_PERCENT / 100)`,
//! never above its maximum (MaxSize, MaxCapacity: regionpilot never raises it; the answer
//! says `capped`). The counterpart is the target of the same name in the source region,
//! else the one at the same position among that region's. Its capacity is read live when
//! the source answers, else from the snapshot the verifier records every run (a dead
//! region's targets cannot be read).
//!
//! Later the verifier scales them back in (`verifier/scale_in.rs`).

use tracing::{info, warn};

use crate::config::{Config, GroupRef};
use crate::error::{AwsError, ErrorKind};
use crate::ports::{Deps, ScalingGroups};
use crate::region::Region;
use crate::state::{CapacityStatus, ScaledUp};
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
}
