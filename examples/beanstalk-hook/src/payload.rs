//! What regionpilot sends a hook, once per region switch and stage (see the README's
//! "Writing a hook"). Every documented field is required and typed; fields a later
//! regionpilot adds are ignored, so the hook keeps working.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::is_region;
use crate::error::HookError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Payload {
    /// The application regionpilot protects (`shop`).
    pub app: String,
    /// The switch's number: one more for every region switch of the application.
    pub epoch: u64,
    pub from: String,
    pub to: String,
    pub stage: Stage,
    pub trigger: Trigger,
    /// The switch was forced past regionpilot's safety checks by an operator.
    pub forced: bool,
    pub direction: Direction,
    /// `<app>-<epoch>-<stage>-<function>`: the same on every retry of this hook in this
    /// switch, different in every other call.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Before the switch acts (stop writers, drain queues).
    Prepare,
    /// Beside regionpilot's own steps, after the active-region parameter is published.
    Act,
    /// After every other step (a smoke test).
    Verify,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// The alarm's name, or the operator's reason; absent when there is none.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    Alarm,
    Manual,
    Verifier,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Failover,
    Failback,
}

impl Payload {
    /// Decodes and checks a payload. The error names the field: `to` (missing),
    /// `trigger.kind` (unknown variant), `epoch` (invalid type), never a panic.
    pub fn from_value(value: &Value) -> Result<Payload, HookError> {
        if !value.is_object() {
            return Err(HookError::payload(
                "(payload)",
                format!("expected a JSON object, got {}", kind_of(value)),
            ));
        }
        let payload: Payload = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            HookError::payload(field_of(&path, &inner), inner)
        })?;
        payload.check()?;
        Ok(payload)
    }

    fn check(&self) -> Result<(), HookError> {
        for (field, value) in [
            ("app", &self.app),
            ("idempotency_key", &self.idempotency_key),
        ] {
            if value.trim().is_empty() {
                return Err(HookError::payload(field, "must not be empty"));
            }
        }
        for (field, value) in [("from", &self.from), ("to", &self.to)] {
            if !is_region(value) {
                return Err(HookError::payload(
                    field,
                    format!("`{value}` is not an AWS region name (like us-west-2)"),
                ));
            }
        }
        Ok(())
    }
}

/// The field a serde error is about: the path, or for a missing field the path joined with
/// the field serde names ("missing field `kind`" at `trigger` is `trigger.kind`).
fn field_of(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (".", None) => "(payload)".to_owned(),
        (path, None) => path.to_owned(),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn example() -> Value {
        json!({"app": "shop", "epoch": 7, "from": "us-east-1", "to": "us-west-2", "stage": "act",
               "trigger": {"kind": "alarm", "name": "shop-home-unhealthy"},
               "forced": false, "direction": "failover",
               "idempotency_key": "shop-7-act-beanstalk-hook"})
    }

    #[test]
    fn the_documented_payload_decodes_and_extra_fields_are_ignored() {
        let mut value = example();
        value["added_later"] = json!({"anything": 1});
        let payload = Payload::from_value(&value).expect("valid");
        assert_eq!(payload.to, "us-west-2");
        assert_eq!(payload.stage, Stage::Act);
        assert_eq!(payload.trigger.kind, TriggerKind::Alarm);
        assert_eq!(payload.direction, Direction::Failover);
        assert_eq!(payload.idempotency_key, "shop-7-act-beanstalk-hook");
    }

    #[test]
    fn a_manual_trigger_may_have_no_name() {
        let mut value = example();
        value["trigger"] = json!({"kind": "manual"});
        let payload = Payload::from_value(&value).expect("valid");
        assert_eq!(payload.trigger.name, None);
    }

    /// Each malformed payload is refused with an error naming the field.
    #[test]
    fn every_malformed_payload_names_its_field() {
        type Spoil = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Spoil)> = vec![
            (
                "to",
                Box::new(|v| {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("to");
                    }
                }),
            ),
            ("to", Box::new(|v| v["to"] = json!(42))),
            ("to", Box::new(|v| v["to"] = json!("mars"))),
            ("from", Box::new(|v| v["from"] = json!(""))),
            ("epoch", Box::new(|v| v["epoch"] = json!("7"))),
            ("epoch", Box::new(|v| v["epoch"] = json!(-1))),
            ("stage", Box::new(|v| v["stage"] = json!("during"))),
            (
                "trigger.kind",
                Box::new(|v| v["trigger"]["kind"] = json!("pager")),
            ),
            ("trigger.kind", Box::new(|v| v["trigger"] = json!({}))),
            ("trigger", Box::new(|v| v["trigger"] = json!("alarm"))),
            ("forced", Box::new(|v| v["forced"] = json!("no"))),
            (
                "direction",
                Box::new(|v| v["direction"] = json!("sideways")),
            ),
            ("app", Box::new(|v| v["app"] = json!(" "))),
            (
                "idempotency_key",
                Box::new(|v| v["idempotency_key"] = json!(null)),
            ),
        ];
        for (field, spoil) in cases {
            let mut value = example();
            spoil(&mut value);
            match Payload::from_value(&value) {
                Err(HookError::Payload { field: got, .. }) => {
                    assert_eq!(got, field, "{value}")
                }
                other => panic!("{value} should be refused, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_payload_that_is_not_an_object_is_refused() {
        for value in [json!(null), json!("act"), json!([1, 2]), json!(7)] {
            let error = Payload::from_value(&value).expect_err("refused");
            assert_eq!(error.error_type(), "InvalidPayload");
            assert!(error.to_string().contains("(payload)"), "{error}");
        }
    }
}
