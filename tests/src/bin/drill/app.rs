//! The application and its users: a request from a user goes where DNS sends them, to an
//! in-service instance, and writes to the region that instance holds; and the share of
//! requests that reach the new region, under each traffic signal.

use crate::*;

/// One request of the simulated application.
#[derive(Clone)]
pub(crate) struct Write {
    pub(crate) at: f64,
    /// The region DNS gave the user.
    pub(crate) dns: String,
    /// Whether an in-service instance of the DNS region took the request.
    pub(crate) served: bool,
    /// The region the write went to: the one the serving instance holds ("-": none served).
    pub(crate) region: String,
    pub(crate) key: String,
    pub(crate) ok: bool,
    /// The same request under the fast signals ([`FAST_SIGNALS`]): the region that
    /// signal's DNS gave the same user, and whether an in-service instance there took it.
    /// (The write itself goes where the metric signal sent it.)
    pub(crate) alt: [(String, bool); 2],
}

/// The traffic signals measured beside `metric` on the same outage, in `Write::alt` order.
pub(crate) const FAST_SIGNALS: [&str; 2] = ["gate", "routing-control"];

/// The gates' path token in the drill (the template derives one per stack).
pub(crate) const GATE_TOKEN: &str = "drill-gate-token-0123456789";

/// Whether `region`'s endpoints answered recently (its instance model did).
pub(crate) fn answering(fleet: &Fleet, region: &str) -> bool {
    fleet
        .lock()
        .unwrap()
        .get(region)
        .is_some_and(|(at, _)| at.elapsed() < FLEET_STALE)
}

/// The latest answer of each region's instance model, with when it came.
pub(crate) type Fleet = Arc<Mutex<BTreeMap<String, (Instant, Vec<ModelInstance>)>>>;

/// An answer older than this means the region is not answering: its instances serve no one.
pub(crate) const FLEET_STALE: Duration = Duration::from_millis(1_500);

/// Polls one region's instance model every 200 ms. A frozen or killed region stops
/// answering, and its entry goes stale.
pub(crate) async fn observe(
    view: InstanceView,
    region: &'static str,
    fleet: Fleet,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let v = view.clone();
        let read = tokio::task::spawn_blocking(move || v.live_instances(region, GROUP))
            .await
            .ok()
            .flatten();
        if let Some(instances) = read {
            fleet
                .lock()
                .unwrap()
                .insert(region.to_owned(), (Instant::now(), instances));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// In-service instances of `region` as last seen, if the region answered recently.
pub(crate) fn in_service(fleet: &Fleet, region: &str) -> Vec<ModelInstance> {
    let fleet = fleet.lock().unwrap();
    match fleet.get(region) {
        Some((at, instances)) if at.elapsed() < FLEET_STALE => instances
            .iter()
            .filter(|i| i.state == "in_service")
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// The application's users: each has its own resolver cache, filled before the drill (so
/// their expiries are spread over one TTL).
pub(crate) const USERS: usize = 40;
/// The application sends one request this often, from the next user in turn.
pub(crate) const REQUEST_EVERY: Duration = Duration::from_millis(50);
/// "Users served from the new region": this share of the requests of a sliding window...
pub(crate) const USERS_SHARE: f64 = 0.95;
/// ...of one request from every user (2 s). A window of a round, not of a part of one:
/// users are asked in the order their caches expire, so a part would be a biased sample.
pub(crate) const USERS_WINDOW: f64 = USERS as f64 * REQUEST_EVERY.as_millis() as f64 / 1000.0;
/// A window with fewer requests than this (the sender fell behind) does not count.
pub(crate) const MIN_WINDOW_REQUESTS: usize = USERS * 3 / 4;

/// The application: a request from a user goes to the region DNS gave that user, to one of
/// that region's in-service instances (none answered recently: the request fails), and
/// writes an item to the region that instance holds, with a short timeout. Requests start
/// at a steady rate whatever earlier ones wait for; each is logged, when it ends, with
/// when it started.
pub(crate) async fn simulate_app(
    world: Arc<World>,
    fleet: Fleet,
    dns: Arc<Mutex<Dns>>,
    fast: [Arc<Mutex<SignalDns>>; 2],
    started: Instant,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Write>>>,
) {
    let ttl_ms = dns.lock().unwrap().timings.ttl_ms;
    let start_ms = epoch_ms();
    let mut users = Users::new(USERS, HOME, start_ms, ttl_ms, 13);
    // The same users (same caches, same draws) under each fast signal.
    let mut fast_users = [0, 1].map(|_| Users::new(USERS, HOME, start_ms, ttl_ms, 13));
    let mut requests = tokio::task::JoinSet::new();
    let mut next = tokio::time::Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let at = started.elapsed().as_secs_f64();
        let key = format!("write-{n:06}");
        let now = epoch_ms();
        let resolved = users.resolve(n as usize, now, &dns.lock().unwrap());
        let alt = [0, 1].map(|i| {
            let signal = fast[i].lock().unwrap().clone();
            let region = fast_users[i]
                .resolve_with(n as usize, now, ttl_ms, |at, pick| signal.answer(at, pick));
            let served = !in_service(&fleet, &region).is_empty();
            (region, served)
        });
        let serving = in_service(&fleet, &resolved);
        let served = !serving.is_empty();
        let target = served
            .then(|| serving[n as usize % serving.len()].value.clone())
            .flatten();
        let (world, log) = (world.clone(), log.clone());
        requests.spawn(async move {
            let (region, ok) = match target {
                Some(region) if world.clients.contains_key(&region) => {
                    let put = world
                        .client(&region)
                        .dynamodb
                        .put_item()
                        .table_name(world::APP_TABLE)
                        .item("pk", AttributeValue::S(key.clone()))
                        .item("region", AttributeValue::S(region.clone()))
                        .send();
                    let result = tokio::time::timeout(Duration::from_millis(300), put).await;
                    (region, matches!(result, Ok(Ok(_))))
                }
                _ => ("-".to_owned(), false),
            };
            log.lock().unwrap().push(Write {
                at,
                dns: resolved,
                served,
                region,
                key,
                ok,
                alt,
            });
        });
        while requests.try_join_next().is_some() {}
        next += REQUEST_EVERY;
        tokio::time::sleep_until(next).await;
    }
    requests.join_all().await;
}

/// The requests so far, in the order they started.
pub(crate) fn requests_so_far(log: &Mutex<Vec<Write>>) -> Vec<Write> {
    let mut writes = log.lock().unwrap().clone();
    writes.sort_by(|a, b| a.at.total_cmp(&b.at));
    writes
}

/// The first time, after `from` plus one window, when at least [`USERS_SHARE`] of the
/// requests of the last `window` seconds reached an in-service instance of `region`
/// (`writes` in the order they started).
pub(crate) fn share_reached(writes: &[Write], region: &str, from: f64, window: f64) -> Option<f64> {
    share_reached_by(writes, region, from, window, |w| (w.dns.as_str(), w.served))
}

/// [`share_reached`] under any signal: `pick` gives a request's DNS region and whether an
/// in-service instance there took it.
pub(crate) fn share_reached_by(
    writes: &[Write],
    region: &str,
    from: f64,
    window: f64,
    pick: impl Fn(&Write) -> (&str, bool),
) -> Option<f64> {
    let mut start = 0;
    for (end, w) in writes.iter().enumerate() {
        while writes[start].at <= w.at - window {
            start += 1;
        }
        let slice = &writes[start..=end];
        if w.at < from + window || slice.len() < MIN_WINDOW_REQUESTS {
            continue;
        }
        let reached = slice
            .iter()
            .filter(|w| {
                let (dns, served) = pick(w);
                served && dns == region
            })
            .count();
        if reached as f64 >= USERS_SHARE * slice.len() as f64 {
            return Some(w.at);
        }
    }
    None
}

/// Waits (until `until` on the timeline) for [`share_reached`] in the standby; marks it.
pub(crate) async fn wait_for_users(
    t: &Timeline,
    writes: &Mutex<Vec<Write>>,
    from: f64,
    window: f64,
    until: f64,
) -> Option<f64> {
    loop {
        let reached = share_reached(&requests_so_far(writes), STANDBY, from, window);
        if let Some(at) = reached {
            t.mark(format!(
                "users: {:.0} % of requests reach {STANDBY}'s instances since t+{at:.3}s (over the last {window} s)",
                USERS_SHARE * 100.0
            ));
            return Some(at);
        }
        if t.started.elapsed().as_secs_f64() > until {
            t.mark(format!(
                "users: {:.0} % of requests did not reach {STANDBY} by t+{until:.3}s",
                USERS_SHARE * 100.0
            ));
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
