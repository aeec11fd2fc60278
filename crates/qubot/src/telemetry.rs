//! Installs the Prometheus exporter (only the binary does this) with `robot` and `host` on
//! every series, histogram buckets for every duration, build info and process metrics.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use qubot_bus::telemetry as names;

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Installs the recorder; serves `/metrics` on `addr` when given. Call once per process,
/// before any metric is registered.
pub fn install(addr: Option<SocketAddr>, robot: &str, host: &str) -> anyhow::Result<()> {
    let mut b = names::exporter()
        .context("setting histogram buckets")?
        .add_global_label("robot", robot)
        .add_global_label("host", host);
    // Nobody scrapes a tool without a listener: its histograms are drained by an upkeep, as
    // a scrape would, so their samples do not pile up for the life of the process.
    let upkeep = match addr {
        Some(addr) => {
            b = b.with_http_listener(addr);
            b.install()
                .with_context(|| format!("serving metrics on {addr}"))?;
            None
        }
        None => Some(b.install_recorder().context("installing the metrics recorder")?),
    };
    names::describe_all();
    metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "allocator" => crate::alloc::NAME)
        .set(1.0);
    let collector = metrics_process::Collector::default();
    collector.describe();
    collector.collect();
    // One housekeeping thread: process CPU and RSS each second (what a scrape interval
    // needs), and the upkeep every fifth second where nobody scrapes.
    std::thread::Builder::new()
        .name("metrics-housekeeping".into())
        .spawn(move || {
            for tick in 1u64.. {
                std::thread::sleep(Duration::from_secs(1));
                collector.collect();
                if let Some(handle) = upkeep.as_ref().filter(|_| tick % 5 == 0) {
                    handle.run_upkeep();
                }
            }
        })
        .context("starting the metrics housekeeping thread")?;
    Ok(())
}
