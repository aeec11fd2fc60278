//! Replay proves itself: a recorded run's scans and odometry, replayed in place of the robot's
//! sensor and actuator (`qubot replay --as-producer`), make a fresh planner plan the commands
//! the robot's planner planned (docs/ARCHITECTURE.md, "Recording").

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{counters::counter, free_port, json, pipeline::Up, run, wait_for, Proc, TempDir, TempFile};
use qubot_msg::Command;

/// `qubot record` of `robot` that listens on an endpoint of its own, so the robot's processes
/// connect to it as they start and nothing they publish is missed. Returns once it listens.
fn recorder(robot: &str, out: &str, extra: &[&str]) -> (Proc, String, String) {
    let port = free_port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "record",
        "--robot",
        robot,
        "--listen",
        &endpoint,
        "--out",
        out,
        "--metrics-addr",
        &metrics,
    ];
    args.extend_from_slice(extra);
    let proc = Proc::spawn("qubot record", &args);
    wait_for("the recorder's listener", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    (proc, endpoint, metrics)
}

/// The commands in a recording: scan sequence → (v, w).
fn commands(path: &std::path::Path) -> BTreeMap<u64, (f64, f64)> {
    let buf = std::fs::read(path).expect("the recording");
    let filter = qubot_record::Filter {
        include: vec!["cmd".into()],
        exclude: vec![],
    };
    let rec = qubot_record::load(&buf, &filter).expect("a recording");
    rec.entries
        .iter()
        .map(|e| {
            let c = qubot_msg::decode::<Command>(&e.wire).expect("a command").body;
            (c.scan_seq, (c.v, c.w))
        })
        .collect()
}

#[test]
fn a_fresh_planner_fed_a_recording_plans_the_recorded_commands() {
    let dir = TempDir::new("replay-det");
    let first = dir.join("run.mcap");
    let again = dir.join("again.mcap");

    // The run: every scan, state and command from the robot's first message on.
    let (rec, endpoint, _) = recorder(
        "det-a",
        &first.display().to_string(),
        &["--include", "scan", "--include", "state", "--include", "cmd"],
    );
    let up = Up::start("det-a", "corridor", &["--connect", &endpoint, "--exit-on-goal"]);
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert!(report.goal_reached, "{report:?}");
    rec.signal("INT");
    let (code, lines) = rec.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "{lines:?}");

    // The replay: only the planner runs, and the recording stands in for sensor and actuator.
    let planner_only = TempFile::toml(
        "replay-det",
        "[sensor]\nenabled = false\n[actuator]\nenabled = false\n",
    );
    let (rec, endpoint, rec_metrics) = recorder("det-b", &again.display().to_string(), &["--include", "cmd"]);
    let up = Up::start(
        "det-b",
        "corridor",
        &["--config", &planner_only.arg(), "--connect", &endpoint],
    );
    up.spawned("planner");
    let file = first.display().to_string();
    let (code, out, err) = run(
        &[
            "replay",
            &file,
            "--robot",
            "det-b",
            "--as-producer",
            "--connect",
            &up.hub,
            "--wait-subscriber",
            "30",
        ],
        common::pipeline::RUN,
    );
    assert_eq!(code, 0, "{err}");
    let played = json(out.lines().last().expect("the replay's summary"));
    assert_eq!(
        played["as_producer"],
        serde_json::json!(["actuator/base", "sensor/lidar0"]),
        "{played}"
    );
    // Every command the planner published is in the file before it is closed.
    let planner = up.metrics_of(2);
    wait_for("the planner's commands recorded", Duration::from_secs(30), || {
        let sent = counter(&planner, "qubot_messages_published_total", &[("topic", "cmd")])?;
        let kept = counter(&rec_metrics, "qubot_record_messages_total", &[("topic", "cmd")])?;
        (sent > 0.0 && kept == sent).then_some(())
    });
    rec.signal("INT");
    let (code, lines) = rec.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "{lines:?}");
    drop(up);

    let recorded = commands(&first);
    let replanned = commands(&again);
    let both: Vec<u64> = recorded
        .keys()
        .filter(|s| replanned.contains_key(s))
        .copied()
        .collect();
    let equal = both.iter().filter(|s| recorded[s] == replanned[s]).count();
    let summary = format!(
        "{} commands recorded, {} replanned, {} on the same scan, {} of them equal",
        recorded.len(),
        replanned.len(),
        both.len(),
        equal
    );
    eprintln!("{summary}");
    assert!(both.len() * 10 >= recorded.len() * 9, "{summary}");
    // The tolerance, and its reason: the planner binds a scan to the newest odometry it has
    // received that was published at or before the capture (docs/ARCHITECTURE.md §4a), and a
    // state published just before a capture may still be in flight when the scan is planned,
    // live as in replay; such a scan is planned from the previous pose, and the memory it
    // leaves differs by a hair for the scans after it. Which scans that hits is a matter of
    // timing (a per-scan rule tied to a 5 ms window failed on a scan 1 s into a run), so the
    // bound is on how many: at most 5 %. Each difference is printed with how long before its
    // capture the newest state was published, to show the race.
    let near = race_window(&first);
    for s in both.iter().filter(|s| recorded[s] != replanned[s]) {
        eprintln!(
            "scan {s}: {:?} recorded, {:?} replanned; state {:?} ns before its capture",
            recorded[s],
            replanned[s],
            near.get(s)
        );
    }
    assert!(equal * 100 >= both.len() * 95, "{summary}");
}

/// Per scan: how long before its capture the newest state at or before it was published (ns).
fn race_window(path: &std::path::Path) -> BTreeMap<u64, u64> {
    let buf = std::fs::read(path).expect("the recording");
    let filter = qubot_record::Filter {
        include: vec!["scan".into(), "state".into()],
        exclude: vec![],
    };
    let rec = qubot_record::load(&buf, &filter).expect("a recording");
    let mut states = Vec::new();
    let mut scans = Vec::new();
    for e in &rec.entries {
        let h = qubot_msg::decode_header(&e.wire).expect("a header");
        match qubot_record::topic_of(&rec.keys[e.key]) {
            "state" => states.push(h.stamp.publish_ns),
            _ => scans.push((h.stamp.seq, h.stamp.origin_ns)),
        }
    }
    states.sort_unstable();
    scans
        .into_iter()
        .filter_map(|(seq, t)| {
            let i = states.partition_point(|&p| p <= t);
            (i > 0).then(|| (seq, t - states[i - 1]))
        })
        .collect()
}
