//! The built bootstrap, run as Lambda runs it: with nothing configured it stops at init
//! with an error naming the first missing variable, and no panic. (Also why `cargo test`
//! builds this bootstrap, in the same build as the rig's integration tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn init_without_configuration_stops_naming_the_missing_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_failover"))
        .env_clear()
        .output()
        .expect("run the bootstrap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("REGIONS") && stderr.contains("is not set"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
