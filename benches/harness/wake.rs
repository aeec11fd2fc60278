//! `qubot-bench wake`: the platform's own floor for a tick's lateness, with no Qubot, zenoh or
//! actix in the way. A plain thread sleeps to absolute deadlines with the same call the
//! runtime's ticker uses (`std::thread::sleep` to `t0 + k·period`) and hands each tick to a
//! second thread over a channel, as the ticker hands it to its actor. Both lateness figures
//! are measured: the timer thread's own (what the kernel and the hypervisor give a sleeper)
//! and the receiving thread's (plus the least a hand-off between two threads costs). The
//! jitter bench's targets are judged against these.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::{quantile, sorted};

/// One rate's figures, ms.
#[derive(Debug, Serialize)]
pub struct Floor {
    pub hz: f64,
    pub ticks: usize,
    pub sleeper: Spread,
    pub handed_off: Spread,
}

#[derive(Debug, Serialize)]
pub struct Spread {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Spread {
    fn of(late: Vec<f64>) -> Spread {
        let s = sorted(late);
        Spread {
            p50_ms: quantile(&s, 0.5),
            p99_ms: quantile(&s, 0.99),
            max_ms: s.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// Ticks at `hz` for `seconds` (bounded: at most 100,000 ticks).
pub fn measure(hz: f64, seconds: f64) -> Floor {
    let period = Duration::from_secs_f64(1.0 / hz);
    let n = ((hz * seconds) as usize).clamp(1, 100_000);
    let (tx, rx) = mpsc::channel::<Instant>();
    let receiver = std::thread::spawn(move || {
        rx.iter()
            .map(|due| ms(Instant::now().saturating_duration_since(due)))
            .collect::<Vec<_>>()
    });
    let t0 = Instant::now();
    let mut own = Vec::with_capacity(n);
    for k in 1..=n as u32 {
        let due = t0 + period * k;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        own.push(ms(Instant::now().saturating_duration_since(due)));
        // The receiver only ends when this sender is dropped.
        tx.send(due).expect("the receiving thread is alive");
    }
    drop(tx);
    let handed = receiver.join().expect("the receiving thread panicked");
    Floor {
        hz,
        ticks: n,
        sleeper: Spread::of(own),
        handed_off: Spread::of(handed),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn table(floors: &[Floor]) -> String {
    let mut out = String::from(
        "| rate | ticks | sleeper lateness p50 / p99 / max ms | handed off p50 / p99 / max ms |\n\
         | ---: | ---: | ---: | ---: |\n",
    );
    for f in floors {
        let s = |x: &Spread| format!("{:.3} / {:.3} / {:.3}", x.p50_ms, x.p99_ms, x.max_ms);
        out.push_str(&format!(
            "| {} Hz | {} | {} | {} |\n",
            f.hz,
            f.ticks,
            s(&f.sleeper),
            s(&f.handed_off)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tick_is_measured_on_both_threads_and_none_is_early() {
        let f = measure(200.0, 0.1);
        assert_eq!(f.ticks, 20);
        for s in [&f.sleeper, &f.handed_off] {
            assert!(
                s.p50_ms >= 0.0 && s.p50_ms <= s.p99_ms && s.p99_ms <= s.max_ms,
                "{s:?}"
            );
        }
        // A tick is handed off after its timer thread measured it, so never earlier.
        assert!(f.handed_off.max_ms >= f.sleeper.p50_ms, "{f:?}");
    }
}
