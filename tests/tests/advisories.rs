//! The dependency advisory check, offline: every crate version in Cargo.lock against the
//! RustSec advisories vendored in `rig/advisory-db` (refresh them with
//! `scripts/refresh-advisories <advisory-db checkout>` where GitHub is reachable; this
//! machine and CI reach only package registries, so `cargo audit` cannot fetch its
//! database here).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use regionpilot_tests::paths;
use semver::{Version, VersionReq};
use serde::Deserialize;

#[derive(Deserialize)]
struct Lock {
    package: Vec<LockedPackage>,
}

#[derive(Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
}

#[derive(Deserialize)]
struct Advisory {
    advisory: AdvisoryInfo,
    #[serde(default)]
    versions: Versions,
    #[serde(default)]
    affected: Affected,
}

#[derive(Deserialize)]
struct AdvisoryInfo {
    id: String,
    package: String,
    #[serde(default)]
    informational: Option<String>,
    #[serde(default)]
    withdrawn: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
struct Versions {
    #[serde(default)]
    patched: Vec<String>,
    #[serde(default)]
    unaffected: Vec<String>,
}

#[derive(Deserialize, Default)]
struct Affected {
    #[serde(default)]
    os: Vec<String>,
}

/// The TOML block at the top of an advisory's Markdown file.
fn front_matter(text: &str) -> &str {
    let start = text
        .find("```toml")
        .map(|i| i + "```toml".len())
        .unwrap_or(0);
    let end = text[start..].find("```").map_or(text.len(), |i| start + i);
    &text[start..end]
}

fn advisories(dir: &Path) -> Vec<Advisory> {
    let mut all = Vec::new();
    for krate in std::fs::read_dir(dir).expect("rig/advisory-db/crates") {
        for file in std::fs::read_dir(krate.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let advisory: Advisory = toml::from_str(front_matter(&text))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            all.push(advisory);
        }
    }
    all
}

/// A version is affected unless a `patched` or `unaffected` requirement matches it.
fn affects(advisory: &Advisory, version: &Version) -> bool {
    let matches = |reqs: &[String]| {
        reqs.iter().any(|r| {
            VersionReq::parse(r)
                .unwrap_or_else(|e| panic!("{}: bad requirement {r}: {e}", advisory.advisory.id))
                .matches(version)
        })
    };
    let runs_here =
        advisory.affected.os.is_empty() || advisory.affected.os.iter().any(|os| os == "linux");
    advisory.advisory.withdrawn.is_none()
        && runs_here
        && !matches(&advisory.versions.patched)
        && !matches(&advisory.versions.unaffected)
}

#[test]
fn no_locked_dependency_has_an_unpatched_rustsec_advisory() {
    let root = paths::workspace();
    let lock: Lock =
        toml::from_str(&std::fs::read_to_string(root.join("Cargo.lock")).unwrap()).unwrap();
    let advisories = advisories(&root.join("rig/advisory-db/crates"));
    assert!(advisories.len() > 20, "the vendored database looks empty");
    let mut by_crate: BTreeMap<&str, Vec<&Advisory>> = BTreeMap::new();
    for advisory in &advisories {
        by_crate
            .entry(&advisory.advisory.package)
            .or_default()
            .push(advisory);
    }

    let mut vulnerable = Vec::new();
    let mut warnings = Vec::new();
    for package in &lock.package {
        let version = Version::parse(&package.version).unwrap();
        for advisory in by_crate.get(package.name.as_str()).into_iter().flatten() {
            if !affects(advisory, &version) {
                continue;
            }
            let line = format!(
                "{} {} {}",
                package.name, package.version, advisory.advisory.id
            );
            match &advisory.advisory.informational {
                Some(kind) => warnings.push(format!("{line} ({kind})")),
                None => vulnerable.push(line),
            }
        }
    }
    println!(
        "advisories: {} locked packages checked against {} advisories; {} informational: {warnings:?}",
        lock.package.len(),
        advisories.len(),
        warnings.len()
    );
    assert!(
        vulnerable.is_empty(),
        "unpatched advisories: {vulnerable:?}"
    );
}

#[test]
fn the_check_flags_a_known_vulnerable_version() {
    // tokio 1.18.3 is inside RUSTSEC-2023-0001's affected range on Windows only; hyper
    // 0.14.9 is affected by RUSTSEC-2021-0078 everywhere.
    let advisories = advisories(&paths::workspace().join("rig/advisory-db/crates"));
    let find = |id: &str| {
        advisories
            .iter()
            .find(|a| a.advisory.id == id)
            .unwrap_or_else(|| panic!("{id} not vendored"))
    };
    assert!(affects(
        find("RUSTSEC-2021-0078"),
        &Version::parse("0.14.9").unwrap()
    ));
    assert!(!affects(
        find("RUSTSEC-2021-0078"),
        &Version::parse("0.14.10").unwrap()
    ));
    assert!(!affects(
        find("RUSTSEC-2023-0001"),
        &Version::parse("1.18.3").unwrap()
    ));
}
