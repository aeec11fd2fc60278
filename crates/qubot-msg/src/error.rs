use crate::{drop_reason::DropReason, header::Kind};

/// Why a byte string is not a Qubot message. Every variant maps to one drop reason label.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("truncated message: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("bad magic {got:#010x}")]
    BadMagic { got: u32 },
    #[error("unknown schema version {got} (this build speaks {supported})")]
    UnknownVersion { got: u16, supported: u16 },
    #[error("unknown message kind {got}")]
    UnknownKind { got: u16 },
    #[error("expected a {expected:?} message, got {got:?}")]
    WrongKind { expected: Kind, got: Kind },
    #[error("oversize {what}: {len} bytes, limit {max}")]
    Oversize {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{extra} trailing bytes after the payload")]
    Trailing { extra: usize },
    #[error("malformed {kind:?} body: {reason}")]
    BadBody { kind: Kind, reason: String },
}

impl DecodeError {
    /// Why the message is dropped (its label is the `reason` of `qubot_messages_dropped_total`).
    pub fn reason(&self) -> DropReason {
        match self {
            DecodeError::Truncated { .. } => DropReason::Truncated,
            DecodeError::BadMagic { .. } => DropReason::BadMagic,
            DecodeError::UnknownVersion { .. } => DropReason::BadVersion,
            DecodeError::UnknownKind { .. } | DecodeError::WrongKind { .. } => DropReason::BadKind,
            DecodeError::Oversize { .. } => DropReason::Oversize,
            DecodeError::Trailing { .. } | DecodeError::BadBody { .. } => DropReason::Malformed,
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("output buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall { need: usize, have: usize },
    #[error("oversize {what}: {len} bytes, limit {max}")]
    Oversize {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("payload of {len} bytes does not fit the {kind:?} body: {reason}")]
    PayloadMismatch { kind: Kind, len: usize, reason: String },
    #[error("encoding the body")]
    Body(#[source] bincode::error::EncodeError),
}
