//! What `qubot up` prints, typed: its JSON event lines ([`Event`]) while it runs and the run
//! report ([`RunReport`]) as its last stdout line. The supervisor writes them with these types
//! and the chaos runner, the bench harness and the tests read them back with them, so a field
//! renamed here is renamed for all of them.
//!
//! Every line is written with its keys sorted (through `serde_json::Value`, whose maps are
//! sorted), as the supervisor always printed them: the text stays byte for byte the same.

use std::collections::BTreeMap;

use qubot_msg::Role;
use serde::{Deserialize, Serialize};

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The robot reached its goal (`--exit-on-goal`).
    Goal,
    /// `--timeout` passed first.
    Timeout,
    /// SIGINT or SIGTERM.
    Signal,
    /// An actor crashed more often than the restart intensity allows.
    GaveUp,
}

/// The run report: `qubot up`'s last stdout line. Rounded to mm, ms or µs as produced; a
/// figure that could not be measured is `null` (`None`), never left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The world's name (`default`, a shipped name, or the file's `name`).
    pub world: String,
    pub finish: Finish,
    /// The referee saw the actuator report the goal reached.
    pub goal_reached: bool,
    pub duration_s: f64,
    /// Smallest clearance of the robot's centre to anything; `None` before any state.
    pub min_clearance_m: Option<f64>,
    pub robot_radius_m: f64,
    /// Contacts the robot caused.
    pub collisions: u32,
    /// Contacts a moving obstacle caused (it walked into a standing robot or hit it from behind).
    pub struck: u32,
    /// Path length driven, as the referee followed it.
    pub distance_m: f64,
    /// Shortest collision-free path on the true static map; `None` when the goal is sealed off.
    pub shortest_path_m: Option<f64>,
    /// `distance_m / shortest_path_m`, only when the goal was reached.
    pub path_efficiency: Option<f64>,
    /// The actuator's `qubot_safe_stops_total`; `None` when its `/metrics` did not answer.
    pub safe_stops: Option<f64>,
    /// The actuator's capture → applied p99; `None` without a scrape or an observation.
    pub pipeline_latency_p99_ms: Option<f64>,
    /// Actuator states the referee judged.
    pub states: u64,
    /// `[x, y, theta]` of the last state judged.
    pub final_pose: Option<[f64; 3]>,
    /// Restarts per actor (every role, enabled or not).
    pub restarts: BTreeMap<String, u64>,
    /// The loop's clock: the figures of the sensor's capture timer and the actuator's control
    /// timer, keyed [`LOOP_TIMERS`] (`sensor/capture`, `actuator/control`), each read from its
    /// process's `/metrics` before it stops. Both keys are always there; a figure is `null`
    /// without that page or without an observation. Report lines from before these figures
    /// parse with the map empty.
    #[serde(default)]
    pub periods: BTreeMap<String, PeriodFigures>,
}

/// The periodic timers whose figures the run report carries, as `(actor, timer)`: the `actor`
/// and `timer` labels of their `qubot_tick_*` series. The report's key is `actor/timer`.
pub const LOOP_TIMERS: [(&str, &str); 2] = [
    (Role::Sensor.name(), "capture"),
    (Role::Actuator.name(), "control"),
];

/// The run report's key of timer `timer` of `actor`: `actor/timer`.
pub fn timer_key(actor: &str, timer: &str) -> String {
    format!("{actor}/{timer}")
}

/// One periodic timer over its process's life (since its last restart), from its histograms
/// (`qubot_tick_period_seconds`, `qubot_tick_lateness_seconds`) and its missed-tick counter.
///
/// The histograms have four buckets per octave (each edge about 1.19 times the one before),
/// so a quantile is known only to lie in its bucket, within ±19 %. The `_ms` figure is
/// interpolated inside that bucket (as PromQL's `histogram_quantile`) and says nothing finer:
/// ticks all exactly 50 ms apart read as a p50 of about 53 ms, in bucket `[48.7, 57.9]`. The
/// `_bucket_ms` pair beside it is what the histogram actually knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeriodFigures {
    /// Median time between two runs of the tick.
    pub period_p50_ms: Option<f64>,
    /// `[lower, upper]` edges of the bucket `period_p50_ms` lies in; `null` beyond the last
    /// finite edge (about 10 s), where the figure is that edge, a lower bound.
    pub period_p50_bucket_ms: Option<[f64; 2]>,
    /// 99th percentile of the time between two runs (a skipped tick makes one interval two
    /// periods long).
    pub period_p99_ms: Option<f64>,
    /// The bucket `period_p99_ms` lies in, as `period_p50_bucket_ms`.
    pub period_p99_bucket_ms: Option<[f64; 2]>,
    /// An upper bound of the longest time between two runs: the upper edge of the highest
    /// bucket with an observation (the longest lies somewhere in that bucket, so it can be up
    /// to 19 % shorter). `null` without an observation or beyond the last finite edge.
    pub period_max_ms_at_most: Option<f64>,
    /// 99th percentile of how late a tick ran after its deadline (ticks a period late or more
    /// are skipped, counted in `missed`, and not in here).
    pub lateness_p99_ms: Option<f64>,
    /// The bucket `lateness_p99_ms` lies in, as `period_p50_bucket_ms`.
    pub lateness_p99_bucket_ms: Option<[f64; 2]>,
    /// Ticks skipped because they came a period or more late (`qubot_ticks_missed_total`);
    /// `null` without the page or when the page has no such series for the timer.
    pub missed: Option<u64>,
}

impl RunReport {
    /// One JSON line, keys sorted.
    pub fn to_json_line(&self) -> String {
        sorted_line(self)
    }

    pub fn from_json_line(line: &str) -> serde_json::Result<RunReport> {
        serde_json::from_str(line.trim())
    }

    /// The run report among a process's stdout lines: the last line that is one (event lines
    /// and anything else before it are passed over). E.g. `RunReport::last_in(out.lines())`.
    pub fn last_in<I>(lines: I) -> Option<RunReport>
    where
        I: IntoIterator,
        I::IntoIter: DoubleEndedIterator,
        I::Item: AsRef<str>,
    {
        lines
            .into_iter()
            .rev()
            .find_map(|l| RunReport::from_json_line(l.as_ref()).ok())
    }
}

/// One supervisor event line: `{"event": <kind>, "actor": <actor>, ...the kind's fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The actor concerned (`sensor`, `planner`, `actuator`), or `referee` for `goal_reached`.
    pub actor: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened; the variant is the line's `event` field. A pid is `None` (`null`) only
/// when the child was gone before it could be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    Spawned {
        pid: Option<u32>,
    },
    /// `status`: `exit N`, `signal N`, or why waiting failed.
    Exited {
        pid: Option<u32>,
        status: String,
    },
    Restarting {
        delay_ms: u64,
    },
    /// Crashes within the restart window, over the intensity limit.
    GaveUp {
        restarts_in_window: u32,
    },
    Stopped {
        pid: Option<u32>,
    },
    SpawnFailed {
        error: String,
    },
    /// Seconds since the supervisor started its actors.
    GoalReached {
        t_s: f64,
    },
}

impl Event {
    /// The actor name the referee's events carry.
    pub const REFEREE: &'static str = "referee";

    pub fn new(actor: &str, kind: EventKind) -> Event {
        Event {
            actor: actor.to_owned(),
            kind,
        }
    }

    /// The `event` field: `spawned`, `exited`, ...
    pub fn name(&self) -> &'static str {
        match self.kind {
            EventKind::Spawned { .. } => "spawned",
            EventKind::Exited { .. } => "exited",
            EventKind::Restarting { .. } => "restarting",
            EventKind::GaveUp { .. } => "gave_up",
            EventKind::Stopped { .. } => "stopped",
            EventKind::SpawnFailed { .. } => "spawn_failed",
            EventKind::GoalReached { .. } => "goal_reached",
        }
    }

    /// The pid of a `spawned` event.
    pub fn spawned_pid(&self) -> Option<u32> {
        match self.kind {
            EventKind::Spawned { pid } => pid,
            _ => None,
        }
    }

    /// One JSON line, keys sorted.
    pub fn to_json_line(&self) -> String {
        sorted_line(self)
    }

    /// The event on `line`; `None` for any other line (the report, a foreign event).
    pub fn from_json_line(line: &str) -> Option<Event> {
        serde_json::from_str(line.trim()).ok()
    }
}

/// `v` as one JSON line with its keys sorted (`Value`'s maps are ordered by key).
fn sorted_line(v: &impl Serialize) -> String {
    // Plain structs of strings, numbers and maps with string keys always serialize.
    serde_json::to_value(v).map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RunReport {
        RunReport {
            world: "corridor".into(),
            finish: Finish::Goal,
            goal_reached: true,
            duration_s: 14.213,
            min_clearance_m: Some(0.412),
            robot_radius_m: 0.2,
            collisions: 0,
            struck: 1,
            distance_m: 9.87,
            shortest_path_m: Some(9.1),
            path_efficiency: Some(1.085),
            safe_stops: Some(0.0),
            pipeline_latency_p99_ms: None,
            states: 702,
            final_pose: Some([9.5, 2.0, -0.013]),
            restarts: [("actuator", 0), ("planner", 1), ("sensor", 0)]
                .map(|(a, n)| (a.to_owned(), n))
                .into(),
            periods: [
                (
                    "actuator/control".to_owned(),
                    PeriodFigures {
                        period_p50_ms: Some(18.85),
                        period_p50_bucket_ms: Some([17.2, 20.5]),
                        period_p99_ms: Some(20.467),
                        period_p99_bucket_ms: Some([17.2, 20.5]),
                        period_max_ms_at_most: Some(24.4),
                        lateness_p99_ms: Some(0.118),
                        lateness_p99_bucket_ms: Some([0.1, 0.119]),
                        missed: Some(0),
                    },
                ),
                ("sensor/capture".to_owned(), PeriodFigures::default()),
            ]
            .into(),
        }
    }

    /// The line of [`report`] before the loop's figures were added.
    const BEFORE_PERIODS: &str = concat!(
        r#"{"collisions":0,"distance_m":9.87,"duration_s":14.213,"final_pose":[9.5,2.0,-0.013],"#,
        r#""finish":"goal","goal_reached":true,"min_clearance_m":0.412,"path_efficiency":1.085,"#,
        r#""pipeline_latency_p99_ms":null,"restarts":{"actuator":0,"planner":1,"sensor":0},"#,
        r#""robot_radius_m":0.2,"safe_stops":0.0,"shortest_path_m":9.1,"states":702,"struck":1,"#,
        r#""world":"corridor"}"#
    );

    #[test]
    fn the_report_line_is_the_one_the_supervisor_always_printed() {
        // The shape before the typed report: every key, sorted; unmeasured figures are null.
        // The loop's figures are one more key, sorted the same way inside.
        let want = concat!(
            r#"{"collisions":0,"distance_m":9.87,"duration_s":14.213,"final_pose":[9.5,2.0,-0.013],"#,
            r#""finish":"goal","goal_reached":true,"min_clearance_m":0.412,"path_efficiency":1.085,"#,
            r#""periods":{"actuator/control":{"lateness_p99_bucket_ms":[0.1,0.119],"#,
            r#""lateness_p99_ms":0.118,"missed":0,"period_max_ms_at_most":24.4,"#,
            r#""period_p50_bucket_ms":[17.2,20.5],"period_p50_ms":18.85,"#,
            r#""period_p99_bucket_ms":[17.2,20.5],"period_p99_ms":20.467},"#,
            r#""sensor/capture":{"lateness_p99_bucket_ms":null,"lateness_p99_ms":null,"#,
            r#""missed":null,"period_max_ms_at_most":null,"period_p50_bucket_ms":null,"#,
            r#""period_p50_ms":null,"period_p99_bucket_ms":null,"period_p99_ms":null}},"#,
            r#""pipeline_latency_p99_ms":null,"restarts":{"actuator":0,"planner":1,"sensor":0},"#,
            r#""robot_radius_m":0.2,"safe_stops":0.0,"shortest_path_m":9.1,"states":702,"struck":1,"#,
            r#""world":"corridor"}"#
        );
        assert_eq!(report().to_json_line(), want);
        assert_eq!(RunReport::from_json_line(want).expect("parses"), report());
    }

    #[test]
    fn a_report_line_from_before_the_loop_figures_still_parses() {
        let old = RunReport::from_json_line(BEFORE_PERIODS).expect("parses");
        assert!(old.periods.is_empty(), "{old:?}");
        assert_eq!(
            old,
            RunReport {
                periods: BTreeMap::new(),
                ..report()
            }
        );
        // And one timer's object with only some of its keys (a partial writer) fills the rest
        // with null.
        let partial = BEFORE_PERIODS.replace(
            r#""pipeline_latency_p99_ms""#,
            r#""periods":{"sensor/capture":{"missed":3}},"pipeline_latency_p99_ms""#,
        );
        let r = RunReport::from_json_line(&partial).expect("parses");
        assert_eq!(
            r.periods["sensor/capture"],
            PeriodFigures {
                missed: Some(3),
                ..PeriodFigures::default()
            }
        );
    }

    #[test]
    fn the_loop_timers_are_keyed_actor_slash_timer() {
        let keys: Vec<String> = LOOP_TIMERS.iter().map(|(a, t)| timer_key(a, t)).collect();
        assert_eq!(keys, ["sensor/capture", "actuator/control"]);
        assert!(keys.iter().all(|k| report().periods.contains_key(k)));
    }

    #[test]
    fn every_finish_and_missing_figure_round_trips() {
        for (finish, text) in [
            (Finish::Goal, "goal"),
            (Finish::Timeout, "timeout"),
            (Finish::Signal, "signal"),
            (Finish::GaveUp, "gave_up"),
        ] {
            let r = RunReport {
                finish,
                goal_reached: false,
                min_clearance_m: None,
                shortest_path_m: None,
                path_efficiency: None,
                safe_stops: None,
                final_pose: None,
                ..report()
            };
            let line = r.to_json_line();
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            assert_eq!(v["finish"], text);
            for k in [
                "min_clearance_m",
                "shortest_path_m",
                "path_efficiency",
                "safe_stops",
                "final_pose",
            ] {
                assert!(v[k].is_null(), "{k} must be null, not left out: {line}");
            }
            assert_eq!(RunReport::from_json_line(&line).expect("parses"), r);
        }
    }

    #[test]
    fn the_report_is_found_after_the_events() {
        let out = [
            Event::new("planner", EventKind::Spawned { pid: Some(7) }).to_json_line(),
            report().to_json_line(),
            String::new(),
        ];
        assert_eq!(RunReport::last_in(&out), Some(report()));
        assert_eq!(RunReport::last_in(out.join("\n").lines()), Some(report()));
        assert_eq!(RunReport::last_in(&out[..1]), None, "an event is no report");
        assert!(Event::from_json_line(&out[1]).is_none(), "the report is no event");
    }

    #[test]
    fn event_lines_keep_their_shape() {
        let cases = [
            (
                Event::new("planner", EventKind::Spawned { pid: Some(42) }),
                r#"{"actor":"planner","event":"spawned","pid":42}"#,
            ),
            (
                Event::new(
                    "planner",
                    EventKind::Exited {
                        pid: Some(42),
                        status: "signal 9".into(),
                    },
                ),
                r#"{"actor":"planner","event":"exited","pid":42,"status":"signal 9"}"#,
            ),
            (
                Event::new("planner", EventKind::Restarting { delay_ms: 100 }),
                r#"{"actor":"planner","delay_ms":100,"event":"restarting"}"#,
            ),
            (
                Event::new(
                    "planner",
                    EventKind::GaveUp {
                        restarts_in_window: 3,
                    },
                ),
                r#"{"actor":"planner","event":"gave_up","restarts_in_window":3}"#,
            ),
            (
                Event::new("sensor", EventKind::Stopped { pid: None }),
                r#"{"actor":"sensor","event":"stopped","pid":null}"#,
            ),
            (
                Event::new(
                    "actuator",
                    EventKind::SpawnFailed {
                        error: "No such file".into(),
                    },
                ),
                r#"{"actor":"actuator","error":"No such file","event":"spawn_failed"}"#,
            ),
            (
                Event::new(Event::REFEREE, EventKind::GoalReached { t_s: 12.5 }),
                r#"{"actor":"referee","event":"goal_reached","t_s":12.5}"#,
            ),
        ];
        for (event, line) in cases {
            assert_eq!(event.to_json_line(), line);
            assert_eq!(Event::from_json_line(line).as_ref(), Some(&event), "{line}");
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
            assert_eq!(v["event"], event.name());
        }
        let spawned = Event::from_json_line(r#"{"event":"spawned","actor":"sensor","pid":9}"#);
        assert_eq!(spawned.and_then(|e| e.spawned_pid()), Some(9), "any key order");
        assert!(Event::from_json_line(r#"{"event":"dreamt","actor":"sensor"}"#).is_none());
    }
}
