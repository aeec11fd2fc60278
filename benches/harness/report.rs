//! `target/bench/report.json`: what was measured, on what, and the readable table.

use serde::Serialize;

use crate::roles::Transport;

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub git_rev: String,
    /// The allocator the shipped `qubot` binary uses by default; each case names its own.
    pub allocator: &'static str,
    pub quick: bool,
    pub seconds: f64,
    pub cases: Vec<Case>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub mem_gib: f64,
    pub kernel: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub kind: &'static str,
    pub transport: Transport,
    pub payload_bytes: usize,
    pub allocator: String,
    #[serde(flatten)]
    pub measured: Measured,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Measured {
    Latency {
        raw_p50_us: f64,
        raw_p99_us: f64,
        qubot_p50_us: f64,
        qubot_p99_us: f64,
        ratio_p50: f64,
        ratio_p99: f64,
        /// Raw zenoh with the echo's work on a thread of its own (`raw-handoff`): the hand-off
        /// alone. `qubot_over_handoff_p50` is what Qubot costs beyond it.
        handoff_p50_us: f64,
        handoff_p99_us: f64,
        handoff_ratio_p50: f64,
        qubot_over_handoff_p50: f64,
        /// Qubot with the node config's `latency` profile; its ratio is against raw zenoh
        /// with zenoh's default settings.
        latency_profile_p50_us: f64,
        latency_profile_p99_us: f64,
        latency_profile_ratio_p50: f64,
        samples: usize,
        timeouts: u64,
    },
    Throughput {
        raw_msgs_per_s: f64,
        qubot_msgs_per_s: f64,
        ratio: f64,
        handoff_msgs_per_s: f64,
        handoff_ratio: f64,
        qubot_over_handoff: f64,
        raw_bytes_per_s: f64,
        qubot_bytes_per_s: f64,
    },
    Allocs {
        allocs_per_msg_pub: Option<f64>,
        allocs_per_msg_sub: Option<f64>,
        raw_allocs_per_msg_pub: Option<f64>,
        raw_allocs_per_msg_sub: Option<f64>,
        /// What Qubot adds per message: the median over rounds of (Qubot − raw) within each
        /// round, whose two runs are back to back and so share the machine's load.
        extra_allocs_per_msg_pub: Option<f64>,
        extra_allocs_per_msg_sub: Option<f64>,
        /// CPU time (user + system) of the publisher and the subscriber process together per
        /// message, microseconds, median over rounds; `cpu_ratio` is Qubot / raw within each
        /// round, median.
        raw_cpu_us_per_msg: Option<f64>,
        qubot_cpu_us_per_msg: Option<f64>,
        cpu_ratio: Option<f64>,
        /// The same for raw zenoh handed off; ratios paired within rounds like `cpu_ratio`.
        handoff_allocs_per_msg_sub: Option<f64>,
        handoff_cpu_us_per_msg: Option<f64>,
        handoff_cpu_ratio: Option<f64>,
        qubot_over_handoff_cpu: Option<f64>,
        /// Messages measured on each side (Qubot).
        messages: u64,
        /// Heap growth over the measured messages: a leak shows here.
        live_growth_bytes_pub: i64,
        live_growth_bytes_sub: i64,
        raw_live_growth_bytes_pub: i64,
        raw_live_growth_bytes_sub: i64,
    },
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            mem_gib: (mem_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        }
    }
}

/// `git describe`-like revision of the tree the harness was run from (`-dirty` when modified).
pub fn git_rev() -> String {
    let out = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match out(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty =
                out(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        None => "unknown".into(),
    }
}

pub fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
}

/// The table printed at the end of a run (and pasted into BENCHMARKS.md).
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let head = |s: &mut String, h: &str, sep: &str| {
        s.push_str(h);
        s.push('\n');
        s.push_str(sep);
        s.push('\n');
    };
    head(
        &mut s,
        "| latency (one hop) | transport | payload | allocator | raw p50 µs | raw p99 µs | Qubot p50 µs | Qubot p99 µs | p50 ratio | p99 ratio | latency profile p50 µs | p99 µs | p50 ratio | raw handed off p50 µs | p50 ratio | Qubot / handed off |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for c in &r.cases {
        if let Measured::Latency {
            raw_p50_us,
            raw_p99_us,
            qubot_p50_us,
            qubot_p99_us,
            ratio_p50,
            ratio_p99,
            latency_profile_p50_us: lp50,
            latency_profile_p99_us: lp99,
            latency_profile_ratio_p50: lratio,
            handoff_p50_us: h50,
            handoff_ratio_p50: hratio,
            qubot_over_handoff_p50: qh,
            ..
        } = c.measured
        {
            s.push_str(&format!(
                "| | {:?} | {} | {} | {raw_p50_us:.1} | {raw_p99_us:.1} | {qubot_p50_us:.1} | {qubot_p99_us:.1} | {ratio_p50:.2} | {ratio_p99:.2} | {lp50:.1} | {lp99:.1} | {lratio:.2} | {h50:.1} | {hratio:.2} | {qh:.2} |\n",
                c.transport,
                size(c.payload_bytes),
                c.allocator
            ));
        }
    }
    s.push('\n');
    head(
        &mut s,
        "| throughput | transport | payload | allocator | raw msg/s | Qubot msg/s | ratio | raw MB/s | Qubot MB/s | raw handed off msg/s | ratio | Qubot / handed off |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for c in &r.cases {
        if let Measured::Throughput {
            raw_msgs_per_s,
            qubot_msgs_per_s,
            ratio,
            raw_bytes_per_s,
            qubot_bytes_per_s,
            handoff_msgs_per_s,
            handoff_ratio,
            qubot_over_handoff,
        } = c.measured
        {
            s.push_str(&format!(
                "| | {:?} | {} | {} | {raw_msgs_per_s:.0} | {qubot_msgs_per_s:.0} | {ratio:.2} | {:.1} | {:.1} | {handoff_msgs_per_s:.0} | {handoff_ratio:.2} | {qubot_over_handoff:.2} |\n",
                c.transport,
                size(c.payload_bytes),
                c.allocator,
                raw_bytes_per_s / 1e6,
                qubot_bytes_per_s / 1e6
            ));
        }
    }
    s.push('\n');
    head(
        &mut s,
        "| paced: allocations and CPU per message | transport | payload | allocator | Qubot pub | Qubot sub | raw pub | raw sub | raw CPU µs | Qubot CPU µs | CPU ratio | raw handed off CPU µs | ratio | Qubot / handed off |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for c in &r.cases {
        if let Measured::Allocs {
            allocs_per_msg_pub,
            allocs_per_msg_sub,
            raw_allocs_per_msg_pub,
            raw_allocs_per_msg_sub,
            raw_cpu_us_per_msg,
            qubot_cpu_us_per_msg,
            cpu_ratio,
            handoff_cpu_us_per_msg,
            handoff_cpu_ratio,
            qubot_over_handoff_cpu,
            ..
        } = c.measured
        {
            s.push_str(&format!(
                "| | {:?} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                c.transport,
                size(c.payload_bytes),
                c.allocator,
                opt(allocs_per_msg_pub),
                opt(allocs_per_msg_sub),
                opt(raw_allocs_per_msg_pub),
                opt(raw_allocs_per_msg_sub),
                opt(raw_cpu_us_per_msg),
                opt(qubot_cpu_us_per_msg),
                opt(cpu_ratio),
                opt(handoff_cpu_us_per_msg),
                opt(handoff_cpu_ratio),
                opt(qubot_over_handoff_cpu)
            ));
        }
    }
    s
}
