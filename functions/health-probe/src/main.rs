//! The health probe: on a schedule, samples every region's DynamoDB health and replication
//! lag and publishes them as high-resolution CloudWatch metrics (EMF on stdout); on a
//! manual invoke, answers one round at once. Through its function URL it is also a
//! serving gate for Route 53 HTTPS health checks (`regionpilot::views::gate`).

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
    // The gate's last decision read, kept for the life of this process.
    let last = &regionpilot::views::gate::LastDecision::default();
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler::handle(controller, last, event).await
    }))
    .await
}
