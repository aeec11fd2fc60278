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
