//! The active-region parameter, written in every region before anything else acts, so
//! anything that boots reads the new value.

use tracing::{info, warn};

use crate::config::Config;
use crate::ports::{Deps, ParameterStore};
use crate::region::Region;
use crate::state::{StepStatus, Transition};
use crate::transition::kind::{Kind, StepKind};
use crate::transition::plan::{Action, OutcomeFuture, RegionPlan, Stage, StepContext};

/// The kind: one publish per region, in the prepare stage.
pub struct Publish;

impl Kind for Publish {
    type Outcome = StepStatus;
    const FIELD: &'static str = "publish";

    fn summary(key: &str, outcome: &StepStatus, epoch: u64) -> String {
        match outcome {
            StepStatus::Published => format!("{key}: parameter published for epoch {epoch}"),
            StepStatus::Failed { error, .. } => format!("{key}: publish failed: {error}"),
        }
    }
}

impl<D: Deps> StepKind<D> for Publish {
    fn plan(&self, _config: &Config, _to: &Region, plan: &mut RegionPlan<D>) {
        let region = plan.region.clone();
        let key = region.to_string();
        plan.add(Stage::Prepare, &key, Box::new(PublishStep { region }));
    }
}

/// Writes the active-region parameter in one region.
pub struct PublishStep {
    pub region: Region,
}

impl<D: Deps> Action<D> for PublishStep {
    type Outcome = StepStatus;
    const NAME: &'static str = "publish";

    fn key(&self) -> String {
        self.region.to_string()
    }

    fn finished(&self, recorded: Option<&StepStatus>) -> bool {
        recorded.is_some_and(StepStatus::is_ok)
    }

    fn act<'a>(&'a self, cx: &'a StepContext<'a, D>) -> OutcomeFuture<'a, StepStatus> {
        Box::pin(publish_one(
            cx.config,
            cx.ports,
            cx.transition,
            &self.region,
        ))
    }
}

/// Writes the active-region parameter of `transition` in `region`.
pub(crate) async fn publish_one<D: Deps>(
    config: &Config,
    ports: &D,
    transition: &Transition,
    region: &Region,
) -> StepStatus {
    let name = &config.active_region_parameter;
    let value = transition.to.as_str();
    let description = format!(
        "regionpilot epoch {}: {} -> {}",
        transition.epoch, transition.from, transition.to
    );
    match ports
        .parameters()
        .put(region, name, value, &description)
        .await
    {
        Ok(()) => {
            info!(region = %region, parameter = %name, value, "published");
            StepStatus::Published
        }
        Err(e) => {
            warn!(region = %region, parameter = %name, error = %e, "publish failed");
            StepStatus::Failed {
                error: e.to_string(),
                error_kind: Some(e.kind),
            }
        }
    }
}
