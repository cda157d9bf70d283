//! CloudWatch Embedded Metric Format documents for the probe's results, one JSON line per
//! document on stdout, where Lambda's log agent turns them into metrics.
//!
//! Why not `metrics_cloudwatch_embedded`: it cannot set `StorageResolution`, and the
//! failover alarm needs 1-second (high-resolution) metrics to see an outage in about 30 s
//! rather than 3 minutes. The format is small and specified, so it is modelled here as
//! typed structs (serde) rather than built by hand.
//! Spec: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::evidence::health::Round;
use crate::region::Region;

#[derive(Serialize)]
pub struct Document {
    #[serde(rename = "_aws")]
    pub aws: Metadata,
    /// Dimension values and metric values, at the top level as the format requires.
    #[serde(flatten)]
    pub members: BTreeMap<String, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    pub timestamp: u64,
    pub cloud_watch_metrics: Vec<Directive>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Directive {
    pub namespace: String,
    pub dimensions: Vec<Vec<String>>,
    pub metrics: Vec<MetricDefinition>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDefinition {
    pub name: String,
    pub unit: &'static str,
    /// 1 for high resolution; omitted means standard (60 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_resolution: Option<u8>,
}

struct Builder<'a> {
    namespace: &'a str,
    timestamp: u64,
    high_resolution: bool,
}

impl Builder<'_> {
    fn document(
        &self,
        dimensions: &[(&str, &str)],
        metrics: &[(&str, &'static str, Option<f64>)],
    ) -> Option<Document> {
        let present: Vec<_> = metrics
            .iter()
            .filter_map(|(n, u, v)| v.map(|v| (*n, *u, v)))
            .collect();
        if present.is_empty() {
            return None;
        }
        let mut members = BTreeMap::new();
        for (name, value) in dimensions {
            members.insert((*name).to_owned(), Value::from(*value));
        }
        for (name, _, value) in &present {
            members.insert((*name).to_owned(), Value::from(*value));
        }
        Some(Document {
            aws: Metadata {
                timestamp: self.timestamp,
                cloud_watch_metrics: vec![Directive {
                    namespace: self.namespace.to_owned(),
                    dimensions: vec![dimensions.iter().map(|(n, _)| (*n).to_owned()).collect()],
                    metrics: present
                        .iter()
                        .map(|(name, unit, _)| MetricDefinition {
                            name: (*name).to_owned(),
                            unit,
                            storage_resolution: self.high_resolution.then_some(1),
                        })
                        .collect(),
                }],
            },
            members,
        })
    }
}

/// The documents for one probe round: per region `Healthy`, `ReadLatencyMs`,
/// `WriteLatencyMs` (dimension `Region`); per region pair `ReplicationLagSeconds`
/// (dimensions `FromRegion`, `ToRegion`). Unknown values are left out, never faked.
pub fn round_documents(namespace: &str, round: &Round, high_resolution: bool) -> Vec<Document> {
    let builder = Builder {
        namespace,
        timestamp: round.at,
        high_resolution,
    };
    let mut documents = Vec::new();
    for health in &round.regions {
        documents.extend(builder.document(
            &[("Region", health.region.as_str())],
            &[
                (
                    "Healthy",
                    "None",
                    Some(if health.healthy { 1.0 } else { 0.0 }),
                ),
                (
                    "ReadLatencyMs",
                    "Milliseconds",
                    health.read_latency_ms.map(|v| v as f64),
                ),
                (
                    "WriteLatencyMs",
                    "Milliseconds",
                    health.write_latency_ms.map(|v| v as f64),
                ),
            ],
        ));
    }
    for lag in &round.replication {
        documents.extend(builder.document(
            &[
                ("FromRegion", lag.from.as_str()),
                ("ToRegion", lag.to.as_str()),
            ],
            &[("ReplicationLagSeconds", "Seconds", lag.lag_seconds)],
        ));
    }
    documents
}

/// `ActiveRegion` per region (dimension `Region`): 1 for `active`, 0 for every other.
/// Standard resolution, since Route 53 health checks accept no high-resolution alarm; the
/// template's `<stack>-serving-<region>` alarms and health checks follow it, so DNS moves
/// with the control state and never with a record edit.
pub fn active_region_documents(
    namespace: &str,
    regions: &[Region],
    active: &Region,
    at: u64,
) -> Vec<Document> {
    regions
        .iter()
        .flat_map(|region| {
            let value = if region == active { 1.0 } else { 0.0 };
            signal(
                namespace,
                "ActiveRegion",
                "None",
                value,
                &[("Region", region.as_str())],
                at,
            )
        })
        .collect()
}

/// `VantageHealthy` per vantage point and region (dimensions `Vantage`, `Region`): each
/// vantage point's latest verdict, 1 healthy or 0 down, for the dashboard's view from
/// every place. The verifier emits it each minute in the control region, where every
/// vantage point's verdicts meet (a probe's own metrics land in its own region). Only a
/// verdict younger than `fresh_for` is emitted: a silent vantage point is a gap, never a
/// repeated old verdict.
pub fn vantage_documents(
    namespace: &str,
    all: &[crate::evidence::samples::ProbeSamples],
    now: u64,
    fresh_for: std::time::Duration,
) -> Vec<Document> {
    let fresh_for = fresh_for.as_millis() as u64;
    all.iter()
        .flat_map(|point| {
            point.regions.iter().filter_map(move |(region, kept)| {
                let latest = kept.last()?;
                (now.saturating_sub(latest.at) < fresh_for).then(|| {
                    signal(
                        namespace,
                        "VantageHealthy",
                        "None",
                        if latest.healthy { 1.0 } else { 0.0 },
                        &[
                            ("Vantage", point.vantage.as_str()),
                            ("Region", region.as_str()),
                        ],
                        now,
                    )
                })
            })
        })
        .flatten()
        .collect()
}

/// A single metric, for events such as a switch or the flap guard pausing automation.
pub fn signal(
    namespace: &str,
    name: &str,
    unit: &'static str,
    value: f64,
    dimensions: &[(&str, &str)],
    at: u64,
) -> Vec<Document> {
    let builder = Builder {
        namespace,
        timestamp: at,
        high_resolution: false,
    };
    builder
        .document(dimensions, &[(name, unit, Some(value))])
        .into_iter()
        .collect()
}

/// Writes the documents to stdout, one line each (the format requires one per line).
/// A write error is ignored: a metric must never fail (or panic) an invocation.
pub fn emit(documents: &[Document]) {
    for document in documents {
        if let Ok(line) = serde_json::to_string(document) {
            write_line(&line);
        }
    }
}

#[cfg(not(test))]
fn write_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// In this crate's unit tests: captured by the test harness, like their other output.
#[cfg(test)]
fn write_line(line: &str) {
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::health::{RegionHealth, ReplicationLag};
    use crate::testing::region;

    fn round() -> Round {
        Round {
            at: 1_764_000_000_000,
            regions: vec![
                RegionHealth {
                    region: region("us-east-1"),
                    healthy: false,
                    canary_found: false,
                    read_latency_ms: None,
                    write_latency_ms: None,
                    error_class: None,
                    error: None,
                },
                RegionHealth {
                    region: region("us-west-2"),
                    healthy: true,
                    canary_found: true,
                    read_latency_ms: Some(4),
                    write_latency_ms: Some(9),
                    error_class: None,
                    error: None,
                },
            ],
            replication: vec![ReplicationLag {
                from: region("us-west-2"),
                to: region("us-east-1"),
                lag_seconds: Some(1.5),
                error_class: None,
                error: None,
            }],
        }
    }

    /// Checks a document against the EMF specification's required structure.
    fn assert_valid_emf(doc: &Value) {
        let aws = &doc["_aws"];
        assert!(
            aws["Timestamp"].is_u64(),
            "Timestamp must be epoch millis: {doc}"
        );
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics array");
        assert!(!directives.is_empty());
        for directive in directives {
            assert!(
                directive["Namespace"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty())
            );
            for set in directive["Dimensions"].as_array().expect("Dimensions") {
                let set = set.as_array().expect("dimension set is an array");
                assert!(set.len() <= 30);
                for name in set {
                    let name = name.as_str().expect("dimension name");
                    assert!(
                        doc[name].is_string(),
                        "dimension {name} needs a top-level string value"
                    );
                }
            }
            for metric in directive["Metrics"].as_array().expect("Metrics") {
                let name = metric["Name"].as_str().expect("metric Name");
                assert!(
                    doc[name].is_number(),
                    "metric {name} needs a top-level number value"
                );
                if let Some(resolution) = metric.get("StorageResolution") {
                    assert!(resolution == 1 || resolution == 60);
                }
            }
        }
    }

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let docs: Vec<Value> = round_documents("RegionPilot", &round(), true)
            .iter()
            .map(|d| serde_json::to_value(d).expect("json"))
            .collect();
        assert_eq!(docs.len(), 3);
        for doc in &docs {
            assert_valid_emf(doc);
            assert_eq!(doc["_aws"]["Timestamp"], 1_764_000_000_000u64);
        }
        // The unhealthy region reports Healthy 0 and no invented latencies.
        assert_eq!(docs[0]["Region"], "us-east-1");
        assert_eq!(docs[0]["Healthy"], 0.0);
        assert!(docs[0].get("ReadLatencyMs").is_none());
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        assert_eq!(docs[1]["WriteLatencyMs"], 9.0);
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"],
            "Milliseconds"
        );
        assert_eq!(docs[2]["FromRegion"], "us-west-2");
        assert_eq!(docs[2]["ReplicationLagSeconds"], 1.5);
        assert_eq!(
            docs[2]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"],
            1
        );
    }

    #[test]
    fn active_region_is_one_for_the_active_region_and_zero_elsewhere_at_standard_resolution() {
        let regions = [
            region("us-east-1"),
            region("us-west-2"),
            region("eu-west-1"),
        ];
        let docs: Vec<Value> =
            active_region_documents("RegionPilot", &regions, &region("us-west-2"), 42)
                .iter()
                .map(|d| serde_json::to_value(d).expect("json"))
                .collect();
        assert_eq!(docs.len(), 3);
        for doc in &docs {
            assert_valid_emf(doc);
            let metric = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(metric["Dimensions"], serde_json::json!([["Region"]]));
            assert_eq!(metric["Metrics"][0]["Name"], "ActiveRegion");
            assert!(metric["Metrics"][0].get("StorageResolution").is_none());
        }
        let values: Vec<(&str, f64)> = docs
            .iter()
            .map(|d| {
                (
                    d["Region"].as_str().unwrap(),
                    d["ActiveRegion"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            values,
            [("us-east-1", 0.0), ("us-west-2", 1.0), ("eu-west-1", 0.0)]
        );
    }

    #[test]
    fn standard_resolution_omits_storage_resolution() {
        let doc = serde_json::to_value(&round_documents("N", &round(), false)[1]).expect("json");
        assert!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]
                .get("StorageResolution")
                .is_none()
        );
    }

    #[test]
    fn each_vantage_points_fresh_verdict_is_one_vantage_healthy_point() {
        use crate::evidence::samples::{ProbeSamples, Sample};
        let now = 1_764_000_000_000;
        let sample = |age_ms: u64, healthy| Sample {
            at: now - age_ms,
            healthy,
            error_class: None,
        };
        let mut standby = ProbeSamples::new(region("us-west-2"));
        standby.regions.insert(
            region("us-east-1"),
            vec![sample(20_000, true), sample(5_000, false)],
        );
        standby
            .regions
            .insert(region("us-west-2"), vec![sample(5_000, true)]);
        // Silent for a minute: no point, not its old verdict again.
        let mut third = ProbeSamples::new(region("eu-west-1"));
        third
            .regions
            .insert(region("us-east-1"), vec![sample(60_000, true)]);
        let docs: Vec<Value> = vantage_documents(
            "RegionPilot",
            &[standby, third],
            now,
            std::time::Duration::from_secs(30),
        )
        .iter()
        .map(|d| serde_json::to_value(d).expect("json"))
        .collect();
        for doc in &docs {
            assert_valid_emf(doc);
            assert_eq!(
                doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                serde_json::json!([["Vantage", "Region"]])
            );
        }
        let points: Vec<(&str, &str, f64)> = docs
            .iter()
            .map(|d| {
                (
                    d["Vantage"].as_str().unwrap(),
                    d["Region"].as_str().unwrap(),
                    d["VantageHealthy"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            points,
            [
                ("us-west-2", "us-east-1", 0.0),
                ("us-west-2", "us-west-2", 1.0)
            ]
        );
    }
}
