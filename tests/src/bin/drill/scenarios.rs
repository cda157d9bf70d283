//! The scenario-specific phases: paused, and the control region's loss.

use crate::*;

/// What DNS would have done in the paused scenario with Route 53's own endpoint health
/// checks (not modelled).
pub(crate) fn endpoint_note() -> String {
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
pub(crate) async fn standby_lost(
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
pub(crate) async fn paused_outage(
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
pub(crate) fn kept_decision(
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

/// The partition scenario's first phase: the standby's link to home is cut for one
/// outage's length. The control stack's probe sees home down and its alarm fires; the
/// failover asks the vantage points, finds only its own sees home down, and refuses
/// (partition suspected), told as a `Region Switch` refusal. Users stay with home, which
/// never stopped serving them. The link heals and home's alarm returns to OK before the
/// scenario's real outage.
pub(crate) async fn partition(
    d: &Drill<'_>,
    stage: &Stage,
    link: &Link,
    m: &mut Summary,
) -> Result<(), String> {
    let Drill {
        t,
        pace,
        verifier,
        writes,
        health_alarms,
        ..
    } = d;
    let cut = t.mark(format!(
        "PARTITION: the link {STANDBY} -> {HOME} cut (the control stack's functions reach nothing in {HOME}); users and the vantage points in {HOME} and {THIRD} still reach it"
    ));
    link.cut();
    let (detected, _) = detect(t, health_alarms, HOME).await;
    let asked = Instant::now();
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    let decision = asked.elapsed().as_secs_f64();
    t.mark(format!(
        "failover answered the standby's alarm: {} ({})",
        out["outcome"],
        out["reason"].as_str().unwrap_or("")
    ));
    check(
        out["outcome"] == "refused"
            && out["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("partition suspected: ")),
        format!("the partition was not refused: {out}"),
    )?;
    let quorum = quorum_line(&out["quorum"]);
    t.mark(format!("  quorum: {quorum}"));
    // The verifier's failover retry (the standby's samples still say failing) is an
    // automatic switch too: refused the same way.
    let report = verifier.invoke(&json!({"command": "verify"})).await.ok();
    let retry = &report["failover_retry"];
    t.mark(format!(
        "verifier during the partition: failover retry {} ({})",
        retry["outcome"],
        retry["reason"].as_str().unwrap_or("no retry")
    ));
    check(
        retry["outcome"] == "refused",
        format!("the verifier's failover retry was not refused during the partition: {report}"),
    )?;
    let elapsed = Duration::from_secs_f64(t.started.elapsed().as_secs_f64() - cut);
    tokio::time::sleep(pace.outage.saturating_sub(elapsed)).await;
    let (all_home, params) = stage.world.parameters_all(HOME).await;
    link.restore();
    let healed = t.mark(format!(
        "PARTITION healed: the link {STANDBY} -> {HOME} restored; parameters {}",
        params_line(&params)
    ));
    check(
        all_home,
        format!("a parameter moved during the partition: {params:?}"),
    )?;
    // The app's requests during the partition: all to home, none failed.
    let during: Vec<Write> = requests_so_far(writes)
        .into_iter()
        .filter(|w| w.at >= cut && w.at <= healed)
        .collect();
    let served_home = during.iter().filter(|w| w.ok && w.region == HOME).count();
    let failed = during.iter().filter(|w| !w.ok).count();
    t.mark(format!(
        "  during the partition: {} writes, {served_home} served by {HOME}, {failed} failed",
        during.len()
    ));
    check(
        !during.is_empty() && served_home == during.len(),
        format!(
            "users were not all served by {HOME} during the partition: {served_home} of {}",
            during.len()
        ),
    )?;
    // Home's alarm back to OK on healthy samples before the real outage.
    let back = Instant::now();
    let bound = Duration::from_millis(8 * health_alarms.lock().unwrap().period_ms());
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let changes = health_alarms.lock().unwrap().advance();
        let ok = changes.iter().any(|(_, region, rule, state)| {
            region == HOME && *rule == alarm::UNHEALTHY.missing.name() && *state == AlarmState::Ok
        });
        mark_alarm_changes(t, &changes);
        if ok {
            break;
        }
        if back.elapsed() > bound {
            return Err(format!(
                "{HOME}'s alarm did not return to OK after the partition"
            ));
        }
    }
    m.partition = Some(PartitionSeen {
        detected: detected - cut,
        decision,
        reason: out["reason"].as_str().unwrap_or("").to_owned(),
        quorum,
        retry: format!(
            "{}: {}",
            retry["outcome"].as_str().unwrap_or("none"),
            retry["reason"].as_str().unwrap_or("")
        ),
        writes: during.len(),
        served_home,
        failed,
    });
    Ok(())
}
