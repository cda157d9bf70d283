//! The real failback bootstrap (with the failover one) against the rig.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use regionpilot_tests::{LocalFunction, Stage, alarm_for, fixture};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

/// Thresholds small by config so the tests stay quick.
const QUICK: &[(&str, &str)] = &[
    ("CONNECT_TIMEOUT_MS", "300"),
    ("CALL_TIMEOUT_MS", "500"),
    ("CALL_MAX_ATTEMPTS", "2"),
    ("PROBE_TIMEOUT_MS", "500"),
    ("COOLDOWN_SECONDS", "0"),
    ("FAILBACK_HEALTHY_CHECKS", "3"),
    ("FAILBACK_MIN_HOLD_SECONDS", "0"),
    ("FAILBACK_MAX_LAG_SECONDS", "2"),
    ("FAILBACK_DRAIN_WAIT_SECONDS", "2"),
];

async fn stage(label: &str, mode: &str) -> (Stage, LocalFunction) {
    let mut env = QUICK.to_vec();
    env.push(("FAILBACK_MODE", mode));
    let stage = Stage::start(label, &[HOME, STANDBY], STANDBY, 1, &env).await;
    let verifier = stage.start_function("failback", 1, &[]).await;
    (stage, verifier)
}

/// Home frozen, the alarm fails over, home thawed.
async fn outage_and_recovery(stage: &Stage) {
    stage.rig.freeze(HOME);
    let out = stage
        .failover
        .invoke(&fixture("alarm-direct.json"))
        .await
        .ok();
    stage.rig.thaw(HOME);
    assert_eq!(out["outcome"], "switched", "{out}");
}

async fn verify(verifier: &LocalFunction) -> Value {
    verifier.invoke(&fixture("command-verify.json")).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_fails_back_exactly_once_after_the_streak() {
    let (stage, verifier) = stage("failback-auto", "auto").await;
    outage_and_recovery(&stage).await;
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(
            verify(&verifier).await["outcome"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        outcomes,
        ["waiting", "waiting", "failed_back", "home", "home"]
    );
    assert_eq!(stage.world.history_epochs().await, vec![1, 2]);
    let (published, params) = stage.world.parameters_all(HOME).await;
    assert!(published, "{params:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_mode_waits_for_the_failback_command() {
    let (stage, verifier) = stage("failback-approve", "approve").await;
    outage_and_recovery(&stage).await;
    for _ in 0..3 {
        verify(&verifier).await;
    }
    let ready = verify(&verifier).await;
    assert_eq!(ready["outcome"], "ready", "{ready}");
    assert_eq!(ready["active_region"], STANDBY);
    let status = verifier.invoke(&json!({"command": "status"})).await.ok();
    assert_eq!(status["status"]["failback"]["ready"], true, "{status}");
    assert_eq!(status["status"]["phase"], "failed_over");
    assert_eq!(stage.world.history_epochs().await, vec![1]);

    let out = stage
        .failover
        .invoke(&fixture("command-failback.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "switched");
    assert_eq!(out["to"], HOME);
    assert_eq!(verify(&verifier).await["outcome"], "home");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_replication_holds_failback_until_it_resumes_and_drains() {
    let (stage, verifier) = stage("failback-drain", "auto").await;
    outage_and_recovery(&stage).await;
    stage.rig.set_replication(STANDBY, HOME, 0.0, true);
    for _ in 0..4 {
        let out = verify(&verifier).await;
        assert_ne!(out["outcome"], "failed_back", "{out}");
    }
    let out = verify(&verifier).await;
    assert!(
        out["reason"].as_str().unwrap().contains("not drained"),
        "{out}"
    );
    stage.rig.set_replication(STANDBY, HOME, 0.0, false);
    let out = verify(&verifier).await;
    assert_eq!(out["outcome"], "failed_back", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_home_region_pauses_automation_after_the_limit() {
    let mut env = QUICK.to_vec();
    env.push(("MAX_AUTOMATIC_SWITCHES_PER_DAY", "2"));
    let stage = Stage::start("flapping", &[HOME, STANDBY], STANDBY, 1, &env).await;
    let back = alarm_for(STANDBY);
    let away = fixture("alarm-direct.json");
    assert_eq!(
        stage.failover.invoke(&away).await.ok()["outcome"],
        "switched"
    );
    assert_eq!(
        stage.failover.invoke(&back).await.ok()["outcome"],
        "switched"
    );
    let third = stage.failover.invoke(&away).await.ok();
    assert_eq!(third["outcome"], "ignored", "{third}");
    assert!(
        third["reason"].as_str().unwrap().contains("flap guard"),
        "{third}"
    );
    let status = stage
        .failover
        .invoke(&fixture("command-status.json"))
        .await
        .ok();
    assert_eq!(status["status"]["paused"]["by"], "flap-guard", "{status}");
    assert_eq!(stage.world.history_epochs().await, vec![1, 2]);
    assert!(
        stage.failover.log_text().contains("\"FlapGuardPaused\""),
        "no metric emitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_changed_by_hand_is_repaired_and_reported_as_drift() {
    let (stage, verifier) = stage("drift", "approve").await;
    stage
        .world
        .client(STANDBY)
        .ssm
        .put_parameter()
        .name(regionpilot_tests::world::PARAMETER)
        .value("us-west-2")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let out = verify(&verifier).await;
    let drift = out["reconcile"]["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{out}");
    assert!(drift[0].as_str().unwrap().starts_with(STANDBY), "{out}");
    assert_eq!(out["reconcile"]["fixed"].as_array().unwrap().len(), 1);
    assert_eq!(stage.world.parameter(STANDBY).await.as_deref(), Some(HOME));
    let again = verify(&verifier).await;
    assert!(
        again["reconcile"]["drift"].as_array().unwrap().is_empty(),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_down_during_the_transition_is_brought_in_line_when_it_returns() {
    let (stage, verifier) = stage("down-during", "approve").await;
    outage_and_recovery(&stage).await;
    // Home missed its refresh while frozen (the deadline cut it off).
    assert!(stage.world.refreshes(HOME).await.is_empty());
    let out = verify(&verifier).await;
    let fixed: Vec<&str> = out["reconcile"]["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        fixed
            .iter()
            .any(|f| f.starts_with(&format!("{HOME}/app-asg"))),
        "{out}"
    );
    assert_eq!(stage.world.refreshes(HOME).await.len(), 1);
    assert_eq!(stage.world.parameter(HOME).await.as_deref(), Some(STANDBY));
    let status = stage
        .failover
        .invoke(&fixture("command-status.json"))
        .await
        .ok();
    assert_eq!(
        status["status"]["last_transition"]["refreshes"][format!("{HOME}/app-asg")]["status"],
        "started",
        "{status}"
    );
}
