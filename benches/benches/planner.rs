//! Planning time vs beam count, with and without the lookup-table cache. The scan is a real
//! ray-cast of the built-in world, read as little-endian bytes in place (as from SHM).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use qubot_robot::{Lidar, LidarConfig, Planner, PlannerConfig, RangeSource, ScanInput, World};

fn planner(c: &mut Criterion) {
    let world = World::builtin();
    let mut g = c.benchmark_group("planner");
    for beams in [360usize, 720, 1440, 2048, 4096] {
        let lidar = Lidar::new(LidarConfig {
            beams,
            ..LidarConfig::default()
        });
        let mut ranges = vec![0.0f32; beams];
        lidar.scan_into(&world, world.start, &mut ranges);
        let bytes = qubot_msg::ranges_to_bytes(&ranges);
        let scan = ScanInput {
            angle_min: lidar.angle_min() as f32,
            angle_increment: lidar.angle_increment() as f32,
            range_max: lidar.range_max() as f32,
            ranges: RangeSource::Wire(qubot_msg::ScanRanges::new(&bytes)),
        };
        for cached in [true, false] {
            let mut p = Planner::new(PlannerConfig {
                use_cache: cached,
                ..PlannerConfig::default()
            });
            let name = if cached { "cached" } else { "uncached" };
            g.bench_with_input(BenchmarkId::new(name, beams), &beams, |b, _| {
                b.iter(|| black_box(p.plan(black_box(&scan), world.start, world.goal)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
