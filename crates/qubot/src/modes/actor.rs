//! `qubot sensor|planner|actuator`: one robot actor per process, configured by the node config.

use std::{net::SocketAddr, process::ExitCode};

use anyhow::Context;
use qubot_actors::{actuator, planner, sensor, NodeConfig};
use qubot_bus::BusConfig;
use qubot_runtime::shutdown_signal;

use crate::cli::ActorArgs;

#[derive(Debug, Clone, Copy)]
pub enum Which {
    Sensor,
    Planner,
    Actuator,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Sensor => "sensor",
            Which::Planner => "planner",
            Which::Actuator => "actuator",
        }
    }
}

/// Publishers are declared on the main thread, before the actix System (DESIGN §10).
/// Built once per process, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Declared {
    Sensor(sensor::SensorBus),
    Planner(planner::PlannerBus),
    Actuator(actuator::ActuatorBus),
}

pub fn run(which: Which, args: ActorArgs) -> anyhow::Result<ExitCode> {
    if let Some(pid) = args.supervisor_pid {
        exit_with_parent(pid)?;
    }
    let cfg = NodeConfig::load(args.config.as_deref())?;
    let world = cfg.world()?;
    let (instance, port, pool_mib) = match which {
        Which::Sensor => (
            &cfg.sensor.instance,
            cfg.sensor.metrics_port,
            cfg.sensor.shm_pool_mib,
        ),
        Which::Planner => (
            &cfg.planner.instance,
            cfg.planner.metrics_port,
            cfg.planner.shm_pool_mib,
        ),
        Which::Actuator => (
            &cfg.actuator.instance,
            cfg.actuator.metrics_port,
            cfg.actuator.shm_pool_mib,
        ),
    };
    let mut bc = BusConfig::new(&cfg.robot, which.name(), instance);
    bc.zenoh_config = cfg.zenoh.config.clone();
    bc.connect = std::iter::once(cfg.zenoh.hub.clone())
        .chain(cfg.zenoh.connect.iter().cloned())
        .collect();
    // An ephemeral loopback port lets peers on this host that learn of us by gossip connect
    // directly; other hosts need `zenoh.listen`.
    bc.listen = if cfg.zenoh.listen.is_empty() {
        vec!["tcp/127.0.0.1:0".into()]
    } else {
        cfg.zenoh.listen.clone()
    };
    bc.shm_pool_bytes = (pool_mib as usize) << 20;
    let metrics_addr = args
        .metrics_addr
        .unwrap_or(SocketAddr::new(cfg.metrics_bind, port));
    let bus = super::open(&bc, Some(metrics_addr), args.host_label.as_deref())?;
    let declared = match which {
        Which::Sensor => Declared::Sensor(sensor::declare(&bus, &cfg)?),
        Which::Planner => Declared::Planner(planner::declare(&bus)?),
        Which::Actuator => Declared::Actuator(actuator::declare(&bus)?),
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
    // zenoh entities are released on the plain main thread (DESIGN §10).
    drop(subs);
    bus.close();
    Ok(ExitCode::SUCCESS)
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
