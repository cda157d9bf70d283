//! What one run measured, and the side-by-side summary with its stated assumptions.

use crate::*;

pub(crate) fn describe(scenario: Scenario) -> &'static str {
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
        Scenario::Ecs => {
            "the application on an ECS service and an Auto Scaling group, a warm standby at 1 with home at 4: home freezes, one failover recovers both"
        }
        Scenario::Partition => {
            "three vantage points; the standby's link to home is cut: its alarm fires and its failover refuses (partition suspected) while users stay with home; the link heals; then home freezes and fails over as usual"
        }
        Scenario::ControlRegionLoss => {
            "a control plane per region over one MRSC control table: home freezes, the standby's regionpilot fails over; home recovers; the standby freezes with its control plane before the failback; home's regionpilot brings the app home"
        }
    }
}

pub(crate) fn print_assumptions(pace: &Pace) {
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
pub(crate) struct Summary {
    /// The deploy's first minute.
    pub(crate) deploy: DeployMinute,
    pub(crate) outage: f64,
    pub(crate) detected: f64,
    /// When the old rule put home's alarm in ALARM over the same samples.
    pub(crate) detected_old_rule: Option<f64>,
    pub(crate) decision: f64,
    pub(crate) decided: f64,
    /// The capacity the standby must serve with (what the failover asked for).
    pub(crate) required: usize,
    pub(crate) capacity_in_service: Option<f64>,
    pub(crate) app_rto: Option<f64>,
    pub(crate) refresh_batches: Option<(usize, usize)>,
    pub(crate) reload: Option<String>,
    pub(crate) capacity: Option<String>,
    pub(crate) recovered: Option<f64>,
    pub(crate) failed_back: Option<f64>,
    pub(crate) failback_held: Option<f64>,
    pub(crate) writes: usize,
    pub(crate) failed_writes: usize,
    pub(crate) lost: usize,
    pub(crate) epochs: Vec<u64>,
    pub(crate) duplicate: String,
    pub(crate) kill_window: Option<String>,
    /// When 95 % of the requests of a window reached the new region (timeline).
    pub(crate) users_served: Option<f64>,
    /// After the switch: the new region's health check healthy, the old's unhealthy.
    pub(crate) new_healthy: Option<f64>,
    pub(crate) old_unhealthy: Option<f64>,
    /// Paused: the share of requests after the outage that DNS sent home.
    pub(crate) dns_home_share: Option<f64>,
    /// The fast signals, in [`FAST_SIGNALS`] order, on the same outage.
    pub(crate) fast: [FastSignal; 2],
    /// Control-region loss: whether each signal's DNS kept the last decision (the lost
    /// standby) until home's regionpilot switched: metric, then [`FAST_SIGNALS`].
    pub(crate) kept_last_decision: Option<[bool; 3]>,
    /// Control-region loss: when the standby (and its control plane) was lost, when home's
    /// regionpilot answered the alarm with a switch home, and when the app wrote in home
    /// again.
    pub(crate) standby_lost: Option<f64>,
    pub(crate) home_switched: Option<f64>,
    pub(crate) home_serves: Option<f64>,
    /// The failover's `verify` hook.
    pub(crate) smoke: Option<SmokeTest>,
    /// Every vantage point (its region), the control stack's first.
    pub(crate) vantage_points: Vec<String>,
    /// What the vantage points said at the switch (the failover's `quorum`).
    pub(crate) switch_quorum: Option<String>,
    /// The partition scenario's refusal.
    pub(crate) partition: Option<PartitionSeen>,
}

/// The partition phase, on the drill's timeline.
#[derive(Clone)]
pub(crate) struct PartitionSeen {
    /// Link cut -> the standby's alarm.
    pub(crate) detected: f64,
    /// The alarm -> the refusal answered (wall seconds, as the decision).
    pub(crate) decision: f64,
    pub(crate) reason: String,
    pub(crate) quorum: String,
    /// The verifier's failover retry during the partition.
    pub(crate) retry: String,
    pub(crate) writes: usize,
    pub(crate) served_home: usize,
    pub(crate) failed: usize,
}

/// The `verify` hook's smoke test of the new region, on the drill's timeline.
#[derive(Clone)]
pub(crate) struct SmokeTest {
    /// When the failover's verify stage called it.
    pub(crate) called: f64,
    /// When it saw an instance of the new region serve the new region.
    pub(crate) passed: Option<f64>,
    /// The transition's record of it: status and calls.
    pub(crate) recorded: String,
}

/// What one fast signal did, on the drill's timeline.
#[derive(Default, Clone)]
pub(crate) struct FastSignal {
    pub(crate) users_served: Option<f64>,
    pub(crate) new_healthy: Option<f64>,
    pub(crate) old_unhealthy: Option<f64>,
    /// Paused: the share of requests after the outage that this signal's DNS sent home.
    pub(crate) home_share: Option<f64>,
}

pub(crate) fn secs(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3} s"))
}

/// The summary of every mode of one scenario, one column per mode, and the targets.
pub(crate) fn print_side_by_side(scenario: Scenario, pace: &Pace, summaries: &[(Mode, Summary)]) {
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
        "vantage points (the control stack's probe first)",
        each(&|s| s.vantage_points.join(", ")),
    );
    if summaries.iter().any(|(_, s)| s.partition.is_some()) {
        let partition = |f: &dyn Fn(&PartitionSeen) -> String| {
            each(&|s| s.partition.as_ref().map_or_else(|| "-".to_owned(), f))
        };
        line(
            "partition: link cut -> the standby's alarm",
            partition(&|p| format!("{:.3} s", aws(p.detected))),
        );
        line(
            "partition: the failover's answer (alarm -> refused)",
            partition(&|p| format!("refused in {:.3} s", p.decision)),
        );
        line("  reason", partition(&|p| p.reason.clone()));
        line("  the quorum it saw", partition(&|p| p.quorum.clone()));
        line(
            "  the verifier's failover retry",
            partition(&|p| p.retry.clone()),
        );
        line(
            "partition: app writes / served by home / failed",
            partition(&|p| format!("{} / {} / {}", p.writes, p.served_home, p.failed)),
        );
    }
    line(
        "detection (outage -> alarm)",
        each(&|s| format!("{:.3} s", aws(s.detected - s.outage))),
    );
    line(
        "  same samples, old rule (missing data breaching)",
        each(&|s| secs(s.detected_old_rule.map(|d| d - s.outage))),
    );
    line(
        "quorum at the switch",
        each(&|s| s.switch_quorum.clone().unwrap_or_else(|| "-".into())),
    );
    line(
        "decision (alarm -> failover answered, its hooks included)",
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
    if summaries.iter().any(|(_, s)| s.smoke.is_some()) {
        line(
            "verify hook: smoke test called (outage -> the failover's verify stage)",
            each(&|s| secs(s.smoke.as_ref().map(|k| k.called - s.outage))),
        );
        line(
            "verify hook: smoke test passed (outage -> new region's canary ok)",
            each(&|s| {
                s.smoke.as_ref().map_or_else(
                    || "-".to_owned(),
                    |k| format!("{}; {}", secs(k.passed.map(|p| p - s.outage)), k.recorded),
                )
            }),
        );
    }
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
        // The targets: detection + decision + 20 s (gate) or 10 s (routing
        // control) + one TTL. The decision is the switch (alarm -> its own steps done, as
        // measured), not the answer, which also waits for the verify stage's hooks.
        for (i, (signal, allowance)) in FAST_SIGNALS.iter().zip([20.0, 10.0]).enumerate() {
            line(
                &format!("  {signal} target: detection + decision + {allowance:.0} s + TTL"),
                each(&|s| {
                    let switch = (s.decided - s.detected).max(0.0);
                    let bound = aws(s.detected - s.outage) + switch + allowance + dns::TTL_SECONDS;
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
