//! The local planner: one lidar scan + the pose at scan time + the goal -> one `(v, w)`.
//!
//! Algorithm: a vector field histogram (VFH+ style) whose candidate directions are ranked by
//! an NF1 navigation function, in the spirit of VFH* and the "global dynamic window approach"
//! (Brock & Khatib 1999), which steer a reactive layer with a grid distance-to-goal.
//!
//! 1. **Free-path histogram.** The scan is folded into `sectors` (default 180, 2 deg each).
//!    For every sector centre we compute exactly how far a disc of radius
//!    `robot_radius + safety_margin` can travel in a straight line before touching a scan
//!    point (capped at `lookahead_m`). Each beam only touches the sectors inside its
//!    enlargement cone `asin(r_enl / range)`: O(beams * cone), not O(beams * sectors).
//! 2. **Line of sight.** If the disc can drive straight at the goal, it does.
//! 3. **Detour.** Otherwise every sector with at least `min_free_m` of free path is a
//!    candidate; its cost is `len + NF(point len along it) + turn_weight * |turn|` with
//!    `len = min(free, eval_dist_m)`, and the cheapest wins. `NF` is the grid distance to the
//!    goal around every obstacle seen so far: scan end points go into an occupancy grid kept
//!    by the planner, inflated by the robot radius, and an A* search from the goal towards the
//!    robot settles the cells near the robot. Unknown cells count as free, so the planner
//!    tries the straight route first and bends around walls as it sees them; rooms, doors and
//!    U-shaped traps, where a purely reactive VFH oscillates, are handled.
//! 4. **Speed.** `v` is limited by the free path over the arc the robot turns through (it can
//!    brake in the remaining distance at half `a_max`), by the heading error (`cos^2`) and near
//!    the goal; `w` is proportional to the heading error.
//!
//! Why VFH and not a dynamic window: the input is a dense 360-degree scan and the robot is a
//! disc that turns in place, so a polar histogram captures what a DWA would, costs one pass
//! over the beams instead of simulating a velocity grid against every beam, and the
//! free-path histogram gives an exact stopping distance for the speed law.
//!
//! Determinism and allocation: plain float arithmetic in a fixed order, integer route field;
//! all buffers (grid, field queue, histogram) live in the planner. With `use_cache` the
//! per-beam tables (cos, sin, sector of every beam angle, keyed by `(beams, angle_min,
//! angle_increment)`) are built once per scan layout, and a call allocates nothing once that
//! layout has been seen (the field queue is preallocated for one entry per cell).
//!
//! The memory is forgotten as a whole by [`Planner::reset`] or when the robot or goal leaves
//! the `map_size_m` square.

use crate::geom::{normalize_angle, Point, Pose2};
use crate::navgrid::{FieldUpdate, NavGrid};
use qubot_msg::ScanRanges;
use serde::{Deserialize, Serialize};
use std::f64::consts::{PI, TAU};

/// Where the ranges of a scan come from: a message payload read in place through the wire
/// format's own reader (never copied), or an `f32` slice.
#[derive(Clone, Copy, Debug)]
pub enum RangeSource<'a> {
    Wire(ScanRanges<'a>),
    Floats(&'a [f32]),
}

impl RangeSource<'_> {
    /// Number of beams.
    pub fn len(&self) -> usize {
        match self {
            RangeSource::Wire(r) => r.len(),
            RangeSource::Floats(f) => f.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Range of beam `i`, metres; NaN when `i` is out of bounds (NaN reads as "no return").
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            RangeSource::Wire(r) => r.get(i).unwrap_or(f32::NAN),
            RangeSource::Floats(f) => f.get(i).copied().unwrap_or(f32::NAN),
        }
    }
}

/// One scan as the planner sees it. Beam `i` points at `angle_min + i * angle_increment`
/// radians in the robot frame of the pose passed alongside.
#[derive(Clone, Copy, Debug)]
pub struct ScanInput<'a> {
    pub angle_min: f32,
    pub angle_increment: f32,
    /// Ranges `>= range_max` (and NaN, infinite, `<= 0`) mean "nothing seen on this beam".
    pub range_max: f32,
    pub ranges: RangeSource<'a>,
}

/// Planner tuning. `Default` holds the project defaults (0.2 m robot, 0.8 m/s, 2 rad/s).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PlannerConfig {
    /// Radius of the disc-shaped robot, metres.
    pub robot_radius_m: f64,
    /// Extra clearance kept from obstacles on top of the radius, metres.
    pub safety_margin_m: f64,
    /// Speed limits of the commands, m/s and rad/s.
    pub v_max: f64,
    pub w_max: f64,
    /// Deceleration the base can do, m/s^2; the speed law brakes at half of it.
    pub a_max: f64,
    /// Distance from the goal that counts as arrived, metres.
    pub goal_tolerance_m: f64,
    /// Reuse the per-beam tables between scans with the same layout.
    pub use_cache: bool,
    /// Number of histogram sectors over the full circle (clamped to 36..=1440).
    pub sectors: usize,
    /// Free path lengths are computed up to this distance, metres.
    pub lookahead_m: f64,
    /// A direction is a candidate only if its free path is at least this long (or reaches
    /// the goal), metres.
    pub min_free_m: f64,
    /// How far along each candidate direction the navigation function is sampled, metres.
    pub eval_dist_m: f64,
    /// Cost of turning away from the current heading, metres per radian (smooths the path).
    pub turn_weight: f64,
    /// Angular speed per radian of heading error, 1/s.
    pub turn_gain: f64,
    /// Cell size of the planner's obstacle memory, metres.
    pub map_resolution_m: f64,
    /// Side of the square obstacle memory, metres, centred between the robot and the goal
    /// (re-centred, and cleared, when either leaves it).
    pub map_size_m: f64,
    /// Repair the route field where the map changed (true) or recompute it from scratch on
    /// every detouring step (false: the reference the repair is checked against).
    pub incremental: bool,
    /// Take evidence away from remembered obstacle cells that a scan sees through (false: the
    /// old static-world memory that never forgets, kept to show what forgetting buys).
    pub forget: bool,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            robot_radius_m: 0.2,
            safety_margin_m: 0.15,
            v_max: 0.8,
            w_max: 2.0,
            a_max: 1.0,
            goal_tolerance_m: 0.25,
            use_cache: true,
            sectors: 180,
            lookahead_m: 3.0,
            min_free_m: 0.5,
            eval_dist_m: 1.0,
            turn_weight: 0.15,
            turn_gain: 2.0,
            map_resolution_m: 0.1,
            map_size_m: 32.0,
            incremental: true,
            forget: true,
        }
    }
}

impl PlannerConfig {
    /// Replaces unusable values (non-finite, negative, zero where positive is needed) with the
    /// defaults so the planner never divides by zero or produces NaN.
    fn sanitized(self) -> Self {
        let d = PlannerConfig::default();
        let pos = |v: f64, dv: f64| if v.is_finite() && v > 0.0 { v } else { dv };
        let nonneg = |v: f64, dv: f64| if v.is_finite() && v >= 0.0 { v } else { dv };
        PlannerConfig {
            robot_radius_m: pos(self.robot_radius_m, d.robot_radius_m),
            safety_margin_m: nonneg(self.safety_margin_m, d.safety_margin_m),
            v_max: pos(self.v_max, d.v_max),
            w_max: pos(self.w_max, d.w_max),
            a_max: pos(self.a_max, d.a_max),
            goal_tolerance_m: pos(self.goal_tolerance_m, d.goal_tolerance_m),
            use_cache: self.use_cache,
            sectors: self.sectors.clamp(36, 1440),
            lookahead_m: pos(self.lookahead_m, d.lookahead_m),
            min_free_m: pos(self.min_free_m, d.min_free_m),
            eval_dist_m: pos(self.eval_dist_m, d.eval_dist_m),
            turn_weight: nonneg(self.turn_weight, d.turn_weight),
            turn_gain: pos(self.turn_gain, d.turn_gain),
            map_resolution_m: pos(self.map_resolution_m, d.map_resolution_m).clamp(0.02, 1.0),
            map_size_m: pos(self.map_size_m, d.map_size_m).min(200.0),
            incremental: self.incremental,
            forget: self.forget,
        }
    }
}

/// One velocity command.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct Plan {
    /// Linear velocity, m/s, in `[0, v_max]`.
    pub v: f64,
    /// Angular velocity, rad/s (CCW positive), in `[-w_max, w_max]`.
    pub w: f64,
    /// The pose is within the goal tolerance; `v` and `w` are 0.
    pub goal_reached: bool,
}

/// How often the route field was reused, rebuilt or repaired, and how much work that took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteStats {
    /// Detouring steps that reused the previous field unchanged.
    pub hits: u64,
    /// Steps that computed the field over the whole search window.
    pub misses: u64,
    /// Steps that repaired the field where cells changed.
    pub repairs: u64,
    /// Field cells expanded by the last step (0 on a hit).
    pub last_touched: u64,
    /// Field cells expanded over all steps.
    pub touched: u64,
    /// Obstacle cells forgotten because scans saw through them.
    pub forgotten: u64,
}

/// Per-beam lookup tables for one scan layout.
#[derive(Clone, Debug, Default)]
struct BeamTables {
    key: Option<(usize, u32, u32)>,
    cos: Vec<f64>,
    sin: Vec<f64>,
    sector: Vec<usize>,
}

/// The planner's obstacle grid: `side` x `side` square cells of `resolution_m`, the outer
/// corner of cell (0, 0) at `origin`, row-major (x along a row).
#[derive(Clone, Copy, Debug)]
pub struct MemoryView<'a> {
    pub origin: Point,
    pub resolution_m: f64,
    pub side: usize,
    evidence: &'a [u8],
}

impl MemoryView<'_> {
    /// Writes each cell's occupancy, 0 (free or unseen) to `full` (as much evidence as a cell
    /// holds), into `out` (`side * side` bytes).
    pub fn write_occupancy(&self, full: u8, out: &mut [u8]) {
        let max = u16::from(crate::navgrid::EVIDENCE_MAX);
        for (o, &e) in out.iter_mut().zip(self.evidence) {
            // No overflow in u16 (9 * 255); truncating, so 3, 6, 9 of 9 give 33, 66, 100.
            *o = (u16::from(e.min(crate::navgrid::EVIDENCE_MAX)) * u16::from(full) / max) as u8;
        }
    }
}

/// The planner. It remembers obstacles between calls, so feed it the scans of one robot in
/// order; [`Planner::reset`] forgets them.
#[derive(Clone, Debug)]
pub struct Planner {
    cfg: PlannerConfig,
    sector_width: f64,
    sector_cos: Vec<f64>,
    sector_sin: Vec<f64>,
    /// Free path length per sector for the current scan, metres.
    free: Vec<f64>,
    tables: BeamTables,
    hits: u64,
    misses: u64,
    grid: NavGrid,
    route: RouteStats,
    /// The last call steered by the navigation function (no line of sight to the goal).
    detouring: bool,
    /// The last call found no route to the goal on the remembered map and held position.
    holding: bool,
}

impl Planner {
    pub fn new(cfg: PlannerConfig) -> Planner {
        let cfg = cfg.sanitized();
        let n = cfg.sectors;
        let sector_width = TAU / n as f64;
        let (sector_sin, sector_cos) = (0..n)
            .map(|s| (-PI + (s as f64 + 0.5) * sector_width).sin_cos())
            .unzip();
        // The memory inflates obstacles by the radius plus half the margin: enough to route
        // the robot around them, while a 1 m door stays open on a 0.1 m grid. The full margin
        // is enforced by the free-path histogram.
        let inflate = cfg.robot_radius_m + 0.5 * cfg.safety_margin_m;
        Planner {
            cfg,
            sector_width,
            sector_cos,
            sector_sin,
            free: vec![0.0; n],
            tables: BeamTables::default(),
            hits: 0,
            misses: 0,
            grid: NavGrid::new(cfg.map_resolution_m, cfg.map_size_m, inflate),
            route: RouteStats::default(),
            detouring: false,
            holding: false,
        }
    }

    /// The effective (sanitized) configuration.
    pub fn config(&self) -> &PlannerConfig {
        &self.cfg
    }

    /// Calls that reused the per-beam tables.
    pub fn cache_hits(&self) -> u64 {
        self.hits
    }

    /// Calls that (re)built the per-beam tables: once per new scan layout with the cache on,
    /// every call with it off.
    pub fn cache_misses(&self) -> u64 {
        self.misses
    }

    /// Forgets remembered obstacles (keeps the per-beam cache).
    pub fn reset(&mut self) {
        self.grid = NavGrid::new(
            self.cfg.map_resolution_m,
            self.cfg.map_size_m,
            self.cfg.robot_radius_m + 0.5 * self.cfg.safety_margin_m,
        );
        self.detouring = false;
        self.holding = false;
    }

    /// Switches between repairing the route field and recomputing it from scratch (see
    /// [`PlannerConfig::incremental`]); the memory is kept.
    pub fn set_incremental(&mut self, on: bool) {
        self.cfg.incremental = on;
    }

    /// The memory, read-only: the obstacle grid as it stands, `None` before the first scan.
    pub fn memory(&self) -> Option<MemoryView<'_>> {
        let (origin, resolution_m, side, evidence) = self.grid.evidence()?;
        Some(MemoryView {
            origin,
            resolution_m,
            side,
            evidence,
        })
    }

    /// Route field statistics since the planner was made.
    pub fn route_stats(&self) -> RouteStats {
        self.route
    }

    /// True when the last call found no route to the goal on the remembered map (a closed
    /// door, a blocked corridor) and commanded a stop while it keeps looking.
    pub fn is_holding(&self) -> bool {
        self.holding
    }

    /// True when the last command steered around known obstacles because the straight line
    /// to the goal was blocked.
    pub fn is_detouring(&self) -> bool {
        self.detouring
    }

    /// Plans one command from a scan taken at `pose`.
    pub fn plan(&mut self, scan: &ScanInput, pose: Pose2, goal: Point) -> Plan {
        let d_goal = pose.point().dist(goal);
        if !d_goal.is_finite() || !pose.theta.is_finite() {
            return Plan::default();
        }
        if d_goal <= self.cfg.goal_tolerance_m {
            self.detouring = false;
            self.holding = false;
            return Plan {
                v: 0.0,
                w: 0.0,
                goal_reached: true,
            };
        }
        self.ensure_tables(scan);
        self.fill_free(scan);
        self.remember(scan, pose, goal);

        let psi = normalize_angle(pose.point().bearing_to(goal) - pose.theta);
        match self.choose_direction(psi, d_goal, pose, goal) {
            Some(phi) => self.command(phi, d_goal),
            None => Plan::default(),
        }
    }

    fn ensure_tables(&mut self, scan: &ScanInput) {
        let beams = scan.ranges.len();
        let key = (beams, scan.angle_min.to_bits(), scan.angle_increment.to_bits());
        if self.cfg.use_cache && self.tables.key == Some(key) {
            self.hits += 1;
            return;
        }
        self.misses += 1;
        let t = &mut self.tables;
        t.cos.clear();
        t.sin.clear();
        t.sector.clear();
        let a0 = f64::from(scan.angle_min);
        let da = f64::from(scan.angle_increment);
        for i in 0..beams {
            let a = a0 + i as f64 * da;
            let (s, c) = a.sin_cos();
            t.cos.push(c);
            t.sin.push(s);
            t.sector.push(sector_of(a, self.sector_width, self.cfg.sectors));
        }
        t.key = self.cfg.use_cache.then_some(key);
    }

    /// Valid range of beam `i` (metres) or `None` for "nothing seen".
    fn range_of(scan: &ScanInput, i: usize) -> Option<f64> {
        let r = f64::from(scan.ranges.get(i));
        (r.is_finite() && r > 0.0 && r < f64::from(scan.range_max)).then_some(r)
    }

    /// The polar free-path histogram: for each sector centre, how far a disc of radius
    /// `r_enl` can go straight before touching a scan point.
    fn fill_free(&mut self, scan: &ScanInput) {
        let n = self.cfg.sectors;
        let cap = self.cfg.lookahead_m;
        let r_enl = self.cfg.robot_radius_m + self.cfg.safety_margin_m;
        let r_enl2 = r_enl * r_enl;
        self.free.fill(cap);
        let t = &self.tables;
        for (i, ((&ca, &sa), &s0)) in t.cos.iter().zip(&t.sin).zip(&t.sector).enumerate() {
            let Some(r) = Self::range_of(scan, i) else {
                continue;
            };
            if r >= cap + r_enl {
                continue;
            }
            if r <= r_enl {
                // Already inside the enlarged obstacle: every direction towards it is blocked.
                for ((f, &cs), &ss) in self.free.iter_mut().zip(&self.sector_cos).zip(&self.sector_sin) {
                    if cs * ca + ss * sa > 0.0 {
                        *f = 0.0;
                    }
                }
                continue;
            }
            let cone = (r_enl / r).asin();
            let k = ((cone / self.sector_width).ceil() as usize + 1).min(n / 2);
            for j in 0..=2 * k {
                let s = (s0 + n - k + j) % n;
                let (cs, ss) = (self.sector_cos[s], self.sector_sin[s]);
                let c = cs * ca + ss * sa; // cos(sector - beam)
                if c <= 0.0 {
                    continue;
                }
                let lateral = r * (ss * ca - cs * sa); // r * sin(sector - beam)
                let l2 = lateral * lateral;
                if l2 >= r_enl2 {
                    continue;
                }
                let along = (r * c - (r_enl2 - l2).sqrt()).max(0.0);
                if along < self.free[s] {
                    self.free[s] = along;
                }
            }
        }
    }

    /// Updates the obstacle memory: evidence is taken from remembered cells the scan sees
    /// through, then added at the scan's end points.
    fn remember(&mut self, scan: &ScanInput, pose: Pose2, goal: Point) {
        self.grid.ensure_covers(pose.point(), goal);
        let range_max = f64::from(scan.range_max);
        let beams = self.tables.cos.len();
        if self.cfg.forget && beams > 0 {
            let a0 = f64::from(scan.angle_min);
            let da = f64::from(scan.angle_increment);
            // A full circle wraps around; a partial field of view says nothing outside it.
            let wraps = (da * beams as f64 - TAU).abs() <= da.abs();
            let free_to = |bearing: f64, half: f64| -> f64 {
                let rel = normalize_angle(bearing - pose.theta) - a0;
                let first = ((rel - half) / da).floor() as i64;
                let last = ((rel + half) / da).ceil() as i64;
                let mut free = f64::INFINITY;
                for i in first..=last.max(first) {
                    let i = if wraps {
                        i.rem_euclid(beams as i64) as usize
                    } else if (0..beams as i64).contains(&i) {
                        i as usize
                    } else {
                        return 0.0;
                    };
                    let r = f64::from(scan.ranges.get(i));
                    // No return on a beam means free all the way to the lidar's reach.
                    let seen = if r >= range_max {
                        range_max
                    } else if r.is_finite() && r > 0.0 {
                        r
                    } else {
                        0.0
                    };
                    free = free.min(seen);
                }
                free
            };
            let cleared = self.grid.clear_seen_free(pose.point(), range_max, free_to);
            self.route.forgotten += cleared as u64;
        }
        let (st, ct) = pose.theta.sin_cos();
        let t = &self.tables;
        for (i, (&ca, &sa)) in t.cos.iter().zip(&t.sin).enumerate() {
            if let Some(r) = Self::range_of(scan, i) {
                let dx = ct * ca - st * sa;
                let dy = st * ca + ct * sa;
                self.grid.mark(Point::new(pose.x + r * dx, pose.y + r * dy));
            }
        }
    }

    fn centre(&self, s: usize) -> f64 {
        -PI + (s as f64 + 0.5) * self.sector_width
    }

    /// Free path towards robot-frame angle `a`: the smaller of the two sectors bracketing it.
    fn free_towards(&self, a: f64) -> f64 {
        let n = self.cfg.sectors;
        let s = sector_of(a, self.sector_width, n);
        let other = if normalize_angle(a - self.centre(s)) >= 0.0 {
            (s + 1) % n
        } else {
            (s + n - 1) % n
        };
        self.free[s].min(self.free[other])
    }

    /// The sector with the longest free path (ties: nearest the goal direction).
    fn most_free(&self, psi: f64) -> f64 {
        let mut best = (f64::NEG_INFINITY, f64::INFINITY, psi);
        for (s, &f) in self.free.iter().enumerate() {
            let a = self.centre(s);
            let off = normalize_angle(a - psi).abs();
            if f > best.0 || (f == best.0 && off < best.1) {
                best = (f, off, a);
            }
        }
        best.2
    }

    /// Picks the robot-frame direction to drive in; `None` to hold position (no route).
    fn choose_direction(&mut self, psi: f64, d_goal: f64, pose: Pose2, goal: Point) -> Option<f64> {
        let cfg = self.cfg;
        self.holding = false;
        // Line of sight: the disc can drive straight to the goal.
        if self.free_towards(psi) >= d_goal.min(cfg.lookahead_m) {
            self.detouring = false;
            return Some(psi);
        }
        self.detouring = true;
        let update = self.grid.update_field(goal, pose.point(), !cfg.incremental);
        let r = &mut self.route;
        match update {
            FieldUpdate::Hit => r.hits += 1,
            FieldUpdate::Miss => r.misses += 1,
            FieldUpdate::Repair => r.repairs += 1,
        }
        r.last_touched = self.grid.touched() as u64;
        r.touched += r.last_touched;
        if !self.grid.reachable_from(pose.point()) {
            self.holding = true;
            return None;
        }
        let need = cfg.min_free_m.min(d_goal);
        let (st, ct) = pose.theta.sin_cos();
        let mut best: Option<(f64, f64)> = None;
        for (s, &f) in self.free.iter().enumerate() {
            if f < need {
                continue;
            }
            let len = f.min(cfg.eval_dist_m);
            let (cs, ss) = (self.sector_cos[s], self.sector_sin[s]);
            let p = Point::new(
                pose.x + len * (ct * cs - st * ss),
                pose.y + len * (st * cs + ct * ss),
            );
            let phi = self.centre(s);
            let cost = len + self.grid.value(p) + cfg.turn_weight * phi.abs();
            if cost.is_finite() && best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, phi));
            }
        }
        Some(match best {
            Some((_, phi)) => phi,
            None => self.most_free(psi),
        })
    }

    /// Turns a robot-frame direction into a velocity command.
    fn command(&self, phi: f64, d_goal: f64) -> Plan {
        let cfg = &self.cfg;
        let n = cfg.sectors;
        // Free path over every sector the robot sweeps through while turning towards phi.
        let s_head = sector_of(0.0, self.sector_width, n);
        let s_phi = sector_of(phi, self.sector_width, n);
        let step = if phi >= 0.0 { 1 } else { n - 1 };
        let mut path = self.free_towards(0.0);
        let mut s = s_head;
        while s != s_phi {
            path = path.min(self.free[s]);
            s = (s + step) % n;
        }
        path = path.min(self.free[s_phi]);

        const RESERVE_M: f64 = 0.05;
        let brake = 0.5 * cfg.a_max;
        let v_path = (2.0 * brake * (path - RESERVE_M).max(0.0)).sqrt();
        let v_goal = (2.0 * brake * d_goal).sqrt();
        let align = phi.cos().max(0.0);
        let v = cfg.v_max.min(v_path).min(v_goal) * align * align;
        let w = (cfg.turn_gain * phi).clamp(-cfg.w_max, cfg.w_max);
        Plan {
            v,
            w,
            goal_reached: false,
        }
    }
}

/// Sector index of a robot-frame angle (sector 0 starts at -pi).
fn sector_of(a: f64, width: f64, n: usize) -> usize {
    let x = (normalize_angle(a) + PI) / width;
    if x.is_finite() && x > 0.0 {
        (x as usize).min(n - 1)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lidar::{Lidar, LidarConfig};
    use crate::world::{test_world, Shape, World};
    use std::f64::consts::FRAC_PI_2;

    fn world(obstacles: Vec<Shape>) -> World {
        test_world(
            20.0,
            20.0,
            Pose2::new(2.0, 10.0, 0.0),
            Point::new(18.0, 10.0),
            obstacles,
        )
    }

    fn scan_of(w: &World, pose: Pose2) -> (Lidar, Vec<f32>) {
        let lidar = Lidar::new(LidarConfig::default());
        let mut out = vec![0f32; lidar.beams()];
        lidar.scan_into(w, pose, &mut out);
        (lidar, out)
    }

    fn input<'a>(lidar: &Lidar, ranges: RangeSource<'a>) -> ScanInput<'a> {
        ScanInput {
            angle_min: lidar.angle_min() as f32,
            angle_increment: lidar.angle_increment() as f32,
            range_max: lidar.range_max() as f32,
            ranges,
        }
    }

    #[test]
    fn range_source_reads_wire_payloads_in_place() {
        let floats = [1.5f32, -2.25, 8.0];
        let mut bytes = qubot_msg::ranges_to_bytes(&floats);
        bytes.push(0xAB);
        let b = RangeSource::Wire(ScanRanges::new(&bytes));
        let f = RangeSource::Floats(&floats);
        assert_eq!(b.len(), 3, "trailing partial beam ignored");
        assert_eq!(f.len(), 3);
        for i in 0..3 {
            assert_eq!(b.get(i).to_bits(), f.get(i).to_bits());
        }
        assert!(b.get(3).is_nan() && f.get(3).is_nan());
        assert!(RangeSource::Wire(ScanRanges::new(&[])).is_empty());
    }

    #[test]
    fn heads_straight_to_unobstructed_goal() {
        let w = world(vec![]);
        let pose = Pose2::new(5.0, 10.0, 0.0);
        let (lidar, ranges) = scan_of(&w, pose);
        let mut p = Planner::new(PlannerConfig::default());
        let plan = p.plan(
            &input(&lidar, RangeSource::Floats(&ranges)),
            pose,
            Point::new(12.0, 10.0),
        );
        assert!(!plan.goal_reached);
        assert!(plan.w.abs() < 1e-9, "{plan:?}");
        assert!((plan.v - 0.8).abs() < 1e-9, "full speed: {plan:?}");
        // Goal on the left: turn left, slowly forward.
        let plan = p.plan(
            &input(&lidar, RangeSource::Floats(&ranges)),
            pose,
            Point::new(5.0, 15.0),
        );
        assert!((plan.w - 2.0).abs() < 1e-9 && plan.v < 1e-6, "{plan:?}");
        // Goal slightly right: turn right proportionally while driving.
        let plan = p.plan(
            &input(&lidar, RangeSource::Floats(&ranges)),
            pose,
            Point::new(12.0, 9.5),
        );
        assert!(plan.w < -0.05 && plan.w > -0.3 && plan.v > 0.7, "{plan:?}");
        assert!(!p.is_detouring());
    }

    #[test]
    fn turns_away_from_obstacle_directly_ahead() {
        // A pillar 1.2 m dead ahead, goal behind it.
        let w = world(vec![Shape::Circle {
            cx: 7.0,
            cy: 10.0,
            r: 0.5,
        }]);
        let pose = Pose2::new(5.3, 10.0, 0.0);
        let (lidar, ranges) = scan_of(&w, pose);
        let mut p = Planner::new(PlannerConfig::default());
        let plan = p.plan(
            &input(&lidar, RangeSource::Floats(&ranges)),
            pose,
            Point::new(12.0, 10.0),
        );
        assert!(p.is_detouring());
        assert!(plan.w.abs() > 0.5, "must turn: {plan:?}");
        assert!(plan.w > 0.5, "ties go left: {plan:?}");
        assert!(plan.v < 0.75, "must slow down while turning: {plan:?}");
        // Same with the goal slightly to the right: dodge to the right.
        p.reset();
        let plan = p.plan(
            &input(&lidar, RangeSource::Floats(&ranges)),
            pose,
            Point::new(12.0, 9.6),
        );
        assert!(plan.w < -0.5, "{plan:?}");
        // And a wall right in front of the robot: no forward motion into it.
        let w = world(vec![Shape::Segment {
            x0: 6.0,
            y0: 5.0,
            x1: 6.0,
            y1: 15.0,
        }]);
        let pose = Pose2::new(5.5, 10.0, 0.0);
        let (lidar, ranges) = scan_of(&w, pose);
        let mut p = Planner::new(PlannerConfig::default());
        let plan = p.plan(
            &input(&lidar, RangeSource::Floats(&ranges)),
            pose,
            Point::new(12.0, 10.0),
        );
        assert!(plan.v < 0.05 && plan.w.abs() > 1.0, "{plan:?}");
    }

    #[test]
    fn reports_goal_reached_and_stops() {
        let w = world(vec![]);
        let pose = Pose2::new(5.0, 10.0, 0.0);
        let (lidar, ranges) = scan_of(&w, pose);
        let mut p = Planner::new(PlannerConfig::default());
        let plan = p.plan(
            &input(&lidar, RangeSource::Floats(&ranges)),
            pose,
            Point::new(5.2, 10.1),
        );
        assert_eq!(
            plan,
            Plan {
                v: 0.0,
                w: 0.0,
                goal_reached: true
            }
        );
    }

    #[test]
    fn bytes_and_floats_give_identical_plans() {
        let w = World::builtin();
        let mut pa = Planner::new(PlannerConfig::default());
        let mut pb = Planner::new(PlannerConfig::default());
        for (i, pose) in [
            Pose2::new(1.0, 4.0, 0.0),
            Pose2::new(2.2, 4.1, 0.3),
            Pose2::new(6.3, 4.0, -2.0),
        ]
        .into_iter()
        .enumerate()
        {
            let (lidar, ranges) = scan_of(&w, pose);
            let bytes = qubot_msg::ranges_to_bytes(&ranges);
            let a = pa.plan(&input(&lidar, RangeSource::Floats(&ranges)), pose, w.goal);
            let b = pb.plan(
                &input(&lidar, RangeSource::Wire(ScanRanges::new(&bytes))),
                pose,
                w.goal,
            );
            assert_eq!(a.v.to_bits(), b.v.to_bits(), "pose {i}");
            assert_eq!(a.w.to_bits(), b.w.to_bits(), "pose {i}");
            assert_eq!(a.goal_reached, b.goal_reached);
        }
    }

    #[test]
    fn cache_hits_on_repeated_layout_only_when_enabled() {
        let w = World::builtin();
        let pose = w.start;
        let (lidar, ranges) = scan_of(&w, pose);
        let scan = input(&lidar, RangeSource::Floats(&ranges));
        let mut p = Planner::new(PlannerConfig::default());
        let first = p.plan(&scan, pose, w.goal);
        assert_eq!((p.cache_hits(), p.cache_misses()), (0, 1));
        for k in 1..=5 {
            assert_eq!(p.plan(&scan, pose, w.goal), first, "deterministic");
            assert_eq!((p.cache_hits(), p.cache_misses()), (k, 1));
        }
        // A different layout is a miss, then hits again.
        let lidar2 = Lidar::new(LidarConfig {
            beams: 1000,
            ..Default::default()
        });
        let mut r2 = vec![0f32; 1000];
        lidar2.scan_into(&w, pose, &mut r2);
        let scan2 = input(&lidar2, RangeSource::Floats(&r2));
        p.plan(&scan2, pose, w.goal);
        p.plan(&scan2, pose, w.goal);
        assert_eq!((p.cache_hits(), p.cache_misses()), (6, 2));

        let mut off = Planner::new(PlannerConfig {
            use_cache: false,
            ..Default::default()
        });
        for _ in 0..4 {
            assert_eq!(
                off.plan(&scan, pose, w.goal),
                first,
                "same answer without the cache"
            );
        }
        assert_eq!(off.cache_hits(), 0);
        assert_eq!(off.cache_misses(), 4);
    }

    #[test]
    fn free_path_is_exact_for_a_wall() {
        // Wall 2 m ahead across the whole view: free path straight ahead = 2 - r_enl.
        let w = world(vec![Shape::Segment {
            x0: 7.0,
            y0: 0.0,
            x1: 7.0,
            y1: 20.0,
        }]);
        let pose = Pose2::new(5.0, 10.0, 0.0);
        let (lidar, ranges) = scan_of(&w, pose);
        let mut p = Planner::new(PlannerConfig::default());
        p.plan(
            &input(&lidar, RangeSource::Floats(&ranges)),
            pose,
            Point::new(6.5, 10.0),
        );
        let ahead = p.free_towards(0.0);
        assert!((ahead - 1.65).abs() < 0.01, "{ahead}");
        // Sideways along the wall there is nothing within the lookahead.
        assert_eq!(p.free_towards(FRAC_PI_2), 3.0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// On random maps, seen from a random walk, the planner that repairs its route field
        /// commands exactly what the one that recomputes it every step commands.
        #[test]
        fn incremental_plans_equal_plans_from_scratch(
            pillars in proptest::collection::vec((2.0f64..18.0, 2.0f64..18.0, 0.2f64..1.2), 1..12),
            walk in proptest::collection::vec((-0.4f64..0.4, -0.4f64..0.4, -3.0f64..3.0), 5..40),
        ) {
            let w = world(pillars.iter().map(|&(cx, cy, r)| Shape::Circle { cx, cy, r }).collect());
            let goal = Point::new(18.5, 10.0);
            let mut inc = Planner::new(PlannerConfig::default());
            let mut scratch = Planner::new(PlannerConfig { incremental: false, ..PlannerConfig::default() });
            let mut pose = Pose2::new(1.5, 10.0, 0.0);
            for (k, &(dx, dy, theta)) in walk.iter().enumerate() {
                let next = Pose2::new((pose.x + dx).clamp(0.5, 19.5), (pose.y + dy).clamp(0.5, 19.5), theta);
                if w.clearance(next.point()) > 0.0 {
                    pose = next;
                }
                let (lidar, ranges) = scan_of(&w, pose);
                let scan = input(&lidar, RangeSource::Floats(&ranges));
                let (a, b) = (inc.plan(&scan, pose, goal), scratch.plan(&scan, pose, goal));
                proptest::prop_assert_eq!(a.v.to_bits(), b.v.to_bits(), "step {}", k);
                proptest::prop_assert_eq!(a.w.to_bits(), b.w.to_bits(), "step {}", k);
            }
        }
    }

    #[test]
    fn holds_when_the_memory_says_the_goal_is_unreachable() {
        // The robot walled in on all four sides (every wall in view), the goal outside.
        let seg = |x0, y0, x1, y1| Shape::Segment { x0, y0, x1, y1 };
        let w = world(vec![
            seg(8.5, 8.5, 11.5, 8.5),
            seg(11.5, 8.5, 11.5, 11.5),
            seg(11.5, 11.5, 8.5, 11.5),
            seg(8.5, 11.5, 8.5, 8.5),
        ]);
        let pose = Pose2::new(10.0, 10.0, 0.0);
        let (lidar, ranges) = scan_of(&w, pose);
        let mut p = Planner::new(PlannerConfig::default());
        let plan = p.plan(
            &input(&lidar, RangeSource::Floats(&ranges)),
            pose,
            Point::new(15.0, 10.0),
        );
        assert!(p.is_holding(), "{plan:?}");
        assert_eq!((plan.v, plan.w, plan.goal_reached), (0.0, 0.0, false));
    }

    #[test]
    fn bad_config_is_sanitized() {
        let p = Planner::new(PlannerConfig {
            v_max: f64::NAN,
            sectors: 1,
            safety_margin_m: -1.0,
            ..Default::default()
        });
        assert_eq!(p.config().v_max, 0.8);
        assert_eq!(p.config().sectors, 36);
        assert_eq!(p.config().safety_margin_m, 0.15);
    }
}
