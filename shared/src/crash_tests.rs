//! Crash points: the failover process dies at every write of a transition (before the
//! write lands, and after it lands but before the answer), in each of three transitions in
//! a row. A new process then finishes the work, by the retried event alone, or by the
//! verifier's reconcile and then the retried event. After each transition: one active
//! region, the parameter everywhere, exactly one refresh per group for it, and a linear
//! history (epochs 1, 2, 3, no gap, no duplicate).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::controller::Controller;
use crate::event::{AlarmSignal, AlarmSource, AlarmState, Command, Trigger};
use crate::testing::{FakeWorld, config, region};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recovery {
    /// Lambda retries the asynchronous event in a new process.
    Retry,
    /// The verifier's reconcile runs first, then the event is retried.
    ReconcileThenRetry,
}

/// The three transitions: an alarm fails over, an operator fails back, an alarm again.
fn steps() -> [(Trigger, &'static str); 3] {
    let alarm = || {
        Trigger::Alarm(AlarmSignal {
            alarm_name: "regionpilot-unhealthy-us-east-1".into(),
            state: AlarmState::Alarm,
            region: region("us-east-1"),
            source: AlarmSource::Direct,
            state_reason: None,
        })
    };
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
    trigger: &Trigger,
    crash: Option<(u64, bool)>,
    recovery: Recovery,
) -> bool {
    let config = Arc::new(config());
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

fn check(world: &FakeWorld, transitions: u64, to: &str, case: &str) {
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

#[tokio::test]
async fn a_crash_at_any_write_of_a_transition_is_finished_and_nothing_is_done_twice() {
    let steps = steps();
    // How many writes each transition makes when nothing crashes.
    let world = FakeWorld::new();
    let mut writes = Vec::new();
    for (n, (trigger, to)) in steps.iter().enumerate() {
        let before = world.crash.writes();
        play(&world, trigger, None, Recovery::Retry).await;
        writes.push(world.crash.writes() - before);
        check(&world, n as u64 + 1, to, "no crash");
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
                    let world = FakeWorld::new();
                    for (n, (trigger, to)) in steps.iter().enumerate() {
                        let crash = (n == crashing).then_some((writes_before, lands));
                        let died = tokio::time::timeout(
                            Duration::from_secs(10),
                            play(&world, trigger, crash, recovery),
                        )
                        .await
                        .unwrap_or_else(|_| panic!("{case}: recovery hung"));
                        assert_eq!(died, crash.is_some(), "{case}: crash point not reached");
                        check(&world, n as u64 + 1, to, &case);
                    }
                    covered += 1;
                }
            }
        }
    }
    eprintln!(
        "crash points: {} writes per transition {writes:?}, {covered} crash cases (lost/landed x 2 recoveries)",
        writes.iter().sum::<u64>()
    );
    assert_eq!(covered as u64, writes.iter().sum::<u64>() * 4);
}
