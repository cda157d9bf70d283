//! Tests across modules: a transition end to end over the fakes, crash points, fuzzing.

mod controller;
mod crash;
mod fuzz;
mod notices;
mod steps;
mod verifier;
