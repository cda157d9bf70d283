//! `template.yaml` against the code: every variable a function requires is set for it, and
//! every AWS action it calls is granted to it. cfn-lint's own parser reads the template
//! (CloudFormation's short-form tags need it), then the checks run here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use regionpilot::aws::permissions;
use regionpilot_tests::paths;
use serde_json::Value;

fn template() -> Value {
    let script = "import json, sys\nfrom cfnlint.decode import decode\ntemplate, errors = decode(sys.argv[1])\nif errors:\n    sys.exit(str(errors))\nprint(json.dumps(template))";
    let out = std::process::Command::new(paths::python())
        .args(["-c", script])
        .arg(paths::workspace().join("template.yaml"))
        .output()
        .expect("run python with cfn-lint (./scripts/setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("template as JSON")
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
