//! The `ecs` scenario: the application runs both as an ECS service and on an Auto
//! Scaling group in each region, a warm standby at 1 (task or instance) with home at 4.
//! Home freezes; the probe and the alarm model detect it; one failover recovers both. The
//! drill measures, in AWS seconds, when each serves home's capacity with the new region.

use crate::*;

/// AWS's task timings the rig models (seconds, before `time_scale`).
pub(crate) const TASK_START_SECONDS: (f64, f64) = (20.0, 40.0);
pub(crate) const TASK_HEALTHY_SECONDS: f64 = 15.0;
const SERVICE: &str = world::SERVICE;

/// What the `ecs` scenario measured, in wall-clock seconds on its timeline.
#[derive(Debug, Default)]
pub(crate) struct EcsSummary {
    pub(crate) outage: f64,
    pub(crate) detected: f64,
    pub(crate) decision: f64,
    /// When the alarm's action invoked the failover.
    pub(crate) switched: f64,
    /// When the failover answered (after following the deployments).
    pub(crate) answered: f64,
    pub(crate) deployment: String,
    pub(crate) ecs_serves: Option<f64>,
    pub(crate) asg_serves: Option<f64>,
}

pub(crate) async fn run_ecs(pace: &Pace) -> Result<EcsSummary, String> {
    let env: Vec<(&str, String)> = vec![
        ("CONNECT_TIMEOUT_MS", "300".into()),
        ("CALL_TIMEOUT_MS", "500".into()),
        ("CALL_MAX_ATTEMPTS", "2".into()),
        ("PROBE_TIMEOUT_MS", "500".into()),
        ("PROBE_INTERVAL_SECONDS", "1".into()),
        ("COOLDOWN_SECONDS", "5".into()),
        ("FAILBACK_MODE", "approve".into()),
        ("CAPACITY_PERCENT", "100".into()),
        ("ECS_SERVICES", SERVICE.into()),
        ("RELOAD_MODE", "run-command".into()),
        ("RELOAD_COMMANDS", RELOAD_COMMANDS.into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut rig_env = rig_env(Scenario::Ecs, pace);
    rig_env.extend([
        (
            "RIG_ECS_TASK_START_SECONDS",
            format!("{}-{}", TASK_START_SECONDS.0, TASK_START_SECONDS.1),
        ),
        ("RIG_ECS_HEALTHY_SECONDS", TASK_HEALTHY_SECONDS.to_string()),
    ]);
    let rig_env: Vec<(&str, &str)> = rig_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let stage = Stage::start_with(
        "drill-ecs",
        &[HOME, STANDBY],
        STANDBY,
        2,
        &env,
        &rig_env,
        &[(HOME, 1, 4, 8), (STANDBY, 1, 1, 8)],
    )
    .await;
    stage
        .world
        .seed_services(&[(HOME, 4, Some(8)), (STANDBY, 1, Some(8))])
        .await;
    let probe = Arc::new(stage.start_function("health-probe", 2, &[]).await);
    let verifier = stage.start_function("failback", 1, &[]).await;
    let t = Timeline::new("ecs");
    let alarms = Arc::new(Mutex::new(HealthAlarms::created(&[HOME, STANDBY], pace)));
    deploy_minute(&t, &stage, &probe, &alarms, pace).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample_health(probe.clone(), alarms.clone(), stop.clone()));
    // The verifier's scheduled run records every group's and service's sizes.
    let report = verifier.invoke(&json!({"command": "verify"})).await.ok();
    check(report["outcome"] == "home", format!("verifier: {report}"))?;
    let tasks = |region: &str| stage.rig.service_tasks(region, SERVICE).unwrap_or_default();
    let serving_tasks =
        |region: &str, value: &str| tasks(region).iter().filter(|k| k.serves(value)).count();
    let serving_instances = |region: &str, value: &str| {
        stage
            .rig
            .live_instances(region, GROUP)
            .unwrap_or_default()
            .iter()
            .filter(|i| i.serves(value))
            .count()
    };
    t.mark(format!(
        "steady state: {HOME} serves with {} task(s) and {} instance(s), {STANDBY} idles with {} and {}",
        serving_tasks(HOME, HOME),
        serving_instances(HOME, HOME),
        serving_tasks(STANDBY, HOME),
        serving_instances(STANDBY, HOME)
    ));
    let mut m = EcsSummary {
        outage: t.mark(format!("OUTAGE: {HOME} frozen (SIGSTOP)")),
        ..EcsSummary::default()
    };
    stage.rig.freeze(HOME);
    let (detected, _) = detect(&t, &alarms, HOME).await;
    m.detected = detected;
    stop.store(true, Ordering::SeqCst);
    // Watched from the alarm's delivery on: the failover's answer comes only after it has
    // followed the deployments (up to 20 s), and the tasks may serve before that.
    let invoked = t.mark("the alarm's action invokes the failover");
    // Both bounded by their slowest modelled path, with room to spare.
    let limit = Duration::from_secs_f64(
        (2.0 * (BOOT_SECONDS.1 + WARMUP_SECONDS + SSM_REGISTER_SECONDS.1) + 120.0)
            / pace.time_scale,
    );
    // On a thread of its own: the rig's control port is read with blocking calls, and
    // the failover's invocation must not hold the watch up (nor the watch the failover).
    let watch = {
        let (view, t) = (stage.rig.view(), t.clone());
        tokio::task::spawn_blocking(move || {
            let serving_tasks = |value: &str| {
                view.service_tasks(STANDBY, SERVICE)
                    .unwrap_or_default()
                    .iter()
                    .filter(|k| k.serves(value))
                    .count()
            };
            let serving_instances = |value: &str| {
                view.live_instances(STANDBY, GROUP)
                    .unwrap_or_default()
                    .iter()
                    .filter(|i| i.serves(value))
                    .count()
            };
            let (mut ecs, mut asg) = (None, None);
            let waiting = Instant::now();
            while (ecs.is_none() || asg.is_none()) && waiting.elapsed() < limit {
                if ecs.is_none() && serving_tasks(STANDBY) >= 4 {
                    ecs = Some(t.mark(format!(
                        "ECS: {STANDBY}'s service serves with 4 healthy tasks holding {STANDBY}"
                    )));
                }
                if asg.is_none() && serving_instances(STANDBY) >= 4 {
                    asg = Some(t.mark(format!(
                        "Auto Scaling: {STANDBY}'s group serves with 4 instances in service holding {STANDBY}"
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (ecs, asg)
        })
    };
    let (out, decision, answered) = fail_over(&t, &stage).await;
    let (ecs_serves, asg_serves) = watch.await.map_err(|e| format!("watch: {e}"))?;
    check(out["outcome"] == "switched", format!("failover: {out}"))?;
    m.decision = decision;
    m.switched = invoked;
    m.answered = answered;
    (m.ecs_serves, m.asg_serves) = (ecs_serves, asg_serves);
    let key = format!("{STANDBY}/{SERVICE}");
    let deployment = &out["deployments"][&key];
    m.deployment = format!(
        "{} {}",
        deployment["deployment_id"].as_str().unwrap_or("-"),
        deployment["status"].as_str().unwrap_or("-")
    );
    t.mark(format!(
        "  capacity {key}: {}; deployment {}",
        capacity_line(&out["capacity"][&key]),
        m.deployment
    ));
    let _ = sampler.await;
    // The follow-up the failover left (if any) is the verifier's; it finds nothing to fix
    // in the service once the rollout is complete.
    let report = verifier.invoke(&json!({"command": "verify"})).await.ok();
    t.mark(format!(
        "verifier: reconcile following {}, fixed {}, failed {}",
        report["reconcile"]["following"],
        report["reconcile"]["fixed"],
        report["reconcile"]["failed"]
    ));
    let leftover = tasks(STANDBY)
        .iter()
        .filter(|k| k.running && k.value.as_deref() == Some(HOME))
        .count();
    check(
        leftover == 0,
        format!("{leftover} task(s) in {STANDBY} still hold {HOME}"),
    )?;
    stage.rig.thaw(HOME);
    check(
        m.ecs_serves.is_some(),
        "the ECS service never served at home's capacity",
    )?;
    check(
        m.asg_serves.is_some(),
        "the group never served at home's capacity",
    )?;
    Ok(m)
}

/// The `ecs` table: the same outage and failover, ECS beside Auto Scaling, in AWS seconds.
pub(crate) fn print_ecs(pace: &Pace, m: &EcsSummary) {
    let aws = |wall: f64| wall * pace.time_scale;
    let since = |at: Option<f64>| at.map(|at| aws(at - m.outage));
    println!("\n  ecs: a warm standby at 1 (home at 4), one outage, one failover (AWS seconds):");
    println!(
        "    detection (outage -> alarm)                 {:>8.1} s",
        aws(m.detected - m.outage)
    );
    println!(
        "    the failover's answer (after following the deployments) {:>6.2} s wall clock",
        m.decision
    );
    println!(
        "    standby deployment                          {}",
        m.deployment
    );
    println!("    {:<44}{:>10} {:>14}", "", "ECS service", "Auto Scaling");
    println!(
        "    {:<44}{:>10} {:>14}",
        "RTO: outage -> 4 serving the new region",
        secs(since(m.ecs_serves)),
        secs(since(m.asg_serves))
    );
    println!(
        "    {:<44}{:>10} {:>14}",
        "  of which after the failover was invoked",
        secs(m.ecs_serves.map(|at| aws(at - m.switched))),
        secs(m.asg_serves.map(|at| aws(at - m.switched)))
    );
    println!(
        "    modelled: a task starts in {}-{} s and is healthy {} s later (rolling deployment, minimumHealthyPercent 100, maximumPercent 200);",
        TASK_START_SECONDS.0, TASK_START_SECONDS.1, TASK_HEALTHY_SECONDS
    );
    println!(
        "    an instance boots in {}-{} s, warms {} s and registers with SSM {}-{} s after boot (run-command reload of those running)",
        BOOT_SECONDS.0,
        BOOT_SECONDS.1,
        WARMUP_SECONDS,
        SSM_REGISTER_SECONDS.0,
        SSM_REGISTER_SECONDS.1
    );
}
