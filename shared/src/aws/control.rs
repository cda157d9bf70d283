use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::{AwsError, Error, ErrorKind, Result};
use crate::evidence::samples::ProbeSamples;
use crate::ports::{ControlStore, Notice, RunLease};
use crate::region::Region;
use crate::state::WRITES_KEPT;
use crate::state::{ControlState, HistoryRecord, Versioned, WriteToken};

const STATE_PK: &str = "control";
const STATE_SK: &str = "state";
/// The state item's attribute listing the tokens of the newest writes, the last being the
/// one that stored it.
const WRITE_TOKENS: &str = "write_tokens";
const HISTORY_PK: &str = "history";
/// Notices the event bus did not take: `pk=outbox, sk=<at, zero-padded>#<id>`, oldest first.
const OUTBOX_PK: &str = "outbox";
/// The health probe's samples: `pk=probe, sk=<the probe's region>`. The probe may write
/// this partition only (the template's `dynamodb:LeadingKeys` condition).
pub const SAMPLES_PK: &str = "probe";
/// The verifier's run lease: `pk=lease, sk=verifier`.
const LEASE_PK: &str = "lease";
const LEASE_SK: &str = "verifier";

/// The control table: one state item (`pk=control, sk=state`) and one item per transition
/// (`pk=history, sk=<epoch, zero-padded>`), so a query on `pk=history` lists them in order.
#[derive(Clone)]
pub struct DynamoControlStore {
    client: aws_sdk_dynamodb::Client,
    region: Region,
    table: String,
}

impl DynamoControlStore {
    pub fn new(client: aws_sdk_dynamodb::Client, region: Region, table: String) -> Self {
        DynamoControlStore {
            client,
            region,
            table,
        }
    }

    fn aws<E, R>(
        &self,
        operation: &'static str,
        err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> AwsError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        AwsError::from_sdk("dynamodb", operation, &self.region, err)
            .on(format!("the control table {}", self.table))
    }

    /// The items of one partition (`pk`), strongly consistent, at most `limit`.
    async fn partition(
        &self,
        pk: &str,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .scan_index_forward(!newest_first)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("Query", &e))?;
        Ok(out.items.unwrap_or_default())
    }

    /// An unconditional `PutItem`: the item's whole content is the write, so a retry of
    /// one that landed writes the same again.
    async fn put(&self, item: HashMap<String, AttributeValue>) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| self.aws("PutItem", &e))?;
        Ok(())
    }

    pub(crate) fn history_item(record: &HistoryRecord) -> Result<HashMap<String, AttributeValue>> {
        let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(record)
            .map_err(|e| Error::CorruptState(format!("cannot encode history: {e}")))?;
        item.insert("pk".into(), AttributeValue::S(HISTORY_PK.into()));
        item.insert(
            "sk".into(),
            AttributeValue::S(history_sort_key(record.epoch)),
        );
        Ok(item)
    }

    pub(crate) fn state_item(
        version: u64,
        state: &ControlState,
        writes: &[WriteToken],
    ) -> Result<HashMap<String, AttributeValue>> {
        let document: AttributeValue = serde_dynamo::to_attribute_value(state)
            .map_err(|e| Error::CorruptState(format!("cannot encode state: {e}")))?;
        Ok(HashMap::from([
            ("pk".to_owned(), AttributeValue::S(STATE_PK.into())),
            ("sk".to_owned(), AttributeValue::S(STATE_SK.into())),
            ("version".to_owned(), AttributeValue::N(version.to_string())),
            (
                WRITE_TOKENS.to_owned(),
                AttributeValue::L(
                    writes
                        .iter()
                        .map(|t| AttributeValue::S(t.as_str().to_owned()))
                        .collect(),
                ),
            ),
            // Duplicated at the top level so the console shows them at a glance.
            (
                "active_region".to_owned(),
                AttributeValue::S(state.active_region.to_string()),
            ),
            (
                "epoch".to_owned(),
                AttributeValue::N(state.epoch.to_string()),
            ),
            ("state".to_owned(), document),
        ]))
    }
}

fn history_sort_key(epoch: u64) -> String {
    format!("{epoch:012}")
}

impl DynamoControlStore {
    async fn load_state(&self, consistent: bool) -> Result<Option<Versioned<ControlState>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(STATE_PK.into()))
            .key("sk", AttributeValue::S(STATE_SK.into()))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| self.aws("GetItem", &e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        Self::read_state_item(&item).map(Some)
    }

    /// The control state a stored item holds, with its version and write tokens.
    pub(crate) fn read_state_item(
        item: &HashMap<String, AttributeValue>,
    ) -> Result<Versioned<ControlState>> {
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| Error::CorruptState("state item has no numeric version".into()))?;
        let document = item
            .get("state")
            .cloned()
            .ok_or_else(|| Error::CorruptState("state item has no state attribute".into()))?;
        let value: ControlState = serde_dynamo::from_attribute_value(document)
            .map_err(|e| Error::CorruptState(e.to_string()))?;
        let writes = item
            .get(WRITE_TOKENS)
            .and_then(|v| v.as_l().ok())
            .map(|list| {
                list.iter()
                    .filter_map(|t| t.as_s().ok())
                    .map(|t| WriteToken(t.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Versioned {
            version,
            value,
            writes,
        })
    }
}

impl ControlStore for DynamoControlStore {
    async fn load(&self) -> Result<Option<Versioned<ControlState>>> {
        self.load_state(true).await
    }

    async fn load_eventually(&self) -> Result<Option<Versioned<ControlState>>> {
        self.load_state(false).await
    }

    async fn save(
        &self,
        expected: u64,
        state: &ControlState,
        writes: &[WriteToken],
    ) -> Result<bool> {
        let item = Self::state_item(expected + 1, state, writes)?;
        let (condition, values) = if expected == 0 {
            ("attribute_not_exists(pk)", None)
        } else {
            (
                "version = :expected",
                Some(HashMap::from([(
                    ":expected".to_owned(),
                    AttributeValue::N(expected.to_string()),
                )])),
            )
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => lost_race_or(self.aws("PutItem", &e)),
        }
    }

    async fn history(&self, limit: usize) -> Result<Vec<HistoryRecord>> {
        self.partition(HISTORY_PK, limit, true)
            .await?
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| Error::CorruptState(format!("history: {e}")))
            })
            .collect()
    }

    async fn point_in_time_recovery(&self) -> Result<bool, AwsError> {
        let out = self
            .client
            .describe_continuous_backups()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.aws("DescribeContinuousBackups", &e))?;
        let status = out
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status());
        Ok(status == Some(&aws_sdk_dynamodb::types::PointInTimeRecoveryStatus::Enabled))
    }

    async fn put_history(&self, record: &HistoryRecord) -> Result<()> {
        // The SDK retries a conflict with another region's write (it is retryable),
        // within CALL_MAX_ATTEMPTS.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::history_item(record)?))
            .condition_expression("attribute_not_exists(revision) OR revision < :r")
            .expression_attribute_values(":r", AttributeValue::N(record.revision.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A copy that got as far or further is there already: nothing to do.
            Err(e) => {
                let err = self.aws("PutItem", &e);
                if err.kind == ErrorKind::ConditionFailed {
                    Ok(())
                } else {
                    Err(Error::Aws(err))
                }
            }
        }
    }

    async fn history_of(&self, epoch: u64) -> Result<Option<HistoryRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(HISTORY_PK.into()))
            .key("sk", AttributeValue::S(history_sort_key(epoch)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("GetItem", &e))?;
        out.item
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| Error::CorruptState(format!("history: {e}")))
            })
            .transpose()
    }

    async fn hold(&self, notice: &Notice) -> Result<()> {
        let mut item = outbox_key(notice);
        let document = serde_json::to_string(notice)
            .map_err(|e| Error::CorruptState(format!("cannot encode a notice: {e}")))?;
        item.insert("notice".into(), AttributeValue::S(document));
        self.put(item).await
    }

    async fn held(&self, limit: usize) -> Result<Vec<Notice>> {
        self.partition(OUTBOX_PK, limit, false)
            .await?
            .into_iter()
            // One unreadable item must not hold back the others: it is logged and left.
            .filter_map(|item| {
                let notice = item
                    .get("notice")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|text| serde_json::from_str(text).ok());
                if notice.is_none() {
                    tracing::error!(item = ?item.get("sk"), "an outbox item has no readable notice; left in the control table");
                }
                notice
            })
            .map(Ok)
            .collect()
    }

    async fn release(&self, notice: &Notice) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(outbox_key(notice)))
            .send()
            .await
            .map_err(|e| self.aws("DeleteItem", &e))?;
        Ok(())
    }

    async fn samples(&self, vantage: &Region) -> Result<Option<ProbeSamples>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(samples_key(vantage)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("GetItem", &e))?;
        out.item
            .and_then(|mut item| item.remove("samples"))
            .map(|document| {
                serde_dynamo::from_attribute_value(document)
                    .map_err(|e| Error::CorruptState(format!("probe samples: {e}")))
            })
            .transpose()
    }

    async fn vantage_samples(&self) -> Result<Vec<ProbeSamples>> {
        // One item per vantage point: a handful, never near a page.
        self.partition(SAMPLES_PK, 100, false)
            .await?
            .into_iter()
            .filter_map(|mut item| item.remove("samples"))
            .map(|document| {
                serde_dynamo::from_attribute_value(document)
                    .map_err(|e| Error::CorruptState(format!("probe samples: {e}")))
            })
            .collect()
    }

    async fn put_samples(&self, samples: &ProbeSamples) -> Result<()> {
        let mut item = samples_key(&samples.vantage);
        let document = serde_dynamo::to_attribute_value(samples)
            .map_err(|e| Error::CorruptState(format!("cannot encode probe samples: {e}")))?;
        item.insert("samples".into(), document);
        self.put(item).await
    }

    async fn claim_run(&self, lease: &RunLease) -> Result<bool> {
        let mut item = lease_key();
        item.insert("owner".into(), AttributeValue::S(lease.owner.clone()));
        item.insert("until".into(), AttributeValue::N(lease.until.to_string()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #until < :now OR #owner = :owner")
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", AttributeValue::N(lease.now.to_string()))
            .expression_attribute_values(":owner", AttributeValue::S(lease.owner.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => lost_race_or(self.aws("PutItem", &e)),
        }
    }

    async fn end_run(&self, lease: &RunLease) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(lease_key()))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", AttributeValue::S(lease.owner.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match lost_race_or(self.aws("DeleteItem", &e)) {
                // Lapsed and taken by another run, or already given back.
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
        }
    }
}

fn samples_key(vantage: &Region) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(SAMPLES_PK.into())),
        ("sk".to_owned(), AttributeValue::S(vantage.to_string())),
    ])
}

fn lease_key() -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(LEASE_PK.into())),
        ("sk".to_owned(), AttributeValue::S(LEASE_SK.into())),
    ])
}

fn outbox_key(notice: &Notice) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(OUTBOX_PK.into())),
        (
            "sk".to_owned(),
            AttributeValue::S(format!("{:020}#{}", notice.at, notice.id)),
        ),
    ])
}

/// A failed condition, or another region's write to the same item in the same instant,
/// means another writer won: the caller re-reads and decides again (bounded).
fn lost_race_or(err: AwsError) -> Result<bool> {
    if matches!(
        err.kind,
        ErrorKind::ConditionFailed | ErrorKind::WriteConflict
    ) {
        Ok(false)
    } else {
        Err(Error::Aws(err))
    }
}

/// The size DynamoDB counts for an attribute value, as its documentation sizes items: a
/// string's UTF-8 bytes, a number's about one byte per two significant digits plus one, a
/// map or list three bytes plus each member (a map's names too) plus one byte each.
pub fn attribute_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            let digits = n.chars().filter(char::is_ascii_digit).count();
            digits.div_ceil(2) + 1
        }
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(items) => 3 + items.iter().map(|i| 1 + attribute_bytes(i)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + attribute_bytes(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(items) => items.iter().map(String::len).sum(),
        AttributeValue::Ns(items) => items.len() * 21,
        AttributeValue::Bs(items) => items.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// The size of the control state item as `save` writes it (with the newest write tokens),
/// by DynamoDB's sizing.
pub fn state_item_bytes(state: &ControlState) -> Result<usize> {
    let writes: Vec<WriteToken> = (0..WRITES_KEPT).map(|_| WriteToken::fresh()).collect();
    let item = DynamoControlStore::state_item(u64::MAX, state, &writes)?;
    Ok(item.iter().map(|(k, v)| k.len() + attribute_bytes(v)).sum())
}
