//! Readiness through the real failback bootstrap against the rig: the verifier evaluates
//! whether a failover would work now, and `status` shows each check with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use regionpilot_tests::{LocalFunction, Stage, fixture};
use serde_json::Value;

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const GROUP: &str = regionpilot_tests::world::GROUP;

const ENV: &[(&str, &str)] = &[
    ("CONNECT_TIMEOUT_MS", "300"),
    ("CALL_TIMEOUT_MS", "500"),
    ("CALL_MAX_ATTEMPTS", "2"),
    ("PROBE_TIMEOUT_MS", "500"),
    ("FAILBACK_MAX_LAG_SECONDS", "2"),
    ("FAILBACK_DRAIN_WAIT_SECONDS", "2"),
    // Every verifier run evaluates, so the test sees each change at once.
    ("READINESS_INTERVAL_SECONDS", "0"),
];

async fn verify(verifier: &LocalFunction) -> Value {
    verifier.invoke(&fixture("command-verify.json")).await.ok()
}

/// `(check, subject)` of every failing check.
fn failing(readiness: &Value) -> Vec<(String, String)> {
    readiness["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_owned(),
                c["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn reason<'a>(readiness: &'a Value, check: &str, subject: &str) -> &'a str {
    readiness["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == check && c["subject"] == subject)
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_else(|| panic!("no {check} check of {subject}: {readiness}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_standby_too_small_for_a_failover_as_the_one_failing_check() {
    // Given home serving with 4 and a standby whose MaxSize is 2
    let stage = Stage::start_with(
        "readiness",
        &[HOME, STANDBY],
        STANDBY,
        1,
        ENV,
        &[],
        &[(HOME, 1, 4, 8), (STANDBY, 1, 1, 2)],
    )
    .await;
    let verifier = stage.start_function("failback", 1, &[]).await;
    let standby_group = format!("{STANDBY}/{GROUP}");
    // Three vantage points, each region judged by two: the control stack's probe, home's
    // regional stack's and a vantage stack's in a third region.
    let vantage_points = [
        stage.start_function("health-probe", 1, &[]).await,
        stage.start_vantage_point(HOME).await,
        stage.start_vantage_point("ca-central-1").await,
    ];
    for probe in &vantage_points {
        probe
            .invoke(&serde_json::json!({"command": "probe"}))
            .await
            .ok();
    }

    // When the verifier runs
    let out = verify(&verifier).await;
    let run = &out["readiness"];
    assert_eq!(run["ready"], false, "{out}");
    assert_eq!(
        run["changed"], true,
        "the first evaluation is a change: {out}"
    );

    // Then `status` shows readiness with exactly that check failing, and why
    let status = stage
        .failover
        .invoke(&fixture("command-status.json"))
        .await
        .ok();
    let readiness = &status["status"]["readiness"];
    println!(
        "status.readiness:\n{}",
        serde_json::to_string_pretty(readiness).unwrap()
    );
    assert_eq!(readiness["ready"], false, "{status}");
    assert_eq!(readiness["evaluated_at"], run["evaluated_at"]);
    assert_eq!(readiness["active_region"], HOME);
    assert_eq!(
        failing(readiness),
        [("group_capacity".to_owned(), standby_group.clone())]
    );
    assert_eq!(
        reason(readiness, "group_capacity", &standby_group),
        format!(
            "{standby_group}: MaxSize 2 is below the 4 a failover to {STANDBY} would ask for (CAPACITY_PERCENT 100 of {HOME}/{GROUP}'s desired 4)"
        )
    );
    // The others pass against the rig: the parameter, both canaries, replication both
    // ways, and the control table's point-in-time recovery (DescribeContinuousBackups).
    let passed: Vec<(&str, &str)> = readiness["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == true)
        .map(|c| (c["check"].as_str().unwrap(), c["subject"].as_str().unwrap()))
        .collect();
    let home_group = format!("{HOME}/{GROUP}");
    let table = format!("{STANDBY}/{}", regionpilot_tests::world::CONTROL_TABLE);
    assert_eq!(
        passed,
        [
            ("parameter", HOME),
            ("parameter", STANDBY),
            ("group_capacity", home_group.as_str()),
            ("canary", HOME),
            ("canary", STANDBY),
            ("replication_lag", "us-east-1->us-west-2"),
            ("replication_lag", "us-west-2->us-east-1"),
            ("control_table_pitr", table.as_str()),
            ("vantage_points", HOME),
            ("vantage_points", STANDBY),
        ],
        "{readiness}"
    );
    assert_eq!(
        reason(readiness, "vantage_points", HOME),
        "2 vantage points can judge us-east-1 (ca-central-1, us-west-2); a quorum is 2"
    );
    assert!(
        verifier.log_text().contains("\"Ready\":0.0"),
        "no Ready 0 metric in the verifier's log"
    );

    // When MaxSize is raised to cover a failover, the next run is ready, and says it changed
    stage.world.set_group_max(STANDBY, 4).await;
    let out = verify(&verifier).await;
    assert_eq!(out["readiness"]["ready"], true, "{out}");
    assert_eq!(out["readiness"]["changed"], true, "{out}");
    assert_eq!(verify(&verifier).await["readiness"]["changed"], false);
    assert!(verifier.log_text().contains("\"Ready\":1.0"));

    // And with point-in-time recovery off, only the control table's check fails
    stage.world.set_control_table_pitr(false).await;
    let out = verify(&verifier).await;
    let readiness = &out["readiness"];
    assert_eq!(
        failing(readiness),
        [("control_table_pitr".to_owned(), table.clone())],
        "{out}"
    );
    assert!(
        reason(readiness, "control_table_pitr", &table)
            .contains("point-in-time recovery is off for the control table"),
        "{out}"
    );
}
