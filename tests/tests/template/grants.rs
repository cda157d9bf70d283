//! Every function gets the variables it requires and exactly the actions it calls, on
//! exactly the resources it needs.

use crate::*;

/// Control stacks in both control plane modes (mrsc with and without the table), each
/// option alone and some together.
pub(crate) fn control_deployments() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        THREE_REGIONS.to_vec(),
        MRSC_TWO_REGIONS.to_vec(),
        MRSC_THREE_REGIONS.to_vec(),
        MRSC_JOINING.to_vec(),
        with_run_command(THREE_REGIONS),
        with_run_command(MRSC_JOINING),
        with_routing_control(THREE_REGIONS),
        with_routing_control(MRSC_JOINING),
        with_ecs(THREE_REGIONS),
        with_ecs(&with_run_command(MRSC_JOINING)),
        with_hooks(THREE_REGIONS),
        with_hooks(MRSC_JOINING),
    ]
}

#[test]
pub(crate) fn every_function_gets_the_variables_it_requires_and_the_actions_it_calls() {
    for given in &control_deployments() {
        let given = given.as_slice();
        let template = expanded_template(given);
        let mode = parameter_values(&template, given)["ControlPlaneMode"].clone();
        gets_what_it_requires_and_calls(&template, &format!("{mode} {given:?}"));
    }
}

/// Every function's environment has the variables the code requires, and its grants are
/// exactly the actions permissions.rs lists for it.
pub(crate) fn gets_what_it_requires_and_calls(template: &Value, case: &str) {
    let run_command = parameter_values(template, &[])["ReloadMode"] == "run-command";
    let routing = parameter_values(template, &[])["TrafficSignal"] == "routing-control";
    let ecs = parameter_values(template, &[])["EcsServices"]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    let hooks = parameter_values(template, &[])["Hooks"]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    for (binary, all_actions) in [
        ("failover", permissions::FAILOVER),
        ("health-probe", permissions::HEALTH_PROBE),
        ("failback", permissions::FAILBACK),
    ] {
        // Run Command's actions are called, and granted, only in run-command mode.
        // ECS's actions are kept beside its adapter, and granted only with services.
        let ecs_actions = match binary {
            "health-probe" => regionpilot::aws::ecs::STATUS_ACTIONS,
            _ => regionpilot::aws::ecs::SWITCH_ACTIONS,
        };
        // Hooks are invoked by a switch and reconcile; the verifier's readiness reads them.
        let hook_actions: Vec<&str> = match binary {
            "failover" => regionpilot::aws::hooks::INVOKE_ACTIONS.to_vec(),
            "failback" => [
                regionpilot::aws::hooks::INVOKE_ACTIONS,
                regionpilot::aws::hooks::CHECK_ACTIONS,
            ]
            .concat(),
            _ => Vec::new(),
        };
        let actions: Vec<&str> = all_actions
            .iter()
            .copied()
            .filter(|a| run_command || !permissions::RUN_COMMAND_ONLY.contains(a))
            .filter(|a| routing || !permissions::ROUTING_CONTROL_ONLY.contains(a))
            .chain(ecs_actions.iter().copied().filter(|_| ecs))
            .chain(hook_actions.into_iter().filter(|_| hooks))
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
pub(crate) fn wildcard_resources_are_only_for_actions_without_resource_level_permissions() {
    let template = expanded_template(&with_ecs(&with_run_command(THREE_REGIONS)));
    // Exactly the actions AWS documents as supporting no resource-level permissions (the
    // service authorization reference lists no resource type for them); they can only be
    // granted on "*". Every other action names its resources.
    let resource_less: BTreeSet<&str> = [
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeInstanceRefreshes",
        "ssm:ListCommandInvocations",
        "application-autoscaling:DescribeScalableTargets",
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

/// The Auto Scaling ARN of a group, as IAM matches it.
pub(crate) fn group_arn(region: &str, name: &str) -> String {
    format!("arn:aws:autoscaling:{region}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{name}")
}

/// Group and instance write actions: only failover and failback may have them, and only
/// when groups are configured.
pub(crate) const GROUP_WRITES: &[&str] = &[
    "autoscaling:SetDesiredCapacity",
    "autoscaling:StartInstanceRefresh",
    "autoscaling:CancelInstanceRefresh",
    "ssm:SendCommand",
];

#[test]
pub(crate) fn scaling_and_instance_refresh_are_granted_on_exactly_the_configured_groups() {
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

/// `given` with two ECS services in every region.
pub(crate) fn with_ecs<'a>(given: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = given.to_vec();
    all.push(("EcsServices", "app/web,app/worker"));
    all
}

pub(crate) fn with_hooks<'a>(given: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = given.to_vec();
    all.push((
        "Hooks",
        "prepare=stop-writers,act=clear_cache:live,verify=arn:aws:lambda:us-east-1:210987654321:function:smoke-test",
    ));
    all
}

#[test]
pub(crate) fn hooks_are_invoked_on_exactly_their_functions_and_only_when_configured() {
    let template = expanded_template(&with_hooks(THREE_REGIONS));
    // A bare name is this stack's region's; an ARN is kept as it is.
    let expected = json!([
        format!("arn:aws:lambda:us-west-2:{ACCOUNT}:function:stop-writers"),
        format!("arn:aws:lambda:us-west-2:{ACCOUNT}:function:clear_cache:live"),
        "arn:aws:lambda:us-east-1:210987654321:function:smoke-test",
    ]);
    for binary in ["failover", "failback"] {
        let invoke = statement(&template, binary, "InvokeHooks")
            .unwrap_or_else(|| panic!("{binary}: no InvokeHooks statement"));
        assert_eq!(invoke["Resource"], expected, "{binary}");
        assert_eq!(
            granting(&template, binary, "lambda:InvokeFunction"),
            [invoke],
            "{binary}"
        );
    }
    // The verifier's readiness check reads them; nothing else does.
    let check = statement(&template, "failback", "CheckHooks").unwrap();
    assert_eq!(check["Resource"], expected);
    assert_eq!(actions(check), ["lambda:GetFunction"]);
    assert!(granting(&template, "failover", "lambda:GetFunction").is_empty());
    assert!(granting(&template, "health-probe", "lambda:InvokeFunction").is_empty());
    assert_eq!(
        env_value(&template, &[], "failover", "HOOKS"),
        json!({"Fn::Join": [",", {"Ref": "Hooks"}]})
    );
    // Without hooks: no Lambda grant at all, and the verifier keeps its 60 s timeout.
    let template = expanded_template(THREE_REGIONS);
    for binary in ["failover", "failback", "health-probe"] {
        let granted = granted_actions(&template, binary);
        assert!(
            !granted.iter().any(|a| a.starts_with("lambda:")),
            "{binary}: {granted:?}"
        );
    }
    let pattern = template["Parameters"]["Hooks"]["AllowedPattern"]
        .as_str()
        .unwrap();
    let entries = [
        "prepare=stop-writers",
        "verify=arn:aws:lambda:us-west-2:123456789012:function:smoke-test:live",
        "act=fn:$LATEST",
        "",
        "cleanup=fn",
        "verify=",
        "act=bad name",
        "act=arn:aws:lambda:us-west-2:12:function:x",
    ];
    assert_eq!(
        matches(pattern, &entries),
        [true, true, true, true, false, false, false, false]
    );
    // What the pattern takes, the functions take; what it refuses, they refuse too.
    assert!(config_accepts("HOOKS", &entries[..3].join(",")));
    for refused in &entries[4..] {
        assert!(!config_accepts("HOOKS", refused), "{refused}");
    }
}

#[test]
pub(crate) fn ecs_services_are_read_and_updated_on_exactly_their_arns_and_only_when_configured() {
    let service = |path: &str| format!("arn:aws:ecs:*:{ACCOUNT}:service/{path}");
    let expected = json!([service("app/web"), service("app/worker")]);
    let template = expanded_template(&with_ecs(THREE_REGIONS));
    for binary in ["failover", "failback"] {
        let update = statement(&template, binary, "UpdateAndReadServices")
            .unwrap_or_else(|| panic!("{binary}: no UpdateAndReadServices statement"));
        assert_eq!(update["Resource"], expected, "{binary}");
        for action in ["ecs:UpdateService", "ecs:DescribeServices"] {
            assert_eq!(
                granting(&template, binary, action),
                [update],
                "{binary}: {action}"
            );
        }
        let scaling = statement(&template, binary, "ReadServiceScaling").unwrap();
        assert_eq!(
            actions(scaling),
            ["application-autoscaling:DescribeScalableTargets"]
        );
    }
    // Status reads them; the probe updates nothing.
    let status = statement(&template, "health-probe", "StatusServices").unwrap();
    assert_eq!(status["Resource"], expected);
    assert!(granting(&template, "health-probe", "ecs:UpdateService").is_empty());
    // The functions read the list as one comma-separated string.
    assert_eq!(
        env_value(&template, &[], "failover", "ECS_SERVICES"),
        json!({"Fn::Join": [",", {"Ref": "EcsServices"}]})
    );
    // Without services: no ECS grant at all.
    let template = expanded_template(THREE_REGIONS);
    for binary in ["failover", "failback", "health-probe"] {
        let granted = granted_actions(&template, binary);
        assert!(
            !granted
                .iter()
                .any(|a| a.starts_with("ecs:") || a.starts_with("application-autoscaling:")),
            "{binary}: {granted:?}"
        );
    }
    // Each entry is checked against the pattern; what it takes, the functions take.
    let pattern = template["Parameters"]["EcsServices"]["AllowedPattern"]
        .as_str()
        .unwrap();
    assert_eq!(
        matches(
            pattern,
            &[
                "app/web",
                "my-cluster/api_v2",
                "",
                "web",
                "app/web/x",
                "us-east-1=app/web",
                "app/we b"
            ]
        ),
        [true, true, true, false, false, false, false]
    );
    assert!(config_accepts("ECS_SERVICES", "app/web,my-cluster/api_v2"));
}

#[test]
pub(crate) fn run_command_is_granted_on_the_shell_document_and_the_configured_groups_instances_only()
 {
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
pub(crate) fn run_command_grants(
    template: &Value,
    binary: &str,
) -> (Vec<String>, BTreeSet<(String, String)>) {
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
pub(crate) fn groups_whose_logical_ids_would_collide_are_refused_at_deploy() {
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
pub(crate) fn run_command_is_granted_only_when_it_is_the_reload_mode() {
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
pub(crate) fn without_groups_there_is_no_group_or_instance_write_access() {
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
pub(crate) fn the_health_probe_only_reads_groups_and_instances() {
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
pub(crate) fn capacity_and_reload_variables_come_from_their_parameters() {
    let template = template();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    set_for_every_function_from(
        &template,
        &[
            ("CAPACITY_PERCENT", "CapacityPercent"),
            ("SCALE_IN_DELAY_SECONDS", "ScaleInDelaySeconds"),
            ("RELOAD_MODE", "ReloadMode"),
            ("RELOAD_COMMANDS", "ReloadCommands"),
            ("RELOAD_TIMEOUT_SECONDS", "ReloadTimeoutSeconds"),
        ],
    );
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
pub(crate) fn run_command_without_reload_commands_fails_the_deploy() {
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

#[test]
pub(crate) fn the_probe_and_the_verifier_reserve_no_concurrency_unless_asked() {
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
pub(crate) fn regionpilot_writes_only_its_own_items_in_the_health_table_and_the_probe_only_its_samples()
 {
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
pub(crate) fn a_customer_managed_health_table_key_is_decryptable_through_dynamodb_only() {
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

/// Every function the template creates starts with the environment it gives it, resolved
/// as CloudFormation deploys it (Lambda adds `AWS_REGION`): in every control deployment
/// above, and in a regional and a vantage stack. A variable the template sets
/// in a form the code refuses would fail the function's init on its first invoke in AWS,
/// which no rig run would see.
#[test]
pub(crate) fn every_function_starts_with_the_environment_the_template_gives_it() {
    let mut deployments = control_deployments();
    deployments.push(REGIONAL.to_vec());
    deployments.push([REGIONAL, &[("DeploymentRole", "vantage")]].concat());
    deployments.push(MRSC_VANTAGE.to_vec());
    for given in &deployments {
        let given = given.as_slice();
        let template = expanded_template(given);
        let functions: Vec<(&str, &Value)> = resources(&template, "AWS::Serverless::Function")
            .into_iter()
            .filter(|(_, f)| created(&template, f))
            .collect();
        assert!(!functions.is_empty(), "{given:?}");
        for (id, function) in functions {
            let env = deployed_environment(&template, function);
            let config = regionpilot::Config::from_lookup(|name| env.get(name).cloned())
                .unwrap_or_else(|e| panic!("{given:?}: {id} fails init: {e}\n{env:#?}"));
            // What each function is, as the code sees it.
            let (role, probes) = (config.role, config.probes());
            match id {
                "RegionalGateFunction" => {
                    assert_eq!(role, regionpilot::config::DeploymentRole::Regional);
                    assert!(!probes, "{id}: the gate writes nothing");
                    assert!(
                        !config.gate_token.is_empty(),
                        "{id}: a gate needs its token"
                    );
                }
                "RegionalProbeFunction" => {
                    assert_eq!(role, regionpilot::config::DeploymentRole::Regional);
                    assert!(probes, "{id}: a vantage point records its verdicts");
                    assert_eq!(config.control_region.as_str(), "us-east-1", "{id}");
                    let table = parameter_values(&template, &[])["ControlTableName"].clone();
                    assert_eq!(json!(config.control_table), table, "{id}");
                }
                _ => {
                    assert_eq!(role, regionpilot::config::DeploymentRole::Control, "{id}");
                    assert_eq!(config.control_region, config.own_region, "{id}");
                }
            }
        }
    }
}
