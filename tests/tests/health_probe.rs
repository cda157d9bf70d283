//! The real health-probe bootstrap against the rig: frozen regions, replication lag, and
//! the metrics it publishes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use regionpilot_tests::{LocalFunction, Stage};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

async fn stage(label: &str, probe_env: &[(&str, &str)]) -> (Stage, LocalFunction) {
    let stage = Stage::start(
        label,
        &[HOME, STANDBY],
        STANDBY,
        1,
        &[("PROBE_TIMEOUT_MS", "500")],
    )
    .await;
    let probe = stage.start_function("health-probe", 1, probe_env).await;
    (stage, probe)
}

/// The same file people invoke with (`events/scheduled-event.json`).
fn scheduled_event() -> Value {
    let path = regionpilot_tests::paths::workspace().join("events/scheduled-event.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// EMF documents the probe printed (its stdout shares the log file with its stderr).
fn emf_lines(probe: &LocalFunction) -> Vec<Value> {
    probe
        .log_text()
        .lines()
        .filter(|l| l.starts_with("{\"_aws\""))
        .map(|l| serde_json::from_str(l).expect("EMF line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_region_is_reported_unhealthy_within_the_probe_timeout() {
    let (stage, probe) = stage("probe-frozen", &[]).await;
    let healthy = probe.invoke(&json!({"command": "probe"})).await.ok();
    assert_eq!(healthy["regions"][HOME]["healthy"], true, "{healthy}");
    assert_eq!(healthy["regions"][STANDBY]["healthy"], true);

    stage.rig.freeze(HOME);
    let started = Instant::now();
    let out = probe.invoke(&json!({"command": "probe"})).await.ok();
    let elapsed = started.elapsed();
    stage.rig.thaw(HOME);
    let bound = Duration::from_millis(500 + 500);
    println!("probe with {HOME} frozen answered in {elapsed:?} (timeout 500 ms, bound {bound:?})");
    assert!(elapsed < bound, "took {elapsed:?}");
    assert_eq!(out["regions"][HOME]["healthy"], false, "{out}");
    assert_eq!(out["regions"][HOME]["error_class"], "timeout", "{out}");
    assert_eq!(out["regions"][STANDBY]["healthy"], true, "{out}");
    assert!(out["regions"][STANDBY]["read_latency_ms"].is_u64());

    let docs = emf_lines(&probe);
    let latest_home = docs
        .iter()
        .rev()
        .find(|d| d["Region"] == HOME)
        .expect("EMF for home");
    assert_eq!(latest_home["Healthy"], 0.0);
    let latest_standby = docs
        .iter()
        .rev()
        .find(|d| d["Region"] == STANDBY)
        .expect("EMF for standby");
    assert_eq!(latest_standby["Healthy"], 1.0);
    assert_eq!(
        latest_standby["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "RegionPilot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_replication_lag_is_measured_within_one_probe_interval() {
    let (stage, probe) = stage(
        "probe-lag",
        &[
            ("PROBE_INTERVAL_SECONDS", "1"),
            ("PROBE_WINDOW_SECONDS", "6"),
        ],
    )
    .await;
    let injected = 2.0;
    stage.rig.set_replication(HOME, STANDBY, injected, false);
    let out = probe.invoke(&scheduled_event()).await.ok();
    assert!(out["rounds"].as_u64().unwrap() >= 5, "{out}");
    let pair = out["replication"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["from"] == HOME && l["to"] == STANDBY)
        .cloned()
        .unwrap();
    let measured = pair["lag_seconds"].as_f64().expect("lag measured");
    println!(
        "injected lag {injected} s, measured {measured} s (tolerance: one 1 s probe interval)"
    );
    assert!(
        (injected..injected + 1.0 + 0.3).contains(&measured),
        "measured {measured}"
    );
    // The other direction keeps the rig's default 0.2 s lag: within one interval of it,
    // well under the injected lag.
    let reverse = out["replication"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["from"] == STANDBY)
        .cloned()
        .unwrap();
    assert!(
        reverse["lag_seconds"].as_f64().unwrap() < 0.2 + 1.0 + 0.3,
        "{reverse}"
    );

    // One EMF document per region and per pair, every round, high resolution.
    let docs = emf_lines(&probe);
    let rounds = out["rounds"].as_u64().unwrap() as usize;
    assert_eq!(
        docs.iter().filter(|d| d.get("Healthy").is_some()).count(),
        2 * rounds
    );
    let lag_docs: Vec<&Value> = docs
        .iter()
        .filter(|d| d.get("ReplicationLagSeconds").is_some())
        .collect();
    assert!(!lag_docs.is_empty());
    for doc in lag_docs {
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FromRegion", "ToRegion"]])
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"],
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_replication_shows_growing_lag() {
    let (stage, probe) = stage("probe-paused", &[]).await;
    // Let one heartbeat replicate, then pause the pair.
    probe.invoke(&json!({"command": "probe"})).await.ok();
    tokio::time::sleep(Duration::from_millis(500)).await;
    probe.invoke(&json!({"command": "probe"})).await.ok();
    stage.rig.set_replication(HOME, STANDBY, 0.0, true);
    let lag = |out: &Value| {
        out["replication"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["from"] == HOME && l["to"] == STANDBY)
            .and_then(|l| l["lag_seconds"].as_f64())
            .expect("lag")
    };
    let first = lag(&probe.invoke(&json!({"command": "probe"})).await.ok());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = lag(&probe.invoke(&json!({"command": "probe"})).await.ok());
    println!("paused replication: lag {first} s, then {second} s two seconds later");
    assert!(
        second >= first + 1.8,
        "lag did not grow: {first} -> {second}"
    );
    stage.rig.set_replication(HOME, STANDBY, 0.0, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_rejects_bad_input_and_answers_status() {
    let (_stage, probe) = stage("probe-input", &[]).await;
    let (error_type, message) = probe.invoke(&json!({"command": "failover"})).await.err();
    assert_eq!(error_type, "InvalidEvent");
    assert!(message.contains("unknown command"), "{message}");
    let status = probe.invoke(&json!({"command": "status"})).await.ok();
    assert_eq!(status["outcome"], "status");
    assert_eq!(status["status"]["home_region"], HOME);
}

/// The probe's function URL is a serving gate: Route 53's HTTPS check of the active region
/// gets 200 naming it, of another region 503, and a wrong token 404 (the request fixture
/// is `events/gate-request.json`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_function_url_answers_as_a_serving_gate() {
    const TOKEN: &str = "replace-with-the-stacks-gate-token";
    let (stage, probe) = stage("gate", &[("GATE_TOKEN", TOKEN)]).await;
    let ask = |path: String| {
        let mut request = regionpilot_tests::fixture("gate-request.json");
        request["rawPath"] = json!(path);
        request["requestContext"]["http"]["path"] = json!(path);
        request
    };
    let home = probe
        .invoke(&ask(format!("/{TOKEN}/serving/{HOME}")))
        .await
        .ok();
    assert_eq!(home["statusCode"], 200, "{home}");
    assert_eq!(home["body"], format!("serving {HOME}\n"));
    let standby = probe
        .invoke(&ask(format!("/{TOKEN}/serving/{STANDBY}")))
        .await
        .ok();
    assert_eq!(standby["statusCode"], 503, "{standby}");
    // After a failover, the other way round.
    let out = stage
        .failover
        .invoke(&regionpilot_tests::alarm_for(HOME))
        .await
        .ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    let standby = probe
        .invoke(&ask(format!("/{TOKEN}/serving/{STANDBY}")))
        .await
        .ok();
    assert_eq!(standby["statusCode"], 200, "{standby}");
    let home = probe
        .invoke(&ask(format!("/{TOKEN}/serving/{HOME}")))
        .await
        .ok();
    assert_eq!(home["statusCode"], 503, "{home}");
    let wrong = probe
        .invoke(&ask(format!("/not-the-token-at-all-0000/serving/{HOME}")))
        .await
        .ok();
    assert_eq!(wrong["statusCode"], 404, "{wrong}");
}
