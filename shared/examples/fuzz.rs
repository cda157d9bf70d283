//! A long fuzzing run on stable Rust over every input surface: the failover function's
//! event decoding (alarms in every delivery shape, commands), the probe's and the
//! verifier's requests, the configuration (every variable) and `FAILBACK_WINDOW`. Inputs
//! are the fixtures in `events/` mutated (values swapped for words the decoders look for,
//! fields dropped, types changed, strings cut), random JSON over those words, and random
//! text. Every execution runs under `catch_unwind`; a panic is counted and its input kept.
//!
//!     cargo run -p regionpilot-shared --features testing --example fuzz -- [EXECUTIONS] [SEED]
//!
//! (`make fuzz` runs 10 million.) It prints the executions per surface, the rate, and the
//! panics; it exits non-zero if there was any. The unit tests' proptest cases cover the
//! same surfaces in every `cargo test`; this is the long run they cannot afford.

#![allow(clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use regionpilot::config::Config;
use regionpilot::testing::{DECODER_WORDS as WORDS, config};
use serde_json::{Map, Value};

const VARIABLES: &[&str] = &[
    "ACTIVE_REGION_PARAMETER",
    "APP_NAME",
    "AUTO_SCALING_GROUPS",
    "AWS_REGION",
    "CALL_MAX_ATTEMPTS",
    "CALL_TIMEOUT_MS",
    "CAPACITY_PERCENT",
    "CONNECT_TIMEOUT_MS",
    "CONTROL_TABLE",
    "COOLDOWN_SECONDS",
    "EVENT_BUS_NAME",
    "FAILBACK_DRAIN_WAIT_SECONDS",
    "FAILBACK_HEALTHY_CHECKS",
    "FAILBACK_MAX_LAG_SECONDS",
    "FAILBACK_MIN_HOLD_SECONDS",
    "FAILBACK_MODE",
    "FAILBACK_WINDOW",
    "HEALTH_KEY",
    "HEALTH_TABLE",
    "MAX_AUTOMATIC_SWITCHES_PER_DAY",
    "METRICS_NAMESPACE",
    "PROBE_INTERVAL_SECONDS",
    "PROBE_TIMEOUT_MS",
    "PROBE_WINDOW_SECONDS",
    "READINESS_INTERVAL_SECONDS",
    "REFRESH_MIN_HEALTHY_PERCENT",
    "REFRESH_WARMUP_SECONDS",
    "REGIONS",
    "REGION_ENDPOINTS",
    "RELOAD_COMMANDS",
    "RELOAD_MODE",
    "RELOAD_TIMEOUT_SECONDS",
    "SCALE_IN_DELAY_SECONDS",
    "TRAFFIC",
    "TRANSITION_LEASE_SECONDS",
];

const VALUE_PIECES: &[&str] = &[
    "0",
    "1",
    "2",
    "5",
    "10",
    "59",
    "60",
    "4000",
    "65535",
    "4294967296",
    "-1",
    "1.5",
    " 3",
    "on",
    "off",
    "approve",
    "auto",
    "refresh",
    "run-command",
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    ",",
    "=",
    ";",
    "/",
    "app",
    "pk=canary",
    "http://127.0.0.1:1",
    "Mon",
    "Sun",
    "Mon-Fri",
    "02:00-04:00",
    "23:30-00:30",
    "Sat 01:00-03:00",
    "UTC",
    "24:00",
    "99:99",
    " ",
    "\u{0}",
    "🙂",
    "x",
];

/// xorshift64*: fast, seedable, good enough to pick from lists.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

fn leaf(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(2)),
        2 => Value::from(rng.next() as i64),
        3 => Value::from((rng.next() as f64) / 1e6),
        4 => Value::from(random_text(rng, 24)),
        _ => Value::from(*rng.pick(WORDS)),
    }
}

fn random_json(rng: &mut Rng, depth: usize) -> Value {
    if depth == 0 || rng.chance(3) {
        return leaf(rng);
    }
    match rng.below(6) {
        0 => Value::Array(
            (0..rng.below(5))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        1 => Value::from(random_json(rng, depth - 1).to_string()),
        _ => Value::Object(
            (0..rng.below(6))
                .map(|_| (rng.pick(WORDS).to_string(), random_json(rng, depth - 1)))
                .collect::<Map<_, _>>(),
        ),
    }
}

fn random_text(rng: &mut Rng, max: usize) -> String {
    (0..rng.below(max))
        .map(|_| match rng.below(4) {
            0 => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'),
            1 => char::from(rng.below(32) as u8),
            _ => char::from(b' ' + rng.below(95) as u8),
        })
        .collect()
}

/// One mutation somewhere in `value`: a value replaced, a field dropped or added, a
/// string cut or re-encoded as JSON-in-a-string.
fn mutate(rng: &mut Rng, value: &mut Value, depth: usize) {
    let descend = depth < 8 && rng.chance(2);
    match value {
        Value::Object(map) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(rng.below(map.len()))
                .cloned()
                .unwrap_or_default();
            if descend {
                if let Some(inner) = map.get_mut(&key) {
                    mutate(rng, inner, depth + 1);
                }
                return;
            }
            match rng.below(4) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(rng.pick(WORDS).to_string(), random_json(rng, 2));
                }
                _ => {
                    map.insert(key, random_json(rng, 2));
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = rng.below(items.len());
            if descend {
                mutate(rng, &mut items[i], depth + 1);
            } else {
                items[i] = random_json(rng, 2);
            }
        }
        Value::String(text) => {
            // A string holding JSON (SNS's Message): mutate inside it half the time.
            if let Ok(mut inner) = serde_json::from_str::<Value>(text)
                && rng.chance(2)
            {
                mutate(rng, &mut inner, depth + 1);
                *text = inner.to_string();
                return;
            }
            match rng.below(3) {
                0 => {
                    let cut = rng.below(text.len() + 1);
                    let cut = (0..=cut)
                        .rev()
                        .find(|i| text.is_char_boundary(*i))
                        .unwrap_or(0);
                    text.truncate(cut);
                }
                1 => *text = rng.pick(WORDS).to_string(),
                _ => *value = random_json(rng, 2),
            }
        }
        _ => *value = random_json(rng, 2),
    }
}

fn fixtures() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut all: Vec<Value> = std::fs::read_dir(&dir)
        .expect("events/")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let text = std::fs::read_to_string(&path).ok()?;
            serde_json::from_str(&text).ok()
        })
        .collect();
    all.sort_by_key(|v| v.to_string());
    all
}

fn random_value(rng: &mut Rng) -> String {
    (0..1 + rng.below(4))
        .map(|_| *rng.pick(VALUE_PIECES))
        .collect()
}

#[derive(Default)]
struct Counts {
    executions: BTreeMap<&'static str, u64>,
    panics: Vec<(&'static str, String)>,
}

impl Counts {
    fn run(&mut self, surface: &'static str, input: impl FnOnce() -> String, body: impl FnOnce()) {
        *self.executions.entry(surface).or_default() += 1;
        if catch_unwind(AssertUnwindSafe(body)).is_err() {
            self.panics.push((surface, input()));
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let executions: u64 = args
        .next()
        .map_or(10_000_000, |a| a.parse().expect("EXECUTIONS"));
    let seed: u64 = args
        .next()
        .map_or(0x5EED_2026, |a| a.parse().expect("SEED"));
    // Panics are counted, not printed one by one.
    std::panic::set_hook(Box::new(|_| {}));
    let config = config();
    let fixtures = fixtures();
    let mut rng = Rng(seed | 1);
    let mut counts = Counts::default();
    let started = Instant::now();
    for n in 0..executions {
        match n % 10 {
            // Fixtures mutated, one to four times: the shapes AWS sends, slightly wrong.
            0..=3 => {
                let mut event = rng.pick(&fixtures).clone();
                for _ in 0..1 + rng.below(4) {
                    mutate(&mut rng, &mut event, 0);
                }
                counts.run(
                    "event (mutated fixture)",
                    || event.to_string(),
                    || {
                        let _ = regionpilot::decision::event::decode(&event, &config);
                    },
                );
            }
            4 | 5 => {
                let event = random_json(&mut rng, 6);
                counts.run(
                    "event (random JSON)",
                    || event.to_string(),
                    || {
                        let _ = regionpilot::decision::event::decode(&event, &config);
                    },
                );
            }
            6 => {
                let mut request = random_json(&mut rng, 4);
                if rng.chance(2) {
                    let mut fixture = rng.pick(&fixtures).clone();
                    mutate(&mut rng, &mut fixture, 0);
                    request = fixture;
                }
                counts.run(
                    "probe and verifier requests",
                    || request.to_string(),
                    || {
                        let _ = regionpilot::evidence::health::decode_request(&request);
                        let _ = regionpilot::verifier::failback::decode_request(&request);
                    },
                );
            }
            7 | 8 => {
                let mut env: Vec<(String, String)> = regionpilot::testing::TEST_ENV
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                for _ in 0..1 + rng.below(4) {
                    let variable = (*rng.pick(VARIABLES)).to_owned();
                    let value = if rng.chance(4) {
                        random_text(&mut rng, 40)
                    } else {
                        random_value(&mut rng)
                    };
                    env.retain(|(k, _)| *k != variable);
                    env.push((variable, value));
                }
                counts.run(
                    "configuration",
                    || format!("{env:?}"),
                    || {
                        let _ = Config::from_lookup(|name| {
                            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
                        });
                    },
                );
            }
            _ => {
                let window: String = if rng.chance(3) {
                    random_text(&mut rng, 60)
                } else {
                    (0..1 + rng.below(6))
                        .map(|_| *rng.pick(VALUE_PIECES))
                        .collect()
                };
                // Any moment from the epoch to a few centuries on.
                let at = rng.next() % 10_000_000_000_000;
                counts.run(
                    "FAILBACK_WINDOW",
                    || window.clone(),
                    || {
                        if let Ok(window) =
                            regionpilot::decision::window::FailbackWindow::parse(&window)
                        {
                            let _ = window.contains(at);
                            let _ = window.next_open(at);
                            let _ = window.to_string();
                        }
                    },
                );
            }
        }
    }
    let took = started.elapsed();
    let total: u64 = counts.executions.values().sum();
    println!(
        "fuzz: seed {seed}, {total} executions in {:.1} s ({:.0}/s)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    for (surface, n) in &counts.executions {
        println!("  {surface:<28} {n:>10}");
    }
    println!("  panics: {}", counts.panics.len());
    for (surface, input) in counts.panics.iter().take(10) {
        println!("    {surface}: {}", regionpilot::text::clip(input, 300));
    }
    if !counts.panics.is_empty() {
        std::process::exit(1);
    }
}
