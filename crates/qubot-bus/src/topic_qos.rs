//! What each QoS class of the wire contract means to zenoh (docs/ARCHITECTURE.md §5). The
//! classes themselves, and which topic has which, are declared in `qubot_msg::topic`.

use qubot_msg::QosClass;
use zenoh::qos::{CongestionControl, Priority, Reliability};

/// Zenoh's settings for a publisher of this class.
pub struct ZenohQos {
    pub reliability: Reliability,
    pub congestion: CongestionControl,
    pub priority: Priority,
    /// Sent at once instead of waiting to be batched with other messages.
    pub express: bool,
}

pub fn zenoh_qos(class: QosClass) -> ZenohQos {
    match class {
        QosClass::Sensor => ZenohQos {
            reliability: Reliability::BestEffort,
            congestion: CongestionControl::Drop,
            priority: Priority::DataHigh,
            express: false,
        },
        QosClass::Command => ZenohQos {
            reliability: Reliability::Reliable,
            congestion: CongestionControl::Block,
            priority: Priority::RealTime,
            express: true,
        },
        QosClass::State => ZenohQos {
            reliability: Reliability::Reliable,
            congestion: CongestionControl::Drop,
            priority: Priority::InteractiveHigh,
            express: false,
        },
    }
}
