//! A simulated 2D lidar: one exact ray cast per beam against the [`World`].

use crate::geom::Pose2;
use crate::world::RayCast;
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;

/// Smallest and largest supported beam counts.
pub const BEAMS_MIN: usize = 360;
pub const BEAMS_MAX: usize = 4096;

/// Lidar parameters. Defaults: 720 beams, full circle, 8 m range.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LidarConfig {
    /// Beams per scan, `360..=4096` (clamped by [`Lidar::new`]).
    pub beams: usize,
    /// Field of view, radians, `(0, 2 pi]`, centred on the robot's heading.
    pub fov_rad: f64,
    /// Maximum range, metres; beams that hit nothing report exactly this.
    pub range_max_m: f64,
}

impl Default for LidarConfig {
    fn default() -> Self {
        LidarConfig {
            beams: 720,
            fov_rad: TAU,
            range_max_m: 8.0,
        }
    }
}

impl LidarConfig {
    /// The first out-of-range field and why, or `None` when the config is usable as is.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !(BEAMS_MIN..=BEAMS_MAX).contains(&self.beams) {
            return Some((
                "beams",
                format!("{} not in {BEAMS_MIN}..={BEAMS_MAX}", self.beams),
            ));
        }
        if !(self.fov_rad > 0.0 && self.fov_rad <= TAU) {
            return Some(("fov_rad", format!("{} not in (0, 2 pi]", self.fov_rad)));
        }
        if !(self.range_max_m.is_finite() && self.range_max_m > 0.0) {
            return Some((
                "range_max_m",
                format!("{} must be a positive number", self.range_max_m),
            ));
        }
        None
    }
}

/// A lidar with precomputed beam directions (robot frame).
#[derive(Clone, Debug)]
pub struct Lidar {
    cfg: LidarConfig,
    angle_min: f64,
    angle_increment: f64,
    /// `(cos, sin)` of each beam's robot-frame angle.
    dirs: Vec<(f64, f64)>,
}

impl Lidar {
    /// Builds the lidar, clamping out-of-range values (see [`LidarConfig::problem`]) to the
    /// nearest usable one: beams to `360..=4096`, fov to `(0, 2 pi]` (2 pi when not a positive
    /// number), range to 8 m when not a positive number.
    ///
    /// Beam `i` points at `angle_min + i * angle_increment` with `angle_min = -fov / 2`. For a
    /// full circle `angle_increment = fov / beams` (no duplicated beam at +-pi); for a partial
    /// fov it is `fov / (beams - 1)` so the last beam lands on `+fov / 2`.
    pub fn new(cfg: LidarConfig) -> Lidar {
        let beams = cfg.beams.clamp(BEAMS_MIN, BEAMS_MAX);
        let fov = if cfg.fov_rad > 0.0 {
            cfg.fov_rad.min(TAU)
        } else {
            TAU
        };
        let range = if cfg.range_max_m.is_finite() && cfg.range_max_m > 0.0 {
            cfg.range_max_m
        } else {
            8.0
        };
        let cfg = LidarConfig {
            beams,
            fov_rad: fov,
            range_max_m: range,
        };
        let full = (TAU - fov).abs() < 1e-9;
        // beams >= 360, so beams - 1 > 0.
        let angle_increment = if full {
            fov / beams as f64
        } else {
            fov / (beams - 1) as f64
        };
        let angle_min = -fov / 2.0;
        let dirs = (0..beams)
            .map(|i| {
                let (s, c) = (angle_min + i as f64 * angle_increment).sin_cos();
                (c, s)
            })
            .collect();
        Lidar {
            cfg,
            angle_min,
            angle_increment,
            dirs,
        }
    }

    /// The effective (clamped) configuration.
    pub fn config(&self) -> LidarConfig {
        self.cfg
    }

    pub fn beams(&self) -> usize {
        self.dirs.len()
    }

    /// Robot-frame angle of beam 0, radians.
    pub fn angle_min(&self) -> f64 {
        self.angle_min
    }

    /// Angle between consecutive beams, radians.
    pub fn angle_increment(&self) -> f64 {
        self.angle_increment
    }

    pub fn range_max(&self) -> f64 {
        self.cfg.range_max_m
    }

    /// Writes one range per beam into `out` (metres; `range_max` when nothing is hit) and
    /// returns how many were written: `min(out.len(), beams)`. Allocation-free.
    pub fn scan_into(&self, world: &impl RayCast, pose: Pose2, out: &mut [f32]) -> usize {
        let origin = pose.point();
        let (st, ct) = pose.theta.sin_cos();
        let range_max = self.cfg.range_max_m;
        let mut n = 0;
        for (slot, &(c, s)) in out.iter_mut().zip(&self.dirs) {
            // Rotate the beam direction by the robot heading.
            let dx = ct * c - st * s;
            let dy = st * c + ct * s;
            *slot = world.raycast_dir(origin, dx, dy, range_max) as f32;
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::Point;
    use crate::world::{test_world, Shape, World};
    use std::f64::consts::{FRAC_PI_2, PI};

    fn room() -> World {
        let pillar = Shape::Circle {
            cx: 13.0,
            cy: 10.0,
            r: 1.0,
        };
        test_world(
            20.0,
            20.0,
            Pose2::new(1.0, 1.0, 0.0),
            Point::new(19.0, 19.0),
            vec![pillar],
        )
    }

    #[test]
    fn beam_layout_full_circle() {
        let l = Lidar::new(LidarConfig::default());
        assert_eq!(l.beams(), 720);
        assert!((l.angle_min() + PI).abs() < 1e-12);
        assert!((l.angle_increment() - TAU / 720.0).abs() < 1e-15);
        assert_eq!(l.range_max(), 8.0);
    }

    #[test]
    fn beam_layout_partial_fov_and_clamping() {
        let l = Lidar::new(LidarConfig {
            beams: 361,
            fov_rad: PI,
            range_max_m: 5.0,
        });
        assert!((l.angle_min() + FRAC_PI_2).abs() < 1e-12);
        assert!((l.angle_min() + 360.0 * l.angle_increment() - FRAC_PI_2).abs() < 1e-12);
        let bad = LidarConfig {
            beams: 10,
            fov_rad: -1.0,
            range_max_m: f64::NAN,
        };
        assert_eq!(bad.problem().map(|p| p.0), Some("beams"));
        let l = Lidar::new(bad);
        assert_eq!(l.beams(), BEAMS_MIN);
        assert_eq!(l.config().fov_rad, TAU);
        assert_eq!(l.range_max(), 8.0);
        assert_eq!(
            Lidar::new(LidarConfig {
                beams: 100_000,
                ..Default::default()
            })
            .beams(),
            BEAMS_MAX
        );
        assert!(LidarConfig::default().problem().is_none());
    }

    #[test]
    fn scan_sees_obstacle_in_robot_frame() {
        let w = room();
        let l = Lidar::new(LidarConfig::default());
        let mut out = vec![0f32; l.beams()];
        // Robot at (10, 10) facing +y: the circle at (13, 10) is on its right (-pi/2).
        let pose = Pose2::new(10.0, 10.0, FRAC_PI_2);
        assert_eq!(l.scan_into(&w, pose, &mut out), 720);
        let idx = |a: f64| ((a - l.angle_min()) / l.angle_increment()).round() as usize;
        assert!(
            (out[idx(-FRAC_PI_2)] - 2.0).abs() < 1e-5,
            "{}",
            out[idx(-FRAC_PI_2)]
        );
        assert!(
            (out[idx(FRAC_PI_2)] - 8.0).abs() < 1e-6,
            "nothing within range on the left"
        );
        assert!((out[idx(0.0)] - 8.0).abs() < 1e-6);
        // Every beam matches a direct world ray cast.
        for (i, r) in out.iter().enumerate() {
            let a = pose.theta + l.angle_min() + i as f64 * l.angle_increment();
            let expect = w.raycast(pose.point(), a, 8.0) as f32;
            assert!((r - expect).abs() < 1e-4, "beam {i}: {r} vs {expect}");
        }
        let mut short = [0f32; 10];
        assert_eq!(l.scan_into(&w, pose, &mut short), 10);
    }
}
