//! Qubot's reference robot: the sensor, planner and actuator actors that close a real control
//! loop over the bus.
//!
//! Owns: actor behaviour (timers, QoS choices, watchdog, keep-latest). Each actor is a folder:
//! `rules` is its plain state machine (what it accepts, drops, stamps and drives; no actix, no
//! zenoh, no metrics, no clock reads: time is an argument, outcomes are returned), unit-tested
//! in milliseconds; `mod.rs` is the thin actix shell around it that reads the clocks, runs the
//! timers (on deadlines, `timing`), talks to the bus, counts the outcomes in the metrics and logs. The node config and
//! the list of roles live in `qubot-node`; the robot maths (ray casting, planning, kinematics)
//! in `qubot-robot`; process start-up, metrics export and supervision in the binary. Must not
//! depend on the binary or on `qubot-ops`.

pub mod actuator;
pub mod planner;
pub mod sensor;
pub mod timing;
