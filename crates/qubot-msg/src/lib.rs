//! Qubot wire format: every message is a fixed 48-byte header, a small bincode body, and an
//! optional bulk payload (scan ranges, frame pixels) that is read in place.
//!
//! Owns: the header layout, the message bodies, the one codec module (`codec`) that knows
//! about bincode, so the codec can be swapped in one file, the scan payload's layout
//! (`ranges`), and the contract every process and tool agrees on: the roles, the topics with
//! their body types and QoS classes (`topic`), the drop reasons, the key expressions and the
//! metric names (docs/ARCHITECTURE.md). Depends on nothing but serde, bincode and
//! thiserror: no zenoh, no actix, no I/O.
//!
//! ```text
//! | header (48 B, LE) | body (body_len B, bincode) | payload (payload_len B, raw) |
//! ```

mod body;
mod clock;
mod codec;
mod drop_reason;
mod error;
mod header;
pub mod keys;
pub mod metric_names;
mod ranges;
mod role;
pub mod topic;

pub use body::{Body, Command, Frame, MemoryGrid, Ping, Scan, State};
pub use clock::{now_ns, set_clock_offset_ns};
pub use codec::{
    damage_header, decode, decode_body, decode_header, decode_header_sized, encode_into, encoded_len,
    replace_body, restamp, restamp_source, Decoded, HeaderDamage,
};
pub use drop_reason::DropReason;
pub use error::{DecodeError, EncodeError};
pub use header::{
    ActorId, Header, Kind, Stamp, HEADER_LEN, MAGIC, MAX_BODY_LEN, MAX_PAYLOAD_LEN, SCHEMA_VERSION,
};
pub use ranges::{ranges_len, ranges_to_bytes, write_ranges, ScanRanges, RANGE_BYTES};
pub use role::{Role, SUPERVISOR};
pub use topic::{Flow, QosClass, Topic, TopicSpec};
