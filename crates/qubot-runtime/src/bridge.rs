use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient};
use metrics::{Counter, Histogram};
use qubot_bus::{telemetry, Bus, BusError, Received};
use qubot_msg::{now_ns, Body, DecodeError};

use crate::{
    inbox::{Inbox, InboxOptions},
    ratelimit::LogLimiter,
};

/// Most messages handled per wake-up before the actor yields to its other mail.
const BATCH: usize = 32;

/// "Your inbox has mail." At most one is in the actor's mailbox per subscription.
pub struct Deliver<B: Body + Send + 'static> {
    inbox: Arc<Inbox<Received<B>>>,
    meters: Arc<ConsumerMeters>,
}

impl<B: Body + Send + 'static> Message for Deliver<B> {
    type Result = ();
}

impl<B: Body + Send + 'static> Deliver<B> {
    /// Hands up to one batch of queued messages to `handle`, timing each and counting it as
    /// received, then reschedules itself if more are waiting.
    pub fn drain<A>(
        self,
        actor: &mut A,
        ctx: &mut Context<A>,
        handle: impl FnMut(&mut A, Received<B>, &mut Context<A>),
    ) where
        A: Actor<Context = Context<A>> + Handler<Deliver<B>>,
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
        A: Actor<Context = Context<A>> + Handler<Deliver<B>>,
    {
        for _ in 0..max {
            let Some(msg) = self.inbox.pop() else { break };
            let wire = msg.wire_len() as u64;
            let start = Instant::now();
            handle(actor, msg, ctx);
            self.meters.handler.record(start.elapsed().as_secs_f64());
            self.meters.received.increment(1);
            self.meters.bytes.increment(wire);
        }
        if self.inbox.rearm() {
            ctx.notify(self);
        }
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
    _sub: qubot_bus::Subscriber<()>,
}

/// Subscribes `addr` to `key_expr` through a bounded inbox. The zenoh callback decodes the
/// header (the payload stays in the received buffer), counts bad input and transport gaps by
/// reason, and queues the message without ever blocking zenoh's threads.
pub async fn subscribe<B>(
    bus: &Bus,
    key_expr: &str,
    topic: &str,
    addr: Recipient<Deliver<B>>,
    opts: InboxOptions,
) -> Result<Subscription, BusError>
where
    B: Body + Send + 'static,
{
    let actor = bus.actor().to_owned();
    let inbox = Arc::new(Inbox::new(opts, &actor, topic));
    let labels = [("actor", actor.clone()), ("topic", topic.to_owned())];
    let meters = Arc::new(ConsumerMeters {
        received: metrics::counter!(telemetry::RECEIVED, &labels),
        bytes: metrics::counter!(telemetry::BYTES_RECEIVED, &labels),
        handler: metrics::histogram!(
            telemetry::HANDLER_DURATION,
            "actor" => actor.clone(),
            "message" => topic.to_owned()
        ),
    });
    let intake = Intake::new(&actor, topic);
    let callback = move |sample: qubot_bus::Sample| {
        let received_ns = now_ns();
        match Received::<B>::decode(sample.payload().clone()) {
            Err(e) => intake.reject(&e),
            Ok(msg) => {
                let stamp = msg.header.stamp;
                intake
                    .age
                    .record(received_ns.saturating_sub(stamp.publish_ns) as f64 * 1e-9);
                intake.track_sequence(stamp.source.0, stamp.seq);
                if inbox.push(msg) {
                    addr.do_send(Deliver {
                        inbox: inbox.clone(),
                        meters: meters.clone(),
                    });
                }
            }
        }
    };
    let sub = bus.subscribe(key_expr, callback).await?;
    Ok(Subscription { _sub: sub })
}

/// Receive-side accounting that happens before the inbox: bad input and lost messages.
struct Intake {
    actor: String,
    topic: String,
    age: Histogram,
    lost: Counter,
    rejected: Mutex<HashMap<&'static str, Counter>>,
    /// Last sequence number seen per publisher (by source id), to count transport losses.
    last_seq: Mutex<HashMap<u64, u64>>,
    log: LogLimiter,
}

impl Intake {
    fn new(actor: &str, topic: &str) -> Self {
        Intake {
            actor: actor.to_owned(),
            topic: topic.to_owned(),
            age: metrics::histogram!(telemetry::MESSAGE_AGE, "actor" => actor.to_owned(), "topic" => topic.to_owned()),
            lost: drop_counter(actor, topic, "lost"),
            rejected: Mutex::new(HashMap::new()),
            last_seq: Mutex::new(HashMap::new()),
            log: LogLimiter::per_second(),
        }
    }

    /// Counts a message that failed to decode under its reason, and logs at most once a second.
    fn reject(&self, e: &DecodeError) {
        let reason = e.reason();
        {
            let mut map = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(reason)
                .or_insert_with(|| drop_counter(&self.actor, &self.topic, reason))
                .increment(1);
        }
        if let Some(suppressed) = self.log.allow() {
            tracing::warn!(actor = %self.actor, topic = %self.topic, reason, error = %e, suppressed, "dropped bad message");
        }
    }

    /// A jump in a publisher's sequence means messages lost in transport (best-effort drop).
    /// A sequence that goes back means the publisher restarted: start tracking afresh.
    fn track_sequence(&self, source: u64, seq: u64) {
        let mut map = self.last_seq.lock().unwrap_or_else(|p| p.into_inner());
        match map.insert(source, seq) {
            Some(prev) if seq > prev + 1 => self.lost.increment(seq - prev - 1),
            _ => {}
        }
    }
}

fn drop_counter(actor: &str, topic: &str, reason: &'static str) -> Counter {
    metrics::counter!(telemetry::DROPPED, "actor" => actor.to_owned(), "topic" => topic.to_owned(), "reason" => reason)
}
