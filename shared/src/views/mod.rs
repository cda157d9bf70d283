//! What people and other systems see: status, transition reports, events for operators,
//! metrics, and the serving gate's answers.

pub mod gate;
pub mod metrics;
pub mod notices;
pub mod report;
pub mod status;
