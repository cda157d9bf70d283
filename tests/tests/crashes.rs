//! Real process crashes: the failover bootstrap is SIGKILLed at three points of a
//! transition (after the compare-and-swap, before publishing; halfway through publishing;
//! after publishing, before the refresh), held there by latency the rig injects into the
//! next call. A later invocation (the retried alarm, or the verifier's reconcile) finishes
//! the transition: the parameter everywhere, one refresh per group, one history record
//! (written by whoever finishes: the compare-and-swap alone made the transition).
//! The shared crate's crash suite covers every write of three transitions over fakes; this
//! shows the same with the real binary, the real SDK and a real kill.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use regionpilot_tests::rig::Fault;
use regionpilot_tests::{Stage, alarm_for};
use serde_json::json;

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
/// Long enough to kill the process while the call is held; the held call then lands late,
/// as a request already sent to AWS may.
const HOLD_MS: u64 = 2500;

#[derive(Clone, Copy, Debug)]
enum CrashPoint {
    AfterCompareAndSwap,
    HalfwayThroughPublishing,
    AfterPublishingBeforeRefresh,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Recovery {
    RetriedAlarm,
    Reconcile,
}

async fn crash_and_recover(point: CrashPoint, recovery: Recovery) {
    let env = [
        ("COOLDOWN_SECONDS", "0"),
        ("TRANSITION_LEASE_SECONDS", "1"),
        // The held home region must not hit its failing-region deadline before the kill.
        ("PROBE_TIMEOUT_MS", "4000"),
        ("CALL_TIMEOUT_MS", "4000"),
    ];
    let label = format!("crash-{point:?}").to_lowercase();
    let mut stage = Stage::start(&label, &[HOME, STANDBY], STANDBY, 1, &env).await;
    let verifier = stage.start_function("failback", 1, &[]).await;
    let (held_regions, operation): (&[&str], &'static str) = match point {
        CrashPoint::AfterCompareAndSwap => (&[HOME, STANDBY], "PutParameter"),
        CrashPoint::HalfwayThroughPublishing => (&[HOME], "PutParameter"),
        CrashPoint::AfterPublishingBeforeRefresh => (&[HOME, STANDBY], "StartInstanceRefresh"),
    };
    for region in held_regions {
        stage
            .rig
            .set_faults(region, &[Fault::latency(operation, HOLD_MS)]);
    }

    let world = &stage.world;
    let reached = async {
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{point:?} never reached"
            );
            let at_point = match point {
                CrashPoint::AfterCompareAndSwap => world.control_item().await.is_some(),
                CrashPoint::HalfwayThroughPublishing => {
                    world.parameter(STANDBY).await.as_deref() == Some(STANDBY)
                }
                CrashPoint::AfterPublishingBeforeRefresh => world.parameters_all(STANDBY).await.0,
            };
            if at_point {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let event = alarm_for(HOME);
    tokio::select! {
        out = stage.failover.invoke(&event) => panic!("{point:?}: answered before the crash: {out:?}"),
        () = reached => stage.failover.kill_now(),
    }
    for region in held_regions {
        stage.rig.set_faults(region, &[]);
    }
    // The compare-and-swap alone made the transition: the state says epoch 1 and the
    // history has no record yet (it is written once the steps are done).
    let state = stage.world.control_item().await.expect("state written");
    assert_eq!(
        state
            .get("epoch")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("1"),
        "{point:?}: the crashed invocation made its CAS: {state:?}"
    );
    assert_eq!(stage.world.history_epochs().await, Vec::<u64>::new());

    // The dead process's lease runs out; then the work is picked up.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    match recovery {
        Recovery::RetriedAlarm => {
            stage.failover.spawn_process();
            let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
            assert_eq!(out["outcome"], "already_active", "{point:?}: {out}");
        }
        Recovery::Reconcile => {
            verifier.invoke(&json!({"command": "verify"})).await.ok();
        }
    }
    // Let the held requests of the dead process land, as they may on AWS.
    tokio::time::sleep(Duration::from_millis(HOLD_MS)).await;

    let (published, parameters) = stage.world.parameters_all(STANDBY).await;
    assert!(published, "{point:?}/{recovery:?}: {parameters:?}");
    for region in [HOME, STANDBY] {
        let refreshes = stage.world.refreshes(region).await;
        assert_eq!(
            refreshes.len(),
            1,
            "{point:?}/{recovery:?}: refreshes in {region}: {refreshes:?}"
        );
    }
    assert_eq!(stage.world.history_epochs().await, vec![1]);
    stage.failover.spawn_process();
    let status = stage
        .failover
        .invoke(&json!({"command": "status"}))
        .await
        .ok();
    assert_eq!(status["status"]["phase"], "failed_over", "{status}");
    assert_eq!(
        status["status"]["last_transition"]["completed"], true,
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_compare_and_swap_the_retried_alarm_finishes() {
    crash_and_recover(CrashPoint::AfterCompareAndSwap, Recovery::RetriedAlarm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_halfway_through_publishing_reconcile_finishes() {
    crash_and_recover(CrashPoint::HalfwayThroughPublishing, Recovery::Reconcile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_publishing_before_the_refresh_the_retried_alarm_finishes() {
    crash_and_recover(
        CrashPoint::AfterPublishingBeforeRefresh,
        Recovery::RetriedAlarm,
    )
    .await;
}
