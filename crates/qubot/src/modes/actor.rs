//! `qubot sensor|planner|actuator`: one robot actor per process, configured by the node config.

use std::{net::SocketAddr, process::ExitCode};

use anyhow::Context;
use qubot_actors::{actuator, planner, sensor};
use qubot_node::Role;
use qubot_runtime::shutdown_signal;

use crate::{
    cli::ActorArgs,
    startup::{self, Checked, Node},
};

/// Publishers are declared on the main thread, before the actix System (docs/ARCHITECTURE.md §10).
/// Built once per process, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Declared {
    Sensor(sensor::SensorBus),
    Planner(planner::PlannerBus),
    Actuator(actuator::ActuatorBus),
}

pub fn run(which: Role, args: ActorArgs) -> anyhow::Result<ExitCode> {
    // Started by `qubot up` (our parent, checked): the file is the config it resolved and
    // validated, so it is not checked twice.
    let checked = match args.supervisor_pid {
        Some(pid) => {
            exit_with_parent(pid)?;
            Checked::BySupervisor
        }
        None => Checked::No,
    };
    let Node { cfg, world } = startup::load_node(args.config.as_deref(), checked, |_| {})?;
    let own = cfg.role(which);
    let (listen, producers) = endpoints(&cfg, which);
    let bc = startup::node_bus(&cfg, which.name(), own.instance)
        .with_connect(
            std::iter::once(cfg.zenoh.hub.clone())
                .chain(cfg.zenoh.connect.iter().cloned())
                .chain(producers),
        )
        .with_listen(listen)
        .with_shm_pool_mib(own.shm_pool_mib);
    let metrics_addr = args
        .metrics_addr
        .unwrap_or(SocketAddr::new(cfg.metrics_bind, own.metrics_port));
    let bus = startup::open(&bc, Some(metrics_addr), args.host_label.as_deref())?;
    qubot_actors::timing::apply_at_start(&cfg, which).map_err(anyhow::Error::msg)?;
    let declared = match which {
        Role::Sensor => Declared::Sensor(sensor::declare(&bus, &cfg)?),
        Role::Planner => Declared::Planner(planner::declare(&bus)?),
        Role::Actuator => Declared::Actuator(actuator::declare(&bus)?),
    };
    let sys = actix::System::new();
    let subs = sys.block_on(async {
        let subs = match declared {
            Declared::Sensor(p) => sensor::start(&bus, &cfg, world, p).await,
            Declared::Planner(p) => planner::start(&bus, &cfg, &world, p).await,
            Declared::Actuator(p) => actuator::start(&bus, &cfg, &world, p).await,
        }
        .with_context(|| format!("starting the {}", which.name()))?;
        tracing::info!(actor = which.name(), %metrics_addr, "running");
        let sig = shutdown_signal().await?;
        tracing::info!(actor = which.name(), signal = sig, "stopping");
        anyhow::Ok(subs)
    })?;
    // zenoh entities are released on the plain main thread (docs/ARCHITECTURE.md §10).
    drop(subs);
    bus.close();
    Ok(ExitCode::SUCCESS)
}

/// Where `which` listens, and the producers it dials. With the robot's actors placed in
/// `zenoh.actors` (a robot on several hosts), it listens on its own entry and dials each actor
/// it consumes from: zenoh redials a configured endpoint after a partition, never a link it
/// found by gossip. Otherwise an ephemeral port (loopback when nothing else is configured) lets
/// peers that learn of it by gossip connect directly.
fn endpoints(cfg: &qubot_node::NodeConfig, which: Role) -> (Vec<String>, Vec<String>) {
    let placed = |r: Role| cfg.zenoh.actors.get(r.name()).cloned();
    let listen = match placed(which) {
        Some(own) => vec![own],
        None if cfg.zenoh.listen.is_empty() => vec!["tcp/127.0.0.1:0".into()],
        None => cfg.zenoh.listen.clone(),
    };
    let mut producers: Vec<String> = which.consumes().filter_map(|t| placed(t.from?)).collect();
    producers.dedup();
    (listen, producers)
}

/// A supervised actor must not outlive its supervisor (e.g. after `kill -9` of `qubot up`).
/// The parent-death signal covers every death after this call; the pid check covers a
/// supervisor that died before it (we were re-parented). Comparing with 1 instead would stop
/// every actor of a supervisor that is itself PID 1 (a container's entrypoint).
fn exit_with_parent(supervisor: u32) -> anyhow::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).context("prctl(PR_SET_PDEATHSIG)")?;
    let parent = nix::unistd::getppid().as_raw();
    if u32::try_from(parent).ok() != Some(supervisor) {
        anyhow::bail!("the supervisor (pid {supervisor}) is gone: our parent is pid {parent}");
    }
    Ok(())
}
