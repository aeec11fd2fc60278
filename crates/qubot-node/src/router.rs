//! The config of a site router (`qubot router --config router.toml`), generated per router
//! from the inventory: where it listens and serves metrics, its zenoh file (TLS and access
//! control), and which boards of which robots connect to it, so that it can say which robots
//! it serves and its health check can wait for them.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Name of this router (key-expression segment; the `host` label of its series).
    pub name: String,
    /// The site: the `robot` label of the router's own series.
    #[serde(default = "RouterConfig::default_site")]
    pub site: String,
    /// zenoh endpoints it listens on (at least one).
    pub listen: Vec<String>,
    /// Other routers it connects to.
    #[serde(default)]
    pub connect: Vec<String>,
    pub metrics_addr: SocketAddr,
    /// A zenoh json5 file (mutual TLS and access control with `fleet.tls = true`).
    #[serde(default)]
    pub zenoh_config: Option<PathBuf>,
    /// The boards that connect to this router, by name.
    #[serde(default)]
    pub boards: BTreeMap<String, Board>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub robot: String,
    pub address: IpAddr,
}

fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl RouterConfig {
    pub fn default_site() -> String {
        "site".into()
    }

    /// Reads, parses and validates a router config file.
    pub fn load(path: &Path) -> Result<RouterConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let cfg: RouterConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let seg = |f: &str, v: &str| qubot_msg::keys::check_segment(v).map_err(|r| invalid(f, r));
        seg("name", &self.name)?;
        seg("site", &self.site)?;
        if self.listen.is_empty() {
            return Err(invalid("listen", "a router listens on at least one endpoint"));
        }
        for (name, b) in &self.boards {
            seg(&format!("boards.{name}.robot"), &b.robot)?;
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        // Plain strings, numbers and maps: serializing cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// How many boards of each robot connect here.
    pub fn expected_boards(&self) -> BTreeMap<&str, usize> {
        let mut out = BTreeMap::new();
        for b in self.boards.values() {
            *out.entry(b.robot.as_str()).or_default() += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
name = "site"
listen = ["tls/10.0.0.100:7500"]
metrics_addr = "10.0.0.100:9899"
zenoh_config = "/opt/qubot/current/zenoh.json5"
[boards.a]
robot = "r1"
address = "10.0.0.1"
[boards.b]
robot = "r1"
address = "10.0.0.2"
[boards.c]
robot = "r2"
address = "10.0.0.3"
"#;

    #[test]
    fn parses_counts_and_round_trips() {
        let cfg: RouterConfig = toml::from_str(TEXT).expect("parse");
        cfg.validate().expect("valid");
        assert_eq!(cfg.site, "site");
        assert_eq!(
            cfg.expected_boards().into_iter().collect::<Vec<_>>(),
            [("r1", 2), ("r2", 1)]
        );
        let back: RouterConfig = toml::from_str(&cfg.to_toml()).expect("round trip");
        assert_eq!(back, cfg);
    }

    #[test]
    fn bad_fields_are_named() {
        let no_listen = TEXT.replace("listen = [\"tls/10.0.0.100:7500\"]", "listen = []");
        let cfg: RouterConfig = toml::from_str(&no_listen).expect("parse");
        assert!(cfg
            .validate()
            .expect_err("no listen")
            .to_string()
            .contains("listen"));
        let bad_robot = TEXT.replace("robot = \"r2\"", "robot = \"r/2\"");
        let cfg: RouterConfig = toml::from_str(&bad_robot).expect("parse");
        assert!(cfg
            .validate()
            .expect_err("robot")
            .to_string()
            .contains("boards.c.robot"));
        assert!(toml::from_str::<RouterConfig>(&format!("{TEXT}\nextra = 1")).is_err());
    }
}
