//! Route-field upkeep: recomputed from scratch on every detouring step vs repaired where the
//! map changed (issue 16). Both planners are fed the same recorded scans, and every plan of
//! the two is asserted bit-identical before anything is timed.
//!
//! Scans are recorded once per world from the in-process loop (720 beams, 10 Hz along the
//! driven path, moving obstacles where they stood), then replayed. Timed: a steady-state
//! segment of up to 150 steps after the first quarter of the run (whose steps only warm the
//! memory), as time per whole segment; `BENCHMARKS.md` divides by its step count. Worlds: every shipped one and a
//! generated 60 m x 60 m warehouse planned on a 5 cm grid.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use qubot_robot::{
    sim::run_closed_loop_with, Lidar, LidarConfig, Plan, Planner, PlannerConfig, Point, Pose2, RangeSource,
    ScanInput, Shape, SimConfig, World,
};

const WORLDS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/worlds");

/// Shelf rows with cross aisles, start and goal at opposite corners.
fn warehouse() -> World {
    let mut obstacles = Vec::new();
    for row in 0..8 {
        let y = 6.0 + 6.5 * f64::from(row);
        // Each row has two 2 m cross aisles, shifted from row to row.
        let gap = if row % 2 == 0 { [18.0, 40.0] } else { [26.0, 48.0] };
        for (x0, x1) in [(5.0, gap[0]), (gap[0] + 2.0, gap[1]), (gap[1] + 2.0, 55.0)] {
            obstacles.push(Shape::Rect {
                x_min: x0,
                y_min: y,
                x_max: x1,
                y_max: y + 1.2,
            });
        }
    }
    let w = World {
        name: "warehouse".into(),
        width_m: 60.0,
        height_m: 60.0,
        start: Pose2::new(2.0, 2.0, 0.0),
        goal: Point::new(58.0, 58.0),
        goal_tolerance_m: 0.25,
        robot_radius_m: 0.2,
        obstacles,
        movers: vec![],
    };
    w.validate().expect("warehouse is valid");
    w
}

struct Recording {
    name: String,
    planner: PlannerConfig,
    goal: Point,
    lidar: Lidar,
    steps: Vec<(Pose2, Vec<u8>)>,
}

/// Drives the world once and keeps a scan every 100 ms along the path.
fn record(world: &World, planner: PlannerConfig, max_time_s: f64) -> Recording {
    let cfg = SimConfig {
        planner,
        max_time_s,
        ..SimConfig::default()
    };
    let mut poses = Vec::new();
    let mut k = 0u64;
    let report = run_closed_loop_with(world, cfg, |t, d| {
        if k % 5 == 0 {
            poses.push((t, d.pose));
        }
        k += 1;
    });
    assert!(report.goal_reached, "{}: {report:?}", world.name);
    let lidar = Lidar::new(LidarConfig::default());
    let mut ranges = vec![0f32; lidar.beams()];
    let mut moving = Vec::new();
    let steps = poses
        .into_iter()
        .map(|(t, pose)| {
            world.movers_at(t, &mut moving);
            lidar.scan_into(&world.scene(&moving), pose, &mut ranges);
            (pose, qubot_msg::ranges_to_bytes(&ranges))
        })
        .collect();
    Recording {
        name: world.name.clone(),
        planner: PlannerConfig {
            robot_radius_m: world.robot_radius_m,
            goal_tolerance_m: world.goal_tolerance_m,
            ..planner
        },
        goal: world.goal,
        lidar,
        steps,
    }
}

impl Recording {
    fn plan(&self, p: &mut Planner, i: usize) -> Plan {
        let (pose, bytes) = &self.steps[i];
        let scan = ScanInput {
            angle_min: self.lidar.angle_min() as f32,
            angle_increment: self.lidar.angle_increment() as f32,
            range_max: self.lidar.range_max() as f32,
            ranges: RangeSource::Wire(qubot_msg::ScanRanges::new(bytes)),
        };
        p.plan(&scan, *pose, self.goal)
    }

    fn warm(&self) -> usize {
        self.steps.len() / 4
    }

    /// The timed segment: up to 150 steps after the warm-up.
    fn timed(&self) -> std::ops::Range<usize> {
        self.warm()..self.steps.len().min(self.warm() + 150)
    }

    /// A planner that has seen the warm-up steps.
    fn warmed(&self) -> Planner {
        let mut p = Planner::new(self.planner);
        for i in 0..self.warm() {
            self.plan(&mut p, i);
        }
        p
    }

    /// Every step planned by both, compared bit for bit.
    fn assert_identical(&self) {
        let mut inc = Planner::new(self.planner);
        let mut scratch = Planner::new(PlannerConfig {
            incremental: false,
            ..self.planner
        });
        for i in 0..self.steps.len() {
            let (a, b) = (self.plan(&mut inc, i), self.plan(&mut scratch, i));
            assert!(
                a.v.to_bits() == b.v.to_bits() && a.w.to_bits() == b.w.to_bits(),
                "{} step {i}: {a:?} vs {b:?}",
                self.name
            );
        }
        let (r, s) = (inc.route_stats(), scratch.route_stats());
        eprintln!(
            "{}: {} steps ({} timed), route field incremental: {} hit / {} repair / {} miss, {} cells; from scratch: {} miss, {} cells",
            self.name,
            self.steps.len(),
            self.timed().len(),
            r.hits,
            r.repairs,
            r.misses,
            r.touched,
            s.misses,
            s.touched
        );
    }
}

fn recordings() -> Vec<Recording> {
    let mut out: Vec<Recording> = std::fs::read_dir(WORLDS_DIR)
        .expect("worlds dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| World::load(&p).expect("world"))
        .map(|w| record(&w, PlannerConfig::default(), 120.0))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    let fine = PlannerConfig {
        map_resolution_m: 0.05,
        map_size_m: 64.0,
        ..PlannerConfig::default()
    };
    out.push(record(&warehouse(), fine, 400.0));
    out
}

fn replan(c: &mut Criterion) {
    let recs = recordings();
    for r in &recs {
        r.assert_identical();
    }
    let mut g = c.benchmark_group("replan");
    g.sample_size(10);
    for r in &recs {
        let warmed = r.warmed();
        for incremental in [false, true] {
            let id = if incremental {
                "incremental"
            } else {
                "from_scratch"
            };
            g.bench_function(BenchmarkId::new(id, &r.name), |b| {
                b.iter_batched(
                    || {
                        let mut p = warmed.clone();
                        p.set_incremental(incremental);
                        p
                    },
                    |mut p| {
                        for i in r.timed() {
                            black_box(r.plan(&mut p, i));
                        }
                        p
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, replan);
criterion_main!(benches);
