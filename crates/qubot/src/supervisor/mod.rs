//! `qubot up`: the supervisor. Validates the node config, spawns each enabled actor as a child
//! process of this binary, restarts crashed ones, referees the run, and stops everything on
//! SIGTERM/SIGINT, at the goal (`--exit-on-goal`) or at the timeout. Its last stdout line is
//! a JSON report of the run.

mod child;
mod events;
mod referee;

use std::{
    io::{IsTerminal, Write},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use qubot_actors::NodeConfig;
use qubot_bus::{telemetry, Bus, BusConfig, Received};
use qubot_msg::State;
use qubot_robot::World;
use tokio::sync::watch;

use crate::{cli::UpArgs, promtext};
use child::{ChildEnd, ChildSpec};
use events::Events;
use referee::Referee;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    Goal,
    Timeout,
    Signal,
    GaveUp,
}

impl Finish {
    fn as_str(self) -> &'static str {
        match self {
            Finish::Goal => "goal",
            Finish::Timeout => "timeout",
            Finish::Signal => "signal",
            Finish::GaveUp => "gave_up",
        }
    }
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let cfg = resolve_config(&args)?;
    let world = cfg.world()?;
    if let Some(t) = args.timeout {
        if !(t.is_finite() && t > 0.0) {
            anyhow::bail!("--timeout must be a positive number of seconds, got {t}");
        }
    }
    // Children get the resolved config (defaults + file + flags) as one file.
    let run_dir = std::env::temp_dir().join(format!("qubot-up-{}", std::process::id()));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let node_file = run_dir.join("node.toml");
    std::fs::write(&node_file, cfg.to_toml()).with_context(|| format!("writing {}", node_file.display()))?;

    let mut bc = BusConfig::new(&cfg.robot, "supervisor", "main");
    bc.zenoh_config = cfg.zenoh.config.clone();
    bc.listen = std::iter::once(cfg.zenoh.hub.clone())
        .chain(cfg.zenoh.listen.iter().cloned())
        .collect();
    bc.connect = cfg.zenoh.connect.clone();
    bc.shm_pool_bytes = 0;
    // The supervisor only hears small state messages: without SHM it maps no peer segment
    // and owns none, so after its children's cleanup nothing of the pipeline stays in /dev/shm.
    bc.zenoh_overrides
        .push(("transport/shared_memory/enabled".into(), "false".into()));
    let metrics_addr = SocketAddr::new(cfg.metrics_bind, cfg.supervisor.metrics_port);
    let bus = crate::modes::open(&bc, Some(metrics_addr), args.host_label.as_deref())
        .with_context(|| format!("starting the supervisor (hub {})", cfg.zenoh.hub))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the supervisor runtime")?;
    let report = rt.block_on(supervise(&bus, &cfg, world, &args, node_file));
    drop(rt);
    bus.close();
    // Every child has exited: their shared-memory segments are orphans now.
    qubot_bus::cleanup_orphaned_shm_segments();
    let _ = std::fs::remove_dir_all(&run_dir);
    let report = report?;
    println!("{}", report.json);
    Ok(match report.finish {
        Finish::Goal | Finish::Signal => ExitCode::SUCCESS,
        Finish::Timeout | Finish::GaveUp => ExitCode::from(1),
    })
}

/// Defaults, then the config file, then command-line flags; validated as a whole.
fn resolve_config(args: &UpArgs) -> anyhow::Result<NodeConfig> {
    let mut cfg = match &args.config {
        None => NodeConfig::default(),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading node config {}", p.display()))?;
            NodeConfig::from_toml(&text, &p.display().to_string())?
        }
    };
    if let Some(w) = &args.world {
        cfg.world = w.clone();
    }
    if let Some(d) = &args.worlds_dir {
        cfg.worlds_dir = d.clone();
    }
    if let Some(r) = &args.robot {
        cfg.robot = r.clone();
    }
    if let Some(h) = &args.hub {
        cfg.zenoh.hub = h.clone();
    }
    if let Some(base) = args.metrics_port_base {
        cfg.supervisor.metrics_port = base;
        cfg.sensor.metrics_port = base + 1;
        cfg.planner.metrics_port = base + 2;
        cfg.actuator.metrics_port = base + 3;
    }
    // Relative world paths are resolved now, so children started elsewhere agree.
    if cfg.worlds_dir.is_relative() {
        if let Ok(abs) = std::fs::canonicalize(&cfg.worlds_dir) {
            cfg.worlds_dir = abs;
        }
    }
    cfg.validate()?;
    Ok(cfg)
}

struct Report {
    finish: Finish,
    json: String,
}

async fn supervise(
    bus: &Bus,
    cfg: &NodeConfig,
    world: World,
    args: &UpArgs,
    node_file: PathBuf,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let events = Events::new();
    let world_name = world.name.clone();
    let referee = Arc::new(Mutex::new(Referee::new(world)));
    let r = referee.clone();
    let state_key = qubot_bus::key(&cfg.robot, "actuator", "*", "state");
    let state_sub = bus
        .subscribe(&state_key, move |sample| {
            if let Ok(m) = Received::<State>::decode(sample.payload().clone()) {
                r.lock().unwrap_or_else(|p| p.into_inner()).observe(&m.body);
            }
        })
        .await?;

    let exe = std::env::current_exe().context("locating the qubot binary")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (end_tx, mut end_rx) = tokio::sync::mpsc::unbounded_channel::<(&'static str, ChildEnd)>();
    let enabled = [
        ("sensor", cfg.sensor.enabled),
        ("planner", cfg.planner.enabled),
        ("actuator", cfg.actuator.enabled),
    ];
    let mut tasks = Vec::new();
    let mut restart_counts = Vec::new();
    for (actor, on) in enabled {
        // Registered for every actor, so dashboards show 0 rather than nothing.
        let restarts = metrics::counter!(telemetry::ACTOR_RESTARTS, "actor" => actor);
        let count = Arc::new(AtomicU64::new(0));
        restart_counts.push((actor, count.clone()));
        if !on {
            continue;
        }
        let spec = ChildSpec {
            actor,
            exe: exe.clone(),
            config: node_file.clone(),
            policy: cfg.supervisor.clone(),
        };
        let (stop, end) = (stop_rx.clone(), end_tx.clone());
        tasks.push(tokio::spawn(async move {
            let how = child::supervise(spec, stop, events, restarts, count).await;
            let _ = end.send((actor, how));
        }));
    }
    drop(end_tx);

    let deadline = args
        .timeout
        .map(|t| tokio::time::Instant::now() + Duration::from_secs_f64(t));
    let status = StatusLine::new(cfg);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let finish = loop {
        tokio::select! {
            sig = qubot_runtime::shutdown_signal() => {
                tracing::info!(signal = sig.unwrap_or("?"), "stopping the pipeline");
                break Finish::Signal;
            }
            Some((actor, end)) = end_rx.recv() => {
                if end == ChildEnd::GaveUp {
                    tracing::error!(actor, "restart intensity exceeded: giving up");
                    break Finish::GaveUp;
                }
            }
            _ = sleep_until(deadline) => break Finish::Timeout,
            _ = tick.tick() => {
                let r = referee.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if args.exit_on_goal && r.goal_reached {
                    break Finish::Goal;
                }
                status.maybe_print(&r, started);
            }
        }
    };
    status.clear();
    // Read the actuator's own account before it stops.
    let actuator = promtext::scrape(&status.actuator_metrics).and_then(|t| promtext::parse(&t).ok());
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    drop(state_sub);
    let r = referee.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let safe_stops = actuator
        .as_ref()
        .map(|m| promtext::sum(m, telemetry::SAFE_STOPS, &[]));
    let p99_ms = actuator
        .as_ref()
        .and_then(|m| promtext::quantile(m, telemetry::PIPELINE_LATENCY, &[], 0.99))
        .map(|s| s * 1e3);
    let restarts: Vec<String> = restart_counts
        .iter()
        .map(|(a, n)| format!("\"{a}\":{}", n.load(Ordering::Relaxed)))
        .collect();
    let restarts = format!("{{{}}}", restarts.join(","));
    let num = |v: Option<f64>| {
        v.filter(|v| v.is_finite())
            .map_or("null".to_owned(), |v| format!("{v:.3}"))
    };
    let json = format!(
        "{{\"world\":{world_name:?},\"finish\":\"{}\",\"goal_reached\":{},\"duration_s\":{:.3},\"min_clearance_m\":{},\"robot_radius_m\":{},\"collisions\":{},\"safe_stops\":{},\"pipeline_latency_p99_ms\":{},\"states\":{},\"final_pose\":{},\"restarts\":{restarts}}}",
        finish.as_str(),
        r.goal_reached,
        started.elapsed().as_secs_f64(),
        num(Some(r.min_clearance_m)),
        r.robot_radius_m(),
        r.collisions,
        safe_stops.map_or("null".to_owned(), |v| format!("{v}")),
        num(p99_ms),
        r.states,
        r.last.map_or("null".to_owned(), |s| format!("[{:.3},{:.3},{:.3}]", s.x, s.y, s.theta)),
    );
    Ok(Report { finish, json })
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// One refreshed line on a terminal: where the robot is, how far to go, safe stops, command
/// latency. Silent when stderr is not a terminal.
struct StatusLine {
    tty: bool,
    actuator_metrics: String,
    last: Mutex<Instant>,
}

impl StatusLine {
    fn new(cfg: &NodeConfig) -> StatusLine {
        StatusLine {
            tty: std::io::stderr().is_terminal(),
            actuator_metrics: format!("{}:{}", cfg.metrics_bind, cfg.actuator.metrics_port),
            last: Mutex::new(Instant::now()),
        }
    }

    fn maybe_print(&self, r: &Referee, started: Instant) {
        if !self.tty {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() < Duration::from_secs(1) {
            return;
        }
        *last = Instant::now();
        let m = promtext::scrape(&self.actuator_metrics).and_then(|t| promtext::parse(&t).ok());
        let p50 = m
            .as_ref()
            .and_then(|m| promtext::quantile(m, telemetry::PIPELINE_LATENCY, &[], 0.5));
        let stops = m
            .as_ref()
            .map_or(0.0, |m| promtext::sum(m, telemetry::SAFE_STOPS, &[]));
        let (pose, dist) = match (r.last, r.distance_to_goal()) {
            (Some(s), Some(d)) => (format!("({:.2}, {:.2})", s.x, s.y), format!("{d:.2} m")),
            _ => ("waiting for state".into(), "-".into()),
        };
        let line = format!(
            "\r[{:>5.1}s] pose {pose}  to goal {dist}  min clearance {:.2} m  collisions {}  safe stops {stops}  latency p50 {}",
            started.elapsed().as_secs_f64(),
            r.min_clearance_m,
            r.collisions,
            p50.map_or("-".into(), |s| format!("{:.1} ms", s * 1e3)),
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{line}\x1b[K");
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.tty {
            eprintln!();
        }
    }
}
