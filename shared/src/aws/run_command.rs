use super::clients::RegionalClients;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ssm::types::Target;

use super::clients::client_for;
use crate::config::GroupRef;
use crate::error::AwsError;
use crate::ports::{InvocationInfo, RunCommands, SentCommand};
use crate::region::Region;

/// The document every reload runs: a shell script on Linux instances.
pub const RELOAD_DOCUMENT: &str = "AWS-RunShellScript";
/// The tag Auto Scaling puts on every instance it launches; the command targets it.
pub const GROUP_TAG: &str = "tag:aws:autoscaling:groupName";
/// Half the group at a time: a reload that breaks the application cannot take every
/// instance down at once, and two waves still finish in seconds.
pub const MAX_CONCURRENCY: &str = "50%";
/// Stop sending once a quarter of the group has failed; the rest is refreshed.
pub const MAX_ERRORS: &str = "25%";

/// SSM Run Command, one client per region.
#[derive(Clone)]
pub struct SsmRunCommands {
    clients: Arc<RegionalClients<aws_sdk_ssm::Client>>,
}

impl SsmRunCommands {
    pub fn new(clients: Arc<RegionalClients<aws_sdk_ssm::Client>>) -> Self {
        SsmRunCommands { clients }
    }
}

impl RunCommands for SsmRunCommands {
    async fn send(
        &self,
        group: &GroupRef,
        instances: Option<&[String]>,
        commands: &[String],
        timeout: Duration,
        comment: &str,
    ) -> Result<SentCommand, AwsError> {
        const OP: &str = "SendCommand";
        let client = client_for(&self.clients, "ssm", OP, &group.region)?;
        let seconds = timeout.as_secs().max(1);
        let request = client.send_command().document_name(RELOAD_DOCUMENT);
        let request = match instances {
            Some(ids) => request.set_instance_ids(Some(ids.to_vec())),
            None => request.targets(Target::builder().key(GROUP_TAG).values(&group.name).build()),
        };
        let out = request
            .parameters("commands", commands.to_vec())
            .parameters("executionTimeout", vec![seconds.to_string()])
            // SSM's delivery timeout: 30 s at the least.
            .timeout_seconds(i32::try_from(seconds.max(30)).unwrap_or(i32::MAX))
            .max_concurrency(MAX_CONCURRENCY)
            .max_errors(MAX_ERRORS)
            // SSM caps the comment at 100 characters.
            .comment(crate::text::clip(comment, 99))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ssm", OP, &group.region, &e).on(group.resource()))?;
        let command = out.command.as_ref();
        let Some(command_id) = command.and_then(|c| c.command_id()) else {
            // Nothing to follow: say so rather than follow an empty id.
            return Err(AwsError {
                resource: None,
                service: "ssm",
                operation: OP,
                region: group.region.clone(),
                kind: crate::error::ErrorKind::Other,
                code: None,
                message: "SendCommand answered without a command id".into(),
            });
        };
        Ok(SentCommand {
            command_id: command_id.to_owned(),
            target_count: command.map_or(0, |c| u32::try_from(c.target_count()).unwrap_or(0)),
        })
    }

    async fn invocations(
        &self,
        region: &Region,
        command_id: &str,
    ) -> Result<Vec<InvocationInfo>, AwsError> {
        const OP: &str = "ListCommandInvocations";
        let client = client_for(&self.clients, "ssm", OP, region)?;
        let mut all = Vec::new();
        let mut token = None;
        // Bounded: 50 per page, 40 pages is 2,000 instances.
        for _ in 0..40 {
            let out = client
                .list_command_invocations()
                .command_id(command_id)
                .max_results(50)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk("ssm", OP, region, &e)
                        .on(format!("Run Command {command_id}"))
                })?;
            all.extend(
                out.command_invocations
                    .unwrap_or_default()
                    .into_iter()
                    .map(|i| InvocationInfo {
                        instance_id: i.instance_id().unwrap_or_default().to_owned(),
                        status: i
                            .status()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    }),
            );
            token = out.next_token;
            if token.is_none() {
                break;
            }
        }
        Ok(all)
    }
}
