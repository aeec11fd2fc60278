//! Per-host files generated from the inventory: the node config (which actors, endpoints to
//! the other hosts, metrics on the host's address) and the Prometheus file-SD targets. Nobody
//! edits a host's config by hand.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use qubot_node::{
    router::{Board, RouterConfig},
    NodeConfig, Role, SUPERVISOR,
};

use super::model::{Inventory, InventoryError};

/// Where the release that runs lives on a device (`<root>/current`).
pub fn current_dir(root: &Path) -> PathBuf {
    root.join("current")
}

fn proto(inv: &Inventory) -> &'static str {
    if inv.fleet.tls {
        "tls"
    } else {
        "tcp"
    }
}

/// A zenoh endpoint of the fleet's protocol (`tcp`, or `tls` with `fleet.tls`).
fn endpoint(inv: &Inventory, address: &str, port: u16) -> String {
    format!("{}/{address}:{port}", proto(inv))
}

/// The zenoh hub of a host: its supervisor listens there, its actors and other hosts connect.
pub fn hub(inv: &Inventory, host: &str) -> Result<String, InventoryError> {
    let h = inv.host(host)?;
    Ok(endpoint(inv, &h.address, inv.fleet.zenoh_port))
}

/// The fleet's site router, where every process connects (`fleet.router`), if any.
pub fn router_endpoint(inv: &Inventory) -> Option<String> {
    let r = &inv.routers[inv.fleet.router.as_ref()?];
    Some(endpoint(inv, &r.address, r.port))
}

/// The config of router `name` (`qubot router --config`): it listens on its address and port,
/// serves metrics there, and knows the boards that connect to it (for its health check and
/// its robots-seen gauges). With `fleet.tls` it reads its release's `zenoh.json5`.
pub fn router_config(inv: &Inventory, name: &str) -> Result<RouterConfig, InventoryError> {
    let r = inv.router(name)?;
    let ip = |field: String, a: &str| {
        a.parse().map_err(|_| InventoryError {
            field,
            reason: format!("{a:?} is not an IP address"),
        })
    };
    let mut boards = BTreeMap::new();
    for b in inv.boards_of_router(name) {
        let h = inv.host(b)?;
        boards.insert(
            b.to_owned(),
            Board {
                robot: inv.robot_of(b).to_owned(),
                address: ip(format!("hosts.{b}.address"), &h.address)?,
            },
        );
    }
    let cfg = RouterConfig {
        name: name.to_owned(),
        site: RouterConfig::default_site(),
        listen: vec![endpoint(inv, &r.address, r.port)],
        connect: Vec::new(),
        metrics_addr: SocketAddr::new(ip(format!("routers.{name}.address"), &r.address)?, r.metrics_port),
        zenoh_config: inv.fleet.tls.then(|| current_dir(&r.root).join("zenoh.json5")),
        boards,
    };
    cfg.validate().map_err(|e| InventoryError {
        field: format!("routers.{name}"),
        reason: e.to_string(),
    })?;
    Ok(cfg)
}

/// The command-line arguments of `qubot router` for router `name`: it listens on its address
/// and port and serves metrics there, its series labelled `host=<name>`. Every value was
/// checked to be inert for a shell.
pub fn router_args(inv: &Inventory, name: &str) -> Result<Vec<String>, InventoryError> {
    let r = inv.routers.get(name).ok_or_else(|| InventoryError {
        field: "ROUTER".into(),
        reason: format!("{name:?} is not defined under [routers]"),
    })?;
    Ok(vec![
        "--name".into(),
        name.into(),
        "--listen".into(),
        endpoint(inv, &r.address, r.port),
        "--metrics-addr".into(),
        format!("{}:{}", r.address, r.metrics_port),
        "--host-label".into(),
        name.into(),
    ])
}

/// The node config of `host`, validated; the host's `node` table is merged over it.
pub fn node_config(inv: &Inventory, host: &str) -> Result<NodeConfig, InventoryError> {
    let h = inv.host(host)?;
    let current = current_dir(&h.root);
    let mut cfg = NodeConfig {
        robot: inv.robot_of(host).to_owned(),
        world: inv.world.clone(),
        worlds_dir: current.join("worlds"),
        ..NodeConfig::default()
    };
    let field = |k: &str| format!("hosts.{host}.{k}");
    cfg.metrics_bind = h.address.parse().map_err(|_| InventoryError {
        field: field("address"),
        reason: format!("{:?} is not an IP address", h.address),
    })?;
    cfg.zenoh.hub = hub(inv, host)?;
    // An ephemeral port on the host's address: peers on other hosts learn it by gossip and
    // connect to each actor directly (zenoh peers do not route for each other).
    cfg.zenoh.listen = vec![format!("{}/{}:0", proto(inv), h.address)];
    // The hubs of the robot's other boards (never another robot's), then the site router.
    cfg.zenoh.connect = inv
        .hosts_of(&cfg.robot)
        .into_iter()
        .filter(|&n| n != host)
        .map(|n| hub(inv, n))
        .collect::<Result<_, _>>()?;
    cfg.zenoh.connect.extend(router_endpoint(inv));
    // Every actor of the robot at a fixed port, so that each one dials its producers as
    // configured endpoints (redialled after a partition; gossip links are not).
    for board in inv.hosts_of(&cfg.robot) {
        let b = inv.host(board)?;
        for role in Role::ALL.into_iter().filter(|r| b.runs(r.name())) {
            cfg.zenoh.actors.insert(
                role.name().to_owned(),
                endpoint(inv, &b.address, inv.actor_zenoh_port(role)),
            );
        }
    }
    if inv.fleet.tls {
        cfg.zenoh.config = Some(current.join("zenoh.json5"));
    }
    cfg.supervisor.metrics_port = h.ports.supervisor;
    cfg.sensor.enabled = h.runs(Role::Sensor.name());
    cfg.sensor.metrics_port = h.ports.sensor;
    cfg.planner.enabled = h.runs(Role::Planner.name());
    cfg.planner.metrics_port = h.ports.planner;
    cfg.actuator.enabled = h.runs(Role::Actuator.name());
    cfg.actuator.metrics_port = h.ports.actuator;

    let invalid = |reason: String| InventoryError {
        field: field("node"),
        reason,
    };
    if !h.node.is_empty() {
        let mut table = toml::Table::try_from(&cfg).map_err(|e| invalid(e.to_string()))?;
        merge(&mut table, &h.node);
        cfg = table
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.message().to_owned()))?;
    }
    // The world file ships in the bundle and is checked there; the rest is checked now.
    let mut check = cfg.clone();
    check.world = "default".into();
    check.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(cfg)
}

fn merge(into: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (into.get_mut(k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Prometheus file-SD target groups (`deploy/targets/README.md`) for `routers` and `hosts`:
/// one group per process, labelled only with `process` (`router` for a site router).
pub fn targets_json(inv: &Inventory, routers: &[String], hosts: &[String]) -> Result<String, InventoryError> {
    let mut groups = Vec::new();
    for name in routers {
        let r = inv.router(name)?;
        groups.push(serde_json::json!({
            "targets": [format!("{}:{}", r.address, r.metrics_port)],
            "labels": { "process": "router" },
        }));
    }
    for name in hosts {
        let h = inv.host(name)?;
        let procs =
            std::iter::once(SUPERVISOR).chain(Role::ALL.map(Role::name).into_iter().filter(|a| h.runs(a)));
        for p in procs {
            groups.push(serde_json::json!({
                "targets": [format!("{}:{}", h.address, h.ports.of(p))],
                "labels": { "process": p },
            }));
        }
    }
    // `{:#}`: serde_json's pretty printer.
    Ok(format!("{:#}\n", serde_json::Value::Array(groups)))
}

/// The host's `env` file (sourced by `qubot-service`, systemd's `EnvironmentFile=`), when the
/// inventory sets `log` or `foxglove` (`qubot up` reads `QUBOT_FOXGLOVE` as `--foxglove`).
pub fn env_file(inv: &Inventory, host: &str) -> Result<Option<String>, InventoryError> {
    let h = inv.host(host)?;
    let mut env = String::new();
    if let Some(log) = &h.log {
        env.push_str(&format!("RUST_LOG={}\n", sh_quote(log)));
    }
    if let Some(addr) = h.foxglove {
        env.push_str(&format!("QUBOT_FOXGLOVE={}\n", sh_quote(&addr.to_string())));
    }
    Ok((!env.is_empty()).then_some(env))
}

/// `s` as one word of a POSIX shell (and of a systemd environment file): unchanged when it is
/// made only of characters no shell interprets, else in single quotes, each `'` written `'\''`.
pub fn sh_quote(s: &str) -> String {
    let plain = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ',' | ':' | '=' | '@' | '%' | '+')
    };
    if !s.is_empty() && s.chars().all(plain) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INV: &str = r#"
robot = "r1"
[hosts.a]
address = "10.0.0.1"
root = "/srv/a"
actors = ["sensor"]
[hosts.b]
address = "10.0.0.2"
actors = ["planner", "actuator"]
[hosts.b.node.actuator]
cmd_timeout_ms = 300
"#;

    #[test]
    fn node_config_wires_hosts_together() {
        let inv = Inventory::parse(INV).expect("valid");
        let a = node_config(&inv, "a").expect("a");
        assert!(a.sensor.enabled && !a.planner.enabled && !a.actuator.enabled);
        assert_eq!(a.zenoh.hub, "tcp/10.0.0.1:7447");
        assert_eq!(a.zenoh.connect, ["tcp/10.0.0.2:7447"]);
        assert_eq!(a.zenoh.listen, ["tcp/10.0.0.1:0"]);
        assert_eq!(a.worlds_dir, PathBuf::from("/srv/a/current/worlds"));
        assert_eq!(a.metrics_bind.to_string(), "10.0.0.1");
        let b = node_config(&inv, "b").expect("b");
        assert_eq!(b.actuator.cmd_timeout_ms, 300);
        assert_eq!(b.actuator.v_max, NodeConfig::default().actuator.v_max);
        assert!(!b.sensor.enabled && b.planner.enabled);
        // Every board knows where each of the robot's actors listens, at fixed ports.
        let placed = |c: &NodeConfig| c.zenoh.actors.clone().into_iter().collect::<Vec<_>>();
        let expect = [
            ("actuator", "tcp/10.0.0.2:7450"),
            ("planner", "tcp/10.0.0.2:7449"),
            ("sensor", "tcp/10.0.0.1:7448"),
        ]
        .map(|(r, e)| (r.to_owned(), e.to_owned()));
        assert_eq!(placed(&a), expect);
        assert_eq!(placed(&b), expect);
    }

    #[test]
    fn a_fleet_board_connects_to_its_own_robot_and_the_router() {
        let inv = Inventory::parse(crate::inventory::model::tests::FLEET).expect("valid");
        let c = node_config(&inv, "c").expect("c");
        assert_eq!(c.robot, "r2");
        assert_eq!(c.zenoh.connect, ["tcp/10.0.0.4:7447", "tcp/10.0.0.100:7500"]);
        let a = node_config(&inv, "a").expect("a");
        assert_eq!(a.robot, "r1");
        assert_eq!(a.zenoh.connect, ["tcp/10.0.0.2:7447", "tcp/10.0.0.100:7500"]);
        // Only its own robot's actors.
        assert!(a
            .zenoh
            .actors
            .values()
            .all(|e| e.contains("10.0.0.1:") || e.contains("10.0.0.2:")));
        assert!(c
            .zenoh
            .actors
            .values()
            .all(|e| !e.contains("10.0.0.1:") && !e.contains("10.0.0.2:")));
    }

    #[test]
    fn router_args_come_from_the_inventory() {
        let inv = Inventory::parse(crate::inventory::model::tests::FLEET).expect("valid");
        assert_eq!(
            router_args(&inv, "site").expect("site").join(" "),
            "--name site --listen tcp/10.0.0.100:7500 --metrics-addr 10.0.0.100:9899 --host-label site"
        );
        assert_eq!(router_args(&inv, "nope").expect_err("unknown").field, "ROUTER");
    }

    #[test]
    fn a_router_config_lists_the_boards_it_serves_and_its_target() {
        let fleet = crate::inventory::model::tests::FLEET;
        let inv = Inventory::parse(&fleet.replace("[fleet]", "[fleet]\ntls = true")).expect("valid");
        let r = router_config(&inv, "site").expect("site");
        assert_eq!(r.listen, ["tls/10.0.0.100:7500"]);
        assert_eq!(r.metrics_addr.to_string(), "10.0.0.100:9899");
        assert_eq!(r.zenoh_config, Some("/opt/qubot/current/zenoh.json5".into()));
        assert_eq!(
            r.expected_boards().into_iter().collect::<Vec<_>>(),
            [("r1", 2), ("r2", 2)]
        );
        assert_eq!(r.boards["c"].address.to_string(), "10.0.0.3");
        let plain = router_config(&Inventory::parse(fleet).expect("valid"), "site").expect("site");
        assert_eq!(
            (plain.listen[0].as_str(), plain.zenoh_config),
            ("tcp/10.0.0.100:7500", None)
        );
        assert_eq!(router_config(&inv, "nope").expect_err("unknown").field, "ROUTER");
        let j = targets_json(&inv, &["site".into()], &[]).expect("json");
        let v: serde_json::Value = serde_json::from_str(&j).expect("json");
        assert_eq!(
            v,
            serde_json::json!([{"targets": ["10.0.0.100:9899"], "labels": {"process": "router"}}])
        );
    }

    #[test]
    fn tls_switches_every_endpoint_and_points_at_the_zenoh_file() {
        let inv =
            Inventory::parse(&INV.replace("[hosts.a]", "[fleet]\ntls = true\n[hosts.a]")).expect("valid");
        let b = node_config(&inv, "b").expect("b");
        assert_eq!(b.zenoh.hub, "tls/10.0.0.2:7447");
        assert_eq!(b.zenoh.connect, ["tls/10.0.0.1:7447"]);
        assert_eq!(b.zenoh.config, Some("/opt/qubot/current/zenoh.json5".into()));
    }

    #[test]
    fn targets_list_each_process_of_each_host() {
        let inv = Inventory::parse(INV).expect("valid");
        let j = targets_json(&inv, &[], &["a".into(), "b".into()]).expect("json");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap_or_else(|e| panic!("{e}: {j}"));
        let group = |t: &str, p: &str| serde_json::json!({"targets": [t], "labels": {"process": p}});
        assert_eq!(
            v,
            serde_json::json!([
                group("10.0.0.1:9900", "supervisor"),
                group("10.0.0.1:9901", "sensor"),
                group("10.0.0.2:9900", "supervisor"),
                group("10.0.0.2:9902", "planner"),
                group("10.0.0.2:9903", "actuator"),
            ]),
            "{j}"
        );
        assert!(j.ends_with("]\n"), "{j}");
    }

    #[test]
    fn sh_quote_makes_one_inert_word() {
        assert_eq!(sh_quote("info,zenoh=warn"), "info,zenoh=warn");
        assert_eq!(sh_quote("/opt/qubot"), "/opt/qubot");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote("q[a{b=c}]=debug"), "'q[a{b=c}]=debug'");
        // A real shell reads each back as exactly one word, running nothing.
        let hostile = [
            "x'; touch /nonexistent/qubot-pwned; '",
            "$(id) `id` ${HOME} *",
            "a\nb\\'\"",
            "-n",
            "",
        ];
        for s in hostile {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", sh_quote(s)))
                .output()
                .expect("sh");
            assert!(out.status.success(), "{s:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), s, "{s:?}");
        }
    }

    #[test]
    fn env_file_sets_rust_log_only_when_asked() {
        let inv = Inventory::parse(INV).expect("valid");
        assert_eq!(env_file(&inv, "a").expect("a"), None);
        let inv =
            Inventory::parse(&INV.replace("root = \"/srv/a\"", "log = \"info,zenoh=warn\"")).expect("valid");
        assert_eq!(
            env_file(&inv, "a").expect("a").as_deref(),
            Some("RUST_LOG=info,zenoh=warn\n")
        );
        let inv = Inventory::parse(&INV.replace(
            "root = \"/srv/a\"",
            "root = \"/srv/a\"\nlog = \"info,qubot[actor{name=planner}]=debug\"",
        ))
        .expect("valid");
        assert_eq!(
            env_file(&inv, "a").expect("a").as_deref(),
            Some("RUST_LOG='info,qubot[actor{name=planner}]=debug'\n")
        );
    }

    #[test]
    fn env_file_opens_the_live_view_only_where_the_inventory_asks() {
        let inv = Inventory::parse(&INV.replace("root = \"/srv/a\"", "foxglove = \"127.0.0.1:8765\""))
            .expect("valid");
        assert_eq!(
            env_file(&inv, "a").expect("a").as_deref(),
            Some("QUBOT_FOXGLOVE=127.0.0.1:8765\n")
        );
        let bad = Inventory::parse(&INV.replace("root = \"/srv/a\"", "foxglove = \"board:8765\""));
        assert!(bad.is_err(), "not a socket address");
    }
}
