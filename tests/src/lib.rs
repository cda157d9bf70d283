//! Test harness shared by the integration tests and the region-outage drill: the local AWS
//! rig, a local Lambda service that runs the real bootstraps through the Runtime API, and
//! the application's resources on the rig.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a harness: failing loudly is the point

pub mod alarm;
pub mod arc;
pub mod dns;
pub mod events;
pub mod link;
pub mod paths;
pub mod rig;
pub mod runtime;
pub mod signals;
pub mod world;

use std::collections::BTreeMap;

pub use rig::Rig;
pub use runtime::{Invocation, LocalFunction};
pub use world::World;

/// A rig with seeded resources and the failover function running against it.
pub struct Stage {
    pub rig: Rig,
    pub world: World,
    pub failover: LocalFunction,
    extra_env: BTreeMap<String, String>,
}

impl Stage {
    /// `regions` home first; the control table lives in `control_region` (which may be a
    /// region outside `regions`, as when the control plane is deployed in a third region).
    pub async fn start(
        label: &str,
        regions: &[&str],
        control_region: &str,
        concurrency: usize,
        extra_env: &[(&str, &str)],
    ) -> Stage {
        Stage::start_with(
            label,
            regions,
            control_region,
            concurrency,
            extra_env,
            &[],
            &[],
        )
        .await
    }

    /// [`Stage::start`] with the rig's timing variables (`RIG_TIME_SCALE`, ...) and each
    /// region's group sizes `(region, min, desired, max)` chosen (see [`World::seed_with`]).
    pub async fn start_with(
        label: &str,
        regions: &[&str],
        control_region: &str,
        concurrency: usize,
        extra_env: &[(&str, &str)],
        rig_env: &[(&str, &str)],
        capacities: &[(&str, i32, i32, i32)],
    ) -> Stage {
        let dir = paths::scratch(label);
        let mut all: Vec<&str> = regions.to_vec();
        if !all.contains(&control_region) {
            all.push(control_region);
        }
        let rig = Rig::start_with(
            &all,
            &[world::HEALTH_TABLE, world::APP_TABLE],
            &dir,
            rig_env,
        )
        .await;
        let world = World::connect(&rig, regions, control_region).await;
        world.seed_with(capacities).await;
        let env: BTreeMap<String, String> = world.function_env(extra_env);
        let failover = LocalFunction::start("failover", env, concurrency, &dir).await;
        Stage {
            rig,
            world,
            failover,
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Every function started from now on gets `key=value` (the failover already running
    /// keeps what it was started with: start it again to change it).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.insert(key.to_owned(), value.to_owned());
    }

    /// Starts another function (`health-probe`, ...) against the same world, with the
    /// stage's environment plus `more_env`.
    pub async fn start_function(
        &self,
        binary: &str,
        concurrency: usize,
        more_env: &[(&str, &str)],
    ) -> LocalFunction {
        let mut env = self.world.function_env(&[]);
        env.extend(self.extra_env.clone());
        env.extend(more_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        LocalFunction::start(binary, env, concurrency, &self.rig.dir).await
    }
}

impl Stage {
    /// A regional stack's probe in `region` (`DEPLOYMENT_ROLE=regional` with the control
    /// table, as the template's `regional` and `vantage` roles deploy it): one more
    /// vantage point, writing its verdicts to the stage's control table. It reaches every
    /// region directly (never through a link). A region without an emulated server of its
    /// own gets 127.0.0.1's discard port as its endpoint, so nothing it might send there
    /// leaves the host.
    pub async fn start_vantage_point(&self, region: &str) -> LocalFunction {
        let direct = &self.world.endpoints;
        let endpoints = if direct
            .split(',')
            .any(|e| e.starts_with(&format!("{region}=")))
        {
            direct.clone()
        } else {
            format!("{direct},{region}=http://127.0.0.1:9")
        };
        self.start_function(
            "health-probe",
            1,
            &[
                ("AWS_REGION", region),
                ("DEPLOYMENT_ROLE", "regional"),
                ("CONTROL_TABLE_REGION", &self.world.control_region),
                ("REGION_ENDPOINTS", &endpoints),
            ],
        )
        .await
    }
}

/// An event fixture from `events/`, as people and the tests invoke the functions with.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = paths::workspace().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"))
}

/// The direct alarm-action event (`events/alarm-direct.json`) for the alarm on `region`.
pub fn alarm_for(region: &str) -> serde_json::Value {
    let mut event = fixture("alarm-direct.json");
    event["alarmData"]["alarmName"] = serde_json::json!(format!("regionpilot-unhealthy-{region}"));
    event["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["Region"] =
        serde_json::json!(region);
    event
}

/// Fails if a function's log carries the rig's secret key or session token.
pub fn assert_no_secrets_logged(function: &LocalFunction) {
    let log = function.log_text();
    assert!(!log.is_empty(), "{}: no log to check", function.name);
    for secret in [world::SECRET_ACCESS_KEY, world::SESSION_TOKEN] {
        assert!(
            !log.contains(secret),
            "{}: a credential reached the log",
            function.name
        );
    }
}

/// Now, in milliseconds since the Unix epoch (the clock of EMF timestamps and the models).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Short timeouts for tests against the rig: a frozen region costs half a second a call.
pub const QUICK_ENV: [(&str, &str); 5] = [
    ("CONNECT_TIMEOUT_MS", "300"),
    ("CALL_TIMEOUT_MS", "500"),
    ("CALL_MAX_ATTEMPTS", "2"),
    ("PROBE_TIMEOUT_MS", "500"),
    ("COOLDOWN_SECONDS", "0"),
];
