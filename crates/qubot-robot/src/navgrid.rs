//! The planner's memory and its route field.
//!
//! **Memory.** An occupancy grid with evidence per cell: a scan end point in a cell adds
//! `HIT`, a scan that sees through the whole cell takes one away, and a cell is an obstacle
//! while its evidence is above zero. So a door that opens, a walker who moved on or a cart
//! that left is cleared after a few scans that see through it, while a wall seen on most
//! scans stays. Obstacles are inflated by a radius (`blocked` counts the occupied cells
//! within it). The grid is a fixed square, so memory is bounded whatever the world's size.
//!
//! Seeing through a cell is judged per occupied cell, not per beam (the inverse sensor model
//! evaluated over the cells in view, as in Thrun, Burgard & Fox, *Probabilistic Robotics*,
//! ch. 9): every beam across the cell's angular footprint must reach past its far edge. That
//! costs a few beams per remembered obstacle cell in range instead of a walk along every beam.
//!
//! **Route field.** NF1: the grid distance from every cell of the search window to the goal
//! around inflated obstacles, in integer units (`STEP` per straight move, `DIAG` per diagonal)
//! so that any algorithm that finds shortest paths finds the same field, bit for bit. It is
//! kept up to date incrementally with LPA* under a zero heuristic (Koenig & Likhachev 2004),
//! i.e. an incremental Dijkstra: only cells whose passability changed are re-examined, and
//! their consequences propagated until every cell is consistent again. With nothing changed
//! the previous field is reused as is. The window (obstacles seen, robot and goal, grown by
//! a margin) only grows until the grid is re-centred; cells entering it are just more cells
//! whose passability changed.

use crate::geom::Point;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Evidence added by a scan end point in a cell, the most a cell holds, and the evidence one
/// see-through scan removes: a wall seen three times needs nine scans through it to clear.
const HIT: u8 = 3;
pub(crate) const EVIDENCE_MAX: u8 = 9;

/// Field units per straight and per diagonal step (1414/1000 approximates sqrt 2 to 2e-5).
const STEP: u32 = 1000;
const DIAG: u32 = 1414;
const INF: u32 = u32::MAX;

/// How the last [`NavGrid::update_field`] brought the route field up to date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldUpdate {
    /// Nothing that matters changed: the previous field was reused.
    Hit,
    /// Recomputed over the whole window (first use, new goal, re-centred grid, or asked to).
    Miss,
    /// Repaired where cells changed.
    Repair,
}

/// Inclusive cell box `(x0, y0, x1, y1)`.
type CellBox = (usize, usize, usize, usize);

fn union(a: Option<CellBox>, b: CellBox) -> CellBox {
    match a {
        None => b,
        Some(a) => (a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3)),
    }
}

#[derive(Clone, Debug)]
pub(crate) struct NavGrid {
    res: f64,
    side: usize,
    /// World coordinates of the outer corner of cell (0, 0); `None` until first placed.
    origin: Option<Point>,
    evidence: Vec<u8>,
    /// Every cell with evidence > 0 (the only cells a scan can clear).
    occupied: Vec<u32>,
    /// Number of occupied cells within the inflation radius.
    blocked: Vec<u16>,
    /// Cell offsets within the inflation radius.
    stamp: Vec<(i32, i32)>,
    /// Cells within this many cells of the goal are always passable (the goal may sit close
    /// to a wall; it is reachable because the world says so).
    keep_free_cells: f64,
    /// Box of every cell occupied since the last re-centring.
    bbox: Option<CellBox>,
    /// The window grows this many cells beyond obstacles, robot and goal: outside it there is
    /// nothing to go around, so no shortest path needs it.
    search_margin: usize,
    // The route field (LPA*: `g` settled value, `rhs` one-step lookahead).
    g: Vec<u32>,
    rhs: Vec<u32>,
    heap: BinaryHeap<Reverse<(u32, u32)>>,
    goal: Option<(usize, usize)>,
    window: Option<CellBox>,
    /// Cells whose passability may have changed since the field was last brought up to date.
    changed: Vec<u32>,
    dirty: Vec<bool>,
    /// The field must be rebuilt (new grid placement).
    stale: bool,
    /// Cells expanded by the last field update.
    touched: usize,
}

impl NavGrid {
    pub(crate) fn new(resolution_m: f64, size_m: f64, inflate_m: f64) -> NavGrid {
        let side = ((size_m / resolution_m).ceil() as usize).clamp(16, 4096);
        let n = side * side;
        let r_cells = inflate_m / resolution_m;
        let reach = r_cells.ceil() as i32;
        let mut stamp = Vec::new();
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                if f64::from(dx * dx + dy * dy) <= r_cells * r_cells {
                    stamp.push((dx, dy));
                }
            }
        }
        NavGrid {
            res: resolution_m,
            side,
            origin: None,
            evidence: vec![0; n],
            occupied: Vec::with_capacity(1024),
            blocked: vec![0; n],
            stamp,
            keep_free_cells: r_cells + 1.5,
            bbox: None,
            search_margin: reach.max(0) as usize + (1.0 / resolution_m).ceil() as usize,
            g: vec![INF; n],
            rhs: vec![INF; n],
            heap: BinaryHeap::with_capacity(n),
            goal: None,
            window: None,
            changed: Vec::with_capacity(1024),
            dirty: vec![false; n],
            stale: true,
            touched: 0,
        }
    }

    /// Makes sure both points lie on the grid (1 m inside its edge); re-centres on their
    /// midpoint and forgets everything otherwise.
    pub(crate) fn ensure_covers(&mut self, a: Point, b: Point) {
        let margin = 1.0;
        let extent = self.side as f64 * self.res;
        let inside = |o: Point, p: Point| {
            p.x >= o.x + margin
                && p.y >= o.y + margin
                && p.x <= o.x + extent - margin
                && p.y <= o.y + extent - margin
        };
        if let Some(o) = self.origin {
            if inside(o, a) && inside(o, b) {
                return;
            }
        }
        let mid = Point::new(0.5 * (a.x + b.x), 0.5 * (a.y + b.y));
        // Snap the origin to whole cells so re-centring is reproducible.
        let snap = |v: f64| ((v - 0.5 * extent) / self.res).floor() * self.res;
        self.origin = Some(Point::new(snap(mid.x), snap(mid.y)));
        self.evidence.fill(0);
        self.occupied.clear();
        self.blocked.fill(0);
        self.bbox = None;
        self.g.fill(INF);
        self.rhs.fill(INF);
        self.dirty.fill(false);
        self.changed.clear();
        self.window = None;
        self.goal = None;
        self.stale = true;
    }

    fn cell_xy(&self, p: Point) -> Option<(usize, usize)> {
        let o = self.origin?;
        let cx = ((p.x - o.x) / self.res).floor();
        let cy = ((p.y - o.y) / self.res).floor();
        let max = self.side as f64;
        if cx >= 0.0 && cy >= 0.0 && cx < max && cy < max {
            Some((cx as usize, cy as usize))
        } else {
            None
        }
    }

    /// Adds a scan end point's evidence; returns true when the cell became an obstacle.
    pub(crate) fn mark(&mut self, p: Point) -> bool {
        let Some((cx, cy)) = self.cell_xy(p) else {
            return false;
        };
        let idx = cy * self.side + cx;
        let was = self.evidence[idx];
        self.evidence[idx] = was.saturating_add(HIT).min(EVIDENCE_MAX);
        if was > 0 {
            return false;
        }
        self.occupied.push(idx as u32);
        self.bbox = Some(union(self.bbox, (cx, cy, cx, cy)));
        self.inflate(cx, cy, true);
        true
    }

    /// Takes one unit of evidence from every remembered obstacle cell that this scan saw
    /// through. `free_to(bearing, half_width)` is the shortest free range over the beams
    /// within `half_width` radians of the world-frame `bearing` (0 where the scan says
    /// nothing). Returns the number of cells that stopped being obstacles.
    pub(crate) fn clear_seen_free(
        &mut self,
        robot: Point,
        range_max: f64,
        free_to: impl Fn(f64, f64) -> f64,
    ) -> usize {
        let Some(o) = self.origin else { return 0 };
        let (res, side) = (self.res, self.side);
        let half_diag = res * std::f64::consts::FRAC_1_SQRT_2;
        let mut cleared = 0;
        let mut i = 0;
        while i < self.occupied.len() {
            let idx = self.occupied[i] as usize;
            let (cx, cy) = (idx % side, idx / side);
            let centre = Point::new(o.x + (cx as f64 + 0.5) * res, o.y + (cy as f64 + 0.5) * res);
            let d = robot.dist(centre);
            // Cells under the robot or beyond the lidar's reach cannot be judged.
            if d > 2.0 * half_diag && d + res < range_max {
                let half = (half_diag / d).asin();
                if free_to(robot.bearing_to(centre), half) > d + res {
                    self.evidence[idx] -= 1;
                    if self.evidence[idx] == 0 {
                        self.occupied.swap_remove(i);
                        self.inflate(cx, cy, false);
                        cleared += 1;
                        continue;
                    }
                }
            }
            i += 1;
        }
        cleared
    }

    /// Adds (or removes) the inflation disc of one obstacle cell, noting every cell whose
    /// passability flips.
    fn inflate(&mut self, cx: usize, cy: usize, add: bool) {
        let side = self.side as i32;
        for k in 0..self.stamp.len() {
            let (dx, dy) = self.stamp[k];
            let (x, y) = (cx as i32 + dx, cy as i32 + dy);
            if x < 0 || y < 0 || x >= side || y >= side {
                continue;
            }
            let j = y as usize * self.side + x as usize;
            let b = &mut self.blocked[j];
            let flips = if add {
                *b += 1;
                *b == 1
            } else {
                *b -= 1;
                *b == 0
            };
            if flips && !self.dirty[j] {
                self.dirty[j] = true;
                self.changed.push(j as u32);
            }
        }
    }

    /// Brings the route field up to date for `goal`, its window covering `robot`. With
    /// `from_scratch` the field is recomputed over the whole window even if it could be
    /// repaired (the reference the repair is tested and measured against).
    pub(crate) fn update_field(&mut self, goal: Point, robot: Point, from_scratch: bool) -> FieldUpdate {
        self.touched = 0;
        let (Some(gc), Some(rc)) = (self.cell_xy(goal), self.cell_xy(robot)) else {
            return FieldUpdate::Miss;
        };
        let m = self.search_margin;
        let max = self.side - 1;
        let core = union(self.bbox, (gc.0, gc.1, gc.0, gc.1));
        let core = union(Some(core), (rc.0, rc.1, rc.0, rc.1));
        let grown = (
            core.0.saturating_sub(m),
            core.1.saturating_sub(m),
            (core.2 + m).min(max),
            (core.3 + m).min(max),
        );
        let want = union(self.window, grown);
        if from_scratch || self.stale || self.goal != Some(gc) {
            self.rebuild(gc, want);
            return FieldUpdate::Miss;
        }
        if let Some(old) = self.window.filter(|&w| w != want) {
            // Cells entering the window were impassable (outside) and may not be now.
            self.window = Some(want);
            for y in want.1..=want.3 {
                for x in want.0..=want.2 {
                    if x < old.0 || x > old.2 || y < old.1 || y > old.3 {
                        self.update_vertex(y * self.side + x);
                    }
                }
            }
        }
        for k in 0..self.changed.len() {
            let j = self.changed[k] as usize;
            self.dirty[j] = false;
            self.update_vertex(j);
        }
        self.changed.clear();
        if self.heap.is_empty() {
            return FieldUpdate::Hit;
        }
        self.settle();
        FieldUpdate::Repair
    }

    /// Recomputes the field over `window` from nothing (plain Dijkstra from the goal).
    /// `window` contains the previous one (windows only grow until the grid is re-centred,
    /// which resets the whole field), so clearing it clears every value the field holds.
    fn rebuild(&mut self, goal: (usize, usize), window: CellBox) {
        for y in window.1..=window.3 {
            let row = y * self.side + window.0..=y * self.side + window.2;
            self.g[row.clone()].fill(INF);
            self.rhs[row].fill(INF);
        }
        for k in 0..self.changed.len() {
            self.dirty[self.changed[k] as usize] = false;
        }
        self.changed.clear();
        self.heap.clear();
        self.window = Some(window);
        self.goal = Some(goal);
        self.stale = false;
        let gi = goal.1 * self.side + goal.0;
        self.rhs[gi] = 0;
        self.heap.push(Reverse((0, gi as u32)));
        self.settle();
    }

    fn in_window(&self, x: usize, y: usize) -> bool {
        self.window
            .is_some_and(|w| x >= w.0 && x <= w.2 && y >= w.1 && y <= w.3)
    }

    fn passable(&self, idx: usize) -> bool {
        let (x, y) = (idx % self.side, idx / self.side);
        if !self.in_window(x, y) {
            return false;
        }
        if self.blocked[idx] == 0 {
            return true;
        }
        let Some((gx, gy)) = self.goal else { return false };
        let (dx, dy) = (x.abs_diff(gx) as f64, y.abs_diff(gy) as f64);
        dx * dx + dy * dy <= self.keep_free_cells * self.keep_free_cells
    }

    fn goal_idx(&self) -> Option<usize> {
        self.goal.map(|(x, y)| y * self.side + x)
    }

    fn key(&self, idx: usize) -> u32 {
        self.g[idx].min(self.rhs[idx])
    }

    /// Recomputes `rhs` of one cell from its neighbours and queues it if inconsistent.
    fn update_vertex(&mut self, idx: usize) {
        if Some(idx) == self.goal_idx() {
            return;
        }
        let mut rhs = INF;
        if self.passable(idx) {
            for k in 0..NEIGHBOURS.len() {
                if let Some((n, cost)) = self.neighbour(idx, k) {
                    if self.g[n] != INF {
                        rhs = rhs.min(self.g[n] + cost);
                    }
                }
            }
        }
        self.rhs[idx] = rhs;
        if self.g[idx] != rhs {
            self.heap.push(Reverse((self.key(idx), idx as u32)));
        }
    }

    /// Pops inconsistent cells in key order until none is left (full consistency, so the
    /// whole window holds exact distances, not only the cells near the robot).
    fn settle(&mut self) {
        let goal = self.goal_idx();
        while let Some(Reverse((k, idx))) = self.heap.pop() {
            let idx = idx as usize;
            let (g, rhs) = (self.g[idx], self.rhs[idx]);
            if g == rhs || k != g.min(rhs) {
                continue; // consistent by now, or a superseded queue entry
            }
            self.touched += 1;
            if g > rhs {
                // Overconsistent: the cell got closer; settle it and offer it to neighbours.
                self.g[idx] = rhs;
                for k in 0..NEIGHBOURS.len() {
                    let Some((n, cost)) = self.neighbour(idx, k) else {
                        continue;
                    };
                    if Some(n) == goal || !self.passable(n) {
                        continue;
                    }
                    let v = rhs + cost;
                    if v < self.rhs[n] {
                        self.rhs[n] = v;
                        if self.g[n] != v {
                            self.heap.push(Reverse((self.key(n), n as u32)));
                        }
                    }
                }
            } else {
                // Underconsistent: what it relied on got worse; forget it and re-derive it
                // and everything that may have relied on it.
                self.g[idx] = INF;
                self.update_vertex(idx);
                for k in 0..NEIGHBOURS.len() {
                    if let Some((n, _)) = self.neighbour(idx, k) {
                        self.update_vertex(n);
                    }
                }
            }
        }
    }

    fn neighbour(&self, idx: usize, k: usize) -> Option<(usize, u32)> {
        let (dx, dy, cost) = NEIGHBOURS[k];
        let (x, y) = ((idx % self.side) as i64 + dx, (idx / self.side) as i64 + dy);
        let inside = x >= 0 && y >= 0 && self.in_window(x as usize, y as usize);
        inside.then(|| (y as usize * self.side + x as usize, cost))
    }

    /// Navigation value (metres to the goal around known obstacles) at `p`; infinity where
    /// the goal cannot be reached or `p` is off the field.
    pub(crate) fn value(&self, p: Point) -> f64 {
        match self.cell_xy(p) {
            Some((x, y)) if !self.stale && self.in_window(x, y) => match self.g[y * self.side + x] {
                INF => f64::INFINITY,
                g => f64::from(g) / f64::from(STEP) * self.res,
            },
            _ => f64::INFINITY,
        }
    }

    /// True when some cell near `robot` (within the inflation radius and a cell and a half)
    /// has a route to the goal: the robot may stand inside an inflated obstacle itself.
    pub(crate) fn reachable_from(&self, robot: Point) -> bool {
        let Some((rx, ry)) = self.cell_xy(robot) else {
            return false;
        };
        if self.stale {
            return false;
        }
        let r = self.keep_free_cells.ceil() as i64;
        let r2 = self.keep_free_cells * self.keep_free_cells;
        for dy in -r..=r {
            for dx in -r..=r {
                let (x, y) = (rx as i64 + dx, ry as i64 + dy);
                if f64::from((dx * dx + dy * dy) as i32) > r2
                    || x < 0
                    || y < 0
                    || !self.in_window(x as usize, y as usize)
                {
                    continue;
                }
                if self.g[y as usize * self.side + x as usize] != INF {
                    return true;
                }
            }
        }
        false
    }

    /// The memory read-only: the grid's placement and its evidence per cell (row-major from
    /// the origin, 0 to `EVIDENCE_MAX`); `None` before the first scan placed it.
    pub(crate) fn evidence(&self) -> Option<(Point, f64, usize, &[u8])> {
        Some((self.origin?, self.res, self.side, &self.evidence))
    }

    /// Cells expanded by the last field update.
    pub(crate) fn touched(&self) -> usize {
        self.touched
    }

    /// Number of remembered obstacle cells.
    #[cfg(test)]
    pub(crate) fn obstacle_cells(&self) -> usize {
        self.occupied.len()
    }

    /// The field over the window, for comparisons in tests.
    #[cfg(test)]
    pub(crate) fn field(&self) -> Vec<u32> {
        let Some(w) = self.window else { return Vec::new() };
        let mut out = Vec::new();
        for y in w.1..=w.3 {
            out.extend_from_slice(&self.g[y * self.side + w.0..=y * self.side + w.2]);
        }
        out
    }
}

const NEIGHBOURS: [(i64, i64, u32); 8] = [
    (1, 0, STEP),
    (-1, 0, STEP),
    (0, 1, STEP),
    (0, -1, STEP),
    (1, 1, DIAG),
    (1, -1, DIAG),
    (-1, 1, DIAG),
    (-1, -1, DIAG),
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::f64::consts::SQRT_2;

    /// Octile distance is exact on an empty 8-connected grid.
    fn octile(dx: f64, dy: f64) -> f64 {
        let (a, b) = (dx.abs().max(dy.abs()), dx.abs().min(dy.abs()));
        a + (SQRT_2 - 1.0) * b
    }

    /// A straight wall of end points from `a` to `b`, every 5 cm.
    fn wall(g: &mut NavGrid, a: Point, b: Point) {
        let n = (a.dist(b) / 0.05).ceil() as usize;
        for k in 0..=n {
            let s = k as f64 / n as f64;
            g.mark(Point::new(a.x + s * (b.x - a.x), a.y + s * (b.y - a.y)));
        }
    }

    #[test]
    fn empty_grid_value_is_octile_distance() {
        let mut g = NavGrid::new(0.1, 20.0, 0.3);
        let goal = Point::new(5.05, 5.05);
        let robot = Point::new(1.05, 2.05);
        g.ensure_covers(goal, robot);
        assert_eq!(g.update_field(goal, robot, false), FieldUpdate::Miss);
        let v = g.value(robot);
        assert!((v - octile(4.0, 3.0)).abs() < 1e-3, "{v}");
        assert!(g.reachable_from(robot));
        assert_eq!(
            g.update_field(goal, robot, false),
            FieldUpdate::Hit,
            "nothing changed"
        );
        assert_eq!(g.touched(), 0);
    }

    #[test]
    fn wall_forces_a_detour_and_an_opened_door_is_used_again() {
        let mut g = NavGrid::new(0.1, 20.0, 0.3);
        let goal = Point::new(8.05, 5.05);
        let robot = Point::new(2.05, 5.05);
        g.ensure_covers(goal, robot);
        // Wall at x = 5 from y = 0 to 10, with a 1 m door at y = 7.5 .. 8.5.
        wall(&mut g, Point::new(5.0, 0.0), Point::new(5.0, 7.45));
        wall(&mut g, Point::new(5.0, 8.55), Point::new(5.0, 10.0));
        g.update_field(goal, robot, false);
        let via_door = g.value(robot);
        // Via the door: about 2 * hypot(3, 3) = 8.5 m, certainly more than the 6 m straight.
        assert!(via_door > 8.0 && via_door < 9.2, "{via_door}");
        // Close the door: the only way left is around the wall's far ends.
        let mut door = NavGrid::clone(&g);
        wall(&mut door, Point::new(5.0, 7.45), Point::new(5.0, 8.55));
        assert_eq!(door.update_field(goal, robot, false), FieldUpdate::Repair);
        let around = door.value(robot);
        assert!(around > 9.2, "{around}");
        // The robot, standing 1 m before the door, sees through the door's cells (rows
        // 7.5 .. 8.5 m, bearings within 0.47 rad) and nothing else: they lose their evidence
        // one scan at a time, and the route through the door comes back.
        let eye = Point::new(4.0, 8.0);
        let through_door = |b: f64, h: f64| if b.abs() + h < 0.47 { 100.0 } else { 0.0 };
        let mut scans = 0;
        while door.value(robot) > via_door + 1e-9 {
            door.clear_seen_free(eye, 8.0, through_door);
            door.update_field(goal, robot, false);
            scans += 1;
            assert!(scans <= usize::from(EVIDENCE_MAX), "door never cleared");
        }
        assert_eq!(door.value(robot), via_door);
        assert!(
            scans >= 3,
            "a door seen closed three times takes more than one scan"
        );
        // A scan that sees nothing through a cell clears nothing.
        let mut blind = g.clone();
        let before = blind.obstacle_cells();
        assert_eq!(blind.clear_seen_free(eye, 8.0, |_, _| 0.0), 0);
        assert_eq!(blind.obstacle_cells(), before);
    }

    #[test]
    fn grazing_and_occluding_beams_do_not_clear_a_wall() {
        let mut g = NavGrid::new(0.1, 20.0, 0.3);
        let goal = Point::new(8.0, 5.0);
        let eye = Point::new(2.0, 5.0);
        g.ensure_covers(goal, eye);
        wall(&mut g, Point::new(5.0, 3.0), Point::new(5.0, 7.0));
        let cells = g.obstacle_cells();
        // Every beam stops at the wall plane (x = 5): distance 3 / cos(angle).
        let hit_wall = |bearing: f64, half: f64| {
            let worst = bearing.abs().min(1.5) - half;
            3.0 / worst.max(0.0).cos()
        };
        for _ in 0..20 {
            assert_eq!(g.clear_seen_free(eye, 8.0, hit_wall), 0);
        }
        assert_eq!(g.obstacle_cells(), cells);
    }

    /// A random map edit: mark or clear a cell (clearing through the see-through path).
    #[derive(Clone, Debug)]
    enum Edit {
        Mark(u8, u8),
        Clear(u8, u8),
        Move(u8, u8),
    }

    fn edits() -> impl Strategy<Value = Vec<Edit>> {
        prop::collection::vec(
            prop_oneof![
                6 => (0u8..60, 0u8..60).prop_map(|(x, y)| Edit::Mark(x, y)),
                3 => (0u8..60, 0u8..60).prop_map(|(x, y)| Edit::Clear(x, y)),
                1 => (5u8..55, 5u8..55).prop_map(|(x, y)| Edit::Move(x, y)),
            ],
            1..120,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// After every edit of a random map the repaired field equals the field computed from
        /// nothing, cell for cell.
        #[test]
        fn repaired_field_equals_field_from_scratch(edits in edits(), batch in 1usize..6) {
            let cell = |x: u8, y: u8| Point::new(f64::from(x) * 0.1 + 0.05, f64::from(y) * 0.1 + 0.05);
            let goal = cell(50, 30);
            let mut robot = cell(10, 30);
            let mut inc = NavGrid::new(0.1, 6.0, 0.25);
            inc.ensure_covers(Point::new(0.0, 0.0), Point::new(6.0, 6.0));
            let mut reference = inc.clone();
            for (k, e) in edits.iter().enumerate() {
                for g in [&mut inc, &mut reference] {
                    match *e {
                        Edit::Mark(x, y) => { g.mark(cell(x, y)); }
                        Edit::Clear(x, y) => {
                            // A scan from just beside the cell that sees through it.
                            let c = cell(x, y);
                            let target = c;
                            let idx = (y as usize) * g.side + x as usize;
                            if g.evidence[idx] > 0 {
                                let eye = Point::new(c.x - 0.55, c.y);
                                g.clear_seen_free(eye, 8.0, |b, h| {
                                    let to = eye.bearing_to(target);
                                    if (b - to).abs() <= 1e-9 && h > 0.0 { 10.0 } else { 0.0 }
                                });
                            }
                        }
                        Edit::Move(x, y) => robot = cell(x, y),
                    }
                }
                if k % batch == batch - 1 || k == edits.len() - 1 {
                    inc.update_field(goal, robot, false);
                    reference.update_field(goal, robot, true);
                    prop_assert_eq!(inc.field(), reference.field(), "after edit {}", k);
                    prop_assert_eq!(inc.reachable_from(robot), reference.reachable_from(robot));
                }
            }
        }
    }
}
