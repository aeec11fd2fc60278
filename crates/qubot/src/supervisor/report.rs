//! The run report (`qubot_ops::run::RunReport`): the referee's account of the run, the
//! actuator's own figures read from its `/metrics` before it stops, and the restarts.

use std::{collections::BTreeMap, time::Duration, time::Instant};

use qubot_bus::telemetry;
use qubot_ops::{
    promtext::{self, Sample},
    run::{Finish, RunReport},
};
use qubot_robot::{PlannerConfig, World};

use super::referee::Referee;

/// What the report knows before the run: the world and the yardstick for plan quality.
pub struct Report {
    world: String,
    /// The shortest collision-free path, on a grid like the planner's (static obstacles only).
    shortest_path_m: Option<f64>,
    started: Instant,
}

impl Report {
    /// `started` is the run's zero (`duration_s`).
    pub fn start(world: &World, started: Instant) -> Report {
        Report {
            world: world.name.clone(),
            shortest_path_m: qubot_robot::shortest_path_m(world, PlannerConfig::default().map_resolution_m),
            started,
        }
    }

    /// The report at the end of the run; `actuator` is the actuator's last scrape, if any.
    pub fn finish(
        self,
        finish: Finish,
        r: &Referee,
        actuator: Option<&[Sample]>,
        restarts: BTreeMap<String, u64>,
    ) -> RunReport {
        let shortest = self.shortest_path_m;
        RunReport {
            world: self.world,
            finish,
            goal_reached: r.goal_reached,
            duration_s: round3(self.started.elapsed().as_secs_f64()),
            min_clearance_m: finite(r.judge.min_clearance_m),
            robot_radius_m: r.robot_radius_m(),
            collisions: r.judge.collisions,
            struck: r.judge.struck,
            distance_m: round3(r.distance_m),
            shortest_path_m: shortest.map(round3),
            path_efficiency: shortest
                .filter(|_| r.goal_reached)
                .map(|s| round3(r.distance_m / s)),
            safe_stops: actuator.map(|m| promtext::sum(m, telemetry::SAFE_STOPS, &[])),
            pipeline_latency_p99_ms: actuator
                .and_then(|m| promtext::quantile(m, telemetry::PIPELINE_LATENCY, &[], 0.99))
                .and_then(|s| finite(s * 1e3)),
            states: r.states,
            final_pose: r.last.map(|s| [round3(s.x), round3(s.y), round3(s.theta)]),
            restarts,
        }
    }
}

/// The actuator's `/metrics`, scraped on a blocking thread and given up after `limit`: read
/// before the actuator stops, and never holding the stop for long.
pub async fn scrape_within(addr: String, limit: Duration) -> Option<Vec<Sample>> {
    let job =
        tokio::task::spawn_blocking(move || promtext::scrape(&addr).and_then(|t| promtext::parse(&t).ok()));
    tokio::time::timeout(limit, job).await.ok()?.ok()?
}

/// To the millisecond (or mm, µs): what the run's lines carry.
pub fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// Rounded as [`round3`]; `None` (JSON null) for a value that is not finite.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then(|| round3(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_without_states_or_scrape_reports_nulls() {
        let world = World::builtin();
        let r = Referee::new(world.clone(), 0);
        let restarts: BTreeMap<String, u64> = [("planner".to_owned(), 2)].into();
        let report =
            Report::start(&world, Instant::now()).finish(Finish::Timeout, &r, None, restarts.clone());
        assert_eq!(report.world, world.name);
        assert_eq!(
            (report.finish, report.goal_reached, report.states),
            (Finish::Timeout, false, 0)
        );
        assert_eq!(report.min_clearance_m, None, "no state, no clearance");
        assert_eq!((report.safe_stops, report.pipeline_latency_p99_ms), (None, None));
        assert_eq!((report.final_pose, report.path_efficiency), (None, None));
        assert!(report.shortest_path_m.is_some_and(|s| s > 0.0));
        assert_eq!(report.robot_radius_m, world.robot_radius_m);
        assert_eq!(report.restarts, restarts);
    }

    #[test]
    fn the_actuator_figures_and_the_path_are_rounded() {
        let world = World::builtin();
        let mut r = Referee::new(world.clone(), 0);
        let at = |x: f64, goal_reached| qubot_msg::State {
            x,
            y: world.start.y,
            theta: 0.123_456,
            goal_reached,
            ..Default::default()
        };
        r.observe(&at(world.start.x, false), 0);
        r.observe(&at(world.start.x + 1.000_4, true), 0);
        let m = promtext::parse(concat!(
            "qubot_safe_stops_total{reason=\"cmd_timeout\"} 2\n",
            "qubot_pipeline_latency_seconds_bucket{le=\"0.005\"} 10\n",
            "qubot_pipeline_latency_seconds_bucket{le=\"+Inf\"} 10\n",
        ))
        .expect("metrics");
        let report =
            Report::start(&world, Instant::now()).finish(Finish::Goal, &r, Some(&m), BTreeMap::new());
        assert_eq!(report.distance_m, 1.0);
        assert_eq!(report.safe_stops, Some(2.0));
        let p99 = report.pipeline_latency_p99_ms.expect("p99");
        assert!(p99 > 0.0 && p99 <= 5.0 && round3(p99) == p99, "{p99}");
        let pose = report.final_pose.expect("pose");
        assert_eq!(pose[2], 0.123);
        let shortest = report.shortest_path_m.expect("shortest");
        assert_eq!(report.path_efficiency, Some(round3(r.distance_m / shortest)));
    }
}
