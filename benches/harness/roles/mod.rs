//! The processes a measurement is made of. Each run is a pair: a server (`echo` or `sink`)
//! that listens, and a client (`ping` or `source`) that connects to it. Both sides of a pair
//! are either raw zenoh or Qubot, with the same transport, payload, QoS and SHM pool.

mod handoff;
mod measure;
pub mod qubot;
pub mod raw;
pub mod raw_loop;

use std::{
    io::{BufRead, Write},
    time::{Duration, Instant},
};

use clap::{Args, ValueEnum};
use qubot_msg::{topic, Ping, Topic};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Shared memory between the two processes (zenoh's SHM, every message loaned).
    Shm,
    /// TCP over loopback, SHM disabled.
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Impl {
    Raw,
    /// Raw zenoh with the echo's and the sink's work handed to a thread of their own: what
    /// any consumer that does not run inside zenoh's callback pays, Qubot's actors included.
    #[serde(rename = "raw-handoff")]
    RawHandoff,
    Qubot,
    /// Qubot with the node config's `latency` profile (`BusConfig::with_low_latency`).
    #[serde(rename = "qubot-latency")]
    QubotLatency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Echo,
    Ping,
    Sink,
    Source,
}

/// One process's part in a measurement (the orchestrator spawns `qubot-bench role ...`).
#[derive(Debug, Clone, Args)]
pub struct RoleArgs {
    #[arg(long = "impl", value_enum)]
    pub imp: Impl,
    #[arg(long, value_enum)]
    pub kind: Kind,
    #[arg(long, value_enum)]
    pub transport: Transport,
    /// Application payload per message (Qubot adds its header and body on top).
    #[arg(long)]
    pub payload: usize,
    /// zenoh endpoint: the server listens on it, the client connects to it.
    #[arg(long)]
    pub endpoint: String,
    /// Messages (pings, or published messages) after the warm-up.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Messages before measuring starts.
    #[arg(long, default_value_t = 100)]
    pub warmup: u64,
    /// Source only: messages per second, 0 for as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Time budget of the measurement, seconds (ping: counted from the end of the warm-up,
    /// and stretched until `MIN_PING_SAMPLES` were taken; see `PingWindow`).
    #[arg(long, default_value_t = 20.0)]
    pub max_seconds: f64,
}

impl RoleArgs {
    pub fn is_server(&self) -> bool {
        matches!(self.kind, Kind::Echo | Kind::Sink)
    }

    /// Pool size for this payload: room for 64 messages in flight (32 ms at the allocation
    /// runs' 2000/s), at most 64 MiB. A subscriber that queues holds its loans until its actor
    /// runs: with room for 8 (4 ms), one scheduling hiccup on a shared machine emptied the
    /// pool and the publisher lost and re-allocated messages, which the allocation figures
    /// then counted against Qubot. Raw and Qubot get the same pool.
    pub fn shm_pool_bytes(&self) -> usize {
        match self.transport {
            Transport::Shm => ((self.payload + 4096) * 64).clamp(1 << 20, 64 << 20),
            Transport::Tcp => 0,
        }
    }

    pub fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs_f64(self.max_seconds)
    }
}

/// A ping run that ends on a clock alone can end with no sample at all: on a loaded machine
/// the warm-up of a 4 MiB case, or one lost ping, can spend the whole budget. So the budget
/// counts from the end of the warm-up, and runs past it until this many samples were taken.
pub const MIN_PING_SAMPLES: usize = 20;
/// How far past its budget a phase (warm-up, or measuring) may run before the ping gives up.
const PING_GRACE: Duration = Duration::from_secs(10);

/// When a ping client stops: all pings answered, or its budget spent with enough samples,
/// or the grace past the budget spent (then the report says how few it has).
pub struct PingWindow {
    budget: Duration,
    soft: Instant,
    measuring: bool,
}

impl PingWindow {
    pub fn new(args: &RoleArgs) -> PingWindow {
        let budget = Duration::from_secs_f64(args.max_seconds);
        PingWindow {
            budget,
            soft: Instant::now() + budget,
            measuring: false,
        }
    }

    /// Called before every ping with the number of pings answered so far.
    pub fn over(&mut self, answered: u64, args: &RoleArgs) -> bool {
        if answered >= args.warmup + args.count {
            return true;
        }
        let now = Instant::now();
        if !self.measuring && answered >= args.warmup {
            self.measuring = true;
            self.soft = now + self.budget;
        }
        let samples = answered.saturating_sub(args.warmup) as usize;
        now >= self.soft + PING_GRACE || (self.measuring && now >= self.soft && samples >= MIN_PING_SAMPLES)
    }

    /// The longest a ping client may run: both phases at budget plus grace.
    pub fn limit(args: &RoleArgs) -> Duration {
        2 * (Duration::from_secs_f64(args.max_seconds) + PING_GRACE)
    }
}

/// Requests travel here; an echo answers on `PONG_KEY`.
pub const PING_KEY: &str = "qubot/bench/ping/0/ping";
pub const PONG_KEY: &str = "qubot/bench/echo/0/pong";
/// Both implementations use the QoS Qubot gives these topics.
pub const PING_TOPIC: Topic<Ping> = topic::PING;
pub const PONG_TOPIC: Topic<Ping> = topic::PONG;

/// What a role prints as its last line.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RoleReport {
    /// Ping: half round trips of the measured pings, microseconds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub half_rtt_us: Vec<f64>,
    /// Ping: pings resent after no answer within a second.
    #[serde(default)]
    pub timeouts: u64,
    /// Sink: messages received; source: messages published.
    #[serde(default)]
    pub messages: u64,
    /// Seconds from the first measured message to the last.
    #[serde(default)]
    pub seconds: f64,
    /// Allocation calls per measured message, whole process.
    #[serde(default)]
    pub allocs_per_msg: Option<f64>,
    /// CPU time (user + system, whole process) per measured message, microseconds.
    #[serde(default)]
    pub cpu_us_per_msg: Option<f64>,
    /// Heap bytes held at the last measured message beyond those held at the first.
    #[serde(default)]
    pub live_growth_bytes: i64,
    pub allocator: String,
}

/// Servers say they are ready once subscribed, so the client never publishes into the void.
pub fn announce_ready() {
    println!("ready");
    let _ = std::io::stdout().flush();
}

/// Servers run until the orchestrator closes their stdin.
pub fn wait_for_stdin_eof() {
    let stdin = std::io::stdin();
    let mut line = String::new();
    while matches!(stdin.lock().read_line(&mut line), Ok(n) if n > 0) {
        line.clear();
    }
}

pub fn print_report(r: &RoleReport) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(r)?);
    std::io::stdout().flush()?;
    Ok(())
}

/// The first 8 bytes of every payload carry the message's index, so an echo is matched to
/// its ping without any header (raw zenoh has none).
pub fn stamp(buf: &mut [u8], i: u64) {
    let n = buf.len().min(8);
    buf[..n].copy_from_slice(&i.to_le_bytes()[..n]);
}

pub fn read_stamp(buf: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = buf.len().min(8);
    b[..n].copy_from_slice(&buf[..n]);
    u64::from_le_bytes(b)
}

pub fn run(args: RoleArgs) -> anyhow::Result<()> {
    match args.imp {
        Impl::Raw | Impl::RawHandoff => raw::run(&args),
        Impl::Qubot | Impl::QubotLatency => qubot::run(&args),
    }
}
