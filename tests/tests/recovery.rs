//! The application recovers, not only the parameter: the real bootstraps against the rig's
//! instance model (boot, warmup, refresh batches, Run Command per instance), with the
//! rig's modelled time running 50 times faster than the wall clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use regionpilot_tests::{LocalFunction, Stage, alarm_for, fixture};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const GROUP: &str = regionpilot_tests::world::GROUP;

/// Modelled AWS timings at 50x: boot 1.2-1.8 s, warmup 1.2 s, a command 40-100 ms.
const RIG: &[(&str, &str)] = &[("RIG_TIME_SCALE", "50")];

fn env(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars = vec![
        ("CONNECT_TIMEOUT_MS", "300"),
        ("CALL_TIMEOUT_MS", "500"),
        ("CALL_MAX_ATTEMPTS", "2"),
        ("PROBE_TIMEOUT_MS", "500"),
        ("COOLDOWN_SECONDS", "0"),
        ("FAILBACK_MIN_HOLD_SECONDS", "0"),
    ];
    vars.extend_from_slice(extra);
    vars
}

const RUN_COMMAND: &[(&str, &str)] = &[
    ("RELOAD_MODE", "run-command"),
    (
        "RELOAD_COMMANDS",
        "/opt/app/bin/use-active-region && systemctl reload php-fpm",
    ),
];

async fn pilot_light(
    label: &str,
    standby_max: i32,
    extra: &[(&'static str, &'static str)],
) -> Stage {
    Stage::start_with(
        label,
        &[HOME, STANDBY],
        STANDBY,
        1,
        &env(extra),
        RIG,
        &[(HOME, 1, 10, 12), (STANDBY, 1, 1, standby_max)],
    )
    .await
}

/// Polls until `done` holds for the standby's instances, up to `limit`.
async fn wait_for_standby(
    stage: &Stage,
    limit: Duration,
    done: impl Fn(&[regionpilot_tests::rig::ModelInstance]) -> bool,
) -> Vec<regionpilot_tests::rig::ModelInstance> {
    let started = Instant::now();
    loop {
        let instances = stage.rig.live_instances(STANDBY, GROUP).unwrap_or_default();
        if done(&instances) || started.elapsed() > limit {
            return instances;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pilot_light_failover_raises_capacity_and_reloads_in_place() {
    // Given home serving with 10 and the standby idling at 1, in run-command mode
    let stage = pilot_light("pilot-light", 12, RUN_COMMAND).await;
    // When home's alarm fires
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    // Then the standby is raised to 10 from home's live capacity
    assert_eq!(out["outcome"], "switched", "{out}");
    let group = format!("{STANDBY}/{GROUP}");
    let capacity = &out["capacity"][&group];
    assert_eq!(capacity["status"], "raised", "{out}");
    assert_eq!(
        (capacity["previous"].as_i64(), capacity["desired"].as_i64()),
        (Some(1), Some(10))
    );
    assert_eq!(capacity["capped"], false);
    assert_eq!(capacity["source"], "live");
    assert_eq!(stage.world.group(STANDBY).await, (1, 10, 12));
    // The one running instance reloaded in place; the nine booting ones were not targeted.
    let reload = &out["reload"][&group];
    assert_eq!(reload["status"], "succeeded", "{out}");
    assert_eq!(reload["targeted"], 1, "{out}");
    assert_eq!(reload["succeeded"], 1);
    assert!(
        reload["command_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(
        stage.world.refreshes(STANDBY).await.is_empty(),
        "no refresh needed"
    );
    // And the new instances boot reading the new value: all 10 serve the standby.
    let instances = wait_for_standby(&stage, Duration::from_secs(20), |all| {
        all.iter().filter(|i| i.serves(STANDBY)).count() >= 10
    })
    .await;
    assert_eq!(
        instances.iter().filter(|i| i.serves(STANDBY)).count(),
        10,
        "{instances:?}"
    );
    assert!(
        stage.failover.log_text().contains("\"CapacityRaised\""),
        "no CapacityRaised metric in the log"
    );
    // Status shows the command and the counts per group.
    let status = stage
        .failover
        .invoke(&fixture("command-status.json"))
        .await
        .ok();
    let report = &status["status"]["auto_scaling_groups"][&group];
    assert_eq!(
        report["reload"]["command_id"], reload["command_id"],
        "{status}"
    );
    assert_eq!(report["capacity"]["desired"], 10, "{status}");
    assert_eq!(status["status"]["scaled_up"][&group]["previous_desired"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_size_caps_the_standby_and_is_never_raised() {
    let stage = pilot_light("capped", 6, &[]).await;
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    let capacity = &out["capacity"][&format!("{STANDBY}/{GROUP}")];
    assert_eq!(capacity["status"], "raised", "{out}");
    assert_eq!(capacity["desired"], 6);
    assert_eq!(capacity["wanted"], 10);
    assert_eq!(capacity["capped"], true);
    assert_eq!(
        stage.world.group(STANDBY).await,
        (1, 6, 6),
        "MaxSize untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_run_command_failure_is_replaced_by_a_refresh() {
    // Given a warm standby of 4 whose reload fails on one instance
    let stage = Stage::start_with(
        "reload-partial",
        &[HOME, STANDBY],
        STANDBY,
        1,
        &env(RUN_COMMAND),
        RIG,
        &[(HOME, 1, 4, 8), (STANDBY, 1, 4, 8)],
    )
    .await;
    stage.rig.set_instance_faults(STANDBY, GROUP, 1, 0);
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    let group = format!("{STANDBY}/{GROUP}");
    let reload = &out["reload"][&group];
    assert_eq!(reload["status"], "fell_back", "{out}");
    assert_eq!(
        (reload["succeeded"].as_u64(), reload["failed"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(reload["fallback_refresh"]["status"], "started", "{out}");
    assert!(
        stage.failover.log_text().contains("\"ReloadFellBack\""),
        "no ReloadFellBack metric in the log"
    );
    // Home, the region the alarm says is down, had one probe timeout for all its steps:
    // its command went out, and following it is left to the verifier.
    let home = &out["reload"][&format!("{HOME}/{GROUP}")];
    assert!(home["command_id"].as_str().is_some(), "{out}");
    assert_ne!(home["status"], "fell_back", "{out}");
    assert_eq!(stage.world.refreshes(STANDBY).await.len(), 1);
    assert!(stage.world.refreshes(HOME).await.is_empty());
    // The refresh replaces the instance that kept the old value: every instance serves
    // the standby in the end.
    let instances = wait_for_standby(&stage, Duration::from_secs(30), |all| {
        all.len() == 4 && all.iter().all(|i| i.serves(STANDBY))
    })
    .await;
    assert!(instances.iter().all(|i| i.serves(STANDBY)), "{instances:?}");
}

async fn verify(verifier: &LocalFunction) -> Value {
    verifier.invoke(&json!({"command": "verify"})).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_is_scaled_back_in_after_the_delay_once_it_is_no_longer_active() {
    let stage = pilot_light(
        "scale-in",
        12,
        &[
            ("SCALE_IN_DELAY_SECONDS", "2"),
            ("FAILBACK_MODE", "approve"),
        ],
    )
    .await;
    let verifier = stage.start_function("failback", 1, &[]).await;
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    assert_eq!(
        out["capacity"][&format!("{STANDBY}/{GROUP}")]["desired"],
        10
    );
    // Active for longer than the delay: the active region keeps its capacity.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = verify(&verifier).await;
    assert_eq!(report["capacity"]["scaled_in"], json!([]), "{report}");
    assert_eq!(stage.world.group(STANDBY).await.1, 10);
    // Back home; before the delay the standby keeps its capacity, after it returns to 1.
    let back = stage
        .failover
        .invoke(&fixture("command-failback.json"))
        .await
        .ok();
    assert_eq!(back["outcome"], "switched", "{back}");
    let report = verify(&verifier).await;
    assert_eq!(report["capacity"]["scaled_in"], json!([]), "{report}");
    assert!(
        report["capacity"]["waiting"][0]
            .as_str()
            .is_some_and(|w| w.contains("SCALE_IN_DELAY_SECONDS")),
        "{report}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = verify(&verifier).await;
    assert_eq!(
        report["capacity"]["scaled_in"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(stage.world.group(STANDBY).await, (1, 1, 12));
    assert_eq!(
        stage.world.group(HOME).await,
        (1, 10, 12),
        "home kept its capacity"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reload_and_capacity_settings_fail_init_naming_the_variable() {
    let stage = pilot_light("bad-config", 12, &[]).await;
    for (vars, variable) in [
        (vec![("RELOAD_MODE", "reboot")], "RELOAD_MODE"),
        (vec![("RELOAD_MODE", "run-command")], "RELOAD_COMMANDS"),
        (vec![("CAPACITY_PERCENT", "1001")], "CAPACITY_PERCENT"),
    ] {
        let function = stage.start_function("failover", 1, &vars).await;
        // Init fails before the runtime starts: the process logs why and exits.
        let started = Instant::now();
        let wanted = format!("configuration error: {variable}");
        let log = loop {
            let log = function.log_text();
            if log.contains(&wanted) || started.elapsed() > Duration::from_secs(10) {
                break log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(log.contains(&wanted), "{variable}: {log}");
    }
    assert_eq!(
        stage.world.group(STANDBY).await,
        (1, 1, 12),
        "nothing changed"
    );
}
