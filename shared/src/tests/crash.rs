//! Crash points: the failover process dies at every write of a transition (before the
//! write lands, and after it lands but before the answer), in each of three transitions in
//! a row. A new process then finishes the work, by the retried event alone, or by the
//! verifier's reconcile and then the retried event. After each transition: one active
//! region, the parameter everywhere, exactly one refresh per group for it, and a linear
//! history (epochs 1, 2, 3, no gap, no duplicate).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::Config;
use crate::controller::{Controller, Outcome};
use crate::decision::event::{Command, Trigger};
use crate::state::{CapacityStatus, ReloadPhase, ReloadStatus};
use crate::testing::{FakeWorld, LostAnswer, alarm_on, config, config_with, region};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recovery {
    /// Lambda retries the asynchronous event in a new process.
    Retry,
    /// The verifier's reconcile runs first, then the event is retried.
    ReconcileThenRetry,
}

/// The three transitions: an alarm fails over, an operator fails back, an alarm again.
fn steps() -> [(Trigger, &'static str); 3] {
    let alarm = || alarm_on("us-east-1");
    [
        (alarm(), "us-west-2"),
        (
            Trigger::Command(Command::Failback {
                reason: "home is back".into(),
                dry_run: false,
                force: false,
            }),
            "us-east-1",
        ),
        (alarm(), "us-west-2"),
    ]
}

/// Plays one transition; with `crash`, the first process dies at that write and a new
/// one recovers. Returns whether the process died.
async fn play(
    world: &FakeWorld,
    config: &Arc<Config>,
    trigger: &Trigger,
    crash: Option<(u64, bool)>,
    recovery: Recovery,
) -> bool {
    let config = config.clone();
    // Past the previous transition's cooldown.
    world
        .clock
        .advance(config.cooldown.as_millis() as u64 + 1_000);
    if let Some((writes_before, lands)) = crash {
        world.crash.arm(writes_before, lands);
    }
    let first = Controller::new(config.clone(), world.ports());
    let answered = tokio::select! {
        biased;
        out = first.handle(trigger.clone()) => Some(out),
        () = world.crash.dead() => None,
    };
    drop(first);
    world.crash.disarm();
    if let Some(out) = answered {
        out.expect("handled");
        return false;
    }
    // The dead process's lease runs out; a new process picks the work up.
    world
        .clock
        .advance(config.transition_lease.as_millis() as u64 + 1_000);
    let next = Controller::new(config, world.ports());
    if recovery == Recovery::ReconcileThenRetry {
        next.reconcile().await.expect("reconcile");
    }
    next.handle(trigger.clone()).await.expect("retried event");
    true
}

/// What each mode must leave behind after every transition, besides the common checks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Exactly one instance refresh per group per transition.
    Refresh,
    /// Pilot light with Run Command: the standby raised to home's 10 once, and every
    /// group reloaded in place (no refresh at all).
    RunCommand,
}

fn check(world: &FakeWorld, mode: Mode, transitions: u64, to: &str, case: &str) {
    let state = world.control.state().expect("state saved");
    assert_eq!(state.active_region, region(to), "{case}: active region");
    assert_eq!(state.epoch, transitions, "{case}: epoch");
    let transition = state.transition.expect("transition recorded");
    assert!(transition.completed, "{case}: transition left unfinished");
    assert_eq!(
        world.control.epochs(),
        (1..=transitions).collect::<Vec<_>>(),
        "{case}: history not linear"
    );
    let values = world.parameters.values.lock().unwrap().clone();
    assert_eq!(values.len(), 3, "{case}: parameter missing somewhere");
    assert!(values.values().all(|v| v == to), "{case}: {values:?}");
    if mode == Mode::RunCommand {
        check_run_command(world, &transition, case);
        return;
    }
    // Exactly one refresh per group per transition: none missing, none started twice.
    assert_eq!(
        world.groups.starts.load(Ordering::SeqCst),
        3 * transitions,
        "{case}: refresh starts"
    );
    for (group, list) in world.groups.refreshes.lock().unwrap().iter() {
        let active: Vec<_> = list.iter().filter(|r| r.is_active()).collect();
        assert_eq!(active.len(), 1, "{case}: {group} active refreshes");
        assert!(
            active[0]
                .started_at
                .is_some_and(|t| t + 1_000 >= transition.started_at),
            "{case}: {group}'s active refresh predates the transition"
        );
    }
}

fn check_run_command(world: &FakeWorld, transition: &crate::state::Transition, case: &str) {
    assert_eq!(
        transition.outcomes::<ReloadStatus>().len(),
        3,
        "{case}: {:?}",
        transition.outcomes::<ReloadStatus>()
    );
    // A command whose SendCommand answered an error may have gone out or not: its group
    // is refreshed instead, in the same run. Every other group reloaded in place.
    let mut fell_back = 0;
    for (group, status) in &transition.outcomes::<ReloadStatus>() {
        if status.status == ReloadPhase::FellBack && status.command_id.is_none() {
            assert!(
                status.fallback_refresh.as_ref().is_some_and(|r| r.is_ok()),
                "{case}: {group}: {status:?}"
            );
            fell_back += 1;
        } else {
            assert_eq!(status.status, ReloadPhase::Succeeded, "{case}: {group}");
        }
    }
    let unsent: usize = world
        .control
        .history
        .lock()
        .unwrap()
        .iter()
        .filter_map(|h| h.transition.as_ref())
        .map(|t| {
            t.outcomes::<ReloadStatus>()
                .values()
                .filter(|r| r.status == ReloadPhase::FellBack && r.command_id.is_none())
                .count()
        })
        .sum();
    assert_eq!(
        world.groups.starts.load(Ordering::SeqCst),
        unsent as u64,
        "{case}: refreshes other than for unsent commands ({fell_back} in this transition)"
    );
    // The standby was raised once, to home's 10, and its scale-in is remembered however
    // the crash fell.
    assert_eq!(world.groups.sizes_of("us-west-2/app").desired, 10, "{case}");
    let state = world.control.state().expect("state");
    assert_eq!(
        state
            .scaled_up
            .get("us-west-2/app")
            .map(|s| s.previous_desired),
        Some(1),
        "{case}: scale-up not recorded"
    );
    let group = format!("{}/app", transition.to);
    assert!(
        transition
            .outcome::<CapacityStatus>(&group)
            .is_some_and(|c| c.is_ok()),
        "{case}: capacity step missing: {:?}",
        transition.outcomes::<CapacityStatus>()
    );
}

/// A new world, prepared for a suite.
fn prepared(prepare: fn(&FakeWorld)) -> FakeWorld {
    let world = FakeWorld::new();
    prepare(&world);
    world
}

fn run_command() -> Arc<Config> {
    Arc::new(config_with(&[
        ("RELOAD_MODE", "run-command"),
        ("RELOAD_COMMANDS", "/opt/app/bin/use-active-region"),
    ]))
}

fn pilot_light(world: &FakeWorld) {
    world.groups.set_sizes("us-east-1/app", 1, 10, 12);
    world.groups.set_sizes("us-west-2/app", 1, 1, 12);
    world.groups.set_sizes("eu-west-1/app", 1, 1, 12);
}

#[tokio::test]
async fn a_crash_at_any_write_of_a_transition_is_finished_and_nothing_is_done_twice() {
    crash_suite(Mode::Refresh, Arc::new(config()), |_| {}).await;
}

#[tokio::test]
async fn a_crash_at_any_write_of_the_capacity_and_run_command_steps_is_finished() {
    crash_suite(Mode::RunCommand, run_command(), pilot_light).await;
}

async fn crash_suite(mode: Mode, config: Arc<Config>, prepare: fn(&FakeWorld)) {
    let steps = steps();
    let new_world = || prepared(prepare);
    // How many writes each transition makes when nothing crashes.
    let world = new_world();
    let mut writes = Vec::new();
    for (n, (trigger, to)) in steps.iter().enumerate() {
        let before = world.crash.writes();
        play(&world, &config, trigger, None, Recovery::Retry).await;
        writes.push(world.crash.writes() - before);
        check(&world, mode, n as u64 + 1, to, "no crash");
    }
    assert!(
        writes.iter().all(|w| *w >= 3),
        "writes per transition: {writes:?}"
    );

    let mut covered = 0;
    for (crashing, step_writes) in writes.iter().enumerate() {
        for writes_before in 0..*step_writes {
            for lands in [false, true] {
                for recovery in [Recovery::Retry, Recovery::ReconcileThenRetry] {
                    let case = format!(
                        "transition {} crashing at write {} ({}), {recovery:?}",
                        crashing + 1,
                        writes_before + 1,
                        if lands { "landed" } else { "lost" }
                    );
                    let world = new_world();
                    for (n, (trigger, to)) in steps.iter().enumerate() {
                        let crash = (n == crashing).then_some((writes_before, lands));
                        let died = tokio::time::timeout(
                            Duration::from_secs(10),
                            play(&world, &config, trigger, crash, recovery),
                        )
                        .await
                        .unwrap_or_else(|_| panic!("{case}: recovery hung"));
                        assert_eq!(died, crash.is_some(), "{case}: crash point not reached");
                        check(&world, mode, n as u64 + 1, to, &case);
                    }
                    covered += 1;
                }
            }
        }
    }
    eprintln!(
        "crash points ({mode:?}): {} writes per transition {writes:?}, {covered} crash cases (lost/landed x 2 recoveries)",
        writes.iter().sum::<u64>()
    );
    assert_eq!(covered as u64, writes.iter().sum::<u64>() * 4);
}

/// Plays one transition in one process whose write number `writes_before + 1` is applied
/// and loses its answer. An invocation that then fails is retried (Lambda's retry of an
/// asynchronous event) at once, and the verifier's next run (a minute on, inside the
/// transition's lease) reconciles: nobody waits for a lease. Returns the first answer's
/// outcome, or the error.
async fn play_lost_answer(
    world: &FakeWorld,
    config: &Arc<Config>,
    trigger: &Trigger,
    lost: Option<(u64, LostAnswer)>,
) -> Result<Outcome, String> {
    world
        .clock
        .advance(config.cooldown.as_millis() as u64 + 1_000);
    if let Some((writes_before, answer)) = lost {
        world.crash.lose_answers(writes_before, answer, 1);
    }
    let controller = Controller::new(config.clone(), world.ports());
    let first = controller.handle(trigger.clone()).await;
    world.crash.disarm();
    let answer = match first {
        Ok(out) => Ok(out.outcome),
        Err(e) => {
            world.clock.advance(1_000);
            controller
                .handle(trigger.clone())
                .await
                .expect("retried event");
            Err(e.to_string())
        }
    };
    world.clock.advance(60_000);
    assert!(
        60_000 < config.transition_lease.as_millis(),
        "the verifier's minute must fall inside the lease"
    );
    controller.reconcile().await.expect("reconcile");
    answer
}

#[tokio::test]
async fn a_write_applied_and_then_failed_at_any_point_of_a_transition_waits_for_no_lease() {
    lost_answer_suite(Mode::Refresh, Arc::new(config()), |_| {}).await;
}

#[tokio::test]
async fn a_write_applied_and_then_failed_in_the_capacity_and_run_command_steps_waits_for_no_lease()
{
    lost_answer_suite(Mode::RunCommand, run_command(), pilot_light).await;
}

async fn lost_answer_suite(mode: Mode, config: Arc<Config>, prepare: fn(&FakeWorld)) {
    let steps = steps();
    let new_world = || prepared(prepare);
    let world = new_world();
    let mut writes = Vec::new();
    let mut calls = Vec::new();
    for (n, (trigger, to)) in steps.iter().enumerate() {
        let before = world.crash.writes();
        play_lost_answer(&world, &config, trigger, None)
            .await
            .expect("no fault");
        writes.push(world.crash.writes() - before);
        calls.push(
            (before + 1..=world.crash.writes())
                .map(|n| world.crash.call_of(n))
                .collect::<Vec<_>>(),
        );
        check(&world, mode, n as u64 + 1, to, "no fault");
    }
    let mut covered = 0;
    let mut answered_switched = 0;
    for (faulted, step_writes) in writes.iter().enumerate() {
        for writes_before in 0..*step_writes {
            for answer in [LostAnswer::Error, LostAnswer::Retried] {
                let case = format!(
                    "transition {}, write {} ({}) applied and answered {answer:?}",
                    faulted + 1,
                    writes_before + 1,
                    calls[faulted][writes_before as usize]
                );
                let world = new_world();
                for (n, (trigger, to)) in steps.iter().enumerate() {
                    let lost = (n == faulted).then_some((writes_before, answer));
                    let outcome = tokio::time::timeout(
                        Duration::from_secs(10),
                        play_lost_answer(&world, &config, trigger, lost),
                    )
                    .await
                    .unwrap_or_else(|_| panic!("{case}: hung"));
                    if lost.is_some() {
                        assert_eq!(world.crash.lost_answers(), 1, "{case}: fault not reached");
                        // The state write that decides the transition is the first: its
                        // own invocation must carry the transition out.
                        if writes_before == 0 {
                            assert_eq!(outcome, Ok(Outcome::Switched), "{case}");
                            answered_switched += 1;
                        }
                    }
                    check(&world, mode, n as u64 + 1, to, &case);
                    world.crash.reset_lost_answers();
                }
                covered += 1;
            }
        }
    }
    eprintln!(
        "lost answers ({mode:?}): writes per transition {writes:?}, {covered} cases, {answered_switched} at the deciding write answered switched"
    );
    assert_eq!(covered as u64, writes.iter().sum::<u64>() * 2);
}
