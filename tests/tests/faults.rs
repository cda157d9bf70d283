//! The fault matrix, through the real bootstraps against the rig: a slow region, a killed
//! one, the control table, SSM and Auto Scaling throttled, InstanceRefreshInProgress that
//! will not clear, access denied. Each gives a classified, clear error, retries stay
//! bounded, the invocation ends well inside the Lambda timeout (60 s in template.yaml),
//! and whatever was left undone is finished by the verifier's reconcile once the fault
//! clears.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use regionpilot_tests::rig::Fault;
use regionpilot_tests::{Invocation, LocalFunction, Stage, alarm_for, assert_no_secrets_logged};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const GROUP_IN_STANDBY: &str = "us-west-2/app-asg";
/// CALL_TIMEOUT_MS x CALL_MAX_ATTEMPTS plus backoff bounds any one call; a whole invocation
/// makes a handful of them in sequence. Far below the 60 s Lambda timeout.
const INVOCATION_BOUND: Duration = Duration::from_secs(10);

const ENV: &[(&str, &str)] = &[
    ("CONNECT_TIMEOUT_MS", "300"),
    ("CALL_TIMEOUT_MS", "500"),
    ("CALL_MAX_ATTEMPTS", "3"),
    ("PROBE_TIMEOUT_MS", "600"),
    ("COOLDOWN_SECONDS", "0"),
    ("FAILBACK_MODE", "approve"),
];

async fn stage(label: &str) -> (Stage, LocalFunction) {
    let stage = Stage::start(label, &[HOME, STANDBY], STANDBY, 1, ENV).await;
    let verifier = stage.start_function("failback", 1, &[]).await;
    // Warm both, so the timings below are the faults' and not process start.
    stage
        .failover
        .invoke(&json!({"command": "status"}))
        .await
        .ok();
    verifier.invoke(&json!({"command": "status"})).await.ok();
    (stage, verifier)
}

async fn timed(function: &LocalFunction, payload: &Value) -> (Invocation, Duration) {
    let started = Instant::now();
    let out = function.invoke(payload).await;
    let took = started.elapsed();
    assert!(
        took < INVOCATION_BOUND,
        "{} took {took:?} (bound {INVOCATION_BOUND:?})",
        function.name
    );
    (out, took)
}

/// After the fault is cleared, the verifier's reconcile finishes what was left.
async fn reconciled(stage: &Stage, verifier: &LocalFunction, active: &str) {
    let report = verifier.invoke(&json!({"command": "verify"})).await.ok();
    let (published, parameters) = stage.world.parameters_all(active).await;
    assert!(published, "not reconciled: {parameters:?} ({report})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_control_table_is_a_retryable_error_and_changes_nothing() {
    let (stage, _verifier) = stage("fault-control-throttled").await;
    let throttled: Vec<Fault> = ["GetItem", "Query", "PutItem", "TransactWriteItems"]
        .into_iter()
        .map(|op| Fault::error(op, "ThrottlingException", 400))
        .collect();
    stage.rig.set_faults(STANDBY, &throttled);
    let (out, took) = timed(&stage.failover, &alarm_for(HOME)).await;
    stage.rig.set_faults(STANDBY, &[]);
    let (error_type, message) = out.err();
    println!("control table throttled: {error_type} after {took:?}: {message}");
    assert_eq!(error_type, "RetryableAwsError");
    assert!(message.contains("dynamodb:"), "{message}");
    assert!(message.contains("(throttled)"), "{message}");
    assert!(message.contains("[ThrottlingException]"), "{message}");
    assert!(stage.world.control_item().await.is_none(), "state written");
    assert_eq!(stage.world.parameter(STANDBY).await.as_deref(), Some(HOME));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_on_the_control_table_is_not_retryable_and_says_so() {
    let (stage, _verifier) = stage("fault-control-denied").await;
    stage.rig.set_faults(
        STANDBY,
        &[Fault::error("GetItem", "AccessDeniedException", 400)],
    );
    let (out, _) = timed(&stage.failover, &json!({"command": "status"})).await;
    stage.rig.set_faults(STANDBY, &[]);
    let (error_type, message) = out.err();
    assert_eq!(error_type, "AwsError", "{message}");
    assert!(message.contains("(access denied)"), "{message}");
    assert!(message.contains("[AccessDeniedException]"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_ssm_and_auto_scaling_leave_classified_steps_that_reconcile_finishes() {
    let (stage, verifier) = stage("fault-ssm-asg-throttled").await;
    stage.rig.set_faults(
        STANDBY,
        &[
            Fault::error("PutParameter", "ThrottlingException", 400),
            Fault::error("StartInstanceRefresh", "Throttling", 400),
        ],
    );
    let (out, took) = timed(&stage.failover, &alarm_for(HOME)).await;
    let out = out.ok();
    println!("ssm + auto scaling throttled in {STANDBY}: {took:?}");
    assert_eq!(out["outcome"], "switched", "{out}");
    let publish = &out["publish"][STANDBY];
    assert_eq!(publish["status"], "failed", "{out}");
    let error = publish["error"].as_str().unwrap();
    assert!(
        error.contains("ssm:PutParameter") && error.contains("(throttled)"),
        "{error}"
    );
    let refresh = &out["refreshes"][GROUP_IN_STANDBY];
    assert_eq!(refresh["status"], "failed", "{out}");
    let error = refresh["error"].as_str().unwrap();
    assert!(
        error.contains("(throttled)") && error.contains("[Throttling]"),
        "{error}"
    );
    // The other region's steps were not held back by this one's.
    assert_eq!(out["publish"][HOME]["status"], "published", "{out}");

    stage.rig.set_faults(STANDBY, &[]);
    reconciled(&stage, &verifier, STANDBY).await;
    let refreshes = stage.world.refreshes(STANDBY).await;
    assert_eq!(
        refreshes.len(),
        1,
        "reconcile starts the missed refresh once: {refreshes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_stays_in_progress_and_denied_parameters_are_reported_by_name() {
    let (stage, verifier) = stage("fault-in-progress-denied").await;
    stage.rig.set_faults(
        STANDBY,
        &[
            Fault::error("StartInstanceRefresh", "InstanceRefreshInProgress", 400),
            Fault::error("PutParameter", "AccessDeniedException", 400),
        ],
    );
    let (out, _) = timed(&stage.failover, &alarm_for(HOME)).await;
    let out = out.ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    let refresh_error = out["refreshes"][GROUP_IN_STANDBY]["error"]
        .as_str()
        .unwrap();
    assert!(
        refresh_error.contains("(instance refresh in progress)")
            && refresh_error.contains("[InstanceRefreshInProgress]"),
        "{refresh_error}"
    );
    let publish_error = out["publish"][STANDBY]["error"].as_str().unwrap();
    assert!(
        publish_error.contains("(access denied)")
            && publish_error.contains("[AccessDeniedException]"),
        "{publish_error}"
    );
    // Status says what is out of step until the faults clear.
    let status = stage
        .failover
        .invoke(&json!({"command": "status"}))
        .await
        .ok();
    assert_eq!(
        status["status"]["parameters"][STANDBY]["in_sync"], false,
        "{status}"
    );
    stage.rig.set_faults(STANDBY, &[]);
    reconciled(&stage, &verifier, STANDBY).await;
    assert_no_secrets_logged(&stage.failover);
    assert_no_secrets_logged(&verifier);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_is_logged_even_at_trace_level() {
    // The most verbose logging an operator could turn on, through failures and retries.
    let mut env = ENV.to_vec();
    env.push(("RUST_LOG", "trace"));
    let stage = Stage::start("fault-trace-logs", &[HOME, STANDBY], STANDBY, 1, &env).await;
    stage.rig.set_faults(
        STANDBY,
        &[Fault::error("PutParameter", "ThrottlingException", 400)],
    );
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    assert!(
        stage.failover.log_text().lines().count() > 50,
        "trace logging was not on"
    );
    assert_no_secrets_logged(&stage.failover);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_region_costs_at_most_its_deadline_and_a_killed_one_is_refused_fast() {
    let (mut stage, verifier) = stage("fault-slow-killed").await;
    // Home answers, but slower than any deadline: as good as frozen to the caller.
    stage.rig.set_faults(HOME, &[Fault::latency("*", 1500)]);
    let (out, took) = timed(&stage.failover, &alarm_for(HOME)).await;
    let out = out.ok();
    println!("slow home (1.5 s per call): switched in {took:?}");
    assert_eq!(out["outcome"], "switched", "{out}");
    assert!(
        took < Duration::from_millis(600 + 1000),
        "a slow failing region held the decision for {took:?}"
    );
    assert!(
        out["publish"][HOME]["error"]
            .as_str()
            .unwrap()
            .contains("deadline"),
        "{out}"
    );
    stage.rig.set_faults(HOME, &[]);
    reconciled(&stage, &verifier, STANDBY).await;

    // Standby slow but within its deadlines: the switch back still completes.
    stage.rig.set_faults(STANDBY, &[Fault::latency("*", 150)]);
    let (out, took) = timed(
        &stage.failover,
        &json!({"command": "failback", "reason": "slow standby"}),
    )
    .await;
    println!("slow standby (150 ms per call): failback in {took:?}");
    assert_eq!(out.ok()["outcome"], "switched");
    stage.rig.set_faults(STANDBY, &[]);

    // Home killed: connections refused, so the probe reports it at once and failover goes.
    stage.rig.kill(HOME).await;
    let probe = stage.start_function("health-probe", 1, &[]).await;
    let report = probe.invoke(&json!({"command": "probe"})).await.ok();
    assert_eq!(report["regions"][HOME]["healthy"], false, "{report}");
    assert_eq!(
        report["regions"][HOME]["error_class"], "connection_refused",
        "{report}"
    );
    let (out, took) = timed(&stage.failover, &alarm_for(HOME)).await;
    let out = out.ok();
    println!("killed home: switched in {took:?}");
    assert_eq!(out["outcome"], "switched", "{out}");
    assert_eq!(out["publish"][STANDBY]["status"], "published", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_resources_are_named_with_their_region() {
    let mut env = ENV.to_vec();
    env.push(("CONTROL_TABLE", "no-such-control-table"));
    env.push(("HEALTH_TABLE", "no-such-health-table"));
    let stage = Stage::start("fault-missing", &[HOME, STANDBY], STANDBY, 1, &env).await;
    // The control table: named, called the control table, with its region.
    let (error_type, message) = stage
        .failover
        .invoke(&json!({"command": "status"}))
        .await
        .err();
    assert_eq!(error_type, "AwsError", "{message}");
    assert!(
        message.contains(&format!(
            "on the control table no-such-control-table in {STANDBY} failed (not found)"
        )),
        "{message}"
    );
    // The health table, per region, in a dry run's pre-flight probes.
    let probe = stage.start_function("health-probe", 1, &[]).await;
    let out = probe.invoke(&json!({"command": "probe"})).await.ok();
    for region in [HOME, STANDBY] {
        let error = out["regions"][region]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!(
                "on the health table no-such-health-table in {region}"
            )),
            "{region}: {error}"
        );
    }
}

/// Home frozen, an alarm, and the control state's `PutItem` carried out by the rig and
/// then answered as `fault` says: the same invocation switches and carries out every step.
async fn a_landed_state_write_that_failed(label: &str, fault: Fault) {
    let (stage, _verifier) = stage(label).await;
    stage.rig.freeze(HOME);
    stage.rig.set_faults(STANDBY, &[fault]);
    let (out, took) = timed(&stage.failover, &alarm_for(HOME)).await;
    stage.rig.set_faults(STANDBY, &[]);
    stage.rig.thaw(HOME);
    let out = out.ok();
    println!("{label}: {} in {took:?}", out["outcome"]);
    assert_eq!(out["outcome"], "switched", "{out}");
    assert_eq!(out["to"], STANDBY, "{out}");
    assert_eq!(out["publish"][STANDBY]["status"], "published", "{out}");
    assert_eq!(
        out["refreshes"][GROUP_IN_STANDBY]["status"], "started",
        "{out}"
    );
    assert_eq!(stage.world.history_epochs().await, vec![1]);
    assert_eq!(
        stage.world.parameter(STANDBY).await.as_deref(),
        Some(STANDBY)
    );
    assert_eq!(stage.world.refreshes(STANDBY).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_write_applied_and_answered_500_switches_in_the_same_invocation() {
    a_landed_state_write_that_failed("fault-applied-500", Fault::applied_then_500("PutItem", 1))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_write_applied_and_answered_after_the_timeout_switches_in_the_same_invocation() {
    // Held past CALL_TIMEOUT_MS (500): the SDK gives up on the attempt and retries it.
    a_landed_state_write_that_failed(
        "fault-applied-held",
        Fault::applied_then_held("PutItem", 900, 1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_duplicate_alarms_with_state_writes_applied_and_failed_make_one_transition() {
    let stage = Stage::start("fault-applied-storm", &[HOME, STANDBY], STANDBY, 4, ENV).await;
    stage.rig.freeze(HOME);
    stage
        .rig
        .set_faults(STANDBY, &[Fault::applied_then_500("PutItem", 5)]);
    let alarm = alarm_for(HOME);
    let results = futures::future::join_all((0..20).map(|_| stage.failover.invoke(&alarm))).await;
    stage.rig.set_faults(STANDBY, &[]);
    stage.rig.thaw(HOME);
    let outcomes: Vec<String> = results
        .into_iter()
        .map(|r| r.ok()["outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    let switched = outcomes.iter().filter(|o| *o == "switched").count();
    println!("storm with applied-then-500 state writes: {outcomes:?}");
    assert_eq!(switched, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| o == "switched" || o == "already_active"),
        "{outcomes:?}"
    );
    assert_eq!(stage.world.history_epochs().await, vec![1]);
    assert_eq!(stage.world.refreshes(STANDBY).await.len(), 1);
}
