//! `{"command":"status"}`: everything an operator needs, read in one concurrent round.

use std::collections::BTreeMap;

use futures::future::join_all;
use serde::Serialize;
use tracing::warn;

use crate::controller::{Controller, Outcome, Response};
use crate::error::{Error, ErrorKind, Result};
use crate::ports::{ControlStore, Deps, GroupInfo, ParameterStore, RefreshInfo, ScalingGroups};
use crate::region::Region;
use crate::state::{
    CapacityStatus, ControlState, GroupSizes, HistoryRecord, Pause, ReloadStatus, ScaledUp,
    Transition,
};

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Which control plane answered: the function's region and the control table there.
    pub answered_by: ControlView,
    pub home_region: Region,
    pub active_region: Region,
    pub epoch: u64,
    /// How DNS learns the decision here (`TRAFFIC_SIGNAL`): `metric`, `gate` or
    /// `routing-control`; `off` with `TRAFFIC=off`.
    pub traffic_signal: &'static str,
    /// `home`, `failed_over`, or `transitioning` while a transition's steps are unfinished.
    pub phase: &'static str,
    pub paused: Option<Pause>,
    /// Failback readiness while away from home: healthy streak, what it still waits for.
    pub failback: Option<crate::state::FailbackProgress>,
    /// Whether a failover would work, as the verifier last evaluated it (each check with
    /// its reason, and `evaluated_at`); `None` before its first evaluation.
    pub readiness: Option<crate::verifier::readiness::Readiness>,
    pub parameters: BTreeMap<Region, ParameterValue>,
    /// Per group (`region/name`): its sizes now, its latest refresh, and what the latest
    /// transition did to it (capacity, reload).
    pub auto_scaling_groups: BTreeMap<String, GroupRefreshReport>,
    /// Groups regionpilot scaled up and will scale back in after the delay.
    pub scaled_up: BTreeMap<String, ScaledUp>,
    /// Every group's sizes as the verifier last recorded them.
    pub capacity_snapshot: BTreeMap<String, GroupSizes>,
    pub last_transition: Option<TransitionView>,
    pub history: Vec<HistoryRecord>,
    /// Every vantage point (health probe) whose samples the control table holds: when it
    /// last reported and its latest verdict on each region. An alarm's failover needs a
    /// quorum of them (see `evidence::quorum`).
    pub vantage_points: Vec<VantagePointView>,
    /// What each further kind of step shows, under its own field (`ecs_services`, ...).
    #[serde(flatten)]
    pub kinds: BTreeMap<&'static str, serde_json::Value>,
}

/// One vantage point as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VantagePointView {
    pub vantage: Region,
    /// Its newest sample of any region.
    pub last_reported: Option<crate::state::Millis>,
    /// Its latest sample of each region.
    pub verdicts: BTreeMap<Region, crate::evidence::samples::Sample>,
}

impl VantagePointView {
    fn of(p: &crate::evidence::samples::ProbeSamples) -> Self {
        let verdicts: BTreeMap<Region, crate::evidence::samples::Sample> = p
            .regions
            .iter()
            .filter_map(|(region, kept)| Some((region.clone(), *kept.last()?)))
            .collect();
        VantagePointView {
            vantage: p.vantage.clone(),
            last_reported: verdicts.values().map(|s| s.at).max(),
            verdicts,
        }
    }
}

/// Where a status answer's control state came from.
#[derive(Debug, Clone, Serialize)]
pub struct ControlView {
    pub region: Region,
    pub control_table: String,
    /// The state was read with a strongly consistent read: it includes every write
    /// acknowledged before the read (in that table's replica; across regions with a
    /// multi-Region strongly consistent table). `false` when that read failed and the
    /// answer comes from an eventually consistent one, which may be stale.
    pub strongly_consistent: bool,
    /// Why the strongly consistent read was not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_because: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ParameterValue {
    Value {
        value: Option<String>,
        in_sync: bool,
    },
    Unreachable {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum GroupRefreshReport {
    Latest {
        refresh: Option<RefreshInfo>,
        /// Sizes and instances now; `None` when the group does not exist.
        capacity: Option<GroupInfo>,
        #[serde(skip_serializing_if = "Option::is_none")]
        capacity_step: Option<CapacityStatus>,
        /// The latest transition's reload: command id and per-instance counts.
        #[serde(skip_serializing_if = "Option::is_none")]
        reload: Option<Box<ReloadStatus>>,
    },
    Unreachable {
        error: String,
    },
}

impl<D: Deps> Controller<D> {
    /// Reads everything an operator needs in one concurrent round: the control state,
    /// every region's parameter, every group and the history are all read at once, and
    /// what depends on the state (in sync, the latest transition's steps) is put
    /// together after. A cold start's answer then costs one request time, not two.
    pub async fn status(&self) -> Result<Response> {
        let name = &self.config.active_region_parameter;
        let params = join_all(self.config.regions.iter().map(|region| async move {
            (
                region.clone(),
                self.ports.parameters().get(region, name).await,
            )
        }));
        let groups = join_all(self.config.auto_scaling_groups.iter().map(|g| async move {
            let groups = self.ports.groups();
            let (refreshes, sizes) = tokio::join!(groups.refreshes(g), groups.describe(g));
            (g.key(), refreshes, sizes)
        }));
        let kinds = crate::steps::kinds::<D>();
        let kinds = join_all(kinds.iter().map(|k| k.status(&self.config, &self.ports)));
        let (current, params, groups, history, kinds, vantage) = futures::join!(
            self.load(),
            params,
            groups,
            self.ports.control().history(10),
            kinds,
            self.ports.control().vantage_samples(),
        );
        // Status answers without them rather than not at all.
        let vantage_points = vantage.map_or_else(
            |e| {
                warn!(error = %e, "status: the vantage points' samples could not be read");
                Vec::new()
            },
            |all| all.iter().map(VantagePointView::of).collect(),
        );
        // A replica cut off from the others (multi-Region strong consistency) answers a
        // strongly consistent read with a 500 but still serves eventually consistent
        // ones: an operator then sees the last state it holds, marked as possibly stale.
        let (state, stale_because) = match current {
            Ok(current) => (current.value, None),
            Err(Error::Aws(e)) if e.kind == ErrorKind::ServerError => {
                warn!(error = %e, "status: the strongly consistent read failed; answering from an eventually consistent one");
                let stale = self
                    .ports
                    .control()
                    .load_eventually()
                    .await
                    .map_err(|_| e.clone())?;
                let state = stale.map_or_else(
                    || ControlState::initial(self.config.home().clone()),
                    |v| v.value,
                );
                (state, Some(e.to_string()))
            }
            Err(e) => return Err(e),
        };
        // The history is read strongly too: a cut-off replica leaves it out.
        let history = match history {
            Ok(history) => history,
            Err(_) if stale_because.is_some() => Vec::new(),
            Err(e) => return Err(e),
        };
        let active = &state.active_region;
        let params = params.into_iter().map(|(region, read)| {
            let value = match read {
                Ok(value) => ParameterValue::Value {
                    in_sync: value.as_deref() == Some(active.as_str()),
                    value,
                },
                Err(e) => ParameterValue::Unreachable {
                    error: e.to_string(),
                },
            };
            (region, value)
        });
        let transition = state.transition.as_ref();
        let groups = groups.into_iter().map(|(key, refreshes, sizes)| {
            let report = match (refreshes, sizes) {
                (Ok(list), Ok(capacity)) => GroupRefreshReport::Latest {
                    refresh: list.into_iter().next(),
                    capacity,
                    capacity_step: transition.and_then(|t| t.outcome::<CapacityStatus>(&key)),
                    reload: transition
                        .and_then(|t| t.outcome::<ReloadStatus>(&key))
                        .map(Box::new),
                },
                (Err(e), _) | (_, Err(e)) => GroupRefreshReport::Unreachable {
                    error: e.to_string(),
                },
            };
            (key, report)
        });
        let report = StatusReport {
            answered_by: ControlView {
                region: self.config.own_region.clone(),
                control_table: self.config.control_table.clone(),
                strongly_consistent: stale_because.is_none(),
                stale_because,
            },
            home_region: self.config.home().clone(),
            active_region: state.active_region.clone(),
            epoch: state.epoch,
            traffic_signal: if self.config.traffic {
                self.config.traffic_signal.as_str()
            } else {
                "off"
            },
            phase: if state.transition.as_ref().is_some_and(|t| !t.completed) {
                "transitioning"
            } else if &state.active_region == self.config.home() {
                "home"
            } else {
                "failed_over"
            },
            paused: state.paused.clone(),
            failback: state.failback.clone(),
            readiness: state.readiness.clone(),
            parameters: params.collect(),
            auto_scaling_groups: groups.collect(),
            scaled_up: state.scaled_up.clone(),
            capacity_snapshot: state.capacity_snapshot.clone(),
            last_transition: state.transition.as_ref().map(TransitionView::of),
            history: history.iter().map(HistoryRecord::summary).collect(),
            vantage_points,
            kinds: kinds.into_iter().flatten().collect(),
        };
        let mut response = self.simple(
            Outcome::Status,
            &state,
            format!("{} is active at epoch {}", state.active_region, state.epoch),
            None,
        );
        response.status = Some(report);
        Ok(response)
    }
}

/// A transition as `status` shows it: as stored (its generic `steps`), with each kind's
/// outcomes by key beside it (`publish`, `refreshes`, `capacity`, `reload`, ...), the
/// fields people's scripts have always read.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionView {
    #[serde(flatten)]
    pub transition: Transition,
    #[serde(flatten)]
    pub by_kind: BTreeMap<&'static str, BTreeMap<String, serde_json::Value>>,
}

impl TransitionView {
    pub fn of(t: &Transition) -> Self {
        TransitionView {
            transition: t.clone(),
            by_kind: crate::views::answer_fields(t),
        }
    }
}
