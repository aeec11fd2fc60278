//! One supervised child process, a role actor or the recorder: spawn, watch, restart with
//! exponential backoff under an Erlang-style intensity limit, and stop gracefully (SIGTERM,
//! then SIGKILL).

use std::{
    collections::VecDeque,
    ffi::OsString,
    path::PathBuf,
    process::Stdio,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use metrics::Counter;
use nix::{sys::signal::Signal, unistd::Pid};
use qubot_node::config::SupervisorSection;
use qubot_ops::run::EventKind;
use tokio::{process::Command, sync::watch};

use super::{events::Events, recorder::Recorder};
use crate::cli::RecordArgs;

pub struct ChildSpec {
    /// The role's name, or the recorder's (`recorder::NAME`).
    pub name: &'static str,
    pub kind: Kind,
    pub exe: PathBuf,
    pub policy: SupervisorSection,
    /// The supervisor's `--host-label`, passed on so every process of the node carries it.
    pub host_label: Option<String>,
}

/// What a child runs, which decides its command line and what its end means.
pub enum Kind {
    /// A role actor, from the run's config file (docs/ARCHITECTURE.md §7: one that gives up
    /// brings the node down).
    Role { config: PathBuf },
    /// `qubot record` (docs/ARCHITECTURE.md §11): its exit for a low disk is final, and it
    /// giving up leaves the robot running.
    Recorder(Recorder),
}

impl Kind {
    /// The command line of run `run` (0 the first), `--host-label` aside.
    fn args(&self, name: &str, run: u32) -> Vec<OsString> {
        match self {
            Kind::Role { config } => vec![
                name.into(),
                "--config".into(),
                config.into(),
                // The actor checks that this process is still its parent (not PID 1: the
                // supervisor may itself be PID 1 in a container).
                "--supervisor-pid".into(),
                std::process::id().to_string().into(),
            ],
            Kind::Recorder(r) => r.args(run),
        }
    }

    /// Whether the node goes down when this child gives up.
    pub fn essential(&self) -> bool {
        matches!(self, Kind::Role { .. })
    }

    /// Why the child ended on purpose, when `status` says it did: it is not restarted.
    fn finished(&self, status: std::process::ExitStatus) -> Option<&'static str> {
        let disk_low = status.code() == Some(i32::from(RecordArgs::EXIT_DISK_LOW));
        (matches!(self, Kind::Recorder(_)) && disk_low)
            .then_some("the free-disk guard closed the recording; the robot runs on without it")
    }
}

/// How a supervised child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    Stopped,
    GaveUp,
    /// Exited on purpose and left stopped: the recorder after the free-disk guard closed its
    /// file.
    Finished,
}

/// Delay before restart number `n` (1-based) within the window: doubles from `initial`.
pub fn backoff(policy: &SupervisorSection, n: usize) -> Duration {
    let factor = 1u64 << (n.saturating_sub(1)).min(20);
    Duration::from_millis(
        policy
            .backoff_initial_ms
            .saturating_mul(factor)
            .min(policy.backoff_max_ms),
    )
}

/// Runs the child until `stop` turns true, until it crashed more than the intensity limit
/// allows (then returns `GaveUp` at once, leaving it stopped), or until it finished on purpose.
pub async fn supervise(
    spec: ChildSpec,
    mut stop: watch::Receiver<bool>,
    events: Events,
    restarts: Counter,
    count: Arc<AtomicU64>,
) -> ChildEnd {
    let window = Duration::from_secs_f64(spec.policy.restart_window_s);
    let mut recent: VecDeque<Instant> = VecDeque::new();
    let supervisor = nix::unistd::getpid().as_raw();
    // Runs so far: a restarted recorder writes a file of its own.
    let mut run: u32 = 0;
    loop {
        if *stop.borrow() {
            return ChildEnd::Stopped;
        }
        let mut cmd = Command::new(&spec.exe);
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
        // system calls (pthread_sigmask, prctl, getppid); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || tie_to_supervisor(supervisor));
        }
        let mut child = match cmd
            .args(spec.kind.args(spec.name, run))
            .args(spec.host_label.iter().flat_map(|l| ["--host-label", l.as_str()]))
            .stdin(Stdio::null())
            // Through us, so a child's line never lands inside our status line (nor its
            // stdout, the recorder's summary, among our events).
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(mut c) => {
                if let Some(out) = c.stdout.take() {
                    tokio::spawn(forward_lines(out));
                }
                if let Some(err) = c.stderr.take() {
                    tokio::spawn(forward_lines(err));
                }
                c
            }
            Err(e) => {
                events.emit(spec.name, EventKind::SpawnFailed { error: e.to_string() });
                return ChildEnd::GaveUp;
            }
        };
        run = run.saturating_add(1);
        // `None` only once the child was reaped, which cannot have happened yet; no pid means
        // no signal is ever sent by pid (pid 0 would be our own process group).
        let pid = child.id();
        events.emit(spec.name, EventKind::Spawned { pid });
        tokio::select! {
            status = child.wait() => {
                let how = match &status {
                    Ok(s) => describe(*s),
                    Err(e) => format!("wait failed: {e}"),
                };
                events.emit(spec.name, EventKind::Exited { pid, status: how });
                // The dead process's shared-memory segments are orphans now.
                let _ = tokio::task::spawn_blocking(qubot_bus::cleanup_orphaned_shm_segments).await;
                if *stop.borrow() {
                    return ChildEnd::Stopped;
                }
                if let Some(why) = status.ok().and_then(|s| spec.kind.finished(s)) {
                    tracing::warn!(child = spec.name, "not restarted: {why}");
                    return ChildEnd::Finished;
                }
                let now = Instant::now();
                recent.push_back(now);
                while recent.front().is_some_and(|t| now.duration_since(*t) > window) {
                    recent.pop_front();
                }
                if recent.len() > spec.policy.max_restarts as usize {
                    let restarts_in_window = u32::try_from(recent.len()).unwrap_or(u32::MAX);
                    events.emit(spec.name, EventKind::GaveUp { restarts_in_window });
                    return ChildEnd::GaveUp;
                }
                let delay = backoff(&spec.policy, recent.len());
                restarts.increment(1);
                count.fetch_add(1, Ordering::Relaxed);
                let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                events.emit(spec.name, EventKind::Restarting { delay_ms });
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return ChildEnd::Stopped,
                }
            }
            _ = stop.changed() => {
                terminate(&mut child, pid, Duration::from_millis(spec.policy.stop_timeout_ms)).await;
                events.emit(spec.name, EventKind::Stopped { pid });
                return ChildEnd::Stopped;
            }
        }
    }
}

/// Between fork and exec: the stop signals unblocked (the child must receive its SIGTERM), and
/// the child tied to this process as docs/ARCHITECTURE.md §7 says, by the mechanism the actors
/// use themselves (`--supervisor-pid`): SIGTERM when the supervisor dies (the parent-death
/// signal outlives exec), and no exec at all if it died already (the child was re-parented).
/// The recorder, a plain `qubot record`, has only this. Async-signal-safe calls only.
fn tie_to_supervisor(supervisor: i32) -> std::io::Result<()> {
    super::signals::Signals::unblock_in_child()?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
    if nix::unistd::getppid().as_raw() != supervisor {
        return Err(nix::errno::Errno::ESRCH.into());
    }
    Ok(())
}

/// Copies a child's output lines to our stderr, each on a row of its own; ends when the child
/// closes it (it exited).
async fn forward_lines(out: impl tokio::io::AsyncRead + Unpin) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        crate::term::log_line(&line);
    }
}

/// SIGTERM, then SIGKILL after `grace`: bounded by `grace` plus the kernel's reaping.
async fn terminate(child: &mut tokio::process::Child, pid: Option<u32>, grace: Duration) {
    // Only a positive pid of a child not yet reaped: never 0 or -1 (process groups).
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|&p| p > 0) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(?pid, "actor ignored SIGTERM; killing it");
        let _ = child.kill().await;
    }
}

fn describe(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = SupervisorSection {
            backoff_initial_ms: 100,
            backoff_max_ms: 1000,
            ..Default::default()
        };
        let ms: Vec<u128> = (1..=6).map(|n| backoff(&p, n).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1000, 1000]);
    }
}
