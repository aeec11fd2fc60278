//! The roles of the reference robot, in pipeline order. Every list of actors (supervision,
//! inventory, chaos, health, metrics ports) is [`Role::ALL`].

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

/// One stream of the control loop: `topic` from `from`, with `to` the subscriber whose
/// counters account for it (the state also reaches the planner, which counts its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub topic: &'static str,
    pub from: Role,
    pub to: Role,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Sensor, Role::Planner, Role::Actuator];

    /// The closed loop: scans to the planner, commands to the actuator, state back.
    pub const FLOWS: [Flow; 3] = [
        Flow {
            topic: "scan",
            from: Role::Sensor,
            to: Role::Planner,
        },
        Flow {
            topic: "cmd",
            from: Role::Planner,
            to: Role::Actuator,
        },
        Flow {
            topic: "state",
            from: Role::Actuator,
            to: Role::Sensor,
        },
    ];

    /// The name in key expressions, metrics labels, subcommands and config sections.
    pub fn name(self) -> &'static str {
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
    pub fn default_instance(self) -> &'static str {
        match self {
            Role::Sensor => "lidar0",
            Role::Planner => "main",
            Role::Actuator => "base",
        }
    }

    /// Its metrics port is the supervisor's plus this (9901, 9902, 9903 by default).
    pub fn metrics_port_offset(self) -> u16 {
        match self {
            Role::Sensor => 1,
            Role::Planner => 2,
            Role::Actuator => 3,
        }
    }

    /// Topics this role publishes under its own key prefix.
    pub fn publishes(self) -> &'static [&'static str] {
        match self {
            Role::Sensor => &["scan", "frame"],
            Role::Planner => &["cmd"],
            Role::Actuator => &["state"],
        }
    }

    /// (producer, topic) pairs this role subscribes to.
    pub fn consumes(self) -> &'static [(Role, &'static str)] {
        match self {
            Role::Sensor => &[(Role::Actuator, "state")],
            Role::Planner => &[(Role::Sensor, "scan"), (Role::Actuator, "state")],
            Role::Actuator => &[(Role::Planner, "cmd")],
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
    use crate::NodeConfig;

    #[test]
    fn defaults_agree_with_the_node_config() {
        let cfg = NodeConfig::default();
        for r in Role::ALL {
            let s = cfg.role(r);
            assert_eq!(s.instance, r.default_instance(), "{r}");
            assert_eq!(
                s.metrics_port,
                cfg.supervisor.metrics_port + r.metrics_port_offset(),
                "{r}"
            );
            assert_eq!(Role::from_name(r.name()), Some(r));
        }
    }

    #[test]
    fn every_flow_is_published_and_consumed() {
        for f in Role::FLOWS {
            assert!(f.from.publishes().contains(&f.topic), "{f:?}");
            assert!(f.to.consumes().contains(&(f.from, f.topic)), "{f:?}");
        }
    }
}
