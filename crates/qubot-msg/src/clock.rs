use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time in nanoseconds since the Unix epoch: the unit of every stamp in a header.
/// Wall clock (not monotonic) because stamps cross processes and hosts.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        // A clock set before 1970 is a broken host; 0 marks the stamp as unknown.
        .unwrap_or(0)
}
