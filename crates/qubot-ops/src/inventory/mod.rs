//! The fleet inventory (`deploy/inventory.toml`): its model and checks, the per-host files
//! rendered from it (node config, Prometheus targets, env file) and the fleet's TLS and
//! access-control zenoh config. `qubot inventory` prints and writes these.

mod model;
pub mod render;
pub mod security;

pub use model::{Fleet, Host, Inventory, InventoryError, Ports};
