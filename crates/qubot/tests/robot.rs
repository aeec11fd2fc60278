//! The reference robot end to end: `qubot up` runs sensor, planner and actuator as separate
//! processes over zenoh; the tests drive it through worlds and faults and judge it from its
//! report and the actors' own metrics.

mod common;

use std::time::Duration;

use common::{counters::*, pipeline::*, *};

const T: Duration = Duration::from_secs(60);

#[test]
fn every_shipped_world_is_reached_without_collision() {
    let _g = serial();
    let before = shm_files();
    let mut worlds: Vec<String> = std::fs::read_dir(WORLDS_DIR)
        .expect("worlds dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    worlds.sort();
    assert!(worlds.len() >= 5, "at least five shipped worlds: {worlds:?}");
    worlds.insert(0, "default".into());
    for world in &worlds {
        let up = Up::start("worlds", world, &["--exit-on-goal", "--timeout", "120"]);
        let (code, report) = up.report();
        assert_eq!(code, 0, "{world}: {report:?}");
        assert_eq!(report.world, *world);
        assert_clean_run(&report);
        assert_eq!(report.restarts["planner"], 0);
        // Plan quality against the shortest collision-free path on the true map.
        let efficiency = report.path_efficiency.expect("path efficiency");
        assert!(efficiency > 0.8, "{world}: {report:?}");
        eprintln!("{world}: path / shortest {efficiency}");
    }
    let left: Vec<_> = shm_files().difference(&before).cloned().collect();
    assert!(left.is_empty(), "SHM segments left behind: {left:?}");
}

#[test]
fn killed_planner_safe_stops_restarts_and_the_robot_still_arrives() {
    let _g = serial();
    let before = shm_files();
    // Restart slower than the watchdog, so the actuator must stop before the planner is back.
    let cfg = TempFile::toml("slowrestart", "[supervisor]\nbackoff_initial_ms = 600\n");
    let cfg_s = cfg.arg();
    let up = Up::start(
        "kill9",
        "corridor",
        &["--config", &cfg_s, "--exit-on-goal", "--timeout", "120"],
    );
    let planner = up.spawned("planner");
    wait_driving(&up, 20.0);
    signal_pid(planner, "KILL");
    wait_for("a safe stop", T, || {
        let n = actuator_metric(&up, "qubot_safe_stops_total", &[("reason", "cmd_timeout")])?;
        (n >= 1.0).then_some(())
    });
    // The watchdog fired within the command timeout plus one actuator tick of silence (both
    // read from the config this run used).
    let node = node_config(cfg.path());
    let timeout = node.actuator.cmd_timeout_ms as f64 / 1e3;
    let tick = 1.0 / node.actuator.tick_hz;
    let silence = actuator_metric(&up, "qubot_watchdog_silence_seconds", &[]).expect("silence");
    assert!(
        (timeout..=timeout + tick + 1e-3).contains(&silence),
        "watchdog silence {silence} s, timeout {timeout} s, tick {tick} s"
    );
    let replanner = up.spawned("planner");
    assert_ne!(replanner, planner);
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_clean_run(&report);
    assert_eq!(report.restarts["planner"], 1, "{report:?}");
    assert!(report.safe_stops.expect("safe stops") >= 1.0);
    let left: Vec<_> = shm_files().difference(&before).cloned().collect();
    assert!(
        left.is_empty(),
        "SHM segments left behind after kill -9: {left:?}"
    );
}

#[test]
fn stopped_planner_safe_stops_then_the_loop_recovers() {
    let _g = serial();
    let up = Up::start("sigstop", "slalom", &["--exit-on-goal", "--timeout", "120"]);
    let planner = up.spawned("planner");
    wait_driving(&up, 20.0);
    signal_pid(planner, "STOP");
    let stopped_at = std::time::Instant::now();
    wait_for("a safe stop while the planner is frozen", T, || {
        let n = actuator_metric(&up, "qubot_safe_stops_total", &[("reason", "cmd_timeout")])?;
        (n >= 1.0).then_some(())
    });
    // Keep it frozen for the 2 s the scenario asks for, then let it go.
    if let Some(left) = Duration::from_secs(2).checked_sub(stopped_at.elapsed()) {
        std::thread::sleep(left);
    }
    let applied = actuator_metric(&up, "qubot_messages_received_total", &[("topic", "cmd")]).expect("cmds");
    signal_pid(planner, "CONT");
    wait_for("commands flowing again", T, || {
        let n = actuator_metric(&up, "qubot_messages_received_total", &[("topic", "cmd")])?;
        (n > applied + 10.0).then_some(())
    });
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_clean_run(&report);
    assert_eq!(
        report.restarts["planner"], 0,
        "a stopped process is not a crashed one: {report:?}"
    );
}

#[test]
fn stale_invalid_and_malformed_commands_are_rejected_and_never_move_the_robot() {
    let _g = serial();
    // No planner: the only commands are the ones injected here.
    let cfg = TempFile::toml("noplanner", "[planner]\nenabled = false\n");
    let up = Up::with_args("cmds", &["--config", &cfg.arg()]);
    let hub = up.hub.clone();
    up.spawned("actuator");
    let key = "qubot/cmds/planner/main/cmd";
    for what in ["stale-command", "invalid-command", "truncated", "bad-version"] {
        let (code, _, err) = run(
            &[
                "inject",
                "--robot",
                "cmds",
                "--connect",
                &hub,
                "--key",
                key,
                "--what",
                what,
                "--count",
                "5",
                // As the planner this actuator is bound to (none runs here): the checks
                // judged are the actuator's own, not the source's. At a planner's pace: the
                // actuator keeps only the latest command, and each one must be judged.
                "--as-producer",
                "--rate",
                "50",
            ],
            T,
        );
        assert_eq!(code, 0, "inject {what}: {err}");
    }
    let m = wait_for("rejections counted", T, || {
        let m = metrics(&up.metrics_of(3))?;
        let dropped = sum(
            &m,
            "qubot_messages_dropped_total",
            &[("actor", "actuator"), ("topic", "cmd")],
        );
        (dropped >= 20.0).then_some(m)
    });
    for reason in ["stale", "invalid", "truncated", "bad_version"] {
        let n = sum(
            &m,
            "qubot_messages_dropped_total",
            &[("actor", "actuator"), ("reason", reason)],
        );
        assert_eq!(n, 5.0, "reason {reason}");
    }
    // Rejected commands are not applied: nothing reached the drive, no latency was recorded.
    assert_eq!(sum(&m, "qubot_pipeline_latency_seconds_count", &[]), 0.0);
    up.proc.signal("INT");
    let (code, report) = up.report();
    let world = node_config(cfg.path()).world().expect("world");
    let start = (world.start.x, world.start.y);
    assert_eq!(code, 0, "{report:?}");
    let [x, y, _] = report.final_pose.expect("final pose");
    assert!(
        (x - start.0).abs() < 1e-6 && (y - start.1).abs() < 1e-6,
        "robot moved to ({x}, {y})"
    );
}

#[test]
fn an_actor_that_keeps_crashing_makes_the_supervisor_give_up() {
    let _g = serial();
    // The planner's metrics port is taken, so every planner start fails at once.
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = blocker.local_addr().expect("addr").port();
    let cfg = TempFile::toml(
        "crashloop",
        &format!(
            "[supervisor]\nmax_restarts = 2\nrestart_window_s = 60.0\nbackoff_initial_ms = 50\n\
             metrics_port = {}\n[sensor]\nmetrics_port = {}\n[planner]\nmetrics_port = {taken}\n\
             [actuator]\nmetrics_port = {}\n",
            free_port(),
            free_port(),
            free_port()
        ),
    );
    let cfg_s = cfg.arg();
    let hub = format!("tcp/127.0.0.1:{}", free_port());
    let up = Proc::spawn(
        "qubot up",
        &["up", "--config", &cfg_s, "--robot", "crashloop", "--hub", &hub],
    );
    let (code, lines) = up.finish(T);
    assert_eq!(code, 1, "giving up is a failure: {lines:?}");
    let events: Vec<Event> = lines.iter().filter_map(|l| Event::from_json_line(l)).collect();
    let planner_spawns = events
        .iter()
        .filter(|e| e.actor == "planner" && matches!(e.kind, EventKind::Spawned { .. }))
        .count();
    assert_eq!(
        planner_spawns, 3,
        "first start + max_restarts restarts: {lines:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.actor == "planner" && matches!(e.kind, EventKind::GaveUp { .. })),
        "{lines:?}"
    );
    let report = run_report_in(&lines, code);
    assert_eq!(report.finish, Finish::GaveUp);
    assert_eq!(report.restarts["planner"], 2, "{report:?}");
    drop(blocker);
}

/// The node config a test wrote, as `qubot up` resolves it (defaults + the file).
fn node_config(path: &std::path::Path) -> qubot_node::NodeConfig {
    let text = std::fs::read_to_string(path).expect("test config");
    qubot_node::NodeConfig::from_toml(&text, &path.display().to_string()).expect("test config parses")
}
