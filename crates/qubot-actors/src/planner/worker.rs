//! The planning step on its own thread (`SyncArbiter`): CPU-bound work off the I/O thread. It
//! owns the planner's memory (obstacle grid, route field, lookup-table cache), counts the
//! caches and the step's duration, and publishes the obstacle grid at a low rate: the grid is
//! written straight into the outgoing buffer here, so neither a copy of it nor its encoding
//! ever reaches the actor's I/O thread (docs/ARCHITECTURE.md §11).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix::{Actor, Handler, Message, SyncContext};
use metrics::{Counter, Histogram};
use qubot_bus::{telemetry, Publisher, Received};
use qubot_msg::{MemoryGrid, Role, Scan, ScanRanges};
use qubot_robot::{Planner as Vfh, PlannerConfig, Point, Pose2, RangeSource, ScanInput};

/// One planning step: the scan and the odometry pose at its capture.
pub(super) struct PlanJob(pub(super) Received<Scan>, pub(super) Pose2);

pub(super) struct PlanOutcome {
    pub(super) v: f64,
    pub(super) w: f64,
    pub(super) origin_ns: u64,
    pub(super) scan_seq: u64,
}

impl Message for PlanJob {
    type Result = PlanOutcome;
}

pub(super) struct PlanWorker {
    vfh: Vfh,
    goal: Point,
    duration: Histogram,
    beams: CacheCounters,
    route: CacheCounters,
    route_cells: Histogram,
    memory: Option<MemoryOut>,
}

/// Publishing the memory: every `period`, after the planning step that passes `due`.
pub(super) struct MemoryOut {
    publisher: Arc<Publisher<MemoryGrid>>,
    period: Duration,
    due: Instant,
    duration: Histogram,
}

impl MemoryOut {
    /// `None` when `hz` is 0 (disabled).
    pub(super) fn new(publisher: Arc<Publisher<MemoryGrid>>, hz: f64) -> Option<MemoryOut> {
        (hz > 0.0).then(|| MemoryOut {
            publisher,
            period: Duration::from_secs_f64(1.0 / hz),
            due: Instant::now(),
            duration: metrics::histogram!(
                telemetry::HANDLER_DURATION,
                "actor" => Role::Planner.name(),
                "message" => "memory"
            ),
        })
    }

    /// Publishes `vfh`'s grid if it is due, stamped with the capture time of the scan that
    /// last updated it; the time taken is recorded as `message="memory"`.
    fn maybe_publish(&mut self, vfh: &Vfh, origin_ns: u64) {
        let start = Instant::now();
        if start < self.due {
            return;
        }
        self.due = start + self.period;
        let Some(mem) = vfh.memory() else {
            return;
        };
        let side = u32::try_from(mem.side).unwrap_or(u32::MAX);
        let body = MemoryGrid {
            origin_x: mem.origin.x,
            origin_y: mem.origin.y,
            resolution_m: mem.resolution_m,
            width: side,
            height: side,
        };
        let cells = mem.side * mem.side;
        let res = self.publisher.publish(&body, origin_ns, cells, |out| {
            mem.write_occupancy(MemoryGrid::OCCUPIED, out)
        });
        if let Err(e) = res {
            tracing::warn!(error = %e, "publishing memory");
        }
        self.duration.record(start.elapsed().as_secs_f64());
    }
}

impl PlanWorker {
    pub(super) fn new(cfg: PlannerConfig, goal: Point, memory: Option<MemoryOut>) -> PlanWorker {
        PlanWorker {
            vfh: Vfh::new(cfg),
            goal,
            duration: metrics::histogram!(
                telemetry::HANDLER_DURATION,
                "actor" => Role::Planner.name(),
                "message" => "plan"
            ),
            beams: CacheCounters::new("beams"),
            route: CacheCounters::new("route"),
            route_cells: metrics::histogram!(telemetry::PLANNER_ROUTE_CELLS),
            memory,
        }
    }
}

/// One cache's lookups by result (`repair` only for the route field).
struct CacheCounters {
    hit: Counter,
    miss: Counter,
    repair: Counter,
}

impl CacheCounters {
    fn new(cache: &'static str) -> CacheCounters {
        let c = |result: &'static str| metrics::counter!(telemetry::PLANNER_CACHE, "cache" => cache, "result" => result);
        CacheCounters {
            hit: c("hit"),
            miss: c("miss"),
            repair: if cache == "route" {
                c("repair")
            } else {
                Counter::noop()
            },
        }
    }
}

impl Actor for PlanWorker {
    type Context = SyncContext<Self>;
}

impl Handler<PlanJob> for PlanWorker {
    type Result = actix::MessageResult<PlanJob>;
    fn handle(&mut self, job: PlanJob, _: &mut SyncContext<Self>) -> Self::Result {
        let start = Instant::now();
        let (hits, misses) = (self.vfh.cache_hits(), self.vfh.cache_misses());
        let route = self.vfh.route_stats();
        let m = &job.0;
        let b = m.body;
        // The ranges are read in place from the received (shared-memory) buffer.
        let scan = ScanInput {
            angle_min: b.angle_min,
            angle_increment: b.angle_increment,
            range_max: b.range_max,
            ranges: RangeSource::Wire(ScanRanges::new(m.payload())),
        };
        let plan = self.vfh.plan(&scan, job.1, self.goal);
        self.beams.hit.increment(self.vfh.cache_hits() - hits);
        self.beams.miss.increment(self.vfh.cache_misses() - misses);
        let now = self.vfh.route_stats();
        self.route.hit.increment(now.hits - route.hits);
        self.route.miss.increment(now.misses - route.misses);
        self.route.repair.increment(now.repairs - route.repairs);
        if now.hits + now.misses + now.repairs > route.hits + route.misses + route.repairs {
            self.route_cells.record(now.last_touched as f64);
        }
        self.duration.record(start.elapsed().as_secs_f64());
        // After the step is timed, so `plan` stays the step alone; the command waits on this
        // only on the rare steps that publish the grid (its cost is `message="memory"`).
        if let Some(mem) = &mut self.memory {
            mem.maybe_publish(&self.vfh, m.header.stamp.origin_ns);
        }
        actix::MessageResult(PlanOutcome {
            v: plan.v,
            w: plan.w,
            origin_ns: m.header.stamp.origin_ns,
            scan_seq: m.header.stamp.seq,
        })
    }
}
