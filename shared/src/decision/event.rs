//! Decodes every trigger into one domain type at the edge:
//!
//! 1. a CloudWatch alarm invoking the function directly (`source: aws.cloudwatch`,
//!    `alarmData`): `aws_lambda_events`' `CloudWatchAlarm`, with the configuration and the
//!    reason data left as JSON so metric, metric-math and composite alarms all decode;
//! 2. an EventBridge "CloudWatch Alarm State Change" event: `EventBridgeEvent`, whose
//!    `detail` is the same alarm data as (1);
//! 3. an SNS notification: `SnsEvent`, whose `Message` is the classic CloudWatch alarm
//!    JSON. That message is read with our own lenient type, because the crate's
//!    `CloudWatchAlarmPayload` rejects what AWS sends (`"AlarmDescription": null` for an
//!    alarm without a description; the test `crate_rejects_documented_sns_alarm_messages`
//!    shows it);
//! 4. a manual command (`{"command": ...}`).
//!
//! Anything that is none of the above is rejected with a message that says what was
//! expected, and which field was wrong.

use aws_lambda_events::cloudwatch_alarms::{
    CloudWatchAlarm, CloudWatchAlarmData, CloudWatchAlarmStateValue as StateValue,
};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::region::Region;
use crate::text;

/// Larger payloads are rejected before any parsing work: real alarm events are a few KiB.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Alarm(AlarmSignal),
    Command(Command),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Alarm,
    Ok,
    InsufficientData,
}

impl AlarmState {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "ALARM" => Some(AlarmState::Alarm),
            "OK" => Some(AlarmState::Ok),
            "INSUFFICIENT_DATA" => Some(AlarmState::InsufficientData),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Alarm => "ALARM",
            AlarmState::Ok => "OK",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// Which path an alarm came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmSource {
    Direct,
    EventBridge,
    Sns,
}

impl AlarmSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmSource::Direct => "cloudwatch",
            AlarmSource::EventBridge => "eventbridge",
            AlarmSource::Sns => "sns",
        }
    }
}

/// An alarm state change about one configured region.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSignal {
    pub alarm_name: String,
    pub state: AlarmState,
    /// The region the alarm speaks for (not the region the alarm lives in).
    pub region: Region,
    pub source: AlarmSource,
    pub state_reason: Option<String>,
    /// A composite alarm whose actions an actions suppressor holds back still sends its
    /// state change to EventBridge, with `state.actionsSuppressedBy` (`Alarm`,
    /// `WaitPeriod` or `ExtensionPeriod`): people suppress to keep automation out during
    /// maintenance, so such a change acts on nothing.
    pub actions_suppressed: Option<Suppression>,
}

/// Why CloudWatch held an alarm's actions back, as its state reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    /// `Alarm`, `WaitPeriod` or `ExtensionPeriod`.
    pub by: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Status,
    Failover {
        target_region: Option<Region>,
        reason: String,
        dry_run: bool,
        force: bool,
    },
    Failback {
        reason: String,
        dry_run: bool,
        force: bool,
    },
    Pause {
        reason: String,
    },
    Resume,
    /// One transition's full record; `epoch` `None` means the latest.
    Report {
        epoch: Option<u64>,
        markdown: bool,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::Failover { .. } => "failover",
            Command::Failback { .. } => "failback",
            Command::Pause { .. } => "pause",
            Command::Resume => "resume",
            Command::Report { .. } => "report",
        }
    }
}

const EXPECTED: &str = "expected a CloudWatch alarm (direct, EventBridge \"CloudWatch Alarm State Change\", or SNS), \
or a command such as {\"command\":\"status\"}, {\"command\":\"failover\",\"target_region\":\"...\"}, \
{\"command\":\"failback\"}, {\"command\":\"pause\",\"reason\":\"...\"}, {\"command\":\"resume\"} \
or {\"command\":\"report\",\"epoch\":1}";

/// Decodes a raw Lambda payload into a trigger, or says what was wrong with it.
pub fn decode(payload: &Value, config: &Config) -> Result<Trigger> {
    let size = serde_json::to_vec(payload)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_EVENT_BYTES {
        return Err(Error::invalid(format!(
            "payload is {size} bytes; at most {MAX_EVENT_BYTES} are accepted"
        )));
    }
    let Some(object) = payload.as_object() else {
        return Err(Error::invalid(format!(
            "payload is {}, not a JSON object; {EXPECTED}",
            json_kind(payload)
        )));
    };
    if object.contains_key("command") {
        return decode_command(object, config).map(Trigger::Command);
    }
    if object.contains_key("detail-type") {
        return decode_eventbridge(payload, config).map(Trigger::Alarm);
    }
    if object.contains_key("alarmData") {
        let alarm: CloudWatchAlarm<Value, Value> = from_value_naming_the_field(payload.clone())
            .map_err(|e| Error::invalid(format!("CloudWatch alarm event is malformed: {e}")))?;
        return decode_alarm(alarm.alarm_data, AlarmSource::Direct, config).map(Trigger::Alarm);
    }
    if object.contains_key("Records") {
        return decode_sns(payload, config).map(Trigger::Alarm);
    }
    Err(Error::invalid(format!(
        "unrecognised event with keys [{}]; {EXPECTED}",
        text::clip(
            &object
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            200
        )
    )))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ----- scheduled functions -----

/// Decodes the payload of a scheduled function that people also invoke by hand: an empty
/// payload or a scheduled event (EventBridge rule or Scheduler) means `scheduled`/`empty`,
/// `{"command": name}` means the matching entry of `commands`; anything else is rejected
/// with what was expected.
pub fn decode_scheduled<T: Copy>(
    payload: &Value,
    empty: T,
    scheduled: T,
    commands: &[(&str, T)],
) -> Result<T> {
    let names: Vec<String> = commands
        .iter()
        .map(|(n, _)| format!("{{\"command\":\"{n}\"}}"))
        .collect();
    let expected = format!(
        "expected {}, an empty payload, or a scheduled event",
        names.join(", ")
    );
    let map = match payload {
        Value::Null => return Ok(empty),
        Value::Object(map) if map.is_empty() => return Ok(empty),
        Value::Object(map) => map,
        other => {
            return Err(Error::invalid(format!(
                "payload is {}, not a JSON object; {expected}",
                json_kind(other)
            )));
        }
    };
    if let Some(command) = map.get("command") {
        if map.len() > 1 {
            let extra: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "command")
                .collect();
            return Err(Error::invalid(format!(
                "unknown field(s) {extra:?}; {expected}"
            )));
        }
        let wanted = command.as_str();
        return commands
            .iter()
            .find(|(name, _)| Some(*name) == wanted)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown command {}; {expected}",
                    text::clip(&command.to_string(), 40)
                ))
            });
    }
    // An EventBridge rule's or EventBridge Scheduler's event: the envelope is checked with
    // the crate's type, the detail is not read.
    if map.contains_key("detail-type") || map.contains_key("source") {
        let event: EventBridgeEvent<Value> =
            from_value_naming_the_field(payload.clone()).map_err(|e| {
                Error::invalid(format!("EventBridge event is malformed: {e}; {expected}"))
            })?;
        let is_schedule = event.detail_type == "Scheduled Event"
            || matches!(event.source.as_str(), "aws.events" | "aws.scheduler");
        if is_schedule {
            return Ok(scheduled);
        }
        return Err(Error::invalid(format!(
            "EventBridge event {:?} from {:?} is not a schedule; {expected}",
            text::clip(&event.detail_type, 80),
            text::clip(&event.source, 80)
        )));
    }
    Err(Error::invalid(format!("unrecognised event; {expected}")))
}

// ----- commands -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailoverArgs {
    #[serde(default)]
    target_region: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailbackArgs {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonArgs {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportArgs {
    #[serde(default)]
    epoch: Option<u64>,
    #[serde(default)]
    format: Option<String>,
}

fn args<T: for<'de> Deserialize<'de>>(name: &str, rest: Map<String, Value>) -> Result<T> {
    from_value_naming_the_field(Value::Object(rest))
        .map_err(|e| Error::invalid(format!("command {name:?}: {e}")))
}

/// `serde_json::from_value`, with the path of the offending field in the error
/// (`force: invalid type: string "yes", expected a boolean`).
fn from_value_naming_the_field<T: for<'de> Deserialize<'de>>(
    value: Value,
) -> std::result::Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })
}

fn reason_or(name: &str, given: Option<String>, default: &str) -> Result<String> {
    match given {
        Some(text) => {
            let cleaned = text::reason(&text)
                .map_err(|e| Error::invalid(format!("command {name:?}: {e}")))?;
            Ok(if cleaned.is_empty() {
                default.to_owned()
            } else {
                cleaned
            })
        }
        None => Ok(default.to_owned()),
    }
}

fn decode_command(object: &Map<String, Value>, config: &Config) -> Result<Command> {
    let Some(name) = object.get("command").and_then(Value::as_str) else {
        return Err(Error::invalid(
            "\"command\" must be a string: status, failover, failback, pause, resume or report",
        ));
    };
    let mut rest = object.clone();
    rest.remove("command");
    match name {
        "status" => args::<NoArgs>(name, rest).map(|_| Command::Status),
        "failover" => {
            let a: FailoverArgs = args(name, rest)?;
            let target_region = match a.target_region {
                None => None,
                Some(text) => Some(configured_region(&text, config, "target_region")?),
            };
            Ok(Command::Failover {
                target_region,
                reason: reason_or(name, a.reason, "manual failover")?,
                dry_run: a.dry_run,
                force: a.force,
            })
        }
        "failback" => {
            let a: FailbackArgs = args(name, rest)?;
            Ok(Command::Failback {
                reason: reason_or(name, a.reason, "manual failback")?,
                dry_run: a.dry_run,
                force: a.force,
            })
        }
        "pause" => {
            let a: ReasonArgs = args(name, rest)?;
            Ok(Command::Pause {
                reason: reason_or(name, a.reason, "paused by operator")?,
            })
        }
        "resume" => args::<NoArgs>(name, rest).map(|_| Command::Resume),
        "report" => {
            let a: ReportArgs = args(name, rest)?;
            let markdown = match a.format.as_deref() {
                None | Some("json") => false,
                Some("markdown") => true,
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "command \"report\": format {:?} is neither json nor markdown",
                        text::clip(other, 40)
                    )));
                }
            };
            if a.epoch == Some(0) {
                return Err(Error::invalid(
                    "command \"report\": epoch 0 is the initial state, not a transition; epochs start at 1",
                ));
            }
            Ok(Command::Report {
                epoch: a.epoch,
                markdown,
            })
        }
        other => Err(Error::invalid(format!(
            "unknown command {:?}; expected status, failover, failback, pause, resume or report",
            text::clip(other, 40)
        ))),
    }
}

fn configured_region(text: &str, config: &Config, field: &str) -> Result<Region> {
    let region = Region::parse(text).map_err(|e| Error::invalid(format!("{field}: {e}")))?;
    if config.contains(&region) {
        Ok(region)
    } else {
        Err(Error::invalid(format!(
            "{field} {region} is not one of the configured REGIONS ({})",
            region_list(config)
        )))
    }
}

fn region_list(config: &Config) -> String {
    config
        .regions
        .iter()
        .map(Region::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

// ----- alarms -----

fn decode_eventbridge(payload: &Value, config: &Config) -> Result<AlarmSignal> {
    if payload.get("detail").is_none() {
        return Err(Error::invalid("EventBridge event has no \"detail\" object"));
    }
    let event: EventBridgeEvent<Value> = from_value_naming_the_field(payload.clone())
        .map_err(|e| Error::invalid(format!("EventBridge event is malformed: {e}")))?;
    if event.detail_type != "CloudWatch Alarm State Change" {
        return Err(Error::invalid(format!(
            "EventBridge detail-type {:?} is not handled; expected \"CloudWatch Alarm State Change\"",
            text::clip(&event.detail_type, 80)
        )));
    }
    let data: CloudWatchAlarmData<Value, Value> = from_value_naming_the_field(event.detail)
        .map_err(|e| {
            Error::invalid(format!(
                "EventBridge alarm event's detail is malformed: {e}"
            ))
        })?;
    decode_alarm(data, AlarmSource::EventBridge, config)
}

fn decode_alarm(
    data: CloudWatchAlarmData<Value, Value>,
    source: AlarmSource,
    config: &Config,
) -> Result<AlarmSignal> {
    let label = source.as_str();
    let state = data
        .state
        .ok_or_else(|| Error::invalid(format!("{label} alarm event has no state")))?;
    let value = match state.value {
        StateValue::Alarm => AlarmState::Alarm,
        StateValue::Ok => AlarmState::Ok,
        StateValue::InsufficientData => AlarmState::InsufficientData,
        // The enum is non-exhaustive: a state added later is not one we act on.
        other => {
            return Err(Error::invalid(format!(
                "{label} alarm event has state {other:?}; expected ALARM, OK or INSUFFICIENT_DATA"
            )));
        }
    };
    let dimensions = region_dimensions_in_configuration(&data.configuration);
    let suppressed = state
        .actions_suppressed_by
        .filter(|by| !by.trim().is_empty())
        .map(|by| Suppression {
            by: text::sanitize(&text::clip(&by, 64)),
            reason: state
                .actions_suppressed_reason
                .map(|r| text::sanitize(&text::clip(&r, 256))),
        });
    let mut signal = signal(
        data.alarm_name,
        value,
        Some(state.reason),
        dimensions,
        source,
        config,
    )?;
    signal.actions_suppressed = suppressed;
    Ok(signal)
}

/// `Region` dimension values from `configuration.metrics[].metricStat.metric.dimensions`,
/// where dimensions are a `{"Name": "value"}` map.
fn region_dimensions_in_configuration(configuration: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(metrics) = configuration.get("metrics").and_then(Value::as_array) {
        for metric in metrics {
            let dimensions = metric
                .pointer("/metricStat/metric/dimensions")
                .and_then(Value::as_object);
            if let Some(dimensions) = dimensions {
                collect_region_from_map(dimensions, &mut found);
            }
        }
    }
    found
}

fn collect_region_from_map(dimensions: &Map<String, Value>, found: &mut Vec<String>) {
    for (name, value) in dimensions {
        if is_region_dimension(name)
            && let Some(v) = value.as_str()
        {
            found.push(v.to_owned());
        }
    }
}

fn is_region_dimension(name: &str) -> bool {
    name.eq_ignore_ascii_case("region")
}

/// The classic alarm notification SNS carries in `Message`. Our own type: the crate's
/// `CloudWatchAlarmPayload` requires fields AWS sends as `null` (see the module docs).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAlarmMessage {
    alarm_name: Option<String>,
    new_state_value: Option<String>,
    new_state_reason: Option<String>,
    #[serde(default)]
    trigger: Option<Value>,
}

fn decode_sns(payload: &Value, config: &Config) -> Result<AlarmSignal> {
    // Other services' records (SQS, S3, DynamoDB streams: `eventSource`) are named as such
    // rather than as SNS records missing fields.
    let first = payload.pointer("/Records/0");
    let source = first
        .and_then(|r| r.get("EventSource").or_else(|| r.get("eventSource")))
        .and_then(Value::as_str);
    if let Some(source) = source.filter(|s| *s != "aws:sns") {
        return Err(Error::invalid(format!(
            "record EventSource is {:?}; only aws:sns records carrying CloudWatch alarms are handled",
            text::clip(source, 40)
        )));
    }
    let event: SnsEvent = from_value_naming_the_field(payload.clone())
        .map_err(|e| Error::invalid(format!("SNS event is malformed: {e}")))?;
    let [record] = event.records.as_slice() else {
        return Err(Error::invalid(format!(
            "expected exactly one SNS record (SNS delivers one per invocation), got {}",
            event.records.len()
        )));
    };
    if record.event_source != "aws:sns" {
        return Err(Error::invalid(format!(
            "record EventSource is {:?}; only aws:sns records carrying CloudWatch alarms are handled",
            text::clip(&record.event_source, 40)
        )));
    }
    let message: SnsAlarmMessage = serde_json::from_str(&record.sns.message).map_err(|e| {
        Error::invalid(format!(
            "SNS Message is not CloudWatch alarm JSON: {}",
            text::clip(&e.to_string(), 120)
        ))
    })?;
    let alarm_name = message
        .alarm_name
        .ok_or_else(|| Error::invalid("SNS alarm message has no AlarmName"))?;
    let state_value = message
        .new_state_value
        .ok_or_else(|| Error::invalid("SNS alarm message has no NewStateValue"))?;
    let state = AlarmState::parse(&state_value).ok_or_else(|| {
        Error::invalid(format!(
            "alarm {:?} has state {:?}; expected ALARM, OK or INSUFFICIENT_DATA",
            text::clip(&alarm_name, 80),
            text::clip(&state_value, 40)
        ))
    })?;
    let dimensions = message
        .trigger
        .as_ref()
        .map(region_dimensions_in_trigger)
        .unwrap_or_default();
    signal(
        alarm_name,
        state,
        message.new_state_reason,
        dimensions,
        AlarmSource::Sns,
        config,
    )
}

/// `Region` dimension values from an SNS alarm's `Trigger`: `Dimensions` is a list of
/// `{"name": .., "value": ..}` for metric alarms, and `Metrics[].MetricStat.Metric.Dimensions`
/// for metric-math alarms.
fn region_dimensions_in_trigger(trigger: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut scan_list = |list: Option<&Value>| {
        for dimension in list.and_then(Value::as_array).into_iter().flatten() {
            let name = dimension
                .get("name")
                .or_else(|| dimension.get("Name"))
                .and_then(Value::as_str);
            let value = dimension
                .get("value")
                .or_else(|| dimension.get("Value"))
                .and_then(Value::as_str);
            if let (Some(name), Some(value)) = (name, value)
                && is_region_dimension(name)
            {
                found.push(value.to_owned());
            }
        }
    };
    scan_list(trigger.get("Dimensions"));
    for metric in trigger
        .get("Metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        scan_list(metric.pointer("/MetricStat/Metric/Dimensions"));
    }
    found
}

fn signal(
    alarm_name: String,
    state: AlarmState,
    state_reason: Option<String>,
    region_dimensions: Vec<String>,
    source: AlarmSource,
    config: &Config,
) -> Result<AlarmSignal> {
    let alarm_name = text::sanitize(&text::clip(&alarm_name, 255));
    let region = alarm_region(&alarm_name, &region_dimensions, config)?;
    Ok(AlarmSignal {
        alarm_name,
        state,
        region,
        source,
        state_reason: state_reason.map(|r| text::sanitize(&text::clip(&r, 512))),
        actions_suppressed: None,
    })
}

/// The region an alarm speaks for: its metric's `Region` dimension; else an alarm name
/// ending in `-<region>` for a configured region; else the event is rejected.
fn alarm_region(alarm_name: &str, dimensions: &[String], config: &Config) -> Result<Region> {
    if let Some(value) = dimensions.first() {
        return configured_region(
            value,
            config,
            &format!("alarm {alarm_name:?} Region dimension"),
        );
    }
    let by_name = config
        .regions
        .iter()
        .find(|region| alarm_name.ends_with(&format!("-{region}")));
    by_name.cloned().ok_or_else(|| {
        Error::invalid(format!(
            "cannot tell which region alarm {alarm_name:?} speaks for: its metric has no Region \
             dimension and its name does not end in -<region> for one of REGIONS ({})",
            region_list(config)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config;
    use serde_json::json;

    fn direct(name: &str, state: &str, dimensions: Value) -> Value {
        json!({
            "source": "aws.cloudwatch",
            "alarmArn": "arn:aws:cloudwatch:us-west-2:123456789012:alarm:x",
            "accountId": "123456789012",
            "time": "2026-11-25T10:00:00.000+0000",
            "region": "us-west-2",
            "alarmData": {
                "alarmName": name,
                "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2026-11-25T10:00:00.000+0000"},
                "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-25T09:00:00.000+0000"},
                "configuration": {
                    "metrics": [{
                        "id": "m1",
                        "metricStat": {"metric": {"namespace": "RegionPilot", "name": "Healthy", "dimensions": dimensions}, "period": 10, "stat": "Minimum"},
                        "returnData": true
                    }]
                }
            }
        })
    }

    fn without_state(mut event: Value) -> Value {
        event["alarmData"]
            .as_object_mut()
            .expect("alarm data")
            .remove("state");
        event
    }

    /// An SNS delivery as AWS documents it, carrying `message` (JSON, or a bare string).
    fn sns_event(message: &Value) -> Value {
        let message = match message {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:us-west-2:1:t:s",
            "Sns": {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-west-2:1:t",
                    "Subject": "ALARM", "Message": message, "Timestamp": "2026-11-25T10:00:00.000Z",
                    "SignatureVersion": "1", "Signature": "s", "SigningCertUrl": "u", "UnsubscribeUrl": "u",
                    "MessageAttributes": {}}
        }]})
    }

    /// The classic alarm message as SNS carries it for a metric alarm without a
    /// description (AWS sends `"AlarmDescription": null`).
    fn sns_alarm_message(region_dimension: &str) -> Value {
        json!({
            "AlarmName": "app-health", "AlarmDescription": null, "AWSAccountId": "123456789012",
            "NewStateValue": "ALARM", "NewStateReason": "Threshold Crossed",
            "StateChangeTime": "2026-11-25T10:00:00.000+0000", "Region": "US West (Oregon)",
            "AlarmArn": "arn:aws:cloudwatch:us-west-2:123456789012:alarm:app-health", "OldStateValue": "OK",
            "Trigger": {"MetricName": "Healthy", "Namespace": "RegionPilot", "StatisticType": "Statistic",
                        "Statistic": "MINIMUM", "Unit": null,
                        "Dimensions": [{"value": region_dimension, "name": "Region"}],
                        "Period": 10, "EvaluationPeriods": 3, "ComparisonOperator": "LessThanThreshold",
                        "Threshold": 1.0, "TreatMissingData": "breaching", "EvaluateLowSampleCountPercentile": ""}
        })
    }

    fn alarm(trigger: Trigger) -> AlarmSignal {
        match trigger {
            Trigger::Alarm(a) => a,
            other => panic!("expected an alarm, got {other:?}"),
        }
    }

    #[test]
    fn direct_alarm_region_comes_from_the_region_dimension() {
        let event = direct("app-unhealthy", "ALARM", json!({"Region": "us-east-1"}));
        let signal = alarm(decode(&event, &config()).unwrap());
        assert_eq!(signal.region.as_str(), "us-east-1");
        assert_eq!(signal.state, AlarmState::Alarm);
        assert_eq!(signal.source, AlarmSource::Direct);
    }

    #[test]
    fn alarm_name_suffix_is_the_fallback() {
        let event = direct("regionpilot-unhealthy-us-west-2", "OK", json!({}));
        let signal = alarm(decode(&event, &config()).unwrap());
        assert_eq!(signal.region.as_str(), "us-west-2");
        assert_eq!(signal.state, AlarmState::Ok);
    }

    #[test]
    fn alarm_without_a_known_region_is_rejected_with_the_reason() {
        let event = direct("app-unhealthy", "ALARM", json!({"TableName": "x"}));
        let err = decode(&event, &config()).unwrap_err().to_string();
        assert!(err.contains("cannot tell which region"), "{err}");
        let event = direct("app-unhealthy", "ALARM", json!({"Region": "ap-south-1"}));
        let err = decode(&event, &config()).unwrap_err().to_string();
        assert!(err.contains("not one of the configured REGIONS"), "{err}");
    }

    #[test]
    fn eventbridge_state_change_is_decoded() {
        let event = json!({
            "version": "0", "id": "c4c1c1c9", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": "123456789012", "time": "2026-11-25T10:00:00Z",
            "region": "us-west-2", "resources": ["arn:aws:cloudwatch:us-west-2:123456789012:alarm:x"],
            "detail": {
                "alarmName": "x",
                "state": {"value": "ALARM", "reason": "r", "timestamp": "2026-11-25T10:00:00.000+0000"},
                "configuration": {"metrics": [{"id": "e1", "expression": "MIN(METRICS())", "returnData": true},
                                              {"id": "m1", "metricStat": {"metric": {"namespace": "N", "name": "Healthy", "dimensions": {"Region": "us-east-1"}}, "period": 60, "stat": "Minimum"}, "returnData": false}]}
            }
        });
        let signal = alarm(decode(&event, &config()).unwrap());
        assert_eq!(signal.region.as_str(), "us-east-1");
        assert_eq!(signal.source, AlarmSource::EventBridge);
    }

    #[test]
    fn sns_classic_alarm_reads_trigger_dimensions_not_the_alarm_home_region() {
        let event = sns_event(&sns_alarm_message("us-east-1"));
        let signal = alarm(decode(&event, &config()).unwrap());
        assert_eq!(signal.region.as_str(), "us-east-1");
        assert_eq!(signal.source, AlarmSource::Sns);
    }

    /// Where our own type was kept: the crate's `CloudWatchAlarmPayload` rejects the
    /// message SNS sends for an alarm without a description, which we must decode.
    #[test]
    fn crate_rejects_documented_sns_alarm_messages() {
        use aws_lambda_events::sns::CloudWatchAlarmPayload;
        let message = sns_alarm_message("us-east-1").to_string();
        let strict = serde_json::from_str::<CloudWatchAlarmPayload>(&message);
        let err = strict.expect_err("the crate accepts a null AlarmDescription now: drop our type");
        assert!(err.to_string().contains("invalid type: null"), "{err}");
        // With a description, the crate takes the same message: the difference is the null.
        let mut described = sns_alarm_message("us-east-1");
        described["AlarmDescription"] = json!("regionpilot: us-east-1 failed its probes");
        assert!(serde_json::from_value::<CloudWatchAlarmPayload>(described).is_ok());
        let signal = alarm(decode(&sns_event(&json!(message)), &config()).unwrap());
        assert_eq!(signal.region.as_str(), "us-east-1");
        assert_eq!(signal.state, AlarmState::Alarm);
    }

    /// AWS's documented composite alarm, invoking the function directly: no metric and so
    /// no Region dimension, the region comes from the name; `reasonData` is a JSON string.
    #[test]
    fn direct_composite_alarm_is_decoded() {
        let event = json!({
            "source": "aws.cloudwatch",
            "alarmArn": "arn:aws:cloudwatch:us-east-1:111122223333:alarm:regionpilot-composite-us-east-1",
            "accountId": "111122223333",
            "time": "2023-08-04T12:56:46.138+0000",
            "region": "us-east-1",
            "alarmData": {
                "alarmName": "regionpilot-composite-us-east-1",
                "state": {
                    "value": "ALARM",
                    "reason": "arn:aws:cloudwatch:us-east-1:111122223333:alarm:CompositeDemo.FirstChild transitioned to ALARM at Friday 04 August, 2023 12:54:46 UTC",
                    "reasonData": "{\"triggeringAlarms\":[{\"arn\":\"arn:aws:cloudwatch:us-east-1:111122223333:alarm:CompositeDemo.FirstChild\",\"state\":{\"value\":\"ALARM\",\"timestamp\":\"2023-08-04T12:54:46.138+0000\"}}]}",
                    "timestamp": "2023-08-04T12:56:46.138+0000"
                },
                "previousState": {
                    "value": "ALARM",
                    "reason": "arn:aws:cloudwatch:us-east-1:111122223333:alarm:CompositeDemo.FirstChild transitioned to ALARM",
                    "timestamp": "2023-08-04T12:54:46.138+0000",
                    "actionsSuppressedBy": "WaitPeriod",
                    "actionsSuppressedReason": "Actions suppressed by WaitPeriod"
                },
                "configuration": {
                    "alarmRule": "ALARM(CompositeDemo.FirstChild) OR ALARM(CompositeDemo.SecondChild)",
                    "actionsSuppressor": "CompositeDemo.ActionsSuppressor",
                    "actionsSuppressorWaitPeriod": 120,
                    "actionsSuppressorExtensionPeriod": 180
                }
            }
        });
        let signal = alarm(decode(&event, &config()).unwrap());
        assert_eq!(signal.region.as_str(), "us-east-1");
        assert_eq!(signal.state, AlarmState::Alarm);
        assert_eq!(signal.source, AlarmSource::Direct);
    }

    /// A suppressed composite alarm's change, as EventBridge carries it (and as a direct
    /// invocation would, should CloudWatch send one): the suppressor is kept, for each
    /// value AWS documents; an empty one is no suppression.
    #[test]
    fn suppressed_actions_are_decoded_with_what_suppressed_them() {
        for by in ["Alarm", "WaitPeriod", "ExtensionPeriod"] {
            let state = json!({
                "value": "ALARM", "reason": "r", "timestamp": "2026-11-25T10:00:00.000+0000",
                "actionsSuppressedBy": by, "actionsSuppressedReason": format!("Actions suppressed by {by}"),
            });
            let bridge = json!({
                "version": "0", "id": "e", "detail-type": "CloudWatch Alarm State Change",
                "source": "aws.cloudwatch", "account": "1", "time": "2026-11-25T10:00:00Z",
                "region": "us-west-2", "resources": [],
                "detail": {"alarmName": "regionpilot-outage-us-east-1", "state": state.clone(),
                           "configuration": {"alarmRule": "ALARM(x)", "actionsSuppressor": "maint"}},
            });
            let mut direct = direct("regionpilot-outage-us-east-1", "ALARM", json!({}));
            direct["alarmData"]["state"] = state;
            for event in [bridge, direct] {
                let signal = alarm(decode(&event, &config()).unwrap());
                let suppressed = signal.actions_suppressed.expect("suppression kept");
                assert_eq!(suppressed.by, by);
                assert_eq!(
                    suppressed.reason.as_deref(),
                    Some(format!("Actions suppressed by {by}").as_str())
                );
            }
        }
        let mut unsuppressed = direct("regionpilot-outage-us-east-1", "ALARM", json!({}));
        unsuppressed["alarmData"]["state"]["actionsSuppressedBy"] = json!("");
        let signal = alarm(decode(&unsuppressed, &config()).unwrap());
        assert_eq!(signal.actions_suppressed, None);
    }

    /// Every fixture in `events/` decodes, through the crate's envelopes.
    #[test]
    fn every_alarm_fixture_decodes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        for (name, source) in [
            ("alarm-direct.json", AlarmSource::Direct),
            ("alarm-direct-ok.json", AlarmSource::Direct),
            ("alarm-eventbridge.json", AlarmSource::EventBridge),
            ("alarm-sns.json", AlarmSource::Sns),
            (
                "alarm-eventbridge-suppressed.json",
                AlarmSource::EventBridge,
            ),
        ] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let event: Value = serde_json::from_str(&text).unwrap();
            let signal = alarm(decode(&event, &config()).unwrap_or_else(|e| panic!("{name}: {e}")));
            assert_eq!(signal.source, source, "{name}");
            assert_eq!(signal.region.as_str(), "us-east-1", "{name}");
        }
    }

    #[test]
    fn scheduled_events_are_checked_with_the_crate_envelope() {
        let commands = [("probe", 2)];
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/scheduled-event.json"),
        )
        .unwrap();
        let rule: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(decode_scheduled(&rule, 0, 1, &commands).ok(), Some(1));
        assert_eq!(decode_scheduled(&json!({}), 0, 1, &commands).ok(), Some(0));
        assert_eq!(
            decode_scheduled(&json!({"command": "probe"}), 0, 1, &commands).ok(),
            Some(2)
        );
        for (event, fragment) in [
            (
                json!({"source": "aws.events"}),
                "missing field `detail-type`",
            ),
            (
                json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}),
                "is not a schedule",
            ),
            (
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}, "time": "yesterday"}),
                "time:",
            ),
        ] {
            let err = decode_scheduled(&event, 0, 1, &commands).unwrap_err();
            assert!(
                err.to_string().contains(fragment),
                "{err} lacks {fragment:?}"
            );
        }
    }

    #[test]
    fn commands_decode_with_defaults() {
        let cmd = decode(
            &json!({"command": "failover", "target_region": "us-west-2"}),
            &config(),
        )
        .unwrap();
        assert_eq!(
            cmd,
            Trigger::Command(Command::Failover {
                target_region: Some(Region::parse("us-west-2").unwrap()),
                reason: "manual failover".into(),
                dry_run: false,
                force: false
            })
        );
        let cmd = decode(
            &json!({"command": "pause", "reason": "maint\nwindow"}),
            &config(),
        )
        .unwrap();
        assert_eq!(
            cmd,
            Trigger::Command(Command::Pause {
                reason: "maint window".into()
            })
        );
    }

    #[test]
    fn bad_input_is_rejected_with_what_was_wrong() {
        let cases = [
            (json!([1, 2]), "not a JSON object"),
            (json!("status"), "a string"),
            (json!({}), "unrecognised event"),
            (json!({"command": 7}), "must be a string"),
            (json!({"command": "explode"}), "unknown command"),
            (
                json!({"command": "failover", "target_region": "ap-south-1"}),
                "not one of the configured REGIONS",
            ),
            (
                json!({"command": "failover", "target_region": "Mars"}),
                "not an AWS region",
            ),
            (
                json!({"command": "failover", "target_regoin": "us-west-2"}),
                "unknown field",
            ),
            (
                json!({"command": "failover", "dry_run": "yes"}),
                "invalid type",
            ),
            (
                json!({"command": "status", "verbose": true}),
                "unknown field",
            ),
            (
                json!({"command": "pause", "reason": "x".repeat(600)}),
                "at most 512",
            ),
            (
                json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}),
                "not handled",
            ),
            (
                json!({"Records": [{"EventSource": "aws:sqs"}]}),
                "only aws:sns",
            ),
            (
                json!({"Records": [{"eventSource": "aws:s3"}]}),
                "only aws:sns",
            ),
            (sns_event(&json!("hello")), "not CloudWatch alarm JSON"),
            (
                json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]}),
                "SNS event is malformed: Records[0]",
            ),
            (
                without_state(direct("x-us-east-1", "ALARM", json!({}))),
                "no state",
            ),
            (
                direct("x-us-east-1", "RED", json!({})),
                "alarmData.state.value: unknown variant `RED`",
            ),
            (
                json!({"source": "aws.cloudwatch", "alarmData": {"alarmName": "x-us-east-1", "state": {"value": "ALARM"}}}),
                "alarmData.state: missing field `reason`",
            ),
            (
                json!({"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "detail": {"alarmName": 7}}),
                "detail is malformed: alarmName: invalid type",
            ),
            (
                json!({"command": "status", "pad": "x".repeat(MAX_EVENT_BYTES)}),
                "bytes; at most",
            ),
        ];
        for (event, fragment) in cases {
            let err = decode(&event, &config()).expect_err("must be rejected");
            assert!(matches!(err, Error::InvalidEvent(_)));
            let text = err.to_string();
            assert!(text.contains(fragment), "{text:?} lacks {fragment:?}");
        }
    }
}
