//! The port over the AWS SDK: one Elastic Beanstalk client per configured region, built
//! once at init, each call bounded by connect and per-attempt timeouts and a few retries.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::types::{ConfigurationDeploymentStatus, ConfigurationOptionSetting};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::config::NAMESPACE;
use crate::error::HookError;
use crate::port::{Beanstalk, Deployment, EnvironmentInfo, VariableValue};

/// A region that does not answer costs this long to connect...
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// ...and an attempt that hangs this long.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// All attempts of one call together.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
pub const MAX_ATTEMPTS: u32 = 3;

/// rustls over ring: the SDK's default HTTPS client would be rustls over aws-lc, a C
/// library that makes the zip bigger and the build slower, for nothing this hook needs.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The shared SDK configuration, before credentials and region are resolved (`.load()`):
/// the HTTP client, timeouts and bounded retries every client of the hook uses.
pub fn config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(CALL_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
}

/// Elastic Beanstalk through the SDK, one client per region.
pub struct SdkBeanstalk {
    clients: BTreeMap<String, Client>,
}

impl SdkBeanstalk {
    /// A client for each of `regions`, from `base` placed in the region; `endpoints`
    /// overrides a region's endpoint (a local emulator), otherwise AWS's (or
    /// `AWS_ENDPOINT_URL`) applies.
    pub fn new<'a>(
        base: &SdkConfig,
        regions: impl IntoIterator<Item = &'a str>,
        endpoints: &BTreeMap<String, String>,
    ) -> SdkBeanstalk {
        let clients = regions
            .into_iter()
            .map(|region| {
                let mut builder = aws_sdk_elasticbeanstalk::config::Builder::from(base)
                    .region(aws_config::Region::new(region.to_owned()));
                if let Some(url) = endpoints.get(region) {
                    builder = builder.endpoint_url(url);
                }
                (region.to_owned(), Client::from_conf(builder.build()))
            })
            .collect();
        SdkBeanstalk { clients }
    }

    /// Clients built elsewhere (tests hand in mocked ones).
    pub fn from_clients(clients: BTreeMap<String, Client>) -> SdkBeanstalk {
        SdkBeanstalk { clients }
    }

    fn client(
        &self,
        operation: &'static str,
        region: &str,
        environment: &str,
    ) -> Result<&Client, HookError> {
        self.clients.get(region).ok_or_else(|| HookError::Aws {
            operation,
            region: region.to_owned(),
            environment: environment.to_owned(),
            code: None,
            message: format!("no client for region {region}"),
        })
    }
}

impl Beanstalk for SdkBeanstalk {
    async fn environment(
        &self,
        region: &str,
        environment: &str,
    ) -> Result<Option<EnvironmentInfo>, HookError> {
        const OPERATION: &str = "DescribeEnvironments";
        let output = self
            .client(OPERATION, region, environment)?
            .describe_environments()
            .environment_names(environment)
            .include_deleted(false)
            .send()
            .await
            .map_err(|e| HookError::from_sdk(OPERATION, region, environment, &e))?;
        Ok(output
            .environments()
            .iter()
            .find(|e| e.environment_name() == Some(environment))
            .map(|e| EnvironmentInfo {
                application: e.application_name().unwrap_or_default().to_owned(),
                status: e
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            }))
    }

    async fn variable(
        &self,
        region: &str,
        application: &str,
        environment: &str,
        variable: &str,
    ) -> Result<Vec<VariableValue>, HookError> {
        const OPERATION: &str = "DescribeConfigurationSettings";
        let output = self
            .client(OPERATION, region, environment)?
            .describe_configuration_settings()
            .application_name(application)
            .environment_name(environment)
            .send()
            .await
            .map_err(|e| HookError::from_sdk(OPERATION, region, environment, &e))?;
        Ok(output
            .configuration_settings()
            .iter()
            .map(|settings| VariableValue {
                deployment: match settings.deployment_status() {
                    Some(ConfigurationDeploymentStatus::Deployed) => Deployment::Deployed,
                    Some(ConfigurationDeploymentStatus::Pending) => Deployment::Pending,
                    Some(ConfigurationDeploymentStatus::Failed) => Deployment::Failed,
                    other => {
                        Deployment::Other(other.map(|s| s.as_str().to_owned()).unwrap_or_default())
                    }
                },
                value: settings
                    .option_settings()
                    .iter()
                    .find(|o| o.namespace() == Some(NAMESPACE) && o.option_name() == Some(variable))
                    .and_then(|o| o.value().map(str::to_owned)),
            })
            .collect())
    }

    async fn set_variable(
        &self,
        region: &str,
        application: &str,
        environment: &str,
        variable: &str,
        value: &str,
    ) -> Result<(), HookError> {
        const OPERATION: &str = "UpdateEnvironment";
        self.client(OPERATION, region, environment)?
            .update_environment()
            .application_name(application)
            .environment_name(environment)
            .option_settings(
                ConfigurationOptionSetting::builder()
                    .namespace(NAMESPACE)
                    .option_name(variable)
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| HookError::from_sdk(OPERATION, region, environment, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
