//! The duplicate-delivery soak (not a test: it takes a while, and its figure is the point):
//! 1000 deliveries of one alarm, taken by 10 bootstrap processes of the failover
//! function at once, with home frozen and the control state's first writes applied by the
//! rig and then answered with a 500 (`applied_then_500`). Exactly one transition must come
//! of it. Run it with `make soak` (or `./scripts/soak`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a soak: failing loudly is the point

use std::collections::BTreeMap;
use std::time::Instant;

use futures::future::join_all;
use regionpilot_tests::rig::Fault;
use regionpilot_tests::{Invocation, Stage, alarm_for};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const DELIVERIES: usize = 1000;
const PROCESSES: usize = 10;
/// The control table's PutItems (state, history, lease ...) applied and then failed.
const LANDED_THEN_FAILED: i64 = 40;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = [
        ("CONNECT_TIMEOUT_MS", "300"),
        ("CALL_TIMEOUT_MS", "500"),
        ("CALL_MAX_ATTEMPTS", "3"),
        ("PROBE_TIMEOUT_MS", "600"),
    ];
    let stage = Stage::start("soak", &[HOME, STANDBY], STANDBY, PROCESSES, &env).await;
    stage.rig.freeze(HOME);
    stage.rig.set_faults(
        STANDBY,
        &[Fault::applied_then_500("PutItem", LANDED_THEN_FAILED)],
    );
    let alarm = alarm_for(HOME);
    let started = Instant::now();
    let answers = join_all((0..DELIVERIES).map(|_| stage.failover.invoke(&alarm))).await;
    let took = started.elapsed();
    stage.rig.set_faults(STANDBY, &[]);
    stage.rig.thaw(HOME);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for answer in answers {
        let key = match answer {
            Invocation::Ok(v) => v["outcome"].as_str().unwrap_or("?").to_owned(),
            Invocation::Error { error_type, .. } => format!("error {error_type}"),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    let history = stage.world.history_epochs().await;
    let refreshes = stage.world.refreshes(STANDBY).await.len();
    println!(
        "soak: {DELIVERIES} deliveries of one alarm over {PROCESSES} processes in {:.1} s, home frozen, the first {LANDED_THEN_FAILED} control-table PutItems applied and answered 500",
        took.as_secs_f64()
    );
    for (outcome, n) in &outcomes {
        println!("  {outcome:<24} {n:>5}");
    }
    println!("  history epochs: {history:?}; refreshes in {STANDBY}: {refreshes}");
    let switched = outcomes.get("switched").copied().unwrap_or(0);
    let ok = switched == 1 && history == [1] && refreshes == 1;
    println!(
        "  [{}] exactly one transition",
        if ok { "met" } else { "MISSED" }
    );
    if !ok {
        std::process::exit(1);
    }
}
