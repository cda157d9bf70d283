//! `template.yaml` against the code: every variable a function requires is set for it, and
//! every AWS action it calls is granted to it, on exactly the resources it needs. cfn-lint's
//! own parser reads the template (CloudFormation's short-form tags need it), then the checks
//! run here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use regionpilot::aws::permissions;
use regionpilot_tests::paths;
use serde_json::{Value, json};

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

const ACCOUNT: &str = "123456789012";

/// The groups in THREE_REGIONS, as (region, name).
const GROUPS: &[(&str, &str)] = &[
    ("us-east-1", "web-a"),
    ("us-west-2", "web-b"),
    ("eu-west-1", "web-c"),
];

const BINARIES: &[&str] = &["failover", "health-probe", "failback"];

/// The function that builds `binary`, with its logical ID.
fn function<'a>(template: &'a Value, binary: &str) -> (&'a str, &'a Value) {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, r)| {
            r["Type"] == "AWS::Serverless::Function"
                && r["Metadata"]["BuildProperties"]["Binary"] == binary
        })
        .map(|(id, r)| (id.as_str(), r))
        .unwrap_or_else(|| panic!("no function builds binary {binary}"))
}

/// The template's parameter values: `given` over the declared defaults.
fn parameter_values(template: &Value, given: &[(&str, &str)]) -> BTreeMap<String, Value> {
    let mut values: BTreeMap<String, Value> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, p)| p.get("Default").map(|d| (name.clone(), d.clone())))
        .collect();
    for (name, value) in given {
        values.insert((*name).to_owned(), Value::String((*value).to_owned()));
    }
    values
}

/// Evaluates a condition (Conditions section, Fn::If, Rules) over literals, parameter
/// references and other conditions; anything else is a test failure.
fn holds(template: &Value, parameters: &BTreeMap<String, Value>, expr: &Value) -> bool {
    fn value(template: &Value, parameters: &BTreeMap<String, Value>, v: &Value) -> Value {
        match v {
            Value::Object(o) if o.contains_key("Ref") => {
                let name = o["Ref"].as_str().unwrap();
                parameters
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| panic!("condition refers to unknown parameter {name}"))
            }
            Value::Object(_) => Value::Bool(holds(template, parameters, v)),
            Value::Number(n) => Value::String(n.to_string()),
            other => other.clone(),
        }
    }
    let Value::Object(o) = expr else {
        panic!("not a condition: {expr}");
    };
    let (function, args) = o.iter().next().unwrap();
    let args: Vec<&Value> = args
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    match function.as_str() {
        "Fn::Equals" => {
            value(template, parameters, args[0]) == value(template, parameters, args[1])
        }
        "Fn::Not" => !holds(template, parameters, args[0]),
        "Fn::And" => args.iter().all(|a| holds(template, parameters, a)),
        "Fn::Or" => args.iter().any(|a| holds(template, parameters, a)),
        "Condition" => {
            let name = o["Condition"].as_str().unwrap();
            holds(template, parameters, &template["Conditions"][name])
        }
        other => panic!("cannot evaluate {other} in {expr}"),
    }
}

/// Every Allow statement that reaches the function's role: its own policies, and the
/// AWS::IAM::Policy resources attached to `<LogicalId>Role` whose condition holds.
fn statements<'a>(template: &'a Value, binary: &str) -> Vec<&'a Value> {
    let (id, function) = function(template, binary);
    let role = json!({ "Ref": format!("{id}Role") });
    let parameters = parameter_values(template, &[]);
    let mut documents: Vec<&Value> = function["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    for resource in template["Resources"].as_object().unwrap().values() {
        if resource["Type"] != "AWS::IAM::Policy" {
            continue;
        }
        let attached = resource["Properties"]["Roles"]
            .as_array()
            .is_some_and(|roles| roles.contains(&role));
        let created = match resource.get("Condition") {
            None => true,
            Some(name) => holds(template, &parameters, &json!({ "Condition": name })),
        };
        if attached && created {
            documents.push(&resource["Properties"]["PolicyDocument"]);
        }
    }
    documents
        .into_iter()
        .flat_map(|policy| policy["Statement"].as_array().into_iter().flatten())
        .filter(|statement| statement["Effect"] == "Allow")
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn actions(statement: &Value) -> Vec<&str> {
    strings(&statement["Action"])
}

fn granted_actions(template: &Value, binary: &str) -> BTreeSet<String> {
    statements(template, binary)
        .into_iter()
        .flat_map(actions)
        .map(str::to_owned)
        .collect()
}

/// The statements that grant `action` to the function.
fn granting<'a>(template: &'a Value, binary: &str, action: &str) -> Vec<&'a Value> {
    statements(template, binary)
        .into_iter()
        .filter(|statement| actions(statement).contains(&action))
        .collect()
}

fn statement<'a>(template: &'a Value, binary: &str, sid: &str) -> Option<&'a Value> {
    statements(template, binary)
        .into_iter()
        .find(|statement| statement["Sid"] == sid)
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
        let (_, function) = function(&template, binary);
        let env = environment(&template, function);
        for name in permissions::REQUIRED_ENV {
            assert!(
                env.contains(*name),
                "{binary}: {name} is not set in template.yaml"
            );
        }
        let granted = granted_actions(&template, binary);
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
    // Exactly the actions AWS documents as supporting no resource-level permissions (the
    // service authorization reference lists no resource type for them); they can only be
    // granted on "*". Every other action names its resources.
    let resource_less: BTreeSet<&str> = [
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeInstanceRefreshes",
        "ssm:ListCommandInvocations",
    ]
    .into();
    // Every policy in the template, attached or not, switched on or off.
    let mut documents = Vec::new();
    for resource in template["Resources"].as_object().unwrap().values() {
        documents.extend(
            resource["Properties"]["Policies"]
                .as_array()
                .into_iter()
                .flatten(),
        );
        if resource["Type"] == "AWS::IAM::Policy" {
            documents.push(&resource["Properties"]["PolicyDocument"]);
        }
    }
    let mut on_wildcard = BTreeSet::new();
    for statement in documents
        .into_iter()
        .flat_map(|policy| policy["Statement"].as_array().into_iter().flatten())
    {
        if !strings(&statement["Resource"]).contains(&"*") {
            continue;
        }
        for action in actions(statement) {
            assert!(
                resource_less.contains(action),
                "{action} is granted on * but supports resource-level permissions"
            );
            on_wildcard.insert(action);
        }
    }
    assert_eq!(
        on_wildcard, resource_less,
        "each resource-less action is granted (on *) to some function"
    );
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

/// The Auto Scaling ARN of a group, as IAM matches it.
fn group_arn(region: &str, name: &str) -> String {
    format!("arn:aws:autoscaling:{region}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{name}")
}

/// Group and instance write actions: only failover and failback may have them, and only
/// when groups are configured.
const GROUP_WRITES: &[&str] = &[
    "autoscaling:SetDesiredCapacity",
    "autoscaling:StartInstanceRefresh",
    "autoscaling:CancelInstanceRefresh",
    "ssm:SendCommand",
];

#[test]
fn scaling_and_instance_refresh_are_granted_on_exactly_the_configured_groups() {
    let expected: Vec<String> = GROUPS
        .iter()
        .map(|(region, name)| group_arn(region, name))
        .collect();
    let template = template();
    for binary in ["failover", "failback"] {
        let scale = statement(&template, binary, "ScaleAndRefreshGroups")
            .unwrap_or_else(|| panic!("{binary}: no ScaleAndRefreshGroups statement"));
        assert_eq!(scale["Resource"], json!(expected), "{binary}");
        assert!(scale.get("Condition").is_none(), "{binary}");
        for action in [
            "autoscaling:SetDesiredCapacity",
            "autoscaling:StartInstanceRefresh",
            "autoscaling:CancelInstanceRefresh",
        ] {
            let granting = granting(&template, binary, action);
            assert_eq!(
                granting,
                [scale],
                "{binary}: {action} is granted by ScaleAndRefreshGroups alone"
            );
        }
    }
}

#[test]
fn run_command_is_granted_on_the_shell_document_and_the_configured_groups_instances_only() {
    let template = template();
    for binary in ["failover", "failback"] {
        let mut documents = Vec::new();
        let mut instances = BTreeSet::new();
        for statement in granting(&template, binary, "ssm:SendCommand") {
            assert_eq!(
                actions(statement),
                ["ssm:SendCommand"],
                "{binary}: SendCommand statements grant nothing else"
            );
            let resources = strings(&statement["Resource"]);
            assert_eq!(resources.len(), 1, "{binary}: one resource per statement");
            let resource = resources[0];
            if resource.starts_with("arn:aws:ssm:") {
                assert!(
                    statement.get("Condition").is_none(),
                    "{binary}: documents carry no group tag"
                );
                documents.push(resource);
                continue;
            }
            // An instance grant: one region's instances, only those the group's tag names.
            let region = resource
                .strip_prefix("arn:aws:ec2:")
                .and_then(|rest| rest.strip_suffix(&format!(":{ACCOUNT}:instance/*")))
                .unwrap_or_else(|| panic!("{binary}: SendCommand on {resource}"));
            let condition = statement["Condition"].as_object().unwrap_or_else(|| {
                panic!("{binary}: SendCommand on {resource} without a group condition")
            });
            assert_eq!(
                condition.keys().collect::<Vec<_>>(),
                ["StringEquals"],
                "{binary}"
            );
            let tags = condition["StringEquals"].as_object().unwrap();
            assert_eq!(
                tags.keys().collect::<Vec<_>>(),
                ["ssm:resourceTag/aws:autoscaling:groupName"],
                "{binary}"
            );
            for name in strings(&tags["ssm:resourceTag/aws:autoscaling:groupName"]) {
                instances.insert((region.to_owned(), name.to_owned()));
            }
        }
        assert_eq!(
            documents,
            ["arn:aws:ssm:*::document/AWS-RunShellScript"],
            "{binary}: the shell document and no other"
        );
        let expected: BTreeSet<(String, String)> = GROUPS
            .iter()
            .map(|(r, n)| ((*r).to_owned(), (*n).to_owned()))
            .collect();
        assert_eq!(
            instances, expected,
            "{binary}: instances of exactly web-a, web-b and web-c, each in its region"
        );
    }
}

#[test]
fn without_groups_there_is_no_group_or_instance_write_access() {
    let without_groups =
        expanded_template(&[("Regions", "us-east-1,us-west-2"), ("HealthTable", "t")]);
    for &binary in BINARIES {
        let granted = granted_actions(&without_groups, binary);
        for action in GROUP_WRITES {
            assert!(
                !granted.contains(*action),
                "{binary}: no groups configured, yet {action} is granted"
            );
        }
    }
    // The per-group Run Command policies are all switched off.
    let parameters = parameter_values(&without_groups, &[]);
    for (id, resource) in without_groups["Resources"].as_object().unwrap() {
        if resource["Type"] == "AWS::IAM::Policy" {
            let condition = json!({ "Condition": resource["Condition"] });
            assert!(
                resource.get("Condition").is_some()
                    && !holds(&without_groups, &parameters, &condition),
                "{id} is created without groups"
            );
        }
    }
}

#[test]
fn the_health_probe_only_reads_groups_and_instances() {
    let template = template();
    let granted = granted_actions(&template, "health-probe");
    for action in GROUP_WRITES.iter().chain(&["ssm:PutParameter"]) {
        assert!(
            !granted.contains(*action),
            "health-probe: {action} is granted"
        );
    }
    let autoscaling: Vec<&String> = granted
        .iter()
        .filter(|a| a.starts_with("autoscaling:") || a.starts_with("ec2:"))
        .collect();
    assert!(
        autoscaling
            .iter()
            .all(|a| a.starts_with("autoscaling:Describe")),
        "health-probe: {autoscaling:?}"
    );
    let (id, _) = function(&template, "health-probe");
    let role = json!({ "Ref": format!("{id}Role") });
    for resource in template["Resources"].as_object().unwrap().values() {
        if resource["Type"] == "AWS::IAM::Policy" {
            assert!(
                !resource["Properties"]["Roles"]
                    .as_array()
                    .is_some_and(|roles| roles.contains(&role)),
                "health-probe: a policy resource is attached to its role"
            );
        }
    }
}

#[test]
fn capacity_and_reload_variables_come_from_their_parameters() {
    let template = template();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    for (variable, parameter) in [
        ("CAPACITY_PERCENT", "CapacityPercent"),
        ("SCALE_IN_DELAY_SECONDS", "ScaleInDelaySeconds"),
        ("RELOAD_MODE", "ReloadMode"),
        ("RELOAD_COMMANDS", "ReloadCommands"),
        ("RELOAD_TIMEOUT_SECONDS", "ReloadTimeoutSeconds"),
    ] {
        assert_eq!(
            globals[variable],
            json!({ "Ref": parameter }),
            "{variable} is set from {parameter}"
        );
        for &binary in BINARIES {
            let (_, function) = function(&template, binary);
            assert!(
                function["Properties"]["Environment"]["Variables"]
                    .get(variable)
                    .is_none(),
                "{binary} overrides {variable}"
            );
            assert!(environment(&template, function).contains(variable));
        }
    }
    // The defaults and limits the functions apply when a variable is missing or bad.
    let parameters = &template["Parameters"];
    let limits = |name: &str| {
        let p = &parameters[name];
        (
            p["Default"].clone(),
            p["MinValue"].clone(),
            p["MaxValue"].clone(),
        )
    };
    assert_eq!(
        limits("CapacityPercent"),
        (json!(100), json!(0), json!(1000))
    );
    assert_eq!(limits("ScaleInDelaySeconds").0, json!(900));
    assert_eq!(
        limits("ReloadTimeoutSeconds"),
        (json!(120), json!(1), json!(3600))
    );
    assert_eq!(parameters["ReloadMode"]["Default"], "refresh");
    assert_eq!(
        parameters["ReloadMode"]["AllowedValues"],
        json!(["refresh", "run-command"])
    );
    assert_eq!(parameters["ReloadCommands"]["Default"], "");
    // The groups still reach the functions as one comma-separated string.
    assert_eq!(
        globals["AUTO_SCALING_GROUPS"],
        json!({ "Fn::Join": [",", { "Ref": "AutoScalingGroups" }] })
    );
}

#[test]
fn run_command_without_reload_commands_fails_the_deploy() {
    let template = template();
    let rules = template["Rules"].as_object().expect("a Rules section");
    // A deploy fails when some rule applies and one of its assertions is false.
    let fails = |given: &[(&str, &str)]| {
        let parameters = parameter_values(&template, given);
        rules.values().any(|rule| {
            let applies = rule
                .get("RuleCondition")
                .is_none_or(|c| holds(&template, &parameters, c));
            applies
                && rule["Assertions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| !holds(&template, &parameters, &a["Assert"]))
        })
    };
    assert!(fails(&[("ReloadMode", "run-command")]));
    assert!(fails(&[
        ("ReloadMode", "run-command"),
        ("ReloadCommands", "")
    ]));
    assert!(!fails(&[
        ("ReloadMode", "run-command"),
        ("ReloadCommands", "systemctl reload php-fpm"),
    ]));
    assert!(!fails(&[]), "the defaults deploy");
    assert!(!fails(&[("ReloadMode", "refresh")]));
}
