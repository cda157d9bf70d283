//! The SDK adapter against mocked clients (aws-smithy-mocks): request shapes, the two
//! configuration copies, and AWS's error codes and messages kept.

use std::collections::BTreeMap;

use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::operation::describe_configuration_settings::DescribeConfigurationSettingsOutput;
use aws_sdk_elasticbeanstalk::operation::describe_environments::DescribeEnvironmentsOutput;
use aws_sdk_elasticbeanstalk::operation::update_environment::{
    UpdateEnvironmentError, UpdateEnvironmentOutput,
};
use aws_sdk_elasticbeanstalk::types::error::InsufficientPrivilegesException;
use aws_sdk_elasticbeanstalk::types::{
    ConfigurationSettingsDescription, EnvironmentDescription, EnvironmentStatus,
};
use aws_smithy_mocks::{mock, mock_client};

use super::*;

fn port(client: Client) -> SdkBeanstalk {
    SdkBeanstalk::from_clients(BTreeMap::from([("us-west-2".to_owned(), client)]))
}

fn setting(namespace: &str, name: &str, value: &str) -> ConfigurationOptionSetting {
    ConfigurationOptionSetting::builder()
        .namespace(namespace)
        .option_name(name)
        .value(value)
        .build()
}

/// The one update these tests send: us-west-2's shop-west told its region is us-west-2.
async fn set_west(port: &SdkBeanstalk) -> Result<(), HookError> {
    port.set_variable(
        "us-west-2",
        "shop",
        "shop-west",
        "AWS_DEFAULT_REGION",
        "us-west-2",
    )
    .await
}

#[tokio::test]
async fn describe_asks_for_the_environment_by_name_and_reads_its_application_and_status() {
    let rule = mock!(Client::describe_environments)
        .match_requests(|req| {
            req.environment_names() == ["shop-west"] && req.include_deleted() == Some(false)
        })
        .then_output(|| {
            DescribeEnvironmentsOutput::builder()
                .environments(
                    EnvironmentDescription::builder()
                        .environment_name("shop-west")
                        .application_name("shop")
                        .status(EnvironmentStatus::Updating)
                        .build(),
                )
                .build()
        });
    let port = port(mock_client!(aws_sdk_elasticbeanstalk, [&rule]));
    let info = port
        .environment("us-west-2", "shop-west")
        .await
        .expect("answer");
    assert_eq!(
        info,
        Some(EnvironmentInfo {
            application: "shop".into(),
            status: "Updating".into()
        })
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn an_environment_not_listed_is_none() {
    let rule = mock!(Client::describe_environments)
        .then_output(|| DescribeEnvironmentsOutput::builder().build());
    let port = port(mock_client!(aws_sdk_elasticbeanstalk, [&rule]));
    assert_eq!(port.environment("us-west-2", "shop-west").await, Ok(None));
}

#[tokio::test]
async fn the_variable_is_read_from_each_copy_and_only_from_its_namespace() {
    let rule = mock!(Client::describe_configuration_settings)
        .match_requests(|req| {
            req.application_name() == Some("shop") && req.environment_name() == Some("shop-west")
        })
        .then_output(|| {
            DescribeConfigurationSettingsOutput::builder()
                .configuration_settings(
                    ConfigurationSettingsDescription::builder()
                        .deployment_status(ConfigurationDeploymentStatus::Deployed)
                        .option_settings(setting("aws:autoscaling:asg", "MinSize", "1"))
                        // The same name in another namespace is not the variable.
                        .option_settings(setting("aws:custom", "AWS_DEFAULT_REGION", "nope"))
                        .option_settings(setting(NAMESPACE, "AWS_DEFAULT_REGION", "us-east-1"))
                        .build(),
                )
                .configuration_settings(
                    ConfigurationSettingsDescription::builder()
                        .deployment_status(ConfigurationDeploymentStatus::Pending)
                        .option_settings(setting(NAMESPACE, "AWS_DEFAULT_REGION", "us-west-2"))
                        .build(),
                )
                .build()
        });
    let port = port(mock_client!(aws_sdk_elasticbeanstalk, [&rule]));
    let values = port
        .variable("us-west-2", "shop", "shop-west", "AWS_DEFAULT_REGION")
        .await
        .expect("answer");
    assert_eq!(
        values,
        vec![
            VariableValue {
                deployment: Deployment::Deployed,
                value: Some("us-east-1".into())
            },
            VariableValue {
                deployment: Deployment::Pending,
                value: Some("us-west-2".into())
            },
        ]
    );
}

#[tokio::test]
async fn set_sends_one_environment_property() {
    let rule = mock!(Client::update_environment)
        .match_requests(|req| {
            req.application_name() == Some("shop")
                && req.environment_name() == Some("shop-west")
                && req.option_settings() == [setting(NAMESPACE, "AWS_DEFAULT_REGION", "us-west-2")]
        })
        .then_output(|| UpdateEnvironmentOutput::builder().build());
    let port = port(mock_client!(aws_sdk_elasticbeanstalk, [&rule]));
    set_west(&port).await.expect("accepted");
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn the_refusal_of_a_busy_environment_keeps_awss_code_and_message() {
    let message =
        "Environment named shop-west is in an invalid state for this operation. Must be Ready.";
    let rule = mock!(Client::update_environment).then_error(move || {
        UpdateEnvironmentError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("InvalidParameterValue")
                .message(message)
                .build(),
        )
    });
    let port = port(mock_client!(aws_sdk_elasticbeanstalk, [&rule]));
    let error = set_west(&port).await.expect_err("refused");
    assert!(error.is_not_ready(), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "elasticbeanstalk:UpdateEnvironment on us-west-2/shop-west failed [InvalidParameterValue]: {message}"
        )
    );
    // Not retried by the SDK: a client error.
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_missing_permission_downstream_is_kept_as_aws_says_it() {
    let rule = mock!(Client::update_environment).then_error(|| {
        UpdateEnvironmentError::InsufficientPrivilegesException(
            InsufficientPrivilegesException::builder()
                .message("You do not have permission to perform the 'cloudformation:UpdateStack' action.")
                .meta(
                    aws_smithy_types::error::ErrorMetadata::builder()
                        .code("InsufficientPrivilegesException")
                        .message("You do not have permission to perform the 'cloudformation:UpdateStack' action.")
                        .build(),
                )
                .build(),
        )
    });
    let port = port(mock_client!(aws_sdk_elasticbeanstalk, [&rule]));
    let error = set_west(&port).await.expect_err("denied");
    assert!(!error.is_not_ready());
    assert!(
        error
            .to_string()
            .contains("[InsufficientPrivilegesException]: You do not have permission to perform the 'cloudformation:UpdateStack' action."),
        "{error}"
    );
}

#[tokio::test]
async fn a_region_without_a_client_is_an_error_not_a_panic() {
    let port = SdkBeanstalk::from_clients(BTreeMap::new());
    let error = port
        .environment("eu-west-1", "shop-eu")
        .await
        .expect_err("no client");
    assert_eq!(error.error_type(), "AwsError");
}
