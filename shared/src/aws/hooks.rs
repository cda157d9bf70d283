//! The `HOOKS` functions, invoked through Lambda in the regions they live in: one client
//! per region, with the same connect timeout and endpoint overrides as every other.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_lambda::types::InvocationType;

use super::clients::{AwsClients, RegionalClients, client_for};
use crate::config::HookRef;
use crate::error::AwsError;
use crate::ports::{HookAnswer, Hooks};

/// What a switch and the verifier call here, granted on exactly the named functions.
pub const INVOKE_ACTIONS: &[&str] = &["lambda:InvokeFunction"];
/// What the readiness check calls (the verifier), granted on the same functions.
pub const CHECK_ACTIONS: &[&str] = &["lambda:GetFunction"];

#[derive(Clone)]
pub struct AwsHooks {
    lambda: Arc<RegionalClients<aws_sdk_lambda::Client>>,
    /// `HOOK_TIMEOUT_SECONDS`: an invocation's own bound; the step waits less when its
    /// invocation has less time left.
    timeout: Duration,
}

impl AwsHooks {
    pub fn new(clients: &AwsClients, timeout: Duration) -> Self {
        AwsHooks {
            lambda: clients.regional(|sdk, endpoint| {
                let mut builder = aws_sdk_lambda::config::Builder::from(sdk);
                if let Some(url) = endpoint {
                    builder = builder.endpoint_url(url);
                }
                aws_sdk_lambda::Client::from_conf(builder.build())
            }),
            timeout,
        }
    }

    fn error<E, R>(
        operation: &'static str,
        hook: &HookRef,
        e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> AwsError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        AwsError::from_sdk("lambda", operation, &hook.region, e)
            .on(format!("the function {}", hook.function))
    }
}

impl Hooks for AwsHooks {
    async fn invoke(&self, hook: &HookRef, payload: &[u8]) -> Result<HookAnswer, AwsError> {
        const OP: &str = "Invoke";
        let client = client_for(&self.lambda, "lambda", OP, &hook.region)?;
        // The shared 2 s call timeout is for AWS's control planes; a hook runs the user's
        // code for up to HOOK_TIMEOUT_SECONDS. No SDK retry: a retry is another run of it.
        let bound = self.timeout + Duration::from_secs(1);
        let out = client
            .invoke()
            .function_name(&hook.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(aws_smithy_types::Blob::new(payload))
            .customize()
            .config_override(
                aws_sdk_lambda::config::Builder::default()
                    .retry_config(RetryConfig::disabled())
                    .timeout_config(
                        TimeoutConfig::builder()
                            .operation_attempt_timeout(bound)
                            .operation_timeout(bound)
                            .build(),
                    ),
            )
            .send()
            .await
            .map_err(|e| Self::error(OP, hook, &e))?;
        Ok(HookAnswer {
            function_error: out.function_error,
            payload: out.payload.map(|b| b.into_inner()).unwrap_or_default(),
        })
    }

    async fn exists(&self, hook: &HookRef) -> Result<bool, AwsError> {
        const OP: &str = "GetFunction";
        let client = client_for(&self.lambda, "lambda", OP, &hook.region)?;
        match client
            .get_function()
            .function_name(&hook.function)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let error = Self::error(OP, hook, &e);
                if error.kind == crate::error::ErrorKind::NotFound {
                    Ok(false)
                } else {
                    Err(error)
                }
            }
        }
    }
}
