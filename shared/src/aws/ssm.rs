use super::clients::RegionalClients;
use std::sync::Arc;

use aws_sdk_ssm::types::ParameterType;

use super::clients::client_for;
use crate::error::{AwsError, ErrorKind};
use crate::ports::ParameterStore;
use crate::region::Region;

/// The active-region parameter in Parameter Store, one copy per region.
#[derive(Clone)]
pub struct SsmParameters {
    clients: Arc<RegionalClients<aws_sdk_ssm::Client>>,
}

impl SsmParameters {
    pub fn new(clients: Arc<RegionalClients<aws_sdk_ssm::Client>>) -> Self {
        SsmParameters { clients }
    }
}

impl ParameterStore for SsmParameters {
    async fn put(
        &self,
        region: &Region,
        name: &str,
        value: &str,
        description: &str,
    ) -> Result<(), AwsError> {
        let client = client_for(&self.clients, "ssm", "PutParameter", region)?;
        client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .description(description)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                AwsError::from_sdk("ssm", "PutParameter", region, &e)
                    .on(format!("the parameter {name}"))
            })
    }

    async fn get(&self, region: &Region, name: &str) -> Result<Option<String>, AwsError> {
        let client = client_for(&self.clients, "ssm", "GetParameter", region)?;
        match client.get_parameter().name(name).send().await {
            Ok(out) => Ok(out.parameter.and_then(|p| p.value)),
            Err(e) => {
                let err = AwsError::from_sdk("ssm", "GetParameter", region, &e)
                    .on(format!("the parameter {name}"));
                if err.kind == ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }
}
