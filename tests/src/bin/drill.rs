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
use regionpilot_tests::{LocalFunction, Stage, World, paths, world};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
/// The alarm rule template.yaml configures: 3 of 3 samples with Healthy < 1.
const DATAPOINTS_TO_ALARM: u32 = 3;
/// The drill samples every second (the template: every 10 s) to stay quick.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
const OUTAGE: Duration = Duration::from_secs(8);

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

fn fixture(name: &str) -> Value {
    let text =
        std::fs::read_to_string(paths::workspace().join("events").join(name)).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!(
        "regionpilot drill: home region freeze, detection, failover, recovery, verified failback"
    );
    println!(
        "  {HOME} (home) and {STANDBY} (standby, runs the control plane): one moto server each on 127.0.0.1,"
    );
    println!(
        "  Global Tables replication between them; the three bootstraps run through the Lambda Runtime API\n"
    );
    let env = [
        ("CONNECT_TIMEOUT_MS", "300"),
        ("CALL_TIMEOUT_MS", "500"),
        ("CALL_MAX_ATTEMPTS", "2"),
        ("PROBE_TIMEOUT_MS", "500"),
        ("COOLDOWN_SECONDS", "5"),
        ("FAILBACK_MODE", "auto"),
        ("FAILBACK_HEALTHY_CHECKS", "3"),
        ("FAILBACK_MIN_HOLD_SECONDS", "5"),
        ("FAILBACK_MAX_LAG_SECONDS", "2"),
        ("FAILBACK_DRAIN_WAIT_SECONDS", "2"),
        ("PROBE_INTERVAL_SECONDS", "1"),
    ];
    let setup = Instant::now();
    let stage = Stage::start("drill", &[HOME, STANDBY], STANDBY, 2, &env).await;
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
    assert!(healthy, "home must start healthy");
    t.mark(format!(
        "steady state: probe sees both regions healthy; parameters {}",
        params_line(&stage.world.parameters().await)
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let outage = t.mark(format!("OUTAGE: {HOME} frozen (SIGSTOP)"));
    stage.rig.freeze(HOME);

    // The rig's CloudWatch does not evaluate alarms, so the drill applies the template's
    // rule itself over the probe's Healthy samples and then delivers the alarm event.
    let mut failures = 0;
    while failures < DATAPOINTS_TO_ALARM {
        let tick = Instant::now();
        let (healthy, out) = probe_home_healthy(&probe).await;
        if healthy {
            failures = 0;
        } else {
            failures += 1;
            t.mark(format!(
                "probe: {HOME} Healthy=0 ({}) [{failures}/{DATAPOINTS_TO_ALARM}]",
                out["regions"][HOME]["error_class"].as_str().unwrap_or("?")
            ));
        }
        tokio::time::sleep(PROBE_INTERVAL.saturating_sub(tick.elapsed())).await;
    }
    let detected = t.mark("alarm regionpilot-unhealthy-us-east-1 -> ALARM (rule evaluated by the drill); delivering it to failover");

    let decision_started = Instant::now();
    let out = stage
        .failover
        .invoke(&fixture("alarm-direct.json"))
        .await
        .ok();
    let decision = decision_started.elapsed().as_secs_f64();
    let decided = t.mark(format!(
        "failover: {} {} -> {} at epoch {} in {:.0} ms",
        out["outcome"],
        out["from"],
        out["to"],
        out["epoch"],
        decision * 1000.0
    ));
    assert_eq!(out["outcome"], "switched", "{out}");
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
    let dup = stage
        .failover
        .invoke(&fixture("alarm-direct.json"))
        .await
        .ok();
    t.mark(format!("duplicate alarm delivery: {}", dup["outcome"]));

    // RTO: the first acknowledged app write in the new region.
    let rto_at = loop {
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

    let elapsed_outage = Duration::from_secs_f64(t.started.elapsed().as_secs_f64() - outage);
    tokio::time::sleep(OUTAGE.saturating_sub(elapsed_outage)).await;
    stage.rig.thaw(HOME);
    let recovered = t.mark(format!("RECOVERY: {HOME} thawed"));

    // The failback verification runs every minute in AWS; here every second.
    let failed_back = loop {
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
        if report["outcome"] == "failed_back" {
            break at;
        }
        assert!(
            at - recovered < 60.0,
            "no failback within a minute of recovery"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);
    app.await.expect("app simulator");
    let params = stage.world.parameters().await;
    t.mark(format!("parameters: {}", params_line(&params)));
    assert!(
        params.values().all(|v| v.as_deref() == Some(HOME)),
        "failback did not publish everywhere"
    );

    // Let replication settle, then count acknowledged writes missing from either region.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = writes.lock().await.clone();
    let (home_keys, standby_keys) = (
        keys_in(&stage.world, HOME).await,
        keys_in(&stage.world, STANDBY).await,
    );
    let acknowledged: Vec<&Write> = writes.iter().filter(|w| w.ok).collect();
    let lost = acknowledged
        .iter()
        .filter(|w| !home_keys.contains(&w.key) || !standby_keys.contains(&w.key))
        .count();
    let failed = writes.len() - acknowledged.len();
    let epochs = stage.world.history_epochs().await;

    println!("\nsummary");
    let row = |name: &str, value: String| println!("  {name:<46} {value}");
    row(
        "detection (outage -> alarm)",
        format!("{:.3} s", detected - outage),
    );
    row(
        "decision (alarm -> switched, published)",
        format!("{:.3} s", decision),
    );
    row(
        "outage -> parameter switched everywhere reachable",
        format!("{:.3} s", decided - outage),
    );
    row(
        "RTO (outage -> app writes in the new region)",
        format!("{:.3} s", rto_at - outage),
    );
    row(
        "recovery -> failback done",
        format!("{:.3} s", failed_back - recovered),
    );
    row(
        "app writes attempted / failed / lost",
        format!("{} / {} / {}", writes.len(), failed, lost),
    );
    row("transitions in history", format!("{epochs:?}"));
    row("duplicate alarm", dup["outcome"].to_string());

    let svg = paths::workspace().join("target/drill-timeline.svg");
    std::fs::write(
        &svg,
        timeline_svg(&t.events, outage, recovered, decided, failed_back, &writes),
    )
    .expect("write svg");
    println!("\ntimeline picture: {}", svg.display());
    assert_eq!(epochs, vec![1, 2], "exactly one failover and one failback");
    println!("\nDRILL PASSED");
}

/// The timeline as an SVG: outage and failed-over spans, app writes as ticks, events.
fn timeline_svg(
    events: &[(f64, String)],
    outage: f64,
    recovered: f64,
    decided: f64,
    failed_back: f64,
    writes: &[Write],
) -> String {
    let end = events.last().map_or(1.0, |e| e.0).max(1.0) * 1.02;
    let (width, left, right) = (1100.0, 40.0, 40.0);
    let x = |t: f64| left + (width - left - right) * t / end;
    let top = 60.0;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="24" font-size="15" font-weight="bold">regionpilot drill: {HOME} outage and failback</text>
<rect x="{:.1}" y="{top}" width="{:.1}" height="18" fill="#f4a6a6"/><text x="{:.1}" y="{}" >{HOME} frozen</text>
<rect x="{:.1}" y="{}" width="{:.1}" height="18" fill="#ffd27f"/><text x="{:.1}" y="{}">active: {STANDBY}</text>
"##,
        140.0 + 16.0 * events.len() as f64,
        x(outage),
        x(recovered) - x(outage),
        x(outage) + 4.0,
        top + 13.0,
        x(decided),
        top + 22.0,
        x(failed_back) - x(decided),
        x(decided) + 4.0,
        top + 35.0,
    );
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
