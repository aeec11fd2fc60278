//! The live Foxglove view (docs/ARCHITECTURE.md §11, "Live view"): the recording's Foxglove
//! channels, served while the robot runs over Foxglove's WebSocket protocol by the Foxglove
//! SDK's own server.
//!
//! Owns: the hand-off from the bus (bounded, never blocking, drops counted), the view's thread
//! that derives messages only while a client watches and greets late joiners with the world and
//! the latest state, the SDK's server on a tokio runtime of its own (loopback only), and the
//! relay on the operator's address that bounds each client's backlog and counts what it drops.
//! The mapping itself is `qubot_record::View`'s, shared with recordings.
//! Must not depend on zenoh or actix: the caller subscribes and offers what it receives.

mod feed;
mod frame;
mod metrics;
mod relay;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use foxglove::websocket::{ChannelView, Client, ServerListener};
use foxglove::{Context, WebSocketServerHandle};
use qubot_record::{View, ViewOptions};

pub use feed::Feeder;
pub use metrics::{
    describe as describe_metrics, DROP_CLIENT_BEHIND, DROP_CLIENT_STUCK, DROP_VIEW_BEHIND, VIEW_CLIENTS,
    VIEW_DROPPED, VIEW_MESSAGES, VIEW_UNDERIVED,
};
pub use relay::Limits;

/// Foxglove's usual port for a live connection, on loopback: a board's view is reached
/// through an SSH tunnel unless its inventory asks otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8765";

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("the live view cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the live view: {0}")]
    Start(String),
}

#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Where operators connect.
    pub addr: SocketAddr,
    /// What the channels draw (the world and its clock).
    pub view: ViewOptions,
    /// The server's name, shown by Foxglove.
    pub name: String,
    /// Wire messages waiting for the view's thread at most.
    pub queue: usize,
    pub limits: Limits,
}

/// A running live view. Stopped by [`Live::stop`] once nothing offers to it any more.
pub struct Live {
    addr: SocketAddr,
    feeder: Feeder,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    server: Option<WebSocketServerHandle>,
    runtime: Option<tokio::runtime::Runtime>,
    /// The SDK's context: its server and channels hold it weakly, so it lives as long as this.
    _ctx: Arc<Context>,
}

/// Tells the view's thread which client subscribed to what; never blocks the SDK's loop.
struct Subscriptions {
    joined: mpsc::Sender<feed::Joined>,
    channels: Arc<feed::Channels>,
}

impl ServerListener for Subscriptions {
    fn on_subscribe(&self, client: Client, channel: ChannelView) {
        if let Some(c) = self.channels.which(channel.id()) {
            let _ = self.joined.send(feed::Joined {
                sink: client.sink_id(),
                channel: c,
            });
        }
    }
}

impl Live {
    /// Listens on `opts.addr` (refused at once if taken), then starts the server, the relay
    /// and the view's thread.
    pub fn start(opts: LiveOptions) -> Result<Live, LiveError> {
        let start = |e: &dyn std::fmt::Display| LiveError::Start(e.to_string());
        let listener = std::net::TcpListener::bind(opts.addr).map_err(|source| LiveError::Bind {
            addr: opts.addr,
            source,
        })?;
        listener.set_nonblocking(true).map_err(|e| start(&e))?;
        let addr = listener.local_addr().map_err(|e| start(&e))?;
        // Its own runtime, one worker: the view is a bystander and must not compete with the
        // robot for cores.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("live-view-io")
            .enable_all()
            .build()
            .map_err(|e| start(&e))?;
        let ctx = Context::new();
        let channels = Arc::new(feed::Channels::new(&ctx).map_err(|e| start(&e))?);
        let (joined_tx, joined) = mpsc::channel();
        let server = runtime
            .block_on(
                ctx.websocket_server()
                    .name(opts.name.clone())
                    // Loopback only: clients reach it through the relay.
                    .bind("127.0.0.1", 0)
                    .listener(Arc::new(Subscriptions {
                        joined: joined_tx,
                        channels: channels.clone(),
                    }))
                    .start(),
            )
            .map_err(|e| start(&e))?;
        let upstream = SocketAddr::from(([127, 0, 0, 1], server.port()));
        let limits = opts.limits;
        let listener = {
            let _in = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(|e| start(&e))?
        };
        runtime.spawn(relay::serve(listener, upstream, limits));

        let (tx, wires) = mpsc::sync_channel(opts.queue.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let feed = feed::Feed {
            view: View::new(opts.view),
            channels,
            wires,
            joined,
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("live-view".into())
            .spawn(move || feed.run())
            .map_err(|e| start(&e))?;
        tracing::info!(%addr, "live view: Foxglove can connect to ws://{addr}");
        Ok(Live {
            addr,
            feeder: Feeder(tx),
            stop,
            thread: Some(thread),
            server: Some(server),
            runtime: Some(runtime),
            _ctx: ctx,
        })
    }

    /// Where it listens (the port chosen, if `addr` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn feeder(&self) -> Feeder {
        self.feeder.clone()
    }

    /// Ends the view's thread, the server and the relay; connected clients are disconnected.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(s) = self.server.take() {
            drop(s.stop());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.shutdown();
    }
}
