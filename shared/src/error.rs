//! The one error type of the shared crate. AWS failures keep the service's error code and
//! message and are classified, so callers can tell "region down" from "we are throttled"
//! from "we lack a permission", and the Lambda edge can say whether a retry may help.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

use crate::region::Region;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration variable is missing or malformed. Raised at init only.
    #[error("configuration error: {variable}: {problem}")]
    Config {
        variable: &'static str,
        problem: String,
    },

    /// The event or command is not one we understand. Nothing was changed.
    #[error("invalid event: {0}")]
    InvalidEvent(String),

    /// A call to AWS failed after the SDK's bounded retries.
    #[error(transparent)]
    Aws(#[from] AwsError),

    /// Another invocation changed the control state between our read and our write, more
    /// often than we are willing to retry.
    #[error("control state kept changing under us after {attempts} attempts; retry the invocation")]
    Contention { attempts: u32 },

    /// The stored control state cannot be read back; a person must look at the table.
    #[error("control state in the control table is unreadable: {0}")]
    CorruptState(String),
}

impl Error {
    /// A rejected event. The message may quote the event, so control characters are
    /// replaced: a hostile payload must not forge log lines or terminal sequences.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidEvent(crate::text::sanitize(&message.into()))
    }

    /// The Lambda `errorType` for this error: lets alarms, retries and people tell a
    /// rejected event (do not retry) from a transient failure (retry may help).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Config { .. } => "ConfigurationError",
            Error::InvalidEvent(_) => "InvalidEvent",
            Error::Aws(aws) if aws.kind.is_transient() => "RetryableAwsError",
            Error::Aws(_) => "AwsError",
            Error::Contention { .. } => "RetryableContention",
            Error::CorruptState(_) => "CorruptState",
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aws(aws) => aws.kind.is_transient(),
            Error::Contention { .. } => true,
            _ => false,
        }
    }
}

/// How an AWS call failed, in the terms an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No answer within the configured connect or per-attempt timeout: a frozen region.
    Timeout,
    /// The connection was refused or dropped: a dead endpoint.
    Connection,
    /// AWS asked us to slow down. The region is up.
    Throttled,
    /// Credentials or IAM policy do not allow the call.
    AccessDenied,
    /// The table, item, parameter or group does not exist.
    NotFound,
    /// A conditional write lost: someone else changed the item first.
    ConditionFailed,
    /// Another region wrote the same item in the same instant (a multi-Region strongly
    /// consistent table's `ReplicatedWriteConflictException`): the write was not applied;
    /// re-read and decide again.
    WriteConflict,
    /// An instance refresh is already running on the group.
    RefreshInProgress,
    /// The service failed on its side (HTTP 5xx: `InternalServerError`,
    /// `ServiceUnavailable`), as a multi-Region strongly consistent table does in a region
    /// cut off from the others. The region answered; a retry may help.
    ServerError,
    /// Anything else, including malformed requests, and any kind a newer version names
    /// (the kind is stored with probe results in the control state).
    #[serde(other)]
    Other,
}

impl ErrorKind {
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::Connection
                | ErrorKind::Throttled
                | ErrorKind::WriteConflict
                | ErrorKind::ServerError
        )
    }

    /// The region answered: it is reachable even though the call failed.
    pub fn region_answered(self) -> bool {
        !matches!(self, ErrorKind::Timeout | ErrorKind::Connection)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection failed",
            ErrorKind::Throttled => "throttled",
            ErrorKind::AccessDenied => "access denied",
            ErrorKind::NotFound => "not found",
            ErrorKind::ConditionFailed => "condition failed",
            ErrorKind::WriteConflict => "write conflict with another region",
            ErrorKind::ServerError => "service error",
            ErrorKind::RefreshInProgress => "instance refresh in progress",
            ErrorKind::Other => "error",
        };
        f.write_str(text)
    }
}

/// A failed AWS call with the service's own error code and message kept.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("{service}:{operation}{} in {region} failed ({kind}){}: {message}", resource.as_deref().map(|r| format!(" on {r}")).unwrap_or_default(), code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default())]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    /// What the call was about, in an operator's words ("the control table rp-control"):
    /// "Requested resource not found" alone does not say which resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Box<str>>,
    pub region: Region,
    pub kind: ErrorKind,
    pub code: Option<Box<str>>,
    pub message: String,
}

impl AwsError {
    /// Classifies an SDK error. Codes come from the services' documented error shapes.
    pub fn from_sdk<E, R>(
        service: &'static str,
        operation: &'static str,
        region: &Region,
        err: &SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let (kind, code, message) = match err {
            SdkError::TimeoutError(_) => (ErrorKind::Timeout, None, "no answer in time".into()),
            SdkError::DispatchFailure(failure) => {
                let kind = if failure.is_timeout() {
                    ErrorKind::Timeout
                } else if failure.is_io() {
                    ErrorKind::Connection
                } else {
                    ErrorKind::Other
                };
                let message = failure
                    .as_connector_error()
                    .map(|e| source_chain(e))
                    .unwrap_or_else(|| "request could not be sent".into());
                (kind, None, message)
            }
            SdkError::ResponseError(resp) => (
                ErrorKind::Other,
                None,
                format!("unreadable response: {:?}", resp.raw()),
            ),
            SdkError::ServiceError(service_err) => {
                let inner = service_err.err();
                let code: Option<Box<str>> = inner.code().map(Into::into);
                let message = inner
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| inner.to_string());
                (classify_code(code.as_deref()), code, message)
            }
            other => (ErrorKind::Other, None, other.to_string()),
        };
        AwsError {
            service,
            operation,
            resource: None,
            region: region.clone(),
            kind,
            code,
            message,
        }
    }

    /// Names the resource the call was about.
    pub fn on(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into().into_boxed_str());
        self
    }

    /// A timeout we enforced ourselves around a call (the probe's hard deadline).
    pub fn deadline(service: &'static str, operation: &'static str, region: &Region) -> Self {
        AwsError {
            service,
            operation,
            resource: None,
            region: region.clone(),
            kind: ErrorKind::Timeout,
            code: None,
            message: "no answer within the deadline".into(),
        }
    }
}

fn classify_code(code: Option<&str>) -> ErrorKind {
    match code {
        Some(
            "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ProvisionedThroughputExceededException"
            | "TooManyUpdates"
            | "ResourceContention"
            | "SlowDown",
        ) => ErrorKind::Throttled,
        Some(
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "MissingAuthenticationToken",
        ) => ErrorKind::AccessDenied,
        Some(
            "ResourceNotFoundException" | "ParameterNotFound" | "ActiveInstanceRefreshNotFound",
        ) => ErrorKind::NotFound,
        Some("ConditionalCheckFailedException" | "TransactionCanceledException") => {
            ErrorKind::ConditionFailed
        }
        Some("InstanceRefreshInProgress") => ErrorKind::RefreshInProgress,
        Some("ReplicatedWriteConflictException") => ErrorKind::WriteConflict,
        Some(
            "InternalServerError"
            | "InternalException"
            | "InternalFailure"
            | "InternalError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException",
        ) => ErrorKind::ServerError,
        _ => ErrorKind::Other,
    }
}

fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_are_transient_and_mean_the_region_answered() {
        let kind = classify_code(Some("ProvisionedThroughputExceededException"));
        assert_eq!(kind, ErrorKind::Throttled);
        assert!(kind.is_transient());
        assert!(kind.region_answered());
    }

    #[test]
    fn timeouts_mean_the_region_did_not_answer() {
        assert!(!ErrorKind::Timeout.region_answered());
        assert!(!ErrorKind::Connection.region_answered());
        assert!(ErrorKind::AccessDenied.region_answered());
    }

    #[test]
    fn an_error_names_its_resource_and_region() {
        let err = AwsError {
            service: "dynamodb",
            operation: "GetItem",
            resource: None,
            region: Region::parse("eu-west-1").unwrap(),
            kind: ErrorKind::NotFound,
            code: Some("ResourceNotFoundException".into()),
            message: "Requested resource not found".into(),
        }
        .on("the control table rp-control");
        assert_eq!(
            err.to_string(),
            "dynamodb:GetItem on the control table rp-control in eu-west-1 failed (not found) [ResourceNotFoundException]: Requested resource not found"
        );
    }

    #[test]
    fn server_errors_are_transient_and_the_region_answered() {
        for code in ["InternalServerError", "ServiceUnavailable"] {
            let kind = classify_code(Some(code));
            assert_eq!(kind, ErrorKind::ServerError, "{code}");
            assert!(kind.is_transient() && kind.region_answered());
        }
        let conflict = classify_code(Some("ReplicatedWriteConflictException"));
        assert_eq!(conflict, ErrorKind::WriteConflict);
        assert!(conflict.is_transient());
    }

    #[test]
    fn unknown_codes_are_other() {
        assert_eq!(classify_code(Some("Whatever")), ErrorKind::Other);
        assert_eq!(classify_code(None), ErrorKind::Other);
    }
}
