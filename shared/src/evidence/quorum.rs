//! A region judged from more than one place: every health probe is a vantage point, and
//! each keeps its newest samples of every region in the control table
//! ([`ProbeSamples`], one item per vantage point). A network partition between one
//! vantage point and a region looks exactly like that region's outage from there; from
//! the others it does not. So a region is **down by quorum** when at least the required
//! number of vantage points saw it down in their latest sample, and that sample is fresh
//! (younger than `QUORUM_WINDOW_SECONDS`).
//!
//! - **Who counts.** The vantage points heard from in the last hour (their newest sample
//!   of any region is that young). A vantage point that stops reporting keeps counting
//!   for an hour, with a stale verdict that is no vote: a probe that went silent is no
//!   evidence either way, and it cannot lower the bar by vanishing. After an hour it
//!   leaves the count.
//! - **Not its own judge.** A probe in the region being judged is left out of that
//!   region's count: it goes down with its region (its verdict is stale exactly when it
//!   matters), and a region cut off from the others still sees itself fine.
//! - **How many.** `QUORUM=majority` (the default): more than half of those counted, at
//!   least 1; or a fixed number.
//! - **One vantage point** (or none) counts as no quorum to check: regionpilot then
//!   behaves as it always has, on its one probe's alarm.
//!
//! This module only judges; the decisions that use it are the failover's and the
//! failback verification's.

use std::time::Duration;

use serde::Serialize;

use crate::controller::Controller;
use crate::error::Result;
use crate::evidence::samples::ProbeSamples;
use crate::ports::{ControlStore, Deps};
use crate::region::Region;
use crate::state::Millis;

/// A vantage point not heard from for this long leaves the count.
pub const HEARD_WITHIN: Duration = Duration::from_secs(3600);

/// `QUORUM`: how many vantage points must see a region down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuorumRule {
    /// More than half of the vantage points counted, at least 1.
    Majority,
    /// At least this many (a positive number).
    AtLeast(u32),
}

impl QuorumRule {
    /// The votes needed out of `counted` vantage points.
    pub fn required(self, counted: usize) -> usize {
        match self {
            QuorumRule::Majority => (counted / 2 + 1).max(1),
            QuorumRule::AtLeast(n) => n as usize,
        }
    }
}

/// `QUORUM` and `QUORUM_WINDOW_SECONDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumPolicy {
    pub rule: QuorumRule,
    /// A verdict older than this is no vote.
    pub window: Duration,
}

/// One vantage point's latest verdict on a region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VantageVerdict {
    pub vantage: Region,
    /// When it sampled the region last; `None`: it has no sample of the region.
    pub at: Option<Millis>,
    pub healthy: Option<bool>,
    /// Why it saw the region down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<crate::evidence::health::ErrorClass>,
    /// Younger than the window: a vote.
    pub fresh: bool,
}

/// What the vantage points say about one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionQuorum {
    pub region: Region,
    /// Every vantage point counted, in region order.
    pub verdicts: Vec<VantageVerdict>,
    /// Fresh verdicts of down.
    pub down_votes: usize,
    /// Fresh verdicts of healthy.
    pub healthy_votes: usize,
    /// The votes a quorum needs.
    pub required: usize,
}

impl RegionQuorum {
    /// Vantage points counted for this region.
    pub fn counted(&self) -> usize {
        self.verdicts.len()
    }

    /// Fewer than two vantage points: nothing to weigh, as before quorums.
    pub fn single(&self) -> bool {
        self.counted() < 2
    }

    /// Down by quorum (always, with a single vantage point: its alarm is the evidence).
    pub fn down(&self) -> bool {
        self.single() || self.down_votes >= self.required
    }

    /// Healthy by quorum: enough fresh verdicts of healthy. With a single vantage point
    /// this says nothing (`true`); its own samples decide, as before quorums.
    pub fn healthy(&self) -> bool {
        self.single() || self.healthy_votes >= self.required
    }

    /// `N of M vantage points see <region> down`.
    pub fn summary(&self) -> String {
        format!(
            "{} of {} vantage points see {} down",
            self.down_votes,
            self.counted(),
            self.region
        )
    }
}

/// Judges `region` from every vantage point's samples at `now`.
pub fn judge(
    all: &[ProbeSamples],
    region: &Region,
    now: Millis,
    policy: &QuorumPolicy,
) -> RegionQuorum {
    let window = policy.window.as_millis() as Millis;
    let mut verdicts: Vec<VantageVerdict> = all
        .iter()
        .filter(|p| &p.vantage != region)
        .filter(|p| heard_from(p, now))
        .map(|p| {
            let latest = p.regions.get(region).and_then(|kept| kept.last());
            VantageVerdict {
                vantage: p.vantage.clone(),
                at: latest.map(|s| s.at),
                healthy: latest.map(|s| s.healthy),
                error_class: latest.and_then(|s| s.error_class),
                fresh: latest.is_some_and(|s| now.saturating_sub(s.at) < window),
            }
        })
        .collect();
    verdicts.sort_by(|a, b| a.vantage.cmp(&b.vantage));
    let votes = |healthy: bool| {
        verdicts
            .iter()
            .filter(|v| v.fresh && v.healthy == Some(healthy))
            .count()
    };
    RegionQuorum {
        region: region.clone(),
        down_votes: votes(false),
        healthy_votes: votes(true),
        required: policy.rule.required(verdicts.len()),
        verdicts,
    }
}

impl<D: Deps> Controller<D> {
    /// What every vantage point's samples in the control table say of `region` now.
    pub async fn quorum(&self, region: &Region) -> Result<RegionQuorum> {
        let all = self.ports.control().vantage_samples().await?;
        Ok(judge(&all, region, self.now(), &self.config.quorum))
    }

    /// Every vantage point's samples, read within one call budget; why not, in words.
    /// The verifier reads them once a run, for its readiness check and its
    /// `VantageHealthy` points.
    pub(crate) async fn vantage_samples_within_budget(
        &self,
    ) -> std::result::Result<Vec<ProbeSamples>, String> {
        match tokio::time::timeout(
            self.config.timeouts.call_budget(),
            self.ports.control().vantage_samples(),
        )
        .await
        {
            Ok(Ok(all)) => Ok(all),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within the call budget".to_owned()),
        }
    }
}

/// The vantage points heard from within [`HEARD_WITHIN`] of `now`, in region order.
pub fn heard(all: &[ProbeSamples], now: Millis) -> Vec<Region> {
    let mut regions: Vec<Region> = all
        .iter()
        .filter(|p| heard_from(p, now))
        .map(|p| p.vantage.clone())
        .collect();
    regions.sort();
    regions
}

/// The vantage point's newest sample of any region is at most [`HEARD_WITHIN`] old.
fn heard_from(p: &ProbeSamples, now: Millis) -> bool {
    newest(p).is_some_and(|at| now.saturating_sub(at) <= HEARD_WITHIN.as_millis() as Millis)
}

/// The newest sample a vantage point took of any region.
fn newest(p: &ProbeSamples) -> Option<Millis> {
    p.regions
        .values()
        .filter_map(|kept| kept.last().map(|s| s.at))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::samples::Sample;
    use crate::testing::region;

    const NOW: Millis = 1_700_000_000_000;
    const HOME: &str = "us-east-1";

    fn policy(rule: QuorumRule) -> QuorumPolicy {
        QuorumPolicy {
            rule,
            window: Duration::from_secs(30),
        }
    }

    /// A vantage point whose latest sample of home is `healthy`, `age_s` seconds old, and
    /// of itself fresh.
    fn vantage(name: &str, healthy: bool, age_s: u64) -> ProbeSamples {
        let mut p = ProbeSamples::new(region(name));
        p.regions.insert(
            region(HOME),
            vec![Sample {
                at: NOW - age_s * 1000,
                healthy,
                error_class: (!healthy).then_some(crate::evidence::health::ErrorClass::Timeout),
            }],
        );
        p.regions.insert(
            region(name),
            vec![Sample {
                at: NOW - age_s * 1000,
                healthy: true,
                error_class: None,
            }],
        );
        p
    }

    #[test]
    fn a_region_is_down_by_quorum_when_a_majority_of_fresh_verdicts_say_so() {
        let all = [
            vantage("us-west-2", false, 5),
            vantage("eu-west-1", false, 8),
            vantage("ap-south-1", true, 3),
        ];
        let q = judge(&all, &region(HOME), NOW, &policy(QuorumRule::Majority));
        assert_eq!((q.down_votes, q.counted(), q.required), (2, 3, 2));
        assert!(q.down());
        assert_eq!(q.summary(), "2 of 3 vantage points see us-east-1 down");
        // Each verdict says why.
        let west = q
            .verdicts
            .iter()
            .find(|v| v.vantage == region("us-west-2"))
            .unwrap();
        assert_eq!(
            west.error_class,
            Some(crate::evidence::health::ErrorClass::Timeout)
        );
        // A fixed quorum of three is not met by two.
        let q = judge(&all, &region(HOME), NOW, &policy(QuorumRule::AtLeast(3)));
        assert!(!q.down());
    }

    #[test]
    fn one_vantage_points_cut_link_is_a_suspected_partition_not_an_outage() {
        let all = [
            vantage("us-west-2", false, 2),
            vantage("eu-west-1", true, 4),
            vantage("ap-south-1", true, 6),
        ];
        let q = judge(&all, &region(HOME), NOW, &policy(QuorumRule::Majority));
        assert!(!q.down(), "{q:?}");
        assert_eq!(q.summary(), "1 of 3 vantage points see us-east-1 down");
        assert!(q.healthy());
    }

    #[test]
    fn a_stale_verdict_is_no_vote_but_its_vantage_point_still_counts_for_an_hour() {
        // eu-west-1 saw home down 40 s ago: older than the 30 s window.
        let all = [
            vantage("us-west-2", false, 2),
            vantage("eu-west-1", false, 40),
        ];
        let q = judge(&all, &region(HOME), NOW, &policy(QuorumRule::Majority));
        assert_eq!((q.down_votes, q.counted(), q.required), (1, 2, 2));
        assert!(!q.down());
        assert!(
            !q.verdicts
                .iter()
                .find(|v| v.vantage == region("eu-west-1"))
                .unwrap()
                .fresh
        );
        // Silent for more than an hour: it leaves the count, and the one left decides.
        let all = [
            vantage("us-west-2", false, 2),
            vantage("eu-west-1", false, 3_601),
        ];
        let q = judge(&all, &region(HOME), NOW, &policy(QuorumRule::Majority));
        assert_eq!(q.counted(), 1);
        assert!(q.single() && q.down());
    }

    #[test]
    fn a_probe_in_the_judged_region_is_not_its_own_judge() {
        // Home's own probe says home is fine (it is cut off with it): left out.
        let all = [vantage("us-west-2", false, 2), vantage(HOME, true, 1)];
        let q = judge(&all, &region(HOME), NOW, &policy(QuorumRule::Majority));
        assert_eq!(q.counted(), 1);
        assert!(q.down());
    }

    #[test]
    fn one_vantage_point_or_none_behaves_exactly_as_before_quorums() {
        for all in [vec![], vec![vantage("us-west-2", true, 2)]] {
            let q = judge(&all, &region(HOME), NOW, &policy(QuorumRule::Majority));
            assert!(q.single());
            // The alarm is the evidence, and the samples decide the streak, as before.
            assert!(q.down() && q.healthy(), "{q:?}");
        }
    }

    #[test]
    fn healthy_by_quorum_needs_enough_fresh_healthy_verdicts() {
        let all = [
            vantage("us-west-2", true, 2),
            vantage("eu-west-1", true, 50),
            vantage("ap-south-1", false, 1),
        ];
        let q = judge(&all, &region(HOME), NOW, &policy(QuorumRule::Majority));
        assert_eq!((q.healthy_votes, q.required), (1, 2));
        assert!(!q.healthy() && !q.down());
    }

    /// Each region's probe (MRSC: every region runs one) writes its samples to the shared
    /// control table; the quorum reads them all back, whatever the reader's region.
    #[tokio::test]
    async fn the_controller_judges_a_region_from_every_vantage_points_stored_samples() {
        use crate::ports::ControlStore;
        let world = crate::testing::FakeWorld::new();
        let now = world.clock.0.load(std::sync::atomic::Ordering::SeqCst);
        for (name, healthy) in [("us-west-2", false), ("eu-west-1", false), (HOME, true)] {
            let mut p = vantage(name, healthy, 0);
            for kept in p.regions.values_mut() {
                kept[0].at = now - 2_000;
            }
            world.ports().control.put_samples(&p).await.unwrap();
        }
        let c = crate::controller::Controller::new(
            std::sync::Arc::new(crate::testing::config()),
            world.ports(),
        );
        let q = c.quorum(&region(HOME)).await.unwrap();
        // Home's own probe is left out; the other two see it down.
        assert_eq!((q.down_votes, q.counted(), q.required), (2, 2, 2), "{q:?}");
        assert!(q.down());
    }

    mod decisions {
        use std::sync::Arc;

        use super::*;
        use crate::controller::{Controller, Outcome};
        use crate::decision::event::{Command, Trigger};
        use crate::ports::ControlStore;
        use crate::testing::{FakePorts, FakeWorld, alarm_on, config};

        /// Each vantage point's latest verdict on home, fresh.
        async fn seed(world: &FakeWorld, verdicts: &[(&str, bool)]) -> Controller<FakePorts> {
            let now = world.clock.0.load(std::sync::atomic::Ordering::SeqCst);
            for (name, healthy) in verdicts {
                let mut p = vantage(name, *healthy, 0);
                for kept in p.regions.values_mut() {
                    kept[0].at = now - 2_000;
                }
                world.ports().control.put_samples(&p).await.unwrap();
            }
            Controller::new(Arc::new(config()), world.ports())
        }

        fn manual(force: bool) -> Trigger {
            Trigger::Command(Command::Failover {
                target_region: None,
                reason: "operator".into(),
                dry_run: false,
                force,
            })
        }

        #[tokio::test]
        async fn an_alarm_from_one_side_of_a_partition_is_refused_and_told() {
            let world = FakeWorld::new();
            let c = seed(
                &world,
                &[
                    ("us-west-2", false),
                    ("eu-west-1", true),
                    ("ap-south-1", true),
                ],
            )
            .await;
            let out = c.handle(alarm_on(HOME)).await.unwrap();
            assert_eq!(out.outcome, Outcome::Refused, "{out:?}");
            assert_eq!(
                out.reason,
                "partition suspected: 1 of 3 vantage points see us-east-1 down"
            );
            // Nothing moved, and the flap guard did not count it.
            let state = world.control.state();
            assert!(
                state
                    .as_ref()
                    .is_none_or(|s| s.active_region == region(HOME)
                        && s.epoch == 0
                        && s.recent_automatic_switches.is_empty()),
                "{state:?}"
            );
            let told = world.bus.put.lock().unwrap().clone();
            let refused = told
                .iter()
                .find(|n| n.detail_type == "Region Switch")
                .expect("told");
            println!("told: {}", refused.detail);
            assert_eq!(refused.detail["outcome"], "refused");
            let verdicts = refused.detail["quorum"]["verdicts"].as_array().unwrap();
            assert_eq!(verdicts.len(), 3);
            assert_eq!(refused.detail["quorum"]["down_votes"], 1);
            assert_eq!(
                refused.detail["verdicts"],
                refused.detail["quorum"]["verdicts"]
            );
        }

        #[tokio::test]
        async fn an_alarm_with_the_region_down_by_quorum_fails_over() {
            let world = FakeWorld::new();
            let c = seed(
                &world,
                &[
                    ("us-west-2", false),
                    ("eu-west-1", false),
                    ("ap-south-1", true),
                ],
            )
            .await;
            let out = c.handle(alarm_on(HOME)).await.unwrap();
            assert_eq!(out.outcome, Outcome::Switched, "{out:?}");
            assert_eq!(out.quorum.as_ref().map(|q| q.down_votes), Some(2));
        }

        #[tokio::test]
        async fn a_person_is_not_held_forced_skips_the_quorum_unforced_reports_it() {
            let verdicts = [
                ("us-west-2", false),
                ("eu-west-1", true),
                ("ap-south-1", true),
            ];
            let world = FakeWorld::new();
            let c = seed(&world, &verdicts).await;
            let out = c.handle(manual(true)).await.unwrap();
            assert_eq!(out.outcome, Outcome::Switched, "{out:?}");
            assert!(out.quorum.is_none(), "forced: not even read");
            let world = FakeWorld::new();
            let c = seed(&world, &verdicts).await;
            let out = c.handle(manual(false)).await.unwrap();
            assert_eq!(out.outcome, Outcome::Switched, "{out:?}");
            let q = out.quorum.expect("reported");
            assert_eq!((q.down_votes, q.counted()), (1, 3));
        }

        #[tokio::test]
        async fn the_failback_streak_counts_only_samples_where_home_is_healthy_by_quorum() {
            let world = FakeWorld::new();
            let c = seed(&world, &[]).await;
            let out = c.handle(manual(true)).await.unwrap();
            assert_eq!(out.outcome, Outcome::Switched);
            // Healthy from the verifier's own probe, but two of three see home down.
            seed(
                &world,
                &[
                    ("us-west-2", true),
                    ("eu-west-1", false),
                    ("ap-south-1", false),
                ],
            )
            .await;
            let report = c.verify().await.unwrap();
            let progress = report.failback.expect("away from home");
            assert_eq!(progress.healthy_streak, 0, "{progress:?}");
            assert!(
                progress.waiting_for[0].starts_with(
                    "us-east-1 is healthy from here but not by quorum: 1 of 3 vantage points see it healthy (a quorum is 2)"
                ),
                "{progress:?}"
            );
            // A majority sees it healthy: the streak counts.
            seed(
                &world,
                &[
                    ("us-west-2", true),
                    ("eu-west-1", true),
                    ("ap-south-1", false),
                ],
            )
            .await;
            let progress = c.verify().await.unwrap().failback.unwrap();
            assert_eq!(progress.healthy_streak, 1, "{progress:?}");
        }

        #[tokio::test]
        async fn status_shows_each_vantage_point_when_it_reported_and_its_verdicts() {
            let world = FakeWorld::new();
            let c = seed(&world, &[("us-west-2", false), ("eu-west-1", true)]).await;
            let out = c.status().await.unwrap();
            let shown = serde_json::to_value(&out.status.unwrap().vantage_points).unwrap();
            println!("vantage_points: {shown}");
            let now = world.clock.0.load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(shown.as_array().unwrap().len(), 2);
            let west = shown
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["vantage"] == "us-west-2")
                .unwrap();
            assert_eq!(west["last_reported"], now - 2_000);
            assert_eq!(west["verdicts"][HOME]["healthy"], false);
            assert_eq!(west["verdicts"]["us-west-2"]["healthy"], true);
        }

        #[tokio::test]
        async fn a_candidate_only_this_region_cannot_reach_is_not_refused_for_it() {
            let world = FakeWorld::new();
            let now = world.clock.0.load(std::sync::atomic::Ordering::SeqCst);
            // Three other vantage points: home down, us-west-2 healthy.
            for name in ["ap-south-1", "eu-central-1", "eu-west-1"] {
                let mut p = ProbeSamples::new(region(name));
                for (judged, healthy) in [(HOME, false), ("us-west-2", true)] {
                    p.regions.insert(
                        region(judged),
                        vec![Sample {
                            at: now - 2_000,
                            healthy,
                            error_class: None,
                        }],
                    );
                }
                world.ports().control.put_samples(&p).await.unwrap();
            }
            // From here (the control plane's region), neither standby answers.
            world.set_probe_down(&["us-west-2", "eu-west-1"]);
            let c = Controller::new(Arc::new(config()), world.ports());
            let out = c.handle(alarm_on(HOME)).await.unwrap();
            assert_eq!(out.outcome, Outcome::Switched, "{out:?}");
            assert_eq!(out.to, Some(region("us-west-2")));
            let probe = out
                .probes
                .unwrap()
                .into_iter()
                .find(|p| p.region == region("us-west-2"))
                .unwrap();
            println!("probe: {probe:?}");
            assert!(
                probe
                    .error
                    .as_deref()
                    .unwrap()
                    .contains("but healthy by quorum: 3 of 3 vantage points see it healthy"),
                "{probe:?}"
            );
            // With one vantage point, the same probes refuse, as before.
            let world = FakeWorld::new();
            world.set_probe_down(&["us-west-2", "eu-west-1"]);
            let c = seed(&world, &[("ap-south-1", false)]).await;
            assert_eq!(
                c.handle(alarm_on(HOME)).await.unwrap().outcome,
                Outcome::Refused
            );
        }

        /// How a vantage point's samples write goes wrong.
        #[derive(Clone, Copy, Debug)]
        enum Fault {
            /// The process dies before the write lands, or after.
            Crash { lands: bool },
            /// Applied, then answered with a 500.
            Lost,
        }

        /// Crash points over the new writes: each vantage point's samples item. The
        /// middle one of three probe runs of the control stack's probe (us-west-2) or of
        /// a regional vantage point (ca-central-1) goes wrong at its samples write; the
        /// next scheduled run reads back what landed and records again. The stored
        /// samples are exactly the rounds whose write landed, in order, without a
        /// duplicate, and the alarm that follows decides as with no fault: refused on
        /// one side of a partition, switched in an outage.
        #[tokio::test]
        async fn a_probe_run_that_fails_at_its_samples_write_changes_no_decision() {
            let vantage_config = |name: &str| {
                let mut vars = vec![("AWS_REGION", name)];
                if name != "us-west-2" {
                    vars.extend([
                        ("DEPLOYMENT_ROLE", "regional"),
                        ("CONTROL_TABLE_REGION", "us-west-2"),
                    ]);
                }
                Arc::new(crate::testing::config_with(&vars))
            };
            let faults = [
                Fault::Crash { lands: false },
                Fault::Crash { lands: true },
                Fault::Lost,
            ];
            let mut cases = 0;
            for outage in [false, true] {
                for faulty in ["us-west-2", "ca-central-1"] {
                    for fault in faults {
                        let world = FakeWorld::new();
                        // Three probe runs of each vantage point, 10 s apart; home is
                        // down from the standby's side only (a partition), or from both.
                        let start = world.clock.0.load(std::sync::atomic::Ordering::SeqCst);
                        for run in 0..3 {
                            for name in ["us-west-2", "ca-central-1"] {
                                let down: &[&str] = if outage || name == "us-west-2" {
                                    &[HOME]
                                } else {
                                    &[]
                                };
                                *world.probe.down.lock().unwrap() =
                                    down.iter().map(|n| region(n)).collect();
                                let c = Controller::new(vantage_config(name), world.ports());
                                let until = tokio::time::Instant::now();
                                if run == 1 && name == faulty {
                                    match fault {
                                        Fault::Crash { lands } => world.crash.arm(0, lands),
                                        Fault::Lost => world.crash.lose_answers(
                                            0,
                                            crate::testing::LostAnswer::Error,
                                            1,
                                        ),
                                    }
                                }
                                tokio::select! {
                                    biased;
                                    _ = c.probe_and_record(until, |_| {}) => {}
                                    () = world.crash.dead() => {}
                                }
                                world.crash.disarm();
                            }
                            world.clock.advance(10_000);
                        }
                        world.clock.advance(1_000);
                        let case = format!("outage {outage}, {faulty} {fault:?}");
                        // The faulty vantage point's home samples: every round whose
                        // write landed (a crash before it lands loses that round only).
                        let stored: Vec<Millis> = world.control.samples.lock().unwrap()
                            [&region(faulty)]
                            .regions[&region(HOME)]
                            .iter()
                            .map(|s| s.at)
                            .collect();
                        let landed = match fault {
                            Fault::Crash { lands: false } => vec![start, start + 20_000],
                            _ => vec![start, start + 10_000, start + 20_000],
                        };
                        assert_eq!(stored, landed, "{case}");
                        let c = Controller::new(vantage_config("us-west-2"), world.ports());
                        let out = c.handle(alarm_on(HOME)).await.unwrap();
                        let expected = if outage {
                            Outcome::Switched
                        } else {
                            Outcome::Refused
                        };
                        assert_eq!(out.outcome, expected, "{case}: {}", out.reason);
                        let q = out.quorum.expect("two vantage points: a quorum");
                        assert_eq!(
                            (q.down_votes, q.counted()),
                            (if outage { 2 } else { 1 }, 2),
                            "{case}"
                        );
                        cases += 1;
                    }
                }
            }
            assert_eq!(cases, 12);
        }

        #[tokio::test]
        async fn with_one_vantage_point_an_alarm_fails_over_exactly_as_before() {
            let world = FakeWorld::new();
            let c = seed(&world, &[("us-west-2", true)]).await;
            let out = c.handle(alarm_on(HOME)).await.unwrap();
            assert_eq!(out.outcome, Outcome::Switched, "{out:?}");
            assert!(out.quorum.is_none());
        }
    }

    #[test]
    fn majority_is_more_than_half_and_at_least_one() {
        let majority: Vec<usize> = (0..=5).map(|n| QuorumRule::Majority.required(n)).collect();
        assert_eq!(majority, [1, 1, 2, 2, 3, 3]);
        assert_eq!(QuorumRule::AtLeast(4).required(2), 4);
    }
}
