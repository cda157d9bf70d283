use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use crate::error::{AwsError, Error, ErrorKind, Result};
use crate::ports::ControlStore;
use crate::region::Region;
use crate::state::{ControlState, HistoryRecord, Versioned};

const STATE_PK: &str = "control";
const STATE_SK: &str = "state";
const HISTORY_PK: &str = "history";

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

    fn state_item(
        &self,
        version: u64,
        state: &ControlState,
    ) -> Result<HashMap<String, AttributeValue>> {
        let document: AttributeValue = serde_dynamo::to_attribute_value(state)
            .map_err(|e| Error::CorruptState(format!("cannot encode state: {e}")))?;
        Ok(HashMap::from([
            ("pk".to_owned(), AttributeValue::S(STATE_PK.into())),
            ("sk".to_owned(), AttributeValue::S(STATE_SK.into())),
            ("version".to_owned(), AttributeValue::N(version.to_string())),
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

impl ControlStore for DynamoControlStore {
    async fn load(&self) -> Result<Option<Versioned<ControlState>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(STATE_PK.into()))
            .key("sk", AttributeValue::S(STATE_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("GetItem", &e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
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
        Ok(Some(Versioned { version, value }))
    }

    async fn save(
        &self,
        expected: u64,
        state: &ControlState,
        history: Option<&HistoryRecord>,
    ) -> Result<bool> {
        let item = self.state_item(expected + 1, state)?;
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
        let Some(record) = history else {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .send()
                .await;
            return match result {
                Ok(_) => Ok(true),
                Err(e) => lost_race_or(self.aws("PutItem", &e)),
            };
        };
        let mut history_item: HashMap<String, AttributeValue> = serde_dynamo::to_item(record)
            .map_err(|e| Error::CorruptState(format!("cannot encode history: {e}")))?;
        history_item.insert("pk".into(), AttributeValue::S(HISTORY_PK.into()));
        history_item.insert(
            "sk".into(),
            AttributeValue::S(history_sort_key(record.epoch)),
        );
        let put_state = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .build()
            .map_err(|e| Error::CorruptState(e.to_string()))?;
        let put_history = Put::builder()
            .table_name(&self.table)
            .set_item(Some(history_item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::CorruptState(e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_state).build())
            .transact_items(TransactWriteItem::builder().put(put_history).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => lost_race_or(self.aws("TransactWriteItems", &e)),
        }
    }

    async fn history(&self, limit: usize) -> Result<Vec<HistoryRecord>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(HISTORY_PK.into()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("Query", &e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| Error::CorruptState(format!("history: {e}")))
            })
            .collect()
    }
}

/// A failed condition (or a transaction cancelled by one) means another writer won.
fn lost_race_or(err: AwsError) -> Result<bool> {
    if err.kind == ErrorKind::ConditionFailed {
        Ok(false)
    } else {
        Err(Error::Aws(err))
    }
}
