//! Hooks (`HOOKS`): the application owner's own steps, as Lambda functions invoked once
//! per transition, synchronously, in the region each lives in:
//! - `prepare` beside the parameter's publish, before the act stage (stop writers);
//! - `act` beside the built-in act steps, after the parameter is published;
//! - `verify` after every other step of the transition, in every region (a smoke test).
//!
//! They sit in the target region's part of the plan, so the dry run lists them with the
//! rest. No hook blocks the switch: whatever one answers, the other steps go on. A switch
//! waits [`SWITCH_HOOK_WAIT`](crate::transition::plan::SWITCH_HOOK_WAIT) for an answer; a
//! hook that fails, times out, or is still running then is called again by the
//! verifier's reconcile with the same idempotency key, up to `HOOK_MAX_ATTEMPTS` calls in
//! all, and then stays failed and is told.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::config::{Config, HookRef, HookStage};
use crate::error::ErrorKind;
use crate::ports::{Deps, HookAnswer, Hooks as _};
use crate::region::Region;
use crate::state::{Outcome, StepError, Transition, TriggerInfo};
use crate::transition::kind::{Kind, StepKind};
use crate::transition::plan::{Action, OutcomeFuture, RegionPlan, Stage, StepContext};

/// How much of a hook's answer the transition keeps.
const ANSWER_KEPT: usize = 512;

/// The kind: one step per configured hook, in the target region's plan.
pub struct HookCalls;

/// What a hook's calls came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookStatus {
    pub status: HookPhase,
    /// Calls made so far in this transition (each an invocation of the function).
    pub attempts: u32,
    /// What every call of this hook in this transition carried.
    #[serde(default)]
    pub idempotency_key: String,
    /// The function's answer (its first 512 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// The function's `errorType` (a function error), `Timeout`, or the invoke error's
    /// AWS code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookPhase {
    /// Not called yet (this run had no time to wait for it).
    Pending,
    /// Called; its answer was not waited for (the run's own deadline). Called again.
    Waiting,
    Succeeded,
    /// Failed; called again while attempts remain.
    Failed,
    /// Failed `HOOK_MAX_ATTEMPTS` times: not called again.
    GivenUp,
}

impl HookStatus {
    fn new(status: HookPhase, attempts: u32, idempotency_key: String) -> Self {
        HookStatus {
            status,
            attempts,
            idempotency_key,
            answer: None,
            error_type: None,
            error: None,
            error_kind: None,
        }
    }

    fn failed(mut self, error_type: &str, error: String, kind: ErrorKind) -> Self {
        self.status = HookPhase::Failed;
        self.error_type = Some(error_type.to_owned());
        self.error = Some(error);
        self.error_kind = Some(kind);
        self
    }

    /// Nothing more to do: it succeeded, or it has had all its attempts.
    pub fn is_final(&self) -> bool {
        matches!(self.status, HookPhase::Succeeded | HookPhase::GivenUp)
    }
}

impl Outcome for HookStatus {
    const KIND: &'static str = "hook";

    fn failure(&self) -> Option<StepError> {
        matches!(self.status, HookPhase::Failed | HookPhase::GivenUp).then(|| {
            let kind = self.error_kind.unwrap_or(ErrorKind::Other);
            let message = match (&self.error_type, &self.error) {
                (Some(t), Some(e)) => format!("{t}: {e}"),
                (None, Some(e)) => e.clone(),
                _ => "the hook failed".into(),
            };
            StepError::new(kind, message)
        })
    }

    fn missed(error: String) -> Self {
        HookStatus::new(HookPhase::Pending, 0, String::new()).failed(
            "Missed",
            error,
            ErrorKind::Timeout,
        )
    }
}

impl Kind for HookCalls {
    type Outcome = HookStatus;
    const FIELD: &'static str = "hooks";

    fn summary(key: &str, h: &HookStatus, _epoch: u64) -> String {
        let error = || {
            format!(
                "{}: {}",
                h.error_type.as_deref().unwrap_or("error"),
                h.error.as_deref().unwrap_or("-")
            )
        };
        match h.status {
            HookPhase::Pending => format!("{key}: not called yet"),
            HookPhase::Waiting => format!(
                "{key}: called {} time(s), still running; called again with key {}",
                h.attempts, h.idempotency_key
            ),
            HookPhase::Succeeded => format!(
                "{key}: succeeded (call {}): {}",
                h.attempts,
                h.answer.as_deref().unwrap_or("")
            ),
            HookPhase::Failed => format!(
                "{key}: failed (call {}), called again: {}",
                h.attempts,
                error()
            ),
            HookPhase::GivenUp => {
                format!("{key}: given up after {} calls: {}", h.attempts, error())
            }
        }
    }

    fn following(before: Option<&HookStatus>, after: &HookStatus) -> bool {
        // A call still running when the switch stopped waiting, answered now: its course.
        before.is_some_and(|b| b.status == HookPhase::Waiting)
            && matches!(after.status, HookPhase::Waiting | HookPhase::Succeeded)
    }

    fn metric(h: &HookStatus) -> Option<&'static str> {
        (h.status == HookPhase::GivenUp).then_some("HookGivenUp")
    }

    fn given_up(h: &HookStatus) -> bool {
        h.status == HookPhase::GivenUp
    }
}

impl<D: Deps> StepKind<D> for HookCalls {
    fn plan(&self, config: &Config, to: &Region, plan: &mut RegionPlan<D>) {
        // Once per transition: in the target's part of the plan.
        if &plan.region != to {
            return;
        }
        for hook in &config.hooks.hooks {
            let stage = match hook.stage {
                HookStage::Prepare => Stage::Prepare,
                HookStage::Act => Stage::Act,
                HookStage::Verify => Stage::Verify,
            };
            plan.add(
                stage,
                &format!("hook {}", hook.key()),
                Box::new(HookStep {
                    hook: hook.clone(),
                    timeout: config.hooks.timeout,
                    max_attempts: config.hooks.max_attempts,
                }),
            );
        }
    }
}

/// The payload every call of `hook` in `t` carries.
pub fn payload(config: &Config, t: &Transition, hook: &HookRef) -> Value {
    let app = &config.events.app;
    let (kind, name) = match &t.trigger {
        TriggerInfo::Alarm { alarm_name, .. } => ("alarm", alarm_name.as_str()),
        TriggerInfo::Manual { command, .. } => ("manual", command.as_str()),
        TriggerInfo::Verifier { check } => ("verifier", check.as_str()),
    };
    json!({
        "app": app,
        "epoch": t.epoch,
        "from": t.from,
        "to": t.to,
        "stage": hook.stage,
        "trigger": {"kind": kind, "name": name},
        "forced": t.forced,
        "direction": if &t.to == config.home() { "failback" } else { "failover" },
        "idempotency_key": idempotency_key(config, t.epoch, hook),
    })
}

/// `<app>-<epoch>-<stage>-<function>`: the same on every call of a hook in a transition.
pub fn idempotency_key(config: &Config, epoch: u64, hook: &HookRef) -> String {
    format!(
        "{}-{epoch}-{}-{}",
        config.events.app, hook.stage, hook.function
    )
}

/// One hook's call.
pub struct HookStep {
    hook: HookRef,
    timeout: std::time::Duration,
    max_attempts: u32,
}

impl<D: Deps> Action<D> for HookStep {
    type Outcome = HookStatus;
    const NAME: &'static str = "hook";

    fn key(&self) -> String {
        self.hook.key()
    }

    fn finished(&self, recorded: Option<&HookStatus>) -> bool {
        recorded.is_some_and(|h| h.is_final() || h.attempts >= self.max_attempts)
    }

    fn act<'a>(&'a self, cx: &'a StepContext<'a, D>) -> OutcomeFuture<'a, HookStatus> {
        Box::pin(self.call(cx))
    }

    fn preview(&self, config: &Config, t: &Transition) -> Option<Value> {
        Some(json!({
            "function": self.hook.function,
            "region": self.hook.region,
            "payload": payload(config, t, &self.hook),
        }))
    }
}

impl HookStep {
    async fn call<D: Deps>(&self, cx: &StepContext<'_, D>) -> HookStatus {
        let key = self.hook.key();
        let t = cx.transition;
        let previous = t.outcome::<HookStatus>(&key);
        let attempts = previous.as_ref().map_or(0, |p| p.attempts);
        let idempotency_key = idempotency_key(cx.config, t.epoch, &self.hook);
        let wait = self.timeout.min(cx.hook_wait);
        if wait.is_zero() {
            return previous
                .unwrap_or_else(|| HookStatus::new(HookPhase::Pending, 0, idempotency_key));
        }
        let body = payload(cx.config, t, &self.hook).to_string();
        let attempt = attempts + 1;
        info!(hook = %key, region = %self.hook.region, attempt, idempotency_key, "invoking hook");
        let answer =
            tokio::time::timeout(wait, cx.ports.hooks().invoke(&self.hook, body.as_bytes())).await;
        let status = HookStatus::new(HookPhase::Succeeded, attempt, idempotency_key);
        let status = match answer {
            // Cut short by this run's own deadline: the function may still be running.
            Err(_) if wait < self.timeout => HookStatus {
                status: HookPhase::Waiting,
                error: Some(format!(
                    "no answer within the {} s this run could wait; the verifier calls it again",
                    wait.as_secs_f64()
                )),
                ..status
            },
            Err(_) => status.failed(
                "Timeout",
                format!(
                    "no answer within HOOK_TIMEOUT_SECONDS ({} s)",
                    self.timeout.as_secs()
                ),
                ErrorKind::Timeout,
            ),
            Ok(Err(e)) => {
                let code = e.code.as_deref().unwrap_or("InvokeError").to_owned();
                status.failed(&code, e.to_string(), e.kind)
            }
            Ok(Ok(answer)) => of_answer(status, &answer),
        };
        let status = if !status.is_final() && attempt >= self.max_attempts {
            HookStatus {
                status: HookPhase::GivenUp,
                ..status
            }
        } else {
            status
        };
        match status.status {
            HookPhase::Succeeded => info!(hook = %key, attempt, "hook succeeded"),
            HookPhase::GivenUp => {
                warn!(hook = %key, attempt, error = ?status.error, "hook given up after its last attempt")
            }
            _ => {
                warn!(hook = %key, attempt, error_type = ?status.error_type, error = ?status.error, "hook did not succeed; the verifier calls it again")
            }
        }
        status
    }
}

/// A function's answer: success, or the function error it reported (`errorType`,
/// `errorMessage`, as every Lambda runtime writes them).
fn of_answer(status: HookStatus, answer: &HookAnswer) -> HookStatus {
    let text = String::from_utf8_lossy(&answer.payload);
    match &answer.function_error {
        None => HookStatus {
            answer: Some(crate::text::clip(&text, ANSWER_KEPT)),
            ..status
        },
        Some(function_error) => {
            let parsed: Option<Value> = serde_json::from_slice(&answer.payload).ok();
            let field = |name: &str| {
                parsed
                    .as_ref()
                    .and_then(|v| v.get(name))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let error_type = field("errorType").unwrap_or_else(|| function_error.clone());
            let message =
                field("errorMessage").unwrap_or_else(|| crate::text::clip(&text, ANSWER_KEPT));
            status.failed(&error_type, message, ErrorKind::Other)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::controller::{Controller, Outcome as Answer, Response};
    use crate::decision::event::{Command, Trigger};
    use crate::testing::{FakePorts, FakeWorld, HookBehaviour, LostAnswer, alarm_on, config_with};

    const HOOKS: &str = "prepare=stop-writers,act=clear-cache,verify=smoke-test";

    /// Home (us-east-1) at 4 instances, the standbys at 1; three hooks, one per stage.
    fn controller(world: &FakeWorld, extra: &[(&str, &str)]) -> Controller<FakePorts> {
        for (key, desired) in [
            ("us-east-1/app", 4),
            ("us-west-2/app", 1),
            ("eu-west-1/app", 1),
        ] {
            world.groups.set_sizes(key, 1, desired, 10);
        }
        let mut vars = extra.to_vec();
        vars.extend([
            ("HOOKS", HOOKS),
            ("APP_NAME", "shop"),
            ("COOLDOWN_SECONDS", "0"),
            ("FAILBACK_MODE", "approve"),
        ]);
        Controller::new(Arc::new(config_with(&vars)), world.ports())
    }

    fn function_error() -> HookBehaviour {
        HookBehaviour::FunctionError {
            error_type: "CacheUnreachable".into(),
            message: "redis://cache:6379 refused the connection".into(),
        }
    }

    fn ok(delay_ms: u64) -> HookBehaviour {
        HookBehaviour::Succeed {
            delay_ms,
            answer: json!({"done": true}),
        }
    }

    async fn failover(c: &Controller<FakePorts>) -> Response {
        let out = c.handle(alarm_on("us-east-1")).await.expect("handled");
        assert_eq!(out.outcome, Answer::Switched, "{out:?}");
        out
    }

    fn hook(c: &Controller<FakePorts>, key: &str) -> HookStatus {
        let t = c.ports.control.state().unwrap().transition.unwrap();
        t.outcome::<HookStatus>(key)
            .unwrap_or_else(|| panic!("no record of {key}: {:?}", t.steps))
    }

    #[tokio::test(start_paused = true)]
    async fn each_stage_runs_in_its_place_among_the_built_in_steps() {
        let world = FakeWorld::new();
        let c = controller(&world, &[]);
        let out = failover(&c).await;
        let writes = world.crash.history();
        // The n-th Invoke is the n-th payload the hooks received.
        let invokes: Vec<usize> = (0..writes.len())
            .filter(|&i| writes[i].starts_with("lambda:Invoke"))
            .collect();
        let calls = world.hooks.calls.lock().unwrap().clone();
        assert_eq!(invokes.len(), 3, "{writes:?}");
        let at = |function: &str| {
            invokes[calls
                .iter()
                .position(|(f, _)| f == function)
                .unwrap_or_else(|| panic!("{function} was not invoked"))]
        };
        let first = |prefix: &str| writes.iter().position(|w| w.starts_with(prefix));
        let last = |prefix: &str| writes.iter().rposition(|w| w.starts_with(prefix));
        println!("writes: {writes:#?}");
        let capacity = first("autoscaling:SetDesiredCapacity").expect("a raise");
        let refresh = first("autoscaling:StartInstanceRefresh").expect("a refresh");
        // prepare: before anything of the act stage.
        assert!(at("stop-writers") < capacity.min(refresh), "{writes:?}");
        // act: after the target's parameter, beside the built-in act steps.
        let published = first("ssm:PutParameter@us-west-2").unwrap();
        assert!(at("clear-cache") > published, "{writes:?}");
        // verify: after every other step's write, in every region.
        let others = writes
            .iter()
            .rposition(|w| !w.starts_with("lambda:") && !w.starts_with("dynamodb:"))
            .unwrap();
        assert!(at("smoke-test") > others, "{writes:?}");
        assert!(at("smoke-test") > last("autoscaling:").unwrap());
        // The answer lists each hook with its outcome.
        let hooks = out.outcomes::<HookStatus>().expect("hooks in the answer");
        assert_eq!(hooks.len(), 3, "{hooks:?}");
        assert!(hooks.values().all(|h| h.status == HookPhase::Succeeded));
        assert_eq!(
            hooks["verify/smoke-test"].answer.as_deref(),
            Some(r#"{"ok":true}"#)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retried_hook_gets_the_same_payload_and_idempotency_key() {
        let world = FakeWorld::new();
        let c = controller(&world, &[]);
        world
            .hooks
            .script("smoke-test", vec![function_error(), ok(0)]);
        failover(&c).await;
        let first = hook(&c, "verify/smoke-test");
        assert_eq!(first.status, HookPhase::Failed, "{first:?}");
        assert_eq!(first.attempts, 1);
        let report = c.verify().await.unwrap();
        let second = hook(&c, "verify/smoke-test");
        assert_eq!(second.status, HookPhase::Succeeded, "{second:?}");
        assert_eq!(second.attempts, 2);
        assert!(
            report
                .reconcile
                .fixed
                .iter()
                .any(|f| f.contains("verify/smoke-test: succeeded (call 2)")),
            "{:?}",
            report.reconcile
        );
        let payloads = world.hooks.payloads("smoke-test");
        println!(
            "the payload smoke-test received: {}",
            serde_json::to_string_pretty(&payloads[0]).unwrap()
        );
        assert_eq!(payloads.len(), 2);
        assert_eq!(payloads[0], payloads[1], "a retry sends the same payload");
        assert_eq!(
            payloads[0],
            json!({
                "app": "shop",
                "epoch": 1,
                "from": "us-east-1",
                "to": "us-west-2",
                "stage": "verify",
                "trigger": {"kind": "alarm", "name": "regionpilot-unhealthy-us-east-1"},
                "forced": false,
                "direction": "failover",
                "idempotency_key": "shop-1-verify-smoke-test",
            })
        );
        // Every hook of the transition has its own key.
        let keys: Vec<Value> = ["stop-writers", "clear-cache"]
            .iter()
            .map(|f| world.hooks.payloads(f)[0]["idempotency_key"].clone())
            .collect();
        assert_eq!(
            keys,
            ["shop-1-prepare-stop-writers", "shop-1-act-clear-cache"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_function_error_is_retried_then_given_up_after_hook_max_attempts_and_told() {
        let world = FakeWorld::new();
        let c = controller(&world, &[("HOOK_MAX_ATTEMPTS", "3")]);
        world.hooks.script("clear-cache", vec![function_error()]);
        failover(&c).await;
        for attempt in 1..=3 {
            let h = hook(&c, "act/clear-cache");
            assert_eq!(h.attempts, attempt, "{h:?}");
            assert_eq!(h.error_type.as_deref(), Some("CacheUnreachable"));
            let expected = if attempt < 3 {
                HookPhase::Failed
            } else {
                HookPhase::GivenUp
            };
            assert_eq!(h.status, expected, "{h:?}");
            c.verify().await.unwrap();
        }
        // Given up: the next runs call it no more.
        c.verify().await.unwrap();
        assert_eq!(world.hooks.payloads("clear-cache").len(), 3);
        let t = c.ports.control.state().unwrap().transition.unwrap();
        let entry = t.step("hook", "act/clear-cache").unwrap();
        let error = entry.error.as_ref().expect("recorded as failed");
        assert!(
            error
                .message
                .contains("CacheUnreachable: redis://cache:6379 refused the connection"),
            "{error:?}"
        );
        let told: Vec<_> = world
            .bus
            .put
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n.detail_type == "Step Given Up")
            .cloned()
            .collect();
        assert_eq!(told.len(), 1, "told once: {told:?}");
        println!("told: {}", told[0].detail);
        assert_eq!(told[0].detail["key"], "act/clear-cache");
        assert!(
            told[0].detail["outcome"]
                .as_str()
                .unwrap()
                .contains("given up after 3 calls")
        );
        // The switch's other steps were never held by it.
        assert_eq!(hook(&c, "verify/smoke-test").status, HookPhase::Succeeded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hook_still_running_when_the_switch_stops_waiting_is_finished_by_reconcile() {
        let world = FakeWorld::new();
        let c = controller(&world, &[]);
        // Longer than the switch waits (8 s), well inside HOOK_TIMEOUT_SECONDS (60).
        world
            .hooks
            .script("smoke-test", vec![HookBehaviour::Hang, ok(20_000)]);
        let started = tokio::time::Instant::now();
        failover(&c).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(50));
        let waiting = hook(&c, "verify/smoke-test");
        assert_eq!(waiting.status, HookPhase::Waiting, "{waiting:?}");
        assert_eq!(waiting.attempts, 1);
        // Reconcile waits up to HOOK_TIMEOUT_SECONDS: the repeat answers in 20 s.
        let report = c.verify().await.unwrap();
        let done = hook(&c, "verify/smoke-test");
        assert_eq!(done.status, HookPhase::Succeeded, "{done:?}");
        assert_eq!(done.attempts, 2);
        assert!(
            report
                .reconcile
                .following
                .iter()
                .any(|f| f.starts_with("verify/smoke-test: succeeded")),
            "its own course, not drift: {:?}",
            report.reconcile
        );
        let payloads = world.hooks.payloads("smoke-test");
        assert_eq!(
            payloads[0]["idempotency_key"],
            payloads[1]["idempotency_key"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hook_that_outlives_hook_timeout_seconds_fails_as_a_timeout() {
        let world = FakeWorld::new();
        let c = controller(&world, &[("HOOK_TIMEOUT_SECONDS", "5")]);
        world.hooks.script("clear-cache", vec![HookBehaviour::Hang]);
        failover(&c).await;
        let h = hook(&c, "act/clear-cache");
        assert_eq!(h.status, HookPhase::Failed, "{h:?}");
        assert_eq!(h.error_type.as_deref(), Some("Timeout"));
        assert_eq!(h.error_kind, Some(ErrorKind::Timeout));
        assert!(
            h.error
                .as_deref()
                .unwrap()
                .contains("HOOK_TIMEOUT_SECONDS (5 s)")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_or_hung_prepare_hook_does_not_stop_the_switch() {
        for behaviour in [function_error(), HookBehaviour::Hang] {
            let world = FakeWorld::new();
            let c = controller(&world, &[]);
            world.hooks.script("stop-writers", vec![behaviour.clone()]);
            let out = failover(&c).await;
            let prepare = hook(&c, "prepare/stop-writers");
            assert_ne!(prepare.status, HookPhase::Succeeded, "{behaviour:?}");
            // The parameter, the capacity and the reload went on, and so did the others.
            for region in ["us-east-1", "us-west-2", "eu-west-1"] {
                assert_eq!(
                    world.parameters.values.lock().unwrap()[&crate::testing::region(region)],
                    "us-west-2"
                );
            }
            assert_eq!(world.groups.sizes_of("us-west-2/app").desired, 4);
            assert!(out.outcomes::<crate::state::RefreshStatus>().is_some());
            assert_eq!(hook(&c, "verify/smoke-test").status, HookPhase::Succeeded);
            assert_eq!(hook(&c, "act/clear-cache").status, HookPhase::Succeeded);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_dry_run_lists_each_hook_with_its_payload_and_calls_none() {
        let world = FakeWorld::new();
        let c = controller(&world, &[]);
        let out = c
            .handle(Trigger::Command(Command::Failover {
                target_region: None,
                reason: "rehearsal".into(),
                dry_run: true,
                force: true,
            }))
            .await
            .unwrap();
        assert_eq!(out.outcome, Answer::DryRun, "{out:?}");
        let plan = out.plan.expect("a plan");
        let hooks: Vec<_> = plan.steps.iter().filter(|s| s.step == "hook").collect();
        println!("{}", serde_json::to_string_pretty(&hooks).unwrap());
        let stages: Vec<&str> = hooks.iter().map(|s| s.stage).collect();
        assert_eq!(stages, ["prepare", "act", "verify"]);
        let smoke = hooks[2].call.as_ref().unwrap();
        assert_eq!(smoke["function"], "smoke-test");
        assert_eq!(smoke["region"], "us-west-2");
        assert_eq!(
            smoke["payload"]["idempotency_key"],
            "shop-1-verify-smoke-test"
        );
        assert_eq!(
            smoke["payload"]["trigger"],
            json!({"kind": "manual", "name": "failover"})
        );
        assert_eq!(smoke["payload"]["forced"], true);
        assert!(
            world.hooks.calls.lock().unwrap().is_empty(),
            "a dry run calls nothing"
        );
    }

    /// Every write of a switch with three hooks is applied and then answered with a 500
    /// (AWS's own fault), in turn: a hook whose invocation ran but answered an error is
    /// recorded failed and called again by the verifier under the same key; every other
    /// lost answer leaves the hooks alone. Each hook ends succeeded, called at most twice.
    #[tokio::test(start_paused = true)]
    async fn a_write_applied_then_answered_500_leaves_each_hook_succeeded_under_one_key() {
        let mut point = 0;
        let mut writes = None;
        let mut retried = 0;
        loop {
            let world = FakeWorld::new();
            let c = controller(&world, &[]);
            world.crash.lose_answers(point, LostAnswer::Error, 1);
            c.handle(alarm_on("us-east-1")).await.expect("handled");
            let lost = world.crash.lost_answers();
            writes.get_or_insert(world.crash.writes());
            world.crash.disarm();
            let case = format!("write {point} answered 500 (lost {lost})");
            c.verify().await.expect("verified");
            retried += each_hook_succeeded_under_one_key(&world, &case);
            point += 1;
            if writes.is_some_and(|w| point >= w) {
                break;
            }
        }
        println!(
            "each of {} writes applied then answered 500: {retried} hook calls repeated, each under its first call's key",
            writes.unwrap()
        );
        assert!(retried >= 3, "each hook's own invoke was among the faults");
    }

    /// After a fault and its recovery: each of the three hooks succeeded, called once or
    /// twice (a call that landed before its record is made again), every call of a hook
    /// with the same payload, so under one key. Returns how many calls were repeats.
    fn each_hook_succeeded_under_one_key(world: &FakeWorld, case: &str) -> usize {
        let t = world.control.state().unwrap().transition.unwrap();
        for key in [
            "prepare/stop-writers",
            "act/clear-cache",
            "verify/smoke-test",
        ] {
            let h = t.outcome::<HookStatus>(key);
            assert_eq!(
                h.as_ref().map(|h| h.status),
                Some(HookPhase::Succeeded),
                "{case}: {key}: {h:?}"
            );
        }
        let mut repeated = 0;
        for function in ["stop-writers", "clear-cache", "smoke-test"] {
            let payloads = world.hooks.payloads(function);
            assert!(
                (1..=2).contains(&payloads.len()),
                "{case}: {function} called {} times",
                payloads.len()
            );
            assert!(
                payloads.windows(2).all(|w| w[0] == w[1]),
                "{case}: {payloads:?}"
            );
            repeated += payloads.len() - 1;
        }
        repeated
    }

    /// The failover dies at every write of a switch with three hooks (before it lands,
    /// and after), and a new process finishes by the retried alarm and the verifier: every
    /// hook succeeds, each called at most once more than once (a call that landed before
    /// the crash was not recorded), and every call of a hook carried the same key.
    #[tokio::test(start_paused = true)]
    async fn a_crash_at_any_write_is_finished_with_each_hook_called_under_one_key() {
        let mut writes = None;
        let mut point = 0;
        let mut repeated = 0;
        loop {
            for lands in [false, true] {
                let world = FakeWorld::new();
                let c = controller(&world, &[]);
                world.clock.advance(1_000);
                world.crash.arm(point, lands);
                let died = tokio::select! {
                    biased;
                    out = c.handle(alarm_on("us-east-1")) => { out.expect("handled"); false }
                    () = world.crash.dead() => true,
                };
                world.crash.disarm();
                if !died {
                    writes.get_or_insert(world.crash.writes());
                    continue;
                }
                let case = format!(
                    "crash at write {point} ({}: {})",
                    if lands { "landed" } else { "lost" },
                    world.crash.call_of(point + 1)
                );
                world
                    .clock
                    .advance(c.config.transition_lease.as_millis() as u64 + 1_000);
                let next = controller(&world, &[]);
                next.handle(alarm_on("us-east-1")).await.expect("retried");
                next.verify().await.expect("verified");
                let t = world.control.state().unwrap().transition.unwrap();
                assert!(t.completed, "{case}");
                repeated += each_hook_succeeded_under_one_key(&world, &case);
            }
            point += 1;
            if writes.is_some_and(|w| point > w) {
                break;
            }
        }
        println!(
            "crash points over {} writes, each before and after landing; {repeated} hook calls repeated after a crash, each under its first call's key",
            writes.unwrap()
        );
    }
}
