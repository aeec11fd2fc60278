//! The sensor: a simulated 2D LiDAR ray-casting the world (moving obstacles where the world
//! clock puts them at the capture instant) from the pose the actuator reports, publishing each
//! scan straight into a shared-memory loan (and optional camera frames).

use std::time::Duration;

use actix::{Actor, AsyncContext, Context, StreamHandler};
use qubot_bus::{Bus, BusError, Publisher, Topic};
use qubot_msg::{now_ns, Frame, Scan, State};
use qubot_robot::{Lidar, LidarConfig, Pose2, Shape, World};
use qubot_runtime::{subscribe_bound, Deliver, InboxOptions, Subscription};

use qubot_node::NodeConfig;

/// Publishers declared on the main thread before the actix System starts.
pub struct SensorBus {
    scan: Publisher,
    frame: Option<Publisher>,
}

pub fn declare(bus: &Bus, cfg: &NodeConfig) -> Result<SensorBus, BusError> {
    let frame = if cfg.sensor.frame_width > 0 && cfg.sensor.frame_height > 0 {
        Some(bus.publisher(Topic::FRAME)?)
    } else {
        None
    };
    Ok(SensorBus {
        scan: bus.publisher(Topic::SCAN)?,
        frame,
    })
}

pub struct Sensor {
    world: World,
    lidar: Lidar,
    pose: Pose2,
    bus: SensorBus,
    period: Duration,
    frame: (u32, u32, Duration),
    /// Reused every scan: ray casting writes here, then the ranges go into the SHM loan.
    ranges: Vec<f32>,
    /// The world clock's zero (wall-clock ns) and the movers frozen at the last capture.
    epoch_ns: u64,
    moving: Vec<Shape>,
}

impl Sensor {
    pub fn new(cfg: &NodeConfig, world: World, bus: SensorBus) -> Sensor {
        let s = &cfg.sensor;
        let lidar = Lidar::new(LidarConfig {
            beams: s.beams as usize,
            fov_rad: std::f64::consts::TAU,
            range_max_m: s.range_max_m,
        });
        let frame_period = if s.frame_hz > 0.0 {
            Duration::from_secs_f64(1.0 / s.frame_hz)
        } else {
            Duration::MAX
        };
        Sensor {
            pose: world.start,
            epoch_ns: cfg.world_epoch_ns,
            moving: Vec::with_capacity(world.movers.len()),
            world,
            ranges: vec![0.0; lidar.beams()],
            lidar,
            bus,
            period: Duration::from_secs_f64(1.0 / s.rate_hz),
            frame: (s.frame_width, s.frame_height, frame_period),
        }
    }

    fn capture(&mut self) {
        let origin = now_ns();
        // Moving obstacles stand where the world clock says at the capture instant.
        self.world
            .movers_at(qubot_node::world_time_s(self.epoch_ns, origin), &mut self.moving);
        let scene = self.world.scene(&self.moving);
        let n = self.lidar.scan_into(&scene, self.pose, &mut self.ranges);
        let scan = Scan {
            pose_x: self.pose.x,
            pose_y: self.pose.y,
            pose_theta: self.pose.theta,
            angle_min: self.lidar.angle_min() as f32,
            angle_increment: self.lidar.angle_increment() as f32,
            range_max: self.lidar.range_max() as f32,
            beams: n as u32,
        };
        let ranges = &self.ranges[..n];
        let r = self.bus.scan.publish(&scan, origin, n * 4, |out| {
            for (dst, r) in out.chunks_exact_mut(4).zip(ranges) {
                dst.copy_from_slice(&r.to_le_bytes());
            }
        });
        if let Err(e) = r {
            tracing::warn!(error = %e, "publishing scan");
        }
    }

    fn publish_frame(&mut self) {
        let Some(p) = &self.bus.frame else { return };
        let (width, height, _) = self.frame;
        let body = Frame {
            width,
            height,
            channels: 3,
        };
        let len = width as usize * height as usize * 3;
        // A synthetic image whose bytes change every frame (so a stale copy would show).
        let shade = (now_ns() / 1_000_000) as u8;
        if let Err(e) = p.publish(&body, now_ns(), len, |out| out.fill(shade)) {
            tracing::warn!(error = %e, "publishing frame");
        }
    }
}

impl Actor for Sensor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.period, |s, _| s.capture());
        if self.bus.frame.is_some() {
            ctx.run_interval(self.frame.2, |s, _| s.publish_frame());
        }
    }
}

impl StreamHandler<Deliver<State>> for Sensor {
    fn handle(&mut self, d: Deliver<State>, ctx: &mut Context<Self>) {
        d.drain(self, ctx, |s, m, _| {
            let b = m.body;
            if b.x.is_finite() && b.y.is_finite() && b.theta.is_finite() {
                s.pose = Pose2 {
                    x: b.x,
                    y: b.y,
                    theta: b.theta,
                };
            }
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
    let actuator = bus.bind("actuator", &cfg.actuator.instance).await?;
    let (sub, states) =
        subscribe_bound::<State>(bus, &actuator, "state", InboxOptions::KEEP_LATEST, |_| None).await?;
    Sensor::create(|ctx| {
        ctx.add_stream(states);
        Sensor::new(cfg, world, pubs)
    });
    Ok(vec![sub, Subscription::binding(actuator)])
}
