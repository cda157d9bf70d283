//! DNS follows the decision: the traffic signals' health checks, the records, the regional
//! role, and no Route 53 control plane anywhere.

use crate::*;

pub(crate) const ROUTING_ENDPOINTS: &str = "us-east-1=https://host1.route53-recovery-cluster.us-east-1.amazonaws.com/v1,ap-southeast-2=https://host2.route53-recovery-cluster.ap-southeast-2.amazonaws.com/v1,eu-west-1=https://host3.route53-recovery-cluster.eu-west-1.amazonaws.com/v1,us-west-2=https://host4.route53-recovery-cluster.us-west-2.amazonaws.com/v1,ap-northeast-1=https://host5.route53-recovery-cluster.ap-northeast-1.amazonaws.com/v1";

/// The routing control ARN the template tests give `region`.
pub(crate) fn routing_arn(region: &str) -> String {
    format!(
        "arn:aws:route53-recovery-control::{ACCOUNT}:controlpanel/0a1b2c/routingcontrol/{}",
        region.replace('-', "")
    )
}

/// `given` with TrafficSignal=routing-control, the cluster and a routing control for each
/// of its Regions (the template's default, us-east-1 and us-west-2, when it names none).
pub(crate) fn with_routing_control<'a>(given: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let regions = given
        .iter()
        .rev()
        .find(|(name, _)| *name == "Regions")
        .map_or("us-east-1,us-west-2", |(_, value)| *value);
    let arns: &'static str = Box::leak(
        regions
            .split(',')
            .map(|r| format!("{r}={}", routing_arn(r)))
            .collect::<Vec<_>>()
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

/// The metric signal's serving health check of each region, by region: the
/// `CLOUDWATCH_METRIC` health checks whose alarm's `Region` dimension names it.
pub(crate) fn health_checks(template: &Value) -> BTreeMap<String, (&str, &Value)> {
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

pub(crate) const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "us-west-2"];

#[test]
pub(crate) fn every_region_gets_a_serving_alarm_and_a_health_check_that_follows_it() {
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
pub(crate) fn region_keys_are_the_region_names_without_dashes() {
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

#[test]
pub(crate) fn with_traffic_off_nothing_follows_a_metric_no_one_publishes() {
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

pub(crate) const HOSTED_ZONE: (&str, &str) = ("HostedZoneId", "Z0123456789ABCDEFGHIJ");
pub(crate) const RECORD_NAME: (&str, &str) = ("RecordName", "app.example.com");
// Deliberately not in the order of Regions.
pub(crate) const REGION_TARGETS: (&str, &str) = (
    "RegionTargets",
    "us-west-2=b.example.com,eu-west-1=c.example.com,us-east-1=a.example.com",
);

#[test]
pub(crate) fn weighted_records_follow_the_health_checks_when_zone_name_and_targets_are_set() {
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
pub(crate) fn records_with_a_part_missing_or_without_traffic_fail_the_deploy() {
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
pub(crate) fn grants_some_of(pattern: &str, prefix: &str) -> bool {
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
pub(crate) fn no_function_may_call_route53() {
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
pub(crate) fn forbidden_route53_sdk(name: &str) -> bool {
    name.starts_with("aws-sdk-route53") && name != "aws-sdk-route53recoverycluster"
}

#[test]
pub(crate) fn no_crate_depends_on_a_route53_control_plane_sdk() {
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

/// The drill's DNS model resolves with the records' default TTL.
#[test]
pub(crate) fn the_drills_ttl_is_the_templates_default_record_ttl() {
    let template = template();
    let ttl = &template["Parameters"]["RecordTtl"];
    assert_eq!(ttl["Type"], "Number");
    assert_eq!(
        ttl["Default"],
        json!(regionpilot_tests::dns::TTL_SECONDS as u64)
    );
}

/// Two other regions' gates (regional stacks' GateUrl outputs).
pub(crate) const GATES: (&str, &str) = (
    "RegionalGates",
    "https://abcdef0123.lambda-url.us-east-1.on.aws/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0,https://987654fedc.lambda-url.eu-west-1.on.aws/11112222-3333-4444-5555-666677778888",
);

/// The created health checks of one configuration type, by logical ID.
pub(crate) fn checks_of_type<'a>(template: &'a Value, kind: &str) -> BTreeMap<&'a str, &'a Value> {
    resources(template, "AWS::Route53::HealthCheck")
        .into_iter()
        .filter(|(_, c)| created(template, c))
        .filter(|(_, c)| c["Properties"]["HealthCheckConfig"]["Type"] == kind)
        .collect()
}

/// The region's weighted record's health check, as deployed.
pub(crate) fn record_check(template: &Value, key: &str) -> Value {
    let record = &template["Resources"][format!("ServingRecord{key}")];
    assert!(created(template, record), "ServingRecord{key} is created");
    resolve(template, &[], &record["Properties"]["HealthCheckId"])
}

#[test]
pub(crate) fn each_traffic_signal_gets_its_health_checks_and_the_records_follow_them() {
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

/// A regional stack beside a single-mode control stack in us-east-1 (the expanded
/// template's region is us-west-2).
pub(crate) const REGIONAL: &[(&str, &str)] = &[
    ("Regions", "us-east-1,us-west-2"),
    ("DeploymentRole", "regional"),
    ("ControlTableName", "shop-ControlTable-1AB2C3"),
    ("ControlTableRegion", "us-east-1"),
    ("HealthTable", "app-health"),
];

/// The logical ids of a section (`Resources`, `Outputs`) that the parameters the template
/// was expanded with create.
fn made<'a>(template: &'a Value, section: &str) -> BTreeSet<&'a str> {
    template[section]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| created(template, r))
        .map(|(id, _)| id.as_str())
        .collect()
}

/// A vantage stack beside two-region mrsc stacks, in their witness region (the expanded
/// template's us-west-2), writing to the us-east-1 replica.
pub(crate) const MRSC_VANTAGE: &[(&str, &str)] = &[
    ("ControlPlaneMode", "mrsc"),
    ("ControlTableName", SHARED_TABLE),
    ("Regions", "us-east-1,us-east-2"),
    ("WitnessRegion", "us-west-2"),
    ("HealthTable", "app-health"),
    ("DeploymentRole", "vantage"),
    ("ControlTableRegion", "us-east-1"),
];

/// Every statement of one function's own policies.
fn own_statements(function: &Value) -> Vec<&Value> {
    function["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["Statement"].as_array().unwrap())
        .filter(|s| s.get("Fn::If").is_none())
        .collect()
}

#[test]
pub(crate) fn a_regional_stack_is_one_gate_and_one_vantage_point_with_the_narrowest_grants() {
    let regional = expanded_template(REGIONAL);
    deploys(&regional, &[]);
    assert_eq!(
        made(&regional, "Resources"),
        BTreeSet::from([
            "ActiveRegionParameterResource",
            "RegionalGateFunction",
            "GateFunctionUrl",
            "GateUrlPermission",
            "GateInvokePermission",
            "RegionalProbeFunction",
        ]),
        "a gate, its URL, the region's copy of the parameter and a probe; nothing else"
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
    // The gate reads its parameter and has no control table to write.
    assert_eq!(
        gate["Properties"]["Environment"]["Variables"]["CONTROL_TABLE"],
        ""
    );
    let statements = own_statements(gate);
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

    // The vantage point: the probe on the schedule, writing to the control stack's table.
    let probe = &regional["Resources"]["RegionalProbeFunction"];
    assert_eq!(
        probe["Metadata"]["BuildProperties"]["Binary"],
        "health-probe"
    );
    assert_eq!(
        probe["Properties"]["Events"]["EveryMinute"]["Properties"]["Schedule"],
        "rate(1 minute)"
    );
    let globals = &regional["Globals"]["Function"]["Environment"]["Variables"];
    for (variable, wanted) in [
        ("DEPLOYMENT_ROLE", "regional"),
        ("CONTROL_TABLE", "shop-ControlTable-1AB2C3"),
        ("CONTROL_TABLE_REGION", "us-east-1"),
        ("HEALTH_TABLE", "app-health"),
    ] {
        assert_eq!(
            resolve(&regional, &[], &globals[variable]),
            wanted,
            "{variable}"
        );
        assert!(
            probe["Properties"]["Environment"]["Variables"]
                .get(variable)
                .is_none(),
            "the probe takes {variable} from Globals"
        );
    }
    // Exactly what the adapters call, on exactly the resources: every region's health
    // table (canary read, its heartbeat item written) and the probe partition of the
    // control stack's table in the control stack's region.
    let statements = own_statements(probe);
    let granted: BTreeSet<&str> = statements.iter().flat_map(|s| actions(s)).collect();
    assert_eq!(
        granted,
        permissions::REGIONAL_PROBE
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
    );
    let by_sid = |sid: &str| -> &Value {
        statements
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no {sid}: {statements:?}"))
    };
    let samples = by_sid("RecordSamples");
    assert_eq!(
        resolve(&regional, &[], &samples["Resource"]),
        "arn:aws:dynamodb:us-east-1:123456789012:table/shop-ControlTable-1AB2C3"
    );
    assert_eq!(
        samples["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"],
        json!([permissions::PROBE_CONTROL_WRITES])
    );
    assert_eq!(
        by_sid("WriteHeartbeats")["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
        json!([permissions::HEALTH_TABLE_WRITES])
    );
    assert_eq!(actions(by_sid("ProbeHealthTable")), ["dynamodb:GetItem"]);
    assert_eq!(
        made(&regional, "Outputs"),
        BTreeSet::from(["GateUrl", "RegionalProbeFunctionName"])
    );

    // A vantage stack: the probe alone, in any region, and no parameter there.
    let vantage = expanded_template(&[REGIONAL, &[("DeploymentRole", "vantage")]].concat());
    deploys(&vantage, &[]);
    assert_eq!(
        made(&vantage, "Resources"),
        BTreeSet::from(["RegionalProbeFunction"])
    );
    deploys(&vantage, &[("Regions", "eu-west-1,eu-west-2")]);

    // Refused: mrsc, records, a regional stack outside Regions, and either half of where
    // the control table is.
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
            "must be deployed in one of Regions (it is that region's gate); elsewhere, deploy DeploymentRole=vantage",
        ),
        (
            ("ControlTableName", ""),
            "DeploymentRole=regional or vantage needs ControlTableName",
        ),
        (
            ("ControlTableRegion", ""),
            "DeploymentRole=regional or vantage needs ControlTableRegion",
        ),
        (("HealthTable", ""), "HealthTable is required"),
        // The expanded template's region: the control stack's probe speaks for it.
        (
            ("ControlTableRegion", "us-west-2"),
            "must not be deployed in ControlTableRegion",
        ),
    ] {
        let refusals = deploy_refusals(&regional, &[extra]);
        assert!(
            refusals.iter().any(|r| r.contains(reason)),
            "{extra:?}: {refusals:?}"
        );
    }
    // mrsc: a vantage stack outside Regions (here, in the witness region), writing to a
    // replica; not inside Regions, and not to the witness.
    let template = expanded_template(MRSC_VANTAGE);
    deploys(&template, &[]);
    assert_eq!(
        made(&template, "Resources"),
        BTreeSet::from(["RegionalProbeFunction"])
    );
    for (extra, reason) in [
        (
            [
                ("Regions", "us-east-1,us-west-2"),
                ("WitnessRegion", "us-east-2"),
            ],
            "a DeploymentRole=vantage stack goes outside Regions",
        ),
        (
            [
                ("ControlTableRegion", "us-east-2"),
                ("Regions", "us-east-1,us-west-2"),
            ],
            "ControlTableRegion must be one of Regions",
        ),
    ] {
        let refusals = deploy_refusals(&template, &extra);
        assert!(
            refusals.iter().any(|r| r.contains(reason)),
            "{extra:?}: {refusals:?}"
        );
    }
    // A control stack names no other control table region.
    let control = expanded_template(THREE_REGIONS);
    assert!(
        deploy_refusals(&control, &[("ControlTableRegion", "us-east-1")])
            .iter()
            .any(|r| r.contains("ControlTableRegion is for DeploymentRole=regional or vantage"))
    );
    // The control stack still needs its health table.
    let control = expanded_template(&[("Regions", "us-east-1,us-west-2")]);
    assert!(
        deploy_refusals(&control, &[])
            .iter()
            .any(|r| r.contains("HealthTable is required"))
    );
}
