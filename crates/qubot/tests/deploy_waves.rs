//! Wave deploys to a fleet of lab devices (`common::lab`): the canary alone, then waves of
//! hosts in parallel, each gated on health and on the loops of the robots it completed; a
//! failed wave is rolled back whole and the waves after it are skipped.

mod common;

use common::{lab::*, *};

/// A wave deploy to four devices: the canary alone, then waves of two in parallel, each
/// gated on health and on the loops of the robots it completed. A release broken on the last
/// wave's host rolls that wave back and stops, leaving the robot the earlier waves completed on
/// the new release (and the fleet mixed, said so); a release broken beside a good host rolls
/// the whole wave back, the good host too, and skips the waves after it.
#[test]
fn wave_deploy_gates_each_wave_and_rolls_a_failed_wave_back() {
    let _g = serial();
    let Some(lab) = lab_or_skip("wave_deploy_gates_each_wave_and_rolls_a_failed_wave_back", 4) else {
        return;
    };
    let head = "[fleet]\nwave = 2\n";
    let good = lab.fleet_inventory("fleet.toml", head, "");
    let (code, out) = lab.deploy(&good, "all", 30);
    assert_eq!(code, 0, "first wave deploy failed");
    assert!(out.contains("deploy: canary: dev1\n"), "{out}");
    assert!(out.contains("deploy: wave 1: dev2 dev3\n"), "{out}");
    assert!(out.contains("deploy: wave 2: dev4\n"), "{out}");
    for robot in ["qubot-one", "qubot-two"] {
        assert!(
            out.contains(&format!("robot {robot}: waiting")),
            "the loop of {robot} was not checked:\n{out}"
        );
    }
    let first: Vec<String> = (1..=4).map(|i| switched_to(&out, &format!("dev{i}"))).collect();

    // Every host gets a new release (harmless tuning); dev4's actuator cannot bind its
    // metrics port (sshd holds 22), so wave 2 fails.
    let tuned = "[hosts.dev1.node.sensor]\nbeams = 721\n[hosts.dev2.node.planner]\nsafety_margin_m = 0.16\n\
                 [hosts.dev3.node.sensor]\nbeams = 721\n";
    let bad = lab.fleet_inventory(
        "bad.toml",
        head,
        &format!("{tuned}[hosts.dev4.node.actuator]\nmetrics_port = 22\n"),
    );
    let (code, out) = lab.deploy(&bad, "all", 10);
    assert_eq!(code, 1, "a failed wave must fail the deploy");
    let second: Vec<String> = (1..=3).map(|i| switched_to(&out, &format!("dev{i}"))).collect();
    assert!(
        out.contains(&format!("dev4: rolled back to {}", first[3])),
        "{out}"
    );
    assert!(out.contains("WARNING: the fleet is mixed"), "{out}");
    assert!(out.contains("robot qubot-one: waiting"), "{out}");
    for i in 1..=3 {
        assert_eq!(lab.current(i), format!("releases/{}", second[i - 1]), "dev{i}");
    }
    assert_eq!(lab.current(4), format!("releases/{}", first[3]), "dev4");
    // Robot one, completed by the canary and wave 1, runs the new release with its loop closed.
    let cmds = || lab.received(2, 9903, "cmd");
    let before = cmds().expect("robot one's actuator");
    wait_for("robot one's loop on the new release", T, || {
        (cmds()? > before + 10.0).then_some(())
    });

    // Broken beside a good host in the same wave: the good one (dev2) is rolled back too, and
    // wave 2 is not touched.
    let beside = lab.fleet_inventory(
        "beside.toml",
        head,
        "[hosts.dev1.node.sensor]\nbeams = 721\n[hosts.dev2.node.planner]\nsafety_margin_m = 0.17\n\
         [hosts.dev3.node.sensor]\nmetrics_port = 22\n",
    );
    let (code, out) = lab.deploy(&beside, "all", 10);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("deploy:   dev2: rolled back to "), "{out}");
    assert!(out.contains("wave 1 (dev3)"), "{out}");
    assert!(out.contains("deploy:   dev4: skipped"), "{out}");
}
