//! The fault injector: runs a scenario's faults on their schedule against a running pipeline
//! (floods and malformed storms as `qubot flood` / `qubot inject` children joining its hub,
//! signals to actor PIDs, the namespace link cut) and logs what it did and how the loop
//! recovered.

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use nix::{sys::signal::Signal, unistd::Pid};

use qubot_msg::{keys, topic};
use qubot_node::Role;

use super::{
    pipeline::{lock, Pipeline},
    scenario::{Fault, Flood, Kill, Malformed, Partition, Replay, Scenario, Stop},
};
use crate::process;

/// Commands applied by the actuator that count as "the loop runs again".
const FLOWING: f64 = 5.0;

#[derive(Debug, Default)]
pub struct FaultLog {
    /// Per flood: requested and achieved total rate, messages sent, topic.
    pub floods: Vec<FloodRun>,
    /// Malformed messages injected, by (actor that subscribes to the key, topic).
    pub injected: HashMap<(&'static str, &'static str), f64>,
    /// Per recovering fault: what, and seconds until commands were applied again (`None`:
    /// never within the scenario's recover_timeout_s).
    pub recoveries: Vec<(String, Option<f64>)>,
    pub kills: u32,
    pub notes: Vec<String>,
    pub errors: Vec<String>,
}

#[derive(Debug)]
pub struct FloodRun {
    pub topic: String,
    pub requested_rate: f64,
    pub achieved_rate: f64,
    pub sent: f64,
}

/// Runs every fault at its time; returns when all are done and the phase has elapsed.
pub fn run(pipe: &Pipeline, s: &Scenario) -> FaultLog {
    let log = Mutex::new(FaultLog::default());
    let start = Instant::now();
    let phase = Duration::from_secs_f64(s.duration_s);
    std::thread::scope(|scope| {
        for (i, f) in s.faults.iter().enumerate() {
            let log = &log;
            scope.spawn(move || {
                sleep_until(start + Duration::from_secs_f64(f.at_s()));
                let end = start + phase;
                let r = match f {
                    Fault::Flood(x) => flood(pipe, x, i, end, log),
                    Fault::Kill(x) => kill(pipe, s, x, log),
                    Fault::Stop(x) => stop(pipe, s, x, log),
                    Fault::Malformed(x) => malformed(pipe, x, end, log),
                    Fault::Partition(x) => partition(pipe, s, x, log),
                    Fault::Replay(x) => replay(pipe, x, end, log),
                };
                if let Err(e) = r {
                    lock(log).errors.push(format!("faults[{i}]: {e:#}"));
                }
            });
        }
        sleep_until(start + phase);
    });
    log.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn sleep_until(t: Instant) {
    if let Some(d) = t.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

/// A `qubot` tool child joining the pipeline's bus (inside the sensor's namespace when
/// partitioned); returns its last stdout line, its JSON report.
fn tool(pipe: &Pipeline, args: &[String], timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let mut cmd = match &pipe.tool_netns {
        None => Command::new(&pipe.qubot),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(&pipe.qubot);
            c
        }
    };
    cmd.args(args)
        .args(["--robot", &pipe.robot, "--connect", &pipe.hub])
        .stdin(Stdio::null());
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "warn,zenoh=error");
    }
    // Every tool run is bounded by its own arguments; the deadline is the backstop.
    let done = match process::run(cmd, timeout) {
        Ok(done) => done,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            bail!("qubot {} did not finish within {timeout:?}", args[0])
        }
        Err(e) => return Err(e).with_context(|| format!("starting qubot {}", args[0])),
    };
    if !done.status.success() {
        bail!(
            "qubot {} failed ({}): {}",
            args[0],
            done.status,
            done.stderr.trim()
        );
    }
    let last = done.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("qubot {} report {last:?}", args[0]))
}

/// How long a load runs (s): its `for_s`, else the rest of the fault phase (which ends at
/// `end`); a tenth of a second at least.
fn lasts(for_s: Option<f64>, end: Instant) -> f64 {
    for_s
        .unwrap_or_else(|| end.saturating_duration_since(Instant::now()).as_secs_f64())
        .max(0.1)
}

fn flood(pipe: &Pipeline, f: &Flood, i: usize, end: Instant, log: &Mutex<FaultLog>) -> anyhow::Result<()> {
    let secs = lasts(f.for_s, end);
    let count = (f.rate * secs * 1.1).ceil() as u64 + 10;
    let sensor = Role::Sensor;
    let key = keys::key(
        &pipe.robot,
        sensor.name(),
        pipe.cfg.role(sensor).instance,
        &f.topic,
    );
    let mut args: Vec<String> = [
        "flood",
        "--key",
        &key,
        "--kind",
        &f.topic,
        "--instance",
        &format!("flood{i}"),
        "--size",
        &f.size.to_string(),
        "--rate",
        &f.rate.to_string(),
        "--burst",
        &f.burst.to_string(),
        "--publishers",
        &f.publishers.to_string(),
        "--count",
        &count.to_string(),
        "--duration",
        &secs.to_string(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    // Scans have a subscriber (the planner): wait for it, so nothing goes into the void.
    if f.topic == topic::SCAN.name() {
        args.extend(["--wait-subscriber".into(), "10".into()]);
    }
    let r = tool(pipe, &args, Duration::from_secs_f64(secs + 30.0))?;
    lock(log).floods.push(FloodRun {
        topic: f.topic.clone(),
        requested_rate: f.rate * f.publishers as f64,
        achieved_rate: r["achieved_rate"].as_f64().unwrap_or(0.0),
        sent: r["sent"].as_f64().unwrap_or(0.0),
    });
    Ok(())
}

/// A recording's scans played onto the sensor's key under the replay's own source id, looped
/// until the time is up; logged as a flood, which is what the robot sees.
fn replay(pipe: &Pipeline, r: &Replay, end: Instant, log: &Mutex<FaultLog>) -> anyhow::Result<()> {
    let secs = lasts(r.for_s, end);
    let args: Vec<String> = [
        "replay",
        &r.file.display().to_string(),
        "--include",
        topic::SCAN.name(),
        "--rate",
        &r.speed.to_string(),
        "--loops",
        "0",
        "--for",
        &secs.to_string(),
        "--wait-subscriber",
        "10",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let v = tool(pipe, &args, Duration::from_secs_f64(secs + 30.0))?;
    let num = |k: &str| v[k].as_f64().unwrap_or(0.0);
    let (sent, seconds) = (num("published"), num("seconds"));
    // The recorded scan rate, sped up: what the replay was asked to publish.
    let recorded = num("window_messages") / num("recorded_seconds").max(1e-9);
    lock(log).floods.push(FloodRun {
        topic: topic::SCAN.name().into(),
        requested_rate: recorded * r.speed,
        achieved_rate: if seconds > 0.0 { sent / seconds } else { 0.0 },
        sent,
    });
    Ok(())
}

/// A signal to a pid the supervisor reported for one of its children; never 0 or negative
/// (a process group).
fn signal(pid: u32, sig: Signal) -> anyhow::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .context("pid out of range")?;
    nix::sys::signal::kill(Pid::from_raw(pid), sig).with_context(|| format!("kill({pid}, {sig})"))
}

fn kill(pipe: &Pipeline, s: &Scenario, k: &Kill, log: &Mutex<FaultLog>) -> anyhow::Result<()> {
    let timeout = Duration::from_secs_f64(s.recover_timeout_s);
    for round in 0..k.rounds {
        for actor in &k.actors {
            let a = actor.name();
            let pid = pipe.pid(a).with_context(|| format!("no pid for {a}"))?;
            let before = pipe.applied();
            signal(pid, Signal::SIGKILL)?;
            let at = Instant::now();
            lock(log).kills += 1;
            let recovered = pipe
                .wait_respawn(a, pid, timeout)
                .and_then(|_| pipe.wait_applied(before, FLOWING, timeout.saturating_sub(at.elapsed())));
            let what = format!("kill -9 {a} (round {})", round + 1);
            lock(log)
                .recoveries
                .push((what, recovered.ok().map(|t| t.duration_since(at).as_secs_f64())));
            std::thread::sleep(Duration::from_secs_f64(k.gap_s));
        }
    }
    Ok(())
}

fn stop(pipe: &Pipeline, s: &Scenario, st: &Stop, log: &Mutex<FaultLog>) -> anyhow::Result<()> {
    let a = st.actor.name();
    let pid = pipe.pid(a).with_context(|| format!("no pid for {a}"))?;
    signal(pid, Signal::SIGSTOP)?;
    std::thread::sleep(Duration::from_secs_f64(st.for_s));
    recover(pipe, s, log, format!("SIGSTOP {a} for {:.1} s", st.for_s), || {
        signal(pid, Signal::SIGCONT)
    })
}

/// Ends a fault with `restore` and records how long the loop took to flow again after it
/// (`None`: not within the scenario's recovery timeout).
fn recover(
    pipe: &Pipeline,
    s: &Scenario,
    log: &Mutex<FaultLog>,
    what: String,
    restore: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let before = pipe.applied();
    restore()?;
    let at = Instant::now();
    let recovered = pipe.wait_applied(before, FLOWING, Duration::from_secs_f64(s.recover_timeout_s));
    lock(log)
        .recoveries
        .push((what, recovered.ok().map(|t| t.duration_since(at).as_secs_f64())));
    Ok(())
}

/// Every subscribed key of the pipeline, with an actor whose receiver counts its drops and the
/// topic it counts them under (the state also reaches the planner, which counts its own).
fn subscribed_keys(pipe: &Pipeline) -> Vec<(String, &'static str, &'static str)> {
    Role::flows()
        .map(|f| {
            let key = keys::key(
                &pipe.robot,
                f.from.name(),
                pipe.cfg.role(f.from).instance,
                f.topic,
            );
            (key, f.to.name(), f.topic)
        })
        .collect()
}

fn malformed(pipe: &Pipeline, m: &Malformed, end: Instant, log: &Mutex<FaultLog>) -> anyhow::Result<()> {
    let gap = end.saturating_duration_since(Instant::now()) / m.rounds;
    for round in 0..m.rounds {
        let next = Instant::now() + gap;
        for (key, receiver, topic) in subscribed_keys(pipe) {
            let peers = pipe.processes().to_string();
            let args: Vec<String> = [
                "inject",
                "--key",
                &key,
                "--count",
                &m.count.to_string(),
                "--wait-peers",
                &peers,
            ]
            .iter()
            .map(|a| a.to_string())
            .collect();
            let r = tool(pipe, &args, Duration::from_secs(60))?;
            *lock(log).injected.entry((receiver, topic)).or_default() += r["total"].as_f64().unwrap_or(0.0);
        }
        if round + 1 < m.rounds {
            sleep_until(next);
        }
    }
    Ok(())
}

fn partition(pipe: &Pipeline, s: &Scenario, p: &Partition, log: &Mutex<FaultLog>) -> anyhow::Result<()> {
    let pair = pipe.netns.as_ref().context("partition without namespaces")?;
    let how = lock(pair).cut()?;
    lock(log).notes.push(format!("link cut with tc qdisc {how}"));
    std::thread::sleep(Duration::from_secs_f64(p.for_s));
    recover(
        pipe,
        s,
        log,
        format!("partition for {:.1} s, healed", p.for_s),
        || lock(pair).heal(),
    )
}
