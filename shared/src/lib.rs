//! regionpilot's shared core: configuration, control state, trigger decoding, the
//! region-switch decisions and their execution, the rolling update, and the AWS adapters.
//! Handlers in `functions/` only wire these together.

pub mod aws;
pub mod config;
pub mod controller;
pub mod decision;
pub mod error;
pub mod evidence;
pub mod ports;
pub mod region;
pub mod state;
pub mod steps;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod transition;
pub mod verifier;
pub mod views;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

pub use config::Config;
pub use controller::{Controller, Outcome, Response};
pub use error::{Error, ErrorKind, Result};
pub use region::Region;
