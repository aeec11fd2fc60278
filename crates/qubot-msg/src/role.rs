//! Who is on the bus: the roles of the reference robot, in pipeline order. Every list of
//! actors (supervision, inventory, chaos, health, metrics ports) is [`Role::ALL`]; what each
//! role publishes and consumes is declared with the topics (`crate::topic`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The process name of `qubot up` wherever processes are listed next to the actors (metrics
/// port offset 0, liveliness token, Prometheus `process` label).
pub const SUPERVISOR: &str = "supervisor";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Sensor,
    Planner,
    Actuator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Sensor, Role::Planner, Role::Actuator];

    /// The name in key expressions, metrics labels, subcommands and config sections.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Sensor => "sensor",
            Role::Planner => "planner",
            Role::Actuator => "actuator",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The instance name the node config gives this role by default.
    pub const fn default_instance(self) -> &'static str {
        match self {
            Role::Sensor => "lidar0",
            Role::Planner => "main",
            Role::Actuator => "base",
        }
    }

    /// Its metrics port is the supervisor's plus this (9901, 9902, 9903 by default).
    pub const fn metrics_port_offset(self) -> u16 {
        match self {
            Role::Sensor => 1,
            Role::Planner => 2,
            Role::Actuator => 3,
        }
    }

    /// Role names joined with ", " (for error messages that list what is known).
    pub fn names() -> String {
        Role::ALL.map(Role::name).join(", ")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::from_name(r.name()), Some(r));
        }
        assert_eq!(Role::from_name(SUPERVISOR), None);
    }
}
