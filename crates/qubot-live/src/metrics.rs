//! The live view's series on `/metrics` (docs/ARCHITECTURE.md §6 lists them with the rest).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

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

/// The connected clients, counted into the gauge.
#[derive(Clone, Default)]
pub struct Clients(Arc<AtomicI64>);

impl Clients {
    /// One more client until the guard is dropped.
    pub fn connected(&self) -> Connected {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!(VIEW_CLIENTS).set(n as f64);
        Connected(self.0.clone())
    }
}

pub struct Connected(Arc<AtomicI64>);

impl Drop for Connected {
    fn drop(&mut self) {
        let n = self.0.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!(VIEW_CLIENTS).set(n as f64);
    }
}
