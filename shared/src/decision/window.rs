//! `FAILBACK_WINDOW`: when an automatic failback may happen, as days and hours in UTC.
//!
//! `sat-sun 02:00-05:00`, `mon-fri 22:00-06:00` (a window that crosses midnight belongs to
//! the day it starts on: Friday 22:00 to Saturday 06:00 is in, Monday 00:00-06:00 is not),
//! `daily 01:00-03:00`, `mon,wed,fri 00:00-24:00`. Several windows are separated by `;`.
//! A failback moves users and data back; people want that when the fewest users are on
//! and someone is awake to watch it, not at whatever minute home recovered.

use std::fmt;

use crate::state::Millis;

const MINUTE: Millis = 60_000;
const DAY: Millis = 24 * 60 * MINUTE;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One window: the days it may start on (bit 0 = Monday) and its minutes of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    days: u8,
    start: u32,
    /// Minutes after the start day's midnight; above 1440 when it crosses midnight.
    end: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailbackWindow {
    spans: Vec<Span>,
    text: String,
}

/// `at` as RFC 3339 in UTC, e.g. `2026-11-28T02:00:00Z`: what people read in a reason.
pub fn rfc3339(at: Millis) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    let at = DateTime::from_millis(i64::try_from(at).unwrap_or(i64::MAX));
    at.fmt(Format::DateTime)
        .unwrap_or_else(|_| format!("{} ms", at.to_millis().unwrap_or_default()))
}

/// Monday = 0. 1970-01-01 was a Thursday.
fn weekday(day_number: Millis) -> u32 {
    ((day_number + 3) % 7) as u32
}

impl FailbackWindow {
    pub fn parse(text: &str) -> Result<Self, String> {
        let spans = text
            .split(';')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_span)
            .collect::<Result<Vec<_>, _>>()?;
        if spans.is_empty() {
            return Err("has no window; expected e.g. \"sat-sun 02:00-05:00\"".into());
        }
        Ok(FailbackWindow {
            spans,
            text: text.trim().to_owned(),
        })
    }

    /// Whether `at` (epoch millis, UTC) is inside a window.
    pub fn contains(&self, at: Millis) -> bool {
        let today = at / DAY;
        let minute = ((at % DAY) / MINUTE) as u32;
        self.spans.iter().any(|span| {
            // Started today, or started yesterday and crossed midnight.
            let started_today =
                span.days & (1 << weekday(today)) != 0 && minute >= span.start && minute < span.end;
            let from_yesterday = today > 0
                && span.end > 1440
                && span.days & (1 << weekday(today - 1)) != 0
                && minute + 1440 < span.end;
            started_today || from_yesterday
        })
    }

    /// When the next window opens: `at` itself when inside one.
    pub fn next_open(&self, at: Millis) -> Millis {
        if self.contains(at) {
            return at;
        }
        let today = at / DAY;
        // Every span starts on some day of any 8 consecutive ones.
        (0..8)
            .flat_map(|offset| {
                let day = today + offset;
                self.spans
                    .iter()
                    .filter(move |span| span.days & (1 << weekday(day)) != 0)
                    .map(move |span| day * DAY + Millis::from(span.start) * MINUTE)
            })
            .filter(|opens| *opens > at)
            .min()
            .unwrap_or(at)
    }
}

impl fmt::Display for FailbackWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} UTC", self.text)
    }
}

fn parse_span(text: &str) -> Result<Span, String> {
    let bad = |why: String| {
        format!(
            "{text:?}: {why}; expected days and hours in UTC, e.g. \"sat-sun 02:00-05:00\" or \"mon-fri 22:00-06:00\""
        )
    };
    let mut words = text.split_whitespace();
    let (Some(days), Some(hours), None) = (words.next(), words.next(), words.next()) else {
        return Err(bad("not <days> <HH:MM-HH:MM>".into()));
    };
    let days = parse_days(days).map_err(bad)?;
    let (start, end) = hours
        .split_once('-')
        .ok_or_else(|| bad(format!("{hours:?} is not HH:MM-HH:MM")))?;
    let start = parse_time(start).map_err(bad)?;
    let end = parse_time(end).map_err(bad)?;
    if start == 1440 {
        return Err(bad("a window cannot start at 24:00".into()));
    }
    if start == end {
        return Err(bad(format!("{hours} is empty")));
    }
    let end = if end < start { end + 1440 } else { end };
    Ok(Span { days, start, end })
}

fn parse_days(text: &str) -> Result<u8, String> {
    let lower = text.to_ascii_lowercase();
    if lower == "daily" || lower == "*" {
        return Ok(0x7f);
    }
    let day = |name: &str| {
        DAY_NAMES
            .iter()
            .position(|d| *d == name)
            .ok_or_else(|| format!("{name:?} is not a day (mon..sun, or daily)"))
    };
    let mut days = 0u8;
    for part in lower.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                // sat-sun, fri-mon: a range may wrap around the week's end.
                let mut d = from;
                loop {
                    days |= 1 << d;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days |= 1 << day(part)?,
        }
    }
    Ok(days)
}

/// Minutes since midnight; `24:00` is the end of the day.
fn parse_time(text: &str) -> Result<u32, String> {
    let parsed = text
        .split_once(':')
        .filter(|(h, m)| h.len() == 2 && m.len() == 2)
        .and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)));
    match parsed {
        Some((24, 0)) => Ok(1440),
        Some((h, m)) if h < 24 && m < 60 => Ok(h * 60 + m),
        _ => Err(format!("{text:?} is not a time HH:MM (00:00 to 24:00)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23 was a Monday.
    const MONDAY: Millis = 1_795_392_000_000;

    fn at(day: u64, hh: u64, mm: u64) -> Millis {
        MONDAY + day * DAY + hh * 3_600_000 + mm * MINUTE
    }

    #[test]
    fn the_reference_monday_is_a_monday() {
        assert_eq!(weekday(MONDAY / DAY), 0);
        assert_eq!(MONDAY % DAY, 0);
    }

    #[test]
    fn a_weekend_window_holds_weekdays_and_opens_on_saturday() {
        let w = FailbackWindow::parse("sat-sun 02:00-05:00").unwrap();
        assert!(!w.contains(at(0, 3, 0)), "Monday 03:00");
        assert!(w.contains(at(5, 2, 0)), "Saturday 02:00");
        assert!(w.contains(at(6, 4, 59)), "Sunday 04:59");
        assert!(!w.contains(at(6, 5, 0)), "Sunday 05:00 is the end");
        assert_eq!(w.next_open(at(2, 12, 0)), at(5, 2, 0));
        assert_eq!(w.next_open(at(5, 3, 0)), at(5, 3, 0), "inside: now");
        // After Sunday's window: the next Saturday.
        assert_eq!(w.next_open(at(6, 6, 0)), at(12, 2, 0));
    }

    #[test]
    fn a_window_crossing_midnight_belongs_to_its_start_day() {
        let w = FailbackWindow::parse("mon-fri 22:00-06:00").unwrap();
        assert!(w.contains(at(0, 22, 0)), "Monday 22:00");
        assert!(w.contains(at(1, 5, 59)), "Tuesday 05:59, from Monday");
        assert!(!w.contains(at(0, 3, 0)), "Monday 03:00 started on Sunday");
        assert!(w.contains(at(5, 3, 0)), "Saturday 03:00, from Friday");
        assert!(!w.contains(at(6, 3, 0)), "Sunday 03:00 started on Saturday");
        assert!(!w.contains(at(2, 12, 0)));
        assert_eq!(w.next_open(at(5, 7, 0)), at(7, 22, 0), "next Monday");
    }

    #[test]
    fn lists_daily_wrapping_ranges_and_several_windows() {
        let w = FailbackWindow::parse("mon,wed 00:00-24:00; fri-mon 10:00-11:00").unwrap();
        assert!(w.contains(at(0, 23, 59)));
        assert!(!w.contains(at(1, 12, 0)), "Tuesday");
        assert!(w.contains(at(2, 0, 0)));
        assert!(w.contains(at(6, 10, 30)), "Sunday inside fri-mon");
        assert!(!w.contains(at(3, 10, 30)), "Thursday is not in fri-mon");
        let daily = FailbackWindow::parse("daily 01:00-03:00").unwrap();
        assert!((0..7).all(|d| daily.contains(at(d, 2, 0))));
        assert_eq!(daily.next_open(at(3, 4, 0)), at(4, 1, 0));
        assert_eq!(daily.to_string(), "daily 01:00-03:00 UTC");
    }

    #[test]
    fn times_read_as_rfc3339() {
        assert_eq!(rfc3339(at(5, 2, 0)), "2026-11-28T02:00:00Z");
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        for (text, fragment) in [
            ("", "has no window"),
            ("weekends 02:00-05:00", "not a day"),
            ("sat-sun", "not <days> <HH:MM-HH:MM>"),
            ("sat-sun 2:00-05:00", "not a time"),
            ("sat-sun 02:00-25:00", "not a time"),
            ("sat-sun 02:00", "not HH:MM-HH:MM"),
            ("sat-sun 02:00-02:00", "is empty"),
            ("sat-sun 24:00-02:00", "cannot start at 24:00"),
            ("sat-sun 02:00-05:00 extra", "not <days>"),
        ] {
            let err = FailbackWindow::parse(text).unwrap_err();
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }
}
