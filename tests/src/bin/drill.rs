//! The region-outage drill: the real failover bootstrap, through the Lambda Runtime API,
//! takes an application through a frozen home region and back, on the local rig.
//!
//! Run it with `./scripts/drill` (which installs what it needs and builds the functions).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a drill: failing loudly is the point

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use regionpilot_tests::{Stage, paths, world};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
/// The alarm rule the template configures: 3 of 3 failed probes.
const DATAPOINTS_TO_ALARM: u32 = 3;
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

struct Timeline {
    started: Instant,
    lines: Vec<(Duration, String)>,
}

impl Timeline {
    fn mark(&mut self, what: impl Into<String>) -> Duration {
        let at = self.started.elapsed();
        let what = what.into();
        println!("  t+{:>7.3}s  {what}", at.as_secs_f64());
        self.lines.push((at, what));
        at
    }
}

fn fixture(name: &str) -> Value {
    let text =
        std::fs::read_to_string(paths::workspace().join("events").join(name)).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

/// One probe of a region as the health probe does it: a strongly consistent read of the
/// canary item under a short deadline.
async fn region_answers(stage: &Stage, region: &str) -> bool {
    let read = stage
        .world
        .client(region)
        .dynamodb
        .get_item()
        .table_name(world::HEALTH_TABLE)
        .key("pk", AttributeValue::S("canary".into()))
        .consistent_read(true)
        .send();
    matches!(
        tokio::time::timeout(Duration::from_millis(500), read).await,
        Ok(Ok(_))
    )
}

fn params_line(params: &std::collections::BTreeMap<String, Option<String>>) -> String {
    params
        .iter()
        .map(|(r, v)| format!("{r}={}", v.as_deref().unwrap_or("<unreachable>")))
        .collect::<Vec<_>>()
        .join("  ")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("regionpilot drill: region freeze, failover, recovery, failback");
    println!(
        "  regions {HOME} (home) and {STANDBY} (standby, runs the control plane); one moto server each on 127.0.0.1\n"
    );
    let env = [
        ("CONNECT_TIMEOUT_MS", "300"),
        ("CALL_TIMEOUT_MS", "500"),
        ("CALL_MAX_ATTEMPTS", "2"),
        ("PROBE_TIMEOUT_MS", "500"),
        ("COOLDOWN_SECONDS", "0"),
    ];
    let setup = Instant::now();
    let stage = Stage::start("drill", &[HOME, STANDBY], STANDBY, 2, &env).await;
    println!(
        "rig up and seeded in {:.1}s; logs in {}\n",
        setup.elapsed().as_secs_f64(),
        stage.rig.dir.display()
    );

    let mut t = Timeline {
        started: Instant::now(),
        lines: Vec::new(),
    };
    let status = stage
        .failover
        .invoke(&json!({"command": "status"}))
        .await
        .ok();
    t.mark(format!(
        "steady state: active {} epoch {}; parameters {}",
        status["active_region"],
        status["epoch"],
        params_line(&stage.world.parameters().await)
    ));

    let outage = t.mark(format!("OUTAGE: {HOME} frozen (SIGSTOP)"));
    stage.rig.freeze(HOME);

    // The rig's CloudWatch does not evaluate alarms, so the drill applies the template's
    // rule itself: DATAPOINTS_TO_ALARM consecutive failed probes put the alarm in ALARM.
    let mut failures = 0;
    while failures < DATAPOINTS_TO_ALARM {
        let tick = Instant::now();
        if region_answers(&stage, HOME).await {
            failures = 0;
        } else {
            failures += 1;
            t.mark(format!(
                "probe: {HOME} did not answer ({failures}/{DATAPOINTS_TO_ALARM})"
            ));
        }
        tokio::time::sleep(PROBE_INTERVAL.saturating_sub(tick.elapsed())).await;
    }
    let detected = t.mark("alarm regionpilot-unhealthy-us-east-1 -> ALARM (evaluated by the drill); invoking failover");

    let decision_started = Instant::now();
    let out = stage
        .failover
        .invoke(&fixture("alarm-direct.json"))
        .await
        .ok();
    let decision = decision_started.elapsed();
    let decided = t.mark(format!(
        "failover answered {}: {} -> {} at epoch {} in {:.0} ms",
        out["outcome"],
        out["from"],
        out["to"],
        out["epoch"],
        decision.as_secs_f64() * 1000.0
    ));
    for (region, result) in out["publish"].as_object().into_iter().flatten() {
        t.mark(format!("  publish {region}: {}", result["status"]));
    }
    for (group, result) in out["refreshes"].as_object().into_iter().flatten() {
        t.mark(format!(
            "  refresh {group}: {} {}",
            result["status"],
            result["id"].as_str().unwrap_or("")
        ));
    }
    let reachable_switched = stage.world.parameter(STANDBY).await.as_deref() == Some(STANDBY);
    assert!(reachable_switched, "standby parameter not switched");
    assert_eq!(out["outcome"], "switched", "{out}");

    // A duplicate delivery of the same alarm must not flip anything.
    let dup = stage
        .failover
        .invoke(&fixture("alarm-direct.json"))
        .await
        .ok();
    t.mark(format!(
        "duplicate alarm delivery answered {}",
        dup["outcome"]
    ));

    stage.rig.thaw(HOME);
    let recovered = t.mark(format!("RECOVERY: {HOME} thawed"));
    let params = stage.world.parameters().await;
    t.mark(format!(
        "parameters after recovery: {} (home missed the publish while frozen)",
        params_line(&params)
    ));

    let failback_started = Instant::now();
    let back = stage
        .failover
        .invoke(&fixture("command-failback.json"))
        .await
        .ok();
    let failback = failback_started.elapsed();
    let failed_back = t.mark(format!(
        "failback command answered {}: {} -> {} at epoch {} in {:.0} ms",
        back["outcome"],
        back["from"],
        back["to"],
        back["epoch"],
        failback.as_secs_f64() * 1000.0
    ));
    let params = stage.world.parameters().await;
    t.mark(format!("parameters: {}", params_line(&params)));
    assert!(
        params.values().all(|v| v.as_deref() == Some(HOME)),
        "failback did not publish everywhere"
    );
    let epochs = stage.world.history_epochs().await;

    println!("\nsummary");
    println!(
        "  detection (outage -> alarm)            {:>8.3} s",
        (detected - outage).as_secs_f64()
    );
    println!(
        "  decision (alarm -> switched, published) {:>8.3} s",
        decision.as_secs_f64()
    );
    println!(
        "  outage -> parameter switched everywhere reachable {:>8.3} s",
        (decided - outage).as_secs_f64()
    );
    println!(
        "  recovery -> failback done               {:>8.3} s",
        (failed_back - recovered).as_secs_f64()
    );
    println!("  transitions in history                  {epochs:?}");
    println!(
        "  duplicate alarm                         {}",
        dup["outcome"]
    );
    println!("\nDRILL PASSED");
}
