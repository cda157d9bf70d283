use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::config::{Config, RETRY_INITIAL_BACKOFF, RETRY_MAX_BACKOFF};
use crate::region::Region;

/// One client per service and region, shared by all invocations of a warm function.
#[derive(Clone)]
pub struct AwsClients {
    pub ssm: Arc<BTreeMap<Region, aws_sdk_ssm::Client>>,
    pub autoscaling: Arc<BTreeMap<Region, aws_sdk_autoscaling::Client>>,
    pub dynamodb: Arc<BTreeMap<Region, aws_sdk_dynamodb::Client>>,
    /// DynamoDB clients for probes: one attempt, no retry, the probe timeout.
    pub probe: Arc<BTreeMap<Region, aws_sdk_dynamodb::Client>>,
    /// The control table's client, in the function's own region.
    pub control: aws_sdk_dynamodb::Client,
    /// EventBridge in the function's own region: one attempt, so a failing bus costs one
    /// call timeout and the notice is held for the verifier instead.
    pub events: aws_sdk_eventbridge::Client,
}

/// Loads credentials and builds every client once. Endpoints: `REGION_ENDPOINTS` wins per
/// region; otherwise the standard `AWS_ENDPOINT_URL*` variables and then AWS apply.
pub async fn build_clients(config: &Config) -> AwsClients {
    let t = &config.timeouts;
    let base = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(t.connect)
                .operation_attempt_timeout(t.call_attempt)
                .operation_timeout(t.call_budget())
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(t.call_max_attempts)
                .with_initial_backoff(RETRY_INITIAL_BACKOFF)
                .with_max_backoff(RETRY_MAX_BACKOFF),
        )
        .load()
        .await;
    let probe_base = base
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(t.connect.min(t.probe))
                .operation_attempt_timeout(t.probe)
                .operation_timeout(t.probe)
                .build(),
        )
        .build();

    let mut ssm = BTreeMap::new();
    let mut autoscaling = BTreeMap::new();
    let mut dynamodb = BTreeMap::new();
    let mut probe = BTreeMap::new();
    for region in config.client_regions() {
        let endpoint = config.region_endpoints.get(&region);
        let regional = in_region(&base, &region);
        let mut s = aws_sdk_ssm::config::Builder::from(&regional);
        let mut a = aws_sdk_autoscaling::config::Builder::from(&regional);
        let mut d = aws_sdk_dynamodb::config::Builder::from(&regional);
        let mut p = aws_sdk_dynamodb::config::Builder::from(&in_region(&probe_base, &region));
        if let Some(url) = endpoint {
            s = s.endpoint_url(url);
            a = a.endpoint_url(url);
            d = d.endpoint_url(url);
            p = p.endpoint_url(url);
        }
        ssm.insert(region.clone(), aws_sdk_ssm::Client::from_conf(s.build()));
        autoscaling.insert(
            region.clone(),
            aws_sdk_autoscaling::Client::from_conf(a.build()),
        );
        dynamodb.insert(
            region.clone(),
            aws_sdk_dynamodb::Client::from_conf(d.build()),
        );
        probe.insert(
            region.clone(),
            aws_sdk_dynamodb::Client::from_conf(p.build()),
        );
    }
    // client_regions() always contains own_region.
    let control = dynamodb
        .get(&config.own_region)
        .cloned()
        .unwrap_or_else(|| aws_sdk_dynamodb::Client::new(&base));
    let mut events = aws_sdk_eventbridge::config::Builder::from(&in_region(
        &base
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build(),
        &config.own_region,
    ));
    if let Some(url) = config.region_endpoints.get(&config.own_region) {
        events = events.endpoint_url(url);
    }
    AwsClients {
        events: aws_sdk_eventbridge::Client::from_conf(events.build()),
        ssm: Arc::new(ssm),
        autoscaling: Arc::new(autoscaling),
        dynamodb: Arc::new(dynamodb),
        probe: Arc::new(probe),
        control,
    }
}

fn in_region(base: &SdkConfig, region: &Region) -> SdkConfig {
    base.to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

/// The client for `region`, or an error naming it (only reachable with a bug in wiring).
pub(crate) fn client_for<'a, T>(
    clients: &'a BTreeMap<Region, T>,
    service: &'static str,
    operation: &'static str,
    region: &Region,
) -> Result<&'a T, crate::error::AwsError> {
    clients.get(region).ok_or_else(|| crate::error::AwsError {
        resource: None,
        service,
        operation,
        region: region.clone(),
        kind: crate::error::ErrorKind::Other,
        code: None,
        message: format!("no client configured for {region}"),
    })
}
