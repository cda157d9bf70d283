//! What a kind of step is: one type implementing [`StepKind`], registered by one line in
//! `steps/mod.rs`. The kind plans its steps for a transition, and says how its records
//! read in reports, events, the failover's answer and reconcile. The executor and the
//! views know kinds only through this trait.

use serde_json::Value;

use crate::config::Config;
use crate::ports::Deps;
use crate::region::Region;
use crate::state::StepEntry;
use crate::transition::plan::RegionPlan;

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
}

/// A kind of step: how it plans itself into a transition to `to`.
pub trait StepKind<D: Deps>: KindInfo {
    /// Adds this kind's steps for `plan.region` (per region, group or service). The
    /// dry run describes the plan this builds, so the two cannot drift.
    fn plan(&self, config: &Config, to: &Region, plan: &mut RegionPlan<D>);
}

/// The kind named `name` among `kinds`.
pub fn find<'a>(kinds: &'a [&'a dyn KindInfo], name: &str) -> Option<&'a dyn KindInfo> {
    kinds.iter().copied().find(|k| k.name() == name)
}
