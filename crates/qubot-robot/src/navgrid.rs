//! The planner's memory: an occupancy grid filled from scan end points, obstacles inflated
//! by a radius, and an NF1 navigation function (grid distance to the goal around known
//! obstacles) computed with A* from the goal towards the robot.
//!
//! Unknown cells count as free (optimistic), so the function first points straight at the
//! goal and bends around walls as they are seen. Obstacles are never forgotten: the memory is
//! meant for static worlds and is cleared when the goal moves off the grid.

use crate::geom::Point;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const SQRT_2_F32: f32 = std::f32::consts::SQRT_2;

#[derive(Clone, Debug)]
pub(crate) struct NavGrid {
    res: f64,
    side: usize,
    /// World coordinates of the outer corner of cell (0, 0); `None` until first placed.
    origin: Option<Point>,
    occupied: Vec<bool>,
    /// Number of occupied cells within the inflation radius.
    blocked: Vec<u16>,
    /// Cell offsets within the inflation radius.
    stamp: Vec<(i32, i32)>,
    /// Cells within this many cells of the goal or the robot are always passable.
    keep_free_cells: f64,
    g: Vec<f32>,
    closed: Vec<bool>,
    heap: BinaryHeap<Reverse<(u32, u32)>>,
    /// Bounding box `(x0, y0, x1, y1)` of the occupied cells, inclusive.
    bbox: Option<(usize, usize, usize, usize)>,
    /// The search never leaves the box around obstacles, robot and goal grown by this many
    /// cells: outside it there is nothing to go around, so no shortest path needs it, and an
    /// unreachable goal costs a bounded search instead of a flood of the whole grid.
    search_margin: usize,
    /// Cells settled by the last solve (for tests and diagnostics).
    settled: usize,
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
            occupied: vec![false; n],
            blocked: vec![0; n],
            stamp,
            keep_free_cells: r_cells + 1.5,
            g: vec![f32::INFINITY; n],
            closed: vec![false; n],
            heap: BinaryHeap::with_capacity(n / 2),
            bbox: None,
            search_margin: reach.max(0) as usize + (1.0 / resolution_m).ceil() as usize,
            settled: 0,
        }
    }

    /// Makes sure both points lie on the grid (1 m inside its edge); re-centres on their
    /// midpoint and forgets all obstacles otherwise.
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
        self.occupied.fill(false);
        self.blocked.fill(0);
        self.bbox = None;
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

    /// Records an obstacle point; returns true when the cell was not known yet.
    pub(crate) fn mark(&mut self, p: Point) -> bool {
        let Some((cx, cy)) = self.cell_xy(p) else {
            return false;
        };
        let idx = cy * self.side + cx;
        if self.occupied[idx] {
            return false;
        }
        self.occupied[idx] = true;
        self.bbox = Some(match self.bbox {
            None => (cx, cy, cx, cy),
            Some((x0, y0, x1, y1)) => (x0.min(cx), y0.min(cy), x1.max(cx), y1.max(cy)),
        });
        let side = self.side as i32;
        for &(dx, dy) in &self.stamp {
            let (x, y) = (cx as i32 + dx, cy as i32 + dy);
            if x >= 0 && y >= 0 && x < side && y < side {
                let j = y as usize * self.side + x as usize;
                self.blocked[j] = self.blocked[j].saturating_add(1);
            }
        }
        true
    }

    /// A* from `goal` towards `robot`, continuing until every cell whose navigation value can
    /// be within `extra_m` of the robot's own is settled. Returns false when the robot cannot
    /// be reached on the known map.
    pub(crate) fn solve(&mut self, goal: Point, robot: Point, extra_m: f64) -> bool {
        self.g.fill(f32::INFINITY);
        self.closed.fill(false);
        self.heap.clear();
        self.settled = 0;
        let (Some((gx, gy)), Some((rx, ry))) = (self.cell_xy(goal), self.cell_xy(robot)) else {
            return false;
        };
        let side = self.side;
        // Search window: obstacles, goal and robot, grown by the margin, clamped to the grid.
        let (mut wx0, mut wy0, mut wx1, mut wy1) = self.bbox.unwrap_or((gx, gy, gx, gy));
        for (x, y) in [(gx, gy), (rx, ry)] {
            (wx0, wy0, wx1, wy1) = (wx0.min(x), wy0.min(y), wx1.max(x), wy1.max(y));
        }
        let m = self.search_margin;
        let (wx0, wy0) = (wx0.saturating_sub(m), wy0.saturating_sub(m));
        let (wx1, wy1) = ((wx1 + m).min(side - 1), (wy1 + m).min(side - 1));
        let keep2 = self.keep_free_cells * self.keep_free_cells;
        let h = |x: usize, y: usize| -> f32 {
            let dx = x.abs_diff(rx) as f32;
            let dy = y.abs_diff(ry) as f32;
            dx.max(dy) + (SQRT_2_F32 - 1.0) * dx.min(dy)
        };
        let passable = |blocked: &[u16], x: usize, y: usize| -> bool {
            if blocked[y * side + x] == 0 {
                return true;
            }
            let near = |cx: usize, cy: usize| {
                let dx = x.abs_diff(cx) as f64;
                let dy = y.abs_diff(cy) as f64;
                dx * dx + dy * dy <= keep2
            };
            near(gx, gy) || near(rx, ry)
        };
        let start = gy * side + gx;
        self.g[start] = 0.0;
        self.heap.push(Reverse((h(gx, gy).to_bits(), start as u32)));
        let mut limit = f32::INFINITY;
        let extra = (extra_m / self.res) as f32;
        while let Some(Reverse((fbits, idx))) = self.heap.pop() {
            let f = f32::from_bits(fbits);
            if f > limit {
                break;
            }
            let idx = idx as usize;
            if self.closed[idx] {
                continue;
            }
            self.closed[idx] = true;
            self.settled += 1;
            let (x, y) = (idx % side, idx / side);
            let gc = self.g[idx];
            if x == rx && y == ry {
                limit = gc + extra;
            }
            for (dx, dy, cost) in NEIGHBOURS {
                let nx = x as i64 + dx;
                let ny = y as i64 + dy;
                if nx < wx0 as i64 || ny < wy0 as i64 || nx > wx1 as i64 || ny > wy1 as i64 {
                    continue;
                }
                let (nx, ny) = (nx as usize, ny as usize);
                let j = ny * side + nx;
                if self.closed[j] || !passable(&self.blocked, nx, ny) {
                    continue;
                }
                let ng = gc + cost;
                if ng < self.g[j] {
                    self.g[j] = ng;
                    // f >= 0, so the IEEE bit pattern orders like the value.
                    self.heap.push(Reverse(((ng + h(nx, ny)).to_bits(), j as u32)));
                }
            }
        }
        limit.is_finite()
    }

    /// Navigation value (metres to the goal around known obstacles) at `p`, or infinity when
    /// the last solve did not settle that cell.
    pub(crate) fn value(&self, p: Point) -> f64 {
        match self.cell_xy(p) {
            Some((x, y)) if self.closed[y * self.side + x] => f64::from(self.g[y * self.side + x]) * self.res,
            _ => f64::INFINITY,
        }
    }

    #[cfg(test)]
    pub(crate) fn settled(&self) -> usize {
        self.settled
    }
}

const NEIGHBOURS: [(i64, i64, f32); 8] = [
    (1, 0, 1.0),
    (-1, 0, 1.0),
    (0, 1, 1.0),
    (0, -1, 1.0),
    (1, 1, SQRT_2_F32),
    (1, -1, SQRT_2_F32),
    (-1, 1, SQRT_2_F32),
    (-1, -1, SQRT_2_F32),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::SQRT_2;

    /// Octile distance is exact on an empty 8-connected grid.
    fn octile(dx: f64, dy: f64) -> f64 {
        let (a, b) = (dx.abs().max(dy.abs()), dx.abs().min(dy.abs()));
        a + (SQRT_2 - 1.0) * b
    }

    #[test]
    fn empty_grid_value_is_octile_distance() {
        let mut g = NavGrid::new(0.1, 20.0, 0.3);
        let goal = Point::new(5.05, 5.05);
        let robot = Point::new(1.05, 2.05);
        g.ensure_covers(goal, robot);
        assert!(g.solve(goal, robot, 1.0));
        let v = g.value(robot);
        assert!((v - octile(4.0, 3.0)).abs() < 1e-4, "{v}");
        assert!(
            g.settled() < 40 * 40,
            "A* stays near the straight line: {}",
            g.settled()
        );
    }

    #[test]
    fn wall_forces_a_detour_and_door_lets_through() {
        let mut g = NavGrid::new(0.1, 20.0, 0.3);
        let goal = Point::new(8.05, 5.05);
        let robot = Point::new(2.05, 5.05);
        g.ensure_covers(goal, robot);
        // Wall at x = 5 from y = 0 to 10, with a 1 m door at y = 7.5 .. 8.5.
        let mut y = 0.0;
        while y <= 10.0 {
            if !(7.5..=8.5).contains(&y) {
                g.mark(Point::new(5.0, y));
            }
            y += 0.05;
        }
        assert!(g.solve(goal, robot, 1.0));
        let v = g.value(robot);
        // Via the door: about 2 * hypot(3, 3) = 8.5 m, certainly more than the 6 m straight.
        assert!(v > 8.0 && v < 9.2, "{v}");
        // Close the door: unreachable.
        let mut y = 7.5;
        while y <= 8.5 {
            g.mark(Point::new(5.0, y));
            y += 0.05;
        }
        let mut g2 = g.clone();
        let reachable = g2.solve(goal, robot, 1.0);
        // The grid is 20 m wide around the midpoint, so the wall spans only y 0..10: the
        // robot can still go around its ends, far away.
        assert!(reachable);
        assert!(g2.value(robot) > 9.2);
    }
}
