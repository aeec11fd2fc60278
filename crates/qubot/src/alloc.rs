//! The global allocator: mimalloc by default, the system allocator with `--features system-alloc`.

#[cfg(all(feature = "mimalloc", not(feature = "system-alloc")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Reported in `qubot_build_info{allocator}`.
pub const NAME: &str = if cfg!(all(feature = "mimalloc", not(feature = "system-alloc"))) {
    "mimalloc"
} else {
    "system"
};
