//! The real failover bootstrap, through the Lambda Runtime API, against the rig.
//! `cargo test --workspace` builds the bootstraps these tests run (scripts/test does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::future::join_all;
use regionpilot_tests::{Stage, fixture, paths};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

/// Short timeouts so a frozen region costs little; the bound below is derived from them.
const FAST: &[(&str, &str)] = &[
    ("CONNECT_TIMEOUT_MS", "300"),
    ("CALL_TIMEOUT_MS", "500"),
    ("CALL_MAX_ATTEMPTS", "2"),
    ("PROBE_TIMEOUT_MS", "500"),
];

async fn stage(label: &str, concurrency: usize) -> Stage {
    Stage::start(label, &[HOME, STANDBY], STANDBY, concurrency, FAST).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alarm_trigger_kind_from_events_fails_over() {
    for file in [
        "alarm-direct.json",
        "alarm-eventbridge.json",
        "alarm-sns.json",
    ] {
        let stage = stage("trigger", 1).await;
        let out = stage.failover.invoke(&fixture(file)).await.ok();
        assert_eq!(out["outcome"], "switched", "{file}: {out}");
        assert_eq!(out["from"], HOME, "{file}");
        assert_eq!(out["to"], STANDBY, "{file}");
        assert_eq!(out["epoch"], 1, "{file}");
        let (published, params) = stage.world.parameters_all(STANDBY).await;
        assert!(published, "{file}: {params:?}");
        for region in [HOME, STANDBY] {
            let refreshes = stage.world.refreshes(region).await;
            assert_eq!(refreshes.len(), 1, "{file}: one refresh in {region}");
            let prefs = refreshes[0].preferences.clone().expect("preferences");
            assert_eq!(prefs.min_healthy_percentage, Some(90));
            assert_eq!(prefs.instance_warmup, Some(60));
            assert_eq!(prefs.skip_matching, Some(false));
        }
        assert_eq!(stage.world.history_epochs().await, vec![1], "{file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suppressed_composite_alarm_through_eventbridge_switches_nothing() {
    let stage = stage("suppressed", 1).await;
    let out = stage
        .failover
        .invoke(&fixture("alarm-eventbridge-suppressed.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "ignored", "{out}");
    assert_eq!(out["actions_suppressed_by"], "WaitPeriod", "{out}");
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("suppressed by WaitPeriod"),
        "{out}"
    );
    assert!(stage.world.control_item().await.is_none(), "state written");
    assert!(stage.world.history_epochs().await.is_empty());
    assert_eq!(stage.world.parameter(STANDBY).await.as_deref(), Some(HOME));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_variable_at_init_reaches_the_invoker_through_the_init_error_path() {
    let stage = stage("init-error", 1).await;
    for binary in ["failover", "failback", "health-probe"] {
        let function = stage
            .start_function(binary, 1, &[("COOLDOWN_SECONDS", "soon")])
            .await;
        let (error_type, message) = function
            .invoke_within(&json!({"command": "status"}), Duration::from_secs(20))
            .await
            .err();
        assert_eq!(error_type, "ConfigurationError", "{binary}: {message}");
        assert!(message.contains("COOLDOWN_SECONDS"), "{binary}: {message}");
        let reported = function.init_errors().await;
        assert_eq!(reported.len(), 1, "{binary}: {reported:?}");
        let body: Value = serde_json::from_str(&reported[0]).unwrap();
        assert_eq!(body["errorType"], "ConfigurationError", "{binary}");
        // The log line stays.
        assert!(
            function.log_text().contains("COOLDOWN_SECONDS"),
            "{binary}: not logged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_alarm_and_manual_commands_follow_their_contracts() {
    let stage = stage("commands", 1).await;
    let f = &stage.failover;

    let out = f.invoke(&fixture("alarm-direct-ok.json")).await.ok();
    assert_eq!(out["outcome"], "ignored");
    assert!(
        out["reason"].as_str().unwrap().contains("only ALARM acts"),
        "{out}"
    );

    let out = f
        .invoke(&fixture("command-failover-dry-run.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "dry_run");
    assert_eq!(out["to"], STANDBY);
    assert_eq!(out["plan"]["parameters"].as_array().unwrap().len(), 2);
    assert_eq!(out["plan"]["auto_scaling_groups"][0]["region"], STANDBY);
    assert!(
        stage.world.control_item().await.is_none(),
        "dry run wrote state"
    );

    let out = f.invoke(&fixture("command-pause.json")).await.ok();
    assert_eq!(out["outcome"], "paused");
    let out = f.invoke(&fixture("alarm-direct.json")).await.ok();
    assert_eq!(out["outcome"], "ignored");
    assert!(out["reason"].as_str().unwrap().contains("paused"), "{out}");
    assert_eq!(stage.world.parameter(HOME).await.as_deref(), Some(HOME));

    // While paused, only a forced manual command switches.
    let out = f.invoke(&fixture("command-failover.json")).await.ok();
    assert_eq!(out["outcome"], "ignored", "{out}");
    assert!(
        out["reason"].as_str().unwrap().contains("\"force\": true"),
        "{out}"
    );
    assert!(
        stage.world.history_epochs().await.is_empty(),
        "switched while paused"
    );
    let out = f.invoke(&fixture("command-failover-force.json")).await.ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    assert_eq!(out["publish"][HOME]["status"], "published");
    assert!(
        out["refreshes"][format!("{STANDBY}/app-asg")]["id"].is_string(),
        "{out}"
    );

    let out = f.invoke(&fixture("command-failover.json")).await.ok();
    assert_eq!(out["outcome"], "already_active");

    let out = f.invoke(&fixture("command-status.json")).await.ok();
    assert_eq!(out["outcome"], "status");
    assert_eq!(out["status"]["active_region"], STANDBY);
    assert_eq!(out["status"]["paused"]["reason"], "maintenance window");
    assert_eq!(out["status"]["parameters"][HOME]["in_sync"], true);
    assert_eq!(out["status"]["history"][0]["epoch"], 1);

    let out = f.invoke(&fixture("command-resume.json")).await.ok();
    assert_eq!(out["outcome"], "resumed");

    let out = f.invoke(&fixture("command-failback.json")).await.ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    assert_eq!(out["to"], HOME);
    assert_eq!(out["epoch"], 2);
    assert_eq!(stage.world.history_epochs().await, vec![1, 2]);
    let (published, params) = stage.world.parameters_all(HOME).await;
    assert!(published, "{params:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_storm_of_twenty_concurrent_alarms_makes_one_transition() {
    // Four bootstrap processes take deliveries concurrently, as Lambda would scale out.
    let stage = stage("storm", 4).await;
    let alarm = fixture("alarm-direct.json");
    let deliveries = 20;
    let results = join_all((0..deliveries).map(|_| stage.failover.invoke(&alarm))).await;
    let outcomes: Vec<String> = results
        .into_iter()
        .map(|r| r.ok()["outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    let switched = outcomes.iter().filter(|o| *o == "switched").count();
    let already = outcomes.iter().filter(|o| *o == "already_active").count();
    println!(
        "storm: {deliveries} deliveries -> {switched} transition(s), {already} already_active"
    );
    assert_eq!((switched, already), (1, deliveries - 1), "{outcomes:?}");
    assert_eq!(stage.world.history_epochs().await, vec![1]);
    for region in [HOME, STANDBY] {
        assert_eq!(
            stage.world.refreshes(region).await.len(),
            1,
            "one refresh in {region}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_home_region_fails_over_within_the_configured_timeouts() {
    let stage = stage("frozen", 1).await;
    // Warm the function so the measurement is the decision, not process start.
    stage
        .failover
        .invoke(&fixture("command-status.json"))
        .await
        .ok();
    stage.rig.freeze(HOME);
    let started = Instant::now();
    let out = stage
        .failover
        .invoke(&fixture("alarm-direct.json"))
        .await
        .ok();
    let elapsed = started.elapsed();
    stage.rig.thaw(HOME);

    // All work in the region the alarm says is down shares one PROBE_TIMEOUT_MS deadline,
    // and runs beside the standby's work; the margin covers the standby's own round trips
    // on a debug build.
    let bound = Duration::from_millis(500) + Duration::from_millis(1000);
    println!("frozen home: switched in {elapsed:?} (bound {bound:?})");
    assert_eq!(out["outcome"], "switched", "{out}");
    assert_eq!(out["to"], STANDBY);
    assert!(elapsed < bound, "took {elapsed:?}, bound {bound:?}");
    assert_eq!(out["publish"][STANDBY]["status"], "published");
    assert_eq!(out["publish"][HOME]["status"], "failed", "{out}");
    assert!(
        out["publish"][HOME]["error"]
            .as_str()
            .unwrap()
            .contains("deadline"),
        "{out}"
    );
    assert_eq!(
        out["refreshes"][format!("{STANDBY}/app-asg")]["status"],
        "started"
    );
    assert_eq!(
        stage.world.parameter(STANDBY).await.as_deref(),
        Some(STANDBY)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_regions_down_is_refused_and_changes_nothing() {
    // The control plane runs in a third region, so it survives both application regions.
    let stage = Stage::start("both-down", &[HOME, STANDBY], "eu-central-1", 1, FAST).await;
    stage
        .failover
        .invoke(&fixture("command-status.json"))
        .await
        .ok();
    stage.rig.freeze(HOME);
    stage.rig.freeze(STANDBY);
    let out = stage
        .failover
        .invoke(&fixture("alarm-direct.json"))
        .await
        .ok();
    stage.rig.thaw(HOME);
    stage.rig.thaw(STANDBY);
    assert_eq!(out["outcome"], "refused", "{out}");
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("no healthy region"),
        "{out}"
    );
    assert_eq!(out["active_region"], HOME);
    assert!(
        stage.world.control_item().await.is_none(),
        "state was written"
    );
    let (published, params) = stage.world.parameters_all(HOME).await;
    assert!(published, "{params:?}");
    for region in [HOME, STANDBY] {
        assert!(stage.world.refreshes(region).await.is_empty());
    }
}

/// The documented direct alarm event, for an alarm whose metric has no Region dimension.
fn alarm_without_region(alarm_name: &str) -> Value {
    let mut event = fixture("alarm-direct.json");
    event["alarmData"]["alarmName"] = json!(alarm_name);
    event["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
        json!({});
    event
}

/// The documented SNS delivery, carrying `message` instead of the alarm JSON.
fn sns_carrying(message: &str) -> Value {
    let mut event = fixture("alarm-sns.json");
    event["Records"][0]["Sns"]["Message"] = json!(message);
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_get_a_clear_error_and_change_nothing() {
    let stage = stage("malformed", 1).await;
    let cases = [
        (json!("failover"), "not a JSON object"),
        (json!({"hello": "world"}), "unrecognised event"),
        (
            json!({"command": "failover", "target_region": "eu-west-1"}),
            "not one of the configured REGIONS",
        ),
        (
            json!({"command": "failover", "target_region": "us-east-1; rm -rf /"}),
            "not an AWS region",
        ),
        (json!({"command": "fail0ver"}), "unknown command"),
        (
            json!({"command": "failover", "dryrun": true}),
            "unknown field",
        ),
        (
            json!({"command": "pause", "reason": "r".repeat(5000)}),
            "at most 512",
        ),
        (alarm_without_region("app-down"), "cannot tell which region"),
        (
            alarm_without_region("x-ap-south-1"),
            "cannot tell which region",
        ),
        (sns_carrying("{not json"), "not CloudWatch alarm JSON"),
        (
            json!({"detail-type": "CloudWatch Alarm State Change"}),
            "no \"detail\"",
        ),
        (
            json!({"command": "status", "pad": "x".repeat(300_000)}),
            "bytes; at most",
        ),
        (
            json!({"command": "failover", "target_region": "us-est-1"}),
            "us-est-1",
        ),
        (json!({"command": "failover", "force": "yes"}), "force"),
        (json!({"command": ["failover"]}), "command"),
    ];
    for (payload, fragment) in cases {
        let (error_type, message) = stage.failover.invoke(&payload).await.err();
        assert_eq!(error_type, "InvalidEvent", "{payload}");
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
    assert!(stage.world.control_item().await.is_none());
    let (published, params) = stage.world.parameters_all(HOME).await;
    assert!(published, "{params:?}");
    // The function survived every one of them.
    let out = stage
        .failover
        .invoke(&fixture("command-status.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "status");

    // Free text is kept, but never with what could forge a log line or a terminal.
    let forged = "maintenance\n{\"level\":\"ERROR\",\"message\":\"forged\"}\u{1b}[2J\r";
    let out = stage
        .failover
        .invoke(&json!({"command": "pause", "reason": forged}))
        .await
        .ok();
    assert_eq!(out["outcome"], "paused");
    let status = stage
        .failover
        .invoke(&fixture("command-status.json"))
        .await
        .ok();
    let stored = status["status"]["paused"]["reason"].as_str().unwrap();
    assert!(stored.starts_with("maintenance"), "{stored:?}");
    assert!(!stored.chars().any(char::is_control), "{stored:?}");
    assert!(
        !stage
            .failover
            .log_text()
            .lines()
            .any(|l| l.starts_with("{\"level\":\"ERROR\",\"message\":\"forged\""))
    );
}

/// `aws lambda invoke` (AWS CLI v1, from .venv) against the local Invoke API: the CLI's
/// own output (status, function error) and the answer it wrote to `out`.
async fn aws_cli_invoke(endpoint: &str, payload: &str, out: &std::path::Path) -> (Value, Value) {
    let aws = paths::workspace().join(".venv/bin/aws");
    let output = tokio::process::Command::new(&aws)
        .args([
            "lambda",
            "invoke",
            "--endpoint-url",
            endpoint,
            "--no-sign-request",
        ])
        .args([
            "--region",
            "us-east-1",
            "--function-name",
            "failover",
            "--payload",
            payload,
        ])
        .arg(out)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {}: {e}", aws.display()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meta: Value = serde_json::from_slice(&output.stdout).expect("cli prints JSON");
    let body: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    (meta, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_lambda_invoke_works_against_the_local_runtime() {
    let stage = stage("cli", 1).await;
    let out = stage.rig.dir.join("cli-out.json");
    let endpoint = stage.failover.endpoint();
    let (meta, body) = aws_cli_invoke(&endpoint, r#"{"command":"status"}"#, &out).await;
    assert_eq!(meta["StatusCode"], 200);
    assert_eq!(body["outcome"], "status");
    assert_eq!(body["active_region"], HOME);

    // A rejected command comes back as a function error, as on Lambda.
    let (meta, body) = aws_cli_invoke(
        &endpoint,
        r#"{"command":"failover","target_region":"eu-west-1"}"#,
        &out,
    )
    .await;
    assert_eq!(meta["FunctionError"], "Unhandled");
    assert_eq!(body["errorType"], "InvalidEvent");
}

#[test]
fn bad_configuration_fails_init_naming_the_variable() {
    let output = std::process::Command::new(paths::binary("failover"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("REGIONS", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env("LOG_FORMAT", "text")
        .output()
        .expect("run the failover bootstrap");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("REGIONS") && stderr.contains("at least two"),
        "{stderr}"
    );
}
