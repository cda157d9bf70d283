//! A local Lambda service for one function: the Runtime API its bootstrap processes poll
//! (`/2018-06-01/runtime/...`, as documented for custom runtimes) and the Invoke API
//! people and tools call (`POST /2015-03-31/functions/{name}/invocations`, so
//! `aws lambda invoke --endpoint-url` works against it).
//!
//! Unlike `cargo lambda watch`, it runs several bootstrap processes of the same function
//! at once (real Lambda scales out the same way), so concurrent deliveries really are
//! concurrent, and it answers function errors as Lambda does: HTTP 200 with
//! `X-Amz-Function-Error`. An error a process reports at `/runtime/init/error` answers the
//! invocation waiting on it, and every later one, with that error: Lambda runs init again
//! for each, and with the same configuration it fails the same way.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::paths;

/// What an invocation returned.
#[derive(Debug, Clone)]
pub enum Invocation {
    Ok(Value),
    /// The function reported an error: `errorType` and `errorMessage`.
    Error {
        error_type: String,
        message: String,
    },
}

impl Invocation {
    pub fn ok(self) -> Value {
        match self {
            Invocation::Ok(v) => v,
            Invocation::Error {
                error_type,
                message,
            } => {
                panic!("function failed: {error_type}: {message}")
            }
        }
    }

    pub fn err(self) -> (String, String) {
        match self {
            Invocation::Error {
                error_type,
                message,
            } => (error_type, message),
            Invocation::Ok(v) => panic!("expected a function error, got {v}"),
        }
    }
}

struct Queued {
    id: String,
    payload: Bytes,
    reply: oneshot::Sender<Result<Bytes, Bytes>>,
}

struct Shared {
    function_name: String,
    sender: mpsc::UnboundedSender<Queued>,
    receiver: Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Result<Bytes, Bytes>>>>,
    next_id: AtomicU64,
    init_errors: Mutex<Vec<String>>,
}

/// A function served locally: the API server and its bootstrap processes.
pub struct LocalFunction {
    pub name: String,
    pub port: u16,
    shared: Arc<Shared>,
    /// What one instance runs: a bootstrap, or an interpreter and its script.
    program: PathBuf,
    args: Vec<String>,
    processes: Vec<Child>,
    env: BTreeMap<String, String>,
    log: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

impl LocalFunction {
    /// Starts the API and `concurrency` bootstrap processes of the named binary.
    pub async fn start(
        binary: &str,
        env: BTreeMap<String, String>,
        concurrency: usize,
        log_dir: &std::path::Path,
    ) -> LocalFunction {
        Self::start_program(
            binary,
            paths::binary(binary),
            &[],
            env,
            concurrency,
            log_dir,
        )
        .await
    }

    /// Starts the API and `concurrency` processes of any runtime: `program` with `args`
    /// must poll `AWS_LAMBDA_RUNTIME_API` as a custom runtime does.
    pub async fn start_program(
        name: &str,
        program: PathBuf,
        args: &[&str],
        env: BTreeMap<String, String>,
        concurrency: usize,
        log_dir: &std::path::Path,
    ) -> LocalFunction {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_name: name.to_owned(),
            sender,
            receiver: Mutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            init_errors: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2015-03-31/functions/{name}/invocations", post(invoke_api))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime API");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut function = LocalFunction {
            name: name.to_owned(),
            port,
            shared,
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
            processes: Vec::new(),
            env,
            log: log_dir.join(format!("{name}.log")),
            server,
        };
        for _ in 0..concurrency {
            function.spawn_process();
        }
        function
    }

    /// Starts one more instance; returns its process id.
    pub fn spawn_process(&mut self) -> Option<u32> {
        let binary = &self.program;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open function log");
        let child = Command::new(binary)
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", self.port))
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); build the functions first: cargo test --workspace --no-run (or cargo build --workspace --bins)",
                    binary.display()
                )
            });
        let pid = child.id();
        self.processes.push(child);
        pid
    }

    /// A cold start: the invocation waits in the queue, then one new instance is spawned;
    /// the time runs from the spawn to the answer (process start, runtime and SDK
    /// initialisation, and the invocation itself).
    pub async fn cold_invoke(&mut self, payload: &Value) -> (Duration, Invocation) {
        let body = Bytes::from(serde_json::to_vec(payload).expect("payload json"));
        let shared = self.shared.clone();
        let answer = tokio::spawn(async move { enqueue(&shared, body).await });
        let spawned = std::time::Instant::now();
        self.spawn_process();
        let result = tokio::time::timeout(Duration::from_secs(60), answer)
            .await
            .expect("cold start answered within 60 s")
            .expect("invoke task");
        (spawned.elapsed(), decode(result))
    }

    /// Peak resident set size (VmHWM) of each running instance, in KiB.
    pub fn peak_rss_kib(&self) -> Vec<u64> {
        self.processes
            .iter()
            .filter_map(Child::id)
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .collect()
    }

    /// SIGKILLs every instance where it stands, while an invocation may be in flight (the
    /// caller drops that invocation; nothing will answer it).
    pub fn kill_now(&self) {
        for pid in self.processes.iter().filter_map(Child::id) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }

    /// Kills every instance (a crash); queued invocations wait for the next one.
    pub async fn stop(&mut self) {
        for mut child in self.processes.drain(..) {
            let _ = child.kill().await;
        }
    }

    /// Invokes the function as Lambda's Invoke API would, waiting up to `timeout`.
    pub async fn invoke_within(&self, payload: &Value, timeout: Duration) -> Invocation {
        let body = Bytes::from(serde_json::to_vec(payload).expect("payload json"));
        let result = tokio::time::timeout(timeout, enqueue(&self.shared, body))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not answer within {timeout:?}; log: {}",
                    self.name,
                    self.log.display()
                )
            });
        decode(result)
    }

    pub async fn invoke(&self, payload: &Value) -> Invocation {
        self.invoke_within(payload, Duration::from_secs(60)).await
    }

    /// The processes' combined log so far (for assertions on what was logged).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn init_errors(&self) -> Vec<String> {
        self.shared.init_errors.lock().await.clone()
    }

    /// Kills every bootstrap process (a crash), then starts `concurrency` fresh ones.
    pub async fn restart(&mut self, concurrency: usize) {
        self.stop().await;
        self.shared.init_errors.lock().await.clear();
        for _ in 0..concurrency {
            self.spawn_process();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalFunction {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn decode(result: Result<Bytes, Bytes>) -> Invocation {
    match result {
        Ok(body) => Invocation::Ok(serde_json::from_slice(&body).unwrap_or(Value::Null)),
        Err(body) => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            Invocation::Error {
                error_type: v["errorType"].as_str().unwrap_or("Unknown").to_owned(),
                message: v["errorMessage"].as_str().unwrap_or_default().to_owned(),
            }
        }
    }
}

async fn enqueue(shared: &Shared, payload: Bytes) -> Result<Bytes, Bytes> {
    // Held while queueing, so an init error reported meanwhile finds this invocation.
    let init_errors = shared.init_errors.lock().await;
    if let Some(init_error) = init_errors.last() {
        return Err(Bytes::from(init_error.clone()));
    }
    let (reply, answer) = oneshot::channel();
    let id = format!(
        "local-{:08}-{}",
        shared.next_id.fetch_add(1, Ordering::SeqCst),
        std::process::id()
    );
    let queued = Queued { id, payload, reply };
    if shared.sender.send(queued).is_err() {
        return Err(Bytes::from_static(
            br#"{"errorType":"ServiceUnavailable","errorMessage":"runtime closed"}"#,
        ));
    }
    drop(init_errors);
    answer
        .await
        .unwrap_or_else(|_| Err(Bytes::from_static(br#"{"errorType":"Runtime.ExitError","errorMessage":"the function process exited before answering"}"#)))
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let queued = {
        let mut receiver = shared.receiver.lock().await;
        receiver.recv().await
    };
    let Some(queued) = queued else {
        return StatusCode::GONE.into_response();
    };
    shared
        .in_flight
        .lock()
        .await
        .insert(queued.id.clone(), queued.reply);
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() + 60_000)
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    let set = |headers: &mut HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set(
        &mut headers,
        "lambda-runtime-aws-request-id",
        queued.id.clone(),
    );
    set(
        &mut headers,
        "lambda-runtime-deadline-ms",
        deadline.to_string(),
    );
    set(
        &mut headers,
        "lambda-runtime-invoked-function-arn",
        format!(
            "arn:aws:lambda:us-east-1:000000000000:function:{}",
            shared.function_name
        ),
    );
    set(
        &mut headers,
        "lambda-runtime-trace-id",
        format!("Root=1-00000000-{}", queued.id),
    );
    set(&mut headers, "content-type", "application/json".into());
    (StatusCode::OK, headers, queued.payload).into_response()
}

async fn respond(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    complete(&shared, &id, Ok(body)).await
}

async fn fail(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    complete(&shared, &id, Err(body)).await
}

async fn complete(shared: &Shared, id: &str, result: Result<Bytes, Bytes>) -> StatusCode {
    match shared.in_flight.lock().await.remove(id) {
        Some(reply) => {
            let _ = reply.send(result);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let mut init_errors = shared.init_errors.lock().await;
    init_errors.push(String::from_utf8_lossy(&body).into_owned());
    // The invocation that waited on this cold start gets the error. If another instance
    // is polling for work (holding the queue), it takes the invocation instead.
    if let Ok(mut queue) = shared.receiver.try_lock()
        && let Ok(queued) = queue.try_recv()
    {
        let _ = queued.reply.send(Err(body));
    }
    drop(init_errors);
    StatusCode::ACCEPTED
}

/// Lambda's Invoke API: 200 with the result, or 200 with `X-Amz-Function-Error`.
async fn invoke_api(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if name != shared.function_name
        && !name.ends_with(&format!(":function:{}", shared.function_name))
    {
        let message = format!(
            r#"{{"Type":"User","message":"Function not found: {name}; this endpoint serves {}"}}"#,
            shared.function_name
        );
        return (
            StatusCode::NOT_FOUND,
            [("x-amzn-errortype", "ResourceNotFoundException")],
            message,
        )
            .into_response();
    }
    let payload = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    match enqueue(&shared, payload).await {
        Ok(result) => (
            StatusCode::OK,
            [("x-amz-executed-version", "$LATEST")],
            result,
        )
            .into_response(),
        Err(error) => (
            StatusCode::OK,
            [
                ("x-amz-function-error", "Unhandled"),
                ("x-amz-executed-version", "$LATEST"),
            ],
            error,
        )
            .into_response(),
    }
}
