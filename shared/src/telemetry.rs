//! Logging set-up shared by every function: JSON lines in Lambda (CloudWatch Logs parses
//! them into fields), readable text when run by hand with `LOG_FORMAT=text`.
//!
//! `RUST_LOG` takes `target=level` directives and a bare default level (`info`,
//! `trace`, `info,aws_smithy_runtime=debug`): tracing-subscriber's `Targets`, which needs
//! no regular-expression engine (`EnvFilter` would add one to every deployment zip).

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Info for regionpilot, warnings only from the SDK's plumbing.
fn default_filter() -> Targets {
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("aws_config", LevelFilter::WARN)
        .with_target("aws_smithy_runtime", LevelFilter::WARN)
        .with_target("hyper", LevelFilter::WARN)
}

pub fn init_logging() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(default_filter);
    let text = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("text"));
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stderr);
    if text {
        registry.with(layer.without_time()).init();
    } else {
        registry
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .init();
    }
}
