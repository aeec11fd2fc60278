//! The live view's series on `/metrics` (docs/ARCHITECTURE.md §6 lists them with the rest).

// Gauge VIEW_CLIENTS: clients connected. Counters VIEW_MESSAGES by `channel` (handed to the
// server while a client subscribed), VIEW_DROPPED by `reason`, VIEW_UNDERIVED by `topic` and
// `reason` (wire messages it could not draw).
pub use qubot_msg::metric_names::{VIEW_CLIENTS, VIEW_DROPPED, VIEW_MESSAGES, VIEW_UNDERIVED};

/// The hand-off from the bus to the view's thread was full: the thread fell behind.
pub const DROP_VIEW_BEHIND: &str = "view_behind";
/// A client's outbox was full: it reads slower than the robot publishes.
pub const DROP_CLIENT_BEHIND: &str = "client_behind";
/// A client left even its session's own messages unread past the hard limit: disconnected.
pub const DROP_CLIENT_STUCK: &str = "client_stuck";

pub fn dropped(reason: &'static str) -> metrics::Counter {
    metrics::counter!(VIEW_DROPPED, "reason" => reason)
}

pub fn describe() {
    metrics::describe_gauge!(VIEW_CLIENTS, "Clients connected to the live Foxglove view.");
    metrics::describe_counter!(
        VIEW_MESSAGES,
        "Foxglove messages the live view handed to its server while a client subscribed, by channel."
    );
    metrics::describe_counter!(
        VIEW_DROPPED,
        "Messages the live view did not deliver, by reason (view_behind: its thread fell behind the bus; client_behind: a client read too slowly; client_stuck: a client was disconnected)."
    );
    metrics::describe_counter!(
        VIEW_UNDERIVED,
        "Wire messages the live view could not draw, by topic and reason."
    );
    // Present from the start, so a rate over them is defined before the first drop.
    for reason in [DROP_VIEW_BEHIND, DROP_CLIENT_BEHIND, DROP_CLIENT_STUCK] {
        dropped(reason).absolute(0);
    }
    metrics::gauge!(VIEW_CLIENTS).set(0.0);
}

/// One more connected client on the gauge until the guard is dropped.
pub fn connected() -> Connected {
    metrics::gauge!(VIEW_CLIENTS).increment(1.0);
    Connected
}

pub struct Connected;

impl Drop for Connected {
    fn drop(&mut self) {
        metrics::gauge!(VIEW_CLIENTS).decrement(1.0);
    }
}
