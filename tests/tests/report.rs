//! `{"command":"report"}` through the real failover bootstrap: a transition's full record,
//! and the same as Markdown for an incident ticket (printed, to read with --nocapture).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use regionpilot_tests::{Stage, alarm_for};
use serde_json::json;

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_is_reported_step_by_step_and_as_markdown() {
    let env = [
        ("CONNECT_TIMEOUT_MS", "300"),
        ("CALL_TIMEOUT_MS", "500"),
        ("CALL_MAX_ATTEMPTS", "2"),
        ("PROBE_TIMEOUT_MS", "500"),
        ("APP_NAME", "shop"),
    ];
    let stage = Stage::start("report", &[HOME, STANDBY], STANDBY, 1, &env).await;
    stage.rig.freeze(HOME);
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    stage.rig.thaw(HOME);
    assert_eq!(out["outcome"], "switched", "{out}");

    let out = stage
        .failover
        .invoke(&json!({"command": "report", "epoch": 1}))
        .await
        .ok();
    assert_eq!(out["outcome"], "report", "{out}");
    let r = &out["report"];
    assert_eq!(r["epoch"], 1);
    assert_eq!(r["trigger"]["kind"], "alarm");
    assert_eq!(r["probes"][0]["region"], STANDBY, "{r}");
    let steps = r["steps"].as_array().expect("steps");
    let home_publish = steps
        .iter()
        .find(|s| s["step"] == "publish" && s["key"] == HOME)
        .expect("home's publish");
    assert_eq!(home_publish["ok"], false, "home was frozen: {home_publish}");
    for s in steps {
        assert!(s["started_at"].is_u64() && s["ended_at"].is_u64(), "{s}");
    }

    let out = stage
        .failover
        .invoke(&json!({"command": "report", "epoch": 1, "format": "markdown"}))
        .await
        .ok();
    let md = out["markdown"].as_str().expect("markdown text");
    println!("{md}");
    assert!(
        md.starts_with("# shop: transition 1 (us-east-1 -> us-west-2)"),
        "{md}"
    );
    assert!(md.contains(&format!("| publish | {HOME} | no |")), "{md}");
    assert!(
        md.contains(&format!("| publish | {STANDBY} | yes |")),
        "{md}"
    );

    // A transition that does not exist: a clear error, nothing changed.
    let (error_type, message) = stage
        .failover
        .invoke(&json!({"command": "report", "epoch": 9}))
        .await
        .err();
    assert_eq!(error_type, "InvalidEvent");
    assert!(message.contains("transitions 1 to 1 exist"), "{message}");
}
