//! The node's actors as one set: a supervised child process per enabled role (`child`) and
//! the recorder with `--record`, the news that an actor gave up, and the bounded stop of them
//! all.

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
    child::{self, ChildEnd, ChildSpec, Kind},
    events::Events,
    recorder::{self, Recorder},
    signals::Signals,
};

pub struct Actors {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    /// Each child's end, and whether the node goes down with it.
    ended: mpsc::UnboundedReceiver<(&'static str, ChildEnd, bool)>,
    /// Restarts of every role, enabled or not, and of the recorder when there is one.
    restarts: Vec<(&'static str, Arc<AtomicU64>)>,
    /// How long a stop waits for them all: SIGTERM's grace plus a margin.
    grace: Duration,
}

impl Actors {
    /// Spawns each enabled actor, as this very binary, from the config file `config`, and the
    /// recorder if there is one.
    pub fn start(
        cfg: &NodeConfig,
        config: &Path,
        recorder: Option<Recorder>,
        host_label: Option<&str>,
        events: Events,
    ) -> anyhow::Result<Actors> {
        let exe = std::env::current_exe().context("locating the qubot binary")?;
        let (stop, stop_rx) = watch::channel(false);
        let (end_tx, ended) = mpsc::unbounded_channel();
        let (mut tasks, mut restarts) = (Vec::new(), Vec::new());
        let roles = Role::ALL.into_iter().map(|role| {
            let kind = Kind::Role {
                config: config.to_owned(),
            };
            (role.name(), cfg.role(role).enabled.then_some(kind))
        });
        let recorder = recorder.map(|r| (recorder::NAME, Some(Kind::Recorder(r))));
        for (name, kind) in roles.chain(recorder) {
            // Registered for every actor, so dashboards show 0 rather than nothing.
            let counter = metrics::counter!(telemetry::ACTOR_RESTARTS, "actor" => name);
            let count = Arc::new(AtomicU64::new(0));
            restarts.push((name, count.clone()));
            let Some(kind) = kind else {
                continue;
            };
            let essential = kind.essential();
            let spec = ChildSpec {
                name,
                kind,
                exe: exe.clone(),
                policy: cfg.supervisor.clone(),
                host_label: host_label.map(str::to_owned),
            };
            let (stop, end) = (stop_rx.clone(), end_tx.clone());
            tasks.push(tokio::spawn(async move {
                let how = child::supervise(spec, stop, events, counter, count).await;
                let _ = end.send((name, how, essential));
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

    /// Resolves when an actor crashed past the restart intensity; returns which. The
    /// recorder giving up is only logged: the robot runs on without it (docs/ARCHITECTURE.md
    /// §11).
    pub async fn gave_up(&mut self) -> &'static str {
        while let Some((name, end, essential)) = self.ended.recv().await {
            match end {
                ChildEnd::GaveUp if essential => return name,
                ChildEnd::GaveUp => {
                    tracing::error!(
                        child = name,
                        "restart intensity exceeded: left stopped, the robot runs on"
                    );
                }
                ChildEnd::Stopped | ChildEnd::Finished => {}
            }
        }
        std::future::pending().await
    }

    /// Stops every actor: each gets `stop_timeout_ms` after SIGTERM before SIGKILL; past that
    /// (+ margin) its task is dropped, which kills what is left (`kill_on_drop`). A second
    /// signal skips the grace. Returns the restarts per child.
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
