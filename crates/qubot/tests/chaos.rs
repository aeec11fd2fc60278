//! The chaos scenarios of deploy/chaos in short versions (`--duration-scale`), each judged by
//! `qubot chaos` itself: these tests assert its verdict, that the judge can say no, and that
//! a broken scenario file is refused before anything starts.

mod common;

use std::time::Duration;

use common::*;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/chaos");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
/// Backstop for one short scenario (they take 10-30 s on an idle machine).
const RUN: Duration = Duration::from_secs(240);
/// Short versions: every phase half as long as shipped.
const SCALE: &str = "0.5";

/// Runs `qubot chaos FILE`; returns exit code, the verdict (last stdout line) and stderr.
fn chaos(file: &str) -> (i32, serde_json::Value, String) {
    chaos_scaled(file, SCALE)
}

fn chaos_scaled(file: &str, scale: &str) -> (i32, serde_json::Value, String) {
    let (code, out, err) = run(&["chaos", file, "--duration-scale", scale], RUN);
    let last = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no verdict (exit {code}); stderr:\n{err}"));
    (code, json(last), err)
}

/// Runs a shipped scenario and asserts that every SLO passed, and that the SLOs its file
/// names were all judged (plus the accounting of every topic).
fn passes(name: &str, expected: &[&str]) -> serde_json::Value {
    passes_scaled(name, SCALE, expected)
}

fn passes_scaled(name: &str, scale: &str, expected: &[&str]) -> serde_json::Value {
    let (code, v, err) = chaos_scaled(&format!("{SCENARIOS}/{name}.toml"), scale);
    assert_passed(name, code, &v, &err, expected);
    v
}

fn assert_passed(name: &str, code: i32, v: &serde_json::Value, err: &str, expected: &[&str]) {
    assert_eq!(v["scenario"], name);
    assert_eq!(code, 0, "{name} failed: {v:#}\nstderr:\n{err}");
    assert_eq!(v["passed"], true, "{v:#}");
    assert_slos_passed(name, v, expected);
}

fn assert_slos_passed(name: &str, v: &serde_json::Value, expected: &[&str]) {
    let slos = v["slos"].as_array().expect("slos");
    for want in expected.iter().chain(&[
        "accounting closes: scan (sensor -> planner)",
        "accounting closes: cmd (planner -> actuator)",
        "accounting closes: state (actuator -> sensor)",
    ]) {
        let slo = slos
            .iter()
            .find(|s| s["name"] == *want)
            .unwrap_or_else(|| panic!("{name}: no SLO {want:?} in {v:#}"));
        assert_eq!(slo["passed"], true, "{slo}");
        assert!(slo["measured"].is_number(), "{slo}");
    }
}

/// The flood's latency SLOs compare two p99s measured on this machine while the suite runs
/// other tests beside it: a speed figure, which belongs to the benchmarks (BENCHMARKS.md,
/// `just chaos` on a quiet machine), not to a pass/fail test. Here they must be judged and
/// reported with their measurements; every other SLO of the scenario must pass.
#[test]
fn flood_scenario_meets_its_slos() {
    let _g = serial();
    const TIMED: [&str; 2] = [
        "command p99 under flood <= 2x idle p99",
        "command hop p99 under flood <= 4x idle p99",
    ];
    // Full length: a p99 needs the idle phase's ~160 commands to mean something.
    let (code, v, err) = chaos_scaled(&format!("{SCENARIOS}/flood-10x.toml"), "1.0");
    assert_eq!(v["scenario"], "flood-10x");
    let slos = v["slos"].as_array().expect("slos");
    for name in TIMED {
        let slo = slos
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no SLO {name:?} in {v:#}"));
        let measured = slo["measured"].as_f64().unwrap_or(f64::NAN);
        assert!(measured.is_finite() && measured > 0.0, "{slo}");
        eprintln!(
            "flood-10x: {name}: measured {measured:.2}, passed {}",
            slo["passed"]
        );
    }
    for slo in slos.iter().filter(|s| !TIMED.iter().any(|t| s["name"] == *t)) {
        assert_eq!(slo["passed"], true, "{slo}\nverdict: {v:#}\nstderr:\n{err}");
    }
    let timed_ok = slos
        .iter()
        .filter(|s| TIMED.iter().any(|t| s["name"] == *t))
        .all(|s| s["passed"] == true);
    // The verdict and the exit code follow the SLOs exactly.
    assert_eq!(v["passed"], timed_ok, "{v:#}");
    assert_eq!(code, if timed_ok { 0 } else { 1 }, "{v:#}");
    assert_slos_passed(
        "flood-10x",
        &v,
        &["flood ran at its rate", "zero watchdog trips under flood"],
    );
}

/// A recording as load: its scans, replayed at 10x under the replay's own source id, are all
/// counted (the accounting closes with them as published) and never steer the robot.
#[test]
fn recorded_load_scenario_meets_its_slos() {
    let _g = serial();
    let v = passes(
        "replay-load",
        &[
            "replay ran at its rate",
            "zero watchdog trips under replayed load",
            "no collision under replayed load",
            "the robot kept driving (m)",
        ],
    );
    // Every replayed scan was dropped by the planner as foreign, none taken for its sensor's.
    let detail = |name: &str| {
        v["slos"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .and_then(|s| s["detail"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let rate = detail("replay ran at its rate");
    let sent = rate
        .strip_suffix(" sent")
        .and_then(|r| r.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no count sent in {rate:?}"));
    let scans = detail("accounting closes: scan (sensor -> planner)");
    assert!(
        scans.contains(&format!("foreign {sent})")) || scans.contains(&format!("foreign {sent},")),
        "{sent} replayed, {scans}"
    );
}

#[test]
fn kill_scenario_meets_its_slos() {
    let _g = serial();
    passes(
        "kill-each",
        &[
            "every kill restarted by the supervisor",
            "loop recovered within 5 s of each kill",
            "safe stop within timeout + one tick",
        ],
    );
}

#[test]
fn stop_scenario_meets_its_slos() {
    let _g = serial();
    passes(
        "stop-planner",
        &[
            "one safe stop",
            "safe stop within timeout + one tick",
            "loop resumed within 2 s of SIGCONT",
            "a stopped process is not restarted",
        ],
    );
}

#[test]
fn malformed_scenario_meets_its_slos() {
    let _g = serial();
    passes(
        "malformed-storm",
        &["every malformed message counted by reason", "no actor crashed"],
    );
}

/// Runs when root with `ip netns`; otherwise the verdict must say it was skipped (never
/// passed), and why; under CI=true the skip fails the test.
#[test]
fn partition_scenario_meets_its_slos_or_says_it_was_skipped() {
    let _g = serial();
    let (code, v, err) = chaos(&format!("{SCENARIOS}/partition.toml"));
    if let Some(why) = v["skipped"].as_str() {
        assert_eq!(v["result"], "skipped", "{v:#}");
        assert!(v.get("passed").is_none(), "a skip must not say passed: {v:#}");
        assert!(err.contains("SKIPPED"), "a skip must be said on stderr: {err}");
        skip_or_fail("partition scenario", why);
        return;
    }
    assert_passed(
        "partition",
        code,
        &v,
        &err,
        &[
            "watchdog stopped the robot during the partition",
            "safe stop within timeout + one tick",
            "flow resumed within 10 s of healing",
            "memory bounded during the partition",
        ],
    );
    // Its namespaces are gone.
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(!list.contains("qubot-"), "namespaces left behind: {list}");
}

#[test]
fn an_impossible_slo_fails_and_the_message_names_it() {
    let _g = serial();
    let (code, v, err) = chaos(&format!("{FIXTURES}/impossible-slo.toml"));
    assert_ne!(code, 0, "{v:#}");
    assert_eq!(v["passed"], false, "{v:#}");
    let slos = v["slos"].as_array().expect("slos");
    let failed: Vec<_> = slos.iter().filter(|s| s["passed"] == false).collect();
    assert_eq!(failed.len(), 1, "only the impossible SLO fails: {v:#}");
    assert_eq!(failed[0]["name"], "pipeline p99 under one microsecond");
    assert!(
        err.contains("SLO FAILED: pipeline p99 under one microsecond"),
        "stderr must name the SLO: {err}"
    );
}

#[test]
fn a_bad_scenario_file_is_refused_before_anything_starts() {
    let (code, out, err) = run(
        &["chaos", &format!("{FIXTURES}/bad-field.toml")],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(err.contains("rat"), "the error must name the field: {err}");
    assert!(out.is_empty(), "nothing ran: {out}");
    let (code, _, err) = run(&["chaos", "/nonexistent/scenario.toml"], Duration::from_secs(30));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/scenario.toml"), "{err}");
}
