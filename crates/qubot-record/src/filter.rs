//! Which topics a recording keeps: by the key expression's last segment (`scan`, `cmd`...).

/// Topics to keep: every one when `include` is empty, minus `exclude`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Filter {
    /// Whether a message on `key` (`qubot/<robot>/<actor>/<instance>/<topic>`) is kept.
    pub fn keeps(&self, key: &str) -> bool {
        let topic = topic_of(key);
        (self.include.is_empty() || self.include.iter().any(|t| t == topic))
            && !self.exclude.iter().any(|t| t == topic)
    }
}

/// The topic segment of a key expression: its last.
pub fn topic_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_then_exclude_by_topic_segment() {
        let all = Filter::default();
        assert!(all.keeps("qubot/r/sensor/main/scan"));
        let some = Filter {
            include: vec!["scan".into(), "cmd".into()],
            exclude: vec!["cmd".into()],
        };
        assert!(some.keeps("qubot/r/sensor/main/scan"));
        assert!(!some.keeps("qubot/r/planner/main/cmd"));
        assert!(!some.keeps("qubot/r/actuator/main/state"));
        // A robot or actor named like a topic is not the topic.
        assert!(!some.keeps("qubot/scan/actuator/main/state"));
    }
}
