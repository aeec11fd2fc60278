//! The foundation end to end: separate `qubot` processes on one host over real zenoh.

mod common;

use std::time::Duration;

use common::{counters::*, *};

const T: Duration = Duration::from_secs(30);

/// A listener with its own zenoh listen port and metrics port.
struct Listener {
    proc: Proc,
    endpoint: String,
    metrics: String,
}

fn listener(robot: &str, extra: &[&str]) -> Listener {
    let endpoint = format!("tcp/127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "listen",
        "--robot",
        robot,
        "--listen",
        &endpoint,
        "--metrics-addr",
        &metrics,
    ];
    args.extend_from_slice(extra);
    let proc = Proc::spawn("listen", &args);
    // Up once its inbox exists (the capacity gauge is set when it subscribes), not merely
    // once /metrics answers: the exporter starts before the subscription.
    wait_for("listener inbox", T, || {
        scrape(&metrics).filter(|t| t.contains("qubot_mailbox_capacity"))
    });
    Listener {
        proc,
        endpoint,
        metrics,
    }
}

fn flood(robot: &str, endpoint: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "flood",
        "--robot",
        robot,
        "--connect",
        endpoint,
        "--wait-subscriber",
        "20",
    ];
    args.extend_from_slice(extra);
    run_report(&args, Duration::from_secs(60))
}

fn clean_shm() {
    let (code, _, err) = run(&["clean-shm"], T);
    assert_eq!(code, 0, "clean-shm: {err}");
}

#[test]
fn payloads_cross_processes_in_shared_memory_and_are_read_in_place() {
    let _g = serial();
    let before = shm_files();
    for size in ["64", "4194304"] {
        let l = listener(
            "zc",
            &[
                "--key",
                "qubot/zc/sensor/*/ping",
                "--kind",
                "ping",
                "--print",
                "--count",
                "3",
            ],
        );
        let report = flood(
            "zc",
            &l.endpoint,
            &[
                "--kind",
                "ping",
                "--size",
                size,
                "--count",
                "3",
                "--rate",
                "20",
                "--shm-threshold",
                "0",
            ],
        );
        assert_eq!(report["sent"], 3);
        let (code, lines) = l.proc.finish(T);
        assert_eq!(code, 0, "listener exit");
        let msgs: Vec<_> = lines.iter().map(|l| json(l)).collect();
        assert_eq!(msgs.len(), 3, "{lines:?}");
        for m in &msgs {
            assert_eq!(
                m["payload_len"].as_u64().map(|n| n.to_string()),
                Some(size.to_string())
            );
            assert_eq!(m["shm"], true, "payload must arrive as shared memory: {m}");
            assert_eq!(
                m["payload_borrows_shm"], true,
                "decoded payload must point into the SHM buffer: {m}"
            );
            assert_eq!(m["fragmented"], false, "an SHM message arrives whole: {m}");
        }
    }
    // Look before cleaning: the processes have exited, so no new segment may still be mapped
    // by anyone (a holder would be a process that outlived its test). Segments held by no one
    // are zenoh's by design (a receiver maps every sender's pool for life, so the last process
    // out cannot unlink them): clean-shm must remove every one of them.
    let new: Vec<_> = shm_files().difference(&before).cloned().collect();
    let held: Vec<_> = new.iter().filter(|f| shm_holders(f).is_some()).collect();
    assert!(
        held.is_empty(),
        "SHM segments still mapped after the processes exited: {held:?}"
    );
    clean_shm();
    let left: Vec<_> = shm_files().difference(&before).cloned().collect();
    assert!(left.is_empty(), "SHM segments left behind: {left:?}");
}

#[test]
fn heap_publishing_is_not_shared_memory() {
    // The same probe says "not SHM" when the publisher has no pool: the SHM check can fail.
    let _g = serial();
    let l = listener(
        "heap",
        &[
            "--key",
            "qubot/heap/sensor/*/ping",
            "--kind",
            "ping",
            "--print",
            "--count",
            "2",
        ],
    );
    flood(
        "heap",
        &l.endpoint,
        &[
            "--kind",
            "ping",
            "--size",
            "1024",
            "--count",
            "2",
            "--shm-pool-mib",
            "0",
        ],
    );
    let (code, lines) = l.proc.finish(T);
    assert_eq!(code, 0, "listener exit");
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(json(line)["shm"], false, "{line}");
    }
}

#[test]
fn malformed_input_is_counted_by_reason_and_the_receiver_keeps_running() {
    let _g = serial();
    let mut l = listener("bad", &["--key", "qubot/bad/sensor/*/scan"]);
    let report = run_report(
        &[
            "inject",
            "--robot",
            "bad",
            "--connect",
            &l.endpoint,
            "--key",
            "qubot/bad/sensor/lidar0/scan",
            "--count",
            "4",
        ],
        T,
    );
    assert_eq!(report["total"], 36);
    // 9 kinds x 4: each lands under its reason (garbage has a bad magic; bad body and
    // trailing bytes are malformed).
    let expect = [
        ("bad_magic", 8.0),
        ("truncated", 8.0),
        ("bad_version", 4.0),
        ("bad_kind", 4.0),
        ("oversize", 4.0),
        ("malformed", 8.0),
    ];
    let m = wait_for("drops counted", T, || {
        let m = metrics(&l.metrics)?;
        let total = sum(&m, "qubot_messages_dropped_total", &[("actor", "listen")]);
        (total >= 36.0).then_some(m)
    });
    for (reason, n) in expect {
        assert_eq!(
            sum(
                &m,
                "qubot_messages_dropped_total",
                &[("actor", "listen"), ("topic", "scan"), ("reason", reason)]
            ),
            n,
            "reason {reason}"
        );
    }
    assert_eq!(
        sum(&m, "qubot_messages_received_total", &[("actor", "listen")]),
        0.0
    );
    assert!(l.proc.is_running(), "the receiver must survive bad input");
    // ...and still handles good messages.
    let report = flood(
        "bad",
        &l.endpoint,
        &[
            "--key",
            "qubot/bad/sensor/lidar0/scan",
            "--count",
            "5",
            "--rate",
            "50",
        ],
    );
    assert_eq!(report["sent"], 5);
    wait_for("good messages after bad ones", T, || {
        let m = metrics(&l.metrics)?;
        (sum(
            &m,
            "qubot_messages_received_total",
            &[("actor", "listen"), ("topic", "scan")],
        ) == 5.0)
            .then_some(())
    });
}

/// Floods a slow listener twice: drops are counted under the policy's reason, and
/// published = received + dropped + in flight after each flood; the second flood, after
/// warm-up, does not grow the listener's memory (nothing queues without bound).
fn overflow(policy: &str, reason: &str, capacity: &str) {
    let robot = format!("ovf-{policy}");
    let key = format!("qubot/{robot}/sensor/*/ping");
    let mut l = listener(
        &robot,
        &[
            "--key",
            &key,
            "--kind",
            "ping",
            "--mailbox",
            capacity,
            "--policy",
            policy,
            // 20 ms per message: the listener handles at most 50/s against a flood of 500/s.
            "--handler-delay-us",
            "20000",
        ],
    );
    let mut published = 0.0;
    let mut rss = Vec::new();
    for _round in 0..2 {
        // Heap publishing: every queued message would sit in the listener's own memory.
        let report = flood(
            &robot,
            &l.endpoint,
            &[
                "--kind",
                "ping",
                "--size",
                "65536",
                "--count",
                "600",
                // Paced: sensor topics are best effort, and an unpaced flood of 64 KiB messages
                // is mostly dropped by zenoh itself (counted `lost`; once 598 of 600), so it
                // would never reach the inbox whose policy this test is about.
                "--rate",
                "500",
                "--shm-pool-mib",
                "0",
            ],
        );
        assert_eq!(report["sent"], 600);
        published += 600.0;
        let m = wait_accounting(&l.metrics, published);
        let by_policy = sum(
            &m,
            "qubot_messages_dropped_total",
            &[("actor", "listen"), ("reason", reason)],
        );
        let listen: Vec<_> = m
            .iter()
            .filter(|s| {
                s.name.starts_with("qubot_messages_") && s.labels.get("actor").is_some_and(|a| a == "listen")
            })
            .collect();
        assert!(
            by_policy > 0.0,
            "a flood into a slow consumer must drop under {reason}: {listen:?}"
        );
        rss.push(l.proc.rss_bytes() as f64);
    }
    // 600 x 64 KiB is ~38 MiB: an unbounded queue would grow by that much per round.
    let growth = rss[1] - rss[0];
    assert!(
        growth < 8.0 * 1024.0 * 1024.0,
        "RSS grew by {growth} bytes after warm-up: {rss:?}"
    );
    assert!(l.proc.is_running());
}

/// Waits until every published message is accounted for: handled, or dropped with a reason
/// (inbox policy, decode error, or a transport gap), with nothing left in the inbox.
fn wait_accounting(addr: &str, published: f64) -> Vec<Sample> {
    let mut last = (0.0, 0.0, 0.0);
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Some(m) = metrics(addr) {
            let received = sum(&m, "qubot_messages_received_total", &[("actor", "listen")]);
            let dropped = sum(&m, "qubot_messages_dropped_total", &[("actor", "listen")]);
            let depth = sum(&m, "qubot_mailbox_depth", &[("actor", "listen")]);
            if received + dropped + depth == published && depth == 0.0 {
                return m;
            }
            last = (received, dropped, depth);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "accounting did not close: published {published}, (received, dropped, depth) = {last:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn overflow_drop_newest() {
    let _g = serial();
    overflow("newest", "mailbox_full", "8");
}

#[test]
fn overflow_keep_latest() {
    let _g = serial();
    overflow("keep-latest", "superseded", "1");
}

#[test]
fn metrics_page_is_prometheus_text_with_build_info() {
    let _g = serial();
    let l = listener("mx", &[]);
    let text = scrape(&l.metrics).expect("scrape");
    let samples = parse_metrics(&text).expect("valid exposition format");
    let info: Vec<_> = samples.iter().filter(|s| s.name == "qubot_build_info").collect();
    assert_eq!(info.len(), 1, "{text}");
    assert_eq!(info[0].value, 1.0);
    assert_eq!(
        info[0].labels.get("allocator").map(String::as_str),
        Some(qubot::ALLOCATOR),
        "the allocator this build links"
    );
    assert_eq!(
        info[0].labels.get("version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(info[0].labels.get("robot").map(String::as_str), Some("mx"));
    assert!(info[0].labels.contains_key("host"));
    assert!(sum(&samples, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(text.contains("# TYPE qubot_mailbox_capacity gauge"), "{text}");
}

#[test]
fn bad_arguments_fail_before_anything_starts() {
    let cases: &[(&[&str], &str)] = &[
        (&["listen", "--policy", "lifo"], "--policy"),
        (&["listen", "--robot", "a/b"], "--robot"),
        (&["flood", "--rate", "nan"], "--rate"),
        (
            &["listen", "--zenoh-config", "/nonexistent/zenoh.json5"],
            "/nonexistent/zenoh.json5",
        ),
        (&["listen", "--cfg", "mode=\"emperor\""], "mode"),
        (&["listen", "--cfg", "novalue"], "KEY=VALUE"),
        (&["bogus-mode"], "bogus-mode"),
    ];
    for (args, needle) in cases {
        let (code, _, err) = run(args, T);
        assert_ne!(code, 0, "{args:?} must fail");
        assert!(err.contains(needle), "{args:?}: error must name {needle}: {err}");
    }
}
