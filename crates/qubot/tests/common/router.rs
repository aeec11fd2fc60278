//! A `qubot router` (a site's zenoh router), on loopback or inside a network namespace.

use std::process::Command;

use qubot_msg::metric_names::ROUTER_SESSIONS;

use super::{counters::counter, Proc, QUBOT};

pub struct Router {
    /// Killed on drop.
    _proc: Proc,
    /// The zenoh endpoint it listens on.
    pub endpoint: String,
    /// Its `/metrics` address.
    pub metrics: String,
}

impl Router {
    /// On loopback: zenoh on `port`, metrics on `metrics_port`.
    pub fn start(port: u16, metrics_port: u16) -> Router {
        let endpoint = format!("tcp/127.0.0.1:{port}");
        let metrics = format!("127.0.0.1:{metrics_port}");
        Router::spawn(None, &["--listen", &endpoint, "--metrics-addr", &metrics])
    }

    /// `qubot router ARGS`, inside network namespace `netns` when given. `args` name where it
    /// listens (`--listen`) and serves metrics (`--metrics-addr`), as `qubot inventory router`
    /// prints them.
    pub fn spawn(netns: Option<&str>, args: &[&str]) -> Router {
        let value = |flag: &str| {
            args.iter()
                .position(|a| *a == flag)
                .and_then(|i| args.get(i + 1))
                .unwrap_or_else(|| panic!("router arguments without {flag}: {args:?}"))
                .to_string()
        };
        let (endpoint, metrics) = (value("--listen"), value("--metrics-addr"));
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, QUBOT]);
                c
            }
            None => Command::new(QUBOT),
        };
        cmd.arg("router").args(args).env("RUST_LOG", "warn");
        let name = match netns {
            Some(ns) => format!("qubot router in {ns}"),
            None => "qubot router".into(),
        };
        Router {
            _proc: Proc::from_command(&name, cmd),
            endpoint,
            metrics,
        }
    }

    /// Sessions the router holds with peers (every process of every robot connects).
    pub fn peer_sessions(&self) -> Option<f64> {
        counter(&self.metrics, ROUTER_SESSIONS, &[("kind", "peer")])
    }
}
