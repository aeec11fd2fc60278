//! `qubot up`: the supervisor. Validates the node config, spawns each enabled actor as a child
//! process of this binary, restarts crashed ones, referees the run, and stops everything on
//! SIGTERM/SIGINT, at the goal (`--exit-on-goal`) or at the timeout. Its last stdout line is
//! a JSON report of the run.

mod child;
mod events;
mod referee;
mod signals;

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
use qubot_bus::{telemetry, Bus, Received};
use qubot_msg::State;
use qubot_node::{NodeConfig, Role, SUPERVISOR};
use qubot_ops::promtext;
use qubot_robot::World;
use tokio::sync::watch;

use crate::{cli::UpArgs, startup};
use child::{ChildEnd, ChildSpec};
use events::Events;
use referee::Referee;
use signals::Signals;

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
    let mut cfg = resolve_config(&args)?;
    // One world clock for the run: every child (restarted ones too) reads it from the config.
    cfg.start_world_clock();
    let world = cfg.world()?;
    if let Some(t) = args.timeout {
        if !(t.is_finite() && t > 0.0) {
            anyhow::bail!("--timeout must be a positive number of seconds, got {t}");
        }
    }
    // Signals are taken from here on, before any other thread exists: a Ctrl-C at any moment
    // ends in an orderly stop and a report, never in the default action.
    let signals = Signals::block_and_watch().context("taking SIGINT/SIGTERM")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the supervisor runtime")?;
    // Children get the resolved config (defaults + file + flags) as one file, in a private
    // (0700) directory with an unpredictable name, removed when the run ends.
    let run_dir = RunDir::create().context("creating the run directory")?;
    let node_file = run_dir.path().join("node.toml");
    std::fs::write(&node_file, cfg.to_toml()).with_context(|| format!("writing {}", node_file.display()))?;

    // The supervisor only hears small state messages: without SHM it maps no peer segment
    // and owns none, so after its children's cleanup nothing of the pipeline stays in /dev/shm.
    let bc = startup::node_bus(&cfg, SUPERVISOR, "main")
        .with_listen(std::iter::once(cfg.zenoh.hub.clone()).chain(cfg.zenoh.listen.iter().cloned()))
        .with_connect(cfg.zenoh.connect.clone())
        .without_shm();
    let metrics_addr = SocketAddr::new(cfg.metrics_bind, cfg.supervisor.metrics_port);
    let bus = startup::open(&bc, Some(metrics_addr), args.host_label.as_deref())
        .with_context(|| format!("starting the supervisor (hub {})", cfg.zenoh.hub))?;

    let report = rt.block_on(supervise(&bus, &cfg, world, &args, node_file, signals));
    // Blocking helpers (a scrape, an SHM sweep) get a short grace, never an unbounded wait.
    rt.shutdown_timeout(Duration::from_millis(200));
    // Every child has exited: their shared-memory segments are orphans now.
    qubot_bus::cleanup_orphaned_shm_segments();
    drop(run_dir);
    let report = report?;
    println!("{}", report.json);
    let _ = std::io::stdout().flush();
    close_bounded(bus, Duration::from_secs(1));
    Ok(match report.finish {
        Finish::Goal | Finish::Signal => ExitCode::SUCCESS,
        Finish::Timeout | Finish::GaveUp => ExitCode::from(1),
    })
}

/// The run's private directory: `qubot-up-<16 random hex digits>` under `$XDG_RUNTIME_DIR`
/// (per user, tmpfs) when set, else the temp dir; created mode 0700 and never reused (creation
/// fails if the name exists). Removed with everything in it on drop.
struct RunDir(PathBuf);

impl RunDir {
    fn create() -> std::io::Result<RunDir> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("qubot-up-{:016x}", qubot_bus::random_source().0));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(RunDir(dir))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Leaves the bus (zenoh's close) but not for longer than `limit`: the report is out and the
/// children are gone, so a hung close must not hold the operator's Ctrl-C.
fn close_bounded(bus: Bus, limit: Duration) {
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
    cfg.zenoh.connect.extend(args.connect.iter().cloned());
    if let Some(base) = args.metrics_port_base {
        cfg.set_metrics_ports(base);
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
    mut signals: Signals,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let events = Events::new();
    let world_name = world.name.clone();
    // The yardstick for plan quality, on a grid like the planner's (static obstacles only).
    let shortest =
        qubot_robot::shortest_path_m(&world, qubot_robot::PlannerConfig::default().map_resolution_m);
    let referee = Arc::new(Mutex::new(Referee::new(world, cfg.world_epoch_ns)));
    let r = referee.clone();
    // The referee hears only the robot's own actuator (DESIGN §4a): anything else on its key
    // is counted as foreign and never moves the judged pose.
    let bound = bus.bind("actuator", &cfg.actuator.instance).await?;
    let (own, foreign) = (
        bound.filter(),
        metrics::counter!(telemetry::DROPPED, "actor" => "supervisor", "topic" => "state", "reason" => "foreign"),
    );
    let state_sub = bus
        .subscribe(&bound.key("state"), move |sample| {
            if let Ok(m) = Received::<State>::decode(sample.payload().clone()) {
                if own.check(m.header.stamp.source) == qubot_bus::Verdict::Own {
                    r.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .observe(&m.body, m.header.stamp.publish_ns);
                } else {
                    foreign.increment(1);
                }
            }
        })
        .await?;

    let exe = std::env::current_exe().context("locating the qubot binary")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (end_tx, mut end_rx) = tokio::sync::mpsc::unbounded_channel::<(&'static str, ChildEnd)>();
    let mut tasks = Vec::new();
    let mut restart_counts = serde_json::Map::new();
    let mut counts = Vec::new();
    for role in Role::ALL {
        let (actor, on) = (role.name(), cfg.role(role).enabled);
        // Registered for every actor, so dashboards show 0 rather than nothing.
        let restarts = metrics::counter!(telemetry::ACTOR_RESTARTS, "actor" => actor);
        let count = Arc::new(AtomicU64::new(0));
        counts.push((actor, count.clone()));
        if !on {
            continue;
        }
        let spec = ChildSpec {
            actor,
            exe: exe.clone(),
            config: node_file.clone(),
            policy: cfg.supervisor.clone(),
            host_label: args.host_label.clone(),
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
    let actuator_metrics = format!("{}:{}", cfg.metrics_bind, cfg.actuator.metrics_port);
    let status = StatusLine::start(&actuator_metrics);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut goal_announced = false;
    let finish = loop {
        tokio::select! {
            sig = signals.recv() => {
                tracing::info!(signal = sig, "stopping the pipeline");
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
                let (goal, line) = {
                    let r = referee.lock().unwrap_or_else(|p| p.into_inner());
                    (r.goal_reached, status.as_ref().and_then(|s| s.line(&r, started)))
                };
                if goal && !goal_announced {
                    goal_announced = true;
                    events.emit("referee", "goal_reached", serde_json::json!({"t_s": round3(started.elapsed().as_secs_f64())}));
                }
                if args.exit_on_goal && goal {
                    break Finish::Goal;
                }
                if let Some(line) = line {
                    crate::term::show_status(&line);
                }
            }
        }
    };
    drop(status);
    crate::term::end_status();
    // Read the actuator's own account before it stops (off the loop, with a deadline).
    let actuator = scrape_within(actuator_metrics, Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    // Every child gets `stop_timeout_ms` after SIGTERM before SIGKILL; past that (+ margin)
    // the tasks are dropped, which kills what is left (`kill_on_drop`). A second signal
    // skips the grace.
    let grace = Duration::from_millis(cfg.supervisor.stop_timeout_ms) + Duration::from_millis(500);
    let all_stopped = futures_join_all(&mut tasks);
    tokio::select! {
        _ = all_stopped => {}
        _ = tokio::time::sleep(grace) => tracing::warn!("actors did not stop within {grace:?}: killing them"),
        sig = signals.recv() => tracing::warn!(signal = sig, "second signal: killing the actors"),
    }
    for t in tasks.into_iter().filter(|t| !t.is_finished()) {
        t.abort();
        let _ = t.await;
    }
    drop(state_sub);
    drop(bound);
    for (actor, n) in counts {
        restart_counts.insert(actor.into(), n.load(Ordering::Relaxed).into());
    }
    let r = referee.lock().unwrap_or_else(|p| p.into_inner());
    let safe_stops = actuator
        .as_ref()
        .map(|m| promtext::sum(m, telemetry::SAFE_STOPS, &[]));
    let p99_ms = actuator
        .as_ref()
        .and_then(|m| promtext::quantile(m, telemetry::PIPELINE_LATENCY, &[], 0.99))
        .map(|s| s * 1e3);
    let json = serde_json::json!({
        "world": world_name,
        "finish": finish.as_str(),
        "goal_reached": r.goal_reached,
        "duration_s": round3(started.elapsed().as_secs_f64()),
        "min_clearance_m": finite(r.judge.min_clearance_m),
        "robot_radius_m": r.robot_radius_m(),
        "collisions": r.judge.collisions,
        "struck": r.judge.struck,
        "distance_m": round3(r.distance_m),
        "shortest_path_m": shortest.map(round3),
        "path_efficiency": shortest.filter(|_| r.goal_reached).map(|s| round3(r.distance_m / s)),
        "safe_stops": safe_stops,
        "pipeline_latency_p99_ms": p99_ms.and_then(finite),
        "states": r.states,
        "final_pose": r.last.map(|s| [round3(s.x), round3(s.y), round3(s.theta)]),
        "restarts": restart_counts,
    });
    Ok(Report {
        finish,
        json: json.to_string(),
    })
}

fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// Rounded to mm (or µs); `None` (JSON null) for a value that is not finite.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then(|| round3(v))
}

/// Waits for every task (each ends on its own once the stop is sent).
async fn futures_join_all(tasks: &mut [tokio::task::JoinHandle<()>]) {
    for t in tasks.iter_mut() {
        if !t.is_finished() {
            let _ = t.await;
        }
    }
}

/// A scrape on a blocking thread, given up after `limit`.
async fn scrape_within(addr: String, limit: Duration) -> Option<Vec<promtext::Sample>> {
    let job =
        tokio::task::spawn_blocking(move || promtext::scrape(&addr).and_then(|t| promtext::parse(&t).ok()));
    tokio::time::timeout(limit, job).await.ok()?.ok()?
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The actuator's pipeline latency p50 (s) and safe stops, from its latest scrape.
type Figures = (Option<f64>, f64);

/// One refreshed line on a terminal: where the robot is, how far to go, safe stops, command
/// latency. Only when stderr is a terminal. The actuator's figures come from a scraper thread,
/// so a slow `/metrics` never holds the supervisor's loop.
struct StatusLine {
    actuator: Arc<Mutex<Option<Figures>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    last: Mutex<Option<Instant>>,
}

impl StatusLine {
    fn start(actuator_metrics: &str) -> Option<StatusLine> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let line = StatusLine {
            actuator: Arc::default(),
            stop: Arc::default(),
            last: Mutex::new(None),
        };
        let (shared, stop, addr) = (
            line.actuator.clone(),
            line.stop.clone(),
            actuator_metrics.to_owned(),
        );
        let _ = std::thread::Builder::new()
            .name("status-scrape".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let m = promtext::scrape(&addr).and_then(|t| promtext::parse(&t).ok());
                    let figures = m.map(|m| {
                        (
                            promtext::quantile(&m, telemetry::PIPELINE_LATENCY, &[], 0.5),
                            promtext::sum(&m, telemetry::SAFE_STOPS, &[]),
                        )
                    });
                    *shared.lock().unwrap_or_else(|p| p.into_inner()) = figures;
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        Some(line)
    }

    /// The line to show, at most once a second.
    fn line(&self, r: &Referee, started: Instant) -> Option<String> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return None;
        }
        *last = Some(Instant::now());
        let (p50, stops) = self
            .actuator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or((None, 0.0));
        let (pose, dist) = match (r.last, r.distance_to_goal()) {
            (Some(s), Some(d)) => (format!("({:.2}, {:.2})", s.x, s.y), format!("{d:.2} m")),
            _ => ("waiting for state".into(), "-".into()),
        };
        Some(format!(
            "[{:>5.1}s] pose {pose}  to goal {dist}  min clearance {:.2} m  collisions {}  safe stops {stops}  latency p50 {}",
            started.elapsed().as_secs_f64(),
            r.judge.min_clearance_m,
            r.judge.collisions,
            p50.map_or("-".into(), |s| format!("{:.1} ms", s * 1e3)),
        ))
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
