use std::sync::Arc;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::clients::{RegionalClients, client_for};

use crate::error::AwsError;
use crate::ports::{EventBus, Notice};
use crate::region::Region;

/// The source every regionpilot event carries; rules match on it.
pub const SOURCE: &str = "regionpilot";

/// PutEvents on one bus (`EVENT_BUS_NAME`) in the control plane's region.
#[derive(Clone)]
pub struct EventBridgeBus {
    clients: Arc<RegionalClients<aws_sdk_eventbridge::Client>>,
    region: Region,
    bus: String,
}

impl EventBridgeBus {
    pub fn new(
        clients: Arc<RegionalClients<aws_sdk_eventbridge::Client>>,
        region: Region,
        bus: String,
    ) -> Self {
        EventBridgeBus {
            clients,
            region,
            bus,
        }
    }
}

impl EventBus for EventBridgeBus {
    async fn put(&self, notices: &[Notice]) -> Result<Vec<String>, AwsError> {
        const OP: &str = "PutEvents";
        let entries = notices.iter().map(|notice| {
            PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus)
                .source(SOURCE)
                .detail_type(&notice.detail_type)
                .detail(notice.detail.to_string())
                .build()
        });
        let client = client_for(&self.clients, "events", OP, &self.region)?;
        let out = client
            .put_events()
            .set_entries(Some(entries.collect()))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("events", OP, &self.region, &e)
                    .on(format!("the event bus {}", self.bus))
            })?;
        // Entries answer in request order; one with an error code was not put, and so is
        // one the answer does not mention at all.
        let entries = out.entries();
        Ok(notices
            .iter()
            .enumerate()
            .filter(|(i, _)| entries.get(*i).is_none_or(|e| e.error_code().is_some()))
            .map(|(_, notice)| notice.id.clone())
            .collect())
    }
}
