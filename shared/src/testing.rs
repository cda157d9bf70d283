//! In-memory fakes of the ports, for unit tests of the decision and transition logic.
//! Compiled only for tests (and for other crates' tests through the `testing` feature).

#![allow(clippy::expect_used)] // test support: a broken fixture should fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::{Config, GroupRef, HookRef, RefreshPreferences, ServiceRef};
use crate::error::{AwsError, ErrorKind, Result};
use crate::evidence::samples::ProbeSamples;
use crate::ports::{
    Clock, ControlStore, DeploymentInfo, EcsServices, EventBus, GroupInfo, HealthProbe, HookAnswer,
    Hooks, InvocationInfo, Notice, ParameterStore, Ports, ProbeResult, RefreshInfo,
    RoutingControls, RunCommands, RunLease, ScalingGroups, SentCommand, ServiceInfo,
};
use crate::region::Region;
use crate::state::{
    ControlState, HistoryRecord, Millis, Transition, TriggerInfo, Versioned, WriteToken,
};

pub fn region(name: &str) -> Region {
    Region::parse(name).expect("test region")
}

/// Three regions (home us-east-1), one group per region, default timeouts.
pub fn config() -> Config {
    config_with(&[])
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fault(
    service: &'static str,
    operation: &'static str,
    region: &Region,
    kind: ErrorKind,
) -> AwsError {
    AwsError {
        resource: None,
        service,
        operation,
        region: region.clone(),
        kind,
        code: None,
        message: "injected fault".into(),
    }
}

/// A process crash at a chosen write: the chosen call and every call after it never
/// return, as if the process had died there. `lands` says whether the chosen write reached
/// AWS before the process died (the request went out, the answer never came back).
///
/// Or a lost answer at a chosen write, as AWS really gives one: the write is applied and
/// its answer is a 500 or a timeout ([`LostAnswer::Error`]), or the SDK retried it and the
/// caller sees the retry's answer ([`LostAnswer::Retried`]: a conditional write then fails
/// its own condition, a `SendCommand` is sent twice). The process lives on.
#[derive(Default)]
pub struct CrashPoint {
    state: Mutex<CrashState>,
    died: tokio::sync::Notify,
}

#[derive(Default)]
struct CrashState {
    /// Writes still allowed before the chosen one, and what happens to it.
    armed: Option<(u64, Armed)>,
    dead: bool,
    writes: u64,
    /// Answers lost so far.
    lost_answers: u64,
    /// The calls of the writes so far (`service:Operation`), in order.
    calls: Vec<String>,
    /// The region of each of `calls`.
    regions: Vec<Region>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Armed {
    Crash { lands: bool },
    Lose { answer: LostAnswer, count: u64 },
}

/// How the answer of a write that was applied is lost.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LostAnswer {
    /// Applied, then answered with a server error (retries exhausted, or held past the
    /// call timeout).
    Error,
    /// Applied, its answer lost, and applied again by the SDK's retry, whose answer the
    /// caller sees.
    Retried,
}

/// What a fake does with one write.
#[derive(PartialEq, Eq)]
pub enum Fate {
    Proceed,
    /// The process died before the request left.
    Vanish,
    /// The request took effect, then the process died.
    LandThenVanish,
    /// The request took effect; its answer was lost.
    LandThenLose(LostAnswer),
}

/// A call the crash point can fail: the service, operation and region an error names.
pub type Call<'a> = (&'static str, &'static str, &'a Region);

impl CrashPoint {
    /// Crash at the write after `writes_before` more writes.
    pub fn arm(&self, writes_before: u64, lands: bool) {
        let mut state = lock(&self.state);
        state.armed = Some((writes_before, Armed::Crash { lands }));
        state.dead = false;
    }

    /// Lose the answers of `count` writes in a row, from the write after `writes_before`
    /// more writes; each is applied all the same.
    pub fn lose_answers(&self, writes_before: u64, answer: LostAnswer, count: u64) {
        let mut state = lock(&self.state);
        state.armed = Some((writes_before, Armed::Lose { answer, count }));
        state.dead = false;
    }

    /// A new process: nothing armed, alive.
    pub fn disarm(&self) {
        let mut state = lock(&self.state);
        state.armed = None;
        state.dead = false;
    }

    /// Writes that took effect so far.
    pub fn writes(&self) -> u64 {
        lock(&self.state).writes
    }

    /// Answers lost so far.
    pub fn lost_answers(&self) -> u64 {
        lock(&self.state).lost_answers
    }

    /// The call of write number `n` (from 1), `service:Operation`.
    pub fn call_of(&self, n: u64) -> String {
        let state = lock(&self.state);
        usize::try_from(n)
            .ok()
            .and_then(|n| state.calls.get(n.checked_sub(1)?).cloned())
            .unwrap_or_default()
    }

    /// Every write that took effect so far, in order: `service:Operation@region`.
    pub fn history(&self) -> Vec<String> {
        let state = lock(&self.state);
        state
            .calls
            .iter()
            .zip(&state.regions)
            .map(|(call, region)| format!("{call}@{region}"))
            .collect()
    }

    pub fn reset_lost_answers(&self) {
        lock(&self.state).lost_answers = 0;
    }

    /// Resolves once the process has died.
    pub async fn dead(&self) {
        self.died.notified().await;
    }

    pub fn fate(&self, call: Call<'_>) -> Fate {
        let mut state = lock(&self.state);
        if state.dead {
            return Fate::Vanish;
        }
        let fate = match &mut state.armed {
            Some((0, Armed::Crash { lands })) => {
                let lands = *lands;
                state.dead = true;
                self.died.notify_one();
                if lands {
                    Fate::LandThenVanish
                } else {
                    Fate::Vanish
                }
            }
            Some((0, Armed::Lose { answer, count })) => {
                let answer = *answer;
                *count = count.saturating_sub(1);
                if *count == 0 {
                    state.armed = None;
                }
                state.lost_answers += 1;
                Fate::LandThenLose(answer)
            }
            Some((left, _)) => {
                *left -= 1;
                Fate::Proceed
            }
            None => Fate::Proceed,
        };
        if fate != Fate::Vanish {
            state.writes += 1;
            state.calls.push(format!("{}:{}", call.0, call.1));
            state.regions.push(call.2.clone());
        }
        fate
    }

    /// One write under the crash point: `apply` is what the write does to the fake's
    /// state; it runs unless the process dies before the request leaves, and its result
    /// is returned unless the process dies before the answer comes back or the answer is
    /// lost (then `call` names the error, or the retry applies it again).
    pub async fn write<T>(
        &self,
        call: Call<'_>,
        mut apply: impl FnMut() -> T,
    ) -> Result<T, AwsError> {
        let fate = self.fate(call);
        if fate == Fate::Vanish {
            return vanish().await;
        }
        let result = apply();
        match fate {
            Fate::LandThenVanish => vanish().await,
            Fate::LandThenLose(LostAnswer::Error) => {
                let (service, operation, region) = call;
                Err(AwsError {
                    code: Some("InternalServerError".into()),
                    message: "injected: applied, then answered 500".into(),
                    ..fault(service, operation, region, ErrorKind::ServerError)
                })
            }
            Fate::LandThenLose(LostAnswer::Retried) => Ok(apply()),
            Fate::Proceed | Fate::Vanish => Ok(result),
        }
    }
}

/// The error a region that does not answer gives, when `region` is in `down`.
fn answering(
    down: &Mutex<BTreeSet<Region>>,
    service: &'static str,
    operation: &'static str,
    region: &Region,
) -> Result<(), AwsError> {
    if lock(down).contains(region) {
        Err(fault(service, operation, region, ErrorKind::Timeout))
    } else {
        Ok(())
    }
}

/// Never returns: the process is gone.
async fn vanish<T>() -> T {
    std::future::pending().await
}

#[derive(Default)]
pub struct FakeControl {
    pub item: Mutex<Option<Versioned<ControlState>>>,
    pub history: Mutex<Vec<HistoryRecord>>,
    /// Held notices by (time, id), as the table's sort key orders them.
    pub outbox: Mutex<BTreeMap<(Millis, String), Notice>>,
    pub saves: AtomicU64,
    pub crash: Arc<CrashPoint>,
    /// Point-in-time recovery is off (on by default, as the template deploys the table).
    pub pitr_off: std::sync::atomic::AtomicBool,
    /// The probe's samples per vantage region.
    pub samples: Mutex<BTreeMap<Region, ProbeSamples>>,
    /// The verifier's run lease: (owner, until).
    pub lease: Mutex<Option<(String, Millis)>>,
    /// Strongly consistent reads fail with a 500, as in a replica cut off from the
    /// others; eventually consistent ones still answer.
    pub isolated: std::sync::atomic::AtomicBool,
}

impl FakeControl {
    pub fn state(&self) -> Option<ControlState> {
        lock(&self.item).as_ref().map(|v| v.value.clone())
    }

    /// The history's epochs, in order.
    pub fn epochs(&self) -> Vec<u64> {
        let mut epochs: Vec<u64> = lock(&self.history).iter().map(|h| h.epoch).collect();
        epochs.sort_unstable();
        epochs
    }
}

impl FakeControl {
    fn apply_save(&self, expected: u64, state: &ControlState, writes: &[WriteToken]) -> bool {
        let mut item = lock(&self.item);
        let version = item.as_ref().map_or(0, |v| v.version);
        if version != expected {
            return false;
        }
        *item = Some(Versioned {
            version: expected + 1,
            value: state.clone(),
            writes: writes.to_vec(),
        });
        self.saves.fetch_add(1, Ordering::SeqCst);
        true
    }

    fn apply_history(&self, record: &HistoryRecord) {
        let mut all = lock(&self.history);
        match all.iter_mut().find(|h| h.epoch == record.epoch) {
            Some(h) if h.revision < record.revision => *h = record.clone(),
            Some(_) => {}
            None => all.push(record.clone()),
        }
    }
}

/// A control-table call, for the errors of lost answers.
fn table(operation: &'static str) -> Call<'static> {
    static CONTROL_REGION: std::sync::OnceLock<Region> = std::sync::OnceLock::new();
    (
        "dynamodb",
        operation,
        CONTROL_REGION.get_or_init(|| region("us-west-2")),
    )
}

impl ControlStore for Arc<FakeControl> {
    async fn load(&self) -> Result<Option<Versioned<ControlState>>> {
        if self.isolated.load(Ordering::SeqCst) {
            let (service, operation, region) = table("GetItem");
            return Err(AwsError {
                code: Some("InternalServerError".into()),
                message: "the replica is cut off from the others".into(),
                ..fault(service, operation, region, ErrorKind::ServerError)
            }
            .into());
        }
        self.load_eventually().await
    }

    async fn load_eventually(&self) -> Result<Option<Versioned<ControlState>>> {
        let read = lock(&self.item).clone();
        // Let other tasks run between our read and our write, as the network would.
        tokio::task::yield_now().await;
        Ok(read)
    }

    async fn save(
        &self,
        expected: u64,
        state: &ControlState,
        writes: &[WriteToken],
    ) -> Result<bool> {
        Ok(self
            .crash
            .write(table("PutItem"), || {
                self.apply_save(expected, state, writes)
            })
            .await?)
    }

    async fn history(&self, limit: usize) -> Result<Vec<HistoryRecord>> {
        Ok(lock(&self.history)
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn point_in_time_recovery(&self) -> Result<bool, AwsError> {
        Ok(!self.pitr_off.load(Ordering::SeqCst))
    }

    async fn put_history(&self, record: &HistoryRecord) -> Result<()> {
        Ok(self
            .crash
            .write(table("PutItem"), || self.apply_history(record))
            .await?)
    }

    async fn history_of(&self, epoch: u64) -> Result<Option<HistoryRecord>> {
        Ok(lock(&self.history)
            .iter()
            .find(|h| h.epoch == epoch)
            .cloned())
    }

    async fn hold(&self, notice: &Notice) -> Result<()> {
        lock(&self.outbox).insert((notice.at, notice.id.clone()), notice.clone());
        Ok(())
    }

    async fn held(&self, limit: usize) -> Result<Vec<Notice>> {
        Ok(lock(&self.outbox).values().take(limit).cloned().collect())
    }

    async fn release(&self, notice: &Notice) -> Result<()> {
        lock(&self.outbox).remove(&(notice.at, notice.id.clone()));
        Ok(())
    }

    async fn samples(&self, vantage: &Region) -> Result<Option<ProbeSamples>> {
        Ok(lock(&self.samples).get(vantage).cloned())
    }

    async fn vantage_samples(&self) -> Result<Vec<ProbeSamples>> {
        Ok(lock(&self.samples).values().cloned().collect())
    }

    async fn put_samples(&self, samples: &ProbeSamples) -> Result<()> {
        self.crash
            .write(table("PutItem"), || {
                lock(&self.samples).insert(samples.vantage.clone(), samples.clone())
            })
            .await?;
        Ok(())
    }

    async fn claim_run(&self, lease: &RunLease) -> Result<bool> {
        Ok(self
            .crash
            .write(table("PutItem"), || {
                let mut held = lock(&self.lease);
                let free = held
                    .as_ref()
                    .is_none_or(|(owner, until)| *until < lease.now || *owner == lease.owner);
                if free {
                    *held = Some((lease.owner.clone(), lease.until));
                }
                free
            })
            .await?)
    }

    async fn end_run(&self, lease: &RunLease) -> Result<()> {
        self.crash
            .write(table("DeleteItem"), || {
                let mut held = lock(&self.lease);
                if held
                    .as_ref()
                    .is_some_and(|(owner, _)| *owner == lease.owner)
                {
                    *held = None;
                }
            })
            .await?;
        Ok(())
    }
}

/// The event bus: what was put on it, and a switch to make it fail.
#[derive(Default)]
pub struct FakeBus {
    pub put: Mutex<Vec<Notice>>,
    pub failing: std::sync::atomic::AtomicBool,
    /// Ids that make the whole PutEvents call fail with a ValidationException, as an
    /// entry over the size limit does.
    pub poison: Mutex<BTreeSet<String>>,
    /// Each PutEvents takes this long before it answers.
    pub stall: Mutex<Option<std::time::Duration>>,
    /// PutEvents calls made.
    pub calls: AtomicU64,
}

impl FakeBus {
    /// The detail-types put so far, in order.
    pub fn detail_types(&self) -> Vec<String> {
        lock(&self.put)
            .iter()
            .map(|n| n.detail_type.clone())
            .collect()
    }
}

impl EventBus for Arc<FakeBus> {
    async fn put(&self, notices: &[Notice]) -> Result<Vec<String>, AwsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let stall = *lock(&self.stall);
        if let Some(stall) = stall {
            tokio::time::sleep(stall).await;
        }
        if notices.iter().any(|n| lock(&self.poison).contains(&n.id)) {
            return Err(AwsError {
                code: Some("ValidationException".into()),
                message: "Total size of the entries in the request is over the limit.".into(),
                ..fault(
                    "events",
                    "PutEvents",
                    &region("us-west-2"),
                    ErrorKind::Other,
                )
            });
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(fault(
                "events",
                "PutEvents",
                &region("us-west-2"),
                ErrorKind::Other,
            ));
        }
        lock(&self.put).extend_from_slice(notices);
        Ok(Vec::new())
    }
}

#[derive(Default)]
pub struct FakeParameters {
    pub values: Mutex<BTreeMap<Region, String>>,
    pub down: Mutex<BTreeSet<Region>>,
    pub puts: AtomicU64,
    pub crash: Arc<CrashPoint>,
}

impl ParameterStore for Arc<FakeParameters> {
    async fn put(
        &self,
        region: &Region,
        _name: &str,
        value: &str,
        _description: &str,
    ) -> Result<(), AwsError> {
        answering(&self.down, "ssm", "PutParameter", region)?;
        self.crash
            .write(("ssm", "PutParameter", region), || {
                self.puts.fetch_add(1, Ordering::SeqCst);
                lock(&self.values).insert(region.clone(), value.to_owned());
            })
            .await
    }

    async fn get(&self, region: &Region, _name: &str) -> Result<Option<String>, AwsError> {
        answering(&self.down, "ssm", "GetParameter", region)?;
        Ok(lock(&self.values).get(region).cloned())
    }
}

#[derive(Default)]
pub struct FakeGroups {
    /// Per group key, newest first.
    pub refreshes: Mutex<BTreeMap<String, Vec<RefreshInfo>>>,
    pub preferences: Mutex<Vec<RefreshPreferences>>,
    pub starts: AtomicU64,
    pub cancels: AtomicU64,
    /// Per group key: sizes. A group not listed has min 1, desired 2, max 4.
    pub sizes: Mutex<BTreeMap<String, GroupInfo>>,
    /// Groups that do not exist.
    pub missing: Mutex<BTreeSet<String>>,
    /// Every SetDesiredCapacity that took effect: (group key, desired).
    pub set_desired_calls: Mutex<Vec<(String, i32)>>,
    pub down: Mutex<BTreeSet<Region>>,
    pub clock: Arc<FakeClock>,
    pub crash: Arc<CrashPoint>,
    /// Runs once, just before the next SetDesiredCapacity takes effect: what else happens
    /// in the world at that instant (a switch landing, say).
    #[allow(clippy::type_complexity)]
    pub before_set_desired: Mutex<Option<Box<dyn FnOnce(&GroupRef, i32) + Send>>>,
}

/// The sizes a fake group has until a test says otherwise.
pub const DEFAULT_SIZES: GroupInfo = GroupInfo {
    min: 1,
    desired: 2,
    max: 4,
    instances: 2,
    in_service: 2,
    members: Vec::new(),
};

impl FakeGroups {
    /// Gives the group `key` these sizes (instances follow desired).
    pub fn set_sizes(&self, key: &str, min: i32, desired: i32, max: i32) {
        lock(&self.sizes).insert(
            key.to_owned(),
            GroupInfo {
                min,
                desired,
                max,
                instances: desired.max(0) as u32,
                in_service: desired.max(0) as u32,
                members: Vec::new(),
            },
        );
    }

    /// Gives the group `key` these instances (id, in service); the counts follow.
    pub fn set_members(&self, key: &str, members: &[(&str, bool)]) {
        let mut sizes = self.sizes_of(key);
        sizes.members = members
            .iter()
            .map(|(id, in_service)| crate::ports::Member {
                id: (*id).to_owned(),
                in_service: *in_service,
            })
            .collect();
        sizes.instances = members.len() as u32;
        sizes.in_service = members.iter().filter(|(_, s)| *s).count() as u32;
        lock(&self.sizes).insert(key.to_owned(), sizes);
    }

    pub fn sizes_of(&self, key: &str) -> GroupInfo {
        lock(&self.sizes).get(key).cloned().unwrap_or(DEFAULT_SIZES)
    }
}

impl ScalingGroups for Arc<FakeGroups> {
    async fn refreshes(&self, group: &GroupRef) -> Result<Vec<RefreshInfo>, AwsError> {
        Ok(lock(&self.refreshes)
            .get(&group.key())
            .cloned()
            .unwrap_or_default())
    }

    async fn start_refresh(
        &self,
        group: &GroupRef,
        preferences: &RefreshPreferences,
    ) -> Result<String, AwsError> {
        self.crash
            .write(
                ("autoscaling", "StartInstanceRefresh", &group.region),
                || self.apply_start(group, preferences),
            )
            .await?
    }

    async fn cancel_refresh(&self, group: &GroupRef) -> Result<(), AwsError> {
        self.crash
            .write(
                ("autoscaling", "CancelInstanceRefresh", &group.region),
                || self.apply_cancel(group),
            )
            .await?
    }

    async fn describe(&self, group: &GroupRef) -> Result<Option<GroupInfo>, AwsError> {
        answering(
            &self.down,
            "autoscaling",
            "DescribeAutoScalingGroups",
            &group.region,
        )?;
        if lock(&self.missing).contains(&group.key()) {
            return Ok(None);
        }
        Ok(Some(self.sizes_of(&group.key())))
    }

    async fn set_desired(&self, group: &GroupRef, desired: i32) -> Result<(), AwsError> {
        answering(
            &self.down,
            "autoscaling",
            "SetDesiredCapacity",
            &group.region,
        )?;
        let hook = lock(&self.before_set_desired).take();
        if let Some(hook) = hook {
            hook(group, desired);
        }
        self.crash
            .write(("autoscaling", "SetDesiredCapacity", &group.region), || {
                self.apply_set_desired(group, desired)
            })
            .await?
    }
}

/// SSM Run Command in memory. Every instance of a group reloads at once unless the group
/// has failures or hangs queued for its next command.
#[derive(Default)]
pub struct FakeCommands {
    /// Sent commands: id -> (group key, per-instance statuses).
    pub commands: Mutex<BTreeMap<String, (String, Vec<InvocationInfo>)>>,
    /// Per group key: (instances that fail, instances that never answer) for the next command.
    pub faults: Mutex<BTreeMap<String, (u32, u32)>>,
    pub sends: AtomicU64,
    /// Answer SendCommand with TargetCount 0, as SSM does when it resolves tag targets
    /// after answering.
    pub zero_target_count: std::sync::atomic::AtomicBool,
    /// Per group key: the error code SSM refuses its commands with (nothing is sent).
    pub refused: Mutex<BTreeMap<String, (ErrorKind, &'static str)>>,
    /// Instances SSM does not know yet: naming one by id is refused (InvalidInstanceId).
    pub unregistered: Mutex<BTreeSet<String>>,
    /// The instance ids of every command sent by id, in order.
    pub sent_by_id: Mutex<Vec<Vec<String>>>,
    pub groups: Arc<FakeGroups>,
    pub crash: Arc<CrashPoint>,
}

impl FakeCommands {
    /// The next command to the group `key` fails on `fail` instances and never finishes
    /// on `hang` more.
    pub fn fail_next(&self, key: &str, fail: u32, hang: u32) {
        lock(&self.faults).insert(key.to_owned(), (fail, hang));
    }

    /// Commands sent to the group `key`, oldest first.
    pub fn sent_to(&self, key: &str) -> usize {
        lock(&self.commands)
            .values()
            .filter(|(g, _)| g == key)
            .count()
    }

    /// Records a command to the group's in-service instances (or to `ids`); returns its
    /// id and how many instances it reached.
    fn apply_send(&self, group: &GroupRef, ids: Option<&[String]>) -> (String, u32) {
        let key = group.key();
        let targets: Vec<String> = match ids {
            Some(ids) => {
                lock(&self.sent_by_id).push(ids.to_vec());
                ids.to_vec()
            }
            None => (0..self.groups.sizes_of(&key).in_service)
                .map(|i| format!("i-{i:04}"))
                .collect(),
        };
        let instances = targets.len() as u32;
        let (fail, hang) = lock(&self.faults).remove(&key).unwrap_or((0, 0));
        let invocations = targets
            .into_iter()
            .enumerate()
            .map(|(i, instance_id)| (i as u32, instance_id))
            .map(|(i, instance_id)| InvocationInfo {
                instance_id,
                status: if i < fail {
                    "Failed"
                } else if i < fail + hang {
                    "InProgress"
                } else {
                    "Success"
                }
                .to_owned(),
            })
            .collect();
        let id = format!("command-{}", self.sends.fetch_add(1, Ordering::SeqCst));
        lock(&self.commands).insert(id.clone(), (key, invocations));
        (id, instances)
    }
}

impl RunCommands for Arc<FakeCommands> {
    async fn send(
        &self,
        group: &GroupRef,
        instances: Option<&[String]>,
        _commands: &[String],
        _timeout: std::time::Duration,
        _comment: &str,
    ) -> Result<SentCommand, AwsError> {
        answering(&self.groups.down, "ssm", "SendCommand", &group.region)?;
        let unknown: Vec<String> = instances
            .unwrap_or_default()
            .iter()
            .filter(|id| lock(&self.unregistered).contains(*id))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(AwsError {
                code: Some("InvalidInstanceId".into()),
                message: format!("Instances {unknown:?} not in a valid state for account"),
                ..fault("ssm", "SendCommand", &group.region, ErrorKind::Other)
            });
        }
        if let Some((kind, code)) = lock(&self.refused).get(&group.key()).copied() {
            return Err(AwsError {
                code: Some(code.into()),
                message: format!("SendCommand refused: {code}"),
                ..fault("ssm", "SendCommand", &group.region, kind)
            });
        }
        let (id, instances) = self
            .crash
            .write(("ssm", "SendCommand", &group.region), || {
                self.apply_send(group, instances)
            })
            .await?;
        let reported = if self.zero_target_count.load(Ordering::SeqCst) {
            0
        } else {
            instances
        };
        Ok(SentCommand {
            command_id: id,
            target_count: reported,
        })
    }

    async fn invocations(
        &self,
        region: &Region,
        command_id: &str,
    ) -> Result<Vec<InvocationInfo>, AwsError> {
        answering(&self.groups.down, "ssm", "ListCommandInvocations", region)?;
        Ok(lock(&self.commands)
            .get(command_id)
            .map(|(_, list)| list.clone())
            .unwrap_or_default())
    }
}

impl FakeGroups {
    fn apply_set_desired(&self, group: &GroupRef, desired: i32) -> Result<(), AwsError> {
        let key = group.key();
        let sizes = self.sizes_of(&key);
        // As AWS: outside min..=max is a ValidationError.
        if desired > sizes.max || desired < sizes.min {
            Err(AwsError {
                code: Some("ValidationError".into()),
                message: format!("New SetDesiredCapacity value {desired} is outside min/max"),
                ..fault(
                    "autoscaling",
                    "SetDesiredCapacity",
                    &group.region,
                    ErrorKind::Other,
                )
            })
        } else {
            self.set_sizes(&key, sizes.min, desired, sizes.max);
            lock(&self.set_desired_calls).push((key, desired));
            Ok(())
        }
    }

    fn apply_start(
        &self,
        group: &GroupRef,
        preferences: &RefreshPreferences,
    ) -> Result<String, AwsError> {
        let mut all = lock(&self.refreshes);
        let list = all.entry(group.key()).or_default();
        if list.iter().any(RefreshInfo::is_active) {
            return Err(fault(
                "autoscaling",
                "StartInstanceRefresh",
                &group.region,
                ErrorKind::RefreshInProgress,
            ));
        }
        let n = self.starts.fetch_add(1, Ordering::SeqCst);
        let id = format!("refresh-{n}");
        list.insert(
            0,
            RefreshInfo {
                id: id.clone(),
                status: "InProgress".into(),
                started_at: Some(self.clock.now_millis()),
                percentage_complete: Some(0),
            },
        );
        lock(&self.preferences).push(*preferences);
        Ok(id)
    }

    fn apply_cancel(&self, group: &GroupRef) -> Result<(), AwsError> {
        let mut all = lock(&self.refreshes);
        let active = all
            .get_mut(&group.key())
            .and_then(|list| list.iter_mut().find(|r| r.is_active()));
        match active {
            Some(r) => {
                r.status = "Cancelled".into();
                self.cancels.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            None => Err(fault(
                "autoscaling",
                "CancelInstanceRefresh",
                &group.region,
                ErrorKind::NotFound,
            )),
        }
    }
}

#[derive(Default)]
pub struct FakeProbe {
    pub down: Mutex<BTreeSet<Region>>,
    pub checks: AtomicU64,
    /// Heartbeat stamps as each region sees them: (seen in, written by) -> stamp.
    pub heartbeats: Mutex<BTreeMap<(Region, Region), Millis>>,
    /// Replication from the first region to the second is paused.
    pub paused: Mutex<BTreeSet<(Region, Region)>>,
    pub regions: Mutex<Vec<Region>>,
}

impl crate::ports::Heartbeats for Arc<FakeProbe> {
    async fn write(&self, region: &Region, at: Millis) -> Result<(), AwsError> {
        if lock(&self.down).contains(region) {
            return Err(fault("dynamodb", "PutItem", region, ErrorKind::Timeout));
        }
        let targets = lock(&self.regions).clone();
        let paused = lock(&self.paused).clone();
        let mut beats = lock(&self.heartbeats);
        beats.insert((region.clone(), region.clone()), at);
        // Replication is instant unless paused (or the destination is down).
        for other in targets.iter().filter(|r| *r != region) {
            if !paused.contains(&(region.clone(), other.clone()))
                && !lock(&self.down).contains(other)
            {
                beats.insert((other.clone(), region.clone()), at);
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        in_region: &Region,
        of: &Region,
        _consistent: bool,
    ) -> Result<Option<Millis>, AwsError> {
        if lock(&self.down).contains(in_region) {
            return Err(fault("dynamodb", "GetItem", in_region, ErrorKind::Timeout));
        }
        Ok(lock(&self.heartbeats)
            .get(&(in_region.clone(), of.clone()))
            .copied())
    }
}

impl HealthProbe for Arc<FakeProbe> {
    async fn check(&self, region: &Region) -> ProbeResult {
        self.checks.fetch_add(1, Ordering::SeqCst);
        let down = lock(&self.down).contains(region);
        ProbeResult {
            region: region.clone(),
            reachable: !down,
            latency_ms: 1,
            item_found: !down,
            error_kind: down.then_some(ErrorKind::Timeout),
            error: down.then(|| "timeout: injected".to_owned()),
        }
    }
}

#[derive(Default)]
pub struct FakeClock(pub AtomicU64);

impl FakeClock {
    pub fn advance(&self, millis: Millis) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for Arc<FakeClock> {
    fn now_millis(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// A whole fake world: handles to every fake, and ports that share them.
/// Routing control states as one update sets them: (ARN, on).
pub type RoutingStates = Vec<(String, bool)>;

/// An ARC cluster: routing controls (only the seeded ones exist, as in ARC) behind
/// endpoints named by region, any of which can be down.
#[derive(Default)]
pub struct FakeRouting {
    pub states: Mutex<BTreeMap<String, bool>>,
    /// Endpoints that do not answer (a timeout each).
    pub down: Mutex<BTreeSet<Region>>,
    /// Every call, in order: (endpoint, operation).
    pub calls: Mutex<Vec<(Region, &'static str)>>,
    /// Each update that took effect: the endpoint and the states it set.
    pub updates: Mutex<Vec<(Region, RoutingStates)>>,
    pub crash: Arc<CrashPoint>,
}

impl FakeRouting {
    /// Creates these routing controls, all in `state`.
    pub fn seed(&self, arns: &[&str], state: bool) {
        let mut states = lock(&self.states);
        for arn in arns {
            states.insert((*arn).to_owned(), state);
        }
    }

    pub fn state(&self, arn: &str) -> Option<bool> {
        lock(&self.states).get(arn).copied()
    }

    fn unknown(
        &self,
        arns: impl IntoIterator<Item = String>,
        endpoint: &Region,
    ) -> Result<(), AwsError> {
        let states = lock(&self.states);
        match arns.into_iter().find(|arn| !states.contains_key(arn)) {
            Some(arn) => Err(AwsError {
                resource: Some(arn.into()),
                ..fault(
                    "route53-recovery-cluster",
                    "UpdateRoutingControlState",
                    endpoint,
                    ErrorKind::NotFound,
                )
            }),
            None => Ok(()),
        }
    }
}

impl RoutingControls for Arc<FakeRouting> {
    async fn set(&self, endpoint: &Region, states: &[(String, bool)]) -> Result<(), AwsError> {
        lock(&self.calls).push((endpoint.clone(), "UpdateRoutingControlState"));
        answering(
            &self.down,
            "route53-recovery-cluster",
            "UpdateRoutingControlState",
            endpoint,
        )?;
        self.unknown(states.iter().map(|(arn, _)| arn.clone()), endpoint)?;
        self.crash
            .write(
                (
                    "route53-recovery-cluster",
                    "UpdateRoutingControlState",
                    endpoint,
                ),
                || {
                    let mut stored = lock(&self.states);
                    for (arn, on) in states {
                        stored.insert(arn.clone(), *on);
                    }
                    lock(&self.updates).push((endpoint.clone(), states.to_vec()));
                },
            )
            .await
    }

    async fn get(&self, endpoint: &Region, arn: &str) -> Result<bool, AwsError> {
        lock(&self.calls).push((endpoint.clone(), "GetRoutingControlState"));
        answering(
            &self.down,
            "route53-recovery-cluster",
            "GetRoutingControlState",
            endpoint,
        )?;
        self.unknown([arn.to_owned()], endpoint)?;
        Ok(lock(&self.states).get(arn).copied().unwrap_or(false))
    }
}

/// ECS services in memory. A forced deployment rolls out over `rollout_ms` of the fake
/// clock (0: it has completed by the first read), or fails by the circuit breaker when
/// `fail_next` names the service.
#[derive(Default)]
pub struct FakeServices {
    /// Per service key (`region/cluster/service`).
    pub services: Mutex<BTreeMap<String, ServiceInfo>>,
    /// Application Auto Scaling targets: (MinCapacity, MaxCapacity).
    pub bounds: Mutex<BTreeMap<String, (i32, i32)>>,
    /// Services whose next deployment fails, with ECS's reason.
    pub failing: Mutex<BTreeMap<String, String>>,
    pub rollout_ms: AtomicU64,
    /// Every forced deployment that took effect, by service key, in order.
    pub forced: Mutex<Vec<String>>,
    /// Deployments that will fail, by id, with the reason.
    doomed: Mutex<BTreeMap<String, String>>,
    pub down: Mutex<BTreeSet<Region>>,
    pub clock: Arc<FakeClock>,
    pub crash: Arc<CrashPoint>,
    deployments: AtomicU64,
}

impl FakeServices {
    /// A service running `desired` tasks, its deployment completed.
    pub fn add(&self, key: &str, desired: i32) {
        let deployment = DeploymentInfo {
            id: format!("ecs-svc/initial-{key}"),
            status: "PRIMARY".into(),
            rollout_state: Some("COMPLETED".into()),
            reason: None,
            created_at: Some(0),
            desired,
            running: desired,
            pending: 0,
            failed_tasks: 0,
        };
        lock(&self.services).insert(
            key.to_owned(),
            ServiceInfo {
                desired,
                running: desired,
                pending: 0,
                deployments: vec![deployment],
            },
        );
    }

    pub fn remove(&self, key: &str) {
        lock(&self.services).remove(key);
    }

    pub fn set_bounds(&self, key: &str, min: i32, max: i32) {
        lock(&self.bounds).insert(key.to_owned(), (min, max));
    }

    /// The service's next deployment fails with `reason`.
    pub fn fail_next(&self, key: &str, reason: &str) {
        lock(&self.failing).insert(key.to_owned(), reason.to_owned());
    }

    pub fn info(&self, key: &str) -> Option<ServiceInfo> {
        lock(&self.services).get(key).cloned()
    }

    pub fn desired_of(&self, key: &str) -> i32 {
        self.info(key).map_or(0, |s| s.desired)
    }

    fn missing(service: &ServiceRef, operation: &'static str) -> AwsError {
        AwsError {
            code: Some("ServiceNotFoundException".into()),
            resource: Some(service.resource().into()),
            ..fault("ecs", operation, &service.region, ErrorKind::NotFound)
        }
    }
}

impl EcsServices for Arc<FakeServices> {
    async fn describe(&self, service: &ServiceRef) -> Result<Option<ServiceInfo>, AwsError> {
        answering(&self.down, "ecs", "DescribeServices", &service.region)?;
        let now = self.clock.now_millis();
        let rollout = self.rollout_ms.load(Ordering::SeqCst);
        let mut services = lock(&self.services);
        let Some(info) = services.get_mut(&service.key()) else {
            return Ok(None);
        };
        let desired = info.desired;
        let doomed = lock(&self.doomed);
        for d in &mut info.deployments {
            let due = d.created_at.is_some_and(|at| at + rollout <= now);
            if d.rollout_state.as_deref() == Some("IN_PROGRESS") && due {
                if let Some(reason) = doomed.get(&d.id) {
                    d.rollout_state = Some("FAILED".into());
                    d.reason = Some(reason.clone());
                    d.failed_tasks = 3;
                } else {
                    d.rollout_state = Some("COMPLETED".into());
                    (d.desired, d.running, d.pending) = (desired, desired, 0);
                }
            }
        }
        Ok(Some(info.clone()))
    }

    async fn scaling_bounds(&self, service: &ServiceRef) -> Result<Option<(i32, i32)>, AwsError> {
        answering(
            &self.down,
            "application-autoscaling",
            "DescribeScalableTargets",
            &service.region,
        )?;
        Ok(lock(&self.bounds).get(&service.key()).copied())
    }

    async fn set_desired(&self, service: &ServiceRef, desired: i32) -> Result<(), AwsError> {
        answering(&self.down, "ecs", "UpdateService", &service.region)?;
        self.crash
            .write(("ecs", "UpdateService", &service.region), || {
                let mut services = lock(&self.services);
                let info = services
                    .get_mut(&service.key())
                    .ok_or_else(|| FakeServices::missing(service, "UpdateService"))?;
                info.desired = desired;
                if let Some(primary) = info.deployments.first_mut() {
                    primary.desired = desired;
                }
                Ok(())
            })
            .await?
    }

    async fn force_deployment(&self, service: &ServiceRef) -> Result<DeploymentInfo, AwsError> {
        answering(&self.down, "ecs", "UpdateService", &service.region)?;
        self.crash
            .write(("ecs", "UpdateService", &service.region), || {
                let key = service.key();
                let mut services = lock(&self.services);
                let info = services
                    .get_mut(&key)
                    .ok_or_else(|| FakeServices::missing(service, "UpdateService"))?;
                let n = self.deployments.fetch_add(1, Ordering::SeqCst);
                let id = format!("ecs-svc/{n}");
                if let Some(reason) = lock(&self.failing).remove(&key) {
                    lock(&self.doomed).insert(id.clone(), reason);
                }
                let deployment = DeploymentInfo {
                    id,
                    status: "PRIMARY".into(),
                    rollout_state: Some("IN_PROGRESS".into()),
                    reason: None,
                    created_at: Some(self.clock.now_millis()),
                    desired: info.desired,
                    running: 0,
                    pending: info.desired,
                    failed_tasks: 0,
                };
                for d in &mut info.deployments {
                    d.status = "ACTIVE".into();
                }
                info.deployments.insert(0, deployment.clone());
                lock(&self.forced).push(key);
                Ok(deployment)
            })
            .await?
    }
}

/// What a fake hook function does when invoked.
#[derive(Debug, Clone)]
pub enum HookBehaviour {
    /// Answers `answer` after `delay_ms` (tokio time).
    Succeed {
        delay_ms: u64,
        answer: serde_json::Value,
    },
    /// Answers a function error (`X-Amz-Function-Error: Unhandled`).
    FunctionError { error_type: String, message: String },
    /// Never answers.
    Hang,
}

/// Hook functions in memory: scripted per function (each call takes the next behaviour;
/// the last repeats; unscripted functions answer `{"ok":true}` at once), every payload
/// recorded. An invocation is a write under the crash point: it runs the user's code.
#[derive(Default)]
pub struct FakeHooks {
    scripts: Mutex<BTreeMap<String, Vec<HookBehaviour>>>,
    /// Every invocation that reached the function: (function, payload), in order.
    pub calls: Mutex<Vec<(String, serde_json::Value)>>,
    /// Functions that do not exist (GetFunction and Invoke answer ResourceNotFound).
    pub missing: Mutex<BTreeSet<String>>,
    pub down: Mutex<BTreeSet<Region>>,
    pub crash: Arc<CrashPoint>,
}

impl FakeHooks {
    pub fn script(&self, function: &str, behaviours: Vec<HookBehaviour>) {
        lock(&self.scripts).insert(function.to_owned(), behaviours);
    }

    /// The payloads `function` received, in order.
    pub fn payloads(&self, function: &str) -> Vec<serde_json::Value> {
        lock(&self.calls)
            .iter()
            .filter(|(f, _)| f == function)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn next(&self, function: &str) -> HookBehaviour {
        let mut scripts = lock(&self.scripts);
        match scripts.get_mut(function) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) if !list.is_empty() => list[0].clone(),
            _ => HookBehaviour::Succeed {
                delay_ms: 0,
                answer: serde_json::json!({"ok": true}),
            },
        }
    }

    fn not_found(hook: &HookRef, operation: &'static str) -> AwsError {
        AwsError {
            code: Some("ResourceNotFoundException".into()),
            message: format!("Function not found: {}", hook.function),
            ..fault("lambda", operation, &hook.region, ErrorKind::NotFound)
        }
    }
}

impl Hooks for Arc<FakeHooks> {
    async fn invoke(&self, hook: &HookRef, payload: &[u8]) -> Result<HookAnswer, AwsError> {
        answering(&self.down, "lambda", "Invoke", &hook.region)?;
        if lock(&self.missing).contains(&hook.function) {
            return Err(FakeHooks::not_found(hook, "Invoke"));
        }
        let behaviour = self
            .crash
            .write(("lambda", "Invoke", &hook.region), || {
                let value = serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null);
                lock(&self.calls).push((hook.function.clone(), value));
                self.next(&hook.function)
            })
            .await?;
        match behaviour {
            HookBehaviour::Succeed { delay_ms, answer } => {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                Ok(HookAnswer {
                    function_error: None,
                    payload: answer.to_string().into_bytes(),
                })
            }
            HookBehaviour::FunctionError {
                error_type,
                message,
            } => Ok(HookAnswer {
                function_error: Some("Unhandled".into()),
                payload: serde_json::json!({"errorType": error_type, "errorMessage": message})
                    .to_string()
                    .into_bytes(),
            }),
            HookBehaviour::Hang => std::future::pending().await,
        }
    }

    async fn exists(&self, hook: &HookRef) -> Result<bool, AwsError> {
        answering(&self.down, "lambda", "GetFunction", &hook.region)?;
        Ok(!lock(&self.missing).contains(&hook.function))
    }
}

pub struct FakeWorld {
    pub control: Arc<FakeControl>,
    pub parameters: Arc<FakeParameters>,
    pub groups: Arc<FakeGroups>,
    pub probe: Arc<FakeProbe>,
    pub commands: Arc<FakeCommands>,
    pub clock: Arc<FakeClock>,
    pub bus: Arc<FakeBus>,
    pub routing: Arc<FakeRouting>,
    pub services: Arc<FakeServices>,
    pub hooks: Arc<FakeHooks>,
    /// Shared by every fake that writes: see [`CrashPoint`].
    pub crash: Arc<CrashPoint>,
}

pub type FakePorts = Ports<
    Arc<FakeControl>,
    Arc<FakeParameters>,
    Arc<FakeGroups>,
    Arc<FakeProbe>,
    Arc<FakeCommands>,
    Arc<FakeClock>,
    Arc<FakeBus>,
    Arc<FakeRouting>,
    Arc<FakeServices>,
    Arc<FakeHooks>,
>;

impl FakeWorld {
    pub fn new() -> Self {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_700_000_000_000)));
        let crash = Arc::new(CrashPoint::default());
        let groups = Arc::new(FakeGroups {
            clock: clock.clone(),
            crash: crash.clone(),
            ..FakeGroups::default()
        });
        let services = Arc::new(FakeServices {
            clock: clock.clone(),
            crash: crash.clone(),
            ..FakeServices::default()
        });
        FakeWorld {
            commands: Arc::new(FakeCommands {
                groups: groups.clone(),
                crash: crash.clone(),
                ..FakeCommands::default()
            }),
            control: Arc::new(FakeControl {
                crash: crash.clone(),
                ..FakeControl::default()
            }),
            parameters: Arc::new(FakeParameters {
                crash: crash.clone(),
                ..FakeParameters::default()
            }),
            groups,
            probe: Arc::new(FakeProbe {
                regions: Mutex::new(config().regions),
                ..FakeProbe::default()
            }),
            clock,
            bus: Arc::new(FakeBus::default()),
            routing: Arc::new(FakeRouting {
                crash: crash.clone(),
                ..FakeRouting::default()
            }),
            services,
            hooks: Arc::new(FakeHooks {
                crash: crash.clone(),
                ..FakeHooks::default()
            }),
            crash,
        }
    }

    /// The health probe finds these regions down (the canary read fails).
    pub fn set_probe_down(&self, names: &[&str]) {
        lock(&self.probe.down).extend(names.iter().map(|n| region(n)));
    }

    /// A probe in each of `vantages` has just sampled every configured region healthy
    /// (the fake config's three), as the control table would hold them.
    pub fn seed_vantage_points(&self, vantages: &[&str]) {
        let at = self.clock.now_millis();
        let mut samples = lock(&self.control.samples);
        for vantage in vantages {
            let mut point = ProbeSamples::new(region(vantage));
            for judged in ["us-east-1", "us-west-2", "eu-west-1"] {
                point.regions.insert(
                    region(judged),
                    vec![crate::evidence::samples::Sample {
                        at,
                        healthy: true,
                        error_class: None,
                    }],
                );
            }
            samples.insert(region(vantage), point);
        }
    }

    /// `name`'s Parameter Store and Auto Scaling (and so Run Command) stop answering, or
    /// answer again.
    pub fn set_region_down(&self, name: &str, down: bool) {
        for set in [
            &self.parameters.down,
            &self.groups.down,
            &self.services.down,
            &self.hooks.down,
        ] {
            let mut set = lock(set);
            if down {
                set.insert(region(name));
            } else {
                set.remove(&region(name));
            }
        }
    }

    pub fn ports(&self) -> FakePorts {
        Ports {
            control: self.control.clone(),
            parameters: self.parameters.clone(),
            groups: self.groups.clone(),
            probe: self.probe.clone(),
            commands: self.commands.clone(),
            clock: self.clock.clone(),
            bus: self.bus.clone(),
            routing: self.routing.clone(),
            services: self.services.clone(),
            hooks: self.hooks.clone(),
        }
    }
}

impl Default for FakeWorld {
    fn default() -> Self {
        Self::new()
    }
}

/// A completed manual transition `from -> to` that started at `at`, for state-level tests.
pub fn transition(from: &str, to: &str, at: Millis) -> Transition {
    Transition {
        epoch: 1,
        from: region(from),
        to: region(to),
        reason: "test".into(),
        trigger: TriggerInfo::Manual {
            command: "failover".into(),
            force: false,
        },
        started_at: at,
        lease_until: at,
        steps: Vec::new(),
        completed: true,
        last_replicated_from_old: None,
        previous_refresh_ids: Vec::new(),
        forced: false,
        probes: Vec::new(),
        failback: None,
        takeovers: 0,
    }
}

/// `config()` with these variables added or replaced.
/// A whole configuration, as environment variables: `config()` reads these, and tests of
/// the built bootstraps start them with these plus the variable under test.
/// The words the decoders look for, and hostile ones: what fuzzing builds events from (the
/// unit tests' proptest cases and `make fuzz`).
pub const DECODER_WORDS: &[&str] = &[
    "command",
    "status",
    "failover",
    "failback",
    "pause",
    "resume",
    "probe",
    "verify",
    "window",
    "target_region",
    "reason",
    "dry_run",
    "force",
    "source",
    "aws.cloudwatch",
    "aws.events",
    "alarmData",
    "alarmName",
    "state",
    "value",
    "time",
    "reason",
    "timestamp",
    "2026-11-25T10:00:00.000+0000",
    "EventVersion",
    "EventSubscriptionArn",
    "ALARM",
    "OK",
    "INSUFFICIENT_DATA",
    "configuration",
    "metrics",
    "metricStat",
    "metric",
    "dimensions",
    "Region",
    "detail-type",
    "CloudWatch Alarm State Change",
    "Scheduled Event",
    "detail",
    "Records",
    "EventSource",
    "aws:sns",
    "Sns",
    "Message",
    "Trigger",
    "Dimensions",
    "NewStateValue",
    "AlarmName",
    "name",
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "ap-south-1",
    "us-east-1 ",
    "US-EAST-1",
    "x-us-east-1",
    "\u{0}\n\u{1b}[2J",
    "\r\nlevel=ERROR forged",
    "",
    "🙂",
    "'; DROP TABLE",
    "${jndi:ldap://x}",
    "report",
    "epoch",
    "format",
    "markdown",
    "actionsSuppressedBy",
    "WaitPeriod",
    "-1",
    "1e400",
    "18446744073709551616",
];

pub const TEST_ENV: [(&str, &str); 7] = [
    ("REGIONS", "us-east-1,us-west-2,eu-west-1"),
    ("AWS_REGION", "us-west-2"),
    ("ACTIVE_REGION_PARAMETER", "/app/active-region"),
    ("AUTO_SCALING_GROUPS", "app"),
    ("CONTROL_TABLE", "control"),
    ("HEALTH_TABLE", "health"),
    ("HEALTH_KEY", "pk=canary"),
];

pub fn config_with(extra: &[(&str, &str)]) -> Config {
    Config::from_lookup(|name| {
        extra
            .iter()
            .chain(TEST_ENV.iter())
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .expect("test config")
}

/// The direct alarm action for `regionpilot-unhealthy-<on>` in ALARM.
pub fn alarm_on(on: &str) -> crate::decision::event::Trigger {
    crate::decision::event::Trigger::Alarm(crate::decision::event::AlarmSignal {
        alarm_name: format!("regionpilot-unhealthy-{on}"),
        state: crate::decision::event::AlarmState::Alarm,
        region: region(on),
        source: crate::decision::event::AlarmSource::Direct,
        state_reason: None,
        actions_suppressed: None,
    })
}
