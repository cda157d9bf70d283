//! The `ActiveRegion` metric that DNS follows (the template's serving alarms and Route 53
//! health checks), read back from the real bootstraps' logs as CloudWatch Logs would: it
//! names the active region of the control state through a failover and an automatic
//! failback, from the switching invocation at once and from every probe.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use regionpilot_tests::{LocalFunction, Stage, fixture};
use serde_json::Value;

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

const QUICK: &[(&str, &str)] = &[
    ("CONNECT_TIMEOUT_MS", "300"),
    ("CALL_TIMEOUT_MS", "500"),
    ("CALL_MAX_ATTEMPTS", "2"),
    ("PROBE_TIMEOUT_MS", "500"),
    ("COOLDOWN_SECONDS", "0"),
    ("FAILBACK_MODE", "auto"),
    ("FAILBACK_HEALTHY_CHECKS", "2"),
    ("FAILBACK_MIN_HOLD_SECONDS", "0"),
    ("FAILBACK_MAX_LAG_SECONDS", "2"),
    ("FAILBACK_DRAIN_WAIT_SECONDS", "2"),
];

/// One `ActiveRegion` EMF document: (namespace, region, value, storage resolution).
#[derive(Debug, PartialEq)]
struct Datapoint {
    namespace: String,
    region: String,
    value: f64,
    high_resolution: bool,
}

/// Every `ActiveRegion` document in a function's log, in the order written.
fn active_region_datapoints(function: &LocalFunction) -> Vec<Datapoint> {
    function
        .log_text()
        .lines()
        .filter(|line| line.starts_with('{'))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|doc| {
            let value = doc.get("ActiveRegion")?.as_f64()?;
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            let metric = directive["Metrics"]
                .as_array()?
                .iter()
                .find(|m| m["Name"] == "ActiveRegion")?;
            Some(Datapoint {
                namespace: directive["Namespace"].as_str()?.to_owned(),
                region: doc["Region"].as_str()?.to_owned(),
                value,
                high_resolution: metric.get("StorageResolution").is_some_and(|r| r == 1),
            })
        })
        .collect()
}

/// The value each region had in the last documents `function` wrote, and how many it wrote.
fn latest(function: &LocalFunction) -> (BTreeMap<String, f64>, usize) {
    let points = active_region_datapoints(function);
    for point in &points {
        assert_eq!(point.namespace, "RegionPilot", "{point:?}");
        assert!(
            !point.high_resolution,
            "Route 53 needs standard resolution: {point:?}"
        );
    }
    let count = points.len();
    let values = points.into_iter().map(|p| (p.region, p.value)).collect();
    (values, count)
}

fn serving(active: &str) -> BTreeMap<String, f64> {
    [HOME, STANDBY]
        .iter()
        .map(|r| (r.to_string(), if *r == active { 1.0 } else { 0.0 }))
        .collect()
}

async fn probe_once(probe: &LocalFunction) -> Value {
    probe.invoke(&fixture("command-probe.json")).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_region_follows_the_control_state_through_failover_and_failback() {
    let stage = Stage::start("traffic", &[HOME, STANDBY], STANDBY, 1, QUICK).await;
    let probe = stage.start_function("health-probe", 1, &[]).await;
    let verifier = stage.start_function("failback", 1, &[]).await;

    // Given a fresh deployment: the probe announces home from the (implicit) initial state.
    let answer = probe_once(&probe).await;
    assert_eq!(answer["active_region"], HOME, "{answer}");
    assert_eq!(latest(&probe), (serving(HOME), 2));

    // When home fails and the alarm fails over: the failover announces the standby at once.
    stage.rig.freeze(HOME);
    let out = stage
        .failover
        .invoke(&fixture("alarm-direct.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    assert_eq!(latest(&stage.failover), (serving(STANDBY), 2));

    // A duplicate delivery switches nothing and announces nothing more.
    let again = stage
        .failover
        .invoke(&fixture("alarm-direct.json"))
        .await
        .ok();
    assert_eq!(again["outcome"], "already_active", "{again}");
    assert_eq!(latest(&stage.failover).1, 2);

    // The probe's next beat reads the new state, even with home still frozen.
    let answer = probe_once(&probe).await;
    assert_eq!(answer["active_region"], STANDBY, "{answer}");
    assert_eq!(latest(&probe), (serving(STANDBY), 4));

    // When home recovers, the verifier fails back and announces home at once.
    stage.rig.thaw(HOME);
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let out = verifier.invoke(&fixture("command-verify.json")).await.ok();
        outcomes.push(out["outcome"].as_str().unwrap_or("?").to_owned());
        if out["outcome"] == "failed_back" {
            break;
        }
    }
    assert_eq!(
        outcomes.last().map(String::as_str),
        Some("failed_back"),
        "{outcomes:?}"
    );
    assert_eq!(latest(&verifier).0, serving(HOME));

    let answer = probe_once(&probe).await;
    assert_eq!(answer["active_region"], HOME, "{answer}");
    assert_eq!(latest(&probe), (serving(HOME), 6));
    assert_eq!(stage.world.history_epochs().await, vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_off_emits_no_active_region() {
    let mut env = QUICK.to_vec();
    env.push(("TRAFFIC", "off"));
    let stage = Stage::start("traffic-off", &[HOME, STANDBY], STANDBY, 1, &env).await;
    let probe = stage.start_function("health-probe", 1, &[]).await;

    let answer = probe_once(&probe).await;
    assert_eq!(answer["outcome"], "probed", "{answer}");
    assert!(answer.get("active_region").is_none(), "{answer}");
    stage.rig.freeze(HOME);
    let out = stage
        .failover
        .invoke(&fixture("alarm-direct.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    // The probe's own metrics are still there: only ActiveRegion is off.
    assert!(probe.log_text().contains("\"Healthy\""));
    assert!(active_region_datapoints(&probe).is_empty());
    assert!(active_region_datapoints(&stage.failover).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_control_state_emits_nothing_so_dns_keeps_its_state() {
    let stage = Stage::start("traffic-dark", &[HOME, STANDBY], STANDBY, 1, QUICK).await;
    let probe = stage.start_function("health-probe", 1, &[]).await;
    // The control table's region does not answer: the probe still samples, and says
    // nothing about the active region rather than guess.
    stage.rig.freeze(STANDBY);
    let answer = probe_once(&probe).await;
    assert_eq!(answer["outcome"], "probed", "{answer}");
    assert!(answer.get("active_region").is_none(), "{answer}");
    assert!(active_region_datapoints(&probe).is_empty());
    assert!(probe.log_text().contains("ActiveRegion not emitted"));
}
