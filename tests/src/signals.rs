//! The drill's fast traffic signals, modelled beside the metric one ([`crate::dns`]) on the
//! same outage, because moto runs no Route 53 health check:
//!
//! - **gate**: Route 53 HTTPS health checks. Each of [`CHECKERS`] checkers polls every gate
//!   about every region every [`GATE_INTERVAL_SECONDS`] (staggered), through the real
//!   health-probe bootstrap and the Lambda Runtime API; a gate whose region does not
//!   answer is not reached. With a failure threshold of 1 a checker's status is its last
//!   result; a check is healthy when more than 18 % of its checkers say so, as Route 53
//!   documents; a region is healthy while any gate's check about it is (the template's
//!   calculated health check).
//! - **routing-control**: `RECOVERY_CONTROL` health checks that follow the rig's ARC
//!   cluster (`rig/arc_cluster.py`), where the functions set the routing controls.
//!
//! Both add an assumed delay before DNS answers change, and then the same weighted
//! records and resolvers as the metric signal. Times are milliseconds since the epoch;
//! modelled durations are divided by the drill's time scale.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::LocalFunction;
use crate::arc::ArcCluster;

/// The template's `RequestInterval` for the gates' HTTPS health checks (the fast one).
pub const GATE_INTERVAL_SECONDS: f64 = 10.0;
/// Checkers per health check. Route 53 checks from 8 regions by default, several
/// checkers each; 6 model the smallest choice (3 regions) and keep the local runtime's
/// load at a few invocations a second.
pub const CHECKERS: usize = 6;
/// Route 53: a health check is healthy when more than 18 % of its checkers report healthy.
pub const HEALTHY_SHARE: f64 = 0.18;
/// Assumed: how long after the checkers' results change Route 53's DNS answers do (AWS
/// documents no figure; checkers report to Route 53, which aggregates).
pub const GATE_STATUS_DELAY_SECONDS: f64 = 5.0;
/// Assumed: how long after a routing control changes its health check answers do (AWS
/// says routing control health checks reflect a change "within seconds").
pub const ROUTING_CONTROL_DELAY_SECONDS: f64 = 5.0;
/// Route 53 waits 4 s to connect and 2 s for the answer; the local gate answers in
/// milliseconds, so this bounds only a stuck invocation.
const GATE_TIMEOUT: Duration = Duration::from_secs(2);

/// A region's health as DNS sees it over time: (from, healthy), oldest first.
#[derive(Clone, Debug)]
pub struct Status {
    history: Vec<(u64, bool)>,
}

impl Status {
    pub fn new(healthy: bool) -> Status {
        Status {
            history: vec![(0, healthy)],
        }
    }

    /// The status becomes `healthy` at `at_ms` (changes come in time order).
    pub fn set(&mut self, at_ms: u64, healthy: bool) -> bool {
        if self.history.last().is_some_and(|(_, h)| *h == healthy) {
            return false;
        }
        self.history.push((at_ms, healthy));
        true
    }

    pub fn healthy_at(&self, at_ms: u64) -> bool {
        self.history
            .iter()
            .rev()
            .find(|(from, _)| *from <= at_ms)
            .is_none_or(|(_, healthy)| *healthy)
    }

    /// Whether it was healthy at every moment of [from, to].
    pub fn healthy_throughout(&self, from_ms: u64, to_ms: u64) -> bool {
        self.healthy_at(from_ms)
            && self
                .history
                .iter()
                .filter(|(at, _)| *at > from_ms && *at <= to_ms)
                .all(|(_, healthy)| *healthy)
    }

    /// The changes after `after_ms`: (at, healthy).
    pub fn changes_after(&self, after_ms: u64) -> Vec<(u64, bool)> {
        self.history
            .iter()
            .filter(|(at, _)| *at > after_ms)
            .copied()
            .collect()
    }
}

/// One signal's view of DNS: each region's health and the weighted records over them.
#[derive(Clone, Debug)]
pub struct SignalDns {
    pub regions: Vec<String>,
    pub status: BTreeMap<String, Status>,
    pub ttl_ms: u64,
}

impl SignalDns {
    /// A settled stack: `active` healthy, every other region unhealthy.
    pub fn settled(regions: &[&str], active: &str, ttl_ms: u64) -> SignalDns {
        SignalDns {
            regions: regions.iter().map(|r| (*r).to_owned()).collect(),
            status: regions
                .iter()
                .map(|r| ((*r).to_owned(), Status::new(*r == active)))
                .collect(),
            ttl_ms,
        }
    }

    pub fn healthy(&self, region: &str, at_ms: u64) -> bool {
        self.status.get(region).is_some_and(|s| s.healthy_at(at_ms))
    }

    /// Route 53's answer at `at_ms` for a resolver whose random draw is `pick`.
    pub fn answer(&self, at_ms: u64, pick: f64) -> Option<String> {
        crate::dns::weighted_answer(&self.regions, |r| self.healthy(r, at_ms), pick)
            .map(str::to_owned)
    }
}

/// A Route 53 HTTPS health check with a failure threshold of 1: each checker's last
/// result; healthy when more than [`HEALTHY_SHARE`] of the checkers say so.
#[derive(Clone, Debug)]
pub struct HttpsCheck {
    checkers: Vec<bool>,
}

impl HttpsCheck {
    pub fn new(checkers: usize, healthy: bool) -> HttpsCheck {
        HttpsCheck {
            checkers: vec![healthy; checkers.max(1)],
        }
    }

    pub fn record(&mut self, checker: usize, ok: bool) {
        let n = self.checkers.len();
        self.checkers[checker % n] = ok;
    }

    pub fn healthy(&self) -> bool {
        let up = self.checkers.iter().filter(|ok| **ok).count();
        up as f64 > HEALTHY_SHARE * self.checkers.len() as f64
    }
}

/// A serving gate: a health probe bootstrap answering function URL requests, in a region.
pub struct Gate {
    pub region: String,
    pub function: Arc<LocalFunction>,
    pub token: String,
}

/// The function URL request a Route 53 checker sends to ask a gate about `region`
/// (`events/gate-request.json` with the path set).
pub fn gate_request(token: &str, region: &str) -> Value {
    let path = format!("/{token}/serving/{region}");
    let mut request = crate::fixture("gate-request.json");
    request["rawPath"] = json!(path);
    request["requestContext"]["http"]["path"] = json!(path);
    request
}

/// Whether a checker counts the answer healthy: a 2xx whose body holds the search string.
pub fn healthy_answer(answer: &Value, region: &str) -> bool {
    let status = answer["statusCode"].as_u64().unwrap_or(0);
    (200..300).contains(&status)
        && answer["body"]
            .as_str()
            .is_some_and(|b| b.contains(&format!("serving {region}")))
}

/// Runs the checkers until `stop`: each tick, the next checker asks every gate about
/// every region; the regions' calculated status goes into `dns` after the assumed delay.
/// `reachable(region)`: whether that region's endpoints answer now.
pub async fn check_gates(
    gates: Vec<Gate>,
    dns: Arc<Mutex<SignalDns>>,
    reachable: impl Fn(&str) -> bool + Send + Sync + 'static,
    time_scale: f64,
    stop: Arc<AtomicBool>,
) {
    let regions = dns.lock().expect("dns").regions.clone();
    let active: BTreeMap<String, bool> = {
        let dns = dns.lock().expect("dns");
        regions
            .iter()
            .map(|r| (r.clone(), dns.healthy(r, crate::now_ms())))
            .collect()
    };
    let mut checks: BTreeMap<(usize, String), HttpsCheck> = (0..gates.len())
        .flat_map(|g| regions.iter().map(move |r| (g, r.clone())))
        .map(|(g, r)| {
            let healthy = active[&r];
            ((g, r), HttpsCheck::new(CHECKERS, healthy))
        })
        .collect();
    let tick = Duration::from_secs_f64(GATE_INTERVAL_SECONDS / time_scale / CHECKERS as f64);
    let delay_ms = crate::alarm::scaled_ms(GATE_STATUS_DELAY_SECONDS, time_scale);
    let mut checker = 0usize;
    let mut next = tokio::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let asks = checks.keys().cloned().collect::<Vec<_>>();
        let answers = futures::future::join_all(asks.into_iter().map(|(g, region)| {
            let gate = &gates[g];
            let up = reachable(&gate.region);
            async move {
                let ok = up
                    && match tokio::time::timeout(
                        GATE_TIMEOUT,
                        gate.function.invoke(&gate_request(&gate.token, &region)),
                    )
                    .await
                    {
                        Ok(crate::Invocation::Ok(answer)) => healthy_answer(&answer, &region),
                        _ => false,
                    };
                ((g, region), ok)
            }
        }))
        .await;
        let at = crate::now_ms();
        for (key, ok) in answers {
            if let Some(check) = checks.get_mut(&key) {
                check.record(checker, ok);
            }
        }
        {
            let mut dns = dns.lock().expect("dns");
            for region in &regions {
                let serving = (0..gates.len()).any(|g| checks[&(g, region.clone())].healthy());
                if let Some(status) = dns.status.get_mut(region) {
                    status.set(at + delay_ms, serving);
                }
            }
        }
        checker += 1;
        next += tick;
        tokio::time::sleep_until(next).await;
    }
}

/// Follows the rig's ARC cluster until `stop`: each routing control's changes go into
/// `dns` for its region after the assumed delay. `arn_of(region)` names its control.
pub async fn follow_routing_controls(
    cluster: Arc<ArcCluster>,
    dns: Arc<Mutex<SignalDns>>,
    time_scale: f64,
    stop: Arc<AtomicBool>,
) {
    let delay_ms = crate::alarm::scaled_ms(ROUTING_CONTROL_DELAY_SECONDS, time_scale);
    let regions = dns.lock().expect("dns").regions.clone();
    let mut seen = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let state = {
            let cluster = cluster.clone();
            tokio::task::spawn_blocking(move || cluster.state())
                .await
                .ok()
                .flatten()
        };
        if let Some(changes) = state.as_ref().and_then(|s| s["changes"].as_array()) {
            let mut dns = dns.lock().expect("dns");
            for change in changes.iter().skip(seen) {
                let at_ms = (change["at"].as_f64().unwrap_or(0.0) * 1000.0) as u64;
                let on = change["state"] == "On";
                if let Some(region) = regions
                    .iter()
                    .find(|r| change["arn"] == crate::arc::arn_for(r))
                    && let Some(status) = dns.status.get_mut(region)
                {
                    status.set(at_ms + delay_ms, on);
                }
            }
            seen = changes.len();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_is_healthy_while_more_than_18_percent_of_its_checkers_say_so() {
        let mut check = HttpsCheck::new(6, true);
        assert!(check.healthy());
        for checker in 0..5 {
            check.record(checker, false);
        }
        // 1 of 6 (16.7 %) is not more than 18 %.
        assert!(!check.healthy());
        check.record(0, true);
        // 2 of 6 (33 %) is.
        assert!(check.healthy());
        // Failure threshold 1: one failed poll turns a checker.
        check.record(0, false);
        assert!(!check.healthy());
    }

    #[test]
    fn a_checker_counts_only_a_2xx_that_names_the_region() {
        let ok = json!({"statusCode": 200, "body": "serving us-east-1\n"});
        assert!(healthy_answer(&ok, "us-east-1"));
        assert!(!healthy_answer(&ok, "us-west-2"));
        let not =
            json!({"statusCode": 503, "body": "not serving us-east-1: us-west-2 is active\n"});
        assert!(!healthy_answer(&not, "us-east-1"));
        assert!(!healthy_answer(&json!({}), "us-east-1"));
    }

    #[test]
    fn status_keeps_its_history_and_answers_for_any_time() {
        let mut status = Status::new(true);
        assert!(!status.set(10, true), "no change");
        assert!(status.set(100, false));
        assert!(status.healthy_at(99));
        assert!(!status.healthy_at(100));
        assert!(status.healthy_throughout(0, 99));
        assert!(!status.healthy_throughout(0, 100));
        assert_eq!(status.changes_after(50), vec![(100, false)]);
        let mut dns = SignalDns::settled(&["a", "b"], "a", 1000);
        assert_eq!(dns.answer(5, 0.99).as_deref(), Some("a"));
        dns.status.get_mut("a").map(|s| s.set(10, false));
        // None healthy: every record answers.
        assert_eq!(dns.answer(20, 0.99).as_deref(), Some("b"));
    }
}
