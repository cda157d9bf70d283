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
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use regionpilot_tests::alarm::{self, AlarmState, MetricAlarm};
use regionpilot_tests::arc::ArcCluster;
use regionpilot_tests::dns::{self, Change, Dns, LogTail, Timings, Users};
use regionpilot_tests::rig::{InstanceView, ModelInstance};
use regionpilot_tests::signals::{self, Gate, SignalDns};
use regionpilot_tests::{LocalFunction, Stage, World, alarm_for, paths, world};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const GROUP: &str = world::GROUP;
/// The template's REFRESH_MIN_HEALTHY_PERCENT default.
const MIN_HEALTHY_PERCENT: i32 = 90;
/// What the reload runs on each instance (the rig re-reads the parameter).
const RELOAD_COMMANDS: &str = "/opt/app/bin/use-active-region && systemctl reload php-fpm";

/// One run's timeline; the drill and its background tasks (DNS) mark it.
#[derive(Clone)]
struct Timeline {
    label: &'static str,
    started: Instant,
    /// `started` on the wall clock, in ms since the Unix epoch (the EMF timestamps' clock).
    started_ms: u64,
    events: Arc<Mutex<Vec<(f64, String)>>>,
}

impl Timeline {
    fn new(label: &'static str) -> Timeline {
        Timeline {
            label,
            started: Instant::now(),
            started_ms: epoch_ms(),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn mark(&self, what: impl Into<String>) -> f64 {
        let mut events = self.events.lock().unwrap();
        let at = self.started.elapsed().as_secs_f64();
        let what = what.into();
        println!("  [{:<11}] t+{at:>7.3}s  {what}", self.label);
        events.push((at, what));
        at
    }

    /// Marks `what` at `at` seconds on this timeline (a model's time, not now).
    fn mark_at(&self, at: f64, what: impl Into<String>) {
        let what = what.into();
        println!("  [{:<11}] t+{at:>7.3}s  {what}", self.label);
        self.events.lock().unwrap().push((at, what));
    }

    /// A wall-clock time (ms since the epoch) as seconds on this timeline.
    fn at(&self, epoch_ms: u64) -> f64 {
        (epoch_ms as f64 - self.started_ms as f64) / 1000.0
    }

    fn events(&self) -> Vec<(f64, String)> {
        self.events.lock().unwrap().clone()
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One request of the simulated application.
#[derive(Clone)]
struct Write {
    at: f64,
    /// The region DNS gave the user.
    dns: String,
    /// Whether an in-service instance of the DNS region took the request.
    served: bool,
    /// The region the write went to: the one the serving instance holds ("-": none served).
    region: String,
    key: String,
    ok: bool,
    /// The same request under the fast signals ([`FAST_SIGNALS`]): the region that
    /// signal's DNS gave the same user, and whether an in-service instance there took it.
    /// (The write itself goes where the metric signal sent it.)
    alt: [(String, bool); 2],
}

/// The traffic signals measured beside `metric` on the same outage, in `Write::alt` order.
const FAST_SIGNALS: [&str; 2] = ["gate", "routing-control"];

/// The gates' path token in the drill (the template derives one per stack).
const GATE_TOKEN: &str = "drill-gate-token-0123456789";

/// Whether `region`'s endpoints answered recently (its instance model did).
fn answering(fleet: &Fleet, region: &str) -> bool {
    fleet
        .lock()
        .unwrap()
        .get(region)
        .is_some_and(|(at, _)| at.elapsed() < FLEET_STALE)
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

/// The application's users: each has its own resolver cache, filled before the drill (so
/// their expiries are spread over one TTL).
const USERS: usize = 40;
/// The application sends one request this often, from the next user in turn.
const REQUEST_EVERY: Duration = Duration::from_millis(50);
/// "Users served from the new region": this share of the requests of a sliding window...
const USERS_SHARE: f64 = 0.95;
/// ...of one request from every user (2 s). A window of a round, not of a part of one:
/// users are asked in the order their caches expire, so a part would be a biased sample.
const USERS_WINDOW: f64 = USERS as f64 * REQUEST_EVERY.as_millis() as f64 / 1000.0;
/// A window with fewer requests than this (the sender fell behind) does not count.
const MIN_WINDOW_REQUESTS: usize = USERS * 3 / 4;

/// The application: a request from a user goes to the region DNS gave that user, to one of
/// that region's in-service instances (none answered recently: the request fails), and
/// writes an item to the region that instance holds, with a short timeout. Requests start
/// at a steady rate whatever earlier ones wait for; each is logged, when it ends, with
/// when it started.
async fn simulate_app(
    world: Arc<World>,
    fleet: Fleet,
    dns: Arc<Mutex<Dns>>,
    fast: [Arc<Mutex<SignalDns>>; 2],
    started: Instant,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Write>>>,
) {
    let ttl_ms = dns.lock().unwrap().timings.ttl_ms;
    let start_ms = epoch_ms();
    let mut users = Users::new(USERS, HOME, start_ms, ttl_ms, 13);
    // The same users (same caches, same draws) under each fast signal.
    let mut fast_users = [0, 1].map(|_| Users::new(USERS, HOME, start_ms, ttl_ms, 13));
    let mut requests = tokio::task::JoinSet::new();
    let mut next = tokio::time::Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let at = started.elapsed().as_secs_f64();
        let key = format!("write-{n:06}");
        let now = epoch_ms();
        let resolved = users.resolve(n as usize, now, &dns.lock().unwrap());
        let alt = [0, 1].map(|i| {
            let signal = fast[i].lock().unwrap().clone();
            let region = fast_users[i]
                .resolve_with(n as usize, now, ttl_ms, |at, pick| signal.answer(at, pick));
            let served = !in_service(&fleet, &region).is_empty();
            (region, served)
        });
        let serving = in_service(&fleet, &resolved);
        let served = !serving.is_empty();
        let target = served
            .then(|| serving[n as usize % serving.len()].value.clone())
            .flatten();
        let (world, log) = (world.clone(), log.clone());
        requests.spawn(async move {
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
                at,
                dns: resolved,
                served,
                region,
                key,
                ok,
                alt,
            });
        });
        while requests.try_join_next().is_some() {}
        next += REQUEST_EVERY;
        tokio::time::sleep_until(next).await;
    }
    requests.join_all().await;
}

/// The requests so far, in the order they started.
fn requests_so_far(log: &Mutex<Vec<Write>>) -> Vec<Write> {
    let mut writes = log.lock().unwrap().clone();
    writes.sort_by(|a, b| a.at.total_cmp(&b.at));
    writes
}

/// The first time, after `from` plus one window, when at least [`USERS_SHARE`] of the
/// requests of the last `window` seconds reached an in-service instance of `region`
/// (`writes` in the order they started).
fn share_reached(writes: &[Write], region: &str, from: f64, window: f64) -> Option<f64> {
    share_reached_by(writes, region, from, window, |w| (w.dns.as_str(), w.served))
}

/// [`share_reached`] under any signal: `pick` gives a request's DNS region and whether an
/// in-service instance there took it.
fn share_reached_by(
    writes: &[Write],
    region: &str,
    from: f64,
    window: f64,
    pick: impl Fn(&Write) -> (&str, bool),
) -> Option<f64> {
    let mut start = 0;
    for (end, w) in writes.iter().enumerate() {
        while writes[start].at <= w.at - window {
            start += 1;
        }
        let slice = &writes[start..=end];
        if w.at < from + window || slice.len() < MIN_WINDOW_REQUESTS {
            continue;
        }
        let reached = slice
            .iter()
            .filter(|w| {
                let (dns, served) = pick(w);
                served && dns == region
            })
            .count();
        if reached as f64 >= USERS_SHARE * slice.len() as f64 {
            return Some(w.at);
        }
    }
    None
}

/// Waits (until `until` on the timeline) for [`share_reached`] in the standby; marks it.
async fn wait_for_users(
    t: &Timeline,
    writes: &Mutex<Vec<Write>>,
    from: f64,
    window: f64,
    until: f64,
) -> Option<f64> {
    loop {
        let reached = share_reached(&requests_so_far(writes), STANDBY, from, window);
        if let Some(at) = reached {
            t.mark(format!(
                "users: {:.0} % of requests reach {STANDBY}'s instances since t+{at:.3}s (over the last {window} s)",
                USERS_SHARE * 100.0
            ));
            return Some(at);
        }
        if t.started.elapsed().as_secs_f64() > until {
            t.mark(format!(
                "users: {:.0} % of requests did not reach {STANDBY} by t+{until:.3}s",
                USERS_SHARE * 100.0
            ));
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What one run's DNS stage saw.
#[derive(Default)]
struct DnsSeen {
    /// Alarm and health check changes, at their model time on the timeline.
    changes: Vec<(f64, Change)>,
    /// Every `ActiveRegion` datapoint: timestamp on the timeline, region, value.
    points: Vec<(f64, String, f64)>,
    /// Datapoints declared at high resolution (an alarm behind a health check must not be).
    high_resolution: usize,
}

impl DnsSeen {
    /// When `region`'s health check first became `healthy` after `after`.
    fn health(&self, region: &str, healthy: bool, after: f64) -> Option<f64> {
        self.changes.iter().find_map(|(at, change)| match change {
            Change::Health {
                region: r,
                healthy: h,
                ..
            } if *at > after && r == region && *h == healthy => Some(*at),
            _ => None,
        })
    }
}

/// A function's log file (`LocalFunction` writes `<rig dir>/<name>.log`).
fn log_path(stage: &Stage, function: &LocalFunction) -> PathBuf {
    stage.rig.dir.join(format!("{}.log", function.name))
}

/// The DNS stage the rig cannot run: reads the functions' logs for `ActiveRegion`
/// datapoints as they are written, evaluates each region's serving alarm with the
/// template's rule, lets the health checks follow, and marks every change.
async fn dns_stage(
    t: Timeline,
    logs: Vec<PathBuf>,
    dns: Arc<Mutex<Dns>>,
    seen: Arc<Mutex<DnsSeen>>,
    stop: Arc<AtomicBool>,
) {
    let mut tails: Vec<(String, LogTail)> = logs
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            (name, LogTail::new(path))
        })
        .collect();
    let mut latest: BTreeMap<String, f64> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        for (name, tail) in &mut tails {
            let points: Vec<_> = tail
                .read_lines()
                .iter()
                .filter_map(|line| dns::datapoint(line))
                .collect();
            if points.is_empty() {
                continue;
            }
            let before = latest.clone();
            {
                let mut dns = dns.lock().unwrap();
                let mut seen = seen.lock().unwrap();
                for point in &points {
                    dns.record(point);
                    seen.points
                        .push((t.at(point.at_ms), point.region.clone(), point.value));
                    seen.high_resolution += usize::from(point.high_resolution);
                    latest.insert(point.region.clone(), point.value);
                }
            }
            if latest != before {
                let values: Vec<String> = latest.iter().map(|(r, v)| format!("{r}={v}")).collect();
                t.mark(format!("ActiveRegion {} ({name})", values.join(" ")));
            }
        }
        let changes = dns.lock().unwrap().advance(epoch_ms());
        for change in changes {
            let what = match &change {
                Change::Alarm { region, state, .. } => {
                    format!("serving alarm {region} -> {}", state.name())
                }
                Change::Health {
                    region, healthy, ..
                } => format!(
                    "health check {region} -> {}",
                    if *healthy { "healthy" } else { "unhealthy" }
                ),
            };
            t.mark(what);
            seen.lock()
                .unwrap()
                .changes
                .push((t.at(change.at_ms()), change));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The probe's schedule (the template's `rate(1 minute)`, scaled): one invocation a quarter
/// into every alarm period, so each period holds the probe's `ActiveRegion` datapoints.
async fn probe_schedule(
    probe: Arc<LocalFunction>,
    t: Timeline,
    period: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut next = t.started + period / 4;
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() < next {
            tokio::time::sleep(Duration::from_millis(100).min(next - Instant::now())).await;
            continue;
        }
        let _ = probe.invoke(&json!({"command": "probe"})).await;
        while next <= Instant::now() {
            next += period;
        }
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

async fn probe_healthy(probe: &LocalFunction, region: &str) -> (bool, Value) {
    let out = probe.invoke(&json!({"command": "probe"})).await.ok();
    (out["regions"][region]["healthy"] == true, out)
}

fn params_line(params: &BTreeMap<String, Option<String>>) -> String {
    params
        .iter()
        .map(|(r, v)| format!("{r}={}", v.as_deref().unwrap_or("<unreachable>")))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The drill's pace. The AWS pace keeps the template's 10 s probe samples and AWS's
/// instance and DNS timings; the others divide every modelled duration (probe samples,
/// boot, warmup, Run Command, alarm periods, TTL, verification) by `time_scale`, and the
/// summary multiplies what it measured back into AWS seconds.
struct Pace {
    name: &'static str,
    probe_interval: Duration,
    outage: Duration,
    verify_every: Duration,
    healthy_checks: &'static str,
    min_hold_seconds: &'static str,
    /// Modelled seconds per wall-clock second in the rig's instance model (and the DNS
    /// stage's timings).
    time_scale: f64,
}

const FAST: Pace = Pace {
    name: "fast (AWS timings / 10)",
    probe_interval: Duration::from_secs(1),
    outage: Duration::from_secs(8),
    verify_every: Duration::from_secs(1),
    healthy_checks: "3",
    min_hold_seconds: "5",
    time_scale: 10.0,
};

/// The default: AWS's timings at four times the speed, a freeze drill in about 2 minutes.
const QUICK: Pace = Pace {
    name: "quick (AWS timings / 4)",
    probe_interval: Duration::from_millis(2500),
    outage: Duration::from_secs(15),
    verify_every: Duration::from_millis(2500),
    healthy_checks: "3",
    min_hold_seconds: "8",
    time_scale: 4.0,
};

const TEMPLATE_PACE: Pace = Pace {
    name: "AWS (the template's timings, in real time)",
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
/// From the end of boot until SSM has registered the instance (its agent started).
const SSM_REGISTER_SECONDS: (f64, f64) = (5.0, 15.0);

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
    /// regionpilot is paused, then home freezes: the alarm is delivered and ignored, and
    /// DNS stays with the data's region.
    Paused,
    /// A control plane in each region over one MRSC control table: home fails and the
    /// standby's regionpilot fails over; home recovers; then the standby fails, with its
    /// control plane, before any failback: home's own regionpilot brings the app home.
    ControlRegionLoss,
}

impl Scenario {
    const ALL: [Scenario; 7] = [
        Scenario::Freeze,
        Scenario::PilotLight,
        Scenario::Kill,
        Scenario::ReplicationPause,
        Scenario::Flapping,
        Scenario::Paused,
        Scenario::ControlRegionLoss,
    ];

    fn parse(name: &str) -> Option<Vec<Scenario>> {
        Some(match name {
            "freeze" => vec![Scenario::Freeze],
            "kill" => vec![Scenario::Kill],
            "replication-pause" => vec![Scenario::ReplicationPause],
            "flapping" => vec![Scenario::Flapping],
            "pilot-light" => vec![Scenario::PilotLight],
            "paused" => vec![Scenario::Paused],
            "control-region-loss" => vec![Scenario::ControlRegionLoss],
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
            Scenario::Paused => "paused",
            Scenario::ControlRegionLoss => "control-region-loss",
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

const USAGE: &str = "usage: drill [--fast | --aws-pace] [--scenario freeze|pilot-light|kill|replication-pause|flapping|paused|all] [--mode refresh|run-command|both]";

fn arguments() -> (Vec<Scenario>, &'static Pace, Vec<Mode>) {
    let mut scenarios = vec![Scenario::Freeze];
    let mut pace = &QUICK;
    let mut modes = vec![Mode::Refresh, Mode::RunCommand];
    let mut args = std::env::args().skip(1);
    let fail = |what: String| -> ! {
        eprintln!("{what}\n{USAGE}");
        std::process::exit(2)
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--fast" => pace = &FAST,
            "--aws-pace" => pace = &TEMPLATE_PACE,
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
            "  pace {}: probe sample every {:?}, outage {:?}, verification every {:?} (wall clock)\n",
            pace.name, pace.probe_interval, pace.outage, pace.verify_every
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
        Scenario::Paused => {
            "regionpilot paused, then home freezes: the alarm is ignored, and DNS stays with the data's region"
        }
        Scenario::ControlRegionLoss => {
            "a control plane per region over one MRSC control table: home freezes, the standby's regionpilot fails over; home recovers; the standby freezes with its control plane before the failback; home's regionpilot brings the app home"
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
        "  Run Command {:.0}-{:.0} s per instance, in waves as SSM runs it: at most MaxConcurrency (50 %) at a time, and the targets not started once errors pass MaxErrors (25 %) are Cancelled (assumed); an instance registers with SSM {:.0}-{:.0} s after its boot (its agent starts), and reads the parameter at boot",
        RUN_COMMAND_SECONDS.0,
        RUN_COMMAND_SECONDS.1,
        SSM_REGISTER_SECONDS.0,
        SSM_REGISTER_SECONDS.1
    );
    println!("  DesiredCapacity above MaxSize is refused (ValidationError), as AWS does");
    println!(
        "modelled unhealthy alarms (the rig evaluates no alarm): the template's rule, Healthy Minimum < 1 over {:.0} s, {} of {}, missing data {}; beside it the old rule (missing data {}) over the same samples; evaluated {:.0} s after each period ends (assumed), EMF datapoints readable {:.0} s after their timestamp (assumed); the probe samples at each period's start; the stack is created at the start, a minute before the probe's first scheduled run",
        alarm::UNHEALTHY.period_seconds,
        alarm::UNHEALTHY.datapoints_to_alarm,
        alarm::UNHEALTHY.evaluation_periods,
        alarm::UNHEALTHY.missing.name(),
        alarm::UNHEALTHY_BEFORE.missing.name(),
        alarm::HEALTH_EVALUATION_DELAY_SECONDS,
        dns::EMF_INGESTION_SECONDS
    );
    println!(
        "modelled DNS stage (the rig evaluates no alarm and no Route 53 health check; the drill reads ActiveRegion from the functions' EMF log lines):"
    );
    println!(
        "  serving alarm per region: ActiveRegion Maximum < 1 over {:.0} s (template), 1 of 1, missing data keeps the state; evaluated {:.0} s after the period ends (assumed); EMF datapoints readable {:.0} s after their timestamp (assumed)",
        dns::PERIOD_SECONDS,
        dns::EVALUATION_DELAY_SECONDS,
        dns::EMF_INGESTION_SECONDS
    );
    println!(
        "  the probe runs once a minute (template schedule), a quarter into each alarm period, and samples at the start of every 10 s health period (as its schedule's run does); each switch emits at once",
    );
    println!(
        "  Route 53 health check follows its alarm after {:.0} s (assumed; AWS documents no figure); weighted records, equal weights, TTL {:.0} s (template); all unhealthy answers all",
        dns::HEALTH_CHECK_DELAY_SECONDS,
        dns::TTL_SECONDS
    );
    println!(
        "  gate signal: {} checkers per HTTPS health check poll the real gates (the control stack's in {STANDBY}, a regional one in {HOME}) through the Runtime API every {:.0} s, staggered; failure threshold 1; healthy when more than {:.0} % of checkers are (Route 53's rule); a gate in a region that does not answer is not reached; a region is healthy while any gate's check is (calculated); DNS follows the checkers after {:.0} s (assumed)",
        signals::CHECKERS,
        signals::GATE_INTERVAL_SECONDS,
        signals::HEALTHY_SHARE * 100.0,
        signals::GATE_STATUS_DELAY_SECONDS
    );
    println!(
        "  routing-control signal: the rig's ARC cluster (five endpoints; the first, which the functions try first, does not answer); the failover sets the routing controls at the switch; a RECOVERY_CONTROL health check follows a change after {:.0} s (assumed)",
        signals::ROUTING_CONTROL_DELAY_SECONDS
    );
    println!(
        "  all three signals are measured on the same outage, the same users (same caches and draws) and the same instances; the app's writes follow the metric signal"
    );
    println!(
        "  {USERS} users, each with its own resolver cache, re-resolving at each expiry (expiries spread over one TTL); one request every {REQUEST_EVERY:?} from the next user; at the start home's alarm is OK and the standby's in ALARM (a settled stack)",
    );
    println!(
        "  users served from the new region: {:.0} % of the requests of the last {} s (one from every user) reach an in-service instance there",
        USERS_SHARE * 100.0,
        USERS_WINDOW
    );
    if scale > 1.0 {
        println!(
            "pace {}: every modelled duration above and the 10 s probe samples run {scale:.0} times faster; the summary\n  multiplies what it measured by {scale:.0} into AWS seconds, except the decision (no modelled time in it),\n  which is shown as measured. `--aws-pace` runs the same drill in real time.",
            pace.name
        );
    }
}

/// What one run (one scenario in one mode) measured.
#[derive(Default, Clone)]
struct Summary {
    /// The deploy's first minute.
    deploy: DeployMinute,
    outage: f64,
    detected: f64,
    /// When the old rule put home's alarm in ALARM over the same samples.
    detected_old_rule: Option<f64>,
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
    /// When 95 % of the requests of a window reached the new region (timeline).
    users_served: Option<f64>,
    /// After the switch: the new region's health check healthy, the old's unhealthy.
    new_healthy: Option<f64>,
    old_unhealthy: Option<f64>,
    /// Paused: the share of requests after the outage that DNS sent home.
    dns_home_share: Option<f64>,
    /// The fast signals, in [`FAST_SIGNALS`] order, on the same outage.
    fast: [FastSignal; 2],
    /// Control-region loss: whether each signal's DNS kept the last decision (the lost
    /// standby) until home's regionpilot switched: metric, then [`FAST_SIGNALS`].
    kept_last_decision: Option<[bool; 3]>,
    /// Control-region loss: when the standby (and its control plane) was lost, when home's
    /// regionpilot answered the alarm with a switch home, and when the app wrote in home
    /// again.
    standby_lost: Option<f64>,
    home_switched: Option<f64>,
    home_serves: Option<f64>,
}

/// What one fast signal did, on the drill's timeline.
#[derive(Default, Clone)]
struct FastSignal {
    users_served: Option<f64>,
    new_healthy: Option<f64>,
    old_unhealthy: Option<f64>,
    /// Paused: the share of requests after the outage that this signal's DNS sent home.
    home_share: Option<f64>,
}

/// Every region's `<stack>-unhealthy-<region>` alarm, twice: under the template's rule
/// (`alarm::UNHEALTHY`, missing data not breaching) and under the rule it replaced
/// (`alarm::UNHEALTHY_BEFORE`, missing data breaching), fed the same probe samples. The
/// rig's CloudWatch evaluates no alarm, so the drill does, as AWS documents it.
struct HealthAlarms {
    /// (region, rule's missing-data name) -> alarm.
    alarms: BTreeMap<(String, &'static str), MetricAlarm>,
}

impl HealthAlarms {
    /// Alarms created now (as a deploy creates them), in INSUFFICIENT_DATA.
    fn created(regions: &[&str], pace: &Pace) -> HealthAlarms {
        let ingestion_ms = Timings::scaled(pace.time_scale).ingestion_ms;
        let delay = alarm::scaled_ms(alarm::HEALTH_EVALUATION_DELAY_SECONDS, pace.time_scale);
        // CloudWatch's periods are aligned to the clock.
        let period_ms = alarm::UNHEALTHY.period_ms(pace.time_scale);
        let now = epoch_ms();
        let start = now - now % period_ms;
        let mut alarms = BTreeMap::new();
        for region in regions {
            for rule in [alarm::UNHEALTHY, alarm::UNHEALTHY_BEFORE] {
                alarms.insert(
                    ((*region).to_owned(), rule.missing.name()),
                    MetricAlarm::new(
                        rule,
                        start,
                        rule.period_ms(pace.time_scale),
                        delay,
                        ingestion_ms,
                        AlarmState::InsufficientData,
                    ),
                );
            }
        }
        HealthAlarms { alarms }
    }

    /// The `Healthy` datapoints of one probe answer (one round: `at`, each region's verdict).
    fn record(&mut self, out: &Value) {
        let Some(at) = out["at"].as_u64() else {
            return;
        };
        for ((region, _), alarm) in &mut self.alarms {
            if let Some(healthy) = out["regions"][region]["healthy"].as_bool() {
                alarm.record(at, if healthy { 1.0 } else { 0.0 });
            }
        }
    }

    fn period_ms(&self) -> u64 {
        self.alarms
            .values()
            .next()
            .map_or(1, MetricAlarm::period_ms)
    }

    /// Every change of state due by now: (evaluation time, region, rule, state).
    fn advance(&mut self) -> Vec<(u64, String, &'static str, AlarmState)> {
        let now = epoch_ms();
        let mut changes = Vec::new();
        for ((region, rule), alarm) in &mut self.alarms {
            for (at, state) in alarm.advance(now) {
                changes.push((at, region.clone(), *rule, state));
            }
        }
        changes.sort_by_key(|c| c.0);
        changes
    }
}

/// Marks each alarm change on the timeline; returns when `region`'s alarm went to ALARM
/// under the template's rule and under the old one.
fn mark_alarm_changes(
    t: &Timeline,
    changes: &[(u64, String, &'static str, AlarmState)],
) -> Vec<(String, &'static str, f64)> {
    let mut alarmed = Vec::new();
    for (at, region, rule, state) in changes {
        let when = t.at(*at);
        let label = if *rule == alarm::UNHEALTHY.missing.name() {
            "template rule".to_owned()
        } else {
            format!("old rule, missing data {rule}")
        };
        t.mark_at(
            when,
            format!(
                "alarm regionpilot-unhealthy-{region} -> {} ({label}; evaluated by the drill)",
                state.name()
            ),
        );
        if *state == AlarmState::Alarm {
            alarmed.push((region.clone(), *rule, when));
        }
    }
    alarmed
}

/// The deploy's first minute: the unhealthy alarms exist before the probe's first sample
/// (its schedule's first run comes up to a minute after the deploy). Under the template's
/// rule nothing alarms and nothing switches; the old rule's ALARM is shown, and delivered
/// to no one. Then the probe's first run: the alarms go OK.
async fn deploy_minute(
    t: &Timeline,
    stage: &Stage,
    probe: &LocalFunction,
    alarms: &Arc<Mutex<HealthAlarms>>,
    pace: &Pace,
) -> Result<DeployMinute, String> {
    let created = t.mark(
        "DEPLOY: stack created; unhealthy alarms in INSUFFICIENT_DATA, no Healthy datapoint yet"
            .to_owned(),
    );
    let minute = Duration::from_secs_f64(60.0 / pace.time_scale);
    let mut old_rule_alarm = None;
    let mut delivered = 0;
    let until = Instant::now() + minute;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let changes = alarms.lock().unwrap().advance();
        for (region, rule, when) in mark_alarm_changes(t, &changes) {
            if rule == alarm::UNHEALTHY.missing.name() {
                // The template's rule alarmed: deliver it, as CloudWatch would.
                stage.failover.invoke(&alarm_for(&region)).await.ok();
                delivered += 1;
            } else if old_rule_alarm.is_none() {
                old_rule_alarm = Some(when - created);
            }
        }
    }
    let out = probe.invoke(&json!({"command": "probe"})).await.ok();
    alarms.lock().unwrap().record(&out);
    t.mark("DEPLOY: the probe's first scheduled run; its samples reach the alarms".to_owned());
    tokio::time::sleep(minute / 4).await;
    let changes = alarms.lock().unwrap().advance();
    mark_alarm_changes(t, &changes);
    let state = stage
        .failover
        .invoke(&json!({"command": "status"}))
        .await
        .ok();
    t.mark(format!(
        "DEPLOY: first minute over: {delivered} alarm(s) delivered by the template's rule, epoch {}, active {}",
        state["epoch"], state["active_region"]
    ));
    check(delivered == 0, "a fresh stack's alarm went to ALARM")?;
    check(
        state["epoch"] == 0,
        format!("a fresh stack switched: {state}"),
    )?;
    Ok(DeployMinute {
        delivered,
        epoch: state["epoch"].as_u64(),
        old_rule_alarm,
    })
}

/// What the deploy's first minute did.
#[derive(Debug, Default, Clone)]
struct DeployMinute {
    /// Alarms the template's rule put in ALARM, each delivered to failover.
    delivered: usize,
    /// The control state's epoch after the minute.
    epoch: Option<u64>,
    /// When the old rule put home's alarm in ALARM, from the stack's creation.
    old_rule_alarm: Option<f64>,
}

/// The health probe as its schedule runs it: a round at each period's start (aligned to
/// the clock, as the probe aligns its samples), every answer fed to the alarm models.
async fn sample_health(
    probe: Arc<LocalFunction>,
    alarms: Arc<Mutex<HealthAlarms>>,
    stop: Arc<AtomicBool>,
) {
    let period_ms = alarms.lock().unwrap().period_ms();
    while !stop.load(Ordering::SeqCst) {
        let out = probe.invoke(&json!({"command": "probe"})).await.ok();
        alarms.lock().unwrap().record(&out);
        let now = epoch_ms();
        let next = now - now % period_ms + period_ms;
        tokio::time::sleep(Duration::from_millis(next.saturating_sub(epoch_ms()))).await;
    }
}

/// Evaluates the alarm models as periods come due, until the template's rule puts
/// `region`'s alarm in ALARM. Returns when, and when the old rule did (if it did by then).
async fn detect(
    t: &Timeline,
    alarms: &Arc<Mutex<HealthAlarms>>,
    region: &str,
) -> (f64, Option<f64>) {
    let mut old_rule = None;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let changes = alarms.lock().unwrap().advance();
        let alarmed = mark_alarm_changes(t, &changes);
        for (alarmed_region, rule, when) in &alarmed {
            if alarmed_region == region && *rule == alarm::UNHEALTHY_BEFORE.missing.name() {
                old_rule.get_or_insert(*when);
            }
        }
        if let Some((_, _, when)) = alarmed
            .iter()
            .find(|(r, rule, _)| r == region && *rule == alarm::UNHEALTHY.missing.name())
        {
            return (*when, old_rule);
        }
    }
}

/// Delivers the alarm; returns the answer, the decision time and when it was decided.
async fn fail_over(t: &Timeline, stage: &Stage) -> (Value, f64, f64) {
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
    t: &Timeline,
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
    t: &Timeline,
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

/// What DNS would have done in the paused scenario with Route 53's own endpoint health
/// checks (not modelled).
fn endpoint_note() -> String {
    format!(
        "with Route 53 endpoint health checks instead (HTTP, 30 s interval, failure threshold 3: the defaults), DNS would have marked {HOME} unhealthy about 90 s into the outage and sent every user to {STANDBY} within one TTL more, while the data stays in {HOME}: the standby's instances still write to {HOME}, so users would still fail, and the operator's pause would not have held DNS"
    )
}

/// Control-region loss: the standby, active since the failover, fails with its control
/// plane before any failback. Home's own stack sees it with its own probe; its alarm on
/// the standby invokes home's failover function over the shared MRSC control table, and
/// the app comes home. (An alarm on the active region is a failover whatever
/// FAILBACK_MODE says: the application has nowhere else to run.) The standby returns at
/// the end, and its verifier reconciles what it missed.
#[allow(clippy::too_many_arguments)]
async fn standby_lost(
    t: &Timeline,
    stage: &Stage,
    home_failover: &LocalFunction,
    home_probe: &Arc<LocalFunction>,
    verifier: &LocalFunction,
    writes: &Mutex<Vec<Write>>,
    (dns, fast): (&Mutex<Dns>, &[Arc<Mutex<SignalDns>>; 2]),
    pace: &Pace,
    m: &mut Summary,
) -> Result<(), String> {
    let lost = t.mark(format!(
        "OUTAGE 2: {STANDBY} frozen (SIGSTOP) with its control plane, before any failback"
    ));
    stage.rig.freeze(STANDBY);
    m.standby_lost = Some(lost);
    // Home's stack: its own probe and alarms.
    let alarms = Arc::new(Mutex::new(HealthAlarms::created(&[HOME, STANDBY], pace)));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample_health(
        home_probe.clone(),
        alarms.clone(),
        stop.clone(),
    ));
    detect(t, &alarms, STANDBY).await;
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.await;
    let out = home_failover.invoke(&alarm_for(STANDBY)).await.ok();
    let switched = t.mark(format!(
        "failover by {HOME}'s regionpilot: {} {} -> {} at epoch {}",
        out["outcome"], out["from"], out["to"], out["epoch"]
    ));
    check(
        out["outcome"] == "switched" && out["to"] == HOME,
        format!("{HOME}'s regionpilot did not bring the app home: {out}"),
    )?;
    m.home_switched = Some(switched);
    // Until home's regionpilot decided otherwise, every signal kept the last decision:
    // the standby, whose region (and control plane, and gate) was lost.
    let kept = kept_decision(t, dns, fast, STANDBY, lost, switched);
    m.kept_last_decision = Some(kept);
    t.mark(format!(
        "DNS while {STANDBY} was lost, until the switch: kept {STANDBY} under metric {}, gate {}, routing-control {}",
        kept[0], kept[1], kept[2]
    ));
    check(
        kept.iter().all(|k| *k),
        format!(
            "a signal moved users before the decision did: {kept:?} (metric, gate, routing-control)"
        ),
    )?;
    // Bounded: a refresh of home's group, with room to spare.
    let limit =
        Duration::from_secs_f64((4.0 * (BOOT_SECONDS.1 + WARMUP_SECONDS) + 60.0) / pace.time_scale);
    let waiting = Instant::now();
    while m.home_serves.is_none() && waiting.elapsed() < limit {
        m.home_serves = requests_so_far(writes)
            .iter()
            .find(|w| w.at > switched && w.ok && w.region == HOME)
            .map(|w| w.at);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let Some(served) = m.home_serves else {
        return Err(format!(
            "no app write served in {HOME} within {limit:?} of the switch"
        ));
    };
    t.mark(format!(
        "app writes served in {HOME} again from t+{served:.3}s"
    ));
    let report = home_failover
        .invoke(&json!({"command": "report", "epoch": 2}))
        .await
        .ok();
    let steps = report["report"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ok = steps.iter().filter(|s| s["ok"] == true).count();
    t.mark(format!(
        "history, epoch 2 as {HOME}'s regionpilot reports it: trigger {}, {} steps, {ok} done, the rest ({STANDBY}'s) left to reconcile",
        report["report"]["trigger"]["alarm_name"],
        steps.len()
    ));
    check(
        !steps.is_empty(),
        format!("no steps in the report: {report}"),
    )?;

    stage.rig.thaw(STANDBY);
    t.mark(format!("RECOVERY: {STANDBY} thawed"));
    let out = verifier.invoke(&json!({"command": "verify"})).await.ok();
    t.mark(format!(
        "{STANDBY}'s verifier: {} (reconcile fixed {})",
        out["outcome"], out["reconcile"]["fixed"]
    ));
    check(
        out["outcome"] == "home",
        format!("after the standby's return: {out}"),
    )
}

/// The paused scenario after the ignored alarm: holds as long as a switch would take to
/// reach every user, shows that the metric, the health checks and DNS stayed with home,
/// then recovers home and resumes.
async fn paused_outage(
    t: &Timeline,
    stage: &Stage,
    writes: &Mutex<Vec<Write>>,
    dns: &Mutex<Dns>,
    seen: &Mutex<DnsSeen>,
    hold: Duration,
    m: &mut Summary,
) -> Result<(), String> {
    let status = status(stage).await;
    check(
        status["status"]["active_region"] == HOME,
        format!("a paused regionpilot left {HOME}: {status}"),
    )?;
    let until = m.decided + hold.as_secs_f64();
    let left = until - t.started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(left.max(0.0))).await;

    let now = epoch_ms();
    let (home_healthy, standby_healthy) = {
        let dns = dns.lock().unwrap();
        (dns.healthy(HOME, now), dns.healthy(STANDBY, now))
    };
    let (requests, home_requests) = {
        let writes = writes.lock().unwrap();
        let after: Vec<&Write> = writes.iter().filter(|w| w.at >= m.outage).collect();
        let home = after.iter().filter(|w| w.dns == HOME).count();
        (after.len(), home)
    };
    let share = home_requests as f64 / requests.max(1) as f64;
    m.dns_home_share = Some(share);
    // Every fast signal too: home's gate is frozen, but the decision still names home.
    {
        let writes = writes.lock().unwrap();
        let after: Vec<&Write> = writes.iter().filter(|w| w.at >= m.outage).collect();
        for (i, signal) in FAST_SIGNALS.iter().enumerate() {
            let home = after.iter().filter(|w| w.alt[i].0 == HOME).count();
            let fast_share = home as f64 / after.len().max(1) as f64;
            m.fast[i].home_share = Some(fast_share);
            t.mark(format!(
                "{signal} signal: {:.1} % of {} requests since the outage resolved to {HOME}",
                fast_share * 100.0,
                after.len()
            ));
        }
    }
    let (moved, home_values, standby_values) = {
        let seen = seen.lock().unwrap();
        let moved: Vec<String> = seen
            .changes
            .iter()
            .filter(|(at, c)| *at > m.outage && matches!(c, Change::Health { .. }))
            .map(|(at, c)| format!("t+{at:.3}s {c:?}"))
            .collect();
        let values = |region: &str| -> BTreeSet<String> {
            seen.points
                .iter()
                .filter(|(at, r, _)| *at >= m.outage && r == region)
                .map(|(_, _, v)| v.to_string())
                .collect()
        };
        (moved, values(HOME), values(STANDBY))
    };
    t.mark(format!(
        "DNS {hold:?} after the ignored alarm: ActiveRegion since the outage {HOME} {home_values:?}, {STANDBY} {standby_values:?}; health checks {HOME} {}, {STANDBY} {}; {:.1} % of {requests} requests since the outage resolved to {HOME}",
        if home_healthy { "healthy" } else { "unhealthy" },
        if standby_healthy { "healthy" } else { "unhealthy" },
        share * 100.0
    ));
    t.mark(format!("note: {}", endpoint_note()));
    stage.rig.thaw(HOME);
    m.recovered = Some(t.mark(format!("RECOVERY: {HOME} thawed")));
    let out = stage
        .failover
        .invoke(&json!({"command": "resume"}))
        .await
        .ok();
    t.mark(format!(
        "regionpilot resumed: {} ({})",
        out["outcome"],
        out["reason"].as_str().unwrap_or("")
    ));

    check(
        requests >= MIN_WINDOW_REQUESTS && share >= USERS_SHARE,
        format!(
            "DNS left {HOME}: {home_requests} of {requests} requests since the outage resolved there"
        ),
    )?;
    check(
        home_healthy && !standby_healthy && moved.is_empty(),
        format!("the health checks moved while paused: {moved:?}"),
    )?;
    check(
        home_values == BTreeSet::from(["1".to_owned()])
            && standby_values == BTreeSet::from(["0".to_owned()]),
        format!(
            "ActiveRegion since the outage: {HOME} {home_values:?}, {STANDBY} {standby_values:?}; expected 1 and 0"
        ),
    )?;
    for (i, signal) in FAST_SIGNALS.iter().enumerate() {
        let fast_share = m.fast[i].home_share.unwrap_or(0.0);
        check(
            fast_share >= USERS_SHARE,
            format!(
                "the {signal} signal moved users while paused: {:.1} % stayed with {HOME}",
                fast_share * 100.0
            ),
        )?;
    }
    check(out["outcome"] == "resumed", format!("resume: {out}"))
}

/// Whether each signal's DNS (metric, then [`FAST_SIGNALS`]) kept `kept` healthy and
/// every other region unhealthy at every moment of [from, to] (timeline seconds),
/// sampled every 100 ms of the wall clock.
fn kept_decision(
    t: &Timeline,
    dns: &Mutex<Dns>,
    fast: &[Arc<Mutex<SignalDns>>; 2],
    kept: &str,
    from: f64,
    to: f64,
) -> [bool; 3] {
    let other = if kept == HOME { STANDBY } else { HOME };
    let (from_ms, to_ms) = (
        t.started_ms + (from * 1000.0) as u64,
        t.started_ms + (to * 1000.0) as u64,
    );
    let samples: Vec<u64> = (from_ms..=to_ms).step_by(100).collect();
    let metric = {
        let dns = dns.lock().unwrap();
        samples
            .iter()
            .all(|at| dns.healthy(kept, *at) && !dns.healthy(other, *at))
    };
    let [gate, routing] = [0, 1].map(|i| {
        let signal = fast[i].lock().unwrap();
        samples
            .iter()
            .all(|at| signal.healthy(kept, *at) && !signal.healthy(other, *at))
    });
    [metric, gate, routing]
}

/// Instance refresh batches for `n` instances at the template's MinHealthyPercentage.
fn refresh_batches(n: usize) -> (usize, usize) {
    let n = n.max(1);
    let keep = (n * MIN_HEALTHY_PERCENT as usize).div_ceil(100);
    let batch = n.saturating_sub(keep).max(1);
    (n.div_ceil(batch), batch)
}

async fn run(scenario: Scenario, pace: &Pace, mode: Mode) -> Result<Summary, String> {
    // The routing-control signal's cluster, with home's routing control on. Its first
    // endpoint, the one the functions try first, does not answer: every switch pays one
    // probe timeout for it, as a dead endpoint costs in AWS.
    let cluster = Arc::new(
        ArcCluster::start(
            &regionpilot_tests::paths::scratch(&format!(
                "drill-arc-{}-{}",
                scenario.name(),
                mode.name()
            )),
            &[HOME, STANDBY],
            HOME,
        )
        .await,
    );
    cluster.set_down(regionpilot_tests::arc::ENDPOINT_REGIONS[0], true);
    let cluster_endpoints = cluster.endpoints_env();
    let routing_controls = ArcCluster::arns_env(&[HOME, STANDBY]);
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
        // Every signal at once, on the same outage: the functions emit ActiveRegion (the
        // metric signal) under any signal, answer as gates with a token, and set the
        // routing controls with routing-control.
        ("TRAFFIC_SIGNAL", "routing-control"),
        ("ROUTING_CONTROL_ENDPOINTS", cluster_endpoints.as_str()),
        ("ROUTING_CONTROL_ARNS", routing_controls.as_str()),
        ("GATE_TOKEN", GATE_TOKEN),
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
    let ssm_register = format!("{}-{}", SSM_REGISTER_SECONDS.0, SSM_REGISTER_SECONDS.1);
    let mrsc_regions = format!("{HOME},{STANDBY}");
    let mut rig_env = vec![
        ("RIG_TIME_SCALE", scale.as_str()),
        ("RIG_BOOT_SECONDS", boot.as_str()),
        ("RIG_WARMUP_SECONDS", warmup.as_str()),
        ("RIG_RUN_COMMAND_SECONDS", run_command.as_str()),
        ("RIG_SSM_REGISTER_SECONDS", ssm_register.as_str()),
        ("RIG_APP_PARAMETER", world::PARAMETER),
    ];
    if scenario == Scenario::ControlRegionLoss {
        // One control table for both regions' control planes: an MRSC global table.
        rig_env.extend([
            ("RIG_MRSC_TABLES", world::CONTROL_TABLE),
            ("RIG_MRSC_REGIONS", mrsc_regions.as_str()),
        ]);
    }
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
    // Two probe instances: the drill's samples and the probe's schedule may overlap.
    let probe = Arc::new(stage.start_function("health-probe", 2, &[]).await);
    let verifier = stage.start_function("failback", 1, &[]).await;
    // Control-region loss: home's own stack, over the same MRSC control table. (The
    // stage's functions are the standby's stack.)
    let home_plane = if scenario == Scenario::ControlRegionLoss {
        let in_home = [("AWS_REGION", HOME)];
        Some((
            stage.start_function("failover", 1, &in_home).await,
            Arc::new(stage.start_function("health-probe", 2, &in_home).await),
        ))
    } else {
        None
    };
    // The gates: the control stack's (in the standby, the control region) and home's
    // (a regional stack on home's parameter; in mrsc, home's own full stack on its
    // replica of the control table). Processes of their own, as Lambda gives concurrent
    // invocations instances of their own.
    let home_gate_env: Vec<(&str, &str)> = if scenario == Scenario::ControlRegionLoss {
        vec![("AWS_REGION", HOME)]
    } else {
        vec![
            ("AWS_REGION", HOME),
            ("DEPLOYMENT_ROLE", "regional"),
            ("CONTROL_TABLE", ""),
            ("HEALTH_TABLE", ""),
            ("HEALTH_KEY", ""),
        ]
    };
    let gates = vec![
        Gate {
            region: STANDBY.into(),
            function: Arc::new(stage.start_function("health-probe", 2, &[]).await),
            token: GATE_TOKEN.into(),
        },
        Gate {
            region: HOME.into(),
            function: Arc::new(
                stage
                    .start_function("health-probe", 2, &home_gate_env)
                    .await,
            ),
            token: GATE_TOKEN.into(),
        },
    ];
    println!(
        "  [{:<11}] rig up, seeded and functions started in {:.1}s; logs in {}",
        mode.name(),
        setup.elapsed().as_secs_f64(),
        stage.rig.dir.display()
    );
    let world = Arc::new(World::connect(&stage.rig, &[HOME, STANDBY], STANDBY).await);

    let t = Timeline::new(mode.name());
    let stop = Arc::new(AtomicBool::new(false));
    // The stack is deployed now: its unhealthy alarms exist before any probe sample.
    let health_alarms = Arc::new(Mutex::new(HealthAlarms::created(&[HOME, STANDBY], pace)));
    let deploy = deploy_minute(&t, &stage, &probe, &health_alarms, pace).await?;
    let sampler = tokio::spawn(sample_health(
        probe.clone(),
        health_alarms.clone(),
        stop.clone(),
    ));
    let timings = Timings::scaled(pace.time_scale);
    let dns = Arc::new(Mutex::new(Dns::settled(
        &[HOME, STANDBY],
        HOME,
        epoch_ms(),
        timings,
    )));
    let dns_seen = Arc::new(Mutex::new(DnsSeen::default()));
    let mut logs: Vec<PathBuf> = [&stage.failover, &*probe, &verifier]
        .into_iter()
        .map(|f| log_path(&stage, f))
        .collect();
    if let Some((failover, probe)) = &home_plane {
        logs.extend([log_path(&stage, failover), log_path(&stage, probe)]);
    }
    let dns_task = tokio::spawn(dns_stage(
        t.clone(),
        logs,
        dns.clone(),
        dns_seen.clone(),
        stop.clone(),
    ));
    let schedule = tokio::spawn(probe_schedule(
        probe.clone(),
        t.clone(),
        Duration::from_millis(timings.period_ms),
        stop.clone(),
    ));
    // Every region's stack runs its probe on the schedule.
    let home_schedule = home_plane.as_ref().map(|(_, home_probe)| {
        tokio::spawn(probe_schedule(
            home_probe.clone(),
            t.clone(),
            Duration::from_millis(timings.period_ms),
            stop.clone(),
        ))
    });
    // From the switch: the switch's period and the next, evaluation, health check, one
    // TTL (and a period to spare for the wait).
    let switch_bound = Duration::from_millis(timings.switch_bound_ms());
    let dns_bound = switch_bound + Duration::from_millis(timings.period_ms);
    let fleet: Fleet = Arc::new(Mutex::new(BTreeMap::new()));
    let view = stage.rig.view();
    let observers: Vec<_> = [HOME, STANDBY]
        .into_iter()
        .map(|region| tokio::spawn(observe(view.clone(), region, fleet.clone(), stop.clone())))
        .collect();
    let fast: [Arc<Mutex<SignalDns>>; 2] = [0, 1].map(|_| {
        Arc::new(Mutex::new(SignalDns::settled(
            &[HOME, STANDBY],
            HOME,
            timings.ttl_ms,
        )))
    });
    let writes = Arc::new(Mutex::new(Vec::new()));
    let app = tokio::spawn(simulate_app(
        world.clone(),
        fleet.clone(),
        dns.clone(),
        fast.clone(),
        t.started,
        stop.clone(),
        writes.clone(),
    ));

    let (healthy, _) = probe_healthy(&probe, HOME).await;
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
    // Route 53's checkers on the gates, and the routing controls' health checks.
    let gate_checks = tokio::spawn(signals::check_gates(
        gates,
        fast[0].clone(),
        {
            let fleet = fleet.clone();
            move |region: &str| answering(&fleet, region)
        },
        pace.time_scale,
        stop.clone(),
    ));
    let routing_checks = tokio::spawn(signals::follow_routing_controls(
        cluster.clone(),
        fast[1].clone(),
        pace.time_scale,
        stop.clone(),
    ));

    let mut m = Summary {
        deploy,
        ..Summary::default()
    };
    let cycles = if scenario == Scenario::Flapping { 2 } else { 1 };
    for cycle in 1..=cycles {
        if scenario == Scenario::Paused {
            let out = stage
                .failover
                .invoke(&json!({"command": "pause", "reason": "drill: maintenance window"}))
                .await
                .ok();
            t.mark(format!(
                "regionpilot paused: {} ({})",
                out["outcome"],
                out["reason"].as_str().unwrap_or("")
            ));
            check(out["outcome"] == "paused", format!("pause: {out}"))?;
        }
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
        let (detected, detected_old_rule) = detect(&t, &health_alarms, HOME).await;
        if cycle == 1 {
            m.detected_old_rule = detected_old_rule;
        }
        let (out, decision, decided) = fail_over(&t, &stage).await;
        if scenario == Scenario::Paused {
            m.outage = outage;
            m.detected = detected;
            m.decision = decision;
            m.decided = decided;
            t.mark(format!(
                "  failover answered without switching: {}",
                out["reason"].as_str().unwrap_or("?")
            ));
            check(
                out["outcome"] == "ignored",
                format!("a paused regionpilot answered the alarm with: {out}"),
            )?;
            paused_outage(&t, &stage, &writes, &dns, &dns_seen, switch_bound, &mut m).await?;
            break;
        }
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
            watch_recovery(&t, &fleet, m.required, limit, &mut m).await;
            // The DNS stage: measured before home recovers.
            let window = USERS_WINDOW;
            let until = decided + dns_bound.as_secs_f64();
            m.users_served = wait_for_users(&t, &writes, outage, window, until).await;
            {
                let seen = dns_seen.lock().unwrap();
                m.new_healthy = seen.health(STANDBY, true, decided);
                m.old_unhealthy = seen.health(HOME, false, decided);
            }
            // The fast signals on the same requests (faster than the metric, so done).
            let so_far = requests_so_far(&writes);
            for (i, signal) in FAST_SIGNALS.iter().enumerate() {
                let reached = share_reached_by(&so_far, STANDBY, outage, window, |w| {
                    (w.alt[i].0.as_str(), w.alt[i].1)
                });
                if let Some(at) = reached {
                    t.mark(format!(
                        "users ({signal} signal): {:.0} % of requests reach {STANDBY}'s instances since t+{at:.3}s",
                        USERS_SHARE * 100.0
                    ));
                }
                m.fast[i].users_served = reached;
                let signal_dns = fast[i].lock().unwrap();
                // From the alarm: a fast signal can move before the failover answers.
                let first = |region: &str, healthy: bool| {
                    signal_dns.status[region]
                        .changes_after(t.started_ms + (detected * 1000.0) as u64)
                        .into_iter()
                        .find(|(_, h)| *h == healthy)
                        .map(|(at, _)| t.at(at))
                };
                m.fast[i].new_healthy = first(STANDBY, true);
                m.fast[i].old_unhealthy = first(HOME, false);
            }
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
            let report = verify_until(&t, &verifier, pace, 3, |_| false).await;
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
        if let Some((home_failover, home_probe)) = &home_plane {
            standby_lost(
                &t,
                &stage,
                home_failover,
                home_probe,
                &verifier,
                &writes,
                (&dns, &fast),
                pace,
                &mut m,
            )
            .await?;
            break;
        }

        if scenario == Scenario::ReplicationPause {
            // Enough verification rounds that only the paused replication holds failback.
            let held =
                verify_until(&t, &verifier, pace, 5, |r| r["outcome"] == "failed_back").await;
            check(
                held.is_none(),
                "failed back while replication to home was paused",
            )?;
            stage.rig.set_replication(STANDBY, HOME, 0.0, false);
            let resumed = t.mark(format!("replication {STANDBY} -> {HOME} resumed"));
            m.failback_held = Some(resumed - recovered);
        }
        if scenario == Scenario::Flapping && cycle == cycles {
            let report = verify_until(&t, &verifier, pace, 12, |r| {
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
        let back = verify_until(&t, &verifier, pace, rounds, |r| {
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
    let _ = gate_checks.await;
    let _ = routing_checks.await;
    for observer in observers {
        let _ = observer.await;
    }
    let _ = dns_task.await;
    let _ = schedule.await;
    let _ = sampler.await;
    if let Some(home_schedule) = home_schedule {
        let _ = home_schedule.await;
    }
    let params = stage.world.parameters().await;
    t.mark(format!("parameters: {}", params_line(&params)));

    // Let replication settle, then count acknowledged writes missing where they must be:
    // in both regions, or in the standby alone when home is gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = requests_so_far(&writes);
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
    let events = t.events();
    let active_spans = active_spans(&events);
    std::fs::write(
        &svg,
        timeline_svg(scenario, mode, &events, &active_spans, &writes),
    )
    .map_err(|e| format!("write {}: {e}", svg.display()))?;
    t.mark(format!("timeline picture: {}", svg.display()));

    let (datapoints, high_resolution) = {
        let seen = dns_seen.lock().unwrap();
        (seen.points.len(), seen.high_resolution)
    };
    check(
        datapoints > 0,
        "no ActiveRegion datapoint in the functions' logs (is TRAFFIC on?)",
    )?;
    check(
        high_resolution == 0,
        format!(
            "{high_resolution} ActiveRegion datapoints at high resolution: Route 53 needs standard resolution"
        ),
    )?;
    if scenario != Scenario::Paused {
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
        check(
            m.new_healthy.is_some(),
            format!("{STANDBY}'s health check did not become healthy after the failover"),
        )?;
        check(
            m.old_unhealthy.is_some(),
            format!("{HOME}'s health check did not become unhealthy after the failover"),
        )?;
        check(
            m.users_served.is_some(),
            format!(
                "{:.0} % of requests never reached {STANDBY} within {dns_bound:?} of the switch",
                USERS_SHARE * 100.0
            ),
        )?;
    }
    let expected: Vec<u64> = match scenario {
        Scenario::Freeze | Scenario::ReplicationPause | Scenario::PilotLight => vec![1, 2],
        Scenario::Kill => vec![1],
        Scenario::Flapping => vec![1, 2, 3],
        Scenario::Paused => vec![],
        Scenario::ControlRegionLoss => vec![1, 2],
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
    let scale = pace.time_scale;
    println!(
        "\nsummary ({}), in AWS seconds: {}",
        scenario.name(),
        if scale > 1.0 {
            format!(
                "measured at {scale:.0}x speed and multiplied by {scale:.0}; the decision as measured"
            )
        } else {
            "measured in real time".to_owned()
        }
    );
    // Wall-clock seconds to AWS seconds.
    let aws = |wall: f64| wall * scale;
    let secs = |value: Option<f64>| secs(value.map(aws));
    let header: Vec<String> = summaries.iter().map(|(m, _)| m.name().to_owned()).collect();
    let line = |name: &str, cells: Vec<String>| {
        print!("  {name:<62}");
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
        "deploy: first minute, alarms delivered (template rule)",
        each(&|s| {
            format!(
                "{}; epoch after it {}",
                s.deploy.delivered,
                s.deploy
                    .epoch
                    .map_or_else(|| "unknown".to_owned(), |e| e.to_string())
            )
        }),
    );
    line(
        "deploy: old rule (missing data breaching) -> ALARM after",
        each(&|s| match s.deploy.old_rule_alarm {
            Some(at) => format!("{:.1} s: would have failed over", aws(at)),
            None => "-".to_owned(),
        }),
    );
    line(
        "detection (outage -> alarm)",
        each(&|s| format!("{:.3} s", aws(s.detected - s.outage))),
    );
    line(
        "  same samples, old rule (missing data breaching)",
        each(&|s| secs(s.detected_old_rule.map(|d| d - s.outage))),
    );
    line(
        "decision (alarm -> failover answered)",
        each(&|s| format!("{:.3} s", s.decision)),
    );
    line(
        "outage -> parameter switched everywhere reachable",
        each(&|s| {
            if s.epochs.is_empty() {
                "- (no switch)".to_owned()
            } else {
                format!("{:.3} s", aws(s.decided - s.outage))
            }
        }),
    );
    line(
        "standby capacity step",
        each(&|s| s.capacity.clone().unwrap_or_else(|| "-".into())),
    );
    line(
        "outage -> required capacity in service",
        each(&|s| match s.required {
            0 => "-".to_owned(),
            n => format!(
                "{} ({n} inst.)",
                secs(s.capacity_in_service.map(|c| c - s.outage))
            ),
        }),
    );
    line(
        "application RTO (outage -> serves the new region)",
        each(&|s| secs(s.app_rto.map(|r| r - s.outage))),
    );
    line(
        &format!(
            "users served from the new region (outage -> {:.0} % of requests)",
            USERS_SHARE * 100.0
        ),
        each(&|s| secs(s.users_served.map(|u| u - s.outage))),
    );
    line(
        "DNS: switch -> new region's health check healthy",
        each(&|s| secs(s.new_healthy.map(|h| h - s.decided))),
    );
    line(
        "DNS: switch -> old region's health check unhealthy",
        each(&|s| secs(s.old_unhealthy.map(|h| h - s.decided))),
    );
    line(
        &format!(
            "DNS: switch -> {:.0} % of requests in the new region",
            USERS_SHARE * 100.0
        ),
        each(&|s| secs(s.users_served.map(|u| u - s.decided))),
    );
    if summaries.iter().any(|(_, s)| !s.epochs.is_empty()) {
        // The three signals on the same outage, the same users and the same instances.
        println!(
            "  users served from the new region by traffic signal (outage -> {:.0} % of requests; DNS stages assumed, see above):",
            USERS_SHARE * 100.0
        );
        line(
            "  metric: ActiveRegion alarm (60 s) -> health check -> TTL",
            each(&|s| secs(s.users_served.map(|u| u - s.outage))),
        );
        for (i, (signal, stages)) in FAST_SIGNALS
            .iter()
            .zip([
                "HTTPS checks every 10 s, threshold 1 -> TTL",
                "routing control at the switch -> check -> TTL",
            ])
            .enumerate()
        {
            line(
                &format!("  {signal}: {stages}"),
                each(&|s| secs(s.fast[i].users_served.map(|u| u - s.outage))),
            );
            line(
                &format!("    {signal}: alarm -> new healthy / old unhealthy"),
                each(&|s| {
                    format!(
                        "{} / {}",
                        secs(s.fast[i].new_healthy.map(|h| h - s.detected)),
                        secs(s.fast[i].old_unhealthy.map(|h| h - s.detected))
                    )
                }),
            );
        }
        // The issue's targets: detection + decision + 20 s (gate) or 10 s (routing
        // control) + one TTL.
        for (i, (signal, allowance)) in FAST_SIGNALS.iter().zip([20.0, 10.0]).enumerate() {
            line(
                &format!("  {signal} target: detection + decision + {allowance:.0} s + TTL"),
                each(&|s| {
                    let bound =
                        aws(s.detected - s.outage) + s.decision + allowance + dns::TTL_SECONDS;
                    match s.fast[i].users_served.map(|u| aws(u - s.outage)) {
                        Some(took) => format!(
                            "{took:.1} s vs {bound:.1} s: {}",
                            if took <= bound { "met" } else { "MISSED" }
                        ),
                        None => format!("- vs {bound:.1} s"),
                    }
                }),
            );
        }
    }
    if summaries
        .iter()
        .any(|(_, s)| s.kept_last_decision.is_some())
    {
        line(
            "standby lost: DNS kept the last decision (metric/gate/rc)",
            each(&|s| {
                s.kept_last_decision
                    .map_or_else(|| "-".into(), |k| format!("{} / {} / {}", k[0], k[1], k[2]))
            }),
        );
    }
    if summaries.iter().any(|(_, s)| s.standby_lost.is_some()) {
        line(
            "standby lost -> home's regionpilot switched home",
            each(&|s| secs(s.home_switched.zip(s.standby_lost).map(|(h, l)| h - l))),
        );
        line(
            "standby lost -> app writes in home again",
            each(&|s| secs(s.home_serves.zip(s.standby_lost).map(|(h, l)| h - l))),
        );
    }
    if summaries.iter().any(|(_, s)| s.dns_home_share.is_some()) {
        line(
            &format!("DNS stayed with {HOME} (requests since the outage)"),
            each(&|s| {
                s.dns_home_share
                    .map_or_else(|| "-".into(), |share| format!("{:.1} %", share * 100.0))
            }),
        );
        for (i, signal) in FAST_SIGNALS.iter().enumerate() {
            line(
                &format!("  the same under the {signal} signal"),
                each(&|s| {
                    s.fast[i]
                        .home_share
                        .map_or_else(|| "-".into(), |share| format!("{:.1} %", share * 100.0))
                }),
            );
        }
    }
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
            (Some(r), Some(b)) => format!("{:.3} s", aws(b - r)),
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
    line(
        "duplicate alarm",
        each(&|s| {
            if s.duplicate.is_empty() {
                "-".to_owned()
            } else {
                s.duplicate.clone()
            }
        }),
    );
    if scenario == Scenario::Paused {
        println!("  note: {}", endpoint_note());
    }

    // Targets (reported, not asserted), in AWS seconds.
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
            "  [{}] {what}: {:.3} s <= {:.3} s ({})",
            if rto <= bound { "met" } else { "MISSED" },
            aws(rto),
            aws(bound),
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
        156.0 + 16.0 * events.len() as f64,
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
    let dns_lane = lane + 16.0;
    svg.push_str(&format!(r#"<text x="2" y="{}">dns</text>"#, dns_lane + 9.0));
    for w in writes {
        let colour = if w.dns == HOME { "#1f77b4" } else { "#ff7f0e" };
        svg.push_str(&format!(
            r#"<rect x="{:.1}" y="{dns_lane}" width="1.5" height="12" fill="{colour}"/>"#,
            x(w.at)
        ));
    }
    let axis = dns_lane + 24.0;
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
        r##"<text x="40" y="44" fill="#555">app writes (through serving instances, to the region each holds): blue = home, orange = standby, red = failed; dns: the region DNS gave the user</text></svg>"##,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests every 50 ms for 20 s; `dns(at)` gives each one's region, all served.
    fn requests(dns: impl Fn(usize, f64) -> &'static str) -> Vec<Write> {
        (0..400)
            .map(|i| {
                let at = i as f64 * 0.05;
                let region = dns(i, at).to_owned();
                Write {
                    at,
                    dns: region.clone(),
                    served: true,
                    region: "-".to_owned(),
                    key: format!("k{i}"),
                    ok: true,
                    // A fast signal a request ahead of the metric one.
                    alt: [(dns(i + 1, at + 0.05).to_owned(), true), (region, false)],
                }
            })
            .collect()
    }

    #[test]
    fn each_signal_is_measured_on_its_own_answers() {
        let writes = requests(|_, at| if at < 10.0 { HOME } else { STANDBY });
        let metric = share_reached(&writes, STANDBY, 0.0, 2.0).expect("metric");
        let gate = share_reached_by(&writes, STANDBY, 0.0, 2.0, |w| {
            (w.alt[0].0.as_str(), w.alt[0].1)
        })
        .expect("gate");
        // One request sooner under the signal that answers a request ahead.
        assert!((metric - gate - 0.05).abs() < 1e-9, "{metric} {gate}");
        // Requests that reached no in-service instance do not count.
        let none = share_reached_by(&writes, STANDBY, 0.0, 2.0, |w| {
            (w.alt[1].0.as_str(), w.alt[1].1)
        });
        assert_eq!(none, None);
    }

    #[test]
    fn users_are_served_once_95_percent_of_a_whole_window_reach_the_region() {
        // Home until 10 s; then 1 in 10 requests still home until 15 s; then all standby.
        let writes = requests(|i, at| match at {
            at if at < 10.0 => HOME,
            at if at < 15.0 && i % 10 == 0 => HOME,
            _ => STANDBY,
        });
        let reached = share_reached(&writes, STANDBY, 0.0, 2.0).expect("reached");
        // Home's last requests are at 14.0 and 14.5 s: the first window (t - 2, t] with at
        // most 2 of its 40 requests in home ends at 15.5 s.
        assert!((15.45..=15.55).contains(&reached), "{reached}");
        assert_eq!(share_reached(&writes, STANDBY, 19.0, 2.0), None);
        // Requests no instance took do not count as reaching the region.
        let unserved: Vec<Write> = writes
            .iter()
            .cloned()
            .map(|w| Write { served: false, ..w })
            .collect();
        assert_eq!(share_reached(&unserved, STANDBY, 0.0, 2.0), None);
        // Too few requests in a window: not measured.
        let sparse: Vec<Write> = writes.iter().step_by(10).cloned().collect();
        assert_eq!(share_reached(&sparse, STANDBY, 0.0, 2.0), None);
    }
}
