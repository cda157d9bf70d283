//! `TRAFFIC_SIGNAL=routing-control` and the regional gate, through the real bootstraps:
//! the failover sets the routing controls on the rig's ARC cluster (`rig/arc_cluster.py`)
//! with one of its endpoints not answering; the verifier repairs a control a person set
//! wrong; a `DEPLOYMENT_ROLE=regional` probe answers as its region's gate from its own
//! parameter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use regionpilot_tests::arc::{ArcCluster, ENDPOINT_REGIONS, arn_for};
use regionpilot_tests::{Stage, alarm_for, fixture, paths};
use serde_json::json;

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

const QUICK: &[(&str, &str)] = &regionpilot_tests::QUICK_ENV;

async fn stage_with_cluster(label: &str) -> (Stage, ArcCluster) {
    let cluster = ArcCluster::start(&paths::scratch(label), &[HOME, STANDBY], HOME).await;
    let endpoints = cluster.endpoints_env();
    let arns = ArcCluster::arns_env(&[HOME, STANDBY]);
    let mut env = QUICK.to_vec();
    env.extend([
        ("TRAFFIC_SIGNAL", "routing-control"),
        ("ROUTING_CONTROL_ENDPOINTS", endpoints.as_str()),
        ("ROUTING_CONTROL_ARNS", arns.as_str()),
    ]);
    let stage = Stage::start(label, &[HOME, STANDBY], STANDBY, 1, &env).await;
    (stage, cluster)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_sets_the_routing_controls_with_one_cluster_endpoint_down() {
    let (stage, cluster) = stage_with_cluster("routing-switch").await;
    // The first endpoint the functions try holds every request.
    cluster.set_down(ENDPOINT_REGIONS[0], true);
    stage.rig.freeze(HOME);
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    let routing = &out["routing_controls"];
    assert_eq!(routing["endpoint"], ENDPOINT_REGIONS[1], "{routing}");
    assert_eq!(routing["states"][STANDBY], "On", "{routing}");
    assert_eq!(routing["states"][HOME], "Off", "{routing}");
    assert_eq!(
        routing["unanswered"].as_array().map(Vec::len),
        Some(1),
        "{routing}"
    );
    assert_eq!(cluster.is_on(STANDBY), Some(true));
    assert_eq!(cluster.is_on(HOME), Some(false));
    // Through the second endpoint: the new active region on first, so that some control
    // is on at every moment, then the old one off.
    let state = cluster.state().unwrap();
    let changes = state["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{state}");
    assert!(
        changes.iter().all(|c| c["endpoint"] == ENDPOINT_REGIONS[1]),
        "{state}"
    );
    assert_eq!(changes[0]["arn"], arn_for(STANDBY), "{state}");
    assert_eq!(changes[0]["state"], "On", "{state}");
    assert_eq!(changes[1]["arn"], arn_for(HOME), "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_repairs_a_routing_control_left_wrong() {
    let (stage, cluster) = stage_with_cluster("routing-repair").await;
    let verifier = stage.start_function("failback", 1, &[]).await;
    // In line from the start: the verifier only reads.
    let first = verifier.invoke(&fixture("command-verify.json")).await.ok();
    assert_eq!(
        first["reconcile"]["routing_controls"]["repaired"], false,
        "{first}"
    );
    // A person turns home off by hand while home is the decision.
    cluster.set_by_hand(HOME, false);
    assert_eq!(cluster.is_on(HOME), Some(false));
    let report = verifier.invoke(&fixture("command-verify.json")).await.ok();
    let routing = &report["reconcile"]["routing_controls"];
    assert_eq!(routing["repaired"], true, "{report}");
    assert_eq!(cluster.is_on(HOME), Some(true));
    assert_eq!(cluster.is_on(STANDBY), Some(false));
    let fixed = report["reconcile"]["fixed"].to_string();
    assert!(
        fixed.contains("routing controls set for us-east-1"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regional_probe_is_its_regions_gate_and_nothing_else() {
    const TOKEN: &str = "regional-gate-token-0123";
    let stage = Stage::start("routing-regional", &[HOME, STANDBY], STANDBY, 1, QUICK).await;
    // Home's regional stack: no tables, its region's parameter as the decision.
    let gate = stage
        .start_function(
            "health-probe",
            1,
            &[
                ("AWS_REGION", HOME),
                ("DEPLOYMENT_ROLE", "regional"),
                ("GATE_TOKEN", TOKEN),
                ("CONTROL_TABLE", ""),
                ("HEALTH_TABLE", ""),
                ("HEALTH_KEY", ""),
            ],
        )
        .await;
    let ask = |region: &str| {
        let path = format!("/{TOKEN}/serving/{region}");
        let mut request = fixture("gate-request.json");
        request["rawPath"] = json!(path);
        request["requestContext"]["http"]["path"] = json!(path);
        request
    };
    assert_eq!(gate.invoke(&ask(HOME)).await.ok()["statusCode"], 200);
    assert_eq!(gate.invoke(&ask(STANDBY)).await.ok()["statusCode"], 503);
    // The failover publishes the parameter in home too, and the gate follows it.
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    assert_eq!(gate.invoke(&ask(STANDBY)).await.ok()["statusCode"], 200);
    assert_eq!(gate.invoke(&ask(HOME)).await.ok()["statusCode"], 503);
    // Anything but a function URL request is refused, naming what it is.
    let (kind, message) = gate.invoke(&fixture("command-probe.json")).await.err();
    assert_eq!(kind, "InvalidEvent");
    assert!(message.contains("DEPLOYMENT_ROLE=regional"), "{message}");
}
