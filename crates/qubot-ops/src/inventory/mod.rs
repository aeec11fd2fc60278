//! The fleet inventory (`deploy/inventory.toml`): its model and checks, the per-host files
//! rendered from it (node config, Prometheus targets, env file) and the fleet's TLS and
//! access-control zenoh config. `qubot inventory` prints and writes these.

mod model;
pub mod render;
pub mod security;

pub use model::{Fleet, Host, Inventory, InventoryError, Ports, Router};

use std::path::Path;

use model::err;

// Loading lives here, above both the model and the rendering: a host's node-config overrides
// are only valid if the node config rendered from them is.
impl Inventory {
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(path.display().to_string(), e.to_string()))?;
        Self::parse(&text)
    }

    /// Parses and checks.
    pub fn parse(text: &str) -> Result<Inventory, InventoryError> {
        let inv: Inventory = toml::from_str(text).map_err(|e| err("(syntax)", e.message().to_owned()))?;
        inv.check()?;
        Ok(inv)
    }

    /// Every check that must pass before a build or a copy.
    pub fn check(&self) -> Result<(), InventoryError> {
        self.check_fields()?;
        // Node-config overrides must give a valid node config on their own host.
        for name in self.hosts.keys() {
            render::node_config(self, name)?;
        }
        Ok(())
    }
}
