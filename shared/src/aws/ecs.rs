//! ECS services and their Application Auto Scaling targets (`ECS_SERVICES`), one client
//! of each per region with the same timeouts and retries as every other client.

use std::sync::Arc;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_smithy_types::DateTime;

use super::clients::{AwsClients, RegionalClients, client_for};
use crate::config::ServiceRef;
use crate::error::{AwsError, ErrorKind};
use crate::ports::{DeploymentInfo, EcsServices, ServiceInfo};
use crate::state::Millis;

/// What the switch and the verifier call here, granted only when `EcsServices` names
/// services: their scaling targets (DescribeScalableTargets, which has no resource-level
/// permission), the services read and updated. Kept beside the calls, as
/// `permissions.rs` keeps the others.
pub const SWITCH_ACTIONS: &[&str] = &[
    "ecs:DescribeServices",
    "ecs:UpdateService",
    "application-autoscaling:DescribeScalableTargets",
];

/// What `status` calls here (every function answers it).
pub const STATUS_ACTIONS: &[&str] = &["ecs:DescribeServices"];

#[derive(Clone)]
pub struct AwsEcsServices {
    ecs: Arc<RegionalClients<aws_sdk_ecs::Client>>,
    scaling: Arc<RegionalClients<aws_sdk_applicationautoscaling::Client>>,
}

impl AwsEcsServices {
    pub fn new(clients: &AwsClients) -> Self {
        AwsEcsServices {
            ecs: clients.regional(|sdk, endpoint| {
                let mut builder = aws_sdk_ecs::config::Builder::from(sdk);
                if let Some(url) = endpoint {
                    builder = builder.endpoint_url(url);
                }
                aws_sdk_ecs::Client::from_conf(builder.build())
            }),
            scaling: clients.regional(|sdk, endpoint| {
                let mut builder = aws_sdk_applicationautoscaling::config::Builder::from(sdk);
                if let Some(url) = endpoint {
                    builder = builder.endpoint_url(url);
                }
                aws_sdk_applicationautoscaling::Client::from_conf(builder.build())
            }),
        }
    }

    /// ECS names a missing service or cluster its own way; they are all "not found".
    fn error<E, R>(
        operation: &'static str,
        service: &ServiceRef,
        e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> AwsError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let mut error =
            AwsError::from_sdk("ecs", operation, &service.region, e).on(service.resource());
        match error.code.as_deref() {
            Some(
                "ServiceNotFoundException"
                | "ServiceNotActiveException"
                | "ClusterNotFoundException",
            ) => {
                error.kind = ErrorKind::NotFound;
            }
            Some("ServerException") => error.kind = ErrorKind::ServerError,
            _ => {}
        }
        error
    }
}

fn millis(at: Option<&DateTime>) -> Option<Millis> {
    at.and_then(|t| t.to_millis().ok())
        .and_then(|ms| u64::try_from(ms).ok())
}

fn deployment(d: &aws_sdk_ecs::types::Deployment) -> DeploymentInfo {
    DeploymentInfo {
        id: d.id.clone().unwrap_or_default(),
        status: d.status.clone().unwrap_or_default(),
        rollout_state: d.rollout_state.as_ref().map(|s| s.as_str().to_owned()),
        reason: d.rollout_state_reason.clone(),
        created_at: millis(d.created_at.as_ref()),
        desired: d.desired_count,
        running: d.running_count,
        pending: d.pending_count,
        failed_tasks: d.failed_tasks,
    }
}

impl EcsServices for AwsEcsServices {
    async fn describe(&self, service: &ServiceRef) -> Result<Option<ServiceInfo>, AwsError> {
        const OP: &str = "DescribeServices";
        let client = client_for(&self.ecs, "ecs", OP, &service.region)?;
        let out = client
            .describe_services()
            .cluster(&service.cluster)
            .services(&service.service)
            .send()
            .await
            .map_err(|e| Self::error(OP, service, &e))?;
        // A missing service comes back as a failure (`MISSING`); a deleted one as
        // `INACTIVE`, which cannot be updated.
        let found = out
            .services
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.status.as_deref() != Some("INACTIVE"));
        Ok(found.map(|s| ServiceInfo {
            desired: s.desired_count,
            running: s.running_count,
            pending: s.pending_count,
            deployments: s
                .deployments
                .unwrap_or_default()
                .iter()
                .map(deployment)
                .collect(),
        }))
    }

    async fn scaling_bounds(&self, service: &ServiceRef) -> Result<Option<(i32, i32)>, AwsError> {
        const OP: &str = "DescribeScalableTargets";
        let client = client_for(
            &self.scaling,
            "application-autoscaling",
            OP,
            &service.region,
        )?;
        let out = client
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_ids(service.scaling_resource_id())
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("application-autoscaling", OP, &service.region, &e)
                    .on(service.resource())
            })?;
        Ok(out
            .scalable_targets
            .unwrap_or_default()
            .first()
            .map(|t| (t.min_capacity, t.max_capacity)))
    }

    async fn set_desired(&self, service: &ServiceRef, desired: i32) -> Result<(), AwsError> {
        const OP: &str = "UpdateService";
        let client = client_for(&self.ecs, "ecs", OP, &service.region)?;
        client
            .update_service()
            .cluster(&service.cluster)
            .service(&service.service)
            .desired_count(desired)
            .send()
            .await
            .map_err(|e| Self::error(OP, service, &e))?;
        Ok(())
    }

    async fn force_deployment(&self, service: &ServiceRef) -> Result<DeploymentInfo, AwsError> {
        const OP: &str = "UpdateService";
        let client = client_for(&self.ecs, "ecs", OP, &service.region)?;
        let out = client
            .update_service()
            .cluster(&service.cluster)
            .service(&service.service)
            .force_new_deployment(true)
            .send()
            .await
            .map_err(|e| Self::error(OP, service, &e))?;
        out.service
            .and_then(|s| {
                s.deployments
                    .unwrap_or_default()
                    .iter()
                    .find(|d| d.status.as_deref() == Some("PRIMARY"))
                    .map(deployment)
            })
            .ok_or_else(|| AwsError {
                resource: Some(service.resource().into()),
                service: "ecs",
                operation: OP,
                region: service.region.clone(),
                kind: ErrorKind::Other,
                code: None,
                message: "UpdateService answered without a primary deployment".into(),
            })
    }
}
