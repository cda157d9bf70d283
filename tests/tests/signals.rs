//! The gate signal's promise, through the real bootstraps: whatever region is lost, the
//! health checks keep the last decision. Route 53's checkers (`regionpilot_tests::signals`)
//! poll two real gates, the control stack's (in the control region, on the control
//! state) and a regional one in home (on home's parameter), while regions are frozen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regionpilot_tests::signals::{self, Gate, SignalDns};
use regionpilot_tests::{Stage, alarm_for, now_ms};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const TOKEN: &str = "signals-test-gate-token-42";
/// Route 53's 10 s interval in 1 s: a check moves within a second or two.
const TIME_SCALE: f64 = 10.0;

fn env() -> Vec<(&'static str, &'static str)> {
    let mut env = regionpilot_tests::QUICK_ENV.to_vec();
    env.push(("GATE_TOKEN", TOKEN));
    env
}

/// Enough checker rounds for any change to show, and its delay to pass.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(3_000)).await;
}

fn healthy(dns: &Mutex<SignalDns>) -> (bool, bool) {
    let dns = dns.lock().unwrap();
    let now = now_ms();
    (dns.healthy(HOME, now), dns.healthy(STANDBY, now))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_checks_keep_the_last_decision_whatever_region_is_lost() {
    // The control plane in the standby region, as the README advises for single mode.
    let stage = Stage::start("signals-gates", &[HOME, STANDBY], STANDBY, 1, &env()).await;
    let control_gate = stage.start_function("health-probe", 2, &[]).await;
    let home_gate = stage
        .start_function(
            "health-probe",
            2,
            &[
                ("AWS_REGION", HOME),
                ("DEPLOYMENT_ROLE", "regional"),
                ("CONTROL_TABLE", ""),
                ("HEALTH_TABLE", ""),
                ("HEALTH_KEY", ""),
            ],
        )
        .await;
    let gates = vec![
        Gate {
            region: STANDBY.into(),
            function: Arc::new(control_gate),
            token: TOKEN.into(),
        },
        Gate {
            region: HOME.into(),
            function: Arc::new(home_gate),
            token: TOKEN.into(),
        },
    ];
    // A lost region's gate is not reached (its endpoints do not answer).
    let lost: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let dns = Arc::new(Mutex::new(SignalDns::settled(
        &[HOME, STANDBY],
        HOME,
        1_000,
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let checks = tokio::spawn(signals::check_gates(
        gates,
        dns.clone(),
        {
            let lost = lost.clone();
            move |region: &str| !lost.lock().unwrap().contains(region)
        },
        TIME_SCALE,
        stop.clone(),
    ));
    let lose = |region: &str| {
        stage.rig.freeze(region);
        lost.lock().unwrap().insert(region.to_owned());
    };
    let recover = |region: &str| {
        stage.rig.thaw(region);
        lost.lock().unwrap().remove(region);
    };

    settle().await;
    assert_eq!(
        healthy(&dns),
        (true, false),
        "home active: only home serves"
    );

    // The control plane's region lost: home's own gate still says home serves.
    lose(STANDBY);
    settle().await;
    assert_eq!(healthy(&dns), (true, false), "control region lost");
    recover(STANDBY);

    // Home's region lost while the decision still names it (regionpilot paused, say):
    // the control stack's gate still says home serves, so users are not moved.
    lose(HOME);
    settle().await;
    assert_eq!(
        healthy(&dns),
        (true, false),
        "home lost, still the decision"
    );
    recover(HOME);

    // The decision moves: both gates follow (home's through its parameter).
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    settle().await;
    assert_eq!(healthy(&dns), (false, true), "after the switch");

    // And now the control plane's region is the active one and is lost: home's gate
    // still says the standby serves; DNS keeps the last decision.
    lose(STANDBY);
    settle().await;
    assert_eq!(healthy(&dns), (false, true), "active control region lost");
    recover(STANDBY);

    stop.store(true, Ordering::SeqCst);
    checks.await.unwrap();
    // The checks did move when the decision did, and only then.
    let changes = dns.lock().unwrap().status[HOME].changes_after(0);
    assert_eq!(changes.len(), 1, "{changes:?}");
}
