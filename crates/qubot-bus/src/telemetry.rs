//! Metric names of the contract (DESIGN §6), in one place. Dashboards, alerts and tests use
//! exactly these names. Every series also gets `robot` and `host` as global labels from the
//! exporter, which only the binary installs.

pub const PUBLISHED: &str = "qubot_messages_published_total";
pub const RECEIVED: &str = "qubot_messages_received_total";
pub const DROPPED: &str = "qubot_messages_dropped_total";
pub const BYTES_PUBLISHED: &str = "qubot_bytes_published_total";
pub const BYTES_RECEIVED: &str = "qubot_bytes_received_total";
pub const HANDLER_DURATION: &str = "qubot_handler_duration_seconds";
pub const MESSAGE_AGE: &str = "qubot_message_age_seconds";
pub const PIPELINE_LATENCY: &str = "qubot_pipeline_latency_seconds";
pub const MAILBOX_DEPTH: &str = "qubot_mailbox_depth";
pub const MAILBOX_CAPACITY: &str = "qubot_mailbox_capacity";
pub const ACTOR_RESTARTS: &str = "qubot_actor_restarts_total";
pub const SAFE_STOPS: &str = "qubot_safe_stops_total";
pub const BUILD_INFO: &str = "qubot_build_info";
pub const SHM_FALLBACK: &str = "qubot_shm_fallback_total";
pub const PLANNER_CACHE: &str = "qubot_planner_cache_total";
pub const WATCHDOG_SILENCE: &str = "qubot_watchdog_silence_seconds";
pub const REBINDS: &str = "qubot_rebinds_total";
pub const SEQ_EVICTIONS: &str = "qubot_sequence_sources_evicted_total";

/// Registers help text and units for every metric, so `promtool check metrics` is clean and
/// each series is described before its first sample.
pub fn describe_all() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(PUBLISHED, "Messages put on the bus, by actor and topic.");
    describe_counter!(
        RECEIVED,
        "Messages delivered to an actor's handler, by actor and topic."
    );
    describe_counter!(
        DROPPED,
        "Messages dropped before or instead of handling, by actor, topic and reason."
    );
    describe_counter!(
        BYTES_PUBLISHED,
        Unit::Bytes,
        "Wire bytes put on the bus, by actor and topic."
    );
    describe_counter!(
        BYTES_RECEIVED,
        Unit::Bytes,
        "Wire bytes delivered to an actor's handler, by actor and topic."
    );
    describe_histogram!(
        HANDLER_DURATION,
        Unit::Seconds,
        "Time an actor's handler spent on one message."
    );
    describe_histogram!(
        MESSAGE_AGE,
        Unit::Seconds,
        "Receive time minus publish stamp of a message."
    );
    describe_histogram!(
        PIPELINE_LATENCY,
        Unit::Seconds,
        "Sensor capture to command applied at the actuator."
    );
    describe_gauge!(MAILBOX_DEPTH, "Messages waiting in an actor's bounded inbox.");
    describe_gauge!(MAILBOX_CAPACITY, "Capacity of an actor's bounded inbox.");
    describe_counter!(ACTOR_RESTARTS, "Actor processes restarted by the supervisor.");
    describe_counter!(SAFE_STOPS, "Safe stops of the drive, by reason.");
    describe_gauge!(
        BUILD_INFO,
        "Always 1; labels carry the version and the global allocator."
    );
    describe_counter!(
        SHM_FALLBACK,
        "Publishes that used the heap because no SHM buffer could be loaned."
    );
    describe_counter!(
        PLANNER_CACHE,
        "Planner lookup-table cache lookups, by result (hit or miss)."
    );
    describe_gauge!(
        WATCHDOG_SILENCE,
        Unit::Seconds,
        "Time without a fresh command when the actuator watchdog last tripped."
    );
    describe_counter!(
        REBINDS,
        "Times a consumer moved its binding to a restarted producer (new source id), by actor and producer."
    );
    describe_counter!(
        SEQ_EVICTIONS,
        "Publishers whose sequence tracking was evicted to keep the tracker bounded, by actor and topic."
    );
}
