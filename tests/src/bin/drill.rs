//! The region-outage drill: the three real bootstraps, through the Lambda Runtime API,
//! take an application through a frozen home region and back, on the local rig.
//!
//! Steady state; the home region freezes; the health probe sees it; the alarm rule fires;
//! failover; the parameter is switched in every reachable region and the refresh started;
//! home recovers; failback verification; failback. An application simulator writes to the
//! replicated table throughout, in the region the parameter names, so the drill can count
//! writes attempted, failed and lost.
//!
//! Run it with `./scripts/drill` (which installs what it needs and builds the functions).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a drill: failing loudly is the point

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use regionpilot_tests::{LocalFunction, Stage, World, alarm_for, paths, world};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
/// The alarm rule template.yaml configures: 3 of 3 samples with Healthy < 1.
const DATAPOINTS_TO_ALARM: u32 = 3;

struct Timeline {
    started: Instant,
    events: Vec<(f64, String)>,
}

impl Timeline {
    fn mark(&mut self, what: impl Into<String>) -> f64 {
        let at = self.started.elapsed().as_secs_f64();
        let what = what.into();
        println!("  t+{at:>7.3}s  {what}");
        self.events.push((at, what));
        at
    }
}

/// One write the simulated application attempted.
#[derive(Clone)]
struct Write {
    at: f64,
    region: String,
    key: String,
    ok: bool,
}

/// The application: reads its active region from the parameter (the standby's copy, the
/// one that stays reachable) and writes an item there every 100 ms, with a short timeout.
async fn simulate_app(
    world: Arc<World>,
    started: Instant,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Write>>>,
) {
    let mut n = 0u64;
    let mut region = HOME.to_owned();
    while !stop.load(Ordering::SeqCst) {
        let read = world
            .client(STANDBY)
            .ssm
            .get_parameter()
            .name(world::PARAMETER)
            .send();
        // The app keeps its last known region when the parameter cannot be read.
        if let Ok(Ok(out)) = tokio::time::timeout(Duration::from_millis(300), read).await
            && let Some(value) = out.parameter.and_then(|p| p.value)
        {
            region = value;
        }
        n += 1;
        let key = format!("write-{n:06}");
        let put = world
            .client(&region)
            .dynamodb
            .put_item()
            .table_name(world::APP_TABLE)
            .item("pk", AttributeValue::S(key.clone()))
            .item("region", AttributeValue::S(region.clone()))
            .send();
        let result = tokio::time::timeout(Duration::from_millis(300), put).await;
        let ok = matches!(result, Ok(Ok(_)));
        log.lock().await.push(Write {
            at: started.elapsed().as_secs_f64(),
            region: region.clone(),
            key,
            ok,
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn keys_in(world: &World, region: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut start = None;
    loop {
        let out = world
            .client(region)
            .dynamodb
            .scan()
            .table_name(world::APP_TABLE)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan app table");
        for item in out.items.unwrap_or_default() {
            if let Some(AttributeValue::S(k)) = item.get("pk") {
                keys.insert(k.clone());
            }
        }
        start = out.last_evaluated_key;
        if start.is_none() {
            return keys;
        }
    }
}

async fn probe_home_healthy(probe: &LocalFunction) -> (bool, Value) {
    let out = probe.invoke(&json!({"command": "probe"})).await.ok();
    (out["regions"][HOME]["healthy"] == true, out)
}

fn params_line(params: &std::collections::BTreeMap<String, Option<String>>) -> String {
    params
        .iter()
        .map(|(r, v)| format!("{r}={}", v.as_deref().unwrap_or("<unreachable>")))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The drill's pace. `--fast` compresses the template's timings so the default scenario
/// takes well under a minute once built; the normal pace keeps the template's 10 s probe
/// samples.
struct Pace {
    probe_interval: Duration,
    outage: Duration,
    verify_every: Duration,
    healthy_checks: &'static str,
    min_hold_seconds: &'static str,
}

const FAST: Pace = Pace {
    probe_interval: Duration::from_secs(1),
    outage: Duration::from_secs(8),
    verify_every: Duration::from_secs(1),
    healthy_checks: "3",
    min_hold_seconds: "5",
};

const TEMPLATE_PACE: Pace = Pace {
    probe_interval: Duration::from_secs(10),
    outage: Duration::from_secs(60),
    verify_every: Duration::from_secs(10),
    healthy_checks: "3",
    min_hold_seconds: "30",
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    /// The home region stops answering (SIGSTOP), then comes back with its data.
    Freeze,
    /// The home region is gone (SIGKILL, data lost with it) and does not come back.
    Kill,
    /// A freeze, and replication back to home is paused while home recovers: failback
    /// must wait until the standby's writes have drained.
    ReplicationPause,
    /// The home region freezes and recovers twice: the flap guard stops automation.
    Flapping,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Freeze,
        Scenario::Kill,
        Scenario::ReplicationPause,
        Scenario::Flapping,
    ];

    fn parse(name: &str) -> Option<Vec<Scenario>> {
        Some(match name {
            "freeze" => vec![Scenario::Freeze],
            "kill" => vec![Scenario::Kill],
            "replication-pause" => vec![Scenario::ReplicationPause],
            "flapping" => vec![Scenario::Flapping],
            "all" => Scenario::ALL.to_vec(),
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Scenario::Freeze => "freeze",
            Scenario::Kill => "kill",
            Scenario::ReplicationPause => "replication-pause",
            Scenario::Flapping => "flapping",
        }
    }
}

const USAGE: &str = "usage: drill [--fast] [--scenario freeze|kill|replication-pause|flapping|all]";

fn arguments() -> (Vec<Scenario>, &'static Pace) {
    let mut scenarios = vec![Scenario::Freeze];
    let mut pace = &TEMPLATE_PACE;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--fast" => pace = &FAST,
            "--scenario" => {
                let name = args.next().unwrap_or_default();
                scenarios = Scenario::parse(&name).unwrap_or_else(|| {
                    eprintln!("unknown scenario {name:?}\n{USAGE}");
                    std::process::exit(2)
                });
            }
            _ => {
                eprintln!("unknown argument {arg:?}\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    (scenarios, pace)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (scenarios, pace) = arguments();
    let mut failed = Vec::new();
    for scenario in scenarios {
        if let Err(why) = run(scenario, pace).await {
            println!("\nSCENARIO {} FAILED: {why}", scenario.name());
            failed.push(scenario.name());
        }
    }
    if !failed.is_empty() {
        println!("\nDRILL FAILED: {failed:?}");
        std::process::exit(1);
    }
    println!("\nDRILL PASSED");
}

/// What the scenario measured, for the summary.
#[derive(Default)]
struct Marks {
    outage: f64,
    detected: f64,
    decision: f64,
    decided: f64,
    rto: f64,
    recovered: Option<f64>,
    failed_back: Option<f64>,
    failback_held: Option<f64>,
}

/// The rig's CloudWatch does not evaluate alarms, so the drill applies the template's rule
/// (DATAPOINTS_TO_ALARM of as many samples with Healthy < 1) over the probe's samples.
async fn detect(t: &mut Timeline, probe: &LocalFunction, pace: &Pace) -> f64 {
    let mut failures = 0;
    while failures < DATAPOINTS_TO_ALARM {
        let tick = Instant::now();
        let (healthy, out) = probe_home_healthy(probe).await;
        if healthy {
            failures = 0;
        } else {
            failures += 1;
            t.mark(format!(
                "probe: {HOME} Healthy=0 ({}) [{failures}/{DATAPOINTS_TO_ALARM}]",
                out["regions"][HOME]["error_class"].as_str().unwrap_or("?")
            ));
        }
        if failures < DATAPOINTS_TO_ALARM {
            tokio::time::sleep(pace.probe_interval.saturating_sub(tick.elapsed())).await;
        }
    }
    t.mark(format!(
        "alarm regionpilot-unhealthy-{HOME} -> ALARM (rule evaluated by the drill); delivering it to failover"
    ))
}

/// Delivers the alarm; returns the answer, the decision time and when it was decided.
async fn fail_over(t: &mut Timeline, stage: &Stage) -> (Value, f64, f64) {
    let started = Instant::now();
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    let decision = started.elapsed().as_secs_f64();
    let decided = t.mark(format!(
        "failover: {} {} -> {} at epoch {} in {:.0} ms",
        out["outcome"],
        out["from"],
        out["to"],
        out["epoch"],
        decision * 1000.0
    ));
    for (region, result) in out["publish"].as_object().into_iter().flatten() {
        t.mark(format!("  parameter in {region}: {}", result["status"]));
    }
    for (group, result) in out["refreshes"].as_object().into_iter().flatten() {
        t.mark(format!(
            "  refresh {group}: {} {}",
            result["status"],
            result["id"].as_str().unwrap_or("")
        ));
    }
    (out, decision, decided)
}

/// Runs the verifier every `pace.verify_every` until `done` says stop (or a limit).
async fn verify_until(
    t: &mut Timeline,
    verifier: &LocalFunction,
    pace: &Pace,
    rounds: usize,
    mut done: impl FnMut(&Value) -> bool,
) -> Option<(f64, Value)> {
    for _ in 0..rounds {
        let report = verifier.invoke(&json!({"command": "verify"})).await.ok();
        let drift = report["reconcile"]["drift"].as_array().map_or(0, Vec::len);
        let at = t.mark(format!(
            "failback verification: {} ({}){}",
            report["outcome"],
            report["reason"].as_str().unwrap_or(""),
            if drift > 0 {
                format!("; reconciled {drift} drift(s)")
            } else {
                String::new()
            }
        ));
        if let Some(window) = report["data_loss_window"]["seconds"].as_f64()
            && report["outcome"] == "failed_back"
        {
            t.mark(format!(
                "  data-loss window recorded at failover: {window:.3} s of {HOME} writes at risk"
            ));
        }
        if done(&report) {
            return Some((at, report));
        }
        tokio::time::sleep(pace.verify_every).await;
    }
    None
}

/// The failover function's `status` answer.
async fn status(stage: &Stage) -> Value {
    stage
        .failover
        .invoke(&json!({"command": "status"}))
        .await
        .ok()
}

fn check(ok: bool, what: impl Into<String>) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.into()) }
}

async fn run(scenario: Scenario, pace: &Pace) -> Result<(), String> {
    println!(
        "\nregionpilot drill, scenario {}: {}",
        scenario.name(),
        match scenario {
            Scenario::Freeze =>
                "home region freeze, detection, failover, recovery, verified failback",
            Scenario::Kill =>
                "home region killed for good: failover, and no failback to a region that is gone",
            Scenario::ReplicationPause =>
                "freeze and failover; replication back to home paused during recovery, so failback waits for the drain",
            Scenario::Flapping =>
                "home region freezes and recovers twice; the flap guard stops automation",
        }
    );
    println!(
        "  {HOME} (home) and {STANDBY} (standby, runs the control plane): one moto server each on 127.0.0.1,"
    );
    println!(
        "  Global Tables replication between them; the three bootstraps run through the Lambda Runtime API"
    );
    println!(
        "  pace: probe sample every {:?}, outage {:?}, verification every {:?}\n",
        pace.probe_interval, pace.outage, pace.verify_every
    );
    let max_switches = if scenario == Scenario::Flapping {
        "3"
    } else {
        "10"
    };
    let env = [
        ("CONNECT_TIMEOUT_MS", "300"),
        ("CALL_TIMEOUT_MS", "500"),
        ("CALL_MAX_ATTEMPTS", "2"),
        ("PROBE_TIMEOUT_MS", "500"),
        ("COOLDOWN_SECONDS", "5"),
        ("FAILBACK_MODE", "auto"),
        ("FAILBACK_HEALTHY_CHECKS", pace.healthy_checks),
        ("FAILBACK_MIN_HOLD_SECONDS", pace.min_hold_seconds),
        ("FAILBACK_MAX_LAG_SECONDS", "2"),
        ("FAILBACK_DRAIN_WAIT_SECONDS", "2"),
        ("PROBE_INTERVAL_SECONDS", "1"),
        ("MAX_AUTOMATIC_SWITCHES_PER_DAY", max_switches),
    ];
    let setup = Instant::now();
    let mut stage = Stage::start(
        &format!("drill-{}", scenario.name()),
        &[HOME, STANDBY],
        STANDBY,
        2,
        &env,
    )
    .await;
    let probe = stage.start_function("health-probe", 1, &[]).await;
    let verifier = stage.start_function("failback", 1, &[]).await;
    println!(
        "rig up, seeded and functions started in {:.1}s; logs in {}\n",
        setup.elapsed().as_secs_f64(),
        stage.rig.dir.display()
    );
    let world = Arc::new(World::connect(&stage.rig, &[HOME, STANDBY], STANDBY).await);

    let mut t = Timeline {
        started: Instant::now(),
        events: Vec::new(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(Mutex::new(Vec::new()));
    let app = tokio::spawn(simulate_app(
        world.clone(),
        t.started,
        stop.clone(),
        writes.clone(),
    ));

    let (healthy, _) = probe_home_healthy(&probe).await;
    check(healthy, "home must start healthy")?;
    t.mark(format!(
        "steady state: probe sees both regions healthy; parameters {}",
        params_line(&stage.world.parameters().await)
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut m = Marks::default();
    let mut duplicate = Value::Null;
    let cycles = if scenario == Scenario::Flapping { 2 } else { 1 };
    for cycle in 1..=cycles {
        let outage = if scenario == Scenario::Kill {
            let at = t.mark(format!(
                "OUTAGE: {HOME} killed (SIGKILL; its data goes with it)"
            ));
            stage.rig.kill(HOME).await;
            at
        } else {
            let at = t.mark(format!("OUTAGE {cycle}: {HOME} frozen (SIGSTOP)"));
            stage.rig.freeze(HOME);
            at
        };
        let detected = detect(&mut t, &probe, pace).await;
        let (out, decision, decided) = fail_over(&mut t, &stage).await;
        check(
            out["outcome"] == "switched",
            format!("failover did not switch: {out}"),
        )?;
        if cycle == 1 {
            duplicate = stage.failover.invoke(&alarm_for(HOME)).await.ok();
            t.mark(format!(
                "duplicate alarm delivery: {}",
                duplicate["outcome"]
            ));
            m.outage = outage;
            m.detected = detected;
            m.decision = decision;
            m.decided = decided;
            // RTO: the first acknowledged app write in the new region.
            m.rto = loop {
                if let Some(w) = writes
                    .lock()
                    .await
                    .iter()
                    .find(|w| w.ok && w.region == STANDBY && w.at >= outage)
                {
                    break w.at;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            t.mark(format!("app writes again, in {STANDBY}"));
        }

        let elapsed = Duration::from_secs_f64(t.started.elapsed().as_secs_f64() - outage);
        tokio::time::sleep(pace.outage.saturating_sub(elapsed)).await;
        if scenario == Scenario::Kill {
            // The region does not come back: the verifier must keep the app where it is.
            let report = verify_until(&mut t, &verifier, pace, 3, |_| false).await;
            check(report.is_none(), "the verifier stopped early")?;
            let status = status(&stage).await;
            t.mark(format!(
                "status: active {} phase {} (no failback to a dead region)",
                status["status"]["active_region"], status["status"]["phase"]
            ));
            check(
                status["status"]["active_region"] == STANDBY,
                format!("left the standby: {status}"),
            )?;
            break;
        }
        if scenario == Scenario::ReplicationPause {
            stage.rig.set_replication(STANDBY, HOME, 0.0, true);
            t.mark(format!("replication {STANDBY} -> {HOME} PAUSED"));
        }
        stage.rig.thaw(HOME);
        let recovered = t.mark(format!("RECOVERY {cycle}: {HOME} thawed"));
        if cycle == 1 {
            m.recovered = Some(recovered);
        }

        if scenario == Scenario::ReplicationPause {
            // Enough verification rounds that only the paused replication holds failback.
            let held = verify_until(&mut t, &verifier, pace, 5, |r| {
                r["outcome"] == "failed_back"
            })
            .await;
            check(
                held.is_none(),
                "failed back while replication to home was paused",
            )?;
            stage.rig.set_replication(STANDBY, HOME, 0.0, false);
            let resumed = t.mark(format!("replication {STANDBY} -> {HOME} resumed"));
            m.failback_held = Some(resumed - recovered);
        }
        if scenario == Scenario::Flapping && cycle == cycles {
            let report = verify_until(&mut t, &verifier, pace, 12, |r| {
                r["outcome"] == "paused"
                    || r["reason"]
                        .as_str()
                        .is_some_and(|s| s.contains("flap guard"))
            })
            .await;
            let status = status(&stage).await;
            t.mark(format!(
                "flap guard: automation paused by {} ({}); app stays in {}",
                status["status"]["paused"]["by"],
                status["status"]["paused"]["reason"],
                status["status"]["active_region"]
            ));
            check(report.is_some(), "the flap guard did not stop automation")?;
            check(
                status["status"]["paused"]["by"] == "flap-guard",
                format!("not paused by the flap guard: {status}"),
            )?;
            check(
                status["status"]["active_region"] == STANDBY,
                format!("flapped back: {status}"),
            )?;
            break;
        }
        let rounds =
            (Duration::from_secs(90).as_secs_f64() / pace.verify_every.as_secs_f64()) as usize;
        let back = verify_until(&mut t, &verifier, pace, rounds, |r| {
            r["outcome"] == "failed_back"
        })
        .await;
        let Some((at, _)) = back else {
            return Err("no failback within 90 s of recovery".into());
        };
        if cycle == 1 {
            m.failed_back = Some(at);
        }
        if cycle < cycles {
            // Let the app settle in home before the next outage.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }

    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);
    app.await.map_err(|e| format!("app simulator: {e}"))?;
    let params = stage.world.parameters().await;
    t.mark(format!("parameters: {}", params_line(&params)));

    // Let replication settle, then count acknowledged writes missing where they must be:
    // in both regions, or in the standby alone when home is gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = writes.lock().await.clone();
    let standby_keys = keys_in(&stage.world, STANDBY).await;
    let home_keys = if scenario == Scenario::Kill {
        None
    } else {
        Some(keys_in(&stage.world, HOME).await)
    };
    let acknowledged: Vec<&Write> = writes.iter().filter(|w| w.ok).collect();
    let lost: Vec<&&Write> = acknowledged
        .iter()
        .filter(|w| {
            !standby_keys.contains(&w.key)
                || home_keys
                    .as_ref()
                    .is_some_and(|home| !home.contains(&w.key))
        })
        .collect();
    let failed = writes.len() - acknowledged.len();
    let epochs = stage.world.history_epochs().await;

    println!("\nsummary ({})", scenario.name());
    let row = |name: &str, value: String| println!("  {name:<50} {value}");
    row(
        "detection (outage -> alarm)",
        format!("{:.3} s", m.detected - m.outage),
    );
    row(
        "decision (alarm -> switched, published)",
        format!("{:.3} s", m.decision),
    );
    row(
        "outage -> parameter switched everywhere reachable",
        format!("{:.3} s", m.decided - m.outage),
    );
    row(
        "RTO (outage -> app writes in the new region)",
        format!("{:.3} s", m.rto - m.outage),
    );
    if let (Some(recovered), Some(back)) = (m.recovered, m.failed_back) {
        row(
            "recovery -> failback done",
            format!("{:.3} s", back - recovered),
        );
    }
    if let Some(held) = m.failback_held {
        row(
            "failback held while replication was paused",
            format!("{held:.3} s"),
        );
    }
    row(
        "app writes attempted / failed / lost",
        format!("{} / {} / {}", writes.len(), failed, lost.len()),
    );
    if scenario == Scenario::Kill {
        let transition = &status(&stage).await["status"]["last_transition"];
        let window = match (
            transition["started_at"].as_u64(),
            transition["last_replicated_from_old"].as_u64(),
        ) {
            (Some(switched), Some(seen)) => {
                format!("{:.3} s", switched.saturating_sub(seen) as f64 / 1000.0)
            }
            _ => "unknown".to_owned(),
        };
        row(
            "  of which never replicated before the kill",
            format!(
                "{} (asynchronous replication; data-loss window recorded at failover: {window})",
                lost.len()
            ),
        );
    }
    row("transitions in history", format!("{epochs:?}"));
    row("duplicate alarm", duplicate["outcome"].to_string());

    let svg = paths::workspace().join(format!("target/drill-{}.svg", scenario.name()));
    let active_spans = active_spans(&t.events);
    std::fs::write(
        &svg,
        timeline_svg(scenario, &t.events, &active_spans, &writes),
    )
    .map_err(|e| format!("write {}: {e}", svg.display()))?;
    println!("\ntimeline picture: {}", svg.display());

    check(
        duplicate["outcome"] == "already_active",
        "the duplicate alarm was not already_active",
    )?;
    let expected: Vec<u64> = match scenario {
        Scenario::Freeze | Scenario::ReplicationPause => vec![1, 2],
        Scenario::Kill => vec![1],
        Scenario::Flapping => vec![1, 2, 3],
    };
    check(
        epochs == expected,
        format!("history {epochs:?}, expected {expected:?}"),
    )?;
    if scenario == Scenario::Kill {
        // A killed region takes its unreplicated writes with it: only writes acknowledged
        // in the moments before the kill (within the replication lag) may be missing.
        let early: Vec<f64> = lost
            .iter()
            .map(|w| w.at)
            .filter(|at| *at < m.outage - 2.0)
            .collect();
        check(
            early.is_empty(),
            format!("writes lost from long before the kill: {early:?}"),
        )?;
    } else {
        check(
            lost.is_empty(),
            format!("{} acknowledged writes lost", lost.len()),
        )?;
    }
    if scenario != Scenario::Kill && scenario != Scenario::Flapping {
        check(
            stage.world.parameters_all(HOME).await.0,
            format!(
                "failback did not publish everywhere: {}",
                params_line(&params)
            ),
        )?;
    }
    Ok(())
}

/// When the standby was active, from the timeline: failover marks to failback marks.
fn active_spans(events: &[(f64, String)]) -> Vec<(f64, f64)> {
    let end = events.last().map_or(0.0, |e| e.0);
    let mut spans = Vec::new();
    let mut since = None;
    for (at, what) in events {
        if what.starts_with("failover: \"switched\"") {
            since = Some(*at);
        }
        if what.starts_with("failback verification: \"failed_back\"")
            && let Some(start) = since.take()
        {
            spans.push((start, *at));
        }
    }
    if let Some(start) = since {
        spans.push((start, end));
    }
    spans
}

/// The timeline as an SVG: outage and failed-over spans, app writes as ticks, events.
fn timeline_svg(
    scenario: Scenario,
    events: &[(f64, String)],
    active_spans: &[(f64, f64)],
    writes: &[Write],
) -> String {
    let end = events.last().map_or(1.0, |e| e.0).max(1.0) * 1.02;
    let (width, left, right) = (1100.0, 40.0, 40.0);
    let x = |t: f64| left + (width - left - right) * t / end;
    let top = 60.0;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="24" font-size="15" font-weight="bold">regionpilot drill ({}): {HOME} outage</text>
"##,
        140.0 + 16.0 * events.len() as f64,
        scenario.name(),
    );
    // Outage spans: each OUTAGE mark to the next RECOVERY mark (or the end).
    let mut down_since = None;
    let mut outages = Vec::new();
    for (at, what) in events {
        if what.starts_with("OUTAGE") {
            down_since = Some(*at);
        } else if what.starts_with("RECOVERY")
            && let Some(start) = down_since.take()
        {
            outages.push((start, *at));
        }
    }
    outages.extend(down_since.map(|start| (start, end)));
    for (start, stop) in outages {
        svg.push_str(&format!(
            r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="18" fill="#f4a6a6"/><text x="{:.1}" y="{}">{HOME} down</text>"##,
            x(start),
            x(stop) - x(start),
            x(start) + 4.0,
            top + 13.0
        ));
    }
    for (start, stop) in active_spans {
        svg.push_str(&format!(
            r##"<rect x="{:.1}" y="{}" width="{:.1}" height="18" fill="#ffd27f"/><text x="{:.1}" y="{}">active: {STANDBY}</text>"##,
            x(*start),
            top + 22.0,
            x(*stop) - x(*start),
            x(*start) + 4.0,
            top + 35.0
        ));
    }
    let lane = top + 50.0;
    svg.push_str(&format!(r#"<text x="2" y="{}">app</text>"#, lane + 9.0));
    for w in writes {
        let colour = match (w.ok, w.region.as_str()) {
            (false, _) => "#d62728",
            (true, HOME) => "#1f77b4",
            (true, _) => "#ff7f0e",
        };
        svg.push_str(&format!(
            r#"<rect x="{:.1}" y="{lane}" width="1.5" height="12" fill="{colour}"/>"#,
            x(w.at)
        ));
    }
    let axis = lane + 24.0;
    svg.push_str(&format!(
        r#"<line x1="{left}" y1="{axis}" x2="{:.1}" y2="{axis}" stroke="black"/>"#,
        x(end)
    ));
    let mut second = 0.0;
    while second <= end {
        svg.push_str(&format!(
            r#"<line x1="{0:.1}" y1="{axis}" x2="{0:.1}" y2="{1}" stroke="black"/><text x="{0:.1}" y="{2}" text-anchor="middle">{3}s</text>"#,
            x(second),
            axis + 4.0,
            axis + 15.0,
            second
        ));
        second += 5.0;
    }
    for (i, (at, what)) in events.iter().enumerate() {
        let y = axis + 34.0 + 16.0 * i as f64;
        let text = what
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "'");
        svg.push_str(&format!(
            r##"<line x1="{0:.1}" y1="{axis}" x2="{0:.1}" y2="{1}" stroke="#999" stroke-dasharray="2,2"/><text x="{2:.1}" y="{1}">t+{3:.2}s {4}</text>"##,
            x(*at),
            y,
            x(*at) + 3.0,
            at,
            text
        ));
    }
    svg.push_str(
        r##"<text x="40" y="44" fill="#555">app writes: blue = home, orange = standby, red = failed</text></svg>"##,
    );
    svg
}
