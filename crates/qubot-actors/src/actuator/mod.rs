//! The actuator: applies velocity commands to a simulated differential drive, integrates the
//! pose, publishes state, and stops the robot safely when commands stop coming.
//!
//! The rules (validation, deadline, watchdog, goal) are the plain state machine in [`rules`];
//! this module is the actix shell around it: clocks, the tick timer, metrics, logs, the bus.

pub mod rules;

use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, Handler, StreamHandler};
use metrics::{Counter, Gauge, Histogram};
use qubot_bus::{telemetry, Bus, BusError, Publisher, Received};
use qubot_msg::{now_ns, topic, Command, DropReason, Role, State};
use qubot_robot::{DriveLimits, World};
use qubot_runtime::{
    realtime::Profile, subscribe_bound, Deliver, InboxOptions, LogLimiter, Subscription, Tick,
};

use qubot_node::NodeConfig;

use crate::timing;
use rules::{ActuatorParams, ActuatorRules, CommandOutcome};

pub struct ActuatorBus {
    state: Publisher<State>,
}

pub fn declare(bus: &Bus) -> Result<ActuatorBus, BusError> {
    Ok(ActuatorBus {
        state: bus.publisher(topic::STATE)?,
    })
}

/// The actix shell around [`ActuatorRules`]: reads the clocks, runs the tick timer, counts
/// and logs the outcomes, publishes the state.
pub struct Actuator {
    rules: ActuatorRules,
    bus: ActuatorBus,
    tick: Duration,
    meters: Meters,
    log: LogLimiter,
    rt: Option<Profile>,
}

/// The actuator's one timer: the control tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlTick;

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
        let params = ActuatorParams {
            start: world.start,
            goal: world.goal,
            goal_tolerance_m: world.goal_tolerance_m,
            limits: DriveLimits {
                v_max: a.v_max,
                w_max: a.w_max,
                a_max: a.a_max,
                alpha_max: a.alpha_max,
            },
            cmd_timeout: Duration::from_millis(a.cmd_timeout_ms),
        };
        let drop = |reason| telemetry::dropped(Role::Actuator.name(), topic::CMD.name(), reason);
        Actuator {
            rules: ActuatorRules::new(params, Instant::now()),
            bus,
            tick: Duration::from_secs_f64(1.0 / a.tick_hz),
            log: LogLimiter::per_second(),
            rt: timing::profile(cfg, Role::Actuator),
            meters: Meters {
                latency: metrics::histogram!(telemetry::PIPELINE_LATENCY),
                safe_stops: metrics::counter!(telemetry::SAFE_STOPS, "reason" => "cmd_timeout"),
                silence: metrics::gauge!(telemetry::WATCHDOG_SILENCE),
                stale: drop(DropReason::Stale),
                invalid: drop(DropReason::Invalid),
            },
        }
    }

    fn on_command(&mut self, m: Received<Command>) {
        let c = m.body;
        match self
            .rules
            .on_command(&c, &m.header.stamp, Instant::now(), now_ns())
        {
            CommandOutcome::Invalid => {
                self.meters.invalid.increment(1);
                if let Some(suppressed) = self.log.allow() {
                    tracing::warn!(v = c.v, w = c.w, suppressed, "rejected invalid command");
                }
            }
            CommandOutcome::Stale { late_ns } => {
                self.meters.stale.increment(1);
                tracing::debug!(late_ms = late_ns / 1_000_000, "rejected stale command");
            }
            CommandOutcome::AfterGoal => {}
            CommandOutcome::Accepted { started, latency_ns } => {
                if started {
                    tracing::info!("commands flowing: driving");
                }
                if let Some(ns) = latency_ns {
                    self.meters.latency.record(ns as f64 * 1e-9);
                }
            }
        }
    }

    fn step(&mut self) {
        let out = self.rules.tick(Instant::now(), now_ns());
        if let Some(stop) = out.safe_stop {
            let silence = stop.silence.as_secs_f64();
            self.meters.safe_stops.increment(1);
            self.meters.silence.set(silence);
            tracing::warn!(silence_ms = (silence * 1e3) as u64, "no fresh command: safe stop");
        }
        if out.goal_reached {
            tracing::info!(x = out.state.x, y = out.state.y, "goal reached");
        }
        if let Err(e) = self.bus.state.publish(&out.state, now_ns(), 0, |_| {}) {
            tracing::warn!(error = %e, "publishing state");
        }
    }
}

impl Actor for Actuator {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.rules.start_ticks(Instant::now());
        timing::every(
            ctx,
            Role::Actuator,
            ControlTick,
            "control",
            self.tick,
            self.rt.clone(),
        );
    }
}

impl Handler<Tick<ControlTick>> for Actuator {
    type Result = ();
    fn handle(&mut self, t: Tick<ControlTick>, _: &mut Context<Self>) {
        if let Some(_run) = t.on_time(Instant::now()) {
            self.step();
        }
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
    let planner = bus.bind(Role::Planner.name(), &cfg.planner.instance).await?;
    let (sub, commands) =
        subscribe_bound(bus, &planner, topic::CMD, InboxOptions::KEEP_LATEST, |_| None).await?;
    Actuator::create(|ctx| {
        ctx.add_stream(commands);
        Actuator::new(cfg, world, pubs)
    });
    Ok(vec![sub, Subscription::binding(planner)])
}
