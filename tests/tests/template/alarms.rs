//! The health alarms that invoke failover, the probe's liveness alarm, and the dashboard.

use crate::*;

#[test]
pub(crate) fn every_region_gets_an_alarm_that_invokes_failover() {
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

/// Every metric line of the dashboard's widgets, with CloudWatch's `["...", value]`
/// shorthand (the line above, its last values replaced) written out in full.
pub(crate) fn dashboard_lines(template: &Value) -> Vec<Value> {
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
pub(crate) fn the_dashboard_draws_every_region() {
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
    // Each vantage point's view of each region: a search finds every vantage point.
    assert_eq!(
        searches,
        [
            r#"SEARCH('{"RegionPilot",FromRegion,ToRegion} MetricName="ReplicationLagSeconds"', 'Maximum', 60)"#,
            r#"SEARCH('{"RegionPilot",Region,Vantage} MetricName="VantageHealthy"', 'Minimum', 60)"#
        ]
    );
    // ... over the dimensions the verifier emits it with.
    let mut point = regionpilot::evidence::samples::ProbeSamples::new(
        regionpilot::region::Region::parse("eu-west-1").unwrap(),
    );
    point.regions.insert(
        regionpilot::region::Region::parse("us-east-1").unwrap(),
        vec![regionpilot::evidence::samples::Sample {
            at: 1_000,
            healthy: true,
            error_class: None,
        }],
    );
    let emitted = serde_json::to_value(
        &regionpilot::views::metrics::vantage_documents(
            "RegionPilot",
            &[point],
            1_000,
            std::time::Duration::from_secs(30),
        )[0],
    )
    .unwrap();
    let metric = &emitted["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(metric["Metrics"][0]["Name"], "VantageHealthy");
    let mut dimensions: Vec<&str> = metric["Dimensions"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    dimensions.sort_unstable();
    assert_eq!(dimensions, ["Region", "Vantage"]);
}

/// The `key` of every object in a list (none for a missing list).
pub(crate) fn strings_of(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|item| item[key].as_str().unwrap().to_owned())
        .collect()
}

// ---- A first deploy on real AWS ----

#[test]
pub(crate) fn missing_health_data_never_fails_over_and_a_silent_probe_is_told_instead() {
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
                json!(regionpilot::evidence::samples::DATAPOINTS_TO_ALARM),
                json!(regionpilot::evidence::samples::DATAPOINTS_TO_ALARM)
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

#[test]
pub(crate) fn the_drills_alarm_models_are_the_templates_rules() {
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
