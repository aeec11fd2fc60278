//! Holds Qubot's criterion benchmarks (`benches/`); no library code. Run them with
//! `cargo bench -p qubot-benches` (or `just bench-micro`).
