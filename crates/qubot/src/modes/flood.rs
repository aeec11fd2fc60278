//! `qubot flood`: synthetic sensor traffic on the real sensor's key and wire format, through
//! SHM loans like the sensor. Bounded in count and time; reports JSON on its last line.
//! Each publisher stamps its own random source id: a planner bound to the real sensor decodes
//! every flood scan (the load is real) and counts it as `foreign` (it never steers).

use std::{
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use qubot_bus::{Bus, BusError, Publisher};
use qubot_msg::{
    now_ns, ranges_len, topic, write_ranges, ActorId, Frame, Ping, Role, Scan, State, TopicSpec,
};

use crate::cli::{FloodArgs, MsgKind};

#[derive(Default)]
struct Sent {
    messages: u64,
    bytes: u64,
    errors: u64,
}

pub fn run(args: FloodArgs) -> anyhow::Result<ExitCode> {
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        anyhow::bail!("--rate must be a finite number >= 0, got {}", args.rate);
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        anyhow::bail!("--duration must be a finite number > 0, got {}", args.duration);
    }
    let topic: TopicSpec = match args.kind {
        MsgKind::Scan => topic::SCAN.into(),
        MsgKind::Frame => topic::FRAME.into(),
        MsgKind::Ping => topic::PING.into(),
        MsgKind::Cmd | MsgKind::State => {
            anyhow::bail!("--kind must be scan, frame or ping: a flood is sensor traffic")
        }
    };
    let sensor = Role::Sensor;
    let key = args.key.clone().unwrap_or_else(|| {
        qubot_bus::key(
            &args.common.robot,
            sensor.name(),
            sensor.default_instance(),
            topic.name,
        )
    });
    let bus = if args.as_producer {
        if args.publishers != 1 {
            anyhow::bail!("--as-producer replaces one sensor: --publishers must be 1");
        }
        let parts: Vec<&str> = key.split('/').collect();
        let [_, robot, actor, instance, _] = parts[..] else {
            anyhow::bail!("--as-producer needs a key qubot/<robot>/<actor>/<instance>/<topic>, got {key}");
        };
        let mut common = args.common.clone();
        common.robot = robot.to_owned();
        crate::startup::start(&common, actor, instance)?
    } else {
        crate::startup::start(&args.common, "flood", "flood0")?
    };
    // The robot's pose, for scans that stand in for its sensor's (--as-producer).
    let pose = Arc::new(Mutex::new((0.0, 0.0, 0.0)));
    let state_sub = if args.as_producer {
        let p = pose.clone();
        let states = qubot_bus::key(bus.robot(), Role::Actuator.name(), "*", topic::STATE.name());
        let sub = block_on_current_thread(bus.subscribe(&states, move |sample| {
            if let Ok(m) = qubot_bus::Received::<State>::decode(sample.payload().clone()) {
                *p.lock().unwrap_or_else(|e| e.into_inner()) = (m.body.x, m.body.y, m.body.theta);
            }
        }))?;
        Some(sub)
    } else {
        None
    };
    let pubs = (0..args.publishers)
        .map(|_| {
            let source = if args.as_producer {
                bus.source()
            } else {
                qubot_bus::random_source()
            };
            Flooder::declare(&bus, &key, args.kind, source)
        })
        .collect::<Result<Vec<_>, _>>()
        .context("declaring flood publishers")?;
    if args.wait_subscriber > 0.0
        && !pubs[0].wait_for_subscribers(Duration::from_secs_f64(args.wait_subscriber))
    {
        anyhow::bail!("no subscriber on {key} within {} s", args.wait_subscriber);
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let totals = std::thread::scope(|s| {
        let handles: Vec<_> = pubs
            .iter()
            .map(|p| s.spawn(|| flood_one(p, &args, deadline, &pose)))
            .collect();
        handles.into_iter().fold(Sent::default(), |mut acc, h| {
            // A panicking flood thread is a bug; count its messages as lost rather than abort.
            let one = h.join().unwrap_or_default();
            acc.messages += one.messages;
            acc.bytes += one.bytes;
            acc.errors += one.errors;
            acc
        })
    });
    let elapsed = start.elapsed().as_secs_f64();
    drop(pubs);
    drop(state_sub);
    bus.close();
    let report = serde_json::json!({
        "key": key,
        "kind": topic.name,
        "publishers": args.publishers,
        "sent": totals.messages,
        "bytes": totals.bytes,
        "errors": totals.errors,
        "duration_s": (elapsed * 1e3).round() / 1e3,
        "achieved_rate": (totals.messages as f64 / elapsed.max(1e-9) * 10.0).round() / 10.0,
    });
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

type Pose = Arc<Mutex<(f64, f64, f64)>>;

/// Runs a future to completion on this (non-async) thread: zenoh's declarations resolve on
/// zenoh's own runtime, so a plain executor is enough.
fn block_on_current_thread<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(f))
        .unwrap_or_else(|e| panic!("a current-thread runtime: {e}"))
}

fn flood_one(p: &Flooder, args: &FloodArgs, deadline: Instant, pose: &Pose) -> Sent {
    let mut sent = Sent::default();
    let size = args.size as usize;
    let tick = if args.rate > 0.0 {
        Some(Duration::from_secs_f64(args.burst as f64 / args.rate))
    } else {
        None
    };
    let mut next = Instant::now();
    // The last message goes out alone after the linger pause (see --linger-ms).
    let body = args.count - 1;
    while sent.messages + sent.errors < body && Instant::now() < deadline {
        for _ in 0..args.burst.min(body - sent.messages - sent.errors) {
            sent.record(publish(p, size, pose));
        }
        if let Some(tick) = tick {
            next += tick;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(args.linger_ms));
    sent.record(publish(p, size, pose));
    sent
}

impl Sent {
    fn record(&mut self, r: Result<usize, qubot_bus::PublishError>) {
        match r {
            Ok(n) => {
                self.messages += 1;
                self.bytes += n as u64;
            }
            Err(e) => {
                self.errors += 1;
                tracing::debug!(error = %e, "flood publish failed");
            }
        }
    }
}

/// One flood publisher, typed by what it sends.
enum Flooder {
    Scan(Publisher<Scan>),
    Frame(Publisher<Frame>),
    Ping(Publisher<Ping>),
}

impl Flooder {
    fn declare(bus: &Bus, key: &str, kind: MsgKind, source: ActorId) -> Result<Flooder, BusError> {
        Ok(match kind {
            MsgKind::Scan => Flooder::Scan(bus.publisher_on(key, topic::SCAN, source)?),
            MsgKind::Frame => Flooder::Frame(bus.publisher_on(key, topic::FRAME, source)?),
            _ => Flooder::Ping(bus.publisher_on(key, topic::PING, source)?),
        })
    }

    fn wait_for_subscribers(&self, timeout: Duration) -> bool {
        match self {
            Flooder::Scan(p) => p.wait_for_subscribers(timeout),
            Flooder::Frame(p) => p.wait_for_subscribers(timeout),
            Flooder::Ping(p) => p.wait_for_subscribers(timeout),
        }
    }
}

/// Publishes one synthetic message and returns its payload size.
fn publish(p: &Flooder, size: usize, pose: &Pose) -> Result<usize, qubot_bus::PublishError> {
    let origin = now_ns();
    match p {
        Flooder::Scan(p) => {
            let beams = size / qubot_msg::RANGE_BYTES;
            let (x, y, theta) = *pose.lock().unwrap_or_else(|e| e.into_inner());
            let scan = Scan {
                pose_x: x,
                pose_y: y,
                pose_theta: theta,
                angle_min: -std::f32::consts::PI,
                angle_increment: std::f32::consts::TAU / beams as f32,
                range_max: 8.0,
                beams: beams as u32,
            };
            // Far returns in every direction: a flood must not steer a planner into a wall.
            p.publish(&scan, origin, ranges_len(beams), |out| {
                write_ranges(out, std::iter::repeat(8.0));
            })?;
            Ok(ranges_len(beams))
        }
        Flooder::Frame(p) => {
            let frame = Frame {
                width: size as u32,
                height: 1,
                channels: 1,
            };
            p.publish(&frame, origin, size, |out| out.fill(0x5a))?;
            Ok(size)
        }
        Flooder::Ping(p) => {
            p.publish(&Ping { reply_to: u64::MAX }, origin, size, |out| out.fill(0xa5))?;
            Ok(size)
        }
    }
}
