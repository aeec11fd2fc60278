//! The planner: keeps only the latest scan, plans on a worker thread (CPU-bound work off the
//! I/O thread), and publishes velocity commands with the scan's origin stamp and a deadline.
//!
//! Trust (docs/ARCHITECTURE.md §4a): scans come only from the bound sensor, the robot's pose
//! only from the bound actuator's state (odometry) at the scan's capture time, never from the
//! scan body; a scan older than the pipeline budget is not planned on, and a command's
//! deadline is the scan's capture time plus that budget.
//!
//! The rules (freshness, pose binding, keep-latest while busy, deadline) are plain state in
//! [`rules`]; the planning step runs in `worker`, which also publishes the memory (the
//! obstacle grid) at `planner.memory_hz`; this module is the actix shell: clocks, metrics,
//! the bus.

pub mod rules;
mod worker;

use std::{sync::Arc, time::Duration};

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, StreamHandler, SyncArbiter, WrapFuture};
use metrics::Counter;
use qubot_bus::{telemetry, Bus, BusError, Publisher, Received};
use qubot_msg::{now_ns, topic, Command, DropReason, MemoryGrid, Role, Scan, State};
use qubot_robot::{PlannerConfig, World};
use qubot_runtime::{subscribe_bound, Deliver, InboxOptions, Subscription};

use qubot_node::NodeConfig;
use rules::{admit_scan, Arrival, KeepLatest, PlannerRules, ScanVerdict};
use worker::{MemoryOut, PlanJob, PlanOutcome, PlanWorker};

pub struct PlannerBus {
    cmd: Publisher<Command>,
    /// Used by the worker thread only (one publishing thread per publisher).
    memory: Arc<Publisher<MemoryGrid>>,
}

pub fn declare(bus: &Bus) -> Result<PlannerBus, BusError> {
    Ok(PlannerBus {
        cmd: bus.publisher(topic::CMD)?,
        memory: Arc::new(bus.publisher(topic::MEMORY)?),
    })
}

pub struct Planner {
    worker: Addr<PlanWorker>,
    bus: PlannerBus,
    rules: PlannerRules,
    drops: ScanDrops,
    /// Parks the wake-up for scans that arrived while the worker was busy. The scans wait in
    /// the keep-latest inbox, which counts every one a newer scan replaces as `superseded`
    /// before delivery, so `received` counts exactly the scans that were taken. (The stream
    /// yields no second wake-up while one is held, so none is ever superseded here.)
    step: KeepLatest<Deliver<Scan>>,
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
    fn dispatch(&mut self, scan: Received<Scan>, ctx: &mut Context<Self>) {
        let pose = match self
            .rules
            .check_scan(&scan.body, scan.header.stamp.origin_ns, now_ns())
        {
            ScanVerdict::Plan(pose) => pose,
            ScanVerdict::Stale => return self.drops.stale.increment(1),
            ScanVerdict::NoPose => return self.drops.no_pose.increment(1),
            ScanVerdict::Implausible => return self.drops.implausible.increment(1),
        };
        self.step.begin();
        let fut = self
            .worker
            .send(PlanJob(scan, pose))
            .into_actor(self)
            .map(|res, p, ctx| {
                let next = p.step.finish();
                match res {
                    Ok(out) => p.publish(out),
                    Err(e) => tracing::error!(error = %e, "planner worker unavailable"),
                }
                if let Some(d) = next {
                    p.take_one(d, ctx);
                }
            });
        ctx.spawn(fut);
    }

    /// Plans on the newest queued scan, if any; the rest stays queued (see `step`).
    fn take_one(&mut self, d: Deliver<Scan>, ctx: &mut Context<Self>) {
        d.drain_at_most(1, self, ctx, |p, scan, ctx| p.dispatch(scan, ctx));
    }

    fn publish(&mut self, out: PlanOutcome) {
        let cmd = self.rules.command(out.v, out.w, out.origin_ns, out.scan_seq);
        if let Err(e) = self.bus.cmd.publish(&cmd, out.origin_ns, 0, |_| {}) {
            tracing::warn!(error = %e, "publishing command");
        }
    }
}

/// Odometry from the bound actuator: the pose history scans are checked and planned against.
impl StreamHandler<Deliver<State>> for Planner {
    fn handle(&mut self, d: Deliver<State>, ctx: &mut Context<Self>) {
        d.drain(self, ctx, |p, m, _| {
            p.rules.on_state(m.header.stamp.publish_ns, &m.body);
        });
    }
}

impl StreamHandler<Deliver<Scan>> for Planner {
    fn handle(&mut self, d: Deliver<Scan>, ctx: &mut Context<Self>) {
        match self.step.arrive(d) {
            Arrival::Take(d) => self.take_one(d, ctx),
            // Dropping a superseded wake-up loses nothing: its scans are in the inbox.
            Arrival::Parked { superseded } => drop(superseded),
        }
    }
}

/// The planning step's settings for a robot in `world`: the one place they are derived, so a
/// planner run offline on a recording (`qubot-bench replay`) plans as the actor does.
pub fn planner_config(cfg: &NodeConfig, world: &World) -> PlannerConfig {
    PlannerConfig {
        robot_radius_m: world.robot_radius_m,
        safety_margin_m: cfg.planner.safety_margin_m,
        v_max: cfg.planner.v_max,
        w_max: cfg.planner.w_max,
        goal_tolerance_m: world.goal_tolerance_m,
        ..PlannerConfig::default()
    }
}

/// Starts the planner (actor + one worker thread) bound to its sensor's scans and its
/// actuator's odometry.
pub async fn start(
    bus: &Bus,
    cfg: &NodeConfig,
    world: &World,
    pubs: PlannerBus,
) -> Result<Vec<Subscription>, BusError> {
    let pc = planner_config(cfg, world);
    let goal = world.goal;
    let (memory, memory_hz) = (pubs.memory.clone(), cfg.planner.memory_hz);
    // One worker thread: the factory runs once, so the memory has one publishing thread.
    let worker = SyncArbiter::start(1, move || {
        PlanWorker::new(pc, goal, MemoryOut::new(memory.clone(), memory_hz))
    });
    let sensor = bus.bind(Role::Sensor.name(), &cfg.sensor.instance).await?;
    let actuator = bus.bind(Role::Actuator.name(), &cfg.actuator.instance).await?;
    let max_beams = cfg.planner.max_beams;
    let (scan_sub, scans) = subscribe_bound(bus, &sensor, topic::SCAN, InboxOptions::KEEP_LATEST, move |s| {
        admit_scan(max_beams, s)
    })
    .await?;
    let (state_sub, states) =
        subscribe_bound(bus, &actuator, topic::STATE, InboxOptions::KEEP_LATEST, |_| None).await?;
    let drop = |reason| telemetry::dropped(Role::Planner.name(), topic::SCAN.name(), reason);
    let planner = Planner {
        worker,
        bus: pubs,
        rules: PlannerRules::new(
            Duration::from_millis(cfg.planner.cmd_deadline_ms),
            cfg.planner.pose_tolerance_m,
        ),
        drops: ScanDrops {
            stale: drop(DropReason::Stale),
            implausible: drop(DropReason::Implausible),
            no_pose: drop(DropReason::NoPose),
        },
        step: KeepLatest::new(),
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
