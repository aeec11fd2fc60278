//! The run report (`qubot_ops::run::RunReport`): the referee's account of the run, the
//! actuator's and the sensor's own figures read from their `/metrics` before they stop (the
//! loop's latency, safe stops, and its clock: the periods of the sensor's capture and the
//! actuator's control timers), and the restarts.

use std::{collections::BTreeMap, time::Duration, time::Instant};

use qubot_bus::telemetry;
use qubot_msg::Role;
use qubot_ops::{
    promtext::{self, Quantile, Sample},
    run::{timer_key, Finish, PeriodFigures, RunReport, LOOP_TIMERS},
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

    /// The report at the end of the run, from the processes' last scrapes.
    pub fn finish(
        self,
        finish: Finish,
        r: &Referee,
        pages: Pages<'_>,
        restarts: BTreeMap<String, u64>,
    ) -> RunReport {
        let actuator = pages.actuator;
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
            periods: LOOP_TIMERS
                .iter()
                .map(|&(actor, timer)| {
                    (
                        timer_key(actor, timer),
                        period_figures(pages.of(actor), actor, timer),
                    )
                })
                .collect(),
        }
    }
}

/// The processes' pages the report reads, each scraped before its process stops; `None` for
/// one that did not answer (its figures are then `null`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Pages<'a> {
    pub actuator: Option<&'a [Sample]>,
    pub sensor: Option<&'a [Sample]>,
}

impl<'a> Pages<'a> {
    /// The page of `actor` (`sensor`, `actuator`); `None` for any other.
    fn of(&self, actor: &str) -> Option<&'a [Sample]> {
        match Role::from_name(actor)? {
            Role::Sensor => self.sensor,
            Role::Actuator => self.actuator,
            Role::Planner => None,
        }
    }
}

/// Timer `timer` of `actor`, from its process's page (all `null` without one). Each quantile
/// comes with the bucket it lies in: the value is interpolated inside it and knows nothing
/// finer (`PeriodFigures` says more).
fn period_figures(page: Option<&[Sample]>, actor: &str, timer: &str) -> PeriodFigures {
    let Some(m) = page else {
        return PeriodFigures::default();
    };
    let f = [("actor", actor), ("timer", timer)];
    let q = |name, q| promtext::quantile_in(m, name, &f, q);
    let (p50, p99) = (q(telemetry::TICK_PERIOD, 0.5), q(telemetry::TICK_PERIOD, 0.99));
    let late = q(telemetry::TICK_LATENESS, 0.99);
    // The quantile 1 lies in the highest bucket holding an observation: its upper edge bounds
    // the longest period.
    let max = q(telemetry::TICK_PERIOD, 1.0);
    let has_missed = m
        .iter()
        .any(|s| s.name == telemetry::TICKS_MISSED && f.iter().all(|(k, v)| s.label(k) == Some(*v)));
    PeriodFigures {
        period_p50_ms: p50.and_then(quantile_ms),
        period_p50_bucket_ms: p50.and_then(bucket_ms),
        period_p99_ms: p99.and_then(quantile_ms),
        period_p99_bucket_ms: p99.and_then(bucket_ms),
        period_max_ms_at_most: max.and_then(|q| finite(q.upper * 1e3)),
        lateness_p99_ms: late.and_then(quantile_ms),
        lateness_p99_bucket_ms: late.and_then(bucket_ms),
        missed: has_missed.then(|| promtext::sum(m, telemetry::TICKS_MISSED, &f).round() as u64),
    }
}

/// A quantile's value in ms, rounded as [`round3`] but kept inside its (rounded) bucket.
fn quantile_ms(q: Quantile) -> Option<f64> {
    let v = finite(q.value * 1e3)?;
    Some(match bucket_ms(q) {
        Some([lo, hi]) => v.clamp(lo, hi),
        None => v,
    })
}

/// `[lower, upper]` of a quantile's bucket in ms, to three significant digits (the edges are
/// defined to three); `None` for the bucket above the last finite edge.
fn bucket_ms(q: Quantile) -> Option<[f64; 2]> {
    let ms = |s: f64| s.is_finite().then(|| telemetry::three_digits(s * 1e3));
    Some([ms(q.lower)?, ms(q.upper)?])
}

/// A process's `/metrics`, scraped on a blocking thread and given up after `limit`: read
/// before the process stops, and never holding the stop for long.
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
        let report = Report::start(&world, Instant::now()).finish(
            Finish::Timeout,
            &r,
            Pages::default(),
            restarts.clone(),
        );
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
        let keys: Vec<&str> = report.periods.keys().map(String::as_str).collect();
        assert_eq!(keys, ["actuator/control", "sensor/capture"], "both keys, always");
        assert!(report.periods.values().all(|p| *p == PeriodFigures::default()));
    }

    /// A sensor page: the capture timer's periods, 98 of them one period (50 ms, in the bucket
    /// 48.7–57.9 ms) apart and 2 two periods apart (a skipped tick), its lateness and missed
    /// ticks; and a frame timer whose figures must not mix in.
    const SENSOR: &str = concat!(
        "# TYPE qubot_tick_period_seconds histogram\n",
        "qubot_tick_period_seconds_bucket{actor=\"sensor\",timer=\"capture\",robot=\"r\",le=\"0.0487\"} 0\n",
        "qubot_tick_period_seconds_bucket{actor=\"sensor\",timer=\"capture\",robot=\"r\",le=\"0.0579\"} 98\n",
        "qubot_tick_period_seconds_bucket{actor=\"sensor\",timer=\"capture\",robot=\"r\",le=\"0.0974\"} 98\n",
        "qubot_tick_period_seconds_bucket{actor=\"sensor\",timer=\"capture\",robot=\"r\",le=\"0.116\"} 100\n",
        "qubot_tick_period_seconds_bucket{actor=\"sensor\",timer=\"capture\",robot=\"r\",le=\"+Inf\"} 100\n",
        "qubot_tick_period_seconds_bucket{actor=\"sensor\",timer=\"frame\",robot=\"r\",le=\"0.0487\"} 0\n",
        "qubot_tick_period_seconds_bucket{actor=\"sensor\",timer=\"frame\",robot=\"r\",le=\"+Inf\"} 500\n",
        "# TYPE qubot_tick_lateness_seconds histogram\n",
        "qubot_tick_lateness_seconds_bucket{actor=\"sensor\",timer=\"capture\",robot=\"r\",le=\"1e-5\"} 90\n",
        "qubot_tick_lateness_seconds_bucket{actor=\"sensor\",timer=\"capture\",robot=\"r\",le=\"1.19e-5\"} 100\n",
        "qubot_tick_lateness_seconds_bucket{actor=\"sensor\",timer=\"capture\",robot=\"r\",le=\"+Inf\"} 100\n",
        "# TYPE qubot_ticks_missed_total counter\n",
        "qubot_ticks_missed_total{actor=\"sensor\",timer=\"capture\",robot=\"r\"} 2\n",
        "qubot_ticks_missed_total{actor=\"sensor\",timer=\"frame\",robot=\"r\"} 40\n",
    );

    /// An actuator page: 99 control periods in the bucket of 20 ms (17.2–20.5 ms), one beyond
    /// the last finite edge, and no missed-tick series.
    const ACTUATOR: &str = concat!(
        "qubot_tick_period_seconds_bucket{actor=\"actuator\",timer=\"control\",le=\"0.0172\"} 0\n",
        "qubot_tick_period_seconds_bucket{actor=\"actuator\",timer=\"control\",le=\"0.0205\"} 99\n",
        "qubot_tick_period_seconds_bucket{actor=\"actuator\",timer=\"control\",le=\"+Inf\"} 100\n",
    );

    #[test]
    fn the_loop_timers_figures_come_with_their_buckets() {
        let world = World::builtin();
        let r = Referee::new(world.clone(), 0);
        let sensor = promtext::parse(SENSOR).expect("sensor page");
        let actuator = promtext::parse(ACTUATOR).expect("actuator page");
        let pages = Pages {
            actuator: Some(&actuator),
            sensor: Some(&sensor),
        };
        let report = Report::start(&world, Instant::now()).finish(Finish::Goal, &r, pages, BTreeMap::new());

        let capture = &report.periods["sensor/capture"];
        // Interpolated inside the bucket: 48.7 + 9.2 × 50/98, not the 50 ms the ticks were
        // apart; the bucket is what is known.
        assert_eq!(capture.period_p50_ms, Some(53.394));
        assert_eq!(capture.period_p50_bucket_ms, Some([48.7, 57.9]));
        assert_eq!(capture.period_p99_ms, Some(106.7));
        assert_eq!(capture.period_p99_bucket_ms, Some([97.4, 116.0]));
        assert_eq!(capture.period_max_ms_at_most, Some(116.0));
        // 0.01171 ms rounds to 0.012, outside its bucket: kept at the edge instead.
        assert_eq!(capture.lateness_p99_ms, Some(0.0119));
        assert_eq!(capture.lateness_p99_bucket_ms, Some([0.01, 0.0119]));
        assert_eq!(capture.missed, Some(2), "the frame timer's are not the capture's");

        let control = &report.periods["actuator/control"];
        assert_eq!(control.period_p50_ms, Some(18.867));
        assert_eq!(control.period_p50_bucket_ms, Some([17.2, 20.5]));
        assert_eq!(control.period_p99_ms, Some(20.5));
        assert_eq!(
            control.period_max_ms_at_most, None,
            "the longest is beyond the last finite edge: no bound"
        );
        assert_eq!(
            (control.lateness_p99_ms, control.lateness_p99_bucket_ms),
            (None, None)
        );
        assert_eq!(control.missed, None, "no series is no count, not zero");

        // The actuator's page alone (the sensor's did not answer).
        let pages = Pages {
            actuator: Some(&actuator[..]),
            sensor: None,
        };
        let report = Report::start(&world, Instant::now()).finish(Finish::Goal, &r, pages, BTreeMap::new());
        assert_eq!(report.periods["actuator/control"], *control);
        assert_eq!(report.periods["sensor/capture"], PeriodFigures::default());
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
        let pages = Pages {
            actuator: Some(&m[..]),
            sensor: None,
        };
        let report = Report::start(&world, Instant::now()).finish(Finish::Goal, &r, pages, BTreeMap::new());
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
