//! Qubot: the same roles through every layer an actor sees — header and codec, the bus's
//! publisher (SHM loan), the zenoh→actix bridge (decode, bounded inbox, mailbox), metrics.

use std::{
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use actix::{Actor, ActorContext, AsyncContext, Context, StreamHandler, System};
use anyhow::anyhow;
use qubot_bus::{Bus, BusConfig, Publisher};
use qubot_msg::{now_ns, Ping};
use qubot_runtime::{subscribe, Deliver, DropPolicy, InboxOptions, Subscription};

use super::{
    announce_ready,
    measure::{publish_loop, SinkMeter},
    print_report, read_stamp, stamp, wait_for_stdin_eof, Impl, Kind, PingWindow, RoleArgs, RoleReport,
    Transport, PING_KEY, PING_TOPIC, PONG_KEY, PONG_TOPIC,
};
use crate::alloc;

/// Inbox of the echo and sink actors: deep enough that a burst is queued, not dropped.
const INBOX: InboxOptions = InboxOptions {
    capacity: 4096,
    policy: DropPolicy::Newest,
};

pub fn run(args: &RoleArgs) -> anyhow::Result<()> {
    install_metrics()?;
    let bus = Bus::open(&bus_config(args)).map_err(|e| anyhow!("opening the bus: {e}"))?;
    let result = match args.kind {
        Kind::Echo => echo(&bus),
        Kind::Ping => ping(&bus, args),
        Kind::Sink => sink(&bus, args),
        Kind::Source => source(&bus, args),
    };
    bus.close();
    result
}

/// The recorder every Qubot process has (the same exporter configuration), drained at both
/// ends of a measurement as a scrape would (samples wait in memory until then).
fn install_metrics() -> anyhow::Result<()> {
    let handle = qubot_bus::telemetry::exporter()
        .map_err(|e| anyhow!("histogram buckets: {e}"))?
        .install_recorder()
        .map_err(|e| anyhow!("installing the metrics recorder: {e}"))?;
    let _ = crate::alloc::SETTLE.set(Box::new(move || handle.run_upkeep()));
    qubot_bus::telemetry::describe_all();
    Ok(())
}

fn bus_config(args: &RoleArgs) -> BusConfig {
    let actor = if args.is_server() {
        "bench-server"
    } else {
        "bench-client"
    };
    let mut c = BusConfig::new("bench", actor, "0");
    let endpoint = [args.endpoint.clone()];
    c = if args.is_server() {
        c.with_listen(endpoint)
    } else {
        c.with_connect(endpoint)
    };
    if args.imp == Impl::QubotLatency {
        c = c.with_low_latency();
    }
    c.shm_pool_bytes = args.shm_pool_bytes();
    match args.transport {
        // Every message through SHM, as the raw side does: the comparison is like for like.
        Transport::Shm => c.shm_threshold_bytes = 0,
        Transport::Tcp => c = c.without_shm(),
    }
    c
}

fn publish(p: &Publisher<Ping>, payload: usize, i: u64) -> anyhow::Result<()> {
    p.publish(&Ping { reply_to: u64::MAX }, now_ns(), payload, |buf| {
        stamp(buf, i)
    })
    .map(|_| ())
    .map_err(|e| anyhow!("publish: {e}"))
}

/// Runs `start` in a new actix System, then the System until something stops it. The
/// subscription is dropped after the System returns: zenoh's destructors block.
fn run_system(start: impl std::future::Future<Output = anyhow::Result<Subscription>>) -> anyhow::Result<()> {
    let sys = System::new();
    let sub = sys.block_on(start)?;
    sys.run().map_err(|e| anyhow!("actix: {e}"))?;
    drop(sub);
    Ok(())
}

/// Runs `wait` on a thread and stops the System (once armed) when it returns.
struct Stopper(Arc<Mutex<Option<System>>>);

fn stop_after<T: Send + 'static>(wait: impl FnOnce() -> T + Send + 'static) -> (Stopper, JoinHandle<T>) {
    let slot: Arc<Mutex<Option<System>>> = Arc::default();
    let s = slot.clone();
    let handle = std::thread::spawn(move || {
        let out = wait();
        loop {
            if let Some(sys) = s.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                sys.stop();
                return out;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (Stopper(slot), handle)
}

impl Stopper {
    fn arm(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(System::current());
    }
}

// ---- echo: forwards every ping as it is (zero copy) -------------------------------------

struct Echo {
    pong: Publisher<Ping>,
}

impl Actor for Echo {
    type Context = Context<Self>;
}

impl StreamHandler<Deliver<Ping>> for Echo {
    fn handle(&mut self, msg: Deliver<Ping>, ctx: &mut Context<Self>) {
        msg.drain(self, ctx, |a, m, _| {
            let _ = a.pong.forward(&m);
        });
    }
}

fn echo(bus: &Bus) -> anyhow::Result<()> {
    let pong = bus
        .publisher_on(PONG_KEY, PONG_TOPIC, bus.source())
        .map_err(|e| anyhow!("{e}"))?;
    let (stopper, _) = stop_after(wait_for_stdin_eof);
    run_system(async move {
        let (sub, pings) = subscribe(bus, PING_KEY, PING_TOPIC, INBOX)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Echo::create(|ctx| {
            ctx.add_stream(pings);
            Echo { pong }
        });
        stopper.arm();
        announce_ready();
        Ok(sub)
    })
}

// ---- ping: one message in flight, timed from publish to the echo's arrival --------------

struct Pinger {
    p: Publisher<Ping>,
    args: RoleArgs,
    i: u64,
    sent_at: Instant,
    half_rtt_us: Vec<f64>,
    timeouts: u64,
    window: PingWindow,
    out: Arc<Mutex<Option<RoleReport>>>,
}

impl Pinger {
    fn send(&mut self) {
        self.sent_at = Instant::now();
        if let Err(e) = publish(&self.p, self.args.payload, self.i) {
            tracing_free_warn(&e);
        }
    }

    fn finish(&mut self, ctx: &mut Context<Self>) {
        *self.out.lock().unwrap_or_else(|p| p.into_inner()) = Some(RoleReport {
            half_rtt_us: std::mem::take(&mut self.half_rtt_us),
            timeouts: self.timeouts,
            allocator: alloc::name().into(),
            ..Default::default()
        });
        ctx.stop();
        System::current().stop();
    }
}

fn tracing_free_warn(e: &anyhow::Error) {
    eprintln!("qubot-bench: {e:#}");
}

impl Actor for Pinger {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        // A ping whose echo never comes (lost while the route was forming) is sent again.
        ctx.run_interval(Duration::from_millis(100), |a, ctx| {
            if a.window.over(a.i, &a.args) {
                a.finish(ctx);
            } else if a.sent_at.elapsed() > Duration::from_secs(1) {
                a.timeouts += 1;
                a.send();
            }
        });
        self.send();
    }
}

impl StreamHandler<Deliver<Ping>> for Pinger {
    fn handle(&mut self, msg: Deliver<Ping>, ctx: &mut Context<Self>) {
        msg.drain(self, ctx, |a, m, ctx| {
            if read_stamp(m.payload()) != a.i {
                return;
            }
            let half = a.sent_at.elapsed().as_secs_f64() * 1e6 / 2.0;
            if a.i >= a.args.warmup {
                a.half_rtt_us.push(half);
            }
            a.i += 1;
            if a.window.over(a.i, &a.args) {
                a.finish(ctx);
            } else {
                a.send();
            }
        });
    }
}

fn ping(bus: &Bus, args: &RoleArgs) -> anyhow::Result<()> {
    let p = bus
        .publisher_on(PING_KEY, PING_TOPIC, bus.source())
        .map_err(|e| anyhow!("{e}"))?;
    if !p.wait_for_subscribers(Duration::from_secs(10)) {
        return Err(anyhow!("no echo matched within 10 s"));
    }
    let out: Arc<Mutex<Option<RoleReport>>> = Arc::default();
    let o = out.clone();
    let args = args.clone();
    run_system(async move {
        let pinger = Pinger {
            p,
            i: 0,
            sent_at: Instant::now(),
            half_rtt_us: Vec::with_capacity(args.count as usize),
            timeouts: 0,
            window: PingWindow::new(&args),
            args,
            out: o,
        };
        // Subscribed before the first ping goes out.
        let (sub, pongs) = subscribe(bus, PONG_KEY, PONG_TOPIC, INBOX)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Pinger::create(|ctx| {
            ctx.add_stream(pongs);
            pinger
        });
        Ok(sub)
    })?;
    let report = out
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| anyhow!("ping ended without a report"))?;
    print_report(&report)
}

// ---- sink: counts what the actor handles ------------------------------------------------

struct Sink {
    meter: Arc<SinkMeter>,
    warmup: u64,
    total: u64,
}

impl Actor for Sink {
    type Context = Context<Self>;
}

impl StreamHandler<Deliver<Ping>> for Sink {
    fn handle(&mut self, msg: Deliver<Ping>, ctx: &mut Context<Self>) {
        msg.drain(self, ctx, |a, m, _| {
            // As the raw sink reads `payload().len()`: the length, not the bytes.
            std::hint::black_box(m.payload_len());
            a.meter.on_message(a.warmup, a.total);
        });
    }
}

fn sink(bus: &Bus, args: &RoleArgs) -> anyhow::Result<()> {
    let meter = Arc::new(SinkMeter::default());
    let (m, a) = (meter.clone(), args.clone());
    let (stopper, waiter) = stop_after(move || m.wait_done(&a));
    let (warmup, total) = (args.warmup, args.warmup + args.count);
    run_system(async move {
        let (sub, pings) = subscribe(bus, PING_KEY, PING_TOPIC, INBOX)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Sink::create(|ctx| {
            ctx.add_stream(pings);
            Sink { meter, warmup, total }
        });
        stopper.arm();
        announce_ready();
        Ok(sub)
    })?;
    let report = waiter.join().map_err(|_| anyhow!("sink waiter panicked"))?;
    print_report(&report)
}

// ---- source: publishes from a plain thread, as the sensor's capture loop would ------------

fn source(bus: &Bus, args: &RoleArgs) -> anyhow::Result<()> {
    let p = bus
        .publisher_on(PING_KEY, PING_TOPIC, bus.source())
        .map_err(|e| anyhow!("{e}"))?;
    if !p.wait_for_subscribers(Duration::from_secs(10)) {
        return Err(anyhow!("no sink matched within 10 s"));
    }
    let report = publish_loop(args, |i| publish(&p, args.payload, i))?;
    std::thread::sleep(Duration::from_millis(300));
    print_report(&report)
}
