//! The rig's instance model, checked against the real region processes so the recovery
//! tests built on it mean something: AWS refuses a desired capacity outside min..max,
//! scale-out instances boot and warm before serving the value they read at boot end, an
//! instance refresh runs in MinHealthyPercentage batches, and SSM Run Command reaches only
//! booted instances, takes time, and fails or times out where injected.
//!
//! Every region runs at `RIG_TIME_SCALE` 50: boot 60-90 s is 1.2-1.8 s, warmup 60 s is
//! 1.2 s, a command 2-5 s is 40-100 ms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use aws_sdk_autoscaling::types::RefreshPreferences;
use aws_sdk_ssm::types::Target;
use regionpilot_tests::rig::ModelInstance;
use regionpilot_tests::world::{GROUP, PARAMETER};
use regionpilot_tests::{Rig, World, paths};

const REGION: &str = "us-east-1";
const SCALE: f64 = 50.0;
/// Boot 60-90 s plus warmup 60 s, scaled, with room for the clock's granularity.
const TO_SERVICE_MIN: f64 = 120.0 / SCALE - 0.01;
const TO_SERVICE_MAX: f64 = 150.0 / SCALE + 0.01;

async fn rig(label: &str, min: i32, desired: i32, max: i32) -> (Rig, World) {
    let dir = paths::scratch(label);
    let scale = SCALE.to_string();
    let rig = Rig::start_with(&[REGION], &[], &dir, &[("RIG_TIME_SCALE", &scale)]).await;
    let world = World::connect(&rig, &[REGION], REGION).await;
    world.seed_with(&[(REGION, min, desired, max)]).await;
    (rig, world)
}

fn live(rig: &Rig) -> Vec<ModelInstance> {
    rig.live_instances(REGION, GROUP)
        .expect("the region answers GET /instances")
}

fn ids(instances: &[ModelInstance]) -> Vec<String> {
    instances.iter().map(|i| i.id.clone()).collect()
}

async fn put_parameter(world: &World, value: &str) {
    world
        .client(REGION)
        .ssm
        .put_parameter()
        .name(PARAMETER)
        .value(value)
        .overwrite(true)
        .send()
        .await
        .expect("put parameter");
}

async fn set_desired(world: &World, desired: i32) -> Result<(), (String, String)> {
    world
        .client(REGION)
        .autoscaling
        .set_desired_capacity()
        .auto_scaling_group_name(GROUP)
        .desired_capacity(desired)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            (
                e.code().unwrap_or_default().to_owned(),
                e.message().unwrap_or_default().to_owned(),
            )
        })
}

/// Polls the live instances until `done` holds; panics after `limit` with the last view.
async fn wait_instances(
    rig: &Rig,
    limit: Duration,
    what: &str,
    done: impl Fn(&[ModelInstance]) -> bool,
) -> Vec<ModelInstance> {
    let started = Instant::now();
    loop {
        let instances = live(rig);
        if done(&instances) {
            return instances;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not within {limit:?}: {instances:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn lifecycle_states(world: &World) -> BTreeMap<String, String> {
    let out = world
        .client(REGION)
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(GROUP)
        .send()
        .await
        .unwrap();
    out.auto_scaling_groups()[0]
        .instances()
        .iter()
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_owned(),
                i.lifecycle_state().map(|s| s.as_str().to_owned()).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desired_capacity_outside_min_and_max_is_refused_and_changes_nothing() {
    let (rig, world) = rig("rig-capacity", 2, 2, 4).await;
    let before = live(&rig);
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|i| i.serves(REGION)), "{before:#?}");

    let (code, message) = set_desired(&world, 5).await.unwrap_err();
    assert_eq!(code, "ValidationError");
    assert_eq!(
        message,
        "New SetDesiredCapacity value 5 is above max value 4 for the AutoScalingGroup."
    );
    let (code, message) = set_desired(&world, 1).await.unwrap_err();
    assert_eq!(code, "ValidationError");
    assert!(message.contains("below min value 2"), "{message}");
    let err = world
        .client(REGION)
        .autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(GROUP)
        .desired_capacity(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationError"), "{err:?}");

    assert_eq!(world.group(REGION).await, (2, 2, 4));
    let all = rig.group_instances(REGION, GROUP).unwrap();
    assert_eq!(ids(&all), ids(&before), "nothing launched or terminated");
    let model = rig.instances(REGION).unwrap();
    assert_eq!(model["groups"][GROUP]["max"], 4);
    assert_eq!(model["time_scale"], SCALE);
    assert_eq!(model["boot_seconds"], serde_json::json!([60.0, 90.0]));

    // Up to MaxSize is fine.
    set_desired(&world, 4).await.unwrap();
    assert_eq!(world.group(REGION).await, (2, 4, 4));

    // A frozen region cannot report its model.
    rig.freeze(REGION);
    let answer = rig.instances(REGION);
    rig.thaw(REGION);
    assert!(answer.is_none(), "a frozen region answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_instances_boot_warm_then_serve_the_value_read_at_boot_end() {
    let (rig, world) = rig("rig-scale-out", 2, 2, 4).await;
    let first = ids(&live(&rig));
    set_desired(&world, 4).await.unwrap();
    let launched: Vec<String> = ids(&live(&rig))
        .into_iter()
        .filter(|id| !first.contains(id))
        .collect();
    assert_eq!(launched.len(), 2);

    // The parameter changes while they boot: they must serve the new value, the running
    // ones keep the value they already hold (nothing reloads them).
    put_parameter(&world, "us-west-2").await;
    let now = live(&rig);
    for instance in now.iter().filter(|i| launched.contains(&i.id)) {
        assert_eq!(instance.state, "booting", "{now:#?}");
        assert_eq!(instance.value, None);
    }
    let states = lifecycle_states(&world).await;
    for id in &launched {
        assert_eq!(states[id], "Pending", "{states:?}");
    }
    for id in &first {
        assert_eq!(states[id], "InService", "{states:?}");
    }

    // Follow the new instances: booting, then warming, then in service.
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let started = Instant::now();
    let last = loop {
        let instances = live(&rig);
        for i in instances.iter().filter(|i| launched.contains(&i.id)) {
            let states = seen.entry(i.id.clone()).or_default();
            if states.last() != Some(&i.state) {
                states.push(i.state.clone());
            }
        }
        if instances.iter().all(|i| i.state == "in_service") {
            break instances;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{instances:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (id, states) in &seen {
        assert_eq!(states, &["booting", "warming", "in_service"], "{id}");
    }
    for instance in &last {
        if launched.contains(&instance.id) {
            assert!(instance.serves("us-west-2"), "{instance:?}");
            let took = instance.in_service_at.unwrap() - instance.launched_at;
            assert!(
                (TO_SERVICE_MIN..=TO_SERVICE_MAX).contains(&took),
                "in service {took} s after launch"
            );
        } else {
            assert!(instance.serves(REGION), "{instance:?}");
        }
    }
    assert!(
        lifecycle_states(&world)
            .await
            .values()
            .all(|s| s == "InService")
    );

    // Scale-in terminates the newest first.
    set_desired(&world, 2).await.unwrap();
    let mut left = ids(&live(&rig));
    left.sort();
    let mut expected = first.clone();
    expected.sort();
    assert_eq!(left, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_at_min_healthy_50_replaces_four_instances_in_two_batches() {
    let (rig, world) = rig("rig-refresh", 2, 4, 4).await;
    let original = ids(&live(&rig));
    put_parameter(&world, "us-west-2").await;
    let asg = &world.client(REGION).autoscaling;
    let preferences = RefreshPreferences::builder()
        .min_healthy_percentage(50)
        .instance_warmup(60)
        .build();
    asg.start_instance_refresh()
        .auto_scaling_group_name(GROUP)
        .preferences(preferences.clone())
        .send()
        .await
        .unwrap();
    let second = asg
        .start_instance_refresh()
        .auto_scaling_group_name(GROUP)
        .preferences(preferences)
        .send()
        .await
        .unwrap_err();
    assert_eq!(second.code(), Some("InstanceRefreshInProgress"));

    let started = Instant::now();
    let mut percentages = Vec::new();
    let refresh = loop {
        let instances = live(&rig);
        let serving = instances.iter().filter(|i| i.state == "in_service").count();
        assert!(
            serving >= 2,
            "fewer than MinHealthyPercentage in service: {instances:#?}"
        );
        assert!(instances.len() <= 4, "{instances:#?}");
        let refresh = world.refreshes(REGION).await.remove(0);
        let status = refresh.status().unwrap().as_str().to_owned();
        percentages.push(refresh.percentage_complete().unwrap_or_default());
        if status == "Successful" {
            break refresh;
        }
        assert_eq!(status, "InProgress");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{refresh:?} {instances:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refresh.percentage_complete(), Some(100));
    assert_eq!(refresh.instances_to_update(), Some(0));
    assert!(percentages.contains(&50), "{percentages:?}");
    assert!(
        percentages.windows(2).all(|w| w[0] <= w[1]),
        "{percentages:?}"
    );

    let now = live(&rig);
    assert_eq!(now.len(), 4);
    assert!(now.iter().all(|i| i.serves("us-west-2")), "{now:#?}");
    assert!(now.iter().all(|i| !original.contains(&i.id)), "{now:#?}");

    // Two batches of two: the second launched when the first was in service.
    let all = rig.group_instances(REGION, GROUP).unwrap();
    let mut batches: BTreeMap<String, Vec<&ModelInstance>> = BTreeMap::new();
    for instance in all.iter().filter(|i| !original.contains(&i.id)) {
        batches
            .entry(format!("{:.6}", instance.launched_at))
            .or_default()
            .push(instance);
    }
    let batches: Vec<_> = batches.into_values().collect();
    assert_eq!(batches.len(), 2, "{all:#?}");
    assert!(batches.iter().all(|b| b.len() == 2), "{all:#?}");
    let first_done = batches[0]
        .iter()
        .map(|i| i.in_service_at.unwrap())
        .fold(f64::MIN, f64::max);
    assert!(
        (batches[1][0].launched_at - first_done).abs() < 1e-3,
        "{all:#?}"
    );
    // Each batch terminated two originals as it started.
    let terminated: Vec<f64> = all
        .iter()
        .filter(|i| original.contains(&i.id))
        .map(|i| i.terminated_at.unwrap())
        .collect();
    for batch in &batches {
        let at = batch[0].launched_at;
        assert_eq!(
            terminated.iter().filter(|t| (*t - at).abs() < 1e-3).count(),
            2,
            "{all:#?}"
        );
    }
}

/// The reload to the group's tag, as regionpilot sends it.
fn reload_request(
    world: &World,
    execution_timeout: &str,
) -> aws_sdk_ssm::operation::send_command::builders::SendCommandFluentBuilder {
    world
        .client(REGION)
        .ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .targets(
            Target::builder()
                .key("tag:aws:autoscaling:groupName")
                .values(GROUP)
                .build(),
        )
        .parameters("commands", vec!["systemctl reload app".into()])
        .parameters("executionTimeout", vec![execution_timeout.into()])
}

/// Sends the reload to the group; returns the command id and its TargetCount.
async fn send_reload(world: &World, execution_timeout: &str) -> (String, i32) {
    let out = reload_request(world, execution_timeout)
        .send()
        .await
        .expect("send command");
    let command = out.command.expect("command");
    (
        command.command_id().unwrap().to_owned(),
        command.target_count(),
    )
}

/// The command's invocations by instance id, once none is pending or in progress.
async fn finished(world: &World, command_id: &str) -> BTreeMap<String, String> {
    let started = Instant::now();
    loop {
        let out = world
            .client(REGION)
            .ssm
            .list_command_invocations()
            .command_id(command_id)
            .send()
            .await
            .expect("list command invocations");
        let statuses: BTreeMap<String, String> = out
            .command_invocations()
            .iter()
            .map(|i| {
                (
                    i.instance_id().unwrap().to_owned(),
                    i.status().unwrap().as_str().to_owned(),
                )
            })
            .collect();
        if statuses
            .values()
            .all(|s| s != "InProgress" && s != "Pending")
        {
            return statuses;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{statuses:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn command_summary(world: &World, command_id: &str) -> (String, i32, i32) {
    let out = world
        .client(REGION)
        .ssm
        .list_commands()
        .command_id(command_id)
        .send()
        .await
        .unwrap();
    let command = &out.commands()[0];
    (
        command.status().unwrap().as_str().to_owned(),
        command.completed_count(),
        command.error_count(),
    )
}

fn values(rig: &Rig) -> BTreeMap<String, Option<String>> {
    live(rig).into_iter().map(|i| (i.id, i.value)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_command_reloads_booted_instances_skips_booting_ones_and_reports_faults() {
    let (rig, world) = rig("rig-run-command", 2, 2, 4).await;
    let first = ids(&live(&rig));
    set_desired(&world, 4).await.unwrap();
    put_parameter(&world, "us-west-2").await;

    // Only the two booted instances are registered with SSM.
    let (command, targets) = send_reload(&world, "600").await;
    assert_eq!(targets, 2);
    let statuses = finished(&world, &command).await;
    assert_eq!(statuses.keys().cloned().collect::<Vec<_>>(), {
        let mut f = first.clone();
        f.sort();
        f
    });
    assert!(statuses.values().all(|s| s == "Success"), "{statuses:?}");
    assert_eq!(
        command_summary(&world, &command).await,
        ("Success".into(), 2, 0)
    );
    let now = values(&rig);
    for id in &first {
        assert_eq!(now[id].as_deref(), Some("us-west-2"), "{now:?}");
    }

    // The booting ones read the value at boot; then all four take commands.
    wait_instances(&rig, Duration::from_secs(10), "all in service", |all| {
        all.len() == 4 && all.iter().all(|i| i.serves("us-west-2"))
    })
    .await;

    // One instance fails, one hangs: both keep the old value.
    rig.set_instance_faults(REGION, GROUP, 1, 1);
    put_parameter(&world, "eu-central-1").await;
    let sent = Instant::now();
    let (command, targets) = send_reload(&world, "60").await;
    assert_eq!(targets, 4);
    let statuses = finished(&world, &command).await;
    let took = sent.elapsed();
    let count = |s: &str| statuses.values().filter(|v| *v == s).count();
    assert_eq!(
        (count("Failed"), count("TimedOut"), count("Success")),
        (1, 1, 2),
        "{statuses:?}"
    );
    assert!(
        took >= Duration::from_secs_f64(60.0 / SCALE - 0.05),
        "timed out after {took:?}"
    );
    let now = values(&rig);
    for (id, status) in &statuses {
        let expected = if status == "Success" {
            "eu-central-1"
        } else {
            "us-west-2"
        };
        assert_eq!(now[id].as_deref(), Some(expected), "{statuses:?} {now:?}");
    }
    assert_eq!(
        command_summary(&world, &command).await,
        ("Failed".into(), 4, 2)
    );

    // The faults were for that command only.
    let (command, _) = send_reload(&world, "60").await;
    let statuses = finished(&world, &command).await;
    assert!(statuses.values().all(|s| s == "Success"), "{statuses:?}");
    assert!(
        values(&rig)
            .values()
            .all(|v| v.as_deref() == Some("eu-central-1"))
    );

    // A reload that needs longer (2-5 s) than its execution timeout (1 s) times out.
    put_parameter(&world, "ap-south-1").await;
    let (command, _) = send_reload(&world, "1").await;
    let statuses = finished(&world, &command).await;
    assert!(statuses.values().all(|s| s == "TimedOut"), "{statuses:?}");
    assert_eq!(
        command_summary(&world, &command).await,
        ("TimedOut".into(), 4, 4)
    );
    assert!(
        values(&rig)
            .values()
            .all(|v| v.as_deref() == Some("eu-central-1"))
    );
}

/// Sends the reload with SSM's rate controls; returns the command id.
async fn send_reload_in_waves(world: &World, max_concurrency: &str, max_errors: &str) -> String {
    let out = reload_request(world, "600")
        .max_concurrency(max_concurrency)
        .max_errors(max_errors)
        .send()
        .await
        .expect("send command");
    out.command.unwrap().command_id().unwrap().to_owned()
}

/// SSM runs a command in waves of MaxConcurrency, and stops sending it once errors pass
/// MaxErrors: the targets not started are reported Cancelled (the rig's assumption of how
/// SSM reports them). Every command takes exactly 3 s (60 ms at 50x) here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_command_runs_in_waves_and_stops_after_max_errors() {
    let dir = paths::scratch("rig-run-command-waves");
    let rig = Rig::start_with(
        &[REGION],
        &[],
        &dir,
        &[("RIG_TIME_SCALE", "50"), ("RIG_RUN_COMMAND_SECONDS", "3")],
    )
    .await;
    let world = World::connect(&rig, &[REGION], REGION).await;
    world.seed_with(&[(REGION, 8, 8, 8)]).await;
    let one = Duration::from_secs_f64(3.0 / SCALE);

    // Half the group at a time: two waves, each a whole command long.
    let sent = Instant::now();
    let command = send_reload_in_waves(&world, "50%", "25%").await;
    let statuses = finished(&world, &command).await;
    let took = sent.elapsed();
    assert_eq!(statuses.len(), 8);
    assert!(statuses.values().all(|s| s == "Success"), "{statuses:?}");
    assert!(took >= one * 2, "two waves took {took:?}");

    // The first wave all fail: 4 errors pass 25 % of 8 (2), so the second wave is never
    // sent and is reported Cancelled.
    rig.set_instance_faults(REGION, GROUP, 4, 0);
    let command = send_reload_in_waves(&world, "50%", "25%").await;
    let statuses = finished(&world, &command).await;
    let count = |s: &str| statuses.values().filter(|v| *v == s).count();
    assert_eq!(
        (count("Failed"), count("Cancelled")),
        (4, 4),
        "{statuses:?}"
    );
    assert_eq!(command_summary(&world, &command).await.0, "Failed");
}

/// An instance registers with SSM some seconds after its boot (its agent starts), not at
/// the instant it reads the parameter: until then a command to the group's tag passes it
/// by, and naming it by id fails with InvalidInstanceId, as AWS answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_is_known_to_ssm_only_some_seconds_after_its_boot() {
    let dir = paths::scratch("rig-ssm-register");
    let rig = Rig::start_with(
        &[REGION],
        &[],
        &dir,
        // 60 s at 50x: 1.2 s after the end of boot.
        &[("RIG_TIME_SCALE", "50"), ("RIG_SSM_REGISTER_SECONDS", "60")],
    )
    .await;
    let world = World::connect(&rig, &[REGION], REGION).await;
    world.seed_with(&[(REGION, 1, 1, 2)]).await;
    let first = ids(&live(&rig));
    set_desired(&world, 2).await.unwrap();
    let booted = wait_instances(&rig, Duration::from_secs(10), "second booted", |all| {
        all.len() == 2 && all.iter().all(|i| i.state != "booting")
    })
    .await;
    let second = booted
        .iter()
        .find(|i| !first.contains(&i.id))
        .expect("the new instance")
        .id
        .clone();
    // Booted (it has read the parameter), not yet registered.
    let (_, targets) = send_reload(&world, "60").await;
    assert_eq!(targets, 1, "the tag reached only the first instance");
    let err = world
        .client(REGION)
        .ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&second)
        .parameters("commands", vec!["systemctl reload app".into()])
        .send()
        .await
        .expect_err("not a managed node yet");
    assert_eq!(
        aws_sdk_ssm::error::ProvideErrorMetadata::code(&err),
        Some("InvalidInstanceId"),
        "{err:?}"
    );
    // Registered: reached by id and by the tag.
    tokio::time::sleep(Duration::from_secs_f64(60.0 / SCALE + 0.2)).await;
    let (_, targets) = send_reload(&world, "60").await;
    assert_eq!(targets, 2);
}
