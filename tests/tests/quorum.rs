//! A quorum of vantage points on the real bootstraps: the control stack's probe and a
//! regional stack's probe in a third region (`DEPLOYMENT_ROLE=regional` with
//! `CONTROL_TABLE_REGION`), both writing to the control table on the rig. A cut link
//! between the control region and home (a partition) makes the standby's alarm a refused
//! failover, told as such; a real freeze of home fails over as usual.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use regionpilot_tests::events::EventCapture;
use regionpilot_tests::link::{Link, endpoints_through};
use regionpilot_tests::{LocalFunction, Stage, alarm_for};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
/// A vantage point outside REGIONS, with no emulated region of its own.
const THIRD: &str = "ca-central-1";

async fn probe_once(probe: &LocalFunction) -> Value {
    probe.invoke(&json!({"command": "probe"})).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_is_refused_and_told_and_a_real_outage_fails_over() {
    let mut env = regionpilot_tests::QUICK_ENV.to_vec();
    env.push(("APP_NAME", "shop"));
    let mut stage = Stage::start("quorum", &[HOME, STANDBY], STANDBY, 1, &env).await;
    let mut events = EventCapture::subscribe(&stage).await;
    // Every function of the control stack (in the standby) reaches home through one link.
    let link = Link::start(&stage.rig.url(HOME)).await;
    let through = endpoints_through(&stage.world.endpoints, HOME, link.url());
    stage.failover = stage
        .start_function("failover", 1, &[("REGION_ENDPOINTS", &through)])
        .await;
    let probe = stage
        .start_function("health-probe", 1, &[("REGION_ENDPOINTS", &through)])
        .await;
    let vantage = stage.start_vantage_point(THIRD).await;

    // A regional vantage point records; status is the control stack's.
    let (error_type, message) = vantage.invoke(&json!({"command": "status"})).await.err();
    assert_eq!(error_type, "InvalidEvent");
    assert!(message.contains("a vantage point"), "{message}");

    // Both see home healthy; status lists both vantage points.
    for p in [&probe, &vantage] {
        assert_eq!(probe_once(p).await["regions"][HOME]["healthy"], true);
    }
    let status = probe.invoke(&json!({"command": "status"})).await.ok();
    let points: Vec<&str> = status["status"]["vantage_points"]
        .as_array()
        .unwrap_or_else(|| panic!("{status}"))
        .iter()
        .map(|p| p["vantage"].as_str().unwrap())
        .collect();
    assert_eq!(points, [THIRD, STANDBY], "{status}");

    // The partition: the standby's link to home is cut. From there home is down; from
    // the third region it is not.
    link.cut();
    let cut_off = probe_once(&probe).await;
    assert_eq!(cut_off["regions"][HOME]["healthy"], false, "{cut_off}");
    assert_eq!(probe_once(&vantage).await["regions"][HOME]["healthy"], true);
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    println!(
        "the standby's alarm during the partition: {}",
        serde_json::to_string_pretty(&json!({
            "outcome": out["outcome"], "reason": out["reason"], "quorum": out["quorum"]
        }))
        .unwrap()
    );
    assert_eq!(out["outcome"], "refused", "{out}");
    assert_eq!(
        out["reason"],
        "partition suspected: 1 of 2 vantage points see us-east-1 down"
    );
    assert_eq!(out["quorum"]["required"], 2, "{out}");
    let verdicts = &out["quorum"]["verdicts"];
    assert_eq!(verdicts[0]["vantage"], THIRD, "{out}");
    assert_eq!(verdicts[0]["healthy"], true);
    assert_eq!(verdicts[1]["vantage"], STANDBY);
    assert_eq!(verdicts[1]["healthy"], false);
    assert_eq!(verdicts[1]["error_class"], "timeout");
    // Nothing moved: every parameter still names home.
    let (all_home, params) = stage.world.parameters_all(HOME).await;
    assert!(all_home, "{params:?}");
    // Told: a Region Switch event with outcome refused and the verdicts.
    let told = events.until("Region Switch", Duration::from_secs(10)).await;
    let refused = told
        .iter()
        .find(|e| e.detail["outcome"] == "refused")
        .unwrap_or_else(|| panic!("no refused Region Switch: {told:?}"));
    assert!(
        refused.detail["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("partition suspected: 1 of 2")),
        "{:?}",
        refused.detail
    );
    assert_eq!(
        refused.detail["quorum"]["down_votes"], 1,
        "{:?}",
        refused.detail
    );
    assert_eq!(
        refused.detail["quorum"]["verdicts"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // The partition heals; then home really freezes: both see it down, and the same
    // alarm fails over.
    link.restore();
    stage.rig.freeze(HOME);
    for p in [&probe, &vantage] {
        assert_eq!(probe_once(p).await["regions"][HOME]["healthy"], false);
    }
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    stage.rig.thaw(HOME);
    assert_eq!(out["outcome"], "switched", "{out}");
    assert_eq!(out["quorum"]["down_votes"], 2, "{out}");
    assert_eq!(
        stage.world.parameter(STANDBY).await.as_deref(),
        Some(STANDBY)
    );
}
