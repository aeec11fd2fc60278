//! A fleet in the lab (`common::lab`): two robots of two boards each on four network-namespace
//! devices and a site router in a fifth, deployed and started as an operator would. The same
//! on loopback, with the router killed and restarted: `fleet.rs`.

mod common;

use common::{counters::assert_apart, lab::*, prometheus::Prometheus, *};

/// The site-router lab: four boards (two robots of two boards each) and a fifth namespace for
/// the router, started with the arguments the inventory generates. Both robots reach their
/// goals, neither takes the other's traffic (counted), the router holds every process's
/// session, and Prometheus finds both robots through the file the deploy wrote.
#[test]
fn two_robots_of_two_boards_through_a_router_namespace() {
    let _g = serial();
    let Some(lab) = lab_or_skip("two_robots_of_two_boards_through_a_router_namespace", 5) else {
        return;
    };
    let inv = lab.fleet_inventory(
        "fleet.toml",
        &format!(
            "world = \"corridor\"\n[fleet]\nwave = 2\nrouter = \"site\"\n[routers.site]\naddress = \"{}\"\n",
            lab.addr(5)
        ),
        "",
    );
    let router = lab.router(5, &inv, "site");
    wait_for("the router's /metrics", T, || router.peer_sessions());

    let (code, out) = lab.deploy(&inv, "all", 30);
    assert_eq!(code, 0, "fleet deploy failed");
    for (board, robot) in [(2, "qubot-one"), (4, "qubot-two")] {
        lab.wait_goal(board, &format!("{robot} to reach its goal"));
    }
    // Every process of every board on the router: four supervisors and six actors.
    wait_for("all ten processes on the router", T, || {
        (router.peer_sessions()? == 10.0).then_some(())
    });
    // Apart: no planner took more scans than its own robot's sensor sent, nothing foreign.
    for (sensor, planner) in [(1, 2), (3, 4)] {
        assert_apart(
            &format!("dev{sensor} and dev{planner}"),
            &lab.at(sensor, 9901),
            &lab.at(planner, 9902),
            &[lab.at(planner, 9902), lab.at(planner, 9903)],
        );
    }
    // One targets file covers both robots.
    let prom = Prometheus::start(&lab.dir.join("prom"));
    wait_for("Prometheus to scrape all 10 fleet processes", T, || {
        (prom.query("up{job=\"qubot-fleet\"} == 1") == Some(10)).then_some(())
    });
    let robots = "count by (robot) (qubot_build_info{job=\"qubot-fleet\"})";
    assert_eq!(prom.query(robots), Some(2), "{robots}\n{out}");
}
