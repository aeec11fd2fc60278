//! The sensor's rules as plain state: where the lidar looks from, what a scan is stamped with
//! and what its body and ranges contain (docs/ARCHITECTURE.md §2, §3, §4a).
//!
//! No actix, no zenoh, no metrics, no clock reads: the capture instant (wall-clock ns) comes in
//! as an argument and becomes the scan's origin stamp.

use qubot_msg::{Frame, Scan, State};
use qubot_robot::{Lidar, LidarConfig, Pose2, Shape, World};

/// A scan ready to publish: its origin stamp, its body and the ranges of its payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capture<'a> {
    /// The capture instant, carried sensor → planner → actuator.
    pub origin_ns: u64,
    pub scan: Scan,
    /// One range per beam (`scan.beams` of them), metres, for `write_ranges`.
    pub ranges: &'a [f32],
}

/// The simulated lidar in its world, looking from the pose the bound actuator last reported.
#[derive(Debug, Clone)]
pub struct SensorRules {
    world: World,
    lidar: Lidar,
    pose: Pose2,
    /// Reused every scan: ray casting writes here, then the ranges go into the SHM loan.
    ranges: Vec<f32>,
    /// The world clock's zero (wall-clock ns) and the movers frozen at the last capture.
    epoch_ns: u64,
    moving: Vec<Shape>,
}

impl SensorRules {
    /// Looking from the world's start until odometry says otherwise.
    pub fn new(world: World, lidar: LidarConfig, epoch_ns: u64) -> SensorRules {
        let lidar = Lidar::new(lidar);
        SensorRules {
            pose: world.start,
            moving: Vec::with_capacity(world.movers.len()),
            ranges: vec![0.0; lidar.beams()],
            world,
            lidar,
            epoch_ns,
        }
    }

    /// Odometry from the bound actuator: the latest finite pose is where the lidar looks from;
    /// a non-finite one is ignored (returns false).
    pub fn on_state(&mut self, s: &State) -> bool {
        if !(s.x.is_finite() && s.y.is_finite() && s.theta.is_finite()) {
            return false;
        }
        self.pose = Pose2 {
            x: s.x,
            y: s.y,
            theta: s.theta,
        };
        true
    }

    pub fn pose(&self) -> Pose2 {
        self.pose
    }

    /// A scan captured at `now_ns`: ray cast from the current pose, with moving obstacles where
    /// the world clock puts them at that instant, stamped with that instant and that pose.
    pub fn capture(&mut self, now_ns: u64) -> Capture<'_> {
        self.world
            .movers_at(qubot_node::world_time_s(self.epoch_ns, now_ns), &mut self.moving);
        let scene = self.world.scene(&self.moving);
        let n = self.lidar.scan_into(&scene, self.pose, &mut self.ranges);
        Capture {
            origin_ns: now_ns,
            scan: Scan {
                pose_x: self.pose.x,
                pose_y: self.pose.y,
                pose_theta: self.pose.theta,
                angle_min: self.lidar.angle_min() as f32,
                angle_increment: self.lidar.angle_increment() as f32,
                range_max: self.lidar.range_max() as f32,
                beams: n as u32,
            },
            ranges: &self.ranges[..n],
        }
    }
}

/// A synthetic camera frame: its body, payload length and the byte every pixel holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameShot {
    pub body: Frame,
    pub len: usize,
    pub shade: u8,
}

/// A `width` x `height` RGB frame taken at `now_ns`, whose bytes change every millisecond (so
/// a stale copy would show).
pub fn frame_shot(width: u32, height: u32, now_ns: u64) -> FrameShot {
    FrameShot {
        body: Frame {
            width,
            height,
            channels: 3,
        },
        len: width as usize * height as usize * 3,
        shade: (now_ns / 1_000_000) as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qubot_msg::{ranges_len, write_ranges, Body, ScanRanges};
    use qubot_robot::{Mover, Point};
    use std::f64::consts::PI;

    const EPOCH_NS: u64 = 1_700_000_000_000_000_000;
    const S: u64 = 1_000_000_000;
    const BEAMS: usize = 360;

    /// A 10 m x 10 m empty room, start in the middle facing +x, and a disc 2 m ahead of the
    /// start that exists only from 1 s to 2 s on the world clock.
    fn world() -> World {
        World {
            name: "t".into(),
            width_m: 10.0,
            height_m: 10.0,
            start: Pose2::new(5.0, 5.0, 0.0),
            goal: Point::new(9.0, 5.0),
            goal_tolerance_m: 0.25,
            robot_radius_m: 0.2,
            obstacles: vec![],
            movers: vec![Mover {
                name: "door".into(),
                shape: Shape::Circle {
                    cx: 7.0,
                    cy: 5.0,
                    r: 0.5,
                },
                present: vec![[1.0, 2.0]],
                waypoints: vec![],
                speed_mps: 0.0,
                start_s: 0.0,
                repeat: Default::default(),
            }],
        }
    }

    fn rules() -> SensorRules {
        SensorRules::new(
            world(),
            LidarConfig {
                beams: BEAMS,
                fov_rad: std::f64::consts::TAU,
                range_max_m: 8.0,
            },
            EPOCH_NS,
        )
    }

    /// The range straight ahead (robot frame angle 0).
    fn ahead(c: &Capture) -> f32 {
        let i = ((0.0 - c.scan.angle_min as f64) / c.scan.angle_increment as f64).round() as usize;
        c.ranges[i]
    }

    fn state(x: f64, y: f64, theta: f64) -> State {
        State {
            x,
            y,
            theta,
            ..State::default()
        }
    }

    #[test]
    fn a_scan_body_carries_the_pose_and_the_lidar_geometry() {
        let mut r = rules();
        let c = r.capture(EPOCH_NS);
        assert_eq!(
            c.scan,
            Scan {
                pose_x: 5.0,
                pose_y: 5.0,
                pose_theta: 0.0,
                angle_min: -PI as f32,
                angle_increment: (2.0 * PI / BEAMS as f64) as f32,
                range_max: 8.0,
                beams: BEAMS as u32,
            }
        );
        assert_eq!(c.ranges.len(), BEAMS);
        // Walls 5 m away all round (nothing is farther than range_max here).
        assert!((ahead(&c) - 5.0).abs() < 1e-4, "{}", ahead(&c));
        assert!(
            c.ranges.iter().all(|r| (4.999..=8.0).contains(r)),
            "{:?}",
            c.ranges
        );
    }

    #[test]
    fn the_payload_written_from_a_capture_is_what_the_body_declares() {
        let mut r = rules();
        let c = r.capture(EPOCH_NS);
        let mut payload = vec![0u8; ranges_len(c.scan.beams as usize)];
        assert_eq!(write_ranges(&mut payload, c.ranges.iter().copied()), BEAMS);
        assert_eq!(c.scan.check_payload(payload.len()), Ok(()));
        let read = ScanRanges::new(&payload);
        assert_eq!(read.len(), c.scan.beams as usize);
        assert!(read.iter().eq(c.ranges.iter().copied()));
    }

    #[test]
    fn the_origin_is_the_capture_instant_and_movers_stand_where_it_puts_them() {
        let mut r = rules();
        let before = r.capture(EPOCH_NS + S / 2);
        assert_eq!(before.origin_ns, EPOCH_NS + S / 2);
        assert!(
            (ahead(&before) - 5.0).abs() < 1e-4,
            "door absent: {}",
            ahead(&before)
        );
        let during = r.capture(EPOCH_NS + 3 * S / 2);
        assert_eq!(during.origin_ns, EPOCH_NS + 3 * S / 2);
        assert!(
            (ahead(&during) - 1.5).abs() < 1e-4,
            "door present: {}",
            ahead(&during)
        );
        let after = r.capture(EPOCH_NS + 2 * S);
        assert!(
            (ahead(&after) - 5.0).abs() < 1e-4,
            "door gone again: {}",
            ahead(&after)
        );
        // Before the world clock's zero, the world is at time 0.
        assert!((ahead(&r.capture(EPOCH_NS - S)) - 5.0).abs() < 1e-4);
    }

    #[test]
    fn the_pose_used_is_the_latest_finite_state_pose() {
        let mut r = rules();
        assert!(r.on_state(&state(3.0, 5.0, 0.0)));
        assert!(r.on_state(&state(2.0, 5.0, 0.0)));
        let c = r.capture(EPOCH_NS);
        assert_eq!((c.scan.pose_x, c.scan.pose_y, c.scan.pose_theta), (2.0, 5.0, 0.0));
        assert!(
            (ahead(&c) - 8.0).abs() < 1e-4,
            "8 m to the wall is range_max: {}",
            ahead(&c)
        );
        // Facing +y from (2, 5): the wall is 5 m ahead.
        assert!(r.on_state(&state(2.0, 5.0, PI / 2.0)));
        let c = r.capture(EPOCH_NS);
        assert_eq!(c.scan.pose_theta, PI / 2.0);
        assert!((ahead(&c) - 5.0).abs() < 1e-4, "{}", ahead(&c));
    }

    #[test]
    fn a_non_finite_state_is_ignored() {
        let mut r = rules();
        assert!(r.on_state(&state(3.0, 4.0, 0.5)));
        for s in [
            state(f64::NAN, 4.0, 0.5),
            state(3.0, f64::INFINITY, 0.5),
            state(3.0, 4.0, f64::NAN),
        ] {
            assert!(!r.on_state(&s), "{s:?}");
            assert_eq!(r.pose(), Pose2::new(3.0, 4.0, 0.5));
        }
        let c = r.capture(EPOCH_NS);
        assert_eq!((c.scan.pose_x, c.scan.pose_y, c.scan.pose_theta), (3.0, 4.0, 0.5));
        assert!(c.ranges.iter().all(|r| r.is_finite()));
    }

    #[test]
    fn a_frame_is_rgb_and_its_shade_changes_every_millisecond() {
        let f = frame_shot(4, 3, 5 * 1_000_000 + 999);
        assert_eq!(
            f.body,
            Frame {
                width: 4,
                height: 3,
                channels: 3
            }
        );
        assert_eq!(f.len, 36);
        assert_eq!(f.body.check_payload(f.len), Ok(()));
        assert_eq!(f.shade, 5);
        assert_eq!(frame_shot(4, 3, 6 * 1_000_000).shade, 6);
        assert_eq!(frame_shot(4, 3, 256 * 1_000_000).shade, 0, "wraps");
    }
}
