//! Periodic work on absolute deadlines: tick k is due at `t0 + k·period` on the monotonic clock,
//! so the period never drifts by the time each tick takes to run, and a tick that comes too
//! late is skipped and counted instead of bunched behind the others.
//!
//! Each timer has a small thread of its own that sleeps until the next deadline (the kernel's
//! high-resolution sleep: tokio's timer wheel, which actix's `run_interval` uses, rounds every
//! wake-up up to the next millisecond) and posts a [`Tick`] to the actor. The actor runs its
//! work in its own thread as before; [`Tick::on_time`] measures how late it got there.
//! docs/ARCHITECTURE.md, "Timeliness", says what is counted where.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message};
use metrics::{Counter, Histogram};
use qubot_bus::telemetry;

/// Deadline arithmetic, without a clock or a thread.
#[derive(Debug, Clone)]
pub struct Deadlines {
    t0: Instant,
    period_ns: u64,
    next: u64,
}

/// What waking up at some instant means: run tick `k` (due at `due`), `missed` ticks before it
/// were too late to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub k: u64,
    pub due: Instant,
    pub missed: u64,
}

impl Deadlines {
    /// Tick 0 is due at `t0`.
    pub fn new(t0: Instant, period: Duration) -> Deadlines {
        Deadlines {
            t0,
            period_ns: (period.as_nanos() as u64).max(1),
            next: 0,
        }
    }

    fn at(&self, k: u64) -> Instant {
        self.t0 + Duration::from_nanos(self.period_ns.saturating_mul(k))
    }

    /// When the next tick is due.
    pub fn next_due(&self) -> Instant {
        self.at(self.next)
    }

    /// Woken at `now` (at or after [`Deadlines::next_due`]): the latest deadline not after
    /// `now` runs; the ones between it and the last tick run are missed. Woken early, the next
    /// deadline runs (the caller slept until it; a clock a hair behind is not a stall).
    pub fn wake(&mut self, now: Instant) -> Due {
        let elapsed = now.saturating_duration_since(self.t0).as_nanos() as u64;
        let k = (elapsed / self.period_ns).max(self.next);
        let missed = k - self.next;
        self.next = k + 1;
        Due {
            k,
            due: self.at(k),
            missed,
        }
    }
}

/// Posted to an actor when its timer `kind` is due. `K` names the actor's timers (an enum), so
/// one actor with several timers handles them in one `Handler<Tick<K>>`.
pub struct Tick<K> {
    pub kind: K,
    pub due: Instant,
    shared: Arc<Shared>,
}

impl<K: 'static> Message for Tick<K> {
    type Result = ();
}

/// What the timer thread and the actor share: whether a tick is still waiting to run (the
/// thread does not post another behind it), and the timer's meters.
struct Shared {
    pending: AtomicBool,
    period: Duration,
    /// When the last tick ran, in ns after `epoch` (0: none yet).
    last_run_ns: AtomicU64,
    epoch: Instant,
    lateness: Histogram,
    intervals: Histogram,
    /// How long the actor's work for a tick took (`qubot_handler_duration_seconds` with the
    /// timer's name as `message`): what makes the next tick late, or blocks it.
    work: Histogram,
    missed: Counter,
}

/// A tick being run: its work's duration is recorded when this is dropped (at the end of the
/// handler).
#[must_use = "the tick's work is timed until this is dropped"]
pub struct TickRun {
    started: Instant,
    work: Histogram,
}

impl Drop for TickRun {
    fn drop(&mut self) {
        self.work.record(self.started.elapsed().as_secs_f64());
    }
}

impl<K> Tick<K> {
    /// Called first thing by the handler at `now`: records how late the tick is (and the time
    /// since the last tick ran), and says whether to run it: `Some` times the work until it is
    /// dropped. A tick a whole period late or more is skipped (counted as missed): the next
    /// one is due already, and running both would bunch them.
    pub fn on_time(&self, now: Instant) -> Option<TickRun> {
        self.shared.pending.store(false, Ordering::Release);
        let late = now.saturating_duration_since(self.due);
        if late >= self.shared.period {
            self.shared.missed.increment(1);
            return None;
        }
        self.shared.lateness.record(late.as_secs_f64());
        let ran = now.saturating_duration_since(self.shared.epoch).as_nanos() as u64;
        let last = self.shared.last_run_ns.swap(ran.max(1), Ordering::Relaxed);
        if last != 0 {
            self.shared
                .intervals
                .record(ran.saturating_sub(last) as f64 * 1e-9);
        }
        Some(TickRun {
            started: now,
            work: self.shared.work.clone(),
        })
    }
}

/// One periodic timer of an actor: its kind, the `timer` label of its metrics, its period.
#[derive(Debug, Clone, Copy)]
pub struct Timer<K> {
    pub kind: K,
    pub name: &'static str,
    pub period: Duration,
}

/// Starts `timer` for the actor at `addr`: first tick one period from now. The thread ends
/// when the actor is gone. `on_start` runs on the timer thread before its first sleep (the
/// realtime profile's hook: scheduling policy and CPU affinity are per thread).
pub fn start<A, K>(
    addr: Addr<A>,
    actor: &'static str,
    timer: Timer<K>,
    on_start: impl FnOnce() + Send + 'static,
) -> std::io::Result<()>
where
    A: Actor + Handler<Tick<K>>,
    A::Context: ToEnvelope<A, Tick<K>>,
    K: Copy + Send + 'static,
{
    let shared = Arc::new(Shared {
        pending: AtomicBool::new(false),
        period: timer.period,
        lateness: metrics::histogram!(
            telemetry::TICK_LATENESS, "actor" => actor, "timer" => timer.name
        ),
        intervals: metrics::histogram!(
            telemetry::TICK_PERIOD, "actor" => actor, "timer" => timer.name
        ),
        work: metrics::histogram!(
            telemetry::HANDLER_DURATION, "actor" => actor, "message" => timer.name
        ),
        missed: metrics::counter!(telemetry::TICKS_MISSED, "actor" => actor, "timer" => timer.name),
        last_run_ns: AtomicU64::new(0),
        epoch: Instant::now(),
    });
    let mut deadlines = Deadlines::new(Instant::now() + timer.period, timer.period);
    std::thread::Builder::new()
        .name(format!("tick-{}", timer.name))
        .spawn(move || {
            on_start();
            while addr.connected() {
                let due = deadlines.next_due();
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let d = deadlines.wake(Instant::now());
                if d.missed > 0 {
                    shared.missed.increment(d.missed);
                }
                // The actor has not run the last tick yet (busy, or stopped with us): this one
                // would only queue behind it.
                if shared.pending.swap(true, Ordering::AcqRel) {
                    shared.missed.increment(1);
                    continue;
                }
                addr.do_send(Tick {
                    kind: timer.kind,
                    due: d.due,
                    shared: shared.clone(),
                });
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_millis(50);

    #[test]
    fn deadlines_do_not_drift_however_late_each_tick_runs() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(t0, P);
        // Each wake-up 3 ms late (the work, the scheduler): the deadlines stay on the grid.
        for k in 0..100_000u64 {
            let woke = d.next_due() + Duration::from_millis(3);
            let due = d.wake(woke);
            assert_eq!(due.k, k);
            assert_eq!(due.missed, 0);
            assert_eq!(due.due, t0 + P * k as u32);
        }
        assert_eq!(d.next_due(), t0 + P * 100_000);
    }

    #[test]
    fn a_stall_is_counted_as_missed_ticks_and_nothing_is_bunched() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(t0, P);
        for _ in 0..10 {
            let w = d.next_due();
            d.wake(w);
        }
        // Stopped for 1 s (SIGSTOP) after tick 9: at 20 Hz, about 20 ticks could not run.
        let woke = t0 + P * 9 + Duration::from_millis(1_010);
        let due = d.wake(woke);
        assert_eq!(due.k, 29, "the latest deadline runs, not the oldest");
        assert_eq!(due.missed, 19);
        assert!(woke - due.due < P, "what runs is less than a period late");
        // And the grid holds right after: the next tick is the next deadline, once.
        let next = d.next_due();
        assert_eq!(next, t0 + P * 30);
        let due = d.wake(next);
        assert_eq!((due.k, due.missed), (30, 0));
    }

    #[test]
    fn an_early_wake_runs_the_next_deadline_once() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(t0, P);
        let first = d.wake(t0);
        assert_eq!((first.k, first.missed), (0, 0));
        // Woken a hair before tick 1 (a coarse clock): tick 1 runs, and tick 2 comes next.
        let due = d.wake(t0 + P - Duration::from_micros(1));
        assert_eq!((due.k, due.missed), (1, 0));
        assert_eq!(d.next_due(), t0 + P * 2);
    }
}
