//! `qubot top`: a terminal view of every actor, read from the processes' `/metrics` endpoints
//! (two scrapes an interval apart give the rates).

use std::{
    io::{IsTerminal, Write},
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, Instant},
};

use qubot_node::{NodeConfig, Role, SUPERVISOR};
use qubot_ops::{
    inventory::Inventory,
    top::{render, render_fleet, scrape_all},
};

use crate::cli::TopArgs;

pub fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    if !(args.interval.is_finite() && args.interval > 0.0) {
        anyhow::bail!(
            "--interval must be a positive number of seconds, got {}",
            args.interval
        );
    }
    let endpoints = if let Some(file) = &args.inventory {
        let inv = Inventory::load(file)?;
        let mut out = Vec::new();
        for h in inv.hosts.values() {
            let addr: std::net::IpAddr = h.address.parse()?;
            for p in
                std::iter::once(SUPERVISOR).chain(Role::ALL.map(Role::name).into_iter().filter(|a| h.runs(a)))
            {
                out.push(SocketAddr::new(addr, h.ports.of(p)));
            }
        }
        // The site routers too, after the boards: `--fleet` shows each on its own line.
        for r in inv.routers.values() {
            let addr: std::net::IpAddr = r.address.parse()?;
            out.push(SocketAddr::new(addr, r.metrics_port));
        }
        out
    } else if args.endpoints.is_empty() {
        let cfg = NodeConfig::load(args.config.as_deref())?;
        std::iter::once(cfg.supervisor.metrics_port)
            .chain(Role::ALL.map(|r| cfg.role(r).metrics_port))
            .map(|p| SocketAddr::new(cfg.metrics_bind, p))
            .collect()
    } else {
        args.endpoints.clone()
    };
    let interval = Duration::from_secs_f64(args.interval);
    let mut prev = (Instant::now(), scrape_all(&endpoints));
    let live = !args.once && std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(interval);
        let now = (Instant::now(), scrape_all(&endpoints));
        let dt = now.0.duration_since(prev.0).as_secs_f64();
        let view = if args.fleet { render_fleet } else { render };
        let text = view(&endpoints, &prev.1, &now.1, dt);
        let mut out = std::io::stdout().lock();
        if live {
            // Clear the screen and home the cursor: one refreshed view.
            let _ = write!(out, "\x1b[2J\x1b[H");
        }
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        prev = now;
    }
}
