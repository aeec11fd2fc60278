//! Plane geometry shared by every module: poses, points and angle helpers.

use serde::{Deserialize, Serialize};
use std::f64::consts::{PI, TAU};

/// A point in the world frame, metres.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub const fn new(x: f64, y: f64) -> Self {
        Point { x, y }
    }

    /// Euclidean distance to `other`.
    pub fn dist(self, other: Point) -> f64 {
        (self.x - other.x).hypot(self.y - other.y)
    }

    /// Direction from `self` to `other`, radians CCW from +x (0 when both coincide).
    pub fn bearing_to(self, other: Point) -> f64 {
        (other.y - self.y).atan2(other.x - self.x)
    }
}

/// A robot pose in the world frame: position in metres, heading `theta` in radians
/// counter-clockwise from +x. `theta` defaults to 0 when a world file omits it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Pose2 {
    pub x: f64,
    pub y: f64,
    #[serde(default)]
    pub theta: f64,
}

impl Pose2 {
    pub const fn new(x: f64, y: f64, theta: f64) -> Self {
        Pose2 { x, y, theta }
    }

    /// The position part of the pose.
    pub const fn point(self) -> Point {
        Point { x: self.x, y: self.y }
    }
}

impl From<Pose2> for Point {
    fn from(p: Pose2) -> Point {
        p.point()
    }
}

/// Wraps an angle into (-pi, pi]. Non-finite input is returned unchanged.
pub fn normalize_angle(a: f64) -> f64 {
    if !a.is_finite() {
        return a;
    }
    let mut r = a.rem_euclid(TAU); // [0, 2pi)
    if r > PI {
        r -= TAU;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_wraps_into_half_open_interval() {
        assert_eq!(normalize_angle(0.0), 0.0);
        assert!((normalize_angle(PI) - PI).abs() < 1e-12);
        assert!((normalize_angle(-PI) - PI).abs() < 1e-12, "-pi maps to +pi");
        assert!((normalize_angle(3.0 * PI) - PI).abs() < 1e-9);
        assert!((normalize_angle(1.5 * PI) + 0.5 * PI).abs() < 1e-12);
        assert!((normalize_angle(-7.0) - (-7.0 + TAU)).abs() < 1e-12);
        for i in -100..100 {
            let a = normalize_angle(f64::from(i) * 0.37);
            assert!(a > -PI && a <= PI, "{a}");
        }
    }

    #[test]
    fn point_helpers() {
        let a = Point::new(1.0, 1.0);
        let b = Point::new(4.0, 5.0);
        assert!((a.dist(b) - 5.0).abs() < 1e-12);
        assert!((Point::new(0.0, 0.0).bearing_to(Point::new(0.0, 2.0)) - PI / 2.0).abs() < 1e-12);
        assert_eq!(Pose2::new(1.0, 2.0, 3.0).point(), Point::new(1.0, 2.0));
    }
}
