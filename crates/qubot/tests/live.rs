//! The live Foxglove view of a running robot (`qubot up --foxglove`, docs/ARCHITECTURE.md §11),
//! seen by a client written here from the WebSocket and Foxglove protocol specifications
//! (`common::foxglove_ws`), not by the SDK that serves it. What the client receives is decoded
//! with Foxglove's own message types.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    counters::counter,
    foxglove_ws::{channel_ids, Client, Msg},
    pipeline::{assert_clean_run, wait_driving, Up},
    run, serial, TempDir,
};
use foxglove::messages::{LaserScan, SceneUpdate};
use foxglove::Decode;
use qubot_msg::metric_names::{VIEW_CLIENTS, VIEW_DROPPED};
use qubot_msg::{decode, topic, Scan, ScanRanges};

const READ: Duration = Duration::from_secs(10);

fn live_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], common::free_port()))
}

/// The next message of subscription `sub`, skipping others.
fn next_of(c: &mut Client, sub: u32, deadline: Instant) -> Vec<u8> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c
            .next(left)
            .unwrap_or_else(|e| panic!("waiting for subscription {sub}: {e}"))
        {
            Msg::Data { sub: s, payload, .. } if s == sub => return payload,
            _ => continue,
        }
    }
}

/// The wire scan captured at `origin_ns` in the recording `file`: its ranges.
fn recorded_ranges(file: &Path, origin_ns: u64) -> Vec<f32> {
    let bytes = std::fs::read(file).expect("the recording");
    let loaded = qubot_record::load(&bytes, &qubot_record::Filter::default()).expect("a recording");
    for e in &loaded.entries {
        if qubot_record::topic_of(&loaded.keys[e.key]) != topic::SCAN.name() {
            continue;
        }
        let d = decode::<Scan>(&e.wire).expect("a wire scan");
        if d.header.stamp.origin_ns == origin_ns {
            return ScanRanges::new(d.payload).iter().collect();
        }
    }
    panic!("no recorded scan captured at {origin_ns}");
}

#[test]
fn a_client_joining_a_running_robot_gets_the_world_at_once_and_scans_equal_to_the_wire() {
    let _g = serial();
    let dir = TempDir::new("live");
    let file = dir.join("run.mcap");
    let addr = live_addr();
    let (file_arg, addr_arg) = (file.to_string_lossy().into_owned(), addr.to_string());
    let up = Up::recording(
        "live-one",
        "corridor",
        &["--record", &file_arg, "--foxglove", &addr_arg, "--exit-on-goal"],
    );
    // Late: the robot is driving, the world was drawn for nobody.
    wait_driving(&up, 10.0);
    let recorder = up.metrics_of(4);
    assert_eq!(counter(&recorder, VIEW_CLIENTS, &[]), Some(0.0));

    let mut c = Client::connect(addr).expect("the live view");
    let info = c.next_op("serverInfo", READ).expect("serverInfo");
    assert_eq!(info["name"], "qubot live-one", "{info}");
    let advertise = c.next_op("advertise", READ).expect("the channel list");
    let channels = advertise["channels"].as_array().expect("channels");
    for (t, schema) in [
        ("/scan", "foxglove.LaserScan"),
        ("/tf", "foxglove.FrameTransforms"),
        ("/pose", "foxglove.PoseInFrame"),
        ("/world", "foxglove.SceneUpdate"),
        ("/movers", "foxglove.SceneUpdate"),
        ("/memory", "foxglove.Grid"),
        ("/cmd", "qubot.Cmd"),
        ("/loop", "qubot.Loop"),
    ] {
        let ch = channels
            .iter()
            .find(|c| c["topic"] == t)
            .unwrap_or_else(|| panic!("{t} not advertised: {advertise}"));
        assert_eq!(ch["schemaName"], schema, "{ch}");
        let enc = if schema.starts_with("qubot.") {
            "json"
        } else {
            "protobuf"
        };
        assert_eq!(ch["encoding"], enc, "{ch}");
    }
    let ids = channel_ids(&advertise);
    c.subscribe(1, &[ids["/world"], ids["/scan"]]).expect("subscribe");

    // The world, though it was published before this client came (never, in fact: nobody
    // watched), and the walls of the corridor in it.
    let world =
        SceneUpdate::decode(next_of(&mut c, 1, Instant::now() + READ).as_slice()).expect("a SceneUpdate");
    let names: Vec<&str> = world.entities.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(names, ["world", "goal"], "{world:?}");
    assert!(
        world.entities[0].cubes.len() >= 4,
        "the border and the corridor's walls: {world:?}"
    );

    let scan = LaserScan::decode(next_of(&mut c, 2, Instant::now() + READ).as_slice()).expect("a LaserScan");
    assert_eq!(scan.frame_id, "map");
    let t = scan.timestamp.expect("a capture stamp");
    let origin_ns = u64::from(t.sec()) * 1_000_000_000 + u64::from(t.nsec());
    assert!(!scan.ranges.is_empty());
    wait_for_clients(&recorder, 1.0);
    second_view_refused(addr);

    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_clean_run(&report);
    // The same capture, as the wire carried it: every range, converted without loss.
    let wire = recorded_ranges(&file, origin_ns);
    let live: Vec<f32> = scan.ranges.iter().map(|r| *r as f32).collect();
    assert_eq!(live, wire, "the live scan's ranges are the wire scan's");
}

fn wait_for_clients(metrics: &str, n: f64) {
    common::wait_for("the view's client count", Duration::from_secs(10), || {
        (counter(metrics, VIEW_CLIENTS, &[])? == n).then_some(())
    });
}

/// A robot with a live view nobody reads: the baseline the stuck client is held to.
fn corridor_with_view(robot: &str, addr: SocketAddr, stuck: bool) -> (f64, f64) {
    let addr_arg = addr.to_string();
    let up = Up::recording(robot, "corridor", &["--foxglove", &addr_arg, "--exit-on-goal"]);
    let recorder = up.metrics_of(4);
    let mut client = None;
    if stuck {
        wait_driving(&up, 5.0);
        // A receive window of a few KiB, and nothing read after subscribing to everything.
        let mut c = Client::connect_small_window(addr, 4096).expect("the live view");
        let ids = channel_ids(&c.next_op("advertise", READ).expect("the channel list"));
        c.subscribe(1, &ids.values().copied().collect::<Vec<_>>())
            .expect("subscribe");
        client = Some(c);
        common::wait_for(
            "messages dropped for the stuck client",
            Duration::from_secs(60),
            || {
                let n = counter(&recorder, VIEW_DROPPED, &[("reason", "client_behind")])?;
                // Dropping steadily, not a blip: 50 is about a third of a second of the view.
                (n >= 50.0).then_some(())
            },
        );
    }
    let dropped = counter(&recorder, VIEW_DROPPED, &[("reason", "client_behind")]).unwrap_or(0.0);
    let (code, report) = up.report();
    drop(client);
    assert_eq!(code, 0, "{report:?}");
    assert_clean_run(&report);
    assert_eq!(report.safe_stops, Some(0.0), "{report:?}");
    let p99 = report.pipeline_latency_p99_ms.expect("the loop's p99");
    eprintln!("{robot}: loop p99 {p99} ms, {dropped:.0} dropped for the client when last read");
    (p99, dropped)
}

#[test]
fn a_client_that_never_reads_slows_nothing_and_what_it_misses_is_counted() {
    let _g = serial();
    let addr = live_addr();
    let (idle_p99, _) = corridor_with_view("live-idle", addr, false);
    let (stuck_p99, dropped) = corridor_with_view("live-stuck", live_addr(), true);
    assert!(dropped >= 50.0, "{dropped}");
    // Within noise: a p99 of a 20 s run moves between 2.5 and 9.4 ms from run to run on this
    // machine (BENCHMARKS.md, "Live view"), hence twice the other run's plus 5 ms. A loop the
    // client had stalled would miss its 300 ms deadlines and safe-stop.
    assert!(
        stuck_p99 <= 2.0 * idle_p99 + 5.0,
        "loop p99 {stuck_p99} ms with a stuck client, {idle_p99} ms without"
    );
}

/// A second robot's view on the address the first one serves: refused before anything starts,
/// naming the address (exit 2), by `qubot up` and by `qubot record --live` alike.
fn second_view_refused(addr: SocketAddr) {
    let addr = addr.to_string();
    let base = common::free_port().to_string();
    let (code, _, err) = run(
        &[
            "up",
            "--robot",
            "live-two",
            "--foxglove",
            &addr,
            "--metrics-port-base",
            &base,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("--foxglove {addr}")), "{err}");
    assert!(err.contains("Address already in use"), "{err}");
    let (code, _, err) = run(
        &["record", "--robot", "live-two", "--live", &addr],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&addr) && err.contains("Address already in use"),
        "{err}"
    );
}
