//! Supervisor events as JSON lines on stdout, for tools and tests (`qubot up | jq`), typed by
//! `qubot_ops::run::Event`. Printed only when stdout is not a terminal: people read the logs
//! and the status line instead.

use std::io::{IsTerminal, Write};

use qubot_ops::run::{Event, EventKind};

#[derive(Clone, Copy)]
pub struct Events {
    enabled: bool,
}

impl Events {
    pub fn new() -> Events {
        Events {
            enabled: !std::io::stdout().is_terminal(),
        }
    }

    /// Logs the event and prints its line.
    pub fn emit(&self, actor: &str, kind: EventKind) {
        let event = Event::new(actor, kind);
        let mut fields = serde_json::to_value(&event.kind).unwrap_or_default();
        if let Some(f) = fields.as_object_mut() {
            f.remove("event");
        }
        tracing::info!(actor, event = event.name(), %fields, "supervisor");
        if !self.enabled {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", event.to_json_line());
        let _ = out.flush();
    }
}
