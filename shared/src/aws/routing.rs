use std::sync::Arc;

use aws_sdk_route53recoverycluster::types::RoutingControlState;

use super::clients::{RegionalClients, client_for};
use crate::error::AwsError;
use crate::ports::RoutingControls;
use crate::region::Region;

const SERVICE: &str = "route53-recovery-cluster";

/// An Amazon ARC cluster's data plane: one client per cluster endpoint (named by its
/// region), each with one attempt under the probe timeout (`build_clients`).
#[derive(Clone)]
pub struct ArcRoutingControls {
    clients: Arc<RegionalClients<aws_sdk_route53recoverycluster::Client>>,
}

impl ArcRoutingControls {
    pub fn new(clients: Arc<RegionalClients<aws_sdk_route53recoverycluster::Client>>) -> Self {
        ArcRoutingControls { clients }
    }
}

fn state(on: bool) -> RoutingControlState {
    if on {
        RoutingControlState::On
    } else {
        RoutingControlState::Off
    }
}

impl RoutingControls for ArcRoutingControls {
    async fn set(&self, endpoint: &Region, states: &[(String, bool)]) -> Result<(), AwsError> {
        const OPERATION: &str = "UpdateRoutingControlState";
        let client = client_for(&self.clients, SERVICE, OPERATION, endpoint)?;
        // One control per call: the action the template grants, on exactly these ARNs.
        for (arn, on) in states {
            client
                .update_routing_control_state()
                .routing_control_arn(arn)
                .routing_control_state(state(*on))
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk(SERVICE, OPERATION, endpoint, &e)
                        .on(format!("the routing control {arn}"))
                })?;
        }
        Ok(())
    }

    async fn get(&self, endpoint: &Region, arn: &str) -> Result<bool, AwsError> {
        const OPERATION: &str = "GetRoutingControlState";
        let client = client_for(&self.clients, SERVICE, OPERATION, endpoint)?;
        let out = client
            .get_routing_control_state()
            .routing_control_arn(arn)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(SERVICE, OPERATION, endpoint, &e)
                    .on(format!("the routing control {arn}"))
            })?;
        Ok(out.routing_control_state() == &RoutingControlState::On)
    }
}
