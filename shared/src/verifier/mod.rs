//! The verifier: reconcile, failback verification, the scale-in and readiness, run on a
//! schedule.

pub mod failback;
pub mod readiness;
pub mod scale_in;
