//! The world: a rectangular map `[0, width_m] x [0, height_m]` whose border is a wall, a
//! start pose, a goal, and static obstacles (rectangles, circles, wall segments).
//!
//! Worlds may also hold moving obstacles ([`Mover`]); [`World::scene`] freezes them at one
//! instant for ray casting and collision checks.
//!
//! Worlds come from TOML files (see `deploy/worlds/README.md`) or from [`World::builtin`].
//! Every constructor validates; errors name the offending field (`obstacles[2].r`, `start`).
//! Geometry queries are exact: [`World::clearance`] is a signed distance, and
//! [`World::raycast`] intersects the ray analytically with every shape.

use crate::geom::{Point, Pose2};
use crate::mover::Mover;
pub use crate::shape::Shape;
use crate::shape::{first_hit, nearest_distance};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A world for unit tests: default robot radius and goal tolerance, no movers. Not
/// validated, so a test can build a deliberately broken one.
#[cfg(test)]
pub(crate) fn test_world(
    width_m: f64,
    height_m: f64,
    start: Pose2,
    goal: Point,
    obstacles: Vec<Shape>,
) -> World {
    World {
        name: "t".into(),
        width_m,
        height_m,
        start,
        goal,
        goal_tolerance_m: default_goal_tolerance(),
        robot_radius_m: default_robot_radius(),
        obstacles,
        movers: vec![],
    }
}

/// A 10 m x 4 m test room, start on the left (1, 2), goal on the right (9, 2).
#[cfg(test)]
pub(crate) fn test_room(obstacles: Vec<Shape>) -> World {
    test_world(
        10.0,
        4.0,
        Pose2::new(1.0, 2.0, 0.0),
        Point::new(9.0, 2.0),
        obstacles,
    )
}

/// Anything a lidar can ray-cast: a static [`World`] or a [`Scene`] at one instant.
pub trait RayCast {
    /// Distance along the unit direction `(dx, dy)` to the first surface, capped at `max_range`.
    fn raycast_dir(&self, origin: Point, dx: f64, dy: f64, max_range: f64) -> f64;
}

impl RayCast for World {
    fn raycast_dir(&self, origin: Point, dx: f64, dy: f64, max_range: f64) -> f64 {
        World::raycast_dir(self, origin, dx, dy, max_range)
    }
}

/// A world at one instant: its static obstacles plus the movers where they stand then.
#[derive(Clone, Copy, Debug)]
pub struct Scene<'a> {
    pub world: &'a World,
    pub moving: &'a [Shape],
}

impl Scene<'_> {
    /// [`World::clearance`] including the movers.
    pub fn clearance(&self, p: Point) -> f64 {
        nearest_distance(self.moving, p, self.world.clearance(p))
    }
}

impl RayCast for Scene<'_> {
    fn raycast_dir(&self, origin: Point, dx: f64, dy: f64, max_range: f64) -> f64 {
        let static_hit = self.world.raycast_dir(origin, dx, dy, max_range);
        first_hit(self.moving, origin, dx, dy, static_hit)
    }
}

/// A validated world. Construct with [`World::from_toml_str`], [`World::load`],
/// [`World::resolve`] or [`World::builtin`]; call [`World::validate`] after editing fields.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Human-readable name, reported in logs.
    pub name: String,
    /// Map extent along x, metres; the map is `[0, width_m] x [0, height_m]`.
    pub width_m: f64,
    /// Map extent along y, metres.
    pub height_m: f64,
    /// Where the robot starts.
    pub start: Pose2,
    /// Where the robot must get to.
    pub goal: Point,
    /// Distance from the goal that counts as arrived. Default 0.25 m.
    #[serde(default = "default_goal_tolerance")]
    pub goal_tolerance_m: f64,
    /// Radius of the (disc-shaped) robot. Default 0.2 m.
    #[serde(default = "default_robot_radius")]
    pub robot_radius_m: f64,
    /// Static obstacles; the map border is an implicit wall and need not be listed.
    #[serde(default)]
    pub obstacles: Vec<Shape>,
    /// Moving or appearing obstacles (doors, walkers, carts), see [`Mover`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub movers: Vec<Mover>,
}

fn default_goal_tolerance() -> f64 {
    0.25
}

fn default_robot_radius() -> f64 {
    0.2
}

/// Why a world could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("cannot read world file {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("world file is not valid: {source}")]
    Parse { source: toml::de::Error },
    #[error("invalid world: `{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error(
        "unknown world {name:?}: not \"default\", not an existing file, and no <worlds_dir>/{name}.toml"
    )]
    UnknownWorld { name: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> WorldError {
    WorldError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl World {
    /// The default world: a 10 m x 8 m room with a block, two pillars and a wall between
    /// the start (left) and the goal (right).
    pub fn builtin() -> World {
        World {
            name: "default".to_owned(),
            width_m: 10.0,
            height_m: 8.0,
            start: Pose2::new(1.0, 4.0, 0.0),
            goal: Point::new(9.0, 4.0),
            goal_tolerance_m: default_goal_tolerance(),
            robot_radius_m: default_robot_radius(),
            obstacles: vec![
                Shape::Rect {
                    x_min: 2.8,
                    y_min: 3.2,
                    x_max: 3.4,
                    y_max: 4.9,
                },
                Shape::Circle {
                    cx: 5.2,
                    cy: 5.6,
                    r: 0.6,
                },
                Shape::Circle {
                    cx: 5.4,
                    cy: 2.4,
                    r: 0.5,
                },
                Shape::Segment {
                    x0: 7.2,
                    y0: 3.0,
                    x1: 7.2,
                    y1: 5.5,
                },
            ],
            movers: vec![],
        }
    }

    /// Parses and validates a world from TOML text.
    pub fn from_toml_str(text: &str) -> Result<World, WorldError> {
        let world: World = toml::from_str(text).map_err(|source| WorldError::Parse { source })?;
        world.validate()?;
        Ok(world)
    }

    /// Reads, parses and validates a world file.
    pub fn load(path: &Path) -> Result<World, WorldError> {
        let text = std::fs::read_to_string(path).map_err(|source| WorldError::Io {
            path: path.to_owned(),
            source,
        })?;
        World::from_toml_str(&text)
    }

    /// `"default"` is the built-in world; a path to an existing file is loaded; anything else
    /// is looked up as `worlds_dir/<name>.toml`.
    pub fn resolve(name_or_path: &str, worlds_dir: &Path) -> Result<World, WorldError> {
        if name_or_path == "default" {
            return Ok(World::builtin());
        }
        let direct = Path::new(name_or_path);
        if direct.is_file() {
            return World::load(direct);
        }
        let named = worlds_dir.join(format!("{name_or_path}.toml"));
        if named.is_file() {
            return World::load(&named);
        }
        Err(WorldError::UnknownWorld {
            name: name_or_path.to_owned(),
        })
    }

    /// Checks every invariant the simulator relies on. Errors name the field.
    pub fn validate(&self) -> Result<(), WorldError> {
        for (field, v) in [
            ("width_m", self.width_m),
            ("height_m", self.height_m),
            ("robot_radius_m", self.robot_radius_m),
            ("goal_tolerance_m", self.goal_tolerance_m),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(invalid(field, format!("must be a positive number, got {v}")));
            }
        }
        for (field, v) in [
            ("start.x", self.start.x),
            ("start.y", self.start.y),
            ("start.theta", self.start.theta),
            ("goal.x", self.goal.x),
            ("goal.y", self.goal.y),
        ] {
            if !v.is_finite() {
                return Err(invalid(field, format!("must be finite, got {v}")));
            }
        }
        for (i, shape) in self.obstacles.iter().enumerate() {
            if let Some((field, reason)) = shape.problem() {
                return Err(invalid(format!("obstacles[{i}]{field}"), reason));
            }
        }
        for (i, m) in self.movers.iter().enumerate() {
            if let Some((field, reason)) = m.shape.problem() {
                return Err(invalid(format!("movers[{i}].shape{field}"), reason));
            }
            if let Some((field, reason)) = m.problem() {
                return Err(invalid(format!("movers[{i}].{field}"), reason));
            }
        }
        self.check_free("start", self.start.point())?;
        self.check_free("goal", self.goal)?;
        Ok(())
    }

    fn check_free(&self, field: &str, p: Point) -> Result<(), WorldError> {
        if p.x < 0.0 || p.x > self.width_m || p.y < 0.0 || p.y > self.height_m {
            return Err(invalid(
                field,
                format!(
                    "({}, {}) is outside the map [0, {}] x [0, {}]",
                    p.x, p.y, self.width_m, self.height_m
                ),
            ));
        }
        let (clearance, what) = self.nearest(p);
        if clearance <= self.robot_radius_m {
            let place = if clearance <= 0.0 {
                "inside"
            } else {
                "too close to"
            };
            return Err(invalid(
                field,
                format!(
                    "({}, {}) is {place} {what} (clearance {clearance:.3} m, robot radius {} m)",
                    p.x, p.y, self.robot_radius_m
                ),
            ));
        }
        Ok(())
    }

    /// Clearance and a description of what is nearest (for error messages).
    fn nearest(&self, p: Point) -> (f64, String) {
        let mut best = (self.boundary_distance(p), "the map boundary".to_owned());
        for (i, shape) in self.obstacles.iter().enumerate() {
            let d = shape.signed_distance(p);
            if d < best.0 {
                best = (d, format!("obstacles[{i}]"));
            }
        }
        // Movers as they stand at the start of the run.
        for (i, m) in self.movers.iter().enumerate() {
            if let Some(d) = m.shape_at(0.0).map(|s| s.signed_distance(p)) {
                if d < best.0 {
                    best = (d, format!("movers[{i}] at t = 0"));
                }
            }
        }
        best
    }

    /// True when the world has moving or appearing obstacles.
    pub fn is_dynamic(&self) -> bool {
        !self.movers.is_empty()
    }

    /// Replaces `out` with the movers' shapes at world time `t` (seconds since the world
    /// clock's epoch); absent ones are left out. Allocation-free once `out` has grown.
    pub fn movers_at(&self, t: f64, out: &mut Vec<Shape>) {
        out.clear();
        out.extend(self.movers.iter().filter_map(|m| m.shape_at(t)));
    }

    /// The world with its movers frozen as `moving` (from [`World::movers_at`]).
    pub fn scene<'a>(&'a self, moving: &'a [Shape]) -> Scene<'a> {
        Scene { world: self, moving }
    }

    fn boundary_distance(&self, p: Point) -> f64 {
        p.x.min(self.width_m - p.x).min(p.y).min(self.height_m - p.y)
    }

    /// Signed distance from `p` to the nearest obstacle or map border: `<= 0` inside an
    /// obstacle or outside the map.
    pub fn clearance(&self, p: Point) -> f64 {
        nearest_distance(&self.obstacles, p, self.boundary_distance(p))
    }

    /// True when a disc of `radius` centred on the pose overlaps an obstacle or the border.
    pub fn collides(&self, pose: Pose2, radius: f64) -> bool {
        self.clearance(pose.point()) < radius
    }

    /// Distance from `origin` along `angle` (world frame) to the first obstacle or border,
    /// capped at `max_range`. Returns 0 when `origin` is inside an obstacle or off the map.
    pub fn raycast(&self, origin: Point, angle: f64, max_range: f64) -> f64 {
        let (dy, dx) = angle.sin_cos();
        self.raycast_dir(origin, dx, dy, max_range)
    }

    /// [`World::raycast`] with a precomputed unit direction `(dx, dy)`.
    pub fn raycast_dir(&self, origin: Point, dx: f64, dy: f64, max_range: f64) -> f64 {
        let border = self.boundary_hit(origin, dx, dy).min(max_range);
        first_hit(&self.obstacles, origin, dx, dy, border).max(0.0)
    }

    /// Where a ray from inside the map leaves it; 0 from outside.
    fn boundary_hit(&self, o: Point, dx: f64, dy: f64) -> f64 {
        if o.x < 0.0 || o.x > self.width_m || o.y < 0.0 || o.y > self.height_m {
            return 0.0;
        }
        let tx = if dx > 0.0 {
            (self.width_m - o.x) / dx
        } else if dx < 0.0 {
            -o.x / dx
        } else {
            f64::INFINITY
        };
        let ty = if dy > 0.0 {
            (self.height_m - o.y) / dy
        } else if dy < 0.0 {
            -o.y / dy
        } else {
            f64::INFINITY
        };
        tx.min(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};

    const EPS: f64 = 1e-9;

    fn empty(w: f64, h: f64) -> World {
        test_world(
            w,
            h,
            Pose2::new(1.0, 1.0, 0.0),
            Point::new(w - 1.0, h - 1.0),
            vec![],
        )
    }

    fn with(shape: Shape) -> World {
        let mut w = empty(20.0, 20.0);
        w.obstacles.push(shape);
        w
    }

    #[test]
    fn raycast_boundary() {
        let w = empty(10.0, 8.0);
        let o = Point::new(2.0, 3.0);
        assert!((w.raycast(o, 0.0, 100.0) - 8.0).abs() < EPS);
        assert!((w.raycast(o, PI, 100.0) - 2.0).abs() < EPS);
        assert!((w.raycast(o, FRAC_PI_2, 100.0) - 5.0).abs() < EPS);
        assert!((w.raycast(o, -FRAC_PI_2, 100.0) - 3.0).abs() < EPS);
        // Diagonal towards (0, 1): hits the left wall at distance 2 * sqrt(2).
        assert!((w.raycast(o, -3.0 * FRAC_PI_4, 100.0) - 2.0 * 2f64.sqrt()).abs() < EPS);
        assert_eq!(w.raycast(o, 0.0, 3.5), 3.5, "capped at max range");
        assert_eq!(w.raycast(Point::new(-1.0, 3.0), 0.0, 10.0), 0.0, "off the map");
    }

    #[test]
    fn raycast_rect() {
        let w = with(Shape::Rect {
            x_min: 5.0,
            y_min: 4.0,
            x_max: 7.0,
            y_max: 6.0,
        });
        let o = Point::new(2.0, 5.0);
        assert!((w.raycast(o, 0.0, 50.0) - 3.0).abs() < EPS, "face on");
        // From (2, 5) towards (5, 4.5) on the left face: distance sqrt(9 + 0.25).
        let a = Point::new(2.0, 5.0).bearing_to(Point::new(5.0, 4.5));
        assert!((w.raycast(o, a, 50.0) - 9.25f64.sqrt()).abs() < 1e-9);
        // Entering through the top face from above-left: (4, 8) towards (6, 6).
        let a = Point::new(4.0, 8.0).bearing_to(Point::new(6.0, 6.0));
        assert!((w.raycast(Point::new(4.0, 8.0), a, 50.0) - 8f64.sqrt()).abs() < 1e-9);
        // From below, straight up at x = 6: hits y_min = 4 from y = 1.
        assert!((w.raycast(Point::new(6.0, 1.0), FRAC_PI_2, 50.0) - 3.0).abs() < EPS);
        // Passing just beside: x = 7.001 never touches the rect; hits the top border at 20.
        assert!((w.raycast(Point::new(7.001, 1.0), FRAC_PI_2, 50.0) - 19.0).abs() < EPS);
        assert!((w.raycast(o, PI, 50.0) - 2.0).abs() < EPS, "behind the ray");
        assert_eq!(w.raycast(Point::new(6.0, 5.0), 1.0, 50.0), 0.0, "inside");
    }

    #[test]
    fn raycast_circle() {
        let w = with(Shape::Circle {
            cx: 10.0,
            cy: 10.0,
            r: 2.0,
        });
        assert!((w.raycast(Point::new(4.0, 10.0), 0.0, 50.0) - 4.0).abs() < EPS);
        // Offset ray y = 11: enters at x = 10 - sqrt(3).
        let t = w.raycast(Point::new(4.0, 11.0), 0.0, 50.0);
        assert!((t - (6.0 - 3f64.sqrt())).abs() < EPS, "{t}");
        // Tangent-ish miss at y = 12.001 goes to the border at x = 20.
        assert!((w.raycast(Point::new(4.0, 12.001), 0.0, 50.0) - 16.0).abs() < EPS);
        // Diagonal: from (10 - 5/sqrt2 * ..) choose origin on the 45 deg line.
        let o = Point::new(5.0, 5.0);
        let d = o.dist(Point::new(10.0, 10.0)) - 2.0;
        assert!((w.raycast(o, FRAC_PI_4, 50.0) - d).abs() < EPS);
        assert!(
            (w.raycast(Point::new(14.0, 10.0), 0.0, 50.0) - 6.0).abs() < EPS,
            "behind"
        );
        assert_eq!(w.raycast(Point::new(10.5, 10.0), 2.0, 50.0), 0.0, "inside");
    }

    #[test]
    fn raycast_segment() {
        let w = with(Shape::Segment {
            x0: 8.0,
            y0: 2.0,
            x1: 8.0,
            y1: 6.0,
        });
        assert!((w.raycast(Point::new(3.0, 4.0), 0.0, 50.0) - 5.0).abs() < EPS);
        // Towards the end point (8, 6) from (3, 1): length sqrt(25 + 25).
        let o = Point::new(3.0, 1.0);
        let a = o.bearing_to(Point::new(8.0, 6.0));
        assert!((w.raycast(o, a, 50.0) - 50f64.sqrt()).abs() < 1e-9);
        // Just above the end: misses the wall, hits the right border x = 20.
        assert!((w.raycast(Point::new(3.0, 6.001), 0.0, 50.0) - 17.0).abs() < EPS);
        // From the far side the wall is hit too (zero thickness, both faces).
        assert!((w.raycast(Point::new(12.0, 4.0), PI, 50.0) - 4.0).abs() < EPS);
        // Collinear ray along the wall: hits its near end.
        assert!((w.raycast(Point::new(8.0, 0.5), FRAC_PI_2, 50.0) - 1.5).abs() < EPS);
        // Diagonal segment.
        let w = with(Shape::Segment {
            x0: 4.0,
            y0: 0.5,
            x1: 0.5,
            y1: 4.0,
        });
        let t = w.raycast(Point::new(1.0, 1.0), FRAC_PI_4, 50.0);
        // Line x + y = 4.5 along (1,1)/sqrt2 from (1,1): 2 + 2 s' = 4.5 -> distance 1.25 sqrt2.
        assert!((t - 1.25 * 2f64.sqrt()).abs() < EPS, "{t}");
    }

    #[test]
    fn raycast_takes_nearest_of_many() {
        let mut w = empty(20.0, 20.0);
        w.obstacles = vec![
            Shape::Circle {
                cx: 12.0,
                cy: 5.0,
                r: 1.0,
            },
            Shape::Rect {
                x_min: 8.0,
                y_min: 4.0,
                x_max: 9.0,
                y_max: 6.0,
            },
            Shape::Segment {
                x0: 15.0,
                y0: 0.0,
                x1: 15.0,
                y1: 10.0,
            },
        ];
        assert!((w.raycast(Point::new(1.0, 5.0), 0.0, 50.0) - 7.0).abs() < EPS);
        assert!((w.raycast(Point::new(1.0, 7.0), 0.0, 50.0) - 14.0).abs() < EPS);
    }

    /// Property check with a fixed LCG: along any ray, the clearance at the hit point is ~0 and
    /// every sampled point before it has positive clearance.
    #[test]
    fn raycast_agrees_with_clearance() {
        let w = World::builtin();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut checked = 0;
        while checked < 2000 {
            let o = Point::new(rnd() * w.width_m, rnd() * w.height_m);
            if w.clearance(o) <= 0.01 {
                continue;
            }
            let a = (rnd() - 0.5) * 2.0 * PI;
            let t = w.raycast(o, a, 100.0);
            let hit = Point::new(o.x + t * a.cos(), o.y + t * a.sin());
            assert!(
                w.clearance(hit).abs() < 1e-6,
                "hit point not on a surface: {o:?} {a} {t}"
            );
            for k in 1..20 {
                let s = t * f64::from(k) / 20.0;
                let q = Point::new(o.x + s * a.cos(), o.y + s * a.sin());
                assert!(w.clearance(q) > -1e-9, "ray passed through an obstacle");
            }
            checked += 1;
        }
    }

    #[test]
    fn clearance_signs() {
        let w = with(Shape::Rect {
            x_min: 5.0,
            y_min: 5.0,
            x_max: 7.0,
            y_max: 9.0,
        });
        assert!((w.clearance(Point::new(4.0, 6.0)) - 1.0).abs() < EPS);
        assert!(
            (w.clearance(Point::new(8.0, 10.0)) - 2f64.sqrt()).abs() < EPS,
            "corner"
        );
        assert!(
            (w.clearance(Point::new(5.5, 7.0)) + 0.5).abs() < EPS,
            "inside is negative"
        );
        assert!((w.clearance(Point::new(0.3, 15.0)) - 0.3).abs() < EPS, "boundary");
        assert!(w.clearance(Point::new(-1.0, 15.0)) < 0.0, "off the map");
        let w = with(Shape::Segment {
            x0: 2.0,
            y0: 2.0,
            x1: 6.0,
            y1: 2.0,
        });
        assert!((w.clearance(Point::new(4.0, 2.5)) - 0.5).abs() < EPS);
        assert!(
            (w.clearance(Point::new(7.0, 2.0)) - 1.0).abs() < EPS,
            "past the end"
        );
        assert!(w.collides(Pose2::new(4.0, 2.1, 0.0), 0.2));
        assert!(!w.collides(Pose2::new(4.0, 2.5, 0.0), 0.2));
    }

    const GOOD: &str = r#"
        name = "t"
        width_m = 10.0
        height_m = 8.0
        start = { x = 1.0, y = 1.0 }
        goal = { x = 9.0, y = 7.0 }
        [[obstacles]]
        kind = "circle"
        cx = 5.0
        cy = 4.0
        r = 1.0
        [[obstacles]]
        kind = "rect"
        x_min = 2.0
        y_min = 5.0
        x_max = 3.0
        y_max = 6.0
        [[obstacles]]
        kind = "wall"
        x0 = 7.0
        y0 = 0.0
        x1 = 7.0
        y1 = 3.0
    "#;

    fn err_of(text: &str) -> String {
        match World::from_toml_str(text) {
            Ok(w) => panic!("expected an error, got {w:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_good_world_with_defaults() {
        let w = World::from_toml_str(GOOD).unwrap();
        assert_eq!(w.obstacles.len(), 3);
        assert_eq!(w.robot_radius_m, 0.2);
        assert_eq!(w.goal_tolerance_m, 0.25);
        assert_eq!(w.start.theta, 0.0);
        assert!(matches!(w.obstacles[2], Shape::Segment { .. }));
        // Round trip through TOML.
        let text = toml::to_string(&w).unwrap();
        assert_eq!(World::from_toml_str(&text).unwrap(), w);
    }

    #[test]
    fn bad_toml_names_the_key() {
        let e = err_of(&GOOD.replace("width_m = 10.0", "width_m = \"ten\""));
        assert!(e.contains("width_m"), "{e}");
        let e = err_of(&GOOD.replace("height_m = 8.0", "height_m = "));
        assert!(e.contains("height_m"), "{e}");
        let e = err_of(&GOOD.replace("name = \"t\"", ""));
        assert!(e.contains("name"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = err_of(&GOOD.replace("height_m = 8.0", "height_m = 8.0\nheigth = 3.0"));
        assert!(e.contains("heigth"), "{e}");
        let e = err_of(&GOOD.replace("r = 1.0", "r = 1.0\nradius = 2.0"));
        assert!(e.contains("radius"), "{e}");
        let e = err_of(&GOOD.replace("kind = \"circle\"", "kind = \"blob\""));
        assert!(e.contains("blob"), "{e}");
        let e = err_of(&GOOD.replace(
            "start = { x = 1.0, y = 1.0 }",
            "start = { x = 1.0, y = 1.0, z = 0.0 }",
        ));
        assert!(e.contains('z'), "{e}");
    }

    fn invalid_field(text: &str) -> (String, String) {
        match World::from_toml_str(text) {
            Err(WorldError::Invalid { field, reason }) => (field, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn start_or_goal_in_obstacle_is_invalid() {
        let (f, r) =
            invalid_field(&GOOD.replace("start = { x = 1.0, y = 1.0 }", "start = { x = 5.2, y = 4.0 }"));
        assert_eq!(f, "start");
        assert!(r.contains("inside obstacles[0]"), "{r}");
        let (f, r) =
            invalid_field(&GOOD.replace("start = { x = 1.0, y = 1.0 }", "start = { x = 1.9, y = 5.5 }"));
        assert_eq!(f, "start");
        assert!(r.contains("too close to obstacles[1]"), "{r}");
        let (f, _) =
            invalid_field(&GOOD.replace("goal = { x = 9.0, y = 7.0 }", "goal = { x = 7.1, y = 1.0 }"));
        assert_eq!(f, "goal");
        let (f, r) =
            invalid_field(&GOOD.replace("goal = { x = 9.0, y = 7.0 }", "goal = { x = 11.0, y = 7.0 }"));
        assert_eq!(f, "goal");
        assert!(r.contains("outside the map"), "{r}");
    }

    #[test]
    fn bad_numbers_are_invalid() {
        let (f, _) = invalid_field(&GOOD.replace("r = 1.0", "r = -1.0"));
        assert_eq!(f, "obstacles[0].r");
        let (f, _) = invalid_field(&GOOD.replace("r = 1.0", "r = 0.0"));
        assert_eq!(f, "obstacles[0].r");
        let (f, _) = invalid_field(&GOOD.replace("y1 = 3.0", "y1 = 0.0"));
        assert_eq!(f, "obstacles[2]", "zero-length segment");
    }

    #[test]
    fn negative_robot_radius_is_invalid() {
        let text = GOOD.replacen("width_m = 10.0", "width_m = 10.0\nrobot_radius_m = -0.2", 1);
        let (f, r) = invalid_field(&text);
        assert_eq!(f, "robot_radius_m");
        assert!(r.contains("positive"), "{r}");
        let (f, _) = invalid_field(&GOOD.replacen("width_m = 10.0", "width_m = 0.0", 1));
        assert_eq!(f, "width_m");
        let (f, _) =
            invalid_field(&GOOD.replacen("width_m = 10.0", "width_m = 10.0\ngoal_tolerance_m = 0", 1));
        assert_eq!(f, "goal_tolerance_m");
        let (f, _) = invalid_field(&GOOD.replace("x_max = 3.0", "x_max = 1.0"));
        assert_eq!(f, "obstacles[1].x_min");
    }

    #[test]
    fn bad_mover_timelines_name_the_field() {
        let mover = |body: &str| {
            format!(
                "{GOOD}\n[[movers]]\nshape = {{ kind = \"circle\", cx = 5.0, cy = 7.0, r = 0.3 }}\n{body}\n"
            )
        };
        let (f, r) = invalid_field(&mover("waypoints = [{ x = 5.0, y = 7.0 }, { x = 8.0, y = 7.0 }]"));
        assert_eq!(f, "movers[0].speed_mps");
        assert!(r.contains("positive"), "{r}");
        let (f, _) = invalid_field(&mover("present = [[4.0, 2.0]]"));
        assert_eq!(f, "movers[0].present[0]");
        let (f, _) = invalid_field(&mover(
            "speed_mps = 1.0\nwaypoints = [{ x = 5.0, y = 7.0 }, { x = 8.0, y = 7.0, wait_s = -2.0 }]",
        ));
        assert_eq!(f, "movers[0].waypoints[1].wait_s");
        let (f, _) = invalid_field(&format!(
            "{GOOD}\n[[movers]]\nshape = {{ kind = \"circle\", cx = 5.0, cy = 7.0, r = -1.0 }}\n"
        ));
        assert_eq!(f, "movers[0].shape.r");
        // Standing on the start at 0 s.
        let (f, r) = invalid_field(&format!(
            "{GOOD}\n[[movers]]\nshape = {{ kind = \"circle\", cx = 1.0, cy = 1.3, r = 0.3 }}\n"
        ));
        assert_eq!(f, "start");
        assert!(r.contains("movers[0] at t = 0"), "{r}");
        let e = err_of(&mover("sped_mps = 1.0"));
        assert!(e.contains("sped_mps"), "unknown keys are rejected: {e}");
        // And a good one parses and moves.
        let w = World::from_toml_str(&mover(
            "speed_mps = 1.0\nrepeat = \"bounce\"\nwaypoints = [{ x = 5.0, y = 7.0 }, { x = 8.0, y = 7.0 }]",
        ))
        .unwrap();
        let mut at = Vec::new();
        w.movers_at(1.5, &mut at);
        assert_eq!(
            at,
            vec![Shape::Circle {
                cx: 6.5,
                cy: 7.0,
                r: 0.3
            }]
        );
    }

    #[test]
    fn builtin_is_valid() {
        World::builtin().validate().unwrap();
    }

    #[test]
    fn resolve_finds_builtin_files_and_reports_unknown() {
        let dir = std::env::temp_dir().join(format!("qubot-robot-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mine.toml"), GOOD).unwrap();
        assert_eq!(World::resolve("default", &dir).unwrap().name, "default");
        assert_eq!(World::resolve("mine", &dir).unwrap().name, "t");
        let full = dir.join("mine.toml");
        assert_eq!(
            World::resolve(full.to_str().unwrap(), Path::new("/nonexistent"))
                .unwrap()
                .name,
            "t"
        );
        assert!(matches!(
            World::resolve("nope", &dir),
            Err(WorldError::UnknownWorld { .. })
        ));
        assert!(matches!(
            World::load(&dir.join("nope.toml")),
            Err(WorldError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
