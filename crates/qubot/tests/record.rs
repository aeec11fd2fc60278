//! `qubot record` and `qubot replay` against a live robot: the recording is opened by the
//! MCAP format's Python implementation (not the Rust crate that wrote it), and a replay is
//! read off the bus by a separate `qubot listen` process.

mod common;

use std::time::Duration;

use common::{
    counters::dropped_at, free_port, json, pipeline::Up, run, runs, serial, skip_or_fail, wait_for, Proc,
    TempFile,
};

/// Reads an MCAP file with the `mcap` package from PyPI; prints one JSON object: the header,
/// the metadata, each channel's encoding, and per message its topic, sequence and times and
/// the header fields parsed from the bytes by the wire format's layout
/// (docs/ARCHITECTURE.md §3: magic u32, version u16, kind u16, seq u64, source u64,
/// origin_ns u64, publish_ns u64, body_len u32, payload_len u32; little-endian).
const READ_MCAP: &str = r#"
import json, struct, sys
from mcap.reader import make_reader
with open(sys.argv[1], "rb") as f:
    r = make_reader(f)
    h = r.get_header()
    out = {"profile": h.profile, "library": h.library, "metadata": {}, "encodings": [], "messages": []}
    for m in r.iter_metadata():
        out["metadata"][m.name] = dict(m.metadata)
    seen = {}
    for _schema, ch, msg in r.iter_messages(log_time_order=False):
        seen[ch.id] = ch.message_encoding
        magic, version, kind, seq, source, origin, publish, body_len, payload_len = struct.unpack_from("<IHHQQQQII", msg.data, 0)
        out["messages"].append({
            "topic": ch.topic.split("/")[-1], "key": ch.topic, "sequence": msg.sequence,
            "log_time": msg.log_time, "publish_time": msg.publish_time,
            "magic": magic == 0x544F4251, "version": version, "seq": seq, "source": "%016x" % source,
            "publish_ns": publish, "origin_ns": origin, "whole": len(msg.data) == 48 + body_len + payload_len,
        })
    out["encodings"] = sorted(set(seen.values()))
print(json.dumps(out))
"#;

/// Writes an MCAP file with the Python implementation: a "qubot" metadata record of header
/// version 0, as an older release would have recorded it.
const WRITE_OLD: &str = r#"
import sys
from mcap.writer import Writer
with open(sys.argv[1], "wb") as f:
    w = Writer(f)
    w.start(profile="qubot", library="an older qubot")
    w.add_metadata("qubot", {"header_version": "0", "robot": "old"})
    w.finish()
"#;

fn python_mcap(test: &str) -> bool {
    if runs("python3", &["-c", "import mcap"]) {
        return true;
    }
    skip_or_fail(
        test,
        "python3 with the mcap package (pip install mcap) is not installed",
    );
    false
}

fn read_mcap(path: &str) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .args(["-c", READ_MCAP, path])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python mcap reader: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(String::from_utf8_lossy(&out.stdout).trim())
}

/// `qubot record` of `robot` on the bus at `hub` into `out`, with `extra` arguments.
fn record_args<'a>(robot: &'a str, hub: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["record", "--robot", robot, "--connect", hub, "--out", out];
    args.extend_from_slice(extra);
    args
}

fn count(v: &serde_json::Value, topic: &str) -> u64 {
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["topic"] == topic)
        .count() as u64
}

#[test]
fn a_recording_of_a_live_robot_opens_in_another_mcap_reader() {
    const TEST: &str = "a_recording_of_a_live_robot_opens_in_another_mcap_reader";
    if !python_mcap(TEST) {
        return;
    }
    let _g = serial();
    let up = Up::start("rec-a", "corridor", &[]);
    let file = TempFile::new("rec-a", "mcap", "");
    let metrics = format!("127.0.0.1:{}", free_port());
    // Until a signal: its /metrics are read while it runs, then SIGINT stops it cleanly.
    let out = file.arg();
    let rec = Proc::spawn(
        "qubot record",
        &record_args("rec-a", &up.hub, &out, &["--metrics-addr", &metrics]),
    );
    let scraped = wait_for("50 scans recorded", Duration::from_secs(60), || {
        let n = common::counters::counter(&metrics, "qubot_record_messages_total", &[("topic", "scan")])?;
        (n >= 50.0).then_some(n)
    });
    rec.signal("INT");
    let (code, lines) = rec.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "{lines:?}");
    let summary = json(lines.last().expect("the recorder's summary line"));
    assert_eq!(summary["stopped_by"], "SIGINT");
    assert_eq!(summary["undecodable"], 0);
    let by_topic = &summary["by_topic"];
    assert!(by_topic["scan"].as_f64().unwrap_or(0.0) >= scraped, "{summary}");
    for t in ["cmd", "state"] {
        assert!(
            by_topic[t].as_u64().unwrap_or(0) > 0,
            "no {t} recorded: {summary}"
        );
    }

    let v = read_mcap(&file.arg());
    assert_eq!(v["profile"], "qubot");
    assert_eq!(v["metadata"]["qubot"]["header_version"], "1");
    assert_eq!(v["metadata"]["qubot"]["robot"], "rec-a");
    assert_eq!(v["encodings"], serde_json::json!(["qubot-wire"]));
    let msgs = v["messages"].as_array().expect("messages");
    assert_eq!(msgs.len() as u64, summary["messages"].as_u64().expect("messages"));
    for t in ["scan", "cmd", "state"] {
        assert_eq!(count(&v, t), by_topic[t].as_u64().expect("count"), "{t}");
    }
    let mut last = 0;
    for m in msgs {
        assert!(
            m["magic"] == true && m["version"] == 1 && m["whole"] == true,
            "{m}"
        );
        assert!(
            m["key"].as_str().is_some_and(|k| k.starts_with("qubot/rec-a/")),
            "{m}"
        );
        // The file's times are the header's stamps and the receive clock, in order.
        assert_eq!(m["publish_time"], m["publish_ns"], "{m}");
        assert_eq!(
            m["sequence"].as_u64(),
            m["seq"].as_u64().map(|s| s & 0xffff_ffff),
            "{m}"
        );
        let log = m["log_time"].as_u64().expect("log_time");
        assert!(log >= last, "log times out of order: {m}");
        last = log;
    }

    // Split by time into files of about a second, the two newest kept.
    let split = TempFile::new("rec-a-split", "mcap", "");
    let split_out = split.arg();
    let (code, out, err) = run(
        &record_args(
            "rec-a",
            &up.hub,
            &split_out,
            &["--split-s", "1", "--max-files", "2", "--count", "300"],
        ),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    let s = json(out.lines().last().expect("summary"));
    let started = s["files_started"].as_u64().expect("files_started");
    assert!(started >= 3, "300 messages at ~90/s in 1 s files: {s}");
    let files: Vec<String> = s["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("path").to_owned())
        .collect();
    let stem = split.arg().trim_end_matches(".mcap").to_owned();
    let expect: Vec<String> = (started - 2..started)
        .map(|i| format!("{stem}-{i:03}.mcap"))
        .collect();
    assert_eq!(files, expect, "{s}");
    assert!(
        !std::path::Path::new(&format!("{stem}-000.mcap")).exists(),
        "the oldest file was kept"
    );
    for f in &files {
        let v = read_mcap(f);
        assert!(
            !v["messages"].as_array().expect("messages").is_empty(),
            "{f} is empty"
        );
        std::fs::remove_file(f).ok();
    }

    // A disk below the guard: refused before anything is written.
    let low = TempFile::new("rec-a-low", "mcap", "");
    std::fs::remove_file(low.path()).ok();
    let low_out = low.arg();
    let (code, _, err) = run(
        &record_args("rec-a", &up.hub, &low_out, &["--min-free-mib", "999999999"]),
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("MiB free on") && err.contains("below the 999999999 MiB"),
        "{err}"
    );
    assert!(!low.path().exists(), "a file was created");

    // The other compressions, read by the same independent reader.
    for compression in ["lz4", "none"] {
        let f = TempFile::new(&format!("rec-a-{compression}"), "mcap", "");
        let f_out = f.arg();
        let (code, out, err) = run(
            &record_args(
                "rec-a",
                &up.hub,
                &f_out,
                &["--compression", compression, "--count", "60"],
            ),
            Duration::from_secs(60),
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(json(out.lines().last().expect("summary"))["messages"], 60);
        let v = read_mcap(&f.arg());
        assert_eq!(v["messages"].as_array().map(Vec::len), Some(60), "{compression}");
    }
}

#[test]
fn a_replay_carries_the_recorded_bytes_at_the_recorded_pace_and_never_steers() {
    const TEST: &str = "a_replay_carries_the_recorded_bytes_at_the_recorded_pace_and_never_steers";
    if !python_mcap(TEST) {
        return;
    }
    let _g = serial();
    let up = Up::start("rec-b", "corridor", &[]);
    let file = TempFile::new("rec-b", "mcap", "");
    const SCANS: u64 = 60;
    let n = SCANS.to_string();
    let out = file.arg();
    let (code, _, err) = run(
        &record_args("rec-b", &up.hub, &out, &["--include", "scan", "--count", &n]),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    let recorded = read_mcap(&file.arg());
    let recorded = recorded["messages"].as_array().expect("messages").clone();
    assert_eq!(recorded.len() as u64, SCANS);

    // Onto another robot's keys, read by a separate process listening there.
    let port = free_port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let listener = Proc::spawn(
        "qubot listen",
        &[
            "listen",
            "--robot",
            "rp-b",
            "--key",
            "qubot/rp-b/sensor/*/scan",
            "--print",
            "--count",
            &n,
            "--listen",
            &endpoint,
        ],
    );
    let (code, out, err) = run(
        &[
            "replay",
            &file.arg(),
            "--robot",
            "rp-b",
            "--connect",
            &endpoint,
            "--rate",
            "2",
            "--wait-subscriber",
            "30",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(code, 0, "{err}");
    let report = json(out.lines().last().expect("replay's summary"));
    assert_eq!(report["published"], SCANS);
    let (code, lines) = listener.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "{lines:?}");
    let heard: Vec<serde_json::Value> = lines.iter().map(|l| json(l)).collect();
    assert_eq!(
        heard.len() as u64,
        SCANS,
        "the listener heard {} of {SCANS}",
        heard.len()
    );
    for (h, r) in heard.iter().zip(&recorded) {
        // Decoded by Qubot's codec on one side, by the wire layout in Python on the other.
        assert_eq!(
            (&h["seq"], &h["publish_ns"], &h["origin_ns"]),
            (&r["seq"], &r["publish_ns"], &r["origin_ns"])
        );
        // Under the replay's own source id, not the recorded sensor's.
        assert_ne!(h["source"], r["source"], "{h}");
        assert_eq!(h["source"], heard[0]["source"], "{h}");
    }
    // Paced, not bunched: at rate 2 the scans take half the recorded time; a replay can be
    // late but never early, so only the lower bound is tight.
    let span = |first: u64, last: u64| (last - first) as f64 * 1e-9;
    let rec_span = span(
        recorded[0]["log_time"].as_u64().expect("t"),
        recorded[recorded.len() - 1]["log_time"].as_u64().expect("t"),
    );
    let heard_span = span(
        heard[0]["recv_ns"].as_u64().expect("t"),
        heard[heard.len() - 1]["recv_ns"].as_u64().expect("t"),
    );
    assert!(
        heard_span >= rec_span / 2.0 * 0.9 && heard_span <= rec_span / 2.0 + 10.0,
        "recorded over {rec_span:.2} s, heard over {heard_span:.2} s at rate 2"
    );

    // As load: the recording played back onto the live robot it came from, under the replay's
    // own source id: its planner drops every one as foreign.
    let planner = up.metrics_of(2);
    let foreign = [("topic", "scan"), ("reason", "foreign")];
    let before = dropped_at(&planner, &foreign).unwrap_or(0.0);
    let (code, _, err) = run(
        &[
            "replay",
            &file.arg(),
            "--connect",
            &up.hub,
            "--rate",
            "4",
            "--wait-subscriber",
            "30",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    wait_for(
        "the replayed scans counted as foreign",
        Duration::from_secs(30),
        || {
            let now = dropped_at(&planner, &foreign)?;
            (now - before >= SCANS as f64).then_some(())
        },
    );
}

#[test]
fn bad_recordings_and_arguments_get_a_clear_error() {
    const TEST: &str = "bad_recordings_and_arguments_get_a_clear_error";
    let garbage = TempFile::new("not-mcap", "mcap", "this is not an MCAP file");
    let (code, _, err) = run(&["replay", &garbage.arg()], Duration::from_secs(30));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an MCAP file"), "{err}");

    let (code, _, err) = run(
        &["record", "--out", "/nonexistent-dir/x.mcap", "--count", "1"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("creating /nonexistent-dir/x.mcap"), "{err}");
    let (code, _, err) = run(
        &["record", "--out", "x.mcap", "--include", "lidar"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"lidar\" is not a topic"), "{err}");
    let (code, _, err) = run(&["replay", &garbage.arg(), "--rate=-1"], Duration::from_secs(30));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("speed factor"), "{err}");

    if !python_mcap(TEST) {
        return;
    }
    let old = TempFile::new("old-version", "mcap", "");
    let out = std::process::Command::new("python3")
        .args(["-c", WRITE_OLD, &old.arg()])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, _, err) = run(&["replay", &old.arg()], Duration::from_secs(30));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("recorded with header version 0"), "{err}");
}
