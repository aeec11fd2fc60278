//! The recorder of `qubot up --record FILE` and `--foxglove` (docs/ARCHITECTURE.md §11): a plain `qubot record`
//! on the robot's bus, supervised as a child beside the actors. It is a consumer only, so it
//! never brings the node down: how its ends are taken is in `child`.

use std::{
    ffi::OsString,
    iter,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::Context;
use qubot_node::NodeConfig;

use crate::cli::UpArgs;

/// Its name in the supervisor's events, logs and restart counts: the mode it runs.
pub const NAME: &str = "record";

/// The recorder's metrics port is the supervisor's plus this: the next one after the actors'
/// (`Role::metrics_port_offset`, 1 to 3).
pub const METRICS_PORT_OFFSET: u16 = 4;

#[derive(Debug, Clone)]
pub struct Recorder {
    /// The file of `--record`, if any (`--foxglove` alone serves the view and writes nothing).
    file: Option<PathBuf>,
    /// Its command line, all but `--out`.
    args: Vec<OsString>,
}

impl Recorder {
    /// The recorder `--record` or `--foxglove` asks for, if any: checked with the rest before
    /// anything starts (exit 2), since a restart would not mend a missing directory or a taken
    /// address.
    pub fn plan(cfg: &NodeConfig, args: &UpArgs) -> anyhow::Result<Option<Recorder>> {
        if args.record.is_none() && args.foxglove.is_none() {
            return Ok(None);
        }
        if let Some(file) = &args.record {
            let dir = match file.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if !dir.is_dir() {
                anyhow::bail!("--record {}: {} is no directory", file.display(), dir.display());
            }
        }
        if let Some(addr) = args.foxglove {
            // Tried here so that a second robot's view on the same port is refused before any
            // actor starts; the recorder binds it for good a moment later.
            std::net::TcpListener::bind(addr).with_context(|| {
                format!(
                    "--foxglove {addr}: the live view cannot listen there (another `qubot up --foxglove`?)"
                )
            })?;
        }
        let port = cfg
            .supervisor
            .metrics_port
            .checked_add(METRICS_PORT_OFFSET)
            .with_context(|| {
                format!(
                    "the recorder's metrics port would be {} + {METRICS_PORT_OFFSET}",
                    cfg.supervisor.metrics_port
                )
            })?;
        let mut a: Vec<OsString> = vec!["record".into(), "--robot".into(), cfg.robot.clone().into()];
        // Where the actors connect (the hub, the node's other endpoints) and every actor placed
        // on another host: a configured endpoint is redialled after a partition, a link found by
        // gossip is not (docs/ARCHITECTURE.md §10, "Links between hosts").
        let endpoints = iter::once(&cfg.zenoh.hub)
            .chain(&cfg.zenoh.connect)
            .chain(cfg.zenoh.actors.values());
        for e in endpoints {
            a.extend(["--connect".into(), e.into()]);
        }
        if let Some(z) = &cfg.zenoh.config {
            a.extend(["--zenoh-config".into(), z.into()]);
        }
        // The run's world on the run's clock, so the recording draws the movers where the
        // actors had them (docs/ARCHITECTURE.md §11, "Derived channels").
        a.extend([
            "--world".into(),
            cfg.world.clone().into(),
            "--worlds-dir".into(),
            cfg.worlds_dir.clone().into(),
            "--world-epoch-ns".into(),
            cfg.world_epoch_ns.to_string().into(),
        ]);
        let metrics = SocketAddr::new(cfg.metrics_bind, port);
        a.extend(["--metrics-addr".into(), metrics.to_string().into()]);
        a.extend(["--compression".into(), "zstd".into()]);
        if let Some(mib) = args.record_min_free_mib {
            a.extend(["--min-free-mib".into(), mib.to_string().into()]);
        }
        if let Some(addr) = args.foxglove {
            a.extend(["--live".into(), addr.to_string().into()]);
        }
        Ok(Some(Recorder {
            file: args.record.clone(),
            args: a,
        }))
    }

    /// The command line of its run `run` (0 the first), `--host-label` aside.
    pub fn args(&self, run: u32) -> Vec<OsString> {
        let mut a = self.args.clone();
        if let Some(f) = self.file(run) {
            a.extend(["--out".into(), f.into()]);
        }
        a
    }

    /// The file of run `run`: FILE first; a restarted recorder must not overwrite what the one
    /// before left, so each restart writes `<stem>-001.<ext>`, `<stem>-002.<ext>`... beside it,
    /// named as `qubot record` names split files.
    pub fn file(&self, run: u32) -> Option<PathBuf> {
        let file = self.file.as_ref()?;
        Some(match run {
            0 => file.clone(),
            _ => qubot_record::numbered(file, run),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::config::tests::up;
    use super::*;
    use crate::cli::Cli;

    /// The command line of run `run`, as strings.
    fn args_of(rec: &Recorder, run: u32) -> Vec<String> {
        rec.args(run)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_recorder_joins_the_robot_as_the_actors_do_and_restarts_into_new_files() {
        let mut cfg = NodeConfig {
            robot: "r1".into(),
            ..Default::default()
        };
        cfg.set_metrics_ports(9700);
        cfg.zenoh.hub = "tcp/127.0.0.1:7000".into();
        cfg.zenoh.connect = vec!["tcp/10.0.0.1:7500".into()];
        cfg.world_epoch_ns = 7;
        let worlds = cfg.worlds_dir.to_string_lossy().into_owned();
        let dir = std::env::temp_dir();
        let file = dir.join("run.mcap");
        let path = file.to_string_lossy().into_owned();
        let rec = Recorder::plan(&cfg, &up(&["--record", &path, "--record-min-free-mib", "8"]))
            .expect("valid")
            .expect("asked for");
        let args = args_of(&rec, 0);
        let want = [
            "record",
            "--robot",
            "r1",
            "--connect",
            "tcp/127.0.0.1:7000",
            "--connect",
            "tcp/10.0.0.1:7500",
            "--world",
            "default",
            "--worlds-dir",
            &worlds,
            "--world-epoch-ns",
            "7",
            "--metrics-addr",
            "127.0.0.1:9704",
            "--compression",
            "zstd",
            "--min-free-mib",
            "8",
            "--out",
            &path,
        ];
        assert_eq!(args, want);
        // What `qubot record` itself takes.
        Cli::try_parse_from(iter::once("qubot").chain(want)).expect("qubot record's command line");
        assert_eq!(rec.file(1), Some(dir.join("run-001.mcap")));
        assert_eq!(rec.file(12), Some(dir.join("run-012.mcap")));

        assert!(Recorder::plan(&cfg, &up(&[])).expect("valid").is_none());
        let err = Recorder::plan(&cfg, &up(&["--record", "/nonexistent-dir/run.mcap"])).expect_err("refused");
        assert!(
            format!("{err:#}").contains("/nonexistent-dir is no directory"),
            "{err:#}"
        );
        cfg.supervisor.metrics_port = u16::MAX - 2;
        assert!(Recorder::plan(&cfg, &up(&["--record", &path])).is_err());
    }

    #[test]
    fn the_live_view_alone_writes_no_file_and_a_taken_address_is_refused_before_anything_starts() {
        let cfg = NodeConfig::default();
        let rec = Recorder::plan(&cfg, &up(&["--foxglove", "127.0.0.1:0"]))
            .expect("valid")
            .expect("asked for");
        let args = args_of(&rec, 3);
        assert!(
            args.ends_with(&["--live".to_owned(), "127.0.0.1:0".to_owned()]),
            "{args:?}"
        );
        assert!(!args.iter().any(|a| a == "--out"), "{args:?}");
        assert_eq!(rec.file(0), None);
        Cli::try_parse_from(iter::once("qubot".to_owned()).chain(args)).expect("qubot record's command line");

        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = taken.local_addr().expect("its address").to_string();
        let err = Recorder::plan(&cfg, &up(&["--foxglove", &addr])).expect_err("refused");
        assert!(
            format!("{err:#}").contains(&format!("--foxglove {addr}")),
            "{err:#}"
        );
    }
}
