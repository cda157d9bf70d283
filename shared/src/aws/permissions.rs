//! The AWS actions each function calls, kept beside the adapters that call them. A test
//! checks `template.yaml` grants each function exactly what its list names.

/// Control state (GetItem, Query; TransactWriteItems and PutItem need PutItem),
/// pre-flight probe and data-loss evidence (GetItem on the health table), publish
/// (PutParameter; GetParameter for status), standby capacity (DescribeAutoScalingGroups,
/// SetDesiredCapacity), in-place reload through Run Command (SendCommand with
/// AWS-RunShellScript, ListCommandInvocations), rolling update (instance refresh) and
/// events for operators (PutEvents; a held one is a PutItem on the control table), and
/// Amazon ARC routing controls (`TRAFFIC_SIGNAL=routing-control`).
pub const FAILOVER: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "ssm:PutParameter",
    "ssm:GetParameter",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:SetDesiredCapacity",
    "ssm:SendCommand",
    "ssm:ListCommandInvocations",
    "autoscaling:StartInstanceRefresh",
    "autoscaling:CancelInstanceRefresh",
    "autoscaling:DescribeInstanceRefreshes",
    "events:PutEvents",
    "route53-recovery-cluster:GetRoutingControlState",
    "route53-recovery-cluster:UpdateRoutingControlState",
];

/// The actions of `FAILOVER` and `FAILBACK` called only with `TRAFFIC_SIGNAL=
/// routing-control` (on the routing controls it names): the template grants them only then.
pub const ROUTING_CONTROL_ONLY: &[&str] = &[
    "route53-recovery-cluster:GetRoutingControlState",
    "route53-recovery-cluster:UpdateRoutingControlState",
];

/// A regional stack's gate (`DEPLOYMENT_ROLE=regional`): its region's parameter, read.
pub const REGIONAL_GATE: &[&str] = &["ssm:GetParameter"];

/// A regional or vantage stack's probe (`DEPLOYMENT_ROLE=regional` with `CONTROL_TABLE`):
/// the canary read and heartbeat write in every region's health table, and its own
/// samples read back and replaced in the control stack's table (the probe partition).
pub const REGIONAL_PROBE: &[&str] = &["dynamodb:GetItem", "dynamodb:PutItem"];

/// The actions of `FAILOVER` and `FAILBACK` called only with `RELOAD_MODE=run-command`
/// (Run Command is a root shell on the instances): the template grants them only then.
pub const RUN_COMMAND_ONLY: &[&str] = &["ssm:SendCommand", "ssm:ListCommandInvocations"];

/// The partition key values regionpilot writes in the application's health table (its
/// heartbeats and the drain sentinel): the template restricts `PutItem` there to these
/// (`dynamodb:LeadingKeys`).
pub const HEALTH_TABLE_WRITES: &str = "regionpilot-heartbeat#*";

/// The partition of the control table the health probe writes (its samples): the
/// template restricts the probe's `PutItem` there to it.
pub const PROBE_CONTROL_WRITES: &str = super::control::SAMPLES_PK;

/// Canary read, heartbeat write and reads, its samples written to the control table;
/// status reads (control state, the parameter, each group's capacity and instance
/// refreshes).
pub const HEALTH_PROBE: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "ssm:GetParameter",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeInstanceRefreshes",
];

/// Everything failover does (it fails back through the same code), plus the drain
/// sentinel written in the active region's health table, readiness's look at the
/// control table's point-in-time recovery (DescribeContinuousBackups), and forgetting a
/// held event once it is delivered (DeleteItem).
pub const FAILBACK: &[&str] = &with::<{ FAILOVER.len() + 2 }>(
    FAILOVER,
    &["dynamodb:DescribeContinuousBackups", "dynamodb:DeleteItem"],
);

/// `base` followed by `more`, at compile time: one function's list grows from another's.
const fn with<const N: usize>(base: &[&'static str], more: &[&'static str]) -> [&'static str; N] {
    let mut all = [""; N];
    let mut i = 0;
    while i < base.len() {
        all[i] = base[i];
        i += 1;
    }
    let mut j = 0;
    while j < more.len() {
        all[i + j] = more[j];
        j += 1;
    }
    all
}

/// Variables every function's configuration requires (see `Config::from_lookup`).
pub const REQUIRED_ENV: &[&str] = &[
    "REGIONS",
    "ACTIVE_REGION_PARAMETER",
    "CONTROL_TABLE",
    "HEALTH_TABLE",
    "HEALTH_KEY",
];
