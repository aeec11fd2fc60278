//! `qubot-bench floor`: the pipeline's CPU beside its floor (issue "Control-loop timeliness",
//! item 5). For each sensor rate R, in one run and in alternating order:
//!
//! - the raw loop: three processes of this binary (`floor role`, see
//!   [`crate::roles::raw_loop`]), plain zenoh, moving Qubot's messages (same wire sizes, same
//!   QoS, the scan in shared memory) at the same rates (scans at R Hz, a command per scan,
//!   states at the actuator's tick rate) over the same transports, with no actor, no planning
//!   and no simulation;
//! - the pipeline: `qubot up` in the chosen world with a node config setting those rates.
//!
//! After a warm-up, one window per side: CPU time (utime + stime from /proc/<pid>/stat) of the
//! three processes (sensor, planner, actuator) as % of one core. The supervisor is not one of
//! the three (it has no counterpart in the raw loop); its CPU is reported beside. What the
//! pipeline does beyond moving messages is measured separately: the planner's planning time
//! (its `plan` handler, from /metrics: wall time on its worker thread) and the sensor's ray
//! casting (replayed here on the same world: the sensor's `capture` handler time, in
//! floor.json with every other handler's, includes publishing the scan). With `--perf`, one
//! more window per rate and side runs under `perf record` and says where each side's CPU goes,
//! by code and by thread.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use nix::sys::signal::Signal;
use qubot_msg::{ranges_len, topic, HEADER_LEN};
use qubot_ops::{
    process::{free_port_run, Child},
    promtext::{self, Sample},
};
use qubot_robot::{Lidar, LidarConfig, Point, Pose2, World};
use serde::Serialize;

use crate::{
    report::{git_rev, Machine},
    roles::raw_loop::{LoopArgs, LoopReport, Part},
    scale::{children_of, cpu_s, wait},
    spawn::Proc,
    stats::median,
};

/// The pipeline within this factor of its floor is the goal.
pub const GOAL_RATIO: f64 = 1.3;

/// Bodies in the codec's fixed-width encoding (qubot_msg's `Scan`, `Command`, `State`).
const SCAN_BODY: usize = 3 * 8 + 3 * 4 + 4; // pose x, y, theta; angle min, increment, range max; beams
const CMD_BODY: usize = 4 * 8; // v, w, deadline, scan seq
const STATE_BODY: usize = 6 * 8 + 2; // x, y, theta, v, w, last cmd seq; two flags

/// What Qubot puts on the wire per message: header, body, payload (for 720 beams: 2968, 80
/// and 98 bytes, as `qubot listen --print` reports them as `wire_len`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WireBytes {
    pub scan: usize,
    pub cmd: usize,
    pub state: usize,
}

impl WireBytes {
    pub fn for_beams(beams: usize) -> WireBytes {
        WireBytes {
            scan: HEADER_LEN + SCAN_BODY + ranges_len(beams),
            cmd: HEADER_LEN + CMD_BODY,
            state: HEADER_LEN + STATE_BODY,
        }
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FloorArgs {
    #[command(subcommand)]
    role: Option<FloorRole>,
    /// Sensor rates (scans per second), comma-separated, 1 to 100.
    #[arg(long, value_delimiter = ',', default_values_t = [20.0, 100.0])]
    rates: Vec<f64>,
    /// The actuator's tick (state) rate for each of --rates, comma-separated. Default: 50 Hz
    /// at 20 (Qubot's defaults), 200 Hz at 100 (as `jitter` runs it), 2.5 x the sensor's rate
    /// (the defaults' ratio) at any other rate.
    #[arg(long, value_delimiter = ',')]
    tick_hz: Option<Vec<f64>>,
    /// Seconds after the loop closed before the window starts.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Seconds measured per window.
    #[arg(long, default_value_t = 10.0)]
    window: f64,
    /// Raw and pipeline windows per rate, alternating which goes first; the table shows
    /// the medians.
    /// (Three by default: the median of two is their mean, and on a shared machine one
    /// disturbed window would move it.)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    rounds: u32,
    /// Lidar beams (the node config's default).
    #[arg(long, default_value_t = 720)]
    beams: u32,
    /// World the pipeline drives (a name in --worlds-dir).
    #[arg(long, default_value = "corridor")]
    world: String,
    #[arg(long, default_value = "deploy/worlds")]
    worlds_dir: PathBuf,
    #[arg(long, default_value = "target/floor")]
    out: PathBuf,
    /// One more window per rate and side under `perf record`: where the CPU goes.
    #[arg(long)]
    perf: bool,
}

#[derive(Debug, Subcommand)]
enum FloorRole {
    /// One process of the raw loop (started by `floor`).
    #[command(hide = true)]
    Role(LoopArgs),
}

pub fn main(args: FloorArgs) -> anyhow::Result<()> {
    if let Some(FloorRole::Role(a)) = args.role {
        return crate::roles::raw_loop::run(&a);
    }
    let o = Options::from_args(args)?;
    let report = run(&o)?;
    println!("{}", table(&report));
    println!("{}", breakdown(&report));
    if !report.profiles.is_empty() {
        println!("{}", profile_tables(&report));
    }
    println!(
        "floor: {} rate(s) x {} round(s), {:.0} s windows after {:.0} s warm-up, on {} ({} cpus), load average (1 min) {:.2}-{:.2} over the windows, rev {}; wrote {}",
        report.points.len(),
        report.rounds,
        report.window_s,
        report.warmup_s,
        report.machine.cpu,
        report.machine.cpus,
        report.load_1m_min,
        report.load_1m_max,
        report.git_rev,
        o.out.join("floor.json").display()
    );
    Ok(())
}

struct Options {
    rates: Vec<f64>,
    /// The actuator's rate for each of `rates`.
    ticks: Vec<f64>,
    warmup_s: f64,
    window_s: f64,
    rounds: u32,
    beams: u32,
    world: String,
    worlds_dir: PathBuf,
    out: PathBuf,
    perf: bool,
    /// The binaries run: copies made at the start, so a build finishing mid-run changes
    /// nothing (and perf resolves the symbols of what ran).
    qubot: PathBuf,
    bench: PathBuf,
}

impl Options {
    fn from_args(a: FloorArgs) -> anyhow::Result<Options> {
        if a.rates.is_empty() || a.rates.iter().any(|r| !(1.0..=100.0).contains(r)) {
            bail!(
                "--rates: scans per second from 1 to 100 (the sensor's limits), got {:?}",
                a.rates
            );
        }
        let ticks = match a.tick_hz {
            Some(t) if t.len() != a.rates.len() => bail!("--tick-hz: one rate for each of --rates"),
            Some(t) => t,
            None => a.rates.iter().map(|&r| default_tick_hz(r)).collect(),
        };
        if ticks.iter().any(|t| !(5.0..=1000.0).contains(t)) {
            bail!("--tick-hz: actuator rates from 5 to 1000 Hz (its limits), got {ticks:?}");
        }
        if !(a.warmup >= 0.0 && a.window >= 1.0 && a.warmup + a.window <= 300.0) {
            bail!("--warmup and --window: seconds, window >= 1, together at most 300");
        }
        if !(360..=4096).contains(&a.beams) {
            bail!("--beams: 360 to 4096");
        }
        let qubot = crate::spawn::qubot_beside()?;
        if a.perf
            && !Command::new("perf")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        {
            bail!("--perf: no perf on PATH (apt-get install linux-perf)");
        }
        let bin = a.out.join("bin");
        std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
        let bench = bin.join("qubot-bench");
        let me = std::env::current_exe().context("locating qubot-bench")?;
        std::fs::copy(&me, &bench).with_context(|| format!("copying {}", me.display()))?;
        std::fs::copy(&qubot, bin.join("qubot")).with_context(|| format!("copying {}", qubot.display()))?;
        let qubot = bin.join("qubot");
        Ok(Options {
            rates: a.rates,
            ticks,
            warmup_s: a.warmup,
            window_s: a.window,
            rounds: a.rounds,
            beams: a.beams,
            world: a.world,
            worlds_dir: a.worlds_dir,
            out: a.out,
            perf: a.perf,
            qubot,
            bench,
        })
    }

    fn wire(&self) -> WireBytes {
        WireBytes::for_beams(self.beams as usize)
    }

    fn tick_hz(&self, rate: f64) -> f64 {
        self.rates
            .iter()
            .zip(&self.ticks)
            .find(|(&r, _)| r == rate)
            .map_or_else(|| default_tick_hz(rate), |(_, &t)| t)
    }
}

/// The actuator's rate for a sensor rate, when --tick-hz does not say.
fn default_tick_hz(rate: f64) -> f64 {
    match rate {
        20.0 => 50.0,
        100.0 => 200.0,
        r => 2.5 * r,
    }
}

#[derive(Debug, Serialize)]
pub struct FloorReport {
    pub machine: Machine,
    pub git_rev: String,
    pub world: String,
    pub warmup_s: f64,
    pub window_s: f64,
    pub rounds: u32,
    pub beams: u32,
    pub wire_bytes: WireBytes,
    /// CPU time of one simulated scan (ray casting `beams` beams in the world), replayed in
    /// the harness: what the sensor does beyond publishing.
    pub raycast_us_per_scan: f64,
    pub points: Vec<FloorPoint>,
    /// Every measured window, in the order run.
    pub windows: Vec<Window>,
    pub profiles: Vec<Profiled>,
    pub load_1m_min: f64,
    pub load_1m_max: f64,
}

/// One rate: medians over the rounds.
#[derive(Debug, Serialize)]
pub struct FloorPoint {
    pub rate_hz: f64,
    pub tick_hz: f64,
    /// The three raw processes, % of one core (sum).
    pub raw_cpu_pct: f64,
    /// The three actor processes (sensor, planner, actuator), % of one core (sum).
    pub pipeline_cpu_pct: f64,
    pub ratio: f64,
    pub goal_met: bool,
    /// The same two sums and their ratio from the processes' nanosecond CPU clocks.
    pub raw_run_pct: f64,
    pub pipeline_run_pct: f64,
    pub run_ratio: f64,
    /// Time in the planner's `plan` handler (the planning step, on its worker thread) per
    /// second, % of one core; and as a share of the pipeline's CPU.
    pub plan_pct: f64,
    pub plan_share: f64,
    /// The sensor's ray casting at this rate, % of one core (replayed estimate).
    pub raycast_pct: f64,
    /// The pipeline without planning and ray casting, and its ratio to the floor.
    pub messaging_pct: f64,
    pub messaging_ratio: f64,
    /// Not in the sum: `qubot up` itself (spawning, supervising, the referee).
    pub supervisor_cpu_pct: f64,
    pub raw_processes: BTreeMap<String, ProcCost>,
    pub pipeline_processes: BTreeMap<String, ProcCost>,
    /// Commands reaching the actuator per second.
    pub raw_loop_hz: f64,
    pub pipeline_loop_hz: f64,
    pub load_1m: f64,
    pub steal_pct: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub rate_hz: f64,
    pub round: u32,
    pub side: &'static str,
    #[serde(flatten)]
    pub measured: Side,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcCost {
    /// CPU time per second of the window, % of one core (utime + stime, /proc/<pid>/stat:
    /// 10 ms resolution).
    pub cpu_pct: f64,
    /// The same from the process's CPU-time clock (`clock_getcpuclockid`: nanoseconds, every
    /// thread, those that ended included): a cross-check at full resolution.
    pub run_pct: f64,
    /// Time its threads were runnable but waited for a CPU (/proc/<pid>/task/<tid>/schedstat),
    /// % of one core: how much the machine's other load got in the way.
    pub runq_wait_pct: f64,
    /// Context switches (voluntary + involuntary) per second: wake-ups. This and the wait
    /// count the threads alive at both ends of the window (zenoh ends idle helper threads
    /// about 10 s after start).
    pub ctxt_switches_per_s: f64,
    pub threads: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    pub window_s: f64,
    /// Sensor, planner, actuator.
    pub processes: BTreeMap<String, ProcCost>,
    pub cpu_pct: f64,
    pub supervisor: Option<ProcCost>,
    pub scan_hz: f64,
    pub cmd_hz: f64,
    pub state_hz: f64,
    /// Pipeline: time in handlers per second, % of one core, by `actor/message`.
    pub handler_pct: BTreeMap<String, f64>,
    /// Pipeline: the robot reached its goal before the window ended (the loop runs on, the
    /// planner commanding a stop).
    pub goal_reached: Option<bool>,
    pub load_avg: [f64; 3],
    /// Time the hypervisor gave this VM's CPUs to others during the window (/proc/stat
    /// steal), % of all CPU time: noise no process here controls.
    pub steal_pct: f64,
    /// Raw: what each process reported.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub raw_reports: Vec<LoopReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Profiled {
    pub rate_hz: f64,
    pub side: &'static str,
    pub cpu_pct: f64,
    pub profile: Profile,
}

fn run(o: &Options) -> anyhow::Result<FloorReport> {
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let raycast = raycast_us_per_scan(o).context("replaying the sensor's ray casting")?;
    let mut windows = Vec::new();
    for round in 0..o.rounds {
        for &rate in &o.rates {
            let raw_first = round % 2 == 0;
            for raw in [raw_first, !raw_first] {
                let side = if raw { "raw" } else { "pipeline" };
                eprintln!("floor: {rate} Hz, round {}, {side}", round + 1);
                let measured = if raw {
                    raw_window(o, rate, None)
                } else {
                    pipeline_window(o, rate, None)
                }
                .with_context(|| format!("{side} at {rate} Hz"))?
                .0;
                windows.push(Window {
                    rate_hz: rate,
                    round,
                    side,
                    measured,
                });
            }
        }
    }
    let mut profiles = Vec::new();
    if o.perf {
        for &rate in &o.rates {
            for side in ["raw", "pipeline"] {
                eprintln!("floor: {rate} Hz, {side} under perf");
                let file = o.out.join(format!("perf-{side}-{rate}hz.data"));
                let (measured, profile) = if side == "raw" {
                    raw_window(o, rate, Some(&file))
                } else {
                    pipeline_window(o, rate, Some(&file))
                }
                .with_context(|| format!("{side} at {rate} Hz under perf"))?;
                if let Some(profile) = profile {
                    profiles.push(Profiled {
                        rate_hz: rate,
                        side,
                        cpu_pct: measured.cpu_pct,
                        profile,
                    });
                }
            }
        }
    }
    let points = o
        .rates
        .iter()
        .map(|&rate| point(o, rate, raycast, &windows))
        .collect();
    let loads: Vec<f64> = windows.iter().map(|w| w.measured.load_avg[0]).collect();
    let report = FloorReport {
        machine: Machine::read(),
        git_rev: git_rev(),
        world: o.world.clone(),
        warmup_s: o.warmup_s,
        window_s: o.window_s,
        rounds: o.rounds,
        beams: o.beams,
        wire_bytes: o.wire(),
        raycast_us_per_scan: raycast,
        points,
        windows,
        profiles,
        load_1m_min: loads.iter().cloned().fold(f64::INFINITY, f64::min),
        load_1m_max: loads.iter().cloned().fold(0.0, f64::max),
    };
    std::fs::write(o.out.join("floor.json"), serde_json::to_string_pretty(&report)?)?;
    if !o.perf {
        // perf's data needs the binaries to name functions; without it they can go.
        let _ = std::fs::remove_dir_all(o.out.join("bin"));
    }
    Ok(report)
}

fn point(o: &Options, rate: f64, raycast_us: f64, windows: &[Window]) -> FloorPoint {
    let of = |side: &str| -> Vec<&Side> {
        windows
            .iter()
            .filter(|w| w.rate_hz == rate && w.side == side)
            .map(|w| &w.measured)
            .collect()
    };
    let (raw, pipe) = (of("raw"), of("pipeline"));
    let med =
        |sides: &[&Side], f: &dyn Fn(&Side) -> f64| median(&sides.iter().map(|s| f(s)).collect::<Vec<_>>());
    let procs = |sides: &[&Side]| -> BTreeMap<String, ProcCost> {
        Part::ALL
            .iter()
            .map(|p| {
                let get = |s: &Side| s.processes.get(p.name()).cloned().unwrap_or_default();
                let cost = ProcCost {
                    cpu_pct: med(sides, &|s| get(s).cpu_pct),
                    run_pct: med(sides, &|s| get(s).run_pct),
                    runq_wait_pct: med(sides, &|s| get(s).runq_wait_pct),
                    ctxt_switches_per_s: med(sides, &|s| get(s).ctxt_switches_per_s),
                    threads: get(sides[0]).threads,
                };
                (p.name().to_owned(), cost)
            })
            .collect()
    };
    let raw_cpu = med(&raw, &|s| s.cpu_pct);
    let pipe_cpu = med(&pipe, &|s| s.cpu_pct);
    let plan = med(&pipe, &|s| {
        s.handler_pct.get("planner/plan").copied().unwrap_or(0.0)
    });
    let raycast = raycast_us * rate * 1e-4;
    let messaging = pipe_cpu - plan - raycast;
    let ratio = pipe_cpu / raw_cpu;
    let all: Vec<&Side> = raw.iter().chain(&pipe).copied().collect();
    let run = |s: &Side| s.processes.values().map(|c| c.run_pct).sum::<f64>();
    let (raw_run, pipe_run) = (med(&raw, &run), med(&pipe, &run));
    FloorPoint {
        rate_hz: rate,
        tick_hz: o.tick_hz(rate),
        raw_cpu_pct: raw_cpu,
        pipeline_cpu_pct: pipe_cpu,
        ratio,
        goal_met: ratio <= GOAL_RATIO,
        raw_run_pct: raw_run,
        pipeline_run_pct: pipe_run,
        run_ratio: pipe_run / raw_run,
        plan_pct: plan,
        plan_share: plan / pipe_cpu,
        raycast_pct: raycast,
        messaging_pct: messaging,
        messaging_ratio: messaging / raw_cpu,
        supervisor_cpu_pct: med(&pipe, &|s| s.supervisor.as_ref().map_or(0.0, |c| c.cpu_pct)),
        raw_processes: procs(&raw),
        pipeline_processes: procs(&pipe),
        raw_loop_hz: med(&raw, &|s| s.cmd_hz),
        pipeline_loop_hz: med(&pipe, &|s| s.cmd_hz),
        load_1m: med(&all, &|s| s.load_avg[0]),
        steal_pct: med(&all, &|s| s.steal_pct),
    }
}

// ---- the two sides -------------------------------------------------------------------

/// The raw loop at `rate` for one window (under perf when `perf` names a data file).
fn raw_window(o: &Options, rate: f64, perf: Option<&Path>) -> anyhow::Result<(Side, Option<Profile>)> {
    let base = free_port_run(3)?;
    let endpoint = |i: usize| format!("tcp/127.0.0.1:{}", base as usize + i);
    let wire = o.wire();
    let max_seconds = o.warmup_s + o.window_s + 60.0;
    let mut procs = Vec::new();
    for (i, part) in Part::ALL.into_iter().enumerate() {
        let part_rate = match part {
            Part::Sensor => rate,
            Part::Planner => 0.0,
            Part::Actuator => o.tick_hz(rate),
        };
        let mut argv: Vec<String> = ["floor", "role", "--part", part.name(), "--listen"]
            .map(String::from)
            .to_vec();
        argv.push(endpoint(i));
        for j in 0..i {
            argv.extend(["--connect".into(), endpoint(j)]);
        }
        for (k, v) in [
            ("--rate", part_rate.to_string()),
            ("--scan-bytes", wire.scan.to_string()),
            ("--cmd-bytes", wire.cmd.to_string()),
            ("--state-bytes", wire.state.to_string()),
            ("--max-seconds", max_seconds.to_string()),
        ] {
            argv.extend([k.into(), v]);
        }
        let p = Proc::start_exe(
            &o.bench,
            argv,
            "mimalloc",
            format!("raw {} ({rate} Hz)", part.name()),
        )?;
        let ready = p.line(Duration::from_secs(20))?;
        if ready != "ready" {
            bail!("raw {}: expected \"ready\", got {ready:?}", part.name());
        }
        procs.push((part, p));
    }
    std::thread::sleep(Duration::from_secs_f64(o.warmup_s));
    let pids: BTreeMap<String, u32> = procs
        .iter()
        .map(|(part, p)| (part.name().to_owned(), p.id()))
        .collect();
    let (a, b, profile) = measure(o, &pids, &|| Ok(BTreeMap::new()), perf)?;
    let mut reports = Vec::new();
    for (_, p) in &mut procs {
        p.close_stdin();
    }
    for (_, p) in procs {
        reports.push(p.last_json::<LoopReport>(Duration::from_secs(30))?);
    }
    let report = |part: Part| reports.iter().find(|r| r.part == part.name());
    let received_hz = |part: Part, topic: &str| {
        report(part)
            .and_then(|r| r.received_hz.get(topic).copied())
            .unwrap_or(0.0)
    };
    let mut side = side_from(&a, &b);
    side.scan_hz = received_hz(Part::Planner, "scan");
    side.cmd_hz = received_hz(Part::Actuator, "cmd");
    side.state_hz = report(Part::Actuator).map_or(0.0, |r| r.published_hz);
    if side.cmd_hz < 0.8 * rate {
        bail!(
            "raw loop at {rate} Hz: only {:.1} commands/s reached the actuator ({reports:?})",
            side.cmd_hz
        );
    }
    side.raw_reports = reports;
    Ok((side, profile))
}

/// `qubot up` at `rate` for one window (under perf when `perf` names a data file).
fn pipeline_window(o: &Options, rate: f64, perf: Option<&Path>) -> anyhow::Result<(Side, Option<Profile>)> {
    let base = free_port_run(5)?;
    let config = o.out.join(format!("node-{rate}hz.toml"));
    let log = o.out.join(format!("up-{rate}hz.log"));
    std::fs::write(
        &config,
        format!(
            "# qubot-bench floor: the pipeline at {rate} Hz\n[sensor]\nbeams = {}\nrate_hz = {rate:?}\n\n[actuator]\ntick_hz = {:?}\n",
            o.beams,
            o.tick_hz(rate)
        ),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let timeout = (o.warmup_s + o.window_s + 120.0).ceil().to_string();
    let mut cmd = Command::new(&o.qubot);
    cmd.args(["up", "--config"])
        .arg(&config)
        .args(["--world", &o.world, "--worlds-dir"])
        .arg(&o.worlds_dir)
        .args([
            "--metrics-port-base",
            &base.to_string(),
            "--hub",
            &format!("tcp/127.0.0.1:{}", base + 4),
            "--timeout",
            &timeout,
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        // Not a terminal: no status line, whose once-a-second scrape of the actuator's
        // /metrics would be work the raw loop does not do.
        .stderr(Stdio::from(
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?,
        ));
    let goal = Arc::new(Mutex::new(None::<Instant>));
    let g = goal.clone();
    let mut sup = Child::spawn_tapped("qubot up", cmd, move |line| {
        if line.contains("\"event\":\"goal_reached\"") {
            *g.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
    })
    .context("starting qubot up")?;
    let page =
        |offset: u16| promtext::parse(&promtext::scrape(&format!("127.0.0.1:{}", base + offset))?).ok();
    wait("the pipeline's loop closing", Duration::from_secs(120), || {
        (promtext::received(&page(3)?, topic::CMD.spec()) >= 20.0).then_some(())
    })
    .with_context(|| format!("qubot up's log: {}", log.display()))?;
    std::thread::sleep(Duration::from_secs_f64(o.warmup_s));
    let mut pids = wait("the three actor processes", Duration::from_secs(10), || {
        actor_pids(sup.id())
    })?;
    pids.insert(SUPERVISOR.into(), sup.id());
    let scrape = || -> anyhow::Result<BTreeMap<String, Vec<Sample>>> {
        Part::ALL
            .iter()
            .zip(1u16..)
            .map(|(p, offset)| {
                let m = page(offset).ok_or_else(|| anyhow!("{} /metrics", p.name()))?;
                Ok((p.name().to_owned(), m))
            })
            .collect()
    };
    let (a, b, profile) = measure(o, &pids, &scrape, perf)?;
    let reached = goal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some_and(|t| t <= b.at);
    let _ = sup.stop(Signal::SIGINT, Duration::from_secs(20));

    let mut side = side_from(&a, &b);
    let secs = side.window_s;
    let pages: BTreeMap<&str, Vec<Sample>> = Part::ALL
        .iter()
        .map(|p| {
            let name = p.name();
            (name, promtext::window(&a.pages[name], &b.pages[name]))
        })
        .collect();
    side.scan_hz = promtext::published(&pages["sensor"], topic::SCAN.spec()) / secs;
    side.cmd_hz = promtext::received(&pages["actuator"], topic::CMD.spec()) / secs;
    side.state_hz = promtext::published(&pages["actuator"], topic::STATE.spec()) / secs;
    for m in pages.values() {
        for s in m
            .iter()
            .filter(|s| s.name == "qubot_handler_duration_seconds_sum")
        {
            let (Some(actor), Some(message)) = (s.label("actor"), s.label("message")) else {
                continue;
            };
            *side.handler_pct.entry(format!("{actor}/{message}")).or_default() += s.value / secs * 100.0;
        }
    }
    side.goal_reached = Some(reached);
    if side.cmd_hz < 0.8 * rate {
        bail!(
            "pipeline at {rate} Hz: only {:.1} commands/s reached the actuator",
            side.cmd_hz
        );
    }
    Ok((side, profile))
}

const SUPERVISOR: &str = "supervisor";

/// The supervisor's three actor children by role (an actor's first argument is its role).
fn actor_pids(supervisor: u32) -> Option<BTreeMap<String, u32>> {
    let found: BTreeMap<String, u32> = children_of(supervisor)
        .into_iter()
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let role = String::from_utf8_lossy(cmdline.split(|&b| b == 0).nth(1)?).into_owned();
            Part::ALL.iter().any(|p| p.name() == role).then_some((role, pid))
        })
        .collect();
    (found.len() == Part::ALL.len()).then_some(found)
}

// ---- one window --------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct ProcSnap {
    alive: bool,
    cpu_s: f64,
    cpu_ns: u64,
    /// Thread id -> (context switches, ns waited on a run queue).
    tasks: BTreeMap<u32, (u64, u64)>,
}

impl ProcSnap {
    fn read(pid: u32) -> ProcSnap {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return ProcSnap::default();
        };
        let mut s = ProcSnap {
            alive: true,
            cpu_s: cpu_s(pid),
            cpu_ns: process_cpu_ns(pid).unwrap_or(0),
            ..ProcSnap::default()
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            let ctxt = status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
            // Nanoseconds on a CPU, waiting on a run queue, time slices.
            let sched = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            let wait = sched
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            s.tasks.insert(tid, (ctxt, wait));
        }
        s
    }
}

/// CPU time of a whole process (every thread, ended ones too) in nanoseconds.
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let mut clock: libc::clockid_t = 0;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both out-pointers are valid for writes; a bad pid is an error return.
    let ok = unsafe {
        libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0
            && libc::clock_gettime(clock, &mut ts) == 0
    };
    ok.then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

struct Snap {
    at: Instant,
    procs: BTreeMap<String, ProcSnap>,
    pages: BTreeMap<String, Vec<Sample>>,
    load: [f64; 3],
    /// /proc/stat's "cpu" line: (steal, all) in ticks.
    steal: (u64, u64),
}

fn load_avg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut v = text.split_whitespace().filter_map(|f| f.parse::<f64>().ok());
    [(); 3].map(|_| v.next().unwrap_or(f64::NAN))
}

fn steal_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let f: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    (f.get(7).copied().unwrap_or(0), f.iter().sum())
}

type Scrape<'a> = &'a dyn Fn() -> anyhow::Result<BTreeMap<String, Vec<Sample>>>;

/// The window: a snapshot, `window_s` (under perf, when asked), a snapshot. The /metrics
/// scrapes sit outside the CPU readings at both ends, so the window counts none of them.
fn measure(
    o: &Options,
    pids: &BTreeMap<String, u32>,
    scrape: Scrape<'_>,
    perf: Option<&Path>,
) -> anyhow::Result<(Snap, Snap, Option<Profile>)> {
    let procs = || {
        pids.iter()
            .map(|(n, &p)| (n.clone(), ProcSnap::read(p)))
            .collect()
    };
    let pages = scrape()?;
    let start = Snap {
        procs: procs(),
        at: Instant::now(),
        pages,
        load: load_avg(),
        steal: steal_ticks(),
    };
    match perf {
        Some(file) => record(pids, o.window_s, file)?,
        None => std::thread::sleep(Duration::from_secs_f64(o.window_s)),
    }
    let end_at = Instant::now();
    let end_procs: BTreeMap<String, ProcSnap> = procs();
    let end = Snap {
        at: end_at,
        procs: end_procs,
        pages: scrape()?,
        load: load_avg(),
        steal: steal_ticks(),
    };
    if let Some((name, _)) = end.procs.iter().find(|(_, s)| !s.alive) {
        bail!("{name} exited during the window");
    }
    let profile = match perf {
        Some(file) => Some(summarize(file, pids, o.window_s)?),
        None => None,
    };
    Ok((start, end, profile))
}

fn side_from(a: &Snap, b: &Snap) -> Side {
    let secs = (b.at - a.at).as_secs_f64();
    let cost = |name: &str| -> Option<ProcCost> {
        let (x, y) = (a.procs.get(name)?, b.procs.get(name)?);
        let ns_pct = |b: u64, a: u64| b.saturating_sub(a) as f64 * 1e-9 / secs * 100.0;
        // Threads alive at both ends.
        let (mut ctxt, mut wait) = (0, 0);
        for (tid, &(c1, w1)) in &y.tasks {
            if let Some(&(c0, w0)) = x.tasks.get(tid) {
                ctxt += c1.saturating_sub(c0);
                wait += w1.saturating_sub(w0);
            }
        }
        Some(ProcCost {
            cpu_pct: (y.cpu_s - x.cpu_s) / secs * 100.0,
            run_pct: ns_pct(y.cpu_ns, x.cpu_ns),
            runq_wait_pct: ns_pct(wait, 0),
            ctxt_switches_per_s: ctxt as f64 / secs,
            threads: y.tasks.len(),
        })
    };
    let processes: BTreeMap<String, ProcCost> = Part::ALL
        .iter()
        .filter_map(|p| Some((p.name().to_owned(), cost(p.name())?)))
        .collect();
    Side {
        window_s: secs,
        cpu_pct: processes.values().map(|c| c.cpu_pct).sum(),
        processes,
        supervisor: cost(SUPERVISOR),
        load_avg: b.load,
        steal_pct: {
            let (steal, all) = (
                b.steal.0.saturating_sub(a.steal.0),
                b.steal.1.saturating_sub(a.steal.1),
            );
            steal as f64 / all.max(1) as f64 * 100.0
        },
        ..Side::default()
    }
}

// ---- what the pipeline does beyond messaging ---------------------------------------------

/// CPU time of one scan of the simulated lidar: `beams` rays cast in the world with its
/// movers placed, as the sensor's capture does, from poses spread over the world's free
/// space (the cast tests every shape, so the pose matters little). Thread CPU time, so a
/// busy machine does not inflate it.
fn raycast_us_per_scan(o: &Options) -> anyhow::Result<f64> {
    let world = World::resolve(&o.world, &o.worlds_dir)?;
    let lidar = Lidar::new(LidarConfig {
        beams: o.beams as usize,
        ..LidarConfig::default()
    });
    let step = 0.25;
    let mut poses = Vec::new();
    for i in 0..(world.width_m / step) as usize {
        for j in 0..(world.height_m / step) as usize {
            let p = Point {
                x: i as f64 * step,
                y: j as f64 * step,
            };
            if world.clearance(p) > world.robot_radius_m {
                let theta = ((i * 7 + j * 3) as f64 * 0.37) % std::f64::consts::TAU;
                poses.push(Pose2 {
                    x: p.x,
                    y: p.y,
                    theta,
                });
            }
        }
    }
    if poses.is_empty() {
        bail!("world {} has no free space", o.world);
    }
    let mut ranges = vec![0f32; lidar.beams()];
    let mut moving = Vec::new();
    let mut scan = |k: usize| {
        world.movers_at(k as f64 * 0.05, &mut moving);
        let scene = world.scene(&moving);
        std::hint::black_box(lidar.scan_into(&scene, poses[k % poses.len()], &mut ranges));
    };
    (0..50).for_each(&mut scan);
    const N: usize = 1000;
    let t0 = thread_cpu_s();
    (0..N).for_each(&mut scan);
    Ok((thread_cpu_s() - t0) / N as f64 * 1e6)
}

fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

// ---- perf ----------------------------------------------------------------------------------

/// Samples per second of CPU time (`cpu-clock`, which a VM without PMU access has too).
const PERF_HZ: u32 = 499;

/// `perf record` of every thread of `pids` for `secs`.
fn record(pids: &BTreeMap<String, u32>, secs: f64, file: &Path) -> anyhow::Result<()> {
    let list = pids
        .iter()
        .filter(|(n, _)| n.as_str() != SUPERVISOR)
        .map(|(_, p)| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = Command::new("perf");
    cmd.args([
        "record",
        "-q",
        // Symbols come from the copies in bin/, which stay put; no copy in ~/.debug.
        "--no-buildid-cache",
        "-e",
        "cpu-clock",
        "-F",
        &PERF_HZ.to_string(),
        "-p",
        &list,
        "-o",
    ])
    .arg(file)
    .args(["--", "sleep", &secs.to_string()]);
    let done = qubot_ops::process::run(cmd, Duration::from_secs_f64(secs + 30.0))?;
    if !done.status.success() {
        bail!("perf record: {}\n{}", done.status, done.stderr);
    }
    Ok(())
}

/// Where the CPU went, % of one core: by code (the sampled function's crate or library) and
/// by thread (zenoh's runtimes, the actor's threads...), for each process and summed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Profile {
    pub samples: u64,
    pub by_code: BTreeMap<String, f64>,
    pub by_thread: BTreeMap<String, f64>,
    pub by_process_code: BTreeMap<String, BTreeMap<String, f64>>,
    /// The hottest functions: (process, thread, function, % of one core).
    pub top: Vec<(String, String, String, f64)>,
}

fn summarize(file: &Path, pids: &BTreeMap<String, u32>, secs: f64) -> anyhow::Result<Profile> {
    // Thread id -> process name, while they still run.
    let mut tids: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, &pid) in pids {
        for t in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) {
                tids.insert(tid, name);
            }
        }
    }
    let mut cmd = Command::new("perf");
    cmd.args(["report", "-i"]).arg(file).args([
        "--no-children",
        "--sort",
        "pid,comm,dso,sym",
        "--stdio",
        "-g",
        "none",
        "-n",
        "-t",
        "|",
    ]);
    let done = qubot_ops::process::run(cmd, Duration::from_secs(120))?;
    if !done.status.success() {
        bail!("perf report: {}\n{}", done.status, done.stderr);
    }
    let pct_per_sample = 100.0 / (f64::from(PERF_HZ) * secs);
    let mut p = Profile::default();
    let mut rows = Vec::new();
    for line in done.stdout.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, n, pid, comm, dso, sym] = f[..] else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        let tid = pid.split(':').next().and_then(|t| t.parse::<u32>().ok());
        let process = tid.and_then(|t| tids.get(&t)).copied().unwrap_or("?");
        let pct = n as f64 * pct_per_sample;
        p.samples += n;
        let code = code_of(dso, sym);
        *p.by_code.entry(code.into()).or_default() += pct;
        *p.by_thread.entry(thread_of(comm)).or_default() += pct;
        *p.by_process_code
            .entry(process.into())
            .or_default()
            .entry(code.into())
            .or_default() += pct;
        rows.push((process.to_owned(), comm.to_owned(), sym.to_owned(), pct));
    }
    rows.sort_by(|a, b| b.3.total_cmp(&a.3));
    rows.truncate(25);
    p.top = rows;
    Ok(p)
}

/// What part of the code a sampled function belongs to (leaf attribution: a memcpy zenoh
/// calls counts as libc, a syscall's kernel side as the kernel).
fn code_of(dso: &str, sym: &str) -> &'static str {
    let has = |s: &str| sym.contains(s);
    if dso.contains("kernel") || sym.starts_with("[k]") {
        "kernel"
    } else if has("qubot_robot") || dso.starts_with("libm") {
        "simulation & planning (qubot_robot, libm)"
    } else if has("mi_") || has("mimalloc") || has("qubot_alloc") || has("malloc") || has("cfree") {
        "allocator"
    } else if has("zenoh") {
        "zenoh"
    } else if has("actix") {
        "actix"
    } else if has("tokio") || has("mio::") {
        "tokio"
    } else if has("metrics") || has("hyper") || has("prometheus") {
        "metrics"
    } else if has("qubot") || has("bincode") {
        "Qubot (bus, runtime, actors, codec)"
    } else if dso.starts_with("libc") {
        "libc"
    } else {
        "other (std, core, crossbeam, ...)"
    }
}

/// A thread's kind from its name (numbered siblings together).
fn thread_of(comm: &str) -> String {
    let base = comm
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches('-');
    match base {
        "rx" | "tx" | "acc" | "net" | "app" => format!("zenoh runtime ({base})"),
        "qubot" | "qubot-bench" => "main and unnamed (actor, worker, publish loop)".into(),
        b if b.starts_with("Watchdog") => "zenoh SHM watchdog".into(),
        b if b.starts_with("metrics") => "metrics exporter (HTTP, housekeeping)".into(),
        b if b.starts_with("tick") => "Qubot timer threads".into(),
        b => b.to_owned(),
    }
}

// ---- tables ----------------------------------------------------------------------------

/// The table.
pub fn table(r: &FloorReport) -> String {
    let mut s = String::from(
        "| rate | raw floor % of a core (sum of 3) | pipeline % (sum of 3) | ratio | goal ≤ 1.3 met? | planner handler CPU share |\n|---:|---:|---:|---:|:---:|---:|\n",
    );
    for p in &r.points {
        let _ = writeln!(
            s,
            "| {} Hz (actuator {} Hz) | {:.2} | {:.2} | {:.2} | {} | {:.2} % of a core ({:.0} % of the pipeline) |",
            p.rate_hz,
            p.tick_hz,
            p.raw_cpu_pct,
            p.pipeline_cpu_pct,
            p.ratio,
            if p.goal_met { "yes" } else { "no" },
            p.plan_pct,
            p.plan_share * 100.0
        );
    }
    s
}

/// Where the pipeline's CPU goes beside the floor's.
pub fn breakdown(r: &FloorReport) -> String {
    let mut s = String::from(
        "| rate | process | raw % | pipeline % | wake-ups per s, raw / pipeline | threads, raw / pipeline | waiting for a CPU %, raw / pipeline |\n|---:|---|---:|---:|---:|---:|---:|\n",
    );
    for p in &r.points {
        for part in Part::ALL {
            let (a, b) = (&p.raw_processes[part.name()], &p.pipeline_processes[part.name()]);
            let _ = writeln!(
                s,
                "| {} Hz | {} | {:.2} | {:.2} | {:.0} / {:.0} | {} / {} | {:.2} / {:.2} |",
                p.rate_hz,
                part.name(),
                a.cpu_pct,
                b.cpu_pct,
                a.ctxt_switches_per_s,
                b.ctxt_switches_per_s,
                a.threads,
                b.threads,
                a.runq_wait_pct,
                b.runq_wait_pct
            );
        }
    }
    s.push_str(
        "\n| rate | pipeline % | planning (plan handler) % | ray casting (replayed) % | the rest % | the rest / floor | supervisor % (not in the sum) | ratio from ns CPU clocks (raw / pipeline %) | loop Hz raw / pipeline | load avg 1 min, VM steal % |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in &r.points {
        let _ = writeln!(
            s,
            "| {} Hz | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} ({:.2} / {:.2}) | {:.1} / {:.1} | {:.2}, {:.1} |",
            p.rate_hz,
            p.pipeline_cpu_pct,
            p.plan_pct,
            p.raycast_pct,
            p.messaging_pct,
            p.messaging_ratio,
            p.supervisor_cpu_pct,
            p.run_ratio,
            p.raw_run_pct,
            p.pipeline_run_pct,
            p.raw_loop_hz,
            p.pipeline_loop_hz,
            p.load_1m,
            p.steal_pct
        );
    }
    s
}

/// The perf windows: by code and by thread, raw beside pipeline.
pub fn profile_tables(r: &FloorReport) -> String {
    let mut s = String::new();
    for &rate in r.points.iter().map(|p| &p.rate_hz) {
        let get = |side: &str| r.profiles.iter().find(|p| p.rate_hz == rate && p.side == side);
        let (Some(raw), Some(pipe)) = (get("raw"), get("pipeline")) else {
            continue;
        };
        for (what, pick) in [
            (
                "code",
                (|p: &Profile| p.by_code.clone()) as fn(&Profile) -> BTreeMap<String, f64>,
            ),
            ("thread", |p: &Profile| p.by_thread.clone()),
        ] {
            let (a, b) = (pick(&raw.profile), pick(&pipe.profile));
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.sort_by(|x, y| {
                let d = |k: &String| b.get(k).unwrap_or(&0.0) - a.get(k).unwrap_or(&0.0);
                d(y).total_cmp(&d(x))
            });
            let _ = writeln!(
                s,
                "\nperf, {rate} Hz, by {what} (% of a core; window CPU raw {:.2}, pipeline {:.2}):\n| {what} | raw | pipeline | pipeline - raw |\n|---|---:|---:|---:|",
                raw.cpu_pct, pipe.cpu_pct
            );
            for k in keys {
                let (x, y) = (a.get(k).copied().unwrap_or(0.0), b.get(k).copied().unwrap_or(0.0));
                let _ = writeln!(s, "| {k} | {x:.2} | {y:.2} | {:+.2} |", y - x);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use qubot_msg::{encoded_len, Command as Cmd, Scan, State};

    /// The sizes the raw loop sends are the codec's (the raw processes never call it).
    #[test]
    fn wire_sizes_are_the_codecs() {
        for beams in [360usize, 720, 4096] {
            let w = WireBytes::for_beams(beams);
            let scan = Scan {
                beams: beams as u32,
                ..Scan::default()
            };
            assert_eq!(w.scan, encoded_len(&scan, ranges_len(beams)).expect("scan"));
            assert_eq!(w.cmd, encoded_len(&Cmd::default(), 0).expect("cmd"));
            assert_eq!(w.state, encoded_len(&State::default(), 0).expect("state"));
        }
        let w = WireBytes::for_beams(720);
        assert_eq!((w.scan, w.cmd, w.state), (2968, 80, 98));
    }

    #[test]
    fn code_and_thread_kinds() {
        assert_eq!(code_of("[kernel.kallsyms]", "[k] do_syscall_64"), "kernel");
        assert_eq!(
            code_of("qubot", "[.] qubot_robot::planner::Planner::plan"),
            "simulation & planning (qubot_robot, libm)"
        );
        assert_eq!(
            code_of("qubot", "[.] zenoh_transport::unicast::rx::read"),
            "zenoh"
        );
        assert_eq!(code_of("qubot", "[.] mi_malloc_aligned"), "allocator");
        assert_eq!(thread_of("rx-0"), "zenoh runtime (rx)");
        assert_eq!(thread_of("Watchdog Confir"), "zenoh SHM watchdog");
        assert_eq!(thread_of("tick-control"), "Qubot timer threads");
    }
}
