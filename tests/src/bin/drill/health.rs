//! The health alarms the drill evaluates as CloudWatch would (the rig evaluates none): the
//! deploy's first minute, sampling, detection.

use crate::*;

pub(crate) async fn probe_healthy(probe: &LocalFunction, region: &str) -> (bool, Value) {
    let out = probe.invoke(&json!({"command": "probe"})).await.ok();
    (out["regions"][region]["healthy"] == true, out)
}

/// Every region's `<stack>-unhealthy-<region>` alarm, twice: under the template's rule
/// (`alarm::UNHEALTHY`, missing data not breaching) and under the rule it replaced
/// (`alarm::UNHEALTHY_BEFORE`, missing data breaching), fed the same probe samples. The
/// rig's CloudWatch evaluates no alarm, so the drill does, as AWS documents it.
pub(crate) struct HealthAlarms {
    /// (region, rule's missing-data name) -> alarm.
    pub(crate) alarms: BTreeMap<(String, &'static str), MetricAlarm>,
}

impl HealthAlarms {
    /// Alarms created now (as a deploy creates them), in INSUFFICIENT_DATA.
    pub(crate) fn created(regions: &[&str], pace: &Pace) -> HealthAlarms {
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
    pub(crate) fn record(&mut self, out: &Value) {
        let Some(at) = out["at"].as_u64() else {
            return;
        };
        for ((region, _), alarm) in &mut self.alarms {
            if let Some(healthy) = out["regions"][region]["healthy"].as_bool() {
                alarm.record(at, if healthy { 1.0 } else { 0.0 });
            }
        }
    }

    pub(crate) fn period_ms(&self) -> u64 {
        self.alarms
            .values()
            .next()
            .map_or(1, MetricAlarm::period_ms)
    }

    /// Every change of state due by now: (evaluation time, region, rule, state).
    pub(crate) fn advance(&mut self) -> Vec<(u64, String, &'static str, AlarmState)> {
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
pub(crate) fn mark_alarm_changes(
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
pub(crate) async fn deploy_minute(
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
pub(crate) struct DeployMinute {
    /// Alarms the template's rule put in ALARM, each delivered to failover.
    pub(crate) delivered: usize,
    /// The control state's epoch after the minute.
    pub(crate) epoch: Option<u64>,
    /// When the old rule put home's alarm in ALARM, from the stack's creation.
    pub(crate) old_rule_alarm: Option<f64>,
}

/// The health probe as its schedule runs it: a round at each period's start (aligned to
/// the clock, as the probe aligns its samples), every answer fed to the alarm models.
pub(crate) async fn sample_health(
    probe: Arc<LocalFunction>,
    alarms: Arc<Mutex<HealthAlarms>>,
    stop: Arc<AtomicBool>,
) {
    let period_ms = alarms.lock().unwrap().period_ms();
    sample_on_periods(&probe, period_ms, &stop, |out| {
        alarms.lock().unwrap().record(&out.ok())
    })
    .await;
}

/// A probe round at each period's start (aligned to the clock) until `stop`, each answer
/// handed to `on_answer`.
async fn sample_on_periods(
    probe: &LocalFunction,
    period_ms: u64,
    stop: &AtomicBool,
    mut on_answer: impl FnMut(regionpilot_tests::Invocation),
) {
    while !stop.load(Ordering::SeqCst) {
        on_answer(probe.invoke(&json!({"command": "probe"})).await);
        let now = epoch_ms();
        let next = now - now % period_ms + period_ms;
        tokio::time::sleep(Duration::from_millis(next.saturating_sub(epoch_ms()))).await;
    }
}

/// Evaluates the alarm models as periods come due, until the template's rule puts
/// `region`'s alarm in ALARM. Returns when, and when the old rule did (if it did by then).
pub(crate) async fn detect(
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

/// The vantage points besides the control stack's probe, each a regional stack's probe
/// (`DEPLOYMENT_ROLE=regional` with the control table, as the template's `regional` and
/// `vantage` roles deploy it): home's (its regional stack) and a third region's. Home's
/// verdicts on home do not count (a probe does not judge its own region), so the third
/// is what can tell a partition between the standby and home from home's outage. Its
/// process is not frozen with home: it samples from outside the rig's regions. In mrsc
/// mode (control-region loss) every region's stack is a full stack with its own probe,
/// and no regional stack exists: none are added.
pub(crate) async fn vantage_points(
    scenario: Scenario,
    stage: &Stage,
) -> Vec<(String, Arc<LocalFunction>)> {
    if scenario == Scenario::ControlRegionLoss {
        return Vec::new();
    }
    let mut points = Vec::new();
    for region in [HOME, THIRD] {
        let probe = stage.start_vantage_point(region).await;
        points.push((region.to_owned(), Arc::new(probe)));
    }
    points
}

/// A vantage point's probe on the same aligned periods as the control stack's; its
/// samples go to the control table only (no alarm watches another region's metrics).
pub(crate) async fn sample_vantage(
    probe: Arc<LocalFunction>,
    period_ms: u64,
    stop: Arc<AtomicBool>,
) {
    sample_on_periods(&probe, period_ms, &stop, |_| {}).await;
}

/// `N of M see <region> down (quorum K): <vantage> <verdict>, ...`
/// from a failover's `quorum`.
pub(crate) fn quorum_line(quorum: &Value) -> String {
    let verdicts: Vec<String> = quorum["verdicts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let verdict = match (v["healthy"].as_bool(), v["fresh"].as_bool()) {
                (Some(true), Some(true)) => "healthy".to_owned(),
                (Some(false), Some(true)) => format!(
                    "down ({})",
                    v["error_class"].as_str().unwrap_or("unhealthy")
                ),
                _ => "no fresh sample".to_owned(),
            };
            format!("{} {verdict}", v["vantage"].as_str().unwrap_or("?"))
        })
        .collect();
    format!(
        "{} of {} see {} down (quorum {}): {}",
        quorum["down_votes"],
        verdicts.len(),
        quorum["region"].as_str().unwrap_or("?"),
        quorum["required"],
        verdicts.join(", ")
    )
}
