//! A secure fleet in the lab (`common::lab`): two robots of two boards each on four
//! network-namespace devices and their site router on the lab's router device, with mutual TLS
//! and access control everywhere, all deployed by one `deploy.sh ... all` as an operator runs
//! it. The same fleet on loopback, with the router killed and restarted: `fleet.rs`.

mod common;

use common::{
    counters::assert_apart,
    lab::*,
    prometheus::{dashboard_queries, Prometheus, ROUTER_SERIES},
    *,
};

const ROBOTS: [(usize, &str); 2] = [(2, "qubot-one"), (4, "qubot-two")];

/// The probes join as zenoh clients of the router: it does not forward between the peers it
/// serves (docs/ARCHITECTURE.md §10), so a peer would prove nothing either way.
const CLIENT: &str = "mode=\"client\"";

/// The fleet deployed router first; both robots reach their goals apart, the router serves
/// both and is watched; strangers and robot one's certificates get nothing of robot two's; a
/// board's certificate is rotated by redeploying that board alone; a router release that fails
/// its health check is rolled back before any board is touched.
#[test]
fn a_secure_fleet_is_deployed_router_first_and_keeps_each_robot_to_itself() {
    let _g = serial();
    let Some(lab) = lab_or_skip(
        "a_secure_fleet_is_deployed_router_first_and_keeps_each_robot_to_itself",
        4,
    ) else {
        return;
    };
    let router_at = |port: u16| lab.at(ROUTER, port);
    let head = format!(
        "world = \"corridor\"\n[fleet]\ntls = true\nwave = 2\nrouter = \"site\"\n\
         [routers.site]\naddress = \"{}\"\nroot = \"{}\"\n",
        lab.addr(ROUTER),
        lab.root(ROUTER).display()
    );
    let inv = lab.fleet_inventory("fleet.toml", &head, "");
    let inv_arg = inv.display().to_string();
    let (code, _, err) = run(&["inventory", "check", &inv_arg], T);
    assert_eq!(code, 0, "a secure fleet with a router fails the check: {err}");
    assert!(!err.contains("UNAUTHENTICATED"), "{err}");
    let (code, out) = lab.script("certs.sh", &[&inv_arg], &[]);
    assert_eq!(code, 0, "certs: {out}");
    let certs = lab.dir.join("certs");
    let subject = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(certs.join("site.crt"))
        .output()
        .expect("openssl");
    assert!(
        String::from_utf8_lossy(&subject.stdout).contains("CN = site"),
        "the router's certificate: {subject:?}"
    );

    // --- Deployed in one go, the router first.
    let (code, out) = lab.deploy(&inv, "all", 30);
    assert_eq!(code, 0, "secure fleet deploy failed");
    let copying = |h: &str| {
        out.find(&format!("deploy: {h}: copying"))
            .unwrap_or_else(|| panic!("{h} was not copied:\n{out}"))
    };
    assert!(
        copying("site") < copying("dev1"),
        "the router did not go first:\n{out}"
    );
    switched_to(&out, "site");
    for (board, robot) in ROBOTS {
        lab.wait_goal(board, &format!("{robot} to reach its goal"));
    }
    for (sensor, planner) in [(1, 2), (3, 4)] {
        assert_apart(
            &format!("dev{sensor} and dev{planner}"),
            &lab.at(sensor, 9901),
            &lab.at(planner, 9902),
            &[lab.at(planner, 9902), lab.at(planner, 9903)],
        );
    }
    // The router's own health check, as the deploy ran it: both robots served.
    let root = lab.root(ROUTER).display().to_string();
    let health = |extra: &str| {
        lab.ssh(
            ROUTER,
            &format!("{root}/current/qubot health --router --config {root}/current/router.toml --timeout 30 {extra}"),
        )
    };
    let (code, report) = health("--expect-robots qubot-one,qubot-two");
    assert_eq!(code, 0, "the router is not healthy: {report}");
    assert_eq!(health("--served").1.trim(), "qubot-one,qubot-two");
    for (_, robot) in ROBOTS {
        let boards = |name: &str| lab.metric(ROUTER, 9899, name, &[("fleet_robot", robot)]);
        assert_eq!(boards("qubot_router_boards"), Some(2.0), "{robot}");
        assert_eq!(boards("qubot_router_expected_boards"), Some(2.0), "{robot}");
    }
    // Prometheus finds both robots and the router through the file the deploy wrote.
    let prom = Prometheus::start(&lab.dir.join("prom"));
    wait_for(
        "Prometheus to scrape the 10 fleet processes and the router",
        T,
        || (prom.query("up{job=\"qubot-fleet\"} == 1") == Some(11)).then_some(()),
    );
    let robots = "count by (robot) (qubot_build_info{job=\"qubot-fleet\",process!=\"router\"})";
    assert_eq!(prom.query(robots), Some(2), "{robots}");
    assert_eq!(
        prom.query("qubot_router_boards{job=\"qubot-fleet\",process=\"router\"} == 2"),
        Some(2)
    );

    // --- Strangers and robot one's certificates, at the router.
    let denied = |action: &str| lab.metric(ROUTER, 9899, "qubot_router_denied_total", &[("action", action)]);
    let router = format!("tls/{}", router_at(7500));
    let scan2 = "qubot/qubot-two/sensor/lidar0/scan";
    let listen = |cfg: &str, key: &str, connect: &str| {
        bounded(
            12,
            &[
                "listen",
                "--print",
                "--count",
                "1",
                "--key",
                key,
                "--zenoh-config",
                cfg,
                "--connect",
                connect,
                "--cfg",
                CLIENT,
            ],
        )
        .0
    };
    let ca_only = format!("root_ca_certificate: \"{}/ca.crt\"", certs.display());
    let stranger = peer_config(&lab.dir, "stranger", &ca_only);
    let plain = peer_config(&lab.dir, "plain", "");
    let one = peer_config(&lab.dir, "dev1-cert", &member_tls(&certs, "dev1"));
    let two = peer_config(&lab.dir, "dev3-cert", &member_tls(&certs, "dev3"));
    let sessions = || lab.metric(ROUTER, 9899, "qubot_router_sessions", &[("kind", "peer")]);
    assert_eq!(sessions(), Some(10.0), "every board process on the router");
    let scans2 = || lab.received(4, 9902, "scan");
    let before = scans2().expect("robot two's planner");
    for (who, cfg, connect) in [
        ("a process without a certificate", &stranger, router.clone()),
        ("a plain TCP process", &plain, format!("tcp/{}", router_at(7500))),
    ] {
        assert!(
            !listen(cfg, scan2, &connect).contains("\"seq\""),
            "{who} read robot two's scan"
        );
    }
    // Robot one's sensor host: its own robot's scans through the router (the control), none of
    // robot two's while robot two keeps driving.
    assert!(
        listen(&one, "qubot/qubot-one/sensor/lidar0/scan", &router).contains("\"seq\""),
        "robot one's certificate cannot read robot one's scans through the router"
    );
    assert!(
        !listen(&one, scan2, &router).contains("\"seq\""),
        "robot one's certificate read robot two's scans"
    );
    assert!(
        scans2().expect("planner") > before + 20.0,
        "robot two stopped meanwhile"
    );
    assert!(
        denied("declare_subscriber").is_some_and(|n| n > 0.0),
        "no subscription denial counted"
    );
    assert_eq!(
        sessions(),
        Some(10.0),
        "a stranger's session stayed on the router"
    );

    // Puts: robot one's certificate is given no subscriber of robot two's to put to, and
    // nothing arrives; robot two's sensor host puts the same bytes and they do arrive.
    let bad_magic = || {
        lab.metric(
            4,
            9902,
            "qubot_messages_dropped_total",
            &[("topic", "scan"), ("reason", "bad_magic")],
        )
    };
    let inject = |cfg: &str| {
        bounded(
            20,
            &[
                "inject",
                "--what",
                "bad-magic",
                "--count",
                "5",
                "--key",
                scan2,
                "--wait-subscriber",
                "5",
                "--zenoh-config",
                cfg,
                "--connect",
                &router,
                "--cfg",
                CLIENT,
            ],
        )
    };
    let (out, err) = inject(&one);
    assert!(
        !out.contains("\"total\":5") && err.contains("no subscriber"),
        "{out} {err}"
    );
    assert_eq!(
        bad_magic(),
        Some(0.0),
        "robot one's certificate put on robot two's keys"
    );
    let (out, err) = inject(&two);
    assert!(
        out.contains("\"total\":5"),
        "robot two's sensor host could not put: {out} {err}"
    );
    wait_for("robot two's own bytes to arrive", T, || {
        (bad_magic()? >= 5.0).then_some(())
    });

    // Liveliness: robot one's board announcing itself as robot two's sensor is refused at the
    // router; robot two's planner never rebinds.
    let rebinds = || lab.metric(4, 9902, "qubot_rebinds_total", &[]);
    let (rebinds_before, tokens_before) = (rebinds(), denied("liveliness_token").unwrap_or(0.0));
    let (out, err) = bounded(
        20,
        &[
            "flood",
            "--as-producer",
            "--key",
            scan2,
            "--count",
            "20",
            "--rate",
            "20",
            "--duration",
            "2",
            "--zenoh-config",
            &one,
            "--connect",
            &router,
            "--cfg",
            CLIENT,
        ],
    );
    wait_for("the router refusing robot one's token for robot two", T, || {
        (denied("liveliness_token")? > tokens_before).then_some(())
    });
    assert_eq!(
        rebinds(),
        rebinds_before,
        "robot two's planner rebound: {out} {err}"
    );
    // Said in the router's log within its one-second tick, naming the certificate.
    wait_for("the refusal in the router's log", T, || {
        let said = [
            "access control denied liveliness_token (ingress) on qubot/qubot-two/@live/sensor/lidar0/",
            "(certificate dev1)",
        ];
        (lab.log_lines(ROUTER, &said) > 0).then_some(())
    });

    // The dashboard's site-router panels, against this router (the pipeline's panels are
    // checked in observability.rs).
    let router_panels: Vec<_> = dashboard_queries()
        .into_iter()
        .filter(|q| q.2.contains(ROUTER_SERIES))
        .collect();
    assert!(router_panels.len() >= 5, "{router_panels:?}");
    let missing = prom.panels_without_data(&router_panels, "qubot-one");
    assert!(
        missing.is_empty(),
        "router panels without data:\n{}",
        missing.join("\n")
    );

    // --- A board's certificate rotated: that board alone is redeployed; the router and the
    // other robot keep running.
    let pids = |devs: &[usize]| devs.iter().map(|&i| lab.supervisor_pid(i)).collect::<Vec<_>>();
    let (router_pid, others) = (lab.supervisor_pid(ROUTER), pids(&[1, 2, 4]));
    let old_serial = std::fs::read(certs.join("dev3.crt")).expect("dev3.crt");
    for f in ["dev3.crt", "dev3.key"] {
        std::fs::remove_file(certs.join(f)).expect("remove");
    }
    let (code, out) = lab.script("certs.sh", &[&inv_arg], &[]);
    assert_eq!(code, 0, "certs: {out}");
    assert_ne!(
        std::fs::read(certs.join("dev3.crt")).expect("dev3.crt"),
        old_serial
    );
    // What the rotation costs (printed, for the README's figure): the deploy's time and the
    // safe stops of each robot's actuator meanwhile.
    let stops = |i: usize| lab.metric(i, 9903, "qubot_safe_stops_total", &[]);
    let (started, before) = (std::time::Instant::now(), [stops(2), stops(4)]);
    let (code, _) = lab.deploy(&inv, "dev3", 30);
    assert_eq!(code, 0, "redeploying dev3 with its new certificate");
    println!(
        "rotation: dev3 redeployed in {:.1} s; safe stops of robot one {:?} -> {:?}, robot two {:?} -> {:?}",
        started.elapsed().as_secs_f64(),
        before[0],
        stops(2),
        before[1],
        stops(4)
    );
    assert_eq!(
        (lab.supervisor_pid(ROUTER), pids(&[1, 2, 4])),
        (router_pid, others.clone())
    );
    lab.assert_healthy(3);
    assert_eq!(health("--served").1.trim(), "qubot-one,qubot-two");

    // --- A router release that fails its health check (its metrics port is sshd's) is rolled
    // back, and no board is touched, though every board's release changed too.
    let currents = |devs: &[usize]| devs.iter().map(|&i| lab.current(i)).collect::<Vec<_>>();
    let (router_release, boards_before) = (lab.current(ROUTER), currents(&[1, 2, 3, 4]));
    let broken = lab.fleet_inventory(
        "broken.toml",
        &head.replace("[routers.site]\n", "[routers.site]\nmetrics_port = 22\n"),
        "[hosts.dev1.node.sensor]\nbeams = 721\n[hosts.dev3.node.sensor]\nbeams = 721\n",
    );
    let (code, out) = lab.deploy(&broken, "all", 10);
    assert_eq!(code, 1, "a failed router deploy must fail the rollout");
    assert!(
        out.contains(&format!(
            "site: rolled back to {}",
            router_release.trim_start_matches("releases/")
        )),
        "{out}"
    );
    for i in 1..=4 {
        assert!(
            out.contains(&format!("deploy:   dev{i}: skipped")),
            "dev{i}:\n{out}"
        );
    }
    assert!(!out.contains("dev1: copying"), "a board was copied to:\n{out}");
    assert_eq!(currents(&[1, 2, 3, 4]), boards_before);
    assert_eq!(pids(&[1, 2, 4]), others, "a board was restarted");
    assert_eq!(lab.current(ROUTER), router_release);
    let (code, report) = health("--expect-robots qubot-one,qubot-two");
    assert_eq!(
        code, 0,
        "the rolled-back router does not serve both robots: {report}"
    );
}

/// The default lab (`just lab`), removed on drop.
struct DefaultLab;

impl Drop for DefaultLab {
    fn drop(&mut self) {
        let out = std::process::Command::new("just")
            .arg("lab-down")
            .current_dir(REPO)
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("just lab-down failed: {out:?}");
        }
    }
}

/// README's fleet commands, as written: `just lab 4`, then `just deploy all --inventory
/// deploy/fleet.toml` (the shipped fleet, no TLS). The lab makes the inventory's router device
/// too, the deploy starts the router first, and both robots reach their goals through it.
/// Only the binary under test, the bundle's staging and the targets' directory are set from
/// outside, so nothing is built and nothing lands in the repository's `target/`.
#[test]
fn the_readme_fleet_commands_work_as_written_router_included() {
    let _g = serial();
    let test = "the_readme_fleet_commands_work_as_written_router_included";
    if let Some(why) = unavailable() {
        return skip_or_fail(test, &format!("network-namespace deploy test: {why}"));
    }
    if !runs("just", &["--version"]) {
        return skip_or_fail(test, "`just` is not installed (cargo install just; .ci/run does)");
    }
    if runs("ip", &["link", "show", "qblabbr"]) {
        return skip_or_fail(
            test,
            "the default lab is up (just lab-down first): this test makes its own",
        );
    }
    let scratch = TempDir::new("readme-fleet");
    let just = |args: &[&str]| {
        let out = std::process::Command::new("just")
            .args(args)
            .current_dir(REPO)
            .env_remove("LAB_NAME")
            .env_remove("LAB_NET")
            .env_remove("LAB_DIR")
            .env_remove("QUBOT_SSH_CONFIG")
            .env_remove("QUBOT_CERTS")
            .env("QUBOT_BIN", QUBOT)
            .env("QUBOT_STAGE", scratch.join("stage"))
            .env("QUBOT_TARGETS", scratch.join("targets"))
            .output()
            .expect("just");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{text}");
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, out) = just(&["lab", "4"]);
    let _lab = DefaultLab;
    assert_eq!(code, 0, "just lab 4: {out}");
    assert!(out.contains("dev100  10.77.0.100"), "no router device: {out}");
    let (code, out) = just(&["deploy", "all", "--inventory", "deploy/fleet.toml"]);
    assert_eq!(code, 0, "just deploy all --inventory deploy/fleet.toml");
    assert!(out.contains("deploy: router: site"), "{out}");
    switched_to(&out, "site");
    let root = |i: usize| format!("/var/lib/qubot-lab/dev{i}/opt/qubot");
    let ssh = |i: usize, cmd: &str| {
        let out = std::process::Command::new("ssh")
            .args([
                "-F",
                "/var/lib/qubot-lab/ssh/config",
                &format!("root@10.77.0.{i}"),
                cmd,
            ])
            .output()
            .expect("ssh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for (board, robot) in ROBOTS {
        wait_for(&format!("{robot} to reach its goal"), T, || {
            let n = ssh(
                board,
                &format!("grep -c 'goal reached' {}/qubot.log || true", root(board)),
            );
            (n.trim() != "0").then_some(())
        });
    }
    let served = format!(
        "{r}/current/qubot health --router --config {r}/current/router.toml --served --timeout 30",
        r = root(100)
    );
    wait_for("the router serving both robots", T, || {
        (ssh(100, &served).trim() == "qubot-one,qubot-two").then_some(())
    });
}
