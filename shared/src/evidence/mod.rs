//! What regionpilot knows about the regions: the health probe's rounds (canary reads,
//! heartbeats, replication lag) and the samples it keeps for the verifier.

pub mod health;
pub mod samples;
