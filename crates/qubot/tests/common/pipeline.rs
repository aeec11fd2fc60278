//! A `qubot up` of the reference robot, driven by the tests, on a hub and metrics ports of its
//! own.

use std::time::Duration;

use nix::sys::signal::Signal;
use qubot_ops::process;

use super::{
    counters::{counter, scrape, RECEIVED},
    Proc, RunReport, TempFile,
};

pub const WORLDS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/worlds");
/// Generous wall-clock bound for one run (the slowest world needs ~30 s on an idle machine).
pub const RUN: Duration = Duration::from_secs(150);
/// How long a dropped [`Up`] is given to stop on SIGINT before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// A pipeline's ports in one run of five free ones: the metrics ports `base..base + 4`
/// (supervisor, then the actors) and the hub endpoint at `base + 4`.
pub fn pipeline_ports() -> (String, u16) {
    let base = process::free_port_run(5).expect("five free loopback ports");
    (format!("tcp/127.0.0.1:{}", base + 4), base)
}

/// A fresh robot name, hub and metrics ports, written as a node config file (for `qubot up
/// --config` and the tools that read one, like `qubot health`).
pub fn isolated(name: &str) -> (qubot_node::NodeConfig, TempFile) {
    let (hub, base) = pipeline_ports();
    let mut cfg = qubot_node::NodeConfig {
        robot: name.into(),
        ..Default::default()
    };
    cfg.zenoh.hub = hub;
    cfg.set_metrics_ports(base);
    let file = TempFile::toml(name, &cfg.to_toml());
    (cfg, file)
}

/// A `qubot up` with its own hub and metrics ports. Stopped on drop as an operator stops it
/// (SIGINT, so that the supervisor cleans up its children's shared memory; killed if it is
/// still running after 20 s).
pub struct Up {
    pub proc: Proc,
    pub base: u16,
    /// The zenoh endpoint the supervisor listens on (for tools that join this robot's bus).
    pub hub: String,
}

impl Up {
    /// `qubot up` of `robot` in `world` (one of the shipped worlds, or "default").
    pub fn start(robot: &str, world: &str, extra: &[&str]) -> Up {
        let mut args = vec!["--world", world, "--worlds-dir", WORLDS_DIR];
        args.extend_from_slice(extra);
        Up::with_args(robot, &args)
    }

    /// `qubot up --robot ROBOT` on its own hub and ports, with `extra` as the only other
    /// arguments; returns once the supervisor serves its `/metrics`.
    ///
    /// Ports found free can be taken by another process before the supervisor binds them; it
    /// then exits at once saying "Address already in use". That start says nothing about the
    /// code under test, so fresh ports are drawn (at most three starts in all). Any other exit
    /// before the supervisor is up fails the test with what it printed.
    pub fn with_args(robot: &str, extra: &[&str]) -> Up {
        Up::on_ports(robot, extra, pipeline_ports)
    }

    /// The `/metrics` address of process `offset`: 0 the supervisor, then sensor, planner,
    /// actuator.
    pub fn metrics_of(&self, offset: u16) -> String {
        format!("127.0.0.1:{}", self.base + offset)
    }

    /// Reads supervisor events until `actor` was spawned; returns its pid.
    pub fn spawned(&self, actor: &str) -> u32 {
        self.proc.spawned(actor, Duration::from_secs(60))
    }

    /// Waits for the run report (the last stdout line) and the exit code.
    pub fn report(mut self) -> (i32, RunReport) {
        let (code, lines) = self.proc.wait_exit(RUN);
        (code, super::run_report_in(&lines, code))
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.proc.is_running() {
            let _ = self.proc.child.stop(Signal::SIGINT, STOP_GRACE);
        }
    }
}

/// `name` on the actuator's page, summed over the series that match `filter`.
pub fn actuator_metric(up: &Up, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
    counter(&up.metrics_of(3), name, filter)
}

/// Waits until the actuator has applied `n` commands: the loop is closed and the robot moving.
pub fn wait_driving(up: &Up, n: f64) {
    wait_driving_within(up, n, Duration::from_secs(60));
}

/// [`wait_driving`] with its own deadline.
pub fn wait_driving_within(up: &Up, n: f64, timeout: Duration) {
    super::wait_for("commands flowing to the actuator", timeout, || {
        let v = actuator_metric(up, RECEIVED, &[("actor", "actuator"), ("topic", "cmd")])?;
        (v >= n).then_some(())
    });
}

pub fn assert_clean_run(report: &RunReport) {
    assert!(report.goal_reached, "{report:?}");
    assert_eq!(report.collisions, 0, "{report:?}");
    let clearance = report.min_clearance_m.expect("clearance");
    let radius = report.robot_radius_m;
    // Only a moving obstacle that walked into the robot may have come closer (`struck`).
    assert!(
        clearance > radius || report.struck > 0,
        "clearance {clearance} <= radius {radius}: {report:?}"
    );
}

/// [`pipeline_ports`] for a pipeline with its recorder (`qubot up --record`), in one run of six
/// free ports: the metrics ports `base..base + 5` (supervisor, the actors, the recorder at
/// `base + 4`) and the hub endpoint at `base + 5`.
pub fn recording_ports() -> (String, u16) {
    let base = process::free_port_run(6).expect("six free loopback ports");
    (format!("tcp/127.0.0.1:{}", base + 5), base)
}

impl Up {
    /// `qubot up --robot ROBOT --world WORLD` with its recorder's metrics port free as well
    /// ([`recording_ports`]); pass `--record FILE` in `extra`. The recorder's page is
    /// `metrics_of(4)`.
    pub fn recording(robot: &str, world: &str, extra: &[&str]) -> Up {
        let mut args = vec!["--world", world, "--worlds-dir", WORLDS_DIR];
        args.extend_from_slice(extra);
        Up::on_ports(robot, &args, recording_ports)
    }

    /// [`Up::with_args`] on the hub and metrics ports `ports` draws, fresh ones for each start.
    pub fn on_ports(robot: &str, extra: &[&str], ports: fn() -> (String, u16)) -> Up {
        const STARTS: usize = 3;
        for start in 1..=STARTS {
            let (hub, base) = ports();
            let base_s = base.to_string();
            let mut args = vec![
                "up",
                "--robot",
                robot,
                "--hub",
                &hub,
                "--metrics-port-base",
                &base_s,
            ];
            args.extend_from_slice(extra);
            let (mut proc, stderr) = Proc::spawn_keeping_stderr("qubot up", &args);
            let supervisor = format!("127.0.0.1:{base}");
            let exited = super::wait_for("the supervisor's /metrics", Duration::from_secs(60), || {
                if !proc.is_running() {
                    return Some(true);
                }
                scrape(&supervisor).map(|_| false)
            });
            if !exited {
                return Up { proc, base, hub };
            }
            let err = stderr.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
            if !(err.contains("Address already in use") && start < STARTS) {
                panic!("qubot up exited before it served /metrics (start {start}): {err}");
            }
        }
        unreachable!("the last start either returns or panics")
    }
}
