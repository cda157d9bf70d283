//! The health probe: on a schedule, samples every region's DynamoDB health and replication
//! lag and publishes them as high-resolution CloudWatch metrics (EMF on stdout); on a
//! manual invoke, answers one round at once.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

mod handler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let controller = regionpilot::aws::init_from_env().await?;
    let config = &controller.config;
    tracing::info!(
        interval_s = config.probe_interval.as_secs(),
        window_s = config.probe_window.as_secs(),
        namespace = %config.metrics_namespace,
        "health probe ready"
    );
    let controller = &controller;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler::handle(controller, event).await
    }))
    .await
}
