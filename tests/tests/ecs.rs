//! ECS services recover on the real failover bootstrap against the rig's ECS model (task
//! start, rolling deployments, rolloutState), with modelled time 50 times faster than
//! the wall clock: a task starts in 0.4-0.8 s and is healthy 0.3 s later.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use regionpilot_tests::world::SERVICE;
use regionpilot_tests::{Stage, alarm_for};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";

/// A warm standby on ECS: home runs 4 tasks, the standby 1 (MaxCapacity `standby_max`).
async fn warm_standby(label: &str, standby_max: i32) -> Stage {
    let mut env = regionpilot_tests::QUICK_ENV.to_vec();
    env.extend([("AUTO_SCALING_GROUPS", ""), ("ECS_SERVICES", SERVICE)]);
    let stage = Stage::start_with(
        label,
        &[HOME, STANDBY],
        STANDBY,
        1,
        &env,
        &[("RIG_TIME_SCALE", "50")],
        &[],
    )
    .await;
    stage
        .world
        .seed_services(&[(HOME, 4, None), (STANDBY, 1, Some(standby_max))])
        .await;
    stage
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecs_warm_standby_is_raised_and_redeployed_and_its_tasks_serve_the_new_region() {
    let stage = warm_standby("ecs-warm-standby", 10).await;
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    let key = format!("{STANDBY}/{SERVICE}");
    let capacity = &out["capacity"][&key];
    assert_eq!(capacity["status"], "raised", "{out}");
    assert_eq!(
        (capacity["previous"].as_i64(), capacity["desired"].as_i64()),
        (Some(1), Some(4))
    );
    // Followed to its end within the switch's follow budget (a rollout takes about 2 s here).
    let deployment = &out["deployments"][&key];
    assert_eq!(deployment["status"], "completed", "{out}");
    let service = stage.world.service(STANDBY).await;
    assert_eq!(service.desired_count, 4);
    let primary = &service.deployments()[0];
    assert_eq!(primary.id(), deployment["deployment_id"].as_str());
    assert_eq!(
        primary.rollout_state().map(|s| s.as_str()),
        Some("COMPLETED")
    );
    // Every task of the standby now holds the new region.
    let started = Instant::now();
    let tasks = loop {
        let tasks = stage
            .rig
            .service_tasks(STANDBY, SERVICE)
            .unwrap_or_default();
        if tasks.iter().filter(|t| t.serves(STANDBY)).count() >= 4
            || started.elapsed() > Duration::from_secs(10)
        {
            break tasks;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        tasks.iter().filter(|t| t.serves(STANDBY)).count(),
        4,
        "{tasks:?}"
    );
    assert!(
        tasks.iter().all(|t| t.value.as_deref() != Some(HOME)),
        "{tasks:?}"
    );
    // Home's service was redeployed too (its tasks read the new value when it returns).
    assert!(
        out["deployments"][format!("{HOME}/{SERVICE}")]["deployment_id"].is_string(),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_capacity_caps_the_raise_and_a_failed_deployment_is_reported_with_its_reason() {
    let stage = warm_standby("ecs-capped-failed", 3).await;
    stage.rig.fail_next_deployment(STANDBY, SERVICE);
    let out = stage.failover.invoke(&alarm_for(HOME)).await.ok();
    assert_eq!(out["outcome"], "switched", "{out}");
    let key = format!("{STANDBY}/{SERVICE}");
    let capacity = &out["capacity"][&key];
    assert_eq!(capacity["capped"], true, "{out}");
    assert_eq!(
        (capacity["desired"].as_i64(), capacity["wanted"].as_i64()),
        (Some(3), Some(4))
    );
    let deployment = &out["deployments"][&key];
    assert_eq!(deployment["status"], "failed", "{out}");
    assert!(
        deployment["reason"]
            .as_str()
            .is_some_and(|r| r.contains("circuit breaker")),
        "{out}"
    );
    // The rollback keeps the old tasks serving.
    let tasks = stage
        .rig
        .service_tasks(STANDBY, SERVICE)
        .unwrap_or_default();
    assert!(tasks.iter().any(|t| t.healthy), "{tasks:?}");
}
