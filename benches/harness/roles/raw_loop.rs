//! The floor's raw loop (`qubot-bench floor`): the control loop's three processes as plain
//! zenoh, with no actor and no Qubot code on the data path. Each is one peer session with
//! [`super::raw`]'s settings, publishing messages of Qubot's wire sizes at Qubot's rates with
//! the QoS Qubot gives each topic:
//!
//! - sensor: a scan every period, written into a shared-memory loan (as the sensor does);
//!   subscribes to the actuator's state;
//! - planner: answers every scan with a command, from inside zenoh's callback (no planning:
//!   the floor is the messaging); subscribes to the state too, as the planner does (odometry);
//! - actuator: subscribes to commands and publishes a state every tick.
//!
//! Periodic work runs on absolute deadlines with `std::thread::sleep`; a tick woken late runs
//! the latest deadline passed and skips the ones before it, as Qubot's ticker does. Every
//! loop is bounded by `--max-seconds` (and the count that makes), and ends early when the
//! orchestrator closes stdin. The last line printed is a [`LoopReport`].

use std::{
    collections::BTreeMap,
    io::Write,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        mpsc, Arc,
    },
    time::{Duration, Instant},
};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use qubot_bus::QosClass;
use serde::{Deserialize, Serialize};
use zenoh::{pubsub::Subscriber, sample::Sample, Session, Wait};

use super::{
    announce_ready,
    raw::{open_session, publisher_for, wait_matched, Buffers},
    read_stamp, stamp, wait_for_stdin_eof,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    Sensor,
    Planner,
    Actuator,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Sensor, Part::Planner, Part::Actuator];

    pub fn name(self) -> &'static str {
        match self {
            Part::Sensor => "sensor",
            Part::Planner => "planner",
            Part::Actuator => "actuator",
        }
    }
}

/// One process of the raw loop (started by `qubot-bench floor`).
#[derive(Debug, Clone, Args)]
pub struct LoopArgs {
    #[arg(long, value_enum)]
    pub part: Part,
    /// zenoh endpoint this process listens on.
    #[arg(long)]
    pub listen: String,
    /// Endpoints of the loop's processes started before this one (repeatable).
    #[arg(long)]
    pub connect: Vec<String>,
    /// Sensor: scans per second; actuator: states per second; planner: unused.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Wire sizes of a scan, a command and a state (what Qubot puts on the wire).
    #[arg(long)]
    pub scan_bytes: usize,
    #[arg(long)]
    pub cmd_bytes: usize,
    #[arg(long)]
    pub state_bytes: usize,
    /// The sensor's shared-memory pool (the node config's `sensor.shm_pool_mib`).
    #[arg(long, default_value_t = 4 << 20)]
    pub shm_pool_bytes: usize,
    /// The process ends by itself after this long.
    #[arg(long)]
    pub max_seconds: f64,
    /// Second segment of the key expressions.
    #[arg(long, default_value = "floor")]
    pub robot: String,
}

impl LoopArgs {
    fn key(&self, actor: &str, instance: &str, topic: &str) -> String {
        // Qubot's key layout (qubot/<robot>/<actor>/<instance>/<topic>), spelled out here.
        format!("qubot/{}/{actor}/{instance}/{topic}", self.robot)
    }
    fn scan_key(&self) -> String {
        self.key("sensor", "lidar0", "scan")
    }
    fn cmd_key(&self) -> String {
        self.key("planner", "main", "cmd")
    }
    fn state_key(&self) -> String {
        self.key("actuator", "base", "state")
    }
}

/// What a raw loop process prints as its last line.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct LoopReport {
    pub part: String,
    /// Messages this process published, and their rate from the first to the last.
    pub published: u64,
    pub published_hz: f64,
    /// Messages received, and their rate, by topic.
    pub received: BTreeMap<String, u64>,
    pub received_hz: BTreeMap<String, f64>,
    /// Scans published from the heap because the SHM pool had no room.
    pub shm_fallbacks: u64,
}

/// Counts events and when the first and the last happened.
struct Meter {
    t0: Instant,
    n: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

impl Meter {
    fn new() -> Arc<Meter> {
        Arc::new(Meter {
            t0: Instant::now(),
            n: AtomicU64::new(0),
            first_ns: AtomicU64::new(u64::MAX),
            last_ns: AtomicU64::new(0),
        })
    }

    fn hit(&self) {
        let t = self.t0.elapsed().as_nanos() as u64;
        self.first_ns.fetch_min(t, Relaxed);
        self.last_ns.fetch_max(t, Relaxed);
        self.n.fetch_add(1, Relaxed);
    }

    fn count(&self) -> u64 {
        self.n.load(Relaxed)
    }

    /// Events per second between the first and the last (0 for fewer than two).
    fn hz(&self) -> f64 {
        let n = self.count();
        let span = self
            .last_ns
            .load(Relaxed)
            .saturating_sub(self.first_ns.load(Relaxed));
        if n < 2 || span == 0 {
            0.0
        } else {
            (n - 1) as f64 / (span as f64 * 1e-9)
        }
    }
}

/// The end of a process: stdin closed (`stop` set, `done` signalled) or `until` reached.
struct End {
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    until: Instant,
}

impl End {
    fn new(max_seconds: f64) -> anyhow::Result<End> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel();
        let s = stop.clone();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                wait_for_stdin_eof();
                s.store(true, Relaxed);
                let _ = tx.send(());
            })
            .map_err(|e| anyhow!("starting the stdin thread: {e}"))?;
        Ok(End {
            stop,
            done,
            until: Instant::now() + Duration::from_secs_f64(max_seconds),
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// Blocks until the end (no polling: the planner's main thread stays asleep).
    fn wait(&self) {
        let left = self.until.saturating_duration_since(Instant::now());
        let _ = self.done.recv_timeout(left);
    }
}

/// Runs `tick(n)` every `1/rate` s on absolute deadlines until `end`, at most `max` times;
/// returns how many ran.
fn every(rate: f64, end: &End, mut tick: impl FnMut(u64) -> anyhow::Result<()>) -> anyhow::Result<u64> {
    let period_ns = ((1e9 / rate) as u64).max(1);
    let max = (rate * end.until.saturating_duration_since(Instant::now()).as_secs_f64()).ceil() as u64 + 1;
    let t0 = Instant::now();
    let at = |k: u64| t0 + Duration::from_nanos(period_ns.saturating_mul(k));
    let (mut k, mut n) = (0u64, 0u64);
    while n < max && !end.stopped() {
        let due = at(k);
        if due >= end.until {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        tick(n)?;
        n += 1;
        let passed = t0.elapsed().as_nanos() as u64 / period_ns;
        k = (k + 1).max(passed);
    }
    Ok(n)
}

/// A subscriber that reads each message's stamp and counts it.
fn counting(session: &Session, key: String, meter: &Arc<Meter>) -> anyhow::Result<Subscriber<()>> {
    let m = meter.clone();
    session
        .declare_subscriber(key.clone())
        .callback(move |s: Sample| {
            std::hint::black_box(read_stamp(&s.payload().to_bytes()));
            m.hit();
        })
        .wait()
        .map_err(|e| anyhow!("subscribing to {key}: {e}"))
}

/// A heap message of `len` bytes carrying index `i` (the small messages: Qubot sends those
/// below its 1 KiB SHM threshold from the heap too).
fn small(len: usize, i: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    stamp(&mut buf, i);
    buf
}

pub fn run(a: &LoopArgs) -> anyhow::Result<()> {
    let session = open_session(std::slice::from_ref(&a.listen), &a.connect, true)?;
    let end = End::new(a.max_seconds)?;
    let report = match a.part {
        Part::Sensor => sensor(&session, a, &end),
        Part::Planner => planner(&session, a, &end),
        Part::Actuator => actuator(&session, a, &end),
    };
    session
        .close()
        .wait()
        .map_err(|e| anyhow!("closing zenoh: {e}"))?;
    let report = report?;
    println!("{}", serde_json::to_string(&report)?);
    std::io::stdout().flush()?;
    Ok(())
}

fn sensor(session: &Session, a: &LoopArgs, end: &End) -> anyhow::Result<LoopReport> {
    let buffers = Buffers::with_pool(a.shm_pool_bytes)?;
    let states = Meter::new();
    let sub = counting(session, a.state_key(), &states)?;
    let scans = publisher_for(session, a.scan_key(), QosClass::Sensor)?;
    announce_ready();
    wait_matched(&scans, Duration::from_secs(10))?;
    let published = Meter::new();
    let mut fallbacks = 0;
    every(a.rate, end, |i| {
        // The index and the capture instant where Qubot's header is, then one f32 per beam.
        let (msg, shm) = buffers.filled(a.scan_bytes, |buf| {
            stamp(buf, i);
            let now = published.t0.elapsed().as_nanos() as u64;
            buf[8..16].copy_from_slice(&now.to_le_bytes());
            for (b, r) in buf[16..].chunks_exact_mut(4).enumerate() {
                r.copy_from_slice(&(1.0 + b as f32 * 1e-3).to_le_bytes());
            }
        });
        fallbacks += u64::from(!shm);
        scans.put(msg).wait().map_err(|e| anyhow!("put: {e}"))?;
        published.hit();
        Ok(())
    })?;
    drop(sub);
    Ok(LoopReport {
        part: a.part.name().into(),
        published: published.count(),
        published_hz: published.hz(),
        received: [("state".into(), states.count())].into(),
        received_hz: [("state".into(), states.hz())].into(),
        shm_fallbacks: fallbacks,
    })
}

fn planner(session: &Session, a: &LoopArgs, end: &End) -> anyhow::Result<LoopReport> {
    let cmd = publisher_for(session, a.cmd_key(), QosClass::Command)?;
    let (scans, states, published) = (Meter::new(), Meter::new(), Meter::new());
    let state_sub = counting(session, a.state_key(), &states)?;
    let (m, p, len) = (scans.clone(), published.clone(), a.cmd_bytes);
    let scan_key = a.scan_key();
    let scan_sub = session
        .declare_subscriber(scan_key.clone())
        .callback(move |s: Sample| {
            m.hit();
            let i = read_stamp(&s.payload().to_bytes());
            if cmd.put(small(len, i)).wait().is_ok() {
                p.hit();
            }
        })
        .wait()
        .map_err(|e| anyhow!("subscribing to {scan_key}: {e}"))?;
    announce_ready();
    end.wait();
    drop(scan_sub);
    drop(state_sub);
    Ok(LoopReport {
        part: a.part.name().into(),
        published: published.count(),
        published_hz: published.hz(),
        received: [("scan".into(), scans.count()), ("state".into(), states.count())].into(),
        received_hz: [("scan".into(), scans.hz()), ("state".into(), states.hz())].into(),
        shm_fallbacks: 0,
    })
}

fn actuator(session: &Session, a: &LoopArgs, end: &End) -> anyhow::Result<LoopReport> {
    let cmds = Meter::new();
    let sub = counting(session, a.cmd_key(), &cmds)?;
    let state = publisher_for(session, a.state_key(), QosClass::State)?;
    announce_ready();
    wait_matched(&state, Duration::from_secs(10))?;
    let published = Meter::new();
    every(a.rate, end, |i| {
        state
            .put(small(a.state_bytes, i))
            .wait()
            .map_err(|e| anyhow!("put: {e}"))?;
        published.hit();
        Ok(())
    })?;
    drop(sub);
    Ok(LoopReport {
        part: a.part.name().into(),
        published: published.count(),
        published_hz: published.hz(),
        received: [("cmd".into(), cmds.count())].into(),
        received_hz: [("cmd".into(), cmds.hz())].into(),
        shm_fallbacks: 0,
    })
}
