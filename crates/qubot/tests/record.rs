//! `qubot record` and `qubot replay` against a live robot: the recording is opened by the
//! MCAP format's Python implementation (not the Rust crate that wrote it), and a replay is
//! read off the bus by a separate `qubot listen` process.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    counters::{dropped_at, sum},
    free_port, json,
    mcap::{python, python_mcap},
    pipeline::{Up, WORLDS_DIR},
    run, runs, serial, skip_or_fail, wait_for, Proc, TempFile,
};

/// Reads an MCAP file with the `mcap` package from PyPI; prints one JSON object: the header,
/// the metadata, the message encodings of its messages, how many messages each derived
/// (non-wire) channel holds, and per wire message its topic, sequence and times and the header
/// fields parsed from the bytes by the wire format's layout (docs/ARCHITECTURE.md §3: magic
/// u32, version u16, kind u16, seq u64, source u64, origin_ns u64, publish_ns u64, body_len
/// u32, payload_len u32; little-endian).
const READ_MCAP: &str = r#"
import json, struct, sys
from mcap.reader import make_reader
with open(sys.argv[1], "rb") as f:
    r = make_reader(f)
    h = r.get_header()
    out = {"profile": h.profile, "library": h.library, "metadata": {}, "encodings": [], "derived": {}, "messages": []}
    for m in r.iter_metadata():
        out["metadata"][m.name] = dict(m.metadata)
    seen = {}
    for _schema, ch, msg in r.iter_messages(log_time_order=False):
        seen[ch.id] = ch.message_encoding
        if ch.message_encoding != "qubot-wire":
            out["derived"][ch.topic] = out["derived"].get(ch.topic, 0) + 1
            continue
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

/// Reads the Foxglove channels of a recording with readers Qubot did not write: the `mcap`
/// package and Foxglove's protobuf decoder for it (`mcap-protobuf-support`), which builds the
/// message classes from the schema records in the file. Each derived message is checked
/// against the wire message it came from (same publish time and sequence), parsed from the
/// bytes by the layouts of docs/ARCHITECTURE.md §3 (scan body: pose_x, pose_y, pose_theta f64,
/// angle_min, angle_increment, range_max f32, beams u32; ranges f32; command body: v, w f64,
/// deadline_ns, scan_seq u64; memory body: origin_x, origin_y, resolution_m f64, width, height
/// u32; cells u8). Prints one JSON object: the channels, counts, the problems found, the
/// world's entities, the movers' positions and each memory grid's size and occupied cells.
const READ_FOXGLOVE: &str = r#"
import json, math, struct, sys
from mcap.reader import make_reader
from mcap_protobuf.decoder import DecoderFactory
out = {"channels": {}, "count": {}, "problems": [], "world": [], "movers": [], "cmd": [], "loop": [], "memory": []}
def problem(what):
    if len(out["problems"]) < 20:
        out["problems"].append(what)
wire = {}
with open(sys.argv[1], "rb") as f:
    r = make_reader(f, decoder_factories=[DecoderFactory()])
    s = r.get_summary()
    for ch in s.channels.values():
        sc = s.schemas.get(ch.schema_id)
        out["channels"][ch.topic] = [ch.message_encoding, sc.name if sc else "", sc.encoding if sc else ""]
    for _s, ch, msg in r.iter_messages(log_time_order=False):
        if ch.message_encoding == "qubot-wire":
            _m, _v, _k, seq, _src, origin, publish, body_len, payload_len = struct.unpack_from("<IHHQQQQII", msg.data, 0)
            body = msg.data[48:48 + body_len]
            payload = msg.data[48 + body_len:48 + body_len + payload_len]
            wire[(ch.topic.split("/")[-1], publish, seq & 0xffffffff)] = (origin, msg.log_time, body, payload)
        elif ch.message_encoding == "json":
            d = json.loads(msg.data)
            out[ch.topic[1:]].append(d)
            if ch.topic == "/cmd":
                w = wire.get(("cmd", msg.publish_time, msg.sequence))
                if w is None:
                    problem("no wire command for /cmd at %d" % msg.publish_time)
                elif struct.unpack_from("<dd", w[2], 0) != (d["v"], d["w"]):
                    problem("/cmd %s is not its wire command" % d)
    protobuf = [t for t, c in out["channels"].items() if c[0] == "protobuf"]
    for _s, ch, msg, m in r.iter_decoded_messages(topics=protobuf, log_time_order=False):
        out["count"][ch.topic] = out["count"].get(ch.topic, 0) + 1
        def stamp_ok(t, origin):
            return t.seconds * 10**9 + t.nanos == origin
        if ch.topic == "/scan":
            w = wire.get(("scan", msg.publish_time, msg.sequence))
            if w is None:
                problem("no wire scan for /scan at %d" % msg.publish_time); continue
            origin, log, body, payload = w
            x, y, theta, amin, ainc, rmax, beams = struct.unpack_from("<dddfffI", body, 0)
            ranges = list(struct.unpack("<%df" % (len(payload) // 4), payload))
            q = m.pose.orientation
            yaw = 2 * math.atan2(q.z, q.w)
            if list(m.ranges) != ranges or len(ranges) != beams:
                problem("/scan ranges differ from the wire scan's (%d, %d beams)" % (len(m.ranges), beams))
            if m.frame_id != "map":
                problem("/scan in frame %r" % m.frame_id)
            if (m.pose.position.x, m.pose.position.y) != (x, y) or abs(math.sin(yaw - theta)) > 1e-9 or math.cos(yaw - theta) < 0:
                problem("/scan pose %s is not the scan's (%f, %f, %f)" % (m.pose, x, y, theta))
            if m.start_angle != amin or abs(m.end_angle - (amin + (beams - 1) * ainc)) > 1e-6:
                problem("/scan angles %f..%f" % (m.start_angle, m.end_angle))
            if not stamp_ok(m.timestamp, origin) or msg.log_time != log:
                problem("/scan stamps: timestamp %s, log %d; wire origin %d, log %d" % (m.timestamp, msg.log_time, origin, log))
        elif ch.topic == "/tf":
            w = wire.get(("state", msg.publish_time, msg.sequence))
            t = m.transforms[0] if len(m.transforms) == 1 else None
            if w is None or t is None:
                problem("/tf without its wire state, or not one transform"); continue
            x, y, theta = struct.unpack_from("<ddd", w[2], 0)
            if (t.parent_frame_id, t.child_frame_id) != ("map", "base_link"):
                problem("/tf %s -> %s" % (t.parent_frame_id, t.child_frame_id))
            if (t.translation.x, t.translation.y) != (x, y) or not stamp_ok(t.timestamp, w[0]):
                problem("/tf %s is not the state's (%f, %f)" % (t, x, y))
        elif ch.topic == "/pose":
            if m.frame_id != "map":
                problem("/pose in frame %r" % m.frame_id)
        elif ch.topic == "/memory":
            w = wire.get(("memory", msg.publish_time, msg.sequence))
            if w is None:
                problem("no wire memory for /memory at %d" % msg.publish_time); continue
            origin, log, body, payload = w
            ox, oy, res, width, height = struct.unpack_from("<dddII", body, 0)
            data = bytes(m.data)
            if data != payload or m.column_count != width or m.row_stride != width or m.cell_stride != 1:
                problem("/memory %dx%d (stride %d) is not its wire grid %dx%d" % (m.column_count, len(data) // max(m.row_stride, 1), m.row_stride, width, height))
            if m.frame_id != "map" or (m.pose.position.x, m.pose.position.y) != (ox, oy) or m.cell_size.x != res:
                problem("/memory placed at %s in %r, not the grid's origin" % (m.pose, m.frame_id))
            if [(f.name, f.offset) for f in m.fields] != [("occupancy", 0)] or not stamp_ok(m.timestamp, origin):
                problem("/memory fields %s or stamp %s" % (m.fields, m.timestamp))
            out["memory"].append({"width": m.column_count, "height": len(data) // max(m.row_stride, 1),
                                  "len": len(data), "occupied": sum(1 for c in data if c > 0)})
        elif ch.topic in ("/world", "/movers"):
            for e in m.entities:
                ent = {"id": e.id, "frame": e.frame_id, "t": e.timestamp.seconds * 10**9 + e.timestamp.nanos,
                       "cubes": [[c.pose.position.x, c.pose.position.y, c.size.x, c.size.y] for c in e.cubes],
                       "cylinders": [[c.pose.position.x, c.pose.position.y, c.size.x] for c in e.cylinders]}
                out["world" if ch.topic == "/world" else "movers"].append(ent)
print(json.dumps(out))
"#;

fn python_foxglove(test: &str) -> bool {
    if runs(
        "python3",
        &["-c", "import mcap, mcap_protobuf.decoder, google.protobuf"],
    ) {
        return true;
    }
    skip_or_fail(
        test,
        "python3 with the mcap-protobuf-support and protobuf packages \
         (pip install mcap-protobuf-support protobuf) is not installed",
    );
    false
}

fn read_foxglove(path: &str) -> serde_json::Value {
    python(READ_FOXGLOVE, Path::new(path))
}

fn read_mcap(path: &str) -> serde_json::Value {
    python(READ_MCAP, Path::new(path))
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
    let world = ["--world", "corridor", "--worlds-dir", WORLDS_DIR];
    let rec = Proc::spawn(
        "qubot record",
        &record_args(
            "rec-a",
            &up.hub,
            &out,
            &[&["--metrics-addr", &metrics][..], &world].concat(),
        ),
    );
    let scraped = wait_for("50 scans recorded", Duration::from_secs(60), || {
        let page = common::counters::metrics(&metrics)?;
        let n = sum(&page, "qubot_record_messages_total", &[("topic", "scan")]);
        let derived = sum(&page, "qubot_record_derived_total", &[("channel", "/scan")]);
        (n >= 50.0 && derived > 0.0).then_some((n, page))
    });
    let (scraped, page) = scraped;
    // The wire counters keep their meaning: no derived channel is counted among them.
    for s in page.iter().filter(|s| s.name == "qubot_record_messages_total") {
        assert!(s.label("topic").is_some_and(|t| !t.starts_with('/')), "{s:?}");
    }
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
    assert_eq!(
        v["encodings"],
        serde_json::json!(["json", "protobuf", "qubot-wire"])
    );
    // Every well-formed wire message of a mapped topic has its derived messages; the world is
    // drawn once.
    let derived = &v["derived"];
    for (channel, from) in [
        ("/scan", "scan"),
        ("/tf", "state"),
        ("/pose", "state"),
        ("/cmd", "cmd"),
        ("/loop", "cmd"),
    ] {
        assert_eq!(derived[channel], by_topic[from], "{channel}: {derived}");
    }
    assert_eq!(derived["/world"], 1, "{derived}");
    assert!(
        derived.get("/movers").is_none(),
        "corridor has no movers: {derived}"
    );
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
            &[
                &["--split-s", "1", "--max-files", "2", "--count", "300"][..],
                &world,
            ]
            .concat(),
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
        // Each file whole: the static world drawn in it again.
        assert_eq!(v["derived"]["/world"], 1, "{f}: {}", v["derived"]);
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

    // The other compressions, read by the same independent reader; the second without the
    // derived channels.
    for (compression, view) in [("lz4", None), ("none", Some("--no-view"))] {
        let f = TempFile::new(&format!("rec-a-{compression}"), "mcap", "");
        let f_out = f.arg();
        let mut extra = vec!["--compression", compression, "--count", "60"];
        extra.extend(view);
        let (code, out, err) = run(
            &record_args("rec-a", &up.hub, &f_out, &extra),
            Duration::from_secs(60),
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(json(out.lines().last().expect("summary"))["messages"], 60);
        let v = read_mcap(&f.arg());
        assert_eq!(v["messages"].as_array().map(Vec::len), Some(60), "{compression}");
        let wire_only = v["derived"].as_object().is_some_and(|d| d.is_empty());
        assert_eq!(wire_only, view.is_some(), "{compression}: {}", v["derived"]);
    }
}

/// `v`'s entities named `id` (a JSON list of entities, as the Foxglove reader prints them).
fn entity<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v.as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == id))
        .unwrap_or_else(|| panic!("no entity {id:?} in {v}"))
}

/// Whether the list of numbers `items` holds one within 1e-9 of `want`.
fn holds(items: &serde_json::Value, want: &[f64]) -> bool {
    items.as_array().is_some_and(|a| {
        a.iter().any(|p| {
            p.as_array().is_some_and(|p| {
                p.len() == want.len()
                    && p.iter()
                        .zip(want)
                        .all(|(g, w)| g.as_f64().is_some_and(|g| (g - w).abs() < 1e-9))
            })
        })
    })
}

#[test]
fn foxglove_channels_decode_with_foxglove_s_own_schemas_and_match_the_wire() {
    const TEST: &str = "foxglove_channels_decode_with_foxglove_s_own_schemas_and_match_the_wire";
    if !python_mcap(TEST) || !python_foxglove(TEST) {
        return;
    }
    let _g = serial();
    let up = Up::start("rec-c", "corridor", &[]);
    let file = TempFile::new("rec-c", "mcap", "");
    let out = file.arg();
    let (code, _, err) = run(
        &record_args(
            "rec-c",
            &up.hub,
            &out,
            &[
                "--count",
                "240",
                "--world",
                "corridor",
                "--worlds-dir",
                WORLDS_DIR,
            ],
        ),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    let v = read_foxglove(&file.arg());
    assert_eq!(v["problems"], serde_json::json!([]), "{}", v["problems"]);
    let channels = &v["channels"];
    for (topic, schema) in [
        ("/scan", "foxglove.LaserScan"),
        ("/tf", "foxglove.FrameTransforms"),
        ("/pose", "foxglove.PoseInFrame"),
        ("/world", "foxglove.SceneUpdate"),
        ("/memory", "foxglove.Grid"),
    ] {
        assert_eq!(
            channels[topic],
            serde_json::json!(["protobuf", schema, "protobuf"]),
            "{channels}"
        );
    }
    for (topic, schema) in [("/cmd", "qubot.Cmd"), ("/loop", "qubot.Loop")] {
        assert_eq!(
            channels[topic],
            serde_json::json!(["json", schema, "jsonschema"]),
            "{channels}"
        );
    }
    let count = &v["count"];
    assert!(count["/scan"].as_u64().is_some_and(|n| n >= 20), "{count}");
    assert!(count["/tf"].as_u64().is_some_and(|n| n >= 20), "{count}");
    assert_eq!(count["/tf"], count["/pose"], "{count}");
    assert_eq!(count["/world"], 1, "{count}");
    // The planner's memory at 1 Hz: a few grids in a few seconds, every one whole, and walls
    // in it once the robot has seen them.
    let grids = v["memory"].as_array().expect("memory");
    assert!(!grids.is_empty(), "{count}");
    for g in grids {
        let (w, h, len) = (g["width"].as_u64(), g["height"].as_u64(), g["len"].as_u64());
        assert!(w.zip(h).map(|(w, h)| w * h) == len && len > Some(0), "{g}");
    }
    assert!(
        grids.iter().any(|g| g["occupied"].as_u64() > Some(0)),
        "nothing occupied: {grids:?}"
    );

    // corridor's shapes (deploy/worlds/corridor.toml): the block as a box, the two pillars as
    // cylinders, and the border's four walls; the goal apart.
    let walls = entity(&v["world"], "world");
    assert_eq!(walls["frame"], "map");
    assert_eq!(walls["cubes"].as_array().map(Vec::len), Some(5), "{walls}");
    assert!(holds(&walls["cubes"], &[5.0, 4.8, 10.0, 6.4]), "{walls}");
    assert!(holds(&walls["cylinders"], &[5.0, 0.25, 0.5]), "{walls}");
    assert!(holds(&walls["cylinders"], &[11.75, 4.0, 0.5]), "{walls}");
    assert!(
        holds(&walls["cubes"], &[6.0, 8.0, 12.0, 0.05]),
        "the north wall: {walls}"
    );
    let goal = entity(&v["world"], "goal");
    assert!(holds(&goal["cylinders"], &[10.8, 7.0, 0.5]), "{goal}");

    // Plottable: numbers at the top level.
    let cmds = v["cmd"].as_array().expect("cmd");
    assert!(!cmds.is_empty());
    for c in cmds {
        assert!(
            c["v"].is_f64() && c["w"].is_f64() && c["scan_seq"].is_u64(),
            "{c}"
        );
        assert!(c["deadline_in_ms"].as_f64().is_some_and(|d| d > 0.0), "{c}");
    }
    let loops = v["loop"].as_array().expect("loop");
    assert_eq!(loops.len(), cmds.len());
    for l in loops {
        // Capture to command on one host's clock: positive, and within the loop's budget.
        assert!(
            l["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0 && ms < 1000.0),
            "{l}"
        );
    }
    assert!(
        loops.iter().any(|l| l["v"].is_f64() && l["w"].is_f64()),
        "no measured velocity"
    );
}

#[test]
fn moving_obstacles_are_drawn_where_the_simulator_had_them() {
    const TEST: &str = "moving_obstacles_are_drawn_where_the_simulator_had_them";
    if !python_mcap(TEST) || !python_foxglove(TEST) {
        return;
    }
    let _g = serial();
    // One world clock zero for the run and the recorder.
    let epoch = qubot_msg::now_ns();
    let cfg = TempFile::toml("rec-d", &format!("world_epoch_ns = {epoch}\n"));
    let up = Up::start("rec-d", "walkers", &["--config", &cfg.arg()]);
    let file = TempFile::new("rec-d", "mcap", "");
    let (out, epoch_arg) = (file.arg(), epoch.to_string());
    let (code, _, err) = run(
        &record_args(
            "rec-d",
            &up.hub,
            &out,
            &[
                "--count",
                "240",
                "--world",
                "walkers",
                "--worlds-dir",
                WORLDS_DIR,
                "--world-epoch-ns",
                &epoch_arg,
            ],
        ),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    let v = read_foxglove(&file.arg());
    assert_eq!(v["problems"], serde_json::json!([]), "{}", v["problems"]);
    assert_eq!(
        v["channels"]["/movers"],
        serde_json::json!(["protobuf", "foxglove.SceneUpdate", "protobuf"])
    );
    assert_eq!(v["count"]["/movers"], v["count"]["/scan"], "one update a scan");
    // The hall's middle wall.
    assert!(
        holds(&entity(&v["world"], "world")["cubes"], &[8.0, 3.0, 0.2, 3.0]),
        "{}",
        v["world"]
    );

    // Each walker where the simulator's world had it at the scan's capture.
    let world = qubot_robot::World::resolve("walkers", std::path::Path::new(WORLDS_DIR)).expect("walkers");
    let movers = v["movers"].as_array().expect("movers");
    assert!(!movers.is_empty());
    let mut seen = std::collections::BTreeSet::new();
    for m in movers {
        let i: usize = m["id"]
            .as_str()
            .and_then(|id| id.strip_prefix("mover-"))
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("a mover's id: {m}"));
        let t = qubot_node::world_time_s(epoch, m["t"].as_u64().expect("t"));
        let Some(qubot_robot::Shape::Circle { cx, cy, r }) = world.movers[i].shape_at(t) else {
            panic!("walkers' movers are circles, always there: {m}");
        };
        assert!(holds(&m["cylinders"], &[cx, cy, 2.0 * r]), "at {t:.3} s: {m}");
        seen.insert((i, (cy * 1e6) as i64));
    }
    assert!(seen.len() > 2, "the walkers did not move: {seen:?}");
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
            "4",
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
    // Paced, not bunched: at rate 4 the scans take a quarter of the recorded time. A message
    // can be late but never early; a late first one shortens the span, hence the slack below.
    let span = |first: u64, last: u64| (last - first) as f64 * 1e-9;
    let rec_span = span(
        recorded[0]["log_time"].as_u64().expect("t"),
        recorded[recorded.len() - 1]["log_time"].as_u64().expect("t"),
    );
    let heard_span = span(
        heard[0]["recv_ns"].as_u64().expect("t"),
        heard[heard.len() - 1]["recv_ns"].as_u64().expect("t"),
    );
    eprintln!("recorded over {rec_span:.3} s, heard over {heard_span:.3} s at rate 4");
    assert!(
        // Late by at most 0.35 s at the end (deadlines are absolute: lateness does not add
        // up), which still tells rate 4 from rate 2 over 60 scans (about 3 s recorded).
        heard_span >= rec_span / 4.0 * 0.9 - 0.05 && heard_span <= rec_span / 4.0 + 0.35,
        "recorded over {rec_span:.2} s, heard over {heard_span:.2} s at rate 4"
    );

    // Another robot's recording goes out only onto a robot named on the command line.
    let (code, out, err) = run(
        &["replay", &file.arg(), "--connect", &up.hub],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("recorded on robot \"rec-b\"") && err.contains("--robot"),
        "{err}"
    );
    assert!(out.is_empty(), "nothing is played: {out}");

    // As load: the recording played back onto the live robot it came from, under the replay's
    // own source id: its planner drops every one as foreign.
    let planner = up.metrics_of(2);
    let foreign = [("topic", "scan"), ("reason", "foreign")];
    let before = dropped_at(&planner, &foreign).unwrap_or(0.0);
    let (code, _, err) = run(
        &[
            "replay",
            &file.arg(),
            "--robot",
            "rec-b",
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
    // A world that is not there is refused before the file is created.
    let nowhere = TempFile::new("rec-nowhere", "mcap", "");
    std::fs::remove_file(nowhere.path()).ok();
    let (code, _, err) = run(
        &[
            "record",
            "--out",
            &nowhere.arg(),
            "--world",
            "nowhere",
            "--worlds-dir",
            WORLDS_DIR,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--world nowhere") && err.contains("unknown world"),
        "{err}"
    );
    assert!(!nowhere.path().exists(), "a file was created");
    let (code, _, err) = run(
        &["record", "--out", "x.mcap", "--world-epoch-ns", "1"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--world"), "{err}");

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
