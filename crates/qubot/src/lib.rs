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
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,zenoh=warn")),
        )
        .with_writer(term::LogWriter)
        .init();
    match modes::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qubot: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
