//! Readiness over in-memory fakes: every check passing on a healthy world, each one
//! failing alone with its reason, the interval, and `changed`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;
use crate::controller::{Controller, Outcome};
use crate::decision::event::{Command, Trigger};
use crate::ports::Clock;
use crate::state::GroupSizes;
use crate::testing::{FakePorts, FakeWorld, alarm_on, config_with, region};

const HOME: &str = "us-east-1/app";
const STANDBY: &str = "us-west-2/app";
const THIRD: &str = "eu-west-1/app";

/// A controller over `world`, with a vantage point in each region heard from just now
/// (so each region has two judges, and `vantage_points` passes).
fn controller(world: &FakeWorld, extra: &[(&str, &str)]) -> Controller<FakePorts> {
    world.seed_vantage_points(&["us-east-1", "us-west-2", "eu-west-1"]);
    Controller::new(Arc::new(config_with(extra)), world.ports())
}

/// One verifier run that must have evaluated readiness.
async fn evaluated(c: &Controller<FakePorts>) -> ReadinessRun {
    c.verify()
        .await
        .expect("verify")
        .readiness
        .expect("readiness evaluated this run")
}

/// `(check, subject)` of every failing check.
fn failing(readiness: &Readiness) -> Vec<(&str, &str)> {
    readiness
        .failing()
        .map(|c| (c.check.as_str(), c.subject.as_str()))
        .collect()
}

fn reason<'a>(readiness: &'a Readiness, check: &str, subject: &str) -> &'a str {
    readiness
        .checks
        .iter()
        .find(|c| c.check == check && c.subject == subject)
        .map(|c| c.reason.as_str())
        .unwrap_or_else(|| panic!("no {check} check of {subject}: {readiness:#?}"))
}

#[tokio::test]
async fn every_check_passes_on_a_healthy_world_and_status_shows_them() {
    // Given three healthy regions, each group 1/2/4, the control table with PITR
    let world = FakeWorld::new();
    let c = controller(&world, &[]);
    // When the verifier runs for the first time
    let run = evaluated(&c).await;
    // Then every check passes, one per region, group, direction and the table
    let r = &run.readiness;
    assert!(r.ready, "{r:#?}");
    assert_eq!(r.evaluated_at, world.clock.now_millis());
    assert_eq!(r.active_region, region("us-east-1"));
    let mut kinds: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for check in &r.checks {
        assert!(check.passed, "{check:?}");
        kinds
            .entry(check.check.as_str())
            .or_default()
            .push(check.subject.as_str());
    }
    assert_eq!(kinds[PARAMETER], ["us-east-1", "us-west-2", "eu-west-1"]);
    assert_eq!(kinds[GROUP_CAPACITY], [HOME, STANDBY, THIRD]);
    assert_eq!(kinds[CANARY], ["us-east-1", "us-west-2", "eu-west-1"]);
    assert_eq!(
        kinds[REPLICATION_LAG],
        [
            "us-east-1->us-west-2",
            "us-west-2->us-east-1",
            "us-east-1->eu-west-1",
            "eu-west-1->us-east-1"
        ]
    );
    assert_eq!(kinds[CONTROL_TABLE_PITR], ["us-west-2/control"]);
    assert_eq!(
        reason(r, GROUP_CAPACITY, STANDBY),
        "us-west-2/app: MaxSize 4 covers the 2 a failover to us-west-2 would ask for (CAPACITY_PERCENT 100 of us-east-1/app's desired 2)"
    );
    assert_eq!(
        reason(r, GROUP_CAPACITY, HOME),
        "us-east-1/app: exists in the active region (desired 2, MaxSize 4)"
    );
    assert!(run.changed, "the first evaluation is a change");
    assert_eq!(run.previous_ready, None);
    // And `status` shows the stored evaluation as it was made
    let status = c.status().await.expect("status");
    assert_eq!(status.outcome, Outcome::Status);
    let shown = status.status.expect("report").readiness.expect("readiness");
    assert_eq!(&shown, r);
    let json = serde_json::to_value(&shown).expect("json");
    assert_eq!(json["ready"], true);
    assert_eq!(json["checks"][0]["check"], "parameter");
    assert!(json["evaluated_at"].is_u64());
}

#[tokio::test]
async fn a_standby_whose_max_size_is_too_small_fails_exactly_that_check() {
    // Given home serving with 10 and a standby whose MaxSize is 6
    let world = FakeWorld::new();
    world.groups.set_sizes(HOME, 1, 10, 12);
    world.groups.set_sizes(STANDBY, 1, 1, 6);
    world.groups.set_sizes(THIRD, 1, 1, 12);
    let c = controller(&world, &[]);
    // When the verifier evaluates readiness
    let r = evaluated(&c).await.readiness;
    // Then only that group fails, saying what a failover would ask for and why
    assert!(!r.ready);
    assert_eq!(failing(&r), [(GROUP_CAPACITY, STANDBY)]);
    assert_eq!(
        reason(&r, GROUP_CAPACITY, STANDBY),
        "us-west-2/app: MaxSize 6 is below the 10 a failover to us-west-2 would ask for (CAPACITY_PERCENT 100 of us-east-1/app's desired 10)"
    );
    assert!(
        reason(&r, GROUP_CAPACITY, THIRD).contains("MaxSize 12 covers the 10"),
        "{r:#?}"
    );
    // The rule is the capacity step's: at 50 % the same standby would be enough.
    let world_half = FakeWorld::new();
    world_half.groups.set_sizes(HOME, 1, 10, 12);
    world_half.groups.set_sizes(STANDBY, 1, 1, 6);
    world_half.groups.set_sizes(THIRD, 1, 1, 12);
    let half = controller(&world_half, &[("CAPACITY_PERCENT", "50")]);
    let r = evaluated(&half).await.readiness;
    assert!(r.ready, "{r:#?}");
    assert!(reason(&r, GROUP_CAPACITY, STANDBY).contains("MaxSize 6 covers the 5"));
}

#[tokio::test]
async fn a_parameter_out_of_sync_or_missing_fails_its_region() {
    // Given the parameter right at home, stale in one standby and missing in the other
    let world = FakeWorld::new();
    world.parameters.values.lock().unwrap().extend([
        (region("us-east-1"), "us-east-1".to_owned()),
        (region("us-west-2"), "us-west-2".to_owned()),
    ]);
    let c = controller(&world, &[]);
    let state = c.load().await.unwrap().value;
    // When readiness is evaluated (before any reconcile repairs it)
    let vantage = c.vantage_samples_within_budget().await;
    let r = c.evaluate_readiness(&state, &vantage).await;
    // Then those two regions' parameter checks fail, saying what they found
    assert_eq!(
        failing(&r),
        [(PARAMETER, "us-west-2"), (PARAMETER, "eu-west-1")]
    );
    assert_eq!(
        reason(&r, PARAMETER, "us-west-2"),
        "/app/active-region in us-west-2 is us-west-2 but the active region is us-east-1"
    );
    assert_eq!(
        reason(&r, PARAMETER, "eu-west-1"),
        "/app/active-region does not exist in eu-west-1"
    );
}

#[tokio::test]
async fn point_in_time_recovery_off_fails_the_table_check() {
    let world = FakeWorld::new();
    world.control.pitr_off.store(true, Ordering::SeqCst);
    let c = controller(&world, &[]);
    let r = evaluated(&c).await.readiness;
    assert_eq!(failing(&r), [(CONTROL_TABLE_PITR, "us-west-2/control")]);
    assert!(
        reason(&r, CONTROL_TABLE_PITR, "us-west-2/control").starts_with(
            "point-in-time recovery is off for the control table control in us-west-2"
        ),
        "{r:#?}"
    );
}

#[tokio::test]
async fn a_hook_function_that_does_not_exist_fails_its_check() {
    let world = FakeWorld::new();
    world
        .hooks
        .missing
        .lock()
        .unwrap()
        .insert("smoke-test".into());
    let c = controller(
        &world,
        &[("HOOKS", "prepare=stop-writers,verify=smoke-test")],
    );
    let r = evaluated(&c).await.readiness;
    assert_eq!(failing(&r), [(HOOK_FUNCTION, "verify/smoke-test")]);
    assert_eq!(
        reason(&r, HOOK_FUNCTION, "verify/smoke-test"),
        "the verify hook smoke-test does not exist in us-west-2: a switch would fail to call it; deploy it or remove it from HOOKS"
    );
    assert!(reason(&r, HOOK_FUNCTION, "prepare/stop-writers").contains("exists in us-west-2"));
}

#[tokio::test(start_paused = true)]
async fn a_region_that_does_not_answer_fails_its_own_checks_with_the_error() {
    // Given eu-west-1 down: Parameter Store, Auto Scaling and DynamoDB
    let world = FakeWorld::new();
    world.set_region_down("eu-west-1", true);
    world.probe.down.lock().unwrap().insert(region("eu-west-1"));
    let c = controller(&world, &[]);
    let started = tokio::time::Instant::now();
    let r = evaluated(&c).await.readiness;
    // Then exactly the checks about eu-west-1 fail, each with the error
    assert_eq!(
        failing(&r),
        [
            (PARAMETER, "eu-west-1"),
            (GROUP_CAPACITY, THIRD),
            (CANARY, "eu-west-1"),
            (REPLICATION_LAG, "us-east-1->eu-west-1"),
            (REPLICATION_LAG, "eu-west-1->us-east-1"),
        ]
    );
    for check in r.failing() {
        assert!(
            check.reason.contains("eu-west-1") && check.reason.contains("timeout"),
            "{check:?}"
        );
    }
    // And a region that does not answer is not polled until the lag limit runs out.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn replication_that_does_not_arrive_within_the_lag_limit_fails_that_direction() {
    let world = FakeWorld::new();
    world
        .probe
        .paused
        .lock()
        .unwrap()
        .insert((region("us-east-1"), region("us-west-2")));
    let c = controller(&world, &[("FAILBACK_MAX_LAG_SECONDS", "3")]);
    let r = evaluated(&c).await.readiness;
    assert_eq!(failing(&r), [(REPLICATION_LAG, "us-east-1->us-west-2")]);
    assert_eq!(
        reason(&r, REPLICATION_LAG, "us-east-1->us-west-2"),
        "a heartbeat written in us-east-1 did not arrive in us-west-2 within FAILBACK_MAX_LAG_SECONDS (3s)"
    );
    assert!(reason(&r, REPLICATION_LAG, "us-west-2->us-east-1").contains("arrived"));
}

#[tokio::test]
async fn it_is_evaluated_again_only_once_the_interval_has_passed() {
    let world = FakeWorld::new();
    let c = controller(&world, &[("READINESS_INTERVAL_SECONDS", "900")]);
    let first = evaluated(&c).await.readiness.evaluated_at;
    // Not again within the interval: the stored evaluation stands.
    assert!(c.verify().await.unwrap().readiness.is_none());
    world.clock.advance(899_999);
    assert!(c.verify().await.unwrap().readiness.is_none());
    let stored = world.control.state().unwrap().readiness.unwrap();
    assert_eq!(stored.evaluated_at, first);
    // Once it has passed, again, measured from the stored evaluation.
    world.clock.advance(1);
    let second = evaluated(&c).await.readiness.evaluated_at;
    assert_eq!(second, first + 900_000);
    assert_eq!(
        world
            .control
            .state()
            .unwrap()
            .readiness
            .unwrap()
            .evaluated_at,
        second
    );
    // A switch does not make it due: the stored one says which active region it was made
    // against until the interval brings the next, against the new active region.
    let c = controller(
        &world,
        &[
            ("READINESS_INTERVAL_SECONDS", "900"),
            ("COOLDOWN_SECONDS", "0"),
        ],
    );
    // The seeded vantage points see us-east-1 healthy, and would refuse the alarm as a
    // partition: without them the alarm alone decides.
    world.control.samples.lock().unwrap().clear();
    let out = c.handle(alarm_on("us-east-1")).await.unwrap();
    assert_eq!(out.outcome, Outcome::Switched);
    assert!(c.verify().await.unwrap().readiness.is_none());
    let stored = world.control.state().unwrap().readiness.unwrap();
    assert_eq!(
        (stored.active_region, stored.evaluated_at),
        (region("us-east-1"), second)
    );
    world.clock.advance(900_000);
    let after = evaluated(&c).await.readiness;
    assert_eq!(after.active_region, region("us-west-2"));
    assert!(
        reason(&after, GROUP_CAPACITY, HOME).contains("a failover to us-east-1"),
        "{after:#?}"
    );
}

#[tokio::test]
async fn an_interval_of_zero_evaluates_every_run() {
    let world = FakeWorld::new();
    let c = controller(&world, &[("READINESS_INTERVAL_SECONDS", "0")]);
    for _ in 0..3 {
        evaluated(&c).await;
    }
}

#[tokio::test]
async fn changed_is_true_on_the_first_evaluation_and_on_each_flip_only() {
    let world = FakeWorld::new();
    let c = controller(&world, &[("READINESS_INTERVAL_SECONDS", "0")]);
    let flags = |run: &ReadinessRun| (run.readiness.ready, run.changed, run.previous_ready);
    assert_eq!(flags(&evaluated(&c).await), (true, true, None));
    assert_eq!(flags(&evaluated(&c).await), (true, false, Some(true)));
    world.groups.set_sizes(STANDBY, 1, 1, 1);
    assert_eq!(flags(&evaluated(&c).await), (false, true, Some(true)));
    assert_eq!(flags(&evaluated(&c).await), (false, false, Some(false)));
    world.groups.set_sizes(STANDBY, 1, 1, 4);
    assert_eq!(flags(&evaluated(&c).await), (true, true, Some(false)));
}

#[test]
fn the_capacity_check_follows_the_capacity_rule_in_every_case() {
    let config = config_with(&[]);
    let groups = &config.auto_scaling_groups;
    let standby = &groups[1];
    let sizes = |min, desired, max| Sizes { min, desired, max };
    // The check of `group` with CAPACITY_PERCENT at `percent`, against us-east-1.
    let group_check = |group: &crate::config::GroupRef,
                       config: &crate::config::Config,
                       percent: u32,
                       described: &BTreeMap<String, Result<Option<Sizes>, AwsError>>,
                       state: &ControlState| {
        let mut config = config.clone();
        config.capacity.percent = percent;
        let target = crate::steps::capacity::GroupTarget(group.clone());
        capacity_check::<FakePorts>(&target, &config, &region("us-east-1"), described, state)
    };
    let timeout =
        |r: &str| AwsError::deadline("autoscaling", "DescribeAutoScalingGroups", &region(r));
    let mut snapshot_state = ControlState::initial(region("us-east-1"));
    snapshot_state.capacity_snapshot.insert(
        HOME.into(),
        GroupSizes {
            min: 1,
            desired: 8,
            max: 12,
            at: 0,
        },
    );
    let empty = ControlState::initial(region("us-east-1"));
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, Result<Option<Sizes>, AwsError>)>,
        u32,
        &'a ControlState,
        bool,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "enough",
            vec![
                (HOME, Ok(Some(sizes(1, 4, 8)))),
                (STANDBY, Ok(Some(sizes(1, 1, 4)))),
            ],
            100,
            &empty,
            true,
            "MaxSize 4 covers the 4",
        ),
        (
            "rounded up",
            vec![
                (HOME, Ok(Some(sizes(1, 5, 8)))),
                (STANDBY, Ok(Some(sizes(1, 1, 4)))),
            ],
            90,
            &empty,
            false,
            "MaxSize 4 is below the 5",
        ),
        (
            "already at the wanted size",
            vec![
                (HOME, Ok(Some(sizes(1, 3, 8)))),
                (STANDBY, Ok(Some(sizes(3, 3, 3)))),
            ],
            100,
            &empty,
            true,
            "MaxSize 3 covers the 3",
        ),
        (
            "missing",
            vec![(HOME, Ok(Some(sizes(1, 3, 8)))), (STANDBY, Ok(None))],
            100,
            &empty,
            false,
            "us-west-2/app: the Auto Scaling group app does not exist in us-west-2",
        ),
        (
            "target does not answer",
            vec![
                (HOME, Ok(Some(sizes(1, 3, 8)))),
                (STANDBY, Err(timeout("us-west-2"))),
            ],
            100,
            &empty,
            false,
            "autoscaling:DescribeAutoScalingGroups in us-west-2 failed (timeout)",
        ),
        (
            "source from the snapshot",
            vec![
                (HOME, Err(timeout("us-east-1"))),
                (STANDBY, Ok(Some(sizes(1, 1, 6)))),
            ],
            100,
            &snapshot_state,
            false,
            "MaxSize 6 is below the 8 a failover to us-west-2 would ask for (CAPACITY_PERCENT 100 of us-east-1/app's desired 8, as the verifier's snapshot recorded it",
        ),
        (
            "source unknown",
            vec![
                (HOME, Err(timeout("us-east-1"))),
                (STANDBY, Ok(Some(sizes(1, 1, 6)))),
            ],
            100,
            &empty,
            false,
            "what a failover to us-west-2 would ask for is unknown",
        ),
        (
            "capacity percent zero",
            vec![
                (HOME, Ok(Some(sizes(1, 10, 12)))),
                (STANDBY, Ok(Some(sizes(1, 1, 1)))),
            ],
            0,
            &empty,
            true,
            "CAPACITY_PERCENT is 0",
        ),
    ];
    for (name, described, percent, state, passed, fragment) in cases {
        let described: BTreeMap<String, Result<Option<Sizes>, AwsError>> = described
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let check = group_check(standby, &config, percent, &described, state);
        assert_eq!(check.passed, passed, "{name}: {check:?}");
        assert!(check.reason.contains(fragment), "{name}: {}", check.reason);
        assert_eq!(check.subject, STANDBY);
    }
    // A group with no counterpart in the active region is left alone by a failover.
    let config = config_with(&[(
        "AUTO_SCALING_GROUPS",
        "us-east-1=web-a,us-west-2=web-b,us-west-2=worker",
    )]);
    let groups = &config.auto_scaling_groups;
    let described = groups
        .iter()
        .map(|g| (g.key(), Ok(Some(sizes(1, 1, 1)))))
        .collect();
    let check = group_check(&groups[2], &config, 100, &described, &empty);
    assert!(check.passed, "{check:?}");
    assert!(
        check.reason.contains("no counterpart in us-east-1"),
        "{check:?}"
    );
    // Same position, different name: web-b stands for web-a.
    let check = group_check(&groups[1], &config, 100, &described, &empty);
    assert!(
        check.reason.contains("us-east-1/web-a's desired 1"),
        "{check:?}"
    );
}

#[test]
fn due_follows_the_interval_and_a_clock_gone_back() {
    let interval = std::time::Duration::from_secs(60);
    let stored = Readiness::of(1_000_000, region("us-east-1"), Vec::new());
    assert!(due(None, 0, interval));
    assert!(!due(Some(&stored), 1_059_999, interval));
    assert!(due(Some(&stored), 1_060_000, interval));
    assert!(due(Some(&stored), 999_999, interval), "clock went back");
    assert!(due(Some(&stored), 1_000_000, std::time::Duration::ZERO));
}

#[tokio::test]
async fn after_a_failover_home_is_the_target_whose_capacity_is_checked() {
    // Given a failover to the standby, which serves with 3: home's group is now a target
    let world = FakeWorld::new();
    world.groups.set_sizes(HOME, 1, 2, 2);
    world.groups.set_sizes(STANDBY, 1, 3, 6);
    let c = controller(&world, &[("COOLDOWN_SECONDS", "0")]);
    let out = c
        .handle(Trigger::Command(Command::Failover {
            target_region: Some(region("us-west-2")),
            reason: "drill".into(),
            dry_run: false,
            force: false,
        }))
        .await
        .unwrap();
    assert_eq!(out.outcome, Outcome::Switched);
    let r = evaluated(&c).await.readiness;
    assert_eq!(failing(&r), [(GROUP_CAPACITY, HOME)]);
    assert_eq!(
        reason(&r, GROUP_CAPACITY, HOME),
        "us-east-1/app: MaxSize 2 is below the 3 a failover to us-east-1 would ask for (CAPACITY_PERCENT 100 of us-west-2/app's desired 3)"
    );
}

#[tokio::test]
async fn fewer_than_two_vantage_points_judging_a_region_fail_its_check_saying_how_to_add_one() {
    // Given only the control plane's probe (us-west-2) reporting
    let world = FakeWorld::new();
    world.seed_vantage_points(&["us-west-2"]);
    let c = Controller::new(
        Arc::new(config_with(&[("READINESS_INTERVAL_SECONDS", "0")])),
        world.ports(),
    );
    let r = evaluated(&c).await.readiness;
    // Then every region fails the check (us-west-2 has no judge, the others one)
    assert!(!r.ready);
    assert_eq!(
        failing(&r),
        [
            (VANTAGE_POINTS, "us-east-1"),
            (VANTAGE_POINTS, "us-west-2"),
            (VANTAGE_POINTS, "eu-west-1"),
        ]
    );
    let why = reason(&r, VANTAGE_POINTS, "us-east-1");
    assert!(
        why.starts_with(
            "only 1 vantage point(s) heard from in the last hour can judge us-east-1 (us-west-2;"
        ),
        "{why}"
    );
    // Where one more would count: not in us-east-1, not beside us-west-2's probe.
    assert!(
        why.ends_with("add a vantage point in a region other than us-east-1, us-west-2: this template with DeploymentRole=regional in an application region (single mode), or DeploymentRole=vantage in any other region, with ControlTableName=control and ControlTableRegion=us-west-2"),
        "{why}"
    );
    assert!(reason(&r, VANTAGE_POINTS, "us-west-2").contains("(none;"));

    // A second vantage point, in a region outside REGIONS: every region has two judges
    // but us-west-2, whose own probe does not judge it.
    world.seed_vantage_points(&["us-west-2", "ca-central-1"]);
    let r = evaluated(&c).await.readiness;
    assert_eq!(failing(&r), [(VANTAGE_POINTS, "us-west-2")]);
    assert_eq!(
        reason(&r, VANTAGE_POINTS, "us-east-1"),
        "2 vantage points can judge us-east-1 (ca-central-1, us-west-2); a quorum is 2"
    );

    // A vantage point silent for over an hour leaves the count.
    world.seed_vantage_points(&["us-east-1", "us-west-2", "eu-west-1"]);
    world.clock.advance(3_600_001);
    world.seed_vantage_points(&["us-west-2"]);
    let r = evaluated(&c).await.readiness;
    assert!(
        reason(&r, VANTAGE_POINTS, "us-east-1").starts_with(
            "only 1 vantage point(s) heard from in the last hour can judge us-east-1 (us-west-2;"
        ),
        "{r:#?}"
    );
}

#[tokio::test]
async fn a_quorum_larger_than_the_vantage_points_heard_from_is_reported() {
    let world = FakeWorld::new();
    world.seed_vantage_points(&["us-east-1", "us-west-2", "eu-west-1"]);
    let c = Controller::new(
        Arc::new(config_with(&[
            ("QUORUM", "3"),
            ("READINESS_INTERVAL_SECONDS", "0"),
        ])),
        world.ports(),
    );
    let r = evaluated(&c).await.readiness;
    assert_eq!(
        failing(&r),
        [
            (VANTAGE_POINTS, "us-east-1"),
            (VANTAGE_POINTS, "us-west-2"),
            (VANTAGE_POINTS, "eu-west-1"),
        ]
    );
    assert_eq!(
        reason(&r, VANTAGE_POINTS, "us-east-1"),
        "QUORUM is 3 but only 2 vantage points heard from in the last hour can judge us-east-1 (eu-west-1, us-west-2): no alarm could fail over away from it; lower QUORUM or add a vantage point in a region other than eu-west-1, us-east-1, us-west-2: this template with DeploymentRole=regional in an application region (single mode), or DeploymentRole=vantage in any other region, with ControlTableName=control and ControlTableRegion=us-west-2"
    );
    let c = Controller::new(
        Arc::new(config_with(&[
            ("QUORUM", "2"),
            ("READINESS_INTERVAL_SECONDS", "0"),
        ])),
        world.ports(),
    );
    let r = evaluated(&c).await.readiness;
    assert!(r.ready, "{r:#?}");
    // One judge: its alarm decides alone, whatever QUORUM says, and the reason says that
    // rather than that no alarm could fail over.
    world.control.samples.lock().unwrap().clear();
    world.seed_vantage_points(&["us-west-2"]);
    let r = evaluated(&c).await.readiness;
    assert!(
        reason(&r, VANTAGE_POINTS, "us-east-1").starts_with("only 1 vantage point(s)"),
        "{r:#?}"
    );
}
