//! `qubot chaos SCENARIO...`: runs fault scenarios (TOML, `deploy/chaos/`) against a
//! `qubot up` it starts, judges each against its SLOs from the processes' own `/metrics`, and
//! prints one JSON verdict per scenario (the last line, for one scenario). Exit 0 only when
//! every SLO of every scenario passed; 2 for a bad scenario file.

mod faults;
mod judge;
mod netns;
mod pipeline;
mod scenario;
mod watch;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use judge::{Evidence, Windows};
use pipeline::Pipeline;
use qubot_node::Role;
use scenario::Scenario;
use watch::RssSample;

/// Commands applied before the idle baseline starts: the loop is closed.
const LOOP_CLOSED: f64 = 20.0;

/// What `qubot chaos` was asked to do.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// Scenario files (TOML); several run one after another, then a summary table.
    pub scenarios: Vec<PathBuf>,
    /// Multiplies every phase and fault time.
    pub duration_scale: f64,
    /// Where to write the RSS of every actor process, sampled each second (CSV).
    pub rss_csv: Option<PathBuf>,
    /// The `qubot` binary that runs the pipeline (`qubot up`) and the fault tools.
    pub qubot: PathBuf,
}

pub fn run(args: &ChaosOptions) -> anyhow::Result<ExitCode> {
    if !(args.duration_scale.is_finite() && args.duration_scale > 0.0) {
        bail!(
            "--duration-scale must be a positive number, got {}",
            args.duration_scale
        );
    }
    // Every file is checked before anything starts: a typo fails fast, with exit 2.
    let scenarios = args
        .scenarios
        .iter()
        .map(|p| Scenario::load(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rows = Vec::new();
    for (i, (s, dir)) in scenarios.into_iter().enumerate() {
        let started = Instant::now();
        let name = s.name.clone();
        let verdict = match run_one(s, &dir, args, i as u32) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("chaos: {name}: could not run: {e:#}");
                json!({"scenario": name, "result": "failed", "passed": false, "error": format!("{e:#}"), "slos": []})
            }
        };
        report_failures(&verdict);
        println!("{verdict}");
        let _ = std::io::stdout().flush();
        rows.push((verdict, started.elapsed()));
    }
    if rows.len() > 1 {
        print_table(&rows);
    }
    // A skipped scenario is not a passed one: under CI (CI=true) it fails the run; elsewhere
    // the run passes on the scenarios that ran, and the skip is on stderr and in the verdict.
    let strict = std::env::var("CI").is_ok_and(|v| v == "true");
    let all = rows
        .iter()
        .all(|(v, _)| v["passed"] == true || (!strict && v["result"] == "skipped"));
    Ok(if all { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run_one(s: Scenario, dir: &Path, args: &ChaosOptions, run: u32) -> anyhow::Result<Value> {
    if s.partition().is_some() {
        if let Some(why) = netns::unavailable() {
            eprintln!("chaos: {}: SKIPPED: {why}", s.name);
            // Not run, so neither passed nor failed: the verdict says so and `run` decides.
            return Ok(json!({"scenario": s.name, "result": "skipped", "skipped": why, "slos": []}));
        }
    }
    let s = s.scaled(args.duration_scale);
    eprintln!("chaos: {}: starting ({})", s.name, s.description.trim());
    let mut pipe = Pipeline::start(&s, dir, run, &args.qubot)?;
    pipe.wait_applied(None, LOOP_CLOSED, Duration::from_secs(90))
        .context("waiting for the control loop to close")?;
    std::thread::sleep(Duration::from_secs_f64(s.settle_s));
    let idle_start = pipe.snapshot();
    std::thread::sleep(Duration::from_secs_f64(s.idle_s));
    let idle_end = pipe.snapshot();

    let watching = AtomicBool::new(true);
    let (log, faulted, flowing, accounting_from, end, mut watch) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch::run(&pipe, &watching));
        let log = faults::run(&pipe, &s);
        let faulted = pipe.snapshot();
        // The loop must run again before the end is read; after a restart, the accounting
        // window starts once it does (a dead process's counters died with it).
        let timeout = Duration::from_secs_f64(s.recover_timeout_s);
        let restarted = Role::ALL
            .iter()
            .any(|a| idle_end.pids.get(a.name()) != pipe.pids().get(a.name()));
        let flowing = pipe.wait_applied(pipe.applied(), 5.0, timeout);
        let accounting_from = if restarted {
            let snap = pipe.snapshot();
            std::thread::sleep(Duration::from_secs_f64((2.0 * args.duration_scale).max(1.0)));
            Some(snap)
        } else {
            None
        };
        // Messages published just before this instant are still landing: the end is the
        // first snapshot in which every flow's accounting closes, or the last one at the
        // deadline (the judge then says which flow does not).
        let from = accounting_from.as_ref().unwrap_or(&idle_end);
        let settle = Instant::now() + Duration::from_secs(3);
        let end = loop {
            let end = pipe.snapshot();
            let closed = judge::balance(
                from,
                &end,
                accounting_from.is_none(),
                &log,
                s.accounting_tolerance,
            )
            .iter()
            .all(|o| o.passed);
            if closed || Instant::now() >= settle {
                break end;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        watching.store(false, Ordering::Release);
        let watch = watcher.join().unwrap_or_default();
        (log, faulted, flowing, accounting_from, end, watch)
    });
    for e in &log.errors {
        eprintln!("chaos: {}: {e}", s.name);
    }
    // The watch starts from the idle end and closes with the final reading.
    if let Some(first) = watch::point_of(&idle_end, "actuator") {
        watch.watchdog.insert(0, first);
    }
    if let Some(last) = watch::point_of(&end, "actuator") {
        watch.watchdog.push(last);
    }
    pipe.stop()?;
    drop(pipe.netns.take());
    if let Some(path) = &args.rss_csv {
        write_csv(path, &watch.rss)?;
    }
    let windows = Windows {
        idle: (idle_start, idle_end),
        faulted,
        accounting_from,
        end,
    };
    let cfg = pipe.cfg.clone();
    let mut outcomes = judge::judge(&Evidence {
        scenario: &s,
        cfg: &cfg,
        w: &windows,
        log: &log,
        watch: &watch,
        reports: &pipe.reports,
    });
    outcomes.push(judge::Outcome {
        name: "loop runs at the end".into(),
        target: "commands applied again".into(),
        measured: Some(if flowing.is_ok() { 1.0 } else { 0.0 }),
        passed: flowing.is_ok(),
        detail: flowing.err().map(|e| format!("{e:#}")),
    });
    let passed = outcomes.iter().all(|o| o.passed);
    let mut v = json!({
        "scenario": s.name,
        "result": if passed { "passed" } else { "failed" },
        "passed": passed,
        "slos": outcomes.iter().map(judge::Outcome::json).collect::<Vec<_>>(),
    });
    v["duration_scale"] = json!(args.duration_scale);
    v["run"] = json!(pipe.reports);
    if !log.notes.is_empty() {
        v["notes"] = json!(log.notes);
    }
    Ok(v)
}

fn write_csv(path: &PathBuf, rss: &[RssSample]) -> anyhow::Result<()> {
    let mut text = String::from("t_s,actor,pid,rss_bytes\n");
    for s in rss {
        text.push_str(&format!("{:.1},{},{},{}\n", s.t_s, s.actor, s.pid, s.bytes));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// One stderr line per failed SLO, naming it: the judge says no, and why.
fn report_failures(v: &Value) {
    let name = v["scenario"].as_str().unwrap_or("?");
    for slo in v["slos"].as_array().into_iter().flatten() {
        if slo["passed"] == false {
            eprintln!(
                "chaos: {name}: SLO FAILED: {}: measured {}, target {}{}",
                slo["name"].as_str().unwrap_or("?"),
                slo["measured"],
                slo["target"].as_str().unwrap_or("?"),
                slo["detail"]
                    .as_str()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            );
        }
    }
}

fn print_table(rows: &[(Value, Duration)]) {
    println!();
    println!(
        "{:<20} {:<8} {:>5} {:>7}  failed SLOs",
        "scenario", "result", "SLOs", "time"
    );
    for (v, took) in rows {
        let slos = v["slos"].as_array().cloned().unwrap_or_default();
        let ok = slos.iter().filter(|s| s["passed"] == true).count();
        let result = if v.get("skipped").is_some() {
            "SKIPPED"
        } else if v["passed"] == true {
            "PASS"
        } else {
            "FAIL"
        };
        let failed: Vec<&str> = slos
            .iter()
            .filter(|s| s["passed"] == false)
            .filter_map(|s| s["name"].as_str())
            .collect();
        let why = v["skipped"]
            .as_str()
            .or(v["error"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| failed.join("; "));
        println!(
            "{:<20} {:<8} {:>5} {:>6.0}s  {}",
            v["scenario"].as_str().unwrap_or("?"),
            result,
            format!("{ok}/{}", slos.len()),
            took.as_secs_f64(),
            why
        );
    }
}
