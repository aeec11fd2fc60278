//! The actuator: applies velocity commands to a simulated differential drive, integrates the
//! pose, publishes state, and stops the robot safely when commands stop coming.

use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, SpawnHandle, StreamHandler};
use metrics::{Counter, Gauge, Histogram};
use qubot_bus::{telemetry, Bus, BusError, Publisher, Received, Topic};
use qubot_msg::{now_ns, Command, State};
use qubot_robot::{DiffDrive, DriveLimits, Point, World};
use qubot_runtime::{subscribe, Deliver, DropPolicy, InboxOptions, LogLimiter, Subscription};

use crate::NodeConfig;

/// Commands beyond these are nonsense from a broken or hostile peer, not "fast".
const V_ABS_LIMIT: f64 = 10.0;
const W_ABS_LIMIT: f64 = 50.0;

pub struct ActuatorBus {
    state: Publisher,
}

pub fn declare(bus: &Bus) -> Result<ActuatorBus, BusError> {
    Ok(ActuatorBus {
        state: bus.publisher(Topic::STATE)?,
    })
}

pub struct Actuator {
    drive: DiffDrive,
    goal: Point,
    goal_tolerance: f64,
    bus: ActuatorBus,
    tick: Duration,
    cmd_timeout: Duration,
    /// The command being applied; meaningful only while `driving`.
    cmd: (f64, f64),
    driving: bool,
    goal_reached: bool,
    last_cmd_seq: u64,
    last_cmd_at: Instant,
    last_tick: Instant,
    watchdog: Option<SpawnHandle>,
    meters: Meters,
    log: LogLimiter,
}

struct Meters {
    latency: Histogram,
    safe_stops: Counter,
    silence: Gauge,
    stale: Counter,
    invalid: Counter,
}

impl Actuator {
    pub fn new(cfg: &NodeConfig, world: &World, bus: ActuatorBus) -> Actuator {
        let a = &cfg.actuator;
        let limits = DriveLimits {
            v_max: a.v_max,
            w_max: a.w_max,
            a_max: a.a_max,
            alpha_max: a.alpha_max,
        };
        let drop = |reason: &'static str| metrics::counter!(telemetry::DROPPED, "actor" => "actuator", "topic" => "cmd", "reason" => reason);
        let now = Instant::now();
        Actuator {
            drive: DiffDrive::new(world.start, limits),
            goal: world.goal,
            goal_tolerance: world.goal_tolerance_m,
            bus,
            tick: Duration::from_secs_f64(1.0 / a.tick_hz),
            cmd_timeout: Duration::from_millis(a.cmd_timeout_ms),
            cmd: (0.0, 0.0),
            driving: false,
            goal_reached: false,
            last_cmd_seq: 0,
            last_cmd_at: now,
            last_tick: now,
            watchdog: None,
            log: LogLimiter::per_second(),
            meters: Meters {
                latency: metrics::histogram!(telemetry::PIPELINE_LATENCY),
                safe_stops: metrics::counter!(telemetry::SAFE_STOPS, "reason" => "cmd_timeout"),
                silence: metrics::gauge!(telemetry::WATCHDOG_SILENCE),
                stale: drop("stale"),
                invalid: drop("invalid"),
            },
        }
    }

    fn on_command(&mut self, m: Received<Command>, ctx: &mut Context<Self>) {
        let c = m.body;
        if !(c.v.is_finite() && c.w.is_finite() && c.v.abs() <= V_ABS_LIMIT && c.w.abs() <= W_ABS_LIMIT) {
            self.meters.invalid.increment(1);
            if let Some(suppressed) = self.log.allow() {
                tracing::warn!(v = c.v, w = c.w, suppressed, "rejected invalid command");
            }
            return;
        }
        let now = now_ns();
        if c.deadline_ns < now {
            self.meters.stale.increment(1);
            tracing::debug!(
                late_ms = (now - c.deadline_ns) / 1_000_000,
                "rejected stale command"
            );
            return;
        }
        if self.goal_reached {
            return;
        }
        self.cmd = (c.v, c.w);
        self.last_cmd_seq = m.header.stamp.seq;
        self.last_cmd_at = Instant::now();
        if !self.driving {
            tracing::info!("commands flowing: driving");
            self.driving = true;
        }
        let origin = m.header.stamp.origin_ns;
        if origin > 0 && origin <= now {
            self.meters.latency.record((now - origin) as f64 * 1e-9);
        }
        // Re-arm the watchdog: it fires `cmd_timeout` after the newest fresh command.
        if let Some(h) = self.watchdog.take() {
            ctx.cancel_future(h);
        }
        self.watchdog = Some(ctx.run_later(self.cmd_timeout, |a, _| a.trip()));
    }

    /// No fresh command within the timeout: command zero velocity (the drive decelerates
    /// within its limits), count it, say it.
    fn trip(&mut self) {
        self.watchdog = None;
        if !self.driving {
            return;
        }
        self.driving = false;
        self.cmd = (0.0, 0.0);
        let silence = self.last_cmd_at.elapsed().as_secs_f64();
        self.meters.safe_stops.increment(1);
        self.meters.silence.set(silence);
        tracing::warn!(silence_ms = (silence * 1e3) as u64, "no fresh command: safe stop");
    }

    fn step(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last_tick).as_secs_f64().min(0.5);
        self.last_tick = now;
        let (v, w) = if self.driving && !self.goal_reached {
            self.cmd
        } else {
            (0.0, 0.0)
        };
        self.drive.step(v, w, dt);
        if !self.goal_reached && self.drive.pose.point().dist(self.goal) <= self.goal_tolerance {
            self.goal_reached = true;
            // Stopping at the goal is the plan, not a safe stop: the watchdog has nothing to do.
            self.driving = false;
            tracing::info!(x = self.drive.pose.x, y = self.drive.pose.y, "goal reached");
        }
        let p = self.drive.pose;
        let state = State {
            x: p.x,
            y: p.y,
            theta: p.theta,
            v: self.drive.v,
            w: self.drive.w,
            last_cmd_seq: self.last_cmd_seq,
            safe_stopped: !self.driving,
            goal_reached: self.goal_reached,
        };
        if let Err(e) = self.bus.state.publish(&state, qubot_msg::now_ns(), 0, |_| {}) {
            tracing::warn!(error = %e, "publishing state");
        }
    }
}

impl Actor for Actuator {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.last_tick = Instant::now();
        ctx.run_interval(self.tick, |a, _| a.step());
    }
}

impl StreamHandler<Deliver<Command>> for Actuator {
    fn handle(&mut self, d: Deliver<Command>, ctx: &mut Context<Self>) {
        d.drain(self, ctx, |a, m, ctx| a.on_command(m, ctx));
    }
}

/// Starts the actuator subscribed to the planner's commands. Commands are reliable and few:
/// a small inbox that refuses the newest when full (a backlog means they are stale anyway).
pub async fn start(
    bus: &Bus,
    cfg: &NodeConfig,
    world: &World,
    pubs: ActuatorBus,
) -> Result<Vec<Subscription>, BusError> {
    let key = qubot_bus::key(&cfg.robot, "planner", "*", "cmd");
    let opts = InboxOptions::new(16, DropPolicy::Newest);
    let (sub, commands) = subscribe::<Command>(bus, &key, "cmd", opts).await?;
    Actuator::create(|ctx| {
        ctx.add_stream(commands);
        Actuator::new(cfg, world, pubs)
    });
    Ok(vec![sub])
}
