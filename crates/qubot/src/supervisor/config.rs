//! `qubot up`'s node config: the file (or the defaults) with the command line's overrides,
//! loaded and checked once, before anything starts (errors name the field, exit 2).

use qubot_node::NodeConfig;

use crate::{
    cli::UpArgs,
    startup::{self, Checked, Node},
};

/// The run's config and world: defaults, then the config file, then the flags, validated as
/// a whole.
pub fn load(args: &UpArgs) -> anyhow::Result<Node> {
    let node = startup::load_node(args.config.as_deref(), Checked::No, |cfg| overrides(cfg, args))?;
    if let Some(t) = args.timeout {
        if !(t.is_finite() && t > 0.0) {
            anyhow::bail!("--timeout must be a positive number of seconds, got {t}");
        }
    }
    Ok(node)
}

/// What the flags of `qubot up` change in the config.
fn overrides(cfg: &mut NodeConfig, args: &UpArgs) {
    if let Some(w) = &args.world {
        cfg.world = w.clone();
    }
    if let Some(d) = &args.worlds_dir {
        cfg.worlds_dir = d.clone();
    }
    if let Some(r) = &args.robot {
        cfg.robot = r.clone();
    }
    if let Some(h) = &args.hub {
        cfg.zenoh.hub = h.clone();
    }
    cfg.zenoh.connect.extend(args.connect.iter().cloned());
    if let Some(base) = args.metrics_port_base {
        cfg.set_metrics_ports(base);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Mode};

    /// `qubot up ARGS` as parsed (the supervisor's tests share it).
    pub(in crate::supervisor) fn up(args: &[&str]) -> UpArgs {
        match Cli::try_parse_from(["qubot", "up"].iter().chain(args))
            .expect("command line")
            .mode
        {
            Mode::Up(a) => a,
            other => panic!("not up: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match load(&up(args)) {
            Ok(_) => panic!("{args:?} must be refused"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn flags_go_over_the_file_in_one_load() {
        let file = std::env::temp_dir().join(format!("qubot-up-config-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "robot = \"from-file\"\n[zenoh]\nconnect = [\"tcp/10.0.0.1:7500\"]\n",
        )
        .expect("config");
        let path = file.to_string_lossy().into_owned();
        let node = load(&up(&[
            "--config",
            &path,
            "--robot",
            "from-flag",
            "--metrics-port-base",
            "9700",
            "--connect",
            "tcp/10.0.0.2:7500",
            "--worlds-dir",
            ".",
        ]));
        let _ = std::fs::remove_file(&file);
        let Node { cfg, world } = node.expect("valid");
        assert_eq!(cfg.robot, "from-flag");
        assert_eq!(
            (cfg.supervisor.metrics_port, cfg.actuator.metrics_port),
            (9700, 9703)
        );
        assert_eq!(cfg.zenoh.connect, ["tcp/10.0.0.1:7500", "tcp/10.0.0.2:7500"]);
        assert!(cfg.worlds_dir.is_absolute(), "children started elsewhere agree");
        assert_ne!(cfg.world_epoch_ns, 0, "one world clock for the run");
        assert_eq!(world.name, qubot_robot::World::builtin().name);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert!(error(&["--hub", " "]).contains("zenoh.hub"));
        assert!(error(&["--world", "no-such-world"]).contains("no-such-world"));
        assert!(error(&["--timeout", "0"]).contains("--timeout"));
        assert!(error(&["--config", "/nonexistent/node.toml"]).contains("reading node config"));
    }
}
