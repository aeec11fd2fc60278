//! What an operator does, tested as written: every command in the README's `sh` blocks, the
//! run command started for real, Ctrl-C, `qubot up` as PID 1 (a container's entrypoint), and
//! `qubot up` on a terminal (status line and log lines on rows of their own).

mod common;

use std::{io::Read, path::Path, process::Command, time::Duration};

use common::{counters::*, pipeline::isolated, *};
use qubot_node::NodeConfig;

/// Starting the pipeline includes `cargo run` checking (and on a cold cache, finishing) the
/// build: generous, but a deadline.
const RUN_START: Duration = Duration::from_secs(900);
const T: Duration = Duration::from_secs(60);

/// The commands of every ```sh block of the README, one per `&&`-separated part, comments cut.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{REPO}/README.md")).expect("README.md");
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && t == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let cmd = t.split(" #").next().unwrap_or("").trim();
        out.extend(
            cmd.split("&&")
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty()),
        );
    }
    out
}

fn words(cmd: &str) -> Vec<String> {
    cmd.split_whitespace().map(str::to_owned).collect()
}

/// `qubot ARGS --help` parses ARGS up to the help flag: a renamed mode or flag fails it.
fn qubot_args_parse(args: &[String]) {
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.push("--help");
    let (code, _, err) = run(&a, T);
    assert_eq!(code, 0, "`qubot {}` does not parse: {err}", args.join(" "));
}

/// `just --dry-run RECIPE ARGS` must accept the recipe and its arguments; any `cargo run
/// --release -- ARGS` or `./target/release/qubot ARGS` line it would run must parse too.
fn check_just(args: &[String]) {
    let out = Command::new("just")
        .arg("--dry-run")
        .args(args)
        .current_dir(REPO)
        .output()
        .expect("just");
    let printed = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`just {}` does not parse: {printed}",
        args.join(" ")
    );
    for line in printed.lines() {
        let qubot_args = line
            .trim()
            .strip_prefix("cargo run --release -- ")
            .or_else(|| line.trim().strip_prefix("./target/release/qubot "));
        if let Some(rest) = qubot_args {
            // Recipe parameters that just left in as globs (e.g. deploy/chaos/*.toml) are fine
            // for a parse check.
            qubot_args_parse(&words(rest));
        }
    }
}

#[test]
fn every_readme_command_parses() {
    let cmds = readme_commands();
    assert!(
        cmds.iter().any(|c| c == "cargo run --release -- up"),
        "the README's run command is gone: {cmds:?}"
    );
    assert!(
        cmds.iter().any(|c| c == "bash .ci/run"),
        "the README's test command is gone: {cmds:?}"
    );
    let has_just = runs("just", &["--version"]);
    for cmd in &cmds {
        let w = words(cmd);
        match w.first().map(String::as_str) {
            Some("cargo") => {
                assert_eq!(&w[..4], ["cargo", "run", "--release", "--"], "{cmd}");
                qubot_args_parse(&w[4..]);
            }
            Some("bash") => {
                let script = Path::new(REPO).join(&w[1]);
                let ok = Command::new("bash")
                    .arg("-n")
                    .arg(&script)
                    .status()
                    .expect("bash");
                assert!(ok.success(), "{cmd}: syntax error");
                let text = std::fs::read_to_string(&script).expect("script");
                assert!(text.contains("just test"), "{cmd} must run the test suite");
            }
            // The installed binary, as an operator on a board or the router host runs it.
            Some("qubot") => qubot_args_parse(&w[1..]),
            Some("just") if has_just => check_just(&w[1..]),
            Some("just") => skip_or_fail(
                "README just commands",
                "`just` is not installed (cargo install just)",
            ),
            other => panic!("README command {cmd:?}: no check for {other:?}; add one"),
        }
    }
}

/// Every `/metrics` port answers, and commands are being applied.
fn wait_pipeline(cfg: &NodeConfig, within: Duration) {
    let bind = cfg.metrics_bind;
    for port in [
        cfg.supervisor.metrics_port,
        cfg.sensor.metrics_port,
        cfg.planner.metrics_port,
        cfg.actuator.metrics_port,
    ] {
        wait_for(&format!("/metrics on {bind}:{port}"), within, || {
            metrics(&format!("{bind}:{port}"))
        });
    }
    let actuator = format!("{bind}:{}", cfg.actuator.metrics_port);
    wait_for("commands applied", T, || {
        let m = metrics(&actuator)?;
        (sum(&m, "qubot_pipeline_latency_seconds_count", &[]) >= 40.0).then_some(())
    });
}

fn assert_moved(report: &RunReport, cfg: &NodeConfig) {
    let start = cfg.world().expect("world").start;
    let p = report.final_pose.expect("final pose");
    let moved = (p[0] - start.x).abs() + (p[1] - start.y).abs() + (p[2] - start.theta).abs();
    assert!(moved > 0.01, "the robot did not move from {start:?}: {report:?}");
    assert!(report.states > 0, "{report:?}");
    assert_eq!(report.finish, Finish::Signal, "{report:?}");
}

/// The README's run command, as written, from the repository root: all four `/metrics` ports
/// come up (the defaults the README names), the robot moves, Ctrl-C stops it with a report.
#[test]
fn the_readme_run_command_runs_the_pipeline() {
    let _g = serial();
    let cmd = readme_commands()
        .into_iter()
        .find(|c| c.starts_with("cargo run"))
        .expect("a run command");
    let w = words(&cmd);
    let mut c = Command::new(&w[0]);
    c.args(&w[1..]).current_dir(REPO);
    // A user's shell, not cargo test's environment: its CARGO_* variables would make cargo
    // see changed build-script inputs and rebuild dependencies.
    c.env_clear().env("RUST_LOG", "warn");
    for (k, v) in std::env::vars_os() {
        let k_s = k.to_string_lossy();
        if ["PATH", "HOME", "USER", "LANG", "CARGO_HOME", "CARGO_TARGET_DIR"].contains(&k_s.as_ref())
            || k_s.starts_with("RUSTUP_")
        {
            c.env(k, v);
        }
    }
    let up = Proc::from_command("qubot up", c);
    // `cargo run` replaces itself with the binary (exec), so this pid is the supervisor's.
    let pid = up.child.id();
    let cfg = NodeConfig::default();
    wait_pipeline(&cfg, RUN_START);
    let (code, report) = up.interrupt(pid);
    assert_eq!(code, 0, "{report:?}");
    assert_moved(&report, &cfg);
}

/// In a container `qubot up` is PID 1: its actors must not take that for "the supervisor is
/// gone" (they compare with the pid they were started by), and Ctrl-C still stops it.
#[test]
fn qubot_up_runs_as_pid_1() {
    let _g = serial();
    if !runs("unshare", &["--pid", "--fork", "true"]) {
        skip_or_fail(
            "qubot up as PID 1",
            "`unshare --pid --fork` is unavailable (needs root and util-linux)",
        );
        return;
    }
    let (cfg, file) = isolated("pid1");
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", QUBOT, "up", "--config"])
        .arg(file.path())
        .env("RUST_LOG", "warn");
    let up = Proc::from_command("qubot up", c);
    // The supervisor is unshare's child: PID 1 inside its namespace, a normal pid here.
    let unshare = up.child.id();
    let pid = wait_for("the supervisor under unshare", T, || {
        let kids = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).ok()?;
        kids.split_whitespace().next()?.parse::<u32>().ok()
    });
    let ns_pid = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let nspid = ns_pid.lines().find(|l| l.starts_with("NSpid:")).expect("NSpid");
    assert_eq!(
        nspid.split_whitespace().last(),
        Some("1"),
        "not PID 1 in its namespace: {nspid}"
    );
    wait_pipeline(&cfg, T);
    let (code, report) = up.interrupt(pid);
    assert_eq!(code, 0, "{report:?}");
    assert_moved(&report, &cfg);
    for (actor, n) in &report.restarts {
        assert_eq!(*n, 0, "{actor} restarted: {report:?}");
    }
}

/// What a terminal shows: each row after its last carriage return (the status line redraws
/// its row with `\r`; `\x1b[K` erases the rest of a row).
fn visible_rows(raw: &str) -> Vec<String> {
    raw.split('\n')
        // A terminal's rows end in "\r\n": that carriage return only ends the row.
        .map(|row| row.strip_suffix('\r').unwrap_or(row))
        .map(|row| row.rsplit('\r').next().unwrap_or("").replace("\x1b[K", ""))
        .collect()
}

#[test]
fn status_line_and_log_lines_keep_to_their_own_rows() {
    let _g = serial();
    if !runs("script", &["--version"]) {
        skip_or_fail("qubot up on a terminal", "`script` (util-linux) is not installed");
        return;
    }
    let (cfg, file) = isolated("tty");
    // A pseudo-terminal: the status line is on, and so are info logs (a killed planner makes
    // the supervisor and the restarted planner log while the status line is on screen).
    let typescript = std::env::temp_dir().join(format!("qubot-tty-{}.txt", std::process::id()));
    let inner = format!(
        "RUST_LOG=info,zenoh=warn {QUBOT} up --config {} --timeout 8",
        file.path().display()
    );
    let mut c = Command::new("script");
    c.args(["-q", "-f", "-e", "-c", &inner]).arg(&typescript);
    let mut up = Proc::from_command("qubot up", c);
    let screen = || std::fs::read_to_string(&typescript).unwrap_or_default();
    wait_for("the status line", T, || {
        screen().contains("to goal").then_some(())
    });
    let planner = wait_for("the planner's pid", T, || {
        find_process(&["planner", "--supervisor-pid"], &cfg)
    });
    signal_pid(planner, "KILL");
    wait_for("the planner's restart logged", T, || {
        screen().contains("restarting").then_some(())
    });
    wait_for("the run to end", T, || up.child.try_wait().expect("wait"));
    let mut raw = String::new();
    std::fs::File::open(&typescript)
        .expect("typescript")
        .read_to_string(&mut raw)
        .expect("read");
    let _ = std::fs::remove_file(&typescript);
    let rows = visible_rows(&raw);
    let mixed: Vec<&String> = rows
        .iter()
        .filter(|r| r.contains("to goal") && (r.contains(" INFO ") || r.contains(" WARN ")))
        .collect();
    assert!(mixed.is_empty(), "status and log share a row: {mixed:#?}");
    assert!(rows.iter().any(|r| r.contains("restarting")), "no log line seen");
}

/// The pid of a running `qubot` whose command line holds every word of `has` and whose
/// config file belongs to this test's run (robot name and supervisor port), so other tests'
/// processes never match.
fn find_process(has: &[&str], cfg: &NodeConfig) -> Option<u32> {
    let ours = |args: &[String]| -> bool {
        let Some(config) = args
            .iter()
            .position(|a| a == "--config")
            .and_then(|i| args.get(i + 1))
        else {
            return false;
        };
        let Ok(text) = std::fs::read_to_string(config) else {
            return false;
        };
        NodeConfig::from_toml(&text, config)
            .is_ok_and(|c| c.robot == cfg.robot && c.supervisor.metrics_port == cfg.supervisor.metrics_port)
    };
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let named = args.first().is_some_and(|a| a.ends_with("qubot"))
            && has.iter().all(|h| args.iter().any(|a| a == h));
        (named && ours(&args)).then_some(pid)
    })
}
