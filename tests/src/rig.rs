//! The local AWS rig: one `moto_server` process per region on 127.0.0.1 (see
//! `rig/moto_region.py`), so a test can freeze (SIGSTOP), thaw, kill or restart a region.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::paths;

pub struct RegionServer {
    pub region: String,
    pub port: u16,
    /// The rig's own control port (replication lag and pause).
    pub control_port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl RegionServer {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

/// Regions served by their own emulator processes. Dropping the rig kills them all.
pub struct Rig {
    pub servers: BTreeMap<String, RegionServer>,
    pub dir: PathBuf,
}

/// A port the OS says is free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

impl Rig {
    /// Starts one emulator per region and waits until each answers. Writes to the
    /// `replicated` tables are replicated between all `regions` (Global Tables).
    pub async fn start(regions: &[&str], replicated: &[&str], dir: &Path) -> Rig {
        std::fs::create_dir_all(dir).expect("create rig dir");
        let mut servers = BTreeMap::new();
        for region in regions {
            let server = RegionServer {
                region: region.to_string(),
                port: free_port(),
                control_port: free_port(),
                child: None,
                log: dir.join(format!("moto-{region}.log")),
            };
            servers.insert(region.to_string(), server);
        }
        let controls: Vec<(String, u16)> = servers
            .values()
            .map(|s| (s.region.clone(), s.control_port))
            .collect();
        for server in servers.values_mut() {
            let peers: Vec<String> = controls
                .iter()
                .filter(|(r, _)| *r != server.region)
                .map(|(r, port)| format!("{r}=http://127.0.0.1:{port}"))
                .collect();
            spawn(server, &peers.join(","), &replicated.join(","));
        }
        for server in servers.values() {
            wait_ready(server).await;
        }
        Rig {
            servers,
            dir: dir.to_owned(),
        }
    }

    pub fn server(&self, region: &str) -> &RegionServer {
        self.servers
            .get(region)
            .unwrap_or_else(|| panic!("region {region} is not in the rig"))
    }

    pub fn url(&self, region: &str) -> String {
        self.server(region).url()
    }

    /// `REGION_ENDPOINTS` for the functions.
    pub fn region_endpoints(&self) -> String {
        self.servers
            .values()
            .map(|s| format!("{}={}", s.region, s.url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The region stops answering: connections are accepted by the kernel and then hang.
    pub fn freeze(&self, region: &str) {
        signal(self.server(region), "-STOP");
    }

    pub fn thaw(&self, region: &str) {
        signal(self.server(region), "-CONT");
    }

    /// The region is gone: connections are refused. Its data is lost with it.
    pub async fn kill(&mut self, region: &str) {
        let server = self.servers.get_mut(region).expect("region in rig");
        if let Some(mut child) = server.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Rig {
    /// Sets the replication lag and pause from one region to another (like AWS FIS
    /// pause-replication), through the source region's control port.
    pub fn set_replication(&self, from: &str, to: &str, lag_seconds: f64, paused: bool) {
        let body = format!(r#"{{"to":"{to}","lag_seconds":{lag_seconds},"paused":{paused}}}"#);
        let reply = http_post(self.server(from).control_port, "/replication", &body);
        assert!(
            reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
            "{reply}"
        );
    }
}

/// A bare HTTP/1.0 POST to the rig's control port on 127.0.0.1.
fn http_post(port: u16, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to rig control port");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .expect("send to rig control port");
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

fn signal(server: &RegionServer, sig: &str) {
    let pid = server.pid().expect("region process is running");
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

fn spawn(server: &mut RegionServer, peers: &str, replicated: &str) {
    let log = std::fs::File::create(&server.log).expect("create rig log");
    let err = log.try_clone().expect("clone log handle");
    let child = Command::new(paths::python())
        .arg(paths::workspace().join("rig/moto_region.py"))
        .args([
            "--region",
            &server.region,
            "--port",
            &server.port.to_string(),
            "--control-port",
            &server.control_port.to_string(),
            "--peers",
            peers,
            "--replicate",
            replicated,
        ])
        .env(
            "RIG_REFRESH_SECONDS",
            std::env::var("RIG_REFRESH_SECONDS").unwrap_or_else(|_| "30".into()),
        )
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start the rig's python ({}): {e}; run ./scripts/setup first",
                paths::python().display()
            )
        });
    server.child = Some(child);
}

async fn wait_ready(server: &RegionServer) {
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().expect("addr");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    panic!(
        "rig region {} did not start on port {}:\n{log}",
        server.region, server.port
    );
}

/// One injected fault (see `rig/moto_region.py`): an AWS error code for an operation, or
/// added latency.
pub struct Fault {
    pub operation: &'static str,
    pub error: Option<&'static str>,
    pub status: u16,
    pub latency_ms: u64,
    /// How many matching requests it applies to; -1 for all until replaced.
    pub count: i64,
}

impl Fault {
    pub fn error(operation: &'static str, code: &'static str, status: u16) -> Fault {
        Fault {
            operation,
            error: Some(code),
            status,
            latency_ms: 0,
            count: -1,
        }
    }

    pub fn latency(operation: &'static str, latency_ms: u64) -> Fault {
        Fault {
            operation,
            error: None,
            status: 200,
            latency_ms,
            count: -1,
        }
    }
}

impl Rig {
    /// Replaces the region's injected faults (an empty list clears them).
    pub fn set_faults(&self, region: &str, faults: &[Fault]) {
        let rules: Vec<String> = faults
            .iter()
            .map(|f| {
                format!(
                    r#"{{"operation":"{}","error":{},"status":{},"latency_ms":{},"count":{}}}"#,
                    f.operation,
                    f.error.map_or("null".to_owned(), |e| format!("\"{e}\"")),
                    f.status,
                    f.latency_ms,
                    f.count
                )
            })
            .collect();
        let body = format!(r#"{{"rules":[{}]}}"#, rules.join(","));
        let reply = http_post(self.server(region).control_port, "/faults", &body);
        assert!(
            reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
            "{reply}"
        );
    }
}
