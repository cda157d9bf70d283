//! One run of a scenario in one mode: set up the rig and the functions, play the outage,
//! measure, check.

use crate::*;

pub(crate) async fn keys_in(world: &World, region: &str) -> BTreeSet<String> {
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

pub(crate) fn params_line(params: &BTreeMap<String, Option<String>>) -> String {
    params
        .iter()
        .map(|(r, v)| format!("{r}={}", v.as_deref().unwrap_or("<unreachable>")))
        .collect::<Vec<_>>()
        .join("  ")
}

/// Delivers the alarm; returns the answer, the decision time and when it was decided.
pub(crate) async fn fail_over(t: &Timeline, stage: &Stage) -> (Value, f64, f64) {
    let started = Instant::now();
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    let decision = started.elapsed().as_secs_f64();
    let answered = t.mark(format!(
        "failover: {} {} -> {} at epoch {} in {:.0} ms",
        out["outcome"],
        out["from"],
        out["to"],
        out["epoch"],
        decision * 1000.0
    ));
    // The switch is done when its own steps are (as its answer was before hooks): the
    // answer comes later, after the verify stage's hooks (a smoke test).
    let decided = if out["outcome"] == "switched" {
        steps_done(t, stage).await.unwrap_or(answered)
    } else {
        answered
    };
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

pub(crate) fn capacity_line(c: &Value) -> String {
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

pub(crate) fn reload_line(r: &Value) -> String {
    format!(
        "{}: {} ok, {} failed, {} timed out, {} pending",
        r["status"].as_str().unwrap_or("?"),
        r["succeeded"],
        r["failed"],
        r["timed_out"],
        r["pending"]
    )
}

/// When the latest transition's last step other than a hook ended, on the timeline.
async fn steps_done(t: &Timeline, stage: &Stage) -> Option<f64> {
    let status = status(stage).await;
    let ended = status["status"]["last_transition"]["steps"]
        .as_array()?
        .iter()
        .filter(|e| e["kind"] != "hook")
        .filter_map(|e| e["ended_at"].as_u64())
        .max()?;
    let at = t.at(ended);
    t.mark_at(at, "  the switch's own steps done (its hooks aside)");
    Some(at)
}

/// Runs the verifier every `pace.verify_every` until `done` says stop (or a limit).
pub(crate) async fn verify_until(
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
pub(crate) async fn status(stage: &Stage) -> Value {
    stage
        .failover
        .invoke(&json!({"command": "status"}))
        .await
        .ok()
}

pub(crate) fn check(ok: bool, what: impl Into<String>) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.into()) }
}

/// Waits until the standby has `required` instances in service, and until that many
/// serve the new region; marks both. Bounded by `limit`.
pub(crate) async fn watch_recovery(
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

/// Instance refresh batches for `n` instances at the template's MinHealthyPercentage.
pub(crate) fn refresh_batches(n: usize) -> (usize, usize) {
    let n = n.max(1);
    let keep = (n * MIN_HEALTHY_PERCENT as usize).div_ceil(100);
    let batch = n.saturating_sub(keep).max(1);
    (n.div_ceil(batch), batch)
}

pub(crate) async fn run(scenario: Scenario, pace: &Pace, mode: Mode) -> Result<Summary, String> {
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
    let env = function_env(scenario, pace, mode, &cluster);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rig_env = rig_env(scenario, pace);
    let rig_env: Vec<(&str, &str)> = rig_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
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
    script_smoke_test(&stage);
    // The control stack's link to home: every function of the standby's stack reaches
    // home through it (the partition scenario cuts it); everyone else goes direct.
    let direct = stage.world.endpoints.clone();
    let link = Arc::new(Link::start(&stage.rig.url(HOME)).await);
    stage.set_env(
        "REGION_ENDPOINTS",
        &endpoints_through(&direct, HOME, link.url()),
    );
    stage.failover = stage.start_function("failover", 2, &[]).await;
    // Two probe instances: the drill's samples and the probe's schedule may overlap.
    let probe = Arc::new(stage.start_function("health-probe", 2, &[]).await);
    let verifier = stage.start_function("failback", 1, &[]).await;
    // Control-region loss: home's own stack, over the same MRSC control table. (The
    // stage's functions are the standby's stack.)
    let home_plane = if scenario == Scenario::ControlRegionLoss {
        let in_home = [("AWS_REGION", HOME), ("REGION_ENDPOINTS", direct.as_str())];
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
        vec![("AWS_REGION", HOME), ("REGION_ENDPOINTS", direct.as_str())]
    } else {
        vec![
            ("AWS_REGION", HOME),
            ("DEPLOYMENT_ROLE", "regional"),
            ("CONTROL_TABLE", ""),
            ("HEALTH_TABLE", ""),
            ("HEALTH_KEY", ""),
            ("REGION_ENDPOINTS", direct.as_str()),
        ]
    };
    let vantage = vantage_points(scenario, &stage).await;
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
    // The other vantage points sample on the same aligned periods.
    let period_ms = health_alarms.lock().unwrap().period_ms();
    let vantage_samplers: Vec<_> = vantage
        .iter()
        .map(|(_, p)| tokio::spawn(sample_vantage(p.clone(), period_ms, stop.clone())))
        .collect();
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
    let drill = Drill {
        scenario,
        pace,
        mode,
        t: t.clone(),
        verifier: &verifier,
        home_plane: &home_plane,
        fleet: fleet.clone(),
        writes: writes.clone(),
        dns: dns.clone(),
        dns_seen: dns_seen.clone(),
        fast: fast.clone(),
        health_alarms: health_alarms.clone(),
        switch_bound,
        dns_bound,
        fleets: (home_fleet, standby_fleet),
    };
    m.vantage_points = std::iter::once(STANDBY.to_owned())
        .chain(vantage.iter().map(|(region, _)| region.clone()))
        .collect();
    if scenario == Scenario::Partition {
        partition(&drill, &stage, &link, &mut m).await?;
    }
    for cycle in 1..=cycles {
        if !outage_cycle(&drill, &mut stage, cycle, cycles, &mut m).await? {
            break;
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
    for vantage_sampler in vantage_samplers {
        let _ = vantage_sampler.await;
    }
    if let Some(home_schedule) = home_schedule {
        let _ = home_schedule.await;
    }
    finish(&drill, &stage, m).await
}

/// What the phases of one run share.
pub(crate) struct Drill<'a> {
    pub(crate) scenario: Scenario,
    pub(crate) pace: &'a Pace,
    pub(crate) mode: Mode,
    pub(crate) t: Timeline,
    pub(crate) verifier: &'a LocalFunction,
    pub(crate) home_plane: &'a Option<(LocalFunction, Arc<LocalFunction>)>,
    pub(crate) fleet: Fleet,
    pub(crate) writes: Arc<Mutex<Vec<Write>>>,
    pub(crate) dns: Arc<Mutex<Dns>>,
    pub(crate) dns_seen: Arc<Mutex<DnsSeen>>,
    pub(crate) fast: [Arc<Mutex<SignalDns>>; 2],
    pub(crate) health_alarms: Arc<Mutex<HealthAlarms>>,
    pub(crate) switch_bound: Duration,
    pub(crate) dns_bound: Duration,
    /// In service at the steady state: (home, standby).
    pub(crate) fleets: (usize, usize),
}

/// One outage of the scenario (the flapping scenario has two): the outage, its detection,
/// the failover and the application's and users' recovery, the region's return and the
/// failback. `Ok(false)`: the scenario ends with this cycle.
async fn outage_cycle(
    d: &Drill<'_>,
    stage: &mut Stage,
    cycle: usize,
    cycles: usize,
    m: &mut Summary,
) -> Result<bool, String> {
    let Drill {
        pace,
        t,
        verifier,
        home_plane,
        fleet,
        writes,
        dns,
        dns_seen,
        fast,
        health_alarms,
        ..
    } = d;
    let (scenario, mode, switch_bound, dns_bound) =
        (d.scenario, d.mode, d.switch_bound, d.dns_bound);
    let (home_fleet, standby_fleet) = d.fleets;
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
    let (detected, detected_old_rule) = detect(t, health_alarms, HOME).await;
    if cycle == 1 {
        m.detected_old_rule = detected_old_rule;
    }
    let (out, decision, decided) = fail_over(t, stage).await;
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
        paused_outage(t, stage, writes, dns, dns_seen, switch_bound, m).await?;
        return Ok(false);
    }
    check(
        out["outcome"] == "switched",
        format!("failover did not switch: {out}"),
    )?;
    if cycle == 1 {
        m.switch_quorum = out["quorum"]["down_votes"]
            .as_u64()
            .map(|_| quorum_line(&out["quorum"]));
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
            ((batches.0 as f64 + 2.0) * (BOOT_SECONDS.1 + WARMUP_SECONDS) + 60.0) / pace.time_scale,
        );
        watch_recovery(t, fleet, m.required, limit, m).await;
        m.smoke = smoke_test(t, stage).await;
        // The DNS stage: measured before home recovers.
        let window = USERS_WINDOW;
        let until = decided + dns_bound.as_secs_f64();
        m.users_served = wait_for_users(t, writes, outage, window, until).await;
        {
            let seen = dns_seen.lock().unwrap();
            m.new_healthy = seen.health(STANDBY, true, decided);
            m.old_unhealthy = seen.health(HOME, false, decided);
        }
        // The fast signals on the same requests (faster than the metric, so done).
        let so_far = requests_so_far(writes);
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
        let reload = status(stage).await["status"]["auto_scaling_groups"][&group]["reload"].clone();
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
        let report = verify_until(t, verifier, pace, 3, |_| false).await;
        check(report.is_none(), "the verifier stopped early")?;
        let status = status(stage).await;
        t.mark(format!(
            "status: active {} phase {} (no failback to a dead region)",
            status["status"]["active_region"], status["status"]["phase"]
        ));
        check(
            status["status"]["active_region"] == STANDBY,
            format!("left the standby: {status}"),
        )?;
        return Ok(false);
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
            t,
            stage,
            home_failover,
            home_probe,
            verifier,
            writes,
            (dns, fast),
            pace,
            m,
        )
        .await?;
        return Ok(false);
    }

    if scenario == Scenario::ReplicationPause {
        // Enough verification rounds that only the paused replication holds failback.
        let held = verify_until(t, verifier, pace, 5, |r| r["outcome"] == "failed_back").await;
        check(
            held.is_none(),
            "failed back while replication to home was paused",
        )?;
        stage.rig.set_replication(STANDBY, HOME, 0.0, false);
        let resumed = t.mark(format!("replication {STANDBY} -> {HOME} resumed"));
        m.failback_held = Some(resumed - recovered);
    }
    if scenario == Scenario::Flapping && cycle == cycles {
        let report = verify_until(t, verifier, pace, 12, |r| {
            r["outcome"] == "paused"
                || r["reason"]
                    .as_str()
                    .is_some_and(|s| s.contains("flap guard"))
        })
        .await;
        let status = status(stage).await;
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
        return Ok(false);
    }
    let rounds = (Duration::from_secs(90).as_secs_f64() / pace.verify_every.as_secs_f64()) as usize;
    let back = verify_until(t, verifier, pace, rounds, |r| r["outcome"] == "failed_back").await;
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
    Ok(true)
}

/// The `verify` hook every switch calls (`HOOKS=verify=smoke-test`), as the rig's Lambda
/// model answers for it in both regions: a smoke test reading the new region's canary
/// (what its instances serve) every AWS second for up to 10 minutes.
fn script_smoke_test(stage: &Stage) {
    let canary =
        |region: &str| format!("http://127.0.0.1:{}", stage.rig.server(region).control_port);
    let script = json!({
        SMOKE_TEST: [{"smoke": {"canaries": {HOME: canary(HOME), STANDBY: canary(STANDBY)}, "within": 600}}]
    });
    for region in [HOME, STANDBY] {
        stage.rig.script_hooks(region, &script);
    }
}

/// The failover's smoke test, from the rig's record of its calls and the transition's
/// record of the hook: when the switch's verify stage called it, and when it saw the new
/// region serve.
async fn smoke_test(t: &Timeline, stage: &Stage) -> Option<SmokeTest> {
    let calls = || {
        stage
            .rig
            .hook_calls(STANDBY)
            .into_iter()
            .filter(|c| c["function"] == SMOKE_TEST && c["payload"]["to"] == STANDBY)
            .collect::<Vec<Value>>()
    };
    let seconds = |v: &Value| v.as_f64().map(|at| t.at((at * 1000.0) as u64));
    // It reads every AWS second: the new region serving, it has passed or is about to.
    let mut passed = None;
    for _ in 0..20 {
        passed = calls()
            .iter()
            .find(|c| c["ok"] == true)
            .and_then(|c| seconds(&c["answered_at"]));
        if passed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let called = seconds(&calls().first()?["at"])?;
    t.mark_at(
        called,
        format!("verify hook {SMOKE_TEST} called (the failover's verify stage)"),
    );
    if let Some(at) = passed {
        t.mark_at(
            at,
            format!("  smoke test passed: an instance in {STANDBY} serves {STANDBY}"),
        );
    }
    let record =
        &status(stage).await["status"]["last_transition"]["hooks"][&format!("verify/{SMOKE_TEST}")];
    Some(SmokeTest {
        called,
        passed,
        recorded: format!(
            "{} after {} call(s)",
            record["status"].as_str().unwrap_or("?"),
            record["attempts"]
        ),
    })
}

/// The functions' environment in a run: short timeouts, the pace's failback timings, the
/// mode's reload, and every traffic signal at once.
fn function_env(
    scenario: Scenario,
    pace: &Pace,
    mode: Mode,
    cluster: &ArcCluster,
) -> Vec<(&'static str, String)> {
    let max_switches = if scenario == Scenario::Flapping {
        "3"
    } else {
        "10"
    };
    let quorum_window = ((30.0 / pace.time_scale).ceil() as u64).max(2).to_string();
    let mut env: Vec<(&'static str, String)> = [
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
        // The template's 30 s, at the pace (at least two probe intervals).
        ("QUORUM_WINDOW_SECONDS", quorum_window.as_str()),
        ("MAX_AUTOMATIC_SWITCHES_PER_DAY", max_switches),
        ("REFRESH_WARMUP_SECONDS", "60"),
        ("CAPACITY_PERCENT", "100"),
        // Every signal at once, on the same outage: the functions emit ActiveRegion (the
        // metric signal) under any signal, answer as gates with a token, and set the
        // routing controls with routing-control.
        ("TRAFFIC_SIGNAL", "routing-control"),
        ("GATE_TOKEN", GATE_TOKEN),
        // One verify hook: a smoke test of the new region (see `script_smoke_test`).
        ("HOOKS", "verify=smoke-test"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    env.push(("ROUTING_CONTROL_ENDPOINTS", cluster.endpoints_env()));
    env.push((
        "ROUTING_CONTROL_ARNS",
        ArcCluster::arns_env(&[HOME, STANDBY]),
    ));
    let reload: &[(&'static str, &str)] = match mode {
        Mode::Refresh => &[("RELOAD_MODE", "refresh")],
        Mode::RunCommand => &[
            ("RELOAD_MODE", "run-command"),
            ("RELOAD_COMMANDS", RELOAD_COMMANDS),
            ("RELOAD_TIMEOUT_SECONDS", "120"),
        ],
    };
    env.extend(reload.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

/// The rig's timings at the pace (and, for control-region loss, the MRSC control table).
pub(crate) fn rig_env(scenario: Scenario, pace: &Pace) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("RIG_TIME_SCALE", pace.time_scale.to_string()),
        (
            "RIG_BOOT_SECONDS",
            format!("{}-{}", BOOT_SECONDS.0, BOOT_SECONDS.1),
        ),
        ("RIG_WARMUP_SECONDS", WARMUP_SECONDS.to_string()),
        (
            "RIG_RUN_COMMAND_SECONDS",
            format!("{}-{}", RUN_COMMAND_SECONDS.0, RUN_COMMAND_SECONDS.1),
        ),
        (
            "RIG_SSM_REGISTER_SECONDS",
            format!("{}-{}", SSM_REGISTER_SECONDS.0, SSM_REGISTER_SECONDS.1),
        ),
        ("RIG_APP_PARAMETER", world::PARAMETER.to_owned()),
    ];
    if scenario == Scenario::ControlRegionLoss {
        // One control table for both regions' control planes: an MRSC global table.
        env.extend([
            ("RIG_MRSC_TABLES", world::CONTROL_TABLE.to_owned()),
            ("RIG_MRSC_REGIONS", format!("{HOME},{STANDBY}")),
        ]);
    }
    env
}

/// After the outages: the parameters, the writes lost or not, the history, the timeline
/// picture, and the checks every scenario must pass.
async fn finish(d: &Drill<'_>, stage: &Stage, mut m: Summary) -> Result<Summary, String> {
    let Drill {
        t,
        writes,
        dns_seen,
        ..
    } = d;
    let (scenario, mode, dns_bound) = (d.scenario, d.mode, d.dns_bound);
    let params = stage.world.parameters().await;
    t.mark(format!("parameters: {}", params_line(&params)));

    // Let replication settle, then count acknowledged writes missing where they must be:
    // in both regions, or in the standby alone when home is gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = requests_so_far(writes);
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
        let transition = &status(stage).await["status"]["last_transition"];
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
        Scenario::Freeze
        | Scenario::ReplicationPause
        | Scenario::PilotLight
        | Scenario::Partition => vec![1, 2],
        Scenario::Kill => vec![1],
        Scenario::Flapping => vec![1, 2, 3],
        Scenario::Paused => vec![],
        Scenario::ControlRegionLoss => vec![1, 2],
        // Run by `run_ecs`, never here: one failover.
        Scenario::Ecs => vec![1],
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
