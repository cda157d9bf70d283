//! The drill's model of the DNS stage, which the rig cannot run (moto evaluates no alarm
//! and no Route 53 health check): the `ActiveRegion` datapoints the functions write as EMF,
//! each region's serving alarm over them (the template's rule), the Route 53 health check
//! that follows each alarm, and clients that resolve the weighted records with a TTL.
//!
//! Times are milliseconds since the Unix epoch (the EMF `Timestamp`'s clock). Every
//! modelled duration is divided by the drill's time scale (see [`Timings::scaled`]).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use serde_json::Value;

pub use crate::alarm::AlarmState;
use crate::alarm::MetricAlarm;

/// The serving alarm's period (the template's `Period`; 60 s is the shortest period of a
/// standard-resolution metric, which a Route 53 health check on an alarm requires).
pub const PERIOD_SECONDS: f64 = crate::alarm::SERVING.period_seconds;
/// The weighted records' TTL (the template's `RecordTtl` default).
pub const TTL_SECONDS: f64 = 60.0;
/// Assumed: how long after a period ends CloudWatch evaluates the alarm on it.
pub const EVALUATION_DELAY_SECONDS: f64 = 10.0;
/// Assumed: how long after its timestamp an EMF datapoint can be read by an alarm (the
/// Lambda log agent and CloudWatch Logs' extraction). Shorter than the evaluation delay,
/// so a datapoint counts in its own period.
pub const EMF_INGESTION_SECONDS: f64 = 5.0;
/// Assumed: how long a Route 53 health check takes to follow its alarm's state (10-30 s
/// are commonly seen; AWS documents no figure).
pub const HEALTH_CHECK_DELAY_SECONDS: f64 = 20.0;

/// The DNS stage's durations in milliseconds, after the time scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    pub period_ms: u64,
    pub evaluation_delay_ms: u64,
    pub ingestion_ms: u64,
    pub health_check_delay_ms: u64,
    pub ttl_ms: u64,
}

impl Timings {
    /// The constants above, each divided by `time_scale` (modelled seconds per wall-clock
    /// second, as the rig's `RIG_TIME_SCALE`).
    pub fn scaled(time_scale: f64) -> Timings {
        let ms = |seconds: f64| crate::alarm::scaled_ms(seconds, time_scale);
        Timings {
            period_ms: ms(PERIOD_SECONDS),
            evaluation_delay_ms: ms(EVALUATION_DELAY_SECONDS),
            ingestion_ms: ms(EMF_INGESTION_SECONDS),
            health_check_delay_ms: ms(HEALTH_CHECK_DELAY_SECONDS),
            ttl_ms: ms(TTL_SECONDS),
        }
    }

    /// The longest a switch should take to reach every client: the rest of the switch's
    /// period (whose Maximum still holds the old value) and the next period, the
    /// evaluation, the health check, and one TTL.
    pub fn switch_bound_ms(&self) -> u64 {
        2 * self.period_ms + self.evaluation_delay_ms + self.health_check_delay_ms + self.ttl_ms
    }
}

/// One `ActiveRegion` datapoint from an EMF document.
#[derive(Clone, Debug, PartialEq)]
pub struct Datapoint {
    pub at_ms: u64,
    pub region: String,
    pub value: f64,
    /// Declared with `StorageResolution: 1`: CloudWatch stores it at high resolution,
    /// which an alarm behind a Route 53 health check must not use.
    pub high_resolution: bool,
}

/// The `ActiveRegion` datapoint in one log line, if the line is an EMF document that
/// declares `ActiveRegion` with the `Region` dimension (CloudWatch extracts only declared
/// metrics) and carries a numeric value, a string `Region` and a `Timestamp`.
pub fn datapoint(line: &str) -> Option<Datapoint> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    let doc: Value = serde_json::from_str(line).ok()?;
    let value = doc.get("ActiveRegion")?.as_f64()?;
    let region = doc.get("Region")?.as_str()?;
    let at_ms = doc["_aws"]["Timestamp"].as_u64()?;
    let declared = doc["_aws"]["CloudWatchMetrics"]
        .as_array()?
        .iter()
        .filter(|d| {
            d["Dimensions"]
                .as_array()
                .is_some_and(|sets| sets.iter().any(|s| *s == serde_json::json!(["Region"])))
        })
        .flat_map(|d| d["Metrics"].as_array().cloned().unwrap_or_default())
        .find(|m| m["Name"] == "ActiveRegion")?;
    Some(Datapoint {
        at_ms,
        region: region.to_owned(),
        value,
        high_resolution: declared["StorageResolution"].as_u64() == Some(1),
    })
}

/// Reads a growing log file from where the last read stopped.
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    pub fn new(path: impl Into<PathBuf>) -> LogTail {
        LogTail {
            path: path.into(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The complete lines written since the last call; a line still being written waits
    /// for its newline. A missing file reads as empty.
    pub fn read_lines(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if file.metadata().map(|m| m.len()).unwrap_or(0) < self.offset {
            // Truncated or replaced: start again.
            self.offset = 0;
            self.partial.clear();
        }
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut fresh = Vec::new();
        let _ = file.read_to_end(&mut fresh);
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// One region's serving alarm in `state`: the template's rule (`alarm::SERVING`:
/// `ActiveRegion` Maximum < 1 over one period, 1 of 1, missing data ignored, so a period
/// without datapoints keeps the state) under the DNS stage's timings. Periods are aligned
/// to `start_ms`; a new alarm is in INSUFFICIENT_DATA.
pub fn serving_alarm(start_ms: u64, timings: Timings, state: AlarmState) -> MetricAlarm {
    MetricAlarm::new(
        crate::alarm::SERVING,
        start_ms,
        timings.period_ms,
        timings.evaluation_delay_ms,
        timings.ingestion_ms,
        state,
    )
}

/// A Route 53 health check of type CLOUDWATCH_METRIC on a serving alarm: unhealthy in
/// ALARM, healthy in OK, the last known status in INSUFFICIENT_DATA (healthy if none yet).
/// It follows the alarm after the assumed delay.
pub struct HealthCheck {
    delay_ms: u64,
    status: crate::signals::Status,
}

impl HealthCheck {
    /// A new health check: no known status, so healthy.
    pub fn new(delay_ms: u64) -> HealthCheck {
        HealthCheck::with_status(delay_ms, true)
    }

    pub fn with_status(delay_ms: u64, healthy: bool) -> HealthCheck {
        HealthCheck {
            delay_ms,
            status: crate::signals::Status::new(healthy),
        }
    }

    /// Follows the alarm's change to `state` at `at_ms` (changes come in time order);
    /// returns the status change it causes, with when it takes effect.
    pub fn follow(&mut self, at_ms: u64, state: AlarmState) -> Option<(u64, bool)> {
        let healthy = match state {
            AlarmState::Ok => true,
            AlarmState::Alarm => false,
            AlarmState::InsufficientData => return None, // LastKnownStatus
        };
        let at = at_ms + self.delay_ms;
        self.status.set(at, healthy).then_some((at, healthy))
    }

    pub fn healthy_at(&self, at_ms: u64) -> bool {
        self.status.healthy_at(at_ms)
    }
}

/// Route 53's answer to a weighted query (equal weights): a healthy record picked by
/// `pick` in [0, 1); every record when none is healthy.
pub fn weighted_answer(
    records: &[String],
    healthy: impl Fn(&str) -> bool,
    pick: f64,
) -> Option<&str> {
    let mut candidates: Vec<&str> = records
        .iter()
        .map(String::as_str)
        .filter(|r| healthy(r))
        .collect();
    if candidates.is_empty() {
        candidates = records.iter().map(String::as_str).collect();
    }
    let index = (pick.clamp(0.0, 1.0) * candidates.len() as f64) as usize;
    candidates
        .get(index.min(candidates.len().saturating_sub(1)))
        .copied()
}

/// A change the DNS stage made, at its model time.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Alarm {
        at_ms: u64,
        region: String,
        state: AlarmState,
    },
    Health {
        at_ms: u64,
        region: String,
        healthy: bool,
    },
}

impl Change {
    pub fn at_ms(&self) -> u64 {
        match self {
            Change::Alarm { at_ms, .. } | Change::Health { at_ms, .. } => *at_ms,
        }
    }
}

/// Every region's serving alarm and health check, and the weighted records over them.
pub struct Dns {
    pub timings: Timings,
    regions: Vec<String>,
    alarms: BTreeMap<String, MetricAlarm>,
    checks: BTreeMap<String, HealthCheck>,
    /// Health changes scheduled but not yet in effect (not yet reported).
    scheduled: Vec<Change>,
}

impl Dns {
    /// A stack just deployed: alarms in INSUFFICIENT_DATA, health checks healthy.
    pub fn new(regions: &[&str], start_ms: u64, timings: Timings) -> Dns {
        Dns::build(regions, |_| AlarmState::InsufficientData, start_ms, timings)
    }

    /// A stack that has been running with `active` the active region: its alarm OK and
    /// health check healthy, every other region's in ALARM and unhealthy.
    pub fn settled(regions: &[&str], active: &str, start_ms: u64, timings: Timings) -> Dns {
        Dns::build(
            regions,
            |r| {
                if r == active {
                    AlarmState::Ok
                } else {
                    AlarmState::Alarm
                }
            },
            start_ms,
            timings,
        )
    }

    fn build(
        regions: &[&str],
        state: impl Fn(&str) -> AlarmState,
        start_ms: u64,
        timings: Timings,
    ) -> Dns {
        let delay = timings.health_check_delay_ms;
        Dns {
            timings,
            regions: regions.iter().map(|r| (*r).to_owned()).collect(),
            alarms: regions
                .iter()
                .map(|r| ((*r).to_owned(), serving_alarm(start_ms, timings, state(r))))
                .collect(),
            checks: regions
                .iter()
                .map(|r| {
                    let check = match state(r) {
                        AlarmState::Alarm => HealthCheck::with_status(delay, false),
                        _ => HealthCheck::new(delay),
                    };
                    ((*r).to_owned(), check)
                })
                .collect(),
            scheduled: Vec::new(),
        }
    }

    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// Takes a datapoint; one for a region without a record is ignored.
    pub fn record(&mut self, point: &Datapoint) {
        if let Some(alarm) = self.alarms.get_mut(&point.region) {
            alarm.record(point.at_ms, point.value);
        }
    }

    /// Evaluates the alarms up to `now_ms` and lets the health checks follow; returns the
    /// alarm changes evaluated and the health changes in effect by then, in time order.
    pub fn advance(&mut self, now_ms: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        for (region, alarm) in &mut self.alarms {
            for (at_ms, state) in alarm.advance(now_ms) {
                changes.push(Change::Alarm {
                    at_ms,
                    region: region.clone(),
                    state,
                });
                if let Some(check) = self.checks.get_mut(region)
                    && let Some((at_ms, healthy)) = check.follow(at_ms, state)
                {
                    self.scheduled.push(Change::Health {
                        at_ms,
                        region: region.clone(),
                        healthy,
                    });
                }
            }
        }
        let (due, later): (Vec<Change>, Vec<Change>) =
            self.scheduled.drain(..).partition(|c| c.at_ms() <= now_ms);
        self.scheduled = later;
        changes.extend(due);
        changes.sort_by_key(Change::at_ms);
        changes
    }

    pub fn alarm(&self, region: &str) -> Option<AlarmState> {
        self.alarms.get(region).map(MetricAlarm::state)
    }

    /// The region's health check status at `at_ms` (as far as the alarms are evaluated).
    pub fn healthy(&self, region: &str, at_ms: u64) -> bool {
        self.checks.get(region).is_some_and(|c| c.healthy_at(at_ms))
    }

    /// Route 53's answer at `at_ms` for a resolver whose random draw is `pick`.
    pub fn answer(&self, at_ms: u64, pick: f64) -> Option<&str> {
        weighted_answer(&self.regions, |r| self.healthy(r, at_ms), pick)
    }
}

/// One client's resolver cache.
#[derive(Clone, Debug)]
pub struct Resolver {
    region: String,
    expires_ms: u64,
}

impl Resolver {
    pub fn new(region: &str, expires_ms: u64) -> Resolver {
        Resolver {
            region: region.to_owned(),
            expires_ms,
        }
    }

    /// The region a client that keeps using the name connects to at `now_ms`: its cached
    /// answer until it expires; after that, the answer it got when it resolved again at
    /// its latest expiry (`answer_at` that time), cached for one more TTL.
    pub fn resolve(
        &mut self,
        now_ms: u64,
        ttl_ms: u64,
        answer_at: impl FnOnce(u64) -> Option<String>,
    ) -> &str {
        if now_ms >= self.expires_ms {
            let ttl = ttl_ms.max(1);
            let at = self.expires_ms + (now_ms - self.expires_ms) / ttl * ttl;
            if let Some(region) = answer_at(at) {
                self.region = region;
            }
            self.expires_ms = at + ttl;
        }
        &self.region
    }
}

/// A small deterministic generator (SplitMix64) for the resolvers' weighted picks.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The application's users, each with a resolver cache.
pub struct Users {
    resolvers: Vec<Resolver>,
    rng: Rng,
}

impl Users {
    /// `n` users who all resolved `region`, their caches expiring spread evenly over one
    /// TTL after `start_ms`.
    pub fn new(n: usize, region: &str, start_ms: u64, ttl_ms: u64, seed: u64) -> Users {
        let n = n.max(1);
        Users {
            resolvers: (0..n)
                .map(|i| Resolver::new(region, start_ms + ttl_ms * (i as u64 + 1) / n as u64))
                .collect(),
            rng: Rng::new(seed),
        }
    }

    pub fn len(&self) -> usize {
        self.resolvers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resolvers.is_empty()
    }

    /// The region DNS gave user `user` (modulo the number of users), as of `now_ms`.
    pub fn resolve(&mut self, user: usize, now_ms: u64, dns: &Dns) -> String {
        self.resolve_with(user, now_ms, dns.timings.ttl_ms, |at, pick| {
            dns.answer(at, pick).map(str::to_owned)
        })
    }

    /// [`Users::resolve`] against any signal's answers: `answer(at, pick)`.
    pub fn resolve_with(
        &mut self,
        user: usize,
        now_ms: u64,
        ttl_ms: u64,
        answer: impl Fn(u64, f64) -> Option<String>,
    ) -> String {
        let rng = &mut self.rng;
        let index = user % self.resolvers.len();
        self.resolvers[index]
            .resolve(now_ms, ttl_ms, |at| answer(at, rng.next_f64()))
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &str = "us-east-1";
    const STANDBY: &str = "us-west-2";
    const START: u64 = 1_764_000_000_000;

    /// AWS's timings at the template pace.
    fn aws() -> Timings {
        Timings::scaled(1.0)
    }

    fn emf(region: &str, value: f64, at_ms: u64) -> String {
        serde_json::json!({
            "_aws": {"Timestamp": at_ms, "CloudWatchMetrics": [{"Namespace": "RegionPilot",
                "Dimensions": [["Region"]], "Metrics": [{"Name": "ActiveRegion", "Unit": "None"}]}]},
            "Region": region, "ActiveRegion": value
        })
        .to_string()
    }

    #[test]
    fn timings_are_divided_by_the_time_scale() {
        let fast = Timings::scaled(10.0);
        assert_eq!(fast.period_ms, 6_000);
        assert_eq!(fast.ttl_ms, 6_000);
        assert_eq!(fast.evaluation_delay_ms, 1_000);
        assert_eq!(fast.health_check_delay_ms, 2_000);
        assert_eq!(aws().period_ms, 60_000);
        assert_eq!(aws().switch_bound_ms(), 210_000);
    }

    #[test]
    fn only_declared_active_region_documents_are_datapoints() {
        let line = emf(HOME, 1.0, START);
        assert_eq!(
            datapoint(&line),
            Some(Datapoint {
                at_ms: START,
                region: HOME.into(),
                value: 1.0,
                high_resolution: false
            })
        );
        let healthy = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"RegionPilot","Dimensions":[["Region"]],"Metrics":[{"Name":"Healthy","Unit":"None","StorageResolution":1}]}]},"Region":"us-east-1","Healthy":1.0}"#;
        let undeclared = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]},"Region":"us-east-1","ActiveRegion":1.0}"#;
        let tracing = r#"{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","fields":{"message":"switched","ActiveRegion":1}}"#;
        for line in [
            healthy,
            undeclared,
            tracing,
            "INFO text line",
            "{not json",
            "",
        ] {
            assert_eq!(datapoint(line), None, "{line}");
        }
        let high = line.replace(r#""Unit":"None""#, r#""Unit":"None","StorageResolution":1"#);
        assert!(datapoint(&high).expect("a datapoint").high_resolution);
    }

    #[test]
    fn the_log_is_read_incrementally_and_a_partial_line_waits() {
        let dir = std::env::temp_dir().join(format!("regionpilot-dns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("f.log");
        std::fs::write(&path, "one\ntw").expect("write");
        let mut tail = LogTail::new(&path);
        assert_eq!(tail.read_lines(), vec!["one"]);
        assert!(tail.read_lines().is_empty());
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        std::io::Write::write_all(&mut file, b"o\nthree\n").expect("append");
        assert_eq!(tail.read_lines(), vec!["two", "three"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_alarm_keeps_its_state_through_periods_without_data() {
        let t = aws();
        let mut ok = serving_alarm(START, t, AlarmState::Ok);
        assert!(ok.advance(START + 10 * t.period_ms).is_empty());
        assert_eq!(ok.state(), AlarmState::Ok);

        let mut alarm = serving_alarm(START, t, AlarmState::Ok);
        alarm.record(START + 2 * t.period_ms + 5_000, 0.0);
        assert_eq!(
            alarm.advance(START + 10 * t.period_ms),
            vec![(alarm.evaluation_ms(2), AlarmState::Alarm)]
        );
        assert!(alarm.advance(START + 20 * t.period_ms).is_empty());
        assert_eq!(alarm.state(), AlarmState::Alarm);
    }

    #[test]
    fn a_period_is_evaluated_at_its_end_plus_the_delay() {
        let t = aws();
        let mut alarm = serving_alarm(START, t, AlarmState::InsufficientData);
        alarm.record(START + 1_000, 1.0);
        let due = START + t.period_ms + t.evaluation_delay_ms;
        assert!(alarm.advance(due - 1).is_empty());
        assert_eq!(alarm.state(), AlarmState::InsufficientData);
        assert_eq!(alarm.advance(due), vec![(due, AlarmState::Ok)]);
    }

    #[test]
    fn the_maximum_of_the_switch_period_keeps_the_old_region_ok() {
        let t = aws();
        let mut old = serving_alarm(START, t, AlarmState::Ok);
        let mut new = serving_alarm(START, t, AlarmState::Alarm);
        // The probe's datapoint before the switch, then the switch's, in period 0.
        old.record(START + 10_000, 1.0);
        new.record(START + 10_000, 0.0);
        old.record(START + 40_000, 0.0);
        new.record(START + 40_000, 1.0);
        assert!(old.advance(old.evaluation_ms(0)).is_empty());
        assert_eq!(
            new.advance(new.evaluation_ms(0)),
            vec![(new.evaluation_ms(0), AlarmState::Ok)]
        );
        // The probe's datapoint of period 1 carries only the new value.
        old.record(START + t.period_ms + 10_000, 0.0);
        assert_eq!(
            old.advance(old.evaluation_ms(1)),
            vec![(old.evaluation_ms(1), AlarmState::Alarm)]
        );
    }

    #[test]
    fn late_and_early_datapoints_are_dropped() {
        let t = aws();
        let mut alarm = serving_alarm(START, t, AlarmState::Ok);
        alarm.record(START - 1, 0.0);
        assert!(alarm.advance(alarm.evaluation_ms(0)).is_empty());
        alarm.record(START + 1_000, 0.0); // period 0, already evaluated
        assert!(alarm.advance(alarm.evaluation_ms(1)).is_empty());
        assert_eq!(alarm.state(), AlarmState::Ok);
    }

    #[test]
    fn the_health_check_is_healthy_initially_and_follows_the_alarm_after_its_delay() {
        let mut check = HealthCheck::new(20_000);
        assert!(check.healthy_at(START));
        assert_eq!(check.follow(START, AlarmState::InsufficientData), None);
        assert!(check.healthy_at(START + 60_000));
        assert_eq!(
            check.follow(START, AlarmState::Alarm),
            Some((START + 20_000, false))
        );
        assert!(check.healthy_at(START + 19_999));
        assert!(!check.healthy_at(START + 20_000));
        // INSUFFICIENT_DATA keeps the last known status; OK is followed back.
        assert_eq!(
            check.follow(START + 30_000, AlarmState::InsufficientData),
            None
        );
        assert!(!check.healthy_at(START + 60_000));
        assert_eq!(
            check.follow(START + 60_000, AlarmState::Ok),
            Some((START + 80_000, true))
        );
        assert!(check.healthy_at(START + 80_000));
        assert!(!check.healthy_at(START + 79_999));
    }

    #[test]
    fn weighted_answers_come_from_the_healthy_records_or_all_when_none_is() {
        let records = vec![HOME.to_owned(), STANDBY.to_owned()];
        let picks = |healthy: &dyn Fn(&str) -> bool| -> BTreeMap<String, usize> {
            let mut rng = Rng::new(7);
            let mut seen = BTreeMap::new();
            for _ in 0..1_000 {
                let region = weighted_answer(&records, healthy, rng.next_f64()).expect("answer");
                *seen.entry(region.to_owned()).or_insert(0) += 1;
            }
            seen
        };
        let standby_only = picks(&|r| r == STANDBY);
        assert_eq!(standby_only.get(STANDBY), Some(&1_000));
        for seen in [picks(&|_| false), picks(&|_| true)] {
            for region in [HOME, STANDBY] {
                let n = seen.get(region).copied().unwrap_or(0);
                assert!((400..=600).contains(&n), "{region}: {n} of 1000 ({seen:?})");
            }
        }
        assert_eq!(weighted_answer(&[], |_| true, 0.5), None);
    }

    #[test]
    fn the_resolver_keeps_its_cached_region_until_the_ttl_then_moves() {
        let ttl = 60_000;
        let mut resolver = Resolver::new(HOME, START + ttl);
        let mut asked = Vec::new();
        let mut answer = |at: u64| {
            asked.push(at);
            Some(STANDBY.to_owned())
        };
        assert_eq!(resolver.resolve(START + ttl - 1, ttl, &mut answer), HOME);
        assert_eq!(resolver.resolve(START + ttl, ttl, &mut answer), STANDBY);
        // Two and a half TTLs later: it resolved at its latest expiry.
        let _ = resolver.resolve(START + 3 * ttl + ttl / 2, ttl, &mut answer);
        assert_eq!(asked, vec![START + ttl, START + 3 * ttl]);
    }

    #[test]
    fn a_switch_moves_the_health_checks_then_every_user_within_one_ttl() {
        let t = aws();
        let mut dns = Dns::settled(&[HOME, STANDBY], HOME, START, t);
        let mut users = Users::new(200, HOME, START, t.ttl_ms, 1);
        assert!(dns.healthy(HOME, START) && !dns.healthy(STANDBY, START));
        // The probe at 10 s, the switch at 30 s, the probe again at 70 s (period 1).
        for (at, home, standby) in [(10_000, 1.0, 0.0), (30_000, 0.0, 1.0), (70_000, 0.0, 1.0)] {
            for (region, value) in [(HOME, home), (STANDBY, standby)] {
                dns.record(&datapoint(&emf(region, value, START + at)).expect("datapoint"));
            }
        }
        let changes = dns.advance(START + 10 * t.period_ms);
        let e0 = START + t.period_ms + t.evaluation_delay_ms;
        let e1 = e0 + t.period_ms;
        let hc = t.health_check_delay_ms;
        let alarm = |at_ms, region: &str, state| Change::Alarm {
            at_ms,
            region: region.into(),
            state,
        };
        let health = |at_ms, region: &str, healthy| Change::Health {
            at_ms,
            region: region.into(),
            healthy,
        };
        assert_eq!(
            changes,
            vec![
                alarm(e0, STANDBY, AlarmState::Ok),
                health(e0 + hc, STANDBY, true),
                alarm(e1, HOME, AlarmState::Alarm),
                health(e1 + hc, HOME, false),
            ]
        );
        // Both healthy in between: some users move early, none before its expiry.
        let moved_at = |users: &mut Users, now| {
            (0..200)
                .filter(|u| users.resolve(*u, now, &dns) == STANDBY)
                .count()
        };
        assert_eq!(moved_at(&mut users, e0 + hc - 1), 0);
        let halfway = moved_at(&mut users, e1 + hc - 1);
        assert!((20..=180).contains(&halfway), "{halfway}");
        assert_eq!(moved_at(&mut users, e1 + hc + t.ttl_ms), 200);
    }
}
