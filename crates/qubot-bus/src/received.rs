use std::borrow::Cow;

use qubot_msg::{decode, Body, DecodeError, Header};
use zenoh::bytes::ZBytes;

/// A received, validated message. It owns the sample's buffer (for SHM: a reference to the
/// sender's shared memory) and hands out the payload as a borrow of that buffer.
pub struct Received<B> {
    pub header: Header,
    pub body: B,
    bytes: ZBytes,
    payload_at: usize,
    /// Whether the buffer had to be gathered from several network fragments (one copy).
    pub gathered: bool,
}

impl<B: Body> Received<B> {
    /// Decodes `bytes` as a `B` message. A buffer made of several slices (network fragments)
    /// is made contiguous first; an SHM or single-slice buffer is used as it is.
    pub fn decode(bytes: ZBytes) -> Result<Self, DecodeError> {
        let (bytes, gathered) = match bytes.to_bytes() {
            Cow::Borrowed(_) => (bytes, false),
            Cow::Owned(v) => (ZBytes::from(v), true),
        };
        let whole = first_slice(&bytes);
        let d = decode::<B>(whole)?;
        let payload_at = whole.len() - d.payload.len();
        let (header, body) = (d.header, d.body);
        Ok(Received {
            header,
            body,
            bytes,
            payload_at,
            gathered,
        })
    }

    /// The bulk payload, in place in the received buffer.
    pub fn payload(&self) -> &[u8] {
        first_slice(&self.bytes).get(self.payload_at..).unwrap_or(&[])
    }

    /// The whole message as received (header, body, payload), e.g. to relay it unchanged.
    pub fn bytes(&self) -> &ZBytes {
        &self.bytes
    }

    pub fn wire_len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the received buffer is the sender's shared memory (zero copy on one host).
    pub fn is_shm(&self) -> bool {
        self.bytes.as_shm().is_some()
    }

    /// Whether `payload()` points into the shared-memory buffer itself: the proof that the
    /// decoded payload is a borrow, not a copy.
    pub fn payload_borrows_shm(&self) -> bool {
        match self.bytes.as_shm() {
            Some(shm) => {
                let range = shm.as_ptr_range();
                let p = self.payload();
                p.is_empty() || (range.contains(&p.as_ptr()) && p.as_ptr_range().end <= range.end)
            }
            None => false,
        }
    }
}

fn first_slice(bytes: &ZBytes) -> &[u8] {
    bytes.slices().next().unwrap_or(&[])
}
