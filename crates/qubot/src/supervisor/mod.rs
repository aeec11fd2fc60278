//! `qubot up`: the supervisor. Validates the node config, spawns each enabled actor as a child
//! process of this binary (and the recorder with `--record`), restarts crashed ones, referees
//! the run, and stops everything on SIGTERM/SIGINT, at the goal (`--exit-on-goal`) or at the
//! timeout. Its last stdout line is a JSON report of the run.
//!
//! In parts: `config` (the one load, with the flags), `run_dir` (where the children's config
//! lives), `actors` and `child` (spawning, restarting, stopping), `recorder` (the recorder's
//! command line and files), `referee` (judging the run from the actuator's state), `finish`
//! (running until the run ends), `status` (the terminal line beside it), `report` and
//! `events` (what goes to stdout, typed in `qubot_ops::run`), `signals`, and `hub` (its own
//! zenoh session). This file strings them together.

mod actors;
mod child;
mod config;
mod events;
mod finish;
mod hub;
mod recorder;
mod referee;
mod report;
mod run_dir;
mod signals;
mod status;

use std::{
    io::Write,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use qubot_bus::Bus;
use qubot_node::NodeConfig;
use qubot_ops::run::{Finish, RunReport};
use qubot_robot::World;

use crate::{cli::UpArgs, startup};
use actors::Actors;
use events::Events;
use recorder::Recorder;
use referee::{Following, Referee};
use report::Report;
use run_dir::RunDir;
use signals::Signals;
use status::StatusLine;

/// A required realtime profile the system would refuse stops the run before anything starts
/// (tried on a thread of the supervisor's own, as its actors would). One that is not required
/// is the actors' to report, each for itself.
fn realtime_granted(cfg: &qubot_node::NodeConfig) -> anyhow::Result<()> {
    let rt = &cfg.realtime;
    if !(rt.enabled && rt.required) || rt.actors.is_empty() {
        return Ok(());
    }
    let p = qubot_actors::timing::profile_of(rt);
    match p.probe().first() {
        None => Ok(()),
        Some(r) => anyhow::bail!("{r} (realtime.required = true: nothing started)"),
    }
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    // Everything is checked before anything starts (exit 2); the world clock is fixed here,
    // one for the whole run and every child, restarted ones too.
    let startup::Node { cfg, world } = config::load(&args)?;
    let recorder = Recorder::plan(&cfg, &args)?;
    realtime_granted(&cfg)?;
    // Signals are taken from here on, before any other thread exists: a Ctrl-C at any moment
    // ends in an orderly stop and a report, never in the default action.
    let signals = Signals::block_and_watch().context("taking SIGINT/SIGTERM")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the supervisor runtime")?;
    let run_dir = RunDir::create().context("creating the run directory")?;
    let node_file = run_dir.write_config(&cfg)?;
    let bus = hub::open(&cfg, args.host_label.as_deref())?;

    let report = rt.block_on(supervise(&bus, &cfg, world, &args, &node_file, recorder, signals));
    // Blocking helpers (a scrape, an SHM sweep) get a short grace, never an unbounded wait.
    rt.shutdown_timeout(Duration::from_millis(200));
    // Every child has exited: their shared-memory segments are orphans now.
    qubot_bus::cleanup_orphaned_shm_segments();
    drop(run_dir);
    let report = report?;
    println!("{}", report.to_json_line());
    let _ = std::io::stdout().flush();
    hub::close_bounded(bus, Duration::from_secs(1));
    Ok(match report.finish {
        Finish::Goal | Finish::Signal => ExitCode::SUCCESS,
        Finish::Timeout | Finish::GaveUp => ExitCode::from(1),
    })
}

/// One run: referee and actors up, until the finish, then the actuator's and the sensor's
/// figures, the stop and the report.
async fn supervise(
    bus: &Bus,
    cfg: &NodeConfig,
    world: World,
    args: &UpArgs,
    node_file: &Path,
    recorder: Option<Recorder>,
    mut signals: Signals,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let events = Events::new();
    let report = Report::start(&world, started);
    let following = Following::start(
        bus,
        &cfg.actuator.instance,
        Referee::new(world, cfg.world_epoch_ns),
    )
    .await?;
    let mut actors = Actors::start(cfg, node_file, recorder, args.host_label.as_deref(), events)?;
    let actuator_metrics = format!("{}:{}", cfg.metrics_bind, cfg.actuator.metrics_port);
    let sensor_metrics = format!("{}:{}", cfg.metrics_bind, cfg.sensor.metrics_port);
    let status = StatusLine::start(&actuator_metrics, following.referee.clone(), started);
    let finish = finish::wait(
        args,
        &mut actors,
        &mut signals,
        &following.referee,
        events,
        started,
    )
    .await;
    StatusLine::stop(status).await;
    // The actuator's and the sensor's own accounts, read side by side before they stop.
    let (actuator, sensor) = tokio::join!(
        report::scrape_within(actuator_metrics, Duration::from_millis(500)),
        report::scrape_within(sensor_metrics, Duration::from_millis(500)),
    );
    let restarts = actors.stop(&mut signals).await;
    let referee = following.referee.clone();
    // Nothing judged after the stop: the referee stops listening.
    drop(following);
    let r = referee::lock(&referee);
    let pages = report::Pages {
        actuator: actuator.as_deref(),
        sensor: sensor.as_deref(),
    };
    Ok(report.finish(finish, &r, pages, restarts))
}
