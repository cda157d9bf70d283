//! regionpilot's shared core: configuration, control state, trigger decoding, the
//! region-switch decisions and their execution, the rolling update, and the AWS adapters.
//! Handlers in `functions/` only wire these together.

pub mod aws;
pub mod capacity;
pub mod config;
pub mod controller;
pub mod error;
pub mod event;
pub mod failback;
pub mod gate;
pub mod health;
pub mod metrics;
pub mod notices;
pub mod plan;
pub mod ports;
pub mod readiness;
pub mod region;
pub mod reload;
pub mod report;
pub mod rolling;
pub mod routing;
pub mod samples;
pub mod state;
pub mod status;
pub mod switch;
pub mod telemetry;
pub mod text;
pub mod window;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod controller_tests;
#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod notices_tests;
#[cfg(test)]
mod steps_tests;
#[cfg(test)]
mod verifier_tests;

pub use config::Config;
pub use controller::{Controller, Outcome, Response};
pub use error::{Error, ErrorKind, Result};
pub use region::Region;
