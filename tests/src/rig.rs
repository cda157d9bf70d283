//! The local AWS rig: one `moto_server` process per region on 127.0.0.1 (see
//! `rig/moto_region.py`), so a test can freeze (SIGSTOP), thaw, kill or restart a region.
//! Each region models Auto Scaling instances on AWS's clock (boot, warmup, Run Command);
//! the timings come from the `RIG_*` variables in [`RIG_ENV`], scaled by `RIG_TIME_SCALE`.
//! Opt-in, the rig also emulates DynamoDB global tables with multi-Region strong
//! consistency (MRSC): see [`MRSC_ENV`], [`Rig::isolate`].

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;
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
    /// The MRSC emulation, when the rig was started with `RIG_MRSC_TABLES`.
    pub mrsc: Option<Mrsc>,
}

/// The rig's MRSC global tables: one store process holds `tables`; every region in
/// `regions` forwards its requests for them there (see `rig/README.md`).
pub struct Mrsc {
    pub tables: Vec<String>,
    /// The regions holding a replica, in `RIG_MRSC_REGIONS` order.
    pub regions: Vec<String>,
    /// The store: not a region (its `region` names the moto backend holding the tables,
    /// the first of `regions`); it never freezes or dies with one.
    pub store: RegionServer,
}

/// A port the OS says is free right now on 127.0.0.1, never one this process handed out
/// before: tests start rigs concurrently, and between this call and the server binding
/// the port, the OS may offer the same free port to the next caller (two servers on one
/// port, and requests reaching the wrong one).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free port on 127.0.0.1");
        let mut handed_out = HANDED_OUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// The rig's timing variables, passed on from the test process's environment when set
/// (see `rig/README.md`): `RIG_TIME_SCALE` (divides every modelled duration, default
/// 1), `RIG_BOOT_SECONDS` ("60-90"), `RIG_WARMUP_SECONDS` ("60"), `RIG_RUN_COMMAND_SECONDS`
/// ("2-5"), `RIG_SSM_REGISTER_SECONDS` ("5-15", boot to SSM registration) and
/// `RIG_APP_PARAMETER` (the parameter instances read at boot and on reload).
pub const RIG_ENV: [&str; 6] = [
    "RIG_TIME_SCALE",
    "RIG_BOOT_SECONDS",
    "RIG_WARMUP_SECONDS",
    "RIG_RUN_COMMAND_SECONDS",
    "RIG_SSM_REGISTER_SECONDS",
    "RIG_APP_PARAMETER",
];

/// The variables that turn on and shape the MRSC emulation (see `rig/README.md`),
/// taken from `rig_env` or else from the test process's environment, like [`RIG_ENV`]:
/// `RIG_MRSC_TABLES` (comma-separated tables kept in one store; unset or empty: no MRSC,
/// the rig as before), `RIG_MRSC_REGIONS` (the regions holding a replica; default: every
/// region of the rig), `RIG_MRSC_WITNESS` (a witness region, only reported by
/// DescribeTable) and `RIG_MRSC_CONFLICT_MS` (how long a write is in flight, during which
/// a write to the same item through another region conflicts; default 10).
pub const MRSC_ENV: [&str; 4] = [
    "RIG_MRSC_TABLES",
    "RIG_MRSC_REGIONS",
    "RIG_MRSC_WITNESS",
    "RIG_MRSC_CONFLICT_MS",
];

/// `name` from `rig_env`, else from the test process's environment.
fn rig_setting(rig_env: &[(&str, &str)], name: &str) -> Option<String> {
    rig_env
        .iter()
        .rev()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .or_else(|| std::env::var(name).ok())
}

fn names(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Rig {
    /// Starts one emulator per region and waits until each answers. Writes to the
    /// `replicated` tables are replicated between all `regions` (Global Tables).
    pub async fn start(regions: &[&str], replicated: &[&str], dir: &Path) -> Rig {
        Rig::start_with(regions, replicated, dir, &[]).await
    }

    /// [`Rig::start`] with the regions' timing variables chosen here (`rig_env`, for
    /// example `[("RIG_TIME_SCALE", "100")]`); these win over the test process's [`RIG_ENV`].
    /// With `RIG_MRSC_TABLES` (see [`MRSC_ENV`]), for example `[("RIG_MRSC_TABLES",
    /// "regionpilot-control"), ("RIG_MRSC_REGIONS", "us-east-1,us-west-2")]`, those tables
    /// are MRSC global tables across those regions, served by one extra store process.
    pub async fn start_with(
        regions: &[&str],
        replicated: &[&str],
        dir: &Path,
        rig_env: &[(&str, &str)],
    ) -> Rig {
        std::fs::create_dir_all(dir).expect("create rig dir");
        let mrsc = Rig::spawn_mrsc_store(regions, dir, rig_env);
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
        let mut env: Vec<(String, String)> = rig_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(mrsc) = &mrsc {
            env.push(("RIG_MRSC_REGIONS".into(), mrsc.regions.join(",")));
            env.push(("RIG_MRSC_STORE".into(), mrsc.store.url()));
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
            let args = [
                "--region",
                &server.region,
                "--port",
                &server.port.to_string(),
                "--control-port",
                &server.control_port.to_string(),
                "--peers",
                &peers.join(","),
                "--replicate",
                &replicated.join(","),
            ]
            .map(str::to_owned);
            spawn(server, &args, &env);
        }
        for server in servers.values().chain(mrsc.as_ref().map(|m| &m.store)) {
            wait_ready(server).await;
        }
        Rig {
            servers,
            dir: dir.to_owned(),
            mrsc,
        }
    }

    /// Starts the MRSC store when `RIG_MRSC_TABLES` names tables; `None` otherwise.
    fn spawn_mrsc_store(regions: &[&str], dir: &Path, rig_env: &[(&str, &str)]) -> Option<Mrsc> {
        let tables = names(&rig_setting(rig_env, "RIG_MRSC_TABLES")?);
        if tables.is_empty() {
            return None;
        }
        let members = rig_setting(rig_env, "RIG_MRSC_REGIONS")
            .map(|list| names(&list))
            .filter(|list| !list.is_empty())
            .unwrap_or_else(|| regions.iter().map(|r| r.to_string()).collect());
        let mut store = RegionServer {
            region: members[0].clone(),
            port: free_port(),
            control_port: free_port(),
            child: None,
            log: dir.join("moto-mrsc-store.log"),
        };
        let mut env: Vec<(String, String)> = rig_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.push(("RIG_MRSC_REGIONS".into(), members.join(",")));
        let args = [
            "--mrsc-store",
            "--region",
            &members[0],
            "--port",
            &store.port.to_string(),
            "--control-port",
            &store.control_port.to_string(),
        ]
        .map(str::to_owned);
        spawn(&mut store, &args, &env);
        Some(Mrsc {
            tables,
            regions: members,
            store,
        })
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
        self.control_post(from, "/replication", &body);
    }
}

impl Rig {
    /// Cuts `region` off from the majority of the MRSC replicas (`true`) or reconnects it
    /// (`false`), through its control port. Cut off, its writes and strongly consistent
    /// reads of the MRSC tables fail at once (`InternalServerError`, HTTP 500, an assumed
    /// code) and its eventually consistent reads answer from a copy taken at this moment.
    /// Panics if the region holds no MRSC replica.
    pub fn isolate(&self, region: &str, isolated: bool) {
        self.control_post(region, "/mrsc", &format!(r#"{{"isolated":{isolated}}}"#));
    }

    /// The region's MRSC state (`GET /mrsc`: `"isolated"`, `"copy"`, `"tables"`,
    /// `"regions"`, ...); `None` when it does not answer (frozen or killed).
    pub fn mrsc_state(&self, region: &str) -> Option<serde_json::Value> {
        control_get_json(self.server(region).control_port, "/mrsc")
    }

    /// The MRSC store's counters (`"writes"` applied, `"conflicts"` refused with
    /// `ReplicatedWriteConflictException`); `None` without MRSC.
    pub fn mrsc_store(&self) -> Option<serde_json::Value> {
        control_get_json(self.mrsc.as_ref()?.store.control_port, "/mrsc")
    }
}

/// A JSON answer from a rig control port, or `None` (no answer, not 200, not JSON).
pub(crate) fn control_get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let reply = http_get(port, path)?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    if !is_ok(head) {
        return None;
    }
    serde_json::from_str(body).ok()
}

/// One modelled Auto Scaling instance, as `GET /instances` reports it. Times are epoch
/// seconds on the rig's clock.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelInstance {
    pub id: String,
    /// `booting`, `warming`, `in_service` or `terminated`.
    pub state: String,
    /// The parameter value it read at boot or at its last successful reload; `None` while
    /// booting.
    pub value: Option<String>,
    pub launched_at: f64,
    /// When it became (or will become) in service; `None` if terminated before that.
    pub in_service_at: Option<f64>,
    #[serde(default)]
    pub terminated_at: Option<f64>,
}

impl ModelInstance {
    /// In service and holding `value`.
    pub fn serves(&self, value: &str) -> bool {
        self.state == "in_service" && self.value.as_deref() == Some(value)
    }
}

/// A cheap, `'static` handle on every region's instance model, for tasks that outlive a
/// borrow of the rig (the drill's observers).
#[derive(Clone, Debug)]
pub struct InstanceView {
    control_ports: BTreeMap<String, u16>,
}

impl InstanceView {
    /// The region's instance model (`GET /instances` on its control port): `{"groups":
    /// {name: {"desired", "min", "max", "instances": [...]}}, "time_scale", "boot_seconds",
    /// "warmup_seconds", "run_command_seconds"}`. `None` when the region does not answer
    /// within a second or two (frozen or killed).
    pub fn instances(&self, region: &str) -> Option<serde_json::Value> {
        let reply = http_get(*self.control_ports.get(region)?, "/instances")?;
        let (head, body) = reply.split_once("\r\n\r\n")?;
        if !is_ok(head) {
            return None;
        }
        serde_json::from_str(body).ok()
    }

    /// Every instance the group has had, terminated ones included, in launch order.
    pub fn group_instances(&self, region: &str, group: &str) -> Option<Vec<ModelInstance>> {
        let model = self.instances(region)?;
        let instances = model["groups"][group]["instances"].clone();
        serde_json::from_value(instances).ok()
    }

    /// The group's instances that are not terminated, in launch order.
    pub fn live_instances(&self, region: &str, group: &str) -> Option<Vec<ModelInstance>> {
        let mut instances = self.group_instances(region, group)?;
        instances.retain(|i| i.state != "terminated");
        Some(instances)
    }

    /// The live tasks of the ECS service `cluster/service` in `region` (`GET /ecs/tasks`):
    /// `None` when the region does not answer or has not seen the service.
    pub fn service_tasks(&self, region: &str, service: &str) -> Option<Vec<ModelTask>> {
        let reply = http_get(*self.control_ports.get(region)?, "/ecs/tasks")?;
        let (head, body) = reply.split_once("\r\n\r\n")?;
        if !is_ok(head) {
            return None;
        }
        let model: serde_json::Value = serde_json::from_str(body).ok()?;
        serde_json::from_value(model.get(service)?["tasks"].clone()).ok()
    }
}

/// One modelled ECS task, as `GET /ecs/tasks` reports it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ModelTask {
    pub id: String,
    pub deployment: String,
    pub running: bool,
    pub healthy: bool,
    /// The parameter value it read when it started.
    pub value: Option<String>,
}

impl ModelTask {
    /// Healthy and holding `value`.
    pub fn serves(&self, value: &str) -> bool {
        self.healthy && self.value.as_deref() == Some(value)
    }
}

impl Rig {
    pub fn view(&self) -> InstanceView {
        InstanceView {
            control_ports: self
                .servers
                .iter()
                .map(|(region, s)| (region.clone(), s.control_port))
                .collect(),
        }
    }

    /// See [`InstanceView::instances`].
    pub fn instances(&self, region: &str) -> Option<serde_json::Value> {
        self.view().instances(region)
    }

    /// See [`InstanceView::group_instances`].
    pub fn group_instances(&self, region: &str, group: &str) -> Option<Vec<ModelInstance>> {
        self.view().group_instances(region, group)
    }

    /// See [`InstanceView::live_instances`].
    pub fn live_instances(&self, region: &str, group: &str) -> Option<Vec<ModelInstance>> {
        self.view().live_instances(region, group)
    }

    /// `(state, value)` of each live instance of the group, in launch order.
    pub fn serving(&self, region: &str, group: &str) -> Option<Vec<(String, Option<String>)>> {
        let instances = self.live_instances(region, group)?;
        Some(instances.into_iter().map(|i| (i.state, i.value)).collect())
    }

    /// The next Run Command sent to `group` in `region` ends `Failed` on its first `fail`
    /// targeted instances (oldest first) and never finishes on the next `hang` ones
    /// (`TimedOut` at the execution timeout); their value stays. `0, 0` clears.
    pub fn set_instance_faults(&self, region: &str, group: &str, fail: u32, hang: u32) {
        let body = format!(r#"{{"group":"{group}","fail":{fail},"hang":{hang}}}"#);
        self.control_post(region, "/instances/faults", &body);
    }

    /// See [`InstanceView::service_tasks`].
    pub fn service_tasks(&self, region: &str, service: &str) -> Option<Vec<ModelTask>> {
        self.view().service_tasks(region, service)
    }

    /// Scripts hook functions in `region` (see `rig/emulation/lambda_invoke.py`):
    /// `functions` maps a function name to its behaviours, e.g.
    /// `{"smoke-test": [{"hang": true}, {"succeed": {"delay": 2}}]}`.
    pub fn script_hooks(&self, region: &str, functions: &serde_json::Value) {
        let body = serde_json::json!({ "functions": functions }).to_string();
        self.control_post(region, "/lambda/functions", &body);
    }

    /// Every invocation of a scripted hook function in `region`, in order: `function` and
    /// the `payload` it received.
    pub fn hook_calls(&self, region: &str) -> Vec<serde_json::Value> {
        let port = self.server(region).control_port;
        let reply = http_get(port, "/lambda/calls").unwrap_or_default();
        reply
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or_default()
    }

    /// The next deployment of the ECS service `cluster/service` in `region` fails its
    /// tasks until the circuit breaker marks it `FAILED`.
    pub fn fail_next_deployment(&self, region: &str, service: &str) {
        self.control_post(
            region,
            "/ecs/fail",
            &format!(r#"{{"service":"{service}"}}"#),
        );
    }
}

/// A bare HTTP/1.0 GET to the rig's control port on 127.0.0.1, with short timeouts: `None`
/// when the region refuses (killed) or does not answer (frozen).
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply)
}

impl Rig {
    /// POSTs `body` to `region`'s control port; the rig must accept it.
    fn control_post(&self, region: &str, path: &str, body: &str) {
        let reply = http_post(self.server(region).control_port, path, body);
        assert!(is_ok(&reply), "{reply}");
    }
}

/// An HTTP reply (or its head) with status 200.
fn is_ok(reply: &str) -> bool {
    reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200")
}

/// A bare HTTP/1.0 POST to the rig's control port on 127.0.0.1.
pub(crate) fn http_post(port: u16, path: &str, body: &str) -> String {
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

/// Starts `rig/moto_region.py` with `args`: the test process's [`RIG_ENV`] and
/// [`MRSC_ENV`] variables, then `env` (which wins).
fn spawn(server: &mut RegionServer, args: &[String], env: &[(String, String)]) {
    let log = std::fs::File::create(&server.log).expect("create rig log");
    let err = log.try_clone().expect("clone log handle");
    let mut command = Command::new(paths::python());
    for name in RIG_ENV.iter().chain(&MRSC_ENV) {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let child = command
        .arg(paths::workspace().join("rig/moto_region.py"))
        .args(args)
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

/// One injected fault (see `rig/README.md`): an AWS error code for an operation, or
/// added latency.
pub struct Fault {
    pub operation: &'static str,
    pub error: Option<&'static str>,
    pub status: u16,
    pub latency_ms: u64,
    /// How many matching requests it applies to; -1 for all until replaced.
    pub count: i64,
    /// The request is carried out first; then its answer is the error, or is held
    /// `hold_ms` (AWS applied it and the caller saw a 500 or a timeout).
    pub applied: bool,
    pub hold_ms: u64,
}

impl Fault {
    pub fn error(operation: &'static str, code: &'static str, status: u16) -> Fault {
        Fault {
            operation,
            error: Some(code),
            status,
            latency_ms: 0,
            count: -1,
            applied: false,
            hold_ms: 0,
        }
    }

    /// The next `count` requests of `operation` are carried out and then answered with an
    /// `InternalServerError` (HTTP 500).
    pub fn applied_then_500(operation: &'static str, count: i64) -> Fault {
        Fault {
            applied: true,
            count,
            ..Fault::error(operation, "InternalServerError", 500)
        }
    }

    /// The next `count` requests of `operation` are carried out and their answers held
    /// `hold_ms`, past the caller's timeout.
    pub fn applied_then_held(operation: &'static str, hold_ms: u64, count: i64) -> Fault {
        Fault {
            error: None,
            status: 200,
            applied: true,
            hold_ms,
            count,
            ..Fault::error(operation, "", 200)
        }
    }

    pub fn latency(operation: &'static str, latency_ms: u64) -> Fault {
        Fault {
            operation,
            error: None,
            status: 200,
            latency_ms,
            count: -1,
            applied: false,
            hold_ms: 0,
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
                    r#"{{"operation":"{}","error":{},"status":{},"latency_ms":{},"count":{},"applied":{},"hold_ms":{}}}"#,
                    f.operation,
                    f.error.map_or("null".to_owned(), |e| format!("\"{e}\"")),
                    f.status,
                    f.latency_ms,
                    f.count,
                    f.applied,
                    f.hold_ms
                )
            })
            .collect();
        let body = format!(r#"{{"rules":[{}]}}"#, rules.join(","));
        self.control_post(region, "/faults", &body);
    }
}
