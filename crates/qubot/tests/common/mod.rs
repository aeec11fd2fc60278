//! Test support, one copy of each helper: real `qubot` processes (here), waiting on conditions
//! with deadlines (never a bare sleep), and by concern:
//! - [`counters`]: `/metrics` scrapes and the message counters the tests judge by;
//! - [`pipeline`]: a `qubot up` of the reference robot on ports of its own;
//! - [`prometheus`]: a real Prometheus with the shipped config;
//! - [`router`]: a `qubot router`, on loopback or in a network namespace;
//! - [`foxglove_ws`]: a Foxglove WebSocket client written from the specifications;
//! - [`lab`]: network-namespace devices with an sshd each (`deploy/lab.sh`), and the deploys.
#![allow(dead_code)] // each test binary uses its own subset

pub mod counters;
pub mod foxglove_ws;
pub mod lab;
pub mod mcap;
pub mod pipeline;
pub mod prometheus;
pub mod router;

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use qubot_ops::process::{self, Child};
#[allow(unused_imports)] // each test binary uses its own subset
pub use qubot_ops::run::{Event, EventKind, Finish, RunReport};

pub const QUBOT: &str = env!("CARGO_BIN_EXE_qubot");
/// The repository root (deploy/, dashboards/, README.md).
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Process tests run one at a time: they share /dev/shm (leftover checks) and two cores.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A free TCP port on loopback (bound then released; good enough on a test machine).
pub fn free_port() -> u16 {
    process::free_port().expect("a free loopback port")
}

/// A running `qubot` child: killed on drop, stdout lines readable as they come.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

/// `qubot args...` as every test runs it: warnings and errors on stderr, nothing chattier.
pub fn qubot(args: &[&str]) -> Command {
    let mut c = Command::new(QUBOT);
    c.args(args).env("RUST_LOG", "warn");
    c
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str]) -> Proc {
        Proc::from_command(name, qubot(args))
    }

    /// [`Proc::spawn`] with its stderr passed through and also kept: the lines it wrote so far.
    pub fn spawn_keeping_stderr(name: &str, args: &[&str]) -> (Proc, Arc<Mutex<Vec<String>>>) {
        Proc::from_command_keeping_stderr(name, qubot(args))
    }

    /// [`Proc::from_command`] with its stderr passed through and also kept.
    pub fn from_command_keeping_stderr(name: &str, mut c: Command) -> (Proc, Arc<Mutex<Vec<String>>>) {
        c.stdin(Stdio::null()).stderr(Stdio::piped());
        let mut child = Child::spawn(name, c).unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        let kept = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.take_stderr() {
            let k = kept.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    k.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        let p = Proc {
            child,
            name: name.into(),
        };
        (p, kept)
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
    pub fn interrupt(self, pid: u32) -> (i32, RunReport) {
        signal_pid(pid, "INT");
        let (code, lines) = self.finish(Duration::from_secs(60));
        (code, run_report_in(&lines, code))
    }

    /// Reads supervisor events until `actor` was spawned; returns its pid.
    pub fn spawned(&self, actor: &str, timeout: Duration) -> u32 {
        loop {
            if let Some(e) = Event::from_json_line(&self.line(timeout)) {
                if e.actor == actor {
                    if let Some(pid) = e.spawned_pid() {
                        return pid;
                    }
                }
            }
        }
    }

    /// Next stdout line, or panic at the deadline.
    pub fn line(&self, timeout: Duration) -> String {
        self.child
            .line(timeout)
            .unwrap_or_else(|e| panic!("{}: no stdout line within {timeout:?}: {e}", self.name))
    }

    /// Waits for the process to exit and returns its exit code and every stdout line.
    pub fn finish(mut self, timeout: Duration) -> (i32, Vec<String>) {
        self.wait_exit(timeout)
    }

    /// [`Proc::finish`] without giving the process up (for owners that stop it on drop).
    pub fn wait_exit(&mut self, timeout: Duration) -> (i32, Vec<String>) {
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
    let done = process::run(qubot(args), timeout).unwrap_or_else(|e| panic!("qubot {args:?}: {e}"));
    (done.status.code().unwrap_or(-1), done.stdout, done.stderr)
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

/// The run report among `qubot up`'s stdout lines (its last line), or panic saying what came.
pub fn run_report_in(lines: &[String], code: i32) -> RunReport {
    RunReport::last_in(lines).unwrap_or_else(|| panic!("no run report (exit {code}): {lines:?}"))
}

/// Runs `qubot args...` for at most `secs` seconds (it may legitimately never finish): its
/// stdout and stderr.
pub fn bounded(secs: u32, args: &[&str]) -> (String, String) {
    bounded_in(&[], secs, args)
}

/// [`bounded`] run by `wrapper` (a command that runs its arguments, e.g. `ip netns exec NS`).
pub fn bounded_in(wrapper: &[&str], secs: u32, args: &[&str]) -> (String, String) {
    let secs = secs.to_string();
    let argv: Vec<&str> = wrapper
        .iter()
        .copied()
        .chain(["timeout", &secs, QUBOT])
        .chain(args.iter().copied())
        .collect();
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Does `program args...` run and succeed? (A prerequisite probe: nothing is shown.)
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
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

/// A file of this run in the temp dir, `qubot-<stem>-<pid>.<ext>`: removed on drop.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(stem: &str, ext: &str, text: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("qubot-{stem}-{}.{ext}", std::process::id()));
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        TempFile(p)
    }

    /// A TOML file (a node config, an inventory).
    pub fn toml(stem: &str, text: &str) -> TempFile {
        TempFile::new(stem, "toml", text)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path as a command-line argument.
    pub fn arg(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A directory of this run in the temp dir, `qubot-<stem>-<pid>`: created empty, removed
/// with everything in it on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(stem: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("qubot-{stem}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
