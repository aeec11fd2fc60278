//! The planner: keeps only the latest scan, plans on a worker thread (CPU-bound work off the
//! I/O thread), and publishes velocity commands with the scan's origin stamp and a deadline.

use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, StreamHandler, SyncArbiter,
    SyncContext, WrapFuture,
};
use metrics::{Counter, Histogram};
use qubot_bus::{telemetry, Bus, BusError, Publisher, Received, Topic};
use qubot_msg::{now_ns, Command, Scan};
use qubot_robot::{Planner as Vfh, PlannerConfig, Point, Pose2, RangeSource, ScanInput, World};
use qubot_runtime::{subscribe, Deliver, InboxOptions, Subscription};

use crate::NodeConfig;

pub struct PlannerBus {
    cmd: Publisher,
}

pub fn declare(bus: &Bus) -> Result<PlannerBus, BusError> {
    Ok(PlannerBus {
        cmd: bus.publisher(Topic::CMD)?,
    })
}

/// One planning step, run on the worker thread.
struct PlanJob(Received<Scan>);

struct PlanOutcome {
    v: f64,
    w: f64,
    origin_ns: u64,
    scan_seq: u64,
}

impl Message for PlanJob {
    type Result = PlanOutcome;
}

/// Owns the planner state (obstacle memory, lookup-table cache) on its own thread.
struct PlanWorker {
    vfh: Vfh,
    goal: Point,
    duration: Histogram,
    hits: Counter,
    misses: Counter,
}

impl Actor for PlanWorker {
    type Context = SyncContext<Self>;
}

impl Handler<PlanJob> for PlanWorker {
    type Result = actix::MessageResult<PlanJob>;
    fn handle(&mut self, job: PlanJob, _: &mut SyncContext<Self>) -> Self::Result {
        let start = Instant::now();
        let (hits, misses) = (self.vfh.cache_hits(), self.vfh.cache_misses());
        let m = &job.0;
        let b = m.body;
        // The ranges are read in place from the received (shared-memory) buffer.
        let scan = ScanInput {
            angle_min: b.angle_min,
            angle_increment: b.angle_increment,
            range_max: b.range_max,
            ranges: RangeSource::Bytes(m.payload()),
        };
        let pose = Pose2 {
            x: b.pose_x,
            y: b.pose_y,
            theta: b.pose_theta,
        };
        let plan = self.vfh.plan(&scan, pose, self.goal);
        self.hits.increment(self.vfh.cache_hits() - hits);
        self.misses.increment(self.vfh.cache_misses() - misses);
        self.duration.record(start.elapsed().as_secs_f64());
        actix::MessageResult(PlanOutcome {
            v: plan.v,
            w: plan.w,
            origin_ns: m.header.stamp.origin_ns,
            scan_seq: m.header.stamp.seq,
        })
    }
}

pub struct Planner {
    worker: Addr<PlanWorker>,
    bus: PlannerBus,
    deadline: Duration,
    busy: bool,
    /// The wake-up for scans that arrived while the worker was busy. They wait in the
    /// keep-latest inbox, which counts every one a newer scan replaces as `superseded`
    /// before delivery, so `received` counts exactly the scans that were planned.
    parked: Option<Deliver<Scan>>,
}

impl Actor for Planner {
    type Context = Context<Self>;
}

impl Planner {
    fn dispatch(&mut self, scan: Received<Scan>, ctx: &mut Context<Self>) {
        self.busy = true;
        let fut = self
            .worker
            .send(PlanJob(scan))
            .into_actor(self)
            .map(|res, p, ctx| {
                p.busy = false;
                match res {
                    Ok(out) => p.publish(out),
                    Err(e) => tracing::error!(error = %e, "planner worker unavailable"),
                }
                if let Some(d) = p.parked.take() {
                    p.take_one(d, ctx);
                }
            });
        ctx.spawn(fut);
    }

    /// Plans on the newest queued scan, if any; the rest stays queued (see `parked`).
    fn take_one(&mut self, d: Deliver<Scan>, ctx: &mut Context<Self>) {
        d.drain_at_most(1, self, ctx, |p, scan, ctx| p.dispatch(scan, ctx));
    }

    fn publish(&mut self, out: PlanOutcome) {
        let cmd = Command {
            v: out.v,
            w: out.w,
            deadline_ns: now_ns() + self.deadline.as_nanos() as u64,
            scan_seq: out.scan_seq,
        };
        if let Err(e) = self.bus.cmd.publish(&cmd, out.origin_ns, 0, |_| {}) {
            tracing::warn!(error = %e, "publishing command");
        }
    }
}

impl StreamHandler<Deliver<Scan>> for Planner {
    fn handle(&mut self, d: Deliver<Scan>, ctx: &mut Context<Self>) {
        if self.busy {
            self.parked = Some(d);
        } else {
            self.take_one(d, ctx);
        }
    }
}

/// Starts the planner (actor + one worker thread) subscribed to the sensor's scans.
pub async fn start(
    bus: &Bus,
    cfg: &NodeConfig,
    world: &World,
    pubs: PlannerBus,
) -> Result<Vec<Subscription>, BusError> {
    let pc = PlannerConfig {
        robot_radius_m: world.robot_radius_m,
        safety_margin_m: cfg.planner.safety_margin_m,
        v_max: cfg.planner.v_max,
        w_max: cfg.planner.w_max,
        goal_tolerance_m: world.goal_tolerance_m,
        ..PlannerConfig::default()
    };
    let goal = world.goal;
    let worker = SyncArbiter::start(1, move || PlanWorker {
        vfh: Vfh::new(pc),
        goal,
        duration: metrics::histogram!(telemetry::HANDLER_DURATION, "actor" => "planner", "message" => "plan"),
        hits: metrics::counter!(telemetry::PLANNER_CACHE, "result" => "hit"),
        misses: metrics::counter!(telemetry::PLANNER_CACHE, "result" => "miss"),
    });
    let key = qubot_bus::key(&cfg.robot, "sensor", "*", "scan");
    let (sub, scans) = subscribe::<Scan>(bus, &key, "scan", InboxOptions::KEEP_LATEST).await?;
    let planner = Planner {
        worker,
        bus: pubs,
        deadline: Duration::from_millis(cfg.planner.cmd_deadline_ms),
        busy: false,
        parked: None,
    };
    Planner::create(|ctx| {
        ctx.add_stream(scans);
        planner
    });
    Ok(vec![sub])
}
