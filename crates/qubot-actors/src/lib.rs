//! Qubot's reference robot: the sensor, planner and actuator actors that close a real control
//! loop over the bus, and the node config that says which of them a host runs and how.
//!
//! Owns: actor behaviour (timers, QoS choices, watchdog, keep-latest) and config validation.
//! The robot maths (ray casting, planning, kinematics) lives in `qubot-robot`; process
//! start-up, metrics export and supervision live in the binary.

pub mod actuator;
pub mod config;
pub mod planner;
pub mod sensor;

pub use config::{ConfigError, NodeConfig};

/// Actor names as they appear in key expressions, metrics and the supervisor.
pub const ACTORS: [&str; 3] = ["sensor", "planner", "actuator"];
