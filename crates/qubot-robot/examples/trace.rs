//! Runs the in-process closed loop on one world and prints the outcome, optionally with an
//! ASCII map of the path (`--map`) or a CSV trace (`--csv`).
//!
//! `cargo run --release --example trace -- <world name or file> [latency_s] [--map|--csv]
//! [--delay S]`; the CSV has the nearest mover's distance as its last column.

use qubot_robot::{sim, Point, SimConfig, World};
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("default", String::as_str);
    let latency: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let map = args.iter().any(|a| a == "--map");
    let csv = args.iter().any(|a| a == "--csv");
    let delay: f64 = args
        .iter()
        .position(|a| a == "--delay")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(0.0);
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/worlds"));
    let world = match World::resolve(name, dir) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let mut path = Vec::new();
    let cfg = SimConfig {
        latency_s: latency,
        start_delay_s: delay,
        ..SimConfig::default()
    };
    let mut moving = Vec::new();
    let report = sim::run_closed_loop_with(&world, cfg, |t, d| {
        if csv {
            world.movers_at(t, &mut moving);
            let near = moving
                .iter()
                .map(|s| s.signed_distance(d.pose.point()))
                .fold(f64::INFINITY, f64::min);
            println!(
                "{t:.2},{:.3},{:.3},{:.3},{:.3},{:.3},{near:.3}",
                d.pose.x, d.pose.y, d.pose.theta, d.v, d.w
            );
        }
        path.push(d.pose.point());
    });
    println!("{}: {report:?}", world.name);
    if map {
        print_map(&world, &path);
    }
}

fn print_map(world: &World, path: &[Point]) {
    let cell = 0.1;
    let cols = (world.width_m / cell).ceil() as usize;
    let rows = (world.height_m / cell).ceil() as usize;
    let mut grid = vec![vec![' '; cols]; rows];
    for (r, row) in grid.iter_mut().enumerate() {
        for (c, ch) in row.iter_mut().enumerate() {
            let p = Point::new((c as f64 + 0.5) * cell, (r as f64 + 0.5) * cell);
            let cl = world.clearance(p);
            if cl <= cell * 0.5 {
                *ch = '#';
            } else if cl < world.robot_radius_m {
                *ch = '.';
            }
        }
    }
    for p in path {
        let c = ((p.x / cell) as usize).min(cols - 1);
        let r = ((p.y / cell) as usize).min(rows - 1);
        grid[r][c] = '*';
    }
    let mark = |g: &mut Vec<Vec<char>>, p: Point, ch: char| {
        let c = ((p.x / cell) as usize).min(cols - 1);
        let r = ((p.y / cell) as usize).min(rows - 1);
        g[r][c] = ch;
    };
    mark(&mut grid, world.start.point(), 'S');
    mark(&mut grid, world.goal, 'G');
    for row in grid.iter().rev() {
        println!("{}", row.iter().collect::<String>());
    }
}
