use std::{
    marker::PhantomData,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use metrics::Counter;
use qubot_msg::{encode_into, encoded_len, now_ns, ActorId, Body, EncodeError, Stamp, TopicSpec};
use zenoh::{bytes::ZBytes, Wait};

use crate::{received::Received, shm::ShmPool, telemetry};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("encoding the message")]
    Encode(#[from] EncodeError),
    #[error("zenoh put failed: {0}")]
    Put(String),
}

/// A declared publisher for one topic, whose messages have body `B`. Each message is encoded straight into a buffer loaned
/// from the process's SHM pool (heap when SHM is off or the pool is exhausted), the caller
/// fills the bulk payload in place, and the buffer is handed to zenoh without a copy.
pub struct Publisher<B> {
    inner: zenoh::pubsub::Publisher<'static>,
    shm: Arc<ShmPool>,
    source: ActorId,
    seq: AtomicU64,
    topic: TopicSpec,
    published: Counter,
    bytes: Counter,
    shm_fallback: Counter,
    _body: PhantomData<fn(&B)>,
}

impl<B: Body> Publisher<B> {
    pub(crate) fn new(
        inner: zenoh::pubsub::Publisher<'static>,
        shm: Arc<ShmPool>,
        actor: &str,
        source: ActorId,
        topic: TopicSpec,
    ) -> Self {
        let labels = [("actor", actor.to_owned()), ("topic", topic.name.to_owned())];
        Publisher {
            inner,
            shm,
            source,
            seq: AtomicU64::new(0),
            topic,
            published: metrics::counter!(telemetry::PUBLISHED, &labels),
            bytes: metrics::counter!(telemetry::BYTES_PUBLISHED, &labels),
            shm_fallback: metrics::counter!(telemetry::SHM_FALLBACK, &labels),
            _body: PhantomData,
        }
    }

    pub fn topic(&self) -> TopicSpec {
        self.topic
    }

    pub fn key_expr(&self) -> &str {
        self.inner.key_expr().as_str()
    }

    /// Publishes `body` with a payload of `payload_len` bytes written by `fill`; `origin_ns`
    /// is the capture time carried end to end. Returns the sequence number used.
    pub fn publish(
        &self,
        body: &B,
        origin_ns: u64,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<u64, PublishError> {
        let len = encoded_len(body, payload_len)?;
        // Taken for good only once the message was put: a failed encode or put leaves no gap
        // that receivers would count as lost. (One publishing thread per publisher.)
        let seq = self.seq.load(Ordering::Relaxed);
        let stamp = Stamp {
            seq,
            source: self.source,
            origin_ns,
            publish_ns: now_ns(),
        };
        let payload = match self.loan(len) {
            Some(mut buf) => {
                fill(encode_into(&stamp, body, &mut buf)?);
                ZBytes::from(buf)
            }
            None => {
                let mut buf = vec![0u8; len];
                fill(encode_into(&stamp, body, &mut buf)?);
                ZBytes::from(buf)
            }
        };
        self.inner
            .put(payload)
            .wait()
            .map_err(|e| PublishError::Put(e.to_string()))?;
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        self.published.increment(1);
        self.bytes.increment(len as u64);
        Ok(seq)
    }

    /// Relays a received message as it is (header, body and payload unchanged) without
    /// copying it: an SHM buffer goes on as the same shared memory. For bridges, recorders
    /// and the bench's echo; the original source and sequence stay in the header.
    pub fn forward(&self, msg: &Received<B>) -> Result<(), PublishError> {
        let bytes = msg.bytes().clone();
        let len = bytes.len() as u64;
        self.inner
            .put(bytes)
            .wait()
            .map_err(|e| PublishError::Put(e.to_string()))?;
        self.published.increment(1);
        self.bytes.increment(len);
        Ok(())
    }

    /// A shared-memory buffer for a message of `len` bytes, or `None` for small messages and
    /// (counted) when the pool is exhausted: publishing then uses the heap instead of blocking.
    fn loan(&self, len: usize) -> Option<zenoh::shm::ZShmMut> {
        if !self.shm.wants(len) {
            return None;
        }
        let buf = self.shm.loan(len);
        if buf.is_none() {
            self.shm_fallback.increment(1);
        }
        buf
    }
}

impl<B> Publisher<B> {
    /// Waits until at least one subscriber matches this publisher, or `timeout` passes.
    /// Returns whether one matched. For tools and tests that must not publish into the void.
    pub fn wait_for_subscribers(&self, timeout: std::time::Duration) -> bool {
        wait_until(timeout, || has_subscribers(&self.inner))
    }
}

/// Whether a subscriber matches the zenoh publisher `p` now.
pub fn has_subscribers(p: &zenoh::pubsub::Publisher<'_>) -> bool {
    p.matching_status().wait().is_ok_and(|s| s.matching())
}

/// Checks `ready` every 10 ms until it holds or `timeout` has passed (at least once); returns
/// whether it held. For tools and tests that must not publish into the void.
pub fn wait_until(timeout: std::time::Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
