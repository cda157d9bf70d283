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

#[test]
fn a_regional_deployment_role_is_refused_naming_the_variable() {
    // Everything a regional stack's gate needs, but this is the failover function.
    let out = Command::new(env!("CARGO_BIN_EXE_failover"))
        .env_clear()
        .env("REGIONS", "us-east-1,us-west-2")
        .env("AWS_REGION", "us-east-1")
        .env("ACTIVE_REGION_PARAMETER", "/app/active-region")
        .env("DEPLOYMENT_ROLE", "regional")
        // No Runtime API here: the init error is logged, and the process stops.
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .expect("run the bootstrap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("DEPLOYMENT_ROLE"),
        "{stdout}{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
