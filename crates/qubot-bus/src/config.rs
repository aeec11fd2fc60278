use std::path::PathBuf;

use crate::error::{BusError, ZenohError};

/// zenoh's switch for its shared-memory transport (json5 `true`/`false`).
pub const SHM_TRANSPORT_KEY: &str = "transport/shared_memory/enabled";

/// The `latency` profile: each message leaves as soon as it is published instead of waiting
/// up to a millisecond for a batch to fill under back-pressure. zenoh's separate `lowlatency`
/// transport is not used: it drops QoS priorities, cannot fragment (a message over 64 KiB
/// between hosts would fail), and its send blocks in place, which zenoh refuses (panics) on
/// the current-thread runtime every actix actor publishes from (tried: BENCHMARKS.md).
pub const LOW_LATENCY: &[(&str, &str)] = &[("transport/link/tx/queue/batching/enabled", "false")];

/// Which of two peers that learn of each other by gossip opens the link: only the one with
/// the greater zenoh id. With zenoh's default ("always") both open at once, and a duplicate
/// link can take the transport down with it (zenoh#169, #1742, #2577), and nothing retries a
/// gossip connection. One deploy-lab run looked like that: for 30 s a health probe never
/// reached the sensor on its own host, whose /metrics answered. Every Qubot peer can reach
/// every other (one host, or a fleet's LAN), so either side can be the one that opens.
pub const GOSSIP_STRATEGY_KEY: &str = "scouting/gossip/autoconnect_strategy";
pub const GOSSIP_STRATEGY: &str = r#"{ peer: { to_router: "always", to_peer: "greater-zid" } }"#;

/// A site router gossips only to other routers. With zenoh's default it would pass every
/// robot's boards the locators of every other robot's boards, and they would connect to each
/// other directly: a full mesh across the fleet, when each robot's traffic is its own.
pub const ROUTER_GOSSIP_TARGET_KEY: &str = "scouting/gossip/target";
pub const ROUTER_GOSSIP_TARGET: &str = r#"{ router: ["router"], peer: ["router", "peer"] }"#;

/// Default size from which messages travel in shared memory.
pub const DEFAULT_SHM_THRESHOLD: usize = 1024;

/// What a process needs to join the bus. Defaults: peer mode, no multicast scouting, SHM on,
/// so one host needs no router and no external service.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub robot: String,
    pub actor: String,
    pub instance: String,
    /// A zenoh json5 config file passed through untouched (endpoints, TLS, ACL...).
    pub zenoh_config: Option<PathBuf>,
    /// `KEY=VALUE` overrides applied last, as zenoh's `insert_json5` (value is json5).
    pub zenoh_overrides: Vec<(String, String)>,
    pub listen: Vec<String>,
    pub connect: Vec<String>,
    /// Size of this process's shared-memory pool, created on the first publisher; 0 publishes
    /// from the heap. Keep it to what the process publishes: every receiver keeps a sender's
    /// pool mapped for as long as the receiver lives (zenoh issue #2787).
    pub shm_pool_bytes: usize,
    /// Messages smaller than this are published from the heap: copying a few hundred bytes
    /// is cheaper than SHM bookkeeping, and a process that only sends small messages then
    /// never creates (or leaves behind) a segment.
    pub shm_threshold_bytes: usize,
}

impl BusConfig {
    pub fn new(robot: &str, actor: &str, instance: &str) -> Self {
        BusConfig {
            robot: robot.into(),
            actor: actor.into(),
            instance: instance.into(),
            zenoh_config: None,
            zenoh_overrides: Vec::new(),
            listen: Vec::new(),
            connect: Vec::new(),
            shm_pool_bytes: 16 << 20,
            shm_threshold_bytes: DEFAULT_SHM_THRESHOLD,
        }
    }

    /// A zenoh json5 file passed through untouched (`None`: Qubot's defaults).
    pub fn with_zenoh_config(mut self, file: Option<PathBuf>) -> Self {
        self.zenoh_config = file;
        self
    }

    pub fn with_listen(mut self, endpoints: impl IntoIterator<Item = String>) -> Self {
        self.listen = endpoints.into_iter().collect();
        self
    }

    pub fn with_connect(mut self, endpoints: impl IntoIterator<Item = String>) -> Self {
        self.connect = endpoints.into_iter().collect();
        self
    }

    /// This process's shared-memory pool in MiB (0 publishes from the heap).
    pub fn with_shm_pool_mib(mut self, mib: u64) -> Self {
        self.shm_pool_bytes = (mib as usize) << 20;
        self
    }

    /// No shared memory at all: no pool of its own, and zenoh's SHM transport off, so the
    /// process maps no peer's segment either (and leaves nothing in /dev/shm).
    pub fn without_shm(mut self) -> Self {
        self.shm_pool_bytes = 0;
        self.zenoh_overrides
            .push((SHM_TRANSPORT_KEY.into(), "false".into()));
        self
    }

    /// A site router (zenoh's router mode) instead of a peer: robots' boards connect to it and
    /// it routes between them what they subscribe to across robots. No shared memory (its links
    /// are between hosts) and gossip to routers only ([`ROUTER_GOSSIP_TARGET`]).
    pub fn as_router(mut self) -> Self {
        self = self.without_shm();
        self.zenoh_overrides.extend([
            ("mode".to_string(), "\"router\"".to_string()),
            (
                ROUTER_GOSSIP_TARGET_KEY.to_string(),
                ROUTER_GOSSIP_TARGET.to_string(),
            ),
        ]);
        self
    }

    /// zenoh's low-latency settings ([`LOW_LATENCY`]) on top of whatever else is configured:
    /// for a node whose control loop matters more than throughput. Explicit overrides added
    /// after this still win.
    pub fn with_low_latency(mut self) -> Self {
        self.zenoh_overrides
            .extend(LOW_LATENCY.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// The zenoh config: the file (or zenoh's defaults) with Qubot's defaults filled in only
    /// where the file is silent, then the explicit endpoints and overrides.
    pub(crate) fn to_zenoh(&self) -> Result<zenoh::Config, BusError> {
        let mut cfg = match &self.zenoh_config {
            Some(path) => zenoh::Config::from_file(path).map_err(|e| BusError::ConfigFile {
                path: path.clone(),
                source: ZenohError::from_display(e),
            })?,
            None => {
                let mut c = zenoh::Config::default();
                set(&mut c, "mode", "\"peer\"")?;
                // Multicast scouting sprays the LAN and makes tests collide; peers find each
                // other through configured endpoints plus gossip instead.
                set(&mut c, "scouting/multicast/enabled", "false")?;
                set(&mut c, GOSSIP_STRATEGY_KEY, GOSSIP_STRATEGY)?;
                // A lost link to a configured endpoint (the site router restarting, another
                // board rebooting) is retried every second, not after up to 4 s as by default.
                set(
                    &mut c,
                    "connect/retry",
                    "{ period_init_ms: 1000, period_max_ms: 1000, period_increase_factor: 1 }",
                )?;
                // Publishers loan SHM explicitly; zenoh's implicit copy of large heap messages
                // into a second, 16 MiB pool of its own would only cost memory (and receivers
                // keep every sender's pool mapped for life: zenoh issue #2787).
                set(
                    &mut c,
                    "transport/shared_memory/transport_optimization/enabled",
                    "false",
                )?;
                c
            }
        };
        // No message larger than the wire format allows is ever reassembled: zenoh's default
        // (1 GiB) would let any peer make us buffer that much before our decoder says no.
        set(
            &mut cfg,
            "transport/link/rx/max_message_size",
            &MAX_WIRE_MESSAGE.to_string(),
        )?;
        if !self.listen.is_empty() {
            set(&mut cfg, "listen/endpoints", &json_list(&self.listen))?;
        }
        if !self.connect.is_empty() {
            set(&mut cfg, "connect/endpoints", &json_list(&self.connect))?;
        }
        for (k, v) in &self.zenoh_overrides {
            set(&mut cfg, k, v)?;
        }
        Ok(cfg)
    }
}

/// The largest message the wire format allows: header, body and bulk payload at their limits.
pub const MAX_WIRE_MESSAGE: usize =
    qubot_msg::HEADER_LEN + qubot_msg::MAX_BODY_LEN + qubot_msg::MAX_PAYLOAD_LEN;

/// A JSON array of strings (JSON is valid json5), escaped properly whatever the endpoint holds.
fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items).to_string()
}

fn set(cfg: &mut zenoh::Config, key: &str, value: &str) -> Result<(), BusError> {
    cfg.insert_json5(key, value).map_err(|e| BusError::ConfigKey {
        key: key.into(),
        value: value.into(),
        source: ZenohError::from_display(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_peer_without_multicast() {
        let cfg = BusConfig::new("r", "a", "i").to_zenoh().expect("config");
        assert_eq!(cfg.get_json("mode").expect("mode"), "\"peer\"");
        assert_eq!(
            cfg.get_json("scouting/multicast/enabled").expect("scouting"),
            "false"
        );
    }

    #[test]
    fn only_one_peer_of_a_pair_opens_the_gossip_link() {
        let cfg = BusConfig::new("r", "a", "i").to_zenoh().expect("config");
        let v = cfg.get_json(GOSSIP_STRATEGY_KEY).expect("key");
        assert!(v.contains("\"to_peer\":\"greater-zid\""), "{v}");
    }

    #[test]
    fn a_lost_link_is_retried_every_second() {
        let cfg = BusConfig::new("r", "a", "i").to_zenoh().expect("config");
        let v = cfg.get_json("connect/retry").expect("retry");
        assert!(v.contains("\"period_max_ms\":1000"), "{v}");
    }

    #[test]
    fn a_router_gossips_to_routers_only() {
        let cfg = BusConfig::new("site", "router", "main")
            .as_router()
            .to_zenoh()
            .expect("config");
        assert_eq!(cfg.get_json("mode").expect("mode"), "\"router\"");
        let target = cfg.get_json(ROUTER_GOSSIP_TARGET_KEY).expect("target");
        assert!(target.contains("\"router\":[\"router\"]"), "{target}");
        assert_eq!(cfg.get_json(SHM_TRANSPORT_KEY).expect("shm"), "false");
    }

    #[test]
    fn messages_are_capped_at_the_wire_format_limit() {
        let cfg = BusConfig::new("r", "a", "i").to_zenoh().expect("config");
        let v = cfg.get_json("transport/link/rx/max_message_size").expect("key");
        assert_eq!(v, MAX_WIRE_MESSAGE.to_string());
    }

    #[test]
    fn bad_override_names_the_key() {
        let mut b = BusConfig::new("r", "a", "i");
        b.zenoh_overrides.push(("mode".into(), "\"emperor\"".into()));
        let err = b.to_zenoh().expect_err("bad mode");
        assert!(err.to_string().contains("mode"), "{err}");
    }

    #[test]
    fn without_shm_turns_the_transport_off() {
        let cfg = BusConfig::new("r", "a", "i").without_shm();
        assert_eq!(cfg.shm_pool_bytes, 0);
        let z = cfg.to_zenoh().expect("config");
        assert_eq!(z.get_json(SHM_TRANSPORT_KEY).expect("key"), "false");
    }

    #[test]
    fn low_latency_turns_batching_off_and_keeps_later_overrides() {
        let mut b = BusConfig::new("r", "a", "i").with_low_latency();
        let z = b.to_zenoh().expect("config");
        for (k, v) in LOW_LATENCY {
            assert_eq!(z.get_json(k).expect("key"), *v, "{k}");
        }
        b.zenoh_overrides
            .push(("transport/link/tx/queue/batching/enabled".into(), "true".into()));
        let z = b.to_zenoh().expect("config");
        assert_eq!(
            z.get_json("transport/link/tx/queue/batching/enabled")
                .expect("key"),
            "true"
        );
    }

    #[test]
    fn missing_file_is_an_error() {
        let mut b = BusConfig::new("r", "a", "i");
        b.zenoh_config = Some("/nonexistent/z.json5".into());
        assert!(matches!(b.to_zenoh(), Err(BusError::ConfigFile { .. })));
    }
}
