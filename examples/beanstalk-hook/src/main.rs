//! The hook's Lambda entry: configuration and clients once per cold start, then one
//! [`beanstalk_hook::invoke`] per invocation.

use std::collections::BTreeMap;

use beanstalk_hook::{Config, SdkBeanstalk, config_loader, init_tracing, invoke};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let sdk = config_loader().load().await;
    let port = SdkBeanstalk::new(&sdk, config.regions(), &BTreeMap::new());
    tracing::info!(environments = %config.describe(), variable = %config.variable, "beanstalk hook ready");
    let (port, config) = (&port, &config);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        invoke(port, config, event).await
    }))
    .await
}
