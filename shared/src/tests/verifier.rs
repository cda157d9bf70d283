//! The verifier's failover retry (an alarm fires once) and its run lease (runs never
//! overlap), over the fakes.

use std::sync::Arc;

use tokio::time::Instant;

use crate::controller::{Controller, Outcome};
use crate::ports::{ControlStore, RunLease};
use crate::testing::{FakePorts, FakeWorld, alarm_on, config, region};

type FakeController = Controller<FakePorts>;

fn controller(world: &FakeWorld) -> FakeController {
    Controller::new(Arc::new(config()), world.ports())
}

/// `rounds` probe rounds 10 s apart, each recorded in the control table, as a probe run
/// records them (a deadline of now: one round per call).
async fn probe_rounds(world: &FakeWorld, c: &FakeController, rounds: usize) {
    for _ in 0..rounds {
        world.clock.advance(10_000);
        c.probe_and_record(Instant::now(), |_| {}).await;
    }
}

fn set_probe_up(world: &FakeWorld, names: &[&str]) {
    let mut down = world.probe.down.lock().unwrap();
    for name in names {
        down.remove(&region(name));
    }
}

#[tokio::test]
async fn a_refused_failover_is_retried_by_the_verifier_once_a_standby_is_healthy() {
    // Given: every region down, so the alarm's one failover is refused.
    let world = FakeWorld::new();
    world.set_probe_down(&["us-east-1", "us-west-2", "eu-west-1"]);
    let c = controller(&world);
    let out = c.handle(alarm_on("us-east-1")).await.unwrap();
    assert_eq!(out.outcome, Outcome::Refused);
    probe_rounds(&world, &c, 3).await;

    // When the verifier runs while no standby is healthy: it asks again, is refused, and
    // says so.
    let report = c.verify().await.unwrap();
    let retry = report.failover_retry.expect("a retry");
    assert_eq!(retry.outcome, Outcome::Refused);
    assert_eq!(retry.evidence.unhealthy_samples, 3);
    assert_eq!(retry.evidence.vantage, region("us-west-2"));
    assert!(world.control.epochs().is_empty());
    assert!(
        world
            .bus
            .detail_types()
            .contains(&"Failover Retry".to_owned())
    );

    // When a standby is healthy again and home still fails: the next run fails over.
    set_probe_up(&world, &["us-west-2", "eu-west-1"]);
    probe_rounds(&world, &c, 1).await;
    let report = c.verify().await.unwrap();
    assert_eq!(report.outcome, "failed_over", "{}", report.reason);
    assert_eq!(report.active_region, region("us-west-2"));
    let retry = report.failover_retry.expect("a retry");
    assert_eq!(retry.outcome, Outcome::Switched);
    assert_eq!(world.control.epochs(), [1]);
    let state = world.control.state().unwrap();
    assert_eq!(
        state.transition.unwrap().trigger.label(),
        "verifier:failover"
    );
    let types = world.bus.detail_types();
    assert_eq!(
        types.iter().filter(|t| *t == "Failover Retry").count(),
        2,
        "{types:?}"
    );
    assert!(types.contains(&"Region Switch".to_owned()), "{types:?}");

    // Then: the new active region is healthy, so the next run retries nothing.
    probe_rounds(&world, &c, 1).await;
    let report = c.verify().await.unwrap();
    assert!(report.failover_retry.is_none());
    assert_eq!(world.control.epochs(), [1]);
}

#[tokio::test]
async fn missing_stale_or_too_few_samples_never_fail_over() {
    let world = FakeWorld::new();
    world.set_probe_down(&["us-east-1"]);
    let c = controller(&world);
    // No samples at all (a fresh stack, a probe that never ran).
    assert!(c.verify().await.unwrap().failover_retry.is_none());
    // Two unhealthy samples: not the alarm's three.
    probe_rounds(&world, &c, 2).await;
    assert!(c.verify().await.unwrap().failover_retry.is_none());
    // Three, but the probe went silent 31 s ago.
    probe_rounds(&world, &c, 1).await;
    world.clock.advance(31_000);
    assert!(c.verify().await.unwrap().failover_retry.is_none());
    assert!(world.control.epochs().is_empty());
    assert!(world.control.state().is_none_or(|s| s.epoch == 0));
}

#[tokio::test]
async fn a_retry_within_the_cooldown_is_ignored_and_tells_nobody() {
    let world = FakeWorld::new();
    let c = controller(&world);
    // A switch to us-west-2, then us-west-2 fails within the cooldown.
    let out = c.handle(alarm_on("us-east-1")).await.unwrap();
    assert_eq!(out.outcome, Outcome::Switched);
    world.set_probe_down(&["us-west-2"]);
    probe_rounds(&world, &c, 3).await;
    let report = c.verify().await.unwrap();
    let retry = report.failover_retry.expect("a retry");
    assert_eq!(retry.outcome, Outcome::Ignored);
    assert!(retry.reason.contains("cooldown"), "{}", retry.reason);
    let told = world.bus.detail_types();
    assert!(!told.iter().any(|t| t == "Failover Retry"), "{told:?}");
    assert_eq!(
        told.iter().filter(|t| *t == "Region Switch").count(),
        1,
        "only the alarm's switch: {told:?}"
    );
    assert_eq!(world.control.epochs(), [1]);
}

#[tokio::test]
async fn a_verifier_run_holding_the_lease_keeps_every_other_run_out_until_it_ends_or_lapses() {
    let world = FakeWorld::new();
    let c = controller(&world);
    let now = world.clock.0.load(std::sync::atomic::Ordering::SeqCst);
    let held = RunLease {
        owner: "run-a".into(),
        now,
        until: now + 60_000,
    };
    assert!(world.control.claim_run(&held).await.unwrap());
    // Another run (a duplicate schedule delivery, a person's verify) changes nothing.
    let report = c.verify_run("run-b", None).await.unwrap();
    assert_eq!(report.outcome, "busy");
    assert!(world.control.state().is_none());
    // The holder's own retried claim (a write that landed) is its own.
    assert!(world.control.claim_run(&held).await.unwrap());
    // A run that died holding it: the lease lapses at its deadline.
    world.clock.advance(60_001);
    let report = c.verify_run("run-b", None).await.unwrap();
    assert_eq!(report.outcome, "home");
    assert!(
        world.control.lease.lock().unwrap().is_none(),
        "given back at the end"
    );
    // Sequential runs never wait for each other.
    assert_eq!(c.verify_run("run-c", None).await.unwrap().outcome, "home");
}
