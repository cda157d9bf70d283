//! One sampling round of the health probe: every region concurrently, each under one
//! absolute deadline, so a region that hangs costs one timeout and never delays the others.
//!
//! Per region: the same canary read the failover pre-flight uses (`HealthProbe::check`),
//! plus a write round trip (this region's heartbeat written, then read back strongly
//! consistent). Then, for every other region, that heartbeat is read there eventually
//! consistent: the age of the newest heartbeat seen is the replication lag from this
//! region to that one, measured on the table the application itself uses. Heartbeats are
//! written once per round, so the figure is at least the true lag and at most the lag plus
//! one probe interval; when replication stops it grows by one second every second.
//!
//! Throttling counts as healthy: a region that tells us to slow down is up. Timeouts,
//! refused connections, access denied and missing tables count as unhealthy.

use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;
use tokio::time::{Instant, timeout_at};

use crate::error::{AwsError, ErrorKind};
use crate::ports::{Clock, HealthProbe, Heartbeats};
use crate::region::Region;
use crate::state::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Timeout,
    ConnectionRefused,
    Throttled,
    AccessDenied,
    NotFound,
    /// Anything else, and any class a newer version names (samples are stored).
    #[serde(other)]
    Other,
}

impl From<ErrorKind> for ErrorClass {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Timeout => ErrorClass::Timeout,
            ErrorKind::Connection => ErrorClass::ConnectionRefused,
            ErrorKind::Throttled => ErrorClass::Throttled,
            ErrorKind::AccessDenied => ErrorClass::AccessDenied,
            ErrorKind::NotFound => ErrorClass::NotFound,
            _ => ErrorClass::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionHealth {
    pub region: Region,
    pub healthy: bool,
    pub canary_found: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_latency_ms: Option<u64>,
    /// Write plus strongly consistent read-back of the heartbeat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicationLag {
    pub from: Region,
    pub to: Region,
    /// Age of the newest heartbeat from `from` visible in `to`; `None` when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    pub at: Millis,
    pub regions: Vec<RegionHealth>,
    pub replication: Vec<ReplicationLag>,
}

/// A call under an absolute deadline; past it, the deadline error naming the call and
/// region.
pub(crate) async fn within<T>(
    deadline: Instant,
    service: &'static str,
    operation: &'static str,
    region: &Region,
    call: impl Future<Output = Result<T, AwsError>>,
) -> Result<T, AwsError> {
    timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| Err(AwsError::deadline(service, operation, region)))
}

fn failure(e: &AwsError) -> (Option<ErrorClass>, Option<String>) {
    (Some(e.kind.into()), Some(e.to_string()))
}

/// Probes every region; returns no later than `budget` after it starts (plus scheduling).
pub async fn probe_round<P, K>(regions: &[Region], probe: &P, clock: &K, budget: Duration) -> Round
where
    P: HealthProbe + Heartbeats,
    K: Clock,
{
    let at = clock.now_millis();
    let deadline = Instant::now() + budget;
    let per_region = join_all(regions.iter().map(|region| async move {
        let canary = async {
            timeout_at(deadline, probe.check(region))
                .await
                .unwrap_or_else(|_| crate::ports::ProbeResult::timed_out(region, budget))
        };
        let round_trip = async {
            let started = Instant::now();
            let stamp = clock.now_millis();
            within(
                deadline,
                "dynamodb",
                "PutItem",
                region,
                probe.write(region, stamp),
            )
            .await?;
            let seen = within(
                deadline,
                "dynamodb",
                "GetItem",
                region,
                probe.read(region, region, true),
            )
            .await?;
            // Another probe may have written the same heartbeat in this round (an
            // overlapping run, a person's probe, every region's stack in mrsc mode): a
            // stamp from within the round proves the write and the read as well as ours.
            // One from an earlier round (at least an interval old) does not.
            let window = budget.as_millis() as Millis;
            if seen.is_none_or(|s| s.abs_diff(stamp) > window) {
                return Err(AwsError {
                    resource: None,
                    service: "dynamodb",
                    operation: "GetItem",
                    region: region.clone(),
                    kind: ErrorKind::Other,
                    code: None,
                    message: format!("read back heartbeat {seen:?}, wrote {stamp}"),
                });
            }
            Ok(started.elapsed().as_millis() as u64)
        };
        let (canary, write) = futures::join!(canary, round_trip);
        // Only after our heartbeat is written does its age elsewhere measure the lag.
        let lags = join_all(regions.iter().filter(|other| *other != region).map(
            |other| async move {
                let seen = within(
                    deadline,
                    "dynamodb",
                    "GetItem",
                    other,
                    probe.read(other, region, false),
                )
                .await;
                let now = clock.now_millis();
                match seen {
                    Ok(Some(stamp)) => ReplicationLag {
                        from: region.clone(),
                        to: other.clone(),
                        lag_seconds: Some(now.saturating_sub(stamp) as f64 / 1000.0),
                        error_class: None,
                        error: None,
                    },
                    Ok(None) => ReplicationLag {
                        from: region.clone(),
                        to: other.clone(),
                        lag_seconds: None,
                        error_class: Some(ErrorClass::NotFound),
                        error: Some(format!(
                            "no heartbeat from {region} has reached {other} yet"
                        )),
                    },
                    Err(e) => {
                        let (error_class, error) = failure(&e);
                        ReplicationLag {
                            from: region.clone(),
                            to: other.clone(),
                            lag_seconds: None,
                            error_class,
                            error,
                        }
                    }
                }
            },
        ))
        .await;
        let answered = |e: &AwsError| e.kind == ErrorKind::Throttled;
        let write_ok = match &write {
            Ok(_) => true,
            Err(e) => answered(e),
        };
        let canary_ok = canary.reachable || canary.error_kind == Some(ErrorKind::Throttled);
        let (error_class, error) = match (&write, canary.error_kind) {
            (_, Some(kind)) => (Some(kind.into()), canary.error.clone()),
            (Err(e), None) => failure(e),
            (Ok(_), None) => (None, None),
        };
        let health = RegionHealth {
            region: region.clone(),
            healthy: canary_ok && write_ok,
            canary_found: canary.item_found,
            read_latency_ms: canary.error_kind.is_none().then_some(canary.latency_ms),
            write_latency_ms: write.as_ref().ok().copied(),
            error_class,
            error,
        };
        (health, lags)
    }))
    .await;
    let mut round = Round {
        at,
        regions: Vec::new(),
        replication: Vec::new(),
    };
    for (health, lags) in per_region {
        round.regions.push(health);
        round.replication.extend(lags);
    }
    round
}

/// What the health probe was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeRequest {
    /// One round, answered at once: `{"command":"probe"}`, `{}` or an empty payload.
    Once,
    /// Sample every `PROBE_INTERVAL_SECONDS` for the window: a scheduled event.
    Window,
    /// `{"command":"status"}`: the shared status report.
    Status,
}

/// Decodes the probe function's payload; anything else is rejected with what was expected.
pub fn decode_request(payload: &serde_json::Value) -> Result<ProbeRequest, crate::Error> {
    crate::decision::event::decode_scheduled(
        payload,
        ProbeRequest::Once,
        ProbeRequest::Window,
        &[
            ("probe", ProbeRequest::Once),
            ("status", ProbeRequest::Status),
        ],
    )
}

/// Samples until the next round could not finish before `until`: one round at once, then
/// one at each multiple of `interval` on the clock, so each of the alarms' periods (10 s,
/// a multiple of every allowed interval) holds a round, whenever the run started. Each
/// round is handed to `on_round` as soon as it is done (to emit and record it at once).
pub async fn sample<P, K>(
    regions: &[Region],
    probe: &P,
    clock: &K,
    budget: Duration,
    interval: Duration,
    until: Instant,
    mut on_round: impl AsyncFnMut(&Round),
) -> Vec<Round>
where
    P: HealthProbe + Heartbeats,
    K: Clock,
{
    let interval_ms = (interval.as_millis() as u64).max(1);
    let mut rounds = Vec::new();
    loop {
        let started = Instant::now();
        let started_ms = clock.now_millis();
        let round = probe_round(regions, probe, clock, budget).await;
        on_round(&round).await;
        rounds.push(round);
        // The next boundary after this round's start: if the round (and its recording)
        // ran past it, the next round starts at once, still inside that period.
        let next = started + Duration::from_millis(interval_ms - started_ms % interval_ms);
        if next.max(Instant::now()) + budget > until {
            return rounds;
        }
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A region that reads back `offset` ms from whatever was written last.
    struct ReadsBack {
        offset: i64,
        written: std::sync::Mutex<Millis>,
    }

    impl HealthProbe for ReadsBack {
        async fn check(&self, region: &Region) -> crate::ports::ProbeResult {
            crate::ports::ProbeResult {
                region: region.clone(),
                reachable: true,
                latency_ms: 1,
                item_found: true,
                error_kind: None,
                error: None,
            }
        }
    }

    impl Heartbeats for ReadsBack {
        async fn write(&self, _: &Region, at: Millis) -> Result<(), AwsError> {
            *self.written.lock().unwrap() = at;
            Ok(())
        }
        async fn read(&self, _: &Region, _: &Region, _: bool) -> Result<Option<Millis>, AwsError> {
            let written = *self.written.lock().unwrap();
            Ok(Some(written.saturating_add_signed(self.offset)))
        }
    }

    struct At(Millis);
    impl Clock for At {
        fn now_millis(&self) -> Millis {
            self.0
        }
    }

    #[tokio::test]
    async fn a_heartbeat_another_probe_wrote_this_round_reads_back_healthy_and_a_stale_one_does_not()
     {
        let regions = [crate::testing::region("us-east-1")];
        let budget = Duration::from_millis(500);
        for (offset, healthy) in [
            (0, true),
            (3, true),
            (-3, true),
            (-10_000, false),
            (501, false),
        ] {
            let probe = ReadsBack {
                offset,
                written: std::sync::Mutex::new(0),
            };
            let round = probe_round(&regions, &probe, &At(1_000_000), budget).await;
            assert_eq!(round.regions[0].healthy, healthy, "read back {offset:+} ms");
        }
    }

    #[test]
    fn requests_decode_and_bad_ones_say_what_was_expected() {
        assert_eq!(decode_request(&json!(null)).ok(), Some(ProbeRequest::Once));
        assert_eq!(decode_request(&json!({})).ok(), Some(ProbeRequest::Once));
        assert_eq!(
            decode_request(&json!({"command": "probe"})).ok(),
            Some(ProbeRequest::Once)
        );
        assert_eq!(
            decode_request(&json!({"command": "status"})).ok(),
            Some(ProbeRequest::Status)
        );
        let scheduled = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
                               "account": "1", "time": "2026-11-25T10:00:00Z", "region": "us-west-2",
                               "resources": ["arn:aws:events:us-west-2:1:rule/r"], "detail": {}});
        assert_eq!(decode_request(&scheduled).ok(), Some(ProbeRequest::Window));
        for (bad, fragment) in [
            (json!({"command": "failover"}), "unknown command"),
            (json!({"command": "probe", "rounds": 3}), "unknown field"),
            (json!([1]), "not a JSON object"),
            (json!({"hello": 1}), "unrecognised event"),
        ] {
            let err = decode_request(&bad).expect_err("rejected").to_string();
            assert!(err.contains(fragment), "{err}");
        }
    }
}
