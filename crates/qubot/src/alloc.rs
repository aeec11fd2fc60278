//! The global allocator: mimalloc by default, the system allocator with `--features
//! system-alloc`, dhat's profiling allocator with `--features dhat-heap` (see `heap.rs`).

#[cfg(all(
    feature = "mimalloc",
    not(feature = "system-alloc"),
    not(feature = "dhat-heap")
))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

/// Reported in `qubot_build_info{allocator}`.
pub const NAME: &str = if cfg!(feature = "dhat-heap") {
    "dhat"
} else if cfg!(all(feature = "mimalloc", not(feature = "system-alloc"))) {
    "mimalloc"
} else {
    "system"
};
