//! The heap test: messages through the bus and an actor's inbox cost Qubot no allocation per
//! message in steady state.
//!
//! Each case runs real publisher and subscriber processes (the bench harness) with a
//! counting allocator, once as raw zenoh and once through Qubot, and compares: zenoh's own
//! allocations per message are the floor; Qubot must add nothing to it. Every leak and every
//! buffer that grows with the message count goes through an allocation (or a reallocation,
//! also counted), so it fails this test too. Live heap growth is in the JSON for reading but
//! not asserted: histogram samples are freed by deferred (epoch) reclamation after a scrape,
//! so the live figure at any instant carries the last scrape window's samples.
//!
//! zenoh's own allocations per message depend on how its batches happen to fall, so one raw
//! run against one Qubot run measures the machine's weather as much as Qubot: raw and Qubot
//! alternate for five rounds, each round's difference (its two runs back to back, under the
//! same load) is taken, and the median difference is checked; the cases run one at a time
//! (never beside each other on two cores).

use std::{process::Command, sync::Mutex};

use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

fn case(transport: &str, payload: usize, count: u64) -> Value {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_qubot-bench"))
        .args(["allocs", "--transport", transport, "--rounds", "5"])
        .args(["--payload", &payload.to_string(), "--count", &count.to_string()])
        .output()
        .expect("running qubot-bench");
    assert!(
        out.status.success(),
        "qubot-bench allocs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a JSON line");
    serde_json::from_str(last).expect("valid JSON")
}

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {v}"))
}

fn check(transport: &str, payload: usize) {
    let count = 6000;
    let v = case(transport, payload, count);
    eprintln!("{v}");
    assert!(
        v["messages"].as_u64().unwrap_or(0) >= count * 9 / 10,
        "the subscriber must see the messages: {v}"
    );
    // Per-message allocations Qubot adds over raw zenoh: < 0.1 means none on the hot path
    // (amortised bookkeeping such as a histogram block every few hundred records remains).
    let extra_pub = num(&v, "extra_allocs_per_msg_pub");
    let extra_sub = num(&v, "extra_allocs_per_msg_sub");
    assert!(
        extra_pub < 0.1,
        "publisher: Qubot allocates {extra_pub:.2} more per message than zenoh: {v}"
    );
    assert!(
        extra_sub < 0.1,
        "subscriber: Qubot allocates {extra_sub:.2} more per message than zenoh: {v}"
    );
}

#[test]
fn shm_small_messages_allocate_nothing_per_message() {
    check("shm", 64);
}

#[test]
fn shm_bulk_messages_allocate_nothing_per_message() {
    check("shm", 64 << 10);
}
