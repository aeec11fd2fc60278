//! `qubot health`: is every enabled actor of a node config up? Each must hold its liveliness
//! token on the bus and serve a parseable `/metrics`. The deploy script runs it on the device
//! after a restart and rolls back when it fails within its deadline. It also measures every
//! process's clock on the robot's bus (this host's and other hosts') against its own and fails
//! when one is further off than `max_clock_skew_ms`: freshness budgets assume that bound.
//! With `--loop`, on the host that runs the actuator, it also waits for the robot's loop to
//! close: commands applied, more than [`LOOP_COMMANDS`] of them, and no foreign drop.
//!
//! Below the bus API on purpose: it lists every liveliness token of the robot (a liveliness
//! query on the raw session), where the bus API only binds a consumer to one producer.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use qubot_bus::Bus;
use qubot_node::{NodeConfig, Role, SUPERVISOR};
use qubot_ops::promtext;
use zenoh::Wait;

use crate::{cli::HealthArgs, startup};

/// Commands the actuator must apply during the check for the loop to count as closed (half a
/// second at the sensor's 20 Hz).
const LOOP_COMMANDS: f64 = 10.0;

/// What one check found per process: liveliness token seen, metrics page served.
#[derive(Default)]
struct Seen {
    live: bool,
    metrics: bool,
}

pub fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let cfg = NodeConfig::load(Some(&args.config))?;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        anyhow::bail!("--timeout must be a positive number of seconds");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    let actors: Vec<(&str, &str, u16)> = Role::ALL
        .into_iter()
        .map(|r| (r.name(), cfg.role(r)))
        .filter(|(_, s)| s.enabled)
        .map(|(a, s)| (a, s.instance, s.metrics_port))
        .collect();

    let bc = startup::node_bus(&cfg, "health", &format!("probe{}", std::process::id()))
        .with_connect([cfg.zenoh.hub.clone()])
        .with_listen(cfg.zenoh.listen.clone())
        .without_shm();
    // No metrics exporter here (a probe serves no /metrics), so not `startup::open`.
    let bus = Bus::open(&bc).context("joining the zenoh bus")?;

    let metrics = |port: u16| {
        let addr = SocketAddr::new(cfg.metrics_bind, port).to_string();
        promtext::scrape(&addr)
            .and_then(|t| promtext::parse(&t).ok())
            .is_some_and(|m| m.iter().any(|s| s.name == qubot_bus::telemetry::BUILD_INFO))
    };
    // The actuator's count of applied commands and of foreign drops, when this host runs it.
    let actuator_counts = || {
        let addr = SocketAddr::new(cfg.metrics_bind, cfg.actuator.metrics_port).to_string();
        let m = promtext::parse(&promtext::scrape(&addr)?).ok()?;
        let applied = promtext::received(&m, qubot_msg::topic::CMD.spec());
        let foreign = promtext::dropped(&m, qubot_msg::DropReason::Foreign);
        Some((applied, foreign))
    };
    let check_loop = args.closed_loop && cfg.actuator.enabled;
    let mut loop_start: Option<(f64, f64)> = None;
    let mut loop_now = (0.0, 0.0);
    let mut seen: BTreeMap<&str, Seen> = BTreeMap::new();
    loop {
        let live = live_tokens(&bus, &cfg.robot);
        seen.clear();
        seen.insert(
            SUPERVISOR,
            Seen {
                live: has_token(&live, &qubot_bus::liveliness_key(&cfg.robot, SUPERVISOR, "main")),
                metrics: metrics(cfg.supervisor.metrics_port),
            },
        );
        for (actor, instance, port) in &actors {
            let key = qubot_bus::liveliness_key(&cfg.robot, actor, instance);
            seen.insert(
                actor,
                Seen {
                    live: has_token(&live, &key),
                    metrics: metrics(*port),
                },
            );
        }
        let mut up = seen.values().all(|s| s.live && s.metrics);
        // The loop is judged from the first reading once every process is up.
        let loop_closed = if check_loop && up {
            if let Some(now) = actuator_counts() {
                let start = *loop_start.get_or_insert(now);
                loop_now = (now.0 - start.0, now.1 - start.1);
            }
            loop_now.0 >= LOOP_COMMANDS && loop_now.1 == 0.0
        } else {
            !check_loop
        };
        up &= loop_closed;
        if up || Instant::now() >= deadline {
            let clocks = measure_clocks(&bus, &cfg.robot, cfg.max_clock_skew_ms);
            let healthy = up && clocks.ok;
            let loop_json = if check_loop {
                serde_json::json!({"closed": loop_closed, "commands": loop_now.0, "foreign": loop_now.1})
            } else if args.closed_loop {
                serde_json::json!("actuator not on this host")
            } else {
                serde_json::Value::Null
            };
            let processes: serde_json::Map<String, serde_json::Value> = seen
                .iter()
                .map(|(a, s)| {
                    (
                        a.to_string(),
                        serde_json::json!({"live": s.live, "metrics": s.metrics}),
                    )
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "healthy": healthy,
                    "processes": processes,
                    "clocks": clocks.json,
                    "max_clock_skew_ms": clocks.max_skew_ms,
                    "loop": loop_json,
                })
            );
            bus.close();
            return Ok(if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// What the clock probe found.
struct Clocks {
    /// `<actor>/<instance>/<id>` → offset and round trip, ms.
    json: serde_json::Value,
    /// The largest skew the measurements prove (offset minus its uncertainty), ms.
    max_skew_ms: f64,
    ok: bool,
}

/// Probes every process of the robot (5 exchanges each, best kept), leaving out this probe's
/// own answer, and names on stderr each clock that is off by more than `limit_ms`.
fn measure_clocks(bus: &Bus, robot: &str, limit_ms: f64) -> Clocks {
    let own = format!("{:016x}", bus.source().0);
    let readings = qubot_bus::probe_clocks(bus.session(), robot, 5, Duration::from_secs(1));
    let mut json = serde_json::Map::new();
    let mut max_skew_ms: f64 = 0.0;
    for (who, r) in readings.iter().filter(|(who, _)| !who.ends_with(&own)) {
        let skew = r.skew_at_least_ms();
        max_skew_ms = max_skew_ms.max(skew);
        if skew > limit_ms {
            eprintln!(
                "qubot health: the clock of {who} is {:.1} ms {} this host's (±{:.1} ms): more than max_clock_skew_ms = {limit_ms}",
                r.offset_ms.abs(),
                if r.offset_ms > 0.0 { "ahead of" } else { "behind" },
                r.rtt_ms / 2.0,
            );
        }
        json.insert(
            who.clone(),
            serde_json::json!({"offset_ms": r.offset_ms, "rtt_ms": r.rtt_ms}),
        );
    }
    Clocks {
        json: json.into(),
        max_skew_ms,
        ok: max_skew_ms <= limit_ms,
    }
}

/// A process's token is its liveliness key plus its source id.
fn has_token(live: &[String], prefix: &str) -> bool {
    live.iter().any(|k| {
        k.strip_prefix(prefix)
            .is_some_and(|rest| qubot_bus::token_source(rest).is_some() && rest.starts_with('/'))
    })
}

/// Liveliness tokens of the robot's processes currently visible on the bus.
fn live_tokens(bus: &Bus, robot: &str) -> Vec<String> {
    let sel = format!("qubot/{robot}/@live/**");
    let Ok(replies) = bus
        .session()
        .liveliness()
        .get(sel)
        .timeout(Duration::from_secs(1))
        .wait()
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Ok(r) = replies.recv() {
        if let Ok(s) = r.result() {
            out.push(s.key_expr().as_str().to_owned());
        }
    }
    out
}
