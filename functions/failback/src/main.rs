//! The failback verification: every minute, reconciles every region with the control
//! state and, while away from home, checks whether home is safe to return to.

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
