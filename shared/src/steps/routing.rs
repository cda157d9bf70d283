//! `TRAFFIC_SIGNAL=routing-control`: Amazon ARC routing controls follow the decision. At
//! every switch and on every reconcile each region's routing control is set: on for the
//! active region first, then off for the others, one `UpdateRoutingControlState` each (the
//! template grants that action and `GetRoutingControlState`, on these controls only), so
//! no moment has them all off. Route 53's `RECOVERY_CONTROL` health checks read them in its
//! data plane: nothing calls Route 53's API.
//!
//! The cluster answers on any of its regional endpoints, and AWS advises trying them in
//! turn. Each endpoint gets one attempt bounded by the probe timeout (the adapter's
//! clients), so a dead endpoint costs one probe timeout, and a switch runs this beside its
//! other steps rather than before them.

use std::collections::BTreeMap;

use serde::Serialize;
use tracing::{info, warn};

use crate::config::{Config, RoutingControlConfig};
use crate::error::AwsError;
use crate::ports::{Deps, RoutingControls};
use crate::region::Region;

/// What a switch or a reconcile did to the routing controls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutingReport {
    /// Each region's routing control as set (or, when nothing had to change, as found):
    /// `On` or `Off`.
    pub states: BTreeMap<Region, &'static str>,
    /// The cluster endpoint (its region) that took the call; none when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Region>,
    /// Endpoints tried first that did not answer, each with its error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unanswered: Vec<String>,
    /// Reconcile: a routing control was found wrong (or could not be read) and set.
    pub repaired: bool,
    /// Why the controls could not be set: every endpoint failed. The verifier tries again
    /// each minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn label(on: bool) -> &'static str {
    if on { "On" } else { "Off" }
}

/// The state each routing control should be in with `active` the active region, the
/// active region's first: set in this order, some control is always on.
pub fn desired(controls: &RoutingControlConfig, active: &Region) -> Vec<(Region, String, bool)> {
    let mut wanted: Vec<(Region, String, bool)> = controls
        .arns
        .iter()
        .map(|(region, arn)| (region.clone(), arn.clone(), region == active))
        .collect();
    wanted.sort_by_key(|(_, _, on)| !on);
    wanted
}

/// Calls `call` on each endpoint in turn, from the one at `start` (wrapping), until one
/// answers: its answer and the endpoint's index, with the errors of those before it; or
/// every error.
async fn first_answer<T, F, Fut>(
    controls: &RoutingControlConfig,
    start: usize,
    mut call: F,
) -> (Result<(T, usize), ()>, Vec<AwsError>)
where
    F: FnMut(Region) -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let mut errors = Vec::new();
    let n = controls.endpoints.len();
    for index in (0..n).map(|i| (start + i) % n) {
        let endpoint = &controls.endpoints[index];
        match call(endpoint.region.clone()).await {
            Ok(value) => return (Ok((value, index)), errors),
            Err(e) => {
                warn!(endpoint = %endpoint.region, error = %e, "routing control endpoint did not answer; trying the next");
                errors.push(e);
            }
        }
    }
    (Err(()), errors)
}

/// Sets every routing control for `active`; `None` unless `TRAFFIC_SIGNAL=
/// routing-control`.
pub async fn set_routing_controls<D: Deps>(
    config: &Config,
    ports: &D,
    active: &Region,
) -> Option<RoutingReport> {
    let controls = config.routing_controls.as_ref()?;
    Some(apply_routing(ports, controls, active, false).await)
}

/// Reads every routing control and sets them all if any is not as `active` needs (or
/// cannot be read); `None` unless `TRAFFIC_SIGNAL=routing-control`.
pub async fn reconcile_routing_controls<D: Deps>(
    config: &Config,
    ports: &D,
    active: &Region,
) -> Option<RoutingReport> {
    let controls = config.routing_controls.as_ref()?;
    let mut found = BTreeMap::new();
    let mut unanswered = Vec::new();
    let mut wrong = false;
    // Each read starts at the endpoint that answered the last: one dead endpoint
    // costs one probe timeout per run, not one per routing control.
    let mut start = 0;
    for (region, arn, on) in desired(controls, active) {
        let (routing, arn) = (ports.routing(), &arn);
        let (read, errors) = first_answer(controls, start, |endpoint| async move {
            routing.get(&endpoint, arn).await
        })
        .await;
        unanswered.extend(errors.iter().map(ToString::to_string));
        match read {
            Ok((state, answered)) => {
                start = answered;
                wrong |= state != on;
                found.insert(region, label(state));
            }
            // No endpoint answered a read: a write would wait on the same dead
            // endpoints again. Left for the next run.
            Err(()) => {
                let error = format!(
                    "no cluster endpoint answered GetRoutingControlState ({} tried); the verifier tries again each minute",
                    controls.endpoints.len()
                );
                warn!(active = %active, errors = ?unanswered, "{error}");
                return Some(RoutingReport {
                    states: found,
                    endpoint: None,
                    unanswered,
                    repaired: false,
                    error: Some(error),
                });
            }
        }
    }
    if !wrong {
        return Some(RoutingReport {
            states: found,
            endpoint: None,
            unanswered,
            repaired: false,
            error: None,
        });
    }
    info!(found = ?found, active = %active, "routing controls out of line with the decision; setting them");
    Some(apply_routing(ports, controls, active, true).await)
}

async fn apply_routing<D: Deps>(
    ports: &D,
    controls: &RoutingControlConfig,
    active: &Region,
    repair: bool,
) -> RoutingReport {
    let wanted = desired(controls, active);
    let states: Vec<(String, bool)> = wanted
        .iter()
        .map(|(_, arn, on)| (arn.clone(), *on))
        .collect();
    let routing = ports.routing();
    let states_ref = &states;
    let (result, errors) = first_answer(controls, 0, |endpoint| async move {
        routing.set(&endpoint, states_ref).await
    })
    .await;
    let unanswered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let set: BTreeMap<Region, &'static str> = wanted
        .iter()
        .map(|(region, _, on)| (region.clone(), label(*on)))
        .collect();
    match result {
        Ok(((), index)) => {
            let endpoint = controls.endpoints[index].region.clone();
            info!(active = %active, endpoint = %endpoint, tried = errors.len() + 1, "routing controls set");
            RoutingReport {
                states: set,
                endpoint: Some(endpoint),
                unanswered,
                repaired: repair,
                error: None,
            }
        }
        Err(()) => {
            let error = format!(
                "no cluster endpoint took the routing control updates ({} tried); the verifier tries again each minute",
                controls.endpoints.len()
            );
            warn!(active = %active, errors = ?unanswered, "{error}");
            RoutingReport {
                states: BTreeMap::new(),
                endpoint: None,
                unanswered,
                repaired: false,
                error: Some(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::controller::{Controller, Outcome};
    use crate::testing::{FakePorts, FakeWorld, alarm_on, config_with, region};

    const USE1: &str =
        "arn:aws:route53-recovery-control::123456789012:controlpanel/p1/routingcontrol/use1";
    const USW2: &str =
        "arn:aws:route53-recovery-control::123456789012:controlpanel/p1/routingcontrol/usw2";
    const EUW1: &str =
        "arn:aws:route53-recovery-control::123456789012:controlpanel/p1/routingcontrol/euw1";
    const ENDPOINTS: &str = "us-east-1=https://a.route53-recovery-cluster.us-east-1.amazonaws.com/v1,ap-southeast-2=https://b.route53-recovery-cluster.ap-southeast-2.amazonaws.com/v1,eu-west-1=https://c.route53-recovery-cluster.eu-west-1.amazonaws.com/v1,us-west-2=https://d.route53-recovery-cluster.us-west-2.amazonaws.com/v1,ap-northeast-1=https://e.route53-recovery-cluster.ap-northeast-1.amazonaws.com/v1";

    fn arns() -> String {
        format!("us-east-1={USE1},us-west-2={USW2},eu-west-1={EUW1}")
    }

    /// A world whose cluster has the three routing controls, home's on.
    fn controller(world: &FakeWorld) -> Controller<FakePorts> {
        world.routing.seed(&[USW2, EUW1], false);
        world.routing.seed(&[USE1], true);
        let arns = arns();
        let config = config_with(&[
            ("COOLDOWN_SECONDS", "0"),
            ("TRAFFIC_SIGNAL", "routing-control"),
            ("ROUTING_CONTROL_ENDPOINTS", ENDPOINTS),
            ("ROUTING_CONTROL_ARNS", &arns),
        ]);
        Controller::new(Arc::new(config), world.ports())
    }

    fn endpoint_down(world: &FakeWorld, endpoint: &str) {
        world.routing.down.lock().unwrap().insert(region(endpoint));
    }

    fn every_endpoint_down(world: &FakeWorld) {
        let config = config_with(&[
            ("TRAFFIC_SIGNAL", "routing-control"),
            ("ROUTING_CONTROL_ENDPOINTS", ENDPOINTS),
            ("ROUTING_CONTROL_ARNS", &arns()),
        ]);
        let mut down = world.routing.down.lock().unwrap();
        for endpoint in config.routing_controls.expect("configured").endpoints {
            down.insert(endpoint.region);
        }
    }

    #[tokio::test]
    async fn a_switch_sets_every_routing_control_through_the_first_endpoint_that_answers() {
        // Given the cluster's first endpoint down (a timeout)
        let world = FakeWorld::new();
        let c = controller(&world);
        endpoint_down(&world, "us-east-1");
        // When home's alarm fires
        let out = c.handle(alarm_on("us-east-1")).await.unwrap();
        assert_eq!(out.outcome, Outcome::Switched, "{out:?}");
        // Then the standby's control is on and the others off, set through the second
        // endpoint after one try at the dead one
        assert_eq!(world.routing.state(USW2), Some(true));
        assert_eq!(world.routing.state(USE1), Some(false));
        assert_eq!(world.routing.state(EUW1), Some(false));
        let updates = world.routing.updates.lock().unwrap().clone();
        assert_eq!(updates.len(), 1, "{updates:?}");
        assert_eq!(updates[0].0, region("ap-southeast-2"));
        let report = out.routing_controls.clone().expect("reported");
        assert_eq!(report.endpoint, Some(region("ap-southeast-2")));
        // Told in the Region Switch event, and `status` names the signal.
        let event = world
            .bus
            .put
            .lock()
            .unwrap()
            .iter()
            .find(|n| n.detail_type == "Region Switch")
            .cloned()
            .expect("a Region Switch event");
        assert_eq!(
            event.detail["routing_controls"]["endpoint"], "ap-southeast-2",
            "{}",
            event.detail
        );
        let status = serde_json::to_value(c.status().await.unwrap()).unwrap();
        assert_eq!(
            status["status"]["traffic_signal"], "routing-control",
            "{status}"
        );
        assert_eq!(report.unanswered.len(), 1, "{report:?}");
        assert_eq!(report.states[&region("us-west-2")], "On");
        assert_eq!(report.states[&region("us-east-1")], "Off");
        assert!(report.error.is_none());
    }

    #[tokio::test]
    async fn a_switch_that_reaches_no_endpoint_still_switches_and_says_so() {
        let world = FakeWorld::new();
        let c = controller(&world);
        every_endpoint_down(&world);
        let out = c.handle(alarm_on("us-east-1")).await.unwrap();
        // The decision and the other steps do not wait on the cluster.
        assert_eq!(out.outcome, Outcome::Switched, "{out:?}");
        assert_eq!(out.active_region, region("us-west-2"));
        let report = out.routing_controls.expect("reported");
        assert!(
            report
                .error
                .as_deref()
                .is_some_and(|e| e.contains("5 tried")),
            "{report:?}"
        );
        assert_eq!(report.unanswered.len(), 5);
        assert_eq!(world.routing.state(USE1), Some(true), "nothing was set");
    }

    #[tokio::test]
    async fn reconcile_repairs_a_routing_control_left_wrong() {
        // Given a switch to the standby whose routing controls a person then changed
        let world = FakeWorld::new();
        let c = controller(&world);
        c.handle(alarm_on("us-east-1")).await.unwrap();
        world.routing.seed(&[USE1], true);
        world.routing.seed(&[USW2], false);
        // When the verifier reconciles
        let report = c.reconcile().await.unwrap();
        // Then every control is back as the decision needs, and the report says so
        assert_eq!(world.routing.state(USW2), Some(true));
        assert_eq!(world.routing.state(USE1), Some(false));
        let routing = report.routing_controls.clone().expect("reported");
        assert!(routing.repaired, "{routing:?}");
        assert!(
            report
                .fixed
                .iter()
                .any(|f| f.contains("routing controls set for us-west-2")),
            "{report:?}"
        );
        // And a second reconcile finds nothing to do: it only reads
        let before = world.routing.updates.lock().unwrap().len();
        let again = c.reconcile().await.unwrap();
        assert!(!again.routing_controls.unwrap().repaired);
        assert_eq!(world.routing.updates.lock().unwrap().len(), before);
    }

    #[tokio::test]
    async fn a_dead_endpoint_costs_reconcile_one_try_not_one_per_control() {
        let world = FakeWorld::new();
        let c = controller(&world);
        endpoint_down(&world, "us-east-1");
        let report = c.reconcile().await.unwrap();
        let routing = report.routing_controls.expect("reported");
        assert!(!routing.repaired, "{routing:?}");
        assert_eq!(routing.states.len(), 3);
        let tried_dead = world
            .routing
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(endpoint, _)| *endpoint == region("us-east-1"))
            .count();
        assert_eq!(tried_dead, 1, "three reads, one try at the dead endpoint");
    }

    #[tokio::test]
    async fn reconcile_with_every_endpoint_down_reports_a_failure_and_changes_nothing() {
        let world = FakeWorld::new();
        let c = controller(&world);
        every_endpoint_down(&world);
        let report = c.reconcile().await.unwrap();
        assert!(
            report
                .failed
                .iter()
                .any(|f| f.starts_with("routing controls:")),
            "{report:?}"
        );
        assert!(world.routing.updates.lock().unwrap().is_empty());
        // Each endpoint costs one try: no write waits on them again after the reads.
        let calls = world.routing.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 5, "{calls:?}");
        assert!(calls.iter().all(|(_, op)| *op == "GetRoutingControlState"));
    }

    #[tokio::test]
    async fn without_routing_control_no_cluster_is_called() {
        let world = FakeWorld::new();
        let c = Controller::new(
            Arc::new(config_with(&[("COOLDOWN_SECONDS", "0")])),
            world.ports(),
        );
        let out = c.handle(alarm_on("us-east-1")).await.unwrap();
        assert_eq!(out.outcome, Outcome::Switched);
        assert!(out.routing_controls.is_none());
        c.reconcile().await.unwrap();
        assert!(world.routing.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn routing_control_configuration_names_what_is_missing_or_malformed() {
        let arns = arns();
        let missing_one = format!("us-east-1={USE1},us-west-2={USW2}");
        type Vars<'a> = Vec<(&'a str, &'a str)>;
        let cases: Vec<(Vars, &str, &str)> = vec![
            (
                vec![("ROUTING_CONTROL_ARNS", &arns)],
                "ROUTING_CONTROL_ENDPOINTS",
                "is not set",
            ),
            (
                vec![
                    ("ROUTING_CONTROL_ENDPOINTS", "us-east-1=ftp://x"),
                    ("ROUTING_CONTROL_ARNS", &arns),
                ],
                "ROUTING_CONTROL_ENDPOINTS",
                "not an https URL",
            ),
            (
                vec![
                    ("ROUTING_CONTROL_ENDPOINTS", "https://x"),
                    ("ROUTING_CONTROL_ARNS", &arns),
                ],
                "ROUTING_CONTROL_ENDPOINTS",
                "not region=",
            ),
            (
                vec![("ROUTING_CONTROL_ENDPOINTS", ENDPOINTS)],
                "ROUTING_CONTROL_ARNS",
                "no routing control for us-east-1, us-west-2, eu-west-1",
            ),
            (
                vec![
                    ("ROUTING_CONTROL_ENDPOINTS", ENDPOINTS),
                    ("ROUTING_CONTROL_ARNS", &missing_one),
                ],
                "ROUTING_CONTROL_ARNS",
                "no routing control for eu-west-1",
            ),
            (
                vec![
                    ("ROUTING_CONTROL_ENDPOINTS", ENDPOINTS),
                    ("ROUTING_CONTROL_ARNS", "us-east-1=arn:aws:s3:::bucket"),
                ],
                "ROUTING_CONTROL_ARNS",
                "not a routing control ARN",
            ),
        ];
        for (vars, variable, problem) in cases {
            let mut vars = vars.clone();
            vars.push(("TRAFFIC_SIGNAL", "routing-control"));
            let err = crate::Config::from_lookup(|name| {
                vars.iter()
                    .chain(crate::testing::TEST_ENV.iter())
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            })
            .expect_err("refused");
            let text = err.to_string();
            assert!(text.contains(variable) && text.contains(problem), "{text}");
        }
        let bad = crate::Config::from_lookup(|name| match name {
            "TRAFFIC_SIGNAL" => Some("dns".into()),
            _ => crate::testing::TEST_ENV
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string()),
        });
        assert!(bad.unwrap_err().to_string().contains("TRAFFIC_SIGNAL"));
    }
}
