//! `qubot-bench replay FILE` (`just replay-bench FILE`): the planner's time per scan on a
//! recorded run's input, so a planner change is judged on the same scans before and after it.
//!
//! The planning step runs here, in this process, with no bus and no actor: the same settings
//! the planner actor derives (`qubot_actors::planner::planner_config`), the same pose binding
//! (`PlannerRules`, fed the recorded odometry in the order it was received), and by default
//! the scans the robot's planner planned on (the ones a recorded command names), in order. So
//! it also says whether the planner still plans what the robot planned: the commands are
//! compared with the recorded ones.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use qubot_actors::planner::{
    planner_config,
    rules::{PlannerRules, ScanVerdict},
};
use qubot_msg::{decode, Command, Scan, ScanRanges, State};
use qubot_node::NodeConfig;
use qubot_robot::{Planner, RangeSource, ScanInput};
use serde::Serialize;

use crate::stats::{median, quantile, sorted};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A recording made by `qubot record` (scan, state and cmd topics).
    pub file: PathBuf,
    /// Node config whose planner settings to use (the defaults when omitted).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The world the run was in (its goal and robot); default: the node config's.
    #[arg(long)]
    pub world: Option<String>,
    /// Fresh planners run over the whole input this many times; figures are medians.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub passes: u32,
    /// Plan every recorded scan, not only those the robot's planner planned on.
    #[arg(long)]
    pub all_scans: bool,
}

/// One recorded message the planner takes, in the order the recorder received them.
enum Input {
    State {
        publish_ns: u64,
        state: State,
    },
    /// Decoded where it is planned: the ranges are read in place from these bytes.
    Scan(Vec<u8>),
}

#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub file: String,
    pub world: String,
    pub passes: u32,
    /// Scans planned per pass.
    pub scans: usize,
    /// Per-scan planning time (µs): medians over the passes of each pass's quantile.
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Planning time of a whole pass (ms), median over the passes.
    pub total_ms: f64,
    /// Recorded commands whose scan was planned here.
    pub compared: usize,
    /// Of those, how many this planner planned exactly (v and w bit for bit).
    pub equal: usize,
    /// The largest |Δv| and |Δw| among the rest.
    pub max_dv: f64,
    pub max_dw: f64,
}

pub fn main(args: ReplayArgs) -> anyhow::Result<()> {
    let report = run(&args)?;
    println!(
        "replay: {} scans x {} passes: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs, {:.1} ms a pass; {} of {} recorded commands planned again exactly",
        report.scans,
        report.passes,
        report.p50_us,
        report.p90_us,
        report.p99_us,
        report.max_us,
        report.total_ms,
        report.equal,
        report.compared
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

pub fn run(args: &ReplayArgs) -> anyhow::Result<ReplayReport> {
    let mut cfg = NodeConfig::load(args.config.as_deref())?;
    if let Some(w) = &args.world {
        cfg.world = w.clone();
    }
    let world = cfg.world()?;
    let buf = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let filter = qubot_record::Filter {
        include: vec!["scan".into(), "state".into(), "cmd".into()],
        exclude: vec![],
    };
    let rec = qubot_record::load(&buf, &filter).with_context(|| args.file.display().to_string())?;
    drop(buf);

    // The robot's commands, by the scan each was planned on.
    let mut recorded: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let mut inputs = Vec::new();
    for e in &rec.entries {
        match qubot_record::topic_of(&rec.keys[e.key]) {
            "cmd" => {
                if let Ok(m) = decode::<Command>(&e.wire) {
                    recorded.insert(m.body.scan_seq, (m.body.v, m.body.w));
                }
            }
            "state" => {
                if let Ok(m) = decode::<State>(&e.wire) {
                    inputs.push(Input::State {
                        publish_ns: m.header.stamp.publish_ns,
                        state: m.body,
                    });
                }
            }
            "scan" => inputs.push(Input::Scan(e.wire.clone())),
            _ => {}
        }
    }
    if !args.all_scans && recorded.is_empty() {
        anyhow::bail!(
            "{}: no recorded command names a scan to plan on (record the cmd topic, or pass --all-scans)",
            args.file.display()
        );
    }
    let pc = planner_config(&cfg, &world);
    let budget = Duration::from_millis(cfg.planner.cmd_deadline_ms);

    let mut passes = Vec::new();
    let mut planned = BTreeMap::new();
    for _ in 0..args.passes {
        let mut planner = Planner::new(pc);
        let mut rules = PlannerRules::new(budget, cfg.planner.pose_tolerance_m);
        let mut times = Vec::new();
        planned.clear();
        for input in &inputs {
            match input {
                Input::State { publish_ns, state } => {
                    rules.on_state(*publish_ns, state);
                }
                Input::Scan(wire) => {
                    let Ok(m) = decode::<Scan>(wire) else { continue };
                    let (seq, origin_ns) = (m.header.stamp.seq, m.header.stamp.origin_ns);
                    if !args.all_scans && !recorded.contains_key(&seq) {
                        continue;
                    }
                    // Taken the instant it was captured: offline, nothing is stale.
                    let ScanVerdict::Plan(pose) = rules.check_scan(&m.body, origin_ns, origin_ns) else {
                        continue;
                    };
                    let b = m.body;
                    let scan = ScanInput {
                        angle_min: b.angle_min,
                        angle_increment: b.angle_increment,
                        range_max: b.range_max,
                        ranges: RangeSource::Wire(ScanRanges::new(m.payload)),
                    };
                    let t = Instant::now();
                    let plan = planner.plan(&scan, pose, world.goal);
                    times.push(t.elapsed().as_secs_f64() * 1e6);
                    planned.insert(seq, (plan.v, plan.w));
                }
            }
        }
        passes.push(sorted(times));
    }
    let scans = passes.first().map_or(0, Vec::len);
    if scans == 0 {
        anyhow::bail!("{}: no scan could be planned on", args.file.display());
    }
    let of = |q: f64| median(&passes.iter().map(|p| quantile(p, q)).collect::<Vec<_>>());
    let (mut compared, mut equal, mut max_dv, mut max_dw) = (0, 0, 0.0f64, 0.0f64);
    for (seq, (v, w)) in &recorded {
        if let Some((pv, pw)) = planned.get(seq) {
            compared += 1;
            if (pv, pw) == (v, w) {
                equal += 1;
            } else {
                max_dv = max_dv.max((pv - v).abs());
                max_dw = max_dw.max((pw - w).abs());
            }
        }
    }
    Ok(ReplayReport {
        file: args.file.display().to_string(),
        world: world.name.clone(),
        passes: args.passes,
        scans,
        p50_us: of(0.5),
        p90_us: of(0.9),
        p99_us: of(0.99),
        max_us: of(1.0),
        total_ms: median(
            &passes
                .iter()
                .map(|p| p.iter().sum::<f64>() / 1e3)
                .collect::<Vec<_>>(),
        ),
        compared,
        equal,
        max_dv,
        max_dw,
    })
}
