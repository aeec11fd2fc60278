//! The recorder as a process: under `qubot up --record` (its file, its `/metrics`, crashes and
//! a full disk that stop it and nothing else), and killed with SIGKILL (what the file it
//! leaves still holds). Every file is read by the MCAP format's Python implementation, not the Rust
//! crate that wrote it (docs/ARCHITECTURE.md §11).

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::{
    counters::counter,
    json,
    mcap::{python, python_mcap},
    pipeline::{assert_clean_run, Up, RUN},
    run, run_report_in, serial, skip_or_fail, wait_for, Event, EventKind, Finish, Proc, TempDir, TempFile,
};
use qubot_msg::metric_names::RECORD_MESSAGES;

/// The magic an MCAP file starts and, once its footer is written, ends with.
const MCAP_MAGIC: &[u8] = b"\x89MCAP0\r\n";

/// Reads a whole MCAP file with the `mcap` package through its summary (so the footer must be
/// there); prints one JSON object: whether it has a summary, the messages of each topic of the
/// wire channels (encoding `qubot-wire`), and whether every one of those is a whole wire
/// message (docs/ARCHITECTURE.md §3: a 48-byte header whose body_len and payload_len, at
/// offsets 40 and 44, add up to the rest; magic "QBOT" first, version 1 at offset 4).
const READ_WHOLE: &str = r#"
import json, struct, sys
from mcap.reader import make_reader
with open(sys.argv[1], "rb") as f:
    r = make_reader(f)
    out = {"summary": r.get_summary() is not None, "by_topic": {}, "whole": True}
    for _schema, ch, msg in r.iter_messages(log_time_order=False):
        if ch.message_encoding != "qubot-wire":
            continue
        topic = ch.topic.split("/")[-1]
        out["by_topic"][topic] = out["by_topic"].get(topic, 0) + 1
        magic, version = struct.unpack_from("<IH", msg.data, 0)
        body_len, payload_len = struct.unpack_from("<II", msg.data, 40)
        if magic != 0x544F4251 or version != 1 or len(msg.data) != 48 + body_len + payload_len:
            out["whole"] = False
print(json.dumps(out))
"#;

/// Reads an MCAP file that may have been cut anywhere (a killed recorder's), record by record
/// with the `mcap` package's `StreamReader`, up to where it ends: the chunks read whole, the
/// messages their message indexes list (written after each chunk), and the messages in those
/// chunks, as `READ_WHOLE` sees them; `error` is what stopped the reading (`null` at a footer).
const READ_CUT: &str = r#"
import json, struct, sys
from mcap.stream_reader import StreamReader, breakup_chunk
from mcap.records import Channel, Chunk, Footer, Message, MessageIndex
out = {"chunks": 0, "indexed": 0, "messages": 0, "by_topic": {}, "whole": True, "footer": False, "error": None}
channels = {}
def message(m):
    out["messages"] += 1
    ch = channels.get(m.channel_id)
    if ch is None or ch.message_encoding != "qubot-wire":
        return
    topic = ch.topic.split("/")[-1]
    out["by_topic"][topic] = out["by_topic"].get(topic, 0) + 1
    magic, version = struct.unpack_from("<IH", m.data, 0)
    body_len, payload_len = struct.unpack_from("<II", m.data, 40)
    if magic != 0x544F4251 or version != 1 or len(m.data) != 48 + body_len + payload_len:
        out["whole"] = False
with open(sys.argv[1], "rb") as f:
    try:
        # A chunk is yielded only once all of its bytes were read.
        for r in StreamReader(f, emit_chunks=True).records:
            if isinstance(r, Chunk):
                out["chunks"] += 1
                for inner in breakup_chunk(r):
                    if isinstance(inner, Channel):
                        channels[inner.id] = inner
                    elif isinstance(inner, Message):
                        message(inner)
            elif isinstance(r, Channel):
                channels[r.id] = r
            elif isinstance(r, Message):
                message(r)
            elif isinstance(r, MessageIndex):
                out["indexed"] += len(r.records)
            elif isinstance(r, Footer):
                out["footer"] = True
    except Exception as e:
        out["error"] = type(e).__name__
print(json.dumps(out))
"#;

fn ends_with_magic(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.ends_with(MCAP_MAGIC))
}

/// The messages of `topic` in a reader's `by_topic`.
fn of(v: &serde_json::Value, topic: &str) -> u64 {
    v["by_topic"][topic].as_u64().unwrap_or(0)
}

/// The supervisor's events about `child` among `qubot up`'s stdout lines.
fn events_of(lines: &[String], child: &str) -> Vec<EventKind> {
    lines
        .iter()
        .filter_map(|l| Event::from_json_line(l))
        .filter(|e| e.actor == child)
        .map(|e| e.kind)
        .collect()
}

#[test]
fn a_run_with_record_leaves_a_whole_recording_and_the_recorder_serves_metrics() {
    const TEST: &str = "a_run_with_record_leaves_a_whole_recording_and_the_recorder_serves_metrics";
    if !python_mcap(TEST) {
        return;
    }
    let _g = serial();
    let dir = TempDir::new("recsv-a");
    let file = dir.join("run.mcap");
    let file_arg = file.to_string_lossy().into_owned();
    let mut up = Up::recording("recsv-a", "corridor", &["--exit-on-goal", "--record", &file_arg]);
    // Its own page, the port after the actuator's, while the robot drives.
    let recorder = up.metrics_of(4);
    let recorded = wait_for("the recorder's /metrics counting messages", RUN, || {
        let n = counter(&recorder, RECORD_MESSAGES, &[])?;
        (n > 0.0).then_some(n)
    });
    let (code, lines) = up.proc.wait_exit(RUN);
    let report = run_report_in(&lines, code);
    assert_eq!((code, report.finish), (0, Finish::Goal), "{report:?}");
    assert_clean_run(&report);
    assert_eq!(report.restarts.get("record"), Some(&0), "{report:?}");
    // Stopped with the run, by SIGTERM, never killed: the file is whole when `up` returns.
    let events = events_of(&lines, "record");
    assert!(
        matches!(
            events.as_slice(),
            [EventKind::Spawned { .. }, EventKind::Stopped { .. }]
        ),
        "{events:?}"
    );
    assert!(ends_with_magic(&file), "no footer: {}", file.display());
    let v = python(READ_WHOLE, &file);
    assert_eq!(v["summary"], true, "{v}");
    assert_eq!(v["whole"], true, "{v}");
    for t in ["scan", "state", "cmd"] {
        assert!(of(&v, t) > 0, "no {t} message: {v}");
    }
    let total: u64 = ["scan", "state", "cmd"].iter().map(|t| of(&v, t)).sum();
    assert!(
        total as f64 >= recorded,
        "{recorded} counted, {total} in the file: {v}"
    );
    assert!(
        !dir.join("run-001.mcap").exists(),
        "a file of a restart, with none"
    );
}

#[test]
fn a_recorder_killed_with_sigkill_leaves_its_complete_chunks_readable() {
    const TEST: &str = "a_recorder_killed_with_sigkill_leaves_its_complete_chunks_readable";
    if !python_mcap(TEST) {
        return;
    }
    let _g = serial();
    let up = Up::start("recsv-b", "corridor", &[]);
    let file = TempFile::new("recsv-b", "mcap", "");
    let out = file.arg();
    const CHUNK_KIB: u64 = 16;
    let chunk = CHUNK_KIB.to_string();
    // Uncompressed, so the file grows by a chunk's size with each chunk written.
    let rec = Proc::spawn(
        "qubot record",
        &[
            "record",
            "--robot",
            "recsv-b",
            "--connect",
            &up.hub,
            "--out",
            &out,
            "--chunk-kib",
            &chunk,
            "--compression",
            "none",
            // The planner's memory (100 KB a grid) would fill a chunk on its own: the loop's
            // small messages make many small chunks.
            "--exclude",
            "memory",
        ],
    );
    let several = 6 * (CHUNK_KIB << 10);
    wait_for("several chunks on disk", Duration::from_secs(60), || {
        let len = std::fs::metadata(file.path()).ok()?.len();
        (len > several).then_some(())
    });
    rec.signal("KILL");
    let (code, lines) = rec.finish(Duration::from_secs(30));
    assert_eq!(code, -1, "killed by a signal, not exited: {lines:?}");
    assert!(!ends_with_magic(file.path()), "a killed recorder wrote a footer");

    let v = python(READ_CUT, file.path());
    assert_eq!(v["footer"], false, "{v}");
    assert!(v["error"].is_string(), "the reading must stop at the cut: {v}");
    let chunks = v["chunks"].as_u64().expect("chunks");
    assert!(chunks >= 3, "{} bytes hold {chunks} whole chunks: {v}", several);
    // What the indexes list lies in whole chunks: read back, every byte of it.
    let (indexed, messages) = (
        v["indexed"].as_u64().expect("indexed"),
        v["messages"].as_u64().expect("messages"),
    );
    assert!(indexed > 0 && messages >= indexed, "{v}");
    assert_eq!(v["whole"], true, "{v}");
    for t in ["scan", "state", "cmd"] {
        assert!(of(&v, t) > 0, "no {t} message: {v}");
    }
    let wire: u64 = v["by_topic"]
        .as_object()
        .expect("by_topic")
        .values()
        .filter_map(|n| n.as_u64())
        .sum();

    // Qubot's own reader plays the same messages and says where the file ends.
    let (code, stdout, err) = run(
        // Onto a robot nobody runs: only what the reader reads is checked here.
        &["replay", &out, "--robot", "recsv-sink", "--rate", "0"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    let replay = json(stdout.lines().last().expect("replay's summary"));
    assert!(replay["cut_short"].is_string(), "{replay}");
    assert_eq!(replay["published"], wire, "{replay} vs {v}");
}

/// A tmpfs mounted on a directory of its own, unmounted (then removed) on drop, even when the
/// test panics.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    /// `None` when it cannot be mounted (not root, no mount privilege in this container).
    fn mount(stem: &str, size_kib: u64) -> Option<Tmpfs> {
        let dir = TempDir::new(stem);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_stops_the_recorder_for_good_and_the_robot_drives_on() {
    const TEST: &str = "a_full_disk_stops_the_recorder_for_good_and_the_robot_drives_on";
    if !python_mcap(TEST) {
        return;
    }
    if !nix::unistd::Uid::effective().is_root() {
        skip_or_fail(TEST, "mounting a small tmpfs needs root");
        return;
    }
    let _g = serial();
    // The guard leaves 8 MiB; the disk has 64 KiB more: the recorder starts, and its first
    // chunks (256 KiB before compression, a few seconds of the robot's traffic) go below the
    // guard long before the goal.
    const MIN_FREE_MIB: u64 = 8;
    let Some(disk) = Tmpfs::mount("recsv-c", (MIN_FREE_MIB << 10) + 64) else {
        skip_or_fail(TEST, "mount -t tmpfs failed (no mount privilege here?)");
        return;
    };
    let file = disk.join("run.mcap");
    let file_arg = file.to_string_lossy().into_owned();
    let min_free = MIN_FREE_MIB.to_string();
    let mut up = Up::recording(
        "recsv-c",
        "corridor",
        &[
            "--exit-on-goal",
            "--record",
            &file_arg,
            "--record-min-free-mib",
            &min_free,
        ],
    );
    let (code, lines) = up.proc.wait_exit(RUN);
    let report = run_report_in(&lines, code);
    assert_eq!((code, report.finish), (0, Finish::Goal), "{report:?}");
    assert_clean_run(&report);
    // It exited on its own with the free-disk guard's code, and was left stopped: neither
    // restarted nor counted as a crash.
    let events = events_of(&lines, "record");
    assert!(
        matches!(
            events.as_slice(),
            [EventKind::Spawned { .. }, EventKind::Exited { status, .. }] if status == "exit 3"
        ),
        "{events:?}"
    );
    assert_eq!(report.restarts.get("record"), Some(&0), "{report:?}");
    assert!(!disk.join("run-001.mcap").exists(), "restarted");
    // What it wrote before the guard closed it is whole.
    assert!(ends_with_magic(&file), "no footer: {}", file.display());
    let v = python(READ_WHOLE, &file);
    assert_eq!((&v["summary"], &v["whole"]), (&true.into(), &true.into()), "{v}");
    assert!(of(&v, "scan") > 0, "{v}");
}

#[test]
fn a_crashing_recorder_restarts_into_new_files_and_giving_up_stops_nothing() {
    let _g = serial();
    let dir = TempDir::new("recsv-d");
    let file_arg = dir.join("run.mcap").to_string_lossy().into_owned();
    let mut up = Up::recording("recsv-d", "corridor", &["--exit-on-goal", "--record", &file_arg]);
    // One crash more than the intensity limit allows (5 restarts in 30 s, the default), each
    // once the recorder has opened its file: every run has a file of its own.
    const MAX_RESTARTS: u64 = 5;
    let files: Vec<PathBuf> = std::iter::once(dir.join("run.mcap"))
        .chain((1..=MAX_RESTARTS).map(|i| dir.join(format!("run-{i:03}.mcap"))))
        .collect();
    for f in &files {
        let pid = up.spawned("record");
        wait_for(
            &format!("{} created", f.display()),
            Duration::from_secs(30),
            || f.exists().then_some(()),
        );
        common::signal_pid(pid, "KILL");
    }
    let (code, lines) = up.proc.wait_exit(RUN);
    let report = run_report_in(&lines, code);
    // The recorder gave up; the robot drove on to its goal.
    assert_eq!((code, report.finish), (0, Finish::Goal), "{report:?}");
    assert_clean_run(&report);
    assert_eq!(report.restarts.get("record"), Some(&MAX_RESTARTS), "{report:?}");
    let events = events_of(&lines, "record");
    assert!(
        matches!(
            events.as_slice(),
            [EventKind::Exited { .. }, EventKind::GaveUp { .. }]
        ),
        "after the last crash: {events:?}"
    );
    for f in &files {
        assert!(f.exists(), "{} is gone", f.display());
    }
}
