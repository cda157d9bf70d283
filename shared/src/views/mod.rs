//! What people and other systems see: status, transition reports, events for operators,
//! metrics, and the serving gate's answers.

pub mod gate;
pub mod metrics;
pub mod notices;
pub mod report;
pub mod status;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::state::{StepEntry, Transition};
use crate::transition::kind::KindInfo;

/// The steps of `t` with their kinds, in the order the kinds are registered (publish,
/// reload, capacity, refresh, ...), each kind's by key. A kind this version does not
/// know (written by a newer one) is left out.
pub fn in_plan_order(t: &Transition) -> impl Iterator<Item = (&'static dyn KindInfo, &StepEntry)> {
    crate::steps::infos().into_iter().flat_map(move |kind| {
        t.steps
            .iter()
            .filter(move |e| e.kind == kind.name())
            .map(move |e| (kind, e))
    })
}

/// The steps of `t` as the failover's answer lists them: per kind's field (`publish`,
/// `refreshes`, `capacity`, `reload`, ...), each outcome by key. Every registered kind
/// has its field, empty when it planned nothing.
pub fn answer_fields(t: &Transition) -> BTreeMap<&'static str, BTreeMap<String, Value>> {
    let mut fields: BTreeMap<&'static str, BTreeMap<String, Value>> = crate::steps::infos()
        .into_iter()
        .map(|kind| (kind.field(), BTreeMap::new()))
        .collect();
    for (kind, entry) in in_plan_order(t) {
        if let Some(field) = fields.get_mut(kind.field()) {
            field.insert(entry.key.clone(), entry.outcome.clone());
        }
        if let Some((other, value)) = kind.also_listed(entry)
            && let Some(field) = fields.get_mut(other)
        {
            field.insert(entry.key.clone(), value);
        }
    }
    fields
}
