//! Binding a consumer to the one producer its config names (docs/ARCHITECTURE.md §4a). Every process stamps
//! a random per-start source id in its headers and announces it in its liveliness token
//! (`.../@live/<actor>/<instance>/<id>`); a consumer follows that token and accepts on the
//! producer's key only messages carrying the id it currently holds. A restarted producer has
//! a new id and a new token: the binding moves to it as soon as the token arrives, and the
//! old id is refused from then on.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex,
};

use metrics::Counter;
use qubot_msg::{
    keys::{key, liveliness_key, token_source},
    ActorId,
};
use zenoh::{pubsub::Subscriber, sample::SampleKind};

use crate::{
    error::{BusError, ZenohError},
    telemetry, Bus,
};

/// Whether a message's source may steer this consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The bound producer.
    Own,
    /// Anyone else, including any source while no producer is bound.
    Foreign,
}

/// The id a consumer accepts now; cheap to clone into a zenoh callback.
#[derive(Clone)]
pub struct SourceFilter {
    bound: Arc<AtomicU64>,
}

impl SourceFilter {
    /// A filter bound to `source` for good (tests and tools that know the producer's id).
    pub fn fixed(source: ActorId) -> SourceFilter {
        SourceFilter {
            bound: Arc::new(AtomicU64::new(source.0)),
        }
    }

    pub fn check(&self, source: ActorId) -> Verdict {
        let bound = self.bound.load(Ordering::Acquire);
        if bound != 0 && bound == source.0 {
            Verdict::Own
        } else {
            Verdict::Foreign
        }
    }

    /// The bound producer's id, while one is bound.
    pub fn bound(&self) -> Option<ActorId> {
        Some(self.bound.load(Ordering::Acquire))
            .filter(|&id| id != 0)
            .map(ActorId)
    }
}

/// A consumer's binding to `<actor>/<instance>`: the data key to subscribe to and the filter
/// that follows the producer's liveliness token. Drop it outside the actix System, like every
/// zenoh entity (docs/ARCHITECTURE.md §10).
pub struct Binding {
    robot: String,
    actor: String,
    instance: String,
    filter: SourceFilter,
    _tokens: Subscriber<()>,
}

impl Binding {
    /// The producer's key for `topic`: exact, never a wildcard.
    pub fn key(&self, topic: &str) -> String {
        key(&self.robot, &self.actor, &self.instance, topic)
    }

    pub fn filter(&self) -> SourceFilter {
        self.filter.clone()
    }

    /// `"<actor>/<instance>"`, for logs.
    pub fn producer(&self) -> String {
        format!("{}/{}", self.actor, self.instance)
    }
}

impl Bus {
    /// Binds this process, as a consumer, to the producer `actor/instance` of its robot.
    /// Tokens already present are delivered at once (history), so a producer that is up is
    /// bound before this returns or within the first callbacks after it.
    pub async fn bind(&self, actor: &str, instance: &str) -> Result<Binding, BusError> {
        let filter = SourceFilter {
            bound: Arc::new(AtomicU64::new(0)),
        };
        let selector = format!("{}/*", liveliness_key(self.robot(), actor, instance));
        let rebinds: Counter = metrics::counter!(
            telemetry::REBINDS,
            "actor" => self.actor().to_owned(),
            "producer" => actor.to_owned()
        );
        let (f, me, producer) = (
            filter.clone(),
            self.actor().to_owned(),
            format!("{actor}/{instance}"),
        );
        // Every live token of the producer, oldest first: normally one; two while a restarted
        // producer's token arrives before its predecessor's is gone (or when two boards claim
        // the same instance, a misconfiguration). The newest is bound.
        let live: Mutex<Vec<u64>> = Mutex::new(Vec::new());
        // The last producer ever bound: binding to another one (after a gap or not) is a
        // re-bind, the count an operator watches after a restart.
        let ever = AtomicU64::new(0);
        let tokens = self
            .session()
            .liveliness()
            .declare_subscriber(selector.clone())
            .history(true)
            .callback(move |sample| {
                let Some(id) = token_source(sample.key_expr().as_str()) else {
                    return;
                };
                let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
                live.retain(|&l| l != id.0);
                if sample.kind() == SampleKind::Put {
                    live.push(id.0);
                }
                // Bounded: a peer declaring tokens in a loop cannot grow this list.
                if live.len() > 8 {
                    live.remove(0);
                }
                let now = live.last().copied().unwrap_or(0);
                let previous = f.bound.swap(now, Ordering::AcqRel);
                if previous != now {
                    if now != 0 && ever.swap(now, Ordering::AcqRel) != 0 {
                        rebinds.increment(1);
                    }
                    match now {
                        0 => tracing::info!(actor = %me, %producer, "producer gone: unbound"),
                        id => tracing::info!(actor = %me, %producer, source = format!("{id:016x}"), "bound to producer"),
                    }
                }
            })
            .await
            .map_err(|e| BusError::Declare {
                what: "liveliness subscriber",
                key: selector,
                source: ZenohError::from_display(e),
            })?;
        Ok(Binding {
            robot: self.robot().to_owned(),
            actor: actor.to_owned(),
            instance: instance.to_owned(),
            filter,
            _tokens: tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bound_source_is_own() {
        let f = SourceFilter::fixed(ActorId(7));
        assert_eq!(f.check(ActorId(7)), Verdict::Own);
        assert_eq!(f.check(ActorId(8)), Verdict::Foreign);
        let unbound = SourceFilter::fixed(ActorId(0));
        assert_eq!(unbound.check(ActorId(0)), Verdict::Foreign, "0 is no producer");
        assert_eq!(unbound.bound(), None);
    }
}
