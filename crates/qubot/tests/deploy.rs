//! Deploying one robot to edge devices, for real (`common::lab`: network-namespace devices
//! with an sshd each): a two-board robot reaches its goal and Prometheus finds every process,
//! an unhealthy release, a failed restart and a failed switch each roll back, and a cut link
//! between the boards safe-stops the robot until it heals. Also what the deploy ships beside
//! the scripts: the inventory CLI's contract (exit codes, which stream says what) and the
//! systemd unit. The inventory's own checks are unit tests of `qubot_ops::inventory`.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::{lab::*, prometheus::Prometheus, *};

#[test]
fn two_device_lab_reaches_the_goal_and_prometheus_scrapes_every_actor() {
    let _g = serial();
    let Some(lab) = lab_or_skip(
        "two_device_lab_reaches_the_goal_and_prometheus_scrapes_every_actor",
        2,
    ) else {
        return;
    };
    // dev2 (the last host table) asks for the live view, on its loopback.
    let inv = lab.inventory(
        "inventory.toml",
        "[groups]\nlab = [\"dev1\", \"dev2\"]",
        &SPLIT,
        "foxglove = \"127.0.0.1:8765\"\n",
    );
    let (code, out) = lab.deploy(&inv, "lab", 30);
    assert_eq!(code, 0, "deploy failed");
    // fleet.tls = false: said once per deploy, and the deploy goes on.
    assert_eq!(
        out.matches("the fleet is UNAUTHENTICATED").count(),
        1,
        "the unauthenticated-fleet warning, once:\n{out}"
    );
    let v2 = switched_to(&out, "dev2");
    switched_to(&out, "dev1");
    assert_eq!(lab.current(2), format!("releases/{v2}"));

    // Scans cross the link (dev1 -> dev2), commands stay on dev2, the robot arrives.
    lab.wait_goal(2, "the robot to reach its goal across the link");
    let scans = lab.received(2, 9902, "scan").expect("planner metrics");
    assert!(scans > 0.0, "the planner on dev2 received no scan from dev1");
    // Shared memory on the sensor's own device, the network to the other one.
    let probe = |i: usize| {
        let root = lab.root(i).display().to_string();
        let (_, out) = lab.ssh(
            i,
            &format!(
                "timeout 20 {root}/current/qubot listen --print --count 3 --connect tcp/{a}:7447 --listen tcp/{a}:0",
                a = lab.addr(i)
            ),
        );
        let last = out.lines().rfind(|l| l.contains("\"seq\"")).map(json);
        last.unwrap_or_else(|| panic!("no scan on dev{i}: {out}"))["shm"].clone()
    };
    assert_eq!(
        probe(1),
        serde_json::json!(true),
        "scans on the sensor's device are not in SHM"
    );
    assert_eq!(
        probe(2),
        serde_json::json!(false),
        "scans crossed devices through SHM"
    );

    // The live view where the inventory asked for it, on the board's loopback (reached
    // through `ssh -L`), and nowhere else: not on dev2's network address, not on dev1.
    let handshake = |i: usize| {
        lab.ssh(
            i,
            "curl -s -i -N --max-time 3 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
             -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H 'Sec-WebSocket-Version: 13' \
             -H 'Sec-WebSocket-Protocol: foxglove.sdk.v1' http://127.0.0.1:8765/ | head -c 400",
        )
        .1
    };
    wait_for("the live view on dev2's loopback", T, || {
        let out = handshake(2);
        (out.contains("101 Switching Protocols") && out.contains("\"name\":\"qubot qubot-one\""))
            .then_some(())
    });
    assert!(
        !handshake(1).contains("101"),
        "dev1 serves a view it was not asked for"
    );
    let outside = std::net::SocketAddr::new(lab.addr(2).parse().expect("an address"), 8765);
    assert!(
        std::net::TcpStream::connect_timeout(&outside, Duration::from_secs(2)).is_err(),
        "the live view answers on dev2's network address"
    );

    // The shipped Prometheus config finds every process through the file the deploy wrote.
    let prom = Prometheus::start(&lab.dir.join("prom"));
    wait_for("Prometheus to scrape all 5 fleet processes", T, || {
        (prom.query("up{job=\"qubot-fleet\"} == 1") == Some(5)).then_some(())
    });
    // Each device has its own hostname, so the series of the two boards stay apart.
    let hosts = "count by (host) (qubot_build_info{job=\"qubot-fleet\"})";
    assert_eq!(prom.query(hosts), Some(2), "{hosts}");
    for process in ["supervisor", "sensor", "planner", "actuator"] {
        let q = format!("qubot_build_info{{job=\"qubot-fleet\",process=\"{process}\"}}");
        assert!(prom.query(&q).unwrap_or(0) > 0, "no series for {q}");
    }

    // The same bundle again: nothing is copied or restarted.
    let pid = lab.supervisor_pid(2);
    let (code, out) = lab.deploy(&inv, "lab", 30);
    assert_eq!(code, 0);
    assert!(
        out.contains("dev1: unchanged") && out.contains("dev2: unchanged"),
        "{out}"
    );
    assert_eq!(lab.supervisor_pid(2), pid, "a no-op deploy restarted the service");
}

#[test]
fn unhealthy_release_rolls_back_and_the_previous_one_keeps_running() {
    let _g = serial();
    let Some(lab) = lab_or_skip(
        "unhealthy_release_rolls_back_and_the_previous_one_keeps_running",
        2,
    ) else {
        return;
    };
    let good = lab.inventory("good.toml", "", &SPLIT, "");
    let (code, out) = lab.deploy(&good, "all", 30);
    assert_eq!(code, 0, "first deploy failed");
    let v2 = switched_to(&out, "dev2");

    // dev1 gets a harmless change; dev2 a config that is valid on paper but fatal at run
    // time: the actuator's metrics port is the one sshd holds.
    let bad = lab.inventory(
        "bad.toml",
        "",
        &SPLIT,
        "[hosts.dev1.node.sensor]\nbeams = 721\n[hosts.dev2.node.actuator]\nmetrics_port = 22\n",
    );
    let (code, out) = lab.deploy(&bad, "dev1,dev2", 10);
    assert_eq!(code, 1, "an unhealthy deploy must fail");
    switched_to(&out, "dev1");
    assert!(
        out.contains(&format!("dev2: rolled back to {v2}")),
        "no rollback in:\n{out}"
    );
    assert!(out.contains("WARNING: the fleet is mixed"), "{out}");
    assert_eq!(lab.current(2), format!("releases/{v2}"));
    // The previous release is healthy again.
    lab.assert_healthy(2);
    let cmds = || lab.received(2, 9903, "cmd");
    let before = cmds().expect("actuator of the previous release");
    wait_for("commands flowing again after the rollback", T, || {
        (cmds()? > before).then_some(())
    });

    // A failed host stops the rollout: the hosts after it are not touched.
    let (code, out) = lab.deploy(&bad, "dev2,dev1", 10);
    assert_eq!(code, 1);
    assert!(out.contains("dev1: skipped"), "{out}");
}

/// The release a deploy copied to `host`, from its progress line.
fn copied(out: &str, host: &str) -> String {
    let prefix = format!("deploy: {host}: copying release ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("nothing was copied to {host}:\n{out}"))
        .to_owned()
}

/// A copy of deploy/ under `dir` whose service wrapper cannot start anything, as after a bad
/// edit: its `restart` stops the running release, then fails. Returns the copy's deploy.sh.
fn broken_wrapper_tree(dir: &Path) -> PathBuf {
    let tree = dir.join("broken");
    std::fs::create_dir_all(&tree).expect("dir");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(Path::new(REPO).join("deploy"))
        .arg(&tree)
        .status()
        .expect("cp")
        .success();
    assert!(ok, "copying deploy/");
    let wrapper = tree.join("deploy/qubot-service");
    let text = std::fs::read_to_string(&wrapper).expect("wrapper");
    let start = "start() {\n  running && return 0\n";
    assert!(
        text.contains(start),
        "deploy/qubot-service changed: update how this test breaks it"
    );
    let broken = "start() {\n  echo \"qubot-service: cannot start (broken wrapper)\" >&2\n  return 1\n";
    std::fs::write(&wrapper, text.replace(start, broken)).expect("write wrapper");
    tree.join("deploy/deploy.sh")
}

#[test]
fn failed_restart_or_switch_rolls_back_and_ends_in_the_summary() {
    let _g = serial();
    let Some(lab) = lab_or_skip("failed_restart_or_switch_rolls_back_and_ends_in_the_summary", 2) else {
        return;
    };
    let inv = lab.inventory("inventory.toml", "", &SPLIT, "");
    let broken = broken_wrapper_tree(&lab.dir);

    // A first release that cannot start: nothing to roll back to, so dev2 is stopped, the
    // rollout stops before dev1, and the script still ends in the summary.
    let (code, out) = lab.deploy_with(&broken, &inv, "dev2,dev1", 10);
    assert_eq!(code, 1, "a failed restart must fail the deploy");
    let vb = copied(&out, "dev2");
    assert!(
        out.contains(&format!(
            "deploy:   dev2: FAILED: restarting on {vb} failed and no previous release to roll back to (stopped)"
        )),
        "{out}"
    );
    assert!(out.contains("deploy:   dev1: skipped"), "{out}");
    assert!(!lab.root(1).exists(), "dev1 was touched after dev2 failed");

    // A good release on both.
    let (code, out) = lab.deploy(&inv, "all", 30);
    assert_eq!(code, 0, "good deploy failed");
    let v1 = switched_to(&out, "dev1");
    let v2 = switched_to(&out, "dev2");
    let pid = lab.supervisor_pid(2);

    // The broken release again: its restart stops dev2's supervisor, then fails. dev2 goes
    // back to v2, started again and healthy; dev1 is not touched.
    let (code, out) = lab.deploy_with(&broken, &inv, "dev2,dev1", 10);
    assert_eq!(code, 1, "a failed restart must fail the deploy");
    let vb = copied(&out, "dev2");
    assert!(
        out.contains(&format!(
            "deploy:   dev2: rolled back to {v2} (restarting on {vb} failed)"
        )),
        "no rollback in:\n{out}"
    );
    assert!(out.contains("deploy:   dev1: skipped"), "{out}");
    assert_eq!(lab.current(2), format!("releases/{v2}"));
    assert_eq!(lab.current(1), format!("releases/{v1}"));
    assert_ne!(
        lab.supervisor_pid(2),
        pid,
        "the rollback did not start the previous release again"
    );
    lab.assert_healthy(2);

    // A switch that fails: a directory (an operator's leftover) where the switch makes its
    // new link, so renaming it over `current` fails. dev2 stays on v2 and is restarted there.
    std::fs::create_dir_all(lab.root(2).join("current.new")).expect("dir");
    let changed = lab.inventory(
        "changed.toml",
        "",
        &SPLIT,
        "[hosts.dev2.node.planner]\nv_max = 0.15\n",
    );
    let pid = lab.supervisor_pid(2);
    let (code, out) = lab.deploy(&changed, "dev2", 10);
    assert_eq!(code, 1, "a failed switch must fail the deploy");
    let vs = copied(&out, "dev2");
    assert_ne!(vs, v2);
    assert!(
        out.contains(&format!(
            "deploy:   dev2: rolled back to {v2} (switching to {vs} failed)"
        )),
        "no rollback in:\n{out}"
    );
    assert_eq!(lab.current(2), format!("releases/{v2}"));
    assert_ne!(lab.supervisor_pid(2), pid, "the rollback did not restart v2");
    lab.assert_healthy(2);
}

#[test]
fn partitioned_link_safe_stops_then_the_flow_resumes() {
    let _g = serial();
    let Some(lab) = lab_or_skip("partitioned_link_safe_stops_then_the_flow_resumes", 2) else {
        return;
    };
    // Slow driving, so that the goal is still far when the link goes down.
    let inv = lab.inventory(
        "inventory.toml",
        "",
        &SPLIT,
        "[hosts.dev2.node.planner]\nv_max = 0.15\n",
    );
    let (code, _) = lab.deploy(&inv, "dev1,dev2", 30);
    assert_eq!(code, 0, "deploy failed");
    let cmds = |lab: &Lab| lab.received(2, 9903, "cmd");
    let scans = |lab: &Lab| lab.received(2, 9902, "scan");
    let stops = |lab: &Lab| lab.metric(2, 9903, "qubot_safe_stops_total", &[("reason", "cmd_timeout")]);
    wait_for("the robot driving", T, || (cmds(&lab)? > 20.0).then_some(()));
    let rss = |lab: &Lab| -> f64 {
        [(1, 9901), (2, 9902), (2, 9903)]
            .iter()
            .map(|&(i, p)| {
                lab.metric(i, p, "process_resident_memory_bytes", &[])
                    .unwrap_or(0.0)
            })
            .sum()
    };
    let rss_before = rss(&lab);
    let stops_before = stops(&lab).expect("actuator metrics");

    // dev1 (the sensor) drops every packet for a little over zenoh's lease (10 s): the heal
    // comes as the links expire, one side's before the other's, the timing that left a link
    // found by gossip down for good (it failed in CI, and in 2 of 2 runs at this length);
    // links to configured endpoints are redialled (docs/ARCHITECTURE.md, "Links between hosts").
    const CUT: Duration = Duration::from_millis(10_200);
    let cut = Instant::now();
    let how = lab.cut(1);
    let stopped = wait_for("the actuator to safe-stop", Duration::from_secs(10), || {
        (stops(&lab)? > stops_before).then(|| cut.elapsed())
    });
    let mut rss_max = rss_before;
    while let Some(left) = CUT.checked_sub(cut.elapsed()) {
        rss_max = rss_max.max(rss(&lab));
        std::thread::sleep(left.min(Duration::from_millis(500)));
    }
    let scans_cut = scans(&lab).expect("planner metrics");
    lab.heal(1);
    let healed = Instant::now();
    let (c0, s0) = (cmds(&lab).expect("actuator"), scans_cut);
    wait_for("scans and commands flowing again after the heal", T, || {
        (scans(&lab)? > s0 + 10.0 && cmds(&lab)? > c0 + 10.0).then_some(())
    });
    let resumed = healed.elapsed();
    rss_max = rss_max.max(rss(&lab));
    println!(
        "partition ({how}): safe stop {stopped:?} after the cut, flow resumed {resumed:?} after the heal, \
         RSS of the three actors {:.1} MiB before, {:.1} MiB max",
        rss_before / 1048576.0,
        rss_max / 1048576.0
    );
    assert!(
        rss_max < rss_before + 64.0 * 1048576.0,
        "memory grew during the partition: {rss_before} -> {rss_max} bytes"
    );
}

/// What the deploy script relies on from `qubot inventory`: a bad inventory is exit 2 with the
/// error on stderr, naming the field; a good one is exit 0 and one line on stdout; `inventory
/// hosts` lists a robot's boards, one a line. (Which field and why: the inventory's unit
/// tests, `qubot_ops::inventory`.)
#[test]
fn inventory_errors_name_the_field_and_exit_2() {
    let dir = TempDir::new("inv");
    let f = dir.join("bad.toml");
    // A deploy root that would end the quoting of the remote commands.
    std::fs::write(
        &f,
        "robot = \"r\"\n[hosts.a]\naddress = \"10.0.0.1\"\nroot = \"/opt/q'; reboot; '\"\n\
         actors = [\"sensor\", \"planner\", \"actuator\"]\n",
    )
    .expect("write");
    let (code, _, err) = run(&["inventory", "check", &f.display().to_string()], T);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("inventory: hosts.a.root: "), "{err}");
    let (code, out, err) = run(
        &["inventory", "check", &format!("{REPO}/deploy/inventory.toml")],
        T,
    );
    assert_eq!(code, 0, "shipped inventory: {err}");
    assert!(out.contains("ok (2 hosts, robot qubot-one)"), "{out}");
    let (code, out, err) = run(&["inventory", "check", &format!("{REPO}/deploy/fleet.toml")], T);
    assert_eq!(code, 0, "shipped fleet inventory: {err}");
    assert!(out.contains("ok (4 hosts, robots qubot-one qubot-two)"), "{out}");
    // A robot is a selector: its boards.
    let (code, out, err) = run(
        &[
            "inventory",
            "hosts",
            &format!("{REPO}/deploy/fleet.toml"),
            "qubot-two",
        ],
        T,
    );
    assert_eq!(code, 0, "{err}");
    let hosts: Vec<&str> = out.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(hosts, ["dev3", "dev4"], "{out}");
}

/// An unauthenticated fleet is a warning, not an error: exit 0, stdout as it was, the
/// warning once on stderr (its wording: `qubot_ops::inventory::security`'s tests); none for
/// a fleet with mutual TLS.
#[test]
fn inventory_check_warns_on_stderr_when_the_fleet_is_unauthenticated() {
    let dir = TempDir::new("inv-tls");
    let f = dir.join("inventory.toml");
    let check = |fleet: &str| {
        std::fs::write(
            &f,
            format!(
                "robot = \"r\"\n{fleet}[hosts.a]\naddress = \"10.0.0.1\"\n\
                 actors = [\"sensor\", \"planner\", \"actuator\"]\n"
            ),
        )
        .expect("write");
        run(&["inventory", "check", &f.display().to_string()], T)
    };
    let name = f.display().to_string();
    for fleet in ["[fleet]\ntls = false\nzenoh_port = 7500\n", ""] {
        let (code, out, err) = check(fleet);
        assert_eq!(code, 0, "a warning, not an error: {err}");
        assert_eq!(
            out,
            format!("{name}: ok (1 hosts, robot r)\n"),
            "stdout stays as it was"
        );
        assert_eq!(err.matches("the fleet is UNAUTHENTICATED").count(), 1, "{err}");
        assert!(
            err.contains(&format!("WARNING: {name}: fleet.tls = false")),
            "{err}"
        );
    }
    let (code, out, err) = check("[fleet]\ntls = true\n");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok ("), "{out}");
    assert!(
        !err.contains("WARNING"),
        "a fleet with mutual TLS was warned about: {err}"
    );
}

#[test]
fn systemd_unit_verifies_clean() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        skip_or_fail(
            "systemd_unit_verifies_clean",
            "systemd-analyze is not installed (apt-get install systemd)",
        );
        return;
    };
    assert!(out.status.success());
    // verify checks that ExecStart exists: point the unit at a release holding this binary.
    let dir = TempDir::new("unit");
    std::fs::create_dir_all(dir.join("current")).expect("dir");
    std::fs::copy(QUBOT, dir.join("current/qubot")).expect("copy binary");
    // The board's unit and the site router's.
    for name in ["qubot.service", "qubot-router.service"] {
        let unit = std::fs::read_to_string(format!("{REPO}/deploy/systemd/{name}")).expect("unit");
        let f = dir.join(name);
        std::fs::write(&f, unit.replace("/opt/qubot", &dir.path().display().to_string()))
            .expect("write unit");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&f)
            .output()
            .expect("systemd-analyze");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "systemd-analyze verify {name}: {err}"
        );
    }
}
