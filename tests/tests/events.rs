//! Operators hear of it: the real bootstraps put their events on the rig's EventBridge,
//! and a rule delivers them to an SQS queue that the test reads, as a subscriber would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use regionpilot_tests::events::EventCapture;
use regionpilot_tests::rig::Fault;
use regionpilot_tests::{LocalFunction, Stage, alarm_for, fixture};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const WAIT: Duration = Duration::from_secs(10);

const ENV: &[(&str, &str)] = &[
    ("CONNECT_TIMEOUT_MS", "300"),
    ("CALL_TIMEOUT_MS", "500"),
    ("CALL_MAX_ATTEMPTS", "2"),
    ("PROBE_TIMEOUT_MS", "500"),
    ("COOLDOWN_SECONDS", "0"),
    ("FAILBACK_MODE", "approve"),
    ("FAILBACK_HEALTHY_CHECKS", "2"),
    ("FAILBACK_MIN_HOLD_SECONDS", "0"),
    ("FAILBACK_MAX_LAG_SECONDS", "2"),
    ("FAILBACK_DRAIN_WAIT_SECONDS", "2"),
    ("MAX_AUTOMATIC_SWITCHES_PER_DAY", "2"),
    ("APP_NAME", "shop"),
];

async fn stage(label: &str) -> (Stage, LocalFunction, EventCapture) {
    let stage = Stage::start(label, &[HOME, STANDBY], STANDBY, 1, ENV).await;
    let verifier = stage.start_function("failback", 1, &[]).await;
    let capture = EventCapture::subscribe(&stage).await;
    (stage, verifier, capture)
}

async fn fail_over(stage: &Stage) -> Value {
    stage.rig.freeze(HOME);
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    stage.rig.thaw(HOME);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_failback_ready_and_the_flap_guard_reach_a_subscriber() {
    let (stage, verifier, mut capture) = stage("events").await;

    // A switch.
    assert_eq!(fail_over(&stage).await["outcome"], "switched");
    let received = capture.until("Region Switch", WAIT).await.to_vec();
    let switch = received
        .iter()
        .find(|e| e.detail_type == "Region Switch")
        .expect("a Region Switch event");
    assert_eq!(switch.source, "regionpilot");
    let d = &switch.detail;
    assert_eq!(d["outcome"], "switched", "{d}");
    assert_eq!(
        (d["epoch"].as_u64(), d["from"].as_str(), d["to"].as_str()),
        (Some(1), Some(HOME), Some(STANDBY))
    );
    assert_eq!(d["app"], "shop");
    assert_eq!(d["trigger"]["kind"], "alarm");
    assert_eq!(
        d["trigger"]["alarm_name"],
        format!("regionpilot-unhealthy-{HOME}")
    );
    assert_eq!(d["forced"], false);
    assert_eq!(d["data_loss_window"]["region"], HOME);
    // Home was frozen: its publish is told as failed (reconcile finishes it), the
    // standby's as done.
    let steps = d["steps"].as_array().expect("steps");
    let publish = |region: &str| {
        steps
            .iter()
            .find(|s| s["step"] == "publish" && s["key"] == region)
            .unwrap_or_else(|| panic!("no publish step for {region}: {steps:?}"))
            .clone()
    };
    assert_eq!(publish(STANDBY)["ok"], true);
    assert_eq!(publish(HOME)["ok"], false);
    assert!(
        publish(HOME)["outcome"]
            .as_str()
            .unwrap()
            .contains("publish failed"),
        "{steps:?}"
    );

    // Failback ready, once, with how to approve it.
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let out = verifier.invoke(&fixture("command-verify.json")).await.ok();
        outcomes.push(out["outcome"].as_str().unwrap_or("?").to_owned());
    }
    assert_eq!(outcomes, ["waiting", "ready", "ready"]);
    capture.until("Failback Ready", WAIT).await;
    let ready = capture.of("Failback Ready").await;
    assert_eq!(ready.len(), 1, "{ready:?}");
    assert_eq!(ready[0].detail["home_region"], HOME);
    assert_eq!(ready[0].detail["approve"]["command"], "failback");

    // The flap guard: a second automatic switch, then a third alarm pauses automation.
    let back = stage
        .failover
        .invoke(&json!({"command": "failback", "reason": "approved"}))
        .await
        .ok();
    assert_eq!(back["outcome"], "switched", "{back}");
    assert_eq!(fail_over(&stage).await["outcome"], "switched");
    let guarded = stage.failover.invoke(&alarm_for(STANDBY)).await.ok();
    assert_eq!(guarded["outcome"], "ignored", "{guarded}");
    capture.until("Flap Guard Paused", WAIT).await;
    let paused = capture.of("Flap Guard Paused").await;
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert!(
        paused[0].detail["reason"]
            .as_str()
            .unwrap()
            .contains("flap guard")
    );
    assert_eq!(paused[0].detail["limit"], 2);
    // Three switches in all, each told once.
    let switches: Vec<u64> = capture
        .of("Region Switch")
        .await
        .iter()
        .filter_map(|e| e.detail["epoch"].as_u64())
        .collect();
    assert_eq!(switches, [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_bus_refuses_is_held_and_delivered_by_the_next_verifier_run() {
    let (stage, verifier, mut capture) = stage("events-held").await;
    stage.rig.set_faults(
        STANDBY,
        &[Fault::error("PutEvents", "InternalException", 500)],
    );

    // The switch is made as if the bus were fine.
    assert_eq!(fail_over(&stage).await["outcome"], "switched");
    assert!(
        capture
            .until("Region Switch", Duration::from_secs(2))
            .await
            .is_empty()
    );

    // Still failing: the verifier keeps it.
    let out = verifier.invoke(&fixture("command-verify.json")).await.ok();
    assert_eq!(
        out["held_events"],
        json!({"delivered": 0, "still_held": 1}),
        "{out}"
    );

    // That run repaired home's parameter and made its first readiness evaluation: their
    // Drift Repaired and Readiness Changed were held too. The bus is back: the next run
    // delivers all three, once.
    stage.rig.set_faults(STANDBY, &[]);
    let out = verifier.invoke(&fixture("command-verify.json")).await.ok();
    assert_eq!(
        out["held_events"],
        json!({"delivered": 3, "still_held": 0}),
        "{out}"
    );
    capture.until("Drift Repaired", WAIT).await;
    assert_eq!(capture.of("Drift Repaired").await.len(), 1);
    capture.until("Readiness Changed", WAIT).await;
    assert_eq!(capture.of("Readiness Changed").await.len(), 1);
    capture.until("Region Switch", WAIT).await;
    let out = verifier.invoke(&fixture("command-verify.json")).await.ok();
    assert_eq!(out["held_events"]["delivered"], 0, "{out}");
    let switches = capture.of("Region Switch").await;
    assert_eq!(switches.len(), 1, "{switches:?}");
    assert_eq!(switches[0].detail["id"], "switch-1");
    assert_eq!(switches[0].detail["epoch"], 1);
    assert!(
        stage
            .failover
            .log_text()
            .contains("event held in the control table")
    );
}
