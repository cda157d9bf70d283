//! Maps the probe's event to a sampling call and the rounds to EMF lines and a JSON answer.

use std::collections::BTreeMap;
use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent};
use regionpilot::config::DeploymentRole;
use regionpilot::controller::Controller;
use regionpilot::evidence::health::{self, ProbeRequest, Round};
use regionpilot::ports::{Clock, Deps};
use regionpilot::views::gate;
use regionpilot::views::metrics;
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::{error, info, warn};

/// Time kept free before the Lambda deadline to answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);

pub async fn handle<D: Deps>(
    controller: &Controller<D>,
    last: &gate::LastDecision,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let config = &controller.config;
    // A function URL request is the serving gate's: it reads the decision and nothing else.
    if gate::is_url_request(&event.payload) {
        let answer = match gate::route(&event.payload, &config.gate_token, &config.regions) {
            Ok(region) => controller.gate(&region, last).await,
            Err(answer) => answer,
        };
        return Ok(answer.response());
    }
    let regional = config.role == DeploymentRole::Regional;
    if regional && !config.probes() {
        let e = regionpilot::Error::invalid(
            "this is a regional stack's health probe (DEPLOYMENT_ROLE=regional) without CONTROL_TABLE: it answers only its function URL, as this region's serving gate; send status and probe commands to the control stack's health probe",
        );
        error!(error = %e, "not a gate request");
        return Err(diagnostic(&e));
    }
    let request = health::decode_request(&event.payload).map_err(|e| {
        error!(error = %e, "invalid event");
        diagnostic(&e)
    })?;
    let window = match request {
        // A regional vantage point records its verdicts and nothing else: the control
        // state is the control stack's to show.
        ProbeRequest::Status if regional => {
            let e = regionpilot::Error::invalid(
                "this is a regional stack's health probe (DEPLOYMENT_ROLE=regional), a vantage point: it samples and records; send status to the control stack's health probe",
            );
            error!(error = %e, "status asked of a regional probe");
            return Err(diagnostic(&e));
        }
        ProbeRequest::Status => {
            let status = controller.status().await.map_err(|e| diagnostic(&e))?;
            return serde_json::to_value(status).map_err(|e| Diagnostic {
                error_type: "SerializationError".into(),
                error_message: e.to_string(),
            });
        }
        ProbeRequest::Once => Duration::ZERO,
        ProbeRequest::Window => config.probe_window,
    };
    // Stay inside the Lambda timeout whatever the window says.
    let now_ms = controller.ports.clock().now_millis();
    let deadline_ms = event.context.deadline;
    let left =
        Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(ANSWER_MARGIN);
    let until = Instant::now() + window.min(left);
    let high_resolution = config.probe_interval < Duration::from_secs(60);
    let namespace = config.metrics_namespace.as_str();
    let sampling = controller.probe_and_record(until, |round| {
        metrics::emit(&metrics::round_documents(namespace, round, high_resolution));
        log_round(round);
    });
    // Once per invocation (the schedule is once a minute), beside the first round so a
    // slow control table never delays the health samples. A regional vantage point
    // announces nothing: the control stack's probe publishes the decision.
    let announce = async {
        if regional {
            None
        } else {
            controller.announce_active_region().await
        }
    };
    let (rounds, active_region) = tokio::join!(sampling, announce);
    let mut answer = answer(&rounds, namespace);
    if let Some(active) = active_region {
        answer["active_region"] = json!(active);
    }
    Ok(answer)
}

fn log_round(round: &Round) {
    for r in &round.regions {
        if r.healthy {
            info!(region = %r.region, read_ms = r.read_latency_ms, write_ms = r.write_latency_ms, "healthy");
        } else {
            warn!(region = %r.region, error_class = ?r.error_class, error = r.error.as_deref().unwrap_or(""), "unhealthy");
        }
    }
}

fn answer(rounds: &[Round], namespace: &str) -> Value {
    let Some(last) = rounds.last() else {
        return json!({"outcome": "probed", "rounds": 0});
    };
    let regions: BTreeMap<String, &health::RegionHealth> = last
        .regions
        .iter()
        .map(|r| (r.region.to_string(), r))
        .collect();
    json!({
        "outcome": "probed",
        "rounds": rounds.len(),
        "at": last.at,
        "namespace": namespace,
        "regions": regions,
        "replication": last.replication,
    })
}

fn diagnostic(e: &regionpilot::Error) -> Diagnostic {
    Diagnostic {
        error_type: e.error_type().into(),
        error_message: e.to_string(),
    }
}
