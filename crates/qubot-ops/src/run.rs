//! What `qubot up` prints, typed: its JSON event lines ([`Event`]) while it runs and the run
//! report ([`RunReport`]) as its last stdout line. The supervisor writes them with these types
//! and the chaos runner, the bench harness and the tests read them back with them, so a field
//! renamed here is renamed for all of them.
//!
//! Every line is written with its keys sorted (through `serde_json::Value`, whose maps are
//! sorted), as the supervisor always printed them: the text stays byte for byte the same.

use std::collections::BTreeMap;

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
        }
    }

    #[test]
    fn the_report_line_is_the_one_the_supervisor_always_printed() {
        // The shape before the typed report: every key, sorted; unmeasured figures are null.
        let want = concat!(
            r#"{"collisions":0,"distance_m":9.87,"duration_s":14.213,"final_pose":[9.5,2.0,-0.013],"#,
            r#""finish":"goal","goal_reached":true,"min_clearance_m":0.412,"path_efficiency":1.085,"#,
            r#""pipeline_latency_p99_ms":null,"restarts":{"actuator":0,"planner":1,"sensor":0},"#,
            r#""robot_radius_m":0.2,"safe_stops":0.0,"shortest_path_m":9.1,"states":702,"struck":1,"#,
            r#""world":"corridor"}"#
        );
        assert_eq!(report().to_json_line(), want);
        assert_eq!(RunReport::from_json_line(want).expect("parses"), report());
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
