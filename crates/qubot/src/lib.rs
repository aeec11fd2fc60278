//! The `qubot` binary's library: command line, modes, supervisor, telemetry. `main.rs` only
//! calls [`main`]; integration tests reuse the pieces (e.g. [`promtext`]).

mod alloc;
/// The global allocator this build links (`qubot_build_info{allocator}`).
pub use alloc::NAME as ALLOCATOR;
mod chaos;
pub mod cli;
#[cfg(feature = "dhat-heap")]
pub mod heap;
pub mod inventory;
mod modes;
pub mod promtext;
mod supervisor;
mod telemetry;
mod term;

use std::process::ExitCode;

use clap::Parser;

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
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,zenoh=warn")),
        )
        .with_writer(term::LogWriter)
        .init();
    if let Err(e) = simulated_clock_offset() {
        eprintln!("qubot: error: {e:#}");
        return ExitCode::from(2);
    }
    match modes::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qubot: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
