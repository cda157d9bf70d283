//! The active-region parameter, written in every region before anything else acts, so
//! anything that boots reads the new value.

use tracing::{info, warn};

use crate::config::Config;
use crate::ports::{Deps, ParameterStore};
use crate::region::Region;
use crate::state::{StepEntry, StepStatus, Transition};
use crate::transition::kind::{KindInfo, StepKind};
use crate::transition::plan::{Record, RegionPlan, Stage, Step, StepContext, StepFuture};

/// The kind: one publish per region, in the prepare stage.
pub struct Publish;

impl KindInfo for Publish {
    fn name(&self) -> &'static str {
        "publish"
    }

    fn field(&self) -> &'static str {
        "publish"
    }

    fn summary(&self, entry: &StepEntry, epoch: u64) -> String {
        let key = &entry.key;
        match entry.outcome::<StepStatus>() {
            Some(StepStatus::Published) => format!("{key}: parameter published for epoch {epoch}"),
            Some(StepStatus::Failed { error, .. }) => format!("{key}: publish failed: {error}"),
            None => format!("{key}: publish (unreadable record)"),
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

impl<D: Deps> Step<D> for PublishStep {
    fn planned(&self) -> (&'static str, String) {
        ("publish", self.region.to_string())
    }

    fn done(&self, transition: &Transition) -> bool {
        transition.published_in(&self.region)
    }

    fn run<'a>(&'a self, cx: &'a StepContext<'a, D>) -> StepFuture<'a> {
        Box::pin(async move {
            let status = publish_one(cx.config, cx.ports, cx.transition, &self.region).await;
            Record::of(self.region.to_string(), &status)
        })
    }

    fn missed(&self, error: String) -> Record {
        Record::missed::<StepStatus>(self.region.to_string(), error)
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
