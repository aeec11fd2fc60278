use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// A deliberate error added to every stamp this process makes: a board whose clock is off,
/// simulated (`QUBOT_CLOCK_OFFSET_MS`), so chaos runs and tests can show what skew does and
/// that the health check measures it. Zero unless set.
static OFFSET_NS: AtomicI64 = AtomicI64::new(0);

/// Sets the simulated clock error of this process (see `OFFSET_NS`).
pub fn set_clock_offset_ns(offset: i64) {
    OFFSET_NS.store(offset, Ordering::Relaxed);
}

/// Wall-clock time in nanoseconds since the Unix epoch: the unit of every stamp in a header.
/// Wall clock (not monotonic) because stamps cross processes and hosts.
pub fn now_ns() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        // A clock set before 1970 is a broken host; 0 marks the stamp as unknown.
        .unwrap_or(0);
    skewed(t, OFFSET_NS.load(Ordering::Relaxed))
}

fn skewed(t: u64, offset: i64) -> u64 {
    match offset {
        0 => t,
        off => t.saturating_add_signed(off).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::skewed;

    // The global offset is left alone here: other tests of this binary read the clock.
    #[test]
    fn an_offset_moves_the_stamp_and_saturates_instead_of_wrapping() {
        assert_eq!(skewed(5_000, 0), 5_000);
        assert_eq!(skewed(5_000, 250), 5_250);
        assert_eq!(skewed(5_000, -250), 4_750);
        assert_eq!(skewed(5_000, i64::MIN), 1, "never 0 (unknown) and never wrapped");
        assert_eq!(skewed(u64::MAX - 1, i64::MAX), u64::MAX);
    }
}
