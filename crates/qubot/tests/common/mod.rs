//! Test support: real `qubot` processes on loopback, Prometheus scrapes, and waiting on
//! conditions with deadlines (never a bare sleep).
#![allow(dead_code)] // each test binary uses its own subset

use std::{
    collections::BTreeSet,
    process::{Command, Stdio},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use qubot_ops::process::{self, Child};

pub const QUBOT: &str = env!("CARGO_BIN_EXE_qubot");

/// Process tests run one at a time: they share /dev/shm (leftover checks) and two cores.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A free TCP port on loopback (bound then released; good enough on a test machine).
pub fn free_port() -> u16 {
    process::free_port().expect("a free loopback port")
}

/// A pipeline's ports in one run of five free ones: the metrics ports `base..base + 4`
/// (supervisor, then the actors) and the hub endpoint at `base + 4`.
pub fn pipeline_ports() -> (String, u16) {
    let base = process::free_port_run(5).expect("five free loopback ports");
    (format!("tcp/127.0.0.1:{}", base + 4), base)
}

/// A running `qubot` child: killed on drop, stdout lines readable as they come.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str]) -> Proc {
        let mut c = Command::new(QUBOT);
        c.args(args).env("RUST_LOG", "warn");
        Proc::from_command(name, c)
    }

    /// Starts `cmd` (any program: `cargo run`, `unshare`, `script`) with stdout read line by
    /// line and stderr passed through.
    pub fn from_command(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
        let child = Child::spawn(name, cmd).unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Proc {
            child,
            name: name.into(),
        }
    }

    /// SIGINT to `pid` (the supervisor, which may be a grandchild), then the exit code and the
    /// last stdout line (the run report) once this process has exited.
    pub fn interrupt(self, pid: u32) -> (i32, serde_json::Value) {
        signal_pid(pid, "INT");
        let (code, lines) = self.finish(Duration::from_secs(60));
        let last = lines.last().unwrap_or_else(|| panic!("no report; exit {code}"));
        (code, json(last))
    }

    /// Next stdout line, or panic at the deadline.
    pub fn line(&self, timeout: Duration) -> String {
        self.child
            .line(timeout)
            .unwrap_or_else(|e| panic!("{}: no stdout line within {timeout:?}: {e}", self.name))
    }

    /// Waits for the process to exit and returns its exit code and every stdout line.
    pub fn finish(mut self, timeout: Duration) -> (i32, Vec<String>) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let lines: Vec<String> = self.child.drain_lines(deadline);
                return (status.code().unwrap_or(-1), lines);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: &str) {
        signal_pid(self.child.id(), sig);
    }

    /// Resident set size from /proc, in bytes (read instantly, unlike the 1 s process metrics).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kb * 1024
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

/// Runs `qubot args...` to completion; returns exit code, stdout, stderr.
pub fn run(args: &[&str], timeout: Duration) -> (i32, String, String) {
    let mut cmd = Command::new(QUBOT);
    cmd.args(args).env("RUST_LOG", "warn");
    let done = process::run(cmd, timeout).unwrap_or_else(|e| panic!("qubot {args:?}: {e}"));
    (done.status.code().unwrap_or(-1), done.stdout, done.stderr)
}

/// Polls `cond` until it returns Some or the deadline passes (then panics with `what`).
pub fn wait_for<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[allow(unused_imports)] // each test binary uses its own subset
pub use qubot_ops::promtext::{parse as parse_metrics, scrape, sum, Sample};

/// Scrapes and parses, panicking on a malformed page.
pub fn metrics(addr: &str) -> Option<Vec<Sample>> {
    let text = scrape(addr)?;
    Some(parse_metrics(&text).unwrap_or_else(|e| panic!("{addr}/metrics does not parse: {e}")))
}

/// The zenoh SHM segment files in /dev/shm now.
pub fn shm_files() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".zenoh"))
                .collect()
        })
        .unwrap_or_default()
}

/// The pids that map `/dev/shm/<name>`, if any process does.
pub fn shm_holders(name: &str) -> Option<Vec<u32>> {
    let path = format!("/dev/shm/{name}");
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|m| m.contains(&path)))
        .collect();
    (!pids.is_empty()).then_some(pids)
}

/// Parses one line of the CLI's JSON output.
pub fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// `kill -s SIG pid`, asserting that the signal was delivered.
pub fn signal_pid(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -s {sig} {pid}");
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus instant query against `prom` (host:port): `Some(number of series)` when
/// Prometheus answered.
pub fn prom_query(prom: &str, expr: &str) -> Option<usize> {
    let body = qubot_ops::promtext::http_get(prom, &format!("/api/v1/query?query={}", url_encode(expr)))?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    (v["status"] == "success").then(|| v["data"]["result"].as_array().map_or(0, Vec::len))
}

/// A test whose prerequisite is missing: under `CI=true` that is a failure (CI installs
/// everything, so a missing tool is a broken CI script); elsewhere it says `SKIPPED: ...`
/// on the real stderr (libtest hides a passing test's `eprintln!`), which `just test` counts.
pub fn skip_or_fail(test: &str, why: &str) {
    use std::io::Write;
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: prerequisite missing under CI=true: {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

/// A fresh robot name, hub and metrics ports, written as a node config file (for `qubot up
/// --config` and the tools that read one, like `qubot health`).
pub fn isolated(name: &str) -> (qubot_node::NodeConfig, std::path::PathBuf) {
    let (hub, base) = pipeline_ports();
    let mut cfg = qubot_node::NodeConfig {
        robot: name.into(),
        ..Default::default()
    };
    cfg.zenoh.hub = hub;
    cfg.set_metrics_ports(base);
    let path = std::env::temp_dir().join(format!("qubot-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, cfg.to_toml()).expect("config");
    (cfg, path)
}

/// A `qubot up` of the reference robot, driven by the tests.
pub const WORLDS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/worlds");
/// Generous wall-clock bound for one run (the slowest world needs ~30 s on an idle machine).
pub const RUN: Duration = Duration::from_secs(150);

/// A `qubot up` with its own hub and metrics ports.
pub struct Up {
    pub proc: Proc,
    pub base: u16,
    /// The zenoh endpoint the supervisor listens on (for tools that join this robot's bus).
    pub hub: String,
}

impl Up {
    pub fn start(robot: &str, world: &str, extra: &[&str]) -> Up {
        let (hub, base) = pipeline_ports();
        let base_s = base.to_string();
        let mut args = vec![
            "up",
            "--robot",
            robot,
            "--world",
            world,
            "--worlds-dir",
            WORLDS_DIR,
            "--hub",
            &hub,
            "--metrics-port-base",
            &base_s,
        ];
        args.extend_from_slice(extra);
        Up {
            proc: Proc::spawn("qubot up", &args),
            base,
            hub,
        }
    }

    pub fn metrics_of(&self, offset: u16) -> String {
        format!("127.0.0.1:{}", self.base + offset)
    }

    /// Reads supervisor events until `actor` was spawned; returns its pid.
    pub fn spawned(&self, actor: &str) -> u32 {
        loop {
            let line = self.proc.line(Duration::from_secs(60));
            let v = json(&line);
            if v["event"] == "spawned" && v["actor"] == actor {
                return v["pid"].as_u64().expect("pid") as u32;
            }
        }
    }

    /// Waits for the run report (the last stdout line) and the exit code.
    pub fn report(self) -> (i32, serde_json::Value) {
        let (code, lines) = self.proc.finish(RUN);
        let last = lines.last().unwrap_or_else(|| panic!("no report; exit {code}"));
        (code, json(last))
    }
}

pub fn actuator_metric(up: &Up, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
    metrics(&up.metrics_of(3)).map(|m| sum(&m, name, filter))
}

/// Runs a `qubot` tool that must succeed and returns its report (the last stdout line, JSON).
pub fn run_report(args: &[&str], timeout: Duration) -> serde_json::Value {
    let (code, out, err) = run(args, timeout);
    assert_eq!(code, 0, "qubot {}: {err}", args.first().unwrap_or(&""));
    json(
        out.lines()
            .last()
            .unwrap_or_else(|| panic!("qubot {args:?}: no report")),
    )
}

/// Waits until the actuator has applied `n` commands: the loop is closed and the robot moving.
pub fn wait_driving(up: &Up, n: f64) {
    wait_for(
        "commands flowing to the actuator",
        Duration::from_secs(60),
        || {
            let v = actuator_metric(
                up,
                "qubot_messages_received_total",
                &[("actor", "actuator"), ("topic", "cmd")],
            )?;
            (v >= n).then_some(())
        },
    );
}

pub fn assert_clean_run(report: &serde_json::Value) {
    assert_eq!(report["goal_reached"], true, "{report}");
    assert_eq!(report["collisions"], 0, "{report}");
    let clearance = report["min_clearance_m"].as_f64().expect("clearance");
    let radius = report["robot_radius_m"].as_f64().expect("radius");
    // Only a moving obstacle that walked into the robot may have come closer (`struck`).
    let struck = report["struck"].as_u64().expect("struck");
    assert!(
        clearance > radius || struck > 0,
        "clearance {clearance} <= radius {radius}: {report}"
    );
}
