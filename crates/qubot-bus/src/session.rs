use std::{
    hash::{BuildHasher, RandomState},
    sync::Arc,
};

use qubot_msg::{ActorId, Body, Topic};
use zenoh::{
    liveliness::LivelinessToken, pubsub::Subscriber, query::Queryable, sample::Sample, Session, Wait,
};

use qubot_msg::keys::{key, token_key};

use crate::{
    clock::{clock_key, declare_clock},
    config::BusConfig,
    error::{BusError, ZenohError},
    publisher::Publisher,
    shm::ShmPool,
    topic_qos::zenoh_qos,
};

/// The process's one zenoh session (its connection pool), its SHM provider and its liveliness
/// token. Open it on the plain main thread *before* the actix System starts: zenoh refuses
/// tokio's current-thread scheduler (docs/ARCHITECTURE.md §10).
pub struct Bus {
    session: Session,
    shm: Arc<ShmPool>,
    robot: String,
    actor: String,
    instance: String,
    /// This process's per-start source id: in every header it publishes and in its token.
    source: ActorId,
    _token: LivelinessToken,
    /// Answers `qubot health`'s clock probe (see `clock.rs`).
    _clock: Queryable<()>,
}

/// A fresh, unpredictable, non-zero source id. It is a binding nonce, not a secret (every
/// header shows it): what matters is that a restart or another process never reuses it.
/// std's RandomState keys SipHash from OS randomness.
pub fn random_source() -> ActorId {
    loop {
        let id = RandomState::new().hash_one((std::process::id(), qubot_msg::now_ns()));
        if id != 0 {
            return ActorId(id);
        }
    }
}

impl Bus {
    pub fn open(cfg: &BusConfig) -> Result<Bus, BusError> {
        let zcfg = cfg.to_zenoh()?;
        let session = zenoh::open(zcfg)
            .wait()
            .map_err(|e| BusError::Open(ZenohError::from_display(e)))?;
        let source = random_source();
        let live = token_key(&cfg.robot, &cfg.actor, &cfg.instance, source);
        let token = session
            .liveliness()
            .declare_token(live.clone())
            .wait()
            .map_err(|e| BusError::Declare {
                what: "liveliness token",
                key: live,
                source: ZenohError::from_display(e),
            })?;
        let ck = clock_key(&cfg.robot, &cfg.actor, &cfg.instance, source);
        let clock = declare_clock(&session, ck.clone()).map_err(|e| BusError::Declare {
            what: "clock queryable",
            key: ck,
            source: ZenohError::from_display(e),
        })?;
        Ok(Bus {
            session,
            shm: Arc::new(ShmPool::new(cfg.shm_pool_bytes, cfg.shm_threshold_bytes)),
            robot: cfg.robot.clone(),
            actor: cfg.actor.clone(),
            instance: cfg.instance.clone(),
            source,
            _token: token,
            _clock: clock,
        })
    }

    pub fn robot(&self) -> &str {
        &self.robot
    }
    pub fn actor(&self) -> &str {
        &self.actor
    }
    pub fn instance(&self) -> &str {
        &self.instance
    }
    /// The source id this process stamps in its headers and announces in its token.
    pub fn source(&self) -> ActorId {
        self.source
    }
    pub fn session(&self) -> &Session {
        &self.session
    }
    /// Key of one of this process's own topics.
    pub fn own_key(&self, topic: &str) -> String {
        key(&self.robot, &self.actor, &self.instance, topic)
    }

    /// Declares a publisher on this actor's `topic` (declare once, reuse for every message),
    /// stamping this process's source id.
    pub fn publisher<B: Body>(&self, topic: Topic<B>) -> Result<Publisher<B>, BusError> {
        self.publisher_on(&self.own_key(topic.name()), topic, self.source)
    }

    /// Declares a publisher on an explicit key with an explicit source id, e.g. a flood on a
    /// sensor's key: give each parallel publisher its own id ([`random_source`]) so receivers
    /// track each one's sequence separately. Consumers bound to the key's producer count
    /// these messages as foreign unless the id is the one that producer announced.
    pub fn publisher_on<B: Body>(
        &self,
        key_expr: &str,
        topic: Topic<B>,
        source: ActorId,
    ) -> Result<Publisher<B>, BusError> {
        let q = zenoh_qos(topic.qos());
        let inner = self
            .session
            .declare_publisher(key_expr.to_owned())
            .reliability(q.reliability)
            .congestion_control(q.congestion)
            .priority(q.priority)
            .express(q.express)
            .wait()
            .map_err(|e| BusError::Declare {
                what: "publisher",
                key: key_expr.into(),
                source: ZenohError::from_display(e),
            })?;
        Ok(Publisher::new(
            inner,
            self.shm.clone(),
            &self.actor,
            source,
            topic.spec(),
        ))
    }

    /// Subscribes `callback` to `key_expr`. The callback runs on zenoh's threads: it must not
    /// block (hand the sample on with a non-blocking send).
    pub async fn subscribe<F>(&self, key_expr: &str, callback: F) -> Result<Subscriber<()>, BusError>
    where
        F: Fn(Sample) + Send + Sync + 'static,
    {
        self.session
            .declare_subscriber(key_expr.to_owned())
            .callback(callback)
            .await
            .map_err(|e| BusError::Declare {
                what: "subscriber",
                key: key_expr.into(),
                source: ZenohError::from_display(e),
            })
    }

    /// Closes the session and releases this process's SHM segment, so nothing is left in
    /// `/dev/shm` once every peer has dropped its buffers. Call it on the plain main thread
    /// after the actix System has returned: closing blocks, which zenoh refuses inside
    /// tokio's current-thread scheduler (it panics).
    pub fn close(self) {
        let Bus {
            session,
            shm,
            _token: token,
            _clock: clock,
            ..
        } = self;
        if let Err(e) = clock.undeclare().wait() {
            tracing::warn!(error = %e, "undeclaring the clock queryable");
        }
        if let Err(e) = token.undeclare().wait() {
            tracing::warn!(error = %e, "undeclaring the liveliness token");
        }
        if let Err(e) = session.close().wait() {
            tracing::warn!(error = %e, "closing zenoh session");
        }
        drop(shm);
    }
}
