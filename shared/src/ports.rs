//! The narrow interfaces the decision and transition logic needs from the outside world.
//! `aws` implements them over the SDK; `testing` implements them in memory for the unit
//! tests, so every rule is exercised without a network.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::{GroupRef, HookRef, RefreshPreferences, ServiceRef};
use crate::error::{AwsError, ErrorKind, Result};
use crate::evidence::samples::ProbeSamples;
use crate::region::Region;
use crate::state::{ControlState, HistoryRecord, Millis, Versioned, WriteToken};

/// The control table in the function's own region.
pub trait ControlStore: Send + Sync {
    /// The current state, or `None` before the first write: a strongly consistent read.
    fn load(&self) -> impl Future<Output = Result<Option<Versioned<ControlState>>>> + Send;

    /// The state as an eventually consistent read gives it: possibly stale, but answered
    /// by a replica cut off from the others, where a strongly consistent read fails. For
    /// `status` only; nothing decides on it.
    fn load_eventually(
        &self,
    ) -> impl Future<Output = Result<Option<Versioned<ControlState>>>> + Send;

    /// Writes `state` at version `expected + 1`, with the tokens of the newest writes
    /// (`writes`, this one last), if the stored version is still `expected` (0: the item
    /// must not exist): one conditional write, no transaction (multi-Region strongly
    /// consistent global tables allow none). `Ok(false)` means the condition failed:
    /// another writer got there first, or this write landed and its answer was lost (the
    /// retry then fails its own condition). `load` tells the two apart by the tokens.
    fn save(
        &self,
        expected: u64,
        state: &ControlState,
        writes: &[WriteToken],
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The newest `limit` history records, newest first.
    fn history(&self, limit: usize) -> impl Future<Output = Result<Vec<HistoryRecord>>> + Send;

    /// Whether the control table has point-in-time recovery on (readiness: a bad write to
    /// the control state can be undone).
    fn point_in_time_recovery(&self) -> impl Future<Output = Result<bool, AwsError>> + Send;

    /// Rewrites the history record of `record.epoch` with what its transition recorded
    /// since, unless a copy that got as far or further (its `revision`) is already there.
    fn put_history(&self, record: &HistoryRecord) -> impl Future<Output = Result<()>> + Send;

    /// The history record of one transition.
    fn history_of(&self, epoch: u64) -> impl Future<Output = Result<Option<HistoryRecord>>> + Send;

    /// Keeps a notice the event bus did not take, for the verifier to send again.
    fn hold(&self, notice: &Notice) -> impl Future<Output = Result<()>> + Send;

    /// Held notices, oldest first, at most `limit`.
    fn held(&self, limit: usize) -> impl Future<Output = Result<Vec<Notice>>> + Send;

    /// Forgets a held notice once the bus has taken it.
    fn release(&self, notice: &Notice) -> impl Future<Output = Result<()>> + Send;

    /// The health probe's newest samples, as the probe in `vantage` wrote them.
    fn samples(
        &self,
        vantage: &Region,
    ) -> impl Future<Output = Result<Option<ProbeSamples>>> + Send;

    /// Every vantage point's newest samples (one item each), in region order: the
    /// evidence a quorum weighs.
    fn vantage_samples(&self) -> impl Future<Output = Result<Vec<ProbeSamples>>> + Send;

    /// Replaces the samples of the probe in `samples.vantage`.
    fn put_samples(&self, samples: &ProbeSamples) -> impl Future<Output = Result<()>> + Send;

    /// Takes the verifier's run lease for `lease.owner` until `lease.until`, unless
    /// another owner holds it past `lease.now`; `Ok(false)` then. Taking it again for the
    /// same owner succeeds (a retried write that had landed).
    fn claim_run(&self, lease: &RunLease) -> impl Future<Output = Result<bool>> + Send;

    /// Gives the lease back, if `lease.owner` still holds it.
    fn end_run(&self, lease: &RunLease) -> impl Future<Output = Result<()>> + Send;
}

/// One verifier run's hold on the control plane: runs never overlap (a duplicate schedule
/// delivery, a person's `verify`, another region's verifier in mrsc mode), so each run
/// adds at most one check to the failback streak. It lapses at `until` (the invocation's
/// deadline) if the run dies holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLease {
    /// Unique per run (the Lambda request id).
    pub owner: String,
    pub now: Millis,
    pub until: Millis,
}

/// An event for operators, as it goes on the EventBridge bus (source `regionpilot`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Unique per event and the same on every re-send: delivery is at least once, so
    /// consumers dedupe on it (it is in the detail too).
    pub id: String,
    /// EventBridge's `DetailType`, e.g. `Region Switch`.
    pub detail_type: String,
    pub detail: serde_json::Value,
    pub at: Millis,
}

/// The EventBridge bus in the control plane's region.
pub trait EventBus: Send + Sync {
    /// Puts the notices (at most 10) on the bus; returns the ids it did not accept.
    fn put(&self, notices: &[Notice])
    -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
}

/// The active-region parameter, one copy per region.
pub trait ParameterStore: Send + Sync {
    fn put(
        &self,
        region: &Region,
        name: &str,
        value: &str,
        description: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    fn get(
        &self,
        region: &Region,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;
}

/// An instance refresh as Auto Scaling reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshInfo {
    pub id: String,
    pub status: String,
    pub started_at: Option<Millis>,
    pub percentage_complete: Option<i32>,
}

impl RefreshInfo {
    /// Pending, InProgress, Cancelling and the rollback states block a new refresh.
    pub fn is_active(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Pending" | "InProgress" | "Cancelling" | "RollbackInProgress" | "Baking"
        )
    }
}

pub trait ScalingGroups: Send + Sync {
    /// Refreshes of the group, newest first.
    fn refreshes(
        &self,
        group: &GroupRef,
    ) -> impl Future<Output = Result<Vec<RefreshInfo>, AwsError>> + Send;

    fn start_refresh(
        &self,
        group: &GroupRef,
        preferences: &RefreshPreferences,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;

    fn cancel_refresh(&self, group: &GroupRef)
    -> impl Future<Output = Result<(), AwsError>> + Send;

    /// The group's sizes and instances; `None` when the group does not exist.
    fn describe(
        &self,
        group: &GroupRef,
    ) -> impl Future<Output = Result<Option<GroupInfo>, AwsError>> + Send;

    /// Sets the desired capacity (Auto Scaling refuses a value outside min..=max).
    fn set_desired(
        &self,
        group: &GroupRef,
        desired: i32,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// An Auto Scaling group's sizes and instances, as DescribeAutoScalingGroups reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    pub min: i32,
    pub desired: i32,
    pub max: i32,
    /// Instances in the group (any lifecycle state).
    pub instances: u32,
    /// Of those, the ones `InService`.
    pub in_service: u32,
    /// Each instance and whether it is `InService` (not in `status`: the counts say it).
    #[serde(skip)]
    pub members: Vec<Member>,
}

/// One instance of a group, as DescribeAutoScalingGroups lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub in_service: bool,
}

/// One instance's part in a Run Command invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvocationInfo {
    pub instance_id: String,
    /// As SSM reports it: Pending, InProgress, Delayed, Success, Failed, TimedOut,
    /// Cancelled, Cancelling, Undeliverable, Terminated.
    pub status: String,
}

/// SSM Run Command: the in-place reload on a group's running instances.
pub trait RunCommands: Send + Sync {
    /// Sends `AWS-RunShellScript` with `commands` to the instances tagged with the group's
    /// name (`aws:autoscaling:groupName`), or to `instances` by id when given; returns the
    /// command id and how many instances it targeted.
    fn send(
        &self,
        group: &GroupRef,
        instances: Option<&[String]>,
        commands: &[String],
        timeout: std::time::Duration,
        comment: &str,
    ) -> impl Future<Output = Result<SentCommand, AwsError>> + Send;

    /// Every instance's invocation of the command so far.
    fn invocations(
        &self,
        region: &Region,
        command_id: &str,
    ) -> impl Future<Output = Result<Vec<InvocationInfo>, AwsError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCommand {
    pub command_id: String,
    pub target_count: u32,
}

/// The result of one region's pre-flight probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub region: Region,
    /// The region answered the read (a missing canary item or throttling still counts).
    pub reachable: bool,
    pub latency_ms: u64,
    pub item_found: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProbeResult {
    /// The result of a probe of `region` that did not finish within `budget`.
    pub fn timed_out(region: &Region, budget: std::time::Duration) -> Self {
        ProbeResult {
            region: region.clone(),
            reachable: false,
            latency_ms: budget.as_millis() as u64,
            item_found: false,
            error_kind: Some(ErrorKind::Timeout),
            error: Some(AwsError::deadline("dynamodb", "GetItem", region).to_string()),
        }
    }
}

/// A strongly consistent read of the canary item under a hard deadline.
pub trait HealthProbe: Send + Sync {
    fn check(&self, region: &Region) -> impl Future<Output = ProbeResult> + Send;
}

/// Heartbeat items in the replicated health table: one per region, written in that region
/// with the time it was written, so any other region can tell how far replication lags.
pub trait Heartbeats: Send + Sync {
    /// Writes `region`'s heartbeat, stamped `at`, in `region`.
    fn write(
        &self,
        region: &Region,
        at: Millis,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// Reads `of`'s heartbeat stamp as `in_region` sees it.
    fn read(
        &self,
        in_region: &Region,
        of: &Region,
        consistent: bool,
    ) -> impl Future<Output = Result<Option<Millis>, AwsError>> + Send;
}

/// Amazon ARC routing controls, through one of the cluster's regional endpoints (named
/// by its region). `routing` tries the endpoints in turn; an implementation makes one
/// attempt, bounded by the probe timeout.
pub trait RoutingControls: Send + Sync {
    /// Sets each routing control to its state (on: `true`), in the order given, through
    /// `endpoint`; stops at the first that fails (the caller then tries the next
    /// endpoint with all of them: setting a state again is harmless).
    fn set(
        &self,
        endpoint: &Region,
        states: &[(String, bool)],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// One routing control's state (on: `true`), through `endpoint`.
    fn get(
        &self,
        endpoint: &Region,
        arn: &str,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;
}

pub trait Clock: Send + Sync {
    fn now_millis(&self) -> Millis;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// An ECS service as DescribeServices reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceInfo {
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// The PRIMARY deployment first, then the ACTIVE ones still draining.
    pub deployments: Vec<DeploymentInfo>,
}

/// One deployment of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentInfo {
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED` (the deployment circuit breaker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_state: Option<String>,
    /// ECS's `rolloutStateReason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Millis>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub failed_tasks: i32,
}

/// ECS services (`ECS_SERVICES`) and their Application Auto Scaling targets.
pub trait EcsServices: Send + Sync {
    /// `None` when the service (or its cluster) does not exist or was deleted.
    fn describe(
        &self,
        service: &ServiceRef,
    ) -> impl Future<Output = Result<Option<ServiceInfo>, AwsError>> + Send;

    /// The service's Application Auto Scaling target as (MinCapacity, MaxCapacity);
    /// `None` when none is registered.
    fn scaling_bounds(
        &self,
        service: &ServiceRef,
    ) -> impl Future<Output = Result<Option<(i32, i32)>, AwsError>> + Send;

    /// `UpdateService` with a desired count.
    fn set_desired(
        &self,
        service: &ServiceRef,
        desired: i32,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// `UpdateService` with `forceNewDeployment`: the new PRIMARY deployment.
    fn force_deployment(
        &self,
        service: &ServiceRef,
    ) -> impl Future<Output = Result<DeploymentInfo, AwsError>> + Send;
}

/// What a hook function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookAnswer {
    /// Lambda's `X-Amz-Function-Error` (`Unhandled`): the function failed, and `payload`
    /// holds its `errorType` and `errorMessage`.
    pub function_error: Option<String>,
    /// The function's answer, as it sent it.
    pub payload: Vec<u8>,
}

/// The `HOOKS` functions, in the regions they live in.
pub trait Hooks: Send + Sync {
    /// Invokes `hook` synchronously (`RequestResponse`) with `payload`, once: no retry
    /// here, since a retry is another invocation of the user's code, and regionpilot
    /// counts those itself. The caller bounds how long it waits.
    fn invoke(
        &self,
        hook: &HookRef,
        payload: &[u8],
    ) -> impl Future<Output = Result<HookAnswer, AwsError>> + Send;

    /// Whether the function exists (`GetFunction`).
    fn exists(&self, hook: &HookRef) -> impl Future<Output = Result<bool, AwsError>> + Send;
}

/// All the ports one controller needs, bundled so handlers stay generic over one type.
pub struct Ports<C, P, S, H, R, K, B, T, E, F> {
    pub control: C,
    pub parameters: P,
    pub groups: S,
    pub probe: H,
    pub commands: R,
    pub clock: K,
    pub bus: B,
    pub routing: T,
    pub services: E,
    pub hooks: F,
}

/// The bundle of ports as one bound: `Controller<D: Deps>` instead of ten type
/// parameters repeated on every handler.
pub trait Deps: Send + Sync + 'static {
    type Control: ControlStore;
    type Parameters: ParameterStore;
    type Groups: ScalingGroups;
    type Probe: HealthProbe + Heartbeats;
    type Commands: RunCommands;
    type Clock: Clock;
    type Bus: EventBus;
    type Routing: RoutingControls;
    type Services: EcsServices;
    type Hooks: Hooks;

    fn control(&self) -> &Self::Control;
    fn parameters(&self) -> &Self::Parameters;
    fn groups(&self) -> &Self::Groups;
    fn probe(&self) -> &Self::Probe;
    fn commands(&self) -> &Self::Commands;
    fn clock(&self) -> &Self::Clock;
    fn bus(&self) -> &Self::Bus;
    fn routing(&self) -> &Self::Routing;
    fn services(&self) -> &Self::Services;
    fn hooks(&self) -> &Self::Hooks;
}

impl<C, P, S, H, R, K, B, T, E, F> Deps for Ports<C, P, S, H, R, K, B, T, E, F>
where
    C: ControlStore + 'static,
    P: ParameterStore + 'static,
    S: ScalingGroups + 'static,
    H: HealthProbe + Heartbeats + 'static,
    R: RunCommands + 'static,
    K: Clock + 'static,
    B: EventBus + 'static,
    T: RoutingControls + 'static,
    E: EcsServices + 'static,
    F: Hooks + 'static,
{
    type Control = C;
    type Parameters = P;
    type Groups = S;
    type Probe = H;
    type Commands = R;
    type Clock = K;
    type Bus = B;
    type Routing = T;
    type Services = E;
    type Hooks = F;

    fn control(&self) -> &C {
        &self.control
    }
    fn parameters(&self) -> &P {
        &self.parameters
    }
    fn groups(&self) -> &S {
        &self.groups
    }
    fn probe(&self) -> &H {
        &self.probe
    }
    fn commands(&self) -> &R {
        &self.commands
    }
    fn clock(&self) -> &K {
        &self.clock
    }
    fn bus(&self) -> &B {
        &self.bus
    }
    fn routing(&self) -> &T {
        &self.routing
    }
    fn services(&self) -> &E {
        &self.services
    }
    fn hooks(&self) -> &F {
        &self.hooks
    }
}
