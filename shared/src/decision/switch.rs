//! The decision rules, as plain functions over the control state. No I/O: the caller
//! probes the regions `plan` asks about and hands the results to `pick`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Config;
use crate::ports::ProbeResult;
use crate::region::Region;
use crate::state::{ControlState, Millis, TriggerInfo};

/// What a switch request wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// An alarm says this region is failing: move away from it if it is the active one.
    AwayFrom(Region),
    /// An operator asks for this region, or for the next healthy one.
    To(Option<Region>),
    /// An operator (or the failback verification) asks to go back to the home region.
    Home,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchRequest {
    pub intent: Intent,
    pub reason: String,
    pub trigger: TriggerInfo,
    pub dry_run: bool,
    /// Manual only: skip the pre-flight probe of a named target.
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do, by rule (OK state, paused, cooldown, alarm about a standby).
    Ignore {
        reason: String,
    },
    /// The wanted region is already active.
    AlreadyActive {
        reason: String,
    },
    /// A switch is warranted but unsafe: no healthy target.
    Refuse {
        reason: String,
    },
    Switch {
        from: Region,
        to: Region,
    },
}

/// First phase: decide from the state alone, or name the regions to probe (in order of
/// preference) before a target can be picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Decided(Decision),
    Probe(Vec<Region>),
}

pub fn plan(state: &ControlState, request: &SwitchRequest, now: Millis, config: &Config) -> Plan {
    let active = &state.active_region;
    if let Intent::AwayFrom(failing) = &request.intent
        && failing != active
    {
        let already_left = state
            .transition
            .as_ref()
            .is_some_and(|t| &t.from == failing && &t.to == active);
        return Plan::Decided(if already_left {
            Decision::AlreadyActive {
                reason: format!(
                    "{failing} is failing but {active} is already active (epoch {})",
                    state.epoch
                ),
            }
        } else {
            Decision::Ignore {
                reason: format!(
                    "alarm is about {failing}, which is not the active region {active}"
                ),
            }
        });
    }
    let target = match &request.intent {
        Intent::To(Some(target)) => Some(target),
        Intent::Home => Some(config.home()),
        Intent::To(None) | Intent::AwayFrom(_) => None,
    };
    if let Some(target) = target
        && target == active
    {
        return Plan::Decided(Decision::AlreadyActive {
            reason: format!(
                "{target} is already the active region (epoch {})",
                state.epoch
            ),
        });
    }
    // A pause holds back every switch but a forced one; the cooldown only automatic ones.
    if let Some(pause) = &state.paused
        && !request.force
    {
        return Plan::Decided(Decision::Ignore {
            reason: format!(
                "switching is paused ({} by {}); send {{\"command\":\"resume\"}}, or repeat a manual command with \"force\": true",
                pause.reason, pause.by
            ),
        });
    }
    if request.trigger.is_automatic()
        && let Some(last) = state.last_switch_at()
    {
        let elapsed = Duration::from_millis(now.saturating_sub(last));
        if elapsed < config.cooldown {
            return Plan::Decided(Decision::Ignore {
                reason: format!(
                    "within cooldown: last switch {}s ago, COOLDOWN_SECONDS is {}; a manual command overrides",
                    elapsed.as_secs(),
                    config.cooldown.as_secs()
                ),
            });
        }
    }
    match target {
        Some(target) => wanted(state, target, request.force),
        None => Plan::Probe(others(config, active)),
    }
}

fn wanted(state: &ControlState, target: &Region, force: bool) -> Plan {
    if target == &state.active_region {
        Plan::Decided(Decision::AlreadyActive {
            reason: format!(
                "{target} is already the active region (epoch {})",
                state.epoch
            ),
        })
    } else if force {
        Plan::Decided(Decision::Switch {
            from: state.active_region.clone(),
            to: target.clone(),
        })
    } else {
        Plan::Probe(vec![target.clone()])
    }
}

/// What a request will most likely probe, guessed before the control state is read so the
/// probes can run beside that read: `(leaving, candidates)`, assuming the application is
/// at home unless the request names the failing region. A wrong guess costs a few reads:
/// the plan made from the state probes whatever the guess missed.
pub fn likely_probes(intent: &Intent, config: &Config) -> (Region, Vec<Region>) {
    let home = config.home();
    match intent {
        Intent::AwayFrom(failing) => (failing.clone(), others(config, failing)),
        Intent::To(Some(target)) if target != home => (home.clone(), vec![target.clone()]),
        Intent::To(None) => (home.clone(), others(config, home)),
        Intent::To(Some(_)) | Intent::Home => {
            let away = others(config, home).into_iter().next();
            (away.unwrap_or_else(|| home.clone()), vec![home.clone()])
        }
    }
}

fn others(config: &Config, excluded: &Region) -> Vec<Region> {
    config
        .regions
        .iter()
        .filter(|r| *r != excluded)
        .cloned()
        .collect()
}

/// Second phase: the first candidate, in order, that passed its probe. Never a dead one.
pub fn pick(
    state: &ControlState,
    candidates: &[Region],
    probes: &BTreeMap<Region, ProbeResult>,
) -> Decision {
    if let Some(target) = candidates
        .iter()
        .find(|r| probes.get(*r).is_some_and(|p| p.reachable))
    {
        return Decision::Switch {
            from: state.active_region.clone(),
            to: target.clone(),
        };
    }
    let failures: Vec<String> = candidates
        .iter()
        .map(|r| match probes.get(r) {
            Some(p) => format!("{r}: {}", p.error.as_deref().unwrap_or("probe failed")),
            None => format!("{r}: not probed"),
        })
        .collect();
    Decision::Refuse {
        reason: format!(
            "no healthy region to switch to ({}); staying on {}",
            failures.join("; "),
            state.active_region
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Pause;
    use crate::testing::{config, region};

    const NOW: Millis = 1_000_000_000;

    /// Alarms are automatic; every other intent comes from a person.
    fn request(intent: Intent) -> SwitchRequest {
        let trigger = match &intent {
            Intent::AwayFrom(_) => TriggerInfo::Alarm {
                alarm_name: "a".into(),
                source: "cloudwatch".into(),
            },
            _ => TriggerInfo::Manual {
                command: "failover".into(),
                force: false,
            },
        };
        SwitchRequest {
            intent,
            reason: "test".into(),
            trigger,
            dry_run: false,
            force: false,
        }
    }

    fn switched(from: &str, to: &str, at: Millis) -> ControlState {
        ControlState {
            active_region: region(to),
            epoch: 1,
            paused: None,
            transition: Some(crate::testing::transition(from, to, at)),
            failback: None,
            recent_automatic_switches: Vec::new(),
            capacity_snapshot: BTreeMap::new(),
            scaled_up: BTreeMap::new(),
            readiness: None,
        }
    }

    fn probe(r: &str, ok: bool) -> (Region, ProbeResult) {
        (
            region(r),
            ProbeResult {
                region: region(r),
                reachable: ok,
                latency_ms: 1,
                item_found: ok,
                error_kind: None,
                error: (!ok).then(|| "timeout".to_owned()),
            },
        )
    }

    #[test]
    fn plan_table() {
        let cfg = config(); // us-east-1 (home), us-west-2, eu-west-1; cooldown 300 s
        let home = ControlState::initial(region("us-east-1"));
        let mut paused = home.clone();
        paused.paused = Some(Pause {
            reason: "maintenance".into(),
            at: NOW,
            by: "operator".into(),
        });
        let recent = switched("us-east-1", "us-west-2", NOW - 10_000);
        let old = switched("us-east-1", "us-west-2", NOW - 301_000);

        let mut forced = request(Intent::To(Some(region("eu-west-1"))));
        forced.force = true;

        let cases: Vec<(&str, &ControlState, SwitchRequest, Plan)> = vec![
            (
                "alarm on the active home region probes the standbys in order",
                &home,
                request(Intent::AwayFrom(region("us-east-1"))),
                Plan::Probe(vec![region("us-west-2"), region("eu-west-1")]),
            ),
            (
                "alarm on a standby is ignored",
                &home,
                request(Intent::AwayFrom(region("us-west-2"))),
                Plan::Decided(Decision::Ignore {
                    reason: "alarm is about us-west-2, which is not the active region us-east-1"
                        .into(),
                }),
            ),
            (
                "a repeat of the alarm that caused the last switch is already handled",
                &recent,
                request(Intent::AwayFrom(region("us-east-1"))),
                Plan::Decided(Decision::AlreadyActive {
                    reason: "us-east-1 is failing but us-west-2 is already active (epoch 1)".into(),
                }),
            ),
            (
                "manual failover to the active region is already active",
                &home,
                request(Intent::To(Some(region("us-east-1")))),
                Plan::Decided(Decision::AlreadyActive {
                    reason: "us-east-1 is already the active region (epoch 0)".into(),
                }),
            ),
            (
                "manual failover to a named region probes only it",
                &home,
                request(Intent::To(Some(region("eu-west-1")))),
                Plan::Probe(vec![region("eu-west-1")]),
            ),
            (
                "a pause holds back manual commands too",
                &paused,
                request(Intent::To(Some(region("eu-west-1")))),
                Plan::Decided(Decision::Ignore {
                    reason: "switching is paused (maintenance by operator); send {\"command\":\"resume\"}, or repeat a manual command with \"force\": true".into(),
                }),
            ),
            (
                "a forced command passes a pause",
                &paused,
                forced.clone(),
                Plan::Decided(Decision::Switch {
                    from: region("us-east-1"),
                    to: region("eu-west-1"),
                }),
            ),
            (
                "forced manual failover skips the probe, even within cooldown",
                &recent,
                forced,
                Plan::Decided(Decision::Switch {
                    from: region("us-west-2"),
                    to: region("eu-west-1"),
                }),
            ),
            (
                "failback probes home even within cooldown (manual commands ignore cooldown)",
                &recent,
                request(Intent::Home),
                Plan::Probe(vec![region("us-east-1")]),
            ),
            (
                "alarm after the cooldown probes again",
                &old,
                request(Intent::AwayFrom(region("us-west-2"))),
                Plan::Probe(vec![region("us-east-1"), region("eu-west-1")]),
            ),
        ];
        for (name, state, req, expected) in cases {
            assert_eq!(plan(state, &req, NOW, &cfg), expected, "{name}");
        }
    }

    #[test]
    fn paused_and_cooldown_ignore_automatic_switches_with_the_reason() {
        let cfg = config();
        let mut paused = ControlState::initial(region("us-east-1"));
        paused.paused = Some(Pause {
            reason: "maintenance".into(),
            at: NOW,
            by: "operator".into(),
        });
        let Plan::Decided(Decision::Ignore { reason }) = plan(
            &paused,
            &request(Intent::AwayFrom(region("us-east-1"))),
            NOW,
            &cfg,
        ) else {
            panic!("paused must ignore");
        };
        assert!(
            reason.contains("paused (maintenance by operator)"),
            "{reason}"
        );

        let recent = switched("us-east-1", "us-west-2", NOW - 10_000);
        let Plan::Decided(Decision::Ignore { reason }) = plan(
            &recent,
            &request(Intent::AwayFrom(region("us-west-2"))),
            NOW,
            &cfg,
        ) else {
            panic!("cooldown must ignore");
        };
        assert!(
            reason.contains("within cooldown: last switch 10s ago"),
            "{reason}"
        );
    }

    #[test]
    fn an_automatic_failback_obeys_pause_and_cooldown() {
        let cfg = config();
        let mut req = request(Intent::Home);
        req.trigger = TriggerInfo::Verifier {
            check: "failback".into(),
        };
        let recent = switched("us-east-1", "us-west-2", NOW - 10_000);
        assert!(matches!(
            plan(&recent, &req, NOW, &cfg),
            Plan::Decided(Decision::Ignore { .. })
        ));
        let old = switched("us-east-1", "us-west-2", NOW - 400_000);
        assert_eq!(
            plan(&old, &req, NOW, &cfg),
            Plan::Probe(vec![region("us-east-1")])
        );
        let mut paused = old.clone();
        paused.paused = Some(Pause {
            reason: "flapping".into(),
            at: NOW,
            by: "flap-guard".into(),
        });
        assert!(matches!(
            plan(&paused, &req, NOW, &cfg),
            Plan::Decided(Decision::Ignore { .. })
        ));
    }

    #[test]
    fn pick_takes_the_first_healthy_candidate_in_order() {
        let state = ControlState::initial(region("us-east-1"));
        let candidates = [region("us-west-2"), region("eu-west-1")];
        let probes = BTreeMap::from([probe("us-west-2", false), probe("eu-west-1", true)]);
        assert_eq!(
            pick(&state, &candidates, &probes),
            Decision::Switch {
                from: region("us-east-1"),
                to: region("eu-west-1")
            }
        );
        let probes = BTreeMap::from([probe("us-west-2", true), probe("eu-west-1", true)]);
        assert_eq!(
            pick(&state, &candidates, &probes),
            Decision::Switch {
                from: region("us-east-1"),
                to: region("us-west-2")
            }
        );
    }

    #[test]
    fn the_likely_probes_match_the_plan_made_at_home() {
        let cfg = config();
        let home = ControlState::initial(region("us-east-1"));
        for intent in [
            Intent::AwayFrom(region("us-east-1")),
            Intent::To(None),
            Intent::To(Some(region("eu-west-1"))),
        ] {
            let (leaving, likely) = likely_probes(&intent, &cfg);
            assert_eq!(leaving, region("us-east-1"), "{intent:?}");
            assert_eq!(
                plan(&home, &request(intent.clone()), NOW, &cfg),
                Plan::Probe(likely),
                "{intent:?}"
            );
        }
        let away = switched("us-east-1", "us-west-2", NOW - 400_000);
        let (leaving, likely) = likely_probes(&Intent::Home, &cfg);
        assert_eq!(leaving, region("us-west-2"));
        assert_eq!(
            plan(&away, &request(Intent::Home), NOW, &cfg),
            Plan::Probe(likely)
        );
    }

    #[test]
    fn pick_refuses_when_every_candidate_is_dead() {
        let state = ControlState::initial(region("us-east-1"));
        let candidates = [region("us-west-2"), region("eu-west-1")];
        let probes = BTreeMap::from([probe("us-west-2", false), probe("eu-west-1", false)]);
        let Decision::Refuse { reason } = pick(&state, &candidates, &probes) else {
            panic!("must refuse");
        };
        assert!(reason.contains("us-west-2: timeout"), "{reason}");
        assert!(reason.contains("staying on us-east-1"), "{reason}");
    }
}
