//! Parameters accept only what the functions accept, and samconfig builds what it deploys.

use crate::*;

/// Whether each value matches a parameter's AllowedPattern as a whole, by Python's `re`
/// (what cfn-lint checks defaults with; the patterns use nothing Java reads differently).
pub(crate) fn matches(pattern: &str, values: &[&str]) -> Vec<bool> {
    let script = "import json, re, sys\n\
                  print(json.dumps([re.fullmatch(sys.argv[1], v) is not None for v in json.loads(sys.argv[2])]))";
    let out = std::process::Command::new(paths::python())
        .args(["-c", script])
        .arg(pattern)
        .arg(json!(values).to_string())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a list of booleans")
}

/// Whether the functions' configuration accepts `value` for `variable`, the required
/// variables set.
pub(crate) fn config_accepts(variable: &str, value: &str) -> bool {
    let vars = [
        ("REGIONS", "us-east-1,us-west-2"),
        ("AWS_REGION", "us-west-2"),
        ("ACTIVE_REGION_PARAMETER", "/myapp/active-region"),
        ("CONTROL_TABLE", "rp-control"),
        ("HEALTH_TABLE", "app-health"),
        ("HEALTH_KEY", "pk=regionpilot-canary"),
        (variable, value),
    ];
    regionpilot::Config::from_lookup(|name| {
        vars.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .is_ok()
}

/// ProbeIntervalSeconds' allowed values, as numbers.
pub(crate) fn allowed_probe_intervals(template: &Value) -> Vec<u64> {
    template["Parameters"]["ProbeIntervalSeconds"]["AllowedValues"]
        .as_array()
        .expect("ProbeIntervalSeconds has AllowedValues")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// The template parameter each function variable is set from (`VARIABLE: !Ref Param`).
pub(crate) fn parameter_of_variable(template: &Value) -> BTreeMap<String, String> {
    template["Globals"]["Function"]["Environment"]["Variables"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(variable, value)| Some((variable.clone(), value["Ref"].as_str()?.to_owned())))
        .collect()
}

#[test]
pub(crate) fn every_numeric_parameter_has_the_codes_bounds() {
    use regionpilot::config::{self, NUMBERS, PROBE_INTERVALS, PROBE_TIMEOUT_MS};
    let template = template();
    let parameters = template["Parameters"].as_object().unwrap();
    let from = parameter_of_variable(&template);
    let mut checked = BTreeSet::new();
    for bounds in NUMBERS {
        let Some(name) = from.get(bounds.variable) else {
            continue; // not offered by the template (the function's default applies)
        };
        if bounds.variable == config::QUORUM_WINDOW_SECONDS.variable {
            continue; // bounded by the probe intervals offered: below
        }
        let p = &parameters[name];
        assert_eq!(p["Type"], "Number", "{name}");
        assert_eq!(
            (
                p["Default"].clone(),
                p["MinValue"].clone(),
                p["MaxValue"].clone()
            ),
            (json!(bounds.default), json!(bounds.min), json!(bounds.max)),
            "{name} (Default, MinValue, MaxValue) against {bounds:?}"
        );
        checked.insert(name.clone());
    }
    // The probe interval: the code's allowed values that a probe timeout cannot reach,
    // so no combination of the two parameters has a sample outlast its interval.
    let offered: Vec<u64> = PROBE_INTERVALS
        .iter()
        .copied()
        .filter(|i| i * 1000 > PROBE_TIMEOUT_MS.max)
        .collect();
    assert_eq!(allowed_probe_intervals(&template), offered);
    assert_eq!(
        parameters["ProbeIntervalSeconds"]["Default"],
        json!(config::PROBE_INTERVAL_DEFAULT)
    );
    assert_eq!(from["PROBE_INTERVAL_SECONDS"], "ProbeIntervalSeconds");
    checked.insert("ProbeIntervalSeconds".into());
    // The quorum window: at least two of the longest interval offered, so that every
    // window the template takes starts the functions with every interval it takes.
    let window = &parameters["QuorumWindowSeconds"];
    let bounds = config::QUORUM_WINDOW_SECONDS;
    assert_eq!(
        (
            window["Default"].clone(),
            window["MinValue"].clone(),
            window["MaxValue"].clone()
        ),
        (
            json!(bounds.default),
            json!(2 * offered.iter().max().unwrap()),
            json!(bounds.max)
        )
    );
    assert_eq!(from["QUORUM_WINDOW_SECONDS"], "QuorumWindowSeconds");
    checked.insert("QuorumWindowSeconds".into());
    // Every Number parameter is one of those, or the template's own.
    for (name, p) in parameters {
        // The template's own: not function variables.
        if p["Type"] == "Number" && !["ReservedConcurrency", "RecordTtl"].contains(&name.as_str()) {
            assert!(checked.contains(name), "{name} has no bounds in config.rs");
        }
    }
    assert!(checked.len() >= 13, "{checked:?}");
}

#[test]
pub(crate) fn string_parameters_accept_only_what_the_functions_accept() {
    let template = template();
    let parameters = &template["Parameters"];
    let from = parameter_of_variable(&template);
    for (parameter, good, bad) in [
        (
            // Empty for a regional stack only: a rule requires it of the control stack.
            "HealthTable",
            &["app-health", "a.b_c-1"][..],
            &["ab", "my table"][..],
        ),
        (
            "HealthKey",
            &["pk=regionpilot-canary", "id = x"],
            &["pk", "=x", "pk=", ""],
        ),
        (
            "MetricsNamespace",
            &["RegionPilot", "App/DR"],
            &["a:b", "", "Région"],
        ),
    ] {
        let pattern = parameters[parameter]["AllowedPattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{parameter} has no AllowedPattern"));
        let variable = from
            .iter()
            .find(|(_, p)| *p == parameter)
            .map(|(v, _)| v.clone())
            .unwrap();
        for (value, accepted) in good
            .iter()
            .map(|v| (v, true))
            .chain(bad.iter().map(|v| (v, false)))
        {
            assert_eq!(
                matches(pattern, &[*value])[0],
                accepted,
                "{parameter}={value:?}"
            );
            if accepted {
                assert!(config_accepts(&variable, value), "{variable}={value:?}");
            }
        }
    }
    // The longest parameter name the template takes, the functions take too.
    let longest = parameters["ActiveRegionParameter"]["MaxLength"]
        .as_u64()
        .unwrap() as usize;
    let name = format!("/{}", "a".repeat(longest - 1));
    assert!(config_accepts("ACTIVE_REGION_PARAMETER", &name));
    let regions = parameters["Regions"]["AllowedPattern"].as_str().unwrap();
    assert_eq!(
        matches(
            regions,
            &["us-east-1", "ap-southeast-7", "US-EAST-1", "us-east"]
        ),
        [true, true, false, false]
    );
}

/// `Name="value"` pairs of a samconfig parameter_overrides string.
pub(crate) fn overrides(text: &str) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    let mut rest = text.trim();
    while let Some((name, after)) = rest.split_once("=\"") {
        let (value, tail) = after.split_once('"').expect("a closing quote");
        pairs.insert(name.trim().to_owned(), value.to_owned());
        rest = tail.trim();
    }
    pairs
}

#[test]
pub(crate) fn every_samconfig_environment_builds_for_the_architecture_it_deploys() {
    let text = std::fs::read_to_string(paths::workspace().join("samconfig.toml")).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    let template_default = template()["Parameters"]["Architecture"]["Default"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut architectures = BTreeMap::new();
    for (env, sections) in &config {
        let Some(sections) = sections.as_table() else {
            continue; // version
        };
        // What one command reads: its own section over the global one.
        let parameter = |command: &str| {
            [command, "global"]
                .iter()
                .find_map(|section| {
                    sections
                        .get(*section)?
                        .get("parameters")?
                        .get("parameter_overrides")
                })
                .and_then(|v| v.as_str())
                .map(overrides)
                .unwrap_or_default()
                .get("Architecture")
                .cloned()
                .unwrap_or_else(|| template_default.clone())
        };
        let (build, deploy) = (parameter("build"), parameter("deploy"));
        assert_eq!(build, deploy, "{env}: sam build and sam deploy disagree");
        architectures.insert(env.clone(), deploy);
    }
    assert_eq!(architectures["prod"], "arm64", "{architectures:?}");
    assert_eq!(architectures["default"], "x86_64");
    // The case that was wrong: an override in the deploy section alone.
    assert_eq!(
        overrides(r#"Regions="us-east-1,us-west-2" Architecture="arm64""#)["Architecture"],
        "arm64"
    );
}
