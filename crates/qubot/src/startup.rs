//! Process start-up shared by every mode and the supervisor: the metrics exporter, then the
//! zenoh session, on the plain main thread before any actix System exists (DESIGN §10).

use anyhow::Context;
use qubot_bus::{Bus, BusConfig};
use qubot_node::{LinkProfile, NodeConfig};

use crate::cli::{BusArgs, CommonArgs};

/// Process start-up shared by every mode: metrics exporter, then the zenoh session. Runs on
/// the plain main thread, before any actix System exists (DESIGN §10).
pub fn start(common: &CommonArgs, actor: &str, default_instance: &str) -> anyhow::Result<Bus> {
    let instance = common.instance.as_deref().unwrap_or(default_instance);
    let mut cfg = with_bus_args(BusConfig::new(&common.robot, actor, instance), &common.bus)
        .with_shm_pool_mib(common.shm_pool_mib);
    cfg.shm_threshold_bytes = common.shm_threshold;
    open(&cfg, common.bus.metrics_addr, common.bus.host_label.as_deref())
}

/// `cfg` with the zenoh file, endpoints and overrides of the command line.
pub fn with_bus_args(cfg: BusConfig, bus: &BusArgs) -> BusConfig {
    let mut cfg = cfg
        .with_zenoh_config(bus.zenoh_config.clone())
        .with_listen(bus.listen.clone())
        .with_connect(bus.connect.clone());
    cfg.zenoh_overrides.extend(bus.cfg.iter().cloned());
    cfg
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
