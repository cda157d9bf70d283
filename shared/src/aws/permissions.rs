//! The AWS actions each function calls, kept beside the adapters that call them. A test
//! checks `template.yaml` grants each function exactly what its list names.

/// Control state (GetItem, Query; TransactWriteItems and PutItem need PutItem),
/// pre-flight probe and data-loss evidence (GetItem on the health table), publish
/// (PutParameter; GetParameter for status), standby capacity (DescribeAutoScalingGroups,
/// SetDesiredCapacity), in-place reload through Run Command (SendCommand with
/// AWS-RunShellScript, ListCommandInvocations) and rolling update (instance refresh).
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
];

/// Canary read, heartbeat write and reads; status reads (control state, the parameter,
/// each group's capacity and instance refreshes).
pub const HEALTH_PROBE: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "ssm:GetParameter",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeInstanceRefreshes",
];

/// Everything failover does (it fails back through the same code), plus the drain
/// sentinel written in the active region's health table.
pub const FAILBACK: &[&str] = FAILOVER;

/// Variables every function's configuration requires (see `Config::from_lookup`).
pub const REQUIRED_ENV: &[&str] = &[
    "REGIONS",
    "ACTIVE_REGION_PARAMETER",
    "CONTROL_TABLE",
    "HEALTH_TABLE",
    "HEALTH_KEY",
];
