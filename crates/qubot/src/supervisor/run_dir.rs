//! The run's private directory, where the children's config lives for as long as the run.

use std::path::PathBuf;

use anyhow::Context;
use qubot_node::NodeConfig;

/// `qubot-up-<16 random hex digits>` under `$XDG_RUNTIME_DIR` (per user, tmpfs) when set,
/// else the temp dir; created mode 0700 and never reused (creation fails if the name exists),
/// so nobody else reads or swaps the config a child starts with. Removed with everything in
/// it on drop.
pub struct RunDir(PathBuf);

impl RunDir {
    pub fn create() -> std::io::Result<RunDir> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("qubot-up-{:016x}", qubot_bus::random_source().0));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(RunDir(dir))
    }

    /// Writes the resolved config (defaults + file + flags, world clock fixed) as the one
    /// file every child, restarted ones too, starts from; returns its path.
    pub fn write_config(&self, cfg: &NodeConfig) -> anyhow::Result<PathBuf> {
        let file = self.0.join("node.toml");
        std::fs::write(&file, cfg.to_toml()).with_context(|| format!("writing {}", file.display()))?;
        Ok(file)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
