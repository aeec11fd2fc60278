//! What happens between snapshots: the RSS of every actor process once a second, and the
//! actuator's safe-stop counter and watchdog gauge ten times a second, so that trips are seen
//! even when a later kill resets the actuator's counters.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use qubot_msg::metric_names as telemetry;

use super::pipeline::{Pipeline, Snapshot};
use crate::promtext;

#[derive(Debug, Clone)]
pub struct RssSample {
    /// Seconds since the fault phase started.
    pub t_s: f64,
    pub actor: String,
    pub pid: u32,
    pub bytes: u64,
}

/// One reading of the actuator's watchdog metrics.
#[derive(Debug, Clone, Copy)]
pub struct WatchdogPoint {
    pub pid: u32,
    pub safe_stops: f64,
    /// Silence before the last trip (s); 0 before any trip.
    pub silence_s: f64,
}

#[derive(Debug, Default)]
pub struct Watch {
    pub rss: Vec<RssSample>,
    pub watchdog: Vec<WatchdogPoint>,
}

impl Watch {
    /// Safe stops over the whole watch, across actuator restarts (a new process counts from 0).
    pub fn safe_stops(&self) -> f64 {
        let mut total = 0.0;
        for w in self.watchdog.windows(2) {
            let (a, b) = (w[0], w[1]);
            total += if a.pid == b.pid && b.safe_stops >= a.safe_stops {
                b.safe_stops - a.safe_stops
            } else if a.pid == b.pid {
                0.0
            } else {
                b.safe_stops
            };
        }
        total
    }

    /// The longest silence any trip came after (s), if the watchdog tripped.
    pub fn worst_silence(&self) -> Option<f64> {
        self.watchdog
            .iter()
            .map(|w| w.silence_s)
            .filter(|s| *s > 0.0)
            .reduce(f64::max)
    }
}

/// The reading a snapshot holds, for the actor process it names.
pub fn point_of(s: &Snapshot, actor: &str) -> Option<WatchdogPoint> {
    let m = s.first.get(actor)?;
    Some(WatchdogPoint {
        pid: *s.pids.get(actor)?,
        safe_stops: promtext::sum(m, telemetry::SAFE_STOPS, &[]),
        silence_s: promtext::sum(m, telemetry::WATCHDOG_SILENCE, &[]),
    })
}

pub fn watchdog_point(pipe: &Pipeline) -> Option<WatchdogPoint> {
    let pid = pipe.pid("actuator")?;
    let m = pipe.endpoint("actuator")?.scrape()?;
    Some(WatchdogPoint {
        pid,
        safe_stops: promtext::sum(&m, telemetry::SAFE_STOPS, &[]),
        silence_s: promtext::sum(&m, telemetry::WATCHDOG_SILENCE, &[]),
    })
}

/// Samples until `on` turns false.
pub fn run(pipe: &Pipeline, on: &AtomicBool) -> Watch {
    let start = Instant::now();
    let mut out = Watch::default();
    let mut next_rss = start;
    while on.load(Ordering::Acquire) {
        if let Some(p) = watchdog_point(pipe) {
            out.watchdog.push(p);
        }
        if Instant::now() >= next_rss {
            next_rss += Duration::from_secs(1);
            for (actor, pid) in pipe.pids() {
                if let Some(bytes) = rss_bytes(pid) {
                    out.rss.push(RssSample {
                        t_s: start.elapsed().as_secs_f64(),
                        actor,
                        pid,
                        bytes,
                    });
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    out
}

/// From /proc: instant (the exporter samples once a second) and visible across network
/// namespaces.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, safe_stops: f64) -> WatchdogPoint {
        WatchdogPoint {
            pid,
            safe_stops,
            silence_s: 0.0,
        }
    }

    #[test]
    fn safe_stops_survive_a_restart() {
        let w = Watch {
            rss: vec![],
            watchdog: vec![p(1, 2.0), p(1, 3.0), p(1, 4.0), p(2, 0.0), p(2, 1.0)],
        };
        assert_eq!(w.safe_stops(), 3.0);
    }
}
