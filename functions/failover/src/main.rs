//! The failover function: CloudWatch alarms (direct, EventBridge, SNS) and operators'
//! commands in; at most one region switch out. Config and clients are built once here.

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
    let regions: Vec<&str> = config.regions.iter().map(|r| r.as_str()).collect();
    tracing::info!(regions = %regions.join(","), home = %config.home(), "failover function ready");
    let controller = &controller;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler::handle(controller, event).await
    }))
    .await
}
