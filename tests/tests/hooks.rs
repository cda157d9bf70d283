//! Hooks on the real failover and failback bootstraps: the SDK's Lambda Invoke against
//! the rig's scripted functions (moto runs a function only in Docker). A function error
//! is recorded with its type and retried by the verifier under the same idempotency key;
//! a hook still running when the switch stops waiting is finished by reconcile; a hook
//! that is not deployed fails only itself and its readiness check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use regionpilot_tests::{Stage, alarm_for};
use serde_json::json;

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_are_invoked_with_their_payload_retried_by_the_verifier_and_checked_by_readiness() {
    let mut env = regionpilot_tests::QUICK_ENV.to_vec();
    env.extend([
        ("APP_NAME", "shop"),
        (
            "HOOKS",
            "prepare=stop-writers,act=not-deployed,verify=smoke-test",
        ),
        ("READINESS_INTERVAL_SECONDS", "0"),
    ]);
    // Modelled time 50 times faster: a hung hook answers 18 s later (900 AWS seconds).
    let stage = Stage::start_with(
        "hooks",
        &[HOME, STANDBY],
        STANDBY,
        1,
        &env,
        &[("RIG_TIME_SCALE", "50")],
        &[],
    )
    .await;
    stage.rig.script_hooks(
        STANDBY,
        &json!({
            "stop-writers": [
                {"error": {"type": "WritersStillConnected", "message": "3 writers did not stop"}},
                {"succeed": {"answer": {"stopped": 3}}}
            ],
            "smoke-test": [{"hang": true}, {"succeed": {"answer": {"ok": true}}}]
        }),
    );
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    println!(
        "hooks in the failover's answer: {}",
        serde_json::to_string_pretty(&out["hooks"]).unwrap()
    );
    let prepare = &out["hooks"]["prepare/stop-writers"];
    assert_eq!(prepare["status"], "failed", "{out}");
    assert_eq!(prepare["error_type"], "WritersStillConnected");
    assert_eq!(prepare["error"], "3 writers did not stop");
    // Not deployed: Lambda's ResourceNotFoundException, for this hook alone.
    let missing = &out["hooks"]["act/not-deployed"];
    assert_eq!(missing["status"], "failed", "{out}");
    assert_eq!(missing["error_kind"], "not_found", "{out}");
    // Still running after the 8 s a switch waits.
    assert_eq!(
        out["hooks"]["verify/smoke-test"]["status"], "waiting",
        "{out}"
    );
    // Nothing waited for a hook's answer: the parameter is published everywhere.
    for region in [HOME, STANDBY] {
        assert_eq!(out["publish"][region]["status"], "published", "{out}");
    }

    let calls = stage.rig.hook_calls(STANDBY);
    println!(
        "the payload stop-writers received: {}",
        serde_json::to_string_pretty(&calls[0]["payload"]).unwrap()
    );
    let first = calls
        .iter()
        .find(|c| c["function"] == "stop-writers")
        .unwrap();
    assert_eq!(
        first["payload"],
        json!({
            "app": "shop", "epoch": 1, "from": HOME, "to": STANDBY, "stage": "prepare",
            "trigger": {"kind": "alarm", "name": format!("regionpilot-unhealthy-{HOME}")},
            "forced": false, "direction": "failover",
            "idempotency_key": "shop-1-prepare-stop-writers",
        })
    );

    // The verifier's reconcile calls the failed and the unanswered hooks again.
    let verifier = stage.start_function("failback", 1, &[]).await;
    let report = verifier.invoke(&json!({"command": "verify"})).await.ok();
    println!("reconcile: {}", report["reconcile"]);
    let status = stage
        .failover
        .invoke(&json!({"command": "status"}))
        .await
        .ok();
    let hooks = &status["status"]["last_transition"]["hooks"];
    assert_eq!(
        hooks["prepare/stop-writers"]["status"], "succeeded",
        "{status}"
    );
    assert_eq!(hooks["prepare/stop-writers"]["attempts"], 2);
    assert_eq!(
        hooks["verify/smoke-test"]["status"], "succeeded",
        "{status}"
    );
    assert_eq!(hooks["act/not-deployed"]["attempts"], 2, "{status}");
    let calls = stage.rig.hook_calls(STANDBY);
    for function in ["stop-writers", "smoke-test"] {
        let keys: Vec<&serde_json::Value> = calls
            .iter()
            .filter(|c| c["function"] == function)
            .map(|c| &c["payload"]["idempotency_key"])
            .collect();
        assert_eq!(keys.len(), 2, "{function}: {calls:?}");
        assert_eq!(keys[0], keys[1], "{function}: one key across the retry");
    }
    // Readiness: the two scripted functions exist, the third does not.
    let checks = report["readiness"]["checks"]
        .as_array()
        .expect("readiness evaluated");
    let hook_checks: Vec<(&str, bool)> = checks
        .iter()
        .filter(|c| c["check"] == "hook_function")
        .map(|c| {
            (
                c["subject"].as_str().unwrap(),
                c["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hook_checks,
        [
            ("prepare/stop-writers", true),
            ("act/not-deployed", false),
            ("verify/smoke-test", true)
        ],
        "{checks:?}"
    );
}
