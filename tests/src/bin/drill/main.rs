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

// The drill's modules share these imports, its constants and each other's items through
// `use crate::*`: one program in several files, not a library.
pub(crate) use std::collections::{BTreeMap, BTreeSet};
pub(crate) use std::path::PathBuf;
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
pub(crate) use std::sync::{Arc, Mutex};
pub(crate) use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) use aws_sdk_dynamodb::types::AttributeValue;
pub(crate) use regionpilot_tests::alarm::{self, AlarmState, MetricAlarm};
pub(crate) use regionpilot_tests::arc::ArcCluster;
pub(crate) use regionpilot_tests::dns::{self, Change, Dns, LogTail, Timings, Users};
pub(crate) use regionpilot_tests::link::{Link, endpoints_through};
pub(crate) use regionpilot_tests::rig::{InstanceView, ModelInstance};
pub(crate) use regionpilot_tests::signals::{self, Gate, SignalDns};
pub(crate) use regionpilot_tests::{LocalFunction, Stage, World, alarm_for, paths, world};
pub(crate) use serde_json::{Value, json};

// In the order a run goes: its timeline, the application and its users, the health
// alarms, the metric signal's DNS stage, the run itself, the scenario-specific phases, and
// the summary.
mod app;
mod dns_stage;
mod ecs;
mod health;
mod run;
mod scenarios;
mod summary;
mod timeline;

pub(crate) use app::*;
pub(crate) use dns_stage::*;
pub(crate) use ecs::*;
pub(crate) use health::*;
pub(crate) use run::*;
pub(crate) use scenarios::*;
pub(crate) use summary::*;
pub(crate) use timeline::*;

pub(crate) const HOME: &str = "us-east-1";
pub(crate) const STANDBY: &str = "us-west-2";
/// A vantage point outside the application's regions (a `DeploymentRole=vantage` stack):
/// no emulated region of its own, and its own region's endpoint is 127.0.0.1's discard
/// port, so nothing it might send there leaves the host.
pub(crate) const THIRD: &str = "ca-central-1";
pub(crate) const GROUP: &str = world::GROUP;
/// The drill's verify hook (`HOOKS=verify=smoke-test`).
pub(crate) const SMOKE_TEST: &str = "smoke-test";
/// The template's REFRESH_MIN_HEALTHY_PERCENT default.
pub(crate) const MIN_HEALTHY_PERCENT: i32 = 90;
/// What the reload runs on each instance (the rig re-reads the parameter).
pub(crate) const RELOAD_COMMANDS: &str =
    "/opt/app/bin/use-active-region && systemctl reload php-fpm";

/// The drill's pace. The AWS pace keeps the template's 10 s probe samples and AWS's
/// instance and DNS timings; the others divide every modelled duration (probe samples,
/// boot, warmup, Run Command, alarm periods, TTL, verification) by `time_scale`, and the
/// summary multiplies what it measured back into AWS seconds.
pub(crate) struct Pace {
    pub(crate) name: &'static str,
    pub(crate) probe_interval: Duration,
    pub(crate) outage: Duration,
    pub(crate) verify_every: Duration,
    pub(crate) healthy_checks: &'static str,
    pub(crate) min_hold_seconds: &'static str,
    /// Modelled seconds per wall-clock second in the rig's instance model (and the DNS
    /// stage's timings).
    pub(crate) time_scale: f64,
}

pub(crate) const FAST: Pace = Pace {
    name: "fast (AWS timings / 10)",
    probe_interval: Duration::from_secs(1),
    outage: Duration::from_secs(8),
    verify_every: Duration::from_secs(1),
    healthy_checks: "3",
    min_hold_seconds: "5",
    time_scale: 10.0,
};

/// The default: AWS's timings at four times the speed, a freeze drill in about 2 minutes.
pub(crate) const QUICK: Pace = Pace {
    name: "quick (AWS timings / 4)",
    probe_interval: Duration::from_millis(2500),
    outage: Duration::from_secs(15),
    verify_every: Duration::from_millis(2500),
    healthy_checks: "3",
    min_hold_seconds: "8",
    time_scale: 4.0,
};

pub(crate) const TEMPLATE_PACE: Pace = Pace {
    name: "AWS (the template's timings, in real time)",
    probe_interval: Duration::from_secs(10),
    outage: Duration::from_secs(60),
    verify_every: Duration::from_secs(10),
    healthy_checks: "3",
    min_hold_seconds: "30",
    time_scale: 1.0,
};

/// AWS's orders of magnitude the rig models (seconds, before `time_scale`).
pub(crate) const BOOT_SECONDS: (f64, f64) = (60.0, 90.0);
pub(crate) const WARMUP_SECONDS: f64 = 60.0;
pub(crate) const RUN_COMMAND_SECONDS: (f64, f64) = (2.0, 5.0);
/// From the end of boot until SSM has registered the instance (its agent started).
pub(crate) const SSM_REGISTER_SECONDS: (f64, f64) = (5.0, 15.0);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Scenario {
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
    /// The application on an ECS service and an Auto Scaling group at once, a warm
    /// standby at 1 with home at 4: one failover recovers both, measured side by side.
    Ecs,
    /// Three vantage points; the standby's link to home is cut: its alarm fires and its
    /// failover refuses (partition suspected) while users stay with home; then a real
    /// freeze of home fails over as usual.
    Partition,
}

impl Scenario {
    const ALL: [Scenario; 9] = [
        Scenario::Freeze,
        Scenario::Partition,
        Scenario::PilotLight,
        Scenario::Kill,
        Scenario::ReplicationPause,
        Scenario::Flapping,
        Scenario::Paused,
        Scenario::ControlRegionLoss,
        Scenario::Ecs,
    ];

    pub(crate) fn parse(name: &str) -> Option<Vec<Scenario>> {
        Some(match name {
            "freeze" => vec![Scenario::Freeze],
            "kill" => vec![Scenario::Kill],
            "replication-pause" => vec![Scenario::ReplicationPause],
            "flapping" => vec![Scenario::Flapping],
            "pilot-light" => vec![Scenario::PilotLight],
            "paused" => vec![Scenario::Paused],
            "control-region-loss" => vec![Scenario::ControlRegionLoss],
            "ecs" => vec![Scenario::Ecs],
            "partition" => vec![Scenario::Partition],
            "all" => Scenario::ALL.to_vec(),
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Freeze => "freeze",
            Scenario::Kill => "kill",
            Scenario::ReplicationPause => "replication-pause",
            Scenario::Flapping => "flapping",
            Scenario::PilotLight => "pilot-light",
            Scenario::Paused => "paused",
            Scenario::ControlRegionLoss => "control-region-loss",
            Scenario::Ecs => "ecs",
            Scenario::Partition => "partition",
        }
    }

    /// Each region's group: (region, min, desired, max).
    pub(crate) fn capacities(self) -> Vec<(&'static str, i32, i32, i32)> {
        match self {
            Scenario::PilotLight => vec![(HOME, 1, 10, 12), (STANDBY, 1, 1, 12)],
            Scenario::Ecs => vec![(HOME, 1, 4, 8), (STANDBY, 1, 1, 8)],
            // Warm standby: the standby runs the same fleet, pointing at home.
            _ => vec![(HOME, 2, 2, 4), (STANDBY, 2, 2, 4)],
        }
    }
}

/// How running instances learn the new region.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Refresh,
    RunCommand,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Refresh => "refresh",
            Mode::RunCommand => "run-command",
        }
    }
}

pub(crate) const USAGE: &str = "usage: drill [--fast | --aws-pace] [--scenario freeze|pilot-light|kill|replication-pause|flapping|paused|control-region-loss|ecs|partition|all] [--mode refresh|run-command|both]";

pub(crate) fn arguments() -> (Vec<Scenario>, &'static Pace, Vec<Mode>) {
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
pub(crate) async fn main() {
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
        if scenario != Scenario::ControlRegionLoss && scenario != Scenario::Ecs {
            println!(
                "  vantage points: the control stack's probe ({STANDBY}, reaching {HOME} through a link the rig can cut),"
            );
            println!(
                "  {HOME}'s regional stack's probe and a vantage stack's probe in {THIRD} (outside the rig's regions);"
            );
        }
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
        if scenario == Scenario::Ecs {
            // One run: ECS and the group side by side in it (run-command reload).
            match run_ecs(pace).await {
                Ok(summary) => print_ecs(pace, &summary),
                Err(why) => {
                    println!("\nSCENARIO ecs FAILED: {why}");
                    failed.push("ecs".to_owned());
                }
            }
            continue;
        }
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
