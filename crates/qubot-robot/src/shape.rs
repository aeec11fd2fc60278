//! Static obstacle shapes and exact ray casting against them: what worlds are built of and
//! what moving obstacles are shaped like.

use crate::geom::Point;
use serde::{Deserialize, Serialize};

/// Directions closer to parallel than this (|cross| of unit vectors) are treated as parallel.
const PARALLEL_EPS: f64 = 1e-12;

/// One static obstacle. In TOML: `kind = "rect" | "circle" | "segment"` plus the fields.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shape {
    /// Axis-aligned rectangle, `x_min < x_max`, `y_min < y_max`.
    Rect {
        x_min: f64,
        y_min: f64,
        x_max: f64,
        y_max: f64,
    },
    /// Disc centred at `(cx, cy)` with radius `r > 0`.
    Circle { cx: f64, cy: f64, r: f64 },
    /// Zero-thickness wall from `(x0, y0)` to `(x1, y1)`; `kind = "wall"` is accepted too.
    #[serde(alias = "wall")]
    Segment { x0: f64, y0: f64, x1: f64, y1: f64 },
}

impl Shape {
    /// Signed distance from `p` to the shape: negative inside a rect or circle, `>= 0` outside.
    /// Segments have no inside, so their distance is never negative.
    pub fn signed_distance(&self, p: Point) -> f64 {
        match *self {
            Shape::Rect {
                x_min,
                y_min,
                x_max,
                y_max,
            } => {
                let qx = (x_min - p.x).max(p.x - x_max);
                let qy = (y_min - p.y).max(p.y - y_max);
                let outside = qx.max(0.0).hypot(qy.max(0.0));
                let inside = qx.max(qy).min(0.0);
                outside + inside
            }
            Shape::Circle { cx, cy, r } => (p.x - cx).hypot(p.y - cy) - r,
            Shape::Segment { x0, y0, x1, y1 } => {
                let (ex, ey) = (x1 - x0, y1 - y0);
                let len2 = ex * ex + ey * ey;
                let t = if len2 > 0.0 {
                    (((p.x - x0) * ex + (p.y - y0) * ey) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                (p.x - (x0 + t * ex)).hypot(p.y - (y0 + t * ey))
            }
        }
    }

    /// Distance along the unit direction `(dx, dy)` from `o` to the first intersection with the
    /// shape, or `None`. A ray starting inside a rect or circle hits at 0.
    pub fn ray_hit(&self, o: Point, dx: f64, dy: f64) -> Option<f64> {
        match *self {
            Shape::Rect {
                x_min,
                y_min,
                x_max,
                y_max,
            } => ray_rect(o, dx, dy, x_min, y_min, x_max, y_max),
            Shape::Circle { cx, cy, r } => {
                let (px, py) = (o.x - cx, o.y - cy);
                let c = px * px + py * py - r * r;
                if c <= 0.0 {
                    return Some(0.0);
                }
                let b = dx * px + dy * py;
                let disc = b * b - c;
                if disc < 0.0 || b >= 0.0 {
                    // Misses, or the circle is behind (c > 0 and b >= 0 means both roots <= 0).
                    return None;
                }
                let t = -b - disc.sqrt();
                (t >= 0.0).then_some(t)
            }
            Shape::Segment { x0, y0, x1, y1 } => ray_segment(o, dx, dy, x0, y0, x1, y1),
        }
    }

    /// The shape moved by `(dx, dy)`.
    pub fn translated(&self, dx: f64, dy: f64) -> Shape {
        match *self {
            Shape::Rect {
                x_min,
                y_min,
                x_max,
                y_max,
            } => Shape::Rect {
                x_min: x_min + dx,
                y_min: y_min + dy,
                x_max: x_max + dx,
                y_max: y_max + dy,
            },
            Shape::Circle { cx, cy, r } => Shape::Circle {
                cx: cx + dx,
                cy: cy + dy,
                r,
            },
            Shape::Segment { x0, y0, x1, y1 } => Shape::Segment {
                x0: x0 + dx,
                y0: y0 + dy,
                x1: x1 + dx,
                y1: y1 + dy,
            },
        }
    }

    /// The first invalid field as `(".field" or "", reason)`.
    pub(crate) fn problem(&self) -> Option<(String, String)> {
        for (name, v) in self.values() {
            if !v.is_finite() {
                return Some((format!(".{name}"), format!("must be finite, got {v}")));
            }
        }
        match *self {
            Shape::Rect {
                x_min,
                y_min,
                x_max,
                y_max,
            } => {
                if x_min >= x_max {
                    return Some((
                        ".x_min".into(),
                        format!("must be less than x_max ({x_min} >= {x_max})"),
                    ));
                }
                if y_min >= y_max {
                    return Some((
                        ".y_min".into(),
                        format!("must be less than y_max ({y_min} >= {y_max})"),
                    ));
                }
            }
            Shape::Circle { r, .. } => {
                if r <= 0.0 {
                    return Some((".r".into(), format!("must be positive, got {r}")));
                }
            }
            Shape::Segment { x0, y0, x1, y1 } => {
                if (x1 - x0).hypot(y1 - y0) <= 0.0 {
                    return Some((String::new(), "segment has zero length".into()));
                }
            }
        }
        None
    }

    fn values(&self) -> [(&'static str, f64); 4] {
        match *self {
            Shape::Rect {
                x_min,
                y_min,
                x_max,
                y_max,
            } => [
                ("x_min", x_min),
                ("y_min", y_min),
                ("x_max", x_max),
                ("y_max", y_max),
            ],
            Shape::Circle { cx, cy, r } => [("cx", cx), ("cy", cy), ("r", r), ("r", r)],
            Shape::Segment { x0, y0, x1, y1 } => [("x0", x0), ("y0", y0), ("x1", x1), ("y1", y1)],
        }
    }
}

/// The smallest signed distance from `p` to any of `shapes`, or `bound` if that is smaller.
pub(crate) fn nearest_distance(shapes: &[Shape], p: Point, bound: f64) -> f64 {
    shapes.iter().fold(bound, |acc, s| acc.min(s.signed_distance(p)))
}

/// Distance to the first of `shapes` the ray hits, or `bound` if that is nearer (every
/// `ray_hit` is `>= 0`).
pub(crate) fn first_hit(shapes: &[Shape], o: Point, dx: f64, dy: f64, bound: f64) -> f64 {
    shapes
        .iter()
        .filter_map(|s| s.ray_hit(o, dx, dy))
        .fold(bound, f64::min)
}

/// Slab method for an axis-aligned box.
fn ray_rect(o: Point, dx: f64, dy: f64, x0: f64, y0: f64, x1: f64, y1: f64) -> Option<f64> {
    let mut t_enter = f64::NEG_INFINITY;
    let mut t_exit = f64::INFINITY;
    for (origin, d, lo, hi) in [(o.x, dx, x0, x1), (o.y, dy, y0, y1)] {
        if d == 0.0 {
            if origin < lo || origin > hi {
                return None;
            }
        } else {
            let ta = (lo - origin) / d;
            let tb = (hi - origin) / d;
            t_enter = t_enter.max(ta.min(tb));
            t_exit = t_exit.min(ta.max(tb));
        }
    }
    if t_exit < 0.0 || t_enter > t_exit {
        return None;
    }
    Some(t_enter.max(0.0))
}

fn cross(ax: f64, ay: f64, bx: f64, by: f64) -> f64 {
    ax * by - ay * bx
}

/// Ray against a segment: solves `o + t d = a + s e` for `t >= 0`, `s in [0, 1]`.
fn ray_segment(o: Point, dx: f64, dy: f64, x0: f64, y0: f64, x1: f64, y1: f64) -> Option<f64> {
    let (ex, ey) = (x1 - x0, y1 - y0);
    let (wx, wy) = (x0 - o.x, y0 - o.y);
    let denom = cross(dx, dy, ex, ey);
    let len = ex.hypot(ey);
    if denom.abs() <= PARALLEL_EPS * len.max(1.0) {
        // Parallel: only a collinear segment is hit, at its nearest point ahead.
        if cross(wx, wy, dx, dy).abs() > 1e-9 {
            return None;
        }
        let ta = wx * dx + wy * dy;
        let tb = (x1 - o.x) * dx + (y1 - o.y) * dy;
        if ta.max(tb) < 0.0 {
            return None;
        }
        return Some(ta.min(tb).max(0.0));
    }
    let t = cross(wx, wy, ex, ey) / denom;
    let s = cross(wx, wy, dx, dy) / denom;
    (t >= 0.0 && (0.0..=1.0).contains(&s)).then_some(t)
}
