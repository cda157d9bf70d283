//! Operators' events read back on the rig as a subscriber would see them: an EventBridge
//! rule on source `regionpilot` with an SQS queue as its target, in the control region
//! (the template routes the same rule to an SNS topic; moto delivers to SQS targets).

use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::Target;
use serde_json::{Value, json};

use crate::Stage;

/// One event as it reached the queue.
#[derive(Debug, Clone)]
pub struct Received {
    pub detail_type: String,
    pub source: String,
    pub detail: Value,
}

pub struct EventCapture {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    seen: Vec<Received>,
}

impl EventCapture {
    /// Creates the queue and the rule in the stage's control region.
    pub async fn subscribe(stage: &Stage) -> EventCapture {
        let region = &stage.world.control_region;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(regionpilot::aws::http_client())
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "rig", "rig", None, None, "rig",
            ))
            .region(aws_config::Region::new(region.clone()))
            .endpoint_url(stage.rig.url(region))
            .load()
            .await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let events = aws_sdk_eventbridge::Client::new(&config);
        let queue_url = sqs
            .create_queue()
            .queue_name("regionpilot-events")
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn");
        events
            .put_rule()
            .name("regionpilot-events")
            .event_pattern(json!({"source": ["regionpilot"]}).to_string())
            .send()
            .await
            .expect("put rule");
        events
            .put_targets()
            .rule("regionpilot-events")
            .targets(
                Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("put targets");
        EventCapture {
            sqs,
            queue_url,
            seen: Vec::new(),
        }
    }

    /// Everything received so far, after draining the queue for up to `wait` or until an
    /// event of `detail_type` has arrived.
    pub async fn until(&mut self, detail_type: &str, wait: Duration) -> &[Received] {
        let started = Instant::now();
        loop {
            self.drain().await;
            if self.seen.iter().any(|e| e.detail_type == detail_type) || started.elapsed() > wait {
                return &self.seen;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The events of one detail-type received so far (drains the queue first).
    pub async fn of(&mut self, detail_type: &str) -> Vec<Received> {
        self.drain().await;
        self.seen
            .iter()
            .filter(|e| e.detail_type == detail_type)
            .cloned()
            .collect()
    }

    async fn drain(&mut self) {
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive messages");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return;
            }
            for message in messages {
                let event: Value =
                    serde_json::from_str(message.body().unwrap_or("{}")).expect("event JSON");
                self.seen.push(Received {
                    detail_type: event["detail-type"].as_str().unwrap_or("").to_owned(),
                    source: event["source"].as_str().unwrap_or("").to_owned(),
                    detail: event["detail"].clone(),
                });
                if let Some(handle) = message.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete message");
                }
            }
        }
    }
}
