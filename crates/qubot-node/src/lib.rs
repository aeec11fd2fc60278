//! What a Qubot node is: the roles of the reference robot ([`Role`], re-exported from the wire
//! contract in `qubot-msg`, which declares what each publishes and consumes) and the node config that says which roles a
//! host runs and how ([`NodeConfig`], validated as a whole before anything starts).
//!
//! Owns: the one list of actors and the node config. Actors, the supervisor, the inventory and
//! the chaos runner all read these. Must not depend on zenoh, actix or any I/O beyond reading a
//! config or world file: tools that never join the bus use it too.

pub mod config;
pub mod router;

pub use config::{
    cpus_present, world_time_s, ConfigError, LinkProfile, NodeConfig, RealtimeSection, RoleSection,
};
pub use qubot_msg::{Flow, Role, SUPERVISOR};
pub use router::RouterConfig;
