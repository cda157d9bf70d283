//! The hook's logic over an in-memory Elastic Beanstalk that behaves as AWS does: an
//! accepted update leaves the environment `Updating` (with a `pending` draft) for a while,
//! and UpdateEnvironment is refused unless the environment is `Ready`. Time is tokio's
//! paused clock, so waits cost nothing.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::*;
use crate::port::EnvironmentInfo;

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
/// How long the fake takes to deploy an accepted update.
const DEPLOY: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
struct Env {
    application: String,
    status: String,
    deployed: Option<String>,
    pending: Option<String>,
    ready_at: Option<Instant>,
}

#[derive(Default)]
struct FakeBeanstalk {
    envs: Mutex<BTreeMap<(String, String), Env>>,
    /// Every UpdateEnvironment accepted: (region, environment, value).
    updates: Mutex<Vec<(String, String, String)>>,
    /// Every call to these regions fails with this error (a region down).
    down: Mutex<BTreeMap<String, HookError>>,
    /// DescribeConfigurationSettings answers nothing (the role may not read it).
    hide_configuration: bool,
    /// The next UpdateEnvironment to this region loses a race: someone else's update
    /// starts first (busy this long) and ours is refused as AWS refuses it.
    lose_race: Mutex<BTreeMap<String, Duration>>,
}

fn not_ready(region: &str, environment: &str) -> HookError {
    HookError::Aws {
        operation: "UpdateEnvironment",
        region: region.into(),
        environment: environment.into(),
        code: Some("InvalidParameterValue".into()),
        message: format!(
            "Environment named {environment} is in an invalid state for this operation. Must be Ready."
        ),
    }
}

impl FakeBeanstalk {
    /// The two environments of `shop`, both holding `value`.
    fn with(value: Option<&str>) -> FakeBeanstalk {
        let fake = FakeBeanstalk::default();
        for (region, name) in [(HOME, "shop-east"), (STANDBY, "shop-west")] {
            fake.envs.lock().unwrap().insert(
                (region.into(), name.into()),
                Env {
                    application: "shop".into(),
                    status: "Ready".into(),
                    deployed: value.map(str::to_owned),
                    pending: None,
                    ready_at: None,
                },
            );
        }
        fake
    }

    fn env(&self, region: &str, name: &str) -> Env {
        let mut envs = self.envs.lock().unwrap();
        let env = envs.get_mut(&(region.into(), name.into())).expect("env");
        advance(env);
        env.clone()
    }

    /// Another update (not of our variable) keeps the environment busy for `busy`.
    fn start_other_update(&self, region: &str, name: &str, busy: Duration) {
        let mut envs = self.envs.lock().unwrap();
        let env = envs.get_mut(&(region.into(), name.into())).expect("env");
        env.status = "Updating".into();
        env.pending = env.deployed.clone();
        env.ready_at = Some(Instant::now() + busy);
    }

    fn set_status(&self, region: &str, name: &str, status: &str) {
        let mut envs = self.envs.lock().unwrap();
        envs.get_mut(&(region.into(), name.into()))
            .expect("env")
            .status = status.into();
    }

    fn updates_in(&self, region: &str) -> usize {
        self.updates
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.0 == region)
            .count()
    }

    fn take_down(&self, region: &str) {
        self.down.lock().unwrap().insert(
            region.into(),
            HookError::Aws {
                operation: "DescribeEnvironments",
                region: region.into(),
                environment: "shop".into(),
                code: None,
                message: "connection timed out".into(),
            },
        );
    }

    fn check_up(&self, region: &str) -> Result<(), HookError> {
        match self.down.lock().unwrap().get(region) {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }
}

/// Beanstalk moves an update along in the background: once deployed, the draft is in effect.
fn advance(env: &mut Env) {
    if env.ready_at.is_some_and(|at| Instant::now() >= at) {
        env.status = "Ready".into();
        if let Some(value) = env.pending.take() {
            env.deployed = Some(value);
        }
        env.ready_at = None;
    }
}

impl Beanstalk for FakeBeanstalk {
    async fn environment(
        &self,
        region: &str,
        environment: &str,
    ) -> Result<Option<EnvironmentInfo>, HookError> {
        self.check_up(region)?;
        let mut envs = self.envs.lock().unwrap();
        Ok(envs
            .get_mut(&(region.into(), environment.into()))
            .map(|env| {
                advance(env);
                EnvironmentInfo {
                    application: env.application.clone(),
                    status: env.status.clone(),
                }
            }))
    }

    async fn variable(
        &self,
        region: &str,
        _application: &str,
        environment: &str,
        _variable: &str,
    ) -> Result<Vec<VariableValue>, HookError> {
        self.check_up(region)?;
        if self.hide_configuration {
            return Ok(vec![]);
        }
        let env = self.env(region, environment);
        let mut values = vec![VariableValue {
            deployment: Deployment::Deployed,
            value: env.deployed,
        }];
        if env.status == "Updating" {
            values.push(VariableValue {
                deployment: Deployment::Pending,
                value: env.pending,
            });
        }
        Ok(values)
    }

    async fn set_variable(
        &self,
        region: &str,
        _application: &str,
        environment: &str,
        _variable: &str,
        value: &str,
    ) -> Result<(), HookError> {
        self.check_up(region)?;
        if let Some(busy) = self.lose_race.lock().unwrap().remove(region) {
            self.start_other_update(region, environment, busy);
        }
        let mut envs = self.envs.lock().unwrap();
        let env = envs
            .get_mut(&(region.into(), environment.into()))
            .expect("env");
        advance(env);
        if env.status != "Ready" {
            return Err(not_ready(region, environment));
        }
        env.status = "Updating".into();
        env.pending = Some(value.into());
        env.ready_at = Some(Instant::now() + DEPLOY);
        self.updates
            .lock()
            .unwrap()
            .push((region.into(), environment.into(), value.into()));
        Ok(())
    }
}

fn config() -> Config {
    Config {
        environments: vec![
            Target {
                region: HOME.into(),
                environment: "shop-east".into(),
            },
            Target {
                region: STANDBY.into(),
                environment: "shop-west".into(),
            },
        ],
        variable: "AWS_DEFAULT_REGION".into(),
        ready_wait: Duration::from_secs(40),
        ready_poll: Duration::from_secs(5),
    }
}

/// regionpilot's payload for a failover from home to the standby.
fn failover() -> Value {
    json!({"app": "shop", "epoch": 7, "from": HOME, "to": STANDBY, "stage": "act",
           "trigger": {"kind": "alarm", "name": "shop-home-unhealthy"},
           "forced": false, "direction": "failover",
           "idempotency_key": "shop-7-act-beanstalk-hook"})
}

const BUDGET: Duration = Duration::from_secs(40);

fn outcome<'a>(answer: &'a Answer, region: &str) -> &'a EnvironmentOutcome {
    answer
        .environments
        .iter()
        .find(|o| o.region == region)
        .expect("outcome for region")
}

#[test]
fn the_decision_table() {
    let target = Target {
        region: STANDBY.into(),
        environment: "shop-west".into(),
    };
    let seen = |status: &str, deployed: Option<&str>, pending: Option<&str>| Observed {
        application: "shop".into(),
        status: status.into(),
        deployed: deployed.map(str::to_owned),
        pending: pending.map(str::to_owned),
    };
    let cases = [
        // Already set: nothing to do, whatever the environment is doing.
        (seen("Ready", Some(STANDBY), None), Judgement::Unchanged),
        (seen("Updating", Some(STANDBY), None), Judgement::Unchanged),
        // Being set (an earlier call's update deploying): nothing to do either.
        (
            seen("Updating", Some(HOME), Some(STANDBY)),
            Judgement::Unchanged,
        ),
        // Different and Ready: update, also when the variable was never set.
        (seen("Ready", Some(HOME), None), Judgement::Update),
        (seen("Ready", None, None), Judgement::Update),
        // Different and busy: Beanstalk would refuse; wait.
        (seen("Updating", Some(HOME), Some(HOME)), Judgement::Wait),
        (seen("Launching", None, None), Judgement::Wait),
        // Going away: never.
        (
            seen("Terminating", Some(STANDBY), None),
            Judgement::Fail(HookError::Terminated {
                region: STANDBY.into(),
                environment: "shop-west".into(),
                status: "Terminating".into(),
            }),
        ),
    ];
    for (observed, expected) in cases {
        assert_eq!(judge(&target, &observed, STANDBY), expected, "{observed:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_switch_sets_every_environment_and_answers_what_it_did() {
    let fake = FakeBeanstalk::with(Some(HOME));
    let answer = handle(&fake, &config(), &failover(), BUDGET)
        .await
        .expect("answer");
    for region in [HOME, STANDBY] {
        let o = outcome(&answer, region);
        assert_eq!(o.action, Action::Updated, "{o:?}");
        assert_eq!(o.previous.as_deref(), Some(HOME));
        assert_eq!(o.value, STANDBY);
        assert_eq!(o.status.as_deref(), Some("Updating"));
        assert_eq!(fake.updates_in(region), 1);
    }
    let json = serde_json::to_value(&answer).expect("serialize");
    assert_eq!(json["idempotency_key"], "shop-7-act-beanstalk-hook");
    assert_eq!(json["stage"], "act");
    // The environment that decides comes first.
    let west = &json["environments"][0];
    assert_eq!(
        (&west["region"], &west["environment"], &west["variable"]),
        (
            &json!(STANDBY),
            &json!("shop-west"),
            &json!("AWS_DEFAULT_REGION")
        )
    );
    assert_eq!(west["action"], "updated");
    assert!(west.get("error").is_none() && west.get("failure").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_retry_with_the_same_key_changes_nothing_and_says_so() {
    let fake = FakeBeanstalk::with(Some(HOME));
    handle(&fake, &config(), &failover(), BUDGET)
        .await
        .expect("first call");
    // regionpilot gave up waiting and calls again at once: the update is still deploying.
    let retry = handle(&fake, &config(), &failover(), BUDGET)
        .await
        .expect("retry");
    let o = outcome(&retry, STANDBY);
    assert_eq!(
        (o.action, o.status.as_deref()),
        (Action::Unchanged, Some("Updating"))
    );
    assert_eq!(fake.updates_in(STANDBY), 1, "the retry made no update");
    // Later, once deployed: still nothing to do, and the answer says it is in effect.
    tokio::time::sleep(DEPLOY).await;
    let later = handle(&fake, &config(), &failover(), BUDGET)
        .await
        .expect("later retry");
    let o = outcome(&later, STANDBY);
    assert_eq!(
        (o.action, o.status.as_deref()),
        (Action::Unchanged, Some("Ready"))
    );
    assert_eq!(
        fake.env(STANDBY, "shop-west").deployed.as_deref(),
        Some(STANDBY)
    );
    assert_eq!(fake.updates_in(STANDBY), 1);
}

#[tokio::test(start_paused = true)]
async fn a_variable_never_set_is_set() {
    let fake = FakeBeanstalk::with(None);
    let answer = handle(&fake, &config(), &failover(), BUDGET)
        .await
        .expect("answer");
    let o = outcome(&answer, STANDBY);
    assert_eq!((o.action, o.previous.as_deref()), (Action::Updated, None));
    let json = serde_json::to_value(o).expect("serialize");
    assert!(json.get("previous").is_none(), "{json}");
}

#[tokio::test(start_paused = true)]
async fn a_busy_target_is_waited_for_and_then_updated() {
    let fake = FakeBeanstalk::with(Some(HOME));
    fake.start_other_update(STANDBY, "shop-west", Duration::from_secs(12));
    let started = Instant::now();
    let answer = handle(&fake, &config(), &failover(), BUDGET)
        .await
        .expect("answer");
    assert_eq!(outcome(&answer, STANDBY).action, Action::Updated);
    assert_eq!(fake.updates_in(STANDBY), 1);
    // Looked at 0, 5, 10 and 15 s: updated at the first look after the other update ended.
    assert_eq!(started.elapsed(), Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn a_target_busy_past_the_budget_fails_the_hook_so_it_is_retried() {
    let fake = FakeBeanstalk::with(Some(HOME));
    fake.start_other_update(STANDBY, "shop-west", Duration::from_secs(300));
    let error = handle(&fake, &config(), &failover(), BUDGET)
        .await
        .expect_err("not ready");
    assert_eq!(error.error_type(), "EnvironmentNotReady");
    assert_eq!(
        error.to_string(),
        "us-west-2/shop-west is Updating, not Ready, after waiting 40.0 s: Elastic Beanstalk \
         refuses updates until it is Ready; a retry will look again"
    );
    assert_eq!(fake.updates_in(STANDBY), 0);
    // The other environment was still set: best effort does not wait for the target.
    assert_eq!(fake.updates_in(HOME), 1);
}

#[tokio::test(start_paused = true)]
async fn an_update_refused_for_a_race_is_retried_after_the_other_update() {
    let fake = FakeBeanstalk::with(Some(HOME));
    fake.lose_race
        .lock()
        .unwrap()
        .insert(STANDBY.into(), Duration::from_secs(8));
    let answer = handle(&fake, &config(), &failover(), BUDGET)
        .await
        .expect("answer");
    assert_eq!(outcome(&answer, STANDBY).action, Action::Updated);
    assert_eq!(fake.updates_in(STANDBY), 1);
}

#[tokio::test(start_paused = true)]
async fn the_region_left_behind_is_best_effort() {
    let fake = FakeBeanstalk::with(Some(HOME));
    fake.take_down(HOME);
    let answer = handle(&fake, &config(), &failover(), BUDGET)
        .await
        .expect("the target was set");
    assert_eq!(outcome(&answer, STANDBY).action, Action::Updated);
    let home = outcome(&answer, HOME);
    assert_eq!(home.action, Action::Failed);
    assert_eq!(
        home.error.as_deref(),
        Some(
            "elasticbeanstalk:DescribeEnvironments on us-east-1/shop failed: connection timed out"
        )
    );
}

#[tokio::test(start_paused = true)]
async fn the_target_region_unreachable_fails_the_hook() {
    let fake = FakeBeanstalk::with(Some(HOME));
    fake.take_down(STANDBY);
    let error = handle(&fake, &config(), &failover(), BUDGET)
        .await
        .expect_err("target down");
    assert_eq!(error.error_type(), "AwsError");
}

#[tokio::test(start_paused = true)]
async fn a_target_that_cannot_be_set_fails_with_its_reason() {
    // (how the fake is spoiled, the errorType)
    type Spoil = Box<dyn Fn(&mut FakeBeanstalk)>;
    let cases: Vec<(Spoil, &str)> = vec![
        (
            Box::new(|f| {
                f.envs.lock().unwrap().clear();
            }),
            "EnvironmentNotFound",
        ),
        (
            Box::new(|f| f.set_status(STANDBY, "shop-west", "Terminated")),
            "EnvironmentTerminated",
        ),
        (
            Box::new(|f| f.hide_configuration = true),
            "ConfigurationUnreadable",
        ),
    ];
    for (spoil, error_type) in cases {
        let mut fake = FakeBeanstalk::with(Some(HOME));
        spoil(&mut fake);
        let error = handle(&fake, &config(), &failover(), BUDGET)
            .await
            .expect_err(error_type);
        assert_eq!(error.error_type(), error_type, "{error}");
        assert_eq!(fake.updates_in(STANDBY), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_payload_it_cannot_act_on_is_refused_before_any_call() {
    let fake = FakeBeanstalk::with(Some(HOME));
    let mut unknown = failover();
    unknown["to"] = json!("eu-west-1");
    let mut malformed = failover();
    malformed["stage"] = json!(3);
    for (payload, error_type, says) in [
        (unknown, "UnknownRegion", "region eu-west-1"),
        (malformed, "InvalidPayload", "field `stage`"),
        (json!("act"), "InvalidPayload", "expected a JSON object"),
    ] {
        let error = handle(&fake, &config(), &payload, BUDGET)
            .await
            .expect_err("refused");
        assert_eq!(error.error_type(), error_type);
        assert!(error.to_string().contains(says), "{error}");
    }
    assert!(fake.updates.lock().unwrap().is_empty());
}
