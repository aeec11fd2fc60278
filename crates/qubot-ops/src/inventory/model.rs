//! The fleet inventory (`deploy/inventory.toml`): robots and their hosts (boards), the actors
//! each host runs, groups, the site routers, and the checks that must pass before anything is
//! built or copied. Errors name the field.

use std::{
    collections::BTreeMap,
    fmt,
    net::IpAddr,
    path::{Path, PathBuf},
};

use qubot_msg::keys::check_segment;
use qubot_node::{config::METRICS_PORT_BASE, Role, SUPERVISOR};
use serde::Deserialize;

/// Ports above `fleet.zenoh_port` the actors listen on ([`Inventory::actor_zenoh_port`]).
const ACTOR_ZENOH_PORTS: u16 = 3;
const ARCHES: [&str; 3] = ["x86_64", "aarch64", "armv7"];

/// A field of the inventory and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inventory: {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for InventoryError {}

pub(super) fn err(field: impl Into<String>, reason: impl Into<String>) -> InventoryError {
    InventoryError {
        field: field.into(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Robot name of every host that does not name its own (`hosts.<name>.robot`): an
    /// inventory of one robot names it only here.
    pub robot: String,
    #[serde(default = "default_world")]
    pub world: String,
    #[serde(default)]
    pub fleet: Fleet,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Site routers (`qubot router`): every host connects to the fleet's (`fleet.router`).
    #[serde(default)]
    pub routers: BTreeMap<String, Router>,
    pub hosts: BTreeMap<String, Host>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Router {
    pub address: String,
    /// zenoh port it listens on.
    #[serde(default = "default_router_port")]
    pub port: u16,
    #[serde(default = "default_router_metrics_port")]
    pub metrics_port: u16,
    /// SSH user, deploy root and arch, as a host's: `just deploy` ships the router too.
    #[serde(default = "default_user")]
    pub user: String,
    #[serde(default = "default_root")]
    pub root: PathBuf,
    #[serde(default = "default_arch")]
    pub arch: String,
}

fn default_router_port() -> u16 {
    7500
}
fn default_router_metrics_port() -> u16 {
    9899
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fleet {
    /// Port of each host's zenoh hub (its supervisor listens there; other hosts connect).
    pub zenoh_port: u16,
    /// Mutual TLS between every process of the fleet, plus the access-control rules.
    pub tls: bool,
    /// The site router (a key of `[routers]`) every process of every host connects to; none:
    /// robots share no zenoh link.
    pub router: Option<String>,
    /// Hosts a deploy updates at once after the canary (`deploy.sh --wave` overrides it).
    pub wave: usize,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet {
            zenoh_port: 7447,
            tls: false,
            router: None,
            wave: 1,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// The robot this host is a board of (default: the inventory's `robot`).
    #[serde(default)]
    pub robot: Option<String>,
    pub address: String,
    #[serde(default = "default_user")]
    pub user: String,
    #[serde(default = "default_arch")]
    pub arch: String,
    /// Deploy root on the device: `releases/<version>/` and the `current` symlink live here.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    pub actors: Vec<String>,
    #[serde(default)]
    pub ports: Ports,
    /// Node-config keys for this host only (tuning), merged over the generated config.
    #[serde(default)]
    pub node: toml::Table,
    /// `RUST_LOG` of the host's processes (e.g. to see zenoh's access-control decisions).
    #[serde(default)]
    pub log: Option<String>,
    /// Serve the live Foxglove view on this address (`qubot up --foxglove`). Absent: no view.
    /// A loopback address is reached through `ssh -L`; any other opens the view, which has no
    /// authentication, on the board's network.
    #[serde(default)]
    pub foxglove: Option<std::net::SocketAddr>,
}

/// Metrics ports per process; the defaults are those of the node config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ports {
    pub supervisor: u16,
    pub sensor: u16,
    pub planner: u16,
    pub actuator: u16,
}

impl Default for Ports {
    fn default() -> Self {
        let port = |r: Role| METRICS_PORT_BASE + r.metrics_port_offset();
        Ports {
            supervisor: METRICS_PORT_BASE,
            sensor: port(Role::Sensor),
            planner: port(Role::Planner),
            actuator: port(Role::Actuator),
        }
    }
}

impl Ports {
    pub fn of(&self, process: &str) -> u16 {
        match Role::from_name(process) {
            Some(Role::Sensor) => self.sensor,
            Some(Role::Planner) => self.planner,
            Some(Role::Actuator) => self.actuator,
            None => self.supervisor,
        }
    }
}

fn default_world() -> String {
    "default".into()
}
fn default_user() -> String {
    "root".into()
}
fn default_arch() -> String {
    "x86_64".into()
}
fn default_root() -> PathBuf {
    "/opt/qubot".into()
}

impl Inventory {
    /// The checks of the inventory's own fields (the node configs rendered from it are
    /// checked by [`Inventory::check`]).
    pub(super) fn check_fields(&self) -> Result<(), InventoryError> {
        check_segment(&self.robot).map_err(|r| err("robot", r))?;
        check_name(&self.robot).map_err(|r| err("robot", r))?;
        if self.hosts.is_empty() {
            return Err(err("hosts", "no host defined"));
        }
        if self.fleet.wave == 0 {
            return Err(err("fleet.wave", "a wave has at least one host"));
        }
        if self.fleet.zenoh_port == 0 {
            return Err(err("fleet.zenoh_port", "must be a fixed port, not 0"));
        }
        if self.fleet.zenoh_port > u16::MAX - ACTOR_ZENOH_PORTS {
            return Err(err(
                "fleet.zenoh_port",
                format!(
                    "the actors listen on the {ACTOR_ZENOH_PORTS} ports above it: at most {}",
                    u16::MAX - ACTOR_ZENOH_PORTS
                ),
            ));
        }
        // Which host runs each actor, per robot.
        let mut runs: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        let mut addresses: BTreeMap<IpAddr, String> = BTreeMap::new();
        self.check_routers(&mut addresses)?;
        for (name, h) in &self.hosts {
            let f = |k: &str| format!("hosts.{name}.{k}");
            check_segment(name).map_err(|r| err(format!("hosts.{name}"), r))?;
            check_name(name).map_err(|r| err(format!("hosts.{name}"), r))?;
            if let Some(robot) = &h.robot {
                check_segment(robot).map_err(|r| err(f("robot"), r))?;
                check_name(robot).map_err(|r| err(f("robot"), r))?;
            }
            let robot = self.robot_of_host(h);
            claim_address(&mut addresses, &f("address"), &h.address, format!("host {name}"))?;
            if h.user.trim().is_empty() {
                return Err(err(f("user"), "must name the SSH user"));
            }
            check_user(&h.user).map_err(|r| err(f("user"), r))?;
            check_arch(&h.arch).map_err(|e| err(f("arch"), e))?;
            check_root(&h.root).map_err(|r| err(f("root"), r))?;
            if let Some(log) = &h.log {
                check_log(log).map_err(|r| err(f("log"), r))?;
            }
            if h.actors.is_empty() {
                return Err(err(f("actors"), "lists no actor"));
            }
            for a in &h.actors {
                if Role::from_name(a).is_none() {
                    return Err(err(
                        f("actors"),
                        format!("unknown actor {a:?} (known: {})", Role::names()),
                    ));
                }
                if let Some(other) = runs.insert((robot, a), name) {
                    return Err(err(
                        f("actors"),
                        format!("{a} of robot {robot} already runs on {other}"),
                    ));
                }
            }
            // Every listening port of the host's processes, in a fixed order for the message.
            let mut ports = vec![
                ("fleet.zenoh_port".to_owned(), self.fleet.zenoh_port),
                (f(&format!("ports.{SUPERVISOR}")), h.ports.supervisor),
            ];
            for r in Role::ALL.into_iter().filter(|r| h.runs(r.name())) {
                let a = r.name();
                ports.push((f(&format!("ports.{a}")), h.ports.of(a)));
                ports.push((
                    format!(
                        "fleet.zenoh_port + {} (the {a}'s zenoh port)",
                        r.metrics_port_offset()
                    ),
                    self.actor_zenoh_port(r),
                ));
            }
            for (i, (field, port)) in ports.iter().enumerate() {
                if *port == 0 {
                    return Err(err(field, "must be a fixed port, not 0"));
                }
                if let Some((other, _)) = ports[..i].iter().find(|(_, p)| p == port) {
                    return Err(err(
                        field,
                        format!("duplicate port {port}: already used by {other}"),
                    ));
                }
            }
        }
        for robot in self.robots() {
            for a in Role::ALL.map(Role::name) {
                if !runs.contains_key(&(robot, a)) {
                    return Err(err(
                        "hosts.*.actors",
                        format!("no host runs the {a} of robot {robot}"),
                    ));
                }
            }
        }
        for (g, members) in &self.groups {
            check_name(g).map_err(|r| err(format!("groups.{g}"), r))?;
            if self.hosts.contains_key(g) || g == "all" {
                return Err(err(
                    format!("groups.{g}"),
                    "a group must not share a host's name or be \"all\"",
                ));
            }
            if members.is_empty() {
                return Err(err(format!("groups.{g}"), "is empty"));
            }
            for m in members {
                if !self.hosts.contains_key(m) {
                    return Err(err(
                        format!("groups.{g}"),
                        format!("host {m:?} is not defined under [hosts]"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The site routers: names, addresses, ports; `fleet.router` defined; nothing shared with
    /// a host. Fills `addresses` with theirs.
    fn check_routers(&self, addresses: &mut BTreeMap<IpAddr, String>) -> Result<(), InventoryError> {
        for (name, r) in &self.routers {
            let f = |k: &str| format!("routers.{name}.{k}");
            check_name(name).map_err(|e| err(format!("routers.{name}"), e))?;
            if self.hosts.contains_key(name) {
                return Err(err(
                    format!("routers.{name}"),
                    "a router must not share a host's name",
                ));
            }
            claim_address(addresses, &f("address"), &r.address, format!("router {name}"))?;
            if r.port == 0 || r.metrics_port == 0 || r.port == r.metrics_port {
                return Err(err(f("port"), "port and metrics_port: two different fixed ports"));
            }
            check_user(&r.user).map_err(|e| err(f("user"), e))?;
            check_arch(&r.arch).map_err(|e| err(f("arch"), e))?;
            check_root(&r.root).map_err(|e| err(f("root"), e))?;
        }
        if let Some(router) = &self.fleet.router {
            if !self.routers.contains_key(router) {
                return Err(err(
                    "fleet.router",
                    format!("{router:?} is not defined under [routers]"),
                ));
            }
        }
        Ok(())
    }

    /// The robot `h` is a board of.
    fn robot_of_host<'a>(&'a self, h: &'a Host) -> &'a str {
        h.robot.as_deref().unwrap_or(&self.robot)
    }

    /// The robot host `name` is a board of (the inventory's `robot` for an unknown name).
    pub fn robot_of(&self, name: &str) -> &str {
        self.hosts
            .get(name)
            .map_or(&self.robot, |h| self.robot_of_host(h))
    }

    /// Every robot of the fleet, each once, in name order.
    pub fn robots(&self) -> Vec<&str> {
        let set: std::collections::BTreeSet<&str> =
            self.hosts.values().map(|h| self.robot_of_host(h)).collect();
        set.into_iter().collect()
    }

    /// The zenoh port `role` listens on, on whichever host runs it: the hub's port plus the
    /// role's offset (7448, 7449, 7450 by default), as the metrics ports do.
    pub fn actor_zenoh_port(&self, role: Role) -> u16 {
        self.fleet.zenoh_port + role.metrics_port_offset()
    }

    /// The hosts of `robot`, in name order.
    pub fn hosts_of(&self, robot: &str) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|(_, h)| self.robot_of_host(h) == robot)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Hosts named by `selector`: "all", a group, a robot (its boards), or host names
    /// separated by commas/spaces.
    pub fn select(&self, selector: &str) -> Result<Vec<String>, InventoryError> {
        let sel = selector.trim();
        if sel == "all" {
            return Ok(self.hosts.keys().cloned().collect());
        }
        if let Some(g) = self.groups.get(sel) {
            return Ok(g.clone());
        }
        if !self.hosts.contains_key(sel) && self.robots().contains(&sel) {
            return Ok(self.hosts_of(sel).into_iter().map(str::to_owned).collect());
        }
        let mut out = Vec::new();
        let mut routers = false;
        for h in sel.split([',', ' ']).filter(|s| !s.is_empty()) {
            // Routers are deployed too (`select_routers`); they are no board.
            if self.routers.contains_key(h) {
                routers = true;
                continue;
            }
            if !self.hosts.contains_key(h) {
                return Err(err(
                    "HOSTS",
                    format!(
                        "{h:?} is neither a host, a router, a group nor a robot of the inventory (\"all\" selects every host and router)"
                    ),
                ));
            }
            if !out.iter().any(|x| x == h) {
                out.push(h.to_owned());
            }
        }
        if out.is_empty() && !routers {
            return Err(err("HOSTS", "selects no host"));
        }
        Ok(out)
    }

    /// Routers named by `selector`: every router for "all", else those it names among
    /// comma/space-separated names (a group, a robot or a board selects none).
    pub fn select_routers(&self, selector: &str) -> Vec<String> {
        let sel = selector.trim();
        if sel == "all" {
            return self.routers.keys().cloned().collect();
        }
        let mut out: Vec<String> = Vec::new();
        for r in sel.split([',', ' ']).filter(|s| self.routers.contains_key(*s)) {
            if !out.iter().any(|x| x == r) {
                out.push(r.to_owned());
            }
        }
        out
    }

    pub fn router(&self, name: &str) -> Result<&Router, InventoryError> {
        self.routers
            .get(name)
            .ok_or_else(|| err("ROUTER", format!("{name:?} is not defined under [routers]")))
    }

    /// The boards that connect to router `name`: every board of the fleet when it is the
    /// fleet's router, else none.
    pub fn boards_of_router(&self, name: &str) -> Vec<&str> {
        if self.fleet.router.as_deref() == Some(name) {
            self.hosts.keys().map(String::as_str).collect()
        } else {
            Vec::new()
        }
    }

    pub fn host(&self, name: &str) -> Result<&Host, InventoryError> {
        self.hosts
            .get(name)
            .ok_or_else(|| err("--host", format!("{name:?} is not defined under [hosts]")))
    }

    /// The host that runs `actor` of `robot` (the check guarantees there is exactly one).
    pub fn host_of(&self, robot: &str, actor: &str) -> Option<&str> {
        self.hosts
            .iter()
            .find(|(_, h)| self.robot_of_host(h) == robot && h.runs(actor))
            .map(|(n, _)| n.as_str())
    }
}

/// `text` as an IP address that no other host or router of the inventory has; `owner` says
/// whose it is in a later clash.
fn claim_address(
    addresses: &mut BTreeMap<IpAddr, String>,
    field: &str,
    text: &str,
    owner: String,
) -> Result<IpAddr, InventoryError> {
    let addr: IpAddr = text
        .parse()
        .map_err(|_| err(field, format!("{text:?} is not an IP address")))?;
    if let Some(other) = addresses.insert(addr, owner) {
        return Err(err(field, format!("{addr} is also the address of {other}")));
    }
    Ok(addr)
}

// What the inventory's values may contain. They reach the remote shell commands of the deploy
// (`root`), ssh's command line (`user@address`), file names and certificate subjects (host and
// robot names) and the service's env file (`log`): each is restricted to characters that mean
// nothing to a shell, so that a typo or a hostile inventory is rejected here, before anything is
// built, copied or run. (The deploy script quotes them as well.) `address` must parse as an IP
// address, which admits only digits, hex letters, '.' and ':'.

/// `s` is at most `max` of `A-Z a-z 0-9 . _ -`, its first character passing `first` (which
/// `starts` describes for the error).
fn check_word(s: &str, max: usize, first: fn(char) -> bool, what: &str, starts: &str) -> Result<(), String> {
    let ok = s.len() <= max
        && s.starts_with(first)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid {what} (at most {max} of A-Z a-z 0-9 . _ -, starting with {starts})"
        ))
    }
}

fn check_arch(arch: &str) -> Result<(), String> {
    if ARCHES.contains(&arch) {
        Ok(())
    } else {
        Err(format!("unknown arch {arch:?} (known: {})", ARCHES.join(", ")))
    }
}

/// Host, group and robot names: a letter or digit, then letters, digits, '.', '_' or '-'.
fn check_name(s: &str) -> Result<(), String> {
    check_word(s, 63, |c| c.is_ascii_alphanumeric(), "name", "a letter or digit")
}

/// An SSH user name as POSIX systems accept it; never starting with '-' (ssh would read an option).
fn check_user(s: &str) -> Result<(), String> {
    check_word(
        s,
        32,
        |c| c.is_ascii_alphabetic() || c == '_',
        "user name",
        "a letter or '_'",
    )
}

/// The deploy root: an absolute path of `[A-Za-z0-9._/-]` without a `..` component.
fn check_root(p: &Path) -> Result<(), String> {
    if !p.is_absolute() {
        return Err(format!("{p:?} must be an absolute path"));
    }
    let s = p.to_str().ok_or_else(|| format!("{p:?} is not valid UTF-8"))?;
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
    {
        return Err(format!(
            "{s:?} may contain only A-Z a-z 0-9 . _ - / (it is used in shell commands on the device)"
        ));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(format!("{s:?} must not contain a \"..\" component"));
    }
    Ok(())
}

/// `RUST_LOG` of the host's processes: a tracing filter (`target=level,...`, spans in `[...]`,
/// fields in `{...}`), made of the characters such filters use, that tracing can parse.
fn check_log(s: &str) -> Result<(), String> {
    let filter_char = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | ',' | '=' | '-' | '[' | ']' | '{' | '}')
    };
    if s.is_empty() || !s.chars().all(filter_char) {
        return Err(format!(
            "{s:?} is not a tracing filter (only A-Z a-z 0-9 _ : . , = - [ ] {{ }}, e.g. \"info,zenoh=warn\")"
        ));
    }
    tracing_subscriber::EnvFilter::try_new(s).map_err(|e| format!("{s:?} is not a tracing filter: {e}"))?;
    Ok(())
}

impl Host {
    pub fn runs(&self, actor: &str) -> bool {
        self.actors.iter().any(|a| a == actor)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const GOOD: &str = r#"
robot = "r1"
[groups]
lab = ["a", "b"]
[hosts.a]
address = "10.0.0.1"
actors = ["sensor"]
[hosts.b]
address = "10.0.0.2"
actors = ["planner", "actuator"]
"#;

    fn fails(text: &str) -> InventoryError {
        match Inventory::parse(text) {
            Ok(_) => panic!("must be rejected:\n{text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn good_inventory_selects_groups_and_hosts() {
        let inv = Inventory::parse(GOOD).expect("valid");
        assert_eq!(inv.select("lab").expect("group"), ["a", "b"]);
        assert_eq!(inv.select("b, a").expect("hosts"), ["b", "a"]);
        assert_eq!(inv.select("all").expect("all"), ["a", "b"]);
        assert_eq!(inv.select("c").expect_err("unknown").field, "HOSTS");
        assert_eq!(inv.host_of("r1", "planner"), Some("b"));
        assert_eq!(inv.robots(), ["r1"]);
        assert_eq!(inv.select("r1").expect("robot"), ["a", "b"]);
    }

    #[test]
    fn unknown_actor_names_the_field() {
        let e = fails(&GOOD.replace("[\"sensor\"]", "[\"sensor\", \"lidar\"]"));
        assert_eq!(e.field, "hosts.a.actors");
        assert!(e.reason.contains("unknown actor \"lidar\""), "{e}");
    }

    #[test]
    fn duplicate_port_names_both_users() {
        let e = fails(&format!("{GOOD}[hosts.b.ports]\nactuator = 9902\n"));
        assert_eq!(e.field, "hosts.b.ports.actuator");
        assert!(e.reason.contains("hosts.b.ports.planner"), "{e}");
        let e = fails(&format!("{GOOD}[hosts.a.ports]\nsensor = 7447\n"));
        assert!(e.reason.contains("fleet.zenoh_port"), "{e}");
        // The actors' zenoh ports are the hub's plus 1–3.
        let e = fails(&format!("{GOOD}[hosts.a.ports]\nsensor = 7448\n"));
        assert!(e.field.contains("the sensor's zenoh port"), "{e}");
        assert!(e.reason.contains("hosts.a.ports.sensor"), "{e}");
        let e = fails(&format!("{GOOD}[fleet]\nzenoh_port = 65534\n"));
        assert_eq!(e.field, "fleet.zenoh_port");
    }

    #[test]
    fn missing_host_in_group_or_actor_without_host() {
        let e = fails(&GOOD.replace("[\"a\", \"b\"]", "[\"a\", \"c\"]"));
        assert_eq!(e.field, "groups.lab");
        assert!(e.reason.contains("\"c\" is not defined"), "{e}");
        let e = fails(&GOOD.replace("[\"planner\", \"actuator\"]", "[\"actuator\"]"));
        assert!(e.reason.contains("no host runs the planner of robot r1"), "{e}");
        let e = fails("robot = \"r\"\nhosts = {}\n");
        assert_eq!(e.field, "hosts");
    }

    #[test]
    fn bad_address_and_other_fields() {
        let e = fails(&GOOD.replace("10.0.0.1", "10.0.0.300"));
        assert_eq!(e.field, "hosts.a.address");
        let e = fails(&GOOD.replace("10.0.0.2", "10.0.0.1"));
        assert!(e.reason.contains("also the address of host a"), "{e}");
        let e = fails(&GOOD.replace(
            "[\"planner\", \"actuator\"]",
            "[\"planner\", \"actuator\", \"sensor\"]",
        ));
        assert!(e.reason.contains("sensor of robot r1 already runs on a"), "{e}");
        let e = fails(&format!("{GOOD}arch = \"sparc\"\n"));
        assert_eq!(e.field, "hosts.b.arch");
        let e = fails(&format!("{GOOD}root = \"opt/qubot\"\n"));
        assert_eq!(e.field, "hosts.b.root");
        let e = fails(&format!("{GOOD}[hosts.b.node.sensor]\nbeams = 10\n"));
        assert_eq!(e.field, "hosts.b.node");
        assert!(e.reason.contains("sensor.beams"), "{e}");
        let e = fails(&GOOD.replace("address = \"10.0.0.2\"", "adress = \"10.0.0.2\""));
        assert!(e.reason.contains("adress"), "{e}");
    }

    /// Values that would reach a shell command or the env file with a meaning of their own.
    #[test]
    fn values_for_shells_and_env_files_are_restricted_and_name_the_field() {
        let b = |line: &str| fails(&format!("{GOOD}{line}\n"));
        for (line, field) in [
            ("root = \"/tmp/x'; touch /tmp/pwned; '\"", "hosts.b.root"),
            ("root = \"/opt/qubot/../../etc\"", "hosts.b.root"),
            ("root = \"/opt/$(id)\"", "hosts.b.root"),
            ("root = \"/opt/qu bot\"", "hosts.b.root"),
            ("user = \"-oProxyCommand=touch\"", "hosts.b.user"),
            ("user = \"root;id\"", "hosts.b.user"),
            ("user = \"a@b\"", "hosts.b.user"),
            ("log = \"info\\nLD_PRELOAD=/tmp/x.so\"", "hosts.b.log"),
            ("log = \"info`id`\"", "hosts.b.log"),
            ("log = \"$(id)\"", "hosts.b.log"),
            ("log = \"info zenoh=warn\"", "hosts.b.log"),
            ("log = \"\"", "hosts.b.log"),
            ("log = \"info,zenoh=[\"", "hosts.b.log"),
        ] {
            let e = b(line);
            assert_eq!(e.field, field, "{line}: {e}");
        }
        let e = fails(&GOOD.replace("10.0.0.1", "10.0.0.1;id"));
        assert_eq!(e.field, "hosts.a.address", "{e}");
        let e = fails(
            &GOOD
                .replace("[hosts.a]", "[hosts.\"a'b\"]")
                .replace("\"a\", ", "\"a'b\", "),
        );
        assert_eq!(e.field, "hosts.a'b", "{e}");
        let e = fails(
            &GOOD
                .replace("[hosts.a]", "[hosts.\"-a\"]")
                .replace("\"a\", ", "\"-a\", "),
        );
        assert_eq!(e.field, "hosts.-a", "{e}");
        let e = fails(&GOOD.replace("robot = \"r1\"", "robot = \"r1;id\""));
        assert_eq!(e.field, "robot", "{e}");
        let e = fails(&GOOD.replace("lab = ", "\"l;b\" = "));
        assert_eq!(e.field, "groups.l;b", "{e}");

        // What real inventories use is accepted.
        let ok = |line: &str| {
            Inventory::parse(&format!("{GOOD}{line}\n")).unwrap_or_else(|e| panic!("{line}: {e}"));
        };
        ok("root = \"/var/lib/qubot-lab/dev2/opt/qubot\"");
        ok("root = \"/srv/qubot_2.1\"");
        ok("user = \"qubot-deploy\"");
        ok("user = \"_svc.qubot\"");
        ok("log = \"info,zenoh=warn,zenoh::net::routing::interceptor::access_control=trace\"");
        ok("log = \"qubot[actor{name=planner}]=debug\"");
    }

    /// Two robots of two boards each, one site router.
    pub(crate) const FLEET: &str = r#"
robot = "r1"
[fleet]
router = "site"
[routers.site]
address = "10.0.0.100"
[hosts.a]
address = "10.0.0.1"
actors = ["sensor"]
[hosts.b]
address = "10.0.0.2"
actors = ["planner", "actuator"]
[hosts.c]
robot = "r2"
address = "10.0.0.3"
actors = ["sensor"]
[hosts.d]
robot = "r2"
address = "10.0.0.4"
actors = ["planner", "actuator"]
"#;

    #[test]
    fn a_fleet_has_robots_of_their_own_boards() {
        let inv = Inventory::parse(FLEET).expect("valid");
        assert_eq!(inv.robots(), ["r1", "r2"]);
        assert_eq!(inv.hosts_of("r2"), ["c", "d"]);
        assert_eq!(inv.robot_of("c"), "r2");
        assert_eq!(inv.host_of("r2", "planner"), Some("d"));
        assert_eq!(inv.select("r2").expect("robot"), ["c", "d"]);
        assert_eq!(inv.routers["site"].port, 7500);
        // Each robot needs each actor once; another robot's actor does not count.
        let d = "address = \"10.0.0.4\"\nactors = [\"planner\", \"actuator\"]";
        let e = fails(&FLEET.replace(d, "address = \"10.0.0.4\"\nactors = [\"actuator\"]"));
        assert!(e.reason.contains("no host runs the planner of robot r2"), "{e}");
        let e = fails(&FLEET.replace("router = \"site\"", "router = \"elsewhere\""));
        assert_eq!(e.field, "fleet.router", "{e}");
        let e = fails(&FLEET.replace("10.0.0.100", "10.0.0.4"));
        assert!(e.reason.contains("router site"), "{e}");
        let e = fails(&FLEET.replace(
            "robot = \"r2\"\naddress = \"10.0.0.3\"",
            "robot = \"r;2\"\naddress = \"10.0.0.3\"",
        ));
        assert_eq!(e.field, "hosts.c.robot", "{e}");
        // A secure fleet with its router.
        Inventory::parse(&FLEET.replace("[fleet]", "[fleet]\ntls = true")).expect("tls with a router");
        let e = fails(&FLEET.replace(
            "address = \"10.0.0.100\"",
            "address = \"10.0.0.100\"\nroot = \"opt\"",
        ));
        assert_eq!(e.field, "routers.site.root", "{e}");
        let e = fails(&FLEET.replace(
            "address = \"10.0.0.100\"",
            "address = \"10.0.0.100\"\nuser = \"-x\"",
        ));
        assert_eq!(e.field, "routers.site.user", "{e}");
        // Routers are selected by "all" or by name; board selectors select none.
        assert_eq!(inv.select_routers("all"), ["site"]);
        assert_eq!(inv.select_routers("a,site"), ["site"]);
        assert!(inv.select_routers("r1").is_empty() && inv.select_routers("a").is_empty());
        assert_eq!(inv.select("a,site").expect("a board and a router"), ["a"]);
        assert!(inv.select("site").expect("a router alone").is_empty());
        assert_eq!(inv.boards_of_router("site"), ["a", "b", "c", "d"]);
        assert_eq!(inv.fleet.wave, 1, "one host at a time unless the inventory says");
        let e = fails(&FLEET.replace("[fleet]", "[fleet]\nwave = 0"));
        assert_eq!(e.field, "fleet.wave", "{e}");
    }

    /// A shipped inventory (`deploy/NAME`), loaded as `qubot inventory check` loads it.
    pub(crate) fn shipped(name: &str) -> Inventory {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy")
            .join(name);
        Inventory::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// What `qubot inventory check` prints for an inventory error (stderr, exit 2: the CLI's
    /// side is `crates/qubot/tests/deploy.rs`) names the field and the value; the shipped
    /// inventories pass, and a robot selects its boards.
    #[test]
    fn inventory_errors_name_the_field() {
        let e = fails(
            "robot = \"r\"\n[hosts.a]\naddress = \"10.0.0.1\"\nactors = [\"sensor\", \"planner\", \"lidar\"]\n",
        );
        let said = e.to_string();
        assert!(
            said.contains("hosts.a.actors") && said.contains("\"lidar\""),
            "{said}"
        );
        // A deploy root that would end the quoting of the remote commands.
        let e = fails(
            "robot = \"r\"\n[hosts.a]\naddress = \"10.0.0.1\"\nroot = \"/opt/q'; reboot; '\"\n\
             actors = [\"sensor\", \"planner\", \"actuator\"]\n",
        );
        assert!(e.to_string().contains("inventory: hosts.a.root: "), "{e}");
        let inv = shipped("inventory.toml");
        assert_eq!((inv.hosts.len(), inv.robots()), (2, vec!["qubot-one"]));
        let fleet = shipped("fleet.toml");
        assert_eq!(
            (fleet.hosts.len(), fleet.robots()),
            (4, vec!["qubot-one", "qubot-two"])
        );
        // A robot is a selector: its boards.
        assert_eq!(fleet.select("qubot-two").expect("robot"), ["dev3", "dev4"]);
    }
}
