//! Process start-up shared by every mode and the supervisor: the node config (loaded once,
//! overrides applied in one place), the metrics exporter, then the zenoh session, on the plain
//! main thread before any actix System exists (docs/ARCHITECTURE.md §10).

use std::path::Path;

use anyhow::Context;
use qubot_bus::{Bus, BusConfig};
use qubot_node::{LinkProfile, NodeConfig};
use qubot_robot::World;

use crate::cli::{BusArgs, CommonArgs};

/// Process start-up shared by every mode: metrics exporter, then the zenoh session. Runs on
/// the plain main thread, before any actix System exists (docs/ARCHITECTURE.md §10).
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
/// exists (docs/ARCHITECTURE.md §10).
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

/// A node config as a process runs it, with its world resolved.
pub struct Node {
    pub cfg: NodeConfig,
    pub world: World,
}

/// Whether a config still has to pass its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Not yet: an operator's file, the defaults, command-line overrides.
    No,
    /// By the `qubot up` that started this process: it validated this very config as a whole
    /// before writing it to its private run directory. Resolving the world still checks that.
    BySupervisor,
}

/// The one way a node config is loaded: the file read and parsed once (the built-in defaults
/// without one), then `overrides` (the command line's), relative world paths made absolute
/// (children started elsewhere agree), the whole validated unless already `checked` (errors
/// name the field), the world clock started unless the config fixes it, and the world resolved.
pub fn load_node(
    path: Option<&Path>,
    checked: Checked,
    overrides: impl FnOnce(&mut NodeConfig),
) -> anyhow::Result<Node> {
    let mut cfg = NodeConfig::read(path)?;
    overrides(&mut cfg);
    if cfg.worlds_dir.is_relative() {
        if let Ok(abs) = std::fs::canonicalize(&cfg.worlds_dir) {
            cfg.worlds_dir = abs;
        }
    }
    if checked == Checked::No {
        // One of its checks resolves the world and drops it, hence a second read below
        // (qubot-node has no check that hands the world back).
        cfg.validate()?;
    }
    cfg.start_world_clock();
    let world = cfg.world()?;
    Ok(Node { cfg, world })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_supervisor_checked_is_not_checked_again() {
        let file = std::env::temp_dir().join(format!("qubot-startup-{}.toml", std::process::id()));
        // Valid TOML that validation refuses, and a world clock already fixed.
        std::fs::write(&file, "world_epoch_ns = 7\n[sensor]\nbeams = 10\n").expect("config");
        let unchecked = load_node(Some(&file), Checked::No, |_| {});
        let checked = load_node(Some(&file), Checked::BySupervisor, |_| {});
        let _ = std::fs::remove_file(&file);
        let err = format!("{:#}", unchecked.err().expect("refused"));
        assert!(err.contains("sensor.beams"), "{err}");
        let node = checked.expect("taken as the supervisor wrote it");
        assert_eq!((node.cfg.sensor.beams, node.cfg.world_epoch_ns), (10, 7));
    }

    #[test]
    fn overrides_come_before_the_checks() {
        let node = load_node(None, Checked::No, |cfg| cfg.robot = "bad robot".into());
        let err = format!("{:#}", node.err().expect("refused"));
        assert!(err.contains("robot"), "{err}");
    }
}
