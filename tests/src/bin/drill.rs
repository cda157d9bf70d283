//! The region-outage drill: the three real bootstraps, through the Lambda Runtime API,
//! take an application through a regional outage and back, on the local rig, and measure
//! the **application's** recovery, not only the parameter's.
//!
//! Steady state; the home region freezes; the health probe sees it; the alarm rule fires;
//! failover: the parameter is switched in every reachable region, the standby's capacity
//! raised, and the instances told (a Run Command reload, or an instance refresh); home
//! recovers; failback verification; failback. The rig models AWS's timings for instances
//! (boot, warmup, refresh batches, Run Command per instance), and each emulated instance
//! holds the region it booted with or reloaded to. An application simulator sends every
//! write through a serving instance to the region that instance holds, so the RTO printed
//! is the time until the new region serves the required capacity with the new value.
//!
//! Every scenario runs twice at once, with `RELOAD_MODE=refresh` and with
//! `RELOAD_MODE=run-command`, on two separate rigs, and prints them side by side.
//!
//! Run it with `./scripts/drill` (which installs what it needs and builds the functions).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a drill: failing loudly is the point

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use regionpilot_tests::rig::{InstanceView, ModelInstance};
use regionpilot_tests::{LocalFunction, Stage, World, alarm_for, paths, world};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const GROUP: &str = world::GROUP;
/// The alarm rule template.yaml configures: 3 of 3 samples with Healthy < 1.
const DATAPOINTS_TO_ALARM: u32 = 3;
/// The template's REFRESH_MIN_HEALTHY_PERCENT default.
const MIN_HEALTHY_PERCENT: i32 = 90;
/// What the reload runs on each instance (the rig re-reads the parameter).
const RELOAD_COMMANDS: &str = "/opt/app/bin/use-active-region && systemctl reload php-fpm";

struct Timeline {
    label: &'static str,
    started: Instant,
    events: Vec<(f64, String)>,
}

impl Timeline {
    fn mark(&mut self, what: impl Into<String>) -> f64 {
        let at = self.started.elapsed().as_secs_f64();
        let what = what.into();
        println!("  [{:<11}] t+{at:>7.3}s  {what}", self.label);
        self.events.push((at, what));
        at
    }
}

/// One write the simulated application attempted.
#[derive(Clone)]
struct Write {
    at: f64,
    /// The region the write went to: the one the serving instance holds ("-": none served).
    region: String,
    key: String,
    ok: bool,
}

/// The latest answer of each region's instance model, with when it came.
type Fleet = Arc<Mutex<BTreeMap<String, (Instant, Vec<ModelInstance>)>>>;

/// An answer older than this means the region is not answering: its instances serve no one.
const FLEET_STALE: Duration = Duration::from_millis(1_500);

/// Polls one region's instance model every 200 ms. A frozen or killed region stops
/// answering, and its entry goes stale.
async fn observe(view: InstanceView, region: &'static str, fleet: Fleet, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let v = view.clone();
        let read = tokio::task::spawn_blocking(move || v.live_instances(region, GROUP))
            .await
            .ok()
            .flatten();
        if let Some(instances) = read {
            fleet
                .lock()
                .unwrap()
                .insert(region.to_owned(), (Instant::now(), instances));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// In-service instances of `region` as last seen, if the region answered recently.
fn in_service(fleet: &Fleet, region: &str) -> Vec<ModelInstance> {
    let fleet = fleet.lock().unwrap();
    match fleet.get(region) {
        Some((at, instances)) if at.elapsed() < FLEET_STALE => instances
            .iter()
            .filter(|i| i.state == "in_service")
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// The application: users are spread over every serving instance of every region (DNS
/// is not modelled yet); each request writes an item to the region its instance holds,
/// every 100 ms, with a short timeout.
async fn simulate_app(
    world: Arc<World>,
    fleet: Fleet,
    started: Instant,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Write>>>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let key = format!("write-{n:06}");
        let mut serving = in_service(&fleet, HOME);
        serving.extend(in_service(&fleet, STANDBY));
        let target = (!serving.is_empty())
            .then(|| serving[n as usize % serving.len()].value.clone())
            .flatten();
        let (region, ok) = match target {
            Some(region) if world.clients.contains_key(&region) => {
                let put = world
                    .client(&region)
                    .dynamodb
                    .put_item()
                    .table_name(world::APP_TABLE)
                    .item("pk", AttributeValue::S(key.clone()))
                    .item("region", AttributeValue::S(region.clone()))
                    .send();
                let result = tokio::time::timeout(Duration::from_millis(300), put).await;
                (region, matches!(result, Ok(Ok(_))))
            }
            _ => ("-".to_owned(), false),
        };
        log.lock().unwrap().push(Write {
            at: started.elapsed().as_secs_f64(),
            region,
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

fn params_line(params: &BTreeMap<String, Option<String>>) -> String {
    params
        .iter()
        .map(|(r, v)| format!("{r}={}", v.as_deref().unwrap_or("<unreachable>")))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The drill's pace. The template pace keeps the template's 10 s probe samples and AWS's
/// instance timings; `--fast` divides every modelled duration by `time_scale`.
struct Pace {
    probe_interval: Duration,
    outage: Duration,
    verify_every: Duration,
    healthy_checks: &'static str,
    min_hold_seconds: &'static str,
    /// Modelled seconds per wall-clock second in the rig's instance model.
    time_scale: f64,
}

const FAST: Pace = Pace {
    probe_interval: Duration::from_secs(1),
    outage: Duration::from_secs(8),
    verify_every: Duration::from_secs(1),
    healthy_checks: "3",
    min_hold_seconds: "5",
    time_scale: 10.0,
};

const TEMPLATE_PACE: Pace = Pace {
    probe_interval: Duration::from_secs(10),
    outage: Duration::from_secs(60),
    verify_every: Duration::from_secs(10),
    healthy_checks: "3",
    min_hold_seconds: "30",
    time_scale: 1.0,
};

/// AWS's orders of magnitude the rig models (seconds, before `time_scale`).
const BOOT_SECONDS: (f64, f64) = (60.0, 90.0);
const WARMUP_SECONDS: f64 = 60.0;
const RUN_COMMAND_SECONDS: (f64, f64) = (2.0, 5.0);

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
    /// Home serves with 10 instances, the standby idles at 1: failover must bring the
    /// standby's capacity up before the application has recovered.
    PilotLight,
}

impl Scenario {
    const ALL: [Scenario; 5] = [
        Scenario::Freeze,
        Scenario::PilotLight,
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
            "pilot-light" => vec![Scenario::PilotLight],
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
            Scenario::PilotLight => "pilot-light",
        }
    }

    /// Each region's group: (region, min, desired, max).
    fn capacities(self) -> Vec<(&'static str, i32, i32, i32)> {
        match self {
            Scenario::PilotLight => vec![(HOME, 1, 10, 12), (STANDBY, 1, 1, 12)],
            // Warm standby: the standby runs the same fleet, pointing at home.
            _ => vec![(HOME, 2, 2, 4), (STANDBY, 2, 2, 4)],
        }
    }
}

/// How running instances learn the new region.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Refresh,
    RunCommand,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Refresh => "refresh",
            Mode::RunCommand => "run-command",
        }
    }
}

const USAGE: &str = "usage: drill [--fast] [--scenario freeze|pilot-light|kill|replication-pause|flapping|all] [--mode refresh|run-command|both]";

fn arguments() -> (Vec<Scenario>, &'static Pace, Vec<Mode>) {
    let mut scenarios = vec![Scenario::Freeze];
    let mut pace = &TEMPLATE_PACE;
    let mut modes = vec![Mode::Refresh, Mode::RunCommand];
    let mut args = std::env::args().skip(1);
    let fail = |what: String| -> ! {
        eprintln!("{what}\n{USAGE}");
        std::process::exit(2)
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--fast" => pace = &FAST,
            "--scenario" => {
                let name = args.next().unwrap_or_default();
                scenarios = Scenario::parse(&name)
                    .unwrap_or_else(|| fail(format!("unknown scenario {name:?}")));
            }
            "--mode" => {
                let name = args.next().unwrap_or_default();
                modes = match name.as_str() {
                    "refresh" => vec![Mode::Refresh],
                    "run-command" => vec![Mode::RunCommand],
                    "both" => vec![Mode::Refresh, Mode::RunCommand],
                    _ => fail(format!("unknown mode {name:?}")),
                };
            }
            _ => fail(format!("unknown argument {arg:?}")),
        }
    }
    (scenarios, pace, modes)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (scenarios, pace, modes) = arguments();
    print_assumptions(pace);
    let mut failed = Vec::new();
    for scenario in scenarios {
        println!(
            "\nregionpilot drill, scenario {}: {}",
            scenario.name(),
            describe(scenario)
        );
        println!(
            "  {HOME} (home) and {STANDBY} (standby, runs the control plane): one moto server each on 127.0.0.1,"
        );
        println!(
            "  Global Tables replication between them; the three bootstraps run through the Lambda Runtime API;"
        );
        println!(
            "  groups (min/desired/max): {}; modes run side by side: {}",
            scenario
                .capacities()
                .iter()
                .map(|(r, min, d, max)| format!("{r} {min}/{d}/{max}"))
                .collect::<Vec<_>>()
                .join(", "),
            modes
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  pace: probe sample every {:?}, outage {:?}, verification every {:?}\n",
            pace.probe_interval, pace.outage, pace.verify_every
        );
        let results =
            futures::future::join_all(modes.iter().map(|mode| run(scenario, pace, *mode))).await;
        let mut summaries = Vec::new();
        for (mode, result) in modes.iter().zip(results) {
            match result {
                Ok(summary) => summaries.push((*mode, summary)),
                Err(why) => {
                    println!(
                        "\nSCENARIO {} ({}) FAILED: {why}",
                        scenario.name(),
                        mode.name()
                    );
                    failed.push(format!("{} ({})", scenario.name(), mode.name()));
                }
            }
        }
        print_side_by_side(scenario, pace, &summaries);
    }
    if !failed.is_empty() {
        println!("\nDRILL FAILED: {failed:?}");
        std::process::exit(1);
    }
    println!("\nDRILL PASSED");
}

fn describe(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::Freeze => "home region freeze, detection, failover, recovery, verified failback",
        Scenario::Kill => {
            "home region killed for good: failover, and no failback to a region that is gone"
        }
        Scenario::ReplicationPause => {
            "freeze and failover; replication back to home paused during recovery, so failback waits for the drain"
        }
        Scenario::Flapping => {
            "home region freezes and recovers twice; the flap guard stops automation"
        }
        Scenario::PilotLight => {
            "home (10 instances) freezes; the standby (1 instance) is scaled up, its instances boot and warm up"
        }
    }
}

fn print_assumptions(pace: &Pace) {
    let scale = pace.time_scale;
    println!(
        "modelled AWS timings (the rig, because moto launches instances at once and runs no command):"
    );
    println!(
        "  instance boot {:.0}-{:.0} s, then warmup {:.0} s (the template's REFRESH_WARMUP_SECONDS) before it serves",
        BOOT_SECONDS.0, BOOT_SECONDS.1, WARMUP_SECONDS
    );
    println!(
        "  instance refresh in batches: MinHealthyPercentage {MIN_HEALTHY_PERCENT} % replaces max(1, N - ceil(N x 0.9)) instances at a time, each batch one boot + warmup"
    );
    println!(
        "  Run Command {:.0}-{:.0} s per instance; an instance still booting is not registered with SSM and reads the parameter at boot",
        RUN_COMMAND_SECONDS.0, RUN_COMMAND_SECONDS.1
    );
    println!("  DesiredCapacity above MaxSize is refused (ValidationError), as AWS does");
    if scale > 1.0 {
        println!(
            "  --fast: every modelled duration above is divided by {scale:.0} (and probe samples are 1 s instead of 10 s)"
        );
    }
}

/// What one run (one scenario in one mode) measured.
#[derive(Default, Clone)]
struct Summary {
    outage: f64,
    detected: f64,
    decision: f64,
    decided: f64,
    /// The capacity the standby must serve with (what the failover asked for).
    required: usize,
    capacity_in_service: Option<f64>,
    app_rto: Option<f64>,
    refresh_batches: Option<(usize, usize)>,
    reload: Option<String>,
    capacity: Option<String>,
    recovered: Option<f64>,
    failed_back: Option<f64>,
    failback_held: Option<f64>,
    writes: usize,
    failed_writes: usize,
    lost: usize,
    epochs: Vec<u64>,
    duplicate: String,
    kill_window: Option<String>,
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
        "alarm regionpilot-unhealthy-{HOME} -> ALARM (rule evaluated by the drill)"
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
    for (group, result) in out["capacity"].as_object().into_iter().flatten() {
        t.mark(format!("  capacity {group}: {}", capacity_line(result)));
    }
    for (group, result) in out["refreshes"].as_object().into_iter().flatten() {
        t.mark(format!("  refresh {group}: {}", result["status"]));
    }
    for (group, result) in out["reload"].as_object().into_iter().flatten() {
        t.mark(format!(
            "  reload {group}: command {}: {}",
            result["command_id"].as_str().unwrap_or("-"),
            reload_line(result)
        ));
    }
    (out, decision, decided)
}

fn capacity_line(c: &Value) -> String {
    match c["status"].as_str() {
        Some("raised") => format!(
            "raised {} -> {} (wants {}, {}{})",
            c["previous"],
            c["desired"],
            c["wanted"],
            c["source"].as_str().unwrap_or("?"),
            if c["capped"] == true { ", capped" } else { "" }
        ),
        Some("skipped") => format!("skipped: {}", c["reason"].as_str().unwrap_or("?")),
        Some("failed") => format!("failed: {}", c["error"].as_str().unwrap_or("?")),
        Some(other) => format!("{other} at {} (wanted {})", c["desired"], c["wanted"]),
        None => c.to_string(),
    }
}

fn reload_line(r: &Value) -> String {
    format!(
        "{}: {} ok, {} failed, {} timed out, {} pending",
        r["status"].as_str().unwrap_or("?"),
        r["succeeded"],
        r["failed"],
        r["timed_out"],
        r["pending"]
    )
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

/// Waits until the standby has `required` instances in service, and until that many
/// serve the new region; marks both. Bounded by `limit`.
async fn watch_recovery(
    t: &mut Timeline,
    fleet: &Fleet,
    required: usize,
    limit: Duration,
    summary: &mut Summary,
) {
    let started = Instant::now();
    while started.elapsed() < limit {
        let serving = in_service(fleet, STANDBY);
        if summary.capacity_in_service.is_none() && serving.len() >= required {
            summary.capacity_in_service = Some(t.mark(format!(
                "{STANDBY}: {} instances in service (required {required})",
                serving.len()
            )));
        }
        let new_value = serving.iter().filter(|i| i.serves(STANDBY)).count();
        if new_value >= required {
            summary.app_rto = Some(t.mark(format!(
                "{STANDBY}: {new_value} instances serve {STANDBY}: the application has recovered"
            )));
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    t.mark(format!(
        "{STANDBY}: the application did not recover within {limit:?}"
    ));
}

/// Instance refresh batches for `n` instances at the template's MinHealthyPercentage.
fn refresh_batches(n: usize) -> (usize, usize) {
    let n = n.max(1);
    let keep = (n * MIN_HEALTHY_PERCENT as usize).div_ceil(100);
    let batch = n.saturating_sub(keep).max(1);
    (n.div_ceil(batch), batch)
}

async fn run(scenario: Scenario, pace: &Pace, mode: Mode) -> Result<Summary, String> {
    let max_switches = if scenario == Scenario::Flapping {
        "3"
    } else {
        "10"
    };
    let mut env = vec![
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
        ("REFRESH_WARMUP_SECONDS", "60"),
        ("CAPACITY_PERCENT", "100"),
    ];
    match mode {
        Mode::Refresh => env.push(("RELOAD_MODE", "refresh")),
        Mode::RunCommand => env.extend([
            ("RELOAD_MODE", "run-command"),
            ("RELOAD_COMMANDS", RELOAD_COMMANDS),
            ("RELOAD_TIMEOUT_SECONDS", "120"),
        ]),
    }
    let scale = pace.time_scale.to_string();
    let boot = format!("{}-{}", BOOT_SECONDS.0, BOOT_SECONDS.1);
    let warmup = WARMUP_SECONDS.to_string();
    let run_command = format!("{}-{}", RUN_COMMAND_SECONDS.0, RUN_COMMAND_SECONDS.1);
    let rig_env = [
        ("RIG_TIME_SCALE", scale.as_str()),
        ("RIG_BOOT_SECONDS", boot.as_str()),
        ("RIG_WARMUP_SECONDS", warmup.as_str()),
        ("RIG_RUN_COMMAND_SECONDS", run_command.as_str()),
        ("RIG_APP_PARAMETER", world::PARAMETER),
    ];
    let setup = Instant::now();
    let mut stage = Stage::start_with(
        &format!("drill-{}-{}", scenario.name(), mode.name()),
        &[HOME, STANDBY],
        STANDBY,
        2,
        &env,
        &rig_env,
        &scenario.capacities(),
    )
    .await;
    let probe = stage.start_function("health-probe", 1, &[]).await;
    let verifier = stage.start_function("failback", 1, &[]).await;
    println!(
        "  [{:<11}] rig up, seeded and functions started in {:.1}s; logs in {}",
        mode.name(),
        setup.elapsed().as_secs_f64(),
        stage.rig.dir.display()
    );
    let world = Arc::new(World::connect(&stage.rig, &[HOME, STANDBY], STANDBY).await);

    let mut t = Timeline {
        label: mode.name(),
        started: Instant::now(),
        events: Vec::new(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let fleet: Fleet = Arc::new(Mutex::new(BTreeMap::new()));
    let view = stage.rig.view();
    let observers: Vec<_> = [HOME, STANDBY]
        .into_iter()
        .map(|region| tokio::spawn(observe(view.clone(), region, fleet.clone(), stop.clone())))
        .collect();
    let writes = Arc::new(Mutex::new(Vec::new()));
    let app = tokio::spawn(simulate_app(
        world.clone(),
        fleet.clone(),
        t.started,
        stop.clone(),
        writes.clone(),
    ));

    let (healthy, _) = probe_home_healthy(&probe).await;
    check(healthy, "home must start healthy")?;
    // The verifier's scheduled run: among other things it records every group's sizes,
    // which the failover reads when home cannot be described.
    let report = verifier.invoke(&json!({"command": "verify"})).await.ok();
    check(report["outcome"] == "home", format!("verifier: {report}"))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let home_fleet = in_service(&fleet, HOME).len();
    let standby_fleet = in_service(&fleet, STANDBY).len();
    t.mark(format!(
        "steady state: both regions healthy; parameters {}; in service: {HOME} {home_fleet}, {STANDBY} {standby_fleet}",
        params_line(&stage.world.parameters().await)
    ));

    let mut m = Summary::default();
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
            m.duplicate = stage.failover.invoke(&alarm_for(HOME)).await.ok()["outcome"].to_string();
            t.mark(format!("duplicate alarm delivery: {}", m.duplicate));
            m.outage = outage;
            m.detected = detected;
            m.decision = decision;
            m.decided = decided;
            let group = format!("{STANDBY}/{GROUP}");
            let asked = &out["capacity"][&group];
            m.capacity = asked.is_object().then(|| capacity_line(asked));
            m.required = asked["desired"]
                .as_u64()
                .map_or(home_fleet.max(standby_fleet), |d| d as usize);
            let batches = refresh_batches(m.required);
            if mode == Mode::Refresh {
                m.refresh_batches = Some(batches);
            }
            // Bounded: a refresh of every batch, with room to spare.
            let limit = Duration::from_secs_f64(
                ((batches.0 as f64 + 2.0) * (BOOT_SECONDS.1 + WARMUP_SECONDS) + 60.0)
                    / pace.time_scale,
            );
            watch_recovery(&mut t, &fleet, m.required, limit, &mut m).await;
            let reload =
                status(&stage).await["status"]["auto_scaling_groups"][&group]["reload"].clone();
            if reload.is_object() {
                m.reload = Some(format!(
                    "{}: {} ok/{} failed/{} timed out",
                    reload["status"].as_str().unwrap_or("?"),
                    reload["succeeded"],
                    reload["failed"],
                    reload["timed_out"]
                ));
            }
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
    for observer in observers {
        let _ = observer.await;
    }
    let params = stage.world.parameters().await;
    t.mark(format!("parameters: {}", params_line(&params)));

    // Let replication settle, then count acknowledged writes missing where they must be:
    // in both regions, or in the standby alone when home is gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = writes.lock().unwrap().clone();
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
    m.writes = writes.len();
    m.failed_writes = writes.len() - acknowledged.len();
    m.lost = lost.len();
    m.epochs = stage.world.history_epochs().await;
    if scenario == Scenario::Kill {
        let transition = &status(&stage).await["status"]["last_transition"];
        m.kill_window = Some(
            match (
                transition["started_at"].as_u64(),
                transition["last_replicated_from_old"].as_u64(),
            ) {
                (Some(switched), Some(seen)) => {
                    format!("{:.3} s", switched.saturating_sub(seen) as f64 / 1000.0)
                }
                _ => "unknown".to_owned(),
            },
        );
    }

    let svg = paths::workspace().join(format!(
        "target/drill-{}-{}.svg",
        scenario.name(),
        mode.name()
    ));
    let active_spans = active_spans(&t.events);
    std::fs::write(
        &svg,
        timeline_svg(scenario, mode, &t.events, &active_spans, &writes),
    )
    .map_err(|e| format!("write {}: {e}", svg.display()))?;
    t.mark(format!("timeline picture: {}", svg.display()));

    check(
        m.duplicate == "\"already_active\"",
        "the duplicate alarm was not already_active",
    )?;
    check(
        m.app_rto.is_some(),
        format!(
            "the standby never served {} instances holding {STANDBY}",
            m.required
        ),
    )?;
    let expected: Vec<u64> = match scenario {
        Scenario::Freeze | Scenario::ReplicationPause | Scenario::PilotLight => vec![1, 2],
        Scenario::Kill => vec![1],
        Scenario::Flapping => vec![1, 2, 3],
    };
    check(
        m.epochs == expected,
        format!("history {:?}, expected {expected:?}", m.epochs),
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
    Ok(m)
}

fn secs(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3} s"))
}

/// The summary of every mode of one scenario, one column per mode, and the targets.
fn print_side_by_side(scenario: Scenario, pace: &Pace, summaries: &[(Mode, Summary)]) {
    if summaries.is_empty() {
        return;
    }
    println!(
        "\nsummary ({}), modelled AWS timings as stated above",
        scenario.name()
    );
    let header: Vec<String> = summaries.iter().map(|(m, _)| m.name().to_owned()).collect();
    let line = |name: &str, cells: Vec<String>| {
        print!("  {name:<52}");
        for cell in cells {
            print!(" {cell:<38}");
        }
        println!();
    };
    line("", header);
    let each = |f: &dyn Fn(&Summary) -> String| -> Vec<String> {
        summaries.iter().map(|(_, s)| f(s)).collect()
    };
    line(
        "detection (outage -> alarm)",
        each(&|s| format!("{:.3} s", s.detected - s.outage)),
    );
    line(
        "decision (alarm -> failover answered)",
        each(&|s| format!("{:.3} s", s.decision)),
    );
    line(
        "outage -> parameter switched everywhere reachable",
        each(&|s| format!("{:.3} s", s.decided - s.outage)),
    );
    line(
        "standby capacity step",
        each(&|s| s.capacity.clone().unwrap_or_else(|| "-".into())),
    );
    line(
        "outage -> required capacity in service",
        each(&|s| {
            format!(
                "{} ({} inst.)",
                secs(s.capacity_in_service.map(|c| c - s.outage)),
                s.required
            )
        }),
    );
    line(
        "application RTO (outage -> serves the new region)",
        each(&|s| secs(s.app_rto.map(|r| r - s.outage))),
    );
    line(
        "refresh batches (instances / batch size)",
        each(&|s| {
            s.refresh_batches
                .map_or_else(|| "-".into(), |(b, size)| format!("{b} x {size}"))
        }),
    );
    line(
        "reload (Run Command)",
        each(&|s| s.reload.clone().unwrap_or_else(|| "-".into())),
    );
    line(
        "recovery -> failback done",
        each(&|s| match (s.recovered, s.failed_back) {
            (Some(r), Some(b)) => format!("{:.3} s", b - r),
            _ => "-".into(),
        }),
    );
    if summaries.iter().any(|(_, s)| s.failback_held.is_some()) {
        line(
            "failback held while replication was paused",
            each(&|s| secs(s.failback_held)),
        );
    }
    line(
        "app writes attempted / failed / lost",
        each(&|s| format!("{} / {} / {}", s.writes, s.failed_writes, s.lost)),
    );
    if let Some((_, s)) = summaries.iter().find(|(_, s)| s.kill_window.is_some()) {
        line(
            "  data-loss window recorded at failover",
            vec![s.kill_window.clone().unwrap_or_default()],
        );
    }
    line(
        "transitions in history",
        each(&|s| format!("{:?}", s.epochs)),
    );
    line("duplicate alarm", each(&|s| s.duplicate.clone()));

    // Targets (reported, not asserted): scaled like every modelled duration.
    let scale = pace.time_scale;
    for (mode, s) in summaries {
        let Some(rto) = s.app_rto.map(|r| r - s.outage) else {
            continue;
        };
        let detection = s.detected - s.outage;
        let (what, bound) = match (scenario, mode) {
            (Scenario::PilotLight, Mode::RunCommand) => (
                "pilot light: RTO <= detection + one boot + warmup + 15 s",
                detection + (BOOT_SECONDS.1 + WARMUP_SECONDS + 15.0) / scale,
            ),
            (_, Mode::RunCommand) if scenario != Scenario::PilotLight => (
                "warm standby with run-command: RTO <= detection + 15 s",
                detection + 15.0 / scale,
            ),
            _ => continue,
        };
        println!(
            "  [{}] {what}: {rto:.3} s <= {bound:.3} s ({})",
            if rto <= bound { "met" } else { "MISSED" },
            mode.name()
        );
    }
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
    mode: Mode,
    events: &[(f64, String)],
    active_spans: &[(f64, f64)],
    writes: &[Write],
) -> String {
    let end = events.last().map_or(1.0, |e| e.0).max(1.0) * 1.02;
    let (width, left, right) = (1400.0, 40.0, 40.0);
    let x = |t: f64| left + (width - left - right) * t / end;
    let top = 60.0;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="24" font-size="15" font-weight="bold">regionpilot drill ({}, RELOAD_MODE={}): {HOME} outage</text>
"##,
        140.0 + 16.0 * events.len() as f64,
        scenario.name(),
        mode.name(),
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
        let text = clip_label(what, 110)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "'");
        // A label right of the middle is drawn leftwards from its mark, so no label runs
        // off the right edge (a label is at most 110 characters, about half the width).
        let (label_x, anchor) = if x(*at) > width / 2.0 {
            (x(*at) - 3.0, "end")
        } else {
            (x(*at) + 3.0, "start")
        };
        svg.push_str(&format!(
            r##"<line x1="{0:.1}" y1="{axis}" x2="{0:.1}" y2="{1}" stroke="#999" stroke-dasharray="2,2"/><text x="{2:.1}" y="{1}" text-anchor="{5}">t+{3:.2}s {4}</text>"##,
            x(*at),
            y,
            label_x,
            at,
            text,
            anchor
        ));
    }
    svg.push_str(
        r##"<text x="40" y="44" fill="#555">app writes (through serving instances, to the region each holds): blue = home, orange = standby, red = failed</text></svg>"##,
    );
    svg
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn clip_label(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}
