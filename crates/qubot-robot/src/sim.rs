//! The closed loop in one process: lidar -> planner -> (optional latency) -> drive, on a
//! simulated clock. Used by tests to prove every world is solvable and by the processes as a
//! reference for what the distributed pipeline should achieve.
//!
//! Time is an integer number of microseconds, so 20 Hz scans and 50 Hz drive ticks line up
//! exactly and runs are bit-for-bit reproducible. At each instant the scan (if due) is taken
//! first, from the pose at that instant; its command becomes active `latency_s` later; then
//! the drive (if due) integrates one period with the newest active command.

use crate::drive::{DiffDrive, DriveLimits};
use crate::geom::Pose2;
use crate::judge::Judge;
use crate::lidar::{Lidar, LidarConfig};
use crate::planner::{Planner, PlannerConfig, RangeSource, ScanInput};
use crate::world::World;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Closed-loop parameters. `Default` is the project setup: 720-beam lidar at 20 Hz, drive at
/// 50 Hz, no latency, 120 s budget.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    pub lidar: LidarConfig,
    /// Its `robot_radius_m` and `goal_tolerance_m` are overridden by the world's.
    pub planner: PlannerConfig,
    pub limits: DriveLimits,
    /// Scans (and plans) per second.
    pub scan_hz: f64,
    /// Drive integration steps per second.
    pub drive_hz: f64,
    /// Delay between a scan and its command reaching the drive, seconds (clamped to 0..=1).
    pub latency_s: f64,
    /// Simulated time budget, seconds.
    pub max_time_s: f64,
    /// Hand the planner the scan as little-endian bytes (as from a message payload) instead of
    /// an `f32` slice.
    pub ranges_as_bytes: bool,
    /// World time at which the robot starts planning, seconds: the processes of a real run
    /// start a moment after the world clock does, so dynamic worlds are checked over a range
    /// of start delays.
    pub start_delay_s: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            lidar: LidarConfig::default(),
            planner: PlannerConfig::default(),
            limits: DriveLimits::default(),
            scan_hz: 20.0,
            drive_hz: 50.0,
            latency_s: 0.0,
            max_time_s: 120.0,
            ranges_as_bytes: false,
            start_delay_s: 0.0,
        }
    }
}

/// Outcome of one closed-loop run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct SimReport {
    /// The robot came within the goal tolerance before the time budget ran out.
    pub goal_reached: bool,
    /// Simulated seconds until the goal was reached (or the budget, if it was not).
    pub duration_s: f64,
    /// Smallest `world.clearance` of the robot centre over the run, metres.
    pub min_clearance_m: f64,
    /// Contacts the robot caused: times it went from free to overlapping an obstacle
    /// (`clearance < robot_radius`) by its own motion (see [`crate::judge`]). The simulation
    /// does not stop the robot on contact.
    pub collisions: u32,
    /// Contacts a moving obstacle caused (the robot stood still or was hit from behind).
    pub struck: u32,
    /// Drive integration steps taken.
    pub steps: u64,
    /// Distance travelled, metres.
    pub path_length_m: f64,
    /// Scans planned.
    pub scans: u64,
    pub final_pose: Pose2,
}

fn period_us(hz: f64, default_hz: f64) -> u64 {
    let hz = if hz.is_finite() && hz > 0.0 {
        hz
    } else {
        default_hz
    };
    ((1e6 / hz).round() as u64).max(1)
}

/// Runs the loop on `world` until the goal is reached or `cfg.max_time_s` simulated seconds.
pub fn run_closed_loop(world: &World, cfg: SimConfig) -> SimReport {
    run_closed_loop_with(world, cfg, |_, _| {})
}

/// [`run_closed_loop`] calling `observe(t_s, &drive)` after every drive step (for traces).
pub fn run_closed_loop_with<F: FnMut(f64, &DiffDrive)>(
    world: &World,
    cfg: SimConfig,
    mut observe: F,
) -> SimReport {
    let lidar = Lidar::new(cfg.lidar);
    let mut planner = Planner::new(PlannerConfig {
        robot_radius_m: world.robot_radius_m,
        goal_tolerance_m: world.goal_tolerance_m,
        ..cfg.planner
    });
    let mut drive = DiffDrive::new(world.start, cfg.limits);
    let mut ranges = vec![0f32; lidar.beams()];
    let mut bytes = vec![
        0u8;
        if cfg.ranges_as_bytes {
            qubot_msg::ranges_len(lidar.beams())
        } else {
            0
        }
    ];

    let scan_us = period_us(cfg.scan_hz, 20.0);
    let drive_us = period_us(cfg.drive_hz, 50.0);
    let dt = drive_us as f64 * 1e-6;
    let latency = if cfg.latency_s.is_finite() {
        cfg.latency_s.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let latency_us = (latency * 1e6).round() as u64;
    let end_us = if cfg.max_time_s.is_finite() && cfg.max_time_s > 0.0 {
        (cfg.max_time_s * 1e6) as u64
    } else {
        0
    };

    // Commands in flight: (time they take effect, v, w).
    let mut in_flight: VecDeque<(u64, f64, f64)> = VecDeque::with_capacity(64);
    let mut cmd = (0.0, 0.0);
    let radius = world.robot_radius_m;
    // Movers frozen at the current instant (reused buffer: the loop allocates nothing).
    let mut moving = Vec::with_capacity(world.movers.len());
    world.movers_at(0.0, &mut moving);
    let mut judge = Judge::new(radius);
    judge.observe(&world.scene(&moving), drive.pose, 0.0);
    let mut report = SimReport {
        min_clearance_m: judge.min_clearance_m,
        collisions: judge.collisions,
        final_pose: drive.pose,
        ..SimReport::default()
    };
    if drive.pose.point().dist(world.goal) <= world.goal_tolerance_m {
        report.goal_reached = true;
        return report;
    }

    let delay_us = if cfg.start_delay_s.is_finite() && cfg.start_delay_s > 0.0 {
        (cfg.start_delay_s * 1e6).round() as u64
    } else {
        0
    };
    let (mut next_scan, mut next_drive) = (delay_us, 0u64);
    loop {
        let now = next_scan.min(next_drive);
        if now >= end_us {
            report.duration_s = end_us as f64 * 1e-6;
            break;
        }
        if world.is_dynamic() {
            world.movers_at(now as f64 * 1e-6, &mut moving);
        }
        if next_scan == now {
            lidar.scan_into(&world.scene(&moving), drive.pose, &mut ranges);
            let source = if cfg.ranges_as_bytes {
                qubot_msg::write_ranges(&mut bytes, ranges.iter().copied());
                RangeSource::Wire(qubot_msg::ScanRanges::new(&bytes))
            } else {
                RangeSource::Floats(&ranges)
            };
            let scan = ScanInput {
                angle_min: lidar.angle_min() as f32,
                angle_increment: lidar.angle_increment() as f32,
                range_max: lidar.range_max() as f32,
                ranges: source,
            };
            let plan = planner.plan(&scan, drive.pose, world.goal);
            in_flight.push_back((now + latency_us, plan.v, plan.w));
            report.scans += 1;
            next_scan += scan_us;
        }
        if next_drive == now {
            while let Some(&(at, v, w)) = in_flight.front() {
                if at > now {
                    break;
                }
                cmd = (v, w);
                in_flight.pop_front();
            }
            let before = drive.pose.point();
            drive.step(cmd.0, cmd.1, dt);
            next_drive += drive_us;
            report.steps += 1;
            report.path_length_m += before.dist(drive.pose.point());
            judge.observe(&world.scene(&moving), drive.pose, drive.v);
            report.min_clearance_m = judge.min_clearance_m;
            report.collisions = judge.collisions;
            report.struck = judge.struck;
            observe(next_drive as f64 * 1e-6, &drive);
            if drive.pose.point().dist(world.goal) <= world.goal_tolerance_m {
                report.goal_reached = true;
                report.duration_s = next_drive as f64 * 1e-6;
                break;
            }
        }
    }
    report.final_pose = drive.pose;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{test_room as room, Shape};

    #[test]
    fn open_room_goes_straight() {
        let w = room(vec![]);
        let r = run_closed_loop(&w, SimConfig::default());
        assert!(r.goal_reached, "{r:?}");
        // 7.75 m at <= 0.8 m/s with a 0.8 s ramp: a bit over 10 s, never much more.
        assert!(r.duration_s > 9.6 && r.duration_s < 12.0, "{r:?}");
        assert!((r.path_length_m - 7.75).abs() < 0.02, "{r:?}");
        assert_eq!(r.collisions, 0);
        assert_eq!(r.steps, (r.duration_s * 50.0).round() as u64);
    }

    #[test]
    fn gives_up_at_the_time_budget() {
        // Goal sealed off by walls: the loop must stop at max_time_s.
        let w = room(vec![Shape::Segment {
            x0: 5.0,
            y0: 0.0,
            x1: 5.0,
            y1: 4.0,
        }]);
        let r = run_closed_loop(
            &w,
            SimConfig {
                max_time_s: 20.0,
                ..Default::default()
            },
        );
        assert!(!r.goal_reached);
        assert_eq!(r.duration_s, 20.0);
        assert_eq!(r.collisions, 0, "{r:?}");
    }

    #[test]
    fn latency_and_bytes_are_deterministic() {
        let w = World::builtin();
        let cfg = SimConfig {
            latency_s: 0.1,
            ..Default::default()
        };
        let a = run_closed_loop(&w, cfg);
        let b = run_closed_loop(
            &w,
            SimConfig {
                ranges_as_bytes: true,
                ..cfg
            },
        );
        assert_eq!(a, b);
    }
}
