//! The sensor: a simulated 2D LiDAR ray-casting the world (moving obstacles where the world
//! clock puts them at the capture instant) from the pose the actuator reports, publishing each
//! scan straight into a shared-memory loan (and optional camera frames).
//!
//! What a scan contains and how it is stamped is plain state in [`rules`]; this module is the
//! actix shell: timers, the clock, the bus.

pub mod rules;

use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, Handler, StreamHandler};
use qubot_bus::{Bus, BusError, Publisher};
use qubot_msg::{now_ns, ranges_len, topic, write_ranges, Frame, Role, Scan, State};
use qubot_robot::{LidarConfig, World};
use qubot_runtime::{realtime::Profile, subscribe_bound, Deliver, InboxOptions, Subscription, Tick};

use crate::timing;
use qubot_node::NodeConfig;
use rules::{frame_shot, SensorRules};

/// Publishers declared on the main thread before the actix System starts.
pub struct SensorBus {
    scan: Publisher<Scan>,
    frame: Option<Publisher<Frame>>,
}

pub fn declare(bus: &Bus, cfg: &NodeConfig) -> Result<SensorBus, BusError> {
    let frame = if cfg.sensor.frame_width > 0 && cfg.sensor.frame_height > 0 {
        Some(bus.publisher(topic::FRAME)?)
    } else {
        None
    };
    Ok(SensorBus {
        scan: bus.publisher(topic::SCAN)?,
        frame,
    })
}

pub struct Sensor {
    rules: SensorRules,
    bus: SensorBus,
    period: Duration,
    frame: (u32, u32, Duration),
    rt: Option<Profile>,
}

/// The sensor's timers: a scan per period, a camera frame per frame period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorTimer {
    Capture,
    Frame,
}

impl Sensor {
    pub fn new(cfg: &NodeConfig, world: World, bus: SensorBus) -> Sensor {
        let s = &cfg.sensor;
        let lidar = LidarConfig {
            beams: s.beams as usize,
            fov_rad: std::f64::consts::TAU,
            range_max_m: s.range_max_m,
        };
        let frame_period = if s.frame_hz > 0.0 {
            Duration::from_secs_f64(1.0 / s.frame_hz)
        } else {
            Duration::MAX
        };
        Sensor {
            rules: SensorRules::new(world, lidar, cfg.world_epoch_ns),
            bus,
            period: Duration::from_secs_f64(1.0 / s.rate_hz),
            frame: (s.frame_width, s.frame_height, frame_period),
            rt: timing::profile(cfg, Role::Sensor),
        }
    }

    fn capture(&mut self) {
        let c = self.rules.capture(now_ns());
        let ranges = c.ranges;
        let r = self
            .bus
            .scan
            .publish(&c.scan, c.origin_ns, ranges_len(ranges.len()), |out| {
                write_ranges(out, ranges.iter().copied());
            });
        if let Err(e) = r {
            tracing::warn!(error = %e, "publishing scan");
        }
    }

    fn publish_frame(&mut self) {
        let Some(p) = &self.bus.frame else { return };
        let (width, height, _) = self.frame;
        let now = now_ns();
        let f = frame_shot(width, height, now);
        if let Err(e) = p.publish(&f.body, now, f.len, |out| out.fill(f.shade)) {
            tracing::warn!(error = %e, "publishing frame");
        }
    }
}

impl Actor for Sensor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let rt = self.rt.clone();
        timing::every(
            ctx,
            Role::Sensor,
            SensorTimer::Capture,
            "capture",
            self.period,
            rt.clone(),
        );
        if self.bus.frame.is_some() {
            timing::every(ctx, Role::Sensor, SensorTimer::Frame, "frame", self.frame.2, rt);
        }
    }
}

impl Handler<Tick<SensorTimer>> for Sensor {
    type Result = ();
    fn handle(&mut self, t: Tick<SensorTimer>, _: &mut Context<Self>) {
        let Some(_run) = t.on_time(Instant::now()) else {
            return;
        };
        match t.kind {
            SensorTimer::Capture => self.capture(),
            SensorTimer::Frame => self.publish_frame(),
        }
    }
}

impl StreamHandler<Deliver<State>> for Sensor {
    fn handle(&mut self, d: Deliver<State>, ctx: &mut Context<Self>) {
        d.drain(self, ctx, |s, m, _| {
            s.rules.on_state(&m.body);
        });
    }
}

/// Starts the sensor bound to its actuator's state (keep-latest: only the newest pose
/// matters; another source's state never moves the simulated lidar).
pub async fn start(
    bus: &Bus,
    cfg: &NodeConfig,
    world: World,
    pubs: SensorBus,
) -> Result<Vec<Subscription>, BusError> {
    let actuator = bus.bind(Role::Actuator.name(), &cfg.actuator.instance).await?;
    let (sub, states) =
        subscribe_bound(bus, &actuator, topic::STATE, InboxOptions::KEEP_LATEST, |_| None).await?;
    Sensor::create(|ctx| {
        ctx.add_stream(states);
        Sensor::new(cfg, world, pubs)
    });
    Ok(vec![sub, Subscription::binding(actuator)])
}
