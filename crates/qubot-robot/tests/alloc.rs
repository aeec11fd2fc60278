//! With the cache on, `Planner::plan` allocates nothing once a scan layout has been seen.

use qubot_alloc::Counting;
use qubot_robot::{Lidar, LidarConfig, Planner, PlannerConfig, Pose2, RangeSource, ScanInput, World};
use std::alloc::System;

#[global_allocator]
static GLOBAL: Counting<System> = Counting(System);

/// This thread's count: the test harness's own threads allocate too.
fn allocs() -> u64 {
    qubot_alloc::thread_allocs()
}

#[test]
fn plan_is_allocation_free_in_steady_state() {
    let world = World::builtin();
    let lidar = Lidar::new(LidarConfig::default());
    let mut ranges = vec![0f32; lidar.beams()];
    let bytes_len = qubot_msg::ranges_len(lidar.beams());
    let mut bytes = vec![0u8; bytes_len];
    let mut planner = Planner::new(PlannerConfig::default());
    // Poses along a detour around the first block, so the navigation function is searched.
    let poses: Vec<Pose2> = (0..40)
        .map(|i| Pose2::new(1.0 + 0.04 * f64::from(i), 4.0, 0.0))
        .collect();
    let run = |planner: &mut Planner, ranges: &mut Vec<f32>, bytes: &mut Vec<u8>| {
        for (k, &pose) in poses.iter().enumerate() {
            lidar.scan_into(&world, pose, ranges);
            let source = if k % 2 == 0 {
                RangeSource::Floats(ranges)
            } else {
                qubot_msg::write_ranges(bytes, ranges.iter().copied());
                RangeSource::Wire(qubot_msg::ScanRanges::new(bytes))
            };
            let scan = ScanInput {
                angle_min: lidar.angle_min() as f32,
                angle_increment: lidar.angle_increment() as f32,
                range_max: lidar.range_max() as f32,
                ranges: source,
            };
            let plan = planner.plan(&scan, pose, world.goal);
            assert!(plan.v.is_finite() && plan.w.is_finite());
        }
    };
    run(&mut planner, &mut ranges, &mut bytes); // warm-up: builds the tables
    assert!(
        planner.is_detouring(),
        "the block is in the way, so the A* path was exercised"
    );
    let before = allocs();
    run(&mut planner, &mut ranges, &mut bytes);
    assert_eq!(allocs() - before, 0, "plan() allocated in steady state");
    assert_eq!(planner.cache_misses(), 1);
}
