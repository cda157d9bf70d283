//! The control state: which region is active, at which epoch, and how far the latest
//! transition has got. It is the single source of truth; SSM parameters are copies of it.
//! Every write is a compare-and-swap on `version`, and every transition bumps `epoch`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::region::Region;

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlState {
    pub active_region: Region,
    /// Number of transitions so far; 0 means "never switched, home is active".
    pub epoch: u64,
    #[serde(default)]
    pub paused: Option<Pause>,
    /// The latest transition, with how far its side effects have got.
    #[serde(default)]
    pub transition: Option<Transition>,
    /// Failback verification progress while away from home.
    #[serde(default)]
    pub failback: Option<FailbackProgress>,
    /// When the recent automatic switches happened (at most the flap guard's limit + 1,
    /// within 24 hours): the flap guard reads them here instead of querying the history.
    #[serde(default)]
    pub recent_automatic_switches: Vec<Millis>,
    /// Every group's sizes as the verifier last saw them (`region/name`): where a switch
    /// reads the source's capacity when that region cannot be described.
    #[serde(default)]
    pub capacity_snapshot: BTreeMap<String, GroupSizes>,
    /// Groups regionpilot scaled up (`region/name`), with the desired capacity to return
    /// to once the scale-in delay has passed. Kept across transitions until scaled in.
    #[serde(default)]
    pub scaled_up: BTreeMap<String, ScaledUp>,
    /// The newest readiness evaluation: `status` shows it, and the next one is due
    /// `READINESS_INTERVAL_SECONDS` after it.
    #[serde(default)]
    pub readiness: Option<crate::verifier::readiness::Readiness>,
}

/// A group's sizes at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSizes {
    pub min: i32,
    pub desired: i32,
    pub max: i32,
    /// When these sizes were first seen (a snapshot is rewritten only when they change).
    pub at: Millis,
}

impl GroupSizes {
    pub fn of(info: &crate::ports::GroupInfo, at: Millis) -> Self {
        GroupSizes {
            min: info.min,
            desired: info.desired,
            max: info.max,
            at,
        }
    }

    /// The same min, desired and max (whenever each was seen).
    pub fn same_sizes(&self, other: &GroupSizes) -> bool {
        (self.min, self.desired, self.max) == (other.min, other.desired, other.max)
    }
}

/// A scale-up to undo later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaledUp {
    /// The desired capacity before regionpilot's first scale-up of this group.
    pub previous_desired: i32,
    /// The transition that scaled it up.
    pub epoch: u64,
    pub at: Millis,
    /// A scale-in under way, written before its `SetDesiredCapacity`: if a switch lands
    /// before it is confirmed, the verifier puts the group back to `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_in: Option<ScaleInIntent>,
}

/// A scale-in the verifier decided at `epoch`: from `from` to `to` instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleInIntent {
    pub from: i32,
    pub to: i32,
    pub epoch: u64,
}

/// How close the application is to going home, kept across the verifier's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailbackProgress {
    /// The transition (epoch) this progress belongs to; a new transition starts over.
    pub epoch: u64,
    /// Consecutive healthy checks of the home region; one failure resets it.
    pub healthy_streak: u32,
    pub last_check_at: Millis,
    /// All conditions met (approve mode waits here for a person).
    pub ready: bool,
    /// What readiness still waits for, in words.
    #[serde(default)]
    pub waiting_for: Vec<String>,
    #[serde(default)]
    pub last_drain_seconds: Option<f64>,
    /// When the run that found it ready first found it so; kept while every later check
    /// agrees. The fact's identity: `Failback Ready` carries it in its id, so a verifier in
    /// any region that tells it again tells it with the same id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_since: Option<Millis>,
}

impl ControlState {
    /// The state before anything was ever written: home active, epoch 0.
    pub fn initial(home: Region) -> Self {
        ControlState {
            active_region: home,
            epoch: 0,
            paused: None,
            transition: None,
            failback: None,
            recent_automatic_switches: Vec::new(),
            capacity_snapshot: BTreeMap::new(),
            scaled_up: BTreeMap::new(),
            readiness: None,
        }
    }

    pub fn last_switch_at(&self) -> Option<Millis> {
        self.transition.as_ref().map(|t| t.started_at)
    }
}

/// A control state as read, with the version to compare-and-swap against.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// 0 when the item does not exist yet.
    pub version: u64,
    pub value: T,
    /// The tokens of the newest writes, oldest first, the last being the one that stored
    /// this version (empty before the first write): how a writer whose answer was lost
    /// recognises its own write, even after others have written over it.
    pub writes: Vec<WriteToken>,
}

impl<T> Versioned<T> {
    /// The tokens a write over this version stores: these, and `token` last, at most
    /// [`WRITES_KEPT`].
    pub fn writes_after(&self, token: WriteToken) -> Vec<WriteToken> {
        let skip = (self.writes.len() + 1).saturating_sub(WRITES_KEPT);
        self.writes
            .iter()
            .skip(skip)
            .cloned()
            .chain([token])
            .collect()
    }
}

/// How many write tokens the state item keeps: more than the writes one transition makes
/// concurrently (one per region and step), so a write that landed and was written over
/// while its answer was lost is still recognised.
pub const WRITES_KEPT: usize = 16;

/// Unique to one compare-and-swap attempt, and stored with what it wrote. A write can be
/// applied and still answer with a timeout or a 500, and the SDK's retry of it then fails
/// its own condition; reading the token back tells "mine landed" from "someone else's".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WriteToken(pub String);

impl WriteToken {
    /// A token no other attempt has: this process's random seed and a counter.
    pub fn fresh() -> WriteToken {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static PROCESS: OnceLock<u64> = OnceLock::new();
        static ATTEMPTS: AtomicU64 = AtomicU64::new(0);
        let process = *PROCESS.get_or_init(|| {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        });
        let attempt = ATTEMPTS.fetch_add(1, Ordering::Relaxed);
        WriteToken(format!("{process:016x}-{attempt}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub reason: String,
    pub at: Millis,
    /// `operator` or `flap-guard`.
    pub by: String,
}

/// What started a transition or a command, for the history and the logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TriggerInfo {
    Alarm {
        alarm_name: String,
        source: String,
    },
    Manual {
        command: String,
        force: bool,
    },
    /// The failback verification, in `auto` mode.
    Verifier {
        check: String,
    },
}

impl TriggerInfo {
    pub fn is_automatic(&self) -> bool {
        matches!(
            self,
            TriggerInfo::Alarm { .. } | TriggerInfo::Verifier { .. }
        )
    }

    pub fn label(&self) -> String {
        match self {
            TriggerInfo::Alarm { alarm_name, source } => format!("alarm:{alarm_name} via {source}"),
            TriggerInfo::Manual { command, force } => {
                format!("manual:{command}{}", if *force { " (forced)" } else { "" })
            }
            TriggerInfo::Verifier { check } => format!("verifier:{check}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub epoch: u64,
    pub from: Region,
    pub to: Region,
    pub reason: String,
    pub trigger: TriggerInfo,
    pub started_at: Millis,
    /// The invocation that owns the side effects until this time; after it, anyone may
    /// finish them.
    pub lease_until: Millis,
    /// Per region: the outcome of writing the active-region parameter.
    #[serde(default)]
    pub publish: BTreeMap<Region, StepStatus>,
    /// Per Auto Scaling group (`region/name`): the refresh started for this transition.
    #[serde(default)]
    pub refreshes: BTreeMap<String, RefreshStatus>,
    /// All side effects were attempted; failures (if any) are left to reconcile.
    #[serde(default)]
    pub completed: bool,
    /// Data-loss evidence: the newest heartbeat from `from` that had replicated to `to`
    /// when we switched. Writes in `from` after it may arrive late or never.
    #[serde(default)]
    pub last_replicated_from_old: Option<Millis>,
    /// Refreshes the previous transition started. Auto Scaling reports start times in whole
    /// seconds, so one started just before this transition could look like its own.
    #[serde(default)]
    pub previous_refresh_ids: Vec<String>,
    /// Per Auto Scaling group of the target region (`region/name`): the capacity step.
    #[serde(default)]
    pub capacity: BTreeMap<String, CapacityStatus>,
    /// Per Auto Scaling group (`region/name`), in `run-command` mode: the in-place reload.
    #[serde(default)]
    pub reload: BTreeMap<String, ReloadStatus>,
    /// When each step (`<kind> <region or group>`, e.g. `publish us-east-1`) first started
    /// and last ended, and how many times it ran: what a report shows.
    #[serde(default)]
    pub step_times: BTreeMap<String, StepTime>,
    /// A person forced it past the safety checks.
    #[serde(default)]
    pub forced: bool,
    /// The decision's inputs: the candidates' probe results.
    #[serde(default)]
    pub probes: Vec<crate::ports::ProbeResult>,
    /// The failback verification that led to it, when it went home.
    #[serde(default)]
    pub failback: Option<FailbackProgress>,
    /// How many times another invocation took the transition over after its lease: a
    /// takeover re-runs steps, so its history copy must count as further along.
    #[serde(default)]
    pub takeovers: u32,
}

/// When a step ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTime {
    pub started_at: Millis,
    pub ended_at: Millis,
    pub attempts: u32,
}

impl StepTime {
    /// Adds one run: the first start is kept, the last end and the count move on. The
    /// same run applied again (a record re-applied after a lost compare-and-swap) counts
    /// once.
    pub fn add(
        slot: &mut BTreeMap<String, StepTime>,
        key: String,
        started_at: Millis,
        ended_at: Millis,
    ) {
        slot.entry(key)
            .and_modify(|t| {
                t.started_at = t.started_at.min(started_at);
                if ended_at > t.ended_at {
                    t.ended_at = ended_at;
                    t.attempts += 1;
                }
            })
            .or_insert(StepTime {
                started_at,
                ended_at,
                attempts: 1,
            });
    }
}

impl Transition {
    /// Grows with every step run recorded, every takeover and completion; equal for the
    /// same record applied twice. Orders copies of the history record.
    pub fn revision(&self) -> u64 {
        self.step_times
            .values()
            .map(|t| u64::from(t.attempts))
            .sum::<u64>()
            + u64::from(self.takeovers)
            + u64::from(self.completed)
    }

    /// The refresh ids this transition started or adopted.
    pub fn refresh_ids(&self) -> Vec<String> {
        self.refreshes
            .values()
            .filter_map(|status| match status {
                RefreshStatus::Started { id } | RefreshStatus::AlreadyRunning { id } => {
                    Some(id.clone())
                }
                RefreshStatus::Failed { .. } => None,
            })
            .collect()
    }

    /// The parameter is known to be written in `region` for this transition.
    pub fn published_in(&self, region: &Region) -> bool {
        self.publish.get(region).is_some_and(StepStatus::is_ok)
    }

    /// The group `key` (`region/name`) has its refresh for this transition.
    pub fn refreshed(&self, key: &str) -> bool {
        self.refreshes.get(key).is_some_and(RefreshStatus::is_ok)
    }

    pub fn failed_regions(&self) -> Vec<Region> {
        self.publish
            .iter()
            .filter(|(_, status)| !status.is_ok())
            .map(|(region, _)| region.clone())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum StepStatus {
    Published,
    Failed { error: String },
}

impl StepStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, StepStatus::Published)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum RefreshStatus {
    /// We started this refresh for the transition.
    Started {
        id: String,
    },
    /// A refresh that began after the transition was already running; we left it.
    AlreadyRunning {
        id: String,
    },
    Failed {
        error: String,
    },
}

impl RefreshStatus {
    pub fn is_ok(&self) -> bool {
        !matches!(self, RefreshStatus::Failed { .. })
    }
}

/// What the capacity step did to one group of the target region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum CapacityStatus {
    /// Desired capacity raised from `previous` to `desired`. `wanted` is what the rule
    /// asked for; `capped` says MaxSize held it lower (regionpilot never raises MaxSize).
    Raised {
        previous: i32,
        desired: i32,
        wanted: i32,
        max: i32,
        capped: bool,
        /// Where the counterpart's capacity came from: `live` or `snapshot`.
        source: String,
        counterpart: String,
    },
    /// Below what the rule asks for, but already at MaxSize (`capped`).
    AtMax {
        desired: i32,
        wanted: i32,
        max: i32,
        capped: bool,
        source: String,
        counterpart: String,
    },
    /// Already at or above what the rule asks for.
    Sufficient {
        desired: i32,
        wanted: i32,
        source: String,
        counterpart: String,
    },
    /// Nothing to do: no counterpart, or its capacity is unknown (no live read, no
    /// snapshot), or the group no longer exists.
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
}

impl CapacityStatus {
    pub fn is_ok(&self) -> bool {
        !matches!(self, CapacityStatus::Failed { .. })
    }
}

/// The in-place reload of one group's running instances (SSM Run Command).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// `succeeded`, `in_progress`, `fell_back` (some instances failed or timed out: the
    /// group got an instance refresh), `no_instances`, or `failed` (not sent, or the
    /// fallback refresh could not start).
    pub status: ReloadPhase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    #[serde(default)]
    pub sent_at: Option<Millis>,
    pub targeted: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub timed_out: u32,
    pub pending: u32,
    /// The safety net: the instance refresh for instances that did not reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_refresh: Option<RefreshStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Instances that were not in service when the command went out: still booting, they
    /// may have read the old value, and SSM does not know them yet. Each is reloaded by id
    /// once it is in service and registered, or dropped once it has left the group.
    /// Instances launched after the command read the new value at boot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting: Vec<String>,
    /// The command reloading some of `awaiting`, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_command_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadPhase {
    Succeeded,
    InProgress,
    FellBack,
    NoInstances,
    Failed,
}

impl ReloadStatus {
    /// Nothing is left to do for this group.
    pub fn is_done(&self) -> bool {
        match self.status {
            ReloadPhase::Succeeded | ReloadPhase::NoInstances => true,
            ReloadPhase::FellBack => self
                .fallback_refresh
                .as_ref()
                .is_some_and(RefreshStatus::is_ok),
            ReloadPhase::InProgress | ReloadPhase::Failed => false,
        }
    }

    pub fn failed(error: String) -> Self {
        ReloadStatus {
            error: Some(error),
            ..ReloadStatus::new(ReloadPhase::Failed)
        }
    }

    /// A status with no command and no counts yet.
    pub fn new(status: ReloadPhase) -> Self {
        ReloadStatus {
            status,
            command_id: None,
            sent_at: None,
            targeted: 0,
            succeeded: 0,
            failed: 0,
            timed_out: 0,
            pending: 0,
            fallback_refresh: None,
            error: None,
            awaiting: Vec::new(),
            late_command_id: None,
        }
    }
}

/// One line of the transition history, written idempotently by epoch once the
/// transition's steps are done (before the state marks it completed), and rewritten as
/// later steps are recorded, so a report of any past transition has everything
/// (`transition`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub epoch: u64,
    pub from: Region,
    pub to: Region,
    pub reason: String,
    pub trigger: TriggerInfo,
    pub at: Millis,
    #[serde(default)]
    pub last_replicated_from_old: Option<Millis>,
    /// The whole transition as last recorded: steps with their times, the probes that
    /// decided it, the failback verification that led to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Box<Transition>>,
    /// How far the transition had got (`Transition::revision`): a rewrite never replaces
    /// a copy that had got further.
    #[serde(default)]
    pub revision: u64,
}

impl HistoryRecord {
    /// The record of `t` as it stands.
    pub fn of(t: &Transition) -> Self {
        HistoryRecord {
            epoch: t.epoch,
            from: t.from.clone(),
            to: t.to.clone(),
            reason: t.reason.clone(),
            trigger: t.trigger.clone(),
            at: t.started_at,
            last_replicated_from_old: t.last_replicated_from_old,
            transition: Some(Box::new(t.clone())),
            revision: t.revision(),
        }
    }

    /// The one-line form `status` lists.
    pub fn summary(&self) -> Self {
        HistoryRecord {
            transition: None,
            ..self.clone()
        }
    }
}
