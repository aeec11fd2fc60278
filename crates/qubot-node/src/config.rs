//! The node config: one TOML file per host. Defaults are built in, so no file at all runs the
//! whole pipeline on one host; every key is documented in `deploy/node.example.toml`.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

use qubot_robot::{World, WorldError};

use crate::Role;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading node config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("node config {path}")]
    Parse {
        path: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("node config: {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("node config: world {world:?}")]
    World {
        world: String,
        #[source]
        source: WorldError,
    },
}

fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Robot name: second segment of every key expression.
    pub robot: String,
    /// World the sensor simulates: "default", a name under `worlds_dir`, or a file path.
    pub world: String,
    pub worlds_dir: PathBuf,
    /// Wall-clock instant (ns since the Unix epoch) at which the world's clock reads 0: moving
    /// obstacles follow their timelines from here, so the sensor that ray-casts them and the
    /// referee that judges against them agree. 0 means "when this run starts": `qubot up`
    /// fills in its own start for its children; a process started alone uses its own start.
    pub world_epoch_ns: u64,
    /// Address the metrics endpoints bind to.
    pub metrics_bind: IpAddr,
    /// The clock skew between hosts that the freshness budgets assume (every stamp is wall
    /// clock); `qubot health` measures each process's clock and fails above this.
    pub max_clock_skew_ms: f64,
    pub zenoh: ZenohSection,
    pub supervisor: SupervisorSection,
    pub sensor: SensorSection,
    pub planner: PlannerSection,
    pub actuator: ActuatorSection,
    pub realtime: RealtimeSection,
}

/// The realtime profile, off by default: SCHED_FIFO, CPU affinity and locked memory for the
/// timing-critical threads (each timer's thread and the actor's own) of the actors it names.
/// Where the system refuses, an actor says so once, counts it, and runs with normal scheduling,
/// unless `required`, in which case nothing starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeSection {
    pub enabled: bool,
    /// Refused by the system is an error (exit 2, naming the key) instead of a warning.
    pub required: bool,
    /// The actors it applies to (the planner's search is CPU-bound work, not timing).
    pub actors: Vec<String>,
    /// SCHED_FIFO priority, 1–99.
    pub priority: u8,
    /// CPUs the timing threads may run on (empty: any).
    pub cpus: Vec<usize>,
    /// `mlockall`: the loop never waits on a page fault.
    pub lock_memory: bool,
}

impl Default for RealtimeSection {
    fn default() -> Self {
        RealtimeSection {
            enabled: false,
            required: false,
            actors: vec![Role::Sensor.name().into(), Role::Actuator.name().into()],
            priority: 80,
            cpus: Vec::new(),
            lock_memory: true,
        }
    }
}

impl RealtimeSection {
    /// Whether the profile is on for `role`.
    pub fn applies_to(&self, role: Role) -> bool {
        self.enabled && self.actors.iter().any(|a| a == role.name())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=99).contains(&self.priority) {
            return Err(invalid(
                "realtime.priority",
                format!("{} is outside SCHED_FIFO's 1–99", self.priority),
            ));
        }
        let present = cpus_present();
        if let Some(c) = self.cpus.iter().find(|&&c| c >= present) {
            return Err(invalid(
                "realtime.cpus",
                format!("CPU {c} does not exist (this machine has CPUs 0–{})", present - 1),
            ));
        }
        if let Some(a) = self.actors.iter().find(|a| Role::from_name(a).is_none()) {
            return Err(invalid(
                "realtime.actors",
                format!("unknown actor {a:?} (known: {})", Role::names()),
            ));
        }
        Ok(())
    }
}

/// The CPUs this machine has, online or not: what `realtime.cpus` may name.
pub fn cpus_present() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    n.max(1) as usize
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZenohSection {
    /// Endpoint the supervisor listens on and every actor connects to; peers then find each
    /// other through gossip and talk directly (SHM on one host).
    pub hub: String,
    /// Extra endpoints every actor listens on / connects to (other hosts).
    pub listen: Vec<String>,
    pub connect: Vec<String>,
    /// Where each of the robot's actors listens (role name -> endpoint), when the robot spans
    /// several hosts (the inventory writes it). An actor listens on its own entry and dials
    /// the actors it consumes from as configured endpoints, which zenoh redials whenever the
    /// link drops; a link found only by gossip is never redialled, so a partition that healed
    /// as the zenoh lease ran out left the loop open for good (docs/ARCHITECTURE.md, "Links
    /// between hosts"). Empty: actors listen on an ephemeral port and find each other by gossip.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub actors: BTreeMap<String, String>,
    /// A zenoh json5 file passed through untouched (TLS, ACL...).
    pub config: Option<PathBuf>,
    /// `default` (zenoh's own settings) or `latency` (every message sent at once, no
    /// batching under back-pressure: lower one-hop latency, more packets). BENCHMARKS.md
    /// measures both.
    pub profile: LinkProfile,
}

/// How the node's zenoh links trade latency against throughput.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkProfile {
    #[default]
    Default,
    Latency,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorSection {
    pub metrics_port: u16,
    /// Erlang-style intensity: more than `max_restarts` restarts of one actor within
    /// `restart_window_s` and the supervisor gives up.
    pub max_restarts: u32,
    pub restart_window_s: f64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Grace period between SIGTERM and SIGKILL when stopping an actor.
    pub stop_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorSection {
    pub enabled: bool,
    pub instance: String,
    pub metrics_port: u16,
    pub beams: u32,
    pub rate_hz: f64,
    pub range_max_m: f64,
    /// Optional camera frames (width x height x 3 bytes) to exercise zero copy; 0 = off.
    pub frame_width: u32,
    pub frame_height: u32,
    pub frame_hz: f64,
    pub shm_pool_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlannerSection {
    pub enabled: bool,
    pub instance: String,
    pub metrics_port: u16,
    /// The pipeline budget: a command is valid until the capture time of the scan it was
    /// planned on plus this; the actuator rejects it (or stops applying it) afterwards, and the
    /// planner does not plan on a scan already older than this.
    pub cmd_deadline_ms: u64,
    /// Scans with more beams are refused before the inbox (`oversize`); per-beam caches never
    /// grow past this.
    pub max_beams: u32,
    /// A scan whose stamped pose is farther than this (m) from the odometry pose at its capture
    /// time is dropped as `implausible`.
    pub pose_tolerance_m: f64,
    pub safety_margin_m: f64,
    pub v_max: f64,
    pub w_max: f64,
    pub shm_pool_mib: u64,
    /// How often the planner publishes its memory (the obstacle grid) on `memory`, Hz; 0
    /// disables it (docs/ARCHITECTURE.md §11).
    pub memory_hz: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActuatorSection {
    pub enabled: bool,
    pub instance: String,
    pub metrics_port: u16,
    /// Drive integration and state publication rate.
    pub tick_hz: f64,
    /// Watchdog: no fresh command for this long means safe stop.
    pub cmd_timeout_ms: u64,
    pub v_max: f64,
    pub w_max: f64,
    pub a_max: f64,
    pub alpha_max: f64,
    pub shm_pool_mib: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            robot: "qubot-one".into(),
            world: "default".into(),
            worlds_dir: "deploy/worlds".into(),
            world_epoch_ns: 0,
            metrics_bind: IpAddr::from([127, 0, 0, 1]),
            max_clock_skew_ms: 10.0,
            zenoh: ZenohSection::default(),
            supervisor: SupervisorSection::default(),
            sensor: SensorSection::default(),
            planner: PlannerSection::default(),
            actuator: ActuatorSection::default(),
            realtime: RealtimeSection::default(),
        }
    }
}

impl Default for ZenohSection {
    fn default() -> Self {
        ZenohSection {
            hub: "tcp/127.0.0.1:7447".into(),
            listen: vec![],
            connect: vec![],
            actors: BTreeMap::new(),
            config: None,
            profile: LinkProfile::Default,
        }
    }
}

impl Default for SupervisorSection {
    fn default() -> Self {
        SupervisorSection {
            metrics_port: METRICS_PORT_BASE,
            max_restarts: 5,
            restart_window_s: 30.0,
            backoff_initial_ms: 100,
            backoff_max_ms: 5000,
            stop_timeout_ms: 3000,
        }
    }
}

impl Default for SensorSection {
    fn default() -> Self {
        SensorSection {
            enabled: true,
            instance: Role::Sensor.default_instance().into(),
            metrics_port: METRICS_PORT_BASE + Role::Sensor.metrics_port_offset(),
            beams: 720,
            rate_hz: 20.0,
            range_max_m: 8.0,
            frame_width: 0,
            frame_height: 0,
            frame_hz: 0.0,
            shm_pool_mib: 4,
        }
    }
}

impl Default for PlannerSection {
    fn default() -> Self {
        PlannerSection {
            enabled: true,
            instance: Role::Planner.default_instance().into(),
            metrics_port: METRICS_PORT_BASE + Role::Planner.metrics_port_offset(),
            cmd_deadline_ms: 300,
            max_beams: 4096,
            pose_tolerance_m: 0.3,
            safety_margin_m: 0.15,
            v_max: 0.8,
            w_max: 2.0,
            shm_pool_mib: 1,
            memory_hz: 1.0,
        }
    }
}

impl Default for ActuatorSection {
    fn default() -> Self {
        ActuatorSection {
            enabled: true,
            instance: Role::Actuator.default_instance().into(),
            metrics_port: METRICS_PORT_BASE + Role::Actuator.metrics_port_offset(),
            tick_hz: 50.0,
            cmd_timeout_ms: 250,
            v_max: 0.8,
            w_max: 2.0,
            a_max: 1.0,
            alpha_max: 4.0,
            shm_pool_mib: 1,
        }
    }
}

/// The supervisor's default metrics port; each role's is this plus its offset.
pub const METRICS_PORT_BASE: u16 = 9900;

/// What every role's section has, whatever the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleSection<'a> {
    pub enabled: bool,
    pub instance: &'a str,
    pub metrics_port: u16,
    pub shm_pool_mib: u64,
}

impl NodeConfig {
    /// The section of `role`, as the fields all roles share.
    pub fn role(&self, role: Role) -> RoleSection<'_> {
        let (enabled, instance, metrics_port, shm_pool_mib) = match role {
            Role::Sensor => {
                let s = &self.sensor;
                (s.enabled, &s.instance, s.metrics_port, s.shm_pool_mib)
            }
            Role::Planner => {
                let s = &self.planner;
                (s.enabled, &s.instance, s.metrics_port, s.shm_pool_mib)
            }
            Role::Actuator => {
                let s = &self.actuator;
                (s.enabled, &s.instance, s.metrics_port, s.shm_pool_mib)
            }
        };
        RoleSection {
            enabled,
            instance,
            metrics_port,
            shm_pool_mib,
        }
    }

    /// Metrics ports from `base`: the supervisor's, then each role's at its offset.
    pub fn set_metrics_ports(&mut self, base: u16) {
        self.supervisor.metrics_port = base;
        self.sensor.metrics_port = base + Role::Sensor.metrics_port_offset();
        self.planner.metrics_port = base + Role::Planner.metrics_port_offset();
        self.actuator.metrics_port = base + Role::Actuator.metrics_port_offset();
    }

    /// The metrics port of a process: the supervisor or a role, by name.
    pub fn metrics_port_of(&self, process: &str) -> u16 {
        Role::from_name(process).map_or(self.supervisor.metrics_port, |r| self.role(r).metrics_port)
    }

    /// Reads and validates a file; `None` gives the built-in defaults (validated too).
    pub fn load(path: Option<&Path>) -> Result<NodeConfig, ConfigError> {
        let cfg = Self::read(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses a file without validating it (for callers that change it first and
    /// validate the result); `None` gives the built-in defaults.
    pub fn read(path: Option<&Path>) -> Result<NodeConfig, ConfigError> {
        match path {
            None => Ok(NodeConfig::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                Self::from_toml(&text, &p.display().to_string())
            }
        }
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<NodeConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.into(),
            source: Box::new(e),
        })
    }

    pub fn to_toml(&self) -> String {
        // Serializing plain structs of numbers, strings and lists cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// Fixes the world clock's zero at this instant unless the config already names one
    /// (`world_epoch_ns`). `qubot up` calls it before writing its children's config, so they
    /// all share its zero; an actor started alone calls it too and keeps its own.
    pub fn start_world_clock(&mut self) {
        if self.world_epoch_ns == 0 {
            self.world_epoch_ns = qubot_msg::now_ns();
        }
    }

    /// Resolves the world (names, files, built-in).
    pub fn world(&self) -> Result<World, ConfigError> {
        World::resolve(&self.world, &self.worlds_dir).map_err(|source| ConfigError::World {
            world: self.world.clone(),
            source,
        })
    }

    /// Every check that must pass before anything starts; errors name the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        segment("robot", &self.robot)?;
        self.realtime.validate()?;
        segment("sensor.instance", &self.sensor.instance)?;
        segment("planner.instance", &self.planner.instance)?;
        segment("actuator.instance", &self.actuator.instance)?;
        if self.zenoh.hub.trim().is_empty() {
            return Err(invalid(
                "zenoh.hub",
                "must be a zenoh endpoint such as tcp/127.0.0.1:7447",
            ));
        }
        for (role, endpoint) in &self.zenoh.actors {
            if Role::from_name(role).is_none() {
                return Err(invalid(
                    &format!("zenoh.actors.{role}"),
                    format!("unknown actor (known: {})", Role::names()),
                ));
            }
            if endpoint.trim().is_empty() {
                return Err(invalid(
                    &format!("zenoh.actors.{role}"),
                    "must be a zenoh endpoint",
                ));
            }
        }
        let ports = [
            ("supervisor.metrics_port", self.supervisor.metrics_port),
            ("sensor.metrics_port", self.sensor.metrics_port),
            ("planner.metrics_port", self.planner.metrics_port),
            ("actuator.metrics_port", self.actuator.metrics_port),
        ];
        for (i, (field, port)) in ports.iter().enumerate() {
            if *port == 0 {
                return Err(invalid(
                    field,
                    "must be a fixed port (Prometheus needs to find it), not 0",
                ));
            }
            if let Some((other, _)) = ports[..i].iter().find(|(_, p)| p == port) {
                return Err(invalid(field, format!("port {port} is already used by {other}")));
            }
        }
        range("max_clock_skew_ms", self.max_clock_skew_ms, 0.1, 1000.0)?;
        let s = &self.supervisor;
        range("supervisor.restart_window_s", s.restart_window_s, 0.1, 86_400.0)?;
        int_range("supervisor.max_restarts", s.max_restarts.into(), 0, 1000)?;
        int_range("supervisor.backoff_max_ms", s.backoff_max_ms, 1, 600_000)?;
        // The supervisor's own stop is bounded by this + 1 s (SIGTERM, then SIGKILL).
        int_range("supervisor.stop_timeout_ms", s.stop_timeout_ms, 100, 60_000)?;
        if s.backoff_initial_ms == 0 || s.backoff_initial_ms > s.backoff_max_ms {
            return Err(invalid(
                "supervisor.backoff_initial_ms",
                "must be > 0 and <= backoff_max_ms",
            ));
        }
        let se = &self.sensor;
        if !(360..=4096).contains(&se.beams) {
            return Err(invalid(
                "sensor.beams",
                format!("{} is outside 360..=4096", se.beams),
            ));
        }
        range("sensor.rate_hz", se.rate_hz, 1.0, 100.0)?;
        range("sensor.range_max_m", se.range_max_m, 0.5, 100.0)?;
        // Pools are mapped by every receiver for its lifetime (docs/ARCHITECTURE.md §10): keep them modest.
        int_range("sensor.shm_pool_mib", se.shm_pool_mib, 1, MAX_POOL_MIB)?;
        int_range("sensor.frame_width", se.frame_width.into(), 0, 8192)?;
        int_range("sensor.frame_height", se.frame_height.into(), 0, 8192)?;
        let frame = se.frame_width as u64 * se.frame_height as u64 * 3;
        if frame > 0 {
            range("sensor.frame_hz", se.frame_hz, 0.1, 100.0)?;
            if frame + (1 << 20) > se.shm_pool_mib << 20 {
                return Err(invalid(
                    "sensor.shm_pool_mib",
                    format!(
                        "{frame}-byte frames need a larger pool than {} MiB",
                        se.shm_pool_mib
                    ),
                ));
            }
        }
        let p = &self.planner;
        if !(10..=10_000).contains(&p.cmd_deadline_ms) {
            return Err(invalid("planner.cmd_deadline_ms", "must be within 10..=10000"));
        }
        range("planner.safety_margin_m", p.safety_margin_m, 0.0, 2.0)?;
        int_range("planner.max_beams", p.max_beams.into(), 1, 1 << 16)?;
        range("planner.pose_tolerance_m", p.pose_tolerance_m, 0.01, 10.0)?;
        if self.sensor.enabled && self.sensor.beams > p.max_beams {
            return Err(invalid(
                "planner.max_beams",
                format!("{} is below sensor.beams ({})", p.max_beams, self.sensor.beams),
            ));
        }
        range("planner.v_max", p.v_max, 0.01, 10.0)?;
        range("planner.w_max", p.w_max, 0.01, 20.0)?;
        int_range("planner.shm_pool_mib", p.shm_pool_mib, 1, MAX_POOL_MIB)?;
        if p.memory_hz != 0.0 {
            range("planner.memory_hz", p.memory_hz, 0.1, 10.0)?;
        }
        let a = &self.actuator;
        range("actuator.tick_hz", a.tick_hz, 5.0, 1000.0)?;
        if !(20..=10_000).contains(&a.cmd_timeout_ms) {
            return Err(invalid("actuator.cmd_timeout_ms", "must be within 20..=10000"));
        }
        range("actuator.v_max", a.v_max, 0.01, 10.0)?;
        range("actuator.w_max", a.w_max, 0.01, 20.0)?;
        range("actuator.a_max", a.a_max, 0.01, 100.0)?;
        range("actuator.alpha_max", a.alpha_max, 0.01, 200.0)?;
        int_range("actuator.shm_pool_mib", a.shm_pool_mib, 1, MAX_POOL_MIB)?;
        self.world()?;
        Ok(())
    }
}

fn segment(field: &str, v: &str) -> Result<(), ConfigError> {
    qubot_msg::keys::check_segment(v).map_err(|reason| invalid(field, reason))
}

/// The largest shared-memory pool a process may ask for (MiB).
pub const MAX_POOL_MIB: u64 = 4096;

fn int_range(field: &str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(invalid(field, format!("{v} is outside {lo}..={hi}")))
    }
}

fn range(field: &str, v: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(invalid(field, format!("{v} is outside {lo}..={hi}")))
    }
}

/// Seconds on the world clock whose zero is `epoch_ns` at the wall-clock stamp `stamp_ns`
/// (0 before the zero): where moving obstacles stand is a function of this.
pub fn world_time_s(epoch_ns: u64, stamp_ns: u64) -> f64 {
    stamp_ns.saturating_sub(epoch_ns) as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_defaults_agree_with_the_node_config() {
        let cfg = NodeConfig::default();
        for r in Role::ALL {
            let s = cfg.role(r);
            assert_eq!(s.instance, r.default_instance(), "{r}");
            assert_eq!(
                s.metrics_port,
                cfg.supervisor.metrics_port + r.metrics_port_offset(),
                "{r}"
            );
        }
    }

    fn err(toml: &str) -> String {
        match NodeConfig::from_toml(toml, "test").and_then(|c| c.validate().map(|_| c)) {
            Ok(_) => panic!("{toml} must be rejected"),
            Err(e) => {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(c) = src {
                    s.push_str(&format!(": {c}"));
                    src = c.source();
                }
                s
            }
        }
    }

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = NodeConfig::load(None).expect("defaults");
        assert_eq!(NodeConfig::from_toml(&c.to_toml(), "x").expect("reparse"), c);
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err("[sensor]\nbeams = 10").contains("sensor.beams"));
        // Every numeric field has a range, including the ones a shift or a sum would overflow.
        for (section, key, bad) in [
            ("planner", "shm_pool_mib", "18446744073709551615"),
            ("actuator", "shm_pool_mib", "0"),
            ("sensor", "shm_pool_mib", "1099511627776"),
            ("sensor", "frame_width", "100000"),
            ("supervisor", "max_restarts", "4000000000"),
            ("supervisor", "stop_timeout_ms", "0"),
            ("supervisor", "backoff_max_ms", "18446744073709551615"),
        ] {
            let e = err(&format!("[{section}]\n{key} = {bad}"));
            assert!(
                e.contains(&format!("{section}.{key}")),
                "{section}.{key} = {bad}: {e}"
            );
        }
        assert!(err("[sensor]\nbeems = 720").contains("beems"));
        assert!(err("[planner]\nmetrics_port = 9901").contains("planner.metrics_port"));
        assert!(err("[actuator]\ncmd_timeout_ms = 0").contains("actuator.cmd_timeout_ms"));
        assert!(err("robot = \"a/b\"").contains("robot"));
        assert!(err("world = \"atlantis\"").contains("atlantis"));
        assert!(err("[sensor]\nrate_hz = nan").contains("sensor.rate_hz"));
        assert!(err("max_clock_skew_ms = -1").contains("max_clock_skew_ms"));
        assert!(err("[zenoh]\nprofile = \"fastest\"").contains("fastest"));
        assert!(err("[zenoh.actors]\nlidar = \"tcp/10.0.0.1:7448\"").contains("zenoh.actors.lidar"));
        assert!(err("[realtime]\npriority = 0").contains("realtime.priority"));
        assert!(err("[realtime]\npriority = 100").contains("realtime.priority"));
        assert!(err("[realtime]\ncpus = [4096]").contains("realtime.cpus"));
        assert!(err("[realtime]\nactors = [\"lidar\"]").contains("realtime.actors"));
        assert!(
            err("[sensor]\nframe_width = 4000\nframe_height = 4000\nframe_hz = 1").contains("shm_pool_mib")
        );
    }

    #[test]
    fn link_profile_is_default_unless_chosen() {
        assert_eq!(NodeConfig::default().zenoh.profile, LinkProfile::Default);
        let c = NodeConfig::from_toml("[zenoh]\nprofile = \"latency\"", "t").expect("parse");
        assert_eq!(c.zenoh.profile, LinkProfile::Latency);
    }

    #[test]
    fn example_file_parses_and_validates() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
        let text = std::fs::read_to_string(format!("{dir}/node.example.toml")).expect("example file");
        let mut c = NodeConfig::from_toml(&text, "node.example.toml").expect("parse");
        c.worlds_dir = format!("{dir}/worlds").into();
        c.validate().expect("valid");
    }
}
