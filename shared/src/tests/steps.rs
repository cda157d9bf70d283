//! The new steps over in-memory fakes: standby capacity (raised, capped, from the
//! snapshot, scaled back in), the Run Command reload and its refresh fallback, and crash
//! points in every write they make.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::controller::{Controller, Outcome, Response};
use crate::decision::event::{Command, Trigger};
use crate::error::ErrorKind;
use crate::ports::Clock;
use crate::state::{CapacityStatus, GroupSizes, RefreshStatus, ReloadPhase, ReloadStatus};
use crate::testing::{FakePorts, FakeWorld, alarm_on, config_with, region};

const HOME: &str = "us-east-1/app";
const STANDBY: &str = "us-west-2/app";
const THIRD: &str = "eu-west-1/app";

fn alarm_home() -> Trigger {
    alarm_on("us-east-1")
}

fn failback() -> Trigger {
    Trigger::Command(Command::Failback {
        reason: "home is back".into(),
        dry_run: false,
        force: false,
    })
}

fn controller(world: &FakeWorld, extra: &[(&str, &str)]) -> Controller<FakePorts> {
    let mut vars = vec![
        ("COOLDOWN_SECONDS", "0"),
        ("FAILBACK_MIN_HOLD_SECONDS", "0"),
    ];
    vars.extend_from_slice(extra);
    Controller::new(Arc::new(config_with(&vars)), world.ports())
}

/// Pilot light: home serves with 10, the standby idles at 1 (MaxSize 12).
fn pilot_light(world: &FakeWorld, standby_max: i32) {
    world.groups.set_sizes(HOME, 1, 10, 12);
    world.groups.set_sizes(STANDBY, 1, 1, standby_max);
    world.groups.set_sizes(THIRD, 1, 1, 12);
}

async fn run(c: &Controller<FakePorts>, trigger: Trigger) -> Response {
    c.handle(trigger).await.expect("handled")
}

#[tokio::test]
async fn a_failover_raises_the_standby_to_its_counterparts_capacity() {
    // Given a pilot-light standby at 1 and home at 10
    let world = FakeWorld::new();
    pilot_light(&world, 12);
    let c = controller(&world, &[]);
    // When home's alarm fires
    let out = run(&c, alarm_home()).await;
    // Then the standby's group is raised to 10, read live from home, and recorded
    assert_eq!(out.outcome, Outcome::Switched);
    let capacity = out
        .outcomes::<CapacityStatus>()
        .expect("capacity in the answer");
    assert_eq!(
        capacity[STANDBY],
        CapacityStatus::Raised {
            previous: 1,
            desired: 10,
            wanted: 10,
            max: 12,
            capped: false,
            source: "live".into(),
            counterpart: HOME.into(),
        }
    );
    assert_eq!(capacity.len(), 1, "only the target region's groups scale");
    assert_eq!(world.groups.sizes_of(STANDBY).desired, 10);
    assert_eq!(world.groups.sizes_of(THIRD).desired, 1);
    let state = world.control.state().unwrap();
    assert_eq!(state.scaled_up[STANDBY].previous_desired, 1);
    // The answer serialises it as operators read it.
    let json = serde_json::to_value(&capacity).unwrap();
    assert_eq!(json[STANDBY]["status"], "raised");
    assert_eq!(json[STANDBY]["capped"], false);
}

#[tokio::test]
async fn max_size_caps_the_raise_and_the_answer_says_capped() {
    let world = FakeWorld::new();
    pilot_light(&world, 6);
    let c = controller(&world, &[("CAPACITY_PERCENT", "150")]);
    let out = run(&c, alarm_home()).await;
    let capacity = out.outcomes::<CapacityStatus>().unwrap();
    match &capacity[STANDBY] {
        CapacityStatus::Raised {
            desired,
            wanted,
            capped,
            ..
        } => assert_eq!((*desired, *wanted, *capped), (6, 15, true)),
        other => panic!("not raised: {other:?}"),
    }
    assert_eq!(
        world.groups.sizes_of(STANDBY).max,
        6,
        "MaxSize never raised"
    );
    assert_eq!(world.groups.sizes_of(STANDBY).desired, 6);
}

#[tokio::test]
async fn a_dead_source_is_read_from_the_verifiers_snapshot() {
    let world = FakeWorld::new();
    pilot_light(&world, 12);
    let c = controller(&world, &[]);
    // The verifier ran while home was up and recorded every group's sizes.
    c.verify().await.unwrap();
    let snapshot = world.control.state().unwrap().capacity_snapshot;
    assert_eq!(snapshot[HOME].desired, 10);
    // Home's Auto Scaling stops answering.
    world
        .groups
        .down
        .lock()
        .unwrap()
        .insert(region("us-east-1"));
    let out = run(&c, alarm_home()).await;
    match &out.outcomes::<CapacityStatus>().unwrap()[STANDBY] {
        CapacityStatus::Raised {
            desired, source, ..
        } => assert_eq!((*desired, source.as_str()), (10, "snapshot")),
        other => panic!("not raised: {other:?}"),
    }
}

#[tokio::test]
async fn without_a_live_read_or_a_snapshot_capacity_is_left_alone_and_the_switch_goes_on() {
    let world = FakeWorld::new();
    pilot_light(&world, 12);
    world
        .groups
        .down
        .lock()
        .unwrap()
        .insert(region("us-east-1"));
    let c = controller(&world, &[]);
    let out = run(&c, alarm_home()).await;
    assert_eq!(out.outcome, Outcome::Switched);
    assert!(
        matches!(&out.outcomes::<CapacityStatus>().unwrap()[STANDBY], CapacityStatus::Failed { error, .. } if error.contains("no snapshot")),
    );
    assert_eq!(world.groups.sizes_of(STANDBY).desired, 1);
    assert_eq!(
        out.outcomes::<RefreshStatus>().unwrap().len(),
        3,
        "the refreshes still ran"
    );
}

#[tokio::test]
async fn capacity_percent_zero_leaves_capacity_alone() {
    let world = FakeWorld::new();
    pilot_light(&world, 12);
    let c = controller(&world, &[("CAPACITY_PERCENT", "0")]);
    let out = run(&c, alarm_home()).await;
    assert!(out.outcomes::<CapacityStatus>().unwrap().is_empty());
    assert!(world.groups.set_desired_calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_group_that_no_longer_exists_is_reported_and_does_not_stop_the_others() {
    let world = FakeWorld::new();
    pilot_light(&world, 12);
    world.groups.missing.lock().unwrap().insert(STANDBY.into());
    let c = controller(
        &world,
        &[
            ("RELOAD_MODE", "run-command"),
            ("RELOAD_COMMANDS", "reload"),
        ],
    );
    let out = run(&c, alarm_home()).await;
    assert_eq!(out.outcome, Outcome::Switched);
    assert!(
        matches!(&out.outcomes::<CapacityStatus>().as_ref().unwrap()[STANDBY], CapacityStatus::Failed { error, .. } if error.contains("does not exist"))
    );
    let reload = out.outcomes::<ReloadStatus>().unwrap();
    assert_eq!(reload[STANDBY].status, ReloadPhase::Failed);
    assert_eq!(reload[HOME].status, ReloadPhase::Succeeded);
    assert_eq!(reload[THIRD].status, ReloadPhase::Succeeded);
}

/// Pilot light failed over by home's alarm (the standby raised from 1 to 10), with
/// `SCALE_IN_DELAY_SECONDS` as given and failback by approval.
async fn scaled_up_standby(world: &FakeWorld, scale_in_delay: &str) -> Controller<FakePorts> {
    pilot_light(world, 12);
    let c = controller(
        world,
        &[
            ("SCALE_IN_DELAY_SECONDS", scale_in_delay),
            ("FAILBACK_MODE", "approve"),
        ],
    );
    run(&c, alarm_home()).await;
    c
}

#[tokio::test]
async fn scale_in_comes_after_the_delay_and_never_to_the_active_region() {
    let world = FakeWorld::new();
    let c = scaled_up_standby(&world, "900").await;
    assert_eq!(world.groups.sizes_of(STANDBY).desired, 10);
    // While the standby is active, however long, its capacity stays.
    world.clock.advance(3_600_000);
    let report = c.verify().await.unwrap();
    assert!(
        report.capacity.scaled_in.is_empty(),
        "{:?}",
        report.capacity
    );
    assert_eq!(world.groups.sizes_of(STANDBY).desired, 10);
    // Back home: home already had 10, so nothing scales there.
    let out = run(&c, failback()).await;
    assert_eq!(out.outcome, Outcome::Switched);
    assert!(matches!(
        &out.outcomes::<CapacityStatus>().unwrap()[HOME],
        CapacityStatus::Sufficient {
            desired: 10,
            wanted: 10,
            ..
        }
    ));
    // Before the delay: waiting, with the reason.
    world.clock.advance(899_000);
    let report = c.verify().await.unwrap();
    assert!(report.capacity.scaled_in.is_empty());
    assert!(
        report.capacity.waiting[0].contains(STANDBY),
        "{:?}",
        report.capacity
    );
    // Home unhealthy after the delay: still waiting.
    world.clock.advance(2_000);
    world.probe.down.lock().unwrap().insert(region("us-east-1"));
    let report = c.verify().await.unwrap();
    assert!(report.capacity.scaled_in.is_empty());
    world.probe.down.lock().unwrap().clear();
    // Healthy and past the delay: the standby returns to 1, once.
    let report = c.verify().await.unwrap();
    assert_eq!(report.capacity.scaled_in.len(), 1, "{:?}", report.capacity);
    assert_eq!(world.groups.sizes_of(STANDBY).desired, 1);
    assert!(world.control.state().unwrap().scaled_up.is_empty());
    let again = c.verify().await.unwrap();
    assert!(again.capacity.scaled_in.is_empty());
    assert_eq!(world.groups.set_desired_calls.lock().unwrap().len(), 2);
}

/// The failover lands after the verifier decided a scale-in of the standby (its intent
/// written), before its SetDesiredCapacity: that failover found the standby still raised
/// and recorded it as sufficient. By the end of the run the standby is back at 10.
#[tokio::test]
async fn a_failover_landing_during_a_scale_in_gets_the_new_active_region_back_to_capacity() {
    let world = FakeWorld::new();
    let c = scaled_up_standby(&world, "900").await;
    run(&c, failback()).await;
    assert_eq!(world.groups.sizes_of(STANDBY).desired, 10);
    world.clock.advance(901_000);
    let control = world.control.clone();
    let now = world.clock.now_millis();
    *world.groups.before_set_desired.lock().unwrap() = Some(Box::new(move |group, desired| {
        assert_eq!(
            (group.key().as_str(), desired),
            (STANDBY, 1),
            "the scale-in"
        );
        let mut item = control.item.lock().unwrap();
        let stored = item.as_mut().expect("state");
        let mut landed = crate::testing::transition("us-east-1", "us-west-2", now);
        landed.epoch = stored.value.epoch + 1;
        landed.record(crate::state::StepEntry::of(
            STANDBY.into(),
            &CapacityStatus::Sufficient {
                desired: 10,
                wanted: 10,
                source: "live".into(),
                counterpart: HOME.into(),
            },
            now,
            now,
        ));
        stored.value.active_region = region("us-west-2");
        stored.value.epoch = landed.epoch;
        stored.value.transition = Some(landed);
        stored.version += 1;
    }));
    let report = c.verify().await.unwrap();
    assert!(
        world.groups.before_set_desired.lock().unwrap().is_none(),
        "the interleaving was not reached"
    );
    assert_eq!(
        world.groups.sizes_of(STANDBY).desired,
        10,
        "{:?}",
        report.capacity
    );
    assert_eq!(report.capacity.restored.len(), 1, "{:?}", report.capacity);
    assert!(
        report.capacity.scaled_in.is_empty(),
        "{:?}",
        report.capacity
    );
    let state = world.control.state().unwrap();
    assert_eq!(state.active_region, region("us-west-2"));
    let record = state.scaled_up.get(STANDBY).expect("the record is kept");
    assert_eq!(record.scaling_in, None);
    // Status says so.
    let status = c.status().await.unwrap();
    let status = serde_json::to_value(status.status.unwrap()).unwrap();
    assert_eq!(
        status["auto_scaling_groups"][STANDBY]["capacity"]["desired"],
        10
    );
    // Later runs leave the active region alone.
    world.clock.advance(3_600_000);
    c.verify().await.unwrap();
    assert_eq!(world.groups.sizes_of(STANDBY).desired, 10);
}

/// A failback may raise home, but home is never scaled in by regionpilot: nothing is
/// recorded for it, and after the next failover it keeps what it has.
#[tokio::test]
async fn a_failback_that_raises_home_records_nothing_to_scale_in() {
    let world = FakeWorld::new();
    let c = scaled_up_standby(&world, "60").await;
    // Home's own scaling policy took it down to 2 during the outage.
    world.groups.set_sizes(HOME, 1, 2, 12);
    let out = run(&c, failback()).await;
    assert!(
        matches!(
            &out.outcomes::<CapacityStatus>().unwrap()[HOME],
            CapacityStatus::Raised {
                previous: 2,
                desired: 10,
                ..
            }
        ),
        "home raised to the standby's capacity"
    );
    let state = world.control.state().unwrap();
    assert!(!state.scaled_up.contains_key(HOME), "{:?}", state.scaled_up);
    // Away from home again, long past the delay: home is not shrunk back to 2.
    world.clock.advance(600_000);
    run(&c, alarm_home()).await;
    world.clock.advance(3_600_000);
    c.verify().await.unwrap();
    c.verify().await.unwrap();
    assert_eq!(world.groups.sizes_of(HOME).desired, 10);
}

fn run_command(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars = vec![
        ("RELOAD_MODE", "run-command"),
        (
            "RELOAD_COMMANDS",
            "/opt/app/bin/use-active-region && systemctl reload php-fpm",
        ),
    ];
    vars.extend_from_slice(extra);
    vars
}

#[tokio::test]
async fn run_command_reloads_every_group_in_place_without_a_refresh() {
    let world = FakeWorld::new();
    let c = controller(&world, &run_command(&[]));
    let out = run(&c, alarm_home()).await;
    let reload = out
        .outcomes::<ReloadStatus>()
        .expect("reload in the answer");
    assert_eq!(reload.len(), 3);
    for (group, status) in &reload {
        assert_eq!(status.status, ReloadPhase::Succeeded, "{group}");
        assert!(status.command_id.is_some());
        assert_eq!(
            (status.succeeded, status.failed, status.timed_out),
            (2, 0, 0)
        );
    }
    assert!(out.outcomes::<RefreshStatus>().unwrap().is_empty());
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 0);
    let json = serde_json::to_value(&reload).unwrap();
    assert_eq!(json[STANDBY]["status"], "succeeded");
    assert_eq!(json[STANDBY]["succeeded"], 2);
    // Status shows the same, per group.
    let status = c.status().await.unwrap();
    let status = serde_json::to_value(status.status.unwrap()).unwrap();
    assert_eq!(
        status["auto_scaling_groups"][STANDBY]["reload"]["command_id"],
        json[STANDBY]["command_id"]
    );
    assert_eq!(
        status["auto_scaling_groups"][STANDBY]["capacity"]["desired"],
        2
    );
}

#[tokio::test]
async fn a_partial_run_command_failure_falls_back_to_a_refresh_of_that_group_only() {
    let world = FakeWorld::new();
    world.groups.set_sizes(STANDBY, 1, 4, 8);
    world.commands.fail_next(STANDBY, 1, 0);
    let c = controller(&world, &run_command(&[("CAPACITY_PERCENT", "0")]));
    let out = run(&c, alarm_home()).await;
    let reload = out.outcomes::<ReloadStatus>().unwrap();
    let standby = &reload[STANDBY];
    assert_eq!(standby.status, ReloadPhase::FellBack);
    assert_eq!(
        (standby.succeeded, standby.failed, standby.timed_out),
        (3, 1, 0)
    );
    assert!(matches!(
        standby.fallback_refresh,
        Some(RefreshStatus::Started { .. })
    ));
    assert_eq!(reload[HOME].status, ReloadPhase::Succeeded);
    let refreshes = out.outcomes::<RefreshStatus>().unwrap();
    assert_eq!(refreshes.keys().collect::<Vec<_>>(), vec![STANDBY]);
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 1);
    // Nothing left to do: reconcile neither re-sends nor refreshes again.
    let report = c.reconcile().await.unwrap();
    assert!(report.drift.is_empty(), "{report:?}");
    assert_eq!(world.commands.sent_to(STANDBY), 1);
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_command_ssm_refuses_to_send_falls_back_to_a_refresh_in_the_same_run() {
    for (kind, code) in [
        (ErrorKind::AccessDenied, "AccessDeniedException"),
        (ErrorKind::Throttled, "ThrottlingException"),
        (ErrorKind::ServerError, "InternalServerError"),
        (ErrorKind::Other, "InvalidDocument"),
    ] {
        let world = FakeWorld::new();
        world
            .commands
            .refused
            .lock()
            .unwrap()
            .insert(STANDBY.into(), (kind, code));
        let c = controller(&world, &run_command(&[("CAPACITY_PERCENT", "0")]));
        let out = run(&c, alarm_home()).await;
        let reload = out.outcomes::<ReloadStatus>().unwrap();
        let standby = &reload[STANDBY];
        assert_eq!(standby.status, ReloadPhase::FellBack, "{code}: {standby:?}");
        assert!(standby.command_id.is_none(), "{code}");
        let error = standby.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("could not be sent") && error.contains(code),
            "{code}: {error}"
        );
        assert!(
            matches!(
                standby.fallback_refresh,
                Some(RefreshStatus::Started { .. })
            ),
            "{code}: {standby:?}"
        );
        assert!(standby.is_done(), "{code}");
        assert_eq!(reload[HOME].status, ReloadPhase::Succeeded, "{code}");
        assert_eq!(world.groups.starts.load(Ordering::SeqCst), 1, "{code}");
        // Done: the verifier neither re-sends nor refreshes again.
        c.reconcile().await.unwrap();
        assert_eq!(world.commands.sent_to(STANDBY), 0, "{code}");
        assert_eq!(world.groups.starts.load(Ordering::SeqCst), 1, "{code}");
    }
}

/// An instance still booting at the switch may have read the old value, and SSM does not
/// know it yet: it is followed until it is in service and registered, then reloaded by
/// id. One that launches after the publish is left alone (it read the new value), and one
/// that leaves the group is dropped.
#[tokio::test(start_paused = true)]
async fn instances_booting_at_the_switch_are_reloaded_once_in_service_and_registered() {
    let world = FakeWorld::new();
    world.groups.set_members(
        STANDBY,
        &[
            ("i-0000", true),
            ("i-0001", true),
            ("i-boot", false),
            ("i-gone", false),
        ],
    );
    world
        .commands
        .unregistered
        .lock()
        .unwrap()
        .extend(["i-boot".to_owned()]);
    let c = controller(&world, &run_command(&[("CAPACITY_PERCENT", "0")]));
    let out = run(&c, alarm_home()).await;
    let standby = &out.outcomes::<ReloadStatus>().unwrap()[STANDBY];
    // The two in service reloaded; the booting ones are still to do.
    assert_eq!(standby.status, ReloadPhase::InProgress, "{standby:?}");
    assert_eq!(standby.succeeded, 2);
    assert_eq!(standby.awaiting, vec!["i-boot", "i-gone"]);
    assert!(world.commands.sent_by_id.lock().unwrap().is_empty());
    // In service now, but its agent has not registered: SSM refuses it by id; wait. The
    // other left the group; a new one launched after the publish.
    world.groups.set_members(
        STANDBY,
        &[
            ("i-0000", true),
            ("i-0001", true),
            ("i-boot", true),
            ("i-new", false),
        ],
    );
    c.reconcile().await.unwrap();
    let state = world.control.state().unwrap();
    let standby = &state
        .transition
        .as_ref()
        .unwrap()
        .outcomes::<ReloadStatus>()[STANDBY];
    assert_eq!(standby.status, ReloadPhase::InProgress, "{standby:?}");
    assert_eq!(standby.awaiting, vec!["i-boot"]);
    // Registered: reloaded by id, and only it.
    world.commands.unregistered.lock().unwrap().clear();
    c.reconcile().await.unwrap();
    let state = world.control.state().unwrap();
    let standby = &state
        .transition
        .as_ref()
        .unwrap()
        .outcomes::<ReloadStatus>()[STANDBY];
    assert_eq!(standby.status, ReloadPhase::Succeeded, "{standby:?}");
    assert!(standby.awaiting.is_empty());
    assert_eq!(standby.succeeded, 3);
    assert_eq!(
        *world.commands.sent_by_id.lock().unwrap(),
        vec![vec!["i-boot".to_owned()]]
    );
    assert_eq!(
        world.groups.starts.load(Ordering::SeqCst),
        0,
        "no refresh needed"
    );
}

/// A group with nothing in service at the switch, only booting instances: the reload
/// waits for them instead of sending nothing at all.
#[tokio::test(start_paused = true)]
async fn a_group_with_only_booting_instances_is_reloaded_once_they_are_in_service() {
    let world = FakeWorld::new();
    world.groups.set_members(STANDBY, &[("i-boot", false)]);
    let c = controller(&world, &run_command(&[("CAPACITY_PERCENT", "0")]));
    let out = run(&c, alarm_home()).await;
    let standby = &out.outcomes::<ReloadStatus>().unwrap()[STANDBY];
    assert_eq!(standby.status, ReloadPhase::InProgress, "{standby:?}");
    assert!(standby.command_id.is_none());
    world.groups.set_members(STANDBY, &[("i-boot", true)]);
    c.reconcile().await.unwrap();
    let state = world.control.state().unwrap();
    let standby = &state
        .transition
        .as_ref()
        .unwrap()
        .outcomes::<ReloadStatus>()[STANDBY];
    assert_eq!(standby.status, ReloadPhase::Succeeded, "{standby:?}");
    assert_eq!(
        *world.commands.sent_by_id.lock().unwrap(),
        vec![vec!["i-boot".to_owned()]]
    );
}

#[tokio::test(start_paused = true)]
async fn instances_that_never_answer_time_out_and_the_verifier_refreshes_their_group() {
    let world = FakeWorld::new();
    world.commands.fail_next(STANDBY, 0, 1);
    let c = controller(
        &world,
        &run_command(&[
            ("RELOAD_TIMEOUT_SECONDS", "60"),
            ("FAILBACK_MODE", "approve"),
        ]),
    );
    // The failover follows for its budget, then leaves the command to the verifier.
    let out = run(&c, alarm_home()).await;
    let standby = &out.outcomes::<ReloadStatus>().unwrap()[STANDBY];
    assert_eq!(standby.status, ReloadPhase::InProgress);
    assert_eq!((standby.succeeded, standby.pending), (1, 1));
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 0);
    // The next verifier run within the timeout keeps following.
    let report = c.verify().await.unwrap();
    assert_eq!(
        report.reconcile.following.len(),
        1,
        "{:?}",
        report.reconcile
    );
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 0);
    // Past RELOAD_TIMEOUT_SECONDS the silent instance has timed out: refresh.
    world.clock.advance(60_000);
    let report = c.verify().await.unwrap();
    assert_eq!(
        report.reconcile.following.len(),
        1,
        "{:?}",
        report.reconcile
    );
    // Past the backstop (delivery timeout + execution timeout + 5 s) it has timed out.
    world.clock.advance(66_000);
    let report = c.verify().await.unwrap();
    assert!(
        report
            .reconcile
            .fixed
            .iter()
            .any(|f| f.starts_with(STANDBY)),
        "{:?}",
        report.reconcile
    );
    let t = world.control.state().unwrap().transition.unwrap();
    assert_eq!(
        t.outcomes::<ReloadStatus>()[STANDBY].status,
        ReloadPhase::FellBack
    );
    assert_eq!(
        (
            t.outcomes::<ReloadStatus>()[STANDBY].timed_out,
            t.outcomes::<ReloadStatus>()[STANDBY].pending
        ),
        (1, 0)
    );
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 1);
    assert_eq!(world.commands.sent_to(STANDBY), 1, "never re-sent");
}

#[tokio::test]
async fn a_failing_regions_reload_is_left_to_reconcile_and_sent_when_it_returns() {
    let world = FakeWorld::new();
    world.set_region_down("us-east-1", true);
    let c = controller(&world, &run_command(&[("PROBE_TIMEOUT_MS", "200")]));
    let out = run(&c, alarm_home()).await;
    let reload = out.outcomes::<ReloadStatus>().unwrap();
    assert_eq!(reload[HOME].status, ReloadPhase::Failed);
    assert_eq!(reload[STANDBY].status, ReloadPhase::Succeeded);
    world.set_region_down("us-east-1", false);
    let report = c.reconcile().await.unwrap();
    assert!(
        report.fixed.iter().any(|f| f.starts_with(HOME)),
        "{report:?}"
    );
    let t = world.control.state().unwrap().transition.unwrap();
    assert_eq!(
        t.outcomes::<ReloadStatus>()[HOME].status,
        ReloadPhase::Succeeded
    );
    assert_eq!(world.commands.sent_to(HOME), 1);
}

#[tokio::test]
async fn the_snapshot_is_rewritten_only_when_sizes_change() {
    let world = FakeWorld::new();
    let c = controller(&world, &[]);
    c.verify().await.unwrap();
    let saves = world.control.saves.load(Ordering::SeqCst);
    c.verify().await.unwrap();
    assert_eq!(world.control.saves.load(Ordering::SeqCst), saves);
    world.groups.set_sizes(THIRD, 1, 3, 4);
    c.verify().await.unwrap();
    let snapshot = world.control.state().unwrap().capacity_snapshot;
    assert!(matches!(snapshot[THIRD], GroupSizes { desired: 3, .. }));
    assert_eq!(snapshot.len(), 3);
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn a_reload_sent_in_a_failing_region_keeps_its_command_when_the_deadline_cuts_the_follow_up()
{
    // Given home's commands that never finish, and an alarm that says home is down
    let world = FakeWorld::new();
    world.commands.fail_next(HOME, 0, 2);
    let c = controller(
        &world,
        &run_command(&[
            ("PROBE_TIMEOUT_MS", "300"),
            ("RELOAD_TIMEOUT_SECONDS", "60"),
        ]),
    );
    // When the failover's deadline for home runs out while it follows home's command
    let out = run(&c, alarm_home()).await;
    // Then home's record keeps the command it sent, still to be followed, not a failure
    let home = &out.outcomes::<ReloadStatus>().unwrap()[HOME];
    assert_eq!(home.status, ReloadPhase::InProgress, "{home:?}");
    assert!(home.command_id.is_some());
    // And reconcile follows that command instead of sending another.
    world
        .commands
        .commands
        .lock()
        .unwrap()
        .values_mut()
        .for_each(|(_, list)| list.iter_mut().for_each(|i| i.status = "Success".into()));
    let report = c.reconcile().await.unwrap();
    // Followed to a clean end: the transition's own course, not a repair.
    assert!(
        report.following.iter().any(|f| f.starts_with(HOME)) && report.fixed.is_empty(),
        "{report:?}"
    );
    assert_eq!(world.commands.sent_to(HOME), 1, "never re-sent");
    let t = world.control.state().unwrap().transition.unwrap();
    assert_eq!(
        t.outcomes::<ReloadStatus>()[HOME].status,
        ReloadPhase::Succeeded
    );
}

#[tokio::test]
async fn reconcile_leaves_a_region_that_does_not_answer_for_the_next_run() {
    let world = FakeWorld::new();
    world.set_region_down("us-east-1", true);
    let c = controller(&world, &run_command(&[("PROBE_TIMEOUT_MS", "200")]));
    run(&c, alarm_home()).await;
    // Home is still down: its read fails, and none of its steps is tried again.
    let report = c.reconcile().await.unwrap();
    assert!(
        report.failed.iter().any(|f| f.starts_with("us-east-1")),
        "{report:?}"
    );
    assert!(
        !report.drift.iter().any(|d| d.starts_with(HOME)),
        "{report:?}"
    );
    assert_eq!(world.commands.sent_to(HOME), 0);
}

#[tokio::test]
async fn a_target_count_of_zero_at_send_time_is_not_taken_for_an_empty_group() {
    // SSM resolves tag targets after it answers SendCommand.
    let world = FakeWorld::new();
    world
        .commands
        .zero_target_count
        .store(true, Ordering::SeqCst);
    world.commands.fail_next(STANDBY, 1, 0);
    let c = controller(&world, &run_command(&[]));
    let out = run(&c, alarm_home()).await;
    let standby = &out.outcomes::<ReloadStatus>().unwrap()[STANDBY];
    assert_eq!(
        standby.targeted, 2,
        "expected from the group's instances in service"
    );
    assert_eq!(standby.status, ReloadPhase::FellBack, "{standby:?}");
    assert_eq!((standby.succeeded, standby.failed), (1, 1));
    assert_eq!(world.groups.starts.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn finishing_an_abandoned_transition_sends_the_reload_but_leaves_following_it_to_the_verifier()
 {
    // Given a transition to us-west-2 whose owner crashed before any step, and commands
    // that never finish
    let world = FakeWorld::new();
    world.commands.fail_next(STANDBY, 0, 2);
    let now = world.clock.now_millis();
    let mut transition = crate::testing::transition("us-east-1", "us-west-2", now - 1_000);
    transition.completed = false;
    let mut state = crate::state::ControlState::initial(region("us-west-2"));
    state.epoch = 1;
    state.transition = Some(transition);
    *world.control.item.lock().unwrap() = Some(crate::state::Versioned {
        version: 1,
        value: state,
        writes: Vec::new(),
    });
    let c = controller(&world, &run_command(&[]));
    // When the next invocation (a duplicate alarm) finds it
    let started = tokio::time::Instant::now();
    let out = run(&c, alarm_home()).await;
    // Then it finishes the transition without spending the follow-up budget on it
    assert_eq!(out.outcome, Outcome::AlreadyActive);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    let t = world.control.state().unwrap().transition.unwrap();
    assert!(t.completed);
    assert_eq!(
        t.outcomes::<ReloadStatus>()[STANDBY].status,
        ReloadPhase::InProgress
    );
    assert_eq!(world.commands.sent_to(STANDBY), 1);
}

#[tokio::test]
async fn the_dry_run_lists_the_steps_a_switch_then_runs() {
    for (mode, extra) in [("refresh", vec![]), ("run-command", run_command(&[]))] {
        let world = FakeWorld::new();
        pilot_light(&world, 12);
        let c = controller(&world, &extra);
        let dry = run(
            &c,
            Trigger::Command(Command::Failover {
                target_region: Some(crate::testing::region("us-west-2")),
                reason: "what would happen".into(),
                dry_run: true,
                force: false,
            }),
        )
        .await;
        let plan = dry.plan.expect("a plan");
        let planned: std::collections::BTreeSet<String> = plan
            .steps
            .iter()
            .map(|s| format!("{} {}", s.step, s.key))
            .collect();
        // The target region's steps come first, as a switch runs them.
        assert_eq!(plan.steps[0].region.as_str(), "us-west-2", "{mode}");
        assert_eq!(plan.parameters.len(), 3, "{mode}");
        assert_eq!(
            plan.auto_scaling_groups[0].region.as_str(),
            "us-west-2",
            "{mode}"
        );
        // The switch runs exactly those steps (the follow stage records under its
        // group's reload, so it is left out of the comparison).
        let out = run(&c, alarm_home()).await;
        assert_eq!(out.outcome, Outcome::Switched, "{mode}");
        let state = c.load().await.unwrap().value;
        let ran: std::collections::BTreeSet<String> = state
            .transition
            .expect("the switch")
            .steps
            .iter()
            .map(|e| format!("{} {}", e.kind, e.key))
            .collect();
        let planned_runs: std::collections::BTreeSet<String> = planned
            .iter()
            .filter(|s| !s.starts_with("reload-follow "))
            .cloned()
            .collect();
        assert_eq!(planned_runs, ran, "{mode}");
        let follows = plan.steps.iter().filter(|s| s.stage == "follow").count();
        assert_eq!(follows, if mode == "run-command" { 3 } else { 0 }, "{mode}");
    }
}
