//! The built bootstrap with one bad value: init stops with an error naming the variable and
//! the accepted range, before any AWS call. (Also why `cargo test` builds this bootstrap,
//! in the same build as the rig's integration tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn a_probe_timeout_out_of_range_is_named_at_init() {
    let out = Command::new(env!("CARGO_BIN_EXE_health-probe"))
        .env_clear()
        .envs(regionpilot::testing::TEST_ENV)
        .env("PROBE_TIMEOUT_MS", "0")
        .output()
        .expect("run the bootstrap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("PROBE_TIMEOUT_MS"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
