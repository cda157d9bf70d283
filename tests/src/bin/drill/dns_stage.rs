//! The metric signal's DNS stage, read from the functions' EMF logs as they are written.

use crate::*;

/// What one run's DNS stage saw.
#[derive(Default)]
pub(crate) struct DnsSeen {
    /// Alarm and health check changes, at their model time on the timeline.
    pub(crate) changes: Vec<(f64, Change)>,
    /// Every `ActiveRegion` datapoint: timestamp on the timeline, region, value.
    pub(crate) points: Vec<(f64, String, f64)>,
    /// Datapoints declared at high resolution (an alarm behind a health check must not be).
    pub(crate) high_resolution: usize,
}

impl DnsSeen {
    /// When `region`'s health check first became `healthy` after `after`.
    pub(crate) fn health(&self, region: &str, healthy: bool, after: f64) -> Option<f64> {
        self.changes.iter().find_map(|(at, change)| match change {
            Change::Health {
                region: r,
                healthy: h,
                ..
            } if *at > after && r == region && *h == healthy => Some(*at),
            _ => None,
        })
    }
}

/// A function's log file (`LocalFunction` writes `<rig dir>/<name>.log`).
pub(crate) fn log_path(stage: &Stage, function: &LocalFunction) -> PathBuf {
    stage.rig.dir.join(format!("{}.log", function.name))
}

/// The DNS stage the rig cannot run: reads the functions' logs for `ActiveRegion`
/// datapoints as they are written, evaluates each region's serving alarm with the
/// template's rule, lets the health checks follow, and marks every change.
pub(crate) async fn dns_stage(
    t: Timeline,
    logs: Vec<PathBuf>,
    dns: Arc<Mutex<Dns>>,
    seen: Arc<Mutex<DnsSeen>>,
    stop: Arc<AtomicBool>,
) {
    let mut tails: Vec<(String, LogTail)> = logs
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            (name, LogTail::new(path))
        })
        .collect();
    let mut latest: BTreeMap<String, f64> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        for (name, tail) in &mut tails {
            let points: Vec<_> = tail
                .read_lines()
                .iter()
                .filter_map(|line| dns::datapoint(line))
                .collect();
            if points.is_empty() {
                continue;
            }
            let before = latest.clone();
            {
                let mut dns = dns.lock().unwrap();
                let mut seen = seen.lock().unwrap();
                for point in &points {
                    dns.record(point);
                    seen.points
                        .push((t.at(point.at_ms), point.region.clone(), point.value));
                    seen.high_resolution += usize::from(point.high_resolution);
                    latest.insert(point.region.clone(), point.value);
                }
            }
            if latest != before {
                let values: Vec<String> = latest.iter().map(|(r, v)| format!("{r}={v}")).collect();
                t.mark(format!("ActiveRegion {} ({name})", values.join(" ")));
            }
        }
        let changes = dns.lock().unwrap().advance(epoch_ms());
        for change in changes {
            let what = match &change {
                Change::Alarm { region, state, .. } => {
                    format!("serving alarm {region} -> {}", state.name())
                }
                Change::Health {
                    region, healthy, ..
                } => format!(
                    "health check {region} -> {}",
                    if *healthy { "healthy" } else { "unhealthy" }
                ),
            };
            t.mark(what);
            seen.lock()
                .unwrap()
                .changes
                .push((t.at(change.at_ms()), change));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The probe's schedule (the template's `rate(1 minute)`, scaled): one invocation a quarter
/// into every alarm period, so each period holds the probe's `ActiveRegion` datapoints.
pub(crate) async fn probe_schedule(
    probe: Arc<LocalFunction>,
    t: Timeline,
    period: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut next = t.started + period / 4;
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() < next {
            tokio::time::sleep(Duration::from_millis(100).min(next - Instant::now())).await;
            continue;
        }
        let _ = probe.invoke(&json!({"command": "probe"})).await;
        while next <= Instant::now() {
            next += period;
        }
    }
}
