//! What both implementations' roles measure with: the publishing loop (paced or flat out,
//! allocations counted over the measured part) and the receive-side meter.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::Context;

use super::{RoleArgs, RoleReport};
use crate::alloc::{self, Mark};

/// Publishes warm-up plus `count` messages, paced at `rate` when it is set, within the
/// deadline; counts allocations and CPU time over the measured part.
pub fn publish_loop(
    args: &RoleArgs,
    mut publish: impl FnMut(u64) -> anyhow::Result<()>,
) -> anyhow::Result<RoleReport> {
    let deadline = args.deadline();
    let period = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let start = Instant::now();
    let mut first = None;
    let total = args.warmup + args.count;
    let mut i = 0;
    while i < total && Instant::now() < deadline {
        if let Some(period) = period {
            let due = start + period * i as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        if i == args.warmup {
            first = Some((Instant::now(), Mark::settled(i)));
        }
        publish(i).with_context(|| format!("publishing message {i}"))?;
        i += 1;
    }
    let (t0, m0) = first.unwrap_or((Instant::now(), Mark::settled(i)));
    let end = Mark::settled(i);
    Ok(RoleReport {
        messages: i.saturating_sub(args.warmup),
        seconds: t0.elapsed().as_secs_f64(),
        allocs_per_msg: m0.per_msg_until(end),
        cpu_us_per_msg: m0.cpu_us_per_msg_until(end),
        live_growth_bytes: m0.live_growth_until(end),
        allocator: alloc::name().into(),
        ..Default::default()
    })
}

/// Receive-side counting shared by both implementations' sinks: message count, the time,
/// allocation count and CPU time at the first measured message and at the latest one.
#[derive(Default)]
pub struct SinkMeter {
    count: AtomicU64,
    marks: Mutex<Option<(Instant, Mark, Instant, Mark)>>,
}

impl SinkMeter {
    /// Marks the first measured message and the last one expected (settled: both ends see
    /// the process in the same state); if messages were lost, the latest one stands in.
    pub fn on_message(&self, warmup: u64, total: u64) {
        let n = self.count.fetch_add(1, Relaxed) + 1;
        if n <= warmup {
            return;
        }
        let now = Instant::now();
        let first = n == warmup + 1;
        let mark = if first || n == total {
            Mark::settled(n)
        } else {
            Mark::now(n)
        };
        let mut g = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            None => *g = Some((now, mark, now, mark)),
            Some(m) => {
                m.2 = now;
                m.3 = mark;
            }
        }
    }

    /// Blocks until `warmup + count` messages arrived, the stream went quiet for a second
    /// after it started, or the deadline passed.
    pub fn wait_done(&self, args: &RoleArgs) -> RoleReport {
        let deadline = args.deadline() + Duration::from_secs(10);
        let want = args.warmup + args.count;
        let mut last = (0, Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let n = self.count.load(Relaxed);
            let now = Instant::now();
            if n != last.0 {
                last = (n, now);
            }
            let quiet = n > 0 && now - last.1 > Duration::from_secs(1);
            if n >= want || quiet || now > deadline {
                break;
            }
        }
        let g = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        let (seconds, messages, allocs_per_msg, cpu_us_per_msg, live_growth_bytes) = match *g {
            Some((t0, m0, t1, m1)) => (
                (t1 - t0).as_secs_f64(),
                m1.msgs - m0.msgs,
                m0.per_msg_until(m1),
                m0.cpu_us_per_msg_until(m1),
                m0.live_growth_until(m1),
            ),
            None => (0.0, 0, None, None, 0),
        };
        RoleReport {
            messages,
            seconds,
            allocs_per_msg,
            cpu_us_per_msg,
            live_growth_bytes,
            allocator: alloc::name().into(),
            ..Default::default()
        }
    }
}
