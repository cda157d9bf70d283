//! Readiness: would a failover work now? The verifier answers every
//! `READINESS_INTERVAL_SECONDS` (0: every run) and keeps the answer in the control state,
//! so `status` shows it without asking AWS again and the interval is measured from it.
//!
//! Each check passes or fails with its reason, in an operator's words:
//! - `parameter`: the active-region parameter exists in every region and names the active
//!   region;
//! - `group_capacity`: each configured group exists, and in every region a failover could
//!   go to (any but the active one), its MaxSize covers what the capacity step would ask
//!   for (the same rule, `capacity::decide`, against its counterpart in the active region);
//! - `canary`: the canary item is readable in every region;
//! - `replication_lag`: a heartbeat written in the active region reaches every other
//!   region, and one written there reaches the active region, within
//!   `FAILBACK_MAX_LAG_SECONDS` (and never waiting longer than
//!   `FAILBACK_DRAIN_WAIT_SECONDS`, as the failback drain);
//! - `control_table_pitr`: the control table has point-in-time recovery;
//! - `hook_function`: each `HOOKS` function exists in its region (`GetFunction`).
//! - `vantage_points`: each region can be judged by at least two vantage points heard
//!   from in the last hour (a probe does not judge its own region), and by at least
//!   `QUORUM` when that is a number; with fewer, a partition between the one vantage
//!   point and a region would look like that region's outage.
//!
//! Every check runs concurrently, each call under the configured timeouts, so a region that
//! does not answer costs one timeout and fails its own checks with the error.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::Config;
use crate::controller::Controller;
use crate::error::AwsError;
use crate::evidence::health::within;
use crate::evidence::samples::ProbeSamples;
use crate::ports::{
    ControlStore, Deps, HealthProbe, Heartbeats, Hooks, ParameterStore, ProbeResult,
};
use crate::region::Region;
use crate::state::{ControlState, Millis};
use crate::steps::capacity::{Scale, decide, scalables};
use crate::transition::kind::{Scalable, Sizes};

/// The checks' names, as `status` and the verifier's answer show them.
pub const PARAMETER: &str = "parameter";
pub const GROUP_CAPACITY: &str = "group_capacity";
pub const CANARY: &str = "canary";
pub const REPLICATION_LAG: &str = "replication_lag";
pub const CONTROL_TABLE_PITR: &str = "control_table_pitr";
pub const HOOK_FUNCTION: &str = "hook_function";
pub const VANTAGE_POINTS: &str = "vantage_points";

/// The `vantage_points` check of `region`: at least two vantage points (and `QUORUM`,
/// when a number) heard from in the last hour can judge it.
pub fn vantage_check(
    config: &Config,
    all: &[ProbeSamples],
    region: &Region,
    now: Millis,
) -> ReadinessCheck {
    use crate::evidence::quorum::{self, QuorumRule};
    let judged = quorum::judge(all, region, now, &config.quorum);
    let judges: Vec<String> = judged
        .verdicts
        .iter()
        .map(|v| v.vantage.to_string())
        .collect();
    let listed = if judges.is_empty() {
        "none".to_owned()
    } else {
        judges.join(", ")
    };
    // Where one more would judge this region: not in it, and not where a probe already
    // reports (a second probe there would share that one's item in the control table).
    let mut taken = quorum::heard(all, now);
    if !taken.contains(region) {
        taken.push(region.clone());
    }
    taken.sort();
    let taken: Vec<String> = taken.iter().map(ToString::to_string).collect();
    let add = format!(
        "add a vantage point in a region other than {}: this template with DeploymentRole=regional in an application region (single mode), or DeploymentRole=vantage in any other region, with ControlTableName={} and ControlTableRegion={}",
        taken.join(", "),
        config.control_table,
        config.control_region
    );
    let (passed, reason) = match config.quorum.rule {
        // One judge or none: its alarm decides alone, as before quorums.
        _ if judges.len() < 2 => (
            false,
            format!(
                "only {} vantage point(s) heard from in the last hour can judge {region} ({listed}; a probe does not judge its own region): a partition between it and {region} would look like {region}'s outage; {add}",
                judges.len()
            ),
        ),
        QuorumRule::AtLeast(n) if judges.len() < n as usize => (
            false,
            format!(
                "QUORUM is {n} but only {} vantage points heard from in the last hour can judge {region} ({listed}): no alarm could fail over away from it; lower QUORUM or {add}",
                judges.len()
            ),
        ),
        _ => (
            true,
            format!(
                "{} vantage points can judge {region} ({listed}); a quorum is {}",
                judges.len(),
                judged.required
            ),
        ),
    };
    ReadinessCheck::new(VANTAGE_POINTS, region.as_str(), passed, reason)
}

/// How often a heartbeat's arrival is looked for, as the failback drain does.
const LAG_POLL: Duration = Duration::from_millis(250);

// The evaluation's stored form lives with the control state that keeps it.
pub use crate::state::{Readiness, ReadinessCheck};

/// What one verifier run's evaluation found, for its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadinessRun {
    /// `ready` differs from the previous stored evaluation, or there was none: the
    /// `Readiness Changed` event goes out on it.
    pub changed: bool,
    /// `ready` of the previous stored evaluation.
    pub previous_ready: Option<bool>,
    #[serde(flatten)]
    pub readiness: Readiness,
}

/// An evaluation is due when none is stored, `interval` has passed since the stored one,
/// or the clock went back behind it. A switch does not make it due: the stored one says
/// which active region it was made against, and the next is at most one interval away.
pub fn due(previous: Option<&Readiness>, now: Millis, interval: Duration) -> bool {
    previous
        .is_none_or(|r| now < r.evaluated_at || now - r.evaluated_at >= interval.as_millis() as u64)
}

/// The capacity check of one scalable target (`group_capacity` for a group,
/// `service_capacity` for a service) against `active`: it exists, and outside the active
/// region a failover there would not be capped by its maximum (`MaxSize`,
/// `MaxCapacity`). `described` holds every target as read this round; `state` holds the
/// snapshot a failover falls back on when the active region's counterpart cannot be read.
pub fn capacity_check<D: Deps>(
    target: &dyn Scalable<D>,
    config: &Config,
    active: &Region,
    described: &BTreeMap<String, Result<Option<Sizes>, AwsError>>,
    state: &ControlState,
) -> ReadinessCheck {
    let about = target.describe();
    let (key, region, kind) = (about.key.clone(), about.region, about.kind);
    let percent = config.capacity.percent;
    let max_name = kind.max_name;
    let max_text = |max: i32| {
        if max == i32::MAX {
            format!("no {max_name}")
        } else {
            format!("{max_name} {max}")
        }
    };
    let check = |passed, reason| ReadinessCheck::new(kind.check, key.clone(), passed, reason);
    let sizes = match described.get(&key) {
        Some(Ok(Some(sizes))) => sizes,
        Some(Ok(None)) => {
            return check(
                false,
                format!("{key}: {} does not exist in {region}", about.resource),
            );
        }
        Some(Err(e)) => return check(false, format!("{key}: {e}")),
        None => return check(false, format!("{key}: not described")),
    };
    if region == active {
        return check(
            true,
            format!(
                "{key}: exists in the active region (desired {}, {})",
                sizes.desired,
                max_text(sizes.max)
            ),
        );
    }
    if percent == 0 {
        return check(
            true,
            format!(
                "{key}: exists; CAPACITY_PERCENT is 0, so a failover to {region} leaves its capacity alone"
            ),
        );
    }
    let Some(source) = target.counterpart(config, active) else {
        return check(
            true,
            format!(
                "{key}: exists; it has no counterpart in {active}, so a failover to {region} leaves its capacity alone"
            ),
        );
    };
    let source_key = source.key();
    let (source_desired, origin) = match described.get(&source_key) {
        Some(Ok(Some(sizes))) => (sizes.desired, String::new()),
        other => {
            let why = match other {
                Some(Ok(None)) => format!("{source_key} does not exist"),
                Some(Err(e)) => e.to_string(),
                _ => format!("{source_key} was not described"),
            };
            match state.capacity_snapshot.get(&source_key) {
                Some(snapshot) => (
                    snapshot.desired,
                    format!(", as the verifier's snapshot recorded it: {why}"),
                ),
                None => {
                    return check(
                        false,
                        format!(
                            "{key}: what a failover to {region} would ask for is unknown: {why}, and no snapshot was recorded"
                        ),
                    );
                }
            }
        }
    };
    let because =
        format!("CAPACITY_PERCENT {percent} of {source_key}'s desired {source_desired}{origin}");
    match decide(source_desired, percent, sizes) {
        Scale::Sufficient { wanted }
        | Scale::Raise {
            wanted,
            capped: false,
            ..
        } => check(
            true,
            format!(
                "{key}: {} covers the {wanted} a failover to {region} would ask for ({because})",
                max_text(sizes.max)
            ),
        ),
        Scale::AtMax { wanted }
        | Scale::Raise {
            wanted,
            capped: true,
            ..
        } => check(
            false,
            format!(
                "{key}: {} is below the {wanted} a failover to {region} would ask for ({because})",
                max_text(sizes.max)
            ),
        ),
    }
}

impl<D: Deps> Controller<D> {
    /// The verifier's readiness round: evaluates when due, stores the result, and emits
    /// `Ready` (1 or 0, from the newest evaluation, every run, so an alarm on it never
    /// lacks data). Never fails: a result that cannot be stored is logged, answered, and
    /// evaluated again next run. `None` when no evaluation was due.
    /// `vantage` is this run's read of the vantage points' samples.
    pub async fn readiness_round(
        &self,
        state: &ControlState,
        vantage: &Result<Vec<ProbeSamples>, String>,
    ) -> Option<ReadinessRun> {
        let previous = state.readiness.as_ref();
        if !due(previous, self.now(), self.config.readiness_interval) {
            if let Some(stored) = previous {
                self.emit_ready(stored.ready);
            }
            return None;
        }
        let readiness = self.evaluate_readiness(state, vantage).await;
        let previous_ready = previous.map(|r| r.ready);
        let changed = previous_ready != Some(readiness.ready);
        let stored = readiness.clone();
        // A newer evaluation by a concurrent run is kept.
        if let Err(e) = self
            .update(|s| {
                if s.readiness
                    .as_ref()
                    .is_none_or(|r| r.evaluated_at <= stored.evaluated_at)
                {
                    s.readiness = Some(stored.clone());
                }
            })
            .await
        {
            warn!(error = %e, "the readiness evaluation could not be stored; it runs again next time");
        }
        self.emit_ready(readiness.ready);
        if readiness.ready {
            info!(
                changed,
                checks = readiness.checks.len(),
                "ready: a failover would work now"
            );
        } else {
            let failing: Vec<&str> = readiness.failing().map(|c| c.reason.as_str()).collect();
            warn!(
                changed,
                ?failing,
                "not ready: a failover would not work now"
            );
        }
        Some(ReadinessRun {
            changed,
            previous_ready,
            readiness,
        })
    }

    fn emit_ready(&self, ready: bool) {
        crate::views::metrics::emit(&crate::views::metrics::signal(
            &self.config.metrics_namespace,
            "Ready",
            "None",
            if ready { 1.0 } else { 0.0 },
            &[],
            self.now(),
        ));
    }

    /// Runs every check now, concurrently, against the active region of `state`; the
    /// vantage points' from `vantage`, as read this run.
    pub async fn evaluate_readiness(
        &self,
        state: &ControlState,
        vantage: &Result<Vec<ProbeSamples>, String>,
    ) -> Readiness {
        let evaluated_at = self.now();
        let active = &state.active_region;
        let (parameters, groups, canaries, lags, pitr, hooks) = tokio::join!(
            self.parameter_checks(active),
            self.capacity_checks(state),
            self.canary_checks(),
            self.lag_checks(active),
            self.pitr_check(),
            self.hook_checks(),
        );
        let mut checks = parameters;
        checks.extend(groups);
        checks.extend(canaries);
        checks.extend(lags);
        checks.push(pitr);
        checks.extend(hooks);
        checks.extend(self.vantage_checks(vantage));
        Readiness::of(evaluated_at, active.clone(), checks)
    }

    async fn parameter_checks(&self, active: &Region) -> Vec<ReadinessCheck> {
        let name = &self.config.active_region_parameter;
        let budget = self.config.timeouts.call_budget();
        join_all(self.config.regions.iter().map(|region| async move {
            let read = within(
                Instant::now() + budget,
                "ssm",
                "GetParameter",
                region,
                self.ports.parameters().get(region, name),
            )
            .await;
            let (passed, reason) = match read {
                Ok(Some(value)) if value == active.as_str() => (
                    true,
                    format!("{name} in {region} is {active}, as the control state says"),
                ),
                Ok(Some(value)) => (
                    false,
                    format!(
                        "{name} in {region} is {} but the active region is {active}",
                        crate::text::clip(&value, 40)
                    ),
                ),
                Ok(None) => (false, format!("{name} does not exist in {region}")),
                Err(e) => (false, format!("cannot read {name} in {region}: {e}")),
            };
            ReadinessCheck::new(PARAMETER, region.as_str(), passed, reason)
        }))
        .await
    }

    /// The capacity check of every scalable target (groups, services), each read once.
    async fn capacity_checks(&self, state: &ControlState) -> Vec<ReadinessCheck> {
        let targets = scalables::<D>(&self.config);
        let budget = self.config.timeouts.call_budget();
        let described: BTreeMap<String, Result<Option<Sizes>, AwsError>> =
            join_all(targets.iter().map(|t| async move {
                let (service, operation) = t.describe().kind.read_call;
                let sizes = within(
                    Instant::now() + budget,
                    service,
                    operation,
                    t.region(),
                    t.sizes(&self.ports),
                )
                .await;
                (t.key(), sizes)
            }))
            .await
            .into_iter()
            .collect();
        targets
            .iter()
            .map(|t| {
                capacity_check(
                    t.as_ref(),
                    &self.config,
                    &state.active_region,
                    &described,
                    state,
                )
            })
            .collect()
    }

    async fn canary_checks(&self) -> Vec<ReadinessCheck> {
        let budget = self.config.timeouts.probe;
        let key = &self.config.health_key;
        let table = &self.config.health_table;
        join_all(self.config.regions.iter().map(|region| async move {
            let result = tokio::time::timeout(budget, self.ports.probe().check(region))
                .await
                .unwrap_or_else(|_| ProbeResult::timed_out(region, budget));
            let item = format!("{}={}", key.attribute, key.value);
            let (passed, reason) = match (&result.error, result.item_found) {
                (Some(error), _) => (
                    false,
                    format!("cannot read the canary {item} in {region}: {error}"),
                ),
                (None, true) => (
                    true,
                    format!(
                        "the canary {item} in the health table {table} in {region} read in {} ms",
                        result.latency_ms
                    ),
                ),
                (None, false) => (
                    false,
                    format!(
                        "the canary item {item} is not in the health table {table} in {region}"
                    ),
                ),
            };
            ReadinessCheck::new(CANARY, region.as_str(), passed, reason)
        }))
        .await
    }

    /// Writes a heartbeat in every region once, then waits, bounded, for each to arrive:
    /// the active region's in every other region, and every other region's in the active
    /// region.
    async fn lag_checks(&self, active: &Region) -> Vec<ReadinessCheck> {
        let budget = self.config.timeouts.call_budget();
        let written: BTreeMap<&Region, Result<Millis, AwsError>> =
            join_all(self.config.regions.iter().map(|region| async move {
                let stamp = self.now();
                let write = within(
                    Instant::now() + budget,
                    "dynamodb",
                    "PutItem",
                    region,
                    self.ports.probe().write(region, stamp),
                )
                .await;
                (region, write.map(|()| stamp))
            }))
            .await
            .into_iter()
            .collect();
        let pairs: Vec<(&Region, &Region)> = self
            .config
            .regions
            .iter()
            .filter(|r| *r != active)
            .flat_map(|other| [(active, other), (other, active)])
            .collect();
        join_all(pairs.into_iter().map(|(from, to)| {
            let written = written.get(from).cloned();
            async move {
                let subject = format!("{from}->{to}");
                let (passed, reason) = match written {
                    Some(Ok(stamp)) => self.arrival(from, to, stamp).await,
                    Some(Err(e)) => (
                        false,
                        format!("cannot write the heartbeat of {from} in {from}: {e}"),
                    ),
                    None => (false, format!("no heartbeat written in {from}")),
                };
                ReadinessCheck::new(REPLICATION_LAG, subject, passed, reason)
            }
        }))
        .await
    }

    /// Whether `from`'s heartbeat stamped `stamp` shows up in `to` within the lag limit.
    async fn arrival(&self, from: &Region, to: &Region, stamp: Millis) -> (bool, String) {
        let policy = self.config.failback;
        let limit = policy.max_lag.as_secs();
        let wait = policy.max_lag.min(policy.drain_wait);
        let budget = self.config.timeouts.probe;
        let started = Instant::now();
        loop {
            let read = within(
                Instant::now() + budget,
                "dynamodb",
                "GetItem",
                to,
                self.ports.probe().read(to, from, false),
            )
            .await;
            let seconds = started.elapsed().as_secs_f64();
            let last = match read {
                Ok(Some(seen)) if seen >= stamp && seconds <= policy.max_lag.as_secs_f64() => {
                    return (
                        true,
                        format!(
                            "a heartbeat written in {from} arrived in {to} after {seconds:.1}s (FAILBACK_MAX_LAG_SECONDS {limit})"
                        ),
                    );
                }
                Ok(Some(seen)) if seen >= stamp => {
                    return (
                        false,
                        format!(
                            "a heartbeat written in {from} took {seconds:.1}s to arrive in {to}, over FAILBACK_MAX_LAG_SECONDS ({limit})"
                        ),
                    );
                }
                Ok(_) => None,
                // A region that does not answer will not answer on the next poll either.
                Err(e) if !e.kind.region_answered() => {
                    return (
                        false,
                        format!("cannot read the heartbeat of {from} in {to}: {e}"),
                    );
                }
                Err(e) => Some(e),
            };
            if started.elapsed() + LAG_POLL > wait {
                let bound = if wait < policy.max_lag {
                    format!(
                        "FAILBACK_DRAIN_WAIT_SECONDS ({}s; FAILBACK_MAX_LAG_SECONDS is {limit})",
                        wait.as_secs()
                    )
                } else {
                    format!("FAILBACK_MAX_LAG_SECONDS ({limit}s)")
                };
                let error = last
                    .map(|e| format!("; last read: {e}"))
                    .unwrap_or_default();
                return (
                    false,
                    format!(
                        "a heartbeat written in {from} did not arrive in {to} within {bound}{error}"
                    ),
                );
            }
            tokio::time::sleep(LAG_POLL).await;
        }
    }

    /// A hook that does not exist would fail at every switch, when it matters.
    async fn hook_checks(&self) -> Vec<ReadinessCheck> {
        let budget = self.config.timeouts.call_budget();
        join_all(self.config.hooks.hooks.iter().map(|hook| async move {
            let found = within(
                Instant::now() + budget,
                "lambda",
                "GetFunction",
                &hook.region,
                self.ports.hooks().exists(hook),
            )
            .await;
            let (passed, reason) = match found {
                Ok(true) => (
                    true,
                    format!(
                        "the {} hook {} exists in {}",
                        hook.stage, hook.function, hook.region
                    ),
                ),
                Ok(false) => (
                    false,
                    format!(
                        "the {} hook {} does not exist in {}: a switch would fail to call it; deploy it or remove it from HOOKS",
                        hook.stage, hook.function, hook.region
                    ),
                ),
                Err(e) => (
                    false,
                    format!("cannot tell whether the hook {} exists: {e}", hook.function),
                ),
            };
            ReadinessCheck::new(HOOK_FUNCTION, hook.key(), passed, reason)
        }))
        .await
    }

    /// One check per region: who can judge it, from the vantage points' samples.
    fn vantage_checks(&self, vantage: &Result<Vec<ProbeSamples>, String>) -> Vec<ReadinessCheck> {
        let all = match vantage {
            Ok(all) => all,
            Err(why) => {
                let reason = format!("cannot read the vantage points' samples: {why}");
                return self
                    .config
                    .regions
                    .iter()
                    .map(|r| ReadinessCheck::new(VANTAGE_POINTS, r.as_str(), false, reason.clone()))
                    .collect();
            }
        };
        let now = self.now();
        self.config
            .regions
            .iter()
            .map(|region| vantage_check(&self.config, all, region, now))
            .collect()
    }

    async fn pitr_check(&self) -> ReadinessCheck {
        let table = &self.config.control_table;
        let region = &self.config.own_region;
        let result = within(
            Instant::now() + self.config.timeouts.call_budget(),
            "dynamodb",
            "DescribeContinuousBackups",
            region,
            self.ports.control().point_in_time_recovery(),
        )
        .await;
        let (passed, reason) = match result {
            Ok(true) => (
                true,
                format!("point-in-time recovery is on for the control table {table} in {region}"),
            ),
            Ok(false) => (
                false,
                format!(
                    "point-in-time recovery is off for the control table {table} in {region}: a bad write to the control state could not be undone; turn it on (PointInTimeRecoveryEnabled)"
                ),
            ),
            Err(e) => (
                false,
                format!(
                    "cannot tell whether the control table {table} has point-in-time recovery: {e}"
                ),
            ),
        };
        ReadinessCheck::new(
            CONTROL_TABLE_PITR,
            format!("{region}/{table}"),
            passed,
            reason,
        )
    }
}

#[cfg(test)]
#[path = "readiness_tests.rs"]
mod tests;
