//! qubot-bench: Qubot against raw zenoh, measured side by side in one run (issue: bench
//! harness). `run` orchestrates; `role` is one process of a measured pair.

mod alloc;
mod plot;
mod report;
mod roles;
mod run;
mod spawn;
mod stats;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "qubot-bench", about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run every case (latency, throughput, allocations; SHM and TCP; both allocators).
    Run {
        /// Fewer samples and one round: a look in under two minutes.
        #[arg(long)]
        quick: bool,
        /// Where report.json and the SVG plots go.
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
        /// Only one kind of case.
        #[arg(long, value_parser = ["latency", "throughput", "allocs"])]
        only: Option<String>,
    },
    /// One allocations case (raw and Qubot), printed as JSON: what the heap test checks.
    Allocs {
        #[arg(long, value_enum, default_value = "shm")]
        transport: roles::Transport,
        #[arg(long, default_value_t = 64)]
        payload: usize,
        /// Measured messages per side (after 500 warm-up), published at 2000/s.
        #[arg(long, default_value_t = 4000)]
        count: u64,
        /// Raw and Qubot alternate this many times; the figures are the medians.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
        rounds: u32,
    },
    /// One process of a measured pair (started by `run`).
    #[command(hide = true)]
    Role(roles::RoleArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Run { quick, out, only } => {
            let report = run::run(quick, &out, only.as_deref())?;
            println!("{}", report::table(&report));
            println!(
                "bench: {} cases in {:.0} s on {} ({} cpus), rev {}; wrote {}",
                report.cases.len(),
                report.seconds,
                report.machine.cpu,
                report.machine.cpus,
                report.git_rev,
                out.join("report.json").display()
            );
            Ok(())
        }
        Cmd::Allocs {
            transport,
            payload,
            count,
            rounds,
        } => {
            let mut plan = run::Plan::new(true);
            plan.allocs_count = count;
            plan.rounds = rounds;
            let case = run::allocs(&plan, transport, payload, alloc::name())?;
            println!("{}", serde_json::to_string(&case)?);
            Ok(())
        }
        Cmd::Role(args) => roles::run(args),
    }
}
