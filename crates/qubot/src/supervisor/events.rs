//! Supervisor events as JSON lines on stdout, for tools and tests (`qubot up | jq`). Printed
//! only when stdout is not a terminal: people read the logs and the status line instead.

use std::io::{IsTerminal, Write};

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

    /// `fields` values are JSON already when they start with `"`, else numbers.
    pub fn emit(&self, actor: &str, event: &str, fields: &[(&str, String)]) {
        tracing::info!(actor, event, ?fields, "supervisor");
        if !self.enabled {
            return;
        }
        let mut line = format!("{{\"event\":\"{event}\",\"actor\":\"{actor}\"");
        for (k, v) in fields {
            let quoted = if v.starts_with('"') || v.parse::<f64>().is_ok() {
                v.clone()
            } else {
                format!("{v:?}")
            };
            line.push_str(&format!(",\"{k}\":{quoted}"));
        }
        line.push('}');
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}
