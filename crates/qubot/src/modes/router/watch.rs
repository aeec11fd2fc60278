//! What a router says about itself each second: sessions by kind, links, which boards of each
//! robot hold a link (from the remote addresses of its links, so it holds with or without TLS),
//! and the bytes it moved.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use qubot_bus::telemetry as names;
use qubot_node::RouterConfig;
use zenoh::Wait;

pub struct Watch {
    cfg: Option<RouterConfig>,
}

impl Watch {
    pub fn new(cfg: Option<RouterConfig>) -> Watch {
        super::denials::register();
        if let Some(cfg) = &cfg {
            for (robot, n) in cfg.expected_boards() {
                metrics::gauge!(names::ROUTER_EXPECTED_BOARDS, names::FLEET_ROBOT_LABEL => robot.to_owned())
                    .set(n as f64);
            }
        }
        Watch { cfg }
    }

    pub fn tick(&mut self, session: &zenoh::Session) {
        let info = session.info();
        let peers = info.peers_zid().wait().count();
        let routers = info.routers_zid().wait().count();
        metrics::gauge!(names::ROUTER_SESSIONS, "kind" => "peer").set(peers as f64);
        metrics::gauge!(names::ROUTER_SESSIONS, "kind" => "router").set(routers as f64);
        let mut remote: BTreeSet<IpAddr> = BTreeSet::new();
        let mut certificates = HashMap::new();
        let mut links = 0usize;
        for link in info.links().wait() {
            links += 1;
            remote.extend(
                [link.src(), link.dst()]
                    .into_iter()
                    .filter_map(|l| ip_of(&l.to_string())),
            );
            if let Some(cn) = link.auth_identifier() {
                certificates.insert(link.zid().to_string(), cn.to_owned());
            }
        }
        metrics::gauge!(names::ROUTER_LINKS).set(links as f64);
        super::denials::say_new(&certificates);
        if let Some(cfg) = &self.cfg {
            let mut linked: BTreeMap<&str, usize> =
                cfg.expected_boards().into_keys().map(|r| (r, 0)).collect();
            for b in cfg.boards.values().filter(|b| remote.contains(&b.address)) {
                *linked.entry(b.robot.as_str()).or_default() += 1;
            }
            for (robot, n) in linked {
                metrics::gauge!(names::ROUTER_BOARDS, names::FLEET_ROBOT_LABEL => robot.to_owned())
                    .set(n as f64);
            }
        }
        if let Some((read, written)) = io_bytes() {
            metrics::counter!(names::ROUTER_IO_BYTES, "direction" => "read").absolute(read);
            metrics::counter!(names::ROUTER_IO_BYTES, "direction" => "written").absolute(written);
        }
    }
}

/// The IP address of a zenoh locator such as `tls/10.77.0.1:45678`.
fn ip_of(locator: &str) -> Option<IpAddr> {
    super::socket_addr(locator).map(|a| a.ip())
}

/// Bytes this process read and wrote through system calls (`rchar`, `wchar` of
/// `/proc/self/io`): for a router, its links and little else.
fn io_bytes() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("rchar:")?, field("wchar:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_give_their_address() {
        assert_eq!(ip_of("tls/10.77.0.1:45678"), Some([10, 77, 0, 1].into()));
        assert_eq!(
            ip_of("tcp/[::1]:7447?iface=lo"),
            Some(std::net::Ipv6Addr::LOCALHOST.into())
        );
        assert_eq!(ip_of("unixsock-stream/tmp/x"), None);
        let (read, written) = io_bytes().expect("/proc/self/io");
        assert!(read > 0 && written < u64::MAX, "{read} {written}");
    }
}
