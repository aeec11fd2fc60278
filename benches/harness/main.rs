//! qubot-bench: Qubot against raw zenoh, measured side by side in one run (issue: bench
//! harness). `run` orchestrates; `role` is one process of a measured pair.

mod alloc;
mod floor;
mod jitter;
mod plot;
mod replay;
mod report;
mod roles;
mod run;
mod scale;
mod spawn;
mod stats;
mod wake;

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
    /// The fleet's cost curve: a site router and N robots (`qubot up`) on loopback, for each
    /// N; CPU per robot, latency, router cost, cross-robot deliveries; scale.json and plots.
    Scale {
        /// Fleet sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4, 8])]
        robots: Vec<usize>,
        /// Seconds after every loop closed before the window starts.
        #[arg(long, default_value_t = 3.0)]
        warmup: f64,
        /// Seconds measured.
        #[arg(long, default_value_t = 10.0)]
        window: f64,
        /// World every robot drives (a name in --worlds-dir).
        #[arg(long, default_value = "corridor")]
        world: String,
        #[arg(long, default_value = "deploy/worlds")]
        worlds_dir: PathBuf,
        #[arg(long, default_value = "target/scale")]
        out: PathBuf,
    },
    /// The control loop's timeliness: period and lateness of the sensor's and actuator's ticks,
    /// from their histograms and an independent subscriber, at each rate: idle, under a 10x
    /// scan flood, under a CPU hog, and the last two with the realtime profile.
    Jitter {
        /// Sensor rates (Hz); the actuator ticks at 50 Hz for 20, 200 Hz for 100.
        #[arg(long, value_delimiter = ',', default_values_t = [20, 100])]
        rates: Vec<u32>,
        /// Conditions to run (default: all five).
        #[arg(long, value_enum, value_delimiter = ',')]
        conditions: Vec<jitter::Condition>,
        #[arg(long, default_value_t = 3.0)]
        warmup: f64,
        #[arg(long, default_value_t = 15.0)]
        window: f64,
        #[arg(long, default_value = "target/jitter")]
        out: PathBuf,
    },
    /// The platform's floor for a tick's lateness: a plain thread sleeping to absolute
    /// deadlines, and the tick handed to a second thread (no Qubot, zenoh or actix).
    Wake {
        /// Tick rates (Hz).
        #[arg(long, value_delimiter = ',', default_values_t = [20.0, 50.0, 100.0, 200.0])]
        rates: Vec<f64>,
        /// Seconds per rate.
        #[arg(long, default_value_t = 15.0)]
        seconds: f64,
    },
    /// The pipeline's CPU at each sensor rate beside its floor: three raw zenoh processes
    /// moving the same messages at the same rates; floor.json and tables.
    Floor(floor::FloorArgs),
    /// The planner's time per scan on a recording's input (`qubot record`), planned here with
    /// no bus: the way to judge a planner change on the same scans before and after it.
    Replay(replay::ReplayArgs),
    /// One busy core for SECONDS (the jitter bench's CPU hog).
    #[command(hide = true)]
    Hog {
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600))]
        seconds: u64,
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
        Cmd::Scale {
            robots,
            warmup,
            window,
            world,
            worlds_dir,
            out,
        } => {
            if robots.is_empty() || robots.iter().any(|&n| n == 0 || n > 64) {
                anyhow::bail!("--robots: fleet sizes from 1 to 64, got {robots:?}");
            }
            if !(warmup >= 0.0 && window > 0.0 && warmup + window <= 600.0) {
                anyhow::bail!("--warmup and --window: seconds, window > 0, together at most 600");
            }
            let report = scale::run(&scale::Options {
                robots,
                warmup_s: warmup,
                window_s: window,
                world,
                worlds_dir,
                out: out.clone(),
            })?;
            plot::scale(&report, &out)?;
            println!("{}", scale::table(&report));
            println!(
                "scale: {} fleet sizes on {} ({} cpus), rev {}; wrote {}",
                report.points.len(),
                report.machine.cpu,
                report.machine.cpus,
                report.git_rev,
                out.join("scale.json").display()
            );
            Ok(())
        }
        Cmd::Jitter {
            rates,
            conditions,
            warmup,
            window,
            out,
        } => {
            if rates.is_empty() || rates.iter().any(|&r| !(1..=100).contains(&r)) {
                anyhow::bail!("--rates: sensor rates from 1 to 100 Hz, got {rates:?}");
            }
            if !(warmup >= 0.0 && window >= 2.0 && warmup + window <= 300.0) {
                anyhow::bail!("--warmup and --window: seconds, window >= 2, together at most 300");
            }
            let conditions = if conditions.is_empty() {
                jitter::Condition::ALL.to_vec()
            } else {
                conditions
            };
            let report = jitter::run(&jitter::Options {
                rates,
                conditions,
                warmup_s: warmup,
                window_s: window,
                out: out.clone(),
            })?;
            println!("{}", jitter::table(&report));
            println!(
                "jitter: {} cells on {} ({} cpus), rev {}; wrote {}",
                report.cells.len(),
                report.machine.cpu,
                report.machine.cpus,
                report.git_rev,
                out.join("jitter.json").display()
            );
            Ok(())
        }
        Cmd::Wake { rates, seconds } => {
            if rates.is_empty() || rates.iter().any(|&r| !(1.0..=1000.0).contains(&r)) {
                anyhow::bail!("--rates: tick rates from 1 to 1000 Hz, got {rates:?}");
            }
            if !(1.0..=300.0).contains(&seconds) {
                anyhow::bail!("--seconds: from 1 to 300, got {seconds}");
            }
            let floors: Vec<_> = rates.iter().map(|&hz| wake::measure(hz, seconds)).collect();
            println!("{}", wake::table(&floors));
            println!("{}", serde_json::to_string(&floors)?);
            Ok(())
        }
        Cmd::Floor(args) => floor::main(args),
        Cmd::Replay(args) => replay::main(args),
        Cmd::Hog { seconds } => {
            jitter::hog(seconds);
            Ok(())
        }
        Cmd::Role(args) => roles::run(args),
    }
}
