//! Recording the bus (docs/ARCHITECTURE.md, "Recording").
//!
//! Owns: the MCAP layout of a recording and reading it back for replay (one channel per key expression, carrying the wire
//! bytes as received, with the header's stamps as the message's times), the topic filter, and
//! splitting into files and the free-disk guard, and the writer thread that keeps compression
//! and disk I/O off the thread that receives.
//! Must not depend on zenoh or actix: the caller subscribes and offers what it receives.

mod file;
mod filter;
mod load;
mod rotate;
mod writer;

pub use file::{Compression, Options, RecordError, Recording, Summary, METADATA, PROFILE, WIRE_ENCODING};
pub use filter::{topic_of, Filter};
pub use load::{load, Entry, LoadError, Loaded};
pub use rotate::{Finished, Plan, Rotating};
pub use writer::{Offer, Offerer, Writer};
