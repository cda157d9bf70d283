//! The adapters against mocked SDK clients (aws-smithy-mocks): request shapes, error
//! classification with the service's code and message kept, and bounded retries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_autoscaling::operation::describe_instance_refreshes::DescribeInstanceRefreshesOutput;
use aws_sdk_autoscaling::operation::start_instance_refresh::{
    StartInstanceRefreshError, StartInstanceRefreshOutput,
};
use aws_sdk_autoscaling::types::error::InstanceRefreshInProgressFault;
use aws_sdk_autoscaling::types::{InstanceRefresh, InstanceRefreshStatus};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
use aws_sdk_ssm::types::error::ParameterNotFound;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;

use super::{AwsScalingGroups, DynamoControlStore, SsmParameters};
use crate::config::{GroupRef, RefreshPreferences};
use crate::error::{Error, ErrorKind};
use crate::ports::{ControlStore, ParameterStore, ScalingGroups};
use crate::state::{
    CapacityStatus, ControlState, HistoryRecord, RefreshStatus, ReloadStatus, StepStatus,
    WriteToken,
};
use crate::testing::region;

fn one<T>(client: T) -> Arc<super::clients::RegionalClients<T>> {
    Arc::new(BTreeMap::from([(region("us-east-1"), client)]).into())
}

/// Error metadata as the SDK's deserializer fills it from a real response.
fn meta(code: &str) -> aws_smithy_types::error::ErrorMetadata {
    aws_smithy_types::error::ErrorMetadata::builder()
        .code(code)
        .message(code)
        .build()
}

fn group() -> GroupRef {
    GroupRef {
        region: region("us-east-1"),
        name: "app".into(),
    }
}

fn preferences() -> RefreshPreferences {
    RefreshPreferences {
        min_healthy_percent: 90,
        warmup: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn start_refresh_sends_rolling_preferences_that_replace_every_instance() {
    let rule = mock!(aws_sdk_autoscaling::Client::start_instance_refresh)
        .match_requests(|req| {
            let prefs = req.preferences();
            req.auto_scaling_group_name() == Some("app")
                && req.strategy().map(|s| s.as_str()) == Some("Rolling")
                && prefs.and_then(|p| p.min_healthy_percentage()) == Some(90)
                && prefs.and_then(|p| p.instance_warmup()) == Some(60)
                && prefs.and_then(|p| p.skip_matching()) == Some(false)
        })
        .then_output(|| {
            StartInstanceRefreshOutput::builder()
                .instance_refresh_id("r-1")
                .build()
        });
    let client = mock_client!(aws_sdk_autoscaling, [&rule]);
    let groups = AwsScalingGroups::new(one(client));
    assert_eq!(
        groups
            .start_refresh(&group(), &preferences())
            .await
            .unwrap(),
        "r-1"
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn refresh_in_progress_is_classified_with_its_code_and_message() {
    let rule = mock!(aws_sdk_autoscaling::Client::start_instance_refresh).then_error(|| {
        StartInstanceRefreshError::InstanceRefreshInProgressFault(
            InstanceRefreshInProgressFault::builder()
                .message("An Instance Refresh is already in progress")
                .meta(
                    aws_smithy_types::error::ErrorMetadata::builder()
                        .code("InstanceRefreshInProgress")
                        .message("An Instance Refresh is already in progress")
                        .build(),
                )
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_autoscaling, [&rule]);
    let groups = AwsScalingGroups::new(one(client));
    let err = groups
        .start_refresh(&group(), &preferences())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::RefreshInProgress);
    assert_eq!(err.code.as_deref(), Some("InstanceRefreshInProgress"));
    assert!(err.message.contains("already in progress"), "{err}");
    assert!(
        err.to_string().contains(
            "autoscaling:StartInstanceRefresh on the Auto Scaling group app in us-east-1"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn refreshes_are_read_with_their_start_time() {
    let rule = mock!(aws_sdk_autoscaling::Client::describe_instance_refreshes).then_output(|| {
        DescribeInstanceRefreshesOutput::builder()
            .instance_refreshes(
                InstanceRefresh::builder()
                    .instance_refresh_id("r-2")
                    .status(InstanceRefreshStatus::InProgress)
                    .start_time(DateTime::from_secs(1_700_000_000))
                    .percentage_complete(40)
                    .build(),
            )
            .build()
    });
    let client = mock_client!(aws_sdk_autoscaling, [&rule]);
    let list = AwsScalingGroups::new(one(client))
        .refreshes(&group())
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].started_at, Some(1_700_000_000_000));
    assert!(list[0].is_active());
}

#[tokio::test]
async fn publish_retries_throttling_within_its_bound() {
    let throttled = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
    let rule = mock!(aws_sdk_ssm::Client::put_parameter)
        .sequence()
        .http_status(400, Some(throttled.into()))
        .times(2)
        .output(|| PutParameterOutput::builder().version(2).build())
        .build();
    let client = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&rule], |c| c
        .retry_config(
            aws_sdk_ssm::config::retry::RetryConfig::standard().with_max_attempts(3)
        ));
    let params = SsmParameters::new(one(client));
    params
        .put(&region("us-east-1"), "/app/active", "us-west-2", "d")
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn publish_gives_up_after_the_configured_attempts_and_says_throttled() {
    let throttled = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
    let rule = mock!(aws_sdk_ssm::Client::put_parameter)
        .sequence()
        .http_status(400, Some(throttled.into()))
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&rule], |c| c
        .retry_config(
            aws_sdk_ssm::config::retry::RetryConfig::standard().with_max_attempts(2)
        ));
    let err = SsmParameters::new(one(client))
        .put(&region("us-east-1"), "/app/active", "us-west-2", "d")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(err.code.as_deref(), Some("ThrottlingException"));
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn a_missing_parameter_reads_as_none_and_access_denied_is_an_error() {
    let missing = mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(|r| r.name() == Some("/missing"))
        .then_error(|| {
            GetParameterError::ParameterNotFound(
                ParameterNotFound::builder()
                    .meta(meta("ParameterNotFound"))
                    .build(),
            )
        });
    let denied = r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform ssm:GetParameter"}"#;
    let forbidden = mock!(aws_sdk_ssm::Client::get_parameter)
        .match_requests(|r| r.name() == Some("/forbidden"))
        .sequence()
        .http_status(400, Some(denied.into()))
        .build();
    let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&missing, &forbidden]);
    let params = SsmParameters::new(one(client));
    assert_eq!(
        params.get(&region("us-east-1"), "/missing").await.unwrap(),
        None
    );
    let err = params
        .get(&region("us-east-1"), "/forbidden")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    assert!(err.message.contains("not authorized"), "{err}");
}

fn state() -> ControlState {
    ControlState::initial(region("us-east-1"))
}

#[tokio::test]
async fn a_failed_condition_is_a_lost_race_not_an_error() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| r.condition_expression() == Some("version = :expected"))
        .then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .meta(meta("ConditionalCheckFailedException"))
                    .build(),
            )
        });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put]);
    let store = DynamoControlStore::new(client, region("us-east-1"), "control".into());
    assert!(
        !store
            .save(3, &state(), &[WriteToken::fresh()])
            .await
            .unwrap()
    );
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn the_state_item_carries_the_write_tokens_and_reads_them_back() {
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    let tokens = [WriteToken("a-1".into()), WriteToken("b-7".into())];
    let listed = || {
        AttributeValue::L(vec![
            AttributeValue::S("a-1".into()),
            AttributeValue::S("b-7".into()),
        ])
    };
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(move |r| r.item().and_then(|i| i.get("write_tokens")) == Some(&listed()))
        .then_output(|| PutItemOutput::builder().build());
    let document: AttributeValue = serde_dynamo::to_attribute_value(state()).unwrap();
    let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(move || {
        GetItemOutput::builder()
            .item("version", AttributeValue::N("4".into()))
            .item("state", document.clone())
            .item("write_tokens", listed())
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put, &get]);
    let store = DynamoControlStore::new(client, region("us-east-1"), "control".into());
    assert!(store.save(3, &state(), &tokens).await.unwrap());
    assert_eq!(put.num_calls(), 1);
    let stored = store.load().await.unwrap().unwrap();
    assert_eq!(stored.version, 4);
    assert_eq!(stored.writes, tokens);
}

#[tokio::test]
async fn a_history_copy_that_got_further_is_kept_and_no_transaction_is_used() {
    // The condition fails when the stored copy has a higher revision: not an error.
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| {
            r.condition_expression() == Some("attribute_not_exists(revision) OR revision < :r")
                && r.item()
                    .and_then(|i| i.get("sk"))
                    .and_then(|v| v.as_s().ok())
                    == Some(&"000000000001".to_owned())
        })
        .then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .meta(meta("ConditionalCheckFailedException"))
                    .build(),
            )
        });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put]);
    let store = DynamoControlStore::new(client, region("us-east-1"), "control".into());
    let record = history_record(1);
    store.put_history(&record).await.unwrap();
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn control_table_access_denied_is_a_non_retryable_error() {
    let denied = r#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"not authorized to perform dynamodb:GetItem"}"#;
    let rule = mock!(aws_sdk_dynamodb::Client::get_item)
        .sequence()
        .http_status(400, Some(denied.into()))
        .build();
    let client = mock_client!(aws_sdk_dynamodb, [&rule]);
    let store = DynamoControlStore::new(client, region("us-east-1"), "control".into());
    let err = store.load().await.unwrap_err();
    assert!(
        matches!(&err, Error::Aws(e) if e.kind == ErrorKind::AccessDenied),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(err.error_type(), "AwsError");
    // It says which table, that it is the control table, and where.
    assert!(
        err.to_string()
            .starts_with("dynamodb:GetItem on the control table control in us-east-1 failed (access denied) [AccessDeniedException]"),
        "{err}"
    );
}

#[test]
fn sdk_timeouts_are_classified_as_timeouts() {
    let err: aws_smithy_runtime_api::client::result::SdkError<GetParameterError, ()> =
        aws_smithy_runtime_api::client::result::SdkError::timeout_error("attempt timeout");
    let classified =
        crate::error::AwsError::from_sdk("ssm", "GetParameter", &region("us-east-1"), &err);
    assert_eq!(classified.kind, ErrorKind::Timeout);
    assert!(classified.kind.is_transient());
}

#[tokio::test]
async fn point_in_time_recovery_is_read_from_describe_continuous_backups() {
    use aws_sdk_dynamodb::operation::describe_continuous_backups::DescribeContinuousBackupsOutput;
    use aws_sdk_dynamodb::types::{
        ContinuousBackupsDescription, ContinuousBackupsStatus, PointInTimeRecoveryDescription,
        PointInTimeRecoveryStatus,
    };
    let output = |status: PointInTimeRecoveryStatus| {
        DescribeContinuousBackupsOutput::builder()
            .continuous_backups_description(
                ContinuousBackupsDescription::builder()
                    .continuous_backups_status(ContinuousBackupsStatus::Enabled)
                    .point_in_time_recovery_description(
                        PointInTimeRecoveryDescription::builder()
                            .point_in_time_recovery_status(status)
                            .build(),
                    )
                    .build()
                    .expect("description"),
            )
            .build()
    };
    let on = mock!(aws_sdk_dynamodb::Client::describe_continuous_backups)
        .match_requests(|req| req.table_name() == Some("control"))
        .then_output(move || output(PointInTimeRecoveryStatus::Enabled));
    let off = mock!(aws_sdk_dynamodb::Client::describe_continuous_backups)
        .then_output(move || output(PointInTimeRecoveryStatus::Disabled));
    let missing = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TableNotFoundException","message":"Table not found: control"}"#;
    let gone = mock!(aws_sdk_dynamodb::Client::describe_continuous_backups)
        .sequence()
        .http_status(400, Some(missing.into()))
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&on, &off, &gone]);
    let store = DynamoControlStore::new(client, region("us-east-1"), "control".into());
    assert!(store.point_in_time_recovery().await.unwrap());
    assert!(!store.point_in_time_recovery().await.unwrap());
    let err = store.point_in_time_recovery().await.unwrap_err();
    assert!(
        err.to_string().starts_with(
            "dynamodb:DescribeContinuousBackups on the control table control in us-east-1 failed"
        ),
        "{err}"
    );
    assert_eq!(err.code.as_deref(), Some("TableNotFoundException"));
}

/// The history record of a completed transition `epoch`.
fn history_record(epoch: u64) -> HistoryRecord {
    let mut t = crate::testing::transition("us-east-1", "us-west-2", 1);
    t.epoch = epoch;
    HistoryRecord::of(&t)
}

fn conflict() -> PutItemError {
    PutItemError::ReplicatedWriteConflictException(
        aws_sdk_dynamodb::types::error::ReplicatedWriteConflictException::builder()
            .meta(meta("ReplicatedWriteConflictException"))
            .build(),
    )
}

#[tokio::test]
async fn a_write_conflict_with_another_region_is_a_lost_race_to_re_read_and_decide_again() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item).then_error(conflict);
    let client = mock_client!(aws_sdk_dynamodb, [&put]);
    let store = DynamoControlStore::new(client, region("us-east-1"), "control".into());
    // The SDK retries it (it is retryable) within the client's attempts, then the
    // controller re-reads: a lost race, not an error.
    assert!(
        !store
            .save(3, &state(), &[WriteToken::fresh()])
            .await
            .unwrap()
    );
    assert_eq!(put.num_calls(), 3);
}

#[tokio::test]
async fn a_history_write_that_conflicts_is_tried_again_bounded() {
    let record = history_record(2);
    // Two conflicts, then it lands: the SDK's retries.
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .sequence()
        .error(conflict)
        .times(2)
        .output(|| aws_sdk_dynamodb::operation::put_item::PutItemOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_dynamodb, [&put]);
    let store = DynamoControlStore::new(client, region("us-east-1"), "control".into());
    store.put_history(&record).await.unwrap();
    assert_eq!(put.num_calls(), 3);
    // Conflicts that do not stop: a classified, retryable error after three tries.
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .sequence()
        .error(conflict)
        .times(3)
        .build();
    let client = mock_client!(aws_sdk_dynamodb, [&put]);
    let store = DynamoControlStore::new(client, region("us-east-1"), "control".into());
    let err = store.put_history(&record).await.unwrap_err();
    assert!(
        matches!(&err, Error::Aws(e) if e.kind == ErrorKind::WriteConflict),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(put.num_calls(), 3);
}

/// The control state item after a failover with `groups` groups in each of the three test
/// regions, home's Auto Scaling down (so its steps record errors), in run-command mode,
/// and a verifier run (the capacity snapshot): its size by DynamoDB's sizing.
async fn state_bytes_with(groups: usize) -> usize {
    use crate::controller::Controller;
    use crate::testing::{FakeWorld, alarm_on, config_with};
    let names: Vec<String> = (0..groups).map(|g| format!("web-{g:03}")).collect();
    let list = names
        .iter()
        .flat_map(|n| ["us-east-1", "us-west-2", "eu-west-1"].map(|r| format!("{r}={n}")))
        .collect::<Vec<_>>()
        .join(",");
    let world = FakeWorld::new();
    for name in &names {
        for r in ["us-east-1", "us-west-2", "eu-west-1"] {
            world.groups.set_sizes(&format!("{r}/{name}"), 1, 4, 12);
        }
    }
    let config = config_with(&[
        ("AUTO_SCALING_GROUPS", &list),
        ("COOLDOWN_SECONDS", "0"),
        ("RELOAD_MODE", "run-command"),
        (
            "RELOAD_COMMANDS",
            "/opt/app/bin/use-active-region && systemctl reload php-fpm",
        ),
    ]);
    let c = Controller::new(Arc::new(config), world.ports());
    c.verify().await.unwrap();
    world.set_region_down("us-east-1", true);
    c.handle(alarm_on("us-east-1")).await.unwrap();
    c.verify().await.unwrap();
    let state = c.load().await.unwrap().value;
    let bytes = super::state_item_bytes(&state).unwrap();
    // Each kind's entries, as the item holds them: what one step of each kind costs.
    let t = state.transition.as_ref().expect("the failover");
    let mut by_kind: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for entry in &t.steps {
        let mut alone = state.clone();
        if let Some(only) = alone.transition.as_mut() {
            only.steps
                .retain(|e| !(e.kind == entry.kind && e.key == entry.key));
        }
        let without = super::state_item_bytes(&alone).unwrap();
        let slot = by_kind.entry(entry.kind.as_str()).or_default();
        *slot = (slot.0 + bytes - without, slot.1 + 1);
    }
    let per_step: Vec<String> = by_kind
        .iter()
        .map(|(kind, (total, n))| format!("{kind} {} B", total / n))
        .collect();
    println!(
        "with {groups} groups a region, one step entry each: {}",
        per_step.join(", ")
    );
    bytes
}

#[tokio::test]
async fn the_control_state_item_grows_by_at_most_the_configured_bytes_per_group() {
    let (small, large) = (state_bytes_with(10).await, state_bytes_with(40).await);
    // Per group in a region (the three test regions each have every group).
    let per_group = (large - small) / (30 * 3);
    let base = small.saturating_sub(per_group * 30);
    println!(
        "control state item: {small} B with 30 groups, {large} B with 120; {per_group} B per group, base {base} B"
    );
    // The config's budget leaves room for AWS's own error messages, longer than the
    // fakes' (two per group at most: the step's and its fallback's, about 200 B each).
    assert!(
        per_group + 400 <= crate::config::STATE_BYTES_PER_GROUP,
        "{per_group} B per group measured"
    );
    assert!(
        base <= crate::config::STATE_BASE_BYTES,
        "{base} B base measured"
    );
}

/// A stored item of the format today's code writes (`fixtures/*-2026-12.json`: the control
/// state after a run-command failover with home's Auto Scaling down, so failed steps and a
/// fallback are recorded, and its history record), as DynamoDB's wire JSON.
fn stored(
    name: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/aws/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let item: serde_dynamo::Item = serde_json::from_str(&text).unwrap();
    item.into()
}

#[tokio::test]
async fn a_state_item_and_a_history_record_of_the_2026_12_format_read_back_with_every_step() {
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    let state_item = stored("state-item-2026-12.json");
    let history_item = stored("history-item-2026-12.json");
    let served_state = state_item.clone();
    let served_history = history_item.clone();
    let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(move || {
        GetItemOutput::builder()
            .set_item(Some(served_state.clone()))
            .build()
    });
    let query = mock!(aws_sdk_dynamodb::Client::query)
        .then_output(move || QueryOutput::builder().items(served_history.clone()).build());
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&get, &query]);
    let store = DynamoControlStore::new(client, region("us-west-2"), "control".into());

    let state = store.load().await.unwrap().expect("the stored state");
    let t = state.value.transition.as_ref().expect("its transition");
    assert_eq!(
        (t.epoch, t.from.as_str(), t.to.as_str()),
        (1, "us-east-1", "us-west-2")
    );
    // Every step of the old per-kind maps is a generic entry, with its times.
    let kinds: Vec<(&str, &str)> = t
        .steps
        .iter()
        .map(|e| (e.kind.as_str(), e.key.as_str()))
        .collect();
    println!("migrated steps: {kinds:?}");
    assert_eq!(t.steps.len(), 7, "{kinds:?}");
    assert!(
        t.steps
            .iter()
            .all(|e| e.runs >= 1 && e.ended_at >= e.started_at && e.started_at > 0)
    );
    let publish = t.outcomes::<StepStatus>();
    assert_eq!(publish.len(), 3, "{publish:?}");
    let home = t.step("publish", "us-east-1").expect("home's publish");
    assert!(!publish["us-east-1"].is_ok(), "home's publish failed");
    assert!(
        home.error.as_ref().is_some_and(|e| !e.message.is_empty()),
        "{home:?}"
    );
    assert!(t.published_in(&region("us-west-2")));
    // Run-command mode: a reload per group (home's failed), the standby's capacity.
    let reload = t.outcomes::<ReloadStatus>();
    assert_eq!(reload.len(), 3, "{reload:?}");
    assert_eq!(t.outcomes::<CapacityStatus>().len(), 1);
    assert!(t.outcomes::<RefreshStatus>().is_empty());
    assert!(
        t.refresh_ids().is_empty(),
        "no refresh ran: every reload went by command"
    );
    assert_eq!(state.writes.len(), state.version as usize);
    // Written again it is today's format: entries only, and it reads back the same.
    let again = DynamoControlStore::state_item(state.version, &state.value, &state.writes).unwrap();
    let written = format!("{again:?}");
    assert!(written.contains("\"steps\"") && !written.contains("\"step_times\""));
    let reread = DynamoControlStore::read_state_item(&again).unwrap();
    assert_eq!(reread.value, state.value);
    assert_eq!(
        reread.value.transition.as_ref().unwrap().revision(),
        t.revision()
    );

    let history = store.history(10).await.unwrap();
    assert_eq!(history.len(), 1);
    let h = history[0]
        .transition
        .as_ref()
        .expect("the whole transition");
    assert_eq!(h.steps.len(), t.steps.len());
    assert_eq!(
        history[0].revision,
        h.revision(),
        "the stored revision still orders copies"
    );
    let again = DynamoControlStore::history_item(&history[0]).unwrap();
    assert!(!format!("{again:?}").contains("\"step_times\""));
}
