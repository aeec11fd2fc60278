use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    task::{Context as TaskContext, Poll, Waker},
    time::Instant,
};

use actix::{Actor, Context};
use futures_core::Stream;
use metrics::{Counter, Histogram};
use qubot_bus::{telemetry, Binding, Bus, BusError, Received, SourceFilter, Verdict};
use qubot_msg::{now_ns, Body, DecodeError, DropReason, Topic};

use crate::{
    inbox::{Inbox, InboxOptions},
    ratelimit::LogLimiter,
};

/// Most messages handled per wake-up before the actor yields to its other mail.
const BATCH: usize = 32;

/// "Your inbox has mail": the item of an [`InboxStream`]. Handle it with
/// [`Deliver::drain`] in the actor's `StreamHandler<Deliver<B>>`.
pub struct Deliver<B: Body + Send + 'static> {
    shared: Arc<Shared<B>>,
}

impl<B: Body + Send + 'static> Deliver<B> {
    /// Hands up to one batch of queued messages to `handle`, timing each and counting it as
    /// received. The stream yields again while messages are waiting.
    pub fn drain<A>(
        self,
        actor: &mut A,
        ctx: &mut Context<A>,
        handle: impl FnMut(&mut A, Received<B>, &mut Context<A>),
    ) where
        A: Actor<Context = Context<A>>,
    {
        self.drain_at_most(BATCH, actor, ctx, handle);
    }

    /// As [`Deliver::drain`], but hands over at most `max` messages. A consumer that takes one
    /// message at a time (a busy planner) leaves the rest in its inbox, where the drop policy
    /// applies and counts them before they are ever delivered.
    pub fn drain_at_most<A>(
        self,
        max: usize,
        actor: &mut A,
        ctx: &mut Context<A>,
        mut handle: impl FnMut(&mut A, Received<B>, &mut Context<A>),
    ) where
        A: Actor<Context = Context<A>>,
    {
        let m = &self.shared.meters;
        let inbox = &self.shared.inbox;
        // One clock read per message: each handler's end is the next one's start (the pop in
        // between is a few tens of nanoseconds).
        let mut start = Instant::now();
        for _ in 0..max {
            let Some(msg) = inbox.pop() else { break };
            let wire = msg.wire_len() as u64;
            handle(actor, msg, ctx);
            let end = Instant::now();
            m.handler.record((end - start).as_secs_f64());
            start = end;
            m.received.increment(1);
            m.bytes.increment(wire);
        }
        inbox.publish_depth();
    }
}

/// While a `Deliver` is held (being handled, or parked by a busy actor) the stream yields no
/// other: dropping it lets the stream look at the inbox again.
impl<B: Body + Send + 'static> Drop for Deliver<B> {
    fn drop(&mut self) {
        self.shared.outstanding.store(false, Ordering::Release);
        self.shared.wake();
    }
}

/// What zenoh's callback and the actor share: the inbox, the consumer's meters and the
/// waker of the actor's task.
struct Shared<B: Body + Send + 'static> {
    inbox: Inbox<Received<B>>,
    meters: ConsumerMeters,
    waker: Mutex<Option<Waker>>,
    /// A `Deliver` is alive: the actor owns the inbox's attention until it drops it.
    outstanding: AtomicBool,
}

impl<B: Body + Send + 'static> Shared<B> {
    fn wake(&self) {
        if let Some(w) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            w.wake_by_ref();
        }
    }
}

/// The actor's end of a subscription: add it with `ctx.add_stream`. Waking the actor costs
/// no allocation (a task wake-up, not an actix message per delivery), and at most one
/// wake-up is outstanding however fast messages arrive.
pub struct InboxStream<B: Body + Send + 'static> {
    shared: Arc<Shared<B>>,
}

impl<B: Body + Send + 'static> InboxStream<B> {
    fn deliver(&self) -> Poll<Option<Deliver<B>>> {
        self.shared.outstanding.store(true, Ordering::Release);
        Poll::Ready(Some(Deliver {
            shared: self.shared.clone(),
        }))
    }

    fn register(&self, cx: &TaskContext<'_>) {
        let mut w = self.shared.waker.lock().unwrap_or_else(|p| p.into_inner());
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
    }
}

impl<B: Body + Send + 'static> Stream for InboxStream<B> {
    type Item = Deliver<B>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Deliver<B>>> {
        let shared = &self.shared;
        if shared.outstanding.load(Ordering::Acquire) {
            // The actor still holds the last one; its drop wakes us.
            self.register(cx);
            return Poll::Pending;
        }
        if !shared.inbox.is_empty() {
            return self.deliver();
        }
        self.register(cx);
        // Going idle: from here a push wakes us. One that raced in is taken now.
        if shared.inbox.rearm() {
            return self.deliver();
        }
        Poll::Pending
    }
}

struct ConsumerMeters {
    received: Counter,
    bytes: Counter,
    handler: Histogram,
}

/// Keeps the zenoh subscriber alive; dropping it unsubscribes. Drop it outside the actix
/// System (return it from `block_on`): zenoh's destructors block, which panics inside
/// tokio's current-thread scheduler.
#[must_use = "dropping a Subscription unsubscribes"]
pub struct Subscription {
    _sub: Option<qubot_bus::Subscriber<()>>,
    _binding: Option<Binding>,
}

impl Subscription {
    /// Keeps a binding (its liveliness subscriber) alive with the actor's subscriptions, so
    /// that all of them are released together on the main thread.
    pub fn binding(b: Binding) -> Subscription {
        Subscription {
            _sub: None,
            _binding: Some(b),
        }
    }
}

/// Subscribes to `key_expr` through a bounded inbox; the actor consumes it by adding the
/// returned stream (`ctx.add_stream`). The zenoh callback decodes the header (the payload
/// stays in the received buffer), counts bad input and transport gaps by reason, and queues
/// the message without ever blocking zenoh's threads. Any source is accepted: for probes and
/// tools. An actor that acts on what it receives uses [`subscribe_bound`].
pub async fn subscribe<B>(
    bus: &Bus,
    key_expr: &str,
    topic: Topic<B>,
    opts: InboxOptions,
) -> Result<(Subscription, InboxStream<B>), BusError>
where
    B: Body + Send + 'static,
{
    subscribe_with(bus, key_expr, topic.name(), opts, None, |_| None).await
}

/// Subscribes to the exact key of the producer `binding` names and queues only messages from
/// the producer it is bound to: anything else on that key is decoded (so a flood still loads
/// the path) and counted as `reason="foreign"`, never queued. `admit` rejects a decoded message
/// before the inbox with a drop reason (e.g. `oversize` for more beams than configured).
pub async fn subscribe_bound<B>(
    bus: &Bus,
    binding: &Binding,
    topic: Topic<B>,
    opts: InboxOptions,
    admit: impl Fn(&B) -> Option<DropReason> + Send + Sync + 'static,
) -> Result<(Subscription, InboxStream<B>), BusError>
where
    B: Body + Send + 'static,
{
    let key = binding.key(topic.name());
    subscribe_with(bus, &key, topic.name(), opts, Some(binding.filter()), admit).await
}

async fn subscribe_with<B>(
    bus: &Bus,
    key_expr: &str,
    topic: &str,
    opts: InboxOptions,
    source: Option<SourceFilter>,
    admit: impl Fn(&B) -> Option<DropReason> + Send + Sync + 'static,
) -> Result<(Subscription, InboxStream<B>), BusError>
where
    B: Body + Send + 'static,
{
    let actor = bus.actor().to_owned();
    let labels = [("actor", actor.clone()), ("topic", topic.to_owned())];
    let meters = ConsumerMeters {
        received: metrics::counter!(telemetry::RECEIVED, &labels),
        bytes: metrics::counter!(telemetry::BYTES_RECEIVED, &labels),
        handler: metrics::histogram!(
            telemetry::HANDLER_DURATION,
            "actor" => actor.clone(),
            "message" => topic.to_owned()
        ),
    };
    let shared = Arc::new(Shared {
        inbox: Inbox::new(opts, &actor, topic),
        meters,
        waker: Mutex::new(None),
        outstanding: AtomicBool::new(false),
    });
    let stream = InboxStream {
        shared: shared.clone(),
    };
    let intake = Intake::new(&actor, topic);
    let callback = move |sample: qubot_bus::Sample| {
        let received_ns = now_ns();
        match Received::<B>::decode(sample.payload().clone()) {
            Err(e) => intake.reject(&e),
            Ok(msg) => {
                if let Some(reason) = admit(&msg.body) {
                    intake.drop_as(reason);
                    return;
                }
                let stamp = msg.header.stamp;
                if source
                    .as_ref()
                    .is_some_and(|f| f.check(stamp.source) == Verdict::Foreign)
                {
                    intake.drop_as(DropReason::Foreign);
                    return;
                }
                intake
                    .age
                    .record(received_ns.saturating_sub(stamp.publish_ns) as f64 * 1e-9);
                intake.track_sequence(stamp.source.0, stamp.seq);
                if shared.inbox.push(msg) {
                    shared.wake();
                }
            }
        }
    };
    let sub = bus.subscribe(key_expr, callback).await?;
    Ok((
        Subscription {
            _sub: Some(sub),
            _binding: None,
        },
        stream,
    ))
}

/// Receive-side accounting that happens before the inbox: bad input and lost messages.
struct Intake {
    actor: String,
    topic: String,
    age: Histogram,
    lost: Counter,
    rejected: Mutex<HashMap<DropReason, Counter>>,
    /// Last sequence number seen per publisher (by source id), to count transport losses.
    last_seq: Mutex<SeqTracker>,
    log: LogLimiter,
}

impl Intake {
    fn new(actor: &str, topic: &str) -> Self {
        Intake {
            actor: actor.to_owned(),
            topic: topic.to_owned(),
            age: metrics::histogram!(telemetry::MESSAGE_AGE, "actor" => actor.to_owned(), "topic" => topic.to_owned()),
            lost: telemetry::dropped(actor, topic, DropReason::Lost),
            rejected: Mutex::new(HashMap::new()),
            last_seq: Mutex::new(SeqTracker::new(
                MAX_TRACKED_SOURCES,
                metrics::counter!(telemetry::SEQ_EVICTIONS, "actor" => actor.to_owned(), "topic" => topic.to_owned()),
            )),
            log: LogLimiter::per_second(),
        }
    }

    /// Counts a message that failed to decode under its reason, and logs at most once a second.
    fn reject(&self, e: &DecodeError) {
        let reason = e.reason();
        self.count(reason);
        if let Some(suppressed) = self.log.allow() {
            tracing::warn!(actor = %self.actor, topic = %self.topic, %reason, error = %e, suppressed, "dropped bad message");
        }
    }

    /// Counts a well-formed message refused before the inbox (foreign source, oversize...).
    fn drop_as(&self, reason: DropReason) {
        self.count(reason);
        if let Some(suppressed) = self.log.allow() {
            tracing::warn!(actor = %self.actor, topic = %self.topic, %reason, suppressed, "dropped message");
        }
    }

    fn count(&self, reason: DropReason) {
        let mut map = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(reason)
            .or_insert_with(|| telemetry::dropped(&self.actor, &self.topic, reason))
            .increment(1);
    }

    fn track_sequence(&self, source: u64, seq: u64) {
        let lost = self
            .last_seq
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .track(source, seq);
        if lost > 0 {
            self.lost.increment(lost);
        }
    }
}

/// Sources whose sequence is tracked at once: a consumer bound to one producer needs one; a
/// probe on a busy key a handful. Past this, the oldest entry is evicted (and counted), so a
/// peer cycling through fake source ids cannot grow a receiver's memory.
pub const MAX_TRACKED_SOURCES: usize = 64;

/// Last sequence number per source, bounded.
struct SeqTracker {
    last: HashMap<u64, (u64, u64)>,
    cap: usize,
    /// Insertion counter: the entry with the smallest one is the oldest.
    tick: u64,
    evicted: Counter,
}

impl SeqTracker {
    fn new(cap: usize, evicted: Counter) -> SeqTracker {
        SeqTracker {
            last: HashMap::with_capacity(cap),
            cap,
            tick: 0,
            evicted,
        }
    }

    /// Messages lost before `seq` from `source`: a jump in a publisher's sequence means
    /// messages lost in transport (best-effort drop); a sequence that goes back means the
    /// publisher restarted, so tracking starts afresh. Checked arithmetic throughout: a
    /// hostile `u64::MAX` neither overflows nor counts a loss.
    fn track(&mut self, source: u64, seq: u64) -> u64 {
        self.tick = self.tick.wrapping_add(1);
        if !self.last.contains_key(&source) && self.last.len() >= self.cap {
            if let Some(oldest) = self.last.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k) {
                self.last.remove(&oldest);
                self.evicted.increment(1);
            }
        }
        match self.last.insert(source, (seq, self.tick)) {
            Some((prev, _)) => prev
                .checked_add(1)
                .and_then(|next| seq.checked_sub(next))
                .unwrap_or(0),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(cap: usize) -> SeqTracker {
        SeqTracker::new(cap, metrics::counter!("test_evictions"))
    }

    #[test]
    fn gaps_count_as_lost_and_restarts_do_not() {
        let mut t = tracker(4);
        assert_eq!(t.track(1, 0), 0);
        assert_eq!(t.track(1, 1), 0);
        assert_eq!(t.track(1, 5), 3);
        assert_eq!(t.track(1, 2), 0, "a restart goes back");
    }

    #[test]
    fn hostile_sequence_numbers_do_not_overflow() {
        let mut t = tracker(4);
        assert_eq!(t.track(9, u64::MAX), 0);
        assert_eq!(t.track(9, u64::MAX), 0);
        assert_eq!(t.track(9, 0), 0);
        assert_eq!(t.track(9, u64::MAX), u64::MAX - 1);
    }

    #[test]
    fn a_million_sources_keep_the_tracker_at_its_cap() {
        let mut t = tracker(MAX_TRACKED_SOURCES);
        for id in 0..1_000_000u64 {
            t.track(id, 0);
        }
        assert_eq!(t.last.len(), MAX_TRACKED_SOURCES);
        // The newest are kept: the producer a consumer hears all the time stays tracked.
        assert!(t.last.contains_key(&999_999));
        assert_eq!(t.track(999_999, 2), 1);
    }
}
