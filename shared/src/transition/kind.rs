//! What a kind of step is: one type implementing [`StepKind`], registered by one line in
//! `steps/mod.rs`. The kind plans its steps for a transition, and says how its records
//! read in reports, events, the failover's answer and reconcile. The executor and the
//! views know kinds only through this trait.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::config::Config;
use crate::error::AwsError;
use crate::ports::Deps;
use crate::region::Region;
use crate::state::{Outcome, StepEntry};
use crate::transition::plan::RegionPlan;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a kind's records read, whatever the ports: reports, events, the answer, reconcile.
pub trait KindInfo: Send + Sync {
    /// The kind's name, as its records carry it (its outcome type's `Outcome::KIND`).
    fn name(&self) -> &'static str;

    /// The field of the failover's answer, and of `status`'s transition, that lists this
    /// kind's outcomes by key (`publish`, `refreshes`, `capacity`, `reload`, ...).
    fn field(&self) -> &'static str;

    /// One line for reports and events: what the step did.
    fn summary(&self, entry: &StepEntry, epoch: u64) -> String;

    /// Reconcile ran this step again and it is still on its own course (a command being
    /// followed, or one followed to a clean end): not drift. `before` is the entry as
    /// reconcile found it.
    fn following(&self, _before: Option<&StepEntry>, _after: &StepEntry) -> bool {
        false
    }

    /// An EMF count to emit for a record (per key), when it is one a dashboard watches.
    fn metric(&self, _entry: &StepEntry) -> Option<&'static str> {
        None
    }

    /// The record listed under another kind's answer field as well (a reload's fallback
    /// refresh is listed under `refreshes`, as it always was).
    fn also_listed(&self, _entry: &StepEntry) -> Option<(&'static str, Value)> {
        None
    }

    /// The step failed for good: nothing will run it again (a hook out of attempts).
    /// Reconcile tells it once, as a `Step Given Up` event.
    fn given_up(&self, _entry: &StepEntry) -> bool {
        false
    }
}

/// A kind of step, typed by its outcome: implement this and [`StepKind`], and
/// [`KindInfo`] (what the executor, reconcile and the views read) comes with it.
pub trait Kind: Send + Sync + 'static {
    /// What its steps record; its `KIND` is the kind's name.
    type Outcome: Outcome;

    /// The field of the failover's answer, and of `status`'s transition, that lists this
    /// kind's outcomes by key (`publish`, `refreshes`, `capacity`, `reload`, ...).
    const FIELD: &'static str;

    /// One line for reports and events: what the step on `key` did.
    fn summary(key: &str, outcome: &Self::Outcome, epoch: u64) -> String;

    /// Reconcile ran the step again and it is still on its own course (a command being
    /// followed, or one followed to a clean end): not drift.
    fn following(_before: Option<&Self::Outcome>, _after: &Self::Outcome) -> bool {
        false
    }

    /// An EMF count to emit for an outcome (per key), when it is one a dashboard watches.
    fn metric(_outcome: &Self::Outcome) -> Option<&'static str> {
        None
    }

    /// The outcome listed under another kind's answer field as well.
    fn also_listed(_outcome: &Self::Outcome) -> Option<(&'static str, Value)> {
        None
    }

    /// The step failed for good: nothing will run it again.
    fn given_up(_outcome: &Self::Outcome) -> bool {
        false
    }
}

impl<K: Kind> KindInfo for K {
    fn name(&self) -> &'static str {
        K::Outcome::KIND
    }

    fn field(&self) -> &'static str {
        K::FIELD
    }

    fn summary(&self, entry: &StepEntry, epoch: u64) -> String {
        match entry.outcome::<K::Outcome>() {
            Some(outcome) => K::summary(&entry.key, &outcome, epoch),
            // Written by a version whose outcome this one cannot read.
            None => format!("{}: {} (unreadable record)", entry.key, K::Outcome::KIND),
        }
    }

    fn following(&self, before: Option<&StepEntry>, after: &StepEntry) -> bool {
        let before = before.and_then(StepEntry::outcome::<K::Outcome>);
        after
            .outcome::<K::Outcome>()
            .is_some_and(|after| K::following(before.as_ref(), &after))
    }

    fn metric(&self, entry: &StepEntry) -> Option<&'static str> {
        K::metric(&entry.outcome::<K::Outcome>()?)
    }

    fn also_listed(&self, entry: &StepEntry) -> Option<(&'static str, Value)> {
        K::also_listed(&entry.outcome::<K::Outcome>()?)
    }

    fn given_up(&self, entry: &StepEntry) -> bool {
        entry
            .outcome::<K::Outcome>()
            .is_some_and(|o| K::given_up(&o))
    }
}

/// A kind of step: how it plans itself into a transition to `to`, what it offers the
/// capacity step, and what `status` shows of it.
pub trait StepKind<D: Deps>: KindInfo {
    /// Adds this kind's steps for `plan.region` (per region, group or service). The
    /// dry run describes the plan this builds, so the two cannot drift.
    fn plan(&self, config: &Config, to: &Region, plan: &mut RegionPlan<D>);

    /// What this kind runs on that has a desired count: the capacity step raises the
    /// target region's for a switch, the verifier snapshots them all and scales them in
    /// later, and readiness checks their maximum, all by one implementation.
    fn scalables(&self, _config: &Config) -> Vec<Box<dyn Scalable<D>>> {
        Vec::new()
    }

    /// What `status` shows of this kind, under the field it names (`None`: nothing). It
    /// is read in the same concurrent round as the control state, so it reads AWS only.
    fn status<'a>(
        &'a self,
        _config: &'a Config,
        _ports: &'a D,
    ) -> BoxFuture<'a, Option<(&'static str, Value)>> {
        Box::pin(async { None })
    }
}

pub use crate::state::Sizes;

/// What kind of scalable target something is: the names its checks and messages use.
#[derive(Debug)]
pub struct ScalableKind {
    /// The readiness check of its maximum: `group_capacity`, `service_capacity`.
    pub check: &'static str,
    /// What its maximum is called: `MaxSize`, `MaxCapacity`.
    pub max_name: &'static str,
    /// The service and operation that read its sizes, for an error naming them.
    pub read_call: (&'static str, &'static str),
}

/// One scalable target, described.
pub struct Described<'a> {
    /// Its key in records, the snapshot and `scaled_up`: `region/name` for a group,
    /// `region/cluster/service` for a service.
    pub key: String,
    pub region: &'a Region,
    /// What it is, in an operator's words: `the Auto Scaling group web`.
    pub resource: String,
    pub kind: &'static ScalableKind,
}

/// Something with a desired count that a switch raises to its counterpart's: an Auto
/// Scaling group, an ECS service.
pub trait Scalable<D: Deps>: Send + Sync {
    fn describe(&self) -> Described<'_>;

    fn key(&self) -> String {
        self.describe().key
    }

    fn region(&self) -> &Region {
        self.describe().region
    }

    /// The one in `source` that stands for it: same name, else same position among its
    /// region's own.
    fn counterpart(&self, config: &Config, source: &Region) -> Option<Box<dyn Scalable<D>>>;

    /// Its sizes now; `None` if it does not exist.
    fn sizes<'a>(&'a self, ports: &'a D) -> BoxFuture<'a, Result<Option<Sizes>, AwsError>>;

    fn set_desired<'a>(&'a self, ports: &'a D, desired: i32)
    -> BoxFuture<'a, Result<(), AwsError>>;
}

/// The item in `all` that stands for `item` in `source`: same name, else the one at the
/// same position among `source`'s own. How groups and services find their counterparts.
pub fn counterpart_of<'a, T: PartialEq>(
    all: &'a [T],
    item: &T,
    source: &Region,
    region: impl Fn(&T) -> &Region,
    name: impl Fn(&T) -> String,
) -> Option<&'a T> {
    let in_source: Vec<&T> = all.iter().filter(|t| region(t) == source).collect();
    if let Some(same) = in_source.iter().find(|t| name(t) == name(item)) {
        return Some(same);
    }
    let position = all
        .iter()
        .filter(|t| region(t) == region(item))
        .position(|t| t == item)?;
    in_source.get(position).copied()
}

/// The kind named `name` among `kinds`.
pub fn find<'a>(kinds: &'a [&'a dyn KindInfo], name: &str) -> Option<&'a dyn KindInfo> {
    kinds.iter().copied().find(|k| k.name() == name)
}
