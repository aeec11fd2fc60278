//! The node's actors as one set: a supervised child process per enabled role (`child`), the
//! news that one gave up, and the bounded stop of them all.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::Context;
use qubot_bus::telemetry;
use qubot_node::{NodeConfig, Role};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::{
    child::{self, ChildEnd, ChildSpec},
    events::Events,
    signals::Signals,
};

pub struct Actors {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    ended: mpsc::UnboundedReceiver<(&'static str, ChildEnd)>,
    /// Restarts of every role, enabled or not.
    restarts: Vec<(&'static str, Arc<AtomicU64>)>,
    /// How long a stop waits for them all: SIGTERM's grace plus a margin.
    grace: Duration,
}

impl Actors {
    /// Spawns each enabled actor, as this very binary, from the config file `config`.
    pub fn start(
        cfg: &NodeConfig,
        config: &Path,
        host_label: Option<&str>,
        events: Events,
    ) -> anyhow::Result<Actors> {
        let exe = std::env::current_exe().context("locating the qubot binary")?;
        let (stop, stop_rx) = watch::channel(false);
        let (end_tx, ended) = mpsc::unbounded_channel();
        let (mut tasks, mut restarts) = (Vec::new(), Vec::new());
        for role in Role::ALL {
            let actor = role.name();
            // Registered for every actor, so dashboards show 0 rather than nothing.
            let counter = metrics::counter!(telemetry::ACTOR_RESTARTS, "actor" => actor);
            let count = Arc::new(AtomicU64::new(0));
            restarts.push((actor, count.clone()));
            if !cfg.role(role).enabled {
                continue;
            }
            let spec = ChildSpec {
                actor,
                exe: exe.clone(),
                config: config.to_owned(),
                policy: cfg.supervisor.clone(),
                host_label: host_label.map(str::to_owned),
            };
            let (stop, end) = (stop_rx.clone(), end_tx.clone());
            tasks.push(tokio::spawn(async move {
                let how = child::supervise(spec, stop, events, counter, count).await;
                let _ = end.send((actor, how));
            }));
        }
        Ok(Actors {
            tasks,
            stop,
            ended,
            restarts,
            grace: Duration::from_millis(cfg.supervisor.stop_timeout_ms) + Duration::from_millis(500),
        })
    }

    /// Resolves when an actor crashed past the restart intensity; returns which.
    pub async fn gave_up(&mut self) -> &'static str {
        while let Some((actor, end)) = self.ended.recv().await {
            if end == ChildEnd::GaveUp {
                return actor;
            }
        }
        std::future::pending().await
    }

    /// Stops every actor: each gets `stop_timeout_ms` after SIGTERM before SIGKILL; past that
    /// (+ margin) its task is dropped, which kills what is left (`kill_on_drop`). A second
    /// signal skips the grace. Returns the restarts per actor.
    pub async fn stop(mut self, signals: &mut Signals) -> BTreeMap<String, u64> {
        let _ = self.stop.send(true);
        let grace = self.grace;
        tokio::select! {
            _ = join_all(&mut self.tasks) => {}
            _ = tokio::time::sleep(grace) => tracing::warn!("actors did not stop within {grace:?}: killing them"),
            sig = signals.recv() => tracing::warn!(signal = sig, "second signal: killing the actors"),
        }
        for t in self.tasks.into_iter().filter(|t| !t.is_finished()) {
            t.abort();
            let _ = t.await;
        }
        self.restarts
            .into_iter()
            .map(|(actor, n)| (actor.to_owned(), n.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Waits for every task (each ends on its own once the stop is sent).
async fn join_all(tasks: &mut [JoinHandle<()>]) {
    for t in tasks.iter_mut() {
        if !t.is_finished() {
            let _ = t.await;
        }
    }
}
