//! The hook's configuration: environment variables, read once at init. A bad value fails
//! the cold start with a message naming the variable, before any payload is read.

use std::time::{Duration, SystemTime};

use crate::error::HookError;

/// The Beanstalk namespace of environment properties (the variables the application sees).
pub const NAMESPACE: &str = "aws:elasticbeanstalk:application:environment";
/// The variable set when VARIABLE_NAME is not.
pub const DEFAULT_VARIABLE: &str = "AWS_DEFAULT_REGION";
const DEFAULT_READY_WAIT: Duration = Duration::from_secs(40);
const DEFAULT_READY_POLL: Duration = Duration::from_secs(5);
/// Kept free before the invocation's deadline when waiting: the last look and the update
/// after a wait need time too (each call is bounded by the client's timeouts).
pub const DEADLINE_RESERVE: Duration = Duration::from_secs(10);

/// The application's Beanstalk environment in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub region: String,
    pub environment: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// ENVIRONMENTS, in the order given: `region=environment-name`, one per region.
    pub environments: Vec<Target>,
    /// VARIABLE_NAME (default `AWS_DEFAULT_REGION`): the environment property set to the
    /// region regionpilot switched to.
    pub variable: String,
    /// READY_WAIT_SECONDS (default 40): how long to wait for an environment that is busy
    /// with another update before answering an error (regionpilot then retries). Keep it
    /// below regionpilot's HOOK_TIMEOUT_SECONDS (default 60) and this function's timeout.
    pub ready_wait: Duration,
    /// READY_POLL_SECONDS (default 5): how often a busy environment is looked at again.
    pub ready_poll: Duration,
}

impl Config {
    pub fn from_env() -> Result<Config, HookError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration from any source of variables (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, HookError> {
        let environments = parse_environments(get("ENVIRONMENTS").as_deref())?;
        let variable = match get("VARIABLE_NAME") {
            None => DEFAULT_VARIABLE.to_owned(),
            Some(name) => parse_variable(name.trim())?,
        };
        let ready_wait = seconds(&get, "READY_WAIT_SECONDS", DEFAULT_READY_WAIT, true)?;
        let ready_poll = seconds(&get, "READY_POLL_SECONDS", DEFAULT_READY_POLL, false)?;
        Ok(Config {
            environments,
            variable,
            ready_wait,
            ready_poll,
        })
    }

    /// The environment configured in `region`.
    pub fn target(&self, region: &str) -> Option<&Target> {
        self.environments.iter().find(|t| t.region == region)
    }

    pub fn regions(&self) -> impl Iterator<Item = &str> {
        self.environments.iter().map(|t| t.region.as_str())
    }

    /// `us-east-1=shop-east,us-west-2=shop-west`, for logs and messages.
    pub fn describe(&self) -> String {
        self.environments
            .iter()
            .map(|t| format!("{}={}", t.region, t.environment))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How long this invocation may wait for a busy environment: READY_WAIT_SECONDS, cut
    /// so that the invocation still answers [`DEADLINE_RESERVE`] before its deadline.
    pub fn wait_budget(&self, deadline: SystemTime, now: SystemTime) -> Duration {
        let left = deadline.duration_since(now).unwrap_or_default();
        self.ready_wait.min(left.saturating_sub(DEADLINE_RESERVE))
    }
}

fn config_error(variable: &'static str, problem: impl Into<String>) -> HookError {
    HookError::Config {
        variable,
        problem: problem.into(),
    }
}

fn parse_environments(text: Option<&str>) -> Result<Vec<Target>, HookError> {
    const NAME: &str = "ENVIRONMENTS";
    let text = text.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(config_error(
            NAME,
            "required: region=environment-name pairs, comma-separated (us-east-1=shop-east,us-west-2=shop-west)",
        ));
    }
    let mut targets: Vec<Target> = Vec::new();
    for pair in text.split(',').map(str::trim) {
        let Some((region, environment)) = pair.split_once('=') else {
            return Err(config_error(
                NAME,
                format!("`{pair}` is not region=environment-name"),
            ));
        };
        let (region, environment) = (region.trim(), environment.trim());
        if !is_region(region) {
            return Err(config_error(
                NAME,
                format!("`{region}` is not an AWS region name (like us-east-1)"),
            ));
        }
        if !is_environment_name(environment) {
            return Err(config_error(
                NAME,
                format!(
                    "`{environment}` is not an Elastic Beanstalk environment name (4 to 40 letters, digits and hyphens, not starting or ending with a hyphen)"
                ),
            ));
        }
        if targets.iter().any(|t| t.region == region) {
            return Err(config_error(
                NAME,
                format!("region {region} is given twice: one environment per region"),
            ));
        }
        targets.push(Target {
            region: region.to_owned(),
            environment: environment.to_owned(),
        });
    }
    Ok(targets)
}

fn parse_variable(name: &str) -> Result<String, HookError> {
    // Beanstalk's environment property names: letters, digits and _ . : / + \ - @.
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:/+\\-@".contains(c);
    if name.is_empty() || name.len() > 128 || !name.chars().all(allowed) {
        return Err(config_error(
            "VARIABLE_NAME",
            format!(
                "`{name}` is not an environment property name (1 to 128 of letters, digits and _ . : / + \\ - @)"
            ),
        ));
    }
    Ok(name.to_owned())
}

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: Duration,
    zero_allowed: bool,
) -> Result<Duration, HookError> {
    let Some(text) = get(variable) else {
        return Ok(default);
    };
    let problem = || {
        let lower = if zero_allowed { "0" } else { "above 0" };
        config_error(
            variable,
            format!("`{text}` is not a number of seconds ({lower} to 900)"),
        )
    };
    let value: f64 = text.trim().parse().map_err(|_| problem())?;
    if !(0.0..=900.0).contains(&value) || (value == 0.0 && !zero_allowed) {
        return Err(problem());
    }
    Ok(Duration::from_secs_f64(value))
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`: what AWS region names look like.
pub fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn is_environment_name(text: &str) -> bool {
    (4..=40).contains(&text.len())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, HookError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    fn failing_variable(vars: &[(&str, &str)]) -> &'static str {
        match parse(vars) {
            Err(HookError::Config { variable, .. }) => variable,
            other => panic!("{vars:?} should fail, got {other:?}"),
        }
    }

    #[test]
    fn environments_and_defaults() {
        let config = parse(&[(
            "ENVIRONMENTS",
            " us-east-1=shop-east , us-west-2=shop-west ",
        )])
        .expect("valid");
        assert_eq!(config.describe(), "us-east-1=shop-east,us-west-2=shop-west");
        assert_eq!(config.variable, "AWS_DEFAULT_REGION");
        assert_eq!(config.ready_wait, Duration::from_secs(40));
        assert_eq!(config.ready_poll, Duration::from_secs(5));
        assert_eq!(
            config.target("us-west-2").map(|t| t.environment.as_str()),
            Some("shop-west")
        );
        assert_eq!(config.target("eu-west-1"), None);
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let env = ("ENVIRONMENTS", "us-east-1=shop-east");
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "ENVIRONMENTS"),
            (&[("ENVIRONMENTS", " ")], "ENVIRONMENTS"),
            (&[("ENVIRONMENTS", "us-east-1")], "ENVIRONMENTS"),
            (&[("ENVIRONMENTS", "useast1=shop-east")], "ENVIRONMENTS"),
            (&[("ENVIRONMENTS", "us-east-1=ab")], "ENVIRONMENTS"),
            (&[("ENVIRONMENTS", "us-east-1=-shop")], "ENVIRONMENTS"),
            (
                &[("ENVIRONMENTS", "us-east-1=shop-a,us-east-1=shop-b")],
                "ENVIRONMENTS",
            ),
            (&[env, ("VARIABLE_NAME", "")], "VARIABLE_NAME"),
            (&[env, ("VARIABLE_NAME", "A B")], "VARIABLE_NAME"),
            (&[env, ("READY_WAIT_SECONDS", "soon")], "READY_WAIT_SECONDS"),
            (&[env, ("READY_WAIT_SECONDS", "-1")], "READY_WAIT_SECONDS"),
            (&[env, ("READY_POLL_SECONDS", "0")], "READY_POLL_SECONDS"),
            (&[env, ("READY_POLL_SECONDS", "NaN")], "READY_POLL_SECONDS"),
        ];
        for (vars, expected) in cases {
            assert_eq!(failing_variable(vars), *expected, "{vars:?}");
        }
    }

    #[test]
    fn the_wait_leaves_time_before_the_deadline() {
        let config = parse(&[
            ("ENVIRONMENTS", "us-east-1=shop-east"),
            ("READY_WAIT_SECONDS", "40"),
            ("READY_POLL_SECONDS", "0.5"),
        ])
        .expect("valid");
        assert_eq!(config.ready_poll, Duration::from_millis(500));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let cases = [(120, 40), (45, 35), (5, 0), (0, 0)];
        for (left, budget) in cases {
            let deadline = now + Duration::from_secs(left);
            assert_eq!(
                config.wait_budget(deadline, now),
                Duration::from_secs(budget),
                "{left} s left"
            );
        }
        // A deadline already past.
        assert_eq!(
            config.wait_budget(now - Duration::from_secs(1), now),
            Duration::ZERO
        );
    }

    #[test]
    fn region_names() {
        for good in [
            "us-east-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "eu-central-1",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in [
            "",
            "us-east",
            "US-east-1",
            "us--1",
            "useast-1",
            "us-east-1a",
            "u-east-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }
}
