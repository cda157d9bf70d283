//! Races: failover alarms (about both regions), the failback verifier and operator commands
//! fired concurrently, round after round, through the real bootstraps against the rig
//! (four failover processes, so deliveries really overlap). After every round: one active
//! region in the control state, every published parameter converged to it once the
//! verifier has reconciled, epochs strictly increasing with no gap, and no transition
//! during a pause unless forced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use regionpilot_tests::{Invocation, Stage, alarm_for};
use serde_json::{Value, json};

const HOME: &str = "us-east-1";
const STANDBY: &str = "us-west-2";
const ROUNDS: usize = 100;

fn answered(what: &str, round: usize, out: Invocation) -> Value {
    match out {
        Invocation::Ok(v) => v,
        Invocation::Error {
            error_type,
            message,
        } => panic!("round {round}: {what} failed: {error_type}: {message}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_alarms_verifier_and_commands_keep_the_invariants() {
    let env = [
        ("CONNECT_TIMEOUT_MS", "300"),
        ("CALL_TIMEOUT_MS", "1000"),
        ("PROBE_TIMEOUT_MS", "1000"),
        ("COOLDOWN_SECONDS", "0"),
        ("FAILBACK_MODE", "auto"),
        ("FAILBACK_HEALTHY_CHECKS", "1"),
        ("FAILBACK_MIN_HOLD_SECONDS", "0"),
        ("FAILBACK_DRAIN_WAIT_SECONDS", "2"),
        ("MAX_AUTOMATIC_SWITCHES_PER_DAY", "1000"),
    ];
    let stage = Stage::start("races", &[HOME, STANDBY], STANDBY, 4, &env).await;
    // Replication within 20 ms (the rig's default is 200): each automatic failback waits
    // for the drain, and the races are about the control state, not about the lag.
    stage.rig.set_replication(HOME, STANDBY, 0.02, false);
    stage.rig.set_replication(STANDBY, HOME, 0.02, false);
    let verifier = stage.start_function("failback", 1, &[]).await;
    let status = json!({"command": "status"});
    let mut last_epoch = 0;
    let mut transitions_seen = 0;
    for round in 0..ROUNDS {
        // Every tenth round runs under a pause, with one forced command among the others.
        let paused = round % 10 == 7;
        if paused {
            let out = stage
                .failover
                .invoke(&json!({"command": "pause", "reason": format!("race round {round}")}))
                .await;
            assert_eq!(answered("pause", round, out)["outcome"], "paused");
        }
        let target = if round % 2 == 0 { STANDBY } else { HOME };
        let manual = json!({
            "command": "failover",
            "target_region": target,
            "reason": format!("race round {round}"),
        });
        let (alarm_home, alarm_standby) = (alarm_for(HOME), alarm_for(STANDBY));
        let verify_command = json!({"command": "verify"});
        let failback_command = json!({"command": "failback", "reason": "race"});
        let (away, back, command, verify, failback) = tokio::join!(
            stage.failover.invoke(&alarm_home),
            stage.failover.invoke(&alarm_standby),
            stage.failover.invoke(&manual),
            verifier.invoke(&verify_command),
            stage.failover.invoke(&failback_command),
        );
        let outcomes: Vec<Value> = [
            ("alarm home", away),
            ("alarm standby", back),
            ("manual failover", command),
            ("verify", verify),
            ("manual failback", failback),
        ]
        .into_iter()
        .map(|(what, out)| answered(what, round, out)["outcome"].clone())
        .collect();

        let before_forced =
            answered("status", round, stage.failover.invoke(&status).await)["status"]["epoch"]
                .as_u64()
                .unwrap();
        if paused {
            assert_eq!(
                before_forced, last_epoch,
                "round {round}: a transition during a pause without force ({outcomes:?})"
            );
            let forced = json!({
                "command": "failover",
                "target_region": target,
                "reason": "forced during pause",
                "force": true,
            });
            let out = answered("forced", round, stage.failover.invoke(&forced).await);
            assert!(
                ["switched", "already_active"].contains(&out["outcome"].as_str().unwrap()),
                "round {round}: forced command: {out}"
            );
            let out = stage.failover.invoke(&json!({"command": "resume"})).await;
            assert_eq!(answered("resume", round, out)["outcome"], "resumed");
        }

        // Converge: the verifier's reconcile publishes the active region everywhere.
        answered("reconcile", round, verifier.invoke(&verify_command).await);
        let now = answered("status", round, stage.failover.invoke(&status).await);
        let state = &now["status"];
        let active = state["active_region"].as_str().unwrap().to_owned();
        assert!(
            [HOME, STANDBY].contains(&active.as_str()),
            "round {round}: {now}"
        );
        let epoch = state["epoch"].as_u64().unwrap();
        assert!(epoch >= last_epoch, "round {round}: epoch went back");
        let epochs = stage.world.history_epochs().await;
        assert_eq!(
            epochs,
            (1..=epoch).collect::<Vec<_>>(),
            "round {round}: history not linear"
        );
        let (converged, parameters) = stage.world.parameters_all(&active).await;
        assert!(
            converged,
            "round {round}: parameters {parameters:?} not converged to {active}"
        );
        transitions_seen += epoch - last_epoch;
        last_epoch = epoch;
        // The flap guard's limit is 1,000 here and never the point: keep the state item
        // its production size rather than time moto parsing a growing list.
        stage.world.forget_automatic_switches().await;
    }
    eprintln!("races: {ROUNDS} rounds, {transitions_seen} transitions, history linear");
    assert!(
        transitions_seen >= ROUNDS as u64 / 2,
        "the rounds barely switched ({transitions_seen}): the race was not exercised"
    );
}
