//! `template.yaml` against the code: every variable a function requires is set for it, and
//! every AWS action it calls is granted to it. cfn-lint's own parser reads the template
//! (CloudFormation's short-form tags need it), then the checks run here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use regionpilot::aws::permissions;
use regionpilot_tests::paths;
use serde_json::Value;

/// The template as CloudFormation would see it after the AWS::LanguageExtensions transform:
/// cfn-lint's parser reads the short-form tags, then SAM CLI's own language-extensions
/// processor expands Fn::ForEach, Fn::If and the string functions with these parameters.
fn expanded_template(parameters: &[(&str, &str)]) -> Value {
    let script = r#"
import json, sys
from cfnlint.decode import decode
from samcli.lib.cfn_language_extensions.api import process_template
from samcli.lib.cfn_language_extensions.models import PseudoParameterValues
template, errors = decode(sys.argv[1])
if errors:
    sys.exit(str(errors))
template = json.loads(json.dumps(template))
pseudo = PseudoParameterValues(region="us-west-2", account_id="123456789012", partition="aws", stack_name="rp")
print(json.dumps(process_template(template, json.loads(sys.argv[2]), pseudo)))
"#;
    let parameters: serde_json::Map<String, Value> = parameters
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let out = std::process::Command::new(paths::python())
        .args(["-c", script])
        .arg(paths::workspace().join("template.yaml"))
        .arg(Value::Object(parameters).to_string())
        .output()
        .expect("run python with cfn-lint and SAM CLI (./scripts/setup installs them)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("template as JSON")
}

const THREE_REGIONS: &[(&str, &str)] = &[
    ("Regions", "us-east-1,us-west-2,eu-west-1"),
    (
        "AutoScalingGroups",
        "us-east-1=web-a,us-west-2=web-b,eu-west-1=web-c",
    ),
    ("HealthTable", "app-health"),
];

fn template() -> Value {
    expanded_template(THREE_REGIONS)
}

fn statement<'a>(function: &'a Value, sid: &str) -> Option<&'a Value> {
    function["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|policy| policy["Statement"].as_array().into_iter().flatten())
        .find(|statement| statement["Sid"] == sid)
}

fn function<'a>(template: &'a Value, binary: &str) -> &'a Value {
    template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| {
            r["Type"] == "AWS::Serverless::Function"
                && r["Metadata"]["BuildProperties"]["Binary"] == binary
        })
        .unwrap_or_else(|| panic!("no function builds binary {binary}"))
}

fn granted_actions(function: &Value) -> BTreeSet<String> {
    let mut actions = BTreeSet::new();
    for policy in function["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for statement in policy["Statement"].as_array().into_iter().flatten() {
            if statement["Effect"] != "Allow" {
                continue;
            }
            match &statement["Action"] {
                Value::String(a) => {
                    actions.insert(a.clone());
                }
                Value::Array(list) => {
                    actions.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned)))
                }
                _ => {}
            }
        }
    }
    actions
}

fn environment(template: &Value, function: &Value) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    for vars in [
        &template["Globals"]["Function"]["Environment"]["Variables"],
        &function["Properties"]["Environment"]["Variables"],
    ] {
        names.extend(
            vars.as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone()),
        );
    }
    names
}

#[test]
fn every_function_gets_the_variables_it_requires_and_the_actions_it_calls() {
    let template = template();
    for (binary, actions) in [
        ("failover", permissions::FAILOVER),
        ("health-probe", permissions::HEALTH_PROBE),
        ("failback", permissions::FAILBACK),
    ] {
        let function = function(&template, binary);
        let env = environment(&template, function);
        for name in permissions::REQUIRED_ENV {
            assert!(
                env.contains(*name),
                "{binary}: {name} is not set in template.yaml"
            );
        }
        let granted = granted_actions(function);
        for action in actions {
            assert!(
                granted.contains(*action),
                "{binary}: {action} is called but not granted"
            );
        }
        let extra: Vec<&String> = granted
            .iter()
            .filter(|a| !actions.contains(&a.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "{binary}: granted but never called: {extra:?}"
        );
        assert_eq!(
            function["Properties"]["CodeUri"], ".",
            "{binary}: one shared CodeUri keeps one target/"
        );
    }
}

#[test]
fn wildcard_resources_are_only_for_actions_without_resource_level_permissions() {
    let template = template();
    // Actions AWS documents as supporting no resource-level permissions.
    let resource_less: BTreeSet<&str> = ["autoscaling:DescribeInstanceRefreshes"].into();
    for resource in template["Resources"].as_object().unwrap().values() {
        for policy in resource["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for statement in policy["Statement"].as_array().into_iter().flatten() {
                if statement["Resource"] != "*" {
                    continue;
                }
                let actions: Vec<&str> = match &statement["Action"] {
                    Value::String(a) => vec![a.as_str()],
                    Value::Array(l) => l.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                for action in actions {
                    assert!(
                        resource_less.contains(action),
                        "{action} is granted on * but supports resource-level permissions"
                    );
                }
            }
        }
    }
}

#[test]
fn every_region_gets_an_alarm_that_invokes_failover() {
    let template = template();
    let alarms: Vec<&Value> = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    let mut alarmed: Vec<&str> = alarms
        .iter()
        .map(|a| a["Properties"]["Dimensions"][0]["Value"].as_str().unwrap())
        .collect();
    alarmed.sort_unstable();
    assert_eq!(alarmed, ["eu-west-1", "us-east-1", "us-west-2"]);
    for alarm in alarms {
        let props = &alarm["Properties"];
        let region = props["Dimensions"][0]["Value"].as_str().unwrap();
        // The failover decoder falls back to the name's region suffix; keep them in step.
        assert_eq!(props["AlarmName"], format!("rp-unhealthy-{region}"));
        assert_eq!(
            props["Period"], 10,
            "high resolution: the probe samples every 10 s"
        );
        assert_eq!(
            props["AlarmActions"][0]["Fn::GetAtt"][0],
            "FailoverFunction"
        );
    }
}

#[test]
fn instance_refresh_is_granted_on_exactly_the_configured_groups() {
    let expected = [
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/web-a",
        "arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:*:autoScalingGroupName/web-b",
        "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/web-c",
    ];
    let template = template();
    for binary in ["failover", "failback"] {
        let rolling = statement(function(&template, binary), "RollingUpdate")
            .unwrap_or_else(|| panic!("{binary}: no RollingUpdate statement"));
        assert_eq!(rolling["Resource"], serde_json::json!(expected), "{binary}");
    }

    let without_groups =
        expanded_template(&[("Regions", "us-east-1,us-west-2"), ("HealthTable", "t")]);
    for binary in ["failover", "failback"] {
        assert!(
            statement(function(&without_groups, binary), "RollingUpdate").is_none(),
            "{binary}: no groups configured, so no Auto Scaling write access"
        );
    }
}
