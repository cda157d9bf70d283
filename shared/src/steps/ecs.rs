//! ECS services (`ECS_SERVICES`): recovered as Auto Scaling groups are.
//! - **Capacity**: each of the target region's services is a [`Scalable`] target of the
//!   capacity kind (the same rule, snapshot and scale-in as groups), capped by its
//!   Application Auto Scaling `MaxCapacity` when one is registered.
//! - **Deployment**: every region's services get `UpdateService` with
//!   `forceNewDeployment`, the target's first. ECS resolves SSM `valueFrom` secrets and
//!   parameters when a task starts, so the new tasks read the new value. The deployment is
//!   followed until its `rolloutState` is `COMPLETED`; `FAILED` (the deployment circuit
//!   breaker) is recorded as failed, with ECS's reason. A follow-up the switch leaves is
//!   finished by the verifier's reconcile, as Run Command's is.
//!
//! A service that does not exist is recorded as failed for that service only; one with
//! no tasks gets no deployment (tasks that start later read the new value).

use std::time::Duration;

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::config::{Config, ServiceRef};
use crate::error::{AwsError, ErrorKind};
use crate::ports::{DeploymentInfo, Deps, EcsServices, ServiceInfo};
use crate::region::Region;
use crate::state::{Millis, Outcome, StepError, Transition};
use crate::transition::kind::{
    BoxFuture, Described, Kind, Scalable, ScalableKind, Sizes, StepKind, counterpart_of,
};
use crate::transition::plan::{Action, OutcomeFuture, RegionPlan, Stage, StepContext};

const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The kind: a forced deployment per service of every region, followed to its end.
pub struct Deployments;

/// One service's forced deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStatus {
    pub status: DeploymentPhase,
    /// The deployment `UpdateService` started (or one that had started for this
    /// transition already, adopted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    /// The deployment's task counts as last seen.
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// ECS's `rolloutStateReason`, or why nothing was deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentPhase {
    /// Started and still rolling out.
    InProgress,
    /// `rolloutState` `COMPLETED`, or nothing to deploy (no tasks).
    Completed,
    /// Not started (the service does not exist, the call failed), or `FAILED`.
    Failed,
}

impl DeploymentStatus {
    fn of(phase: DeploymentPhase, deployment: Option<&DeploymentInfo>) -> Self {
        DeploymentStatus {
            status: phase,
            deployment_id: deployment.map(|d| d.id.clone()),
            started_at: deployment.and_then(|d| d.created_at),
            desired: deployment.map_or(0, |d| d.desired),
            running: deployment.map_or(0, |d| d.running),
            pending: deployment.map_or(0, |d| d.pending),
            reason: deployment.and_then(|d| d.reason.clone()),
            error: None,
            error_kind: None,
        }
    }

    fn failed(error: impl Into<String>, kind: ErrorKind) -> Self {
        DeploymentStatus {
            error: Some(error.into()),
            error_kind: Some(kind),
            ..DeploymentStatus::of(DeploymentPhase::Failed, None)
        }
    }

    pub fn is_done(&self) -> bool {
        self.status == DeploymentPhase::Completed
    }
}

impl Outcome for DeploymentStatus {
    const KIND: &'static str = "deployment";

    fn missed(error: String) -> Self {
        DeploymentStatus::failed(error, ErrorKind::Timeout)
    }

    fn failure(&self) -> Option<StepError> {
        (self.status == DeploymentPhase::Failed).then(|| {
            let message = self
                .error
                .clone()
                .or_else(|| self.reason.clone())
                .unwrap_or_else(|| "the deployment failed".into());
            StepError::new(self.error_kind.unwrap_or(ErrorKind::Other), message)
        })
    }
}

impl Kind for Deployments {
    type Outcome = DeploymentStatus;
    const FIELD: &'static str = "deployments";

    fn summary(key: &str, d: &DeploymentStatus, epoch: u64) -> String {
        let id = d.deployment_id.as_deref().unwrap_or("-");
        let counts = format!(
            "{} running, {} pending of {}",
            d.running, d.pending, d.desired
        );
        match d.status {
            DeploymentPhase::Completed => match &d.reason {
                Some(reason) if d.deployment_id.is_none() => format!("{key}: {reason}"),
                _ => format!("{key}: deployment {id} completed for epoch {epoch} ({counts})"),
            },
            DeploymentPhase::InProgress => {
                format!("{key}: deployment {id} in progress ({counts})")
            }
            DeploymentPhase::Failed => format!(
                "{key}: deployment {id} failed: {}",
                d.error
                    .as_ref()
                    .or(d.reason.as_ref())
                    .map_or("", String::as_str)
            ),
        }
    }

    /// A deployment still rolling out, or one this run followed to its end: the
    /// transition's own course, not drift.
    fn following(before: Option<&DeploymentStatus>, after: &DeploymentStatus) -> bool {
        let was_rolling = before.is_some_and(|d| d.status == DeploymentPhase::InProgress);
        after.status == DeploymentPhase::InProgress
            || (was_rolling && after.status == DeploymentPhase::Completed)
    }

    fn metric(outcome: &DeploymentStatus) -> Option<&'static str> {
        (outcome.status == DeploymentPhase::Failed && outcome.deployment_id.is_some())
            .then_some("DeploymentFailed")
    }
}

impl<D: Deps> StepKind<D> for Deployments {
    fn plan(&self, config: &Config, _to: &Region, plan: &mut RegionPlan<D>) {
        let region = plan.region.clone();
        for service in config.services_in(&region) {
            let key = service.key();
            let send = DeploySend {
                service: service.clone(),
            };
            plan.add(Stage::Act, &key, Box::new(send));
            let follow = DeployFollow {
                service: service.clone(),
            };
            plan.add(Stage::Follow, &key, Box::new(follow));
        }
    }

    fn scalables(&self, config: &Config) -> Vec<Box<dyn Scalable<D>>> {
        config
            .ecs_services
            .iter()
            .map(|s| Box::new(ServiceTarget(s.clone())) as Box<dyn Scalable<D>>)
            .collect()
    }

    /// Each service's task counts and latest deployment.
    fn status<'a>(
        &'a self,
        config: &'a Config,
        ports: &'a D,
    ) -> BoxFuture<'a, Option<(&'static str, Value)>> {
        Box::pin(async move {
            if config.ecs_services.is_empty() {
                return None;
            }
            let services = join_all(config.ecs_services.iter().map(|s| async move {
                let shown = match ports.services().describe(s).await {
                    Ok(Some(info)) => json!({
                        "desired": info.desired,
                        "running": info.running,
                        "pending": info.pending,
                        "latest_deployment": info.deployments.first(),
                    }),
                    Ok(None) => json!({ "error": format!("{} does not exist", s.resource()) }),
                    Err(e) => json!({ "error": e.to_string() }),
                };
                (s.key(), shown)
            }))
            .await;
            let services: serde_json::Map<String, Value> = services.into_iter().collect();
            Some(("ecs_services", Value::Object(services)))
        })
    }
}

/// Starts a new deployment of one service, so its tasks start again and read the new
/// value.
pub struct DeploySend {
    pub service: ServiceRef,
}

/// Follows one service's deployment to `COMPLETED` or `FAILED`.
pub struct DeployFollow {
    pub service: ServiceRef,
}

/// The service's PRIMARY deployment, when it started at or after the transition: one
/// this transition started (an earlier invocation's, whose record was lost). ECS reports
/// `createdAt` to the millisecond; a second's tolerance covers clocks apart.
fn ours<'a>(info: &'a ServiceInfo, transition: &Transition) -> Option<&'a DeploymentInfo> {
    info.deployments.iter().find(|d| {
        d.status == "PRIMARY"
            && d.created_at
                .is_some_and(|at| at + 1_000 >= transition.started_at)
    })
}

impl<D: Deps> Action<D> for DeploySend {
    type Outcome = DeploymentStatus;
    const NAME: &'static str = "deployment";

    fn key(&self) -> String {
        self.service.key()
    }

    /// Started, or nothing to deploy.
    fn finished(&self, recorded: Option<&DeploymentStatus>) -> bool {
        recorded.is_some_and(|d| d.deployment_id.is_some() || d.is_done())
    }

    fn act<'a>(&'a self, cx: &'a StepContext<'a, D>) -> OutcomeFuture<'a, DeploymentStatus> {
        Box::pin(deploy(cx, &self.service))
    }
}

async fn deploy<D: Deps>(cx: &StepContext<'_, D>, service: &ServiceRef) -> DeploymentStatus {
    let services = cx.ports.services();
    let missing = || {
        DeploymentStatus::failed(
            format!(
                "{} does not exist in {}",
                service.resource(),
                service.region
            ),
            ErrorKind::NotFound,
        )
    };
    // A transition this invocation has just created owns no deployment yet.
    if !cx.fresh {
        match services.describe(service).await {
            Ok(Some(info)) => {
                if let Some(d) = ours(&info, cx.transition) {
                    info!(service = %service.key(), deployment = %d.id, "a deployment for this transition already exists");
                    return DeploymentStatus::of(DeploymentPhase::InProgress, Some(d));
                }
            }
            Ok(None) => return missing(),
            Err(e) => return DeploymentStatus::failed(e.to_string(), e.kind),
        }
    }
    match services.force_deployment(service).await {
        Ok(d) if d.desired == 0 => {
            info!(service = %service.key(), "no tasks to replace; tasks that start later read the new value");
            DeploymentStatus {
                reason: Some(format!(
                    "{}: no tasks to replace; tasks that start later read the new value",
                    service.key()
                )),
                ..DeploymentStatus::of(DeploymentPhase::Completed, Some(&d))
            }
        }
        Ok(d) => {
            info!(service = %service.key(), deployment = %d.id, desired = d.desired, "new deployment started");
            DeploymentStatus::of(DeploymentPhase::InProgress, Some(&d))
        }
        Err(e) if e.kind == ErrorKind::NotFound => missing(),
        Err(e) => {
            warn!(service = %service.key(), error = %e, "could not start a new deployment; reconcile will retry");
            DeploymentStatus::failed(e.to_string(), e.kind)
        }
    }
}

impl<D: Deps> Action<D> for DeployFollow {
    type Outcome = DeploymentStatus;
    const NAME: &'static str = "deployment-follow";

    fn key(&self) -> String {
        self.service.key()
    }

    fn finished(&self, recorded: Option<&DeploymentStatus>) -> bool {
        recorded.is_some_and(DeploymentStatus::is_done)
    }

    fn act<'a>(&'a self, cx: &'a StepContext<'a, D>) -> OutcomeFuture<'a, DeploymentStatus> {
        Box::pin(async move {
            match cx
                .transition
                .outcome::<DeploymentStatus>(&self.service.key())
            {
                Some(status) if status.deployment_id.is_some() => {
                    follow(cx, &self.service, status).await
                }
                // Never started: the send step tries again.
                Some(status) => status,
                None => DeploymentStatus::failed("no deployment was started", ErrorKind::Other),
            }
        })
    }
}

/// Reads the deployment until it ends or the follow budget is spent (then it stays in
/// progress, for the next verifier run).
async fn follow<D: Deps>(
    cx: &StepContext<'_, D>,
    service: &ServiceRef,
    mut status: DeploymentStatus,
) -> DeploymentStatus {
    let Some(id) = status.deployment_id.clone() else {
        return status;
    };
    let deadline = tokio::time::Instant::now() + cx.follow_budget;
    loop {
        match cx.ports.services().describe(service).await {
            Ok(Some(info)) => match info.deployments.iter().find(|d| d.id == id) {
                Some(d) => {
                    let phase = match d.rollout_state.as_deref() {
                        Some("COMPLETED") => DeploymentPhase::Completed,
                        Some("FAILED") => DeploymentPhase::Failed,
                        _ => DeploymentPhase::InProgress,
                    };
                    status = DeploymentStatus::of(phase, Some(d));
                    match phase {
                        DeploymentPhase::Completed => {
                            info!(service = %service.key(), deployment = %id, "deployment completed");
                            return status;
                        }
                        DeploymentPhase::Failed => {
                            warn!(service = %service.key(), deployment = %id, reason = ?d.reason, "deployment failed");
                            status.error_kind = Some(ErrorKind::Other);
                            return status;
                        }
                        DeploymentPhase::InProgress => {}
                    }
                }
                // Replaced by a newer deployment (someone deployed again): it started
                // after ours, so its tasks read the new value too.
                None => {
                    let newer = info.deployments.first().map(|d| d.id.clone());
                    status.status = DeploymentPhase::Completed;
                    status.reason = Some(format!(
                        "superseded by deployment {}",
                        newer.as_deref().unwrap_or("-")
                    ));
                    return status;
                }
            },
            Ok(None) => {
                return DeploymentStatus {
                    status: DeploymentPhase::Failed,
                    error: Some(format!("{} no longer exists", service.resource())),
                    error_kind: Some(ErrorKind::NotFound),
                    ..status
                };
            }
            // Not an end: the deployment goes on in ECS; the next run reads it again.
            Err(e) => {
                warn!(service = %service.key(), error = %e, "could not read the deployment; the next run follows it");
                return status;
            }
        }
        if tokio::time::Instant::now() + POLL_INTERVAL > deadline {
            return status;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// An ECS service as the capacity step sees it: its desired count, bounded by its
/// Application Auto Scaling target when one is registered.
pub struct ServiceTarget(pub ServiceRef);

const SERVICE: ScalableKind = ScalableKind {
    check: "service_capacity",
    max_name: "MaxCapacity",
    read_call: ("ecs", "DescribeServices"),
};

impl<D: Deps> Scalable<D> for ServiceTarget {
    fn describe(&self) -> Described<'_> {
        Described {
            key: self.0.key(),
            region: &self.0.region,
            resource: self.0.resource(),
            kind: &SERVICE,
        }
    }

    fn counterpart(&self, config: &Config, source: &Region) -> Option<Box<dyn Scalable<D>>> {
        counterpart_of(
            &config.ecs_services,
            &self.0,
            source,
            |s| &s.region,
            |s| s.path(),
        )
        .map(|s| Box::new(ServiceTarget(s.clone())) as Box<dyn Scalable<D>>)
    }

    fn sizes<'a>(&'a self, ports: &'a D) -> BoxFuture<'a, Result<Option<Sizes>, AwsError>> {
        Box::pin(async move {
            let services = ports.services();
            let (info, bounds) =
                tokio::join!(services.describe(&self.0), services.scaling_bounds(&self.0));
            let Some(info) = info? else {
                return Ok(None);
            };
            let (min, max) = bounds?.unwrap_or((0, i32::MAX));
            Ok(Some(Sizes {
                min,
                desired: info.desired,
                max,
            }))
        })
    }

    fn set_desired<'a>(
        &'a self,
        ports: &'a D,
        desired: i32,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(ports.services().set_desired(&self.0, desired))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::controller::{Controller, Outcome, Response};
    use crate::decision::event::{Command, Trigger};
    use crate::state::CapacityStatus;
    use crate::testing::{FakePorts, FakeWorld, alarm_on, config_with};

    const HOME_WEB: &str = "us-east-1/app/web";
    const STANDBY_WEB: &str = "us-west-2/app/web";
    const HOME_WORKER: &str = "us-east-1/app/worker";
    const STANDBY_WORKER: &str = "us-west-2/app/worker";

    /// Warm standby on ECS: home's web at 4 and worker at 6, the standby's at 1 each;
    /// the standby's worker may grow to 3 only (its MaxCapacity).
    fn warm_standby(world: &FakeWorld) -> Controller<FakePorts> {
        let services = &world.services;
        for (key, desired) in [
            (HOME_WEB, 4),
            (HOME_WORKER, 6),
            (STANDBY_WEB, 1),
            (STANDBY_WORKER, 1),
            ("eu-west-1/app/web", 1),
            ("eu-west-1/app/worker", 1),
        ] {
            services.add(key, desired);
        }
        services.set_bounds(STANDBY_WEB, 1, 10);
        services.set_bounds(STANDBY_WORKER, 1, 3);
        controller(world)
    }

    /// A controller over `world` with both services configured.
    fn controller(world: &FakeWorld) -> Controller<FakePorts> {
        let config = config_with(&[
            ("ECS_SERVICES", "app/web,app/worker"),
            ("COOLDOWN_SECONDS", "0"),
            ("FAILBACK_MIN_HOLD_SECONDS", "0"),
            ("FAILBACK_MODE", "approve"),
            ("SCALE_IN_DELAY_SECONDS", "900"),
        ]);
        Controller::new(Arc::new(config), world.ports())
    }

    fn failover() -> Trigger {
        Trigger::Command(Command::Failover {
            target_region: None,
            reason: "drill".into(),
            dry_run: false,
            force: false,
        })
    }

    async fn switch(c: &Controller<FakePorts>, trigger: Trigger) -> Response {
        let out = c.handle(trigger).await.expect("handled");
        assert_eq!(out.outcome, Outcome::Switched, "{out:?}");
        out
    }

    #[tokio::test(start_paused = true)]
    async fn a_switch_raises_the_standbys_services_and_max_capacity_caps_the_raise() {
        let world = FakeWorld::new();
        let c = warm_standby(&world);
        let out = switch(&c, alarm_on("us-east-1")).await;
        let capacity = out.outcomes::<CapacityStatus>().expect("capacity");
        println!(
            "capacity: {}",
            serde_json::to_string_pretty(&out.steps["capacity"]).unwrap()
        );
        assert!(
            matches!(
                capacity[STANDBY_WEB],
                CapacityStatus::Raised {
                    previous: 1,
                    desired: 4,
                    wanted: 4,
                    capped: false,
                    ..
                }
            ),
            "{capacity:?}"
        );
        assert!(
            matches!(
                capacity[STANDBY_WORKER],
                CapacityStatus::Raised {
                    previous: 1,
                    desired: 3,
                    wanted: 6,
                    max: 3,
                    capped: true,
                    ..
                }
            ),
            "{capacity:?}"
        );
        assert_eq!(world.services.desired_of(STANDBY_WEB), 4);
        assert_eq!(world.services.desired_of(STANDBY_WORKER), 3);
        // The groups beside them were raised by the same step kind.
        assert!(capacity.contains_key("us-west-2/app"), "{capacity:?}");
        // Recorded for the scale-in, as a group's is.
        let scaled = world.control.state().unwrap().scaled_up;
        assert_eq!(scaled[STANDBY_WEB].previous_desired, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn every_regions_services_get_a_new_deployment_the_targets_first_followed_to_completed() {
        let world = FakeWorld::new();
        let c = warm_standby(&world);
        let out = switch(&c, failover()).await;
        let deployments = out.outcomes::<DeploymentStatus>().expect("deployments");
        println!(
            "deployments: {}",
            serde_json::to_string_pretty(&out.steps["deployments"]).unwrap()
        );
        assert_eq!(deployments.len(), 6, "{deployments:?}");
        for (key, d) in &deployments {
            assert_eq!(d.status, DeploymentPhase::Completed, "{key}: {d:?}");
            assert!(
                d.deployment_id
                    .as_deref()
                    .is_some_and(|id| id.starts_with("ecs-svc/"))
            );
        }
        let forced = world.services.forced.lock().unwrap().clone();
        assert_eq!(forced.len(), 6);
        assert!(
            forced[..2].iter().all(|k| k.starts_with("us-west-2/")),
            "the target's services first: {forced:?}"
        );
        // The raise came after the target's deployment, so the new deployment grew.
        let standby = world.services.info(STANDBY_WEB).unwrap();
        assert_eq!(standby.deployments[0].desired, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_deployment_is_recorded_with_its_reason_and_told_in_the_region_switch() {
        let world = FakeWorld::new();
        let c = warm_standby(&world);
        world.services.fail_next(
            STANDBY_WEB,
            "ECS deployment circuit breaker: tasks failed to start.",
        );
        let out = switch(&c, failover()).await;
        let web = &out.outcomes::<DeploymentStatus>().unwrap()[STANDBY_WEB];
        assert_eq!(web.status, DeploymentPhase::Failed, "{web:?}");
        assert!(
            web.reason
                .as_deref()
                .is_some_and(|r| r.contains("circuit breaker")),
            "{web:?}"
        );
        // The other services went on.
        let worker = &out.outcomes::<DeploymentStatus>().unwrap()[STANDBY_WORKER];
        assert_eq!(worker.status, DeploymentPhase::Completed);
        let t = world.control.state().unwrap().transition.unwrap();
        let entry = t.step("deployment", STANDBY_WEB).unwrap();
        assert!(
            entry
                .error
                .as_ref()
                .is_some_and(|e| e.message.contains("circuit breaker"))
        );
        let told = world.bus.put.lock().unwrap().clone();
        let switch = told
            .iter()
            .find(|n| n.detail_type == "Region Switch")
            .expect("a Region Switch event");
        let step = switch.detail["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == STANDBY_WEB && s["step"] == "deployment")
            .expect("the deployment in the event")
            .clone();
        println!("told: {step}");
        assert_eq!(step["ok"], false);
        assert!(
            step["outcome"]
                .as_str()
                .unwrap()
                .contains("circuit breaker")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deployment_still_rolling_out_is_followed_by_reconcile_to_its_end() {
        let world = FakeWorld::new();
        let c = warm_standby(&world);
        // Rollouts take 5 minutes: longer than the failover follows.
        world.services.rollout_ms.store(300_000, Ordering::SeqCst);
        let out = switch(&c, failover()).await;
        let web = &out.outcomes::<DeploymentStatus>().unwrap()[STANDBY_WEB];
        assert_eq!(web.status, DeploymentPhase::InProgress);
        let report = c.verify().await.unwrap();
        assert!(
            report
                .reconcile
                .following
                .iter()
                .any(|f| f.starts_with(STANDBY_WEB)),
            "{:?}",
            report.reconcile
        );
        world.clock.advance(300_000);
        let report = c.verify().await.unwrap();
        assert!(
            report
                .reconcile
                .following
                .iter()
                .any(|f| f.contains("completed")),
            "{:?}",
            report.reconcile
        );
        let t = world.control.state().unwrap().transition.unwrap();
        assert!(
            t.outcomes::<DeploymentStatus>()
                .values()
                .all(DeploymentStatus::is_done)
        );
        assert_eq!(
            world.services.forced.lock().unwrap().len(),
            6,
            "never forced twice"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_service_is_scaled_back_in_after_the_delay() {
        let world = FakeWorld::new();
        let c = warm_standby(&world);
        switch(&c, failover()).await;
        assert_eq!(world.services.desired_of(STANDBY_WEB), 4);
        let back = Trigger::Command(Command::Failback {
            reason: "home is back".into(),
            dry_run: false,
            force: false,
        });
        switch(&c, back).await;
        // (waiting, scaled in) as one verifier run reports them for the web service.
        let run = |advance: u64| {
            world.clock.advance(advance);
            let c = &c;
            async move {
                let capacity = c.verify().await.unwrap().capacity;
                let of_web = |lines: &[String]| lines.iter().any(|l| l.starts_with(STANDBY_WEB));
                (of_web(&capacity.waiting), of_web(&capacity.scaled_in))
            }
        };
        assert_eq!(
            run(899_000).await,
            (true, false),
            "before the delay: waiting"
        );
        assert_eq!(world.services.desired_of(STANDBY_WEB), 4);
        assert_eq!(run(2_000).await, (false, true), "after it: scaled in");
        assert_eq!(world.services.desired_of(STANDBY_WEB), 1);
        // The worker goes back to its MinCapacity-bounded figure, 1.
        assert_eq!(world.services.desired_of(STANDBY_WORKER), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_that_does_not_exist_is_reported_and_the_others_go_on() {
        let world = FakeWorld::new();
        let c = warm_standby(&world);
        world.services.remove(STANDBY_WORKER);
        let out = switch(&c, failover()).await;
        let worker = &out.outcomes::<DeploymentStatus>().unwrap()[STANDBY_WORKER];
        assert_eq!(worker.status, DeploymentPhase::Failed);
        assert!(
            worker
                .error
                .as_deref()
                .is_some_and(|e| e.contains("does not exist")),
            "{worker:?}"
        );
        let capacity = out.outcomes::<CapacityStatus>().unwrap();
        assert!(matches!(
            capacity[STANDBY_WORKER],
            CapacityStatus::Failed { .. }
        ));
        assert!(matches!(
            capacity[STANDBY_WEB],
            CapacityStatus::Raised { .. }
        ));
        let web = &out.outcomes::<DeploymentStatus>().unwrap()[STANDBY_WEB];
        assert_eq!(web.status, DeploymentPhase::Completed);
    }

    /// The failover dies at every write of the switch (before it lands, and after), and a
    /// new process finishes by the retried event: every service has exactly one new
    /// deployment for the transition, completed, and each standby service is raised once.
    #[tokio::test(start_paused = true)]
    async fn a_crash_at_any_write_is_finished_by_a_retry_with_one_deployment_per_service() {
        let mut writes = None;
        let mut point = 0;
        loop {
            for lands in [false, true] {
                let world = FakeWorld::new();
                let c = warm_standby(&world);
                world.clock.advance(1_000);
                world.crash.arm(point, lands);
                let trigger = alarm_on("us-east-1");
                let died = tokio::select! {
                    biased;
                    out = c.handle(trigger.clone()) => { out.expect("handled"); false }
                    () = world.crash.dead() => true,
                };
                world.crash.disarm();
                if !died {
                    writes.get_or_insert(world.crash.writes());
                    continue;
                }
                world
                    .clock
                    .advance(c.config.transition_lease.as_millis() as u64 + 1_000);
                let next = controller(&world);
                next.handle(trigger).await.expect("retried");
                let case = format!(
                    "crash at write {point} ({})",
                    if lands { "landed" } else { "lost" }
                );
                let t = world.control.state().unwrap().transition.unwrap();
                assert!(t.completed, "{case}");
                let deployments = t.outcomes::<DeploymentStatus>();
                assert_eq!(deployments.len(), 6, "{case}: {deployments:?}");
                assert!(
                    deployments.values().all(DeploymentStatus::is_done),
                    "{case}: {deployments:?}"
                );
                let forced = world.services.forced.lock().unwrap().clone();
                let mut unique = forced.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), 6, "{case}: {forced:?}");
                // A force that landed before the crash is adopted by the retry, not repeated.
                assert_eq!(forced.len(), 6, "{case}: {forced:?}");
                assert_eq!(world.services.desired_of(STANDBY_WEB), 4, "{case}");
                assert_eq!(
                    world.control.state().unwrap().scaled_up[STANDBY_WEB].previous_desired,
                    1,
                    "{case}"
                );
            }
            point += 1;
            if writes.is_some_and(|w| point > w) {
                break;
            }
        }
        println!(
            "crash points over {} writes, each before and after landing",
            writes.unwrap()
        );
    }
}
