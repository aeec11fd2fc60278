//! One refreshed line on a terminal, once a second: where the robot is, how far to go,
//! clearance, collisions, safe stops, command latency. Only when stderr is a terminal. It runs
//! beside the supervision loop, never in it, and the actuator's figures come from a scraper
//! thread of their own, so a slow `/metrics` holds neither.

use std::{
    io::IsTerminal,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use qubot_bus::telemetry;
use qubot_ops::promtext;
use tokio::{sync::oneshot, task::JoinHandle};

use super::referee::{self, Referee};

const EVERY: Duration = Duration::from_secs(1);

/// The actuator's pipeline latency p50 (s) and safe stops, from its latest scrape.
type Figures = (Option<f64>, f64);

pub struct StatusLine {
    stop: oneshot::Sender<()>,
    drawer: JoinHandle<()>,
}

/// Ends the scraper thread when the drawer ends, however it ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl StatusLine {
    /// Starts drawing (`None` when stderr is no terminal); `started` is the run's zero.
    pub fn start(
        actuator_metrics: &str,
        referee: Arc<Mutex<Referee>>,
        started: Instant,
    ) -> Option<StatusLine> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let figures: Arc<Mutex<Option<Figures>>> = Arc::default();
        let scraper_stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
        let (shared, stop, addr) = (
            figures.clone(),
            scraper_stop.0.clone(),
            actuator_metrics.to_owned(),
        );
        // No scraper means no figures: the line shows what the referee knows.
        let _ = std::thread::Builder::new()
            .name("status-scrape".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let figures = promtext::scrape(&addr)
                        .and_then(|t| promtext::parse(&t).ok())
                        .map(|m| {
                            (
                                promtext::quantile(&m, telemetry::PIPELINE_LATENCY, &[], 0.5),
                                promtext::sum(&m, telemetry::SAFE_STOPS, &[]),
                            )
                        });
                    *shared.lock().unwrap_or_else(|p| p.into_inner()) = figures;
                    std::thread::sleep(EVERY);
                }
            });
        let (stop, mut stopped) = oneshot::channel();
        let drawer = tokio::spawn(async move {
            let _scraper = scraper_stop;
            let mut tick = tokio::time::interval(EVERY);
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tick.tick() => {
                        let f = *figures.lock().unwrap_or_else(|p| p.into_inner());
                        let line = render(&referee::lock(&referee), f, started);
                        crate::term::show_status(&line);
                    }
                }
            }
        });
        Some(StatusLine { stop, drawer })
    }

    /// Stops drawing (the last line stays on screen) and moves below it, so nothing printed
    /// after this shares its row.
    pub async fn stop(this: Option<StatusLine>) {
        if let Some(s) = this {
            let _ = s.stop.send(());
            let _ = s.drawer.await;
        }
        crate::term::end_status();
    }
}

fn render(r: &Referee, figures: Option<Figures>, started: Instant) -> String {
    let (p50, stops) = figures.unwrap_or((None, 0.0));
    let (pose, dist) = match (r.last, r.distance_to_goal()) {
        (Some(s), Some(d)) => (format!("({:.2}, {:.2})", s.x, s.y), format!("{d:.2} m")),
        _ => ("waiting for state".into(), "-".into()),
    };
    format!(
        "[{:>5.1}s] pose {pose}  to goal {dist}  min clearance {:.2} m  collisions {}  safe stops {stops}  latency p50 {}",
        started.elapsed().as_secs_f64(),
        r.judge.min_clearance_m,
        r.judge.collisions,
        p50.map_or("-".into(), |s| format!("{:.1} ms", s * 1e3)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_is_known() {
        let world = qubot_robot::World::builtin();
        let mut r = Referee::new(world.clone(), 0);
        let waiting = render(&r, None, Instant::now());
        assert!(waiting.contains("pose waiting for state  to goal -"), "{waiting}");
        assert!(waiting.ends_with("safe stops 0  latency p50 -"), "{waiting}");
        let at = qubot_msg::State {
            x: world.start.x,
            y: world.start.y,
            ..Default::default()
        };
        r.observe(&at, 0);
        let line = render(&r, Some((Some(0.0042), 2.0)), Instant::now());
        let pose = format!("pose ({:.2}, {:.2})", world.start.x, world.start.y);
        assert!(line.contains(&pose), "{line}");
        assert!(line.ends_with("safe stops 2  latency p50 4.2 ms"), "{line}");
    }
}
