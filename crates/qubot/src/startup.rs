//! Process start-up shared by every mode and the supervisor: the metrics exporter, then the
//! zenoh session, on the plain main thread before any actix System exists (DESIGN §10).

use anyhow::Context;
use qubot_bus::{Bus, BusConfig};
use qubot_node::{LinkProfile, NodeConfig};

use crate::cli::CommonArgs;

/// Process start-up shared by every mode: metrics exporter, then the zenoh session. Runs on
/// the plain main thread, before any actix System exists (DESIGN §10).
pub fn start(common: &CommonArgs, actor: &str, default_instance: &str) -> anyhow::Result<Bus> {
    let instance = common.instance.as_deref().unwrap_or(default_instance);
    let mut cfg = BusConfig::new(&common.robot, actor, instance)
        .with_zenoh_config(common.zenoh_config.clone())
        .with_listen(common.listen.clone())
        .with_connect(common.connect.clone())
        .with_shm_pool_mib(common.shm_pool_mib);
    cfg.zenoh_overrides = common.cfg.clone();
    cfg.shm_threshold_bytes = common.shm_threshold;
    open(&cfg, common.metrics_addr, common.host_label.as_deref())
}

/// Process start-up shared by every mode: metrics exporter (with `robot` and `host` on every
/// series), then the zenoh session. Runs on the plain main thread, before any actix System
/// exists (DESIGN §10).
pub fn open(
    cfg: &BusConfig,
    metrics_addr: Option<std::net::SocketAddr>,
    host_label: Option<&str>,
) -> anyhow::Result<Bus> {
    let host = host_label
        .map(str::to_owned)
        .unwrap_or_else(crate::telemetry::host_name);
    crate::telemetry::install(metrics_addr, &cfg.robot, &host)?;
    Bus::open(cfg).context("joining the zenoh bus")
}

/// The bus identity of one process of the node `cfg`, with the node's zenoh file; the caller
/// adds the endpoints its place in the node calls for.
pub fn node_bus(cfg: &NodeConfig, actor: &str, instance: &str) -> BusConfig {
    let bc = BusConfig::new(&cfg.robot, actor, instance).with_zenoh_config(cfg.zenoh.config.clone());
    match cfg.zenoh.profile {
        LinkProfile::Default => bc,
        LinkProfile::Latency => bc.with_low_latency(),
    }
}
