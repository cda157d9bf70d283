//! Events for operators: the bus, the encrypted topic, the notification rule.

use crate::*;

#[test]
pub(crate) fn failover_and_failback_put_events_on_the_configured_bus_only() {
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
pub(crate) fn only_failback_forgets_held_events_and_reads_point_in_time_recovery_on_the_control_table()
 {
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
pub(crate) fn this_stacks_events_reach_an_encrypted_topic_through_its_rule_only() {
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

#[test]
pub(crate) fn an_address_is_subscribed_only_with_notification_email() {
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
pub(crate) fn window_readiness_and_event_variables_come_from_their_parameters() {
    let template = template();
    set_for_every_function_from(
        &template,
        &[
            ("FAILBACK_WINDOW", "FailbackWindow"),
            ("READINESS_INTERVAL_SECONDS", "ReadinessIntervalSeconds"),
            ("EVENT_BUS_NAME", "EventBusName"),
            ("APP_NAME", "AWS::StackName"),
        ],
    );
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
pub(crate) fn a_failback_window_the_functions_refuse_fails_the_deploy() {
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
