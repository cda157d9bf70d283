//! The three Elastic Beanstalk calls the hook makes, behind one small trait: the logic in
//! `hook.rs` runs over a fake in unit tests and over the SDK (`aws.rs`) in Lambda.

use std::future::Future;

use crate::error::HookError;

/// An environment as DescribeEnvironments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentInfo {
    /// The application it belongs to (DescribeConfigurationSettings and UpdateEnvironment
    /// name it).
    pub application: String,
    /// `Ready`, `Updating`, `Launching`, `Terminating`, `Terminated`, ...
    pub status: String,
}

/// Which copy of an environment's configuration a value was read from. While an update
/// deploys, DescribeConfigurationSettings answers two: the one `Deployed` and the draft
/// being deployed (`Pending`); a draft that failed to deploy is `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployment {
    Deployed,
    Pending,
    Failed,
    Other(String),
}

/// The variable's value in one configuration copy (`None`: not set there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableValue {
    pub deployment: Deployment,
    pub value: Option<String>,
}

pub trait Beanstalk: Send + Sync {
    /// The live environment named `environment` in `region`; `None` when there is none.
    fn environment(
        &self,
        region: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Option<EnvironmentInfo>, HookError>> + Send;

    /// The variable (an environment property) in each configuration copy of the
    /// environment, as DescribeConfigurationSettings answers them.
    fn variable(
        &self,
        region: &str,
        application: &str,
        environment: &str,
        variable: &str,
    ) -> impl Future<Output = Result<Vec<VariableValue>, HookError>> + Send;

    /// Sets the variable with UpdateEnvironment. Beanstalk then deploys it (the
    /// environment is `Updating` for a while) and refuses any other update meanwhile.
    fn set_variable(
        &self,
        region: &str,
        application: &str,
        environment: &str,
        variable: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), HookError>> + Send;
}
