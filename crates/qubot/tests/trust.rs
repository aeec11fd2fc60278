//! Only the robot's own actors steer it (docs/ARCHITECTURE.md §4a), with real processes over real zenoh:
//! consumers are bound to their configured producer's per-start source id; anything else on
//! the key is decoded, counted as `foreign` and never acted on; the pose comes from odometry;
//! freshness is judged from the capture time; untrusted input is bounded.

mod common;

use std::time::Duration;

use common::{counters::*, pipeline::*, *};

const T: Duration = Duration::from_secs(60);

/// Waits until `actor`'s drop counter for `reason` on `topic` reaches `n` (exactly: more
/// would mean something else was dropped the same way).
fn wait_dropped(addr: &str, actor: &str, topic: &str, reason: &str, n: f64) {
    let got = wait_for(&format!("{actor} {topic} dropped as {reason} >= {n}"), T, || {
        dropped_at(addr, &[("actor", actor), ("topic", topic), ("reason", reason)]).filter(|&v| v >= n)
    });
    assert_eq!(got, n, "{actor} {topic} {reason}");
}

/// `qubot inject` onto a running pipeline; returns its JSON report.
fn inject(hub: &str, robot: &str, key: &str, what: &str, count: u64, extra: &[&str]) -> serde_json::Value {
    let count_s = count.to_string();
    let mut args = vec![
        "inject",
        "--robot",
        robot,
        "--connect",
        hub,
        "--key",
        key,
        "--what",
        what,
        "--count",
        &count_s,
    ];
    args.extend_from_slice(extra);
    run_report(&args, T)
}

fn start_of(world: &str) -> (f64, f64) {
    let w = qubot_robot::World::resolve(world, std::path::Path::new(WORLDS_DIR)).expect("world");
    (w.start.x, w.start.y)
}

fn assert_at(report: &RunReport, at: (f64, f64)) {
    let [x, y, _] = report.final_pose.expect("final pose");
    assert!(
        (x - at.0).abs() < 1e-6 && (y - at.1).abs() < 1e-6,
        "the robot moved to ({x}, {y}) from {at:?}: {report:?}"
    );
}

/// The flood of the README's load script, at 10x the sensor's rate on its real key with
/// pose (0, 0) and free space: decoded and counted as foreign, the robot reaches its goal.
#[test]
fn a_foreign_scan_flood_never_steers_the_robot() {
    let _g = serial();
    let up = Up::start("flooded", "corridor", &["--exit-on-goal", "--timeout", "120"]);
    wait_driving(&up, 5.0);
    let hub = up.hub.clone();
    let report = run_report(
        &[
            "flood",
            "--robot",
            "flooded",
            "--connect",
            &hub,
            "--wait-subscriber",
            "10",
            "--rate",
            "200",
            "--duration",
            "6",
            "--count",
            "1200",
        ],
        T,
    );
    let sent = report["sent"].as_f64().expect("sent");
    assert!(sent >= 1000.0, "the flood ran: {report}");
    // Best effort: a scan the transport dropped is counted `lost` by sequence, not foreign.
    let planner = up.metrics_of(2);
    let counted = wait_for("every flood scan counted", T, || {
        let m = metrics(&planner)?;
        let f = |r| {
            sum(
                &m,
                "qubot_messages_dropped_total",
                &[("actor", "planner"), ("topic", "scan"), ("reason", r)],
            )
        };
        let (foreign, lost) = (f("foreign"), f("lost"));
        (foreign + lost >= sent).then_some((foreign, lost))
    });
    assert!(
        counted.0 >= sent * 0.95,
        "flood scans counted as foreign: {counted:?} of {sent}"
    );
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_clean_run(&report);
}

/// A well-formed, fresh, full-speed command stream at 100 Hz from a stranger: with no planner
/// running, the robot never moves; every command is counted as foreign.
#[test]
fn a_foreign_command_stream_never_moves_the_robot() {
    let _g = serial();
    let cfg = TempFile::toml("trust-nocmd", "[planner]\nenabled = false\n");
    let up = Up::start("strangers", "default", &["--config", &cfg.arg()]);
    up.spawned("actuator");
    wait_for("the actuator's /metrics", T, || metrics(&up.metrics_of(3)));
    let hub = up.hub.clone();
    let key = "qubot/strangers/planner/main/cmd";
    inject(&hub, "strangers", key, "drive-command", 200, &["--rate", "100"]);
    wait_dropped(&up.metrics_of(3), "actuator", "cmd", "foreign", 200.0);
    let m = metrics(&up.metrics_of(3)).expect("actuator metrics");
    assert_eq!(
        sum(&m, "qubot_pipeline_latency_seconds_count", &[]),
        0.0,
        "nothing applied"
    );
    up.proc.signal("INT");
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_at(&report, start_of("default"));
}

/// Another source's state (the robot somewhere else entirely) moves neither the simulated
/// lidar nor the referee's judged pose.
#[test]
fn foreign_state_moves_neither_the_sensor_nor_the_referee() {
    let _g = serial();
    let cfg = TempFile::toml("trust-nostate", "[planner]\nenabled = false\n");
    let up = Up::start("mirage", "default", &["--config", &cfg.arg()]);
    up.spawned("sensor");
    wait_for("the sensor's /metrics", T, || metrics(&up.metrics_of(1)));
    let hub = up.hub.clone();
    inject(
        &hub,
        "mirage",
        "qubot/mirage/actuator/base/state",
        "far-state",
        100,
        // State has two subscribers here (supervisor and sensor): the first to match must
        // not start the storm before the link to the other exists. Three peers: supervisor,
        // sensor, actuator.
        &["--rate", "100", "--wait-peers", "3"],
    );
    wait_dropped(&up.metrics_of(1), "sensor", "state", "foreign", 100.0);
    wait_dropped(&up.metrics_of(0), "supervisor", "state", "foreign", 100.0);
    up.proc.signal("INT");
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_at(&report, start_of("default"));
    assert_eq!(report.collisions, 0, "{report:?}");
}

/// A replay: a scan captured 2 s ago from the bound sensor is not planned on, and a command
/// planned on such a scan (deadline = capture + budget) is not applied.
#[test]
fn a_replayed_scan_and_a_plan_made_on_it_are_stale() {
    let _g = serial();
    // The injector stands in for the sensor and the planner (their liveliness tokens, its
    // source id), so the checks judged are freshness, not source.
    let cfg = TempFile::toml(
        "trust-replay",
        "[sensor]\nenabled = false\n[planner]\nenabled = false\n",
    );
    let up = Up::start("replay", "default", &["--config", &cfg.arg()]);
    up.spawned("actuator");
    wait_for("the actuator's /metrics", T, || metrics(&up.metrics_of(3)));
    let hub = up.hub.clone();
    // The planner alone, bound to the injector-as-sensor: started by hand on this robot.
    let planner_port = free_port().to_string();
    let node = TempFile::toml(
        "trust-replay-planner",
        &format!("robot = \"replay\"\n[zenoh]\nhub = \"{hub}\"\n"),
    );
    let planner = Proc::spawn(
        "qubot planner",
        &[
            "planner",
            "--config",
            &node.arg(),
            "--metrics-addr",
            &format!("127.0.0.1:{planner_port}"),
        ],
    );
    let paddr = format!("127.0.0.1:{planner_port}");
    wait_for("the planner's /metrics", T, || metrics(&paddr));
    inject(
        &hub,
        "replay",
        "qubot/replay/sensor/lidar0/scan",
        "stale-scan",
        5,
        // At the sensor's pace: each one is planned on or refused, none superseded.
        &["--as-producer", "--rate", "20"],
    );
    wait_dropped(&paddr, "planner", "scan", "stale", 5.0);
    let m = metrics(&paddr).expect("planner metrics");
    assert_eq!(
        sum(&m, "qubot_messages_published_total", &[("topic", "cmd")]),
        0.0,
        "no plan from a replay"
    );
    drop(planner);
    inject(
        &hub,
        "replay",
        "qubot/replay/planner/main/cmd",
        "stale-command",
        5,
        &["--as-producer", "--rate", "20"],
    );
    wait_dropped(&up.metrics_of(3), "actuator", "cmd", "stale", 5.0);
    up.proc.signal("INT");
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_at(&report, start_of("default"));
}

/// kill -9 of the sensor: the planner binds to its successor's new id by itself, the loop
/// resumes, and the dead sensor's id is foreign from then on.
#[test]
fn a_restarted_sensor_is_rebound_and_its_old_id_refused() {
    let _g = serial();
    let up = Up::start("rebind", "corridor", &["--timeout", "120"]);
    let sensor = up.spawned("sensor");
    wait_driving(&up, 5.0);
    let hub = up.hub.clone();
    let key = "qubot/rebind/sensor/lidar0/scan";
    let (code, out, err) = run(
        &[
            "listen",
            "--robot",
            "rebind",
            "--connect",
            &hub,
            "--key",
            key,
            "--print",
            "--count",
            "1",
        ],
        T,
    );
    assert_eq!(code, 0, "listen: {err}");
    let old = json(out.lines().next().expect("a scan"))["source"]
        .as_str()
        .expect("source")
        .to_owned();
    signal_pid(sensor, "KILL");
    let respawned = up.spawned("sensor");
    assert_ne!(respawned, sensor);
    let planner = up.metrics_of(2);
    wait_for("the planner re-bound", T, || {
        let m = metrics(&planner)?;
        (sum(&m, "qubot_rebinds_total", &[("producer", "sensor")]) >= 1.0).then_some(())
    });
    let applied = actuator_metric(
        &up,
        "qubot_messages_received_total",
        &[("actor", "actuator"), ("topic", "cmd")],
    )
    .expect("applied");
    wait_driving(&up, applied + 20.0);
    let before = dropped_at(
        &planner,
        &[("actor", "planner"), ("topic", "scan"), ("reason", "foreign")],
    )
    .expect("planner metrics");
    inject(&hub, "rebind", key, "stale-scan", 5, &["--source", &old]);
    wait_dropped(&planner, "planner", "scan", "foreign", before + 5.0);
    up.proc.signal("INT");
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_eq!(report.collisions, 0, "{report:?}");
}

/// Bounds on untrusted input: a million fake source ids do not grow a receiver's memory (its
/// sequence tracker is capped), and a 16 Mi-beam scan is refused as `oversize` before any
/// buffer is sized by it.
#[test]
fn untrusted_input_is_bounded() {
    let _g = serial();
    let port = free_port();
    let listen = format!("tcp/127.0.0.1:{port}");
    let maddr = format!("127.0.0.1:{}", free_port());
    let mut probe = Proc::spawn(
        "qubot listen",
        &[
            "listen",
            "--robot",
            "bounds",
            "--listen",
            &listen,
            "--key",
            "qubot/bounds/sensor/*/scan",
            "--metrics-addr",
            &maddr,
        ],
    );
    wait_for("the listener's inbox", T, || {
        metrics(&maddr).filter(|m| m.iter().any(|s| s.name == "qubot_mailbox_depth"))
    });
    // A first million sizes what a burst of a million messages costs anyway (zenoh's buffers,
    // histogram samples until a scrape); a second million distinct sources must then cost
    // nothing more: per-source state is capped (an unbounded tracker grows by tens of MiB).
    // The bursts are paced and RSS is read only once the inbox is empty and RSS has settled:
    // queued messages keep zenoh's receive batches alive, so a backlog (a busy machine) would
    // otherwise show up as growth that has nothing to do with the tracker (up to 11 MiB seen
    // unpaced on a loaded machine, up to 3.2 MiB paced). An unbounded tracker costs tens of
    // bytes per source: tens of MiB per million, far above the 12 MiB bound.
    let burst = |n: f64| {
        inject(
            &listen,
            "bounds",
            "qubot/bounds/sensor/fake/scan",
            "distinct-sources",
            1_000_000,
            &["--rate", "100000"],
        );
        wait_for("evictions counted", T, || {
            let m = metrics(&maddr)?;
            let e = sum(&m, "qubot_sequence_sources_evicted_total", &[]);
            (e >= n - 64.0).then_some(e)
        })
    };
    let settled_rss = || {
        wait_for("an empty inbox", T, || {
            let m = metrics(&maddr)?;
            (sum(&m, "qubot_mailbox_depth", &[]) == 0.0).then_some(())
        });
        let mut last = probe.rss_bytes();
        wait_for("RSS to settle", T, || {
            std::thread::sleep(Duration::from_millis(250));
            let now = probe.rss_bytes();
            let settled = now.abs_diff(last) < 256 << 10;
            last = now;
            settled.then_some(now)
        })
    };
    burst(1_000_000.0);
    let before = settled_rss();
    let evicted = burst(2_000_000.0);
    let grown = settled_rss().saturating_sub(before) as f64 / (1 << 20) as f64;
    eprintln!("second million of fake sources: RSS {grown:+.2} MiB, {evicted} evictions");
    assert!(
        grown < 12.0,
        "1M more fake sources grew the receiver by {grown:.1} MiB ({evicted} evictions)"
    );
    assert!(probe.is_running());
    drop(probe);

    let up = Up::start("huge", "default", &["--timeout", "60"]);
    wait_driving(&up, 5.0);
    let hub = up.hub.clone();
    inject(&hub, "huge", "qubot/huge/sensor/lidar0/scan", "huge-scan", 2, &[]);
    wait_dropped(&up.metrics_of(2), "planner", "scan", "oversize", 2.0);
    wait_driving(&up, 40.0);
    up.proc.signal("INT");
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_eq!(report.restarts["planner"], 0, "{report:?}");
}

/// Clocks across hosts (simulated on one: `QUBOT_CLOCK_OFFSET_MS` puts a process's clock off
/// by that much): `qubot health` measures every process's clock against its own, within half a
/// round trip, and fails naming the bound when the robot is further off than it allows.
#[test]
fn health_measures_clock_skew_and_fails_above_the_bound() {
    let _g = serial();
    let (cfg, file) = isolated("skewed");
    let skew_ms = 40.0;
    assert!(
        skew_ms > cfg.max_clock_skew_ms,
        "the test needs a skew above the bound"
    );
    let mut c = std::process::Command::new(QUBOT);
    c.args(["up", "--config"])
        .arg(file.path())
        .env("RUST_LOG", "warn")
        .env(qubot::CLOCK_OFFSET_ENV, skew_ms.to_string());
    let up = Proc::from_command("qubot up (clock 40 ms ahead)", c);
    let health = |probe_offset: f64| {
        let out = std::process::Command::new(QUBOT)
            .args(["health", "--timeout", "30", "--config"])
            .arg(file.path())
            .env("RUST_LOG", "warn")
            .env(qubot::CLOCK_OFFSET_ENV, probe_offset.to_string())
            .output()
            .expect("qubot health");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let report = json(stdout.lines().last().expect("health report"));
        (
            out.status.code(),
            report,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A probe on the pipeline's own (skewed) clock: nothing is off.
    let (code, same, err) = health(skew_ms);
    assert_eq!(code, Some(0), "{same} {err}");
    // A probe on the true clock: every process is 40 ms ahead.
    let (code, off, err) = health(0.0);
    assert_eq!(code, Some(1), "{off}");
    assert_eq!(off["healthy"], false, "{off}");
    for (report, expect) in [(&same, 0.0), (&off, skew_ms)] {
        let clocks = report["clocks"].as_object().expect("clocks");
        for process in ["supervisor/main/", "sensor/", "planner/", "actuator/"] {
            let (who, r) = clocks
                .iter()
                .find(|(k, _)| k.starts_with(process))
                .unwrap_or_else(|| panic!("no clock of {process}: {report}"));
            let (offset, rtt) = (
                r["offset_ms"].as_f64().expect("offset"),
                r["rtt_ms"].as_f64().expect("rtt"),
            );
            assert!(
                (offset - expect).abs() <= rtt / 2.0 + 0.01,
                "{who}: offset {offset} ms ± {rtt}/2, expected {expect}: {report}"
            );
        }
    }
    assert!(
        off["max_clock_skew_ms"].as_f64().expect("max") > cfg.max_clock_skew_ms,
        "{off}"
    );
    assert!(
        err.contains("max_clock_skew_ms") && err.contains("ahead"),
        "{err}"
    );
    let pid = up.child.id();
    let (code, report) = up.interrupt(pid);
    assert_eq!(code, 0, "{report:?}");
}
