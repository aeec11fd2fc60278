//! Metric names of the contract (docs/ARCHITECTURE.md §6), in one place. Dashboards, alerts, tests and the
//! tools that read `/metrics` use exactly these names; `qubot_bus::telemetry` re-exports them
//! with their help texts. Every series also gets `robot` and `host` as global labels from the
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
pub const PLANNER_ROUTE_CELLS: &str = "qubot_planner_route_cells";
pub const WATCHDOG_SILENCE: &str = "qubot_watchdog_silence_seconds";
pub const TICK_LATENESS: &str = "qubot_tick_lateness_seconds";
pub const TICK_PERIOD: &str = "qubot_tick_period_seconds";
pub const TICKS_MISSED: &str = "qubot_ticks_missed_total";
pub const REALTIME_REFUSED: &str = "qubot_realtime_refused_total";
pub const REBINDS: &str = "qubot_rebinds_total";
pub const SEQ_EVICTIONS: &str = "qubot_sequence_sources_evicted_total";
pub const ROUTER_SESSIONS: &str = "qubot_router_sessions";
pub const ROUTER_LINKS: &str = "qubot_router_links";
pub const ROUTER_BOARDS: &str = "qubot_router_boards";
pub const ROUTER_EXPECTED_BOARDS: &str = "qubot_router_expected_boards";
pub const ROUTER_IO_BYTES: &str = "qubot_router_io_bytes_total";
pub const ROUTER_DENIED: &str = "qubot_router_denied_total";
/// The label of the robot a router series is about (`robot` is the router's own site).
pub const FLEET_ROBOT_LABEL: &str = "fleet_robot";
// The recorder (`qubot record`).
pub const RECORD_MESSAGES: &str = "qubot_record_messages_total";
pub const RECORD_BYTES: &str = "qubot_record_bytes_total";
pub const RECORD_DROPPED: &str = "qubot_record_dropped_total";
pub const RECORD_WRITE_ERRORS: &str = "qubot_record_write_errors_total";
pub const RECORD_FILES: &str = "qubot_record_files_total";
pub const RECORD_DISK_LOW: &str = "qubot_record_disk_low_total";
// The live Foxglove view (`qubot record --live`, `qubot up --foxglove`).
pub const VIEW_CLIENTS: &str = "qubot_view_clients";
pub const VIEW_MESSAGES: &str = "qubot_view_messages_total";
pub const VIEW_DROPPED: &str = "qubot_view_dropped_total";
pub const VIEW_UNDERIVED: &str = "qubot_view_underived_total";
