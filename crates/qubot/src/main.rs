//! `qubot`: the one binary. Thin on purpose: parse, set up logging, dispatch to a mode.

mod alloc;
mod cli;
mod modes;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,zenoh=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match modes::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qubot: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
