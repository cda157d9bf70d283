//! The benchmarks: regionpilot's release bootstraps against the seed recipe's Python
//! failover Lambda (`tests/baseline/`), under the same local Lambda Runtime API and the
//! same rig. Prints one table with the ratios and checks the targets in its report.
//!
//! Not a test: figures depend on the machine. Run it with `make bench` (or
//! `./scripts/bench`), which builds the release bootstraps with cargo-lambda first.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is the point

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use regionpilot_tests::rig::Fault;
use regionpilot_tests::{LocalFunction, Rig, Stage, World, alarm_for, paths, world};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const COLD_SAMPLES: usize = 10;
const WARM_SAMPLES: usize = 100;
const FROZEN_SAMPLES: usize = 20;
/// Latency added to every rig request to count a decision's sequential request stages.
const STAGE_PROBE_LATENCY_MS: u64 = 40;
const STAGE_SAMPLES: usize = 10;
const PROBE_TIMEOUT_MS: u64 = 500;

/// Targets from the benchmark issue; the report says which are met.
const COLD_START_RATIO: f64 = 1.0 / 15.0;
const PEAK_RSS_RATIO: f64 = 1.0 / 4.0;
const ZIP_LIMIT_BYTES: u64 = 4 * 1024 * 1024;
const DECISION_HEALTHY_P50_MS: f64 = 30.0;
const DECISION_FROZEN_SLACK_MS: f64 = 30.0;

#[derive(Default)]
struct Measured {
    cold_ms: Vec<f64>,
    warm_ms: Vec<f64>,
    peak_rss_kib: u64,
    zip_bytes: Option<u64>,
}

/// Nearest-rank percentile.
fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Where an implementation keeps the active region: regionpilot in its control state, the
/// recipe's Python Lambda in the parameter alone. With the two alternating, each sample's
/// alarm is about the region that implementation has active, so each is a real switch.
#[derive(Clone, Copy)]
enum ActiveIn {
    ControlState,
    Parameter,
}

/// The region a failover alarm should now be about.
async fn active(world: &World, kept: ActiveIn) -> String {
    let parameter = || async {
        world
            .parameter(STANDBY)
            .await
            .expect("parameter readable in the standby")
    };
    match kept {
        ActiveIn::Parameter => parameter().await,
        ActiveIn::ControlState => match world.control_item().await {
            Some(item) => item
                .get("active_region")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .expect("the control state names its active region"),
            None => HOME.to_owned(),
        },
    }
}

fn assert_switched(out: &Value, what: &str) {
    assert_eq!(out["outcome"], "switched", "{what}: {out}");
}

/// Cold starts and warm invocations of the failover implementations side by side: sample
/// by sample, each does the same real switch (the alarm is always about the active
/// region) on the rig as the other left it, so neither is measured on a rig the other
/// has loaded with more switches.
async fn measure_failovers(
    world: &World,
    functions: &mut [(&mut LocalFunction, ActiveIn)],
) -> Vec<Measured> {
    let mut all: Vec<Measured> = functions.iter().map(|_| Measured::default()).collect();
    for _ in 0..COLD_SAMPLES {
        for ((function, kept), m) in functions.iter_mut().zip(all.iter_mut()) {
            let alarm = alarm_for(&active(world, *kept).await);
            let (took, out) = function.cold_invoke(&alarm).await;
            assert_switched(&out.ok(), &format!("{} cold", function.name));
            m.cold_ms.push(ms(took));
            function.stop().await;
            world.forget_automatic_switches().await;
        }
    }
    for (function, _) in functions.iter_mut() {
        function.spawn_process();
    }
    for i in 0..WARM_SAMPLES {
        for ((function, kept), m) in functions.iter_mut().zip(all.iter_mut()) {
            let event = alarm_for(&active(world, *kept).await);
            let started = Instant::now();
            let out = function.invoke(&event).await.ok();
            let took = started.elapsed();
            assert_switched(&out, &format!("{} warm {i}", function.name));
            m.warm_ms.push(ms(took));
            world.forget_automatic_switches().await;
        }
    }
    for ((function, _), m) in functions.iter_mut().zip(all.iter_mut()) {
        m.peak_rss_kib = function.peak_rss_kib().into_iter().max().unwrap_or(0);
        function.stop().await;
    }
    all
}

/// One emulated AWS request, as the harness sees it: the p50 of a mix of what a switch
/// asks the control region (GetParameter, DescribeAutoScalingGroups, a consistent GetItem
/// of the control state), with each kind's own p50. Each rig region is one Python process,
/// so a region's requests are served one at a time, unlike AWS's independent fleets.
async fn rig_request_ms(world: &World) -> (f64, [(&'static str, f64); 3]) {
    let region = &world.control_region;
    let clients = world.client(region);
    let mut kinds: [(&'static str, Vec<f64>); 3] = [
        ("GetParameter", Vec::new()),
        ("DescribeAutoScalingGroups", Vec::new()),
        ("GetItem (control state)", Vec::new()),
    ];
    for _ in 0..30 {
        for (i, (_, samples)) in kinds.iter_mut().enumerate() {
            let started = Instant::now();
            match i {
                0 => {
                    clients
                        .ssm
                        .get_parameter()
                        .name(world::PARAMETER)
                        .send()
                        .await
                        .expect("rig get parameter");
                }
                1 => {
                    clients
                        .autoscaling
                        .describe_auto_scaling_groups()
                        .auto_scaling_group_names(world::GROUP)
                        .send()
                        .await
                        .expect("rig describe group");
                }
                _ => {
                    clients
                        .dynamodb
                        .get_item()
                        .table_name(world::CONTROL_TABLE)
                        .key("pk", AttributeValue::S("control".into()))
                        .key("sk", AttributeValue::S("state".into()))
                        .consistent_read(true)
                        .send()
                        .await
                        .expect("rig get item");
                }
            }
            samples.push(ms(started.elapsed()));
        }
    }
    let all: Vec<f64> = kinds.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    let each = kinds.map(|(name, samples)| (name, percentile(&samples, 0.5)));
    (percentile(&all, 0.5), each)
}

/// Warm failover decisions with the control plane in a third region (the other topology
/// the deploy guide offers), so the target region's process serves only its own calls.
async fn decisions_with_control_in_third_region(env: &[(&str, &str)]) -> Vec<f64> {
    let mut stage = Stage::start("bench-third", &[HOME, STANDBY], "us-east-2", 1, env).await;
    let mut samples = Vec::new();
    for i in 0..WARM_SAMPLES {
        let event = alarm_for(&active(&stage.world, ActiveIn::ControlState).await);
        let started = Instant::now();
        let out = stage.failover.invoke(&event).await.ok();
        let took = started.elapsed();
        assert_switched(&out, &format!("third-region warm {i}"));
        samples.push(ms(took));
        stage.world.forget_automatic_switches().await;
    }
    stage.failover.stop().await;
    samples
}

/// Warm failover decisions on one stage, alternating: with three vantage points in the
/// control table that all see the active region down (so the quorum holds and the switch
/// goes on), and with none (one vantage point: nothing to weigh). The difference is what
/// reading and weighing the quorum adds to a switch. Returns (with, without).
async fn quorum_cost(env: &[(&str, &str)]) -> (Vec<f64>, Vec<f64>) {
    use regionpilot::evidence::samples::{ProbeSamples, Sample};
    use regionpilot::ports::ControlStore;
    use regionpilot::region::Region;
    let mut stage = Stage::start("bench-quorum", &[HOME, STANDBY], STANDBY, 1, env).await;
    let client = stage.world.client(STANDBY).dynamodb.clone();
    let store = regionpilot::aws::DynamoControlStore::new(
        client.clone(),
        Region::parse(STANDBY).unwrap(),
        world::CONTROL_TABLE.to_owned(),
    );
    let vantages = [STANDBY, HOME, "ca-central-1"];
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..WARM_SAMPLES {
        let active = active(&stage.world, ActiveIn::ControlState).await;
        let quorum = i % 2 == 0;
        for vantage in vantages {
            if quorum {
                let mut point = ProbeSamples::new(Region::parse(vantage).unwrap());
                for region in [HOME, STANDBY] {
                    point.regions.insert(
                        Region::parse(region).unwrap(),
                        vec![Sample {
                            at: regionpilot_tests::now_ms(),
                            healthy: region != active,
                            error_class: None,
                        }],
                    );
                }
                store.put_samples(&point).await.unwrap();
            } else {
                client
                    .delete_item()
                    .table_name(world::CONTROL_TABLE)
                    .key("pk", AttributeValue::S("probe".into()))
                    .key("sk", AttributeValue::S(vantage.into()))
                    .send()
                    .await
                    .unwrap();
            }
        }
        let started = Instant::now();
        let out = stage.failover.invoke(&alarm_for(&active)).await.ok();
        let took = ms(started.elapsed());
        assert_switched(&out, &format!("quorum warm {i}"));
        assert_eq!(out["quorum"].is_object(), quorum, "{out}");
        if quorum {
            with.push(took);
        } else {
            without.push(took);
        }
        stage.world.forget_automatic_switches().await;
    }
    stage.failover.stop().await;
    (with, without)
}

/// Cold starts of a function answering a request that changes nothing: the failover
/// function's status and dry run (an operator's first `aws lambda invoke`), a probe, a
/// verification.
async fn measure_cold_commands(
    function: &mut LocalFunction,
    payload: &Value,
    expect: &str,
) -> Vec<f64> {
    let mut samples = Vec::new();
    for _ in 0..COLD_SAMPLES {
        let (took, out) = function.cold_invoke(payload).await;
        assert_eq!(out.ok()["outcome"], expect, "cold {payload}");
        samples.push(ms(took));
        function.stop().await;
    }
    samples
}

/// How many sequential request stages a healthy switch makes: every rig request is delayed
/// by the same latency, and the decision's p50 grows by that latency once per stage.
async fn sequential_stages(
    rig: &Rig,
    world: &World,
    function: &mut LocalFunction,
    healthy_p50: f64,
) -> f64 {
    function.spawn_process();
    let delay = [Fault::latency("*", STAGE_PROBE_LATENCY_MS)];
    let mut samples = Vec::new();
    for i in 0..STAGE_SAMPLES {
        let event = alarm_for(&active(world, ActiveIn::ControlState).await);
        for region in [HOME, STANDBY] {
            rig.set_faults(region, &delay);
        }
        let started = Instant::now();
        let out = function.invoke(&event).await.ok();
        let took = started.elapsed();
        for region in [HOME, STANDBY] {
            rig.set_faults(region, &[]);
        }
        assert_switched(&out, &format!("delayed {i}"));
        samples.push(ms(took));
        world.forget_automatic_switches().await;
    }
    function.stop().await;
    (percentile(&samples, 0.5) - healthy_p50) / STAGE_PROBE_LATENCY_MS as f64
}

/// Cold starts and warm invocations of a function that changes nothing (probe, verifier).
async fn measure_read_only(
    function: &mut LocalFunction,
    payload: &Value,
    expect: &str,
) -> Measured {
    let mut m = Measured {
        cold_ms: measure_cold_commands(function, payload, expect).await,
        ..Measured::default()
    };
    function.spawn_process();
    for _ in 0..WARM_SAMPLES / 2 {
        let started = Instant::now();
        let out = function.invoke(payload).await.ok();
        m.warm_ms.push(ms(started.elapsed()));
        assert_eq!(out["outcome"], expect);
    }
    m.peak_rss_kib = function.peak_rss_kib().into_iter().max().unwrap_or(0);
    function.stop().await;
    m
}

/// A serving gate's cold starts and warm answers: Route 53's request for the `active`
/// region, answered 200. (A cold start here is also a Lambda cold start of the gate, which
/// Route 53's checkers meet after an idle spell or a deploy.)
async fn measure_gate(function: &mut LocalFunction, active: &str) -> Measured {
    let ask = regionpilot_tests::signals::gate_request(GATE_TOKEN, active);
    let mut m = Measured::default();
    for _ in 0..COLD_SAMPLES {
        let (took, out) = function.cold_invoke(&ask).await;
        assert_eq!(out.ok()["statusCode"], 200, "cold gate");
        m.cold_ms.push(ms(took));
        function.stop().await;
    }
    function.spawn_process();
    for _ in 0..WARM_SAMPLES {
        let started = Instant::now();
        let out = function.invoke(&ask).await.ok();
        m.warm_ms.push(ms(started.elapsed()));
        assert_eq!(out["statusCode"], 200, "warm gate: {out}");
    }
    m.peak_rss_kib = function.peak_rss_kib().into_iter().max().unwrap_or(0);
    function.stop().await;
    m
}

/// The gates' token in the bench.
const GATE_TOKEN: &str = "bench-gate-token-0123456789";

/// The failover decision with the home region frozen: event in, switched, published
/// everywhere reachable, refreshes started.
async fn measure_frozen(rig: &Rig, world: &World, function: &mut LocalFunction) -> Vec<f64> {
    function.spawn_process();
    let mut samples = Vec::new();
    for i in 0..FROZEN_SAMPLES {
        if active(world, ActiveIn::ControlState).await != HOME {
            let back =
                json!({"command": "failover", "target_region": HOME, "reason": "bench reset"});
            assert_switched(&function.invoke(&back).await.ok(), "reset to home");
        }
        rig.freeze(HOME);
        let started = Instant::now();
        let out = function.invoke(&alarm_for(HOME)).await.ok();
        let took = started.elapsed();
        rig.thaw(HOME);
        assert_switched(&out, &format!("frozen {i}"));
        samples.push(ms(took));
        world.forget_automatic_switches().await;
        // Let the thawed region finish what queued up while it was frozen.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    function.stop().await;
    samples
}

/// The deployment package as Lambda receives it: the bootstrap, deflated in a zip.
fn zip_size(files: &[&Path], name: &str) -> u64 {
    let out_dir = paths::workspace().join("target/bench");
    std::fs::create_dir_all(&out_dir).expect("target/bench");
    let zip = out_dir.join(format!("{name}.zip"));
    let script = "import sys, zipfile, os\nwith zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z:\n    for f in sys.argv[2:]:\n        z.write(f, os.path.basename(f))";
    let status = std::process::Command::new(paths::python())
        .args(["-c", script])
        .arg(&zip)
        .args(files)
        .status()
        .expect("python zip");
    assert!(status.success(), "zip {name}");
    std::fs::metadata(&zip).expect("zip written").len()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let lambda_dir = std::env::var("REGIONPILOT_LAMBDA_DIR").unwrap_or_default();
    assert!(
        !lambda_dir.is_empty(),
        "set REGIONPILOT_LAMBDA_DIR to cargo-lambda's release output (make bench does)"
    );
    let env = [
        ("COOLDOWN_SECONDS", "0"),
        ("MAX_AUTOMATIC_SWITCHES_PER_DAY", "1000"),
        ("PROBE_TIMEOUT_MS", "500"),
        ("CALL_TIMEOUT_MS", "500"),
        ("CALL_MAX_ATTEMPTS", "2"),
        ("CONNECT_TIMEOUT_MS", "300"),
        ("LOG_FORMAT", "json"),
    ];
    println!("regionpilot benchmarks: release bootstraps from {lambda_dir}");
    println!(
        "  rig: {HOME} and {STANDBY}, one moto server each on 127.0.0.1; every failover sample is a real switch\n  (parameter in both regions, instance refresh in both); cold = process spawn to first answer\n"
    );
    let mut stage = Stage::start("bench", &[HOME, STANDBY], STANDBY, 0, &env).await;
    let world = &stage.world;

    let (fresh_round_trip, _) = rig_request_ms(world).await;
    // First, on the fresh stage: a deployment's first `aws lambda invoke` (moto's
    // DescribeInstanceRefreshes slows down with the refreshes the switches below start).
    let cold_status =
        measure_cold_commands(&mut stage.failover, &json!({"command": "status"}), "status").await;
    let cold_dry_run = measure_cold_commands(
        &mut stage.failover,
        &json!({"command": "failover", "dry_run": true}),
        "dry_run",
    )
    .await;
    let mut python_function = LocalFunction::start_program(
        "baseline-failover",
        paths::python(),
        &[paths::workspace()
            .join("tests/baseline/bootstrap.py")
            .to_str()
            .expect("utf-8 path")],
        world.function_env(&[]),
        0,
        &stage.rig.dir,
    )
    .await;
    let mut measured = measure_failovers(
        world,
        &mut [
            (&mut stage.failover, ActiveIn::ControlState),
            (&mut python_function, ActiveIn::Parameter),
        ],
    )
    .await
    .into_iter();
    let (mut rust, mut python) = match (measured.next(), measured.next()) {
        (Some(rust), Some(python)) => (rust, python),
        _ => unreachable!("two functions measured"),
    };

    let mut env_map: BTreeMap<String, String> = world.function_env(&[]);
    env_map.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut probe = LocalFunction::start("health-probe", env_map.clone(), 0, &stage.rig.dir).await;
    let mut probe_m = measure_read_only(&mut probe, &json!({"command": "probe"}), "probed").await;
    // The gates: the control stack's (a strongly consistent read of the control state)
    // and a regional stack's (its region's parameter), each as its own function.
    let mut gate_env = env_map.clone();
    gate_env.insert("GATE_TOKEN".into(), GATE_TOKEN.into());
    let mut control_gate =
        LocalFunction::start("health-probe", gate_env.clone(), 0, &stage.rig.dir).await;
    // The switches above leave either region active: ask about the one that is.
    let serving = active(world, ActiveIn::ControlState).await;
    let mut control_gate_m = measure_gate(&mut control_gate, &serving).await;
    let mut regional_env = gate_env;
    for (name, value) in [
        ("AWS_REGION", HOME),
        ("DEPLOYMENT_ROLE", "regional"),
        ("CONTROL_TABLE", ""),
        ("HEALTH_TABLE", ""),
        ("HEALTH_KEY", ""),
    ] {
        regional_env.insert(name.into(), value.into());
    }
    let mut regional_gate =
        LocalFunction::start("health-probe", regional_env, 0, &stage.rig.dir).await;
    // A regional gate answers from its region's parameter (the Python baseline's
    // switches above wrote it without the control state).
    let home_parameter = world.parameter(HOME).await.expect("home's parameter");
    let mut regional_gate_m = measure_gate(&mut regional_gate, &home_parameter).await;
    let mut verifier = LocalFunction::start("failback", env_map, 0, &stage.rig.dir).await;
    let mut verifier_m =
        measure_read_only(&mut verifier, &json!({"command": "verify"}), "home").await;
    let frozen = measure_frozen(&stage.rig, world, &mut stage.failover).await;
    let (round_trip, request_kinds) = rig_request_ms(world).await;
    let stages = sequential_stages(
        &stage.rig,
        world,
        &mut stage.failover,
        percentile(&rust.warm_ms, 0.5),
    )
    .await;
    let third_region = decisions_with_control_in_third_region(&env).await;
    let quorum = quorum_cost(&env).await;

    let bootstrap = |name: &str| Path::new(&lambda_dir).join(name).join("bootstrap");
    rust.zip_bytes = Some(zip_size(&[&bootstrap("failover")], "failover"));
    probe_m.zip_bytes = Some(zip_size(&[&bootstrap("health-probe")], "health-probe"));
    verifier_m.zip_bytes = Some(zip_size(&[&bootstrap("failback")], "failback"));
    // The gates are the health probe's binary.
    control_gate_m.zip_bytes = probe_m.zip_bytes;
    regional_gate_m.zip_bytes = probe_m.zip_bytes;
    python.zip_bytes = Some(zip_size(
        &[&paths::workspace().join("tests/baseline/failover.py")],
        "baseline-failover",
    ));

    report(&Report {
        rust: &rust,
        cold_status: &cold_status,
        cold_dry_run: &cold_dry_run,
        python: &python,
        probe: &probe_m,
        gates: [&control_gate_m, &regional_gate_m],
        verifier: &verifier_m,
        frozen: &frozen,
        third_region: &third_region,
        quorum: (&quorum.0, &quorum.1),
        round_trip,
        request_kinds,
        fresh_round_trip,
        stages,
    });
}

struct Report<'a> {
    rust: &'a Measured,
    cold_status: &'a [f64],
    cold_dry_run: &'a [f64],
    python: &'a Measured,
    probe: &'a Measured,
    /// The control stack's gate, a regional stack's gate.
    gates: [&'a Measured; 2],
    verifier: &'a Measured,
    frozen: &'a [f64],
    third_region: &'a [f64],
    /// Decisions with three vantage points, and with none, alternating on one stage.
    quorum: (&'a [f64], &'a [f64]),
    round_trip: f64,
    request_kinds: [(&'static str, f64); 3],
    fresh_round_trip: f64,
    stages: f64,
}

fn report(r: &Report) {
    let Report {
        rust,
        cold_status,
        cold_dry_run,
        python,
        probe,
        gates,
        verifier,
        frozen,
        third_region,
        quorum,
        round_trip,
        request_kinds,
        fresh_round_trip,
        stages,
    } = *r;
    let cold = |m: &Measured| percentile(&m.cold_ms, 0.5);
    let mb = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{:<28} {:>11} {:>10} {:>10} {:>10} {:>9}",
        "function", "cold start", "warm p50", "warm p99", "peak RSS", "zip"
    );
    let row = |name: &str, m: &Measured| {
        println!(
            "{:<28} {:>8.1} ms {:>7.2} ms {:>7.2} ms {:>7.1} MB {:>6.2} MB",
            name,
            cold(m),
            percentile(&m.warm_ms, 0.5),
            percentile(&m.warm_ms, 0.99),
            mb(m.peak_rss_kib),
            m.zip_bytes.unwrap_or(0) as f64 / 1024.0 / 1024.0
        )
    };
    row("failover (Rust)", rust);
    let cold_only = |name: &str, samples: &[f64]| {
        println!("{:<28} {:>8.1} ms", name, percentile(samples, 0.5));
    };
    // Rust's own figures: Python's baseline has no status or dry run to set them against.
    cold_only("  status (Rust, own)", cold_status);
    cold_only("  dry run (Rust, own)", cold_dry_run);
    row("failover (Python baseline)", python);
    println!(
        "{:<28} {:>11} {:>10} {:>10} {:>10}",
        "Rust / Python",
        format!("1/{:.1}", cold(python) / cold(rust)),
        format!(
            "1/{:.1}",
            percentile(&python.warm_ms, 0.5) / percentile(&rust.warm_ms, 0.5)
        ),
        format!(
            "1/{:.1}",
            percentile(&python.warm_ms, 0.99) / percentile(&rust.warm_ms, 0.99)
        ),
        format!(
            "1/{:.1}",
            python.peak_rss_kib as f64 / rust.peak_rss_kib as f64
        ),
    );
    row("health-probe (Rust)", probe);
    row("  gate, control stack", gates[0]);
    row("  gate, regional stack", gates[1]);
    row("failback (Rust)", verifier);
    println!(
        "\n(samples: {COLD_SAMPLES} cold starts each, median shown, Rust and Python alternating switch by switch on the same rig; {WARM_SAMPLES} warm failovers each, alternating too; {} warm probe/verify; the Python zip holds only the handler, boto3 ships with Lambda's runtime)",
        WARM_SAMPLES / 2
    );

    let healthy_p50 = percentile(&rust.warm_ms, 0.5);
    let frozen_max = frozen.iter().copied().fold(0.0, f64::max);
    let frozen_bound = PROBE_TIMEOUT_MS as f64 + DECISION_FROZEN_SLACK_MS;
    println!(
        "\nfailover decision (alarm event in -> switched, published everywhere reachable, refreshes started)"
    );
    println!(
        "  healthy regions:    p50 {healthy_p50:.2} ms, p99 {:.2} ms over {WARM_SAMPLES}",
        percentile(&rust.warm_ms, 0.99)
    );
    println!(
        "  home region frozen: p50 {:.1} ms, max {frozen_max:.1} ms over {FROZEN_SAMPLES} (PROBE_TIMEOUT_MS={PROBE_TIMEOUT_MS})",
        percentile(frozen, 0.5)
    );
    println!(
        "  control plane in a third region, healthy: p50 {:.2} ms, p99 {:.2} ms over {WARM_SAMPLES}",
        percentile(third_region, 0.5),
        percentile(third_region, 0.99)
    );
    println!(
        "  with three vantage points (the quorum read and weighed): p50 {:.2} ms vs {:.2} ms with one, alternating on one stage, {} each",
        percentile(quorum.0, 0.5),
        percentile(quorum.1, 0.5),
        quorum.0.len()
    );
    let stage_count = stages.round().max(1.0);
    let floor = stage_count * round_trip;
    println!(
        "  one rig request (p50 of a mix: {}): {round_trip:.2} ms; on the fresh stage {fresh_round_trip:.2} ms",
        request_kinds
            .iter()
            .map(|(name, p50)| format!("{name} {p50:.2} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  sequential request stages of a switch: {stages:.2} (every rig request delayed {STAGE_PROBE_LATENCY_MS} ms: p50 grew by that many times it)"
    );
    println!(
        "  floor = {stage_count} stages x {round_trip:.2} ms = {floor:.2} ms; decision p50 / floor = {:.2}",
        healthy_p50 / floor
    );

    let zips = [rust, probe, verifier].map(|m| m.zip_bytes.unwrap_or(u64::MAX));
    let checks = [
        (
            format!(
                "cold start <= 1/15 of Python's, the same real switch on the same rig: 1/{:.1}",
                cold(python) / cold(rust)
            ),
            cold(rust) <= cold(python) * COLD_START_RATIO,
        ),
        (
            format!(
                "peak RSS <= 1/4 of Python: 1/{:.1}",
                python.peak_rss_kib as f64 / rust.peak_rss_kib as f64
            ),
            rust.peak_rss_kib as f64 <= python.peak_rss_kib as f64 * PEAK_RSS_RATIO,
        ),
        (
            format!(
                "every zip <= 4 MB: largest {:.2} MB",
                *zips.iter().max().unwrap_or(&0) as f64 / 1024.0 / 1024.0
            ),
            zips.iter().all(|z| *z <= ZIP_LIMIT_BYTES),
        ),
        (
            format!("decision p50 <= {DECISION_HEALTHY_P50_MS} ms, healthy: {healthy_p50:.2} ms"),
            healthy_p50 <= DECISION_HEALTHY_P50_MS,
        ),
        (
            format!(
                "decision <= probe timeout + 30 ms, home frozen: max {frozen_max:.1} ms <= {frozen_bound} ms"
            ),
            frozen_max <= frozen_bound,
        ),
    ];
    println!("\ntargets");
    for (what, met) in &checks {
        println!("  [{}] {what}", if *met { "met" } else { "MISSED" });
    }
}
