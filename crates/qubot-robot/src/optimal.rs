//! The yardstick for plan quality: the shortest collision-free path from the start to the goal
//! on the true map, computed offline on a grid like the planner's (8-connected, straight and
//! diagonal steps), so "path driven / shortest path" says how much a run wasted.
//!
//! A cell is free when the robot's disc centred on it touches nothing static: moving
//! obstacles are left out (they come and go; the yardstick is the empty building). The path
//! ends at the first cell within the goal tolerance, as a run does.

use crate::geom::Point;
use crate::world::World;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Length in metres of the shortest 8-connected path of `resolution_m` cells from the start to
/// within the goal tolerance, or `None` when there is none.
pub fn shortest_path_m(world: &World, resolution_m: f64) -> Option<f64> {
    let res = resolution_m.clamp(0.01, 1.0);
    let (w, h) = (
        (world.width_m / res).ceil() as usize,
        (world.height_m / res).ceil() as usize,
    );
    let centre = |x: usize, y: usize| Point::new((x as f64 + 0.5) * res, (y as f64 + 0.5) * res);
    let free: Vec<bool> = (0..w * h)
        .map(|i| world.clearance(centre(i % w, i / w)) > world.robot_radius_m)
        .collect();
    let cell = |p: Point| {
        let (x, y) = ((p.x / res) as usize, (p.y / res) as usize);
        (x < w && y < h).then_some(y * w + x)
    };
    let start = cell(world.start.point())?;
    // Distances in micrometres, so the heap orders integers.
    let step = (res * 1e6).round() as u64;
    let diag = (res * std::f64::consts::SQRT_2 * 1e6).round() as u64;
    let mut dist = vec![u64::MAX; w * h];
    let mut heap = BinaryHeap::new();
    dist[start] = 0;
    heap.push(Reverse((0u64, start)));
    while let Some(Reverse((d, i))) = heap.pop() {
        if d > dist[i] {
            continue;
        }
        let (x, y) = (i % w, i / w);
        if centre(x, y).dist(world.goal) <= world.goal_tolerance_m {
            return Some(d as f64 * 1e-6);
        }
        for (dx, dy) in [
            (1, 0),
            (-1, 0),
            (0, 1),
            (0, -1),
            (1, 1),
            (1, -1),
            (-1, 1),
            (-1, -1),
        ] {
            let (nx, ny) = (x as i64 + dx, y as i64 + dy);
            if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                continue;
            }
            let j = ny as usize * w + nx as usize;
            if !free[j] {
                continue;
            }
            let nd = d + if dx != 0 && dy != 0 { diag } else { step };
            if nd < dist[j] {
                dist[j] = nd;
                heap.push(Reverse((nd, j)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{test_room as room, Shape};

    #[test]
    fn straight_room_is_the_straight_line_less_the_tolerance() {
        let d = shortest_path_m(&room(vec![]), 0.1).unwrap();
        assert!((d - 7.8).abs() < 0.11, "{d}");
    }

    #[test]
    fn a_wall_makes_it_longer_and_a_sealed_goal_has_none() {
        let open = shortest_path_m(&room(vec![]), 0.1).unwrap();
        let wall = Shape::Segment {
            x0: 5.0,
            y0: 0.0,
            x1: 5.0,
            y1: 3.0,
        };
        let around = shortest_path_m(&room(vec![wall]), 0.1).unwrap();
        assert!(around > open + 0.5, "{around} vs {open}");
        let sealed = Shape::Segment {
            x0: 5.0,
            y0: 0.0,
            x1: 5.0,
            y1: 4.0,
        };
        assert_eq!(shortest_path_m(&room(vec![sealed]), 0.1), None);
    }
}
