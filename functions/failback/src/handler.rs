//! Maps the verifier's event (schedule, `verify`, `status`) to a controller call.

use lambda_runtime::{Diagnostic, LambdaEvent};
use regionpilot::controller::Controller;
use regionpilot::ports::{Clock, Deps};
use regionpilot::verifier::failback::{VerifierRequest, decode_request};
use serde_json::Value;
use tokio::time::{Duration, Instant};
use tracing::{error, info};

/// Time kept free before the Lambda deadline to answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);

pub async fn handle<D: Deps>(
    controller: &Controller<D>,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    // Stay inside the Lambda timeout, with time to answer.
    let now_ms = controller.ports.clock().now_millis();
    let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms))
        .saturating_sub(ANSWER_MARGIN);
    let deadline = (event.context.deadline > 0).then(|| Instant::now() + left);
    let result = match decode_request(&event.payload) {
        Ok(VerifierRequest::Verify) => controller
            .verify_run(&event.context.request_id, deadline)
            .await
            .and_then(|r| to_json(&r)),
        Ok(VerifierRequest::Status) => controller.status().await.and_then(|r| to_json(&r)),
        Err(e) => Err(e),
    };
    match result {
        Ok(value) => {
            info!(outcome = %value["outcome"], "done");
            Ok(value)
        }
        Err(e) => {
            error!(error_type = e.error_type(), error = %e, "invocation failed");
            Err(Diagnostic {
                error_type: e.error_type().into(),
                error_message: e.to_string(),
            })
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> regionpilot::Result<Value> {
    serde_json::to_value(value)
        .map_err(|e| regionpilot::Error::CorruptState(format!("cannot encode the answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use regionpilot::testing::{FakeWorld, config};
    use std::sync::Arc;

    #[tokio::test]
    async fn verify_at_home_reports_nothing_to_do_and_bad_input_is_rejected() {
        let world = FakeWorld::new();
        let controller = Controller::new(Arc::new(config()), world.ports());
        let ctx = lambda_runtime::Context::default();
        let out = handle(
            &controller,
            LambdaEvent::new(serde_json::json!({"command": "verify"}), ctx.clone()),
        )
        .await
        .unwrap();
        assert_eq!(out["outcome"], "home");
        let err = handle(
            &controller,
            LambdaEvent::new(serde_json::json!({"command": "failover"}), ctx),
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type, "InvalidEvent");
    }
}
