//! Qubot runtime: the glue between the bus and actix actors.
//!
//! Owns: bounded inboxes with a drop policy per subscription, the bridge that moves zenoh
//! samples into them without blocking zenoh's threads, periodic ticks on deadlines, the
//! realtime profile's system calls, and shutdown on signals.
//! Must not install a metrics exporter (the binary does) nor know any actor's logic.

mod bridge;
mod inbox;
mod ratelimit;
pub mod realtime;
mod shutdown;
pub mod ticker;

pub use bridge::{subscribe, subscribe_bound, Deliver, InboxStream, Subscription, MAX_TRACKED_SOURCES};
pub use inbox::{DropPolicy, Inbox, InboxOptions};
pub use ratelimit::LogLimiter;
pub use shutdown::shutdown_signal;
pub use ticker::{Tick, TickRun, Timer};
