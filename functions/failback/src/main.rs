//! The failback verification: every minute, reconciles every region with the control
//! state and, while away from home, checks whether home is safe to return to.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

mod handler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let controller = regionpilot::aws::init_control_plane_from_env().await?;
    let config = &controller.config;
    tracing::info!(
        mode = ?config.failback.mode,
        healthy_checks = config.failback.healthy_checks,
        min_hold_s = config.failback.min_hold.as_secs(),
        "failback verification ready"
    );
    let controller = &controller;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler::handle(controller, event).await
    }))
    .await
}
