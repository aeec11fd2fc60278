use std::sync::atomic::{AtomicU64, Ordering};

use qubot_msg::now_ns;

/// Lets one log line through per interval and counts the ones it held back, so a storm of bad
/// input is visible in the logs without flooding them (the metrics count every event).
pub struct LogLimiter {
    interval_ns: u64,
    last_ns: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub const fn per_second() -> LogLimiter {
        LogLimiter {
            interval_ns: 1_000_000_000,
            last_ns: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this event may be logged, with `n` events suppressed since the last one.
    pub fn allow(&self) -> Option<u64> {
        let now = now_ns();
        let last = self.last_ns.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= self.interval_ns
            && self
                .last_ns
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval() {
        let l = LogLimiter::per_second();
        assert_eq!(l.allow(), Some(0));
        assert_eq!(l.allow(), None);
        assert_eq!(l.allow(), None);
        assert_eq!(l.suppressed.load(Ordering::Relaxed), 2);
    }
}
