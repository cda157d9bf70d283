//! One run's timeline: marks, and the picture drawn from them.

use crate::*;

/// One run's timeline; the drill and its background tasks (DNS) mark it.
#[derive(Clone)]
pub(crate) struct Timeline {
    pub(crate) label: &'static str,
    pub(crate) started: Instant,
    /// `started` on the wall clock, in ms since the Unix epoch (the EMF timestamps' clock).
    pub(crate) started_ms: u64,
    pub(crate) events: Arc<Mutex<Vec<(f64, String)>>>,
}

impl Timeline {
    pub(crate) fn new(label: &'static str) -> Timeline {
        Timeline {
            label,
            started: Instant::now(),
            started_ms: epoch_ms(),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub(crate) fn mark(&self, what: impl Into<String>) -> f64 {
        let mut events = self.events.lock().unwrap();
        let at = self.started.elapsed().as_secs_f64();
        let what = what.into();
        println!("  [{:<11}] t+{at:>7.3}s  {what}", self.label);
        events.push((at, what));
        at
    }

    /// Marks `what` at `at` seconds on this timeline (a model's time, not now).
    pub(crate) fn mark_at(&self, at: f64, what: impl Into<String>) {
        let what = what.into();
        println!("  [{:<11}] t+{at:>7.3}s  {what}", self.label);
        self.events.lock().unwrap().push((at, what));
    }

    /// A wall-clock time (ms since the epoch) as seconds on this timeline.
    pub(crate) fn at(&self, epoch_ms: u64) -> f64 {
        (epoch_ms as f64 - self.started_ms as f64) / 1000.0
    }

    pub(crate) fn events(&self) -> Vec<(f64, String)> {
        self.events.lock().unwrap().clone()
    }
}

pub(crate) fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When the standby was active, from the timeline: failover marks to failback marks.
pub(crate) fn active_spans(events: &[(f64, String)]) -> Vec<(f64, f64)> {
    let end = events.last().map_or(0.0, |e| e.0);
    let mut spans = Vec::new();
    let mut since = None;
    for (at, what) in events {
        if what.starts_with("failover: \"switched\"") {
            since = Some(*at);
        }
        if what.starts_with("failback verification: \"failed_back\"")
            && let Some(start) = since.take()
        {
            spans.push((start, *at));
        }
    }
    if let Some(start) = since {
        spans.push((start, end));
    }
    spans
}

/// The timeline as an SVG: outage and failed-over spans, app writes as ticks, events.
pub(crate) fn timeline_svg(
    scenario: Scenario,
    mode: Mode,
    events: &[(f64, String)],
    active_spans: &[(f64, f64)],
    writes: &[Write],
) -> String {
    let end = events.last().map_or(1.0, |e| e.0).max(1.0) * 1.02;
    let (width, left, right) = (1400.0, 40.0, 40.0);
    let x = |t: f64| left + (width - left - right) * t / end;
    let top = 60.0;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="24" font-size="15" font-weight="bold">regionpilot drill ({}, RELOAD_MODE={}): {HOME} outage</text>
"##,
        156.0 + 16.0 * events.len() as f64,
        scenario.name(),
        mode.name(),
    );
    // Outage spans: each OUTAGE mark to the next RECOVERY mark (or the end).
    let mut down_since = None;
    let mut outages = Vec::new();
    for (at, what) in events {
        if what.starts_with("OUTAGE") {
            down_since = Some(*at);
        } else if what.starts_with("RECOVERY")
            && let Some(start) = down_since.take()
        {
            outages.push((start, *at));
        }
    }
    outages.extend(down_since.map(|start| (start, end)));
    for (start, stop) in outages {
        svg.push_str(&format!(
            r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="18" fill="#f4a6a6"/><text x="{:.1}" y="{}">{HOME} down</text>"##,
            x(start),
            x(stop) - x(start),
            x(start) + 4.0,
            top + 13.0
        ));
    }
    for (start, stop) in active_spans {
        svg.push_str(&format!(
            r##"<rect x="{:.1}" y="{}" width="{:.1}" height="18" fill="#ffd27f"/><text x="{:.1}" y="{}">active: {STANDBY}</text>"##,
            x(*start),
            top + 22.0,
            x(*stop) - x(*start),
            x(*start) + 4.0,
            top + 35.0
        ));
    }
    let lane = top + 50.0;
    svg.push_str(&format!(r#"<text x="2" y="{}">app</text>"#, lane + 9.0));
    for w in writes {
        let colour = match (w.ok, w.region.as_str()) {
            (false, _) => "#d62728",
            (true, HOME) => "#1f77b4",
            (true, _) => "#ff7f0e",
        };
        svg.push_str(&format!(
            r#"<rect x="{:.1}" y="{lane}" width="1.5" height="12" fill="{colour}"/>"#,
            x(w.at)
        ));
    }
    let dns_lane = lane + 16.0;
    svg.push_str(&format!(r#"<text x="2" y="{}">dns</text>"#, dns_lane + 9.0));
    for w in writes {
        let colour = if w.dns == HOME { "#1f77b4" } else { "#ff7f0e" };
        svg.push_str(&format!(
            r#"<rect x="{:.1}" y="{dns_lane}" width="1.5" height="12" fill="{colour}"/>"#,
            x(w.at)
        ));
    }
    let axis = dns_lane + 24.0;
    svg.push_str(&format!(
        r#"<line x1="{left}" y1="{axis}" x2="{:.1}" y2="{axis}" stroke="black"/>"#,
        x(end)
    ));
    let mut second = 0.0;
    while second <= end {
        svg.push_str(&format!(
            r#"<line x1="{0:.1}" y1="{axis}" x2="{0:.1}" y2="{1}" stroke="black"/><text x="{0:.1}" y="{2}" text-anchor="middle">{3}s</text>"#,
            x(second),
            axis + 4.0,
            axis + 15.0,
            second
        ));
        second += 5.0;
    }
    for (i, (at, what)) in events.iter().enumerate() {
        let y = axis + 34.0 + 16.0 * i as f64;
        let text = clip_label(what, 110)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "'");
        // A label right of the middle is drawn leftwards from its mark, so no label runs
        // off the right edge (a label is at most 110 characters, about half the width).
        let (label_x, anchor) = if x(*at) > width / 2.0 {
            (x(*at) - 3.0, "end")
        } else {
            (x(*at) + 3.0, "start")
        };
        svg.push_str(&format!(
            r##"<line x1="{0:.1}" y1="{axis}" x2="{0:.1}" y2="{1}" stroke="#999" stroke-dasharray="2,2"/><text x="{2:.1}" y="{1}" text-anchor="{5}">t+{3:.2}s {4}</text>"##,
            x(*at),
            y,
            label_x,
            at,
            text,
            anchor
        ));
    }
    svg.push_str(
        r##"<text x="40" y="44" fill="#555">app writes (through serving instances, to the region each holds): blue = home, orange = standby, red = failed; dns: the region DNS gave the user</text></svg>"##,
    );
    svg
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub(crate) fn clip_label(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}
