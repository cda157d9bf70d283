//! The controller over in-memory fakes: each decision rule and each transition step,
//! without a network.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::join_all;

use crate::controller::{Controller, Outcome, Response};
use crate::decision::event::{AlarmSignal, AlarmSource, AlarmState, Command, Trigger};
use crate::ports::RefreshInfo;
use crate::state::{ControlState, RefreshStatus, StepStatus, Transition, TriggerInfo, Versioned};
use crate::testing::{FakePorts, FakeWorld, LostAnswer, config, region};

type FakeController = Controller<FakePorts>;

fn controller(world: &FakeWorld) -> FakeController {
    Controller::new(Arc::new(config()), world.ports())
}

fn alarm(state: AlarmState, on: &str) -> Trigger {
    Trigger::Alarm(AlarmSignal {
        alarm_name: format!("regionpilot-unhealthy-{on}"),
        state,
        region: region(on),
        source: AlarmSource::Direct,
        state_reason: Some("Threshold Crossed".into()),
        actions_suppressed: None,
    })
}

fn failover(target: Option<&str>, force: bool, dry_run: bool) -> Trigger {
    Trigger::Command(Command::Failover {
        target_region: target.map(region),
        reason: "test".into(),
        dry_run,
        force,
    })
}

async fn run(c: &FakeController, trigger: Trigger) -> Response {
    c.handle(trigger).await.expect("handled")
}

#[tokio::test]
async fn alarm_on_the_active_region_switches_publishes_everywhere_and_rolls_target_first() {
    // Given home us-east-1 active and healthy standbys
    let world = FakeWorld::new();
    let c = controller(&world);
    // When the home region's alarm fires
    let out = run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    // Then we switch to the first standby, once, and every step is recorded
    assert_eq!(out.outcome, Outcome::Switched);
    assert_eq!(out.to, Some(region("us-west-2")));
    assert_eq!(out.epoch, 1);
    let values = world.parameters.values.lock().unwrap().clone();
    assert_eq!(values.len(), 3);
    assert!(values.values().all(|v| v == "us-west-2"));
    let refreshes = out.outcomes::<RefreshStatus>().expect("refreshes");
    assert_eq!(refreshes.len(), 3);
    assert!(
        refreshes
            .values()
            .all(|r| matches!(r, RefreshStatus::Started { .. }))
    );
    // The target region's group got the first refresh id.
    assert_eq!(
        refreshes["us-west-2/app"],
        RefreshStatus::Started {
            id: "refresh-0".into()
        }
    );
    let prefs = world.groups.preferences.lock().unwrap().clone();
    assert!(
        prefs
            .iter()
            .all(|p| p.min_healthy_percent == 90 && p.warmup.as_secs() == 60)
    );
    let state = world.control.state().expect("state written");
    let transition = state.transition.expect("transition");
    assert!(transition.completed);
    assert_eq!(world.control.history.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn twenty_concurrent_duplicate_alarms_make_exactly_one_transition() {
    let world = FakeWorld::new();
    let c = controller(&world);
    let outcomes = join_all((0..20).map(|_| c.handle(alarm(AlarmState::Alarm, "us-east-1")))).await;
    let switched = outcomes
        .iter()
        .filter(|o| o.as_ref().is_ok_and(|r| r.outcome == Outcome::Switched))
        .count();
    let already = outcomes
        .iter()
        .filter(|o| {
            o.as_ref()
                .is_ok_and(|r| r.outcome == Outcome::AlreadyActive)
        })
        .count();
    assert_eq!((switched, already), (1, 19));
    assert_eq!(
        world.groups.starts.load(Ordering::SeqCst),
        3,
        "one refresh per group"
    );
    assert_eq!(world.control.history.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn ok_and_insufficient_data_are_acknowledged_and_change_nothing() {
    let world = FakeWorld::new();
    let c = controller(&world);
    for state in [AlarmState::Ok, AlarmState::InsufficientData] {
        let out = run(&c, alarm(state, "us-east-1")).await;
        assert_eq!(out.outcome, Outcome::Ignored);
        assert!(out.reason.contains("only ALARM acts"), "{}", out.reason);
    }
    assert!(world.control.state().is_none());
    assert_eq!(world.parameters.puts.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn every_standby_down_refuses_and_changes_nothing() {
    let world = FakeWorld::new();
    world.set_probe_down(&["us-west-2", "eu-west-1"]);
    let c = controller(&world);
    let out = run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    assert_eq!(out.outcome, Outcome::Refused);
    assert!(out.reason.contains("no healthy region"), "{}", out.reason);
    assert!(world.control.state().is_none());
    assert_eq!(world.parameters.puts.load(Ordering::SeqCst), 0);
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_dead_first_standby_is_skipped_for_the_next_healthy_one() {
    let world = FakeWorld::new();
    world.probe.down.lock().unwrap().insert(region("us-west-2"));
    let c = controller(&world);
    let out = run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    assert_eq!(out.outcome, Outcome::Switched);
    assert_eq!(out.to, Some(region("eu-west-1")));
}

#[tokio::test]
async fn pause_stops_alarms_and_unforced_commands_and_resume_lifts_it() {
    let world = FakeWorld::new();
    let c = controller(&world);
    let out = run(
        &c,
        Trigger::Command(Command::Pause {
            reason: "maintenance".into(),
        }),
    )
    .await;
    assert_eq!(out.outcome, Outcome::Paused);
    let out = run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    assert_eq!(out.outcome, Outcome::Ignored);
    assert!(out.reason.contains("paused"), "{}", out.reason);
    let out = run(&c, failover(Some("eu-west-1"), false, false)).await;
    assert_eq!(
        out.outcome,
        Outcome::Ignored,
        "a pause holds manual commands too"
    );
    assert!(out.reason.contains("\"force\": true"), "{}", out.reason);
    let out = run(&c, failover(Some("eu-west-1"), true, false)).await;
    assert_eq!(out.outcome, Outcome::Switched);
    assert_eq!(out.to, Some(region("eu-west-1")));
    let out = run(&c, Trigger::Command(Command::Resume)).await;
    assert_eq!(out.outcome, Outcome::Resumed);
    assert!(world.control.state().expect("state").paused.is_none());
}

#[tokio::test]
async fn cooldown_ignores_automatic_switches_until_it_has_passed() {
    let world = FakeWorld::new();
    let c = controller(&world);
    assert_eq!(
        run(&c, alarm(AlarmState::Alarm, "us-east-1")).await.outcome,
        Outcome::Switched
    );
    world.clock.advance(60_000);
    let out = run(&c, alarm(AlarmState::Alarm, "us-west-2")).await;
    assert_eq!(out.outcome, Outcome::Ignored);
    assert!(out.reason.contains("cooldown"), "{}", out.reason);
    world.clock.advance(300_000);
    let out = run(&c, alarm(AlarmState::Alarm, "us-west-2")).await;
    assert_eq!(out.outcome, Outcome::Switched);
    assert_eq!(out.to, Some(region("us-east-1")));
    assert_eq!(out.epoch, 2);
}

#[tokio::test]
async fn dry_run_returns_the_plan_and_changes_nothing() {
    let world = FakeWorld::new();
    let c = controller(&world);
    let out = run(&c, failover(None, false, true)).await;
    assert_eq!(out.outcome, Outcome::DryRun);
    let plan = out.plan.expect("plan");
    assert_eq!(plan.parameters.len(), 3);
    assert!(plan.parameters.iter().all(|p| p.value == "us-west-2"));
    assert_eq!(plan.auto_scaling_groups[0].region, region("us-west-2"));
    assert!(world.control.state().is_none());
    assert_eq!(world.parameters.puts.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn failback_to_a_dead_home_is_refused_unless_forced() {
    let world = FakeWorld::new();
    let c = controller(&world);
    run(&c, failover(Some("us-west-2"), false, false)).await;
    world.probe.down.lock().unwrap().insert(region("us-east-1"));
    let failback = |force| {
        Trigger::Command(Command::Failback {
            reason: "home is back".into(),
            dry_run: false,
            force,
        })
    };
    assert_eq!(run(&c, failback(false)).await.outcome, Outcome::Refused);
    let out = run(&c, failback(true)).await;
    assert_eq!(out.outcome, Outcome::Switched);
    assert_eq!(out.to, Some(region("us-east-1")));
}

#[tokio::test]
async fn a_region_down_during_publish_is_recorded_for_reconcile() {
    let world = FakeWorld::new();
    world
        .parameters
        .down
        .lock()
        .unwrap()
        .insert(region("us-east-1"));
    let c = controller(&world);
    let out = run(&c, failover(Some("us-west-2"), false, false)).await;
    assert_eq!(out.outcome, Outcome::Switched);
    let publish = out.outcomes::<StepStatus>().expect("publish");
    assert!(matches!(publish["us-east-1"], StepStatus::Failed { .. }));
    assert_eq!(publish["us-west-2"], StepStatus::Published);
    let stored = world
        .control
        .state()
        .and_then(|s| s.transition)
        .expect("transition");
    assert_eq!(stored.failed_regions(), vec![region("us-east-1")]);
}

fn abandoned(world: &FakeWorld, lease_until: u64) {
    let now = world.clock.0.load(Ordering::SeqCst);
    let mut transition = Transition {
        epoch: 1,
        from: region("us-east-1"),
        to: region("us-west-2"),
        reason: "crashed mid-way".into(),
        trigger: TriggerInfo::Alarm {
            alarm_name: "a".into(),
            source: "cloudwatch".into(),
        },
        started_at: now - 1_000,
        lease_until,
        completed: false,
        ..crate::testing::transition("us-east-1", "us-west-2", now - 1_000)
    };
    transition.record(crate::state::StepEntry::of(
        "us-west-2".into(),
        &StepStatus::Published,
        now - 1_000,
        now - 1_000,
    ));
    *world.control.item.lock().unwrap() = Some(Versioned {
        version: 1,
        value: ControlState {
            active_region: region("us-west-2"),
            epoch: 1,
            paused: None,
            transition: Some(transition),
            failback: None,
            recent_automatic_switches: Vec::new(),
            capacity_snapshot: Default::default(),
            scaled_up: Default::default(),
            readiness: None,
        },
        writes: Vec::new(),
    });
}

#[tokio::test]
async fn an_abandoned_transition_is_finished_by_the_next_invocation_after_its_lease() {
    let world = FakeWorld::new();
    let now = world.clock.0.load(Ordering::SeqCst);
    abandoned(&world, now - 1);
    let c = controller(&world);
    // A duplicate of the alarm that caused it arrives after the crash.
    let out = run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    assert_eq!(out.outcome, Outcome::AlreadyActive);
    let values = world.parameters.values.lock().unwrap().clone();
    assert_eq!(
        values.len(),
        2,
        "only the regions not yet published: {values:?}"
    );
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 3);
    let t = world
        .control
        .state()
        .and_then(|s| s.transition)
        .expect("transition");
    assert!(t.completed);
    // No new epoch; the history now has the finished transition with its steps.
    assert_eq!(world.control.epochs(), vec![1], "no new epoch");
    let record = world.control.history.lock().unwrap()[0].clone();
    let recorded = record.transition.expect("the transition in the history");
    assert!(recorded.completed);
    assert_eq!(recorded.outcomes::<StepStatus>().len(), 3);
}

#[tokio::test]
async fn a_transition_still_under_lease_is_left_to_its_owner() {
    let world = FakeWorld::new();
    let now = world.clock.0.load(Ordering::SeqCst);
    abandoned(&world, now + 60_000);
    let c = controller(&world);
    run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    assert_eq!(world.parameters.puts.load(Ordering::SeqCst), 0);
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_stale_refresh_is_cancelled_and_replaced_but_a_fresh_one_is_kept() {
    let world = FakeWorld::new();
    let now = world.clock.0.load(Ordering::SeqCst);
    let stale = RefreshInfo {
        id: "old".into(),
        status: "InProgress".into(),
        started_at: Some(now - 600_000),
        percentage_complete: Some(40),
    };
    world
        .groups
        .refreshes
        .lock()
        .unwrap()
        .insert("us-west-2/app".into(), vec![stale]);
    let c = controller(&world);
    let out = run(&c, failover(Some("us-west-2"), false, false)).await;
    let refreshes = out.outcomes::<RefreshStatus>().expect("refreshes");
    assert!(matches!(
        refreshes["us-west-2/app"],
        RefreshStatus::Started { .. }
    ));
    assert_eq!(world.groups.cancels.load(Ordering::SeqCst), 1);

    // Running the same refresh step again (a retry after a crash) keeps the new one.
    let group = &c.config.auto_scaling_groups[1];
    let transition = world.control.state().and_then(|s| s.transition).expect("t");
    let again =
        crate::steps::rolling::refresh_one(&world.groups, group, &c.config.refresh, &transition)
            .await;
    assert!(
        matches!(again, RefreshStatus::AlreadyRunning { .. }),
        "{again:?}"
    );
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 3);
    assert_eq!(world.groups.cancels.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn status_reports_parameters_groups_and_history() {
    let world = FakeWorld::new();
    let c = controller(&world);
    run(&c, failover(Some("us-west-2"), false, false)).await;
    world
        .parameters
        .values
        .lock()
        .unwrap()
        .insert(region("eu-west-1"), "us-east-1".into());
    let out = run(&c, Trigger::Command(Command::Status)).await;
    assert_eq!(out.outcome, Outcome::Status);
    let status = serde_json::to_value(out.status.expect("status")).expect("json");
    assert_eq!(status["active_region"], "us-west-2");
    assert_eq!(status["parameters"]["eu-west-1"]["in_sync"], false);
    assert_eq!(status["parameters"]["us-west-2"]["in_sync"], true);
    assert_eq!(status["history"][0]["epoch"], 1);
    // The list stays short: the whole transition is for `report`.
    assert!(status["history"][0].get("transition").is_none(), "{status}");
    assert_eq!(
        status["auto_scaling_groups"]["us-west-2/app"]["refresh"]["status"],
        "InProgress"
    );
    // Which control plane answered, and how it read.
    assert_eq!(
        status["answered_by"]["region"],
        c.config.own_region.as_str()
    );
    assert_eq!(
        status["answered_by"]["control_table"],
        c.config.control_table
    );
    assert_eq!(status["answered_by"]["strongly_consistent"], true);
}

// ----- failback verification and reconcile -----

fn failback_controller(world: &FakeWorld, mode: crate::config::FailbackMode) -> FakeController {
    let mut cfg = config();
    cfg.failback.mode = mode;
    cfg.failback.healthy_checks = 3;
    cfg.failback.min_hold = std::time::Duration::ZERO;
    cfg.failback.drain_wait = std::time::Duration::from_millis(300);
    cfg.cooldown = std::time::Duration::ZERO;
    Controller::new(Arc::new(cfg), world.ports())
}

#[tokio::test]
async fn approve_mode_becomes_ready_after_the_streak_and_waits_for_a_person() {
    let world = FakeWorld::new();
    let c = failback_controller(&world, crate::config::FailbackMode::Approve);
    run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    for expected_streak in 1..=2 {
        let report = c.verify().await.unwrap();
        assert_eq!(report.outcome, "waiting");
        assert_eq!(
            report.failback.as_ref().unwrap().healthy_streak,
            expected_streak
        );
    }
    let report = c.verify().await.unwrap();
    assert_eq!(report.outcome, "ready", "{}", report.reason);
    assert!(report.failback.unwrap().ready);
    assert_eq!(
        world.control.state().unwrap().active_region,
        region("us-west-2")
    );
    // The person approves.
    let out = run(
        &c,
        Trigger::Command(Command::Failback {
            reason: "approved".into(),
            dry_run: false,
            force: false,
        }),
    )
    .await;
    assert_eq!(out.outcome, Outcome::Switched);
}

#[tokio::test]
async fn auto_mode_fails_back_exactly_once() {
    let world = FakeWorld::new();
    let c = failback_controller(&world, crate::config::FailbackMode::Auto);
    run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    c.verify().await.unwrap();
    c.verify().await.unwrap();
    let report = c.verify().await.unwrap();
    assert_eq!(report.outcome, "failed_back", "{}", report.reason);
    assert_eq!(report.active_region, region("us-east-1"));
    let again = c.verify().await.unwrap();
    assert_eq!(again.outcome, "home");
    assert_eq!(world.control.epochs(), vec![1, 2]);
}

#[tokio::test]
async fn failback_window_holds_automatic_failback_outside_it_but_not_a_person() {
    // Given home recovered on a Wednesday noon, with failback allowed Saturday 02:00-05:00.
    const WEDNESDAY_NOON: u64 = 1_795_392_000_000 + 2 * 86_400_000 + 12 * 3_600_000;
    let world = FakeWorld::new();
    world
        .clock
        .0
        .store(WEDNESDAY_NOON, std::sync::atomic::Ordering::SeqCst);
    let mut cfg = (*failback_controller(&world, crate::config::FailbackMode::Auto).config).clone();
    cfg.failback_window =
        Some(crate::decision::window::FailbackWindow::parse("sat-sun 02:00-05:00").unwrap());
    let c = Controller::new(Arc::new(cfg.clone()), world.ports());
    run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    // When verification passes outside the window: held, and it says until when.
    for _ in 0..4 {
        let report = c.verify().await.unwrap();
        assert_eq!(report.outcome, "waiting", "{}", report.reason);
    }
    let held = c.verify().await.unwrap();
    assert!(held.failback.as_ref().unwrap().ready);
    assert_eq!(
        held.failback_window_opens.as_deref(),
        Some("2026-11-28T02:00:00Z")
    );
    assert!(
        held.reason.contains("held by FAILBACK_WINDOW"),
        "{}",
        held.reason
    );
    assert_eq!(world.control.epochs(), vec![1]);
    // Then inside the window (Saturday 02:30) it fails back.
    world
        .clock
        .advance(2 * 86_400_000 + 14 * 3_600_000 + 30 * 60_000);
    let report = c.verify().await.unwrap();
    assert_eq!(report.outcome, "failed_back", "{}", report.reason);
    assert!(report.failback_window_opens.is_none());
    assert_eq!(world.control.epochs(), vec![1, 2]);

    // In approve mode the ready answer says when the window opens, and a person's
    // failback command outside the window is not held.
    let world = FakeWorld::new();
    world
        .clock
        .0
        .store(WEDNESDAY_NOON, std::sync::atomic::Ordering::SeqCst);
    cfg.failback.mode = crate::config::FailbackMode::Approve;
    let c = Controller::new(Arc::new(cfg), world.ports());
    run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    for _ in 0..2 {
        assert_eq!(c.verify().await.unwrap().outcome, "waiting");
    }
    let report = c.verify().await.unwrap();
    assert_eq!(report.outcome, "ready", "{}", report.reason);
    assert!(
        report.reason.contains("2026-11-28T02:00:00Z"),
        "{}",
        report.reason
    );
    let out = run(
        &c,
        Trigger::Command(Command::Failback {
            reason: "approved outside the window".into(),
            dry_run: false,
            force: false,
        }),
    )
    .await;
    assert_eq!(out.outcome, Outcome::Switched, "{}", out.reason);
}

#[tokio::test]
async fn one_failed_check_resets_the_streak() {
    let world = FakeWorld::new();
    let c = failback_controller(&world, crate::config::FailbackMode::Auto);
    run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    c.verify().await.unwrap();
    c.verify().await.unwrap();
    world.probe.down.lock().unwrap().insert(region("us-east-1"));
    let report = c.verify().await.unwrap();
    assert_eq!(report.failback.unwrap().healthy_streak, 0);
    world.probe.down.lock().unwrap().clear();
    let report = c.verify().await.unwrap();
    assert_eq!(report.outcome, "waiting");
    assert_eq!(report.failback.unwrap().healthy_streak, 1);
}

#[tokio::test]
async fn paused_replication_blocks_failback_until_it_drains() {
    let world = FakeWorld::new();
    let c = failback_controller(&world, crate::config::FailbackMode::Auto);
    run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    world
        .probe
        .paused
        .lock()
        .unwrap()
        .insert((region("us-west-2"), region("us-east-1")));
    for _ in 0..4 {
        let report = c.verify().await.unwrap();
        assert_ne!(report.outcome, "failed_back");
    }
    let report = c.verify().await.unwrap();
    assert!(report.reason.contains("not drained"), "{}", report.reason);
    world.probe.paused.lock().unwrap().clear();
    let report = c.verify().await.unwrap();
    assert_eq!(report.outcome, "failed_back", "{}", report.reason);
}

#[tokio::test]
async fn the_flap_guard_pauses_automation_after_the_daily_limit() {
    let world = FakeWorld::new();
    let mut cfg = config();
    cfg.cooldown = std::time::Duration::ZERO;
    cfg.failback.max_automatic_switches_per_day = 2;
    let c = Controller::new(Arc::new(cfg), world.ports());
    assert_eq!(
        run(&c, alarm(AlarmState::Alarm, "us-east-1")).await.outcome,
        Outcome::Switched
    );
    assert_eq!(
        run(&c, alarm(AlarmState::Alarm, "us-west-2")).await.outcome,
        Outcome::Switched
    );
    let out = run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    assert_eq!(out.outcome, Outcome::Ignored);
    assert!(out.reason.contains("flap guard"), "{}", out.reason);
    let pause = world.control.state().unwrap().paused.expect("paused");
    assert_eq!(pause.by, "flap-guard");
    // Still paused for the next alarm; only resume lifts it.
    assert_eq!(
        run(&c, alarm(AlarmState::Alarm, "us-east-1")).await.outcome,
        Outcome::Ignored
    );
    run(&c, Trigger::Command(Command::Resume)).await;
    assert!(world.control.state().unwrap().paused.is_none());
}

#[tokio::test]
async fn reconcile_repairs_a_parameter_changed_by_hand_and_reports_it() {
    let world = FakeWorld::new();
    let c = failback_controller(&world, crate::config::FailbackMode::Approve);
    run(&c, failover(Some("us-west-2"), false, false)).await;
    world
        .parameters
        .values
        .lock()
        .unwrap()
        .insert(region("eu-west-1"), "us-east-1".into());
    let report = c.reconcile().await.unwrap();
    assert_eq!(report.drift.len(), 1, "{report:?}");
    assert!(report.drift[0].starts_with("eu-west-1"), "{report:?}");
    assert_eq!(report.fixed.len(), 1);
    assert_eq!(
        world.parameters.values.lock().unwrap()[&region("eu-west-1")],
        "us-west-2"
    );
    assert!(c.reconcile().await.unwrap().drift.is_empty());
}

#[tokio::test]
async fn the_failover_records_data_loss_evidence_reported_at_failback() {
    let world = FakeWorld::new();
    let c = failback_controller(&world, crate::config::FailbackMode::Approve);
    // A heartbeat from home replicated at t0, then home dies.
    let t0 = world.clock.0.load(Ordering::SeqCst);
    {
        use crate::ports::Heartbeats;
        world.probe.write(&region("us-east-1"), t0).await.unwrap();
    }
    world.clock.advance(7_000);
    run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    let history = world.control.history.lock().unwrap().clone();
    assert_eq!(history[0].last_replicated_from_old, Some(t0));
    let report = c.verify().await.unwrap();
    let window = report.data_loss_window.expect("window");
    assert_eq!(window.seconds, Some(7.0));
}

#[tokio::test]
async fn reconcile_writes_a_history_record_that_a_failed_write_left_out() {
    // Given a completed failover whose history write was lost.
    let world = FakeWorld::new();
    let c = failback_controller(&world, crate::config::FailbackMode::Approve);
    run(&c, failover(Some("us-west-2"), false, false)).await;
    world.control.history.lock().unwrap().clear();
    // When the verifier reconciles, the record comes back whole, and is told.
    let report = c.reconcile().await.unwrap();
    assert!(
        report
            .fixed
            .iter()
            .any(|f| f == "epoch 1: history record written"),
        "{report:?}"
    );
    assert_eq!(world.control.epochs(), vec![1]);
    let record = world.control.history.lock().unwrap()[0].clone();
    assert!(record.transition.expect("the whole transition").completed);
    // Nothing missing: nothing to do.
    let again = c.reconcile().await.unwrap();
    assert!(again.drift.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_verifier_run_short_of_time_leaves_readiness_and_the_failback_to_the_next_run() {
    let world = FakeWorld::new();
    let c = failback_controller(&world, crate::config::FailbackMode::Auto);
    run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    c.verify().await.unwrap();
    c.verify().await.unwrap();
    // Ready now, but only 20 s of the invocation left.
    let soon = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let report = c.verify_until(Some(soon)).await.unwrap();
    assert_eq!(report.outcome, "waiting", "{}", report.reason);
    assert!(
        report.reason.contains("too little time"),
        "{}",
        report.reason
    );
    assert!(report.readiness.is_none());
    assert_eq!(world.control.epochs(), vec![1]);
    // With the whole minute, the next run fails back.
    let later = tokio::time::Instant::now() + std::time::Duration::from_secs(58);
    let report = c.verify_until(Some(later)).await.unwrap();
    assert_eq!(report.outcome, "failed_back", "{}", report.reason);
    assert_eq!(world.control.epochs(), vec![1, 2]);
}

// ----- writes that land and still fail -----

/// Home's alarm, with the state's `PutItem` (the first write) applied and its answer lost
/// as `answer`: the same invocation switches and carries out every step.
async fn switch_with_the_state_write_answer_lost(answer: LostAnswer) {
    let world = FakeWorld::new();
    world.crash.lose_answers(0, answer, 1);
    let c = controller(&world);
    let out = run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    assert_eq!(world.crash.lost_answers(), 1, "the fault was not reached");
    assert_eq!(out.outcome, Outcome::Switched, "{}", out.reason);
    assert_eq!(out.to, Some(region("us-west-2")));
    let values = world.parameters.values.lock().unwrap().clone();
    assert_eq!(values.len(), 3, "{values:?}");
    assert!(values.values().all(|v| v == "us-west-2"), "{values:?}");
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 3);
    assert_eq!(world.control.epochs(), vec![1]);
    assert!(
        world.control.state().unwrap().transition.unwrap().completed,
        "steps left for a lease to run out"
    );
}

#[tokio::test]
async fn a_state_write_applied_and_answered_500_still_switches_in_the_same_invocation() {
    switch_with_the_state_write_answer_lost(LostAnswer::Error).await;
}

#[tokio::test]
async fn a_state_write_whose_retry_fails_its_own_condition_still_switches() {
    switch_with_the_state_write_answer_lost(LostAnswer::Retried).await;
}

#[tokio::test]
async fn twenty_duplicate_alarms_with_lost_write_answers_make_exactly_one_transition() {
    for answer in [LostAnswer::Error, LostAnswer::Retried] {
        let world = FakeWorld::new();
        // The first ten writes, whoever makes them, land and lose their answers.
        world.crash.lose_answers(0, answer, 10);
        let c = controller(&world);
        let outs = join_all((0..20).map(|_| c.handle(alarm(AlarmState::Alarm, "us-east-1")))).await;
        let switched = outs
            .iter()
            .filter(|o| o.as_ref().is_ok_and(|o| o.outcome == Outcome::Switched))
            .count();
        assert_eq!(switched, 1, "{answer:?}: {outs:?}");
        assert_eq!(world.control.epochs(), vec![1], "{answer:?}");
        assert_eq!(world.control.state().unwrap().epoch, 1, "{answer:?}");
        assert_eq!(world.groups.starts.load(Ordering::SeqCst), 3, "{answer:?}");
        assert!(
            world.crash.lost_answers() > 0,
            "{answer:?}: fault not reached"
        );
    }
}

#[tokio::test]
async fn a_failback_streak_update_whose_answer_is_lost_counts_once() {
    for answer in [LostAnswer::Error, LostAnswer::Retried] {
        let world = FakeWorld::new();
        let c = failback_controller(&world, crate::config::FailbackMode::Approve);
        run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
        for expected_streak in 1..=2 {
            // Every control write of the run lands and loses its answer.
            world.crash.lose_answers(0, answer, 20);
            let report = c.verify().await.unwrap();
            world.crash.disarm();
            assert!(
                world.crash.lost_answers() > 0,
                "{answer:?}: fault not reached"
            );
            assert_eq!(
                report.failback.as_ref().unwrap().healthy_streak,
                expected_streak,
                "{answer:?}: {}",
                report.reason
            );
        }
    }
}

#[tokio::test]
async fn an_alarm_whose_actions_are_suppressed_makes_no_transition_and_says_by_what() {
    for by in ["Alarm", "WaitPeriod", "ExtensionPeriod"] {
        let world = FakeWorld::new();
        let c = controller(&world);
        let Trigger::Alarm(mut signal) = alarm(AlarmState::Alarm, "us-east-1") else {
            unreachable!()
        };
        signal.actions_suppressed = Some(crate::decision::event::Suppression {
            by: by.into(),
            reason: Some(format!("Actions suppressed by {by}")),
        });
        let out = run(&c, Trigger::Alarm(signal)).await;
        assert_eq!(out.outcome, Outcome::Ignored, "{by}");
        assert!(
            out.reason.contains("suppressed") && out.reason.contains(by),
            "{by}: {}",
            out.reason
        );
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["actions_suppressed_by"], by);
        assert_eq!(json["active_region"], "us-east-1");
        assert!(world.control.state().is_none(), "{by}: state written");
        assert!(world.parameters.values.lock().unwrap().is_empty(), "{by}");
    }
}

#[tokio::test]
async fn status_says_whether_its_read_was_strongly_consistent() {
    let world = FakeWorld::new();
    let c = controller(&world);
    run(&c, alarm(AlarmState::Alarm, "us-east-1")).await;
    let status = serde_json::to_value(run(&c, Trigger::Command(Command::Status)).await).unwrap();
    assert_eq!(status["status"]["answered_by"]["strongly_consistent"], true);
    assert!(
        status["status"]["answered_by"]
            .get("stale_because")
            .is_none()
    );
    // A replica cut off from the others: the strongly consistent read fails, the answer
    // comes from an eventually consistent one and says so.
    world.control.isolated.store(true, Ordering::SeqCst);
    let status = serde_json::to_value(run(&c, Trigger::Command(Command::Status)).await).unwrap();
    let by = &status["status"]["answered_by"];
    assert_eq!(by["strongly_consistent"], false, "{status}");
    assert!(
        by["stale_because"]
            .as_str()
            .unwrap()
            .contains("InternalServerError"),
        "{status}"
    );
    assert_eq!(
        status["active_region"], "us-west-2",
        "the last state it holds"
    );
    // Nothing acts on such a read.
    let err = c
        .handle(alarm(AlarmState::Alarm, "us-west-2"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}
