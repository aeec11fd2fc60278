//! Installs the Prometheus exporter (only the binary does this) with `robot` and `host` on
//! every series, histogram buckets for every duration, build info and process metrics.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use qubot_bus::telemetry as names;

/// Seconds; from 10 µs (one SHM hop) to 10 s (a stalled pipeline).
const LATENCY_BUCKETS: &[f64] = &[
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

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
    let mut b = PrometheusBuilder::new()
        .add_global_label("robot", robot)
        .add_global_label("host", host)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .context("setting histogram buckets")?;
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
