//! `{"command":"report","epoch":N}`: one transition's full record, for the incident
//! ticket: what triggered it, what the decision saw, each step per region and group with
//! when it started and ended, whether it was forced, the data-loss window, and the
//! failback verification that led to it. `"format":"markdown"` renders the same record
//! as Markdown. The latest transition is read from the control state; earlier ones from
//! the history, which is rewritten as each transition's steps are recorded.

use serde::Serialize;

use crate::controller::{Controller, Outcome, Response};
use crate::decision::window::rfc3339;
use crate::error::{Error, Result};
use crate::ports::{ControlStore, Deps, ProbeResult};
use crate::region::Region;
use crate::state::{FailbackProgress, HistoryRecord, Millis, Transition, TriggerInfo};
use crate::views::notices::DataLossWindow;

#[derive(Debug, Clone, Serialize)]
pub struct TransitionReport {
    pub epoch: u64,
    pub from: Region,
    pub to: Region,
    pub reason: String,
    pub trigger: TriggerInfo,
    pub forced: bool,
    pub started_at: Millis,
    pub completed: bool,
    /// The decision's inputs: each candidate's probe result.
    pub probes: Vec<ProbeResult>,
    pub steps: Vec<StepReport>,
    pub data_loss_window: DataLossWindow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failback_verification: Option<FailbackProgress>,
    /// Records written before reports existed have no steps: says so rather than show none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The step's kind: `publish`, `capacity`, `refresh`, `reload`, ...
    pub step: &'static str,
    /// The region or group (`region/name`).
    pub key: String,
    pub ok: bool,
    pub outcome: String,
    /// What kind of failure, when it failed (`timeout`, `access_denied`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<crate::error::ErrorKind>,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub attempts: u32,
}

impl TransitionReport {
    pub fn of(t: &Transition) -> Self {
        let steps = crate::views::in_plan_order(t)
            .map(|(kind, entry)| {
                // Entries migrated from a record without times ran an unknown number of
                // times, at unknown times.
                let timed = entry.runs > 0;
                StepReport {
                    step: kind.name(),
                    key: entry.key.clone(),
                    ok: entry.ok(),
                    outcome: kind.summary(entry, t.epoch),
                    error_kind: entry.error.as_ref().map(|e| e.kind),
                    started_at: timed.then_some(entry.started_at),
                    ended_at: timed.then_some(entry.ended_at),
                    attempts: entry.runs,
                }
            })
            .collect();
        TransitionReport {
            epoch: t.epoch,
            from: t.from.clone(),
            to: t.to.clone(),
            reason: t.reason.clone(),
            trigger: t.trigger.clone(),
            forced: t.forced,
            started_at: t.started_at,
            completed: t.completed,
            probes: t.probes.clone(),
            steps,
            data_loss_window: DataLossWindow::of(t),
            failback_verification: t.failback.clone(),
            note: None,
        }
    }

    /// A history line written before the history kept whole transitions.
    fn of_summary(h: &HistoryRecord) -> Self {
        let t = Transition {
            epoch: h.epoch,
            from: h.from.clone(),
            to: h.to.clone(),
            reason: h.reason.clone(),
            trigger: h.trigger.clone(),
            started_at: h.at,
            lease_until: h.at,
            last_replicated_from_old: h.last_replicated_from_old,
            completed: false,
            steps: Vec::new(),
            previous_refresh_ids: Vec::new(),
            forced: matches!(h.trigger, TriggerInfo::Manual { force: true, .. }),
            probes: Vec::new(),
            failback: None,
            takeovers: 0,
        };
        TransitionReport {
            note: Some(
                "this history record predates step records: steps and probes are not known".into(),
            ),
            ..TransitionReport::of(&t)
        }
    }

    /// The same record as Markdown, to paste into an incident ticket.
    pub fn markdown(&self, app: &str) -> String {
        let mut md = String::new();
        let line = |md: &mut String, text: String| {
            md.push_str(&text);
            md.push('\n');
        };
        line(
            &mut md,
            format!(
                "# {app}: transition {} ({} -> {})",
                self.epoch, self.from, self.to
            ),
        );
        line(&mut md, String::new());
        line(&mut md, "| | |".into());
        line(&mut md, "|---|---|".into());
        for (name, value) in [
            ("Started", rfc3339(self.started_at)),
            ("Trigger", trigger_text(&self.trigger)),
            ("Reason", self.reason.clone()),
            ("Forced", yes_no(self.forced).into()),
            (
                "Completed",
                if self.completed {
                    "yes: every step was attempted".into()
                } else {
                    "no: steps still running or left to reconcile".into()
                },
            ),
        ] {
            line(&mut md, format!("| {name} | {} |", cell(&value)));
        }
        if let Some(note) = &self.note {
            line(&mut md, format!("\n> {note}"));
        }

        line(&mut md, "\n## Decision: what the probes saw".into());
        if self.probes.is_empty() {
            line(
                &mut md,
                "No probe was needed (a named target or going home).".into(),
            );
        } else {
            line(
                &mut md,
                "| Region | Answered | Canary found | Latency | Error |".into(),
            );
            line(&mut md, "|---|---|---|---|---|".into());
            for p in &self.probes {
                line(
                    &mut md,
                    format!(
                        "| {} | {} | {} | {} ms | {} |",
                        p.region,
                        yes_no(p.reachable),
                        yes_no(p.item_found),
                        p.latency_ms,
                        cell(p.error.as_deref().unwrap_or("-"))
                    ),
                );
            }
        }

        line(&mut md, "\n## Steps".into());
        line(
            &mut md,
            "| Step | Region or group | OK | Started | Ended | Took | Runs | Outcome |".into(),
        );
        line(&mut md, "|---|---|---|---|---|---|---|---|".into());
        for s in &self.steps {
            let took = match (s.started_at, s.ended_at) {
                (Some(a), Some(b)) => format!("{:.3} s", b.saturating_sub(a) as f64 / 1000.0),
                _ => "-".into(),
            };
            line(
                &mut md,
                format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    s.step,
                    cell(&s.key),
                    yes_no(s.ok),
                    s.started_at.map_or("-".into(), rfc3339),
                    s.ended_at.map_or("-".into(), rfc3339),
                    took,
                    s.attempts,
                    cell(&s.outcome)
                ),
            );
        }

        line(&mut md, "\n## Data-loss window".into());
        let w = &self.data_loss_window;
        line(
            &mut md,
            match (w.last_replicated_at, w.seconds) {
                (Some(seen), Some(seconds)) => format!(
                    "Writes to {} after {} (its newest write seen replicated) may be lost or arrive late: {seconds:.3} s before the switch at {}.",
                    w.region,
                    rfc3339(seen),
                    rfc3339(w.failover_at)
                ),
                _ => format!(
                    "Unknown: no replicated heartbeat of {} was readable at the switch ({}). Check the application's data for writes near that time.",
                    w.region,
                    rfc3339(w.failover_at)
                ),
            },
        );

        if let Some(f) = &self.failback_verification {
            line(&mut md, "\n## Failback verification that led to it".into());
            line(
                &mut md,
                format!(
                    "Home passed {} healthy checks in a row (last at {}); replication drained in {}.",
                    f.healthy_streak,
                    rfc3339(f.last_check_at),
                    f.last_drain_seconds
                        .map_or("an unknown time".into(), |s| format!("{s:.3} s"))
                ),
            );
        }
        md
    }
}

fn trigger_text(trigger: &TriggerInfo) -> String {
    match trigger {
        TriggerInfo::Alarm { alarm_name, source } => format!("alarm {alarm_name} (via {source})"),
        TriggerInfo::Manual { command, force } => {
            format!(
                "{{\"command\":\"{command}\"}} by a person{}",
                if *force { ", forced" } else { "" }
            )
        }
        TriggerInfo::Verifier { check } => format!("the failback verifier ({check})"),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Text safe inside a Markdown table cell: backslashes first, then pipes and line breaks.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

impl<D: Deps> Controller<D> {
    /// The report of transition `epoch` (the latest when `None`).
    pub async fn report(&self, epoch: Option<u64>, markdown: bool) -> Result<Response> {
        let state = self.load().await?.value;
        let epoch = epoch.unwrap_or(state.epoch);
        if epoch == 0 || epoch > state.epoch {
            return Err(Error::invalid(match state.epoch {
                0 => "no transition has been made yet: there is nothing to report".to_owned(),
                latest => format!("no transition {epoch}: transitions 1 to {latest} exist"),
            }));
        }
        let report = match state.transition.as_ref().filter(|t| t.epoch == epoch) {
            Some(t) => TransitionReport::of(t),
            None => match self.ports.control().history_of(epoch).await? {
                Some(record) => match &record.transition {
                    Some(t) => TransitionReport::of(t),
                    None => TransitionReport::of_summary(&record),
                },
                None => {
                    return Err(Error::invalid(format!(
                        "transition {epoch} is not in the history (it may have been removed)"
                    )));
                }
            },
        };
        let mut response = self.simple(
            Outcome::Report,
            &state,
            format!(
                "report of transition {epoch}: {} -> {}",
                report.from, report.to
            ),
            Some(&report.trigger),
        );
        if markdown {
            response.markdown = Some(report.markdown(&self.config.events.app));
        } else {
            response.report = Some(Box::new(report));
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{Config, FailbackMode};
    use crate::decision::event::{AlarmSignal, AlarmSource, AlarmState, Command, Trigger, decode};
    use crate::testing::{FakePorts, FakeWorld, config, region};

    fn controller(world: &FakeWorld) -> Controller<FakePorts> {
        let mut cfg: Config = config();
        cfg.cooldown = std::time::Duration::ZERO;
        cfg.failback.mode = FailbackMode::Auto;
        cfg.failback.healthy_checks = 1;
        cfg.failback.min_hold = std::time::Duration::ZERO;
        cfg.failback.drain_wait = std::time::Duration::from_millis(300);
        cfg.events.app = "shop".into();
        Controller::new(Arc::new(cfg), world.ports())
    }

    fn alarm() -> Trigger {
        Trigger::Alarm(AlarmSignal {
            alarm_name: "regionpilot-unhealthy-us-east-1".into(),
            state: AlarmState::Alarm,
            region: region("us-east-1"),
            source: AlarmSource::Direct,
            state_reason: Some("Threshold | Crossed".into()),
            actions_suppressed: None,
        })
    }

    async fn report(c: &Controller<FakePorts>, epoch: Option<u64>, markdown: bool) -> Response {
        c.handle(Trigger::Command(Command::Report { epoch, markdown }))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_past_transition_is_reported_whole_from_the_history() {
        // Given a failover on an alarm, then an automatic failback.
        let world = FakeWorld::new();
        let c = controller(&world);
        c.handle(alarm()).await.unwrap();
        world.clock.advance(5_000);
        assert_eq!(c.verify().await.unwrap().outcome, "failed_back");

        // The failover (epoch 1) is no longer in the state: the history has it whole.
        let out = report(&c, Some(1), false).await;
        assert_eq!(out.outcome, Outcome::Report);
        let r = out.report.expect("report");
        assert_eq!(
            (r.epoch, r.from.as_str(), r.to.as_str()),
            (1, "us-east-1", "us-west-2")
        );
        assert!(
            matches!(&r.trigger, TriggerInfo::Alarm { alarm_name, .. } if alarm_name == "regionpilot-unhealthy-us-east-1")
        );
        assert!(!r.forced && r.completed);
        assert_eq!(r.probes.len(), 2, "the candidates' probes: {:?}", r.probes);
        let publishes: Vec<&StepReport> = r.steps.iter().filter(|s| s.step == "publish").collect();
        assert_eq!(publishes.len(), 3);
        for s in &r.steps {
            assert!(s.attempts >= 1, "{s:?}");
            assert!(
                s.started_at.is_some() && s.ended_at >= s.started_at,
                "{s:?}"
            );
        }
        assert!(r.steps.iter().any(|s| s.step == "refresh"));
        assert_eq!(r.data_loss_window.region, region("us-east-1"));
        assert!(r.failback_verification.is_none());

        // The failback (epoch 2, the latest, from the state) names the verification.
        let r = report(&c, None, false).await.report.expect("report");
        assert_eq!(r.epoch, 2);
        assert!(matches!(r.trigger, TriggerInfo::Verifier { .. }));
        let f = r
            .failback_verification
            .expect("the verification that led to it");
        assert_eq!(f.epoch, 1);
        assert!(f.ready);
    }

    #[tokio::test]
    async fn markdown_is_the_same_record_as_a_ticket_would_take_it() {
        let world = FakeWorld::new();
        let c = controller(&world);
        c.handle(alarm()).await.unwrap();
        let out = report(&c, Some(1), true).await;
        assert!(out.report.is_none());
        let md = out.markdown.expect("markdown");
        assert!(
            md.starts_with("# shop: transition 1 (us-east-1 -> us-west-2)\n"),
            "{md}"
        );
        for heading in ["## Decision", "## Steps", "## Data-loss window"] {
            assert!(md.contains(heading), "{heading} missing:\n{md}");
        }
        // One table row per step, and a pipe in the reason does not break the table.
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| publish |")).count(),
            3,
            "{md}"
        );
        assert!(md.contains("Threshold \\| Crossed"), "{md}");
        assert!(md.contains("| Forced | no |"), "{md}");
    }

    #[tokio::test]
    async fn a_transition_that_does_not_exist_is_a_clear_error() {
        let world = FakeWorld::new();
        let c = controller(&world);
        let err = c
            .handle(Trigger::Command(Command::Report {
                epoch: None,
                markdown: false,
            }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nothing to report"), "{err}");
        c.handle(alarm()).await.unwrap();
        let err = c
            .handle(Trigger::Command(Command::Report {
                epoch: Some(7),
                markdown: false,
            }))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "InvalidEvent");
        assert!(
            err.to_string().contains("transitions 1 to 1 exist"),
            "{err}"
        );
    }

    #[test]
    fn report_commands_decode_and_bad_ones_say_what_is_wrong() {
        let cfg = config();
        let ok = decode(
            &serde_json::json!({"command": "report", "epoch": 3, "format": "markdown"}),
            &cfg,
        )
        .unwrap();
        assert_eq!(
            ok,
            Trigger::Command(Command::Report {
                epoch: Some(3),
                markdown: true
            })
        );
        for (payload, fragment) in [
            (
                serde_json::json!({"command": "report", "format": "pdf"}),
                "neither json nor markdown",
            ),
            (
                serde_json::json!({"command": "report", "epoch": 0}),
                "epochs start at 1",
            ),
            (
                serde_json::json!({"command": "report", "epoch": "3"}),
                "epoch",
            ),
            (
                serde_json::json!({"command": "report", "epoch": -1}),
                "epoch",
            ),
            (
                serde_json::json!({"command": "report", "since": 1}),
                "unknown field",
            ),
        ] {
            let err = decode(&payload, &cfg).unwrap_err();
            assert!(err.to_string().contains(fragment), "{payload}: {err}");
        }
    }
}
