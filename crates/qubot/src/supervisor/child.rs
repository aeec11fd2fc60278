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
use qubot_actors::config::SupervisorSection;
use tokio::{process::Command, sync::watch};

use super::events::Events;

pub struct ChildSpec {
    pub actor: &'static str,
    pub exe: PathBuf,
    pub config: PathBuf,
    pub policy: SupervisorSection,
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
        let mut child = match Command::new(&spec.exe)
            .arg(spec.actor)
            .arg("--config")
            .arg(&spec.config)
            .arg("--supervised")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                events.emit(spec.actor, "spawn_failed", &[("error", format!("{e:?}"))]);
                return ChildEnd::GaveUp;
            }
        };
        let pid = child.id().unwrap_or(0);
        events.emit(spec.actor, "spawned", &[("pid", pid.to_string())]);
        tokio::select! {
            status = child.wait() => {
                let how = match status {
                    Ok(s) => describe(s),
                    Err(e) => format!("\"wait failed: {e}\""),
                };
                events.emit(spec.actor, "exited", &[("pid", pid.to_string()), ("status", how)]);
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
                    events.emit(spec.actor, "gave_up", &[("restarts_in_window", recent.len().to_string())]);
                    return ChildEnd::GaveUp;
                }
                let delay = backoff(&spec.policy, recent.len());
                restarts.increment(1);
                count.fetch_add(1, Ordering::Relaxed);
                events.emit(spec.actor, "restarting", &[("delay_ms", delay.as_millis().to_string())]);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return ChildEnd::Stopped,
                }
            }
            _ = stop.changed() => {
                terminate(&mut child, pid, Duration::from_millis(spec.policy.stop_timeout_ms)).await;
                events.emit(spec.actor, "stopped", &[("pid", pid.to_string())]);
                return ChildEnd::Stopped;
            }
        }
    }
}

async fn terminate(child: &mut tokio::process::Child, pid: u32, grace: Duration) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill() with a pid we spawned and have not reaped yet, and a valid signal.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(pid, "actor ignored SIGTERM; killing it");
        let _ = child.kill().await;
    }
}

fn describe(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("\"exit {c}\""),
        (None, Some(sig)) => format!("\"signal {sig}\""),
        _ => "\"unknown\"".into(),
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
