//! Where the harness finds the workspace, the rig's Python and the built bootstraps.

use std::path::PathBuf;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The venv `scripts/setup` creates, or `REGIONPILOT_PYTHON`.
pub fn python() -> PathBuf {
    std::env::var_os("REGIONPILOT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"))
}

/// A bootstrap built by `cargo test --workspace` (each function has an integration test of
/// its binary, so cargo builds it in the tests' own build) or `cargo build --workspace
/// --bins`, next to the running test binary.
/// `REGIONPILOT_LAMBDA_DIR` selects cargo-lambda's release artifacts instead
/// (`<dir>/<name>/bootstrap`, what `sam build` deploys), as the benchmarks do.
pub fn binary(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("REGIONPILOT_LAMBDA_DIR") {
        return PathBuf::from(dir).join(name).join("bootstrap");
    }
    if let Ok(dir) = std::env::var("REGIONPILOT_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    // Test binaries live in target/<profile>/deps, the drill in target/<profile>.
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .map(|dir| {
            if dir.ends_with("deps") {
                dir.parent().map(PathBuf::from).unwrap_or(dir)
            } else {
                dir
            }
        })
        .map(|dir| dir.join(name))
        .unwrap_or_else(|| workspace().join("target/debug").join(name))
}

/// A fresh scratch folder for one test's logs: target/rig-runs/<label>-<pid>-<n>.
pub fn scratch(label: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = workspace()
        .join("target/rig-runs")
        .join(format!("{label}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
