//! The supervisor's own zenoh session: the hub every actor connects to, opened before the
//! run and closed after the report, within a bound.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use qubot_bus::Bus;
use qubot_node::{NodeConfig, SUPERVISOR};

use crate::startup;

/// The supervisor's own session: it is the hub every actor connects to. Without SHM it maps
/// no peer segment and owns none (it only hears small state messages), so after its
/// children's cleanup nothing of the pipeline stays in /dev/shm.
pub fn open(cfg: &NodeConfig, host_label: Option<&str>) -> anyhow::Result<Bus> {
    let bc = startup::node_bus(cfg, SUPERVISOR, "main")
        .with_listen(std::iter::once(cfg.zenoh.hub.clone()).chain(cfg.zenoh.listen.iter().cloned()))
        .with_connect(cfg.zenoh.connect.clone())
        .without_shm();
    let metrics_addr = SocketAddr::new(cfg.metrics_bind, cfg.supervisor.metrics_port);
    startup::open(&bc, Some(metrics_addr), host_label)
        .with_context(|| format!("starting the supervisor (hub {})", cfg.zenoh.hub))
}

/// Leaves the bus (zenoh's close) but not for longer than `limit`: the report is out and the
/// children are gone, so a hung close must not hold the operator's Ctrl-C.
pub fn close_bounded(bus: Bus, limit: Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let closer = std::thread::Builder::new()
        .name("bus-close".into())
        .spawn(move || {
            bus.close();
            let _ = tx.send(());
        });
    if closer.is_ok() && rx.recv_timeout(limit).is_err() {
        tracing::warn!("the zenoh session did not close within {limit:?}; exiting anyway");
    }
}
