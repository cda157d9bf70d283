//! What regionpilot knows about the regions: the health probe's rounds (canary reads,
//! heartbeats, replication lag), the samples it keeps for the verifier, and the quorum
//! of vantage points that judges a region from more than one place.

pub mod health;
pub mod quorum;
pub mod samples;
