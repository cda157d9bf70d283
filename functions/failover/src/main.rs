//! The failover function: CloudWatch alarms (direct, EventBridge, SNS) and operators'
//! commands in; at most one region switch out. Config and clients are wired once here
//! (each per-region client is built on its first use and kept).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

mod handler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let controller = regionpilot::aws::init_control_plane_from_env().await?;
    let regions: Vec<&str> = controller
        .config
        .regions
        .iter()
        .map(|r| r.as_str())
        .collect();
    tracing::info!(regions = %regions.join(","), home = %controller.config.home(), "failover function ready");
    let controller = &controller;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler::handle(controller, event).await
    }))
    .await
}
