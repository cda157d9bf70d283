//! CloudWatch's evaluation of a metric alarm, for the drill: moto evaluates no alarm, so
//! the drill applies the template's rules itself, missing data included.
//!
//! As AWS documents it: each period's datapoints are reduced by the statistic; at each
//! evaluation (a period's end plus an evaluation delay) the alarm looks at its last
//! `evaluation_periods` periods, and it is in ALARM when at least `datapoints_to_alarm` of
//! them breach. A period without datapoints is treated by `TreatMissingData`: `breaching`
//! and `notBreaching` fill it in; `ignore` keeps the state when every period is empty;
//! `missing` goes to INSUFFICIENT_DATA when every period is empty. A new alarm starts in
//! INSUFFICIENT_DATA. Only `LessThanThreshold` is modelled: both of the template's rules
//! use it.

use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmState {
    InsufficientData,
    Ok,
    Alarm,
}

impl AlarmState {
    pub fn name(self) -> &'static str {
        match self {
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    Minimum,
    Maximum,
    SampleCount,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingData {
    Missing,
    Ignore,
    Breaching,
    NotBreaching,
}

impl MissingData {
    /// The template's spelling.
    pub fn name(self) -> &'static str {
        match self {
            MissingData::Missing => "missing",
            MissingData::Ignore => "ignore",
            MissingData::Breaching => "breaching",
            MissingData::NotBreaching => "notBreaching",
        }
    }
}

/// An alarm's rule, as the template writes it (`ComparisonOperator: LessThanThreshold`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rule {
    pub period_seconds: f64,
    pub statistic: Statistic,
    pub evaluation_periods: usize,
    pub datapoints_to_alarm: usize,
    pub threshold: f64,
    pub missing: MissingData,
}

/// `seconds` of AWS time at the drill's pace (`time_scale` AWS seconds per wall-clock
/// second; anything but a positive number is 1), in wall-clock milliseconds, at least 1.
pub fn scaled_ms(seconds: f64, time_scale: f64) -> u64 {
    let scale = if time_scale.is_finite() && time_scale > 0.0 {
        time_scale
    } else {
        1.0
    };
    ((seconds * 1000.0 / scale).round() as u64).max(1)
}

impl Rule {
    /// The period at the drill's pace, in wall-clock milliseconds.
    pub fn period_ms(&self, time_scale: f64) -> u64 {
        scaled_ms(self.period_seconds, time_scale)
    }
}

/// The template's `<stack>-unhealthy-<region>` alarms (a template test keeps them equal).
pub const UNHEALTHY: Rule = Rule {
    period_seconds: 10.0,
    statistic: Statistic::Minimum,
    evaluation_periods: 3,
    datapoints_to_alarm: 3,
    threshold: 1.0,
    missing: MissingData::NotBreaching,
};

/// The rule the template had before missing data stopped counting as an outage: a fresh
/// stack's alarms went to ALARM before the probe's first sample. The drill evaluates it
/// beside `UNHEALTHY` to show what it did and that detection is no slower without it.
pub const UNHEALTHY_BEFORE: Rule = Rule {
    missing: MissingData::Breaching,
    ..UNHEALTHY
};

/// The template's `<stack>-serving-<region>` alarms.
pub const SERVING: Rule = Rule {
    period_seconds: 60.0,
    statistic: Statistic::Maximum,
    evaluation_periods: 1,
    datapoints_to_alarm: 1,
    threshold: 1.0,
    missing: MissingData::Ignore,
};

/// Assumed: how long after a 10 s period ends CloudWatch evaluates a high-resolution
/// alarm on it (AWS publishes no figure); at least the EMF ingestion the drill assumes,
/// so a sample taken at a period's start counts in it.
pub const HEALTH_EVALUATION_DELAY_SECONDS: f64 = 5.0;

/// One alarm over time. Times are milliseconds since the Unix epoch; periods are aligned
/// to `start_ms` (its creation), period `k` evaluated at its end plus the evaluation delay.
#[derive(Clone, Debug)]
pub struct MetricAlarm {
    rule: Rule,
    start_ms: u64,
    period_ms: u64,
    evaluation_delay_ms: u64,
    ingestion_ms: u64,
    state: AlarmState,
    /// The next period to evaluate.
    next: u64,
    /// Datapoints of periods not yet evaluated: period -> (timestamp, value).
    data: BTreeMap<u64, Vec<(u64, f64)>>,
    /// The reduced value of each evaluated period still in the evaluation range.
    evaluated: BTreeMap<u64, Option<f64>>,
}

impl MetricAlarm {
    /// A new alarm in `state`, its period already scaled ([`Rule::period_ms`]): a
    /// datapoint counts once `ingestion_ms` after its timestamp, and period `k` is
    /// evaluated `evaluation_delay_ms` after it ends.
    pub fn new(
        rule: Rule,
        start_ms: u64,
        period_ms: u64,
        evaluation_delay_ms: u64,
        ingestion_ms: u64,
        state: AlarmState,
    ) -> MetricAlarm {
        MetricAlarm {
            rule,
            start_ms,
            period_ms: period_ms.max(1),
            evaluation_delay_ms,
            ingestion_ms,
            state,
            next: 0,
            data: BTreeMap::new(),
            evaluated: BTreeMap::new(),
        }
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    pub fn state(&self) -> AlarmState {
        self.state
    }

    pub fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// When period `k` is evaluated.
    pub fn evaluation_ms(&self, period: u64) -> u64 {
        self.start_ms + (period + 1) * self.period_ms + self.evaluation_delay_ms
    }

    /// Takes a datapoint. One from before the start, or of a period already evaluated
    /// (late), is dropped.
    pub fn record(&mut self, at_ms: u64, value: f64) {
        if at_ms < self.start_ms || !value.is_finite() {
            return;
        }
        let period = (at_ms - self.start_ms) / self.period_ms;
        if period >= self.next {
            self.data.entry(period).or_default().push((at_ms, value));
        }
    }

    fn reduce(&self, values: impl Iterator<Item = f64>) -> Option<f64> {
        let values: Vec<f64> = values.collect();
        if values.is_empty() {
            return None;
        }
        Some(match self.rule.statistic {
            Statistic::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
            Statistic::Maximum => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Statistic::SampleCount => values.len() as f64,
        })
    }

    /// The state the evaluation range says, or `None` to keep the current one.
    fn judge(&self) -> Option<AlarmState> {
        let range: Vec<Option<f64>> = self.evaluated.values().copied().collect();
        let present: Vec<f64> = range.iter().flatten().copied().collect();
        let breaching = present.iter().filter(|v| **v < self.rule.threshold).count();
        // The range is always the last `evaluation_periods` periods: those before the
        // alarm existed had no data either.
        let missing = self.rule.evaluation_periods.saturating_sub(present.len());
        let needed = self.rule.datapoints_to_alarm;
        let verdict = |breaching: usize| {
            if breaching >= needed {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            }
        };
        match self.rule.missing {
            MissingData::Breaching => Some(verdict(breaching + missing)),
            MissingData::NotBreaching => Some(verdict(breaching)),
            MissingData::Ignore if present.is_empty() => None,
            MissingData::Missing if present.is_empty() => Some(AlarmState::InsufficientData),
            MissingData::Ignore | MissingData::Missing => Some(verdict(breaching)),
        }
    }

    /// Evaluates every period whose evaluation time has come by `now_ms`; returns each
    /// change of state with its evaluation time.
    pub fn advance(&mut self, now_ms: u64) -> Vec<(u64, AlarmState)> {
        let mut changes = Vec::new();
        while self.evaluation_ms(self.next) <= now_ms {
            let at = self.evaluation_ms(self.next);
            let ingestion = self.ingestion_ms;
            let points = self.data.remove(&self.next).unwrap_or_default();
            let value = self.reduce(
                points
                    .into_iter()
                    .filter(|(ts, _)| ts + ingestion <= at)
                    .map(|(_, v)| v),
            );
            self.evaluated.insert(self.next, value);
            let oldest = (self.next + 1).saturating_sub(self.rule.evaluation_periods as u64);
            self.evaluated.retain(|k, _| *k >= oldest);
            self.next += 1;
            if let Some(state) = self.judge()
                && state != self.state
            {
                self.state = state;
                changes.push((at, state));
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 1_000_000;

    fn alarm(rule: Rule) -> MetricAlarm {
        MetricAlarm::new(
            rule,
            START,
            rule.period_ms(1.0),
            0,
            0,
            AlarmState::InsufficientData,
        )
    }

    #[test]
    fn a_fresh_alarm_without_data_alarms_only_when_missing_data_breaches() {
        let mut before = alarm(UNHEALTHY_BEFORE);
        let mut now = alarm(UNHEALTHY);
        // The first minute after a deploy: no Healthy datapoint at all.
        let minute = START + 60_000;
        assert_eq!(
            before.advance(minute),
            [(START + 10_000, AlarmState::Alarm)],
            "the old rule: ALARM at the first evaluation, before any sample"
        );
        assert_eq!(now.advance(minute), [(START + 10_000, AlarmState::Ok)]);
    }

    #[test]
    fn an_outage_alarms_at_the_same_evaluation_under_both_rules_and_a_gap_does_not_alarm() {
        for rule in [UNHEALTHY, UNHEALTHY_BEFORE] {
            let mut a = alarm(rule);
            // Healthy periods, one of them (the fourth) left empty by a late schedule.
            for k in [0, 1, 2, 4, 5] {
                a.record(START + k * 10_000 + 1, 1.0);
            }
            // (Under the old rule the two periods before the alarm existed breach, one
            // short of three.)
            let changes = a.advance(START + 60_000);
            assert_eq!(changes, [(START + 10_000, AlarmState::Ok)], "{rule:?}");
            // The outage: three unhealthy periods in a row.
            for k in 6..9 {
                a.record(START + k * 10_000 + 1, 0.0);
            }
            let alarmed = a.advance(START + 90_000);
            assert_eq!(alarmed, [(START + 90_000, AlarmState::Alarm)], "{rule:?}");
        }
    }

    #[test]
    fn missing_data_keeps_ignore_and_empties_missing() {
        let mut ignore = MetricAlarm::new(SERVING, START, 60_000, 0, 0, AlarmState::Ok);
        assert!(ignore.advance(START + 600_000).is_empty());
        let silent = Rule {
            period_seconds: 60.0,
            statistic: Statistic::SampleCount,
            evaluation_periods: 3,
            datapoints_to_alarm: 3,
            threshold: 1.0,
            missing: MissingData::Missing,
        };
        let mut probe = MetricAlarm::new(silent, START, 60_000, 0, 0, AlarmState::InsufficientData);
        probe.record(START + 1, 1.0);
        assert_eq!(
            probe.advance(START + 60_000),
            [(START + 60_000, AlarmState::Ok)]
        );
        assert_eq!(
            probe.advance(START + 240_000),
            [(START + 240_000, AlarmState::InsufficientData)],
            "three silent minutes"
        );
    }

    #[test]
    fn late_datapoints_miss_their_period() {
        let mut a = MetricAlarm::new(UNHEALTHY, START, 10_000, 2_000, 5_000, AlarmState::Ok);
        a.record(START + 9_000, 0.0); // readable at 14 s, evaluated at 12 s
        a.advance(START + 12_000);
        a.record(START + 1_000, 0.0); // its period is evaluated already
        assert_eq!(a.state(), AlarmState::Ok);
    }
}
