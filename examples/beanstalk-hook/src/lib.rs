//! An example regionpilot hook: after regionpilot switches the application's active
//! region, point an Elastic Beanstalk environment variable (VARIABLE_NAME, by default
//! `AWS_DEFAULT_REGION`) at the new region in the application's environment of every
//! region (ENVIRONMENTS), with UpdateEnvironment.
//!
//! Idempotent: it reads the variable first and updates only an environment whose value
//! (in effect or being deployed) differs, so regionpilot's retries with the same
//! idempotency key do no harm. The environment in the payload's `to` region must be set or
//! the hook fails (regionpilot retries it); the others are best effort. See the README.
//!
//! Layout: [`handle`] (the library handler, in `hook.rs`) over the [`Beanstalk`] port;
//! [`SdkBeanstalk`] is the port over the AWS SDK; `main.rs` only wires them.

mod aws;
mod config;
mod error;
mod hook;
mod payload;
mod port;

use std::time::SystemTime;

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

pub use aws::{SdkBeanstalk, config_loader, http_client};
pub use config::{Config, DEFAULT_VARIABLE, NAMESPACE, Target};
pub use error::HookError;
pub use hook::{Action, Answer, EnvironmentOutcome, Judgement, Observed, handle, judge};
pub use payload::{Direction, Payload, Stage, Trigger, TriggerKind};
pub use port::{Beanstalk, Deployment, EnvironmentInfo, VariableValue};

/// One Lambda invocation: the wait for a busy environment is bounded by READY_WAIT_SECONDS
/// and by the invocation's own deadline; an error becomes a function error with its
/// `errorType` ([`HookError::error_type`]).
pub async fn invoke<B: Beanstalk>(
    port: &B,
    config: &Config,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let budget = config.wait_budget(event.context.deadline(), SystemTime::now());
    match handle(port, config, &event.payload, budget).await {
        Ok(answer) => serde_json::to_value(&answer).map_err(|e| Diagnostic {
            error_type: "SerializationError".into(),
            error_message: e.to_string(),
        }),
        Err(error) => {
            tracing::error!(error_type = error.error_type(), error = %error, "hook failed");
            Err(error.into())
        }
    }
}

/// JSON log lines (Lambda's JSON log format keeps them as they are), one field per span
/// and event field. RUST_LOG (`info`, `beanstalk_hook=debug`, ...) sets the level.
pub fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;

    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_target(false),
        )
        .init();
}

#[cfg(test)]
mod tests {
    use lambda_runtime::Context;
    use serde_json::json;

    use super::*;

    /// A port no test here should reach: every call fails.
    struct Unreachable;

    impl Beanstalk for Unreachable {
        async fn environment(
            &self,
            region: &str,
            env: &str,
        ) -> Result<Option<EnvironmentInfo>, HookError> {
            Err(HookError::NotFound {
                region: region.into(),
                environment: env.into(),
            })
        }
        async fn variable(
            &self,
            region: &str,
            _: &str,
            env: &str,
            _: &str,
        ) -> Result<Vec<VariableValue>, HookError> {
            Err(HookError::NotFound {
                region: region.into(),
                environment: env.into(),
            })
        }
        async fn set_variable(
            &self,
            region: &str,
            _: &str,
            env: &str,
            _: &str,
            _: &str,
        ) -> Result<(), HookError> {
            Err(HookError::NotFound {
                region: region.into(),
                environment: env.into(),
            })
        }
    }

    fn config() -> Config {
        Config::from_lookup(|name| {
            (name == "ENVIRONMENTS").then(|| "us-west-2=shop-west".to_owned())
        })
        .expect("valid")
    }

    /// The Lambda edge: an error leaves as a function error with its type and message.
    #[tokio::test]
    async fn errors_become_function_errors_with_their_type() {
        let payload = json!({"app": "shop", "epoch": 7, "from": "us-east-1", "to": "us-west-2",
            "stage": "act", "trigger": {"kind": "manual"}, "forced": true,
            "direction": "failover", "idempotency_key": "shop-7-act-beanstalk-hook"});
        let cases = [
            (
                json!({"to": "us-west-2"}),
                "InvalidPayload",
                "invalid payload: field `app`: missing field `app`",
            ),
            (
                payload,
                "EnvironmentNotFound",
                "us-west-2/shop-west: no such environment (DescribeEnvironments found none)",
            ),
        ];
        for (payload, error_type, message) in cases {
            // Context::default() has a deadline in the past: no time to wait, still answers.
            let event = LambdaEvent::new(payload, Context::default());
            let diagnostic = invoke(&Unreachable, &config(), event)
                .await
                .expect_err("error");
            assert_eq!(
                (
                    diagnostic.error_type.as_str(),
                    diagnostic.error_message.as_str()
                ),
                (error_type, message)
            );
        }
    }
}
