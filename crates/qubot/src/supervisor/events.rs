//! Supervisor events as JSON lines on stdout, for tools and tests (`qubot up | jq`). Printed
//! only when stdout is not a terminal: people read the logs and the status line instead.

use std::io::{IsTerminal, Write};

use serde_json::{json, Value};

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

    /// One line `{"event", "actor", ...fields}`; `fields` is a JSON object.
    pub fn emit(&self, actor: &str, event: &str, fields: Value) {
        tracing::info!(actor, event, %fields, "supervisor");
        if !self.enabled {
            return;
        }
        let mut line = json!({"event": event, "actor": actor});
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}
