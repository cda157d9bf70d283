//! What the hook does with a payload: point the variable of every configured environment
//! at the payload's `to` region, level-triggered (look, compare, act only when different),
//! so a retry with the same idempotency key does no harm and answers what is true now.
//!
//! Every environment is reconciled concurrently (a dead region costs one client timeout).
//! Only the environment in the `to` region decides the answer: if it is not set, or its
//! update not accepted, the hook fails and regionpilot retries it. The other environments
//! (the region left behind may be down) are best effort: their failures are reported in
//! the answer, and the next switch or retry sets them.

use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::{Config, Target};
use crate::error::HookError;
use crate::payload::{Payload, Stage};
use crate::port::{Beanstalk, Deployment, VariableValue};

/// The hook's answer: what it found and did in each environment.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub app: String,
    pub epoch: u64,
    pub stage: Stage,
    pub idempotency_key: String,
    /// The value every environment's variable is set to: the payload's `to`.
    pub to: String,
    /// The `to` region's environment first, then the others in ENVIRONMENTS order.
    pub environments: Vec<EnvironmentOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentOutcome {
    pub region: String,
    pub environment: String,
    pub variable: String,
    /// The value wanted (the payload's `to`).
    pub value: String,
    pub action: Action,
    /// The value before this call changed it (`updated` only; absent: it was not set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The environment's status as last seen (`Updating` right after an update: Beanstalk
    /// is deploying the value to the instances).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Why the environment was not set (`failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub failure: Option<HookError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// This call asked Beanstalk to set the value (UpdateEnvironment accepted).
    Updated,
    /// The value was already set, or is being deployed by an earlier call: nothing done.
    Unchanged,
    /// Not set: see `error`.
    Failed,
}

/// What one look at an environment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub application: String,
    pub status: String,
    /// The value in effect (`Deployed`).
    pub deployed: Option<String>,
    /// The value of a draft being deployed (`Pending`), if an update is under way.
    pub pending: Option<String>,
}

impl Observed {
    /// What the environment will hold once any update under way is done: the draft being
    /// deployed, else the deployed value. (A `Failed` draft was rolled back: not counted.)
    pub fn eventual(&self) -> Option<&str> {
        self.pending.as_deref().or(self.deployed.as_deref())
    }
}

/// The decision for one look at an environment.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// The value is set, or being set: nothing to do.
    Unchanged,
    /// Ready and different: update.
    Update,
    /// Different, but busy (Updating, Launching ...): Beanstalk would refuse an update.
    Wait,
    /// It can never be updated.
    Fail(HookError),
}

/// The decision rule, pure: see the table test below.
pub fn judge(target: &Target, observed: &Observed, value: &str) -> Judgement {
    match observed.status.as_str() {
        "Terminating" | "Terminated" => Judgement::Fail(HookError::Terminated {
            region: target.region.clone(),
            environment: target.environment.clone(),
            status: observed.status.clone(),
        }),
        _ if observed.eventual() == Some(value) => Judgement::Unchanged,
        "Ready" => Judgement::Update,
        _ => Judgement::Wait,
    }
}

/// The library handler: decodes the payload, reconciles every environment, answers. The
/// `Err` is what regionpilot records as the hook's failure (a Lambda function error).
/// `budget` bounds the wait for a busy environment ([`Config::wait_budget`]).
pub async fn handle<B: Beanstalk>(
    port: &B,
    config: &Config,
    payload: &Value,
    budget: Duration,
) -> Result<Answer, HookError> {
    let payload = Payload::from_value(payload)?;
    if config.target(&payload.to).is_none() {
        return Err(HookError::UnknownRegion {
            region: payload.to.clone(),
            configured: config.describe(),
        });
    }
    let span = tracing::info_span!(
        "hook",
        app = %payload.app,
        epoch = payload.epoch,
        from = %payload.from,
        to = %payload.to,
        stage = ?payload.stage,
        trigger = ?payload.trigger.kind,
        direction = ?payload.direction,
        forced = payload.forced,
        key = %payload.idempotency_key,
    );
    async {
        let mut outcomes = join_all(config.environments.iter().map(|target| {
            reconcile(
                port,
                target,
                &config.variable,
                &payload.to,
                budget,
                config.ready_poll,
            )
        }))
        .await;
        // The environment that decides first: regionpilot keeps only the start of an answer.
        outcomes.sort_by_key(|o| o.region != payload.to);
        for outcome in &outcomes {
            match &outcome.failure {
                None => tracing::info!(
                    region = %outcome.region,
                    environment = %outcome.environment,
                    action = ?outcome.action,
                    previous = outcome.previous.as_deref().unwrap_or(""),
                    status = outcome.status.as_deref().unwrap_or(""),
                    "environment reconciled"
                ),
                Some(error) => tracing::warn!(
                    region = %outcome.region,
                    environment = %outcome.environment,
                    error = %error,
                    target = outcome.region == payload.to,
                    "environment not set"
                ),
            }
        }
        let failed_target = outcomes
            .iter()
            .find(|o| o.region == payload.to)
            .and_then(|o| o.failure.clone());
        if let Some(error) = failed_target {
            return Err(error);
        }
        Ok(Answer {
            app: payload.app.clone(),
            epoch: payload.epoch,
            stage: payload.stage,
            idempotency_key: payload.idempotency_key.clone(),
            to: payload.to.clone(),
            environments: outcomes,
        })
    }
    .instrument(span)
    .await
}

/// Brings one environment's variable to `value`: look, decide, act; while the
/// environment is busy, look again every `poll` for at most `budget`.
async fn reconcile<B: Beanstalk>(
    port: &B,
    target: &Target,
    variable: &str,
    value: &str,
    budget: Duration,
    poll: Duration,
) -> EnvironmentOutcome {
    let started = Instant::now();
    let outcome = |action, previous, status: &str, failure: Option<HookError>| EnvironmentOutcome {
        region: target.region.clone(),
        environment: target.environment.clone(),
        variable: variable.to_owned(),
        value: value.to_owned(),
        action,
        previous,
        status: (!status.is_empty()).then(|| status.to_owned()),
        error: failure.as_ref().map(ToString::to_string),
        failure,
    };
    loop {
        let observed = match observe(port, target, variable).await {
            Ok(observed) => observed,
            Err(error) => return outcome(Action::Failed, None, "", Some(error)),
        };
        let mut status = observed.status.clone();
        match judge(target, &observed, value) {
            Judgement::Unchanged => {
                return outcome(Action::Unchanged, None, &observed.status, None);
            }
            Judgement::Fail(error) => {
                return outcome(Action::Failed, None, &observed.status, Some(error));
            }
            Judgement::Update => {
                let set = port
                    .set_variable(
                        &target.region,
                        &observed.application,
                        &target.environment,
                        variable,
                        value,
                    )
                    .await;
                match set {
                    Ok(()) => {
                        return outcome(
                            Action::Updated,
                            observed.deployed.clone(),
                            "Updating",
                            None,
                        );
                    }
                    // Someone else's update started between our look and our call (or the
                    // SDK retried our own, already accepted, call): look again.
                    Err(error) if error.is_not_ready() => status = "busy".to_owned(),
                    Err(error) => {
                        return outcome(Action::Failed, None, &observed.status, Some(error));
                    }
                }
            }
            Judgement::Wait => {}
        }
        let waited = started.elapsed();
        if waited + poll > budget {
            let error = HookError::NotReady {
                region: target.region.clone(),
                environment: target.environment.clone(),
                status: status.clone(),
                waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            };
            return outcome(Action::Failed, None, &status, Some(error));
        }
        tracing::info!(
            region = %target.region,
            environment = %target.environment,
            status = %status,
            "environment busy; waiting for Ready"
        );
        tokio::time::sleep(poll).await;
    }
}

async fn observe<B: Beanstalk>(
    port: &B,
    target: &Target,
    variable: &str,
) -> Result<Observed, HookError> {
    let info = port
        .environment(&target.region, &target.environment)
        .await?
        .ok_or_else(|| HookError::NotFound {
            region: target.region.clone(),
            environment: target.environment.clone(),
        })?;
    let values = port
        .variable(
            &target.region,
            &info.application,
            &target.environment,
            variable,
        )
        .await?;
    let in_copy = |wanted: Deployment| -> Option<&VariableValue> {
        values.iter().find(|v| v.deployment == wanted)
    };
    let Some(deployed) = in_copy(Deployment::Deployed) else {
        return Err(HookError::NoConfiguration {
            region: target.region.clone(),
            environment: target.environment.clone(),
        });
    };
    Ok(Observed {
        application: info.application,
        status: info.status,
        deployed: deployed.value.clone(),
        pending: in_copy(Deployment::Pending).and_then(|v| v.value.clone()),
    })
}

#[cfg(test)]
mod tests;
