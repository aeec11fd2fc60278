//! Scenario files (TOML, `deploy/chaos/*.toml`): what to break, when, and the SLOs that judge
//! the run. Parsing is strict: unknown keys and nonsense values are errors naming the field.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use qubot_msg::topic;
use qubot_node::{NodeConfig, Role};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Defaults to the file name without `.toml`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// World for `qubot up`: a shipped name or a file (relative to the scenario file).
    #[serde(default = "default_world")]
    pub world: String,
    /// Time between the loop closing and the idle baseline's start (s, scaled; default 0):
    /// lets the robot reach the part of its route the fault phase drives through, so that
    /// the baseline's planning cost is the fault phase's (patrol's first seconds plan in a
    /// world with no walls seen yet, and plan several times cheaper than once it circles).
    #[serde(default)]
    pub settle_s: f64,
    /// Idle baseline after the loop closed (and settled), before the first fault (s, scaled).
    #[serde(default = "default_idle")]
    pub idle_s: f64,
    /// Length of the fault phase (s, scaled).
    pub duration_s: f64,
    /// Longest wait for the loop to recover after a fault (s, never scaled).
    #[serde(default = "default_recover")]
    pub recover_timeout_s: f64,
    /// Time into the fault phase after which memory must stay flat (s, scaled; default a
    /// quarter of the phase).
    pub warmup_s: Option<f64>,
    /// Messages per topic the accounting may be off by: published-but-not-yet-received at
    /// the two instants it is read.
    #[serde(default = "default_tolerance")]
    pub accounting_tolerance: f64,
    /// Node-config keys for this run (same keys as deploy/node.example.toml).
    #[serde(default)]
    pub node: toml::Table,
    #[serde(default)]
    pub faults: Vec<Fault>,
    pub slos: Vec<Slo>,
}

fn default_world() -> String {
    "default".into()
}
fn default_idle() -> f64 {
    5.0
}
fn default_recover() -> f64 {
    20.0
}
fn default_tolerance() -> f64 {
    3.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// `qubot flood` on the real sensor's key, against the pipeline's hub.
    Flood(Flood),
    /// `kill -9` of actor processes, one after the other, waiting for recovery in between.
    Kill(Kill),
    /// `SIGSTOP` of one actor for a while, then `SIGCONT`.
    Stop(Stop),
    /// `qubot inject` of every kind of damaged message on every subscribed key.
    Malformed(Malformed),
    /// Sensor and planner+actuator in two network namespaces; the link between them drops
    /// every packet for a while (root only).
    Partition(Partition),
    /// `qubot replay` of a recording's scans onto the robot's keys as a foreign source: a
    /// flood of real scans instead of synthetic ones.
    Replay(Replay),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flood {
    #[serde(default)]
    pub at_s: f64,
    /// Defaults to the rest of the fault phase.
    pub for_s: Option<f64>,
    /// Messages per second per publisher.
    pub rate: f64,
    /// Payload bytes (2880 = the default sensor's 720 beams).
    #[serde(default = "default_size")]
    pub size: u64,
    #[serde(default = "one")]
    pub burst: u64,
    #[serde(default = "one")]
    pub publishers: u64,
    /// `scan` or `frame`.
    #[serde(default = "default_topic")]
    pub topic: String,
}

fn default_size() -> u64 {
    2880
}
fn one() -> u64 {
    1
}
fn default_topic() -> String {
    topic::SCAN.name().into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kill {
    #[serde(default)]
    pub at_s: f64,
    #[serde(default = "all_actors")]
    pub actors: Vec<Role>,
    /// How many times each actor is killed.
    #[serde(default = "one_u32")]
    pub rounds: u32,
    /// Pause after each recovery before the next kill (s, scaled).
    #[serde(default = "default_gap")]
    pub gap_s: f64,
}

fn all_actors() -> Vec<Role> {
    Role::ALL.to_vec()
}
fn one_u32() -> u32 {
    1
}
fn default_gap() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    #[serde(default)]
    pub at_s: f64,
    pub actor: Role,
    pub for_s: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Malformed {
    #[serde(default)]
    pub at_s: f64,
    /// Messages of each kind of damage, per key.
    #[serde(default = "default_malformed")]
    pub count: u64,
    /// Storms, spread over the rest of the fault phase.
    #[serde(default = "one_u32")]
    pub rounds: u32,
}

fn default_malformed() -> u64 {
    20
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    #[serde(default)]
    pub at_s: f64,
    pub for_s: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    #[serde(default)]
    pub at_s: f64,
    /// Defaults to the rest of the fault phase.
    pub for_s: Option<f64>,
    /// The recording (`qubot record`), relative to the scenario's file.
    pub file: PathBuf,
    /// Playing speed: 10 plays ten times the recorded scan rate (looping as needed).
    #[serde(default = "default_speed")]
    pub speed: f64,
}

fn default_speed() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub name: String,
    pub measure: Measure,
    pub max: Option<f64>,
    pub min: Option<f64>,
}

/// What the judge can measure, each from the processes' own `/metrics` (or the run report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Sensor capture → command applied, p99 in the fault phase ÷ p99 in the idle phase.
    PipelineP99Ratio,
    /// Command publish → receive at the actuator, p99 fault phase ÷ idle phase.
    CmdAgeP99Ratio,
    /// Sensor capture → command applied, p99 in the fault phase (ms).
    PipelineP99Ms,
    /// Watchdog safe stops from the start of the fault phase to the end.
    SafeStops,
    /// How late the last safe stop came after the command timeout, in actuator ticks.
    SafeStopLateTicks,
    /// Longest time from a fault's end (kill, SIGCONT, heal) to commands applied again (s).
    RecoveryS,
    /// Actor restarts counted by the supervisor(s) from the fault phase to the end.
    Restarts,
    /// Malformed messages injected minus those counted as dropped by a decode reason.
    MalformedUncounted,
    /// Largest RSS growth of an actor process after warm-up (MiB).
    RssGrowthMib,
    /// Achieved ÷ requested rate, worst flood.
    FloodRateRatio,
    /// Collisions seen by the supervisor's referee.
    Collisions,
    /// Path length the robot drove over the whole run (m), from the referee: the loop kept
    /// making progress rather than standing safe.
    DistanceM,
}

impl Scenario {
    /// Reads and validates a scenario; every error names the file and the field.
    pub fn load(path: &Path) -> anyhow::Result<(Scenario, PathBuf)> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading scenario {}", path.display()))?;
        let mut s: Scenario =
            toml::from_str(&text).with_context(|| format!("scenario {}", path.display()))?;
        if s.name.is_empty() {
            s.name = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into());
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for f in &mut s.faults {
            if let Fault::Replay(r) = f {
                r.file = dir.join(&r.file);
            }
        }
        s.validate()
            .with_context(|| format!("scenario {}", path.display()))?;
        let shipped = dir.join("../worlds");
        let worlds_dir = if shipped.is_dir() {
            shipped
        } else {
            s.node_config()?.worlds_dir
        };
        qubot_robot::World::resolve(&s.resolved_world(&dir), &worlds_dir)
            .with_context(|| format!("scenario {}: world {:?}", path.display(), s.world))?;
        Ok((s, dir))
    }

    fn validate(&self) -> anyhow::Result<()> {
        positive("duration_s", self.duration_s)?;
        non_negative("settle_s", self.settle_s)?;
        non_negative("idle_s", self.idle_s)?;
        positive("recover_timeout_s", self.recover_timeout_s)?;
        non_negative("accounting_tolerance", self.accounting_tolerance)?;
        if let Some(w) = self.warmup_s {
            non_negative("warmup_s", w)?;
        }
        self.node_config()?;
        if self.slos.is_empty() {
            bail!("slos: a scenario needs at least one SLO ([[slos]])");
        }
        for (i, f) in self.faults.iter().enumerate() {
            let at = |field: &str| format!("faults[{i}].{field}");
            let at_s = f.at_s();
            non_negative(&at("at_s"), at_s)?;
            if at_s >= self.duration_s {
                bail!(
                    "{}: {at_s} is not inside the fault phase (duration_s = {})",
                    at("at_s"),
                    self.duration_s
                );
            }
            match f {
                Fault::Flood(fl) => {
                    positive(&at("rate"), fl.rate)?;
                    if let Some(d) = fl.for_s {
                        positive(&at("for_s"), d)?;
                    }
                    if !(4..=64 << 20).contains(&fl.size) {
                        bail!("{}: {} is not within 4..=67108864 bytes", at("size"), fl.size);
                    }
                    if !(1..=64).contains(&fl.publishers) {
                        bail!("{}: {} is not within 1..=64", at("publishers"), fl.publishers);
                    }
                    if fl.burst == 0 {
                        bail!("{}: must be at least 1", at("burst"));
                    }
                    if fl.topic != topic::SCAN.name() && fl.topic != topic::FRAME.name() {
                        bail!(
                            "{}: {:?} is neither \"scan\" nor \"frame\"",
                            at("topic"),
                            fl.topic
                        );
                    }
                }
                Fault::Kill(k) => {
                    if k.actors.is_empty() {
                        bail!("{}: name at least one actor", at("actors"));
                    }
                    if k.rounds == 0 {
                        bail!("{}: must be at least 1", at("rounds"));
                    }
                    non_negative(&at("gap_s"), k.gap_s)?;
                }
                Fault::Stop(st) => positive(&at("for_s"), st.for_s)?,
                Fault::Malformed(m) => {
                    if m.count == 0 || m.rounds == 0 {
                        bail!("{}: count and rounds must be at least 1", at("count"));
                    }
                }
                Fault::Partition(p) => positive(&at("for_s"), p.for_s)?,
                Fault::Replay(r) => {
                    positive(&at("speed"), r.speed)?;
                    if let Some(d) = r.for_s {
                        positive(&at("for_s"), d)?;
                    }
                    if !r.file.is_file() {
                        bail!("{}: no recording at {}", at("file"), r.file.display());
                    }
                }
            }
        }
        if self
            .faults
            .iter()
            .filter(|f| matches!(f, Fault::Partition(_)))
            .count()
            > 1
        {
            bail!("faults: at most one partition per scenario");
        }
        for (i, slo) in self.slos.iter().enumerate() {
            if slo.name.trim().is_empty() {
                bail!("slos[{i}].name: must not be empty");
            }
            if slo.max.is_none() && slo.min.is_none() {
                bail!("slos[{i}] ({:?}): give a target, `max` or `min`", slo.name);
            }
            for (field, v) in [("max", slo.max), ("min", slo.min)] {
                if v.is_some_and(|v| !v.is_finite()) {
                    bail!("slos[{i}].{field}: must be a finite number");
                }
            }
        }
        Ok(())
    }

    /// The node config this scenario runs with (defaults + its `[node]` table), validated.
    pub fn node_config(&self) -> anyhow::Result<NodeConfig> {
        let text = toml::to_string(&self.node).context("node: not representable as TOML")?;
        let cfg = NodeConfig::from_toml(&text, "the scenario's [node] table")?;
        cfg.validate().context("node")?;
        Ok(cfg)
    }

    /// Multiplies every phase length and fault time by `k` (short versions for tests).
    pub fn scaled(mut self, k: f64) -> Scenario {
        self.settle_s *= k;
        self.idle_s *= k;
        self.duration_s *= k;
        self.warmup_s = self.warmup_s.map(|w| w * k);
        for f in &mut self.faults {
            match f {
                Fault::Flood(x) => {
                    x.at_s *= k;
                    x.for_s = x.for_s.map(|d| d * k);
                }
                Fault::Kill(x) => {
                    x.at_s *= k;
                    x.gap_s *= k;
                }
                Fault::Stop(x) => {
                    x.at_s *= k;
                    x.for_s *= k;
                }
                Fault::Malformed(x) => x.at_s *= k,
                Fault::Partition(x) => {
                    x.at_s *= k;
                    x.for_s *= k;
                }
                Fault::Replay(x) => {
                    x.at_s *= k;
                    x.for_s = x.for_s.map(|d| d * k);
                }
            }
        }
        self
    }

    /// A shipped world name stays a name; a path is taken relative to the scenario file.
    pub fn resolved_world(&self, dir: &Path) -> String {
        if self.world.ends_with(".toml") || self.world.contains('/') {
            let p = dir.join(&self.world);
            std::fs::canonicalize(&p)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        } else {
            self.world.clone()
        }
    }

    pub fn partition(&self) -> Option<&Partition> {
        self.faults.iter().find_map(|f| match f {
            Fault::Partition(p) => Some(p),
            _ => None,
        })
    }
}

impl Fault {
    pub fn at_s(&self) -> f64 {
        match self {
            Fault::Flood(x) => x.at_s,
            Fault::Kill(x) => x.at_s,
            Fault::Stop(x) => x.at_s,
            Fault::Malformed(x) => x.at_s,
            Fault::Partition(x) => x.at_s,
            Fault::Replay(x) => x.at_s,
        }
    }
}

fn positive(field: &str, v: f64) -> anyhow::Result<()> {
    if !(v.is_finite() && v > 0.0) {
        bail!("{field}: must be a positive number, got {v}");
    }
    Ok(())
}

fn non_negative(field: &str, v: f64) -> anyhow::Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        bail!("{field}: must be a number >= 0, got {v}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Scenario> {
        let s: Scenario = toml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    const SLO: &str = "[[slos]]\nname = \"x\"\nmeasure = \"safe_stops\"\nmax = 0\n";

    #[test]
    fn every_shipped_scenario_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/chaos");
        let mut n = 0;
        for e in std::fs::read_dir(dir).expect("deploy/chaos") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "toml") {
                Scenario::load(&p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
                n += 1;
            }
        }
        assert!(n >= 5, "at least five scenarios, found {n}");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (format!("duration_s = 10\nbogus = 1\n{SLO}"), "bogus"),
            (format!("duration_s = -1\n{SLO}"), "duration_s"),
            (format!("duration_s = 10\nsettle_s = -2\n{SLO}"), "settle_s"),
            ("duration_s = 10\n".to_owned(), "slos"),
            (
                format!("duration_s = 10\n[[faults]]\nkind = \"flood\"\nrat = 5\n{SLO}"),
                "rat",
            ),
            (
                format!("duration_s = 10\n[[faults]]\nkind = \"flood\"\nrate = 0\n{SLO}"),
                "faults[0].rate",
            ),
            (
                format!("duration_s = 10\n[[faults]]\nkind = \"stop\"\nactor = \"robot\"\nfor_s = 1\n{SLO}"),
                "robot",
            ),
            (
                format!("duration_s = 10\n[[faults]]\nkind = \"kill\"\nat_s = 12\n{SLO}"),
                "faults[0].at_s",
            ),
            (
                "duration_s = 10\n[[slos]]\nname = \"n\"\nmeasure = \"safe_stops\"\n".to_owned(),
                "max",
            ),
            (
                "duration_s = 10\n[[slos]]\nname = \"n\"\nmeasure = \"nothing\"\nmax = 1\n".to_owned(),
                "nothing",
            ),
            (
                format!("duration_s = 10\n[node.actuator]\ncmd_timeout = 5\n{SLO}"),
                "cmd_timeout",
            ),
        ];
        for (text, field) in cases {
            let e = format!("{:#}", parse(&text).expect_err(&text));
            assert!(e.contains(field), "{field} not named in: {e}");
        }
    }

    #[test]
    fn scaling_shortens_every_phase() {
        let s = parse(&format!(
            "duration_s = 10\nsettle_s = 6\nidle_s = 4\n[[faults]]\nkind = \"stop\"\nactor = \"planner\"\nat_s = 2\nfor_s = 2\n{SLO}"
        ))
        .expect("parse")
        .scaled(0.5);
        assert_eq!((s.duration_s, s.settle_s, s.idle_s), (5.0, 3.0, 2.0));
        match &s.faults[0] {
            Fault::Stop(st) => assert_eq!((st.at_s, st.for_s), (1.0, 1.0)),
            f => panic!("{f:?}"),
        }
    }
}
