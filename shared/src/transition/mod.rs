//! A decided switch as a plan of steps, run in stages and recorded in the control state.

pub mod kind;
pub mod plan;
