//! The harness's global allocator: mimalloc or the system allocator, chosen once per process
//! from `QUBOT_BENCH_ALLOC` (so one build measures both, interleaved in one run), wrapped in
//! `qubot_alloc`'s counters so a role can report allocations per message on its hot path.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    ffi::CStr,
    sync::atomic::{AtomicU8, Ordering::Relaxed},
};

use mimalloc::MiMalloc;
use qubot_alloc::Counting;

/// Environment variable the orchestrator sets for each child: `mimalloc` (default) or `system`.
pub const ENV: &str = "QUBOT_BENCH_ALLOC";

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// mimalloc or the system allocator, as this process chose.
pub struct Chosen;

#[global_allocator]
static GLOBAL: Counting<Chosen> = Counting(Chosen);

/// The allocator this process uses. Decided on the first allocation, before any thread
/// starts; `getenv` allocates nothing, so deciding cannot recurse.
fn choice() -> u8 {
    match CHOICE.load(Relaxed) {
        UNDECIDED => {
            // SAFETY: the name is a valid C string; nothing in this process calls setenv.
            let v = unsafe { libc::getenv(c"QUBOT_BENCH_ALLOC".as_ptr()) };
            let c = if !v.is_null() && unsafe { CStr::from_ptr(v) } == c"system" {
                SYSTEM
            } else {
                MIMALLOC
            };
            CHOICE.store(c, Relaxed);
            c
        }
        c => c,
    }
}

pub fn name() -> &'static str {
    if choice() == SYSTEM {
        "system"
    } else {
        "mimalloc"
    }
}

// SAFETY: every call forwards to one allocator, the same for the whole life of the process,
// so blocks are always freed by the allocator that made them.
unsafe impl GlobalAlloc for Chosen {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if choice() == SYSTEM {
            System.alloc(layout)
        } else {
            MiMalloc.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if choice() == SYSTEM {
            System.alloc_zeroed(layout)
        } else {
            MiMalloc.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if choice() == SYSTEM {
            System.dealloc(ptr, layout)
        } else {
            MiMalloc.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if choice() == SYSTEM {
            System.realloc(ptr, layout, new_size)
        } else {
            MiMalloc.realloc(ptr, layout, new_size)
        }
    }
}

/// A snapshot of the counters at one message, to difference against a later one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mark {
    pub msgs: u64,
    pub allocs: u64,
    pub live: i64,
    /// CPU time of the whole process so far (user + system), nanoseconds.
    pub cpu_ns: u64,
}

/// The kernel's CPU-time account of this process, user + system, all threads: what
/// `/proc/<pid>/stat` reports as utime + stime, read at nanosecond resolution instead of in
/// clock ticks. Allocates nothing.
pub fn process_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } != 0 {
        return 0;
    }
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Work a role does right before each mark so that the two marks see the process in the same
/// state (Qubot: drain metrics histograms, as a scrape would). Set once at start-up.
pub static SETTLE: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>> = std::sync::OnceLock::new();

impl Mark {
    /// Settles, then marks: for the two ends of a measurement.
    pub fn settled(msgs: u64) -> Mark {
        if let Some(f) = SETTLE.get() {
            f();
        }
        Mark::now(msgs)
    }

    pub fn now(msgs: u64) -> Mark {
        Mark {
            msgs,
            allocs: qubot_alloc::allocs(),
            live: qubot_alloc::live_bytes(),
            cpu_ns: process_cpu_ns(),
        }
    }

    /// Allocations per message between `self` and a later mark.
    pub fn per_msg_until(self, later: Mark) -> Option<f64> {
        let msgs = later.msgs.checked_sub(self.msgs).filter(|&m| m > 0)?;
        Some(later.allocs.saturating_sub(self.allocs) as f64 / msgs as f64)
    }

    /// CPU microseconds per message between `self` and a later mark.
    pub fn cpu_us_per_msg_until(self, later: Mark) -> Option<f64> {
        let msgs = later.msgs.checked_sub(self.msgs).filter(|&m| m > 0)?;
        Some(later.cpu_ns.saturating_sub(self.cpu_ns) as f64 / 1e3 / msgs as f64)
    }

    /// Heap bytes still held at `later` that were not held at `self`.
    pub fn live_growth_until(self, later: Mark) -> i64 {
        later.live - self.live
    }
}
