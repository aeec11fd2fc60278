//! The system under test: one `qubot up` on loopback (or two, one per network namespace, for
//! the partition), with its actors' PIDs taken from the supervisor's JSON events and its
//! `/metrics` endpoints.

use std::{
    collections::HashMap,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use nix::sys::signal::Signal;
use qubot_msg::{metric_names as telemetry, DropReason};
use qubot_node::{NodeConfig, Role, SUPERVISOR};

use super::{
    netns::{in_netns, NetnsPair},
    scenario::Scenario,
};
use crate::{
    process::{self, Child},
    promtext::{self, Sample},
    run::{Event, RunReport},
};

/// A `/metrics` endpoint, possibly inside a network namespace.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: String,
    pub netns: Option<String>,
}

impl Endpoint {
    pub fn scrape(&self) -> Option<Vec<Sample>> {
        let get = || promtext::scrape(&self.addr).and_then(|t| promtext::parse(&t).ok());
        match &self.netns {
            None => get(),
            Some(ns) => in_netns(ns, get).ok().flatten(),
        }
    }
}

/// One `qubot up` child and what its stdout told so far (its stdout closing means the
/// supervisor has exited).
struct Up {
    child: Child,
    pids: Arc<Mutex<HashMap<String, u32>>>,
    lines: Arc<Mutex<Vec<String>>>,
}

/// Every process's metrics, read twice in a row: receive-side counters come from the first
/// pass and publish-side ones from the second, so a message is never counted as received
/// before it is counted as published.
pub struct Snapshot {
    pub first: HashMap<&'static str, Vec<Sample>>,
    pub second: HashMap<&'static str, Vec<Sample>>,
    pub pids: HashMap<String, u32>,
}

pub struct Pipeline {
    ups: Vec<Up>,
    /// The `qubot` binary: supervisors and fault tools are started from it.
    pub qubot: PathBuf,
    pub robot: String,
    /// Where a flood or an injector joins the bus.
    pub hub: String,
    pub tool_netns: Option<String>,
    endpoints: Vec<(&'static str, Endpoint)>,
    pub cfg: NodeConfig,
    run_dir: PathBuf,
    /// Dropped after the processes in it (`Drop` stops them first).
    pub netns: Option<Mutex<NetnsPair>>,
    pub reports: Vec<RunReport>,
}

impl Pipeline {
    /// Starts the pipeline the scenario describes. With a partition, the sensor runs in one
    /// namespace and planner + actuator in the other, each under its own supervisor.
    pub fn start(s: &Scenario, dir: &Path, run: u32, qubot: &Path) -> anyhow::Result<Pipeline> {
        let robot = format!("chaos-{}-{run}", std::process::id());
        let run_dir = std::env::temp_dir().join(format!("qubot-chaos-{}-{run}", std::process::id()));
        std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
        let mut cfg = s.node_config()?;
        cfg.robot = robot.clone();
        cfg.world = s.resolved_world(dir);
        let shipped = dir.join("../worlds");
        if shipped.is_dir() {
            cfg.worlds_dir = std::fs::canonicalize(&shipped).unwrap_or(shipped);
        }
        let mut p = Pipeline {
            ups: Vec::new(),
            qubot: qubot.to_owned(),
            robot,
            hub: String::new(),
            tool_netns: None,
            endpoints: Vec::new(),
            cfg: cfg.clone(),
            run_dir,
            netns: None,
            reports: Vec::new(),
        };
        if s.partition().is_some() {
            p.start_partitioned(cfg)?;
        } else {
            let hub = process::free_port_run(1)?;
            let base = loop {
                let b = process::free_port_run(4)?;
                if !(b..b + 4).contains(&hub) {
                    break b;
                }
            };
            cfg.zenoh.hub = format!("tcp/127.0.0.1:{hub}");
            cfg.set_metrics_ports(base);
            p.hub = cfg.zenoh.hub.clone();
            let all: Vec<&'static str> = std::iter::once(SUPERVISOR)
                .chain(Role::ALL.map(Role::name))
                .collect();
            p.add_endpoints(&cfg, &all, None);
            p.spawn_up(&cfg, "node.toml", None)?;
            p.cfg = cfg;
        }
        Ok(p)
    }

    fn start_partitioned(&mut self, cfg: NodeConfig) -> anyhow::Result<()> {
        let pair = NetnsPair::create().context("creating the network namespaces")?;
        let (a, b) = (pair.addr[0].clone(), pair.addr[1].clone());
        let (ns_a, ns_b) = (pair.ns[0].clone(), pair.ns[1].clone());
        self.netns = Some(Mutex::new(pair));
        // Each side's metrics live on its own loopback: the same ports do not collide.
        let hub_a = format!("tcp/{a}:7447");
        let mut side_a = cfg.clone();
        side_a.zenoh.hub = hub_a.clone();
        side_a.zenoh.listen = vec![format!("tcp/{a}:0")];
        side_a.planner.enabled = false;
        side_a.actuator.enabled = false;
        side_a.set_metrics_ports(9900);
        let mut side_b = cfg;
        side_b.zenoh.hub = format!("tcp/{b}:7447");
        side_b.zenoh.listen = vec![format!("tcp/{b}:0")];
        side_b.zenoh.connect = vec![hub_a.clone()];
        side_b.sensor.enabled = false;
        side_b.set_metrics_ports(9900);
        self.hub = hub_a;
        self.tool_netns = Some(ns_a.clone());
        let (sensor, planner, actuator) = (Role::Sensor.name(), Role::Planner.name(), Role::Actuator.name());
        self.add_endpoints(&side_a, &[SUPERVISOR, sensor], Some(&ns_a));
        self.add_endpoints(&side_b, &[SUPERVISOR, planner, actuator], Some(&ns_b));
        self.spawn_up(&side_a, "node-a.toml", Some(&ns_a))?;
        self.spawn_up(&side_b, "node-b.toml", Some(&ns_b))?;
        self.cfg = side_b;
        Ok(())
    }

    fn add_endpoints(&mut self, cfg: &NodeConfig, which: &[&'static str], ns: Option<&str>) {
        for &w in which {
            let port = cfg.metrics_port_of(w);
            self.endpoints.push((
                w,
                Endpoint {
                    addr: format!("{}:{port}", cfg.metrics_bind),
                    netns: ns.map(str::to_owned),
                },
            ));
        }
    }

    fn spawn_up(&mut self, cfg: &NodeConfig, file: &str, ns: Option<&str>) -> anyhow::Result<()> {
        let path = self.run_dir.join(file);
        std::fs::write(&path, cfg.to_toml()).with_context(|| format!("writing {}", path.display()))?;
        let mut cmd = match ns {
            None => Command::new(&self.qubot),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.qubot);
                c
            }
        };
        cmd.arg("up").arg("--config").arg(&path);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn,zenoh=error");
        }
        cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
        // SAFETY: the closure only calls prctl, which is async-signal-safe; the pipeline must
        // not outlive this runner.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
                Ok(())
            });
        }
        let pids = Arc::new(Mutex::new(HashMap::new()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (p, l) = (pids.clone(), lines.clone());
        let child = Child::spawn_tapped("qubot up", cmd, move |line| {
            if let Some(e) = Event::from_json_line(line) {
                if let Some(pid) = e.spawned_pid() {
                    lock(&p).insert(e.actor, pid);
                }
            }
            lock(&l).push(line.to_owned());
        })
        .context("starting qubot up")?;
        self.ups.push(Up { child, pids, lines });
        Ok(())
    }

    pub fn pids(&self) -> HashMap<String, u32> {
        let mut all = HashMap::new();
        for u in &self.ups {
            all.extend(lock(&u.pids).iter().map(|(k, v)| (k.clone(), *v)));
        }
        all
    }

    /// Processes on the pipeline's bus: supervisors and actors.
    pub fn processes(&self) -> usize {
        self.ups.len() + self.pids().len()
    }

    pub fn pid(&self, actor: &str) -> Option<u32> {
        self.pids().get(actor).copied()
    }

    pub fn endpoint(&self, actor: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|(a, _)| *a == actor).map(|(_, e)| e)
    }

    /// Fails when a supervisor has exited (it gave up, or could not start).
    pub fn check_alive(&self) -> anyhow::Result<()> {
        for u in &self.ups {
            if u.child.output_closed() {
                let tail: Vec<String> = lock(&u.lines).iter().rev().take(3).cloned().collect();
                bail!("qubot up exited early; last output: {tail:?}");
            }
        }
        Ok(())
    }

    /// Fresh commands the actuator received so far (neither stale nor invalid), with the
    /// actuator's PID (counters restart with the process). Not "applied": at the goal the
    /// actuator ignores commands, and the loop still runs.
    pub fn applied(&self) -> Option<(u32, f64)> {
        let actuator = Role::Actuator.name();
        let pid = self.pid(actuator)?;
        let m = self.endpoint(actuator)?.scrape()?;
        let cmd = [("actor", actuator), ("topic", qubot_msg::topic::CMD.name())];
        let received = promtext::sum(&m, telemetry::RECEIVED, &cmd);
        let rejected: f64 = [DropReason::Stale, DropReason::Invalid]
            .iter()
            .map(|r| promtext::sum(&m, telemetry::DROPPED, &[cmd[0], cmd[1], ("reason", r.label())]))
            .sum();
        Some((pid, received - rejected))
    }

    /// Waits until `n` more commands were applied than at `since` (or `n` by a new actuator
    /// process); returns when that was first seen.
    pub fn wait_applied(
        &self,
        since: Option<(u32, f64)>,
        n: f64,
        timeout: Duration,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((pid, count)) = self.applied() {
                let base = match since {
                    Some((p, c)) if p == pid => c,
                    _ => 0.0,
                };
                if count >= base + n {
                    return Ok(Instant::now());
                }
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                bail!("commands did not flow to the actuator within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the supervisor spawned `actor` again (a PID other than `old`).
    pub fn wait_respawn(&self, actor: &str, old: u32, timeout: Duration) -> anyhow::Result<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.pid(actor) {
                Some(p) if p != old => return Ok(p),
                _ => {}
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                bail!("{actor} was not restarted within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let pass = || {
            self.endpoints
                .iter()
                .fold(HashMap::<&'static str, Vec<Sample>>::new(), |mut m, (a, e)| {
                    m.entry(a).or_default().extend(e.scrape().unwrap_or_default());
                    m
                })
        };
        let first = pass();
        let second = pass();
        Snapshot {
            first,
            second,
            pids: self.pids(),
        }
    }

    /// SIGINT to every supervisor, then their run reports (last stdout line).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        for u in &self.ups {
            u.child.signal(Signal::SIGINT);
        }
        for u in &mut self.ups {
            if u.child.wait_within(Duration::from_secs(30))?.is_none() {
                u.child.kill();
                bail!("qubot up did not stop within 30 s of SIGINT");
            }
            u.child.join_output();
            let last = lock(&u.lines).last().cloned().unwrap_or_default();
            let report =
                RunReport::from_json_line(&last).with_context(|| format!("qubot up report: {last:?}"))?;
            self.reports.push(report);
        }
        Ok(())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // The supervisors first (each `Child` kills its process on drop), then their files.
        self.ups.clear();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
