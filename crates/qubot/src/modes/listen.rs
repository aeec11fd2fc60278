//! `qubot listen`: a probe actor. Subscribes through the same bridge and inbox as the real
//! actors and reports, per message, whether its payload arrived in shared memory in place.

use std::{process::ExitCode, time::Duration};

use actix::{Actor, AsyncContext, Context, StreamHandler};
use qubot_bus::Received;
use qubot_bus::{Bus, BusError};
use qubot_msg::{now_ns, topic, Body, Topic};
use qubot_runtime::{shutdown_signal, subscribe, Deliver, InboxOptions, Subscription};
use tokio::sync::oneshot;

use crate::cli::{ListenArgs, MsgKind};

struct Listener {
    target: u64,
    handled: u64,
    delay: Duration,
    print: bool,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Listener {
    type Context = Context<Self>;
}

impl Listener {
    fn on_message<B: Body>(&mut self, m: Received<B>) {
        let recv_ns = now_ns();
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        self.handled += 1;
        if self.print {
            let s = m.header.stamp;
            let line = serde_json::json!({
                "seq": s.seq,
                "source": format!("{:016x}", s.source.0),
                "kind": m.header.kind.as_str(),
                "wire_len": m.wire_len(),
                "payload_len": m.payload_len(),
                "shm": m.is_shm(),
                "payload_borrows_shm": m.payload_borrows_shm(),
                "fragmented": m.fragmented(),
                "age_us": recv_ns.saturating_sub(s.publish_ns) / 1000,
                // Capture, publish and receive stamps (ns since the epoch): what an
                // independent observer reads a producer's period and jitter from.
                "origin_ns": s.origin_ns,
                "publish_ns": s.publish_ns,
                "recv_ns": recv_ns,
            });
            println!("{line}");
        }
        if self.target > 0 && self.handled >= self.target {
            if let Some(tx) = self.done.take() {
                let _ = tx.send(());
            }
        }
    }
}

impl<B: Body + Send + 'static> StreamHandler<Deliver<B>> for Listener {
    fn handle(&mut self, d: Deliver<B>, ctx: &mut Context<Self>) {
        d.drain(self, ctx, |me, m, _| me.on_message(m));
    }
}

pub fn run(args: ListenArgs) -> anyhow::Result<ExitCode> {
    let bus = crate::startup::start(&args.common, "listen", "probe")?;
    let opts = InboxOptions::new(args.mailbox as usize, args.policy);
    let sys = actix::System::new();
    let handled = sys.block_on(async {
        let (tx, rx) = oneshot::channel();
        let listener = Listener {
            target: args.count,
            handled: 0,
            delay: Duration::from_micros(args.handler_delay_us),
            print: args.print,
            done: Some(tx),
        };
        let key = args.key.as_str();
        let sub = match args.kind {
            MsgKind::Scan => start(&bus, key, topic::SCAN, opts, listener).await,
            MsgKind::Frame => start(&bus, key, topic::FRAME, opts, listener).await,
            MsgKind::Ping => start(&bus, key, topic::PING, opts, listener).await,
            MsgKind::Cmd => start(&bus, key, topic::CMD, opts, listener).await,
            MsgKind::State => start(&bus, key, topic::STATE, opts, listener).await,
        }?;
        tracing::info!(key, "listening");
        tokio::select! {
            _ = rx => {}
            sig = shutdown_signal() => { tracing::info!(signal = sig?, "stopping"); }
        }
        anyhow::Ok(sub)
    });
    // zenoh entities are released here, on the plain main thread (docs/ARCHITECTURE.md §10).
    drop(handled?);
    bus.close();
    Ok(ExitCode::SUCCESS)
}

/// Subscribes to `key` as messages of kind `B` and starts the listener on that stream.
async fn start<B: Body + Send + 'static>(
    bus: &Bus,
    key: &str,
    topic: Topic<B>,
    opts: InboxOptions,
    listener: Listener,
) -> Result<Subscription, BusError> {
    let (sub, stream) = subscribe(bus, key, topic, opts).await?;
    Listener::create(|ctx| {
        ctx.add_stream(stream);
        listener
    });
    Ok(sub)
}
