//! Init failures reach the invoker. Lambda's Runtime API takes an error raised before the
//! first `invocation/next` at `/runtime/init/error` and answers the invocation waiting on
//! the cold start with it, so `aws lambda invoke` names the bad variable. A process that
//! only exits gets Lambda's generic `Runtime.ExitError`, and the cause stays in the logs.

use http::Method;
use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::{PooledClient, build_request};

use crate::error::Error;

const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

/// The body Lambda's Runtime API takes for a function error.
pub fn diagnostic(error: &Error) -> serde_json::Value {
    serde_json::json!({
        "errorType": error.error_type(),
        "errorMessage": error.to_string(),
        "stackTrace": [],
    })
}

/// Posts `error` to the Runtime API's init-error path. Outside Lambda (no
/// `AWS_LAMBDA_RUNTIME_API`), or if the post fails, the log line the caller wrote is all
/// there is: this only adds to it.
pub async fn report(error: &Error) {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return;
    }
    let body = diagnostic(error).to_string();
    let request = build_request()
        .method(Method::POST)
        .uri(INIT_ERROR_PATH)
        .header("lambda-runtime-function-error-type", error.error_type())
        .header("content-type", "application/json")
        .body(Body::from(body));
    let outcome = match request {
        Ok(request) => PooledClient::builder()
            .build()
            .call(request)
            .await
            .map(|response| response.status()),
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(status) if status.is_success() => {}
        Ok(status) => {
            tracing::error!(%status, "the Runtime API refused the init error report");
        }
        Err(e) => tracing::error!(error = %e, "could not report the init error to the Runtime API"),
    }
}
