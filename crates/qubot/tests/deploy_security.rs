//! The fleet's security, deployed for real (`common::lab`): inventory values that would run
//! a command on the deploying machine or a device are refused before any host is touched;
//! with `fleet.tls = true` only the fleet's certificates connect, and each host may put only
//! the keys of the actors it runs (zenoh access control), counted at the receivers.

mod common;

use std::process::{Command, Stdio};

use common::{lab::*, *};

/// Everything in /tmp whose name starts with `prefix`.
fn tmp_entries(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/tmp")
        .expect("/tmp")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn hostile_inventory_values_are_rejected_before_any_host_is_touched() {
    let _g = serial();
    let Some(lab) = lab_or_skip(
        "hostile_inventory_values_are_rejected_before_any_host_is_touched",
        1,
    ) else {
        return;
    };
    let pid = std::process::id();
    let marker = format!("qubot-pwned-{pid}");
    let escape = format!("qubot-x-{pid}");
    let good = lab.inventory("good.toml", "", &["\"sensor\", \"planner\", \"actuator\""], "");
    let text = std::fs::read_to_string(&good).expect("inventory");
    let root_line = format!("root = \"{}\"", lab.root(1).display());
    let addr_line = format!("address = \"{}\"", lab.addr(1));
    assert!(text.contains(&root_line) && text.contains(&addr_line), "{text}");
    // Each would run `touch` somewhere: in the remote commands (root), as ssh's ProxyCommand
    // (user), when the service sources its env file on the device (log); the address only
    // reaches ssh's arguments, but is held to being an IP address all the same.
    let cases = [
        (
            "hosts.dev1.root",
            text.replace(
                &root_line,
                &format!("root = \"/tmp/{escape}'; touch /tmp/{marker}-root; '\""),
            ),
        ),
        (
            "hosts.dev1.user",
            format!("{text}user = \"-oProxyCommand=touch /tmp/{marker}-user\"\n"),
        ),
        (
            "hosts.dev1.log",
            format!("{text}log = \"info`touch /tmp/{marker}-log`\"\n"),
        ),
        (
            "hosts.dev1.address",
            text.replace(
                &addr_line,
                &format!("address = \"{}$(touch /tmp/{marker}-address)\"", lab.addr(1)),
            ),
        ),
    ];
    for (field, inventory) in cases {
        let f = lab.dir.join("hostile.toml");
        std::fs::write(&f, &inventory).expect("write inventory");
        let (code, _, err) = run(&["inventory", "check", &f.display().to_string()], T);
        assert_eq!(code, 2, "{field}: inventory check: {err}");
        assert!(err.contains(&format!("inventory: {field}: ")), "{err}");
        let (code, out) = lab.deploy(&f, "all", 10);
        assert_eq!(code, 2, "{field}: the deploy was not refused");
        assert!(
            out.contains(&format!("inventory: {field}: ")),
            "the error does not name {field}:\n{out}"
        );
        // Nothing ran and nothing was built or copied.
        assert_eq!(tmp_entries(&marker), Vec::<String>::new(), "{field}");
        assert_eq!(tmp_entries(&escape), Vec::<String>::new(), "{field}");
        assert!(!lab.dir.join("stage").exists(), "{field}: a bundle was built");
        assert!(!lab.root(1).exists(), "{field}: dev1 was touched");
    }
    // The device was reachable all along: the refusals are the inventory check's.
    assert_eq!(lab.ssh(1, "true").0, 0, "dev1 does not answer over SSH");
}

#[test]
fn only_fleet_certificates_connect_and_only_the_planner_commands() {
    let _g = serial();
    let Some(lab) = lab_or_skip("only_fleet_certificates_connect_and_only_the_planner_commands", 2) else {
        return;
    };
    // dev2 logs zenoh's access-control decisions, so that a denial is visible.
    let inv = lab.inventory(
        "inventory.toml",
        "[fleet]\ntls = true",
        &SPLIT,
        "log = \"info,zenoh=warn,zenoh::net::routing::interceptor::access_control=trace\"\n",
    );
    let (code, out) = lab.script("certs.sh", &[&inv.display().to_string()], &[]);
    assert_eq!(code, 0, "certs: {out}");
    let (code, _) = lab.deploy(&inv, "all", 30);
    assert_eq!(code, 0, "deploy over mutual TLS failed");
    let cmds = || lab.received(2, 9903, "cmd");
    wait_for("the robot driving over mutual TLS", T, || {
        (cmds()? > 20.0).then_some(())
    });

    let certs = lab.dir.join("certs");
    let ca = format!("root_ca_certificate: \"{}/ca.crt\"", certs.display());
    // A stranger that trusts the fleet CA but has no certificate of its own.
    let stranger = peer_config(&lab.dir, "stranger", &ca);
    // A stranger with a self-signed certificate that claims to be the planner's host.
    let fake = lab.dir.join("fake");
    std::fs::create_dir_all(&fake).expect("dir");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=dev2", "-keyout"])
        .arg(fake.join("dev2.key"))
        .arg("-out")
        .arg(fake.join("dev2.crt"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl self-signed certificate");
    std::fs::copy(certs.join("ca.crt"), fake.join("ca.crt")).expect("ca");
    let impostor = peer_config(&lab.dir, "impostor", &member_tls(&fake, "dev2"));
    let member1 = peer_config(&lab.dir, "member1", &member_tls(&certs, "dev1"));
    let member2 = peer_config(&lab.dir, "member2", &member_tls(&certs, "dev2"));
    let hub1 = format!("tls/{}:7447", lab.addr(1));
    let hub2 = format!("tls/{}:7447", lab.addr(2));

    // Scans: strangers read nothing; a fleet member does.
    let listen = |cfg: &str| {
        bounded(
            10,
            &[
                "listen",
                "--print",
                "--count",
                "1",
                // Its own robot's: a wildcard over robots reaches into another's, refused.
                "--key",
                "qubot/qubot-one/sensor/*/scan",
                "--zenoh-config",
                cfg,
                "--connect",
                &hub1,
            ],
        )
        .0
    };
    for (who, cfg) in [("stranger", &stranger), ("impostor", &impostor)] {
        let out = listen(cfg);
        assert!(!out.contains("\"seq\""), "{who} read a scan: {out}");
    }
    assert!(
        listen(&member1).contains("\"seq\""),
        "a fleet member cannot read scans"
    );

    // Commands: only the planner's host gets one through. The injected commands come from a
    // source the actuator is not bound to, so any that reached it would be counted as dropped
    // with reason "foreign" (or "stale", were it bound to them).
    let stale = || {
        let reached = |reason| {
            lab.metric(
                2,
                9903,
                "qubot_messages_dropped_total",
                &[("topic", "cmd"), ("reason", reason)],
            )
        };
        Some(reached("stale")? + reached("foreign")?)
    };
    let key = "qubot/qubot-one/planner/main/cmd";
    let inject = |cfg: &str| {
        bounded(
            20,
            &[
                "inject",
                "--what",
                "stale-command",
                "--count",
                "5",
                "--key",
                key,
                "--wait-subscriber",
                "5",
                "--zenoh-config",
                cfg,
                "--connect",
                &hub2,
            ],
        )
    };
    for (who, cfg) in [("stranger", &stranger), ("impostor", &impostor)] {
        let (out, err) = inject(cfg);
        assert!(!out.contains("\"sent\""), "{who} could publish: {out} {err}");
    }
    let (out, err) = inject(&member1);
    assert!(out.contains("\"total\":5"), "dev1 did not even try: {out} {err}");
    let root2 = lab.root(2).display().to_string();
    wait_for("the denial in dev2's log", T, || {
        let (_, n) = lab.ssh(
            2,
            &format!("grep -a 'is unauthorized to' {root2}/qubot.log | grep -c '/cmd' || true"),
        );
        (n.trim() != "0").then_some(())
    });
    assert_eq!(
        stale(),
        Some(0.0),
        "a command from a non-planner host reached the actuator"
    );
    // The control: the same commands with the planner host's certificate do arrive.
    let (out, _) = inject(&member2);
    assert!(out.contains("\"total\":5"), "{out}");
    wait_for("the planner host's commands to arrive", T, || {
        (stale()? >= 5.0).then_some(())
    });
}

#[test]
fn each_host_puts_only_the_keys_of_the_actors_it_runs() {
    let _g = serial();
    let Some(lab) = lab_or_skip("each_host_puts_only_the_keys_of_the_actors_it_runs", 3) else {
        return;
    };
    // One actor per device, each logging zenoh's access-control decisions.
    let inv = lab.inventory(
        "inventory.toml",
        "[fleet]\ntls = true",
        &["\"sensor\"", "\"planner\"", "\"actuator\""],
        "",
    );
    let acl_log = "log = \"info,zenoh=warn,zenoh::net::routing::interceptor::access_control=trace\"";
    let text = std::fs::read_to_string(&inv).expect("inventory");
    let mut logged = String::new();
    for line in text.lines() {
        logged.push_str(line);
        logged.push('\n');
        if line.starts_with("actors = ") {
            logged.push_str(acl_log);
            logged.push('\n');
        }
    }
    assert_eq!(logged.matches(acl_log).count(), 3, "{logged}");
    std::fs::write(&inv, logged).expect("write inventory");
    let (code, out) = lab.script("certs.sh", &[&inv.display().to_string()], &[]);
    assert_eq!(code, 0, "certs: {out}");
    let (code, out) = lab.deploy(&inv, "all", 30);
    assert_eq!(code, 0, "deploy over mutual TLS failed");
    assert!(
        !out.contains("UNAUTHENTICATED"),
        "a fleet with tls = true was warned about:\n{out}"
    );

    // Every role's own keys cross hosts: scans dev1 -> dev2, commands dev2 -> dev3, state
    // dev3 -> dev1 (each every host's health saw its own tokens, or the deploy would fail).
    wait_for("scans, commands and state crossing the three hosts", T, || {
        (lab.received(2, 9902, "scan")? > 20.0
            && lab.received(3, 9903, "cmd")? > 20.0
            && lab.received(1, 9901, "state")? > 20.0)
            .then_some(())
    });
    // The clock probe crosses hosts under the same rules: the planner's host measures the
    // clocks of all three supervisors and actors (one kernel clock here: no skew).
    let health = lab.assert_healthy(2);
    let clocks = health["clocks"].as_object().expect("clocks");
    for (process, n) in [
        ("supervisor/", 3),
        ("sensor/", 1),
        ("planner/", 1),
        ("actuator/", 1),
    ] {
        assert_eq!(
            clocks.keys().filter(|k| k.starts_with(process)).count(),
            n,
            "clocks of {process} measured from dev2: {health}"
        );
    }

    // Damaged messages (bad magic) that any receiver counts as dropped when they reach it.
    let bad_magic = |i: usize, port: u16, topic: &str| {
        lab.metric(
            i,
            port,
            "qubot_messages_dropped_total",
            &[("topic", topic), ("reason", "bad_magic")],
        )
    };
    let certs = lab.dir.join("certs");
    // `qubot inject` inside device I's namespace, with device I's certificate, once it is
    // connected to every process of the fleet (three supervisors, three actors). The injector
    // does not listen, so it opens every link itself from what gossip tells it; zenoh never
    // retries a gossip link that failed to open (a TLS handshake lost on a busy machine), so
    // a fresh session gets up to three tries. Nothing is put before all six are connected, so
    // a retry cannot double the count.
    let inject = |i: usize, key: &str| {
        let host = format!("dev{i}");
        let cfg = peer_config(&lab.dir, &format!("member{i}"), &member_tls(&certs, &host));
        let hub = format!("tls/{}:7447", lab.addr(i));
        let mut tries = Vec::new();
        for _ in 0..3 {
            let (out, err) = lab.bounded_on(
                i,
                40,
                &[
                    "inject",
                    "--what",
                    "bad-magic",
                    "--count",
                    "5",
                    "--key",
                    key,
                    "--wait-subscriber",
                    "30",
                    "--wait-peers",
                    "6",
                    "--zenoh-config",
                    &cfg,
                    "--connect",
                    &hub,
                ],
            );
            if out.contains("\"total\":5") {
                return;
            }
            tries.push(format!("{out} {err}"));
        }
        panic!("{host} did not even try to put on {key}: {tries:?}");
    };
    let denied = |i: usize, key: &str| lab.log_lines(i, &["is unauthorized to", "Put (ingress)", key]);

    // Scans: the planner's host (dev2) and the actuator's (dev3) are refused by the planner.
    let scan = "qubot/qubot-one/sensor/lidar0/scan";
    for i in [2, 3] {
        let before = denied(2, scan);
        inject(i, scan);
        // Until the planner has refused all five, or one got through (said just below).
        wait_for(&format!("the planner refusing dev{i}'s 5 scans"), T, || {
            (denied(2, scan) >= before + 5 || bad_magic(2, 9902, "scan")? > 0.0).then_some(())
        });
        assert_eq!(
            bad_magic(2, 9902, "scan"),
            Some(0.0),
            "a scan put by dev{i} reached the planner"
        );
    }
    // State: the sensor's own host (dev1) and the planner's (dev2) are refused by the sensor
    // (and by every supervisor).
    let state = "qubot/qubot-one/actuator/base/state";
    for i in [1, 2] {
        let before = denied(1, state);
        inject(i, state);
        wait_for(&format!("dev1 refusing dev{i}'s state"), T, || {
            (denied(1, state) >= before + 5 || bad_magic(1, 9901, "state")? > 0.0).then_some(())
        });
        assert_eq!(
            bad_magic(1, 9901, "state"),
            Some(0.0),
            "a state put by dev{i} reached the sensor"
        );
    }
    // A tool's own liveliness token is no fleet actor's: refused too.
    assert!(
        lab.log_lines(
            2,
            &[
                "is unauthorized to",
                "Liveliness Token (ingress)",
                "qubot/qubot-one/@live/inject/"
            ]
        ) > 0,
        "dev2 accepted the liveliness token of a `qubot inject`"
    );

    // The controls: the same bytes from the role's own host do arrive, all five and only them.
    inject(1, scan);
    wait_for("the sensor host's scans to reach the planner", T, || {
        (bad_magic(2, 9902, "scan")? >= 5.0).then_some(())
    });
    inject(3, state);
    wait_for("the actuator host's state to reach the sensor", T, || {
        (bad_magic(1, 9901, "state")? >= 5.0).then_some(())
    });
    assert_eq!(
        bad_magic(2, 9902, "scan"),
        Some(5.0),
        "scans from other hosts arrived late"
    );
    assert_eq!(
        bad_magic(1, 9901, "state"),
        Some(5.0),
        "state from other hosts arrived late"
    );
}
