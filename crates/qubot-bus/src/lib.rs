//! Qubot bus: the one zenoh session of a process, typed publishers that write messages into
//! shared-memory loans, received samples that are decoded in place, the liveliness token and the clock probe.
//!
//! Owns: zenoh configuration (one `BusConfig` builder), what each QoS class means to zenoh, SHM provider, metric help
//! texts. Key expressions and metric names are `qubot_msg`'s, re-exported here.
//! Must not depend on actix or on any exporter: metrics go through the `metrics` facade.

mod binding;
mod clock;
mod config;
mod error;
mod publisher;
mod received;
mod session;
mod shm;
pub mod telemetry;
mod topic_qos;

pub use binding::{Binding, SourceFilter, Verdict};
pub use clock::{clock_key, probe_clocks, ClockReading};
pub use config::{BusConfig, DEFAULT_SHM_THRESHOLD, LOW_LATENCY, SHM_TRANSPORT_KEY};
pub use error::BusError;
pub use publisher::{has_subscribers, wait_until, PublishError, Publisher};
pub use qubot_msg::keys::{check_segment, key, liveliness_key, token_key, token_source};
pub use qubot_msg::ActorId;
pub use qubot_msg::{topic, QosClass, Topic, TopicSpec};
pub use received::Received;
pub use session::{random_source, Bus};
pub use topic_qos::{zenoh_qos, ZenohQos};
pub use zenoh::shm::cleanup_orphaned_shm_segments;
pub use zenoh::{pubsub::Subscriber, sample::Sample};
