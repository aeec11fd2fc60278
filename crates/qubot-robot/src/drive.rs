//! Differential-drive (unicycle) kinematics with velocity and acceleration limits.

use crate::geom::{normalize_angle, Pose2};
use serde::{Deserialize, Serialize};

/// Velocity and acceleration limits of the base. Defaults: 0.8 m/s, 2 rad/s, 1 m/s^2,
/// 4 rad/s^2.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DriveLimits {
    /// Maximum linear speed, m/s (forward and backward).
    pub v_max: f64,
    /// Maximum angular speed, rad/s.
    pub w_max: f64,
    /// Maximum linear acceleration, m/s^2.
    pub a_max: f64,
    /// Maximum angular acceleration, rad/s^2.
    pub alpha_max: f64,
}

impl Default for DriveLimits {
    fn default() -> Self {
        DriveLimits {
            v_max: 0.8,
            w_max: 2.0,
            a_max: 1.0,
            alpha_max: 4.0,
        }
    }
}

/// The simulated base: pose plus the current (already limited) velocities.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct DiffDrive {
    pub pose: Pose2,
    /// Current linear velocity, m/s.
    pub v: f64,
    /// Current angular velocity, rad/s.
    pub w: f64,
    pub limits: DriveLimits,
}

/// Moves `current` towards `target` by at most `max_step` (non-finite inputs stop the ramp).
fn ramp(current: f64, target: f64, max_step: f64) -> f64 {
    if !target.is_finite() || !max_step.is_finite() {
        return current;
    }
    current + (target - current).clamp(-max_step, max_step)
}

fn clamp_sym(x: f64, limit: f64) -> f64 {
    let l = limit.abs();
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-l, l)
    }
}

impl DiffDrive {
    pub fn new(pose: Pose2, limits: DriveLimits) -> Self {
        DiffDrive {
            pose,
            v: 0.0,
            w: 0.0,
            limits,
        }
    }

    /// Advances `dt_s` seconds under the command `(cmd_v, cmd_w)`: the command is clamped to
    /// the velocity limits, the velocities move towards it no faster than the acceleration
    /// limits allow, and the pose follows the exact arc for the new constant velocities.
    /// A NaN command counts as 0; `dt_s <= 0` (or NaN) does nothing.
    pub fn step(&mut self, cmd_v: f64, cmd_w: f64, dt_s: f64) {
        if dt_s.is_nan() || dt_s <= 0.0 {
            return;
        }
        let lim = self.limits;
        let target_v = clamp_sym(cmd_v, lim.v_max);
        let target_w = clamp_sym(cmd_w, lim.w_max);
        self.v = clamp_sym(ramp(self.v, target_v, lim.a_max.abs() * dt_s), lim.v_max);
        self.w = clamp_sym(ramp(self.w, target_w, lim.alpha_max.abs() * dt_s), lim.w_max);

        let Pose2 { x, y, theta } = self.pose;
        let dtheta = self.w * dt_s;
        let (nx, ny) = if dtheta.abs() < 1e-9 {
            // Straight line (midpoint heading keeps second-order accuracy).
            let (s, c) = (theta + 0.5 * dtheta).sin_cos();
            (x + self.v * dt_s * c, y + self.v * dt_s * s)
        } else {
            let r = self.v / self.w;
            let (s0, c0) = theta.sin_cos();
            let (s1, c1) = (theta + dtheta).sin_cos();
            (x + r * (s1 - s0), y - r * (c1 - c0))
        };
        self.pose = Pose2 {
            x: nx,
            y: ny,
            theta: normalize_angle(theta + dtheta),
        };
    }

    /// Commands (0, 0): decelerates at the acceleration limits.
    pub fn stop(&mut self, dt_s: f64) {
        self.step(0.0, 0.0, dt_s);
    }

    /// True when both velocities are (numerically) zero.
    pub fn is_stopped(&self) -> bool {
        self.v.abs() < 1e-9 && self.w.abs() < 1e-9
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{FRAC_PI_2, PI};

    fn drive() -> DiffDrive {
        DiffDrive::new(Pose2::default(), DriveLimits::default())
    }

    #[test]
    fn respects_velocity_and_acceleration_limits() {
        let mut d = drive();
        let dt = 0.02;
        let mut prev = (0.0, 0.0);
        for _ in 0..500 {
            d.step(5.0, -9.0, dt);
            assert!(d.v <= 0.8 + 1e-12 && d.w >= -2.0 - 1e-12);
            assert!(
                (d.v - prev.0).abs() <= 1.0 * dt + 1e-12,
                "linear acceleration limit"
            );
            assert!(
                (d.w - prev.1).abs() <= 4.0 * dt + 1e-12,
                "angular acceleration limit"
            );
            prev = (d.v, d.w);
        }
        assert!(
            (d.v - 0.8).abs() < 1e-12 && (d.w + 2.0).abs() < 1e-12,
            "reaches the limits"
        );
        // 0 -> 0.8 m/s takes 0.8 s at 1 m/s^2 (40 steps), not fewer.
        let mut d = drive();
        for _ in 0..39 {
            d.step(0.8, 0.0, dt);
        }
        assert!(d.v < 0.8 - 1e-9);
        d.step(0.8, 0.0, dt);
        assert!((d.v - 0.8).abs() < 1e-9);
    }

    #[test]
    fn stop_decelerates_at_limit() {
        let mut d = drive();
        d.v = 0.8;
        d.w = 2.0;
        let mut steps = 0;
        while !d.is_stopped() {
            let before = d.v;
            d.stop(0.02);
            assert!(before - d.v <= 0.02 + 1e-12);
            steps += 1;
            assert!(steps < 1000);
        }
        assert_eq!(steps, 40, "0.8 m/s at 1 m/s^2 in 20 ms steps");
    }

    #[test]
    fn integrates_straight_and_arc_exactly() {
        let mut d = drive();
        d.v = 0.5;
        d.step(0.5, 0.0, 2.0);
        assert!((d.pose.x - 1.0).abs() < 1e-12 && d.pose.y.abs() < 1e-12);

        // Quarter circle of radius 0.5: v = 0.5, w = 1, for pi/2 seconds.
        let mut d = drive();
        d.v = 0.5;
        d.w = 1.0;
        for _ in 0..100 {
            d.step(0.5, 1.0, FRAC_PI_2 / 100.0);
        }
        assert!((d.pose.x - 0.5).abs() < 1e-9, "{:?}", d.pose);
        assert!((d.pose.y - 0.5).abs() < 1e-9, "{:?}", d.pose);
        assert!((d.pose.theta - FRAC_PI_2).abs() < 1e-9);

        // Spinning in place keeps theta normalised.
        let mut d = drive();
        d.w = 2.0;
        for _ in 0..1000 {
            d.step(0.0, 2.0, 0.01);
            assert!(d.pose.theta > -PI && d.pose.theta <= PI);
        }
        assert!(d.pose.x.abs() < 1e-12);
    }

    #[test]
    fn ignores_bad_input() {
        let mut d = drive();
        d.step(f64::NAN, f64::NAN, 0.1);
        assert!(d.is_stopped());
        d.step(1.0, 1.0, -1.0);
        d.step(1.0, 1.0, f64::NAN);
        assert!(d.is_stopped());
        assert_eq!(d.pose, Pose2::default());
    }
}
