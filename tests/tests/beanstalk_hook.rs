//! The example hook (`examples/beanstalk-hook`) against the rig's Elastic Beanstalk
//! (`rig/emulation/beanstalk.py`): an application with one environment in each of two
//! regions, each holding AWS_DEFAULT_REGION=home; the hook's library handler with its
//! own SDK adapter, pointed at the rig. An accepted update keeps an environment Updating
//! for RIG_EB_UPDATE_SECONDS (30) / RIG_TIME_SCALE (10) = 3 s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::types::ConfigurationOptionSetting;
use beanstalk_hook::{
    Action, Answer, Beanstalk, Config, EnvironmentInfo, EnvironmentOutcome, HookError, NAMESPACE,
    SdkBeanstalk, VariableValue, config_loader, handle,
};
use regionpilot_tests::{Rig, paths};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const VARIABLE: &str = "AWS_DEFAULT_REGION";
const APP: &str = "shop";

fn env_name(region: &str) -> &'static str {
    if region == HOME {
        "shop-east"
    } else {
        "shop-west"
    }
}

/// The SDK adapter, with a record of every call made through it.
struct Recorded {
    inner: SdkBeanstalk,
    /// (operation, region)
    calls: Mutex<Vec<(&'static str, String)>>,
}

impl Recorded {
    fn record(&self, operation: &'static str, region: &str) {
        self.calls
            .lock()
            .unwrap()
            .push((operation, region.to_owned()));
    }

    fn count(&self, operation: &str, region: &str) -> usize {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(op, r)| *op == operation && r == region)
            .count()
    }
}

impl Beanstalk for Recorded {
    async fn environment(
        &self,
        region: &str,
        environment: &str,
    ) -> Result<Option<EnvironmentInfo>, HookError> {
        self.record("DescribeEnvironments", region);
        self.inner.environment(region, environment).await
    }

    async fn variable(
        &self,
        region: &str,
        application: &str,
        environment: &str,
        variable: &str,
    ) -> Result<Vec<VariableValue>, HookError> {
        self.record("DescribeConfigurationSettings", region);
        self.inner
            .variable(region, application, environment, variable)
            .await
    }

    async fn set_variable(
        &self,
        region: &str,
        application: &str,
        environment: &str,
        variable: &str,
        value: &str,
    ) -> Result<(), HookError> {
        self.record("UpdateEnvironment", region);
        self.inner
            .set_variable(region, application, environment, variable, value)
            .await
    }
}

struct Stage {
    rig: Rig,
    /// Clients of the rig's regions for seeding and reading back, as an operator's.
    admin: BTreeMap<String, Client>,
    hook: Recorded,
    config: Config,
}

async fn stage(label: &str) -> Stage {
    let rig = Rig::start_with(
        &[HOME, STANDBY],
        &[],
        &paths::scratch(label),
        &[("RIG_TIME_SCALE", "10"), ("RIG_EB_UPDATE_SECONDS", "30")],
    )
    .await;
    // The hook's own client configuration (HTTP client, timeouts, retries), with the rig's
    // dummy credentials and endpoints.
    let sdk = config_loader()
        .credentials_provider(aws_sdk_elasticbeanstalk::config::Credentials::new(
            "rig", "rig", None, None, "rig",
        ))
        .region(aws_config::Region::new(HOME))
        .load()
        .await;
    let endpoints: BTreeMap<String, String> = [HOME, STANDBY]
        .iter()
        .map(|r| (r.to_string(), rig.url(r)))
        .collect();
    let admin: BTreeMap<String, Client> = endpoints
        .iter()
        .map(|(region, url)| {
            let conf = aws_sdk_elasticbeanstalk::config::Builder::from(&sdk)
                .region(aws_config::Region::new(region.clone()))
                .endpoint_url(url)
                .build();
            (region.clone(), Client::from_conf(conf))
        })
        .collect();
    for (region, client) in &admin {
        client
            .create_application()
            .application_name(APP)
            .send()
            .await
            .unwrap();
        client
            .create_environment()
            .application_name(APP)
            .environment_name(env_name(region))
            .solution_stack_name("64bit Amazon Linux 2023 v4.6.0 running Docker")
            .option_settings(property(VARIABLE, HOME))
            .send()
            .await
            .unwrap();
    }
    let vars = BTreeMap::from([
        (
            "ENVIRONMENTS",
            format!("{HOME}={},{STANDBY}={}", env_name(HOME), env_name(STANDBY)),
        ),
        ("READY_POLL_SECONDS", "0.25".to_owned()),
    ]);
    let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
    let hook = Recorded {
        inner: SdkBeanstalk::new(&sdk, config.regions(), &endpoints),
        calls: Mutex::default(),
    };
    Stage {
        rig,
        admin,
        hook,
        config,
    }
}

fn property(name: &str, value: &str) -> ConfigurationOptionSetting {
    ConfigurationOptionSetting::builder()
        .namespace(NAMESPACE)
        .option_name(name)
        .value(value)
        .build()
}

/// regionpilot's payload for the failover from home to the standby, act stage.
fn failover() -> Value {
    json!({"app": APP, "epoch": 7, "from": HOME, "to": STANDBY, "stage": "act",
           "trigger": {"kind": "alarm", "name": "shop-home-unhealthy"},
           "forced": false, "direction": "failover",
           "idempotency_key": "shop-7-act-beanstalk-hook"})
}

fn outcome<'a>(answer: &'a Answer, region: &str) -> &'a EnvironmentOutcome {
    answer
        .environments
        .iter()
        .find(|o| o.region == region)
        .unwrap_or_else(|| panic!("no outcome for {region}: {answer:?}"))
}

impl Stage {
    async fn run(&self, payload: &Value, budget: Duration) -> Result<Answer, HookError> {
        handle(&self.hook, &self.config, payload, budget).await
    }

    /// (Status, DateUpdated) of the region's environment, as DescribeEnvironments says.
    async fn status(&self, region: &str) -> (String, String) {
        let out = self.admin[region]
            .describe_environments()
            .environment_names(env_name(region))
            .send()
            .await
            .unwrap();
        let env = &out.environments()[0];
        (
            env.status().unwrap().as_str().to_owned(),
            env.date_updated().unwrap().to_string(),
        )
    }

    /// The variable in each configuration copy: [("deployed", v), ("pending", v)].
    async fn copies(&self, region: &str) -> Vec<(String, Option<String>)> {
        let out = self.admin[region]
            .describe_configuration_settings()
            .application_name(APP)
            .environment_name(env_name(region))
            .send()
            .await
            .unwrap();
        out.configuration_settings()
            .iter()
            .map(|c| {
                let value = c
                    .option_settings()
                    .iter()
                    .find(|o| o.namespace() == Some(NAMESPACE) && o.option_name() == Some(VARIABLE))
                    .and_then(|o| o.value().map(str::to_owned));
                (c.deployment_status().unwrap().as_str().to_owned(), value)
            })
            .collect()
    }

    /// Waits until the region's environment is Ready again (at most 10 s).
    async fn ready(&self, region: &str) {
        let started = Instant::now();
        while self.status(region).await.0 != "Ready" {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{region} never Ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const BUDGET: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_is_pointed_at_itself_and_a_retry_with_the_same_key_changes_nothing() {
    let stage = stage("beanstalk-hook-retry").await;
    let answer = stage.run(&failover(), BUDGET).await.expect("answer");
    for region in [STANDBY, HOME] {
        let o = outcome(&answer, region);
        assert_eq!(o.action, Action::Updated, "{o:?}");
        assert_eq!(
            (
                o.environment.as_str(),
                o.variable.as_str(),
                o.value.as_str()
            ),
            (env_name(region), VARIABLE, STANDBY)
        );
        assert_eq!(o.previous.as_deref(), Some(HOME));
    }
    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        json["environments"][0]["region"], STANDBY,
        "the target first: {json}"
    );
    assert_eq!(json["environments"][0]["action"], "updated", "{json}");
    assert_eq!(json["idempotency_key"], "shop-7-act-beanstalk-hook");
    // Beanstalk deploys it: Updating, with the new value in a pending draft.
    let (status, updated_at) = stage.status(STANDBY).await;
    assert_eq!(status, "Updating");
    assert_eq!(
        stage.copies(STANDBY).await,
        [
            ("deployed".to_owned(), Some(HOME.to_owned())),
            ("pending".to_owned(), Some(STANDBY.to_owned()))
        ]
    );

    // regionpilot did not wait for the answer and calls again with the same key while the
    // update deploys: nothing is done, and the answer says what is true.
    let retry = stage.run(&failover(), BUDGET).await.expect("retry");
    let o = outcome(&retry, STANDBY);
    assert_eq!(
        (o.action, o.status.as_deref()),
        (Action::Unchanged, Some("Updating"))
    );
    assert_eq!(outcome(&retry, HOME).action, Action::Unchanged);
    assert_eq!(stage.hook.count("UpdateEnvironment", STANDBY), 1);
    assert_eq!(stage.hook.count("UpdateEnvironment", HOME), 1);
    assert_eq!(
        stage.status(STANDBY).await,
        ("Updating".to_owned(), updated_at),
        "no second update"
    );

    // Deployed: the value is in effect, and another retry still changes nothing.
    stage.ready(STANDBY).await;
    assert_eq!(
        stage.copies(STANDBY).await,
        [("deployed".to_owned(), Some(STANDBY.to_owned()))]
    );
    let later = stage.run(&failover(), BUDGET).await.expect("later retry");
    let o = outcome(&later, STANDBY);
    assert_eq!(
        (o.action, o.status.as_deref()),
        (Action::Unchanged, Some("Ready"))
    );
    assert_eq!(stage.hook.count("UpdateEnvironment", STANDBY), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_busy_with_another_update_is_waited_for_or_the_hook_fails_to_be_retried() {
    let stage = stage("beanstalk-hook-busy").await;
    // Someone else's update (a capacity change) is deploying on the standby.
    stage.admin[STANDBY]
        .update_environment()
        .application_name(APP)
        .environment_name(env_name(STANDBY))
        .option_settings(
            ConfigurationOptionSetting::builder()
                .namespace("aws:autoscaling:asg")
                .option_name("MaxSize")
                .value("6")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The rig refuses a second update as AWS does.
    let refused = stage.admin[STANDBY]
        .update_environment()
        .application_name(APP)
        .environment_name(env_name(STANDBY))
        .option_settings(property(VARIABLE, STANDBY))
        .send()
        .await
        .expect_err("refused while Updating");
    let refused = HookError::from_sdk("UpdateEnvironment", STANDBY, "shop-west", &refused);
    assert!(refused.is_not_ready(), "{refused}");
    assert!(
        refused.to_string().ends_with(
            "[InvalidParameterValue]: Environment named shop-west is in an invalid state for this operation. Must be Ready."
        ),
        "{refused}"
    );

    // With less time to wait than the update takes: the hook fails, naming why, so that
    // regionpilot retries it; the environment left behind was set all the same.
    let error = stage
        .run(&failover(), Duration::from_secs(1))
        .await
        .expect_err("standby busy");
    assert_eq!(error.error_type(), "EnvironmentNotReady", "{error}");
    assert!(
        error
            .to_string()
            .starts_with("us-west-2/shop-west is Updating, not Ready, after waiting "),
        "{error}"
    );
    assert_eq!(stage.hook.count("UpdateEnvironment", STANDBY), 0);
    assert_eq!(stage.hook.count("UpdateEnvironment", HOME), 1);

    // regionpilot's retry, with the same key: it waits for Ready (about 3 s) and updates.
    let started = Instant::now();
    let answer = stage.run(&failover(), BUDGET).await.expect("retry");
    assert_eq!(outcome(&answer, STANDBY).action, Action::Updated);
    assert_eq!(outcome(&answer, HOME).action, Action::Unchanged);
    assert!(started.elapsed() < BUDGET, "{:?}", started.elapsed());
    assert_eq!(stage.hook.count("UpdateEnvironment", STANDBY), 1);
    assert_eq!(
        stage.copies(STANDBY).await,
        [
            ("deployed".to_owned(), Some(HOME.to_owned())),
            ("pending".to_owned(), Some(STANDBY.to_owned()))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_region_left_behind_may_be_dead_without_failing_the_hook() {
    let mut stage = stage("beanstalk-hook-dead-home").await;
    stage.rig.kill(HOME).await;
    let answer = stage
        .run(&failover(), BUDGET)
        .await
        .expect("the standby decides");
    assert_eq!(outcome(&answer, STANDBY).action, Action::Updated);
    let home = outcome(&answer, HOME);
    assert_eq!(home.action, Action::Failed);
    let error = home.error.as_deref().unwrap();
    assert!(
        error.starts_with("elasticbeanstalk:DescribeEnvironments on us-east-1/shop-east failed"),
        "{error}"
    );
    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(json["environments"][1]["action"], "failed", "{json}");
    assert!(json["environments"][1]["error"].is_string(), "{json}");

    // The other way round, the standby dead: the hook fails (regionpilot retries it).
    let mut back = failover();
    back["to"] = json!(HOME);
    back["from"] = json!(STANDBY);
    back["direction"] = json!("failback");
    let error = stage
        .run(&back, BUDGET)
        .await
        .expect_err("target region dead");
    assert_eq!(error.error_type(), "AwsError", "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_payload_is_refused_naming_the_field_and_nothing_is_called() {
    let stage = stage("beanstalk-hook-malformed").await;
    let mut no_to = failover();
    no_to.as_object_mut().unwrap().remove("to");
    let mut bad_stage = failover();
    bad_stage["stage"] = json!("during");
    let mut bad_kind = failover();
    bad_kind["trigger"]["kind"] = json!("pager");
    let mut bad_epoch = failover();
    bad_epoch["epoch"] = json!("seven");
    let cases = [
        (no_to, "field `to`: missing field `to`"),
        (bad_stage, "field `stage`: unknown variant `during`"),
        (bad_kind, "field `trigger.kind`: unknown variant `pager`"),
        (bad_epoch, "field `epoch`: invalid type: string \"seven\""),
        (
            json!([1, 2, 3]),
            "field `(payload)`: expected a JSON object, got an array",
        ),
    ];
    for (payload, says) in cases {
        let error = stage.run(&payload, BUDGET).await.expect_err("refused");
        assert_eq!(error.error_type(), "InvalidPayload", "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("invalid payload: {says}")),
            "{error}"
        );
    }
    assert!(stage.hook.calls.lock().unwrap().is_empty());
    // The environments are as they were.
    assert_eq!(
        stage.copies(STANDBY).await,
        [("deployed".to_owned(), Some(HOME.to_owned()))]
    );
}
