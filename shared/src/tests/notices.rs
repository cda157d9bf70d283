//! Events for operators over the fakes: what each transition and each state that needs a
//! person puts on the bus, and that a failing bus delays nothing and loses nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::FailbackMode;
use crate::controller::{Controller, Outcome};
use crate::decision::event::{AlarmSignal, AlarmSource, AlarmState, Command, Trigger};
use crate::ports::Notice;
use crate::testing::{FakePorts, FakeWorld, config, region};

type FakeController = Controller<FakePorts>;

fn alarm_on(on: &str) -> Trigger {
    Trigger::Alarm(AlarmSignal {
        alarm_name: format!("regionpilot-unhealthy-{on}"),
        state: AlarmState::Alarm,
        region: region(on),
        source: AlarmSource::Direct,
        state_reason: Some("Threshold Crossed".into()),
        actions_suppressed: None,
    })
}

fn controller(world: &FakeWorld, mode: FailbackMode) -> FakeController {
    let mut cfg = config();
    cfg.events.app = "shop".into();
    cfg.cooldown = std::time::Duration::ZERO;
    cfg.failback.mode = mode;
    cfg.failback.healthy_checks = 2;
    cfg.failback.min_hold = std::time::Duration::ZERO;
    cfg.failback.drain_wait = std::time::Duration::from_millis(300);
    Controller::new(Arc::new(cfg), world.ports())
}

fn published(world: &FakeWorld, detail_type: &str) -> Vec<Notice> {
    world
        .bus
        .put
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n.detail_type == detail_type)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_switch_is_one_region_switch_event_with_its_steps_and_data_loss_window() {
    let world = FakeWorld::new();
    let c = controller(&world, FailbackMode::Approve);
    let out = c.handle(alarm_on("us-east-1")).await.unwrap();
    assert_eq!(out.outcome, Outcome::Switched);
    // A duplicate delivery makes no second event.
    c.handle(alarm_on("us-east-1")).await.unwrap();

    let events = published(&world, "Region Switch");
    assert_eq!(events.len(), 1, "{events:?}");
    let detail = &events[0].detail;
    assert_eq!(detail["outcome"], "switched");
    assert_eq!(detail["app"], "shop");
    assert_eq!(detail["id"], "switch-1");
    assert_eq!(events[0].id, "switch-1");
    assert_eq!(
        (detail["epoch"].as_u64(), &detail["from"], &detail["to"]),
        (Some(1), &"us-east-1".into(), &"us-west-2".into())
    );
    assert_eq!(detail["trigger"]["kind"], "alarm");
    assert_eq!(
        detail["trigger"]["alarm_name"],
        "regionpilot-unhealthy-us-east-1"
    );
    assert_eq!(detail["forced"], false);
    assert!(
        detail["reason"]
            .as_str()
            .unwrap()
            .contains("Threshold Crossed")
    );
    assert_eq!(detail["data_loss_window"]["region"], "us-east-1");
    let steps = detail["steps"].as_array().unwrap();
    let publishes = steps.iter().filter(|s| s["step"] == "publish").count();
    assert_eq!(publishes, config().regions.len(), "{steps:?}");
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "refresh" || s["step"] == "reload"),
        "{steps:?}"
    );
    assert!(steps.iter().all(|s| s["ok"] == true), "{steps:?}");
}

#[tokio::test]
async fn a_refused_switch_says_why() {
    let world = FakeWorld::new();
    world.set_probe_down(&["us-west-2", "eu-west-1"]);
    let c = controller(&world, FailbackMode::Approve);
    assert_eq!(
        c.handle(alarm_on("us-east-1")).await.unwrap().outcome,
        Outcome::Refused
    );
    let events = published(&world, "Region Switch");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail["outcome"], "refused");
    assert_eq!(events[0].detail["from"], "us-east-1");
    assert!(
        events[0].detail["reason"]
            .as_str()
            .unwrap()
            .contains("no healthy region")
    );
    assert_eq!(events[0].detail["probes"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_flap_guard_tells_once_when_it_pauses() {
    let world = FakeWorld::new();
    let mut cfg = (*controller(&world, FailbackMode::Approve).config).clone();
    cfg.failback.max_automatic_switches_per_day = 2;
    let c = Controller::new(Arc::new(cfg), world.ports());
    c.handle(alarm_on("us-east-1")).await.unwrap();
    c.handle(alarm_on("us-west-2")).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            c.handle(alarm_on("us-east-1")).await.unwrap().outcome,
            Outcome::Ignored
        );
    }
    let events = published(&world, "Flap Guard Paused");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].detail["reason"]
            .as_str()
            .unwrap()
            .contains("flap guard")
    );
    assert_eq!(events[0].detail["limit"], 2);
    assert_eq!(events[0].detail["resume"]["command"], "resume");
}

#[tokio::test]
async fn approve_mode_says_failback_ready_once_not_every_run() {
    let world = FakeWorld::new();
    let c = controller(&world, FailbackMode::Approve);
    c.handle(alarm_on("us-east-1")).await.unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(c.verify().await.unwrap().outcome);
    }
    assert_eq!(outcomes, ["waiting", "ready", "ready", "ready"]);
    let events = published(&world, "Failback Ready");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].detail["home_region"], "us-east-1");
    assert_eq!(events[0].detail["active_region"], "us-west-2");
    assert_eq!(events[0].detail["approve"]["command"], "failback");
}

#[tokio::test]
async fn a_failing_bus_delays_nothing_and_the_verifier_delivers_what_it_held() {
    let world = FakeWorld::new();
    world.bus.failing.store(true, Ordering::SeqCst);
    let c = controller(&world, FailbackMode::Approve);
    // The switch is made as if the bus were fine.
    assert_eq!(
        c.handle(alarm_on("us-east-1")).await.unwrap().outcome,
        Outcome::Switched
    );
    assert_eq!(world.control.epochs(), vec![1]);
    assert!(world.bus.put.lock().unwrap().is_empty());
    assert_eq!(world.control.outbox.lock().unwrap().len(), 1);
    // While the bus still fails, the verifier (a second later) keeps it.
    world.clock.advance(1_000);
    let report = c.verify().await.unwrap();
    assert_eq!(
        (report.held_events.delivered, report.held_events.still_held),
        (0, 1)
    );
    // That run's first readiness evaluation was held too. Once the bus answers, the next
    // run delivers both, oldest first, once.
    world.bus.failing.store(false, Ordering::SeqCst);
    let report = c.verify().await.unwrap();
    assert_eq!(report.held_events.delivered, 2, "{:?}", report.held_events);
    // Oldest first; this run's own Failback Ready goes straight out after them.
    assert_eq!(
        world.bus.detail_types(),
        ["Region Switch", "Readiness Changed", "Failback Ready"]
    );
    assert!(world.control.outbox.lock().unwrap().is_empty());
    let events = published(&world, "Region Switch");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, "switch-1");
    assert_eq!(c.verify().await.unwrap().held_events.delivered, 0);
}

#[tokio::test]
async fn repaired_drift_is_told() {
    let world = FakeWorld::new();
    let c = controller(&world, FailbackMode::Approve);
    c.handle(Trigger::Command(Command::Failover {
        target_region: Some(region("us-west-2")),
        reason: "drill".into(),
        dry_run: false,
        force: false,
    }))
    .await
    .unwrap();
    assert!(published(&world, "Drift Repaired").is_empty());
    world
        .parameters
        .values
        .lock()
        .unwrap()
        .insert(region("eu-west-1"), "us-east-1".into());
    c.reconcile().await.unwrap();
    let events = published(&world, "Drift Repaired");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].detail["fixed"][0]
            .as_str()
            .unwrap()
            .starts_with("eu-west-1")
    );
    // Nothing out of line: nothing to tell.
    c.reconcile().await.unwrap();
    assert_eq!(published(&world, "Drift Repaired").len(), 1);
}

#[tokio::test]
async fn readiness_is_told_when_it_changes_not_on_every_evaluation() {
    let world = FakeWorld::new();
    world.seed_vantage_points(&["us-east-1", "us-west-2", "eu-west-1"]);
    let mut cfg = (*controller(&world, FailbackMode::Approve).config).clone();
    cfg.readiness_interval = std::time::Duration::ZERO;
    let c = Controller::new(Arc::new(cfg), world.ports());
    // The first evaluation is a change (there was none before); the same result is not.
    c.verify().await.unwrap();
    c.verify().await.unwrap();
    let events = published(&world, "Readiness Changed");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].detail["ready"], true, "{}", events[0].detail);
    // Point-in-time recovery turned off: not ready, and the failing check is named.
    world.control.pitr_off.store(true, Ordering::SeqCst);
    c.verify().await.unwrap();
    let events = published(&world, "Readiness Changed");
    assert_eq!(events.len(), 2, "{events:?}");
    let detail = &events[1].detail;
    assert_eq!(
        (
            detail["ready"].as_bool(),
            detail["previous_ready"].as_bool()
        ),
        (Some(false), Some(true))
    );
    assert_eq!(
        detail["failing"].as_array().map(Vec::len),
        Some(1),
        "{detail}"
    );
    assert_eq!(detail["failing"][0]["check"], "control_table_pitr");
}

#[tokio::test]
async fn a_refused_dry_run_tells_nobody() {
    let world = FakeWorld::new();
    world.set_probe_down(&["us-west-2", "eu-west-1"]);
    let c = controller(&world, FailbackMode::Approve);
    let out = c
        .handle(Trigger::Command(Command::Failover {
            target_region: None,
            reason: "what if".into(),
            dry_run: true,
            force: false,
        }))
        .await
        .unwrap();
    assert_eq!(out.outcome, Outcome::Refused);
    assert!(world.bus.put.lock().unwrap().is_empty());
    assert!(world.control.outbox.lock().unwrap().is_empty());
}

/// `count` notices held in the control table, `held-00` the oldest.
fn hold_notices(world: &FakeWorld, count: u64) {
    let mut outbox = world.control.outbox.lock().unwrap();
    for n in 0..count {
        let notice = Notice {
            id: format!("held-{n:02}"),
            detail_type: "Region Switch".into(),
            detail: serde_json::json!({"n": n}),
            at: 1_000 + n,
        };
        outbox.insert((notice.at, notice.id.clone()), notice);
    }
}

#[tokio::test]
async fn one_held_notice_the_bus_refuses_holds_back_only_itself() {
    let world = FakeWorld::new();
    let c = controller(&world, FailbackMode::Approve);
    hold_notices(&world, 25);
    // The oldest makes every PutEvents it is in fail as a whole.
    world.bus.poison.lock().unwrap().insert("held-00".into());
    for _ in 0..2 {
        let report = c.deliver_held(Duration::from_secs(30)).await.unwrap();
        let left: Vec<String> = world
            .control
            .outbox
            .lock()
            .unwrap()
            .values()
            .map(|n| n.id.clone())
            .collect();
        assert_eq!(left, vec!["held-00".to_owned()], "{report:?}");
    }
    assert_eq!(
        world.bus.put.lock().unwrap().len(),
        24,
        "each later one once"
    );
}

#[tokio::test(start_paused = true)]
async fn the_run_budget_bounds_every_send_and_release_of_held_notices() {
    let world = FakeWorld::new();
    let c = controller(&world, FailbackMode::Approve);
    hold_notices(&world, 30);
    // A bus that answers, slowly: each call takes most of a call timeout.
    let call = c.config.timeouts.call_attempt;
    *world.bus.stall.lock().unwrap() = Some(call.mul_f64(0.9));
    let budget = call.mul_f64(1.5);
    let started = tokio::time::Instant::now();
    let report = c.deliver_held(budget).await.unwrap();
    let took = started.elapsed();
    assert!(took <= budget, "took {took:?}, budget {budget:?}");
    // The first batch went out; the second was cut off by the budget, not by its timeout.
    assert_eq!(report.delivered, 10, "{report:?}");
    assert_eq!(world.bus.calls.load(Ordering::SeqCst), 2);
    assert_eq!(world.control.outbox.lock().unwrap().len(), 20);
}

/// Two verifiers (a control plane in each region) check home at once after it became
/// ready: neither takes the other's in-progress check for news, and any Failback Ready
/// either tells carries the one id of the fact.
#[tokio::test]
async fn verifiers_in_two_regions_tell_failback_ready_with_one_id() {
    let world = FakeWorld::new();
    let home_plane = controller(&world, FailbackMode::Approve);
    let mut other = (*home_plane.config).clone();
    other.own_region = region("eu-west-1");
    let other_plane = Controller::new(Arc::new(other), world.ports());
    home_plane.handle(alarm_on("us-east-1")).await.unwrap();
    // Ready on the second check; the two planes then run side by side, twice.
    home_plane.verify().await.unwrap();
    for _ in 0..3 {
        world.clock.advance(60_000);
        let (a, b) = tokio::join!(home_plane.verify(), other_plane.verify());
        assert_eq!((a.unwrap().outcome, b.unwrap().outcome), ("ready", "ready"));
    }
    let events = published(&world, "Failback Ready");
    let ids: std::collections::BTreeSet<&str> = events.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{events:?}");
    let since = world
        .control
        .state()
        .unwrap()
        .failback
        .unwrap()
        .ready_since
        .expect("ready since");
    assert_eq!(
        ids.first().copied(),
        Some(format!("failback-ready-1-{since}").as_str())
    );
}
