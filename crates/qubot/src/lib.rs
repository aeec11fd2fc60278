//! The `qubot` binary's library: the command line (`cli`, every clap type), dispatch (here),
//! process start-up (`startup`, `telemetry`), the supervisor of `qubot up` (`supervisor`) and
//! the subcommands that run in this process (`modes`). `main.rs` only calls [`main`].
//!
//! Owns: the product's processes and how they start. Operator tooling (chaos, inventory,
//! `/metrics` reading, top's view) is `qubot-ops`, called from here; the node config and the
//! roles are `qubot-node`. Nothing below depends on this crate. Inside it, `cli` imports no
//! module of its own crate and the supervisor none of `modes`.

mod alloc;
/// The global allocator this build links (`qubot_build_info{allocator}`).
pub use alloc::NAME as ALLOCATOR;
pub mod cli;
#[cfg(feature = "dhat-heap")]
pub mod heap;
mod modes;
mod startup;
mod supervisor;
mod telemetry;
mod term;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use qubot_node::Role;

use cli::Mode;

/// Parses the command line, sets up logging and runs the mode; the exit code says how it went.
/// `QUBOT_CLOCK_OFFSET_MS`: simulate a board whose clock is off by that much (every stamp this
/// process makes, and its answers to the clock probe). For chaos runs and tests of freshness;
/// children of `qubot up` inherit it.
pub const CLOCK_OFFSET_ENV: &str = "QUBOT_CLOCK_OFFSET_MS";

fn simulated_clock_offset() -> anyhow::Result<()> {
    let Some(v) = std::env::var_os(CLOCK_OFFSET_ENV) else {
        return Ok(());
    };
    let ms: f64 = v
        .to_str()
        .and_then(|s| s.trim().parse().ok())
        .filter(|ms: &f64| ms.is_finite() && ms.abs() <= 86_400_000.0)
        .ok_or_else(|| {
            anyhow::anyhow!("{CLOCK_OFFSET_ENV}={v:?} is not a number of milliseconds within a day")
        })?;
    if ms != 0.0 {
        tracing::warn!("{CLOCK_OFFSET_ENV}={ms}: this process's clock is deliberately off by {ms} ms");
        qubot_msg::set_clock_offset_ns((ms * 1e6) as i64);
    }
    Ok(())
}

pub fn main() -> ExitCode {
    // Before any thread exists: the environment is only safe to change while nothing else
    // can read it.
    zenoh_runtime_defaults();
    let cli = cli::Cli::parse();
    {
        use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, Layer};
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,zenoh=warn"));
        let log = tracing_subscriber::fmt::layer()
            .with_writer(term::LogWriter)
            .with_filter(filter);
        // Only a router counts its access control's refusals (see modes::router::denials).
        let denials = matches!(cli.mode, cli::Mode::Router(_)).then(modes::router::denials::layer);
        tracing_subscriber::registry().with(log).with(denials).init();
    }
    if let Err(e) = simulated_clock_offset() {
        eprintln!("qubot: error: {e:#}");
        return ExitCode::from(2);
    }
    match dispatch(cli.mode) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qubot: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// zenoh's receive runtime (`rx`) runs two worker threads by default. A Qubot process has a
/// handful of links carrying tens of messages per second, and the second thread only adds
/// cross-thread wake-ups: one receive thread took about a tenth off the pipeline's idle CPU
/// and a quarter off the supervisor's (`just cpu`, BENCHMARKS.md). An operator's own
/// `ZENOH_RUNTIME` is left as it is.
fn zenoh_runtime_defaults() {
    const VAR: &str = "ZENOH_RUNTIME";
    if std::env::var_os(VAR).is_none() {
        std::env::set_var(VAR, "(rx: (worker_threads: 1))");
    }
}

fn dispatch(mode: Mode) -> anyhow::Result<ExitCode> {
    match mode {
        Mode::Up(a) => supervisor::run(a),
        Mode::Sensor(a) => modes::actor::run(Role::Sensor, a),
        Mode::Planner(a) => modes::actor::run(Role::Planner, a),
        Mode::Actuator(a) => modes::actor::run(Role::Actuator, a),
        Mode::Listen(a) => modes::listen::run(a),
        Mode::Record(a) => modes::record::run(a),
        Mode::Replay(a) => modes::replay::run(a),
        Mode::Flood(a) => modes::flood::run(a),
        Mode::Inject(a) => modes::inject::run(a),
        Mode::Top(a) => modes::top::run(a),
        Mode::Inventory(a) => modes::inventory::run(a),
        Mode::Health(a) if a.router => modes::router::health::run(&a),
        Mode::Health(a) => modes::health::run(a),
        Mode::Router(a) => modes::router::run(a),
        Mode::Chaos(a) => qubot_ops::chaos::run(&qubot_ops::chaos::ChaosOptions {
            scenarios: a.scenarios,
            duration_scale: a.duration_scale,
            rss_csv: a.rss_csv,
            // The pipeline and the fault tools are this very binary.
            qubot: std::env::current_exe().context("locating the qubot binary")?,
        }),
        Mode::CleanShm => {
            qubot_bus::cleanup_orphaned_shm_segments();
            Ok(ExitCode::SUCCESS)
        }
    }
}
