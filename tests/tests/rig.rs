//! The rig's own extensions to moto, checked so the tests built on them mean something:
//! Global Tables replication with lag, pause and last-writer-wins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use regionpilot_tests::{Rig, World, paths, world};

async fn put(world: &World, region: &str, key: &str, value: &str) {
    world
        .client(region)
        .dynamodb
        .put_item()
        .table_name(world::HEALTH_TABLE)
        .item("pk", AttributeValue::S(key.into()))
        .item("v", AttributeValue::S(value.into()))
        .send()
        .await
        .unwrap();
}

async fn get(world: &World, region: &str, key: &str) -> Option<String> {
    let out = world
        .client(region)
        .dynamodb
        .get_item()
        .table_name(world::HEALTH_TABLE)
        .key("pk", AttributeValue::S(key.into()))
        .send()
        .await
        .unwrap();
    out.item
        .and_then(|i| i.get("v").and_then(|v| v.as_s().ok()).cloned())
}

/// Polls until `key` reads `value` in `region`; returns how long that took.
async fn visible_after(
    world: &World,
    region: &str,
    key: &str,
    value: &str,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if get(world, region, key).await.as_deref() == Some(value) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_follows_the_configured_lag_pause_and_last_writer_wins() {
    let dir = paths::scratch("rig-replication");
    let rig = Rig::start(&["us-east-1", "us-west-2"], &[world::HEALTH_TABLE], &dir).await;
    let world = World::connect(&rig, &["us-east-1", "us-west-2"], "us-west-2").await;
    world.seed().await;

    // Default lag is small.
    put(&world, "us-east-1", "k1", "a").await;
    let took = visible_after(&world, "us-west-2", "k1", "a", Duration::from_secs(5)).await;
    assert!(took.is_some(), "write never replicated");

    // An injected lag is honoured within a tolerance.
    rig.set_replication("us-east-1", "us-west-2", 1.5, false);
    put(&world, "us-east-1", "k2", "b").await;
    let took = visible_after(&world, "us-west-2", "k2", "b", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        took >= Duration::from_millis(1300) && took <= Duration::from_millis(2500),
        "took {took:?}"
    );

    // Paused replication holds writes back; resuming delivers them.
    rig.set_replication("us-east-1", "us-west-2", 0.0, true);
    put(&world, "us-east-1", "k3", "c").await;
    assert_eq!(
        visible_after(&world, "us-west-2", "k3", "c", Duration::from_secs(1)).await,
        None
    );
    rig.set_replication("us-east-1", "us-west-2", 0.0, false);
    assert!(
        visible_after(&world, "us-west-2", "k3", "c", Duration::from_secs(5))
            .await
            .is_some()
    );

    // Last writer wins: a late replica of an older write does not overwrite a newer one.
    rig.set_replication("us-east-1", "us-west-2", 1.0, false);
    put(&world, "us-east-1", "k4", "old").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    put(&world, "us-west-2", "k4", "new").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get(&world, "us-west-2", "k4").await.as_deref(), Some("new"));
    // ... and the newer write reaches the other side.
    assert!(
        visible_after(&world, "us-east-1", "k4", "new", Duration::from_secs(5))
            .await
            .is_some()
    );
}
