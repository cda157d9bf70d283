//! Maps the Lambda event to a controller call and the result back to JSON or a Lambda
//! error. Nothing else lives here.

use lambda_runtime::{Diagnostic, LambdaEvent};
use regionpilot::controller::Controller;
use regionpilot::decision::event;
use regionpilot::ports::Deps;
use serde_json::Value;
use tracing::{error, info};

pub async fn handle<D: Deps>(
    controller: &Controller<D>,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let request_id = event.context.request_id.clone();
    let result = match event::decode(&event.payload, &controller.config) {
        Ok(trigger) => controller.handle(trigger).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(response) => {
            info!(request_id, outcome = ?response.outcome, active = %response.active_region, epoch = response.epoch, "done");
            serde_json::to_value(&response).map_err(|e| Diagnostic {
                error_type: "SerializationError".into(),
                error_message: e.to_string(),
            })
        }
        Err(e) => {
            error!(request_id, error_type = e.error_type(), error = %e, "invocation failed");
            Err(Diagnostic {
                error_type: e.error_type().into(),
                error_message: e.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regionpilot::testing::{FakeWorld, config};
    use std::sync::Arc;

    fn invoke(payload: Value) -> LambdaEvent<Value> {
        LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    #[tokio::test]
    async fn a_bad_event_is_a_clear_lambda_error_and_changes_nothing() {
        let world = FakeWorld::new();
        let controller = Controller::new(Arc::new(config()), world.ports());
        let err = handle(
            &controller,
            invoke(serde_json::json!({"command": "failover", "target_region": "ap-south-1"})),
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type, "InvalidEvent");
        assert!(
            err.error_message
                .contains("not one of the configured REGIONS"),
            "{}",
            err.error_message
        );
        assert!(world.control.state().is_none());
    }

    #[tokio::test]
    async fn a_manual_failover_answers_with_the_outcome() {
        let world = FakeWorld::new();
        let controller = Controller::new(Arc::new(config()), world.ports());
        let out = handle(
            &controller,
            invoke(serde_json::json!({"command": "failover"})),
        )
        .await
        .unwrap();
        assert_eq!(out["outcome"], "switched");
        assert_eq!(out["to"], "us-west-2");
        assert_eq!(out["epoch"], 1);
    }
}
