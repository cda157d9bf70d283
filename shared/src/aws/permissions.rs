//! The AWS actions each function calls, kept beside the adapters that call them. A test
//! checks `template.yaml` grants each function exactly what its list names.

/// Control state (GetItem, Query; TransactWriteItems and PutItem need PutItem),
/// pre-flight probe and data-loss evidence (GetItem on the health table), publish
/// (PutParameter; GetParameter for status), rolling update.
pub const FAILOVER: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "ssm:PutParameter",
    "ssm:GetParameter",
    "autoscaling:StartInstanceRefresh",
    "autoscaling:CancelInstanceRefresh",
    "autoscaling:DescribeInstanceRefreshes",
];

/// Canary read, heartbeat write and reads; status reads.
pub const HEALTH_PROBE: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "ssm:GetParameter",
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
