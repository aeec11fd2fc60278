//! Moving obstacles: a shape plus a timeline, evaluated at a world time `t` (seconds since the
//! world clock's epoch, see `World::movers_at`).
//!
//! Two kinds of timeline, which may be combined:
//! - `present`: windows `[from, to)` in which the obstacle exists at all (a door that is
//!   closed from 3 s to 16 s is a wall segment present in `[3, 16)`). Absent means always.
//! - `waypoints` + `speed_mps`: the shape as drawn stands at the first waypoint and is carried
//!   rigidly along the polyline at constant speed, waiting `wait_s` at each waypoint it reaches.
//!   Before `start_s` it stands still at the first waypoint; `repeat` says what happens after
//!   the last one (`once`: stay, `loop`: back to the first and again, `bounce`: back along the
//!   same waypoints and again).
//!
//! Evaluation is a pure function of `t`, so every process that knows the epoch (the sensor
//! that ray-casts, the referee that judges) sees the same obstacle at the same instant.

use crate::geom::Point;
use crate::shape::Shape;
use serde::{Deserialize, Serialize};

/// One waypoint of a moving obstacle.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Waypoint {
    pub x: f64,
    pub y: f64,
    /// Seconds to stand still on arrival here.
    #[serde(default)]
    pub wait_s: f64,
}

/// What a mover does after its last waypoint.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Repeat {
    /// Stay at the last waypoint.
    #[default]
    Once,
    /// Go back to the first waypoint and start over.
    Loop,
    /// Walk the waypoints backwards, then forwards again, and so on.
    Bounce,
}

/// A moving (or appearing) obstacle.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mover {
    /// Label for logs and maps, e.g. "door" or "walker-1".
    #[serde(default)]
    pub name: String,
    /// The shape where it stands at the first waypoint (or for ever, without waypoints).
    pub shape: Shape,
    /// Windows `[from, to)` (seconds) in which the obstacle exists; empty means always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub present: Vec<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waypoints: Vec<Waypoint>,
    /// Speed along the waypoints, m/s; required with two or more waypoints.
    #[serde(default)]
    pub speed_mps: f64,
    /// Seconds before it starts moving.
    #[serde(default)]
    pub start_s: f64,
    #[serde(default)]
    pub repeat: Repeat,
}

impl Mover {
    /// The shape at world time `t`, or `None` while the obstacle is absent.
    pub fn shape_at(&self, t: f64) -> Option<Shape> {
        if !self.present.is_empty() && !self.present.iter().any(|w| t >= w[0] && t < w[1]) {
            return None;
        }
        let Some(first) = self.waypoints.first() else {
            return Some(self.shape);
        };
        let p = self.position_at(t);
        Some(self.shape.translated(p.x - first.x, p.y - first.y))
    }

    /// Where the first waypoint's point has moved to at `t`.
    fn position_at(&self, t: f64) -> Point {
        let wps = &self.waypoints;
        let at = |i: usize| Point::new(wps[i].x, wps[i].y);
        // A NaN time reads as "not started".
        if wps.len() < 2 || t.is_nan() || t <= self.start_s {
            return at(0);
        }
        // One cycle visits these waypoint indices in order.
        let n = wps.len();
        let order = |k: usize| -> usize {
            match self.repeat {
                Repeat::Once => k,
                Repeat::Loop => k % n,
                Repeat::Bounce => {
                    if k < n {
                        k
                    } else {
                        2 * (n - 1) - k
                    }
                }
            }
        };
        let legs = match self.repeat {
            Repeat::Once => n - 1,
            Repeat::Loop => n,
            Repeat::Bounce => 2 * (n - 1),
        };
        let leg_time = |k: usize| at(order(k)).dist(at(order(k + 1))) / self.speed_mps;
        let cycle: f64 = (0..legs).map(|k| leg_time(k) + wps[order(k + 1)].wait_s).sum();
        let mut tau = t - self.start_s;
        if self.repeat == Repeat::Once {
            if tau >= cycle {
                return at(n - 1);
            }
        } else if cycle > 0.0 {
            tau = tau.rem_euclid(cycle);
        }
        for k in 0..legs {
            let (a, b) = (at(order(k)), at(order(k + 1)));
            let dt = leg_time(k);
            if tau < dt {
                let s = tau / dt;
                return Point::new(a.x + s * (b.x - a.x), a.y + s * (b.y - a.y));
            }
            tau -= dt;
            let wait = wps[order(k + 1)].wait_s;
            if tau < wait {
                return b;
            }
            tau -= wait;
        }
        at(order(legs))
    }

    /// The first problem with this mover's timeline, as `(field suffix, reason)`.
    pub(crate) fn problem(&self) -> Option<(String, String)> {
        let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
        for (i, w) in self.present.iter().enumerate() {
            if !(w[0].is_finite() && w[1].is_finite()) {
                return Some((format!("present[{i}]"), "bounds must be finite".into()));
            }
            if w[0] >= w[1] {
                return Some((
                    format!("present[{i}]"),
                    format!("from must be less than to ({} >= {})", w[0], w[1]),
                ));
            }
        }
        for (i, w) in self.waypoints.iter().enumerate() {
            if !(w.x.is_finite() && w.y.is_finite()) {
                return Some((format!("waypoints[{i}]"), "x and y must be finite".into()));
            }
            if !finite_nonneg(w.wait_s) {
                return Some((
                    format!("waypoints[{i}].wait_s"),
                    format!("must be a number >= 0, got {}", w.wait_s),
                ));
            }
        }
        if !finite_nonneg(self.start_s) {
            return Some((
                "start_s".into(),
                format!("must be a number >= 0, got {}", self.start_s),
            ));
        }
        if self.waypoints.len() >= 2 {
            if !(self.speed_mps.is_finite() && self.speed_mps > 0.0) {
                return Some((
                    "speed_mps".into(),
                    format!(
                        "must be positive with two or more waypoints, got {}",
                        self.speed_mps
                    ),
                ));
            }
            let total: f64 = self
                .waypoints
                .windows(2)
                .map(|p| Point::new(p[0].x, p[0].y).dist(Point::new(p[1].x, p[1].y)))
                .sum();
            if total <= 0.0 {
                return Some(("waypoints".into(), "all waypoints are the same point".into()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walker(repeat: Repeat) -> Mover {
        Mover {
            name: "w".into(),
            shape: Shape::Circle {
                cx: 0.0,
                cy: 0.0,
                r: 0.25,
            },
            present: vec![],
            waypoints: vec![
                Waypoint {
                    x: 0.0,
                    y: 0.0,
                    wait_s: 0.0,
                },
                Waypoint {
                    x: 2.0,
                    y: 0.0,
                    wait_s: 1.0,
                },
            ],
            speed_mps: 1.0,
            start_s: 1.0,
            repeat,
        }
    }

    fn centre(m: &Mover, t: f64) -> (f64, f64) {
        match m.shape_at(t) {
            Some(Shape::Circle { cx, cy, .. }) => (cx, cy),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn walks_waits_and_repeats() {
        let once = walker(Repeat::Once);
        assert_eq!(centre(&once, 0.5), (0.0, 0.0), "before start_s");
        assert_eq!(centre(&once, 2.0), (1.0, 0.0), "half way along the leg");
        assert_eq!(centre(&once, 3.5), (2.0, 0.0), "waiting at the end");
        assert_eq!(centre(&once, 100.0), (2.0, 0.0), "once: stays");
        // Bounce: 2 s out, 1 s wait, 2 s back, 0 s wait: a 5 s cycle from t = 1.
        let bounce = walker(Repeat::Bounce);
        assert_eq!(centre(&bounce, 5.0), (1.0, 0.0), "on the way back");
        assert_eq!(centre(&bounce, 7.0), (1.0, 0.0), "second cycle, going out");
        // Loop: the closing leg is the way back, so it matches bounce for two waypoints.
        assert_eq!(centre(&walker(Repeat::Loop), 5.0), (1.0, 0.0));
    }

    #[test]
    fn present_windows_gate_the_obstacle() {
        let door = Mover {
            present: vec![[3.0, 16.0]],
            waypoints: vec![],
            ..walker(Repeat::Once)
        };
        assert!(door.shape_at(2.9).is_none());
        assert!(door.shape_at(3.0).is_some());
        assert!(door.shape_at(15.99).is_some());
        assert!(door.shape_at(16.0).is_none(), "windows are half open");
    }

    #[test]
    fn bad_timelines_name_the_field() {
        let mut m = walker(Repeat::Once);
        m.speed_mps = 0.0;
        assert_eq!(m.problem().unwrap().0, "speed_mps");
        let mut m = walker(Repeat::Once);
        m.waypoints[1].wait_s = -1.0;
        assert_eq!(m.problem().unwrap().0, "waypoints[1].wait_s");
        let mut m = walker(Repeat::Once);
        m.present = vec![[5.0, 4.0]];
        assert_eq!(m.problem().unwrap().0, "present[0]");
        let mut m = walker(Repeat::Once);
        m.waypoints[1].x = 0.0;
        assert_eq!(m.problem().unwrap().0, "waypoints");
        assert!(walker(Repeat::Bounce).problem().is_none());
    }
}
