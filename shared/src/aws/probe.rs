use super::clients::RegionalClients;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::config::HealthKey;
use crate::error::AwsError;
use crate::ports::{HealthProbe, ProbeResult};
use crate::region::Region;

/// The pre-flight probe: a strongly consistent GetItem of the canary item. The client has
/// no retries and the probe timeout; a hard deadline on top bounds even a stuck connect.
#[derive(Clone)]
pub struct DynamoHealthProbe {
    clients: Arc<RegionalClients<aws_sdk_dynamodb::Client>>,
    table: String,
    key: HealthKey,
    deadline: Duration,
}

impl DynamoHealthProbe {
    pub fn new(
        clients: Arc<RegionalClients<aws_sdk_dynamodb::Client>>,
        table: String,
        key: HealthKey,
        deadline: Duration,
    ) -> Self {
        DynamoHealthProbe {
            clients,
            table,
            key,
            deadline,
        }
    }

    /// How errors name the table.
    fn resource(&self) -> String {
        format!("the health table {}", self.table)
    }

    async fn read(&self, region: &Region) -> Result<bool, AwsError> {
        const OP: &str = "GetItem";
        let client = super::clients::client_for(&self.clients, "dynamodb", OP, region)?;
        let call = client
            .get_item()
            .table_name(&self.table)
            .key(
                &self.key.attribute,
                AttributeValue::S(self.key.value.clone()),
            )
            .consistent_read(true)
            .send();
        match tokio::time::timeout(self.deadline, call).await {
            Ok(Ok(out)) => Ok(out.item.is_some()),
            Ok(Err(e)) => Err(AwsError::from_sdk("dynamodb", OP, region, &e).on(self.resource())),
            Err(_) => Err(AwsError::deadline("dynamodb", OP, region).on(self.resource())),
        }
    }
}

impl HealthProbe for DynamoHealthProbe {
    async fn check(&self, region: &Region) -> ProbeResult {
        let started = Instant::now();
        let result = self.read(region).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(item_found) => ProbeResult {
                region: region.clone(),
                reachable: true,
                latency_ms,
                item_found,
                error_kind: None,
                error: None,
            },
            Err(e) => ProbeResult {
                region: region.clone(),
                // Only throttling means a live region we can use: it answered and told us
                // to slow down. A missing table, access denied or a server error (an
                // isolated replica of a multi-Region strongly consistent table answers
                // 5xx) is not a region to fail over to.
                reachable: e.kind == crate::error::ErrorKind::Throttled,
                latency_ms,
                item_found: false,
                error_kind: Some(e.kind),
                error: Some(e.to_string()),
            },
        }
    }
}

/// The heartbeat's key value: `regionpilot-heartbeat#<region>` under the canary's key
/// attribute, so it lives in the same replicated table the application uses.
fn heartbeat_key(of: &Region) -> String {
    // Matches permissions::HEALTH_TABLE_WRITES, the template's LeadingKeys condition.
    format!("regionpilot-heartbeat#{of}")
}

const WRITTEN_AT: &str = "written_at";

impl crate::ports::Heartbeats for DynamoHealthProbe {
    async fn write(&self, region: &Region, at: crate::state::Millis) -> Result<(), AwsError> {
        const OP: &str = "PutItem";
        let client = super::clients::client_for(&self.clients, "dynamodb", OP, region)?;
        let call = client
            .put_item()
            .table_name(&self.table)
            .item(
                &self.key.attribute,
                AttributeValue::S(heartbeat_key(region)),
            )
            .item(WRITTEN_AT, AttributeValue::N(at.to_string()))
            .item(
                "writer",
                AttributeValue::S("regionpilot health probe".into()),
            )
            .send();
        match tokio::time::timeout(self.deadline, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(AwsError::from_sdk("dynamodb", OP, region, &e).on(self.resource())),
            Err(_) => Err(AwsError::deadline("dynamodb", OP, region).on(self.resource())),
        }
    }

    async fn read(
        &self,
        in_region: &Region,
        of: &Region,
        consistent: bool,
    ) -> Result<Option<crate::state::Millis>, AwsError> {
        const OP: &str = "GetItem";
        let client = super::clients::client_for(&self.clients, "dynamodb", OP, in_region)?;
        let call = client
            .get_item()
            .table_name(&self.table)
            .key(&self.key.attribute, AttributeValue::S(heartbeat_key(of)))
            .consistent_read(consistent)
            .send();
        let out = match tokio::time::timeout(self.deadline, call).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                return Err(AwsError::from_sdk("dynamodb", OP, in_region, &e).on(self.resource()));
            }
            Err(_) => return Err(AwsError::deadline("dynamodb", OP, in_region).on(self.resource())),
        };
        Ok(out.item.and_then(|item| {
            item.get(WRITTEN_AT)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
        }))
    }
}
