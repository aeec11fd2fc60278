//! Qubot's reference robot: the sensor, planner and actuator actors that close a real control
//! loop over the bus.
//!
//! Owns: actor behaviour (timers, QoS choices, watchdog, keep-latest). The node config and the
//! list of roles live in `qubot-node`; the robot maths (ray casting, planning, kinematics) in
//! `qubot-robot`; process start-up, metrics export and supervision in the binary. Must not
//! depend on the binary or on `qubot-ops`.

pub mod actuator;
pub mod planner;
pub mod sensor;
