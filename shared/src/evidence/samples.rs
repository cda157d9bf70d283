//! The health probe's recent samples, kept in the control table: the verifier's evidence
//! that the active region is still failing after its alarm's one delivery.
//!
//! A CloudWatch alarm invokes its action once per change of state. If that failover is
//! refused (no healthy candidate then) or ignored (cooldown), nothing asks again while the
//! alarm stays in ALARM. The verifier asks again each minute, on the same evidence the
//! alarm saw: the probe writes every round here, and [`ProbeSamples::failing`] applies
//! the alarm's rule (the newest [`DATAPOINTS_TO_ALARM`] samples all unhealthy) to them.
//! Missing samples are no evidence: a probe that stopped writing makes no failover.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::{Instant, timeout};
use tracing::warn;

use crate::controller::Controller;
use crate::evidence::health::{self, Round};
use crate::ports::{ControlStore, Deps};
use crate::region::Region;
use crate::state::Millis;

/// The template's unhealthy alarms: this many unhealthy 10 s periods in a row (3 of 3).
pub const DATAPOINTS_TO_ALARM: usize = 3;
/// Samples kept per region: a minute at the template's 10 s interval.
pub const KEPT: usize = 6;
/// The newest sample must be at most this old to count: the probe writes every round
/// (10 s), and a scheduled run starts a few seconds after the last one ended.
pub const FRESH_FOR: Duration = Duration::from_secs(30);

/// One round's verdict on one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub at: Millis,
    pub healthy: bool,
    /// Why the region failed its check (a vantage point's verdict, with its reason);
    /// samples written before it was kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<crate::evidence::health::ErrorClass>,
}

/// The newest samples of every region, as one probe (its region, the vantage point) saw
/// them; stored as one item per vantage point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSamples {
    pub vantage: Region,
    /// Oldest first, at most [`KEPT`] per region.
    pub regions: BTreeMap<Region, Vec<Sample>>,
}

/// What the samples say about a region that is still failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failing {
    pub region: Region,
    /// The probe's region.
    pub vantage: Region,
    /// Unhealthy samples in a row, newest last (at least [`DATAPOINTS_TO_ALARM`]).
    pub unhealthy_samples: usize,
    /// The oldest of them.
    pub since: Millis,
    pub newest: Millis,
}

impl ProbeSamples {
    pub fn new(vantage: Region) -> ProbeSamples {
        ProbeSamples {
            vantage,
            regions: BTreeMap::new(),
        }
    }

    /// Adds a round's verdicts, keeping the newest [`KEPT`] per region. A round older
    /// than what is kept (an overlapping run's) is not added.
    pub fn add(&mut self, round: &Round) {
        for health in &round.regions {
            let kept = self.regions.entry(health.region.clone()).or_default();
            if kept.last().is_some_and(|s| s.at >= round.at) {
                continue;
            }
            kept.push(Sample {
                at: round.at,
                healthy: health.healthy,
                error_class: health.error_class,
            });
            let excess = kept.len().saturating_sub(KEPT);
            kept.drain(..excess);
        }
    }

    /// `Some` when the newest [`DATAPOINTS_TO_ALARM`] samples of `region` are all
    /// unhealthy and the newest is fresh at `now`; stale or too few samples say nothing.
    pub fn failing(&self, region: &Region, now: Millis) -> Option<Failing> {
        let kept = self.regions.get(region)?;
        let newest = kept.last()?;
        if now.saturating_sub(newest.at) > FRESH_FOR.as_millis() as Millis {
            return None;
        }
        let unhealthy: Vec<&Sample> = kept.iter().rev().take_while(|s| !s.healthy).collect();
        (unhealthy.len() >= DATAPOINTS_TO_ALARM).then(|| Failing {
            region: region.clone(),
            vantage: self.vantage.clone(),
            unhealthy_samples: unhealthy.len(),
            since: unhealthy.last().map_or(newest.at, |s| s.at),
            newest: newest.at,
        })
    }
}

impl<D: Deps> Controller<D> {
    /// The health probe's run: samples until `until`, hands each round to `emit` (its
    /// metrics and log lines) and records it in the control table for the verifier. The
    /// control table is given one probe timeout per call: the samples' timing comes first,
    /// and a table that does not answer costs the evidence, never a sample.
    pub async fn probe_and_record(
        &self,
        until: Instant,
        mut emit: impl FnMut(&Round),
    ) -> Vec<Round> {
        let own = &self.config.own_region;
        let budget = self.config.timeouts.probe;
        let control = self.ports.control();
        let mut kept = match timeout(budget, control.samples(own)).await {
            Ok(Ok(Some(stored))) if stored.vantage == *own => stored,
            Ok(Ok(_)) => ProbeSamples::new(own.clone()),
            Ok(Err(e)) => {
                warn!(error = %e, "the probe's earlier samples could not be read; recording from this run on");
                ProbeSamples::new(own.clone())
            }
            Err(_) => {
                warn!(
                    timeout_ms = budget.as_millis() as u64,
                    "the probe's earlier samples were not read in time; recording from this run on"
                );
                ProbeSamples::new(own.clone())
            }
        };
        health::sample(
            &self.config.regions,
            self.ports.probe(),
            self.ports.clock(),
            budget,
            self.config.probe_interval,
            until,
            async |round: &Round| {
                emit(round);
                kept.add(round);
                match timeout(budget, control.put_samples(&kept)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(error = %e, "samples not recorded in the control table"),
                    Err(_) => warn!(
                        timeout_ms = budget.as_millis() as u64,
                        "samples not recorded in the control table in time"
                    ),
                }
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::health::RegionHealth;
    use crate::testing::region;

    fn round(at: Millis, verdicts: &[(&str, bool)]) -> Round {
        Round {
            at,
            regions: verdicts
                .iter()
                .map(|(r, healthy)| RegionHealth {
                    region: region(r),
                    healthy: *healthy,
                    canary_found: *healthy,
                    read_latency_ms: None,
                    write_latency_ms: None,
                    error_class: None,
                    error: None,
                })
                .collect(),
            replication: Vec::new(),
        }
    }

    #[test]
    fn three_unhealthy_samples_in_a_row_are_failing_and_fewer_or_stale_ones_are_not() {
        let home = region("us-east-1");
        let mut samples = ProbeSamples::new(region("us-west-2"));
        samples.add(&round(0, &[("us-east-1", true)]));
        samples.add(&round(10_000, &[("us-east-1", false)]));
        samples.add(&round(20_000, &[("us-east-1", false)]));
        assert_eq!(samples.failing(&home, 21_000), None, "two are not enough");
        samples.add(&round(30_000, &[("us-east-1", false)]));
        let failing = samples.failing(&home, 31_000).expect("three in a row");
        assert_eq!(failing.unhealthy_samples, 3);
        assert_eq!((failing.since, failing.newest), (10_000, 30_000));
        // A probe that went silent is no evidence.
        assert_eq!(samples.failing(&home, 30_000 + 30_001), None);
        // One healthy sample breaks the run.
        samples.add(&round(40_000, &[("us-east-1", true)]));
        assert_eq!(samples.failing(&home, 41_000), None);
        assert_eq!(samples.failing(&region("eu-west-1"), 41_000), None);
    }

    #[test]
    fn only_the_newest_samples_are_kept_and_an_older_round_is_not_added() {
        let mut samples = ProbeSamples::new(region("us-west-2"));
        for i in 0..10 {
            samples.add(&round(i * 10_000, &[("us-east-1", false)]));
        }
        samples.add(&round(5_000, &[("us-east-1", true)]));
        let kept = &samples.regions[&region("us-east-1")];
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept.first().map(|s| s.at), Some(40_000));
        assert!(kept.iter().all(|s| !s.healthy));
        let failing = samples.failing(&region("us-east-1"), 90_000).unwrap();
        assert_eq!(failing.unhealthy_samples, KEPT);
    }
}
