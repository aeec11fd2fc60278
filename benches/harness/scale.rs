//! `qubot-bench scale`: the fleet's cost curve. For each fleet size, one site router
//! (`qubot router`) and that many robots (`qubot up`, three actors each, every process
//! connected to the router) on loopback; after a warm-up, one window is measured: CPU time per
//! robot, pipeline latency, the router's CPU and the bytes over its connections, and
//! deliveries across robots.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::Signal;
use qubot_msg::{topic, DropReason};
use qubot_ops::{
    process::{free_port_run, Child},
    promtext::{self, Sample},
};
use serde::Serialize;

use crate::report::{git_rev, Machine};

pub struct Options {
    pub robots: Vec<usize>,
    pub warmup_s: f64,
    pub window_s: f64,
    pub world: String,
    pub worlds_dir: PathBuf,
    pub out: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct ScaleReport {
    pub machine: Machine,
    pub git_rev: String,
    pub world: String,
    pub warmup_s: f64,
    pub window_s: f64,
    pub points: Vec<Point>,
}

/// One fleet size, measured over the window.
#[derive(Debug, Serialize)]
pub struct Point {
    pub robots: usize,
    /// CPU time (user + system) of a robot's four processes per second of the window, as %
    /// of one core: mean and worst robot.
    pub robot_cpu_pct_mean: f64,
    pub robot_cpu_pct_max: f64,
    /// Capture-to-applied latency at the actuators, all robots pooled (from the histogram's
    /// buckets over the window, as PromQL's `histogram_quantile`).
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// The bucket each quantile lies in (ms): all the histogram knows of it.
    pub latency_p50_bucket_ms: Option<(f64, f64)>,
    pub latency_p99_bucket_ms: Option<(f64, f64)>,
    /// Commands applied per robot per second: the loop rate.
    pub loop_hz_mean: f64,
    pub router_cpu_pct: f64,
    /// Bytes per second over the router's TCP connections, in and out: what crosses it
    /// (zenoh's declarations and keep-alives included).
    pub router_received_bytes_per_s: f64,
    pub router_sent_bytes_per_s: f64,
    /// Scans a planner took beyond what its own sensor sent, plus messages any actor dropped
    /// as foreign: another robot's traffic reaching this one. Must be 0.
    pub cross_robot_deliveries: f64,
    /// Everything on the machine the fleet ran (robots and router), % of one core.
    pub total_cpu_pct: f64,
}

pub fn run(o: &Options) -> anyhow::Result<ScaleReport> {
    let qubot = crate::spawn::qubot_beside()?;
    let mut points = Vec::new();
    for &n in &o.robots {
        eprintln!("scale: {n} robot(s)");
        points.push(point(&qubot, o, n).with_context(|| format!("{n} robots"))?);
    }
    let report = ScaleReport {
        machine: Machine::read(),
        git_rev: git_rev(),
        world: o.world.clone(),
        warmup_s: o.warmup_s,
        window_s: o.window_s,
        points,
    };
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    std::fs::write(o.out.join("scale.json"), serde_json::to_string_pretty(&report)?)?;
    Ok(report)
}

pub(crate) fn spawn(qubot: &Path, name: &str, args: &[String]) -> anyhow::Result<Child> {
    let mut cmd = Command::new(qubot);
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    Child::spawn(name, cmd).with_context(|| format!("starting {name}"))
}

struct Robot {
    proc: Child,
    base: u16,
}

impl Robot {
    fn metrics(&self, offset: u16) -> Option<Vec<Sample>> {
        let text = promtext::scrape(&format!("127.0.0.1:{}", self.base + offset))?;
        promtext::parse(&text).ok()
    }

    /// The supervisor and its children (the actors).
    fn pids(&self) -> Vec<u32> {
        let sup = self.proc.id();
        let mut out = vec![sup];
        out.extend(children_of(sup));
        out
    }
}

pub(crate) fn wait<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the window's two ends read.
struct Snapshot {
    at: Instant,
    robot_cpu_s: Vec<f64>,
    actuator: Vec<Vec<Sample>>,
    router_cpu_s: f64,
    router_bytes: (u64, u64),
}

fn point(qubot: &Path, o: &Options, n: usize) -> anyhow::Result<Point> {
    let rport = free_port_run(2)?;
    let endpoint = format!("tcp/127.0.0.1:{rport}");
    let router_metrics = format!("127.0.0.1:{}", rport + 1);
    let mut router = spawn(
        qubot,
        "qubot router",
        &[
            "router".into(),
            "--listen".into(),
            endpoint.clone(),
            "--metrics-addr".into(),
            router_metrics.clone(),
        ],
    )?;
    let sessions = || {
        let m = promtext::parse(&promtext::scrape(&router_metrics)?).ok()?;
        Some(promtext::sum(&m, "qubot_router_sessions", &[("kind", "peer")]))
    };
    wait("router /metrics", Duration::from_secs(20), sessions)?;
    let timeout = (o.warmup_s + o.window_s + 60.0).to_string();
    let mut robots = Vec::new();
    for i in 0..n {
        let base = free_port_run(5)?;
        let args: Vec<String> = [
            "up",
            "--robot",
            &format!("scale-{i}"),
            "--world",
            &o.world,
            "--worlds-dir",
            &o.worlds_dir.display().to_string(),
            "--hub",
            &format!("tcp/127.0.0.1:{}", base + 4),
            "--metrics-port-base",
            &base.to_string(),
            "--connect",
            &endpoint,
            "--timeout",
            &timeout,
        ]
        .map(String::from)
        .to_vec();
        robots.push(Robot {
            proc: spawn(qubot, "qubot up", &args)?,
            base,
        });
    }
    let applied = |r: &Robot| r.metrics(3).map(|m| promtext::received(&m, topic::CMD.spec()));
    for r in &robots {
        wait("a robot's loop closing", Duration::from_secs(120), || {
            (applied(r)? >= 20.0).then_some(())
        })?;
    }
    let want = (4 * n) as f64;
    wait("every process on the router", Duration::from_secs(60), || {
        (sessions()? == want).then_some(())
    })?;
    std::thread::sleep(Duration::from_secs_f64(o.warmup_s));
    let router_pid = router.id();
    let snap = || -> anyhow::Result<Snapshot> {
        Ok(Snapshot {
            at: Instant::now(),
            robot_cpu_s: robots
                .iter()
                .map(|r| r.pids().into_iter().map(cpu_s).sum())
                .collect(),
            actuator: robots
                .iter()
                .map(|r| r.metrics(3).ok_or_else(|| anyhow!("actuator /metrics")))
                .collect::<anyhow::Result<_>>()?,
            router_cpu_s: cpu_s(router_pid),
            router_bytes: socket_bytes(router_pid),
        })
    };
    let start = snap()?;
    std::thread::sleep(Duration::from_secs_f64(o.window_s));
    let end = snap()?;
    let cross = robots.iter().map(cross_deliveries).sum::<anyhow::Result<f64>>()?;

    let secs = (end.at - start.at).as_secs_f64();
    let cpu: Vec<f64> = start
        .robot_cpu_s
        .iter()
        .zip(&end.robot_cpu_s)
        .map(|(a, b)| (b - a) / secs * 100.0)
        .collect();
    let pooled: Vec<Sample> = start
        .actuator
        .iter()
        .zip(&end.actuator)
        .flat_map(|(a, b)| promtext::window(a, b))
        .collect();
    let latency = |q| promtext::quantile_in(&pooled, "qubot_pipeline_latency_seconds", &[], q);
    let ms = |q: Option<promtext::Quantile>| q.map(|q| q.value * 1e3);
    let bucket = |q: Option<promtext::Quantile>| q.map(|q| (q.lower * 1e3, q.upper * 1e3));
    let cmds = promtext::received(&pooled, topic::CMD.spec());
    let router_cpu_pct = (end.router_cpu_s - start.router_cpu_s) / secs * 100.0;
    let point = Point {
        robots: n,
        robot_cpu_pct_mean: cpu.iter().sum::<f64>() / n as f64,
        robot_cpu_pct_max: cpu.iter().cloned().fold(0.0, f64::max),
        latency_p50_ms: ms(latency(0.5)),
        latency_p99_ms: ms(latency(0.99)),
        latency_p50_bucket_ms: bucket(latency(0.5)),
        latency_p99_bucket_ms: bucket(latency(0.99)),
        loop_hz_mean: cmds / secs / n as f64,
        router_cpu_pct,
        router_received_bytes_per_s: end.router_bytes.0.saturating_sub(start.router_bytes.0) as f64 / secs,
        router_sent_bytes_per_s: end.router_bytes.1.saturating_sub(start.router_bytes.1) as f64 / secs,
        cross_robot_deliveries: cross,
        total_cpu_pct: cpu.iter().sum::<f64>() + router_cpu_pct,
    };
    for mut r in robots {
        let _ = r.proc.stop(Signal::SIGINT, Duration::from_secs(20));
    }
    let _ = router.stop(Signal::SIGINT, Duration::from_secs(5));
    Ok(point)
}

/// Another robot's traffic reaching this one: scans its planner took beyond those its own
/// sensor sent (planner read first, so the sensor's count can only be ahead), plus anything
/// an actor dropped as foreign.
fn cross_deliveries(r: &Robot) -> anyhow::Result<f64> {
    let planner = r.metrics(2).ok_or_else(|| anyhow!("planner /metrics"))?;
    let sensor = r.metrics(1).ok_or_else(|| anyhow!("sensor /metrics"))?;
    let actuator = r.metrics(3).ok_or_else(|| anyhow!("actuator /metrics"))?;
    let taken = promtext::received(&planner, topic::SCAN.spec());
    let sent = promtext::published(&sensor, topic::SCAN.spec());
    let foreign: f64 = [&planner, &sensor, &actuator]
        .iter()
        .map(|m| promtext::dropped(m, DropReason::Foreign))
        .sum();
    Ok((taken - sent).max(0.0) + foreign)
}

/// User + system CPU seconds of a process so far (0 once it is gone).
pub(crate) fn cpu_s(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(14) + ticks(15)) / hz
}

/// Bytes received and sent over the TCP connections `pid` holds (the kernel's `tcp_info`,
/// through `ss -ti`); connections that closed since are not counted.
fn socket_bytes(pid: u32) -> (u64, u64) {
    let Ok(out) = Command::new("ss")
        .args(["-tinpH", "state", "established"])
        .output()
    else {
        return (0, 0);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let owner = format!("pid={pid},");
    let field = |info: &str, k: &str| -> u64 {
        info.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut lines = text.lines();
    let (mut received, mut sent) = (0, 0);
    while let Some(line) = lines.next() {
        if line.contains(&owner) {
            let info = lines.next().unwrap_or("");
            received += field(info, "bytes_received:");
            sent += field(info, "bytes_sent:");
        }
    }
    (received, sent)
}

/// Direct children of `pid`.
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// The table printed at the end of a run (and pasted into BENCHMARKS.md).
pub fn table(r: &ScaleReport) -> String {
    let ms = |v: Option<f64>, b: Option<(f64, f64)>| match (v, b) {
        (Some(v), Some((lo, hi))) => format!("{v:.2} ({lo:.2}–{hi:.2})"),
        _ => "-".into(),
    };
    let mut s = String::from(
        "| robots | CPU per robot, % of a core (mean / max) | loop Hz per robot | latency p50 ms (bucket) | p99 ms (bucket) | router CPU % | router in / out B/s | cross-robot deliveries | all processes, % of a core |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in &r.points {
        s.push_str(&format!(
            "| {} | {:.2} / {:.2} | {:.1} | {} | {} | {:.2} | {:.0} / {:.0} | {} | {:.1} |\n",
            p.robots,
            p.robot_cpu_pct_mean,
            p.robot_cpu_pct_max,
            p.loop_hz_mean,
            ms(p.latency_p50_ms, p.latency_p50_bucket_ms),
            ms(p.latency_p99_ms, p.latency_p99_bucket_ms),
            p.router_cpu_pct,
            p.router_received_bytes_per_s,
            p.router_sent_bytes_per_s,
            p.cross_robot_deliveries,
            p.total_cpu_pct
        ));
    }
    s
}
