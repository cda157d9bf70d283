//! The control plane's table: single mode's own, and mrsc mode's shared global table.

use crate::*;

// ControlPlaneMode: single (one stack, in the standby or a third region, with its own
// table) and mrsc (a stack in every region of Regions, one shared table with multi-Region
// strong consistency, created by the stack with ControlTableOwner=true).

/// The resources of one type that the parameters the template was expanded with create.
pub(crate) fn created_resources<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    resources(template, kind)
        .into_iter()
        .filter(|(_, r)| created(template, r))
        .collect()
}

/// What the functions' DynamoDB grants name, other than the health table: the control
/// table's resource, as JSON text.
pub(crate) fn control_table_grants(template: &Value) -> BTreeSet<String> {
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
pub(crate) fn single_mode_keeps_its_own_control_table_in_the_stacks_region() {
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
pub(crate) fn shared_table(template: &Value) -> &Value {
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
pub(crate) fn replica_regions(table: &Value) -> Vec<&str> {
    table["Properties"]["Replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Region"].as_str().unwrap())
        .collect()
}

/// Every function of an mrsc stack uses the shared table by its name, and is granted its
/// control table actions on that table's replica in the stack's region only.
pub(crate) fn uses_the_shared_table(template: &Value, given: &[(&str, &str)], owner: bool) {
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
pub(crate) fn the_mrsc_owner_with_two_regions_creates_the_shared_table_with_two_replicas_and_a_witness()
 {
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
pub(crate) fn the_mrsc_owner_with_three_regions_creates_the_shared_table_with_three_replicas() {
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
pub(crate) fn an_mrsc_stack_that_does_not_own_the_table_uses_it_by_name() {
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
pub(crate) fn every_mrsc_stack_alarms_on_every_region_and_runs_its_own_probe_and_verifier() {
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
pub(crate) fn mrsc_stacks_keep_their_global_resources_apart_and_create_no_records() {
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
pub(crate) fn an_mrsc_deploy_without_its_table_name_or_the_witness_it_needs_fails() {
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

#[test]
pub(crate) fn an_mrsc_owner_stack_outside_the_tables_regions_fails_the_deploy() {
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
