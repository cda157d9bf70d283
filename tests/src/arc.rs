//! The rig's Amazon ARC cluster (`rig/arc_cluster.py`): five regional endpoints over one
//! set of routing controls, any of which can be made to stop answering.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::paths;
use crate::rig::free_port;

/// ARC's cluster endpoints are in five regions; these are the rig's.
pub const ENDPOINT_REGIONS: [&str; 5] = [
    "us-east-1",
    "ap-southeast-2",
    "eu-west-1",
    "us-west-2",
    "ap-northeast-1",
];

/// The routing control ARN the rig gives `region`'s routing control.
pub fn arn_for(region: &str) -> String {
    format!(
        "arn:aws:route53-recovery-control::123456789012:controlpanel/rig/routingcontrol/{}",
        region.replace('-', "")
    )
}

pub struct ArcCluster {
    /// (region, port) of each endpoint, in the order the functions try them.
    pub endpoints: Vec<(String, u16)>,
    pub control_port: u16,
    _child: Child,
}

impl ArcCluster {
    /// Starts the cluster with one routing control per region of `regions`, `active`'s
    /// On and the others Off, and waits until every endpoint answers.
    pub async fn start(dir: &Path, regions: &[&str], active: &str) -> ArcCluster {
        std::fs::create_dir_all(dir).expect("create rig dir");
        let endpoints: Vec<(String, u16)> = ENDPOINT_REGIONS
            .iter()
            .map(|r| ((*r).to_owned(), free_port()))
            .collect();
        let control_port = free_port();
        let controls: Vec<String> = regions
            .iter()
            .map(|r| format!("{}={}", arn_for(r), if *r == active { "On" } else { "Off" }))
            .collect();
        let log = std::fs::File::create(dir.join("arc-cluster.log")).expect("create arc log");
        let err = log.try_clone().expect("clone log handle");
        let child = Command::new(paths::python())
            .arg(paths::workspace().join("rig/arc_cluster.py"))
            .arg("--endpoints")
            .arg(
                endpoints
                    .iter()
                    .map(|(r, p)| format!("{r}={p}"))
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .arg("--control-port")
            .arg(control_port.to_string())
            .arg("--controls")
            .arg(controls.join(","))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .expect("start rig/arc_cluster.py (run ./scripts/setup first)");
        let cluster = ArcCluster {
            endpoints,
            control_port,
            _child: child,
        };
        let started = Instant::now();
        while cluster.state().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the rig's ARC cluster did not start; see {}",
                dir.join("arc-cluster.log").display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster
    }

    /// `ROUTING_CONTROL_ENDPOINTS` for the functions.
    pub fn endpoints_env(&self) -> String {
        self.endpoints
            .iter()
            .map(|(r, p)| format!("{r}=http://127.0.0.1:{p}/v1"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `ROUTING_CONTROL_ARNS` for `regions`.
    pub fn arns_env(regions: &[&str]) -> String {
        regions
            .iter()
            .map(|r| format!("{r}={}", arn_for(r)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `{"controls": {arn: "On"|"Off"}, "changes": [{at, endpoint, arn, state}], "down": [..]}`.
    pub fn state(&self) -> Option<Value> {
        crate::rig::control_get_json(self.control_port, "/state")
    }

    /// `region`'s routing control: `Some(true)` when On.
    pub fn is_on(&self, region: &str) -> Option<bool> {
        self.state()?["controls"][arn_for(region)]
            .as_str()
            .map(|s| s == "On")
    }

    /// The endpoint in `region` stops answering (holds every request), or answers again.
    pub fn set_down(&self, region: &str, down: bool) {
        let body = serde_json::json!({"endpoint": region, "down": down}).to_string();
        let reply = crate::rig::http_post(self.control_port, "/down", &body);
        assert!(reply.contains(" 200 "), "{reply}");
    }

    /// A person sets `region`'s routing control in the console.
    pub fn set_by_hand(&self, region: &str, on: bool) {
        let body =
            serde_json::json!({ arn_for(region): if on { "On" } else { "Off" } }).to_string();
        let reply = crate::rig::http_post(self.control_port, "/set", &body);
        assert!(reply.contains(" 200 "), "{reply}");
    }
}
