//! The control state: which region is active, at which epoch, and how far the latest
//! transition has got. It is the single source of truth; SSM parameters are copies of it.
//! Every write is a compare-and-swap on `version`, and every transition bumps `epoch`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
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
    pub readiness: Option<Readiness>,
}

/// One evaluation, kept in the control state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub evaluated_at: Millis,
    /// The active region the checks were made against (a failover would leave it).
    pub active_region: Region,
    /// Every check passed.
    pub ready: bool,
    pub checks: Vec<ReadinessCheck>,
}

/// One check of one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessCheck {
    /// `parameter`, `group_capacity`, `canary`, `replication_lag` or `control_table_pitr`.
    pub check: String,
    /// A region, a group (`region/name`), a direction (`from->to`) or the control table
    /// (`region/table`).
    pub subject: String,
    pub passed: bool,
    /// What was found, or what is wrong, in words.
    pub reason: String,
}

impl ReadinessCheck {
    pub(crate) fn new(
        check: &str,
        subject: impl Into<String>,
        passed: bool,
        reason: String,
    ) -> Self {
        ReadinessCheck {
            check: check.to_owned(),
            subject: subject.into(),
            passed,
            reason,
        }
    }
}

impl Readiness {
    pub fn of(evaluated_at: Millis, active_region: Region, checks: Vec<ReadinessCheck>) -> Self {
        Readiness {
            evaluated_at,
            active_region,
            ready: checks.iter().all(|c| c.passed),
            checks,
        }
    }

    pub fn failing(&self) -> impl Iterator<Item = &ReadinessCheck> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// The sizes the capacity rule reads. An ECS service's `max` is its Application Auto
/// Scaling target's `MaxCapacity` (`i32::MAX` without one), its `min` the target's
/// `MinCapacity` (0 without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub min: i32,
    pub desired: i32,
    pub max: i32,
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
    pub fn of(sizes: &Sizes, at: Millis) -> Self {
        GroupSizes {
            min: sizes.min,
            desired: sizes.desired,
            max: sizes.max,
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
#[serde(from = "StoredTransition")]
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
    /// Every step the transition ran, one entry per kind and key, whatever the kind:
    /// what it did, whether it failed and why, when it ran and how often.
    #[serde(default)]
    pub steps: Vec<StepEntry>,
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

impl Transition {
    /// Grows with every step run recorded, every takeover and completion; equal for the
    /// same record applied twice. Orders copies of the history record.
    pub fn revision(&self) -> u64 {
        self.steps.iter().map(|e| u64::from(e.runs)).sum::<u64>()
            + u64::from(self.takeovers)
            + u64::from(self.completed)
    }

    /// The entry of step `kind` on `key`, if it ran.
    pub fn step(&self, kind: &str, key: &str) -> Option<&StepEntry> {
        self.steps.iter().find(|e| e.kind == kind && e.key == key)
    }

    /// The outcome of the step of `O`'s kind on `key`, if it ran.
    pub fn outcome<O: Outcome>(&self, key: &str) -> Option<O> {
        self.step(O::KIND, key).and_then(StepEntry::outcome)
    }

    /// Every recorded outcome of `O`'s kind, by key.
    pub fn outcomes<O: Outcome>(&self) -> BTreeMap<String, O> {
        self.steps
            .iter()
            .filter(|e| e.kind == O::KIND)
            .filter_map(|e| Some((e.key.clone(), e.outcome()?)))
            .collect()
    }

    /// Records one run of a step: its entry is replaced by the newer outcome, the first
    /// start is kept, the last end and the run count move on. The same run applied again
    /// (a record re-applied after a lost compare-and-swap) counts once.
    pub fn record(&mut self, run: StepEntry) {
        match self
            .steps
            .iter_mut()
            .find(|e| e.kind == run.kind && e.key == run.key)
        {
            Some(entry) => {
                entry.started_at = entry.started_at.min(run.started_at);
                if run.ended_at > entry.ended_at {
                    entry.ended_at = run.ended_at;
                    entry.runs += 1;
                }
                entry.outcome = run.outcome;
                entry.error = run.error;
            }
            None => {
                let at = self.steps.partition_point(|e| {
                    (e.kind.as_str(), e.key.as_str()) < (run.kind.as_str(), run.key.as_str())
                });
                self.steps.insert(at, StepEntry { runs: 1, ..run });
            }
        }
    }

    /// The refresh ids this transition started or adopted, its reloads' fallbacks
    /// included.
    pub fn refresh_ids(&self) -> Vec<String> {
        let fallbacks = self
            .outcomes::<ReloadStatus>()
            .into_values()
            .filter_map(|r| r.fallback_refresh);
        self.outcomes::<RefreshStatus>()
            .into_values()
            .chain(fallbacks)
            .filter_map(|status| match status {
                RefreshStatus::Started { id } | RefreshStatus::AlreadyRunning { id } => Some(id),
                RefreshStatus::Failed { .. } => None,
            })
            .collect()
    }

    /// The parameter is known to be written in `region` for this transition.
    pub fn published_in(&self, region: &Region) -> bool {
        self.outcome::<StepStatus>(region.as_str())
            .is_some_and(|s| s.is_ok())
    }

    pub fn failed_regions(&self) -> Vec<Region> {
        self.outcomes::<StepStatus>()
            .into_iter()
            .filter(|(_, status)| !status.is_ok())
            .filter_map(|(region, _)| Region::parse(&region).ok())
            .collect()
    }
}

/// One step of a transition as the control state and the history keep it, whatever its
/// kind: a generic record, so a new kind of step needs no new field here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepEntry {
    /// The step's kind: `publish`, `capacity`, `refresh`, `reload`, ...
    pub kind: String,
    /// What it acts on: a region, a group's `region/name`, a service's
    /// `region/cluster/service`.
    pub key: String,
    /// The kind's own outcome (its [`Outcome`] type).
    pub outcome: serde_json::Value,
    /// Why it failed, when it did: reconcile runs it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    pub started_at: Millis,
    pub ended_at: Millis,
    /// How many times it ran (a takeover or reconcile runs it again).
    pub runs: u32,
}

impl StepEntry {
    /// One run of a step on `key` that ended in `outcome`.
    pub fn of<O: Outcome>(key: String, outcome: &O, started_at: Millis, ended_at: Millis) -> Self {
        StepEntry {
            kind: O::KIND.to_owned(),
            key,
            // A serde-derived outcome always serialises; `Null` would read back as none.
            outcome: serde_json::to_value(outcome).unwrap_or_default(),
            error: outcome.failure(),
            started_at,
            ended_at,
            runs: 1,
        }
    }

    /// The outcome as its kind's type; `None` if it is of another kind or unreadable.
    pub fn outcome<O: Outcome>(&self) -> Option<O> {
        (self.kind == O::KIND)
            .then(|| serde_json::from_value(self.outcome.clone()).ok())
            .flatten()
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// A step's failure: its kind (what an operator acts on) and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    pub kind: crate::error::ErrorKind,
    pub message: String,
}

impl StepError {
    pub fn new(kind: crate::error::ErrorKind, message: impl Into<String>) -> Self {
        StepError {
            kind,
            message: message.into(),
        }
    }
}

/// What one kind of step records: its kind's name, and when it has failed.
pub trait Outcome: Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static {
    /// The kind of step this outcome belongs to, as recorded.
    const KIND: &'static str;
    /// Why the step failed, if it did (reconcile runs it again). A step still running
    /// (a command being followed) has not failed.
    fn failure(&self) -> Option<StepError>;

    /// The outcome of a step that could not run: its region missed its deadline.
    fn missed(error: String) -> Self;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum StepStatus {
    Published,
    Failed {
        error: String,
        /// What kind of failure (an AWS error's kind, `timeout` for a missed deadline).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_kind: Option<ErrorKind>,
    },
}

impl StepStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, StepStatus::Published)
    }
}

impl Outcome for StepStatus {
    const KIND: &'static str = "publish";

    fn missed(error: String) -> Self {
        StepStatus::Failed {
            error,
            error_kind: Some(ErrorKind::Timeout),
        }
    }

    fn failure(&self) -> Option<StepError> {
        match self {
            StepStatus::Published => None,
            StepStatus::Failed { error, error_kind } => Some(StepError::new(
                error_kind.unwrap_or(ErrorKind::Other),
                error.clone(),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum RefreshStatus {
    /// We started this refresh for the transition.
    Started { id: String },
    /// A refresh that began after the transition was already running; we left it.
    AlreadyRunning { id: String },
    Failed {
        error: String,
        /// What kind of failure (an AWS error's kind, `timeout` for a missed deadline).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_kind: Option<ErrorKind>,
    },
}

impl RefreshStatus {
    pub fn is_ok(&self) -> bool {
        !matches!(self, RefreshStatus::Failed { .. })
    }

    pub fn failed(error: impl Into<String>, kind: ErrorKind) -> Self {
        RefreshStatus::Failed {
            error: error.into(),
            error_kind: Some(kind),
        }
    }
}

impl Outcome for RefreshStatus {
    const KIND: &'static str = "refresh";

    fn missed(error: String) -> Self {
        RefreshStatus::failed(error, ErrorKind::Timeout)
    }

    fn failure(&self) -> Option<StepError> {
        match self {
            RefreshStatus::Failed { error, error_kind } => Some(StepError::new(
                error_kind.unwrap_or(ErrorKind::Other),
                error.clone(),
            )),
            _ => None,
        }
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
    Skipped { reason: String },
    Failed {
        error: String,
        /// What kind of failure (an AWS error's kind, `timeout` for a missed deadline).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_kind: Option<ErrorKind>,
    },
}

impl CapacityStatus {
    pub fn is_ok(&self) -> bool {
        !matches!(self, CapacityStatus::Failed { .. })
    }

    pub fn failed(error: impl Into<String>, kind: ErrorKind) -> Self {
        CapacityStatus::Failed {
            error: error.into(),
            error_kind: Some(kind),
        }
    }
}

impl Outcome for CapacityStatus {
    const KIND: &'static str = "capacity";

    fn missed(error: String) -> Self {
        CapacityStatus::failed(error, ErrorKind::Timeout)
    }

    fn failure(&self) -> Option<StepError> {
        match self {
            CapacityStatus::Failed { error, error_kind } => Some(StepError::new(
                error_kind.unwrap_or(ErrorKind::Other),
                error.clone(),
            )),
            _ => None,
        }
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
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

impl Outcome for ReloadStatus {
    const KIND: &'static str = "reload";

    fn missed(error: String) -> Self {
        ReloadStatus::failed(error, ErrorKind::Timeout)
    }

    fn failure(&self) -> Option<StepError> {
        if self.is_done() {
            return None;
        }
        match &self.fallback_refresh {
            Some(RefreshStatus::Failed { error, error_kind }) => Some(StepError::new(
                error_kind.unwrap_or(ErrorKind::Other),
                format!("the fallback instance refresh failed: {error}"),
            )),
            _ => self.error.as_ref().map(|error| {
                StepError::new(self.error_kind.unwrap_or(ErrorKind::Other), error.clone())
            }),
        }
    }
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

    pub fn failed(error: String, kind: ErrorKind) -> Self {
        ReloadStatus {
            error: Some(error),
            error_kind: Some(kind),
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
            error_kind: None,
            awaiting: Vec::new(),
            late_command_id: None,
        }
    }
}

/// A transition as stored, by today's code or by the versions before the generic step
/// record (2026-12 and earlier), which kept one map per kind (`publish`, `refreshes`,
/// `capacity`, `reload`) and the times apart (`step_times`). Reading converts those into
/// step entries; writing writes entries only.
#[derive(Deserialize)]
struct StoredTransition {
    epoch: u64,
    from: Region,
    to: Region,
    reason: String,
    trigger: TriggerInfo,
    started_at: Millis,
    lease_until: Millis,
    #[serde(default)]
    steps: Vec<StepEntry>,
    #[serde(default)]
    completed: bool,
    #[serde(default)]
    last_replicated_from_old: Option<Millis>,
    #[serde(default)]
    previous_refresh_ids: Vec<String>,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    probes: Vec<crate::ports::ProbeResult>,
    #[serde(default)]
    failback: Option<FailbackProgress>,
    #[serde(default)]
    takeovers: u32,
    #[serde(flatten)]
    before_step_entries: LegacySteps,
}

/// The per-kind maps of a transition written before the generic step record.
#[derive(Deserialize, Default)]
struct LegacySteps {
    #[serde(default)]
    publish: BTreeMap<String, StepStatus>,
    #[serde(default)]
    refreshes: BTreeMap<String, RefreshStatus>,
    #[serde(default)]
    capacity: BTreeMap<String, CapacityStatus>,
    #[serde(default)]
    reload: BTreeMap<String, ReloadStatus>,
    /// `<kind> <key>` to its times.
    #[serde(default)]
    step_times: BTreeMap<String, LegacyStepTime>,
}

#[derive(Deserialize)]
struct LegacyStepTime {
    started_at: Millis,
    ended_at: Millis,
    attempts: u32,
}

impl LegacySteps {
    fn into_entries(self) -> Vec<StepEntry> {
        fn entries<O: Outcome>(
            map: BTreeMap<String, O>,
            times: &BTreeMap<String, LegacyStepTime>,
        ) -> impl Iterator<Item = StepEntry> {
            map.into_iter().map(move |(key, outcome)| {
                let time = times.get(&format!("{} {key}", O::KIND));
                StepEntry {
                    runs: time.map_or(0, |t| t.attempts),
                    ..StepEntry::of(
                        key,
                        &outcome,
                        time.map_or(0, |t| t.started_at),
                        time.map_or(0, |t| t.ended_at),
                    )
                }
            })
        }
        let LegacySteps {
            publish,
            mut refreshes,
            capacity,
            reload,
            step_times,
        } = self;
        // A reload's fallback refresh was listed under `refreshes` too; it is part of the
        // reload's own outcome now.
        refreshes.retain(|key, _| !reload.contains_key(key));
        let mut all: Vec<StepEntry> = entries(publish, &step_times)
            .chain(entries(refreshes, &step_times))
            .chain(entries(capacity, &step_times))
            .chain(entries(reload, &step_times))
            .collect();
        all.sort_by(|a, b| (&a.kind, &a.key).cmp(&(&b.kind, &b.key)));
        all
    }
}

impl From<StoredTransition> for Transition {
    fn from(stored: StoredTransition) -> Self {
        let mut steps = stored.steps;
        for entry in stored.before_step_entries.into_entries() {
            if !steps
                .iter()
                .any(|e| e.kind == entry.kind && e.key == entry.key)
            {
                steps.push(entry);
            }
        }
        steps.sort_by(|a, b| (&a.kind, &a.key).cmp(&(&b.kind, &b.key)));
        Transition {
            epoch: stored.epoch,
            from: stored.from,
            to: stored.to,
            reason: stored.reason,
            trigger: stored.trigger,
            started_at: stored.started_at,
            lease_until: stored.lease_until,
            steps,
            completed: stored.completed,
            last_replicated_from_old: stored.last_replicated_from_old,
            previous_refresh_ids: stored.previous_refresh_ids,
            forced: stored.forced,
            probes: stored.probes,
            failback: stored.failback,
            takeovers: stored.takeovers,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::region;

    /// A transition of the 2026-12 format with refreshes and a reload side by side: a
    /// reload that fell back to a refresh was listed under `refreshes` too.
    fn legacy_transition() -> serde_json::Value {
        serde_json::json!({
            "epoch": 3, "from": "us-east-1", "to": "us-west-2", "reason": "r",
            "trigger": {"kind": "manual", "command": "failover", "force": false},
            "started_at": 1000, "lease_until": 2000, "completed": true,
            "publish": {"us-east-1": {"status": "failed", "error": "timed out"},
                        "us-west-2": {"status": "published"}},
            "refreshes": {"us-west-2/web": {"status": "started", "id": "fallback-1"},
                          "us-west-2/api": {"status": "started", "id": "refresh-2"}},
            "reload": {"us-west-2/web": {"status": "fell_back", "targeted": 2, "succeeded": 1,
                       "failed": 1, "timed_out": 0, "pending": 0,
                       "fallback_refresh": {"status": "started", "id": "fallback-1"}}},
            "capacity": {},
            "step_times": {"publish us-east-1": {"started_at": 1001, "ended_at": 1900, "attempts": 2},
                           "publish us-west-2": {"started_at": 1001, "ended_at": 1010, "attempts": 1},
                           "reload us-west-2/web": {"started_at": 1010, "ended_at": 1500, "attempts": 1}}
        })
    }

    #[test]
    fn a_transition_of_the_per_kind_format_reads_as_step_entries() {
        let t: Transition = serde_json::from_value(legacy_transition()).unwrap();
        let listed: Vec<String> = t
            .steps
            .iter()
            .map(|e| format!("{} {}", e.kind, e.key))
            .collect();
        assert_eq!(
            listed,
            [
                "publish us-east-1",
                "publish us-west-2",
                "refresh us-west-2/api",
                "reload us-west-2/web"
            ],
            "the fallback refresh is the reload's own, not a refresh entry"
        );
        let home = t.step("publish", "us-east-1").unwrap();
        assert_eq!((home.started_at, home.ended_at, home.runs), (1001, 1900, 2));
        assert_eq!(
            home.error.as_ref().map(|e| e.message.as_str()),
            Some("timed out")
        );
        assert!(t.published_in(&region("us-west-2")));
        assert_eq!(t.failed_regions(), vec![region("us-east-1")]);
        // No time was kept for the refresh: unknown, not invented.
        assert_eq!(t.step("refresh", "us-west-2/api").unwrap().runs, 0);
        let mut ids = t.refresh_ids();
        ids.sort();
        assert_eq!(ids, ["fallback-1", "refresh-2"]);
        assert_eq!(t.revision(), 2 + 1 + 1 + 1, "runs, and completion");

        // Written again it is entries only, and reads back the same.
        let written = serde_json::to_value(&t).unwrap();
        assert!(written.get("steps").is_some());
        for gone in ["publish", "refreshes", "reload", "capacity", "step_times"] {
            assert!(written.get(gone).is_none(), "{gone} written again");
        }
        let again: Transition = serde_json::from_value(written).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn a_run_recorded_twice_counts_once_and_a_later_run_moves_the_end_on() {
        let mut t: Transition = serde_json::from_value(legacy_transition()).unwrap();
        let run = StepEntry::of("us-east-1".into(), &StepStatus::Published, 2000, 2100);
        t.record(run.clone());
        t.record(run);
        let home = t.step("publish", "us-east-1").unwrap();
        assert_eq!((home.started_at, home.ended_at, home.runs), (1001, 2100, 3));
        assert!(
            home.error.is_none(),
            "the newer outcome replaces the failure"
        );
        t.record(StepEntry::of(
            "us-west-2/web".into(),
            &CapacityStatus::failed("no such group", ErrorKind::NotFound),
            2200,
            2300,
        ));
        let capacity = t.step("capacity", "us-west-2/web").unwrap();
        assert_eq!(
            capacity.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            t.steps.first().map(|e| e.kind.as_str()),
            Some("capacity"),
            "kept sorted"
        );
    }
}
