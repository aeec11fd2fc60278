//! One supervised actor process: spawn, watch, restart with exponential backoff under an
//! Erlang-style intensity limit, and stop gracefully (SIGTERM, then SIGKILL).

use std::{
    collections::VecDeque,
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

use super::events::Events;

pub struct ChildSpec {
    pub actor: &'static str,
    pub exe: PathBuf,
    pub config: PathBuf,
    pub policy: SupervisorSection,
    /// The supervisor's `--host-label`, passed on so every process of the node carries it.
    pub host_label: Option<String>,
}

/// How a supervised actor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    Stopped,
    GaveUp,
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

/// Runs the actor until `stop` turns true, or until it crashed more than the intensity limit
/// allows (then returns `GaveUp` at once, leaving it stopped).
pub async fn supervise(
    spec: ChildSpec,
    mut stop: watch::Receiver<bool>,
    events: Events,
    restarts: Counter,
    count: Arc<AtomicU64>,
) -> ChildEnd {
    let window = Duration::from_secs_f64(spec.policy.restart_window_s);
    let mut recent: VecDeque<Instant> = VecDeque::new();
    loop {
        if *stop.borrow() {
            return ChildEnd::Stopped;
        }
        let mut cmd = Command::new(&spec.exe);
        // SAFETY: the closure runs between fork and exec and only calls pthread_sigmask,
        // which is async-signal-safe.
        unsafe {
            cmd.pre_exec(super::signals::Signals::unblock_in_child);
        }
        let mut child = match cmd
            .arg(spec.actor)
            .arg("--config")
            .arg(&spec.config)
            // The child checks that this process is still its parent (not PID 1: the
            // supervisor may itself be PID 1 in a container).
            .arg("--supervisor-pid")
            .arg(std::process::id().to_string())
            .args(spec.host_label.iter().flat_map(|l| ["--host-label", l.as_str()]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Through us, so a child's log line never lands inside our status line.
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(mut c) => {
                if let Some(err) = c.stderr.take() {
                    tokio::spawn(forward_stderr(err));
                }
                c
            }
            Err(e) => {
                events.emit(spec.actor, EventKind::SpawnFailed { error: e.to_string() });
                return ChildEnd::GaveUp;
            }
        };
        // `None` only once the child was reaped, which cannot have happened yet; no pid means
        // no signal is ever sent by pid (pid 0 would be our own process group).
        let pid = child.id();
        events.emit(spec.actor, EventKind::Spawned { pid });
        tokio::select! {
            status = child.wait() => {
                let how = match status {
                    Ok(s) => describe(s),
                    Err(e) => format!("wait failed: {e}"),
                };
                events.emit(spec.actor, EventKind::Exited { pid, status: how });
                // The dead process's shared-memory segments are orphans now.
                let _ = tokio::task::spawn_blocking(qubot_bus::cleanup_orphaned_shm_segments).await;
                if *stop.borrow() {
                    return ChildEnd::Stopped;
                }
                let now = Instant::now();
                recent.push_back(now);
                while recent.front().is_some_and(|t| now.duration_since(*t) > window) {
                    recent.pop_front();
                }
                if recent.len() > spec.policy.max_restarts as usize {
                    let restarts_in_window = u32::try_from(recent.len()).unwrap_or(u32::MAX);
                    events.emit(spec.actor, EventKind::GaveUp { restarts_in_window });
                    return ChildEnd::GaveUp;
                }
                let delay = backoff(&spec.policy, recent.len());
                restarts.increment(1);
                count.fetch_add(1, Ordering::Relaxed);
                let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                events.emit(spec.actor, EventKind::Restarting { delay_ms });
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return ChildEnd::Stopped,
                }
            }
            _ = stop.changed() => {
                terminate(&mut child, pid, Duration::from_millis(spec.policy.stop_timeout_ms)).await;
                events.emit(spec.actor, EventKind::Stopped { pid });
                return ChildEnd::Stopped;
            }
        }
    }
}

/// Copies a child's stderr lines to ours, each on a row of its own; ends when the child's
/// stderr closes (it exited).
async fn forward_stderr(err: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(err).lines();
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
