//! The planner: keeps only the latest scan, plans on a worker thread (CPU-bound work off the
//! I/O thread), and publishes velocity commands with the scan's origin stamp and a deadline.
//!
//! Trust (DESIGN §4a): scans come only from the bound sensor, the robot's pose only from the
//! bound actuator's state (odometry) at the scan's capture time, never from the scan body;
//! a scan older than the pipeline budget is not planned on, and a command's deadline is the
//! scan's capture time plus that budget.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, StreamHandler, SyncArbiter,
    SyncContext, WrapFuture,
};
use metrics::{Counter, Histogram};
use qubot_bus::{telemetry, Bus, BusError, Publisher, Received, Topic};
use qubot_msg::{now_ns, Command, Scan, State};
use qubot_robot::{Planner as Vfh, PlannerConfig, Point, Pose2, RangeSource, ScanInput, World};
use qubot_runtime::{subscribe_bound, Deliver, InboxOptions, Subscription};

use qubot_node::NodeConfig;

pub struct PlannerBus {
    cmd: Publisher,
}

pub fn declare(bus: &Bus) -> Result<PlannerBus, BusError> {
    Ok(PlannerBus {
        cmd: bus.publisher(Topic::CMD)?,
    })
}

/// One planning step, run on the worker thread: the scan and the odometry pose at its capture.
struct PlanJob(Received<Scan>, Pose2);

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
    beams: CacheCounters,
    route: CacheCounters,
    route_cells: Histogram,
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
            ranges: RangeSource::Bytes(m.payload()),
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
        actix::MessageResult(PlanOutcome {
            v: plan.v,
            w: plan.w,
            origin_ns: m.header.stamp.origin_ns,
            scan_seq: m.header.stamp.seq,
        })
    }
}

/// Odometry poses by the actuator's publish time (ns), newest last; a second's worth.
const POSE_HISTORY: usize = 64;

pub struct Planner {
    worker: Addr<PlanWorker>,
    bus: PlannerBus,
    /// The pipeline budget (capture to applied).
    budget: Duration,
    pose_tolerance_m: f64,
    poses: VecDeque<(u64, Pose2)>,
    drops: ScanDrops,
    busy: bool,
    /// The wake-up for scans that arrived while the worker was busy. They wait in the
    /// keep-latest inbox, which counts every one a newer scan replaces as `superseded`
    /// before delivery, so `received` counts exactly the scans that were planned.
    parked: Option<Deliver<Scan>>,
}

impl Actor for Planner {
    type Context = Context<Self>;
}

/// Scans handled but not planned on, by reason.
struct ScanDrops {
    stale: Counter,
    implausible: Counter,
    no_pose: Counter,
}

impl Planner {
    /// The odometry pose at `t_ns`: the newest state published at or before it (the one the
    /// sensor ray-cast from), else the oldest one after it.
    fn pose_at(&self, t_ns: u64) -> Option<Pose2> {
        self.poses
            .iter()
            .rev()
            .find(|(t, _)| *t <= t_ns)
            .or_else(|| self.poses.front())
            .map(|(_, p)| *p)
    }

    fn dispatch(&mut self, scan: Received<Scan>, ctx: &mut Context<Self>) {
        let origin = scan.header.stamp.origin_ns;
        if now_ns().saturating_sub(origin) > self.budget.as_nanos() as u64 {
            // A command planned on it would be stale before it left: replayed, or we stalled.
            self.drops.stale.increment(1);
            return;
        }
        let Some(pose) = self.pose_at(origin) else {
            self.drops.no_pose.increment(1);
            return;
        };
        let b = scan.body;
        let (dx, dy) = (b.pose_x - pose.x, b.pose_y - pose.y);
        // A NaN pose in the scan is implausible too.
        let off = dx.hypot(dy);
        if off.is_nan() || off > self.pose_tolerance_m {
            self.drops.implausible.increment(1);
            return;
        }
        self.busy = true;
        let fut = self
            .worker
            .send(PlanJob(scan, pose))
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
            // From the capture of the scan it was planned on, not from now: a plan made from an
            // old scan is rejected however fresh its publication.
            deadline_ns: out.origin_ns.saturating_add(self.budget.as_nanos() as u64),
            scan_seq: out.scan_seq,
        };
        if let Err(e) = self.bus.cmd.publish(&cmd, out.origin_ns, 0, |_| {}) {
            tracing::warn!(error = %e, "publishing command");
        }
    }
}

/// Odometry from the bound actuator: the pose history scans are checked and planned against.
impl StreamHandler<Deliver<State>> for Planner {
    fn handle(&mut self, d: Deliver<State>, ctx: &mut Context<Self>) {
        d.drain(self, ctx, |p, m, _| {
            let s = m.body;
            if !(s.x.is_finite() && s.y.is_finite() && s.theta.is_finite()) {
                return;
            }
            if p.poses.len() == POSE_HISTORY {
                p.poses.pop_front();
            }
            let pose = Pose2 {
                x: s.x,
                y: s.y,
                theta: s.theta,
            };
            p.poses.push_back((m.header.stamp.publish_ns, pose));
        });
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

/// More beams than configured: refused before the inbox, so nothing is ever sized by it.
fn admit_scan(max_beams: u32) -> impl Fn(&Scan) -> Option<&'static str> + Send + Sync + 'static {
    move |s| (s.beams > max_beams).then_some("oversize")
}

/// Starts the planner (actor + one worker thread) bound to its sensor's scans and its
/// actuator's odometry.
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
        beams: CacheCounters::new("beams"),
        route: CacheCounters::new("route"),
        route_cells: metrics::histogram!(telemetry::PLANNER_ROUTE_CELLS),
    });
    let sensor = bus.bind("sensor", &cfg.sensor.instance).await?;
    let actuator = bus.bind("actuator", &cfg.actuator.instance).await?;
    let (scan_sub, scans) = subscribe_bound::<Scan>(
        bus,
        &sensor,
        "scan",
        InboxOptions::KEEP_LATEST,
        admit_scan(cfg.planner.max_beams),
    )
    .await?;
    let (state_sub, states) =
        subscribe_bound::<State>(bus, &actuator, "state", InboxOptions::KEEP_LATEST, |_| None).await?;
    let drop = |reason: &'static str| metrics::counter!(telemetry::DROPPED, "actor" => "planner", "topic" => "scan", "reason" => reason);
    let planner = Planner {
        worker,
        bus: pubs,
        budget: Duration::from_millis(cfg.planner.cmd_deadline_ms),
        pose_tolerance_m: cfg.planner.pose_tolerance_m,
        poses: VecDeque::with_capacity(POSE_HISTORY),
        drops: ScanDrops {
            stale: drop("stale"),
            implausible: drop("implausible"),
            no_pose: drop("no_pose"),
        },
        busy: false,
        parked: None,
    };
    Planner::create(|ctx| {
        ctx.add_stream(states);
        ctx.add_stream(scans);
        planner
    });
    Ok(vec![
        scan_sub,
        state_sub,
        Subscription::binding(sensor),
        Subscription::binding(actuator),
    ])
}
