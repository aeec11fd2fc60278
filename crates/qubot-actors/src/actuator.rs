//! The actuator: applies velocity commands to a simulated differential drive, integrates the
//! pose, publishes state, and stops the robot safely when commands stop coming.

use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, StreamHandler};
use metrics::{Counter, Gauge, Histogram};
use qubot_bus::{telemetry, Bus, BusError, Publisher, Received, Topic};
use qubot_msg::{now_ns, Command, State};
use qubot_robot::{DiffDrive, DriveLimits, Point, World};
use qubot_runtime::{subscribe_bound, Deliver, InboxOptions, LogLimiter, Subscription};

use qubot_node::NodeConfig;

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
    /// When the command being applied expires (ns since epoch): capture of the scan it was
    /// planned on plus the pipeline budget. Past it the drive gets zero, whatever the timer.
    cmd_deadline_ns: u64,
    driving: bool,
    goal_reached: bool,
    last_cmd_seq: u64,
    last_cmd_at: Instant,
    last_tick: Instant,
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
            cmd_deadline_ns: 0,
            driving: false,
            goal_reached: false,
            last_cmd_seq: 0,
            last_cmd_at: now,
            last_tick: now,
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

    fn on_command(&mut self, m: Received<Command>) {
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
        self.cmd_deadline_ns = c.deadline_ns;
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
    }

    /// No fresh command within the timeout: command zero velocity (the drive decelerates
    /// within its limits), count it, say it.
    fn trip(&mut self) {
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
        // The watchdog runs on every tick, before anything is applied: no fresh command within
        // the timeout is a safe stop, and a late tick (a stalled process) must not apply an
        // old command for its whole `dt`.
        if self.driving && self.last_cmd_at.elapsed() >= self.cmd_timeout {
            self.trip();
        }
        // The command drives only for the part of this tick before its deadline.
        let left_s = self.cmd_deadline_ns.saturating_sub(now_ns()) as f64 * 1e-9;
        let (v, w) = if self.driving && !self.goal_reached {
            self.cmd
        } else {
            (0.0, 0.0)
        };
        let applied = dt.min(left_s);
        self.drive.step(v, w, applied);
        if applied < dt {
            self.drive.step(0.0, 0.0, dt - applied);
        }
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
        d.drain(self, ctx, |a, m, _| a.on_command(m));
    }
}

/// Starts the actuator bound to its planner's commands. Only the newest command matters (an
/// older one queued behind it is superseded, counted), so the inbox keeps the latest.
pub async fn start(
    bus: &Bus,
    cfg: &NodeConfig,
    world: &World,
    pubs: ActuatorBus,
) -> Result<Vec<Subscription>, BusError> {
    let planner = bus.bind("planner", &cfg.planner.instance).await?;
    let (sub, commands) =
        subscribe_bound::<Command>(bus, &planner, "cmd", InboxOptions::KEEP_LATEST, |_| None).await?;
    Actuator::create(|ctx| {
        ctx.add_stream(commands);
        Actuator::new(cfg, world, pubs)
    });
    Ok(vec![sub, Subscription::binding(planner)])
}
