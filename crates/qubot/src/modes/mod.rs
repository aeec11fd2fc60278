//! One module per `qubot` subcommand; shared start-up lives here.

mod actor;
mod flood;
mod health;
mod inject;
mod listen;
mod top;

pub use health::HealthArgs;

use std::process::ExitCode;

use anyhow::Context;
use qubot_bus::{Bus, BusConfig};

use crate::cli::{CommonArgs, Mode};

pub fn run(cli: crate::cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.mode {
        Mode::Up(a) => crate::supervisor::run(a),
        Mode::Sensor(a) => actor::run(actor::Which::Sensor, a),
        Mode::Planner(a) => actor::run(actor::Which::Planner, a),
        Mode::Actuator(a) => actor::run(actor::Which::Actuator, a),
        Mode::Listen(a) => listen::run(a),
        Mode::Flood(a) => flood::run(a),
        Mode::Inject(a) => inject::run(a),
        Mode::Top(a) => top::run(a),
        Mode::Inventory(a) => crate::inventory::run(a),
        Mode::Health(a) => health::run(a),
        Mode::Chaos(a) => crate::chaos::run(a),
        Mode::CleanShm => {
            qubot_bus::cleanup_orphaned_shm_segments();
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Process start-up shared by every mode: metrics exporter, then the zenoh session. Runs on
/// the plain main thread, before any actix System exists (DESIGN §10).
pub(crate) fn start(common: &CommonArgs, actor: &str, default_instance: &str) -> anyhow::Result<Bus> {
    let instance = common.instance.as_deref().unwrap_or(default_instance);
    let mut cfg = BusConfig::new(&common.robot, actor, instance);
    cfg.zenoh_config = common.zenoh_config.clone();
    cfg.zenoh_overrides = common.cfg.clone();
    cfg.listen = common.listen.clone();
    cfg.connect = common.connect.clone();
    cfg.shm_pool_bytes = (common.shm_pool_mib as usize) << 20;
    cfg.shm_threshold_bytes = common.shm_threshold;
    open(&cfg, common.metrics_addr, common.host_label.as_deref())
}

/// Process start-up shared by every mode: metrics exporter (with `robot` and `host` on every
/// series), then the zenoh session. Runs on the plain main thread, before any actix System
/// exists (DESIGN §10).
pub(crate) fn open(
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
