//! `qubot router`: a site's zenoh router, built from the same zenoh as every actor (no second
//! zenoh build to keep in step). Robots' boards connect to it; within a robot they still talk
//! peer to peer. It routes only what someone subscribed to across robots, and it gossips to
//! other routers only, so no robot's boards learn another robot's addresses from it.
//!
//! A deployed router runs from its config (`--config router.toml`, generated from the
//! inventory), which also lists the boards that connect to it: each second it says which of
//! them hold a link ([`watch`]), and it counts what its access control refuses ([`denials`]).
//! `qubot health --router` ([`health`]) reads those series.

pub mod denials;
pub mod health;
mod watch;

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use anyhow::Context;
use qubot_bus::BusConfig;
use qubot_node::RouterConfig;

use crate::{cli::RouterArgs, startup};

pub fn run(a: RouterArgs) -> anyhow::Result<ExitCode> {
    let (cfg, metrics, host, watched) = match &a.config {
        Some(path) => {
            let rc = RouterConfig::load(path).context("router config")?;
            let cfg = BusConfig::new(&rc.site, "router", &rc.name)
                .with_zenoh_config(rc.zenoh_config.clone())
                .with_listen(rc.listen.clone())
                .with_connect(rc.connect.clone())
                .as_router();
            (cfg, Some(rc.metrics_addr), Some(rc.name.clone()), Some(rc))
        }
        None => {
            // The command line's overrides apply after the router's own settings.
            let cfg = startup::with_bus_args(BusConfig::new(&a.site, "router", &a.name).as_router(), &a.bus);
            (cfg, a.bus.metrics_addr, a.bus.host_label.clone(), None)
        }
    };
    serve(&cfg, metrics, host.as_deref(), watched)
}

/// The socket address of a zenoh endpoint or locator such as `tls/10.77.0.1:7500` (metadata
/// after `?` or `#` ignored); `None` for one that is no IP socket (a Unix socket).
fn socket_addr(endpoint: &str) -> Option<SocketAddr> {
    let (_, addr) = endpoint.split_once('/')?;
    addr.split(['?', '#']).next()?.parse().ok()
}

fn serve(
    cfg: &BusConfig,
    metrics: Option<SocketAddr>,
    host: Option<&str>,
    watched: Option<RouterConfig>,
) -> anyhow::Result<ExitCode> {
    let listen = &cfg.listen;
    if listen.is_empty() {
        anyhow::bail!("a router needs at least one --listen endpoint (e.g. tcp/0.0.0.0:7500)");
    }
    let bus = startup::open(cfg, metrics, host)
        .with_context(|| format!("starting the router on {}", listen.join(", ")))?;
    tracing::info!(?listen, "router up");
    let mut watch = watch::Watch::new(watched);
    // zenoh's blocking calls (the session counts) refuse a current-thread runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the router's runtime")?;
    let how = rt.block_on(async {
        let signal = qubot_runtime::shutdown_signal();
        tokio::pin!(signal);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                s = &mut signal => return s,
                _ = tick.tick() => watch.tick(bus.session()),
            }
        }
    });
    tracing::info!(signal = ?how, "router stopping");
    bus.close();
    Ok(ExitCode::SUCCESS)
}
