//! The zenoh config of a fleet host or site router with `fleet.tls = true`: mutual TLS on
//! every link (the fleet CA signs one certificate per host and per router, common name = its
//! name) and access control keyed on those common names, derived from which host runs which
//! actor of which robot. A process without a fleet certificate cannot even open a link; a host
//! puts only its own actors' data keys (`qubot/<robot>/<actor>/**`), declares only their
//! liveliness tokens and clock queryables (plus its supervisor's), and reads only its own
//! robot's keys. Routers hold every host to the same rules and relay for each other.

use qubot_node::{Role, SUPERVISOR};
use serde_json::{json, Value};

use super::{
    model::{Inventory, InventoryError},
    render::current_dir,
};

/// Where a release keeps its certificate and key (relative to the release directory).
pub const CA: &str = "tls/ca.crt";
pub const CERT: &str = "tls/host.crt";
pub const KEY: &str = "tls/host.key";

/// What reading the bus takes: subscriptions and queries, on data and on liveliness.
const READ: [&str; 4] = [
    "declare_subscriber",
    "query",
    "declare_liveliness_subscriber",
    "liveliness_query",
];

/// What a process of the fleet sends another fleet host: its reads, its data, its tokens.
/// The only queryables in Qubot are the clock probe's (`@clock`, rule `fleet-clock` and the
/// per-host `clock:` rules): a queryable on data keys would let a host answer for another
/// role's keys, so it is allowed nowhere.
const SEND: [&str; 7] = [
    "put",
    "delete",
    "declare_subscriber",
    "query",
    "liveliness_token",
    "declare_liveliness_subscriber",
    "liveliness_query",
];

/// The data keys that the actor's host alone may put: `qubot/<robot>/<actor>/**` (the
/// sensor's `scan` and `frame`, the planner's `cmd`, the actuator's `state`).
fn data_keys(robot: &str, actor: &str) -> String {
    format!("qubot/{robot}/{actor}/**")
}

/// The liveliness tokens that the process's host alone may declare:
/// `qubot/<robot>/@live/<process>/**` (`<instance>` and `<instance>/<source id>` alike).
/// zenoh's `**` does not match a verbatim chunk such as `@live`, so `qubot/**` never covers
/// these: every liveliness key is listed with its `@live` chunk spelled out.
fn live_keys(robot: &str, process: &str) -> String {
    format!("qubot/{robot}/@live/{process}/**")
}

/// The clock queryables that the process's host alone may declare and answer from:
/// `qubot/<robot>/@clock/<process>/**` (verbatim chunk, like `@live`).
fn clock_keys(robot: &str, process: &str) -> String {
    format!("qubot/{robot}/@clock/{process}/**")
}

/// Everything of `robot`: `qubot/**` does not reach into the verbatim `@live` and `@clock`
/// chunks, so those are named.
fn robot_keys(robot: &str) -> [String; 3] {
    [
        format!("qubot/{robot}/**"),
        format!("qubot/{robot}/@live/**"),
        format!("qubot/{robot}/@clock/**"),
    ]
}

/// Every message a router relays: what a board sends plus clock queryables and replies.
fn relayed() -> Vec<&'static str> {
    SEND.into_iter().chain(["declare_queryable", "reply"]).collect()
}

fn allow(id: &str, flow: &str, messages: &[&str], key_exprs: &[String]) -> Value {
    json!({
        "id": id,
        "permission": "allow",
        "flows": [flow],
        "messages": messages,
        "key_exprs": key_exprs,
    })
}

/// The rules every process that checks a host's certificate applies to it, a board or a
/// router alike: the host puts only its own actors' data keys, declares only its own processes'
/// liveliness tokens and clock queryables (its supervisor's included).
fn host_rules(inv: &Inventory, rules: &mut Vec<Value>, subjects: &mut Vec<Value>, policies: &mut Vec<Value>) {
    for (name, h) in &inv.hosts {
        let robot = inv.robot_of(name);
        let actors: Vec<&str> = Role::ALL
            .map(Role::name)
            .into_iter()
            .filter(|a| h.runs(a))
            .collect();
        let (put, live, clock, subject) = (
            format!("put:{name}"),
            format!("live:{name}"),
            format!("clock:{name}"),
            format!("host:{name}"),
        );
        let data: Vec<String> = actors.iter().map(|a| data_keys(robot, a)).collect();
        rules.push(allow(&put, "ingress", &["put", "delete"], &data));
        // Every host runs a supervisor (`qubot up`) next to its actors.
        let processes: Vec<&str> = std::iter::once(SUPERVISOR)
            .chain(actors.iter().copied())
            .collect();
        let tokens: Vec<String> = processes.iter().map(|p| live_keys(robot, p)).collect();
        rules.push(allow(&live, "ingress", &["liveliness_token"], &tokens));
        let clocks: Vec<String> = processes.iter().map(|p| clock_keys(robot, p)).collect();
        rules.push(allow(&clock, "ingress", &["declare_queryable", "reply"], &clocks));
        subjects.push(json!({ "id": subject, "cert_common_names": [name] }));
        policies.push(json!({ "rules": [put, live, clock], "subjects": [subject] }));
    }
}

/// The fleet's routers (subject `routers`) may send and receive anything of every robot: a
/// router relays for the boards and the other routers, and holds each host to its own rules.
fn relay_rules(
    inv: &Inventory,
    rules: &mut Vec<Value>,
    subjects: &mut Vec<Value>,
    policies: &mut Vec<Value>,
) {
    let every: Vec<String> = inv.robots().into_iter().flat_map(robot_keys).collect();
    rules.push(allow("relay-in", "ingress", &relayed(), &every));
    rules.push(allow("relay-out", "egress", &relayed(), &every));
    let names: Vec<&str> = inv.routers.keys().map(String::as_str).collect();
    subjects.push(json!({ "id": "routers", "cert_common_names": names }));
    policies.push(json!({ "rules": ["relay-in", "relay-out"], "subjects": ["routers"] }));
}

fn acl(rules: Vec<Value>, subjects: Vec<Value>, policies: Vec<Value>) -> Value {
    json!({
        "enabled": true,
        "default_permission": "deny",
        "rules": rules,
        "subjects": subjects,
        "policies": policies,
    })
}

/// The access-control section of a board's zenoh config, the same on every board. zenoh
/// evaluates it per link against the certificate at the other end: ingress rules say what
/// that end may send into this process, egress rules what this process may send to it. A
/// robot's hosts read and receive only their own robot's keys; each puts only its own actors'
/// keys ([`host_rules`]). The fleet's routers relay for every robot: each router enforces the
/// per-host rules itself ([`router_access_control`]). Default deny: a certificate that names
/// no host or router matches no subject, and anything no rule allows (a put on another role's
/// keys, a token of another host's actor, a queryable on data keys) is dropped.
pub fn access_control(inv: &Inventory) -> Value {
    let (mut rules, mut subjects, mut policies) = (Vec::new(), Vec::new(), Vec::new());
    for robot in inv.robots() {
        let keys = robot_keys(robot);
        let (send, clock, read, subject) = (
            format!("send:{robot}"),
            format!("clock-out:{robot}"),
            format!("read:{robot}"),
            format!("robot:{robot}"),
        );
        rules.push(allow(&send, "egress", &SEND, &keys));
        rules.push(allow(
            &clock,
            "egress",
            &["declare_queryable", "reply"],
            &[keys[2].clone()],
        ));
        rules.push(allow(&read, "ingress", &READ, &keys));
        subjects.push(json!({ "id": subject, "cert_common_names": inv.hosts_of(robot) }));
        policies.push(json!({ "rules": [send, clock, read], "subjects": [subject] }));
    }
    host_rules(inv, &mut rules, &mut subjects, &mut policies);
    if !inv.routers.is_empty() {
        relay_rules(inv, &mut rules, &mut subjects, &mut policies);
    }
    acl(rules, subjects, policies)
}

/// The access-control section of a site router's zenoh config. The router is where robots
/// meet, so it holds each host to the boards' own rules ([`host_rules`]), and per robot: that
/// robot's hosts may subscribe and query within their robot only, and the router passes them
/// nothing of another robot's. Routers relay everything to each other.
pub fn router_access_control(inv: &Inventory) -> Value {
    let (mut rules, mut subjects, mut policies) = (Vec::new(), Vec::new(), Vec::new());
    for robot in inv.robots() {
        let keys = robot_keys(robot);
        let (read, pass, subject) = (
            format!("read:{robot}"),
            format!("pass:{robot}"),
            format!("robot:{robot}"),
        );
        rules.push(allow(&read, "ingress", &READ, &keys));
        rules.push(allow(&pass, "egress", &relayed(), &keys));
        subjects.push(json!({ "id": subject, "cert_common_names": inv.hosts_of(robot) }));
        policies.push(json!({ "rules": [read, pass], "subjects": [subject] }));
    }
    host_rules(inv, &mut rules, &mut subjects, &mut policies);
    relay_rules(inv, &mut rules, &mut subjects, &mut policies);
    acl(rules, subjects, policies)
}

/// The TLS section of a release at `root`: the fleet CA, the release's own certificate and
/// key, mutual TLS, and the name checked on connect.
fn tls(root: &std::path::Path) -> Value {
    let cur = current_dir(root);
    let p = |rel: &str| cur.join(rel).display().to_string();
    json!({
        "root_ca_certificate": p(CA),
        "listen_certificate": p(CERT),
        "listen_private_key": p(KEY),
        "connect_certificate": p(CERT),
        "connect_private_key": p(KEY),
        "enable_mtls": true,
        "verify_name_on_connect": true,
    })
}

/// The zenoh json5 file of router `name` (`fleet.tls`): mutual TLS with its own certificate
/// and [`router_access_control`]. Router mode and its gossip come from `qubot router` itself.
pub fn router_zenoh_json5(inv: &Inventory, name: &str) -> Result<String, InventoryError> {
    let r = inv.router(name)?;
    let config = json!({
        "mode": "router",
        "scouting": { "multicast": { "enabled": false } },
        "transport": { "link": { "tls": tls(&r.root) } },
        "access_control": router_access_control(inv),
    });
    Ok(format!(
        "// Generated by `qubot inventory render` for router {}; do not edit (edit the inventory).\n{config:#}\n",
        json!(name)
    ))
}

/// The zenoh json5 file of `host`. It replaces zenoh's defaults entirely, so it repeats
/// Qubot's own (peer mode, no multicast scouting, one opener per gossip link, no implicit SHM
/// copy). Built as JSON (a
/// subset of json5), so every name and path is escaped.
pub fn zenoh_json5(inv: &Inventory, host: &str) -> Result<String, InventoryError> {
    let h = inv.host(host)?;
    let config = json!({
        "mode": "peer",
        "scouting": {
            "multicast": { "enabled": false },
            // Only the peer with the greater id opens a gossip link (see qubot_bus::config).
            "gossip": { "autoconnect_strategy": { "peer": { "to_router": "always", "to_peer": "greater-zid" } } },
        },
        "transport": {
            "shared_memory": { "transport_optimization": { "enabled": false } },
            "link": {
                "tls": tls(&h.root),
            },
        },
        "access_control": access_control(inv),
    });
    // `{:#}`: serde_json's pretty printer.
    Ok(format!(
        "// Generated by `qubot inventory render` for host {}; do not edit (edit the inventory).\n{config:#}\n",
        json!(host)
    ))
}

/// The warning for each host whose live Foxglove view listens beyond loopback: it has no
/// authentication, so anyone on that network sees the robot.
pub fn open_view_warnings(inv: &Inventory, file: &str) -> String {
    let mut out = String::new();
    for (name, h) in &inv.hosts {
        if let Some(addr) = h.foxglove.filter(|a| !a.ip().is_loopback()) {
            out.push_str(&format!(
                "WARNING: {file}: hosts.{name}.foxglove = {addr}: the live view (no authentication) is open to the board's network;                  a loopback address and `ssh -L` keep it to operators.\n"
            ));
        }
    }
    out
}

/// What `qubot inventory check` says on stderr about an inventory with `fleet.tls = false`
/// (`file` as given): the fleet runs, but nothing on the network is authenticated.
pub fn unauthenticated_warning(inv: &Inventory, file: &str) -> Option<String> {
    if inv.fleet.tls {
        return None;
    }
    let port = inv.fleet.zenoh_port;
    Some(format!(
        "WARNING: {file}: fleet.tls = false: the fleet is UNAUTHENTICATED.\n\
         WARNING: its zenoh links are plain TCP without access control: anyone who can reach a host's \
         port {port} can read every scan and put scans, commands and state that the robot acts on.\n\
         WARNING: set `tls = true` under [fleet] and run `just certs` (README: \"Operations: deploying to edge devices\").\n"
    ))
}

#[cfg(test)]
mod tests {
    use zenoh::key_expr::keyexpr;

    use super::*;

    const INV: &str = r#"
robot = "r1"
[fleet]
tls = true
[hosts.a]
address = "10.0.0.1"
actors = ["sensor"]
[hosts.b]
address = "10.0.0.2"
actors = ["planner", "actuator"]
"#;

    /// One host per actor.
    const THREE: &str = r#"
robot = "r1"
[fleet]
tls = true
[hosts.a]
address = "10.0.0.1"
actors = ["sensor"]
[hosts.b]
address = "10.0.0.2"
actors = ["planner"]
[hosts.c]
address = "10.0.0.3"
actors = ["actuator"]
"#;

    fn body(text: &str) -> Value {
        let (_, body) = text.split_once('\n').expect("comment, then the body");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn strs(v: &Value) -> Vec<&str> {
        v.as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")))
            .collect()
    }

    /// zenoh 1.10's decision (`net/routing/interceptor/authorization.rs`) for message `msg`
    /// on `key`, coming in from (`ingress`) or going out to (`egress`) a link whose certificate
    /// names `cn`. Subjects that list the same common name are one subject to zenoh, so the
    /// rules of every policy naming a subject that lists `cn` apply together: a deny rule that
    /// includes the key wins, else an allow rule that includes it allows, else the default.
    fn allowed(acl: &Value, cn: &str, flow: &str, msg: &str, key: &str) -> bool {
        let key = keyexpr::new(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        let subjects: Vec<&str> = acl["subjects"]
            .as_array()
            .expect("subjects")
            .iter()
            .filter(|s| {
                let fields: Vec<&String> = s.as_object().expect("subject").keys().collect();
                assert_eq!(fields, ["cert_common_names", "id"], "{s}");
                strs(&s["cert_common_names"]).contains(&cn)
            })
            .map(|s| s["id"].as_str().expect("id"))
            .collect();
        let rule = |id: &str| {
            acl["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("no rule {id}"))
                .clone()
        };
        let rules: Vec<Value> = acl["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .filter(|p| strs(&p["subjects"]).iter().any(|s| subjects.contains(s)))
            .flat_map(|p| strs(&p["rules"]).into_iter().map(rule).collect::<Vec<_>>())
            .filter(|r| strs(&r["flows"]).contains(&flow) && strs(&r["messages"]).contains(&msg))
            .filter(|r| {
                strs(&r["key_exprs"]).iter().any(|k| {
                    keyexpr::new(k)
                        .unwrap_or_else(|e| panic!("{k}: {e}"))
                        .includes(key)
                })
            })
            .collect();
        if rules.iter().any(|r| r["permission"] == "deny") {
            return false;
        }
        if rules.iter().any(|r| r["permission"] == "allow") {
            return true;
        }
        acl["default_permission"] == "allow"
    }

    /// Data keys of every role, each with the actor whose host alone may put it.
    const DATA: [(&str, &str); 6] = [
        ("sensor", "qubot/r1/sensor/lidar0/scan"),
        ("sensor", "qubot/r1/sensor/lidar0/frame"),
        ("sensor", "qubot/r1/sensor/front/ping"),
        ("planner", "qubot/r1/planner/main/cmd"),
        ("actuator", "qubot/r1/actuator/main/state"),
        ("actuator", "qubot/r1/actuator/left/state"),
    ];

    /// Each host may put and delete exactly the data keys of the actors it runs, declare
    /// exactly the liveliness tokens of those actors and of its supervisor (with or without a
    /// source id after the instance), and read everything; any fleet host may receive
    /// anything; a certificate of no fleet host may do nothing.
    fn assert_roles(text: &str, runs: &[(&str, &[&str])]) {
        let inv = Inventory::parse(text).expect("valid");
        let acl = access_control(&inv);
        for &(host, actors) in runs {
            assert_eq!(inv.host(host).expect("host").actors, actors, "{host}");
            for (owner, key) in DATA {
                let own = actors.contains(&owner);
                for msg in ["put", "delete"] {
                    assert_eq!(
                        allowed(&acl, host, "ingress", msg, key),
                        own,
                        "{host} {msg} {key}"
                    );
                    assert!(allowed(&acl, host, "egress", msg, key), "to {host}: {msg} {key}");
                }
                for msg in ["declare_queryable", "reply"] {
                    assert!(!allowed(&acl, host, "ingress", msg, key), "{host} {msg} {key}");
                }
                // The same keys of another robot: nobody's.
                let other = key.replace("qubot/r1/", "qubot/r2/");
                assert!(
                    !allowed(&acl, host, "ingress", "put", &other),
                    "{host} put {other}"
                );
            }
            for process in ["supervisor", "sensor", "planner", "actuator", "health", "listen"] {
                let own = process == "supervisor" || actors.contains(&process);
                for key in [
                    format!("qubot/r1/@live/{process}/main"),
                    format!("qubot/r1/@live/{process}/main/00a1b2c3d4e5f607"),
                ] {
                    let msg = "liveliness_token";
                    assert_eq!(allowed(&acl, host, "ingress", msg, &key), own, "{host} {key}");
                    assert!(allowed(&acl, host, "egress", msg, &key), "to {host}: {key}");
                    assert!(!allowed(&acl, host, "ingress", "put", &key), "{host} put {key}");
                }
                let other = format!("qubot/r2/@live/{process}/main");
                assert!(
                    !allowed(&acl, host, "ingress", "liveliness_token", &other),
                    "{other}"
                );
                // The clock probe: a host answers for its own processes' clocks only.
                let key = format!("qubot/r1/@clock/{process}/main/00a1b2c3d4e5f607");
                for msg in ["declare_queryable", "reply"] {
                    assert_eq!(
                        allowed(&acl, host, "ingress", msg, &key),
                        own,
                        "{host} {msg} {key}"
                    );
                    assert!(allowed(&acl, host, "egress", msg, &key), "to {host}: {msg} {key}");
                }
                let other = format!("qubot/r2/@clock/{process}/main/00a1b2c3d4e5f607");
                assert!(!allowed(&acl, host, "ingress", "reply", &other), "{other}");
            }
            // Reading within the robot only: a wildcard over robots is another robot's too.
            for flow in ["ingress", "egress"] {
                for key in ["qubot/*/sensor/*/scan", "qubot/r2/sensor/*/scan", "qubot/**"] {
                    assert!(
                        !allowed(&acl, host, flow, "declare_subscriber", key),
                        "{host} {flow} {key}"
                    );
                }
            }
            // Reading: subscriptions (also with wildcards, as `qubot listen` does), queries,
            // liveliness subscribers and queries (`qubot health`), both ways.
            for (msg, key) in [
                ("declare_subscriber", "qubot/r1/sensor/*/scan"),
                ("declare_subscriber", "qubot/r1/*/*/scan"),
                ("declare_subscriber", "qubot/r1/actuator/*/state"),
                ("query", "qubot/r1/planner/main/cmd"),
                ("declare_liveliness_subscriber", "qubot/r1/@live/**"),
                ("liveliness_query", "qubot/r1/@live/**"),
                ("liveliness_query", "qubot/r1/@live/sensor/*"),
                ("query", "qubot/r1/@clock/**"),
            ] {
                for flow in ["ingress", "egress"] {
                    assert!(allowed(&acl, host, flow, msg, key), "{host} {flow} {msg} {key}");
                }
            }
            // Nothing outside the robot's keys, e.g. zenoh's admin space.
            assert!(!allowed(&acl, host, "ingress", "query", "@/**"), "{host}");
        }
        for stranger in ["x", "qubot-fleet-ca", ""] {
            for (msg, key) in [
                ("put", DATA[0].1),
                ("declare_subscriber", "qubot/r1/sensor/*/scan"),
                ("liveliness_token", "qubot/r1/@live/supervisor/main"),
                ("liveliness_query", "qubot/r1/@live/**"),
            ] {
                for flow in ["ingress", "egress"] {
                    assert!(
                        !allowed(&acl, stranger, flow, msg, key),
                        "{stranger:?} {flow} {msg} {key}"
                    );
                }
            }
        }
    }

    #[test]
    fn each_role_host_puts_exactly_its_own_keys_and_declares_only_its_own_tokens() {
        assert_roles(INV, &[("a", &["sensor"]), ("b", &["planner", "actuator"])]);
        assert_roles(
            THREE,
            &[("a", &["sensor"]), ("b", &["planner"]), ("c", &["actuator"])],
        );
        // Everything on one host: that host has every role.
        let one = "robot = \"r1\"\n[fleet]\ntls = true\n[hosts.a]\naddress = \"10.0.0.1\"\n\
                   actors = [\"actuator\", \"sensor\", \"planner\"]\n";
        assert_roles(one, &[("a", &["actuator", "sensor", "planner"])]);
    }

    #[test]
    fn every_host_gets_the_same_rules() {
        let inv = Inventory::parse(THREE).expect("valid");
        let acl = |h: &str| body(&zenoh_json5(&inv, h).expect("json5"))["access_control"].clone();
        assert_eq!(acl("a"), acl("b"));
        assert_eq!(acl("a"), acl("c"));
        assert_eq!(acl("a"), access_control(&inv));
    }

    #[test]
    fn config_is_strict_json_with_mtls_and_one_subject_per_host() {
        let inv = Inventory::parse(&INV.replace(
            "actors = [\"sensor\"]",
            "root = \"/srv/q-1\"\nactors = [\"sensor\"]",
        ))
        .expect("valid");
        let text = zenoh_json5(&inv, "a").expect("json5");
        let comment = text.lines().next().expect("comment");
        assert!(
            comment.starts_with("// Generated") && comment.contains("\"a\""),
            "{comment}"
        );
        let v = body(&text);
        let tls = &v["transport"]["link"]["tls"];
        assert_eq!(tls["root_ca_certificate"], "/srv/q-1/current/tls/ca.crt");
        assert_eq!(tls["connect_private_key"], "/srv/q-1/current/tls/host.key");
        assert_eq!(tls["listen_certificate"], "/srv/q-1/current/tls/host.crt");
        assert_eq!(tls["enable_mtls"], true);
        let acl = &v["access_control"];
        assert_eq!(acl["enabled"], true);
        assert_eq!(acl["default_permission"], "deny");
        assert_eq!(
            acl["subjects"],
            json!([
                { "id": "robot:r1", "cert_common_names": ["a", "b"] },
                { "id": "host:a", "cert_common_names": ["a"] },
                { "id": "host:b", "cert_common_names": ["b"] },
            ])
        );
        assert_eq!(
            acl["policies"],
            json!([
                { "rules": ["send:r1", "clock-out:r1", "read:r1"], "subjects": ["robot:r1"] },
                { "rules": ["put:a", "live:a", "clock:a"], "subjects": ["host:a"] },
                { "rules": ["put:b", "live:b", "clock:b"], "subjects": ["host:b"] },
            ])
        );
        let rule = |id: &str| {
            acl["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("no rule {id}"))
                .clone()
        };
        assert_eq!(
            rule("put:b")["key_exprs"],
            json!(["qubot/r1/planner/**", "qubot/r1/actuator/**"])
        );
        assert_eq!(
            rule("live:b")["key_exprs"],
            json!([
                "qubot/r1/@live/supervisor/**",
                "qubot/r1/@live/planner/**",
                "qubot/r1/@live/actuator/**"
            ])
        );
        assert_eq!(
            rule("clock:b")["key_exprs"],
            json!([
                "qubot/r1/@clock/supervisor/**",
                "qubot/r1/@clock/planner/**",
                "qubot/r1/@clock/actuator/**"
            ])
        );
        assert_eq!(rule("live:a")["flows"], json!(["ingress"]));
        assert_eq!(rule("clock:a")["flows"], json!(["ingress"]));
        assert_eq!(
            rule("read:r1")["key_exprs"],
            json!(["qubot/r1/**", "qubot/r1/@live/**", "qubot/r1/@clock/**"])
        );
        // Allow rules only: with a deny-by-default policy, what no rule allows is denied.
        assert!(acl["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .all(|r| r["permission"] == "allow"));
    }

    /// A secure fleet of two robots behind a router: at the router, each board does what it
    /// may do on its own robot and nothing on the other's, and receives nothing of the other's;
    /// the router relays anything to other routers; a stranger does nothing. Boards trust the
    /// fleet's routers to relay.
    #[test]
    fn the_router_keeps_each_robot_to_its_own_keys() {
        let fleet = crate::inventory::model::tests::FLEET.replace("[fleet]", "[fleet]\ntls = true");
        let inv = Inventory::parse(&fleet).expect("valid");
        let at_router = router_access_control(&inv);
        let text = router_zenoh_json5(&inv, "site").expect("json5");
        let v = body(&text);
        assert_eq!(v["access_control"], at_router);
        assert_eq!(v["mode"], "router");
        assert_eq!(
            v["transport"]["link"]["tls"]["listen_certificate"],
            "/opt/qubot/current/tls/host.crt"
        );
        for (host, own, other) in [("a", "r1", "r2"), ("d", "r2", "r1")] {
            let sensor = |r: &str| format!("qubot/{r}/sensor/lidar0/scan");
            let ingress = |msg: &str, key: &str| allowed(&at_router, host, "ingress", msg, key);
            let egress = |msg: &str, key: &str| allowed(&at_router, host, "egress", msg, key);
            assert!(ingress("declare_subscriber", &sensor(own)), "{host}");
            assert!(!ingress("declare_subscriber", &sensor(other)), "{host}");
            assert!(!ingress("declare_subscriber", "qubot/*/sensor/*/scan"), "{host}");
            assert!(
                !ingress("liveliness_query", &format!("qubot/{other}/@live/**")),
                "{host}"
            );
            assert!(!ingress("put", &sensor(other)), "{host}");
            assert!(
                !ingress("liveliness_token", &format!("qubot/{other}/@live/sensor/main")),
                "{host}"
            );
            assert!(
                !ingress(
                    "liveliness_token",
                    &format!("qubot/{other}/@live/supervisor/main")
                ),
                "{host}"
            );
            assert!(ingress(
                "liveliness_token",
                &format!("qubot/{own}/@live/supervisor/main/00a1b2c3d4e5f607")
            ));
            // Relayed to it: its own robot's traffic only.
            for msg in [
                "put",
                "declare_subscriber",
                "liveliness_token",
                "reply",
                "declare_queryable",
            ] {
                assert!(!egress(msg, &sensor(other)), "to {host}: {msg}");
            }
            assert!(egress("put", &sensor(own)), "to {host}");
            assert!(
                egress("liveliness_token", &format!("qubot/{own}/@live/sensor/main")),
                "to {host}"
            );
            assert!(
                egress("reply", &format!("qubot/{own}/@clock/sensor/main")),
                "to {host}"
            );
        }
        // Only the sensor's host puts scans, at the router as on the boards.
        assert!(allowed(
            &at_router,
            "a",
            "ingress",
            "put",
            "qubot/r1/sensor/lidar0/scan"
        ));
        assert!(!allowed(
            &at_router,
            "b",
            "ingress",
            "put",
            "qubot/r1/sensor/lidar0/scan"
        ));
        for flow in ["ingress", "egress"] {
            assert!(allowed(
                &at_router,
                "site",
                flow,
                "put",
                "qubot/r2/sensor/lidar0/scan"
            ));
            assert!(allowed(
                &at_router,
                "site",
                flow,
                "liveliness_token",
                "qubot/r1/@live/sensor/main"
            ));
            for stranger in ["x", "qubot-fleet-ca", ""] {
                assert!(!allowed(
                    &at_router,
                    stranger,
                    flow,
                    "declare_subscriber",
                    "qubot/r1/sensor/*/scan"
                ));
            }
        }
        // A board lets the fleet's routers relay; without routers there is no such subject.
        let board = access_control(&inv);
        assert!(allowed(
            &board,
            "site",
            "ingress",
            "put",
            "qubot/r1/sensor/lidar0/scan"
        ));
        assert!(allowed(
            &board,
            "site",
            "egress",
            "declare_subscriber",
            "qubot/r1/sensor/*/scan"
        ));
        assert!(!allowed(
            &board,
            "c",
            "ingress",
            "declare_subscriber",
            "qubot/r1/sensor/*/scan"
        ));
        let alone = Inventory::parse(INV).expect("valid");
        assert!(!allowed(
            &access_control(&alone),
            "site",
            "ingress",
            "put",
            "qubot/r1/sensor/lidar0/scan"
        ));
    }

    #[test]
    fn only_an_inventory_without_tls_is_warned_about() {
        let inv = Inventory::parse(INV).expect("valid");
        assert_eq!(unauthenticated_warning(&inv, "inv.toml"), None);
        let inv = Inventory::parse(&INV.replace("tls = true", "tls = false")).expect("valid");
        let w = unauthenticated_warning(&inv, "inv.toml").expect("a warning");
        assert!(
            w.contains("inv.toml: fleet.tls = false") && w.contains("UNAUTHENTICATED"),
            "{w}"
        );
        assert!(w.contains("port 7447") && w.contains("tls = true"), "{w}");
        assert!(w.lines().all(|l| l.starts_with("WARNING: ")), "{w}");
    }

    /// The warning `qubot inventory check` puts on stderr (exit 0, stdout unchanged: the CLI's
    /// side is `crates/qubot/tests/deploy.rs`): said once, naming the file, the open port and
    /// the fix; none with mutual TLS; the shipped (lab) inventory gets it.
    #[test]
    fn inventory_check_warns_when_the_fleet_is_unauthenticated() {
        let one = |fleet: &str| {
            Inventory::parse(&format!(
                "robot = \"r\"\n{fleet}[hosts.a]\naddress = \"10.0.0.1\"\n\
                 actors = [\"sensor\", \"planner\", \"actuator\"]\n"
            ))
            .unwrap_or_else(|e| panic!("{fleet:?}: {e}"))
        };
        for (fleet, port) in [("[fleet]\ntls = false\nzenoh_port = 7500\n", 7500), ("", 7447)] {
            let w = unauthenticated_warning(&one(fleet), "inv.toml").expect("a warning");
            assert_eq!(w.matches("the fleet is UNAUTHENTICATED").count(), 1, "{w}");
            assert!(w.contains("WARNING: inv.toml: fleet.tls = false"), "{w}");
            assert!(
                w.contains("put scans, commands and state") && w.contains("tls = true"),
                "{w}"
            );
            assert!(w.contains(&format!("port {port}")), "{w}");
        }
        assert_eq!(
            unauthenticated_warning(&one("[fleet]\ntls = true\n"), "inv.toml"),
            None,
            "a fleet with mutual TLS was warned about"
        );
        // The shipped inventory is a lab's: unauthenticated, and said so.
        let shipped = crate::inventory::model::tests::shipped("inventory.toml");
        let w = unauthenticated_warning(&shipped, "deploy/inventory.toml").expect("a warning");
        assert!(w.contains("the fleet is UNAUTHENTICATED"), "{w}");
    }

    #[test]
    fn only_a_live_view_beyond_loopback_is_warned_about() {
        let with = |addr: &str| {
            let text = INV.replace(
                "actors = [\"sensor\"]",
                &format!("actors = [\"sensor\"]\nfoxglove = \"{addr}\""),
            );
            open_view_warnings(&Inventory::parse(&text).expect("valid"), "inv.toml")
        };
        assert_eq!(
            open_view_warnings(&Inventory::parse(INV).expect("valid"), "inv.toml"),
            ""
        );
        assert_eq!(with("127.0.0.1:8765"), "");
        assert_eq!(with("[::1]:8765"), "");
        let w = with("0.0.0.0:8765");
        assert!(
            w.contains("hosts.a.foxglove = 0.0.0.0:8765") && w.contains("no authentication"),
            "{w}"
        );
    }
}
