//! A control plane in every application region, sharing one control table that the rig
//! emulates as a DynamoDB global table with multi-Region strong consistency (MRSC): the
//! real failover bootstraps run once per region (`AWS_REGION`), each talking to its own
//! region's endpoint, and the compare-and-swap alone decides who acts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use futures::future::join_all;
use regionpilot_tests::world::CONTROL_TABLE;
use regionpilot_tests::{LocalFunction, Stage, alarm_for};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-east-2";

const ENV: &[(&str, &str)] = &[
    ("CONNECT_TIMEOUT_MS", "300"),
    ("CALL_TIMEOUT_MS", "500"),
    ("CALL_MAX_ATTEMPTS", "3"),
    ("PROBE_TIMEOUT_MS", "500"),
    ("COOLDOWN_SECONDS", "0"),
    ("FAILBACK_MODE", "approve"),
];

/// The rig with an MRSC control table across both regions, and a failover function in
/// each (the stage's own runs in `HOME`).
async fn two_control_planes(label: &str, concurrency: usize) -> (Stage, LocalFunction) {
    let regions = format!("{HOME},{STANDBY}");
    let rig_env = [
        ("RIG_MRSC_TABLES", CONTROL_TABLE),
        ("RIG_MRSC_REGIONS", regions.as_str()),
    ];
    let stage = Stage::start_with(
        label,
        &[HOME, STANDBY],
        HOME,
        concurrency,
        ENV,
        &rig_env,
        &[],
    )
    .await;
    let standby_plane = stage
        .start_function("failover", concurrency, &[("AWS_REGION", STANDBY)])
        .await;
    (stage, standby_plane)
}

fn outcome(v: &Value) -> String {
    v["outcome"].as_str().unwrap_or("?").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_alarms_in_two_regions_makes_exactly_one_transition() {
    let (stage, standby_plane) = two_control_planes("control-storm", 4).await;
    // Ten deliveries of home's alarm to each region's failover function, all at once.
    let alarm = alarm_for(HOME);
    let calls = (0..10)
        .flat_map(|_| [&stage.failover, &standby_plane])
        .map(|f| {
            let alarm = alarm.clone();
            async move { f.invoke(&alarm).await.ok() }
        });
    let answers = join_all(calls).await;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for a in &answers {
        *outcomes.entry(outcome(a)).or_default() += 1;
        assert_eq!(a["epoch"], 1, "{a}");
        assert_eq!(a["active_region"], STANDBY, "{a}");
    }
    assert_eq!(outcomes.get("switched"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.get("already_active"), Some(&19), "{outcomes:?}");
    assert_eq!(stage.world.history_epochs().await, vec![1]);

    // Both control planes read the same state, each through its own region.
    for (plane, region) in [(&stage.failover, HOME), (&standby_plane, STANDBY)] {
        let status = plane.invoke(&json!({"command": "status"})).await.ok();
        assert_eq!(status["active_region"], STANDBY, "{status}");
        assert_eq!(status["epoch"], 1);
        let by = &status["status"]["answered_by"];
        assert_eq!(by["region"], region, "{status}");
        assert_eq!(by["strongly_consistent"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_surviving_region_brings_the_application_home_after_the_standby_is_lost() {
    let (stage, standby_plane) = two_control_planes("control-loss", 1).await;
    // Home fails; the standby's control plane fails over (home's cannot answer).
    stage.rig.freeze(HOME);
    let out = standby_plane.invoke(&alarm_for(HOME)).await.ok();
    assert_eq!(outcome(&out), "switched", "{out}");
    stage.rig.thaw(HOME);

    // Before the failback, the standby region is lost with its control plane.
    stage.rig.freeze(STANDBY);
    let out = stage
        .failover
        .invoke(&json!({"command": "failback", "reason": "standby lost; home is back"}))
        .await
        .ok();
    assert_eq!(outcome(&out), "switched", "{out}");
    assert_eq!(out["active_region"], HOME);
    assert_eq!(out["epoch"], 2);
    assert_eq!(out["publish"][HOME]["status"], "published", "{out}");
    stage.rig.thaw(STANDBY);
    assert_eq!(stage.world.history_epochs().await, vec![1, 2]);
    let report = stage
        .failover
        .invoke(&json!({"command": "report", "epoch": 2}))
        .await
        .ok();
    assert_eq!(report["report"]["trigger"]["kind"], "manual", "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_region_never_acts_on_a_stale_read() {
    let (stage, standby_plane) = two_control_planes("control-isolated", 1).await;
    // The standby is cut off from the majority: its control plane cannot read the state
    // strongly, so it refuses to act, with a classified error; nothing changes.
    stage.rig.isolate(STANDBY, true);
    let (error_type, message) = standby_plane
        .invoke(&json!({"command": "failover", "target_region": STANDBY}))
        .await
        .err();
    assert_eq!(error_type, "RetryableAwsError", "{message}");
    assert!(message.contains("the control table"), "{message}");
    // Its status still answers, from an eventually consistent read, and says so.
    let status = standby_plane
        .invoke(&json!({"command": "status"}))
        .await
        .ok();
    let by = &status["status"]["answered_by"];
    assert_eq!(by["region"], STANDBY, "{status}");
    assert_eq!(by["strongly_consistent"], false, "{status}");
    assert!(by["stale_because"].is_string(), "{status}");
    stage.rig.isolate(STANDBY, false);
    let status = stage
        .failover
        .invoke(&json!({"command": "status"}))
        .await
        .ok();
    assert_eq!(status["epoch"], 0, "{status}");
    assert_eq!(status["active_region"], HOME);
}
