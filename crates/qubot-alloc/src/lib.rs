//! A global allocator that counts: wraps any other allocator and counts allocation calls
//! (process-wide and per thread) and live bytes, so a test or the bench harness can say how
//! much a hot path allocates. Install it with `#[global_allocator]`.
//!
//! Owns: the one counting allocator. A crate of its own, with no dependency at all, so that
//! `qubot-robot`'s tests and the bench harness share it without pulling in each other's crates.

use std::{
    alloc::{GlobalAlloc, Layout},
    cell::Cell,
    sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
};

/// Counts every call into `A`, then forwards it.
pub struct Counting<A>(pub A);

static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated and not yet freed: growth across a measurement is a leak.
static LIVE: AtomicI64 = AtomicI64::new(0);

thread_local! {
    // Const-initialised, no destructor: safe to touch from inside the allocator.
    static THREAD_ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// Allocation calls (alloc, alloc_zeroed, realloc) so far, all threads.
pub fn allocs() -> u64 {
    ALLOCS.load(Relaxed)
}

/// Allocation calls so far on this thread only (unaffected by other threads, e.g. a test
/// harness's).
pub fn thread_allocs() -> u64 {
    THREAD_ALLOCS.try_with(Cell::get).unwrap_or(0)
}

/// Bytes allocated and not yet freed, all threads.
pub fn live_bytes() -> i64 {
    LIVE.load(Relaxed)
}

fn count(grow: i64) {
    ALLOCS.fetch_add(1, Relaxed);
    LIVE.fetch_add(grow, Relaxed);
    let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `A`, which upholds GlobalAlloc's contract.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: the caller's layout, forwarded.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: the caller's layout, forwarded.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: `ptr` came from this allocator, that is from `A`, with this layout.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as GlobalAlloc::realloc, forwarded.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}
