use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::config::{Config, RETRY_INITIAL_BACKOFF, RETRY_MAX_BACKOFF};
use crate::region::Region;

type Builder<C> = Box<dyn Fn(&Region) -> C + Send + Sync>;

/// One client of a service per region, each built the first time it is used and then kept
/// for every later invocation of a warm function. A cold start pays only for the clients
/// its invocation calls: `status` builds none of the Auto Scaling or EventBridge clients a
/// switch needs, and a probe builds only its DynamoDB clients.
pub struct RegionalClients<C> {
    slots: BTreeMap<Region, OnceLock<C>>,
    build: Option<Builder<C>>,
}

impl<C> RegionalClients<C> {
    /// Clients for `regions`, built by `build` on first use.
    pub fn lazy(
        regions: impl IntoIterator<Item = Region>,
        build: impl Fn(&Region) -> C + Send + Sync + 'static,
    ) -> Self {
        RegionalClients {
            slots: regions.into_iter().map(|r| (r, OnceLock::new())).collect(),
            build: Some(Box::new(build)),
        }
    }

    /// The client for `region`; `None` for a region no client is configured for.
    pub fn get(&self, region: &Region) -> Option<&C> {
        let slot = self.slots.get(region)?;
        match &self.build {
            Some(build) => Some(slot.get_or_init(|| build(region))),
            // Prebuilt clients only: a region without one has none.
            None => slot.get(),
        }
    }
}

/// Clients built already (tests hand in mocked clients this way).
impl<C> From<BTreeMap<Region, C>> for RegionalClients<C> {
    fn from(clients: BTreeMap<Region, C>) -> Self {
        RegionalClients {
            slots: clients
                .into_iter()
                .map(|(region, client)| (region, OnceLock::from(client)))
                .collect(),
            build: None,
        }
    }
}

/// Every client the functions use, shared by all invocations of a warm function.
#[derive(Clone)]
pub struct AwsClients {
    pub ssm: Arc<RegionalClients<aws_sdk_ssm::Client>>,
    pub autoscaling: Arc<RegionalClients<aws_sdk_autoscaling::Client>>,
    /// DynamoDB clients for probes: one attempt, no retry, the probe timeout.
    pub probe: Arc<RegionalClients<aws_sdk_dynamodb::Client>>,
    /// The control table's client, in the function's own region: every invocation reads
    /// the control state, so it is built at init.
    pub control: aws_sdk_dynamodb::Client,
    /// EventBridge in the function's own region: one attempt, so a failing bus costs one
    /// call timeout and the notice is held for the verifier instead.
    pub events: Arc<RegionalClients<aws_sdk_eventbridge::Client>>,
    /// One client per ARC cluster endpoint (named by its region), as the probe's: one
    /// attempt under the probe timeout, so a dead endpoint costs one probe timeout before
    /// the next is tried. None without `TRAFFIC_SIGNAL=routing-control`.
    pub routing: Arc<RegionalClients<aws_sdk_route53recoverycluster::Client>>,
    /// The shared configuration (credentials, timeouts, retries), the endpoint overrides
    /// and the regions, for an adapter that builds its own clients ([`Self::regional`]).
    base: SdkConfig,
    endpoints: Arc<BTreeMap<Region, String>>,
    regions: Vec<Region>,
}

impl AwsClients {
    /// One client per region for a service whose adapter builds its own, with the same
    /// timeouts and retries as every other client and the region's endpoint override:
    /// `build` makes a client from the configuration placed in the region and the
    /// override, if any. Built on first use, as the others are.
    pub fn regional<C: Send + Sync + 'static>(
        &self,
        build: fn(&SdkConfig, Option<&str>) -> C,
    ) -> Arc<RegionalClients<C>> {
        let base = self.base.clone();
        let endpoints = self.endpoints.clone();
        Arc::new(RegionalClients::lazy(
            self.regions.clone(),
            move |region: &Region| {
                build(
                    &in_region(&base, region),
                    endpoints.get(region).map(String::as_str),
                )
            },
        ))
    }
}

/// The HTTP client every AWS client uses: rustls over ring (see the workspace
/// `Cargo.toml`), for AWS's endpoints over HTTPS and the local rig's over plain HTTP.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Loads the shared configuration (credentials are resolved on the first call) and
/// prepares every client. Endpoints: `REGION_ENDPOINTS` wins per region; otherwise the
/// standard `AWS_ENDPOINT_URL*` variables and then AWS apply.
pub async fn build_clients(config: &Config) -> AwsClients {
    let t = &config.timeouts;
    let base = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
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
    let events_base = base
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    let endpoints = Arc::new(config.region_endpoints.clone());
    let regions: Vec<Region> = config.client_regions().into_iter().collect();

    // One builder per service: the shared config placed in the region, then that region's
    // endpoint override if there is one.
    macro_rules! regional {
        ($service:ident, $base:expr, $regions:expr) => {{
            let base = $base.clone();
            let endpoints = endpoints.clone();
            Arc::new(RegionalClients::lazy($regions, move |region: &Region| {
                let mut builder = $service::config::Builder::from(&in_region(&base, region));
                if let Some(url) = endpoints.get(region) {
                    builder = builder.endpoint_url(url);
                }
                $service::Client::from_conf(builder.build())
            }))
        }};
    }
    // The control table: in this function's region, or the control stack's for a
    // regional stack's probe (CONTROL_TABLE_REGION).
    let dynamodb = regional!(aws_sdk_dynamodb, base, [config.control_region.clone()]);
    let control = dynamodb
        .get(&config.control_region)
        .cloned()
        .unwrap_or_else(|| aws_sdk_dynamodb::Client::new(&base));
    let cluster: std::collections::BTreeMap<Region, String> = config
        .routing_controls
        .iter()
        .flat_map(|c| &c.endpoints)
        .map(|e| (e.region.clone(), e.url.clone()))
        .collect();
    let routing = {
        let base = probe_base.clone();
        let urls = cluster.clone();
        Arc::new(RegionalClients::lazy(
            cluster.into_keys(),
            move |region: &Region| {
                let mut builder = aws_sdk_route53recoverycluster::config::Builder::from(
                    &in_region(&base, region),
                );
                if let Some(url) = urls.get(region) {
                    builder = builder.endpoint_url(url);
                }
                aws_sdk_route53recoverycluster::Client::from_conf(builder.build())
            },
        ))
    };
    AwsClients {
        routing,
        ssm: regional!(aws_sdk_ssm, base, regions.clone()),
        autoscaling: regional!(aws_sdk_autoscaling, base, regions.clone()),
        probe: regional!(aws_sdk_dynamodb, probe_base, regions.clone()),
        control,
        events: regional!(
            aws_sdk_eventbridge,
            events_base,
            [config.own_region.clone()]
        ),
        base,
        endpoints,
        regions,
    }
}

fn in_region(base: &SdkConfig, region: &Region) -> SdkConfig {
    base.to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

/// The client for `region`, or an error naming it (only reachable with a bug in wiring).
pub(crate) fn client_for<'a, T>(
    clients: &'a RegionalClients<T>,
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
