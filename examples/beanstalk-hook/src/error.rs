//! The crate's one error type. AWS failures keep Elastic Beanstalk's error code and message;
//! everything that reaches regionpilot does so as a Lambda function error whose `errorType`
//! is [`HookError::error_type`] and whose `errorMessage` is the `Display` text.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HookError {
    /// A configuration variable is missing or malformed (at init only).
    #[error("configuration: {variable}: {problem}")]
    Config {
        variable: &'static str,
        problem: String,
    },

    /// The payload is not what regionpilot sends: nothing was read or changed.
    #[error("invalid payload: field `{field}`: {problem}")]
    Payload { field: String, problem: String },

    /// The payload's `to` names a region ENVIRONMENTS gives no environment for.
    #[error(
        "no Elastic Beanstalk environment is configured for region {region} (the payload's `to`); ENVIRONMENTS configures {configured}"
    )]
    UnknownRegion { region: String, configured: String },

    /// DescribeEnvironments knows no live environment by that name.
    #[error("{region}/{environment}: no such environment (DescribeEnvironments found none)")]
    NotFound { region: String, environment: String },

    /// The environment is being or has been terminated: no update can succeed.
    #[error("{region}/{environment} is {status}: it cannot be updated")]
    Terminated {
        region: String,
        environment: String,
        status: String,
    },

    /// DescribeConfigurationSettings answered no configuration. AWS answers an empty list
    /// rather than an error when the caller may not read it, so this is most often IAM.
    #[error(
        "{region}/{environment}: DescribeConfigurationSettings returned no configuration (does the function's role allow elasticbeanstalk:DescribeConfigurationSettings on it?)"
    )]
    NoConfiguration { region: String, environment: String },

    /// Elastic Beanstalk takes UpdateEnvironment only from a Ready environment; this one
    /// stayed busy (another update or deployment) for as long as the hook could wait.
    #[error(
        "{region}/{environment} is {status}, not Ready, after waiting {:.1} s: Elastic Beanstalk refuses updates until it is Ready; a retry will look again",
        *waited_ms as f64 / 1000.0
    )]
    NotReady {
        region: String,
        environment: String,
        status: String,
        waited_ms: u64,
    },

    /// An Elastic Beanstalk call failed after the SDK's bounded retries.
    #[error(
        "elasticbeanstalk:{operation} on {region}/{environment} failed{}: {message}",
        code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default()
    )]
    Aws {
        operation: &'static str,
        region: String,
        environment: String,
        /// The service's error code (`InvalidParameterValue`, `InsufficientPrivilegesException`,
        /// ...); none for a timeout or a connection failure.
        code: Option<String>,
        message: String,
    },
}

impl HookError {
    /// The Lambda `errorType` regionpilot records beside the message.
    pub fn error_type(&self) -> &'static str {
        match self {
            HookError::Config { .. } => "ConfigurationError",
            HookError::Payload { .. } => "InvalidPayload",
            HookError::UnknownRegion { .. } => "UnknownRegion",
            HookError::NotFound { .. } => "EnvironmentNotFound",
            HookError::Terminated { .. } => "EnvironmentTerminated",
            HookError::NoConfiguration { .. } => "ConfigurationUnreadable",
            HookError::NotReady { .. } => "EnvironmentNotReady",
            HookError::Aws { .. } => "AwsError",
        }
    }

    /// UpdateEnvironment refused because the environment is not Ready. AWS answers
    /// `InvalidParameterValue`, "Environment named X is in an invalid state for this
    /// operation. Must be Ready." (HTTP 400): the same code as a truly invalid parameter,
    /// so the message tells them apart.
    pub fn is_not_ready(&self) -> bool {
        match self {
            HookError::Aws {
                code: Some(code),
                message,
                ..
            } => code == "InvalidParameterValue" && message.contains("invalid state"),
            _ => false,
        }
    }

    /// A failed SDK call, with the service's code and message kept.
    pub fn from_sdk<E, R>(
        operation: &'static str,
        region: &str,
        environment: &str,
        err: &SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let (code, message) = match err {
            SdkError::TimeoutError(_) => (None, "no answer in time".to_owned()),
            SdkError::DispatchFailure(failure) => {
                let what = if failure.is_timeout() {
                    "connection timed out"
                } else if failure.is_io() {
                    "connection failed"
                } else {
                    "request could not be sent"
                };
                (None, what.to_owned())
            }
            SdkError::ServiceError(service_err) => {
                let inner = service_err.err();
                (
                    inner.code().map(str::to_owned),
                    inner
                        .message()
                        .map(str::to_owned)
                        .unwrap_or_else(|| inner.to_string()),
                )
            }
            other => (None, other.to_string()),
        };
        HookError::Aws {
            operation,
            region: region.to_owned(),
            environment: environment.to_owned(),
            code,
            message,
        }
    }

    /// A rejected payload. serde's message may quote the payload, so control characters
    /// are replaced and the text is bounded: a hostile payload must not forge log lines.
    pub fn payload(field: impl Into<String>, problem: impl fmt::Display) -> Self {
        HookError::Payload {
            field: sanitize(&field.into()),
            problem: sanitize(&problem.to_string()),
        }
    }
}

impl From<HookError> for lambda_runtime::Diagnostic {
    fn from(error: HookError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

const MAX_QUOTED: usize = 200;

fn sanitize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_QUOTED)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(code: Option<&str>, message: &str) -> HookError {
        HookError::Aws {
            operation: "UpdateEnvironment",
            region: "us-west-2".into(),
            environment: "shop-west".into(),
            code: code.map(str::to_owned),
            message: message.into(),
        }
    }

    #[test]
    fn only_the_not_ready_refusal_counts_as_not_ready() {
        let cases = [
            (
                Some("InvalidParameterValue"),
                "Environment named shop-west is in an invalid state for this operation. Must be Ready.",
                true,
            ),
            (
                Some("InvalidParameterValue"),
                "No Environment found for EnvironmentName = 'shop-west'.",
                false,
            ),
            (
                Some("InsufficientPrivilegesException"),
                "invalid state",
                false,
            ),
            (None, "no answer in time", false),
        ];
        for (code, message, expected) in cases {
            assert_eq!(aws(code, message).is_not_ready(), expected, "{message}");
        }
    }

    #[test]
    fn the_message_keeps_the_code_and_the_diagnostic_the_type() {
        let error = aws(Some("InvalidParameterValue"), "Must be Ready.");
        assert_eq!(
            error.to_string(),
            "elasticbeanstalk:UpdateEnvironment on us-west-2/shop-west failed [InvalidParameterValue]: Must be Ready."
        );
        let diagnostic = lambda_runtime::Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "AwsError");
    }

    #[test]
    fn a_quoted_payload_cannot_forge_log_lines() {
        let error = HookError::payload("to", format!("bad `a\nb` {}", "x".repeat(300)));
        let HookError::Payload { problem, .. } = &error else {
            panic!("{error:?}");
        };
        assert!(!problem.contains('\n'));
        assert!(problem.chars().count() <= MAX_QUOTED + 1);
    }
}
