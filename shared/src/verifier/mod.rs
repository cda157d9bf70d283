//! The verifier: reconcile, failback verification and readiness, run on a schedule.

pub mod failback;
pub mod readiness;
