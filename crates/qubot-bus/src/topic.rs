use qubot_msg::ActorId;
use zenoh::qos::{CongestionControl, Priority, Reliability};

/// How a topic's samples travel (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    /// Sensor data: best effort, dropped under congestion; the consumer keeps the latest.
    Sensor,
    /// Commands: reliable, blocking congestion control, express, real-time priority, so a
    /// sensor flood cannot delay them.
    Command,
    /// Feedback state: reliable but droppable under congestion, above sensor priority.
    State,
}

impl QosClass {
    pub fn reliability(self) -> Reliability {
        match self {
            QosClass::Sensor => Reliability::BestEffort,
            QosClass::Command | QosClass::State => Reliability::Reliable,
        }
    }
    pub fn congestion(self) -> CongestionControl {
        match self {
            QosClass::Command => CongestionControl::Block,
            QosClass::Sensor | QosClass::State => CongestionControl::Drop,
        }
    }
    pub fn priority(self) -> Priority {
        match self {
            QosClass::Command => Priority::RealTime,
            QosClass::State => Priority::InteractiveHigh,
            QosClass::Sensor => Priority::DataHigh,
        }
    }
    pub fn express(self) -> bool {
        matches!(self, QosClass::Command)
    }
}

/// A named stream of one actor: the last segment of its key expression plus its QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topic {
    pub name: &'static str,
    pub qos: QosClass,
}

impl Topic {
    pub const SCAN: Topic = Topic {
        name: "scan",
        qos: QosClass::Sensor,
    };
    pub const FRAME: Topic = Topic {
        name: "frame",
        qos: QosClass::Sensor,
    };
    pub const CMD: Topic = Topic {
        name: "cmd",
        qos: QosClass::Command,
    };
    pub const STATE: Topic = Topic {
        name: "state",
        qos: QosClass::State,
    };
    pub const PING: Topic = Topic {
        name: "ping",
        qos: QosClass::Sensor,
    };
    pub const PONG: Topic = Topic {
        name: "pong",
        qos: QosClass::Sensor,
    };
}

/// Checks one key-expression segment (robot, actor or instance name): not empty, and no
/// separator, wildcard or space that would change what a key matches.
pub fn check_segment(s: &str) -> Result<(), String> {
    if s.is_empty() || s.contains(['/', '*', '$', '?', '#', ' ']) {
        Err(format!(
            "{s:?} is not a valid key segment (no '/', '*', '$', '?', '#' or spaces)"
        ))
    } else {
        Ok(())
    }
}

/// `qubot/<robot>/<actor>/<instance>/<topic>`; any segment may be `*` in a subscription.
pub fn key(robot: &str, actor: &str, instance: &str, topic: &str) -> String {
    format!("qubot/{robot}/{actor}/{instance}/{topic}")
}

/// `qubot/<robot>/@live/<actor>/<instance>`: the prefix of the token an actor process holds
/// while it is up (the token itself adds the process's source id, see [`token_key`]).
pub fn liveliness_key(robot: &str, actor: &str, instance: &str) -> String {
    format!("qubot/{robot}/@live/{actor}/{instance}")
}

/// `qubot/<robot>/@live/<actor>/<instance>/<source id, 16 hex digits>`: the token carries the
/// per-start source id that this process stamps in every header, so consumers can bind to it.
pub fn token_key(robot: &str, actor: &str, instance: &str, source: ActorId) -> String {
    format!("{}/{:016x}", liveliness_key(robot, actor, instance), source.0)
}

/// The source id at the end of a token key, if it is one.
pub fn token_source(key: &str) -> Option<ActorId> {
    let hex = key.rsplit('/').next()?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
        .filter(|&id| id != 0)
        .map(ActorId)
}
