//! Recording the bus (docs/ARCHITECTURE.md, "Recording").
//!
//! Owns: the MCAP layout of a recording and reading it back for replay (one channel per key expression, carrying the wire
//! bytes as received, with the header's stamps as the message's times), the mapping from
//! Qubot's messages to Foxglove's schemas (`view`: the derived channels, in one module), the
//! topic filter, splitting into files and the free-disk guard, and the writer thread that
//! keeps derivation, compression and disk I/O off the thread that receives.
//! Must not depend on zenoh or actix: the caller subscribes and offers what it receives.

mod file;
mod filter;
mod load;
mod rotate;
mod view;
mod writer;

pub use file::{Compression, Options, RecordError, Recording, Summary, METADATA, PROFILE, WIRE_ENCODING};
pub use filter::{topic_of, Filter};
pub use load::{load, Entry, LoadError, Loaded};
pub use rotate::{numbered, Finished, Plan, Rotating, Written};
pub use view::{Channel, Derived, View, ViewError, ViewOptions, BASE_FRAME, DRAWN_TOPICS, MAP_FRAME};
pub use writer::{
    describe_metrics, Offer, Offerer, Writer, RECORD_DERIVED, RECORD_DERIVED_BYTES, RECORD_UNDERIVED,
};
