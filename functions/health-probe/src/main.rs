//! The health probe: on a schedule, samples every region's DynamoDB health and replication
//! lag and publishes them as high-resolution CloudWatch metrics (EMF on stdout); on a
//! manual invoke, answers one round at once.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use regionpilot::aws::build_clients;
use regionpilot::{Config, Controller};
use serde_json::Value;

mod handler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    regionpilot::telemetry::init_logging();
    let config =
        Arc::new(Config::from_env().inspect_err(|e| tracing::error!(error = %e, "init failed"))?);
    let clients = build_clients(&config).await;
    let controller = Controller::new(config.clone(), clients.ports(&config));
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
