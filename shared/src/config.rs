//! Typed configuration, parsed once at init from environment variables. A missing or bad
//! value fails init with an error naming the variable and what was expected.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::decision::window::FailbackWindow;
use crate::error::{Error, Result};
use crate::region::Region;

/// An Auto Scaling group in one region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupRef {
    pub region: Region,
    pub name: String,
}

impl GroupRef {
    /// The stable key used in responses and the control state: `region/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.region, self.name)
    }

    /// How errors name the group.
    pub fn resource(&self) -> String {
        format!("the Auto Scaling group {}", self.name)
    }
}

/// The canary item the probes read: `attribute=value`, a string partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthKey {
    pub attribute: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPreferences {
    pub min_healthy_percent: i32,
    pub warmup: Duration,
}

/// Backoff between attempts of one call. The SDK's default (1 s, growing to 20 s) would
/// outlast the call budget under throttling, and the caller would see a bare timeout
/// instead of the throttling error; a failover cannot wait that long anyway.
pub const RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
pub const RETRY_MAX_BACKOFF: Duration = Duration::from_millis(400);

/// A whole-number setting's variable, default and accepted range. The one place these
/// live: `Config::from_lookup` parses with them, and the template test checks each
/// template parameter's `Default`, `MinValue` and `MaxValue` against them, so the
/// template never accepts a value that would stop every function at init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub variable: &'static str,
    pub default: u64,
    pub min: u64,
    pub max: u64,
}

const DAY: u64 = 24 * 3600;

pub const COOLDOWN_SECONDS: Bounds = Bounds::new("COOLDOWN_SECONDS", 300, 0, 7 * DAY);
/// AWS accepts 0..=100 for MinHealthyPercentage.
pub const REFRESH_MIN_HEALTHY_PERCENT: Bounds =
    Bounds::new("REFRESH_MIN_HEALTHY_PERCENT", 90, 0, 100);
pub const REFRESH_WARMUP_SECONDS: Bounds = Bounds::new("REFRESH_WARMUP_SECONDS", 60, 0, DAY);
pub const CONNECT_TIMEOUT_MS: Bounds = Bounds::new("CONNECT_TIMEOUT_MS", 1_000, 50, 30_000);
pub const CALL_TIMEOUT_MS: Bounds = Bounds::new("CALL_TIMEOUT_MS", 2_000, 50, 60_000);
pub const CALL_MAX_ATTEMPTS: Bounds = Bounds::new("CALL_MAX_ATTEMPTS", 3, 1, 10);
/// Below the shortest probe interval the template offers (5 s), so that a sampling round
/// always ends before the next one is due.
pub const PROBE_TIMEOUT_MS: Bounds = Bounds::new("PROBE_TIMEOUT_MS", 1_500, 50, 4_000);
pub const TRANSITION_LEASE_SECONDS: Bounds = Bounds::new("TRANSITION_LEASE_SECONDS", 120, 0, 3600);
/// 60 s: a scheduled-every-minute probe samples until its Lambda deadline (less a margin
/// to answer), so its samples reach the next run's and every 10 s bucket of the minute
/// holds one.
pub const PROBE_WINDOW_SECONDS: Bounds = Bounds::new("PROBE_WINDOW_SECONDS", 60, 0, 840);
pub const FAILBACK_HEALTHY_CHECKS: Bounds = Bounds::new("FAILBACK_HEALTHY_CHECKS", 10, 1, 10_000);
pub const FAILBACK_MIN_HOLD_SECONDS: Bounds =
    Bounds::new("FAILBACK_MIN_HOLD_SECONDS", 600, 0, 7 * DAY);
pub const FAILBACK_MAX_LAG_SECONDS: Bounds = Bounds::new("FAILBACK_MAX_LAG_SECONDS", 5, 0, 3600);
pub const FAILBACK_DRAIN_WAIT_SECONDS: Bounds =
    Bounds::new("FAILBACK_DRAIN_WAIT_SECONDS", 10, 0, 600);
pub const MAX_AUTOMATIC_SWITCHES_PER_DAY: Bounds =
    Bounds::new("MAX_AUTOMATIC_SWITCHES_PER_DAY", 3, 1, 1000);
pub const CAPACITY_PERCENT: Bounds = Bounds::new("CAPACITY_PERCENT", 100, 0, 1000);
pub const SCALE_IN_DELAY_SECONDS: Bounds = Bounds::new("SCALE_IN_DELAY_SECONDS", 900, 0, 30 * DAY);
/// 1 h at most: a reload that takes longer than that is a redeploy, not a reload.
pub const RELOAD_TIMEOUT_SECONDS: Bounds = Bounds::new("RELOAD_TIMEOUT_SECONDS", 120, 1, 3600);
/// A hook call's bound; 10 min at most, since a verifier run must outlive it.
pub const HOOK_TIMEOUT_SECONDS: Bounds = Bounds::new("HOOK_TIMEOUT_SECONDS", 60, 1, 600);
pub const HOOK_MAX_ATTEMPTS: Bounds = Bounds::new("HOOK_MAX_ATTEMPTS", 3, 1, 10);
/// A vantage point's verdict older than this is no vote; at least two probe intervals
/// too (checked with `PROBE_INTERVAL_SECONDS`).
pub const QUORUM_WINDOW_SECONDS: Bounds = Bounds::new("QUORUM_WINDOW_SECONDS", 30, 2, 3600);
pub const READINESS_INTERVAL_SECONDS: Bounds =
    Bounds::new("READINESS_INTERVAL_SECONDS", 900, 0, DAY);
/// How long a serving gate that cannot read the decision answers with the last one it
/// read (see `gate.rs` for why 120 s).
pub const GATE_STALE_SECONDS: Bounds = Bounds::new("GATE_STALE_SECONDS", 120, 0, 3600);

/// Every whole-number setting with a range.
pub const NUMBERS: &[Bounds] = &[
    COOLDOWN_SECONDS,
    REFRESH_MIN_HEALTHY_PERCENT,
    REFRESH_WARMUP_SECONDS,
    CONNECT_TIMEOUT_MS,
    CALL_TIMEOUT_MS,
    CALL_MAX_ATTEMPTS,
    PROBE_TIMEOUT_MS,
    TRANSITION_LEASE_SECONDS,
    PROBE_WINDOW_SECONDS,
    FAILBACK_HEALTHY_CHECKS,
    FAILBACK_MIN_HOLD_SECONDS,
    FAILBACK_MAX_LAG_SECONDS,
    FAILBACK_DRAIN_WAIT_SECONDS,
    MAX_AUTOMATIC_SWITCHES_PER_DAY,
    CAPACITY_PERCENT,
    SCALE_IN_DELAY_SECONDS,
    RELOAD_TIMEOUT_SECONDS,
    HOOK_TIMEOUT_SECONDS,
    HOOK_MAX_ATTEMPTS,
    QUORUM_WINDOW_SECONDS,
    READINESS_INTERVAL_SECONDS,
    GATE_STALE_SECONDS,
];

/// `PROBE_INTERVAL_SECONDS`: the divisors of the unhealthy alarms' 10 s period, so every
/// period holds the same number of samples and none is left empty. The template offers
/// those above the longest probe timeout (5 and 10); 1 and 2 are for accelerated drills.
pub const PROBE_INTERVALS: &[u64] = &[1, 2, 5, 10];
pub const PROBE_INTERVAL_DEFAULT: u64 = 10;

impl Bounds {
    const fn new(variable: &'static str, default: u64, min: u64, max: u64) -> Bounds {
        Bounds {
            variable,
            default,
            min,
            max,
        }
    }

    fn parse(&self, get: &impl Fn(&'static str) -> Option<String>) -> Result<u64> {
        number(get, self.variable, self.default, self.min, self.max)
    }
}

/// Timeouts on every AWS call. A frozen region costs at most `call_budget()` per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Per attempt of an ordinary call.
    pub call_attempt: Duration,
    pub call_max_attempts: u32,
    /// The whole pre-flight probe: one attempt, no retry.
    pub probe: Duration,
}

impl Timeouts {
    /// Upper bound on one ordinary call including retries and their backoff, with room to
    /// spare so the last attempt's own error, not this budget, is what the caller sees.
    pub fn call_budget(&self) -> Duration {
        let backoff = RETRY_MAX_BACKOFF * self.call_max_attempts.saturating_sub(1);
        self.call_attempt * self.call_max_attempts + backoff + Duration::from_millis(500)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailbackMode {
    /// Fail back by itself once ready.
    Auto,
    /// Record "ready for failback" and wait for `{"command":"failback"}`.
    Approve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailbackPolicy {
    pub mode: FailbackMode,
    pub healthy_checks: u32,
    pub min_hold: Duration,
    pub max_lag: Duration,
    /// How long the drain check waits for the sentinel to show up at home.
    pub drain_wait: Duration,
    pub max_automatic_switches_per_day: u32,
}

/// Standby capacity: how far a switch raises the target region's groups, and when the
/// verifier gives the extra capacity back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityPolicy {
    /// `CAPACITY_PERCENT`: the target's desired capacity is raised to at least this share
    /// of its counterpart's in the region switched away from. 0 leaves capacity alone.
    pub percent: u32,
    /// `SCALE_IN_DELAY_SECONDS`: how long the new active region must have been active
    /// (and healthy) before a region regionpilot scaled up is scaled back in.
    pub scale_in_delay: Duration,
}

/// How running instances learn the new active region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadMode {
    /// Replace every instance (instance refresh); new instances read the parameter at boot.
    Refresh,
    /// SSM Run Command on the running instances, an instance refresh only for the
    /// instances where it failed or timed out.
    RunCommand { commands: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadPolicy {
    pub mode: ReloadMode,
    /// `RELOAD_TIMEOUT_SECONDS`: an instance that has not reloaded by then has timed out.
    pub timeout: Duration,
}

/// When a hook runs in a transition (`HOOKS`'s `stage=`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HookStage {
    /// Before the act stage (beside the parameter's publish): stop writers, say.
    Prepare,
    /// Beside the built-in act steps, after the parameter is published.
    Act,
    /// After every other step of the transition, in every region: a smoke test.
    Verify,
}

impl HookStage {
    pub fn as_str(self) -> &'static str {
        match self {
            HookStage::Prepare => "prepare",
            HookStage::Act => "act",
            HookStage::Verify => "verify",
        }
    }
}

impl std::fmt::Display for HookStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `HOOKS` entry: a Lambda function regionpilot invokes once per transition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HookRef {
    pub stage: HookStage,
    /// As configured: a function name (optionally `name:qualifier`) or a full ARN.
    pub function: String,
    /// Where it is invoked: the region its ARN names, else the control plane's own.
    pub region: Region,
}

impl HookRef {
    /// `stage/function`: its key in the transition's records.
    pub fn key(&self) -> String {
        format!("{}/{}", self.stage, self.function)
    }
}

/// `HOOKS`, `HOOK_TIMEOUT_SECONDS`, `HOOK_MAX_ATTEMPTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookPolicy {
    pub hooks: Vec<HookRef>,
    /// Bounds each call.
    pub timeout: Duration,
    /// Calls per hook per transition, the first included.
    pub max_attempts: u32,
}

/// `EVENT_BUS_NAME` and `APP_NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPolicy {
    /// The EventBridge bus (name or ARN) in the control plane's region.
    pub bus: String,
    /// Carried in every event's detail as `app`, so several applications can share a bus.
    pub app: String,
}

/// `TRAFFIC_SIGNAL`: how DNS learns the decision. The template resolves its `auto` into one
/// of these; only `routing-control` asks the functions for more than the `ActiveRegion`
/// metric (which every signal keeps, for the dashboard) and the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficSignal {
    /// Serving alarms on `ActiveRegion`, `CLOUDWATCH_METRIC` health checks: about 3 min.
    Metric,
    /// Route 53 HTTPS health checks on the function URL gates: about 20 s.
    Gate,
    /// Amazon ARC routing controls, set at every switch and on reconcile: about 10 s.
    RoutingControl,
}

impl TrafficSignal {
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficSignal::Metric => "metric",
            TrafficSignal::Gate => "gate",
            TrafficSignal::RoutingControl => "routing-control",
        }
    }
}

/// One of an ARC cluster's regional endpoints (the cluster's `ClusterEndpoints`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    pub region: Region,
    pub url: String,
}

/// `ROUTING_CONTROL_ENDPOINTS` and `ROUTING_CONTROL_ARNS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingControlConfig {
    /// Tried in turn: the cluster answers on any of them.
    pub endpoints: Vec<ClusterEndpoint>,
    /// Each application region's routing control: On while that region is active.
    pub arns: BTreeMap<Region, String>,
}

/// `DEPLOYMENT_ROLE`: what this stack is in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentRole {
    /// The full control plane: failover, verifier, probe, control table.
    Control,
    /// Another application region's stack in single mode: its health probe answers only
    /// as that region's serving gate, from that region's parameter.
    Regional,
}

/// DynamoDB's item size limit. The control state is one item: a write over the limit
/// fails, and with it every switch.
pub const ITEM_LIMIT_BYTES: usize = 400 * 1024;
/// The control state item without any group, at most (measured:
/// `aws::tests::the_control_state_item_grows_by_at_most_the_configured_bytes_per_group`).
pub const STATE_BASE_BYTES: usize = 8 * 1024;
/// What each Auto Scaling group (one region's) adds to the item at a switch, at most: its
/// capacity, refresh and reload records, their times and its snapshot (measured there),
/// with room for AWS's error messages in them.
pub const STATE_BYTES_PER_GROUP: usize = 1024;
/// The share of the limit a configuration may plan for: the rest is for what the
/// estimate cannot see (a long refresh id, instances still booting at a reload).
const ITEM_BUDGET_PERCENT: usize = 80;

/// The control state item's size at a switch with `groups` groups, at most.
pub fn projected_state_bytes(groups: usize) -> usize {
    STATE_BASE_BYTES + STATE_BYTES_PER_GROUP * groups
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Ordered by preference; the first is the home region.
    pub regions: Vec<Region>,
    /// Where this function runs (`AWS_REGION`).
    pub own_region: Region,
    /// Where the control table is read and written: this function's region in a control
    /// stack (single mode's table, or mrsc's replica here); `CONTROL_TABLE_REGION` for a
    /// regional stack's probe, a vantage point that writes its verdicts to the control
    /// stack's table.
    pub control_region: Region,
    pub active_region_parameter: String,
    pub auto_scaling_groups: Vec<GroupRef>,
    /// `ECS_SERVICES`: each service in each region it runs in.
    pub ecs_services: Vec<ServiceRef>,
    pub control_table: String,
    pub health_table: String,
    pub health_key: HealthKey,
    pub cooldown: Duration,
    pub refresh: RefreshPreferences,
    pub timeouts: Timeouts,
    /// How long an unfinished transition belongs to the invocation that started it before
    /// another invocation may take it over and finish it (crash recovery).
    pub transition_lease: Duration,
    /// Local emulation only: one endpoint per region.
    pub region_endpoints: BTreeMap<Region, String>,
    /// Health probe: seconds between samples within one scheduled invocation.
    pub probe_interval: Duration,
    /// Health probe: how long one scheduled invocation keeps sampling.
    pub probe_window: Duration,
    /// CloudWatch namespace of the probe's metrics.
    pub metrics_namespace: String,
    pub failback: FailbackPolicy,
    pub capacity: CapacityPolicy,
    pub reload: ReloadPolicy,
    /// `FAILBACK_WINDOW`: when an automatic failback may happen; `None`, any time.
    pub failback_window: Option<FailbackWindow>,
    /// Where operators hear of what regionpilot did.
    pub events: EventPolicy,
    /// `TRAFFIC`: emit the `ActiveRegion` metric that the template's Route 53 health
    /// checks follow, so DNS moves with the control state.
    pub traffic: bool,
    /// `READINESS_INTERVAL_SECONDS`: how often the verifier evaluates whether a failover
    /// would work now; 0, every run.
    pub readiness_interval: Duration,
    /// `GATE_TOKEN`: the first segment of a serving gate's path; empty, no gate (every
    /// function URL request is answered 404).
    pub gate_token: String,
    /// `GATE_STALE_SECONDS`: how long a gate answers with the last decision it read.
    pub gate_stale: Duration,
    pub traffic_signal: TrafficSignal,
    /// Set with `TRAFFIC_SIGNAL=routing-control` (and only then).
    pub routing_controls: Option<RoutingControlConfig>,
    pub role: DeploymentRole,
    /// `HOOKS`: the functions a transition invokes, and how.
    pub hooks: HookPolicy,
    /// `QUORUM`, `QUORUM_WINDOW_SECONDS`: how many vantage points must see a region down.
    pub quorum: crate::evidence::quorum::QuorumPolicy,
}

impl Config {
    /// This function's probe is a vantage point: it samples every region and records its
    /// verdicts in the control table (every control stack's; a regional stack's when
    /// given the control table).
    pub fn probes(&self) -> bool {
        !self.control_table.is_empty()
    }

    pub fn home(&self) -> &Region {
        // `parse` guarantees at least two regions.
        &self.regions[0]
    }

    pub fn contains(&self, region: &Region) -> bool {
        self.regions.contains(region)
    }

    /// The ECS services of `region`, in configured order.
    pub fn services_in<'a>(&'a self, region: &'a Region) -> impl Iterator<Item = &'a ServiceRef> {
        self.ecs_services
            .iter()
            .filter(move |s| &s.region == region)
    }

    /// The Auto Scaling groups of `region`, in configured order.
    pub fn groups_in<'a>(&'a self, region: &'a Region) -> impl Iterator<Item = &'a GroupRef> {
        self.auto_scaling_groups
            .iter()
            .filter(move |g| &g.region == region)
    }

    /// Every region an AWS client is needed for: the configured ones and our own.
    pub fn client_regions(&self) -> BTreeSet<Region> {
        let mut all: BTreeSet<Region> = self.regions.iter().cloned().collect();
        all.insert(self.own_region.clone());
        all.insert(self.control_region.clone());
        all
    }

    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Parses configuration from any variable source (the environment in Lambda, a map in
    /// tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &'static str| -> Option<String> {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str, what: &str| -> Result<String> {
            get(name).ok_or_else(|| Error::Config {
                variable: name,
                problem: format!("is not set; expected {what}"),
            })
        };

        let regions = parse_regions(&required(
            "REGIONS",
            "a comma-separated list of at least two regions, home first",
        )?)?;
        let own_region = match get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")) {
            Some(text) => Region::parse(&text).map_err(|problem| Error::Config {
                variable: "AWS_REGION",
                problem,
            })?,
            None => {
                return Err(Error::Config {
                    variable: "AWS_REGION",
                    problem: "is not set; expected the region this function runs in".into(),
                });
            }
        };
        let active_region_parameter = required(
            "ACTIVE_REGION_PARAMETER",
            "the SSM parameter name that holds the active region, e.g. /myapp/active-region",
        )?;
        check_parameter_name(&active_region_parameter)?;
        let auto_scaling_groups = parse_groups(
            get("AUTO_SCALING_GROUPS").as_deref().unwrap_or(""),
            &regions,
        )?;
        let ecs_services = parse_services(get("ECS_SERVICES").as_deref().unwrap_or(""), &regions)?;
        if let Some(both) = ecs_services
            .iter()
            .find(|s| auto_scaling_groups.iter().any(|g| g.key() == s.key()))
        {
            return Err(Error::Config {
                variable: "ECS_SERVICES",
                problem: format!(
                    "{} is also an Auto Scaling group's key (AUTO_SCALING_GROUPS); their records would collide",
                    both.key()
                ),
            });
        }
        // A service records as much as a group: capacity, deployment, snapshot.
        let targets = auto_scaling_groups.len() + ecs_services.len();
        let projected = projected_state_bytes(targets);
        if projected > ITEM_LIMIT_BYTES * ITEM_BUDGET_PERCENT / 100 {
            let most = (ITEM_LIMIT_BYTES * ITEM_BUDGET_PERCENT / 100 - STATE_BASE_BYTES)
                / STATE_BYTES_PER_GROUP;
            return Err(Error::Config {
                variable: if ecs_services.is_empty() {
                    "AUTO_SCALING_GROUPS"
                } else {
                    "ECS_SERVICES"
                },
                problem: format!(
                    "{targets} groups and services make a control state item of up to {} KB at a switch, over {ITEM_BUDGET_PERCENT} % of DynamoDB's {} KB item limit (a write over it would fail every switch); use at most {most} groups and services (AUTO_SCALING_GROUPS, ECS_SERVICES) per stack",
                    projected / 1024,
                    ITEM_LIMIT_BYTES / 1024
                ),
            });
        }
        let role = match get("DEPLOYMENT_ROLE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("control") => DeploymentRole::Control,
            Some("regional") => DeploymentRole::Regional,
            Some(other) => {
                return Err(Error::Config {
                    variable: "DEPLOYMENT_ROLE",
                    problem: format!(
                        "{:?} is neither control nor regional",
                        crate::text::clip(other, 40)
                    ),
                });
            }
        };
        // A regional stack answers as its region's gate, from its parameter. Given the
        // control table it is also a vantage point: its probe samples every region and
        // writes its verdicts there. Without one it probes nothing and needs no table.
        let control_table = match (role, get("CONTROL_TABLE")) {
            (_, Some(value)) => check_table_name("CONTROL_TABLE", &value).map(|()| value)?,
            (DeploymentRole::Regional, None) => String::new(),
            (DeploymentRole::Control, None) => {
                required("CONTROL_TABLE", "the DynamoDB control table name")?
            }
        };
        let probes = !control_table.is_empty();
        let control_region = parse_control_region(&get, role, probes, &own_region)?;
        let table = |name: &'static str, what: &str| -> Result<String> {
            match get(name) {
                Some(value) => check_table_name(name, &value).map(|()| value),
                None if probes => required(name, what),
                None => Ok(String::new()),
            }
        };
        let health_table = table(
            "HEALTH_TABLE",
            "the replicated DynamoDB table the probe reads",
        )?;
        let health_key = match get("HEALTH_KEY") {
            None if !probes => HealthKey {
                attribute: String::new(),
                value: String::new(),
            },
            _ => parse_health_key(&required(
                "HEALTH_KEY",
                "attribute=value, the key of the canary item, e.g. pk=regionpilot-canary",
            )?)?,
        };

        let seconds =
            |bounds: Bounds| -> Result<Duration> { Ok(Duration::from_secs(bounds.parse(&get)?)) };
        let millis =
            |bounds: Bounds| -> Result<Duration> { Ok(Duration::from_millis(bounds.parse(&get)?)) };

        let cooldown = seconds(COOLDOWN_SECONDS)?;
        let refresh = RefreshPreferences {
            min_healthy_percent: REFRESH_MIN_HEALTHY_PERCENT.parse(&get)? as i32,
            warmup: seconds(REFRESH_WARMUP_SECONDS)?,
        };
        let timeouts = Timeouts {
            connect: millis(CONNECT_TIMEOUT_MS)?,
            call_attempt: millis(CALL_TIMEOUT_MS)?,
            call_max_attempts: CALL_MAX_ATTEMPTS.parse(&get)? as u32,
            probe: millis(PROBE_TIMEOUT_MS)?,
        };
        let transition_lease = seconds(TRANSITION_LEASE_SECONDS)?;
        let region_endpoints = parse_endpoints(get("REGION_ENDPOINTS").as_deref().unwrap_or(""))?;
        let probe_interval = parse_probe_interval(&get)?;
        if timeouts.probe >= probe_interval {
            return Err(Error::Config {
                variable: "PROBE_TIMEOUT_MS",
                problem: format!(
                    "{} ms is not below PROBE_INTERVAL_SECONDS ({} s): a sampling round would still be running when the next is due",
                    timeouts.probe.as_millis(),
                    probe_interval.as_secs()
                ),
            });
        }
        let probe_window = seconds(PROBE_WINDOW_SECONDS)?;
        let metrics_namespace = get("METRICS_NAMESPACE").unwrap_or_else(|| "RegionPilot".into());
        if metrics_namespace.len() > 255
            || metrics_namespace.contains(':')
            || metrics_namespace.chars().any(char::is_control)
        {
            return Err(Error::Config {
                variable: "METRICS_NAMESPACE",
                problem: "must be 1-255 characters without ':' or control characters".into(),
            });
        }

        let mode = match get("FAILBACK_MODE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("approve") => FailbackMode::Approve,
            Some("auto") => FailbackMode::Auto,
            Some(other) => {
                return Err(Error::Config {
                    variable: "FAILBACK_MODE",
                    problem: format!(
                        "{:?} is neither auto nor approve",
                        crate::text::clip(other, 40)
                    ),
                });
            }
        };
        let failback = FailbackPolicy {
            mode,
            healthy_checks: FAILBACK_HEALTHY_CHECKS.parse(&get)? as u32,
            min_hold: seconds(FAILBACK_MIN_HOLD_SECONDS)?,
            max_lag: seconds(FAILBACK_MAX_LAG_SECONDS)?,
            drain_wait: seconds(FAILBACK_DRAIN_WAIT_SECONDS)?,
            max_automatic_switches_per_day: MAX_AUTOMATIC_SWITCHES_PER_DAY.parse(&get)? as u32,
        };

        let capacity = CapacityPolicy {
            percent: CAPACITY_PERCENT.parse(&get)? as u32,
            scale_in_delay: seconds(SCALE_IN_DELAY_SECONDS)?,
        };
        let reload = parse_reload(&get)?;
        let events = EventPolicy {
            bus: get("EVENT_BUS_NAME").unwrap_or_else(|| "default".into()),
            app: get("APP_NAME").unwrap_or_else(|| "regionpilot".into()),
        };
        // EventBridge: a bus name or ARN of [/\.\-_A-Za-z0-9:], at most 1600 characters.
        if events.bus.len() > 1600
            || !events
                .bus
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-:".contains(c))
        {
            return Err(Error::Config {
                variable: "EVENT_BUS_NAME",
                problem: format!(
                    "{:?} is not an EventBridge bus name or ARN",
                    crate::text::clip(&events.bus, 60)
                ),
            });
        }
        if events.app.chars().count() > 128 || events.app.chars().any(char::is_control) {
            return Err(Error::Config {
                variable: "APP_NAME",
                problem: "must be at most 128 characters without control characters".into(),
            });
        }
        let failback_window = get("FAILBACK_WINDOW")
            .map(|text| {
                FailbackWindow::parse(&text).map_err(|problem| Error::Config {
                    variable: "FAILBACK_WINDOW",
                    problem,
                })
            })
            .transpose()?;
        let readiness_interval = seconds(READINESS_INTERVAL_SECONDS)?;
        let gate_token = get("GATE_TOKEN").unwrap_or_default();
        // A path segment a health check can send: URL-safe, and long enough not to guess.
        if !gate_token.is_empty()
            && (gate_token.len() < 16
                || gate_token.len() > 128
                || !gate_token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(Error::Config {
                variable: "GATE_TOKEN",
                problem: "must be 16-128 characters of A-Z, a-z, 0-9, - and _".into(),
            });
        }
        let gate_stale = seconds(GATE_STALE_SECONDS)?;
        let traffic = match get("TRAFFIC")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(Error::Config {
                    variable: "TRAFFIC",
                    problem: format!("{:?} is neither on nor off", crate::text::clip(other, 40)),
                });
            }
        };

        let traffic_signal = match get("TRAFFIC_SIGNAL")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            // `auto` is the template's to resolve; a function told `auto` does what both
            // of its outcomes ask of it (the metric, and the gate if it has a token).
            None | Some("metric") | Some("auto") => TrafficSignal::Metric,
            Some("gate") => TrafficSignal::Gate,
            Some("routing-control") => TrafficSignal::RoutingControl,
            Some(other) => {
                return Err(Error::Config {
                    variable: "TRAFFIC_SIGNAL",
                    problem: format!(
                        "{:?} is not metric, gate, routing-control or auto",
                        crate::text::clip(other, 40)
                    ),
                });
            }
        };
        let routing_controls = match traffic_signal {
            TrafficSignal::RoutingControl => Some(parse_routing_controls(&get, &regions)?),
            _ => None,
        };
        let quorum = parse_quorum(&get, probe_interval)?;
        let hooks = HookPolicy {
            hooks: parse_hooks(get("HOOKS").as_deref().unwrap_or(""), &regions, &own_region)?,
            timeout: Duration::from_secs(HOOK_TIMEOUT_SECONDS.parse(&get)?),
            max_attempts: HOOK_MAX_ATTEMPTS.parse(&get)? as u32,
        };

        Ok(Config {
            regions,
            own_region,
            control_region,
            active_region_parameter,
            auto_scaling_groups,
            ecs_services,
            control_table,
            health_table,
            health_key,
            cooldown,
            refresh,
            timeouts,
            transition_lease,
            region_endpoints,
            probe_interval,
            probe_window,
            metrics_namespace,
            failback,
            capacity,
            reload,
            failback_window,
            events,
            traffic,
            readiness_interval,
            gate_token,
            gate_stale,
            traffic_signal,
            routing_controls,
            role,
            hooks,
            quorum,
        })
    }
}

/// `ROUTING_CONTROL_ENDPOINTS` (`region=https://...` per cluster endpoint, as the cluster's
/// `ClusterEndpoints` lists them) and `ROUTING_CONTROL_ARNS` (`region=arn` for every region
/// of `REGIONS`).
fn parse_routing_controls(
    get: &impl Fn(&'static str) -> Option<String>,
    regions: &[Region],
) -> Result<RoutingControlConfig> {
    let endpoints_text = get("ROUTING_CONTROL_ENDPOINTS").ok_or(Error::Config {
        variable: "ROUTING_CONTROL_ENDPOINTS",
        problem: "is not set; TRAFFIC_SIGNAL=routing-control needs the cluster's endpoints, region=https://host/v1 comma-separated".into(),
    })?;
    let bad_endpoint = |problem: String| Error::Config {
        variable: "ROUTING_CONTROL_ENDPOINTS",
        problem,
    };
    let mut endpoints = Vec::new();
    for entry in endpoints_text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let Some((region, url)) = entry.split_once('=') else {
            return Err(bad_endpoint(format!(
                "{:?} is not region=https://host/v1",
                crate::text::clip(entry, 60)
            )));
        };
        let region = Region::parse(region.trim()).map_err(bad_endpoint)?;
        let url = url.trim();
        // https, but for the local rig (plain http on the loopback address).
        let local = url.starts_with("http://127.0.0.1:") || url.starts_with("http://localhost:");
        let host = url.strip_prefix("https://").unwrap_or("");
        let host = host.split('/').next().unwrap_or("");
        if !local && (host.is_empty() || host.contains(char::is_whitespace)) {
            return Err(bad_endpoint(format!(
                "{:?} for {region} is not an https URL",
                crate::text::clip(url, 60)
            )));
        }
        endpoints.push(ClusterEndpoint {
            region,
            url: url.to_owned(),
        });
    }
    if endpoints.is_empty() {
        return Err(bad_endpoint("names no endpoint".into()));
    }
    let arns_text = get("ROUTING_CONTROL_ARNS").unwrap_or_default();
    let bad_arn = |problem: String| Error::Config {
        variable: "ROUTING_CONTROL_ARNS",
        problem,
    };
    let mut arns = BTreeMap::new();
    for entry in arns_text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let Some((region, arn)) = entry.split_once('=') else {
            return Err(bad_arn(format!(
                "{:?} is not region=routing-control-arn",
                crate::text::clip(entry, 60)
            )));
        };
        let region = Region::parse(region.trim()).map_err(bad_arn)?;
        let arn = arn.trim();
        let valid = arn.starts_with("arn:")
            && arn.contains(":route53-recovery-control::")
            && arn.contains("/routingcontrol/")
            && arn.len() <= 256;
        if !valid {
            return Err(bad_arn(format!(
                "{:?} for {region} is not a routing control ARN (arn:aws:route53-recovery-control::<account>:controlpanel/<id>/routingcontrol/<id>)",
                crate::text::clip(arn, 80)
            )));
        }
        if !regions.contains(&region) {
            return Err(bad_arn(format!("{region} is not one of REGIONS")));
        }
        arns.insert(region, arn.to_owned());
    }
    let missing: Vec<&str> = regions
        .iter()
        .filter(|r| !arns.contains_key(*r))
        .map(Region::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(bad_arn(format!(
            "has no routing control for {}; TRAFFIC_SIGNAL=routing-control needs one per region of REGIONS",
            missing.join(", ")
        )));
    }
    Ok(RoutingControlConfig { endpoints, arns })
}

fn parse_reload(get: &impl Fn(&'static str) -> Option<String>) -> Result<ReloadPolicy> {
    let timeout = Duration::from_secs(RELOAD_TIMEOUT_SECONDS.parse(get)?);
    let mode = match get("RELOAD_MODE")
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("refresh") => ReloadMode::Refresh,
        Some("run-command") => {
            let commands: Vec<String> = get("RELOAD_COMMANDS")
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect();
            if commands.is_empty() {
                return Err(Error::Config {
                    variable: "RELOAD_COMMANDS",
                    problem: "is not set; RELOAD_MODE=run-command needs the shell commands that make an instance re-read the active region, e.g. /opt/app/bin/use-active-region && systemctl reload php-fpm".into(),
                });
            }
            ReloadMode::RunCommand { commands }
        }
        Some(other) => {
            return Err(Error::Config {
                variable: "RELOAD_MODE",
                problem: format!(
                    "{:?} is neither refresh nor run-command",
                    crate::text::clip(other, 40)
                ),
            });
        }
    };
    Ok(ReloadPolicy { mode, timeout })
}

fn parse_probe_interval(get: &impl Fn(&'static str) -> Option<String>) -> Result<Duration> {
    let Some(text) = get("PROBE_INTERVAL_SECONDS") else {
        return Ok(Duration::from_secs(PROBE_INTERVAL_DEFAULT));
    };
    match text.parse::<u64>() {
        Ok(n) if PROBE_INTERVALS.contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(Error::Config {
            variable: "PROBE_INTERVAL_SECONDS",
            problem: format!(
                "{:?} is not one of {PROBE_INTERVALS:?} (seconds that divide the unhealthy alarms' 10 s period)",
                crate::text::clip(&text, 40)
            ),
        }),
    }
}

fn number(
    get: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64> {
    let Some(text) = get(name) else {
        return Ok(default);
    };
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::Config {
            variable: name,
            problem: format!(
                "{:?} is not a whole number from {min} to {max}",
                crate::text::clip(&text, 40)
            ),
        }),
    }
}

fn parse_regions(text: &str) -> Result<Vec<Region>> {
    let bad = |problem: String| Error::Config {
        variable: "REGIONS",
        problem,
    };
    let mut regions = Vec::new();
    for part in text.split(',').map(str::trim) {
        let region = Region::parse(part).map_err(bad)?;
        if regions.contains(&region) {
            return Err(bad(format!("{region} is listed twice")));
        }
        regions.push(region);
    }
    if regions.len() < 2 {
        return Err(bad(format!(
            "needs at least two regions (home first, then standbys), got {}",
            regions.len()
        )));
    }
    Ok(regions)
}

fn parse_groups(text: &str, regions: &[Region]) -> Result<Vec<GroupRef>> {
    let bad = |problem: String| Error::Config {
        variable: "AUTO_SCALING_GROUPS",
        problem,
    };
    let entries: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.len() == 1 && !entries[0].contains('=') {
        check_group_name(entries[0]).map_err(bad)?;
        return Ok(regions
            .iter()
            .map(|region| GroupRef {
                region: region.clone(),
                name: entries[0].to_owned(),
            })
            .collect());
    }
    let mut groups = Vec::new();
    for entry in entries {
        let Some((region, name)) = entry.split_once('=') else {
            return Err(bad(format!(
                "{entry:?} is not region=name (a single bare name means that name in every region)"
            )));
        };
        let region = Region::parse(region.trim()).map_err(bad)?;
        if !regions.contains(&region) {
            return Err(bad(format!("{region} is not one of REGIONS")));
        }
        let name = name.trim();
        check_group_name(name).map_err(bad)?;
        let group = GroupRef {
            region,
            name: name.to_owned(),
        };
        if groups.contains(&group) {
            return Err(bad(format!("{} is listed twice", group.key())));
        }
        groups.push(group);
    }
    Ok(groups)
}

/// `QUORUM` (`majority`, the default, or a positive number) and `QUORUM_WINDOW_SECONDS`
/// (at least two probe intervals, so one late sample is no lost vote).
fn parse_quorum(
    get: &impl Fn(&'static str) -> Option<String>,
    probe_interval: Duration,
) -> Result<crate::evidence::quorum::QuorumPolicy> {
    use crate::evidence::quorum::{QuorumPolicy, QuorumRule};
    let rule = match get("QUORUM").map(|q| q.trim().to_ascii_lowercase()) {
        None => QuorumRule::Majority,
        Some(q) if q == "majority" => QuorumRule::Majority,
        Some(q) => match q.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => QuorumRule::AtLeast(n),
            _ => {
                return Err(Error::Config {
                    variable: "QUORUM",
                    problem: format!(
                        "{:?} is neither majority nor a number of vantage points from 1 to 100",
                        crate::text::clip(&q, 40)
                    ),
                });
            }
        },
    };
    let window = QUORUM_WINDOW_SECONDS.parse(get)?;
    if window < 2 * probe_interval.as_secs() {
        return Err(Error::Config {
            variable: "QUORUM_WINDOW_SECONDS",
            problem: format!(
                "{window} s is shorter than two probe intervals (PROBE_INTERVAL_SECONDS {}): one late sample would cost a vantage point its vote",
                probe_interval.as_secs()
            ),
        });
    }
    Ok(QuorumPolicy {
        rule,
        window: Duration::from_secs(window),
    })
}

/// `HOOKS`: comma-separated `stage=function` entries; the function a name (the control
/// plane's region's function of that name, optionally `name:qualifier`) or a Lambda ARN
/// (invoked in the region it names, which must be one regionpilot manages).
fn parse_hooks(text: &str, regions: &[Region], own_region: &Region) -> Result<Vec<HookRef>> {
    let bad = |problem: String| Error::Config {
        variable: "HOOKS",
        problem,
    };
    let mut hooks: Vec<HookRef> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let clipped = crate::text::clip(entry, 80);
        let Some((stage, function)) = entry.split_once('=') else {
            return Err(bad(format!(
                "{clipped:?} is not stage=function (stage: prepare, act or verify)"
            )));
        };
        let stage = match stage.trim().to_ascii_lowercase().as_str() {
            "prepare" => HookStage::Prepare,
            "act" => HookStage::Act,
            "verify" => HookStage::Verify,
            other => {
                return Err(bad(format!(
                    "{:?} in {clipped:?} is not a stage: prepare, act or verify",
                    crate::text::clip(other, 40)
                )));
            }
        };
        let function = function.trim();
        if function.is_empty() {
            return Err(bad(format!("{clipped:?} names no function")));
        }
        let region = match function.strip_prefix("arn:") {
            Some(_) => lambda_arn_region(function).map_err(|problem| {
                bad(format!("{:?} {problem}", crate::text::clip(function, 140)))
            })?,
            None => {
                check_function_name(function).map_err(bad)?;
                own_region.clone()
            }
        };
        if &region != own_region && !regions.contains(&region) {
            return Err(bad(format!(
                "{function} is in {region}, which is neither one of REGIONS nor this function's region ({own_region})"
            )));
        }
        let hook = HookRef {
            stage,
            function: function.to_owned(),
            region,
        };
        if hooks.iter().any(|h| h.key() == hook.key()) {
            return Err(bad(format!("{} is listed twice", hook.key())));
        }
        hooks.push(hook);
    }
    Ok(hooks)
}

/// A function name as Lambda takes it: 1-64 of letters, digits, - and _, optionally
/// followed by `:` and a version or alias.
fn check_function_name(text: &str) -> std::result::Result<(), String> {
    let (name, qualifier) = match text.split_once(':') {
        Some((name, qualifier)) => (name, Some(qualifier)),
        None => (text, None),
    };
    let name_ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let qualifier_ok = qualifier.is_none_or(|q| {
        (1..=128).contains(&q.len())
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '$')
    });
    if name_ok && qualifier_ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a Lambda function name (1-64 letters, digits, - and _, optionally :version or :alias) nor an ARN",
            crate::text::clip(text, 80)
        ))
    }
}

/// The region of `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
fn lambda_arn_region(arn: &str) -> std::result::Result<Region, String> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let well_formed = parts.len() == 7
        && parts[1].starts_with("aws")
        && parts[2] == "lambda"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5] == "function";
    if !well_formed {
        return Err(
            "is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)"
                .into(),
        );
    }
    check_function_name(parts[6])?;
    Region::parse(parts[3])
}

/// An ECS service in one region (`ECS_SERVICES`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceRef {
    pub region: Region,
    pub cluster: String,
    pub service: String,
}

impl ServiceRef {
    /// `region/cluster/service`: its key in answers and the control state.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.region, self.cluster, self.service)
    }

    /// `cluster/service`, as `ECS_SERVICES` names it: what counterparts share.
    pub fn path(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }

    /// In an operator's words.
    pub fn resource(&self) -> String {
        format!("the ECS service {}", self.path())
    }

    /// Its Application Auto Scaling `ResourceId`.
    pub fn scaling_resource_id(&self) -> String {
        format!("service/{}", self.path())
    }
}

/// `ECS_SERVICES`: comma-separated `region=cluster/service` entries, or bare
/// `cluster/service` entries meaning that service in every region.
fn parse_services(text: &str, regions: &[Region]) -> Result<Vec<ServiceRef>> {
    let bad = |problem: String| Error::Config {
        variable: "ECS_SERVICES",
        problem,
    };
    let mut services = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (in_regions, path) = match entry.split_once('=') {
            Some((region, path)) => {
                let region = Region::parse(region.trim()).map_err(bad)?;
                if !regions.contains(&region) {
                    return Err(bad(format!("{region} is not one of REGIONS")));
                }
                (vec![region], path.trim())
            }
            None => (regions.to_vec(), entry),
        };
        let Some((cluster, service)) = path.split_once('/') else {
            return Err(bad(format!(
                "{:?} is not cluster/service or region=cluster/service",
                crate::text::clip(entry, 60)
            )));
        };
        for name in [cluster, service] {
            let valid = !name.is_empty()
                && name.len() <= 255
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(bad(format!(
                    "{:?} in {:?} is not an ECS cluster or service name (letters, digits, - and _, at most 255)",
                    crate::text::clip(name, 40),
                    crate::text::clip(entry, 60)
                )));
            }
        }
        for region in in_regions {
            let service = ServiceRef {
                region,
                cluster: cluster.to_owned(),
                service: service.to_owned(),
            };
            if services.contains(&service) {
                return Err(bad(format!("{} is listed twice", service.key())));
            }
            services.push(service);
        }
    }
    Ok(services)
}

fn check_group_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        Err(format!(
            "{:?} is not an Auto Scaling group name",
            crate::text::clip(name, 40)
        ))
    } else {
        Ok(())
    }
}

fn parse_health_key(text: &str) -> Result<HealthKey> {
    match text.split_once('=') {
        Some((attribute, value)) if !attribute.trim().is_empty() && !value.trim().is_empty() => {
            Ok(HealthKey {
                attribute: attribute.trim().to_owned(),
                value: value.trim().to_owned(),
            })
        }
        _ => Err(Error::Config {
            variable: "HEALTH_KEY",
            problem: format!(
                "{:?} is not attribute=value (e.g. pk=regionpilot-canary)",
                crate::text::clip(text, 40)
            ),
        }),
    }
}

/// `CONTROL_TABLE_REGION`: required by a regional stack's probe (its control table is
/// the control stack's, elsewhere); a control stack's functions use the table in their
/// own region, so there it may only name that region.
fn parse_control_region(
    get: &impl Fn(&'static str) -> Option<String>,
    role: DeploymentRole,
    probes: bool,
    own_region: &Region,
) -> Result<Region> {
    let bad = |problem: String| Error::Config {
        variable: "CONTROL_TABLE_REGION",
        problem,
    };
    let named = get("CONTROL_TABLE_REGION")
        .map(|text| Region::parse(&text).map_err(bad))
        .transpose()?;
    match (role, named) {
        (DeploymentRole::Control, None) => Ok(own_region.clone()),
        (DeploymentRole::Control, Some(region)) if region == *own_region => Ok(region),
        (DeploymentRole::Control, Some(region)) => Err(bad(format!(
            "{region} is not this function's region ({own_region}): a control stack's functions use the control table in their own region (single mode's table, or mrsc's replica there); only a regional stack's probe names another"
        ))),
        // The control stack's probe is that region's vantage point: a second would share
        // its item in the control table.
        (DeploymentRole::Regional, Some(region)) if probes && region == *own_region => {
            Err(bad(format!(
                "{region} is this function's own region: the control stack's probe is already the vantage point there (a second probe would share its item in the control table); deploy this vantage point in another region"
            )))
        }
        (DeploymentRole::Regional, Some(region)) => Ok(region),
        (DeploymentRole::Regional, None) if probes => Err(bad(
            "is not set; a regional stack given CONTROL_TABLE is a vantage point and writes its verdicts to the control table: name the control stack's region".into(),
        )),
        (DeploymentRole::Regional, None) => Ok(own_region.clone()),
    }
}

fn parse_endpoints(text: &str) -> Result<BTreeMap<Region, String>> {
    let bad = |problem: String| Error::Config {
        variable: "REGION_ENDPOINTS",
        problem,
    };
    let mut endpoints = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((region, url)) = entry.split_once('=') else {
            return Err(bad(format!("{entry:?} is not region=url")));
        };
        let region = Region::parse(region.trim()).map_err(bad)?;
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad(format!("{url:?} for {region} is not an http(s) URL")));
        }
        endpoints.insert(region, url.to_owned());
    }
    Ok(endpoints)
}

fn check_table_name(variable: &'static str, name: &str) -> Result<()> {
    let valid = (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(Error::Config {
            variable,
            problem: format!(
                "{:?} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ - .)",
                crate::text::clip(name, 40)
            ),
        })
    }
}

fn check_parameter_name(name: &str) -> Result<()> {
    let valid = name.len() <= 1011
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'));
    if valid {
        Ok(())
    } else {
        Err(Error::Config {
            variable: "ACTIVE_REGION_PARAMETER",
            problem: format!(
                "{:?} is not an SSM parameter name (a-z A-Z 0-9 _ . - /)",
                crate::text::clip(name, 40)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("REGIONS", "us-east-1, us-west-2"),
            ("AWS_REGION", "us-west-2"),
            ("ACTIVE_REGION_PARAMETER", "/app/active-region"),
            ("AUTO_SCALING_GROUPS", "app-asg"),
            ("CONTROL_TABLE", "regionpilot-control"),
            ("HEALTH_TABLE", "app-health"),
            ("HEALTH_KEY", "pk=canary"),
        ]
    }

    fn parse(vars: &[(&str, &str)]) -> Result<Config> {
        Config::from_lookup(|name| {
            vars.iter()
                .rev()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars = base();
        vars.extend_from_slice(extra);
        vars
    }

    fn config_error(vars: &[(&str, &str)]) -> (String, String) {
        match parse(vars) {
            Err(Error::Config { variable, problem }) => (variable.to_owned(), problem),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_and_a_bare_group_name_means_every_region() {
        let config = parse(&base()).unwrap();
        assert_eq!(config.home().as_str(), "us-east-1");
        assert_eq!(config.cooldown, Duration::from_secs(300));
        assert_eq!(config.refresh.min_healthy_percent, 90);
        assert_eq!(config.refresh.warmup, Duration::from_secs(60));
        let keys: Vec<String> = config
            .auto_scaling_groups
            .iter()
            .map(GroupRef::key)
            .collect();
        assert_eq!(keys, ["us-east-1/app-asg", "us-west-2/app-asg"]);
        assert_eq!(config.health_key.attribute, "pk");
    }

    #[test]
    fn ecs_services_are_bare_in_every_region_or_named_per_region() {
        let config = parse(&with(&[(
            "ECS_SERVICES",
            "app/web, us-west-2=dr-app/web_2 ,app/worker",
        )]))
        .unwrap();
        let keys: Vec<String> = config.ecs_services.iter().map(ServiceRef::key).collect();
        assert_eq!(
            keys,
            [
                "us-east-1/app/web",
                "us-west-2/app/web",
                "us-west-2/dr-app/web_2",
                "us-east-1/app/worker",
                "us-west-2/app/worker"
            ]
        );
        assert_eq!(
            config.ecs_services[2].scaling_resource_id(),
            "service/dr-app/web_2"
        );
        assert!(parse(&base()).unwrap().ecs_services.is_empty());
    }

    #[test]
    fn a_malformed_ecs_services_entry_fails_init_naming_the_variable() {
        for (value, says) in [
            ("web", "is not cluster/service"),
            ("app/", "is not an ECS cluster or service name"),
            ("app/web/x", "is not an ECS cluster or service name"),
            ("app/we b", "is not an ECS cluster or service name"),
            ("eu-west-1=app/web", "is not one of REGIONS"),
            ("nowhere=app/web", ""),
            ("app/web,us-east-1=app/web", "listed twice"),
            // A service whose key is a group's: their records would collide.
            ("us-east-1=app-asg/x", ""),
        ] {
            let vars = if value.starts_with("us-east-1=app-asg") {
                with(&[
                    ("AUTO_SCALING_GROUPS", "us-east-1=app-asg/x"),
                    ("ECS_SERVICES", value),
                ])
            } else {
                with(&[("ECS_SERVICES", value)])
            };
            let (variable, problem) = config_error(&vars);
            assert_eq!(variable, "ECS_SERVICES", "{value}: {problem}");
            assert!(problem.contains(says), "{value}: {problem}");
        }
    }

    #[test]
    fn hooks_are_stage_equals_function_a_bare_name_in_the_control_region() {
        let config = parse(&with(&[
            ("AWS_REGION", "us-east-1"),
            (
                "HOOKS",
                "prepare=stop-writers, VERIFY=arn:aws:lambda:us-west-2:123456789012:function:smoke-test:live,act=clear_cache:3",
            ),
            ("HOOK_TIMEOUT_SECONDS", "600"),
        ]))
        .unwrap();
        let hooks: Vec<(String, &str)> = config
            .hooks
            .hooks
            .iter()
            .map(|h| (h.key(), h.region.as_str()))
            .collect();
        assert_eq!(
            hooks,
            [
                ("prepare/stop-writers".to_owned(), "us-east-1"),
                (
                    "verify/arn:aws:lambda:us-west-2:123456789012:function:smoke-test:live"
                        .to_owned(),
                    "us-west-2"
                ),
                ("act/clear_cache:3".to_owned(), "us-east-1"),
            ]
        );
        assert_eq!(config.hooks.timeout, Duration::from_secs(600));
        assert_eq!(config.hooks.max_attempts, 3);
        let none = parse(&base()).unwrap().hooks;
        assert!(none.hooks.is_empty());
        assert_eq!(none.timeout, Duration::from_secs(60));
    }

    /// Each `(variable, value)` alone fails init naming `variable`, saying `says`.
    fn refused_naming(cases: &[(&'static str, &'static str, &str)]) {
        for (variable, value, says) in cases {
            let (named, problem) = config_error(&with(&[(variable, value)]));
            assert_eq!(named, *variable, "{value}: {problem}");
            assert!(problem.contains(says), "{value}: {problem}");
        }
    }

    #[test]
    fn a_regional_stack_given_the_control_table_is_a_vantage_point_writing_to_its_region() {
        let regional = [
            ("REGIONS", "us-east-1,us-west-2"),
            ("AWS_REGION", "eu-west-1"),
            ("ACTIVE_REGION_PARAMETER", "/app/active-region"),
            ("DEPLOYMENT_ROLE", "regional"),
        ];
        // A gate alone: no table, no probe, the control region its own.
        let gate = parse(&regional).unwrap();
        assert!(!gate.probes());
        assert_eq!(gate.control_region, Region::parse("eu-west-1").unwrap());
        // A vantage point: the control stack's table, in the control stack's region.
        let mut vantage = regional.to_vec();
        vantage.extend([
            ("CONTROL_TABLE", "regionpilot-control"),
            ("CONTROL_TABLE_REGION", "us-west-2"),
            ("HEALTH_TABLE", "app-health"),
            ("HEALTH_KEY", "pk=canary"),
        ]);
        let config = parse(&vantage).unwrap();
        assert!(config.probes());
        assert_eq!(config.control_region, Region::parse("us-west-2").unwrap());
        assert_eq!(config.own_region, Region::parse("eu-west-1").unwrap());
        assert!(config.client_regions().contains(&config.control_region));
        // Without the control table's region, or the health table, init names the variable.
        for (missing, says) in [
            ("CONTROL_TABLE_REGION", "name the control stack's region"),
            ("HEALTH_TABLE", "is not set"),
            ("HEALTH_KEY", "is not set"),
        ] {
            let vars: Vec<(&str, &str)> = vantage
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let (named, problem) = config_error(&vars);
            assert_eq!(named, missing, "{problem}");
            assert!(problem.contains(says), "{problem}");
        }
        // A regional probe in the control table's own region would share the control
        // stack's probe's item.
        let mut beside = vantage.clone();
        beside.push(("CONTROL_TABLE_REGION", "eu-west-1"));
        let (named, problem) = config_error(&beside);
        assert_eq!(named, "CONTROL_TABLE_REGION");
        assert!(
            problem.contains("is this function's own region"),
            "{problem}"
        );
        // A control stack's functions use the table in their own region.
        assert_eq!(
            parse(&with(&[("CONTROL_TABLE_REGION", "us-west-2")]))
                .unwrap()
                .control_region,
            Region::parse("us-west-2").unwrap()
        );
        refused_naming(&[
            (
                "CONTROL_TABLE_REGION",
                "us-east-1",
                "is not this function's region (us-west-2)",
            ),
            ("CONTROL_TABLE_REGION", "nowhere", "nowhere"),
        ]);
    }

    #[test]
    fn quorum_is_majority_or_a_number_and_its_window_at_least_two_probe_intervals() {
        use crate::evidence::quorum::QuorumRule;
        let defaults = parse(&base()).unwrap().quorum;
        assert_eq!(defaults.rule, QuorumRule::Majority);
        assert_eq!(defaults.window, Duration::from_secs(30));
        let set = parse(&with(&[
            ("QUORUM", "2"),
            ("PROBE_INTERVAL_SECONDS", "5"),
            ("QUORUM_WINDOW_SECONDS", "10"),
        ]))
        .unwrap()
        .quorum;
        assert_eq!(set.rule, QuorumRule::AtLeast(2));
        assert_eq!(set.window, Duration::from_secs(10));
        refused_naming(&[
            ("QUORUM", "most", "neither majority nor a number"),
            ("QUORUM", "0", "neither majority nor a number"),
            ("QUORUM", "-1", "neither majority nor a number"),
            (
                "QUORUM_WINDOW_SECONDS",
                "19",
                "shorter than two probe intervals",
            ),
            ("QUORUM_WINDOW_SECONDS", "3601", "from 2 to 3600"),
        ]);
    }

    #[test]
    fn a_malformed_hook_fails_init_naming_the_variable() {
        refused_naming(&[
            ("HOOKS", "cleanup=fn", "is not a stage"),
            ("HOOKS", "verify=", "names no function"),
            ("HOOKS", "verify= ,act=x", "names no function"),
            ("HOOKS", "smoke-test", "is not stage=function"),
            ("HOOKS", "act=bad name", "is not a Lambda function name"),
            (
                "HOOKS",
                "act=arn:aws:lambda:us-west-2:12:function:x",
                "is not a Lambda function ARN",
            ),
            (
                "HOOKS",
                "act=arn:aws:lambda:ap-south-1:123456789012:function:x",
                "neither one of REGIONS",
            ),
            ("HOOKS", "act=x,act=x", "listed twice"),
            ("HOOK_TIMEOUT_SECONDS", "0", "from 1 to 600"),
            ("HOOK_TIMEOUT_SECONDS", "601", "from 1 to 600"),
            ("HOOK_MAX_ATTEMPTS", "0", "from 1 to 10"),
        ]);
    }

    #[test]
    fn region_pairs_and_endpoints_parse() {
        let config = parse(&with(&[
            ("AUTO_SCALING_GROUPS", "us-west-2=web-b, us-east-1=web-a"),
            (
                "REGION_ENDPOINTS",
                "us-east-1=http://127.0.0.1:5101,us-west-2=http://127.0.0.1:5102",
            ),
        ]))
        .unwrap();
        let keys: Vec<String> = config
            .auto_scaling_groups
            .iter()
            .map(GroupRef::key)
            .collect();
        assert_eq!(keys, ["us-west-2/web-b", "us-east-1/web-a"]);
        assert_eq!(config.region_endpoints.len(), 2);
    }

    #[test]
    fn traffic_is_on_unless_turned_off() {
        assert!(parse(&base()).unwrap().traffic);
        assert!(parse(&with(&[("TRAFFIC", "on")])).unwrap().traffic);
        assert!(!parse(&with(&[("TRAFFIC", "Off")])).unwrap().traffic);
    }

    #[test]
    fn capacity_and_reload_defaults_and_run_command_lines() {
        let config = parse(&base()).unwrap();
        assert_eq!(config.capacity.percent, 100);
        assert_eq!(config.capacity.scale_in_delay, Duration::from_secs(900));
        assert_eq!(config.readiness_interval, Duration::from_secs(900));
        assert_eq!(config.reload.mode, ReloadMode::Refresh);
        assert_eq!(config.reload.timeout, Duration::from_secs(120));
        let config = parse(&with(&[
            ("RELOAD_MODE", "Run-Command"),
            (
                "RELOAD_COMMANDS",
                "/opt/app/bin/use-active-region && systemctl reload php-fpm\n\n  echo done  ",
            ),
            ("CAPACITY_PERCENT", "0"),
        ]))
        .unwrap();
        assert_eq!(
            config.reload.mode,
            ReloadMode::RunCommand {
                commands: vec![
                    "/opt/app/bin/use-active-region && systemctl reload php-fpm".into(),
                    "echo done".into()
                ]
            }
        );
        assert_eq!(config.capacity.percent, 0);
    }

    #[test]
    fn empty_group_list_means_nothing_to_roll() {
        let config = parse(&with(&[("AUTO_SCALING_GROUPS", "")])).unwrap();
        assert!(config.auto_scaling_groups.is_empty());
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[("REGIONS", "us-east-1")], "REGIONS", "at least two"),
            (
                &[("REGIONS", "us-east-1,us-east-1")],
                "REGIONS",
                "listed twice",
            ),
            (
                &[("REGIONS", "us-east-1,mars-1")],
                "REGIONS",
                "not an AWS region",
            ),
            (
                &[("COOLDOWN_SECONDS", "soon")],
                "COOLDOWN_SECONDS",
                "whole number",
            ),
            (
                &[("REFRESH_MIN_HEALTHY_PERCENT", "101")],
                "REFRESH_MIN_HEALTHY_PERCENT",
                "0 to 100",
            ),
            (&[("HEALTH_KEY", "canary")], "HEALTH_KEY", "attribute=value"),
            (
                &[("AUTO_SCALING_GROUPS", "eu-west-1=x,us-east-1=y")],
                "AUTO_SCALING_GROUPS",
                "not one of REGIONS",
            ),
            (
                &[("AUTO_SCALING_GROUPS", "a,b")],
                "AUTO_SCALING_GROUPS",
                "region=name",
            ),
            (
                &[("REGION_ENDPOINTS", "us-east-1=localhost:5")],
                "REGION_ENDPOINTS",
                "http",
            ),
            (&[("CONTROL_TABLE", "a b")], "CONTROL_TABLE", "table name"),
            (&[("PROBE_TIMEOUT_MS", "0")], "PROBE_TIMEOUT_MS", "from 50"),
            (
                &[("PROBE_TIMEOUT_MS", "4001")],
                "PROBE_TIMEOUT_MS",
                "50 to 4000",
            ),
            (
                &[("PROBE_INTERVAL_SECONDS", "3")],
                "PROBE_INTERVAL_SECONDS",
                "not one of [1, 2, 5, 10]",
            ),
            (
                &[("PROBE_INTERVAL_SECONDS", "60")],
                "PROBE_INTERVAL_SECONDS",
                "10 s period",
            ),
            (
                &[
                    ("PROBE_INTERVAL_SECONDS", "1"),
                    ("PROBE_TIMEOUT_MS", "1000"),
                ],
                "PROBE_TIMEOUT_MS",
                "not below PROBE_INTERVAL_SECONDS (1 s)",
            ),
            (
                &[("FAILBACK_MODE", "sometimes")],
                "FAILBACK_MODE",
                "neither auto nor approve",
            ),
            (
                &[("MAX_AUTOMATIC_SWITCHES_PER_DAY", "0")],
                "MAX_AUTOMATIC_SWITCHES_PER_DAY",
                "from 1",
            ),
            (
                &[("RELOAD_MODE", "reboot")],
                "RELOAD_MODE",
                "neither refresh",
            ),
            (
                &[("RELOAD_MODE", "run-command")],
                "RELOAD_COMMANDS",
                "is not set",
            ),
            (
                &[("RELOAD_MODE", "run-command"), ("RELOAD_COMMANDS", "  \n ")],
                "RELOAD_COMMANDS",
                "is not set",
            ),
            (
                &[("CAPACITY_PERCENT", "1001")],
                "CAPACITY_PERCENT",
                "0 to 1000",
            ),
            (
                &[("CAPACITY_PERCENT", "-5")],
                "CAPACITY_PERCENT",
                "0 to 1000",
            ),
            (
                &[("RELOAD_TIMEOUT_SECONDS", "0")],
                "RELOAD_TIMEOUT_SECONDS",
                "from 1",
            ),
            (
                &[("SCALE_IN_DELAY_SECONDS", "later")],
                "SCALE_IN_DELAY_SECONDS",
                "whole number",
            ),
            (
                &[("READINESS_INTERVAL_SECONDS", "86401")],
                "READINESS_INTERVAL_SECONDS",
                "0 to 86400",
            ),
            (
                &[("READINESS_INTERVAL_SECONDS", "hourly")],
                "READINESS_INTERVAL_SECONDS",
                "whole number",
            ),
            (&[("TRAFFIC", "dns")], "TRAFFIC", "neither on nor off"),
            (
                &[("EVENT_BUS_NAME", "my bus")],
                "EVENT_BUS_NAME",
                "not an EventBridge bus",
            ),
            (
                &[("FAILBACK_WINDOW", "weekends 02:00-05:00")],
                "FAILBACK_WINDOW",
                "not a day",
            ),
        ];
        for (extra, variable, fragment) in cases {
            let (var, problem) = config_error(&with(extra));
            assert_eq!(var, *variable, "for {extra:?}");
            assert!(
                problem.contains(fragment),
                "{var}: {problem} lacks {fragment:?}"
            );
        }
    }

    #[test]
    fn every_bound_takes_its_default_and_ends_and_refuses_beyond_them() {
        let defaults = parse(&base()).unwrap();
        for bounds in NUMBERS {
            assert!(
                (bounds.min..=bounds.max).contains(&bounds.default),
                "{bounds:?}"
            );
            for edge in [bounds.min, bounds.max] {
                let text = edge.to_string();
                // The probe timeout's upper end needs the longest interval to be valid;
                // the quorum window's lower end, the shortest (and a timeout below it).
                let mut vars: Vec<(&str, &str)> = base();
                if bounds.variable == QUORUM_WINDOW_SECONDS.variable {
                    vars.extend([("PROBE_INTERVAL_SECONDS", "1"), ("PROBE_TIMEOUT_MS", "500")]);
                } else {
                    vars.push(("PROBE_INTERVAL_SECONDS", "10"));
                }
                vars.push((bounds.variable, text.as_str()));
                let parsed = parse(&vars);
                assert!(parsed.is_ok(), "{}={edge}: {parsed:?}", bounds.variable);
            }
            let beyond = (bounds.max + 1).to_string();
            let mut vars: Vec<(&str, &str)> = base();
            vars.push((bounds.variable, beyond.as_str()));
            let (variable, problem) = config_error(&vars);
            assert_eq!(variable, bounds.variable);
            assert!(problem.contains(&format!("from {} to {}", bounds.min, bounds.max)));
        }
        assert_eq!(defaults.probe_interval, Duration::from_secs(10));
        assert_eq!(defaults.probe_window, Duration::from_secs(60));
        assert_eq!(defaults.timeouts.probe, Duration::from_millis(1500));
    }

    #[test]
    fn missing_required_variables_are_named() {
        for name in [
            "REGIONS",
            "AWS_REGION",
            "ACTIVE_REGION_PARAMETER",
            "CONTROL_TABLE",
            "HEALTH_TABLE",
            "HEALTH_KEY",
        ] {
            let vars: Vec<_> = base().into_iter().filter(|(k, _)| *k != name).collect();
            let (var, problem) = config_error(&vars);
            assert_eq!(var, name);
            assert!(problem.contains("is not set"), "{problem}");
        }
    }

    #[test]
    fn more_groups_than_one_control_state_item_holds_fail_init_naming_the_variable() {
        let groups = |n: usize| -> &'static str {
            let list = (0..n)
                .map(|g| format!("us-east-1=web-{g:04}"))
                .collect::<Vec<_>>()
                .join(",");
            Box::leak(list.into_boxed_str())
        };
        let most = (ITEM_LIMIT_BYTES * ITEM_BUDGET_PERCENT / 100 - STATE_BASE_BYTES)
            / STATE_BYTES_PER_GROUP;
        let fits = groups(most);
        assert!(parse(&with(&[("AUTO_SCALING_GROUPS", fits)])).is_ok());
        let over = groups(most + 1);
        let err = parse(&with(&[("AUTO_SCALING_GROUPS", over)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AUTO_SCALING_GROUPS: ")
                && err.contains(&format!("use at most {most} groups and services")),
            "{err}"
        );
        // Services count as groups do: the same budget, named by ECS_SERVICES.
        let services = Box::leak(
            (0..2)
                .map(|s| format!("us-east-1=app/svc-{s}"))
                .collect::<Vec<_>>()
                .join(",")
                .into_boxed_str(),
        );
        let fits = groups(most - 2);
        assert!(
            parse(&with(&[
                ("AUTO_SCALING_GROUPS", fits),
                ("ECS_SERVICES", services)
            ]))
            .is_ok()
        );
        let err = parse(&with(&[
            ("AUTO_SCALING_GROUPS", groups(most - 1)),
            ("ECS_SERVICES", services),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ECS_SERVICES: ") && err.contains("313 groups and services"),
            "{err}"
        );
    }
}
