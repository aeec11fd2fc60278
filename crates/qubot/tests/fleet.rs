//! A fleet on loopback: a site router (`qubot router`) and two robots whose every process
//! connects to it. Each robot's traffic stays its own (counted, and no zenoh link joins two
//! robots), and a router killed mid-run and restarted costs the robots nothing: their loops do
//! not cross it, and their boards are back on it within 5 s.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use common::{counters::*, pipeline::*, router::Router, *};

const T: Duration = Duration::from_secs(60);

/// One robot's processes: the supervisor and its three actors (spawn events in any order).
fn pids(up: &Up) -> Vec<u32> {
    let mut actors = BTreeMap::new();
    while actors.len() < 3 {
        if let Some(e) = Event::from_json_line(&up.proc.line(T)) {
            if let Some(pid) = e.spawned_pid() {
                actors.insert(e.actor, pid);
            }
        }
    }
    std::iter::once(up.proc.child.id())
        .chain(actors.into_values())
        .collect()
}

/// Established TCP connections between two processes of this host, as (pid, pid) pairs:
/// each socket's owner from `ss`, matched with the socket at its other end.
fn links() -> BTreeSet<(u32, u32)> {
    let out = std::process::Command::new("ss")
        .args(["-tnpH", "state", "established"])
        .output()
        .expect("ss (iproute2)");
    let mut owner: BTreeMap<String, u32> = BTreeMap::new();
    let mut conns = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(peer)) = (f.get(2), f.get(3)) else {
            continue;
        };
        let pid = line
            .split("pid=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            owner.insert(local.to_string(), pid);
            conns.push((pid, peer.to_string()));
        }
    }
    conns
        .into_iter()
        .filter_map(|(pid, peer)| owner.get(&peer).map(|&other| (pid.min(other), pid.max(other))))
        .collect()
}

/// Each robot's traffic kept its own ([`assert_apart`]), by its actors' counters.
fn assert_robots_apart(robots: &[(&str, &Up)]) {
    for (name, up) in robots {
        let actors: Vec<String> = (1..=3).map(|offset| up.metrics_of(offset)).collect();
        assert_apart(name, &up.metrics_of(1), &up.metrics_of(2), &actors);
    }
}

#[test]
fn two_robots_through_one_router_stay_apart_and_outlive_its_restart() {
    let _g = serial();
    let ports = qubot_ops::process::free_port_run(2).expect("two free ports");
    let router = Router::start(ports, ports + 1);
    wait_for("router /metrics", T, || router.peer_sessions());
    let connect = ["--connect", router.endpoint.as_str(), "--timeout", "120"];
    let a = Up::start("fleet-a", "corridor", &connect);
    let b = Up::start("fleet-b", "corridor", &connect);
    let (pa, pb) = (pids(&a), pids(&b));
    wait_driving(&a, 20.0);
    wait_driving(&b, 20.0);
    wait_for("all eight processes on the router", T, || {
        (router.peer_sessions()? == 8.0).then_some(())
    });

    // Apart: by the counters, and no zenoh link from one robot's process to the other's.
    assert_robots_apart(&[("fleet-a", &a), ("fleet-b", &b)]);
    let cross: Vec<_> = links()
        .into_iter()
        .filter(|(x, y)| (pa.contains(x) && pb.contains(y)) || (pb.contains(x) && pa.contains(y)))
        .collect();
    assert!(
        cross.is_empty(),
        "robots linked directly: {cross:?} (a {pa:?}, b {pb:?})"
    );

    // The router dies: each robot's loop keeps closing, without a safe stop.
    let router_port = ports;
    drop(router); // killed on drop
    let applied = |up: &Up| actuator_metric(up, "qubot_messages_received_total", &[("topic", "cmd")]);
    let before = (applied(&a).expect("a"), applied(&b).expect("b"));
    wait_for("both loops closing with the router gone", T, || {
        (applied(&a)? >= before.0 + 40.0 && applied(&b)? >= before.1 + 40.0).then_some(())
    });
    for up in [&a, &b] {
        assert_eq!(actuator_metric(up, "qubot_safe_stops_total", &[]), Some(0.0));
    }

    // Back on the same port: every process reconnects within 5 s of it listening.
    let router = Router::start(router_port, router_port + 1);
    wait_for("restarted router /metrics", T, || router.peer_sessions());
    let up_at = Instant::now();
    wait_for("all eight processes back on the router", T, || {
        (router.peer_sessions()? == 8.0).then_some(())
    });
    let back = up_at.elapsed();
    eprintln!(
        "fleet: eight sessions back {:.2} s after the router listened",
        back.as_secs_f64()
    );
    assert!(back <= Duration::from_secs(5), "reconnection took {back:?}");
    assert_robots_apart(&[("fleet-a", &a), ("fleet-b", &b)]);

    // Both robots finish their run cleanly: goal reached, nothing hit.
    for (name, up) in [("fleet-a", a), ("fleet-b", b)] {
        while json(&up.proc.line(RUN))["event"] != "goal_reached" {}
        up.proc.signal("INT");
        let (code, report) = up.report();
        assert_eq!(code, 0, "{name}: {report:?}");
        assert_clean_run(&report);
        assert_eq!(report.safe_stops, Some(0.0), "{name}: {report:?}");
    }
}

/// A robot whose loop crosses the router: its three actors run alone (no supervisor, no hub
/// to meet at) as zenoh clients of the router, so they reach each other only through it. (As
/// peers they would not: zenoh 1.10's router takes the peers it serves for one mesh and does
/// not forward between them; they must find each other, as a robot's boards do.) When the
/// router dies the actuator safe-stops; when it is back, commands flow again within 5 s of it
/// listening; the accounting closes and every actor stops cleanly.
#[test]
fn a_loop_through_the_router_safe_stops_with_it_and_recovers() {
    let _g = serial();
    let ports = qubot_ops::process::free_port_run(2).expect("two free ports");
    let router = Router::start(ports, ports + 1);
    wait_for("router /metrics", T, || router.peer_sessions());
    // The node config the actors share: a hub nobody listens on, the router to connect to.
    let (_, base) = pipeline_ports();
    let mut cfg = qubot_node::NodeConfig {
        robot: "crossing".into(),
        world: "corridor".into(),
        worlds_dir: WORLDS_DIR.into(),
        ..Default::default()
    };
    let client = TempFile::new(
        "crossing",
        "json5",
        "{ mode: \"client\", connect: { retry: { period_init_ms: 1000, period_max_ms: 1000, period_increase_factor: 1 } } }",
    );
    cfg.zenoh.hub = format!("tcp/127.0.0.1:{}", base + 4);
    cfg.zenoh.connect = vec![router.endpoint.clone()];
    cfg.zenoh.config = Some(client.path().to_owned());
    cfg.set_metrics_ports(base);
    let file = TempFile::toml("crossing", &cfg.to_toml());
    let file_s = file.arg();
    let actors: Vec<Proc> = ["sensor", "planner", "actuator"]
        .iter()
        .map(|a| Proc::spawn(a, &[a, "--config", &file_s]))
        .collect();
    let actuator = format!("127.0.0.1:{}", base + 3);
    let applied = || counter(&actuator, RECEIVED, &[("topic", "cmd")]);
    let stops = || counter(&actuator, "qubot_safe_stops_total", &[]);
    wait_for("commands flowing through the router", T, || {
        (applied()? >= 20.0).then_some(())
    });

    // Through the router only: no socket joins two of the actors.
    let pids: Vec<u32> = actors.iter().map(|p| p.child.id()).collect();
    let direct: Vec<_> = links()
        .into_iter()
        .filter(|(x, y)| pids.contains(x) && pids.contains(y))
        .collect();
    assert!(direct.is_empty(), "actors linked directly: {direct:?}");

    // The router dies: the loop is cut, the actuator safe-stops.
    let before = stops().expect("actuator");
    drop(router);
    wait_for("a safe stop with the router gone", T, || {
        (stops()? > before).then_some(())
    });

    // Back: commands flow again within 5 s of the router listening.
    let router = Router::start(ports, ports + 1);
    wait_for("restarted router /metrics", T, || router.peer_sessions());
    let listening = Instant::now();
    let at_restart = applied().expect("actuator");
    wait_for("commands flowing again", T, || {
        (applied()? >= at_restart + 5.0).then_some(())
    });
    let back = listening.elapsed();
    eprintln!(
        "fleet: the loop through the router closed again {:.2} s after it listened",
        back.as_secs_f64()
    );
    assert!(back <= Duration::from_secs(5), "recovery took {back:?}");

    // Accounting: nothing the planner took came from elsewhere; nothing foreign anywhere.
    let page = |offset: u16| format!("127.0.0.1:{}", base + offset);
    let actor_pages: Vec<String> = (1..=3).map(page).collect();
    assert_apart("crossing", &page(1), &page(2), &actor_pages);
    for (name, p) in ["sensor", "planner", "actuator"].into_iter().zip(actors) {
        p.signal("INT");
        let (code, _) = p.finish(T);
        assert_eq!(code, 0, "{name} did not stop cleanly");
    }
}
