//! The kinds of step a transition runs, each one file implementing
//! [`StepKind`](crate::transition::kind::StepKind), and their registry: publishing the
//! parameter, the reload of running instances, ECS services' deployments, standby
//! capacity, the rolling update, and the application owner's hooks.
//! The routing controls are set beside the plan, not as a step of it.

use crate::ports::Deps;
use crate::transition::kind::{KindInfo, StepKind};

pub mod capacity;
pub mod ecs;
pub mod hooks;
pub mod publish;
pub mod reload;
pub mod rolling;
pub mod routing;

/// Registers kinds: each is one line, in the order steps on one target (a group, a
/// service) run within a stage.
macro_rules! registry {
    ($($kind:expr),* $(,)?) => {
        /// Every kind of step, in registration order.
        pub fn kinds<D: Deps>() -> Vec<&'static dyn StepKind<D>> {
            vec![$(&$kind),*]
        }

        /// The same kinds, for what reads their records (reports, events, reconcile).
        pub fn infos() -> Vec<&'static dyn KindInfo> {
            vec![$(&$kind),*]
        }
    };
}

registry![
    publish::Publish,
    // Before capacity: the reload reads the group's instances before the raise, so only
    // those already running are followed (the raise's new ones read the value at boot).
    reload::Reload,
    // Before capacity: a service's new deployment starts at its current count, and the
    // raise then grows that deployment, instead of starting tasks the deployment at once
    // replaces.
    ecs::Deployments,
    capacity::Capacity,
    rolling::Refresh,
    hooks::HookCalls,
];

/// The kind of step named `name`.
pub fn info(name: &str) -> Option<&'static dyn KindInfo> {
    infos().into_iter().find(|k| k.name() == name)
}
