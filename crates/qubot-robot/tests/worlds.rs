//! Every shipped world, and the built-in one, must be solved by the in-process closed loop:
//! goal reached within 120 simulated seconds, no collision, clearance above the robot radius,
//! with 0 and with 100 ms of command latency.

use qubot_robot::{run_closed_loop, SimConfig, SimReport, World};
use std::path::{Path, PathBuf};

const WORLDS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/worlds");
const BUDGET_S: f64 = 120.0;

fn world_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(WORLDS_DIR)
        .unwrap_or_else(|e| panic!("read {WORLDS_DIR}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn check(world: &World, latency_s: f64) -> SimReport {
    let cfg = SimConfig {
        latency_s,
        max_time_s: BUDGET_S,
        ..SimConfig::default()
    };
    let r = run_closed_loop(world, cfg);
    let ctx = format!("world {:?}, latency {latency_s} s: {r:?}", world.name);
    assert!(r.goal_reached, "goal not reached: {ctx}");
    assert!(r.duration_s < BUDGET_S, "{ctx}");
    assert_eq!(r.collisions, 0, "{ctx}");
    assert!(r.min_clearance_m > world.robot_radius_m, "{ctx}");
    // The loop really ran: at 50 Hz drive and 20 Hz scans.
    assert_eq!(r.steps, (r.duration_s * 50.0).round() as u64, "{ctx}");
    assert!(r.scans >= r.steps * 2 / 5, "{ctx}");
    // It did not get there by luck of a huge detour either.
    let straight = world.start.point().dist(world.goal);
    assert!(
        r.path_length_m >= straight - world.goal_tolerance_m - 1e-9,
        "{ctx}"
    );
    r
}

#[test]
fn at_least_five_world_files_ship() {
    let files = world_files();
    assert!(files.len() >= 5, "{files:?}");
    assert!(Path::new(WORLDS_DIR).join("README.md").is_file());
}

#[test]
fn every_world_file_loads_and_resolves_by_name() {
    for file in world_files() {
        let w = World::load(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap();
        assert_eq!(w.name, stem, "world name matches the file name");
        assert_eq!(World::resolve(stem, Path::new(WORLDS_DIR)).unwrap(), w);
    }
}

#[test]
fn builtin_world_is_solved_with_and_without_latency() {
    let w = World::builtin();
    check(&w, 0.0);
    check(&w, 0.1);
}

#[test]
fn every_world_file_is_solved_with_and_without_latency() {
    for file in world_files() {
        let w = World::load(&file).unwrap();
        let fast = check(&w, 0.0);
        let slow = check(&w, 0.1);
        eprintln!(
            "{:>10}: {:5.1} s / {:5.1} s (0 / 100 ms latency), path {:4.1} m, min clearance {:.3} m",
            w.name, fast.duration_s, slow.duration_s, fast.path_length_m, fast.min_clearance_m
        );
    }
}

/// Guard against a test that cannot fail: a world whose goal is sealed off must be reported
/// as not reached.
#[test]
fn sealed_goal_is_reported_as_not_reached() {
    let mut w = World::load(&Path::new(WORLDS_DIR).join("doorway.toml")).unwrap();
    w.obstacles.push(qubot_robot::Shape::Rect {
        x_min: 4.9,
        y_min: 4.9,
        x_max: 5.1,
        y_max: 6.1,
    });
    w.validate().unwrap();
    let r = run_closed_loop(
        &w,
        SimConfig {
            max_time_s: 30.0,
            ..SimConfig::default()
        },
    );
    assert!(!r.goal_reached, "{r:?}");
    assert_eq!(r.collisions, 0, "{r:?}");
}
