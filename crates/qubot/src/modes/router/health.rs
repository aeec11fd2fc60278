//! `qubot health --router`: is a site router up? It must accept connections on every endpoint
//! it listens on, serve its `/metrics`, and (`--expect-robots`) hold a link from every board of
//! those robots: the deploy passes the robots the previous release served, so a new release
//! that loses a robot is rolled back. `--served` only says which robots it serves now.
//! No zenoh session is opened: with mutual TLS and access control a probe would need a fleet
//! certificate, and what it would learn the router already counts in its own series.

use std::{
    collections::BTreeMap,
    net::TcpStream,
    process::ExitCode,
    time::{Duration, Instant},
};

use qubot_bus::telemetry as names;
use qubot_node::RouterConfig;
use qubot_ops::promtext;

use crate::cli::HealthArgs;

/// What one look at the router found.
#[derive(Default)]
struct Look {
    listening: bool,
    metrics: bool,
    /// Per robot: boards linked, boards expected (the router's own gauges).
    boards: BTreeMap<String, (f64, f64)>,
}

impl Look {
    fn served(&self) -> Vec<&str> {
        self.boards
            .iter()
            .filter(|(_, (seen, expected))| *expected > 0.0 && seen >= expected)
            .map(|(r, _)| r.as_str())
            .collect()
    }
}

pub fn run(args: &HealthArgs) -> anyhow::Result<ExitCode> {
    let cfg = RouterConfig::load(&args.config)?;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        anyhow::bail!("--timeout must be a positive number of seconds");
    }
    let known = cfg.expected_boards();
    if let Some(r) = args
        .expect_robots
        .iter()
        .find(|r| !known.contains_key(r.as_str()))
    {
        anyhow::bail!(
            "--expect-robots: no board of robot {r:?} connects to router {} (its config lists {})",
            cfg.name,
            known.keys().copied().collect::<Vec<_>>().join(", ")
        );
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    loop {
        let look = look(&cfg);
        let served = look.served();
        if args.served && look.metrics {
            println!("{}", served.join(","));
            return Ok(ExitCode::SUCCESS);
        }
        let healthy =
            look.listening && look.metrics && args.expect_robots.iter().all(|r| served.contains(&r.as_str()));
        if healthy || Instant::now() >= deadline {
            if !args.served {
                let boards: serde_json::Map<String, serde_json::Value> = look
                    .boards
                    .iter()
                    .map(|(r, (seen, expected))| {
                        (
                            r.clone(),
                            serde_json::json!({"linked": seen, "expected": expected}),
                        )
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "router": cfg.name,
                        "healthy": healthy,
                        "listening": look.listening,
                        "metrics": look.metrics,
                        "boards": boards,
                        "served": served,
                        "expected": args.expect_robots,
                    })
                );
            }
            return Ok(if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn look(cfg: &RouterConfig) -> Look {
    let mut out = Look {
        listening: cfg.listen.iter().all(|e| accepts(e)),
        ..Look::default()
    };
    let Some(page) = promtext::scrape(&cfg.metrics_addr.to_string()) else {
        return out;
    };
    let Ok(samples) = promtext::parse(&page) else {
        return out;
    };
    out.metrics = samples.iter().any(|s| s.name == names::ROUTER_SESSIONS);
    for s in &samples {
        let slot = match s.name.as_str() {
            n if n == names::ROUTER_BOARDS => 0,
            n if n == names::ROUTER_EXPECTED_BOARDS => 1,
            _ => continue,
        };
        if let Some(robot) = s.label(names::FLEET_ROBOT_LABEL) {
            let e = out.boards.entry(robot.to_owned()).or_default();
            if slot == 0 {
                e.0 = s.value;
            } else {
                e.1 = s.value;
            }
        }
    }
    out
}

/// Does the endpoint (`tcp/<ip>:<port>` or `tls/...`) accept a TCP connection? The TLS
/// handshake is not attempted: it needs a fleet certificate, and zenoh answers it or not
/// whatever the probe proves.
fn accepts(endpoint: &str) -> bool {
    super::socket_addr(endpoint)
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
}
