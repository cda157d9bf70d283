//! The template as CloudFormation sees it, and the small evaluator the checks use:
//! expansion, conditions, rules, grants, resources, values as deployed.

use crate::*;

/// The template as CloudFormation would see it after the AWS::LanguageExtensions transform:
/// cfn-lint's parser reads the short-form tags, then SAM CLI's own language-extensions
/// processor expands Fn::ForEach, Fn::If and the string functions with these parameters.
pub(crate) fn expanded_template(parameters: &[(&str, &str)]) -> Value {
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
pub(crate) fn expand(parameters: &[(&str, &str)]) -> Result<Value, String> {
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

pub(crate) const THREE_REGIONS: &[(&str, &str)] = &[
    ("Regions", "us-east-1,us-west-2,eu-west-1"),
    (
        "AutoScalingGroups",
        "us-east-1=web-a,us-west-2=web-b,eu-west-1=web-c",
    ),
    ("HealthTable", "app-health"),
];

pub(crate) fn template() -> Value {
    expanded_template(THREE_REGIONS)
}

/// The shared control table's name in the mrsc cases.
pub(crate) const SHARED_TABLE: &str = "rp-control";

/// ControlPlaneMode=mrsc, the stack that owns the shared table (deployed in us-west-2, as
/// every expanded template), two regions and a witness.
pub(crate) const MRSC_TWO_REGIONS: &[(&str, &str)] = &[
    ("ControlPlaneMode", "mrsc"),
    ("ControlTableName", SHARED_TABLE),
    ("ControlTableOwner", "true"),
    ("Regions", "us-east-1,us-west-2"),
    ("WitnessRegion", "us-east-2"),
    ("AutoScalingGroups", "us-east-1=web-a,us-west-2=web-b"),
    ("HealthTable", "app-health"),
];

/// The owner stack with three regions (of the US set), so no witness.
pub(crate) const MRSC_THREE_REGIONS: &[(&str, &str)] = &[
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
pub(crate) const MRSC_JOINING: &[(&str, &str)] = &[
    ("ControlPlaneMode", "mrsc"),
    ("ControlTableName", SHARED_TABLE),
    ("Regions", "us-east-1,us-west-2"),
    ("WitnessRegion", "us-east-2"),
    ("AutoScalingGroups", "us-east-1=web-a,us-west-2=web-b"),
    ("HealthTable", "app-health"),
];

pub(crate) const ACCOUNT: &str = "123456789012";

/// The groups in THREE_REGIONS, as (region, name).
pub(crate) const GROUPS: &[(&str, &str)] = &[
    ("us-east-1", "web-a"),
    ("us-west-2", "web-b"),
    ("eu-west-1", "web-c"),
];

pub(crate) const BINARIES: &[&str] = &["failover", "health-probe", "failback"];

/// The function that builds `binary`, with its logical ID.
/// (The control stack's: a regional stack's gate builds the health probe's binary too.)
pub(crate) fn function<'a>(template: &'a Value, binary: &str) -> (&'a str, &'a Value) {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, r)| {
            r["Type"] == "AWS::Serverless::Function"
                && r["Metadata"]["BuildProperties"]["Binary"] == binary
                && r["Condition"] != "RegionalRole"
                && r["Condition"] != "GateRole"
        })
        .map(|(id, r)| (id.as_str(), r))
        .unwrap_or_else(|| panic!("no function builds binary {binary}"))
}

/// The template's parameter values: `given` over the ones it was expanded with, over the
/// declared defaults; and the stack's region (every expanded template is in us-west-2).
pub(crate) fn parameter_values(
    template: &Value,
    given: &[(&str, &str)],
) -> BTreeMap<String, Value> {
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
pub(crate) fn holds(template: &Value, parameters: &BTreeMap<String, Value>, expr: &Value) -> bool {
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
pub(crate) fn members(list: &Value) -> Vec<String> {
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
pub(crate) fn statements<'a>(template: &'a Value, binary: &str) -> Vec<&'a Value> {
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

pub(crate) fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

pub(crate) fn actions(statement: &Value) -> Vec<&str> {
    strings(&statement["Action"])
}

pub(crate) fn granted_actions(template: &Value, binary: &str) -> BTreeSet<String> {
    statements(template, binary)
        .into_iter()
        .flat_map(actions)
        .map(str::to_owned)
        .collect()
}

/// The statements that grant `action` to the function.
pub(crate) fn granting<'a>(template: &'a Value, binary: &str, action: &str) -> Vec<&'a Value> {
    statements(template, binary)
        .into_iter()
        .filter(|statement| actions(statement).contains(&action))
        .collect()
}

pub(crate) fn statement<'a>(template: &'a Value, binary: &str, sid: &str) -> Option<&'a Value> {
    statements(template, binary)
        .into_iter()
        .find(|statement| statement["Sid"] == sid)
}

pub(crate) fn environment(template: &Value, function: &Value) -> BTreeSet<String> {
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

/// `given` with ReloadMode=run-command (and its commands).
pub(crate) fn with_run_command<'a>(given: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = given.to_vec();
    all.extend([
        ("ReloadMode", "run-command"),
        ("ReloadCommands", "systemctl reload php-fpm"),
    ]);
    all
}

pub(crate) fn run_command_template() -> Value {
    expanded_template(&with_run_command(THREE_REGIONS))
}

/// The resources of one type, with their logical IDs.
pub(crate) fn resources<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

/// The alarms on one metric.
pub(crate) fn alarms_on<'a>(template: &'a Value, metric: &str) -> Vec<(&'a str, &'a Value)> {
    resources(template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| a["Properties"]["MetricName"] == metric)
        .collect()
}

/// The `<stack>-unhealthy-<region>` alarms (the Healthy alarms that are not the probe's
/// liveness alarm).
pub(crate) fn unhealthy_alarms(template: &Value) -> Vec<(&str, &Value)> {
    alarms_on(template, "Healthy")
        .into_iter()
        .filter(|(_, a)| a["Properties"]["Statistic"] != "SampleCount")
        .collect()
}

/// Why CloudFormation refuses the deploy with these parameters: the AssertDescription of
/// every false assertion of every rule that applies; empty when it deploys.
pub(crate) fn deploy_refusals(template: &Value, given: &[(&str, &str)]) -> Vec<String> {
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
pub(crate) fn deploys(template: &Value, given: &[(&str, &str)]) {
    let refusals = deploy_refusals(template, given);
    assert!(refusals.is_empty(), "{given:?} is refused: {refusals:?}");
}

/// Whether CloudFormation refuses the deploy with these parameters: some rule applies and
/// one of its assertions is false.
pub(crate) fn deploy_fails(template: &Value, given: &[(&str, &str)]) -> bool {
    !deploy_refusals(template, given).is_empty()
}

/// Whether a resource (or output) with an optional Condition is created.
pub(crate) fn created(template: &Value, resource: &Value) -> bool {
    resource.get("Condition").is_none_or(|name| {
        holds(
            template,
            &parameter_values(template, &[]),
            &json!({ "Condition": name }),
        )
    })
}

/// The value a function's environment gives `variable`, with the template expanded and
/// deployed with the parameters `given`.
pub(crate) fn env_value(
    template: &Value,
    given: &[(&str, &str)],
    binary: &str,
    variable: &str,
) -> Value {
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
pub(crate) fn resolve(template: &Value, given: &[(&str, &str)], value: &Value) -> Value {
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

/// Each variable is set for every function from its parameter, in `Globals`, and no
/// function overrides it.
pub(crate) fn set_for_every_function_from(template: &Value, pairs: &[(&str, &str)]) {
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    for (variable, parameter) in pairs {
        assert_eq!(
            globals[*variable],
            json!({ "Ref": parameter }),
            "{variable} is set from {parameter}"
        );
        for &binary in BINARIES {
            let (_, function) = function(template, binary);
            assert!(
                function["Properties"]["Environment"]["Variables"]
                    .get(*variable)
                    .is_none(),
                "{binary} overrides {variable}"
            );
            assert!(environment(template, function).contains(*variable));
        }
    }
}

/// What CloudFormation would pass a value as, deployed with the template's parameters in
/// us-west-2 as stack `shop`: parameters, pseudo parameters, a resource's `Ref` (its
/// physical name, made up as CloudFormation makes them), `Fn::If`, `Fn::Join`,
/// `Fn::Select`, `Fn::Split` and `Fn::Sub`. Lists come out as JSON arrays, everything else
/// as a string.
pub(crate) fn deployed(template: &Value, value: &Value) -> Value {
    let parameters = parameter_values(template, &[]);
    let reference = |name: &str| -> Value {
        match name {
            "AWS::Region" => json!("us-west-2"),
            "AWS::AccountId" => json!("123456789012"),
            "AWS::Partition" => json!("aws"),
            "AWS::StackName" => json!("shop"),
            "AWS::StackId" => json!(
                "arn:aws:cloudformation:us-west-2:123456789012:stack/shop/1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901"
            ),
            "AWS::NoValue" => Value::Null,
            _ => match parameters.get(name) {
                Some(v) if template["Parameters"][name]["Type"] == "CommaDelimitedList" => {
                    let text = v.as_str().unwrap_or_default();
                    json!(if text.is_empty() {
                        Vec::new()
                    } else {
                        text.split(',').collect::<Vec<_>>()
                    })
                }
                Some(Value::Number(n)) => json!(n.to_string()),
                Some(v) => v.clone(),
                // A resource: the physical name CloudFormation gives it.
                None => json!(format!("shop-{name}-1AB2C3D4E5F6")),
            },
        }
    };
    let text = |v: &Value| -> String {
        match deployed(template, v) {
            Value::String(s) => s,
            other => other.to_string(),
        }
    };
    let Value::Object(o) = value else {
        return match value {
            Value::Number(n) => json!(n.to_string()),
            other => other.clone(),
        };
    };
    let Some((function, args)) = o.iter().next() else {
        return value.clone();
    };
    match function.as_str() {
        "Ref" => reference(args.as_str().unwrap()),
        "Fn::If" => {
            let [condition, then, otherwise] = args.as_array().unwrap().as_slice() else {
                panic!("Fn::If takes three arguments: {value}");
            };
            let branch = if holds(template, &parameters, &json!({ "Condition": condition })) {
                then
            } else {
                otherwise
            };
            deployed(template, branch)
        }
        "Fn::Join" => {
            let [separator, items] = args.as_array().unwrap().as_slice() else {
                panic!("Fn::Join takes two arguments: {value}");
            };
            let items = match deployed(template, items) {
                Value::Array(items) => items,
                other => panic!("Fn::Join over {other}"),
            };
            let parts: Vec<String> = items
                .iter()
                .map(|item| match deployed(template, item) {
                    Value::Array(list) => list
                        .iter()
                        .map(|v| v.as_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect();
            json!(parts.join(separator.as_str().unwrap()))
        }
        "Fn::Split" => {
            let [separator, source] = args.as_array().unwrap().as_slice() else {
                panic!("Fn::Split takes two arguments: {value}");
            };
            let source = text(source);
            json!(
                source
                    .split(separator.as_str().unwrap())
                    .collect::<Vec<_>>()
            )
        }
        "Fn::Select" => {
            let [index, list] = args.as_array().unwrap().as_slice() else {
                panic!("Fn::Select takes two arguments: {value}");
            };
            let index: usize = text(index).parse().unwrap();
            match deployed(template, list) {
                Value::Array(items) => deployed(template, &items[index]),
                other => panic!("Fn::Select over {other}"),
            }
        }
        "Fn::Sub" => {
            let (pattern, locals) = match args {
                Value::String(pattern) => (pattern.clone(), serde_json::Map::new()),
                Value::Array(a) => (
                    a[0].as_str().unwrap().to_owned(),
                    a[1].as_object().cloned().unwrap_or_default(),
                ),
                other => panic!("Fn::Sub of {other}"),
            };
            let mut out = String::new();
            let mut rest = pattern.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..].find('}').unwrap() + start;
                let name = &rest[start + 2..end];
                out.push_str(&match locals.get(name) {
                    Some(local) => text(local),
                    None => text(&json!({ "Ref": name })),
                });
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            json!(out)
        }
        _ => value.clone(),
    }
}

/// The environment a function gets when deployed: Globals' variables under its own, each
/// resolved as CloudFormation would, and what Lambda adds (`AWS_REGION`).
pub(crate) fn deployed_environment(template: &Value, function: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([("AWS_REGION".to_owned(), "us-west-2".to_owned())]);
    for vars in [
        &template["Globals"]["Function"]["Environment"]["Variables"],
        &function["Properties"]["Environment"]["Variables"],
    ] {
        for (name, value) in vars.as_object().into_iter().flatten() {
            let resolved = match deployed(template, value) {
                Value::String(s) => s,
                Value::Null => continue,
                other => panic!("{name} resolves to {other}, not a string"),
            };
            env.insert(name.clone(), resolved);
        }
    }
    env
}
