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
    let mut template = expand(parameters).unwrap_or_else(|refusal| panic!("{refusal}"));
    // The parameters it was expanded with: resource conditions are evaluated with them.
    template["TestParameters"] = json!(
        parameters
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect::<serde_json::Map<String, Value>>()
    );
    template
}

/// The expanded template, or why the transform refuses these parameters.
fn expand(parameters: &[(&str, &str)]) -> Result<Value, String> {
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
try:
    expanded = process_template(template, json.loads(sys.argv[2]), pseudo)
except Exception as e:
    sys.exit(str(e))
print(json.dumps(expanded))
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
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("template as JSON"))
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

/// The shared control table's name in the mrsc cases.
const SHARED_TABLE: &str = "rp-control";

/// ControlPlaneMode=mrsc, the stack that owns the shared table (deployed in us-west-2, as
/// every expanded template), two regions and a witness.
const MRSC_TWO_REGIONS: &[(&str, &str)] = &[
    ("ControlPlaneMode", "mrsc"),
    ("ControlTableName", SHARED_TABLE),
    ("ControlTableOwner", "true"),
    ("Regions", "us-east-1,us-west-2"),
    ("WitnessRegion", "us-east-2"),
    ("AutoScalingGroups", "us-east-1=web-a,us-west-2=web-b"),
    ("HealthTable", "app-health"),
];

/// The owner stack with three regions (of the US set), so no witness.
const MRSC_THREE_REGIONS: &[(&str, &str)] = &[
    ("ControlPlaneMode", "mrsc"),
    ("ControlTableName", SHARED_TABLE),
    ("ControlTableOwner", "true"),
    ("Regions", "us-east-1,us-east-2,us-west-2"),
    (
        "AutoScalingGroups",
        "us-east-1=web-a,us-east-2=web-c,us-west-2=web-b",
    ),
    ("HealthTable", "app-health"),
];

/// Another region's stack of MRSC_TWO_REGIONS: it uses the shared table, not creating it.
const MRSC_JOINING: &[(&str, &str)] = &[
    ("ControlPlaneMode", "mrsc"),
    ("ControlTableName", SHARED_TABLE),
    ("Regions", "us-east-1,us-west-2"),
    ("WitnessRegion", "us-east-2"),
    ("AutoScalingGroups", "us-east-1=web-a,us-west-2=web-b"),
    ("HealthTable", "app-health"),
];

const ACCOUNT: &str = "123456789012";

/// The groups in THREE_REGIONS, as (region, name).
const GROUPS: &[(&str, &str)] = &[
    ("us-east-1", "web-a"),
    ("us-west-2", "web-b"),
    ("eu-west-1", "web-c"),
];

const BINARIES: &[&str] = &["failover", "health-probe", "failback"];

/// The function that builds `binary`, with its logical ID.
/// (The control stack's: a regional stack's gate builds the health probe's binary too.)
fn function<'a>(template: &'a Value, binary: &str) -> (&'a str, &'a Value) {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, r)| {
            r["Type"] == "AWS::Serverless::Function"
                && r["Metadata"]["BuildProperties"]["Binary"] == binary
                && r["Condition"] != "RegionalRole"
        })
        .map(|(id, r)| (id.as_str(), r))
        .unwrap_or_else(|| panic!("no function builds binary {binary}"))
}

/// The template's parameter values: `given` over the ones it was expanded with, over the
/// declared defaults; and the stack's region (every expanded template is in us-west-2).
fn parameter_values(template: &Value, given: &[(&str, &str)]) -> BTreeMap<String, Value> {
    let mut values: BTreeMap<String, Value> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, p)| p.get("Default").map(|d| (name.clone(), d.clone())))
        .collect();
    values.insert("AWS::Region".into(), json!("us-west-2"));
    for (name, value) in template["TestParameters"].as_object().into_iter().flatten() {
        values.insert(name.clone(), value.clone());
    }
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
        // A list parameter's value is its comma-separated string.
        "Fn::EachMemberEquals" => {
            let list = value(template, parameters, args[0]);
            let wanted = value(template, parameters, args[1]);
            list.as_str()
                .unwrap_or_else(|| panic!("not a list parameter: {}", args[0]))
                .split(',')
                .all(|member| Value::String(member.to_owned()) == wanted)
        }
        "Fn::Contains" => {
            let list = members(&value(template, parameters, args[0]));
            let wanted = value(template, parameters, args[1]);
            list.iter()
                .any(|member| Some(member.as_str()) == wanted.as_str())
        }
        "Fn::EachMemberIn" => {
            let list = members(&value(template, parameters, args[0]));
            let allowed = members(&value(template, parameters, args[1]));
            list.iter().all(|member| allowed.contains(member))
        }
        "Condition" => {
            let name = o["Condition"].as_str().unwrap();
            holds(template, parameters, &template["Conditions"][name])
        }
        other => panic!("cannot evaluate {other} in {expr}"),
    }
}

/// The members of a list in a rule: a literal list, or a list parameter's comma-separated
/// value.
fn members(list: &Value) -> Vec<String> {
    match list {
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().unwrap().to_owned())
            .collect(),
        Value::String(joined) => joined.split(',').map(str::to_owned).collect(),
        other => panic!("not a list: {other}"),
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
    // In both control plane modes, and in mrsc mode with and without the table.
    for given in [
        THREE_REGIONS,
        MRSC_TWO_REGIONS,
        MRSC_THREE_REGIONS,
        MRSC_JOINING,
        &with_run_command(THREE_REGIONS),
        &with_run_command(MRSC_JOINING),
        &with_routing_control(THREE_REGIONS),
        &with_routing_control(MRSC_JOINING),
    ] {
        let template = expanded_template(given);
        let mode = parameter_values(&template, given)["ControlPlaneMode"].clone();
        gets_what_it_requires_and_calls(&template, &format!("{mode} {given:?}"));
    }
}

/// `given` with ReloadMode=run-command (and its commands).
fn with_run_command<'a>(given: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = given.to_vec();
    all.extend([
        ("ReloadMode", "run-command"),
        ("ReloadCommands", "systemctl reload php-fpm"),
    ]);
    all
}

const ROUTING_ENDPOINTS: &str = "us-east-1=https://host1.route53-recovery-cluster.us-east-1.amazonaws.com/v1,ap-southeast-2=https://host2.route53-recovery-cluster.ap-southeast-2.amazonaws.com/v1,eu-west-1=https://host3.route53-recovery-cluster.eu-west-1.amazonaws.com/v1,us-west-2=https://host4.route53-recovery-cluster.us-west-2.amazonaws.com/v1,ap-northeast-1=https://host5.route53-recovery-cluster.ap-northeast-1.amazonaws.com/v1";

/// The routing control ARN the template tests give `region`.
fn routing_arn(region: &str) -> String {
    format!(
        "arn:aws:route53-recovery-control::{ACCOUNT}:controlpanel/0a1b2c/routingcontrol/{}",
        region.replace('-', "")
    )
}

/// `given` with TrafficSignal=routing-control, the cluster and a routing control for each
/// of us-east-1, us-west-2 and eu-west-1.
fn with_routing_control<'a>(given: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let arns: &'static str = Box::leak(
        ["us-east-1", "us-west-2", "eu-west-1"]
            .map(|r| format!("{r}={}", routing_arn(r)))
            .join(",")
            .into_boxed_str(),
    );
    let mut all = given.to_vec();
    all.extend([
        ("TrafficSignal", "routing-control"),
        ("RoutingControlEndpoints", ROUTING_ENDPOINTS),
        ("RoutingControlArns", arns),
    ]);
    all
}

fn run_command_template() -> Value {
    expanded_template(&with_run_command(THREE_REGIONS))
}

/// Every function's environment has the variables the code requires, and its grants are
/// exactly the actions permissions.rs lists for it.
fn gets_what_it_requires_and_calls(template: &Value, case: &str) {
    let run_command = parameter_values(template, &[])["ReloadMode"] == "run-command";
    let routing = parameter_values(template, &[])["TrafficSignal"] == "routing-control";
    for (binary, all_actions) in [
        ("failover", permissions::FAILOVER),
        ("health-probe", permissions::HEALTH_PROBE),
        ("failback", permissions::FAILBACK),
    ] {
        // Run Command's actions are called, and granted, only in run-command mode.
        let actions: Vec<&str> = all_actions
            .iter()
            .copied()
            .filter(|a| run_command || !permissions::RUN_COMMAND_ONLY.contains(a))
            .filter(|a| routing || !permissions::ROUTING_CONTROL_ONLY.contains(a))
            .collect();
        let (_, function) = function(template, binary);
        let env = environment(template, function);
        for name in permissions::REQUIRED_ENV {
            assert!(
                env.contains(*name),
                "{case}: {binary}: {name} is not set in template.yaml"
            );
        }
        let granted = granted_actions(template, binary);
        for action in &actions {
            assert!(
                granted.contains(*action),
                "{case}: {binary}: {action} is called but not granted"
            );
        }
        let extra: Vec<&String> = granted
            .iter()
            .filter(|a| !actions.contains(&a.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "{case}: {binary}: granted but never called: {extra:?}"
        );
        assert_eq!(
            function["Properties"]["CodeUri"], ".",
            "{binary}: one shared CodeUri keeps one target/"
        );
    }
}

#[test]
fn wildcard_resources_are_only_for_actions_without_resource_level_permissions() {
    let template = run_command_template();
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

/// The resources of one type, with their logical IDs.
fn resources<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

/// The alarms on one metric.
fn alarms_on<'a>(template: &'a Value, metric: &str) -> Vec<(&'a str, &'a Value)> {
    resources(template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| a["Properties"]["MetricName"] == metric)
        .collect()
}

/// The `<stack>-unhealthy-<region>` alarms (the Healthy alarms that are not the probe's
/// liveness alarm).
fn unhealthy_alarms(template: &Value) -> Vec<(&str, &Value)> {
    alarms_on(template, "Healthy")
        .into_iter()
        .filter(|(_, a)| a["Properties"]["Statistic"] != "SampleCount")
        .collect()
}

#[test]
fn every_region_gets_an_alarm_that_invokes_failover() {
    let template = template();
    let metrics: BTreeSet<&str> = resources(&template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| a["Properties"]["MetricName"].as_str().unwrap())
        .collect();
    assert_eq!(
        metrics,
        ["ActiveRegion", "Healthy"].into(),
        "health alarms and serving alarms, nothing else"
    );
    let alarms: Vec<&Value> = unhealthy_alarms(&template)
        .into_iter()
        .map(|(_, a)| a)
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
    let template = run_command_template();
    let expected: BTreeSet<(String, String)> = GROUPS
        .iter()
        .map(|(r, n)| ((*r).to_owned(), (*n).to_owned()))
        .collect();
    for binary in ["failover", "failback"] {
        let (documents, instances) = run_command_grants(&template, binary);
        assert_eq!(
            documents,
            ["arn:aws:ssm:*::document/AWS-RunShellScript"],
            "{binary}: the shell document and no other"
        );
        assert_eq!(
            instances, expected,
            "{binary}: instances of exactly web-a, web-b and web-c, each in its region"
        );
    }
}

/// The documents and the (region, group) instances SendCommand is granted on.
fn run_command_grants(template: &Value, binary: &str) -> (Vec<String>, BTreeSet<(String, String)>) {
    let mut documents = Vec::new();
    let mut instances = BTreeSet::new();
    for statement in granting(template, binary, "ssm:SendCommand") {
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
            documents.push(resource.to_owned());
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
    (documents, instances)
}

#[test]
fn groups_whose_logical_ids_would_collide_are_refused_at_deploy() {
    // Fn::ForEach's &{} makes one logical ID of us-east-1=web-a and us-east-1=weba: the
    // LanguageExtensions transform refuses the deploy rather than grant one of them.
    let colliding = with_run_command(&[
        ("Regions", "us-east-1,us-west-2"),
        ("AutoScalingGroups", "us-east-1=web-a,us-east-1=weba"),
        ("HealthTable", "app-health"),
    ]);
    let error = expand(&colliding).expect_err("the transform refuses the deploy");
    assert!(
        error.contains("conflict") && error.contains("ReloadGroupInstancesuseast1weba"),
        "{error}"
    );
    // The same names in different regions are different IDs.
    let apart = with_run_command(&[
        ("Regions", "us-east-1,us-west-2"),
        ("AutoScalingGroups", "us-east-1=web-a,us-west-2=web-a"),
        ("HealthTable", "app-health"),
    ]);
    let template = expanded_template(&apart);
    assert_eq!(created_resources(&template, "AWS::IAM::Policy").len(), 2);
}

#[test]
fn run_command_is_granted_only_when_it_is_the_reload_mode() {
    let template = template();
    assert_eq!(parameter_values(&template, &[])["ReloadMode"], "refresh");
    for &binary in BINARIES {
        let granted = granted_actions(&template, binary);
        for action in permissions::RUN_COMMAND_ONLY {
            assert!(
                !granted.contains(*action),
                "{binary}: {action} in refresh mode"
            );
        }
    }
    assert!(
        created_resources(&template, "AWS::IAM::Policy").is_empty(),
        "no per-group Run Command policy in refresh mode"
    );
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

/// Why CloudFormation refuses the deploy with these parameters: the AssertDescription of
/// every false assertion of every rule that applies; empty when it deploys.
fn deploy_refusals(template: &Value, given: &[(&str, &str)]) -> Vec<String> {
    let rules = template["Rules"].as_object().expect("a Rules section");
    let parameters = parameter_values(template, given);
    let mut refusals = Vec::new();
    for rule in rules.values() {
        let applies = rule
            .get("RuleCondition")
            .is_none_or(|c| holds(template, &parameters, c));
        if !applies {
            continue;
        }
        for assertion in rule["Assertions"].as_array().unwrap() {
            if !holds(template, &parameters, &assertion["Assert"]) {
                refusals.push(assertion["AssertDescription"].as_str().unwrap().to_owned());
            }
        }
    }
    refusals
}

/// CloudFormation takes the deploy with these parameters: no rule refuses it.
fn deploys(template: &Value, given: &[(&str, &str)]) {
    let refusals = deploy_refusals(template, given);
    assert!(refusals.is_empty(), "{given:?} is refused: {refusals:?}");
}

/// Whether CloudFormation refuses the deploy with these parameters: some rule applies and
/// one of its assertions is false.
fn deploy_fails(template: &Value, given: &[(&str, &str)]) -> bool {
    !deploy_refusals(template, given).is_empty()
}

#[test]
fn run_command_without_reload_commands_fails_the_deploy() {
    let template = template();
    let fails = |given: &[(&str, &str)]| deploy_fails(&template, given);
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

/// Whether a resource (or output) with an optional Condition is created.
fn created(template: &Value, resource: &Value) -> bool {
    resource.get("Condition").is_none_or(|name| {
        holds(
            template,
            &parameter_values(template, &[]),
            &json!({ "Condition": name }),
        )
    })
}

/// The metric signal's serving health check of each region, by region: the
/// `CLOUDWATCH_METRIC` health checks whose alarm's `Region` dimension names it.
fn health_checks(template: &Value) -> BTreeMap<String, (&str, &Value)> {
    resources(template, "AWS::Route53::HealthCheck")
        .into_iter()
        .filter(|(_, check)| {
            check["Properties"]["HealthCheckConfig"]["Type"] == "CLOUDWATCH_METRIC"
        })
        .map(|(id, check)| {
            let alarm = check["Properties"]["HealthCheckConfig"]["AlarmIdentifier"]["Name"]["Ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: the alarm is not named by Ref"));
            let region = template["Resources"][alarm]["Properties"]["Dimensions"][0]["Value"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: {alarm} is not an alarm with a Region"));
            (region.to_owned(), (id, check))
        })
        .collect()
}

const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "us-west-2"];

#[test]
fn every_region_gets_a_serving_alarm_and_a_health_check_that_follows_it() {
    let template = template();
    let alarms = alarms_on(&template, "ActiveRegion");
    let mut alarmed: Vec<&str> = alarms
        .iter()
        .map(|(_, a)| a["Properties"]["Dimensions"][0]["Value"].as_str().unwrap())
        .collect();
    alarmed.sort_unstable();
    assert_eq!(alarmed, REGIONS);
    for (id, alarm) in &alarms {
        assert!(created(&template, alarm), "{id} is created by default");
        let props = alarm["Properties"].as_object().unwrap();
        let region = props["Dimensions"][0]["Value"].as_str().unwrap();
        for (property, expected) in [
            ("AlarmName", json!(format!("rp-serving-{region}"))),
            ("Namespace", json!("RegionPilot")), // MetricsNamespace's default
            ("MetricName", json!("ActiveRegion")),
            ("Dimensions", json!([{ "Name": "Region", "Value": region }])),
            // A region serves in any minute in which an emission named it active.
            ("Statistic", json!("Maximum")),
            // Route 53 takes no high-resolution alarm.
            ("Period", json!(60)),
            ("EvaluationPeriods", json!(1)),
            ("DatapointsToAlarm", json!(1)),
            ("Threshold", json!(1)),
            ("ComparisonOperator", json!("LessThanThreshold")),
            // A silent control plane never moves traffic.
            ("TreatMissingData", json!("ignore")),
        ] {
            assert_eq!(props[property], expected, "{id}: {property}");
        }
        for actions in ["AlarmActions", "OKActions", "InsufficientDataActions"] {
            assert!(
                !props.contains_key(actions),
                "{id}: the serving alarm only feeds its health check"
            );
        }
    }

    let checks = health_checks(&template);
    assert_eq!(
        checks.keys().map(String::as_str).collect::<Vec<_>>(),
        REGIONS,
        "one health check per region"
    );
    let outputs = template["Outputs"].as_object().unwrap();
    for (region, (id, check)) in &checks {
        assert!(created(&template, check), "{id} is created by default");
        let config = &check["Properties"]["HealthCheckConfig"];
        let alarm = config["AlarmIdentifier"]["Name"]["Ref"].as_str().unwrap();
        assert_eq!(
            template["Resources"][alarm]["Properties"]["AlarmName"],
            format!("rp-serving-{region}"),
            "{id}"
        );
        assert_eq!(
            config,
            &json!({
                "Type": "CLOUDWATCH_METRIC",
                "AlarmIdentifier": { "Name": { "Ref": alarm }, "Region": "us-west-2" },
                "InsufficientDataHealthStatus": "LastKnownStatus",
            }),
            "{id}: on its region's serving alarm, in the stack's region"
        );
        assert_eq!(
            check["Properties"]["HealthCheckTags"],
            json!([{ "Key": "Name", "Value": format!("rp-serving-{region}") }]),
            "{id}"
        );
        // The output gives the health check of the signal in force: this one by default.
        let ids: Vec<&Value> = outputs
            .values()
            .filter(|o| resolve(&template, &[], &o["Value"]) == json!({ "Ref": id }))
            .collect();
        assert_eq!(ids.len(), 1, "{id}: one output with its id");
        assert!(created(&template, ids[0]), "{id}");
    }
}

#[test]
fn region_keys_are_the_region_names_without_dashes() {
    // The serving resources' logical IDs come from this mapping; a wrong entry would give
    // one region another's IDs (or fail the transform).
    let template = template();
    let keys = template["Mappings"]["RegionKeys"]
        .as_object()
        .expect("a RegionKeys mapping");
    for region in REGIONS {
        assert!(keys.contains_key(region), "{region} is not in RegionKeys");
    }
    for (region, entry) in keys {
        assert_eq!(
            entry,
            &json!({ "Key": [region.replace('-', "")] }),
            "{region}"
        );
    }
}

/// The value a function's environment gives `variable`, with the template expanded and
/// deployed with the parameters `given`.
fn env_value(template: &Value, given: &[(&str, &str)], binary: &str, variable: &str) -> Value {
    let (_, function) = function(template, binary);
    let own = &function["Properties"]["Environment"]["Variables"][variable];
    let value = if own.is_null() {
        &template["Globals"]["Function"]["Environment"]["Variables"][variable]
    } else {
        own
    };
    resolve(template, given, value)
}

/// A value as CloudFormation would see it deployed with the parameters `given`: Fn::If
/// takes the branch its condition picks, a Ref to a parameter is its value, and a Ref to
/// a resource stays one. (SAM's Globals reach the expanded template unresolved.)
fn resolve(template: &Value, given: &[(&str, &str)], value: &Value) -> Value {
    if let Some([condition, then, otherwise]) = value["Fn::If"].as_array().map(Vec::as_slice) {
        let parameters = parameter_values(template, given);
        let branch = if holds(template, &parameters, &json!({ "Condition": condition })) {
            then
        } else {
            otherwise
        };
        return resolve(template, given, branch);
    }
    match value["Ref"].as_str() {
        Some(name) => parameter_values(template, given)
            .get(name)
            .cloned()
            .unwrap_or_else(|| value.clone()),
        None => value.clone(),
    }
}

#[test]
fn with_traffic_off_nothing_follows_a_metric_no_one_publishes() {
    let template = template();
    let parameter = &template["Parameters"]["Traffic"];
    // Quoted in the YAML: a bare on/off would be a boolean.
    assert_eq!(parameter["AllowedValues"], json!(["on", "off"]));
    assert_eq!(parameter["Default"], "on");
    for &binary in BINARIES {
        assert_eq!(
            env_value(&template, THREE_REGIONS, binary, "TRAFFIC"),
            "on",
            "{binary}"
        );
    }

    let traffic_off = [THREE_REGIONS, &[("Traffic", "off")]].concat();
    let off = expanded_template(&traffic_off);
    for &binary in BINARIES {
        assert_eq!(
            env_value(&off, &traffic_off, binary, "TRAFFIC"),
            "off",
            "{binary}"
        );
    }
    let serving = alarms_on(&off, "ActiveRegion");
    assert_eq!(serving.len(), REGIONS.len());
    for (id, resource) in serving
        .into_iter()
        .chain(resources(&off, "AWS::Route53::HealthCheck"))
        .chain(resources(&off, "AWS::Route53::RecordSet"))
    {
        assert!(!created(&off, resource), "{id} is created with Traffic=off");
    }
    let outputs = off["Outputs"].as_object().unwrap();
    for (id, _) in resources(&off, "AWS::Route53::HealthCheck") {
        for (name, output) in outputs {
            if output["Value"] == json!({ "Ref": id }) {
                assert!(!created(&off, output), "{name} is output with Traffic=off");
            }
        }
    }
    // The health alarms do not depend on it.
    for (id, alarm) in alarms_on(&off, "Healthy") {
        assert!(created(&off, alarm), "{id}");
    }

    // The dashboard plots a metric that is published: ActiveRegion, else the verifier's Active.
    for (t, metric) in [(&template, "ActiveRegion"), (&off, "Active")] {
        let lines = dashboard_lines(t);
        for region in REGIONS {
            let line = json!(["RegionPilot", metric, "Region", region]);
            assert!(lines.contains(&line), "{line} is not drawn: {lines:?}");
        }
    }
}

const HOSTED_ZONE: (&str, &str) = ("HostedZoneId", "Z0123456789ABCDEFGHIJ");
const RECORD_NAME: (&str, &str) = ("RecordName", "app.example.com");
// Deliberately not in the order of Regions.
const REGION_TARGETS: (&str, &str) = (
    "RegionTargets",
    "us-west-2=b.example.com,eu-west-1=c.example.com,us-east-1=a.example.com",
);

#[test]
fn weighted_records_follow_the_health_checks_when_zone_name_and_targets_are_set() {
    let without = template();
    let records = resources(&without, "AWS::Route53::RecordSet");
    for (id, record) in &records {
        assert!(
            !created(&without, record),
            "{id} is created without HostedZoneId"
        );
    }

    let with = expanded_template(
        &[
            THREE_REGIONS,
            &[
                HOSTED_ZONE,
                RECORD_NAME,
                REGION_TARGETS,
                ("RecordTtl", "15"),
            ],
        ]
        .concat(),
    );
    let checks = health_checks(&with);
    let records = resources(&with, "AWS::Route53::RecordSet");
    let mut by_region = BTreeMap::new();
    for (id, record) in records {
        assert!(created(&with, record), "{id} is not created");
        let props = &record["Properties"];
        let region = props["SetIdentifier"].as_str().unwrap().to_owned();
        let (check, _) = checks[&region];
        let target = match region.as_str() {
            "us-east-1" => "a.example.com",
            "us-west-2" => "b.example.com",
            _ => "c.example.com",
        };
        assert_eq!(
            props,
            &json!({
                "HostedZoneId": HOSTED_ZONE.1,
                "Name": RECORD_NAME.1,
                "Type": "CNAME",
                "TTL": "15",
                "SetIdentifier": region,
                "Weight": 100,
                "HealthCheckId": { "Ref": check },
                "ResourceRecords": [target],
            }),
            "{id}: weighted, on {region}'s health check, to {region}'s target"
        );
        assert!(
            by_region.insert(region, id).is_none(),
            "{id}: a second record"
        );
    }
    assert_eq!(
        by_region.keys().map(String::as_str).collect::<Vec<_>>(),
        REGIONS,
        "one record per region"
    );

    // Records hang on the health checks: none without them, even if the rule that refuses
    // this deploy were gone.
    let traffic_off = expanded_template(
        &[
            THREE_REGIONS,
            &[HOSTED_ZONE, RECORD_NAME, REGION_TARGETS, ("Traffic", "off")],
        ]
        .concat(),
    );
    for (id, record) in resources(&traffic_off, "AWS::Route53::RecordSet") {
        assert!(
            !created(&traffic_off, record),
            "{id} is created with Traffic=off"
        );
    }
}

#[test]
fn records_with_a_part_missing_or_without_traffic_fail_the_deploy() {
    let template = template();
    let fails = |given: &[(&str, &str)]| deploy_fails(&template, given);
    assert!(fails(&[HOSTED_ZONE]));
    assert!(fails(&[HOSTED_ZONE, RECORD_NAME]));
    assert!(fails(&[HOSTED_ZONE, REGION_TARGETS]));
    assert!(fails(&[RECORD_NAME, REGION_TARGETS]), "no zone");
    assert!(fails(&[REGION_TARGETS]));
    assert!(fails(&[
        HOSTED_ZONE,
        RECORD_NAME,
        REGION_TARGETS,
        ("Traffic", "off")
    ]));
    assert!(!fails(&[HOSTED_ZONE, RECORD_NAME, REGION_TARGETS]));
    assert!(!fails(&[("Traffic", "off")]));
    assert!(!fails(&[]), "the defaults deploy");
}

/// Whether an IAM action pattern (`*` any run of characters, `?` one, case-insensitive)
/// matches some action of a service: some action starting with `prefix`.
fn grants_some_of(pattern: &str, prefix: &str) -> bool {
    fn can_match(p: &[u8], prefix: &[u8]) -> bool {
        match (p.split_first(), prefix.split_first()) {
            // The prefix is consumed: the rest of the pattern matches some suffix.
            (_, None) => true,
            (None, Some(_)) => false,
            (Some((b'*', rest)), Some((_, tail))) => can_match(rest, prefix) || can_match(p, tail),
            (Some((b'?', rest)), Some((_, tail))) => can_match(rest, tail),
            (Some((c, rest)), Some((d, tail))) => c == d && can_match(rest, tail),
        }
    }
    can_match(
        pattern.to_ascii_lowercase().as_bytes(),
        prefix.to_ascii_lowercase().as_bytes(),
    )
}

#[test]
fn no_function_may_call_route53() {
    // Route 53's control plane is in us-east-1: DNS follows regionpilot through health
    // checks (data plane) only, never through record or health check edits.
    const ROUTE53: &str = "route53:";
    for granting in [
        "*",
        "route53:*",
        "Route53:Change*",
        "r*:UpdateHealthCheck",
        "route5?:*",
    ] {
        assert!(grants_some_of(granting, ROUTE53), "{granting}");
    }
    for not_granting in ["ssm:*", "route53domains:*", "dynamodb:GetItem", "ec2:*"] {
        assert!(!grants_some_of(not_granting, ROUTE53), "{not_granting}");
    }

    for template in [
        template(),
        expanded_template(&[THREE_REGIONS, &[HOSTED_ZONE, RECORD_NAME, REGION_TARGETS]].concat()),
        // Every traffic signal, and the regional role.
        expanded_template(
            &[
                THREE_REGIONS,
                &[GATES, HOSTED_ZONE, RECORD_NAME, REGION_TARGETS],
            ]
            .concat(),
        ),
        expanded_template(&with_routing_control(
            &[THREE_REGIONS, &[HOSTED_ZONE, RECORD_NAME, REGION_TARGETS]].concat(),
        )),
        expanded_template(&[
            ("Regions", "us-east-1,us-west-2"),
            ("DeploymentRole", "regional"),
        ]),
    ] {
        // Every policy of every function, its own or attached to its role; SAM adds only
        // the basic execution and X-Ray policies to these.
        let mut documents = Vec::new();
        let functions = resources(&template, "AWS::Serverless::Function");
        assert!(
            functions.len() > BINARIES.len(),
            "the regional gate is one more"
        );
        for (id, function) in functions {
            let binary = id;
            assert!(
                function["Properties"].get("Role").is_none(),
                "{binary}: a role of its own would bypass these checks"
            );
            for policy in function["Properties"]["Policies"]
                .as_array()
                .into_iter()
                .flatten()
            {
                assert!(
                    policy.get("Statement").is_some(),
                    "{binary}: {policy} is not an inline statement list"
                );
                documents.push((id, policy));
            }
        }
        for (id, policy) in resources(&template, "AWS::IAM::Policy") {
            documents.push((id, &policy["Properties"]["PolicyDocument"]));
        }
        assert!(documents.len() >= BINARIES.len());
        for (id, document) in documents {
            for statement in document["Statement"].as_array().unwrap() {
                assert!(
                    statement.get("NotAction").is_none(),
                    "{id}: NotAction grants everything it does not name"
                );
                for pattern in actions(statement) {
                    assert!(
                        !grants_some_of(pattern, ROUTE53),
                        "{id}: {pattern} grants Route 53 actions"
                    );
                }
            }
        }
    }
}

/// Route 53's control plane SDKs (and ARC's): none may be a dependency. The one Route 53
/// SDK allowed is ARC's cluster data plane, for TRAFFIC_SIGNAL=routing-control.
fn forbidden_route53_sdk(name: &str) -> bool {
    name.starts_with("aws-sdk-route53") && name != "aws-sdk-route53recoverycluster"
}

#[test]
fn no_crate_depends_on_a_route53_control_plane_sdk() {
    for forbidden in [
        "aws-sdk-route53",
        "aws-sdk-route53domains",
        "aws-sdk-route53recoverycontrolconfig",
        "aws-sdk-route53resolver",
    ] {
        assert!(forbidden_route53_sdk(forbidden), "{forbidden}");
    }
    assert!(!forbidden_route53_sdk("aws-sdk-route53recoverycluster"));
    let root = paths::workspace();
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    assert!(!members.is_empty());
    let manifests = std::iter::once(root.join("Cargo.toml")).chain(
        members
            .iter()
            .map(|m| root.join(m.as_str().unwrap()).join("Cargo.toml")),
    );
    for path in manifests {
        let text = std::fs::read_to_string(&path).unwrap();
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            assert!(
                !forbidden_route53_sdk(word),
                "{} depends on {word}",
                path.display()
            );
        }
    }
    // Nor through another crate.
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("Cargo.lock")).unwrap()).unwrap();
    let packages = lock["package"].as_array().unwrap();
    assert!(
        packages
            .iter()
            .any(|p| p["name"].as_str() == Some("aws-sdk-ssm"))
    );
    for package in packages {
        let name = package["name"].as_str().unwrap();
        assert!(!forbidden_route53_sdk(name), "Cargo.lock has {name}");
    }
}

/// Every metric line of the dashboard's widgets, with CloudWatch's `["...", value]`
/// shorthand (the line above, its last values replaced) written out in full.
fn dashboard_lines(template: &Value) -> Vec<Value> {
    let body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
        .as_str()
        .expect("the dashboard body is one string once expanded");
    let body: Value = serde_json::from_str(body).expect("the dashboard body is JSON");
    let mut lines = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        let mut above: Option<Vec<Value>> = None;
        for line in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let line = line.as_array().unwrap();
            let full: Vec<Value> = if line.first() == Some(&json!("...")) {
                let above = above.as_ref().expect("\"...\" on a widget's first line");
                let kept = above
                    .len()
                    .checked_sub(line.len() - 1)
                    .expect("\"...\" replaces more values than the line above has");
                above[..kept].iter().chain(&line[1..]).cloned().collect()
            } else {
                line.clone()
            };
            lines.push(Value::Array(full.clone()));
            above = Some(full);
        }
    }
    lines
}

#[test]
fn the_dashboard_draws_every_region() {
    let template = template();
    let lines = dashboard_lines(&template);
    for (metric, dimension) in [
        ("ActiveRegion", "Region"),
        ("Healthy", "Region"),
        ("ReadLatencyMs", "Region"),
        ("WriteLatencyMs", "Region"),
        ("Switches", "ToRegion"),
    ] {
        let mut drawn: Vec<&str> = lines
            .iter()
            .filter(|line| line[1] == metric)
            .map(|line| {
                assert_eq!(line[0], "RegionPilot", "{line}");
                assert_eq!(line[2], dimension, "{line}");
                assert_eq!(line.as_array().unwrap().len(), 4, "{line}");
                line[3].as_str().unwrap()
            })
            .collect();
        drawn.sort_unstable();
        assert_eq!(drawn, REGIONS, "{metric}: one line per region in Regions");
    }
    // Failback readiness is about home only.
    assert!(lines.contains(&json!([
        "RegionPilot",
        "FailbackReady",
        "Region",
        "us-east-1"
    ])));
    for metric in ["FlapGuardPaused", "Ready"] {
        assert!(
            lines.contains(&json!(["RegionPilot", metric])),
            "{metric} is not drawn"
        );
    }
    // Replication lag has a line per ordered pair of regions: a search finds them all.
    let searches: Vec<&str> = lines
        .iter()
        .filter_map(|line| line[0]["expression"].as_str())
        .collect();
    assert_eq!(
        searches,
        [
            r#"SEARCH('{"RegionPilot",FromRegion,ToRegion} MetricName="ReplicationLagSeconds"', 'Maximum', 60)"#
        ]
    );
}

#[test]
fn failover_and_failback_put_events_on_the_configured_bus_only() {
    const BUS: &str = "arn:aws:events:us-west-2:123456789012:event-bus";
    for (bus, arn) in [
        (None, format!("{BUS}/default")),
        (Some("ops-events"), format!("{BUS}/ops-events")),
        // An ARN is used as it is.
        (
            Some("arn:aws:events:us-west-2:123456789012:event-bus/shared"),
            format!("{BUS}/shared"),
        ),
    ] {
        let given_bus = bus.map(|b| ("EventBusName", b));
        let given = [THREE_REGIONS, given_bus.as_slice()].concat();
        let template = expanded_template(&given);
        for &binary in BINARIES {
            let granting = granting(&template, binary, "events:PutEvents");
            if binary == "health-probe" {
                assert!(granting.is_empty(), "health-probe: PutEvents is granted");
                continue;
            }
            assert_eq!(granting.len(), 1, "{binary}: one PutEvents statement");
            let statement = granting[0];
            assert_eq!(actions(statement), ["events:PutEvents"], "{binary}");
            assert_eq!(statement["Resource"], arn, "{binary}: the one bus");
            assert!(statement.get("Condition").is_none(), "{binary}");
            assert_eq!(
                env_value(&template, &given, binary, "EVENT_BUS_NAME"),
                bus.unwrap_or("default"),
                "{binary} puts its events on the bus it may put them on"
            );
        }
        let rules = resources(&template, "AWS::Events::Rule");
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].1["Properties"]["EventBusName"],
            bus.unwrap_or("default"),
            "the notification rule listens on that bus"
        );
    }
}

#[test]
fn only_failback_forgets_held_events_and_reads_point_in_time_recovery_on_the_control_table() {
    let template = template();
    for action in ["dynamodb:DeleteItem", "dynamodb:DescribeContinuousBackups"] {
        for &binary in BINARIES {
            let granting = granting(&template, binary, action);
            if binary != "failback" {
                assert!(granting.is_empty(), "{binary}: {action} is granted");
                continue;
            }
            assert!(!granting.is_empty(), "failback: {action} is not granted");
            for statement in granting {
                assert_eq!(
                    statement["Resource"],
                    json!({ "Fn::GetAtt": ["ControlTable", "Arn"] }),
                    "failback: {action} on the control table only"
                );
            }
        }
    }
}

#[test]
fn this_stacks_events_reach_an_encrypted_topic_through_its_rule_only() {
    let template = template();
    let one = |kind: &str| {
        let found = resources(&template, kind);
        assert_eq!(found.len(), 1, "one {kind}");
        found[0]
    };
    let (key_id, key) = one("AWS::KMS::Key");
    let (topic_id, topic) = one("AWS::SNS::Topic");
    let (rule_id, rule) = one("AWS::Events::Rule");
    let (_, topic_policy) = one("AWS::SNS::TopicPolicy");

    // The topic is encrypted with the stack's own key (EventBridge cannot publish to a
    // topic under alias/aws/sns), which rotates.
    assert_eq!(
        topic["Properties"]["KmsMasterKeyId"],
        json!({ "Fn::GetAtt": [key_id, "Arn"] })
    );
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    let topic_name = topic["Properties"]["TopicName"].as_str().unwrap();
    let topic_arn = format!("arn:aws:sns:us-west-2:{ACCOUNT}:{topic_name}");
    let statements = key["Properties"]["KeyPolicy"]["Statement"]
        .as_array()
        .unwrap();
    let principals: Vec<&Value> = statements.iter().map(|s| &s["Principal"]).collect();
    assert_eq!(
        principals,
        [
            &json!({ "AWS": format!("arn:aws:iam::{ACCOUNT}:root") }),
            &json!({ "Service": "events.amazonaws.com" }),
            &json!({ "Service": "cloudwatch.amazonaws.com" }),
        ],
        "the account administers the key; EventBridge and the probe-silent alarm use it, no one else"
    );
    // The alarm's use is for this topic only, as EventBridge's.
    assert_eq!(statements[2]["Condition"], statements[1]["Condition"]);
    assert_eq!(statements[2]["Action"], statements[1]["Action"]);
    let events = &statements[1];
    assert_eq!(events["Effect"], "Allow");
    assert_eq!(
        events["Action"],
        json!(["kms:GenerateDataKey*", "kms:Decrypt"])
    );
    // For this topic only. No aws:SourceArn or aws:SourceAccount: SNS does not support
    // them in a key policy for EventBridge, and delivery would fail; the topic policy
    // names the rule instead.
    assert_eq!(
        events["Condition"],
        json!({ "StringEquals": { "kms:EncryptionContext:aws:sns:topicArn": topic_arn } })
    );

    // The rule takes this stack's events (source regionpilot, detail.app = APP_NAME, the
    // stack name) to the topic.
    assert_eq!(
        template["Globals"]["Function"]["Environment"]["Variables"]["APP_NAME"],
        json!({ "Ref": "AWS::StackName" })
    );
    assert_eq!(
        rule["Properties"]["EventPattern"],
        json!({ "source": [regionpilot::aws::EVENT_SOURCE], "detail": { "app": ["rp"] } })
    );
    assert_eq!(rule["Properties"]["State"], "ENABLED");
    let targets = rule["Properties"]["Targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(targets[0]["Arn"], json!({ "Ref": topic_id }));

    // EventBridge may publish to the topic for that rule and no other.
    assert_eq!(
        topic_policy["Properties"]["Topics"],
        json!([{ "Ref": topic_id }])
    );
    assert_eq!(
        topic_policy["Properties"]["PolicyDocument"]["Statement"],
        json!([{
            "Sid": "NotificationRulePublishes",
            "Effect": "Allow",
            "Principal": { "Service": "events.amazonaws.com" },
            "Action": "sns:Publish",
            "Resource": { "Ref": topic_id },
            "Condition": { "ArnEquals": { "aws:SourceArn": { "Fn::GetAtt": [rule_id, "Arn"] } } },
        }, {
            "Sid": "ProbeSilentAlarmPublishes",
            "Effect": "Allow",
            "Principal": { "Service": "cloudwatch.amazonaws.com" },
            "Action": "sns:Publish",
            "Resource": { "Ref": topic_id },
            "Condition": { "ArnEquals": { "aws:SourceArn": format!("arn:aws:cloudwatch:us-west-2:{ACCOUNT}:alarm:rp-probe-silent") } },
        }])
    );

    let outputs = &template["Outputs"];
    assert_eq!(
        outputs["NotificationTopicArn"]["Value"],
        json!({ "Ref": topic_id })
    );
    assert_eq!(
        outputs["NotificationRuleName"]["Value"],
        json!({ "Ref": rule_id })
    );
}

/// Whether each value matches a parameter's AllowedPattern as a whole, by Python's `re`
/// (what cfn-lint checks defaults with; the patterns use nothing Java reads differently).
fn matches(pattern: &str, values: &[&str]) -> Vec<bool> {
    let script = "import json, re, sys\n\
                  print(json.dumps([re.fullmatch(sys.argv[1], v) is not None for v in json.loads(sys.argv[2])]))";
    let out = std::process::Command::new(paths::python())
        .args(["-c", script])
        .arg(pattern)
        .arg(json!(values).to_string())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a list of booleans")
}

/// Whether the functions' configuration accepts `value` for `variable`, the required
/// variables set.
fn config_accepts(variable: &str, value: &str) -> bool {
    let vars = [
        ("REGIONS", "us-east-1,us-west-2"),
        ("AWS_REGION", "us-west-2"),
        ("ACTIVE_REGION_PARAMETER", "/myapp/active-region"),
        ("CONTROL_TABLE", "rp-control"),
        ("HEALTH_TABLE", "app-health"),
        ("HEALTH_KEY", "pk=regionpilot-canary"),
        (variable, value),
    ];
    regionpilot::Config::from_lookup(|name| {
        vars.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .is_ok()
}

#[test]
fn an_address_is_subscribed_only_with_notification_email() {
    let without = template();
    let subscriptions = resources(&without, "AWS::SNS::Subscription");
    assert_eq!(subscriptions.len(), 1);
    for (id, subscription) in subscriptions {
        assert!(
            !created(&without, subscription),
            "{id} is created without NotificationEmail"
        );
    }

    let with =
        expanded_template(&[THREE_REGIONS, &[("NotificationEmail", "ops@example.com")]].concat());
    let (topic_id, _) = resources(&with, "AWS::SNS::Topic")[0];
    let subscriptions = resources(&with, "AWS::SNS::Subscription");
    assert_eq!(subscriptions.len(), 1);
    let (id, subscription) = subscriptions[0];
    assert!(created(&with, subscription), "{id} is not created");
    assert_eq!(
        subscription["Properties"],
        json!({ "TopicArn": { "Ref": topic_id }, "Protocol": "email", "Endpoint": "ops@example.com" })
    );

    let pattern = with["Parameters"]["NotificationEmail"]["AllowedPattern"]
        .as_str()
        .unwrap();
    assert_eq!(
        matches(pattern, &["", "ops@example.com", "ops", "ops @example.com"]),
        [true, true, false, false]
    );
}

#[test]
fn window_readiness_and_event_variables_come_from_their_parameters() {
    let template = template();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    for (variable, parameter) in [
        ("FAILBACK_WINDOW", "FailbackWindow"),
        ("READINESS_INTERVAL_SECONDS", "ReadinessIntervalSeconds"),
        ("EVENT_BUS_NAME", "EventBusName"),
        ("APP_NAME", "AWS::StackName"),
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
        }
    }
    // The defaults and limits the functions apply.
    let parameters = &template["Parameters"];
    let readiness = &parameters["ReadinessIntervalSeconds"];
    assert_eq!(readiness["Default"], 900);
    for (value, limit) in [("0", "MinValue"), ("86400", "MaxValue")] {
        assert_eq!(readiness[limit], value.parse::<u64>().unwrap(), "{limit}");
        assert!(
            config_accepts("READINESS_INTERVAL_SECONDS", value),
            "{value}"
        );
    }
    assert!(!config_accepts("READINESS_INTERVAL_SECONDS", "86401"));
    assert_eq!(parameters["FailbackWindow"]["Default"], "");
    assert_eq!(parameters["EventBusName"]["Default"], "default");
    assert_eq!(parameters["NotificationEmail"]["Default"], "");

    // A bus name the functions refuse at init is refused at deploy.
    let bus = parameters["EventBusName"]["AllowedPattern"]
        .as_str()
        .unwrap();
    let names = [
        "default",
        "ops-events",
        "aws.partner/example.com/123/events",
        "arn:aws:events:us-west-2:123456789012:event-bus/shared",
        "my bus",
        "ops\"events",
    ];
    for (name, matched) in names.iter().zip(matches(bus, &names)) {
        assert_eq!(matched, config_accepts("EVENT_BUS_NAME", name), "{name:?}");
    }
}

#[test]
fn a_failback_window_the_functions_refuse_fails_the_deploy() {
    // The functions refuse a bad FAILBACK_WINDOW at init, which would stop all three.
    let template = template();
    let pattern = template["Parameters"]["FailbackWindow"]["AllowedPattern"]
        .as_str()
        .unwrap();
    let windows = [
        "",
        "sat-sun 02:00-05:00",
        "mon-fri 22:00-06:00",
        "daily 01:00-03:00",
        "* 00:00-24:00",
        "mon,wed 00:00-24:00; fri-mon 10:00-11:00",
        "SAT-SUN 02:00-05:00",
        "sat-sun 02:00-05:00;",
        " sat 23:30-00:30 ",
        "weekends 02:00-05:00",
        "sat-sun",
        "sat-sun 2:00-05:00",
        "sat-sun 02:00-25:00",
        "sat-sun 02:00",
        "sat-sun 24:00-02:00",
        "sat-sun 02:00-05:00 extra",
        "sat-sun 02:00-05:00, sun 06:00-07:00",
        ";",
    ];
    for (window, matched) in windows.iter().zip(matches(pattern, &windows)) {
        assert_eq!(
            matched,
            config_accepts("FAILBACK_WINDOW", window),
            "{window:?}: the template {} it, the functions {} it",
            if matched { "takes" } else { "refuses" },
            if matched { "refuse" } else { "take" },
        );
    }
    // The one value the pattern lets through: an empty window, refused at init.
    assert_eq!(matches(pattern, &["sat-sun 02:00-02:00"]), [true]);
    assert!(!config_accepts("FAILBACK_WINDOW", "sat-sun 02:00-02:00"));
}

// ControlPlaneMode: single (one stack, in the standby or a third region, with its own
// table) and mrsc (a stack in every region of Regions, one shared table with multi-Region
// strong consistency, created by the stack with ControlTableOwner=true).

/// The resources of one type that the parameters the template was expanded with create.
fn created_resources<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    resources(template, kind)
        .into_iter()
        .filter(|(_, r)| created(template, r))
        .collect()
}

/// What the functions' DynamoDB grants name, other than the health table: the control
/// table's resource, as JSON text.
fn control_table_grants(template: &Value) -> BTreeSet<String> {
    let mut granted = BTreeSet::new();
    for &binary in BINARIES {
        for statement in statements(template, binary) {
            if !actions(statement)
                .iter()
                .any(|a| a.starts_with("dynamodb:"))
            {
                continue;
            }
            let resource = &statement["Resource"];
            if strings(resource)
                .iter()
                .any(|r| r.ends_with(":table/app-health"))
            {
                continue;
            }
            granted.insert(resource.to_string());
        }
    }
    granted
}

#[test]
fn single_mode_keeps_its_own_control_table_in_the_stacks_region() {
    let template = template();
    let mode = &template["Parameters"]["ControlPlaneMode"];
    assert_eq!(mode["Default"], "single");
    assert_eq!(mode["AllowedValues"], json!(["single", "mrsc"]));

    let tables = created_resources(&template, "AWS::DynamoDB::Table");
    let ids: Vec<&str> = tables.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, ["ControlTable"], "one plain table: the control table");
    assert!(created_resources(&template, "AWS::DynamoDB::GlobalTable").is_empty());
    let (_, table) = tables[0];
    assert_eq!(table["DeletionPolicy"], "Retain");
    let props = &table["Properties"];
    assert_eq!(props["DeletionProtectionEnabled"], true);
    assert_eq!(
        props["PointInTimeRecoverySpecification"],
        json!({ "PointInTimeRecoveryEnabled": true })
    );

    for &binary in BINARIES {
        assert_eq!(
            env_value(&template, THREE_REGIONS, binary, "CONTROL_TABLE"),
            json!({ "Ref": "ControlTable" }),
            "{binary}"
        );
    }
    assert_eq!(
        control_table_grants(&template),
        [json!({ "Fn::GetAtt": ["ControlTable", "Arn"] }).to_string()].into(),
        "every control table grant is on this stack's table"
    );
    let outputs = &template["Outputs"];
    assert_eq!(outputs["ControlPlaneMode"]["Value"], "single");
    assert_eq!(
        outputs["ControlTableName"]["Value"],
        json!({ "Ref": "ControlTable" })
    );
    assert_eq!(
        outputs["ControlTableArn"]["Value"],
        json!({ "Fn::GetAtt": ["ControlTable", "Arn"] })
    );
    // The advice for single mode stays with the template.
    let description = template["Description"].as_str().unwrap();
    assert!(
        description.contains("in the standby region (or a third"),
        "{description}"
    );
}

/// The shared control table of an mrsc owner stack, after the checks every shape shares:
/// the only table the stack creates, strongly consistent, with the control table's keys,
/// nothing MRSC refuses (TTL, local secondary indexes), retained, and every replica
/// protected and with point-in-time recovery.
fn shared_table(template: &Value) -> &Value {
    assert!(
        created_resources(template, "AWS::DynamoDB::Table").is_empty(),
        "an mrsc stack creates no plain table"
    );
    let tables = created_resources(template, "AWS::DynamoDB::GlobalTable");
    assert_eq!(tables.len(), 1, "one global table");
    let (_, table) = tables[0];
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
    let props = &table["Properties"];
    assert_eq!(props["TableName"], SHARED_TABLE);
    assert_eq!(props["MultiRegionConsistency"], "STRONG");
    assert_eq!(props["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(props["SSESpecification"], json!({ "SSEEnabled": true }));
    for refused in [
        "TimeToLiveSpecification",
        "LocalSecondaryIndexes",
        "GlobalSecondaryIndexes",
    ] {
        assert!(props.get(refused).is_none(), "{refused} on an MRSC table");
    }
    // The same keys as single mode's table: the code reads and writes one layout.
    let single = &template["Resources"]["ControlTable"]["Properties"];
    for keys in ["KeySchema", "AttributeDefinitions"] {
        assert_eq!(props[keys], single[keys], "{keys}");
    }
    let replicas = props["Replicas"].as_array().unwrap();
    for replica in replicas {
        assert_eq!(
            replica["PointInTimeRecoverySpecification"],
            json!({ "PointInTimeRecoveryEnabled": true }),
            "{replica}"
        );
        assert_eq!(replica["DeletionProtectionEnabled"], true, "{replica}");
    }
    // CloudFormation requires a replica in the owner stack's region.
    assert!(
        replicas.iter().any(|r| r["Region"] == "us-west-2"),
        "{replicas:?}"
    );
    table
}

/// The regions of a global table's replicas, in order.
fn replica_regions(table: &Value) -> Vec<&str> {
    table["Properties"]["Replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Region"].as_str().unwrap())
        .collect()
}

/// Every function of an mrsc stack uses the shared table by its name, and is granted its
/// control table actions on that table's replica in the stack's region only.
fn uses_the_shared_table(template: &Value, given: &[(&str, &str)], owner: bool) {
    let local = format!("arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/{SHARED_TABLE}");
    for &binary in BINARIES {
        let table = env_value(template, given, binary, "CONTROL_TABLE");
        if owner {
            // The table's name, and a reference that creates the table first.
            assert_eq!(table, json!({ "Ref": "ControlGlobalTable" }), "{binary}");
            assert_eq!(
                template["Resources"]["ControlGlobalTable"]["Properties"]["TableName"],
                SHARED_TABLE
            );
        } else {
            assert_eq!(table, SHARED_TABLE, "{binary}");
        }
    }
    assert_eq!(
        control_table_grants(template),
        [json!(local).to_string()].into(),
        "every control table grant is on the local replica"
    );
    let outputs = &template["Outputs"];
    assert_eq!(outputs["ControlPlaneMode"]["Value"], "mrsc");
    assert_eq!(outputs["ControlTableName"]["Value"], SHARED_TABLE);
    assert_eq!(outputs["ControlTableArn"]["Value"], local);
}

#[test]
fn the_mrsc_owner_with_two_regions_creates_the_shared_table_with_two_replicas_and_a_witness() {
    let template = expanded_template(MRSC_TWO_REGIONS);
    deploys(&template, MRSC_TWO_REGIONS);
    let table = shared_table(&template);
    assert_eq!(replica_regions(table), ["us-east-1", "us-west-2"]);
    assert_eq!(
        table["Properties"]["GlobalTableWitnesses"],
        json!([{ "Region": "us-east-2" }])
    );
    uses_the_shared_table(&template, MRSC_TWO_REGIONS, true);
}

#[test]
fn the_mrsc_owner_with_three_regions_creates_the_shared_table_with_three_replicas() {
    let template = expanded_template(MRSC_THREE_REGIONS);
    deploys(&template, MRSC_THREE_REGIONS);
    let table = shared_table(&template);
    assert_eq!(
        replica_regions(table),
        ["us-east-1", "us-east-2", "us-west-2"]
    );
    assert!(
        table["Properties"].get("GlobalTableWitnesses").is_none(),
        "three replicas take no witness"
    );
    uses_the_shared_table(&template, MRSC_THREE_REGIONS, true);
}

#[test]
fn an_mrsc_stack_that_does_not_own_the_table_uses_it_by_name() {
    let template = expanded_template(MRSC_JOINING);
    deploys(&template, MRSC_JOINING);
    for kind in ["AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"] {
        assert!(
            created_resources(&template, kind).is_empty(),
            "the joining stack creates a {kind}"
        );
    }
    uses_the_shared_table(&template, MRSC_JOINING, false);
}

#[test]
fn every_mrsc_stack_alarms_on_every_region_and_runs_its_own_probe_and_verifier() {
    for given in [MRSC_TWO_REGIONS, MRSC_THREE_REGIONS, MRSC_JOINING] {
        let template = expanded_template(given);
        let regions = members(&parameter_values(&template, given)["Regions"]);
        let mut alarmed = Vec::new();
        for (id, alarm) in unhealthy_alarms(&template) {
            assert!(created(&template, alarm), "{id}");
            let props = &alarm["Properties"];
            alarmed.push(props["Dimensions"][0]["Value"].as_str().unwrap().to_owned());
            // Its own region's failover function: the compare-and-swap lets one act.
            assert_eq!(
                props["AlarmActions"],
                json!([{ "Fn::GetAtt": ["FailoverFunction", "Arn"] }]),
                "{id}"
            );
        }
        alarmed.sort_unstable();
        let mut expected = regions.clone();
        expected.sort_unstable();
        assert_eq!(alarmed, expected, "{given:?}: an alarm for every region");
        for binary in ["health-probe", "failback"] {
            let (_, function) = function(&template, binary);
            assert_eq!(
                function["Properties"]["Events"],
                json!({ "EveryMinute": { "Type": "Schedule", "Properties": { "Schedule": "rate(1 minute)" } } }),
                "{binary} runs every minute in every region's stack"
            );
        }
    }
}

#[test]
fn mrsc_stacks_keep_their_global_resources_apart_and_create_no_records() {
    // Dashboards are global in an account, and so are Route 53 health checks: with the
    // same stack name in every region, the stack's region tells them apart.
    let single = template();
    assert_eq!(
        single["Resources"]["Dashboard"]["Properties"]["DashboardName"],
        "rp-regionpilot"
    );
    let given = [
        MRSC_TWO_REGIONS,
        &[
            HOSTED_ZONE,
            RECORD_NAME,
            REGION_TARGETS,
            ("TrafficSignal", "metric"),
        ],
    ]
    .concat();
    let mrsc = expanded_template(&given);
    assert_eq!(
        mrsc["Resources"]["Dashboard"]["Properties"]["DashboardName"],
        "rp-regionpilot-us-west-2"
    );
    let checks = health_checks(&mrsc);
    assert_eq!(
        checks.keys().map(String::as_str).collect::<Vec<_>>(),
        ["us-east-1", "us-west-2"]
    );
    for (region, (id, check)) in &checks {
        assert!(created(&mrsc, check), "{id}");
        assert_eq!(
            check["Properties"]["HealthCheckTags"],
            json!([{ "Key": "Name", "Value": format!("rp-us-west-2-serving-{region}") }]),
            "{id}"
        );
        // On this stack's alarm, in this stack's region.
        assert_eq!(
            check["Properties"]["HealthCheckConfig"]["AlarmIdentifier"]["Region"],
            "us-west-2"
        );
    }
    // A record follows one health check, so one region's control plane: none in mrsc
    // mode, even if the rule that refuses HostedZoneId were gone.
    for (id, record) in resources(&mrsc, "AWS::Route53::RecordSet") {
        assert!(!created(&mrsc, record), "{id} is created in mrsc mode");
    }
    assert!(deploy_fails(&mrsc, &given));

    // By default an mrsc stack brings its gate (auto is gate there), and its health
    // checks carry its region too.
    let gated = expanded_template(MRSC_TWO_REGIONS);
    assert!(created(&gated, &gated["Resources"]["GateFunctionUrl"]));
    assert_eq!(env_value(&gated, &[], "failover", "TRAFFIC_SIGNAL"), "gate");
    for (id, check) in resources(&gated, "AWS::Route53::HealthCheck") {
        if created(&gated, check) {
            let name = resolve(
                &gated,
                &[],
                &check["Properties"]["HealthCheckTags"][0]["Value"],
            );
            assert!(
                name.to_string().contains("us-west-2"),
                "{id}: {name} names the stack's region"
            );
        }
    }
}

#[test]
fn an_mrsc_deploy_without_its_table_name_or_the_witness_it_needs_fails() {
    const MRSC: (&str, &str) = ("ControlPlaneMode", "mrsc");
    const NAMED: (&str, &str) = ("ControlTableName", SHARED_TABLE);
    const TWO: (&str, &str) = ("Regions", "us-east-1,us-west-2");
    let template = template();
    let refused = |given: &[(&str, &str)], reason: &str| {
        let refusals = deploy_refusals(&template, given);
        assert!(
            refusals.iter().any(|r| r.contains(reason)),
            "{given:?}: refused {refusals:?}, not for {reason:?}"
        );
    };

    refused(
        &[MRSC, TWO, ("WitnessRegion", "us-east-2")],
        "ControlTableName is required",
    );
    refused(&[MRSC, NAMED, TWO], "WitnessRegion is required");
    refused(
        &[
            MRSC,
            NAMED,
            ("Regions", "eu-west-1,eu-west-2,eu-west-3"),
            ("WitnessRegion", "eu-central-1"),
        ],
        "WitnessRegion must be empty",
    );
    refused(
        &[MRSC, NAMED, TWO, ("WitnessRegion", "us-west-2")],
        "must not be one of Regions",
    );
    refused(
        &[MRSC, NAMED, TWO, ("WitnessRegion", "eu-west-1")],
        "same MRSC region set",
    );
    refused(
        &[
            MRSC,
            NAMED,
            ("Regions", "us-east-1,eu-west-1"),
            ("WitnessRegion", "us-east-2"),
        ],
        "in one MRSC region set",
    );
    refused(
        &[
            MRSC,
            NAMED,
            ("Regions", "eu-west-1,eu-west-2,eu-west-3,eu-central-1"),
        ],
        "two or three regions",
    );
    refused(
        &[
            MRSC_TWO_REGIONS,
            &[HOSTED_ZONE, RECORD_NAME, REGION_TARGETS],
        ]
        .concat(),
        "HostedZoneId needs TrafficSignal=routing-control",
    );
    refused(
        &[("ControlTableOwner", "true")],
        "applies to ControlPlaneMode=mrsc only",
    );

    // Single mode takes any regions, and needs neither a table name nor a witness.
    deploys(&template, &[]);
    deploys(&template, &[("Regions", "us-east-1,eu-west-1")]);

    // What mrsc accepts: two regions and a witness of one set, or three; and the owner's
    // table then has three replicas, or two and the witness.
    for shape in [
        &[TWO, ("WitnessRegion", "us-east-2")][..],
        &[("Regions", "us-east-2,us-west-2,us-east-1")],
        &[
            ("Regions", "eu-central-1,eu-west-2"),
            ("WitnessRegion", "eu-west-1"),
        ],
        &[("Regions", "eu-west-1,eu-west-3,eu-central-1")],
        &[
            ("Regions", "ap-northeast-1,ap-northeast-3"),
            ("WitnessRegion", "ap-northeast-2"),
        ],
    ] {
        let given = [&[MRSC, NAMED][..], shape].concat();
        deploys(&template, &given);
        let owner = [&given[..], &[("ControlTableOwner", "true")]].concat();
        let expanded = expanded_template(&owner);
        let (_, table) = created_resources(&expanded, "AWS::DynamoDB::GlobalTable")[0];
        let replicas = replica_regions(table);
        let witnesses = strings_of(&table["Properties"]["GlobalTableWitnesses"], "Region");
        assert_eq!(replicas.len() + witnesses.len(), 3, "{given:?}");
        let mut listed = members(&parameter_values(&expanded, &owner)["Regions"]);
        let mut replicated: Vec<String> = replicas.iter().map(|r| (*r).to_owned()).collect();
        listed.sort_unstable();
        replicated.sort_unstable();
        assert_eq!(replicated, listed, "a replica in every region of Regions");
        assert!(witnesses.iter().all(|w| !listed.contains(w)), "{given:?}");
    }
}

/// The `key` of every object in a list (none for a missing list).
fn strings_of(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|item| item[key].as_str().unwrap().to_owned())
        .collect()
}

// ---- A first deploy on real AWS ----

#[test]
fn missing_health_data_never_fails_over_and_a_silent_probe_is_told_instead() {
    let template = template();
    for (id, alarm) in unhealthy_alarms(&template) {
        let props = &alarm["Properties"];
        // A fresh stack has no Healthy metric until the probe's first run: missing data
        // must not be read as an outage.
        assert_eq!(props["TreatMissingData"], "notBreaching", "{id}");
        assert_eq!(
            (
                props["EvaluationPeriods"].clone(),
                props["DatapointsToAlarm"].clone()
            ),
            (
                json!(regionpilot::samples::DATAPOINTS_TO_ALARM),
                json!(regionpilot::samples::DATAPOINTS_TO_ALARM)
            ),
            "{id}: the verifier's failover retry applies the alarm's own rule"
        );
        // Every allowed probe interval divides the period, so no period is left empty.
        let period = props["Period"].as_u64().unwrap();
        for interval in allowed_probe_intervals(&template) {
            assert_eq!(period % interval, 0, "{id}: a {interval} s interval");
        }
    }
    let silent: Vec<&Value> = alarms_on(&template, "Healthy")
        .into_iter()
        .filter(|(_, a)| a["Properties"]["Statistic"] == "SampleCount")
        .map(|(_, a)| &a["Properties"])
        .collect();
    assert_eq!(silent.len(), 1, "one probe liveness alarm");
    let silent = silent[0];
    assert_eq!(silent["AlarmName"], "rp-probe-silent");
    assert_eq!(
        silent["Dimensions"][0]["Value"], "us-east-1",
        "home's samples"
    );
    // Missing data puts it in INSUFFICIENT_DATA (a new alarm's first state, which tells
    // nobody at birth); that state, and only the topic, is told.
    assert_eq!(silent["TreatMissingData"], "missing");
    let topic = json!([{ "Ref": "NotificationTopic" }]);
    assert_eq!(silent["InsufficientDataActions"], topic);
    assert_eq!(silent["AlarmActions"], topic);
    assert!(silent.get("OKActions").is_none());
    let failover = function(&template, "failover").0;
    assert!(
        !silent.to_string().contains(failover),
        "the liveness alarm never invokes failover"
    );
    // The topic takes CloudWatch's publish (its policy and its key's).
    let policy = resources(&template, "AWS::SNS::TopicPolicy")[0].1["Properties"]["PolicyDocument"]
        ["Statement"]
        .to_string();
    assert!(policy.contains("cloudwatch.amazonaws.com") && policy.contains("rp-probe-silent"));
    let key = resources(&template, "AWS::KMS::Key")[0].1.to_string();
    assert!(key.contains("cloudwatch.amazonaws.com"));
}

/// ProbeIntervalSeconds' allowed values, as numbers.
fn allowed_probe_intervals(template: &Value) -> Vec<u64> {
    template["Parameters"]["ProbeIntervalSeconds"]["AllowedValues"]
        .as_array()
        .expect("ProbeIntervalSeconds has AllowedValues")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// The template parameter each function variable is set from (`VARIABLE: !Ref Param`).
fn parameter_of_variable(template: &Value) -> BTreeMap<String, String> {
    template["Globals"]["Function"]["Environment"]["Variables"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(variable, value)| Some((variable.clone(), value["Ref"].as_str()?.to_owned())))
        .collect()
}

#[test]
fn every_numeric_parameter_has_the_codes_bounds() {
    use regionpilot::config::{self, NUMBERS, PROBE_INTERVALS, PROBE_TIMEOUT_MS};
    let template = template();
    let parameters = template["Parameters"].as_object().unwrap();
    let from = parameter_of_variable(&template);
    let mut checked = BTreeSet::new();
    for bounds in NUMBERS {
        let Some(name) = from.get(bounds.variable) else {
            continue; // not offered by the template (the function's default applies)
        };
        let p = &parameters[name];
        assert_eq!(p["Type"], "Number", "{name}");
        assert_eq!(
            (
                p["Default"].clone(),
                p["MinValue"].clone(),
                p["MaxValue"].clone()
            ),
            (json!(bounds.default), json!(bounds.min), json!(bounds.max)),
            "{name} (Default, MinValue, MaxValue) against {bounds:?}"
        );
        checked.insert(name.clone());
    }
    // The probe interval: the code's allowed values that a probe timeout cannot reach,
    // so no combination of the two parameters has a sample outlast its interval.
    let offered: Vec<u64> = PROBE_INTERVALS
        .iter()
        .copied()
        .filter(|i| i * 1000 > PROBE_TIMEOUT_MS.max)
        .collect();
    assert_eq!(allowed_probe_intervals(&template), offered);
    assert_eq!(
        parameters["ProbeIntervalSeconds"]["Default"],
        json!(config::PROBE_INTERVAL_DEFAULT)
    );
    assert_eq!(from["PROBE_INTERVAL_SECONDS"], "ProbeIntervalSeconds");
    checked.insert("ProbeIntervalSeconds".into());
    // Every Number parameter is one of those, or the template's own.
    for (name, p) in parameters {
        // The template's own: not function variables.
        if p["Type"] == "Number" && !["ReservedConcurrency", "RecordTtl"].contains(&name.as_str()) {
            assert!(checked.contains(name), "{name} has no bounds in config.rs");
        }
    }
    assert!(checked.len() >= 13, "{checked:?}");
}

#[test]
fn string_parameters_accept_only_what_the_functions_accept() {
    let template = template();
    let parameters = &template["Parameters"];
    let from = parameter_of_variable(&template);
    for (parameter, good, bad) in [
        (
            // Empty for a regional stack only: a rule requires it of the control stack.
            "HealthTable",
            &["app-health", "a.b_c-1"][..],
            &["ab", "my table"][..],
        ),
        (
            "HealthKey",
            &["pk=regionpilot-canary", "id = x"],
            &["pk", "=x", "pk=", ""],
        ),
        (
            "MetricsNamespace",
            &["RegionPilot", "App/DR"],
            &["a:b", "", "Région"],
        ),
    ] {
        let pattern = parameters[parameter]["AllowedPattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{parameter} has no AllowedPattern"));
        let variable = from
            .iter()
            .find(|(_, p)| *p == parameter)
            .map(|(v, _)| v.clone())
            .unwrap();
        for (value, accepted) in good
            .iter()
            .map(|v| (v, true))
            .chain(bad.iter().map(|v| (v, false)))
        {
            assert_eq!(
                matches(pattern, &[*value])[0],
                accepted,
                "{parameter}={value:?}"
            );
            if accepted {
                assert!(config_accepts(&variable, value), "{variable}={value:?}");
            }
        }
    }
    // The longest parameter name the template takes, the functions take too.
    let longest = parameters["ActiveRegionParameter"]["MaxLength"]
        .as_u64()
        .unwrap() as usize;
    let name = format!("/{}", "a".repeat(longest - 1));
    assert!(config_accepts("ACTIVE_REGION_PARAMETER", &name));
    let regions = parameters["Regions"]["AllowedPattern"].as_str().unwrap();
    assert_eq!(
        matches(
            regions,
            &["us-east-1", "ap-southeast-7", "US-EAST-1", "us-east"]
        ),
        [true, true, false, false]
    );
}

#[test]
fn the_probe_and_the_verifier_reserve_no_concurrency_unless_asked() {
    let ids = ["health-probe", "failback", "failover"];
    let template = template();
    let unreserved = |template: &Value, binary: &str| {
        let (_, function) = function(template, binary);
        function["Properties"]
            .get("ReservedConcurrentExecutions")
            .is_none_or(|v| resolve(template, &[], v) == json!({ "Ref": "AWS::NoValue" }))
    };
    for binary in ids {
        assert!(
            unreserved(&template, binary),
            "{binary}: reserved by default"
        );
    }
    let reserved = expanded_template(&[
        ("Regions", "us-east-1,us-west-2"),
        ("HealthTable", "app-health"),
        ("ReservedConcurrency", "2"),
    ]);
    for binary in ["health-probe", "failback"] {
        let (_, function) = function(&reserved, binary);
        assert_eq!(
            resolve(
                &reserved,
                &[],
                &function["Properties"]["ReservedConcurrentExecutions"]
            ),
            json!("2"),
            "{binary}"
        );
    }
    assert!(
        unreserved(&reserved, "failover"),
        "alarm storms are made safe by the compare-and-swap, not by a reservation"
    );
}

#[test]
fn regionpilot_writes_only_its_own_items_in_the_health_table_and_the_probe_only_its_samples() {
    let template = template();
    let health_table = "arn:aws:dynamodb:*:123456789012:table/app-health";
    for binary in BINARIES {
        for statement in granting(&template, binary, "dynamodb:PutItem") {
            let resource = strings(&statement["Resource"]).join(",");
            let condition = &statement["Condition"];
            if resource == health_table {
                assert_eq!(actions(statement), ["dynamodb:PutItem"], "{binary}");
                assert_eq!(
                    condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
                    json!([permissions::HEALTH_TABLE_WRITES]),
                    "{binary}: PutItem in the application's table"
                );
            } else if *binary == "health-probe" {
                assert_eq!(
                    condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"],
                    json!([permissions::PROBE_CONTROL_WRITES]),
                    "the probe writes its samples' partition of the control table only"
                );
            }
        }
    }
    // The heartbeat keys the code writes fall under the grant.
    let prefix = permissions::HEALTH_TABLE_WRITES.trim_end_matches('*');
    assert!("regionpilot-heartbeat#us-east-1".starts_with(prefix));
}

#[test]
fn a_customer_managed_health_table_key_is_decryptable_through_dynamodb_only() {
    let template = template();
    for binary in BINARIES {
        assert!(
            !granted_actions(&template, binary)
                .iter()
                .any(|a| a.starts_with("kms:")),
            "{binary}: kms without HealthTableKeyArns"
        );
    }
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let keyed = expanded_template(&[
        ("Regions", "us-east-1,us-west-2"),
        ("HealthTable", "app-health"),
        ("HealthTableKeyArns", key),
    ]);
    for binary in BINARIES {
        let statements = granting(&keyed, binary, "kms:Decrypt");
        assert_eq!(statements.len(), 1, "{binary}");
        assert_eq!(actions(statements[0]), ["kms:Decrypt"]);
        assert_eq!(strings(&statements[0]["Resource"]), [key], "{binary}");
        assert_eq!(
            statements[0]["Condition"]["StringLike"]["kms:ViaService"],
            "dynamodb.*.amazonaws.com"
        );
    }
}

#[test]
fn an_mrsc_owner_stack_outside_the_tables_regions_fails_the_deploy() {
    // Every expanded template is in us-west-2.
    let template = expanded_template(MRSC_TWO_REGIONS);
    deploys(&template, MRSC_TWO_REGIONS);
    let elsewhere = [
        ("ControlPlaneMode", "mrsc"),
        ("ControlTableName", SHARED_TABLE),
        ("ControlTableOwner", "true"),
        ("Regions", "us-east-1,us-east-2"),
        ("WitnessRegion", "us-west-2"),
        ("AutoScalingGroups", ""),
    ];
    let refusals = deploy_refusals(&template, &elsewhere);
    assert!(
        refusals
            .iter()
            .any(|r| r.contains("deployed in one of Regions")),
        "{refusals:?}"
    );
}

/// `Name="value"` pairs of a samconfig parameter_overrides string.
fn overrides(text: &str) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    let mut rest = text.trim();
    while let Some((name, after)) = rest.split_once("=\"") {
        let (value, tail) = after.split_once('"').expect("a closing quote");
        pairs.insert(name.trim().to_owned(), value.to_owned());
        rest = tail.trim();
    }
    pairs
}

#[test]
fn every_samconfig_environment_builds_for_the_architecture_it_deploys() {
    let text = std::fs::read_to_string(paths::workspace().join("samconfig.toml")).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    let template_default = template()["Parameters"]["Architecture"]["Default"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut architectures = BTreeMap::new();
    for (env, sections) in &config {
        let Some(sections) = sections.as_table() else {
            continue; // version
        };
        // What one command reads: its own section over the global one.
        let parameter = |command: &str| {
            [command, "global"]
                .iter()
                .find_map(|section| {
                    sections
                        .get(*section)?
                        .get("parameters")?
                        .get("parameter_overrides")
                })
                .and_then(|v| v.as_str())
                .map(overrides)
                .unwrap_or_default()
                .get("Architecture")
                .cloned()
                .unwrap_or_else(|| template_default.clone())
        };
        let (build, deploy) = (parameter("build"), parameter("deploy"));
        assert_eq!(build, deploy, "{env}: sam build and sam deploy disagree");
        architectures.insert(env.clone(), deploy);
    }
    assert_eq!(architectures["prod"], "arm64", "{architectures:?}");
    assert_eq!(architectures["default"], "x86_64");
    // The case that was wrong: an override in the deploy section alone.
    assert_eq!(
        overrides(r#"Regions="us-east-1,us-west-2" Architecture="arm64""#)["Architecture"],
        "arm64"
    );
}

#[test]
fn the_drills_alarm_models_are_the_templates_rules() {
    use regionpilot_tests::alarm::{self, Rule, Statistic};
    let template = template();
    let rule_of = |props: &Value| Rule {
        period_seconds: props["Period"].as_f64().unwrap(),
        statistic: match props["Statistic"].as_str().unwrap() {
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            "SampleCount" => Statistic::SampleCount,
            other => panic!("statistic {other}"),
        },
        evaluation_periods: props["EvaluationPeriods"].as_u64().unwrap() as usize,
        datapoints_to_alarm: props["DatapointsToAlarm"].as_u64().unwrap() as usize,
        threshold: props["Threshold"].as_f64().unwrap(),
        missing: [
            alarm::MissingData::Missing,
            alarm::MissingData::Ignore,
            alarm::MissingData::Breaching,
            alarm::MissingData::NotBreaching,
        ]
        .into_iter()
        .find(|m| props["TreatMissingData"] == m.name())
        .unwrap(),
    };
    for (id, a) in unhealthy_alarms(&template) {
        assert_eq!(a["Properties"]["ComparisonOperator"], "LessThanThreshold");
        assert_eq!(rule_of(&a["Properties"]), alarm::UNHEALTHY, "{id}");
    }
    for (id, a) in alarms_on(&template, "ActiveRegion") {
        assert_eq!(rule_of(&a["Properties"]), alarm::SERVING, "{id}");
    }
}

/// The drill's DNS model resolves with the records' default TTL.
#[test]
fn the_drills_ttl_is_the_templates_default_record_ttl() {
    let template = template();
    let ttl = &template["Parameters"]["RecordTtl"];
    assert_eq!(ttl["Type"], "Number");
    assert_eq!(
        ttl["Default"],
        json!(regionpilot_tests::dns::TTL_SECONDS as u64)
    );
}

/// Two other regions' gates (regional stacks' GateUrl outputs).
const GATES: (&str, &str) = (
    "RegionalGates",
    "https://abcdef0123.lambda-url.us-east-1.on.aws/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0,https://987654fedc.lambda-url.eu-west-1.on.aws/11112222-3333-4444-5555-666677778888",
);

/// The created health checks of one configuration type, by logical ID.
fn checks_of_type<'a>(template: &'a Value, kind: &str) -> BTreeMap<&'a str, &'a Value> {
    resources(template, "AWS::Route53::HealthCheck")
        .into_iter()
        .filter(|(_, c)| created(template, c))
        .filter(|(_, c)| c["Properties"]["HealthCheckConfig"]["Type"] == kind)
        .collect()
}

/// The region's weighted record's health check, as deployed.
fn record_check(template: &Value, key: &str) -> Value {
    let record = &template["Resources"][format!("ServingRecord{key}")];
    assert!(created(template, record), "ServingRecord{key} is created");
    resolve(template, &[], &record["Properties"]["HealthCheckId"])
}

#[test]
fn each_traffic_signal_gets_its_health_checks_and_the_records_follow_them() {
    let records = [HOSTED_ZONE, RECORD_NAME, REGION_TARGETS];
    let keys = [
        ("us-east-1", "useast1"),
        ("us-west-2", "uswest2"),
        ("eu-west-1", "euwest1"),
    ];

    // auto without other regions' gates: the metric signal, as before.
    let metric = expanded_template(&[THREE_REGIONS, &records].concat());
    deploys(&metric, &[]);
    assert_eq!(checks_of_type(&metric, "CLOUDWATCH_METRIC").len(), 3);
    for kind in ["HTTPS_STR_MATCH", "CALCULATED", "RECOVERY_CONTROL"] {
        assert!(
            checks_of_type(&metric, kind).is_empty(),
            "{kind} under metric"
        );
    }
    assert!(!created(&metric, &metric["Resources"]["GateFunctionUrl"]));
    assert_eq!(
        env_value(&metric, &[], "failover", "TRAFFIC_SIGNAL"),
        "metric"
    );
    assert!(
        resolve(
            &metric,
            &[],
            &metric["Outputs"]["TrafficSignalInForce"]["Value"]
        )
        .as_str()
        .is_some_and(|s| s.starts_with("metric") && s.contains("DeploymentRole=regional")),
        "the output says what to deploy for the fast signal"
    );
    for (_, key) in keys {
        assert_eq!(
            record_check(&metric, key),
            json!({ "Ref": format!("ServingHealthCheck{key}") })
        );
    }

    // auto with the other regions' gates: the gate signal.
    let gate = expanded_template(&[THREE_REGIONS, &records, &[GATES]].concat());
    deploys(&gate, &[]);
    assert!(checks_of_type(&gate, "CLOUDWATCH_METRIC").is_empty());
    assert!(
        alarms_on(&gate, "ActiveRegion")
            .iter()
            .all(|(_, a)| !created(&gate, a))
    );
    assert_eq!(env_value(&gate, &[], "failover", "TRAFFIC_SIGNAL"), "gate");
    let https = checks_of_type(&gate, "HTTPS_STR_MATCH");
    // This stack's gate and the two others, asked about each of the three regions.
    assert_eq!(https.len(), 9, "{:?}", https.keys());
    for (region, key) in keys {
        for (id, own_host, token) in [
            (format!("OwnGateServing{key}"), None, None),
            (
                format!("Gate0Serving{key}"),
                Some("abcdef0123.lambda-url.us-east-1.on.aws"),
                Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
            ),
            (
                format!("Gate1Serving{key}"),
                Some("987654fedc.lambda-url.eu-west-1.on.aws"),
                Some("11112222-3333-4444-5555-666677778888"),
            ),
        ] {
            let config = &https[id.as_str()]["Properties"]["HealthCheckConfig"];
            assert_eq!(config["RequestInterval"], 10, "{id}: the fast interval");
            assert_eq!(config["FailureThreshold"], 1, "{id}");
            assert_eq!(config["Port"], 443, "{id}");
            assert_eq!(config["SearchString"], format!("serving {region}"), "{id}");
            if let (Some(host), Some(token)) = (own_host, token) {
                assert_eq!(config["FullyQualifiedDomainName"], host, "{id}");
                assert_eq!(
                    config["ResourcePath"],
                    format!("/{token}/serving/{region}"),
                    "{id}"
                );
            } else {
                // This stack's own URL, on the stack ID's random part.
                let text = config.to_string();
                assert!(
                    text.contains("GateFunctionUrl") && text.contains("AWS::StackId"),
                    "{id}: {text}"
                );
            }
        }
        for slot in 2..5 {
            let unused = &gate["Resources"][format!("Gate{slot}Serving{key}")];
            assert!(!created(&gate, unused), "slot {slot} has no gate");
        }
        let calculated = &gate["Resources"][format!("GateHealthCheck{key}")];
        assert!(created(&gate, calculated));
        let config = &calculated["Properties"]["HealthCheckConfig"];
        assert_eq!(config["Type"], "CALCULATED");
        // Healthy while ANY gate says the region is serving.
        assert_eq!(config["HealthThreshold"], 1);
        let children: Vec<Value> = config["ChildHealthChecks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| resolve(&gate, &[], c))
            .filter(|c| *c != json!({ "Ref": "AWS::NoValue" }))
            .collect();
        assert_eq!(
            children,
            [
                json!({ "Ref": format!("OwnGateServing{key}") }),
                json!({ "Ref": format!("Gate0Serving{key}") }),
                json!({ "Ref": format!("Gate1Serving{key}") }),
            ]
        );
        assert_eq!(
            record_check(&gate, key),
            json!({ "Ref": format!("GateHealthCheck{key}") })
        );
    }
    // The gate is the health probe's function URL, public (Route 53 cannot sign), with the
    // two permissions Lambda asks of a public URL.
    let url = &gate["Resources"]["GateFunctionUrl"];
    assert!(created(&gate, url));
    assert_eq!(url["Properties"]["AuthType"], "NONE");
    assert_eq!(
        resolve(&gate, &[], &url["Properties"]["TargetFunctionArn"]),
        json!({ "Fn::GetAtt": ["HealthProbeFunction", "Arn"] })
    );
    for (id, action) in [
        ("GateUrlPermission", "lambda:InvokeFunctionUrl"),
        ("GateInvokePermission", "lambda:InvokeFunction"),
    ] {
        let permission = &gate["Resources"][id];
        assert!(created(&gate, permission), "{id}");
        assert_eq!(permission["Properties"]["Action"], action);
    }
    let (_, probe) = function(&gate, "health-probe");
    let token = resolve(
        &gate,
        &[],
        &probe["Properties"]["Environment"]["Variables"]["GATE_TOKEN"],
    );
    assert!(token.to_string().contains("AWS::StackId"), "{token}");

    // An explicit gate without the other regions' gates is refused; metric with them
    // stays metric.
    assert!(
        deploy_refusals(&gate, &[("TrafficSignal", "gate"), ("RegionalGates", "")])
            .iter()
            .any(|r| r.contains("TrafficSignal=gate needs RegionalGates"))
    );
    let forced_metric =
        expanded_template(&[THREE_REGIONS, &[GATES, ("TrafficSignal", "metric")]].concat());
    assert_eq!(checks_of_type(&forced_metric, "CLOUDWATCH_METRIC").len(), 3);

    // routing-control: the regions' routing controls, granted on exactly those.
    let routing = expanded_template(&with_routing_control(&[THREE_REGIONS, &records].concat()));
    deploys(&routing, &[]);
    let controls = checks_of_type(&routing, "RECOVERY_CONTROL");
    assert_eq!(controls.len(), 3);
    assert!(checks_of_type(&routing, "CLOUDWATCH_METRIC").is_empty());
    assert!(checks_of_type(&routing, "HTTPS_STR_MATCH").is_empty());
    assert!(!created(&routing, &routing["Resources"]["GateFunctionUrl"]));
    assert_eq!(
        env_value(&routing, &[], "failback", "TRAFFIC_SIGNAL"),
        "routing-control"
    );
    for (region, key) in keys {
        let check = &controls[format!("RoutingHealthCheck{key}").as_str()];
        assert_eq!(
            check["Properties"]["HealthCheckConfig"]["RoutingControlArn"],
            routing_arn(region)
        );
        assert_eq!(
            record_check(&routing, key),
            json!({ "Ref": format!("RoutingHealthCheck{key}") })
        );
    }
    for binary in ["failover", "failback"] {
        for action in permissions::ROUTING_CONTROL_ONLY {
            let mut arns: Vec<String> = granting(&routing, binary, action)
                .iter()
                .flat_map(|s| strings(&s["Resource"]).into_iter().map(str::to_owned))
                .collect();
            arns.sort();
            let mut expected: Vec<String> = keys.iter().map(|(r, _)| routing_arn(r)).collect();
            expected.sort();
            assert_eq!(
                arns, expected,
                "{binary}: {action} on the routing controls only"
            );
        }
    }
    assert!(
        granted_actions(&routing, "health-probe")
            .iter()
            .all(|a| !a.starts_with("route53"))
    );
    for missing in ["RoutingControlEndpoints", "RoutingControlArns"] {
        let refusals = deploy_refusals(&routing, &[(missing, "")]);
        assert!(
            refusals.iter().any(|r| r.contains(missing)),
            "{missing}: {refusals:?}"
        );
    }
}

#[test]
fn a_regional_stack_is_one_gate_with_one_grant() {
    let given = [
        ("Regions", "us-east-1,us-west-2"),
        ("DeploymentRole", "regional"),
    ];
    let regional = expanded_template(&given);
    deploys(&regional, &[]);
    let made: BTreeSet<&str> = regional["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| created(&regional, r))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        made,
        BTreeSet::from([
            "ActiveRegionParameterResource",
            "RegionalGateFunction",
            "GateFunctionUrl",
            "GateUrlPermission",
            "GateInvokePermission",
        ]),
        "a gate, its URL and the region's copy of the parameter; nothing else"
    );
    let gate = &regional["Resources"]["RegionalGateFunction"];
    assert_eq!(
        gate["Metadata"]["BuildProperties"]["Binary"], "health-probe",
        "no fourth binary"
    );
    assert_eq!(gate["Properties"]["MemorySize"], 128, "the smallest memory");
    assert!(
        gate["Properties"]["ReservedConcurrentExecutions"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    assert!(
        gate["Properties"].get("Events").is_none(),
        "invoked by its URL only"
    );
    let statements: Vec<&Value> = gate["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["Statement"].as_array().unwrap())
        .collect();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(actions(statements[0]), permissions::REGIONAL_GATE);
    assert_eq!(
        statements[0]["Resource"],
        "arn:aws:ssm:us-west-2:123456789012:parameter/myapp/active-region",
        "its own region's parameter only"
    );
    assert_eq!(
        resolve(
            &regional,
            &[],
            &regional["Resources"]["GateFunctionUrl"]["Properties"]["TargetFunctionArn"]
        ),
        json!({ "Fn::GetAtt": ["RegionalGateFunction", "Arn"] })
    );
    assert_eq!(
        env_value(&regional, &[], "health-probe", "DEPLOYMENT_ROLE"),
        "regional"
    );
    let outputs: BTreeSet<&str> = regional["Outputs"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, o)| created(&regional, o))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(outputs, BTreeSet::from(["GateUrl"]));
    // Only in single mode, in one of Regions, and without records.
    for (extra, reason) in [
        (
            ("ControlPlaneMode", "mrsc"),
            "DeploymentRole=regional is for ControlPlaneMode=single",
        ),
        (
            HOSTED_ZONE,
            "HostedZoneId must be empty with DeploymentRole=regional",
        ),
        (
            ("Regions", "eu-west-1,eu-west-2"),
            "must be deployed in one of Regions",
        ),
    ] {
        let refusals = deploy_refusals(&regional, &[extra]);
        assert!(
            refusals.iter().any(|r| r.contains(reason)),
            "{extra:?}: {refusals:?}"
        );
    }
    // The control stack still needs its health table.
    let control = expanded_template(&[("Regions", "us-east-1,us-west-2")]);
    assert!(
        deploy_refusals(&control, &[])
            .iter()
            .any(|r| r.contains("HealthTable is required"))
    );
}
