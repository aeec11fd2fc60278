//! `qubot router`: a site's zenoh router, built from the same zenoh as every actor (no second
//! zenoh build to keep in step). Robots' boards connect to it; within a robot they still talk
//! peer to peer. It routes only what someone subscribed to across robots, and it gossips to
//! other routers only, so no robot's boards learn another robot's addresses from it.

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use qubot_bus::{telemetry, BusConfig};
use zenoh::Wait;

use crate::{cli::RouterArgs, startup};

pub fn run(a: RouterArgs) -> anyhow::Result<ExitCode> {
    let listen = &a.bus.listen;
    if listen.is_empty() {
        anyhow::bail!("a router needs at least one --listen endpoint (e.g. tcp/0.0.0.0:7500)");
    }
    // The command line's overrides apply after the router's own settings.
    let cfg = startup::with_bus_args(BusConfig::new(&a.site, "router", &a.name).as_router(), &a.bus);
    let bus = startup::open(&cfg, a.bus.metrics_addr, a.bus.host_label.as_deref())
        .with_context(|| format!("starting the router on {}", listen.join(", ")))?;
    tracing::info!(?listen, "router up");
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
                _ = tick.tick() => count_sessions(bus.session()),
            }
        }
    });
    tracing::info!(signal = ?how, "router stopping");
    bus.close();
    Ok(ExitCode::SUCCESS)
}

/// Sessions held, by the kind of node at the other end: a board that lost its router shows
/// here first.
fn count_sessions(session: &zenoh::Session) {
    let info = session.info();
    let peers = info.peers_zid().wait().count();
    let routers = info.routers_zid().wait().count();
    metrics::gauge!(telemetry::ROUTER_SESSIONS, "kind" => "peer").set(peers as f64);
    metrics::gauge!(telemetry::ROUTER_SESSIONS, "kind" => "router").set(routers as f64);
}
