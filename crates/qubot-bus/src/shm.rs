//! The process's shared-memory pool: created on the first message big enough to need it, so a
//! process that only sends small messages maps no segment and leaves nothing in /dev/shm.

use std::sync::{Arc, OnceLock};

use zenoh::{
    shm::{GarbageCollect, PosixShmProviderBackend, ShmProvider, ShmProviderBuilder, ZShmMut},
    Wait,
};

type Provider = ShmProvider<PosixShmProviderBackend>;

pub(crate) struct ShmPool {
    bytes: usize,
    threshold: usize,
    provider: OnceLock<Option<Arc<Provider>>>,
}

impl ShmPool {
    pub(crate) fn new(bytes: usize, threshold: usize) -> ShmPool {
        ShmPool {
            bytes,
            threshold,
            provider: OnceLock::new(),
        }
    }

    /// Whether a message of `len` bytes should travel in shared memory.
    pub(crate) fn wants(&self, len: usize) -> bool {
        self.bytes > 0 && len >= self.threshold
    }

    /// A buffer of exactly `len` bytes from the pool, without blocking: `None` when the pool
    /// is exhausted (receivers still hold its buffers) or could not be created.
    pub(crate) fn loan(&self, len: usize) -> Option<ZShmMut> {
        let provider = self.provider.get_or_init(|| self.create()).as_ref()?;
        match provider.alloc(len).with_policy::<GarbageCollect>().wait() {
            Ok(buf) => Some(buf),
            Err(e) => {
                tracing::debug!(?e, len, "SHM loan failed");
                None
            }
        }
    }

    fn create(&self) -> Option<Arc<Provider>> {
        match ShmProviderBuilder::default_backend(self.bytes).wait() {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                tracing::warn!(error = %e, bytes = self.bytes, "cannot create the SHM pool; publishing from the heap");
                None
            }
        }
    }
}
