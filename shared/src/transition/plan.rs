//! A transition as a plan of steps, and the executor that carries it out.
//!
//! Each step is a small unit that knows its key (a region, a group or a service),
//! whether the transition already records it as done, how to do itself (safe to repeat),
//! and what to record. Each kind of step ([`StepKind`], one file in `steps/`, one line in
//! its registry) plans its own steps into each region's three stages:
//! - **prepare**: publish the active-region parameter, so anything that boots reads it;
//! - **act**: per group or service, raise capacity (target region only) and start the
//!   reload (an instance refresh, a Run Command, a new deployment);
//! - **follow**: per group or service, follow what the act stage started to its end;
//! - **verify**: after every region's other stages (a `verify` hook's smoke test).
//!
//! Regions run concurrently; every other region's act stage waits for the target's, so
//! the target's groups are served first. The verify stages run once every region's
//! follow stage has ended (or its region missed its deadline). `build` makes the plan;
//! the [`Executor`] carries it out and records what each step did as generic
//! [`StepEntry`]s, knowing nothing of what a step does. The dry run describes the same plan, and the decision rules never
//! change for a new kind.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use futures::future::join_all;
use tracing::{info, warn};

use crate::config::Config;
use crate::error::Result;
use crate::ports::{Clock, ControlStore, Deps};
use crate::region::Region;
use crate::state::{
    ControlState, HistoryRecord, Millis, Outcome, StepEntry, StepError, Transition, Versioned,
};
use crate::store::StateStore;
use crate::transition::kind::StepKind;

pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Record> + Send + 'a>>;

/// How long a new transition follows what its act stage started (a Run Command, a
/// deployment) before leaving it to the next verifier run: well inside the functions'
/// 60 s Lambda timeout. Reconcile follows for half of it, and finishing an abandoned
/// transition does not wait at all.
pub const FOLLOW_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// How long a switch waits for one hook's answer (less if `HOOK_TIMEOUT_SECONDS` is
/// less): a hook at each of the three stages plus the follow budget stays inside the
/// failover's 60 s Lambda timeout. A hook still running then is called again by the
/// verifier's reconcile, with the same idempotency key.
pub const SWITCH_HOOK_WAIT: std::time::Duration = std::time::Duration::from_secs(8);

/// One unit of a transition's plan.
pub trait Step<D: Deps>: Send + Sync {
    /// The step's name and what it acts on (a region, or a group's `region/name`): the
    /// dry run lists these, built by the same `build` as the plan a switch runs.
    fn planned(&self) -> (&'static str, String);

    /// What the step acts on, for logs: `publish us-west-2`, `capacity us-west-2/web`.
    fn name(&self) -> String {
        let (kind, key) = self.planned();
        format!("{kind} {key}")
    }

    /// The transition records this step as done: nothing to repeat.
    fn done(&self, transition: &Transition) -> bool;

    /// Does the step (every step is safe to repeat) and says what to record.
    fn run<'a>(&'a self, cx: &'a StepContext<'a, D>) -> StepFuture<'a>;

    /// What to record when the step could not run: its region missed its deadline.
    fn missed(&self, error: String) -> Record;

    /// What the dry run shows of the step beyond its name and key, for `t` (the
    /// transition a switch would make): a hook's payload.
    fn preview(&self, _config: &Config, _t: &Transition) -> Option<serde_json::Value> {
        None
    }
}

/// A step typed by its kind's outcome: implement this, and [`Step`] (what the plan and
/// the executor hold) comes with it.
pub trait Action<D: Deps>: Send + Sync {
    type Outcome: Outcome;

    /// The step's name in the plan and the logs: `publish`, `reload-follow`, ...
    const NAME: &'static str;

    /// What it acts on (a region, a group's `region/name`, a service's
    /// `region/cluster/service`): its record's key.
    fn key(&self) -> String;

    /// Whether the outcome the transition records for its key (`None`: none yet) leaves
    /// nothing to repeat.
    fn finished(&self, recorded: Option<&Self::Outcome>) -> bool;

    /// Does the step (every step is safe to repeat) and says what to record.
    fn act<'a>(&'a self, cx: &'a StepContext<'a, D>) -> OutcomeFuture<'a, Self::Outcome>;

    /// What the dry run shows beyond the name and key (see [`Step::preview`]).
    fn preview(&self, _config: &Config, _t: &Transition) -> Option<serde_json::Value> {
        None
    }
}

pub type OutcomeFuture<'a, O> = Pin<Box<dyn Future<Output = O> + Send + 'a>>;

impl<D: Deps, A: Action<D>> Step<D> for A {
    fn planned(&self) -> (&'static str, String) {
        (A::NAME, self.key())
    }

    fn done(&self, transition: &Transition) -> bool {
        self.finished(transition.outcome::<A::Outcome>(&self.key()).as_ref())
    }

    fn run<'a>(&'a self, cx: &'a StepContext<'a, D>) -> StepFuture<'a> {
        Box::pin(async move { Record::of(self.key(), &self.act(cx).await) })
    }

    fn missed(&self, error: String) -> Record {
        Record::missed::<A::Outcome>(self.key(), error)
    }

    fn preview(&self, config: &Config, t: &Transition) -> Option<serde_json::Value> {
        Action::preview(self, config, t)
    }
}

/// What a step sees while it runs: the configuration, the ports and the clock, the
/// transition, never the controller. The one state write a step needs before it acts (the
/// capacity step's scale-up, recorded first so a crash cannot lose its scale-in) goes
/// through the executor, as every other state change does.
pub struct StepContext<'a, D: Deps> {
    pub config: &'a Config,
    pub ports: &'a D,
    /// Records a scale-up in the control state (`scaled_up`), through the executor.
    pub writes: &'a dyn StateWrites,
    /// The transition as this region's pipeline knows it: as loaded, plus what its
    /// earlier stages recorded.
    pub transition: &'a Transition,
    /// The control state the transition was read from (the capacity snapshot lives there).
    pub state: &'a ControlState,
    /// This invocation has just created the transition: nothing can belong to it yet.
    pub fresh: bool,
    /// When the region an alarm says is down (the transition's `from`) stops getting our
    /// time: a step that reads from it (the capacity step) gives up by then.
    pub failing_deadline: Option<tokio::time::Instant>,
    /// How long a follow step may wait for running work (a Run Command) before leaving
    /// it to the next verifier run. Several carry-outs can share one invocation (an
    /// abandoned transition, reconcile, a failback), so each gets its own share of the
    /// 60 s Lambda timeout.
    pub follow_budget: std::time::Duration,
    /// How long a hook's answer may be waited for in this run (`HOOK_TIMEOUT_SECONDS`
    /// bounds it further); zero: hooks are left to a later run.
    pub hook_wait: std::time::Duration,
}

impl<D: Deps> StepContext<'_, D> {
    pub fn now(&self) -> Millis {
        self.ports.clock().now_millis()
    }
}

/// The state writes a step may ask of the executor.
pub trait StateWrites: Send + Sync {
    /// Records that regionpilot raised `group` (its `region/name`), keeping the first
    /// scale-up's figure and moving the epoch on.
    fn record_scale_up<'a>(
        &'a self,
        group: &'a str,
        scaled: &'a crate::state::ScaledUp,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;
}

impl<D: Deps> StateWrites for Executor<'_, D> {
    fn record_scale_up<'a>(
        &'a self,
        group: &'a str,
        scaled: &'a crate::state::ScaledUp,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            self.store()
                .update(|s| {
                    // The epoch moves on, so a scale-in decided before this switch no
                    // longer matches it.
                    s.scaled_up
                        .entry(group.to_owned())
                        .and_modify(|e| e.epoch = scaled.epoch)
                        .or_insert_with(|| scaled.clone());
                })
                .await
                .map(|_| ())
        })
    }
}

/// A step's outcome, as its kind's [`Outcome`] made it: recorded in the transition as a
/// [`StepEntry`] with the times of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub kind: &'static str,
    pub key: String,
    pub outcome: serde_json::Value,
    pub error: Option<StepError>,
}

impl Record {
    pub fn of<O: Outcome>(key: String, outcome: &O) -> Self {
        let StepEntry {
            outcome: value,
            error,
            ..
        } = StepEntry::of(key.clone(), outcome, 0, 0);
        Record {
            kind: O::KIND,
            key,
            outcome: value,
            error,
        }
    }

    /// What a step on `key` records when its region missed its deadline.
    pub fn missed<O: Outcome>(key: String, error: String) -> Self {
        Record::of(key, &O::missed(error))
    }

    /// The outcome as its kind's type; `None` if it is of another kind.
    pub fn outcome<O: Outcome>(&self) -> Option<O> {
        (self.kind == O::KIND)
            .then(|| serde_json::from_value(self.outcome.clone()).ok())
            .flatten()
    }

    /// The entry one run with this record makes.
    pub fn entry(&self, started_at: Millis, ended_at: Millis) -> StepEntry {
        StepEntry {
            kind: self.kind.to_owned(),
            key: self.key.clone(),
            outcome: self.outcome.clone(),
            error: self.error.clone(),
            started_at,
            ended_at,
            runs: 1,
        }
    }
}

/// One run of a step: its record, and when it ran.
#[derive(Debug, Clone)]
pub struct Ran {
    pub name: String,
    pub record: Record,
    pub started_at: Millis,
    pub ended_at: Millis,
}

impl Ran {
    /// A record made now, outside a step's run (a missed step, reconcile's re-publish).
    pub fn at(name: String, record: Record, at: Millis) -> Self {
        Ran {
            name,
            record,
            started_at: at,
            ended_at: at,
        }
    }

    pub fn entry(&self) -> StepEntry {
        self.record.entry(self.started_at, self.ended_at)
    }

    /// Applies the record and its times to `t`.
    pub fn apply(&self, t: &mut Transition) {
        t.record(self.entry());
    }
}

type Chain<D> = Vec<Box<dyn Step<D>>>;

/// The stages of a region's part of the plan, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before anything acts: the parameter, so anything that boots reads it.
    Prepare,
    /// Capacity and the reload, target region first.
    Act,
    /// Following what the act stage started.
    Follow,
    /// After every region's other stages.
    Verify,
}

/// One region's part of the plan: per stage, chains that run concurrently, each chain's
/// steps in turn. Steps on the same target (a group, a service) in the same stage form
/// one chain, in the order the kinds are registered.
pub struct RegionPlan<D: Deps> {
    pub region: Region,
    pub prepare: Vec<Chain<D>>,
    pub act: Vec<Chain<D>>,
    pub follow: Vec<Chain<D>>,
    pub verify: Vec<Chain<D>>,
    targets: Vec<(Stage, String)>,
}

impl<D: Deps> RegionPlan<D> {
    pub fn new(region: Region) -> Self {
        RegionPlan {
            region,
            prepare: Vec::new(),
            act: Vec::new(),
            follow: Vec::new(),
            verify: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Adds `step` on `target` (a region, group or service key) to `stage`: after the
    /// steps already planned on that target in that stage, beside the others.
    pub fn add(&mut self, stage: Stage, target: &str, step: Box<dyn Step<D>>) {
        let at = self
            .targets
            .iter()
            .filter(|(s, _)| *s == stage)
            .position(|(_, t)| t == target);
        let chains = match stage {
            Stage::Prepare => &mut self.prepare,
            Stage::Act => &mut self.act,
            Stage::Follow => &mut self.follow,
            Stage::Verify => &mut self.verify,
        };
        match at {
            Some(i) => chains[i].push(step),
            None => {
                chains.push(vec![step]);
                self.targets.push((stage, target.to_owned()));
            }
        }
    }

    /// Every step with its stage's name, in order.
    pub fn described(&self) -> impl Iterator<Item = (&'static str, &dyn Step<D>)> {
        [
            ("prepare", &self.prepare),
            ("act", &self.act),
            ("follow", &self.follow),
            ("verify", &self.verify),
        ]
        .into_iter()
        .flat_map(|(stage, chains)| chains.iter().flatten().map(move |s| (stage, s.as_ref())))
    }

    /// The steps a region's deadline can cut: all but the verify stage's, which runs
    /// after every region's pipeline.
    fn pipeline_steps(&self) -> impl Iterator<Item = &dyn Step<D>> {
        self.described()
            .filter(|(stage, _)| *stage != "verify")
            .map(|(_, step)| step)
    }
}

/// The plan of a transition to `to`: every configured region, each kind planning its
/// steps in turn.
pub fn build<D: Deps>(
    config: &Config,
    to: &Region,
    kinds: &[&dyn StepKind<D>],
) -> Vec<RegionPlan<D>> {
    config
        .regions
        .iter()
        .map(|region| {
            let mut plan = RegionPlan::new(region.clone());
            for kind in kinds {
                kind.plan(config, to, &mut plan);
            }
            plan
        })
        .collect()
}

/// How one region's pipeline runs in one invocation.
struct RegionRun<'a> {
    state: &'a ControlState,
    fresh: bool,
    failing_deadline: Option<tokio::time::Instant>,
    follow_budget: std::time::Duration,
    /// Waited for before the act stage: the target region's act stage, for the others.
    wait_before_act: Option<tokio::sync::watch::Receiver<bool>>,
    /// Signalled after the act stage (by the target region).
    acted: Option<&'a tokio::sync::watch::Sender<bool>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `chains` concurrently, each in order, skipping what `transition` records as done.
async fn run_stage<D: Deps>(
    chains: &[Chain<D>],
    cx: &StepContext<'_, D>,
    records: &Mutex<Vec<Ran>>,
) {
    let chains: Vec<&Chain<D>> = chains.iter().collect();
    run_chains(&chains, cx, records).await;
}

async fn run_chains<D: Deps>(
    chains: &[&Chain<D>],
    cx: &StepContext<'_, D>,
    records: &Mutex<Vec<Ran>>,
) {
    join_all(chains.iter().map(|chain| async move {
        for step in chain.iter() {
            if step.done(cx.transition) {
                continue;
            }
            let started_at = cx.now();
            let record = step.run(cx).await;
            if let Some(error) = &record.error {
                warn!(step = %step.name(), error = %error.message, error_kind = %error.kind, "step failed; reconcile will retry it");
            }
            lock(records).push(Ran {
                name: step.name(),
                record,
                started_at,
                ended_at: cx.now(),
            });
        }
    }))
    .await;
}

/// Carries out a built plan: regions concurrently, each region's stages in order, each
/// chain's steps in turn, skipping what the transition records as done; then records the
/// outcome in the control state. The controller builds the plan and hands it over; the
/// executor knows nothing of what a step does, and every state change of a transition's
/// steps goes through it.
pub struct Executor<'a, D: Deps> {
    config: &'a Config,
    ports: &'a D,
    hook_wait: std::time::Duration,
}

impl<'a, D: Deps> Executor<'a, D> {
    /// An executor that waits [`SWITCH_HOOK_WAIT`] for a hook's answer.
    pub fn new(config: &'a Config, ports: &'a D) -> Self {
        Executor {
            config,
            ports,
            hook_wait: SWITCH_HOOK_WAIT,
        }
    }

    /// How long a hook's answer may be waited for (the verifier's reconcile gives what
    /// its invocation has left); `HOOK_TIMEOUT_SECONDS` bounds it further.
    pub fn with_hook_wait(mut self, wait: std::time::Duration) -> Self {
        self.hook_wait = wait;
        self
    }

    /// Runs every plan's verify stage, once their other stages are over: the verify
    /// stage sees every step `t` records. What ran before (`so_far`) is checkpointed
    /// first, so a crash while a verify step waits keeps it.
    async fn verify_stage<'p>(
        &self,
        plans: impl IntoIterator<Item = &'p RegionPlan<D>>,
        t: &Transition,
        state: &ControlState,
        fresh: bool,
        so_far: &[Ran],
    ) -> Vec<Ran>
    where
        D: 'p,
    {
        let chains: Vec<&Chain<D>> = plans.into_iter().flat_map(|p| &p.verify).collect();
        if chains.iter().all(|chain| chain.iter().all(|s| s.done(t))) {
            return Vec::new();
        }
        if !so_far.is_empty()
            && let Err(e) = self.record_steps(None, t.epoch, so_far, None).await
        {
            warn!(epoch = t.epoch, error = %e, "could not record the steps before the verify stage");
        }
        let records = Mutex::new(Vec::new());
        let cx = StepContext {
            config: self.config,
            ports: self.ports,
            writes: self,
            transition: t,
            state,
            fresh,
            failing_deadline: None,
            follow_budget: std::time::Duration::ZERO,
            hook_wait: self.hook_wait,
        };
        run_chains(&chains, &cx, &records).await;
        records.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn store(&self) -> StateStore<'a, D> {
        StateStore::new(self.config, self.ports)
    }

    fn now(&self) -> Millis {
        self.ports.clock().now_millis()
    }

    /// Carries out every step of `plans` that the transition does not record as done,
    /// then records the outcome. A region we leave because an alarm says it is down gets
    /// one probe timeout for all its steps (`failing_deadline`): whatever it misses is
    /// recorded as failed for reconcile. Every step is safe to repeat, so a crash anywhere
    /// here is finished by a later invocation.
    /// `saved` is the control state as this invocation last wrote it, so recording the
    /// outcome usually needs no re-read.
    pub async fn run(
        &self,
        plans: &[RegionPlan<D>],
        transition: Transition,
        saved: Versioned<ControlState>,
        failing_deadline: tokio::time::Instant,
        fresh: bool,
    ) -> Result<(Transition, Vec<Ran>)> {
        let epoch = transition.epoch;
        // Only an alarm says the region we leave is down; a verifier's failback leaves a
        // healthy region, which gets its full time.
        let failing = matches!(transition.trigger, crate::state::TriggerInfo::Alarm { .. })
            .then(|| transition.from.clone());
        let (target_acted, target_acted_rx) = tokio::sync::watch::channel(false);
        let state = &saved.value;
        let results = join_all(plans.iter().map(|plan| {
            let target_acted_rx = &target_acted_rx;
            let target_acted = &target_acted;
            let transition = &transition;
            let failing = failing.as_ref();
            async move {
                let is_target = plan.region == transition.to;
                let region_started = self.now();
                let records = Mutex::new(Vec::new());
                let work = self.run_region(
                    plan,
                    transition,
                    RegionRun {
                        state,
                        fresh,
                        failing_deadline: failing.map(|_| failing_deadline),
                        // An abandoned transition only sends; the verifier follows.
                        follow_budget: if fresh {
                            FOLLOW_BUDGET
                        } else {
                            std::time::Duration::ZERO
                        },
                        // Every other region acts once the target has.
                        wait_before_act: (!is_target).then(|| target_acted_rx.clone()),
                        acted: is_target.then_some(target_acted),
                    },
                    &records,
                );
                let finished = match failing {
                    Some(f) if f == &plan.region => {
                        tokio::time::timeout_at(failing_deadline, work).await.is_ok()
                    }
                    _ => {
                        work.await;
                        true
                    }
                };
                if is_target {
                    let _ = target_acted.send(true);
                }
                let mut records = std::mem::take(&mut *lock(&records));
                if !finished {
                    warn!(region = %plan.region, "region missed its deadline; its remaining steps are left to reconcile");
                    let error = format!(
                        "{} did not finish within the {} ms deadline for a failing region",
                        plan.region,
                        self.config.timeouts.probe.as_millis()
                    );
                    let now = self.now();
                    for step in plan.pipeline_steps() {
                        let name = step.name();
                        let missed = step.missed(error.clone());
                        // A step whose record an earlier step of this run already wrote
                        // (a reload sent but not followed) keeps that record: reconcile
                        // goes on from it instead of starting over.
                        let recorded = records.iter().any(|ran| {
                            ran.name == name
                                || (ran.record.key == missed.key
                                    && ran.record.kind == missed.kind)
                        });
                        if !step.done(transition) && !recorded {
                            // It may have started before the deadline cut it off.
                            records.push(Ran {
                                name,
                                record: missed,
                                started_at: region_started,
                                ended_at: now,
                            });
                        }
                    }
                }
                records
            }
        }))
        .await;
        let mut records: Vec<Ran> = results.into_iter().flatten().collect();
        let mut done = transition;
        for ran in &records {
            ran.apply(&mut done);
        }
        let verified = self
            .verify_stage(plans, &done, state, fresh, &records)
            .await;
        for ran in &verified {
            ran.apply(&mut done);
        }
        records.extend(verified);
        done.completed = true;
        self.record_steps(Some(saved), epoch, &records, Some(&done))
            .await?;
        let failed = done.failed_regions();
        if failed.is_empty() {
            info!(epoch, "transition carried out in every region");
        } else {
            warn!(epoch, failed = ?failed, "parameter not published in some regions; reconcile will retry");
        }
        Ok((done, records))
    }

    /// Runs one region's stages in order, each over the transition as this pipeline
    /// knows it (as loaded, plus what its earlier stages recorded), collecting records.
    async fn run_region(
        &self,
        plan: &RegionPlan<D>,
        transition: &Transition,
        mut run: RegionRun<'_>,
        records: &Mutex<Vec<Ran>>,
    ) {
        let mut local = transition.clone();
        for (stage, chains) in [&plan.prepare, &plan.act, &plan.follow]
            .into_iter()
            .enumerate()
        {
            if stage == 1
                && let Some(rx) = run.wait_before_act.as_mut()
            {
                // Ignoring a closed channel: the target pipeline ended either way.
                let _ = rx.wait_for(|done| *done).await;
            }
            let cx = StepContext {
                config: self.config,
                ports: self.ports,
                writes: self,
                transition: &local,
                state: run.state,
                fresh: run.fresh,
                failing_deadline: run.failing_deadline,
                follow_budget: run.follow_budget,
                hook_wait: self.hook_wait,
            };
            run_stage(chains, &cx, records).await;
            for ran in lock(records).iter() {
                ran.apply(&mut local);
            }
            if stage == 1 {
                if let Some(acted) = run.acted {
                    let _ = acted.send(true);
                }
                self.checkpoint(transition.epoch, &plan.follow, records)
                    .await;
            }
        }
    }

    /// Applies `records` to the stored transition of `epoch` (and, given the `completed`
    /// transition as the caller carried it out, writes its history record and then marks
    /// it completed), retrying on contention; `known` is tried first without a re-read. A newer
    /// epoch means our transition was superseded: nothing to record. The history record
    /// is rewritten from the result, so a report of the transition has its steps.
    pub async fn record_steps(
        &self,
        known: Option<Versioned<ControlState>>,
        epoch: u64,
        records: &[Ran],
        completed: Option<&Transition>,
    ) -> Result<()> {
        // Completion implies a history record: write it first, so a crash before the
        // state says `completed` leaves the transition to be taken over, history and all.
        if let Some(done) = completed
            && let Err(e) = self
                .ports
                .control()
                .put_history(&HistoryRecord::of(done))
                .await
        {
            // Not worth failing a transition whose steps are done: the verifier's
            // reconcile writes a missing history record.
            warn!(epoch, error = %e, "could not write the history record");
        }
        let saved = self
            .store()
            .update_from(known, |state| {
                if let Some(t) = state.transition.as_mut().filter(|t| t.epoch == epoch) {
                    for ran in records {
                        ran.apply(t);
                    }
                    if completed.is_some() {
                        t.completed = true;
                    }
                }
            })
            .await?;
        if let Some(t) = saved.value.transition.as_ref().filter(|t| t.epoch == epoch) {
            // The state holds the outcome already; a lost history write is redone by the
            // next record of this transition, and the report falls back to the state.
            if let Err(e) = self
                .ports
                .control()
                .put_history(&HistoryRecord::of(t))
                .await
            {
                warn!(epoch, error = %e, "could not rewrite the history record");
            }
        }
        Ok(())
    }

    /// Runs the steps of `plans` the transition of `current` still lacks (a region that
    /// was down, a command or a deployment still being followed) and records them; a
    /// no-op once everything is done. Regions in `skip` are left for the next run.
    pub async fn finish(
        &self,
        plans: &[RegionPlan<D>],
        current: &Versioned<ControlState>,
        skip: &[Region],
    ) -> Result<Vec<Ran>> {
        let Some(transition) = current.value.transition.clone().filter(|t| t.completed) else {
            return Ok(Vec::new());
        };
        let state = &current.value;
        let plans: Vec<&RegionPlan<D>> =
            plans.iter().filter(|p| !skip.contains(&p.region)).collect();
        let results = join_all(plans.iter().map(|plan| {
            let transition = &transition;
            async move {
                let records = Mutex::new(Vec::new());
                let run = RegionRun {
                    state,
                    fresh: false,
                    failing_deadline: None,
                    follow_budget: FOLLOW_BUDGET / 2,
                    wait_before_act: None,
                    acted: None,
                };
                self.run_region(plan, transition, run, &records).await;
                records.into_inner().unwrap_or_else(|e| e.into_inner())
            }
        }))
        .await;
        let mut records: Vec<Ran> = results.into_iter().flatten().collect();
        let mut known = transition.clone();
        for ran in &records {
            ran.apply(&mut known);
        }
        records.extend(
            self.verify_stage(plans, &known, state, false, &records)
                .await,
        );
        if !records.is_empty() {
            self.record_steps(None, transition.epoch, &records, None)
                .await?;
        }
        Ok(records)
    }

    /// Records what the act stage did before a follow stage that may take a while (a Run
    /// Command being followed): a crash or a timeout while following then keeps the
    /// command ids, and the next run follows them instead of sending again. A failed
    /// write is only logged; the outcome is recorded again at the end.
    async fn checkpoint(&self, epoch: u64, follow: &[Chain<D>], records: &Mutex<Vec<Ran>>) {
        if follow.is_empty() {
            return;
        }
        let so_far: Vec<Ran> = lock(records).clone();
        if so_far.is_empty() {
            return;
        }
        if let Err(e) = self.record_steps(None, epoch, &so_far, None).await {
            warn!(epoch, error = %e, "could not record the sent commands before following them");
        }
    }
}
