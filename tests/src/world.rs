//! The application's AWS resources on the rig: seeding them as a deployment would, and
//! reading them back for assertions. Talks to each emulated region over HTTP with the
//! same SDK the functions use.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};

use crate::rig::Rig;

pub const PARAMETER: &str = "/regionpilot-test/active-region";
pub const CONTROL_TABLE: &str = "regionpilot-control";
pub const HEALTH_TABLE: &str = "app-health";
pub const HEALTH_KEY: &str = "pk=canary";
pub const GROUP: &str = "app-asg";
/// The application's ECS service, `cluster/service`, where a test runs one.
pub const SERVICE: &str = "app/web";
/// The application's own replicated table (the drill's app simulator writes here).
pub const APP_TABLE: &str = "app-data";

pub struct RegionClients {
    pub ssm: aws_sdk_ssm::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub scaling: aws_sdk_applicationautoscaling::Client,
}

pub struct World {
    /// Ordered, home first.
    pub regions: Vec<String>,
    /// Where the control table lives and the functions "run" (`AWS_REGION`).
    pub control_region: String,
    pub clients: BTreeMap<String, RegionClients>,
    pub endpoints: String,
}

/// The functions' secret key on the rig: distinctive, so the tests can prove it never
/// reaches a log line.
pub const SECRET_ACCESS_KEY: &str = "rigSECRETkey/never-logged+0123456789abcdef";
pub const SESSION_TOKEN: &str = "rigSESSIONtoken/never-logged+fedcba9876543210";

/// Dummy credentials: the rig accepts any, and nothing ever leaves 127.0.0.1.
pub fn local_credentials() -> [(&'static str, &'static str); 3] {
    [
        ("AWS_ACCESS_KEY_ID", "AKIARIGLOCAL0000TEST"),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
    ]
}

impl World {
    pub async fn connect(rig: &Rig, regions: &[&str], control_region: &str) -> World {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .http_client(regionpilot::aws::http_client())
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "rig", "rig", None, None, "rig",
            ))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_timeout(Duration::from_secs(5))
                    .build(),
            )
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        let mut clients = BTreeMap::new();
        for region in rig.servers.keys() {
            let config = base
                .to_builder()
                .region(aws_config::Region::new(region.clone()))
                .endpoint_url(rig.url(region))
                .build();
            clients.insert(
                region.clone(),
                RegionClients {
                    ssm: aws_sdk_ssm::Client::new(&config),
                    autoscaling: aws_sdk_autoscaling::Client::new(&config),
                    dynamodb: aws_sdk_dynamodb::Client::new(&config),
                    ecs: aws_sdk_ecs::Client::new(&config),
                    scaling: aws_sdk_applicationautoscaling::Client::new(&config),
                },
            );
        }
        World {
            regions: regions.iter().map(|r| r.to_string()).collect(),
            control_region: control_region.to_owned(),
            clients,
            endpoints: rig.region_endpoints(),
        }
    }

    pub fn client(&self, region: &str) -> &RegionClients {
        &self.clients[region]
    }

    /// What `sam deploy` plus the app's own stack would have created: in every region the
    /// group `app-asg` with min 2, desired 2, max 4.
    pub async fn seed(&self) {
        self.seed_with(&[]).await;
    }

    /// [`World::seed`] with the group's `(region, min, desired, max)` chosen per region
    /// (pilot light: `[(home, 1, 10, 12), (standby, 1, 1, 12)]`); a region not listed gets
    /// min 2, desired 2, max 4. The parameter exists before the group, so the group's first
    /// instances start in service holding it.
    pub async fn seed_with(&self, capacities: &[(&str, i32, i32, i32)]) {
        let home = &self.regions[0];
        create_table(
            &self.client(&self.control_region).dynamodb,
            CONTROL_TABLE,
            &["pk", "sk"],
        )
        .await;
        // As the template deploys it (PointInTimeRecoveryEnabled); readiness checks it.
        self.set_control_table_pitr(true).await;
        // Every replica exists before the first replicated write, as with a global table.
        for region in &self.regions {
            create_table(&self.client(region).dynamodb, HEALTH_TABLE, &["pk"]).await;
            create_table(&self.client(region).dynamodb, APP_TABLE, &["pk"]).await;
        }
        for region in &self.regions {
            let (min, desired, max) = capacities
                .iter()
                .find(|(r, ..)| r == region)
                .map_or((2, 2, 4), |&(_, min, desired, max)| (min, desired, max));
            let c = self.client(region);
            c.dynamodb
                .put_item()
                .table_name(HEALTH_TABLE)
                .item("pk", AttributeValue::S("canary".into()))
                .item("note", AttributeValue::S("regionpilot canary".into()))
                .send()
                .await
                .expect("put canary");
            c.ssm
                .put_parameter()
                .name(PARAMETER)
                .value(home)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .expect("create parameter");
            c.autoscaling
                .create_launch_configuration()
                .launch_configuration_name("app-lc")
                .image_id("ami-12345678")
                .instance_type("t3.micro")
                .send()
                .await
                .expect("create launch configuration");
            c.autoscaling
                .create_auto_scaling_group()
                .auto_scaling_group_name(GROUP)
                .launch_configuration_name("app-lc")
                .min_size(min)
                .max_size(max)
                .desired_capacity(desired)
                .availability_zones(format!("{region}a"))
                .send()
                .await
                .expect("create auto scaling group");
        }
    }

    /// The application as ECS services too: in each `(region, desired, max)` the service
    /// `app/web` ([`SERVICE`]) running `desired` tasks, with an Application Auto Scaling
    /// target of 1 to `max` tasks when `max` is given. The parameter exists already, so
    /// the first tasks hold it.
    pub async fn seed_services(&self, services: &[(&str, i32, Option<i32>)]) {
        let (cluster, service) = SERVICE.split_once('/').expect("cluster/service");
        for &(region, desired, max) in services {
            let c = self.client(region);
            c.ecs
                .create_cluster()
                .cluster_name(cluster)
                .send()
                .await
                .expect("create cluster");
            c.ecs
                .register_task_definition()
                .family("web")
                .container_definitions(
                    aws_sdk_ecs::types::ContainerDefinition::builder()
                        .name("web")
                        .image("app:latest")
                        .memory(512)
                        .build(),
                )
                .send()
                .await
                .expect("register task definition");
            c.ecs
                .create_service()
                .cluster(cluster)
                .service_name(service)
                .task_definition("web")
                .desired_count(desired)
                .send()
                .await
                .expect("create service");
            // The rig models a service from its first read on: read it now, as deployed.
            self.service(region).await;
            if let Some(max) = max {
                c.scaling
                    .register_scalable_target()
                    .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
                    .scalable_dimension(
                        aws_sdk_applicationautoscaling::types::ScalableDimension::EcsServiceDesiredCount,
                    )
                    .resource_id(format!("service/{SERVICE}"))
                    .min_capacity(1)
                    .max_capacity(max)
                    .send()
                    .await
                    .expect("register scalable target");
            }
        }
    }

    /// The service `app/web` in `region` as DescribeServices answers.
    pub async fn service(&self, region: &str) -> aws_sdk_ecs::types::Service {
        let (cluster, service) = SERVICE.split_once('/').expect("cluster/service");
        let out = self
            .client(region)
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .expect("describe services");
        out.services.unwrap_or_default().remove(0)
    }

    /// The failover function's environment for this world; `extra` overrides.
    pub fn function_env(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = [
            ("REGIONS", self.regions.join(",")),
            ("AWS_REGION", self.control_region.clone()),
            ("ACTIVE_REGION_PARAMETER", PARAMETER.into()),
            ("AUTO_SCALING_GROUPS", GROUP.into()),
            ("CONTROL_TABLE", CONTROL_TABLE.into()),
            ("HEALTH_TABLE", HEALTH_TABLE.into()),
            ("HEALTH_KEY", HEALTH_KEY.into()),
            ("REGION_ENDPOINTS", self.endpoints.clone()),
            ("RUST_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in local_credentials() {
            env.insert(k.into(), v.into());
        }
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        env
    }

    pub async fn parameter(&self, region: &str) -> Option<String> {
        self.client(region)
            .ssm
            .get_parameter()
            .name(PARAMETER)
            .send()
            .await
            .ok()
            .and_then(|o| o.parameter)
            .and_then(|p| p.value)
    }

    /// Every region's parameter value, read concurrently.
    pub async fn parameters(&self) -> BTreeMap<String, Option<String>> {
        let reads = self
            .regions
            .iter()
            .map(|r| async move { (r.clone(), self.parameter(r).await) });
        futures::future::join_all(reads).await.into_iter().collect()
    }

    /// Whether the parameter names `value` in every region, with the values as read.
    pub async fn parameters_all(&self, value: &str) -> (bool, BTreeMap<String, Option<String>>) {
        let read = self.parameters().await;
        (read.values().all(|v| v.as_deref() == Some(value)), read)
    }

    /// The group's `(min, desired, max)` in `region`, as DescribeAutoScalingGroups reports.
    pub async fn group(&self, region: &str) -> (i32, i32, i32) {
        let groups = self
            .client(region)
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(GROUP)
            .send()
            .await
            .expect("describe auto scaling groups")
            .auto_scaling_groups
            .unwrap_or_default();
        let group = groups
            .first()
            .unwrap_or_else(|| panic!("no group {GROUP} in {region}"));
        (
            group.min_size.unwrap_or_default(),
            group.desired_capacity.unwrap_or_default(),
            group.max_size.unwrap_or_default(),
        )
    }

    pub async fn refreshes(
        &self,
        region: &str,
    ) -> Vec<aws_sdk_autoscaling::types::InstanceRefresh> {
        self.client(region)
            .autoscaling
            .describe_instance_refreshes()
            .auto_scaling_group_name(GROUP)
            .send()
            .await
            .expect("describe refreshes")
            .instance_refreshes
            .unwrap_or_default()
    }

    /// A day passes for the flap guard: forgets the recent automatic switches the control
    /// state counts (at most MAX_AUTOMATIC_SWITCHES_PER_DAY + 1). Benchmarks that switch
    /// hundreds of times with a limit of 1,000 would otherwise time moto parsing a list of
    /// a thousand numbers on every read and write of the state, which AWS does not slow
    /// down on. The version is left alone: no compare-and-swap is disturbed.
    pub async fn forget_automatic_switches(&self) {
        self.client(&self.control_region)
            .dynamodb
            .update_item()
            .table_name(CONTROL_TABLE)
            .key("pk", AttributeValue::S("control".into()))
            .key("sk", AttributeValue::S("state".into()))
            .update_expression("SET #state.recent_automatic_switches = :none")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .condition_expression("attribute_exists(#state)")
            .send()
            .await
            .expect("forget the recent automatic switches");
    }

    pub async fn control_item(&self) -> Option<HashMap<String, AttributeValue>> {
        self.client(&self.control_region)
            .dynamodb
            .get_item()
            .table_name(CONTROL_TABLE)
            .key("pk", AttributeValue::S("control".into()))
            .key("sk", AttributeValue::S("state".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("read control state")
            .item
    }

    /// Turns the control table's point-in-time recovery on or off (UpdateContinuousBackups).
    pub async fn set_control_table_pitr(&self, enabled: bool) {
        self.client(&self.control_region)
            .dynamodb
            .update_continuous_backups()
            .table_name(CONTROL_TABLE)
            .point_in_time_recovery_specification(
                aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(enabled)
                    .build()
                    .expect("point-in-time recovery specification"),
            )
            .send()
            .await
            .expect("update continuous backups");
    }

    /// Sets the group's MaxSize in `region` (UpdateAutoScalingGroup).
    pub async fn set_group_max(&self, region: &str, max: i32) {
        self.client(region)
            .autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(GROUP)
            .max_size(max)
            .send()
            .await
            .expect("update auto scaling group");
    }

    /// The history's epochs, oldest first.
    pub async fn history_epochs(&self) -> Vec<u64> {
        let out = self
            .client(&self.control_region)
            .dynamodb
            .query()
            .table_name(CONTROL_TABLE)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S("history".into()))
            // Only the epochs: each record holds a whole transition, and a hundred of them
            // would cost more to ship and parse than the round being checked.
            .projection_expression("epoch")
            .consistent_read(true)
            .send()
            .await
            .expect("query history");
        out.items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| {
                i.get("epoch")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
            })
            .collect()
    }
}

async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, keys: &[&str]) {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (i, key) in keys.iter().enumerate() {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute definition"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*key)
                    .key_type(if i == 0 {
                        KeyType::Hash
                    } else {
                        KeyType::Range
                    })
                    .build()
                    .expect("key schema"),
            );
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {name}: {e:?}"));
}
