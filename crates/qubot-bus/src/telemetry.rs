//! Metric names of the contract (docs/ARCHITECTURE.md §6) and their help texts. The names themselves live
//! in `qubot_msg::metric_names`, so tools that read `/metrics` without joining the bus use the
//! same constants; they are re-exported here for the code that records them.

pub use qubot_msg::metric_names::*;

use metrics::Counter;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use qubot_msg::DropReason;

/// The counter of `actor`'s messages on `topic` dropped for `reason`: the one way every layer
/// (intake, inboxes, handlers) counts a drop, so the labels cannot drift apart.
pub fn dropped(actor: &str, topic: &str, reason: DropReason) -> Counter {
    metrics::counter!(
        DROPPED,
        "actor" => actor.to_owned(),
        "topic" => topic.to_owned(),
        "reason" => reason.label()
    )
}

/// Histogram buckets of every duration, in seconds: four per octave (each edge 2^(1/4) ≈ 1.19
/// times the one before) from 10 µs (one SHM hop, a punctual tick) to about 10 s (a stalled
/// pipeline). A quantile read from them is known to within one bucket, ±19 %
/// ([`LATENCY_RESOLUTION`]); the earlier layout (1, 2.5, 5 per decade) could only say "between
/// 2.5 and 5 ms", which decided the chaos judge's 2× ratios by the bucket edges.
pub static LATENCY_BUCKETS: std::sync::LazyLock<Vec<f64>> = std::sync::LazyLock::new(|| {
    (0..=80)
        .map(|i| {
            // Three significant digits, so the `le` labels read as plain numbers.
            three_digits(1e-5 * 2f64.powf(i as f64 / 4.0))
        })
        .collect()
});

/// `v` to three significant digits: how the bucket edges are written, and so as finely as a
/// figure read from them is worth printing.
pub fn three_digits(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(2 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// The ratio between two neighbouring [`LATENCY_BUCKETS`] edges: how finely a quantile read
/// from them is known.
pub const LATENCY_RESOLUTION: f64 = 1.189_207_115;

/// Histogram buckets of the planner's route-field work per step, in cells: 0 is a reused
/// field, a few hundred a local repair, 10^5 and up a whole large window.
pub const CELL_BUCKETS: &[f64] = &[0.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7];

/// The Prometheus exporter as every Qubot process configures it (buckets for every
/// `_seconds` and `_cells` histogram). The binary adds its labels and listener; the bench harness and the
/// heap tests install it as it is, so they measure the production recording path.
pub fn exporter() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_cells".into()), CELL_BUCKETS)
}

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
        TICK_LATENESS,
        Unit::Seconds,
        "How late a periodic tick ran after its deadline, by actor and timer."
    );
    describe_histogram!(
        TICK_PERIOD,
        Unit::Seconds,
        "Time between two runs of a periodic tick, by actor and timer (a skipped tick makes one interval two periods long)."
    );
    describe_counter!(
        TICKS_MISSED,
        "Periodic ticks skipped because they came a period or more late, by actor and timer."
    );
    describe_counter!(
        REALTIME_REFUSED,
        "Parts of the realtime profile the system refused (by part: priority, affinity, mlock)."
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
        "Planner cache lookups, by cache and result: cache=beams (per-beam lookup tables: hit or miss), cache=route (the route field on a detouring step: hit = reused unchanged, repair = repaired where the map changed, miss = computed over the whole window)."
    );
    describe_histogram!(
        PLANNER_ROUTE_CELLS,
        "Route-field cells the planner expanded per detouring step (0 when the field was reused)."
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
    describe_gauge!(
        ROUTER_SESSIONS,
        "zenoh sessions a site router holds, by the kind of node at the other end (peer, router)."
    );
    describe_gauge!(
        ROUTER_LINKS,
        "Links (TCP or TLS connections) a site router holds."
    );
    describe_gauge!(
        ROUTER_BOARDS,
        "Boards of a robot holding at least one link to the site router, by robot."
    );
    describe_gauge!(
        ROUTER_EXPECTED_BOARDS,
        "Boards of a robot the inventory connects to this site router, by robot."
    );
    describe_counter!(
        ROUTER_IO_BYTES,
        Unit::Bytes,
        "Bytes the site router read and wrote through system calls (its links, almost all of it), by direction."
    );
    describe_counter!(
        ROUTER_DENIED,
        "Messages the site router's access control refused, by action and flow (ingress, egress)."
    );
    describe_counter!(RECORD_MESSAGES, "Messages written to the recording, by topic.");
    describe_counter!(
        RECORD_BYTES,
        Unit::Bytes,
        "Wire bytes written to the recording (before compression), by topic."
    );
    describe_counter!(
        RECORD_DROPPED,
        "Messages the recorder received and did not write, by topic and reason (queue_full, writer_stopped)."
    );
    describe_counter!(
        RECORD_WRITE_ERRORS,
        "Errors writing the recording file; the recorder stops writing at the first."
    );
    describe_counter!(
        RECORD_FILES,
        "Recording files started (a split recording starts one per size or time limit)."
    );
    describe_counter!(
        RECORD_DISK_LOW,
        "Recordings closed by the free-disk guard before the disk filled."
    );
}
