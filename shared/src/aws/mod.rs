//! Adapters that implement the ports over the AWS SDK, and the per-region clients they
//! use. Each client is built on its first use and kept (a cold start builds only what it
//! calls), with explicit connect and per-attempt timeouts and bounded retries, so a frozen
//! region costs a known, small amount of time.

mod autoscaling;
mod clients;
mod control;
pub mod ecs;
mod events;
pub mod hooks;
pub mod init_error;
pub mod permissions;
mod probe;
mod routing;
mod run_command;
mod ssm;

pub use autoscaling::AwsScalingGroups;
pub use clients::{AwsClients, build_clients, http_client};
pub use control::{DynamoControlStore, attribute_bytes, state_item_bytes};
pub use ecs::AwsEcsServices;
pub use events::{EventBridgeBus, SOURCE as EVENT_SOURCE};
pub use hooks::AwsHooks;
pub use probe::DynamoHealthProbe;
pub use routing::ArcRoutingControls;
pub use run_command::SsmRunCommands;
pub use ssm::SsmParameters;

use crate::ports::{Ports, SystemClock};

/// The production ports.
pub type AwsPorts = Ports<
    DynamoControlStore,
    SsmParameters,
    AwsScalingGroups,
    DynamoHealthProbe,
    SsmRunCommands,
    SystemClock,
    EventBridgeBus,
    ArcRoutingControls,
    AwsEcsServices,
    AwsHooks,
>;

impl AwsClients {
    /// Wires the adapters over these clients.
    pub fn ports(&self, config: &crate::config::Config) -> AwsPorts {
        Ports {
            control: DynamoControlStore::new(
                self.control.clone(),
                config.control_region.clone(),
                config.control_table.clone(),
            ),
            parameters: SsmParameters::new(self.ssm.clone()),
            commands: SsmRunCommands::new(self.ssm.clone()),
            groups: AwsScalingGroups::new(self.autoscaling.clone()),
            probe: DynamoHealthProbe::new(
                self.probe.clone(),
                config.health_table.clone(),
                config.health_key.clone(),
                config.timeouts.probe,
            ),
            clock: SystemClock,
            bus: EventBridgeBus::new(
                self.events.clone(),
                config.own_region.clone(),
                config.events.bus.clone(),
            ),
            routing: ArcRoutingControls::new(self.routing.clone()),
            services: AwsEcsServices::new(self),
            hooks: AwsHooks::new(self, config.hooks.timeout),
        }
    }
}

#[cfg(test)]
mod tests;

/// The controller every function runs, wired over the real AWS clients.
pub type AwsController = crate::controller::Controller<AwsPorts>;

/// Init for every function: logging, configuration from the environment (failing fast
/// with the variable's name), and the clients (the control table's at once, the others on
/// first use).
pub async fn init_from_env() -> Result<AwsController, crate::Error> {
    init(true).await
}

/// [`init_from_env`] for the functions only a control stack runs (failover, failback): a
/// `DEPLOYMENT_ROLE=regional` there is a wiring mistake, refused at init by name.
pub async fn init_control_plane_from_env() -> Result<AwsController, crate::Error> {
    init(false).await
}

async fn init(regional_allowed: bool) -> Result<AwsController, crate::Error> {
    let started = std::time::Instant::now();
    crate::telemetry::init_logging();
    let logging = started.elapsed();
    let parsed = crate::Config::from_env().and_then(|config| {
        if !regional_allowed && config.role == crate::config::DeploymentRole::Regional {
            return Err(crate::Error::Config {
                variable: "DEPLOYMENT_ROLE",
                problem: "regional stacks run only the health probe, as their region's serving gate; this function belongs to the control stack (DEPLOYMENT_ROLE=control)".into(),
            });
        }
        Ok(config)
    });
    let config = match parsed {
        Ok(config) => std::sync::Arc::new(config),
        Err(e) => {
            tracing::error!(error = %e, "init failed");
            init_error::report(&e).await;
            return Err(e);
        }
    };
    let configured = started.elapsed();
    let clients = build_clients(&config).await;
    let ports = clients.ports(&config);
    // What a cold start spends here, by phase (Lambda's Init Duration adds process start).
    let micros = |d: std::time::Duration| d.as_micros() as u64;
    tracing::info!(
        init_us = micros(started.elapsed()),
        logging_us = micros(logging),
        config_us = micros(configured - logging),
        clients_us = micros(started.elapsed() - configured),
        "configuration and clients ready"
    );
    Ok(crate::controller::Controller::new(config, ports))
}
