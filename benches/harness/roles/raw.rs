//! Raw zenoh: what an application gets from zenoh alone. The echo re-publishes each sample
//! from inside zenoh's callback (the received buffer, no copy); the ping blocks on a FIFO
//! subscriber. Same session config, QoS and SHM pool as the Qubot side. `raw-handoff` runs
//! the echo's and the sink's work on a thread of their own instead (see `handoff`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::anyhow;
use zenoh::{
    bytes::ZBytes,
    pubsub::Publisher,
    shm::{GarbageCollect, PosixShmProviderBackend, ShmProvider, ShmProviderBuilder},
    Session, Wait,
};

use super::{
    announce_ready,
    handoff::Handoff,
    measure::{publish_loop, SinkMeter},
    print_report, read_stamp, stamp, wait_for_stdin_eof, Impl, Kind, PingWindow, RoleArgs, RoleReport,
    Transport, PING_KEY, PING_TOPIC, PONG_KEY, PONG_TOPIC,
};
use crate::alloc;

pub fn run(args: &RoleArgs) -> anyhow::Result<()> {
    let session = open(args)?;
    let handoff = args.imp == Impl::RawHandoff;
    let result = match args.kind {
        Kind::Echo => echo(&session, handoff),
        Kind::Ping => ping(&session, args),
        Kind::Sink => sink(&session, args, handoff),
        Kind::Source => source(&session, args),
    };
    session
        .close()
        .wait()
        .map_err(|e| anyhow!("closing zenoh: {e}"))?;
    result
}

/// The same session settings `qubot_bus::BusConfig` makes: peer, no multicast scouting, no
/// implicit SHM copies, SHM on or off by transport.
fn open(args: &RoleArgs) -> anyhow::Result<Session> {
    let endpoint = std::slice::from_ref(&args.endpoint);
    let shm = args.transport == Transport::Shm;
    if args.is_server() {
        open_session(endpoint, &[], shm)
    } else {
        open_session(&[], endpoint, shm)
    }
}

/// [`open`]'s settings with any endpoints: what the floor's raw loop opens too.
pub(crate) fn open_session(listen: &[String], connect: &[String], shm: bool) -> anyhow::Result<Session> {
    let mut c = zenoh::Config::default();
    let mut set = |k: &str, v: &str| c.insert_json5(k, v).map_err(|e| anyhow!("zenoh config {k}: {e}"));
    set("mode", "\"peer\"")?;
    set("scouting/multicast/enabled", "false")?;
    set("transport/shared_memory/transport_optimization/enabled", "false")?;
    set(qubot_bus::SHM_TRANSPORT_KEY, if shm { "true" } else { "false" })?;
    if !listen.is_empty() {
        set("listen/endpoints", &serde_json::json!(listen).to_string())?;
    }
    if !connect.is_empty() {
        set("connect/endpoints", &serde_json::json!(connect).to_string())?;
    }
    zenoh::open(c).wait().map_err(|e| anyhow!("opening zenoh: {e}"))
}

fn publisher(
    session: &Session,
    key: &'static str,
    topic: qubot_bus::Topic<qubot_msg::Ping>,
) -> anyhow::Result<Publisher<'static>> {
    publisher_for(session, key.to_owned(), topic.qos())
}

/// A publisher with the zenoh settings Qubot gives QoS class `class`.
pub(crate) fn publisher_for(
    session: &Session,
    key: String,
    class: qubot_bus::QosClass,
) -> anyhow::Result<Publisher<'static>> {
    let q = qubot_bus::zenoh_qos(class);
    session
        .declare_publisher(key.clone())
        .reliability(q.reliability)
        .congestion_control(q.congestion)
        .priority(q.priority)
        .express(q.express)
        .wait()
        .map_err(|e| anyhow!("declaring publisher on {key}: {e}"))
}

/// Buffers for outgoing messages: loaned from SHM like Qubot's publisher, heap otherwise
/// (or when the pool is exhausted, as Qubot does).
pub(crate) struct Buffers {
    provider: Option<ShmProvider<PosixShmProviderBackend>>,
}

impl Buffers {
    fn new(args: &RoleArgs) -> anyhow::Result<Buffers> {
        Buffers::with_pool(args.shm_pool_bytes())
    }

    /// A pool of `bytes` (0: every message from the heap).
    pub(crate) fn with_pool(bytes: usize) -> anyhow::Result<Buffers> {
        let provider = match bytes {
            0 => None,
            n => Some(
                ShmProviderBuilder::default_backend(n)
                    .wait()
                    .map_err(|e| anyhow!("creating the SHM pool: {e}"))?,
            ),
        };
        Ok(Buffers { provider })
    }

    /// A message of `len` bytes carrying index `i`.
    fn message(&self, len: usize, i: u64) -> ZBytes {
        self.filled(len, |buf| stamp(buf, i)).0
    }

    /// A message of `len` bytes written in place by `fill`; true when it is in SHM.
    pub(crate) fn filled(&self, len: usize, fill: impl FnOnce(&mut [u8])) -> (ZBytes, bool) {
        if let Some(p) = &self.provider {
            if let Ok(mut buf) = p.alloc(len).with_policy::<GarbageCollect>().wait() {
                fill(&mut buf);
                return (ZBytes::from(buf), true);
            }
        }
        let mut buf = vec![0u8; len];
        fill(&mut buf);
        (ZBytes::from(buf), false)
    }
}

pub(crate) fn wait_matched(p: &Publisher<'_>, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if p.matching_status().wait().map(|s| s.matching()).unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(anyhow!("no subscriber matched within {within:?}"))
}

fn echo(session: &Session, handoff: bool) -> anyhow::Result<()> {
    let pong = publisher(session, PONG_KEY, PONG_TOPIC)?;
    let answer = move |payload: ZBytes| {
        let _ = pong.put(payload).wait();
    };
    let subscribe = session.declare_subscriber(PING_KEY);
    let (sub, worker) = if handoff {
        let worker = Handoff::spawn(answer);
        let tx = worker.sender();
        let sub = subscribe.callback(move |s| tx.send(s.payload().clone())).wait();
        (sub, Some(worker))
    } else {
        (
            subscribe.callback(move |s| answer(s.payload().clone())).wait(),
            None,
        )
    };
    let sub = sub.map_err(|e| anyhow!("subscribing: {e}"))?;
    announce_ready();
    wait_for_stdin_eof();
    drop(sub);
    if let Some(w) = worker {
        w.stop();
    }
    Ok(())
}

fn ping(session: &Session, args: &RoleArgs) -> anyhow::Result<()> {
    let buffers = Buffers::new(args)?;
    let sub = session
        .declare_subscriber(PONG_KEY)
        .wait()
        .map_err(|e| anyhow!("subscribing: {e}"))?;
    let p = publisher(session, PING_KEY, PING_TOPIC)?;
    wait_matched(&p, Duration::from_secs(10))?;
    let mut window = PingWindow::new(args);
    let mut half_rtt_us = Vec::with_capacity(args.count as usize);
    let mut timeouts = 0;
    let mut i = 0;
    while !window.over(i, args) {
        let t0 = Instant::now();
        p.put(buffers.message(args.payload, i))
            .wait()
            .map_err(|e| anyhow!("put: {e}"))?;
        // Wait for this ping's echo; an answer to an earlier, timed-out ping is skipped.
        let answered = loop {
            match sub.recv_timeout(Duration::from_secs(1)) {
                Ok(Some(s)) if read_stamp(&s.payload().to_bytes()) == i => break true,
                Ok(Some(_)) => continue,
                _ => break false,
            }
        };
        if !answered {
            timeouts += 1;
            continue;
        }
        if i >= args.warmup {
            half_rtt_us.push(t0.elapsed().as_secs_f64() * 1e6 / 2.0);
        }
        i += 1;
    }
    print_report(&RoleReport {
        half_rtt_us,
        timeouts,
        allocator: alloc::name().into(),
        ..Default::default()
    })
}

/// Counts in zenoh's callback: the cheapest possible consumer (or, handed off, on a thread
/// of its own).
fn sink(session: &Session, args: &RoleArgs, handoff: bool) -> anyhow::Result<()> {
    let meter = Arc::new(SinkMeter::default());
    let m = meter.clone();
    let (warmup, total) = (args.warmup, args.warmup + args.count);
    let subscribe = session.declare_subscriber(PING_KEY);
    let (sub, worker) = if handoff {
        let worker = Handoff::spawn(move |payload: ZBytes| {
            std::hint::black_box(payload.len());
            m.on_message(warmup, total);
        });
        let tx = worker.sender();
        let sub = subscribe.callback(move |s| tx.send(s.payload().clone())).wait();
        (sub, Some(worker))
    } else {
        let sub = subscribe
            .callback(move |s| {
                std::hint::black_box(s.payload().len());
                m.on_message(warmup, total);
            })
            .wait();
        (sub, None)
    };
    let sub = sub.map_err(|e| anyhow!("subscribing: {e}"))?;
    announce_ready();
    let report = meter.wait_done(args);
    drop(sub);
    if let Some(w) = worker {
        w.stop();
    }
    print_report(&report)
}

fn source(session: &Session, args: &RoleArgs) -> anyhow::Result<()> {
    let buffers = Buffers::new(args)?;
    let p = publisher(session, PING_KEY, PING_TOPIC)?;
    wait_matched(&p, Duration::from_secs(10))?;
    let report = publish_loop(args, |i| {
        p.put(buffers.message(args.payload, i))
            .wait()
            .map_err(|e| anyhow!("put: {e}"))
    })?;
    // Let the transport flush the tail before the session closes.
    std::thread::sleep(Duration::from_millis(300));
    print_report(&report)
}
