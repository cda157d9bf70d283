//! The rig's emulation of a DynamoDB global table with multi-Region strong consistency
//! (MRSC), checked against the real region processes so the control-plane tests built on
//! it mean something: one store reachable through every replica region, a region cut off
//! from the majority refusing writes and strong reads, writes to one item from two regions
//! at once conflicting, and every other table and region left as before.
//!
//! The clients here do not retry, so each answer is the rig's own (the SDK retries
//! `InternalServerError` and `ReplicatedWriteConflictException` by default).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    MultiRegionConsistency, Put, ScalarAttributeType, TransactWriteItem,
};
use regionpilot_tests::world::{CONTROL_TABLE, HEALTH_TABLE};
use regionpilot_tests::{Rig, paths};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-east-2";
/// A region of the rig that holds no replica of the MRSC table.
const OUTSIDE: &str = "us-west-2";

const CONFLICT: &str = "ReplicatedWriteConflictException";
const CONDITION: &str = "ConditionalCheckFailedException";
/// What a region cut off from the majority answers (assumed; see `rig/README.md`).
const ISOLATED: &str = "InternalServerError";

/// A rig of `regions` whose control table is MRSC across `HOME` and `STANDBY`, with a
/// write in flight for `conflict_ms`, and one client per region.
async fn rig(label: &str, regions: &[&str], conflict_ms: u64) -> (Rig, BTreeMap<String, Client>) {
    let dir = paths::scratch(label);
    let conflict = conflict_ms.to_string();
    let members = format!("{HOME},{STANDBY}");
    let rig = Rig::start_with(
        regions,
        &[HEALTH_TABLE],
        &dir,
        &[
            ("RIG_MRSC_TABLES", CONTROL_TABLE),
            ("RIG_MRSC_REGIONS", &members),
            ("RIG_MRSC_WITNESS", OUTSIDE),
            ("RIG_MRSC_CONFLICT_MS", &conflict),
        ],
    )
    .await;
    let clients = clients(&rig).await;
    (rig, clients)
}

/// One DynamoDB client per region of the rig, without retries.
async fn clients(rig: &Rig) -> BTreeMap<String, Client> {
    let base = aws_config::defaults(BehaviorVersion::latest())
        .http_client(regionpilot::aws::http_client())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "rig", "rig", None, None, "rig",
        ))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .region(aws_config::Region::new(HOME))
        .load()
        .await;
    rig.servers
        .keys()
        .map(|region| {
            let config = base
                .to_builder()
                .region(aws_config::Region::new(region.clone()))
                .endpoint_url(rig.url(region))
                .build();
            (region.clone(), Client::new(&config))
        })
        .collect()
}

/// Creates `table` through `client`, keyed as the control table (`pk`, `sk`).
async fn create_table(client: &Client, table: &str) {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (key, kind) in [("pk", KeyType::Hash), ("sk", KeyType::Range)] {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(key)
                    .key_type(kind)
                    .build()
                    .unwrap(),
            );
    }
    request.send().await.unwrap();
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// Puts `{pk: key, sk: "state", v: value}`; with `only_new`, on condition that the item
/// does not exist. Err is the error code.
async fn put(
    client: &Client,
    table: &str,
    key: &str,
    value: &str,
    only_new: bool,
) -> Result<(), String> {
    let mut request = client
        .put_item()
        .table_name(table)
        .item("pk", s(key))
        .item("sk", s("state"))
        .item("v", s(value));
    if only_new {
        request = request.condition_expression("attribute_not_exists(pk)");
    }
    request
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("no code").to_owned())
}

/// The item's `v`, read strongly or eventually consistent. Err is the error code.
async fn get(
    client: &Client,
    table: &str,
    key: &str,
    strong: bool,
) -> Result<Option<String>, String> {
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", s(key))
        .key("sk", s("state"))
        .consistent_read(strong)
        .send()
        .await
        .map_err(|e| e.code().unwrap_or("no code").to_owned())?;
    Ok(out
        .item
        .and_then(|i| i.get("v").and_then(|v| v.as_s().ok()).cloned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_region_is_read_strongly_through_the_other_at_once() {
    // Given the control table, created through the home region only
    let (mut rig, c) = rig("mrsc-one-store", &[HOME, STANDBY], 10).await;
    create_table(&c[HOME], CONTROL_TABLE).await;

    // Then the standby describes it as a replica of an MRSC global table, with its own ARN
    let table = c[STANDBY]
        .describe_table()
        .table_name(CONTROL_TABLE)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(
        table.multi_region_consistency,
        Some(MultiRegionConsistency::Strong)
    );
    assert!(
        table.table_arn.as_deref().unwrap().contains(":us-east-2:"),
        "{:?}",
        table.table_arn
    );
    let replicas: Vec<_> = table
        .replicas
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.region_name)
        .collect();
    assert_eq!(replicas, [HOME, STANDBY]);

    // When writes alternate between the regions, each read strongly through the other
    // region with no wait sees the write just acknowledged
    for round in 0..10 {
        let (writer, reader) = if round % 2 == 0 {
            (HOME, STANDBY)
        } else {
            (STANDBY, HOME)
        };
        let value = format!("v{round}");
        put(&c[writer], CONTROL_TABLE, "control", &value, false)
            .await
            .unwrap();
        assert_eq!(
            get(&c[reader], CONTROL_TABLE, "control", true).await,
            Ok(Some(value.clone())),
            "round {round}: written through {writer}, read through {reader}"
        );
        // An eventually consistent read answers too (fresh while connected).
        assert_eq!(
            get(&c[reader], CONTROL_TABLE, "control", false).await,
            Ok(Some(value))
        );
    }
    // A strong query through the other region sees them as well.
    let items = c[HOME]
        .query()
        .table_name(CONTROL_TABLE)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s("control"))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["v"], s("v9"));

    // When the home region is lost, the standby still holds the whole table
    rig.kill(HOME).await;
    put(&c[STANDBY], CONTROL_TABLE, "after-loss", "kept", true)
        .await
        .unwrap();
    assert_eq!(
        get(&c[STANDBY], CONTROL_TABLE, "control", true).await,
        Ok(Some("v9".into()))
    );
    assert_eq!(
        get(&c[STANDBY], CONTROL_TABLE, "after-loss", true).await,
        Ok(Some("kept".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_cut_off_refuses_writes_and_strong_reads_and_reads_a_stale_copy() {
    let (rig, c) = rig("mrsc-isolation", &[HOME, STANDBY], 10).await;
    create_table(&c[HOME], CONTROL_TABLE).await;
    put(&c[HOME], CONTROL_TABLE, "control", "before", false)
        .await
        .unwrap();

    // When the standby is cut off from the majority
    rig.isolate(STANDBY, true);
    let state = rig.mrsc_state(STANDBY).unwrap();
    assert_eq!(state["isolated"], true, "{state}");

    // Then its writes and strong reads fail at once, and nothing is written
    let started = Instant::now();
    assert_eq!(
        put(&c[STANDBY], CONTROL_TABLE, "control", "cut-off", false).await,
        Err(ISOLATED.into())
    );
    assert_eq!(
        get(&c[STANDBY], CONTROL_TABLE, "control", true).await,
        Err(ISOLATED.into())
    );
    let query = c[STANDBY]
        .query()
        .table_name(CONTROL_TABLE)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s("control"))
        .consistent_read(true)
        .send()
        .await;
    assert_eq!(query.unwrap_err().code(), Some(ISOLATED));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        get(&c[HOME], CONTROL_TABLE, "control", true).await,
        Ok(Some("before".into()))
    );

    // ... while the home region, on the majority side, goes on writing
    put(&c[HOME], CONTROL_TABLE, "control", "moved-on", false)
        .await
        .unwrap();

    // ... and the standby's eventually consistent reads answer, stale
    assert_eq!(
        get(&c[STANDBY], CONTROL_TABLE, "control", false).await,
        Ok(Some("before".into()))
    );
    // DescribeTable still answers there.
    c[STANDBY]
        .describe_table()
        .table_name(CONTROL_TABLE)
        .send()
        .await
        .unwrap();

    // When it is reconnected, it reads the latest strongly and writes again
    rig.isolate(STANDBY, false);
    assert_eq!(
        get(&c[STANDBY], CONTROL_TABLE, "control", true).await,
        Ok(Some("moved-on".into()))
    );
    assert_eq!(
        get(&c[STANDBY], CONTROL_TABLE, "control", false).await,
        Ok(Some("moved-on".into()))
    );
    put(&c[STANDBY], CONTROL_TABLE, "control", "back", false)
        .await
        .unwrap();
    assert_eq!(
        get(&c[HOME], CONTROL_TABLE, "control", true).await,
        Ok(Some("back".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_while_another_region_s_write_is_in_flight_conflicts_and_is_not_applied() {
    // Writes are in flight for 600 ms, so the overlap below is certain.
    let (rig, c) = rig("mrsc-conflict-window", &[HOME, STANDBY], 600).await;
    create_table(&c[HOME], CONTROL_TABLE).await;

    // Given a write through the home region, still in flight
    let home = c[HOME].clone();
    let first =
        tokio::spawn(async move { put(&home, CONTROL_TABLE, "control", "home", false).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    // When the standby writes the same item meanwhile
    let second = put(&c[STANDBY], CONTROL_TABLE, "control", "standby", false).await;

    // Then the standby's write conflicts and is not applied; the home's is
    assert_eq!(second, Err(CONFLICT.into()));
    assert_eq!(first.await.unwrap(), Ok(()));
    assert_eq!(
        get(&c[STANDBY], CONTROL_TABLE, "control", true).await,
        Ok(Some("home".into()))
    );
    assert_eq!(rig.mrsc_store().unwrap()["conflicts"], 1);

    // ... a write to another item does not conflict
    put(&c[STANDBY], CONTROL_TABLE, "other", "standby", false)
        .await
        .unwrap();

    // ... nor does a second write through the same region while the first is in flight
    let home = c[HOME].clone();
    let first =
        tokio::spawn(async move { put(&home, CONTROL_TABLE, "control", "home-1", false).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    put(&c[HOME], CONTROL_TABLE, "control", "home-2", false)
        .await
        .unwrap();
    assert_eq!(first.await.unwrap(), Ok(()));

    // ... and once the write is acknowledged, the other region's write goes through
    put(&c[STANDBY], CONTROL_TABLE, "control", "standby", false)
        .await
        .unwrap();
    assert_eq!(
        get(&c[HOME], CONTROL_TABLE, "control", true).await,
        Ok(Some("standby".into()))
    );
    assert_eq!(rig.mrsc_store().unwrap()["conflicts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conditional_writes_through_two_regions_apply_once() {
    let (rig, c) = rig("mrsc-races", &[HOME, STANDBY], 10).await;
    create_table(&c[HOME], CONTROL_TABLE).await;

    // When both regions create the same item at the same instant, round after round
    let mut lost = BTreeMap::<String, u32>::new();
    for round in 0..20 {
        let key = format!("epoch-{round}");
        let (home, standby) = tokio::join!(
            put(&c[HOME], CONTROL_TABLE, &key, HOME, true),
            put(&c[STANDBY], CONTROL_TABLE, &key, STANDBY, true),
        );

        // Then exactly one is applied; the other conflicts or fails its condition
        let (winner, loser) = match (&home, &standby) {
            (Ok(()), Err(code)) => (HOME, code),
            (Err(code), Ok(())) => (STANDBY, code),
            _ => panic!("round {round}: home {home:?}, standby {standby:?}"),
        };
        assert!(
            loser == CONFLICT || loser == CONDITION,
            "round {round}: {loser}"
        );
        *lost.entry(loser.clone()).or_default() += 1;
        for reader in [HOME, STANDBY] {
            assert_eq!(
                get(&c[reader], CONTROL_TABLE, &key, true).await,
                Ok(Some(winner.into())),
                "round {round}"
            );
        }
    }
    let conflicts = rig.mrsc_store().unwrap()["conflicts"].as_u64().unwrap();
    assert_eq!(
        conflicts,
        u64::from(lost.get(CONFLICT).copied().unwrap_or(0))
    );
    eprintln!("losers: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_tables_and_regions_outside_the_set_are_as_before() {
    let (rig, c) = rig("mrsc-others", &[HOME, STANDBY, OUTSIDE], 10).await;
    create_table(&c[HOME], CONTROL_TABLE).await;
    assert_eq!(rig.mrsc.as_ref().unwrap().regions, [HOME, STANDBY]);

    // A region without a replica does not see the MRSC table
    let missing = c[OUTSIDE]
        .describe_table()
        .table_name(CONTROL_TABLE)
        .send()
        .await;
    assert_eq!(
        missing.unwrap_err().code(),
        Some("ResourceNotFoundException")
    );

    // A replicated (MREC) table stays one table per region, replicated with a lag: with
    // replication to the standby paused, a write through the home region does not reach it
    for region in [HOME, STANDBY, OUTSIDE] {
        create_table(&c[region], HEALTH_TABLE).await;
    }
    rig.set_replication(HOME, STANDBY, 0.0, true);
    put(&c[HOME], HEALTH_TABLE, "canary", "home", false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        get(&c[STANDBY], HEALTH_TABLE, "canary", true).await,
        Ok(None)
    );
    assert_eq!(
        get(&c[OUTSIDE], HEALTH_TABLE, "canary", true).await,
        Ok(Some("home".into()))
    );
    rig.set_replication(HOME, STANDBY, 0.0, false);
    let started = Instant::now();
    while get(&c[STANDBY], HEALTH_TABLE, "canary", true).await != Ok(Some("home".into())) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never replicated"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // ... and cutting a region off leaves its other tables alone
    rig.isolate(STANDBY, true);
    put(&c[STANDBY], HEALTH_TABLE, "canary", "standby", false)
        .await
        .unwrap();
    assert_eq!(
        get(&c[STANDBY], HEALTH_TABLE, "canary", true).await,
        Ok(Some("standby".into()))
    );
    rig.isolate(STANDBY, false);

    // Transactions, refused on an MRSC table, still work on the others
    let transact = |table: &str| {
        c[HOME].transact_write_items().transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .item("pk", s("tx"))
                        .item("sk", s("state"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
    };
    let refused = transact(CONTROL_TABLE).send().await;
    assert_eq!(refused.unwrap_err().code(), Some("ValidationException"));
    assert_eq!(get(&c[HOME], CONTROL_TABLE, "tx", true).await, Ok(None));
    transact(HEALTH_TABLE).send().await.unwrap();
}
