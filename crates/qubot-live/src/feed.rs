//! The view's thread: wire messages in (from a bounded hand-off), Foxglove messages out to the
//! SDK's channels. It keeps the newest wire message of every topic it draws, so a client that
//! subscribes late gets the world and the robot's latest state at once; it derives nothing
//! while no client subscribes to anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use foxglove::{Context, FoxgloveError, PartialMetadata, RawChannel, SinkId};
use qubot_record::{topic_of, Channel, Derived, View, DRAWN_TOPICS};

use crate::metrics::{dropped, DROP_VIEW_BEHIND, VIEW_MESSAGES, VIEW_UNDERIVED};

/// How long the thread waits for a wire message before it looks at its other inbox (late
/// joiners' requests) and whether it is to stop.
const POLL: Duration = Duration::from_millis(20);

/// A wire message, as received.
pub struct Wire {
    key: String,
    recv_ns: u64,
    bytes: Vec<u8>,
}

/// Hands wire messages to the view's thread; cheap to clone into a subscriber's callback.
#[derive(Clone)]
pub struct Feeder(pub(crate) SyncSender<Wire>);

impl Feeder {
    /// Offers a message received on `key`: copied only if the view draws its topic; dropped
    /// and counted if the thread is behind. Never blocks.
    pub fn offer(&self, key: &str, recv_ns: u64, wire: &[u8]) {
        if !DRAWN_TOPICS.contains(&topic_of(key)) {
            return;
        }
        let w = Wire {
            key: key.to_owned(),
            recv_ns,
            bytes: wire.to_vec(),
        };
        if let Err(TrySendError::Full(_)) = self.0.try_send(w) {
            dropped(DROP_VIEW_BEHIND).increment(1);
        }
    }
}

/// A client subscribed to a channel: it is owed the channel's latest message.
pub struct Joined {
    pub sink: Option<SinkId>,
    pub channel: Channel,
}

/// The SDK's channels, one per derived channel, in [`Channel::ALL`]'s order.
pub struct Channels([Arc<RawChannel>; Channel::COUNT]);

impl Channels {
    pub fn new(ctx: &Arc<Context>) -> Result<Channels, FoxgloveError> {
        let mut list = Vec::with_capacity(Channel::COUNT);
        for c in Channel::ALL {
            list.push(
                ctx.channel_builder(c.topic())
                    .message_encoding(c.message_encoding())
                    .schema(c.schema())
                    .build_raw()?,
            );
        }
        Ok(Channels(list.try_into().expect("one per channel")))
    }

    pub fn of(&self, c: Channel) -> &RawChannel {
        &self.0[c.index()]
    }

    /// Which of ours the SDK's channel `id` is.
    pub fn which(&self, id: foxglove::ChannelId) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| self.of(*c).id() == id)
    }

    fn watched(&self) -> bool {
        self.0.iter().any(|c| c.has_sinks())
    }

    /// Hands `d` to the server, for every subscriber or for `sink` only.
    fn log(&self, d: &Derived, sink: Option<SinkId>) {
        let ch = self.of(d.channel);
        if !ch.has_sinks() {
            return;
        }
        ch.log_with_meta_to_sink(
            &d.data,
            PartialMetadata {
                log_time: Some(d.log_ns),
            },
            sink,
        );
        metrics::counter!(VIEW_MESSAGES, "channel" => d.channel.topic()).increment(1);
    }
}

pub struct Feed {
    pub view: View,
    pub channels: Arc<Channels>,
    pub wires: Receiver<Wire>,
    pub joined: Receiver<Joined>,
    pub stop: Arc<AtomicBool>,
}

impl Feed {
    pub fn run(mut self) {
        let mut latest: HashMap<&'static str, Wire> = HashMap::new();
        while !self.stop.load(Ordering::Relaxed) {
            match self.wires.recv_timeout(POLL) {
                Ok(w) => {
                    if self.channels.watched() {
                        self.draw(&w, None, None);
                    }
                    if let Some(t) = DRAWN_TOPICS.iter().find(|t| **t == topic_of(&w.key)) {
                        latest.insert(t, w);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(j) = self.joined.try_recv() {
                self.greet(&j, &latest);
            }
        }
    }

    /// Derives `w`'s Foxglove messages and hands them on (only `only`'s, to `sink` only, for
    /// a late joiner).
    fn draw(&mut self, w: &Wire, only: Option<Channel>, sink: Option<SinkId>) {
        match self.view.derive(&w.key, &w.bytes, w.recv_ns) {
            Ok(out) => {
                for d in out.iter().filter(|d| only.is_none_or(|c| c == d.channel)) {
                    self.channels.log(d, sink);
                }
            }
            Err(e) => {
                tracing::debug!(key = w.key, "live view: {e}");
                metrics::counter!(VIEW_UNDERIVED, "topic" => topic_of(&w.key).to_owned(), "reason" => e.reason())
                    .increment(1);
            }
        }
    }

    /// What a client that has just subscribed to `j.channel` is owed: the world, or the
    /// channel's latest message.
    fn greet(&mut self, j: &Joined, latest: &HashMap<&'static str, Wire>) {
        match j.channel.drawn_from() {
            None => match self.view.world_update(qubot_msg::now_ns()) {
                Some(Ok(d)) => self.channels.log(&d, j.sink),
                Some(Err(e)) => tracing::warn!("live view: {e}"),
                None => {}
            },
            Some(t) => {
                if let Some(w) = latest.get(t) {
                    self.draw(w, Some(j.channel), j.sink);
                }
            }
        }
    }
}
