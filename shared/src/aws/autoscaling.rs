use super::clients::RegionalClients;
use std::sync::Arc;

use aws_sdk_autoscaling::types::{RefreshPreferences as SdkPreferences, RefreshStrategy};

use super::clients::client_for;
use crate::config::{GroupRef, RefreshPreferences};
use crate::error::AwsError;
use crate::ports::{GroupInfo, RefreshInfo, ScalingGroups};

#[derive(Clone)]
pub struct AwsScalingGroups {
    clients: Arc<RegionalClients<aws_sdk_autoscaling::Client>>,
}

impl AwsScalingGroups {
    pub fn new(clients: Arc<RegionalClients<aws_sdk_autoscaling::Client>>) -> Self {
        AwsScalingGroups { clients }
    }
}

impl ScalingGroups for AwsScalingGroups {
    async fn refreshes(&self, group: &GroupRef) -> Result<Vec<RefreshInfo>, AwsError> {
        const OP: &str = "DescribeInstanceRefreshes";
        let client = client_for(&self.clients, "autoscaling", OP, &group.region)?;
        // One page (up to 50, newest first) is all we ever need: the active refresh, if
        // any, and the ones since the latest transition.
        let out = client
            .describe_instance_refreshes()
            .auto_scaling_group_name(&group.name)
            .max_records(50)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("autoscaling", OP, &group.region, &e).on(group.resource())
            })?;
        Ok(out
            .instance_refreshes
            .unwrap_or_default()
            .into_iter()
            .map(|r| RefreshInfo {
                id: r.instance_refresh_id.unwrap_or_default(),
                status: r.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                started_at: r
                    .start_time
                    .and_then(|t| t.to_millis().ok())
                    .and_then(|ms| u64::try_from(ms).ok()),
                percentage_complete: r.percentage_complete,
            })
            .collect())
    }

    async fn start_refresh(
        &self,
        group: &GroupRef,
        preferences: &RefreshPreferences,
    ) -> Result<String, AwsError> {
        const OP: &str = "StartInstanceRefresh";
        let client = client_for(&self.clients, "autoscaling", OP, &group.region)?;
        let out = client
            .start_instance_refresh()
            .auto_scaling_group_name(&group.name)
            .strategy(RefreshStrategy::Rolling)
            .preferences(
                SdkPreferences::builder()
                    .min_healthy_percentage(preferences.min_healthy_percent)
                    .instance_warmup(
                        i32::try_from(preferences.warmup.as_secs()).unwrap_or(i32::MAX),
                    )
                    // Every instance must restart to read the new parameter, even when its
                    // launch template already matches.
                    .skip_matching(false)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("autoscaling", OP, &group.region, &e).on(group.resource())
            })?;
        Ok(out.instance_refresh_id.unwrap_or_default())
    }

    async fn cancel_refresh(&self, group: &GroupRef) -> Result<(), AwsError> {
        const OP: &str = "CancelInstanceRefresh";
        let client = client_for(&self.clients, "autoscaling", OP, &group.region)?;
        client
            .cancel_instance_refresh()
            .auto_scaling_group_name(&group.name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                AwsError::from_sdk("autoscaling", OP, &group.region, &e).on(group.resource())
            })
    }

    async fn describe(&self, group: &GroupRef) -> Result<Option<GroupInfo>, AwsError> {
        const OP: &str = "DescribeAutoScalingGroups";
        let client = client_for(&self.clients, "autoscaling", OP, &group.region)?;
        let out = client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&group.name)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("autoscaling", OP, &group.region, &e).on(group.resource())
            })?;
        Ok(out
            .auto_scaling_groups
            .unwrap_or_default()
            .into_iter()
            .find(|g| g.auto_scaling_group_name() == Some(group.name.as_str()))
            .map(|g| {
                let in_service = g
                    .instances()
                    .iter()
                    .filter(|i| {
                        i.lifecycle_state()
                            .is_some_and(|s| s.as_str() == "InService")
                    })
                    .count();
                GroupInfo {
                    min: g.min_size().unwrap_or(0),
                    desired: g.desired_capacity().unwrap_or(0),
                    max: g.max_size().unwrap_or(0),
                    instances: u32::try_from(g.instances().len()).unwrap_or(u32::MAX),
                    in_service: u32::try_from(in_service).unwrap_or(u32::MAX),
                    members: g
                        .instances()
                        .iter()
                        .filter_map(|i| {
                            Some(crate::ports::Member {
                                id: i.instance_id()?.to_owned(),
                                in_service: i
                                    .lifecycle_state()
                                    .is_some_and(|s| s.as_str() == "InService"),
                            })
                        })
                        .collect(),
                }
            }))
    }

    async fn set_desired(&self, group: &GroupRef, desired: i32) -> Result<(), AwsError> {
        const OP: &str = "SetDesiredCapacity";
        let client = client_for(&self.clients, "autoscaling", OP, &group.region)?;
        client
            .set_desired_capacity()
            .auto_scaling_group_name(&group.name)
            .desired_capacity(desired)
            // A failover does not wait for a scaling cooldown.
            .honor_cooldown(false)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                AwsError::from_sdk("autoscaling", OP, &group.region, &e).on(group.resource())
            })
    }
}
