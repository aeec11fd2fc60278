//! Allocations Qubot's receive path adds per message, counted exactly in one process.
//!
//! The cross-process heap test (`benches/tests/heap.rs`) compares whole processes, and there
//! zenoh's own figure moves with how its batches happen to fall (from 3.4 to 5.0 allocations
//! per message between runs on one machine), which hides a few hundredths either way. Here
//! the publisher and the subscriber share one session, and zenoh hands every message to the
//! subscriber inside the `put`, on the publishing thread: once to a raw zenoh callback that
//! only reads the payload, once to Qubot's bridge (header decode, source and sequence
//! accounting, bounded inbox, waking the actor), whose actor thread then drains and handles
//! it. The counts are per thread, the publishing thread's and the actor's: zenoh's runtime
//! threads do the same timer work in both runs, proportional to time rather than messages,
//! and a process-wide count would charge it to whichever run is slower.
//!
//! Budget: 0.05 per message (issue 15). The exporter's histogram storage takes one 64-sample
//! block per histogram every 64 records, 2/64 for the message age and the handler duration;
//! nothing else on the path may allocate.

use std::{
    alloc::System,
    hint::black_box,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix::{Actor, AsyncContext, Context, StreamHandler};
use qubot_alloc::{thread_allocs, Counting};
use qubot_bus::{topic, Bus, BusConfig, Publisher};
use qubot_msg::{now_ns, Ping};
use qubot_runtime::{subscribe, Deliver, DropPolicy, InboxOptions};

#[global_allocator]
static ALLOC: Counting<System> = Counting(System);

const WARMUP: u64 = 256;
/// A whole number of histogram blocks (64 samples each).
const COUNT: u64 = 64 * 64;
const BUDGET: f64 = 0.05;

/// Publishes one message at a time and waits (bounded) until `handled` has counted it, so
/// every message takes the same path; returns this thread's allocations per message over the
/// COUNT messages after the warm-up (the publish and, inside it, the subscriber's callback).
/// One more message follows them, so the actor's own second mark is reached too.
fn lockstep(p: &Publisher<Ping>, payload: usize, handled: &AtomicU64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut mark, mut end) = (0, 0);
    for i in 0..=WARMUP + COUNT {
        if i == WARMUP {
            mark = thread_allocs();
        }
        if i == WARMUP + COUNT {
            end = thread_allocs();
        }
        p.publish(&Ping { reply_to: u64::MAX }, now_ns(), payload, |b| b.fill(7))
            .expect("publish");
        while handled.load(Ordering::Acquire) <= i {
            assert!(
                Instant::now() < deadline,
                "message {i} was not handled within 60 s"
            );
            std::thread::yield_now();
        }
    }
    (end - mark) as f64 / COUNT as f64
}

/// Awaits a future on a throwaway current-thread runtime (declaring a subscriber).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn raw(bus: &Bus, payload: usize) -> f64 {
    let key = "qubot/heaptest/raw/0/ping";
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let sub = block_on(bus.subscribe(key, move |s| {
        black_box(s.payload().len());
        h.fetch_add(1, Ordering::Release);
    }))
    .expect("raw subscriber");
    let p = bus
        .publisher_on(key, topic::PING, bus.source())
        .expect("publisher");
    assert!(p.wait_for_subscribers(Duration::from_secs(10)));
    let per_msg = lockstep(&p, payload, &handled);
    drop(sub);
    per_msg
}

/// Counts handled messages, and its own thread's allocations over the measured ones.
struct Counter {
    handled: Arc<AtomicU64>,
    window_allocs: Arc<AtomicU64>,
    mark: u64,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl StreamHandler<Deliver<Ping>> for Counter {
    fn handle(&mut self, msg: Deliver<Ping>, ctx: &mut Context<Self>) {
        msg.drain(self, ctx, |a, m, _| {
            black_box(m.payload().len());
            // Released before it is counted, as the raw callback's sample is: the publisher's
            // next loan finds the pool in the same state on both sides.
            drop(m);
            // Marks at the same point of two handlers COUNT messages apart.
            let n = a.handled.load(Ordering::Relaxed);
            if n == WARMUP {
                a.mark = thread_allocs();
            } else if n == WARMUP + COUNT {
                a.window_allocs.store(thread_allocs() - a.mark, Ordering::Relaxed);
            }
            a.handled.fetch_add(1, Ordering::Release);
        });
    }
}

fn qubot(bus: &Arc<Bus>, payload: usize) -> f64 {
    let key = "qubot/heaptest/qubot/0/ping";
    let handled = Arc::new(AtomicU64::new(0));
    let window_allocs = Arc::new(AtomicU64::new(u64::MAX));
    let (tx, rx) = std::sync::mpsc::channel();
    let (b, h, w) = (bus.clone(), handled.clone(), window_allocs.clone());
    let actor = std::thread::spawn(move || {
        let sys = actix::System::new();
        let sub = sys.block_on(async move {
            let opts = InboxOptions::new(64, DropPolicy::Newest);
            let (sub, stream) = subscribe(&b, key, topic::PING, opts).await.expect("subscribe");
            Counter::create(|ctx| {
                ctx.add_stream(stream);
                Counter {
                    handled: h,
                    window_allocs: w,
                    mark: 0,
                }
            });
            sub
        });
        tx.send(actix::System::current())
            .expect("handing over the System");
        sys.run().expect("actix");
        // zenoh's destructors block: dropped outside the System.
        drop(sub);
    });
    let system = rx.recv().expect("the actor's System");
    let p = bus
        .publisher_on(key, topic::PING, bus.source())
        .expect("publisher");
    assert!(p.wait_for_subscribers(Duration::from_secs(10)));
    let on_publisher = lockstep(&p, payload, &handled);
    system.stop();
    actor.join().expect("actor thread");
    let on_actor = window_allocs.load(Ordering::Relaxed);
    assert_ne!(on_actor, u64::MAX, "the actor never reached its second mark");
    on_publisher + on_actor as f64 / COUNT as f64
}

/// A bus of its own for each run: every run starts with a fresh SHM pool, so the
/// provider's free list and garbage collection go the same way for raw and Qubot.
fn fresh_bus() -> Arc<Bus> {
    let mut cfg = BusConfig::new("heaptest", "sub", "0");
    // Every payload through a shared-memory loan, as the pipeline's bulk topics travel.
    cfg.shm_threshold_bytes = 0;
    Arc::new(Bus::open(&cfg).expect("bus"))
}

fn close(bus: Arc<Bus>) {
    Arc::try_unwrap(bus).ok().expect("bus still shared").close();
}

#[test]
fn the_receive_path_adds_under_a_twentieth_of_an_allocation_per_message() {
    qubot_bus::telemetry::exporter()
        .expect("buckets")
        .install_recorder()
        .expect("recorder");
    let mut report = Vec::new();
    for payload in [64, 64 << 10] {
        let bus = fresh_bus();
        let r = raw(&bus, payload);
        close(bus);
        let bus = fresh_bus();
        let q = qubot(&bus, payload);
        close(bus);
        eprintln!(
            "{payload} B: raw zenoh {r:.4} allocations per message, Qubot {q:.4}, extra {:.4}",
            q - r
        );
        report.push((payload, r, q));
    }
    for (payload, r, q) in report {
        assert!(
            q - r <= BUDGET,
            "{payload} B: Qubot's receive path adds {:.4} allocations per message \
             (raw {r:.4}, Qubot {q:.4}); budget {BUDGET}",
            q - r
        );
    }
}
