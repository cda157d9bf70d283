//! The built bootstrap with a failback mode it does not know: init stops naming
//! FAILBACK_MODE. (Also why `cargo test` builds this bootstrap, in the same build as the
//! rig's integration tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn an_unknown_failback_mode_is_named_at_init() {
    let out = Command::new(env!("CARGO_BIN_EXE_failback"))
        .env_clear()
        .envs(regionpilot::testing::TEST_ENV)
        .env("FAILBACK_MODE", "sometimes")
        .output()
        .expect("run the bootstrap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("FAILBACK_MODE"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
