//! Starting a measurement's two processes and collecting what they report.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{anyhow, bail, Context};
use clap::ValueEnum;
use qubot_ops::process::{self, Child, RecvTimeoutError};

use crate::{
    alloc,
    roles::{Kind, PingWindow, RoleArgs, RoleReport},
};

/// A role process (killed if the harness gives up on it) and what it is, for messages.
pub(crate) struct Proc {
    child: Child,
    what: String,
}

impl Proc {
    fn spawn(args: &RoleArgs, allocator: &str) -> anyhow::Result<Proc> {
        let what = format!(
            "{:?} {:?} ({:?}, {} B)",
            args.imp, args.kind, args.transport, args.payload
        );
        let argv = std::iter::once("role".to_owned()).chain(role_argv(args));
        Proc::start(argv, allocator, what)
    }

    /// The harness binary with `argv` (a hidden subcommand), stdin piped until
    /// [`Proc::close_stdin`].
    fn start(argv: impl IntoIterator<Item = String>, allocator: &str, what: String) -> anyhow::Result<Proc> {
        let exe = std::env::current_exe().context("locating the harness binary")?;
        Proc::start_exe(&exe, argv, allocator, what)
    }

    /// [`Proc::start`] with a copy of the harness binary at `exe`.
    pub(crate) fn start_exe(
        exe: &std::path::Path,
        argv: impl IntoIterator<Item = String>,
        allocator: &str,
        what: String,
    ) -> anyhow::Result<Proc> {
        let mut cmd = Command::new(exe);
        cmd.args(argv)
            .env(alloc::ENV, allocator)
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stderr(Stdio::inherit());
        let child = Child::spawn("role", cmd).with_context(|| format!("spawning {what}"))?;
        Ok(Proc { child, what })
    }

    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next line the process prints, within `timeout`.
    pub(crate) fn line(&self, timeout: Duration) -> anyhow::Result<String> {
        self.child
            .line(timeout)
            .map_err(|_| anyhow!("{}: no output within {timeout:?}", self.what))
    }

    /// The JSON report on the process's last line; waits for it to exit.
    fn report(self, timeout: Duration) -> anyhow::Result<RoleReport> {
        self.last_json(timeout)
    }

    /// The process's last line, parsed as JSON; waits for it to exit (successfully).
    pub(crate) fn last_json<T: serde::de::DeserializeOwned>(
        mut self,
        timeout: Duration,
    ) -> anyhow::Result<T> {
        let mut last = None;
        loop {
            match self.child.line(timeout) {
                Ok(l) => last = Some(l),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => bail!("{}: no report within {timeout:?}", self.what),
            }
        }
        let status = self.child.wait()?;
        if !status.success() {
            bail!("{} exited with {status}", self.what);
        }
        let last = last.ok_or_else(|| anyhow!("{} printed nothing", self.what))?;
        serde_json::from_str(&last).with_context(|| format!("{}: bad report {last:?}", self.what))
    }

    /// Closes stdin: a server's signal to finish.
    pub(crate) fn close_stdin(&mut self) {
        self.child.close_stdin();
    }
}

/// The name clap parses back for an enum value.
fn value<T: ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

fn role_argv(a: &RoleArgs) -> Vec<String> {
    [
        ("--impl", value(a.imp)),
        ("--kind", value(a.kind)),
        ("--transport", value(a.transport)),
        ("--payload", a.payload.to_string()),
        ("--endpoint", a.endpoint.clone()),
        ("--count", a.count.to_string()),
        ("--warmup", a.warmup.to_string()),
        ("--rate", a.rate.to_string()),
        ("--max-seconds", a.max_seconds.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_owned(), v])
    .collect()
}

/// A loopback endpoint on a port that was free a moment ago.
pub fn free_endpoint() -> anyhow::Result<String> {
    Ok(format!("tcp/127.0.0.1:{}", process::free_port()?))
}

/// Runs one pair: the server (`client.kind`'s counterpart) first, then the client. Returns
/// (server report, client report); an echo's report is empty.
pub fn pair(client: &RoleArgs, allocator: &str) -> anyhow::Result<(Option<RoleReport>, RoleReport)> {
    let mut server_args = client.clone();
    server_args.kind = match client.kind {
        Kind::Ping => Kind::Echo,
        Kind::Source => Kind::Sink,
        k => bail!("{k:?} is not a client role"),
    };
    let mut server = Proc::spawn(&server_args, allocator)?;
    let ready = server.line(Duration::from_secs(15))?;
    if ready != "ready" {
        bail!("{}: expected \"ready\", got {ready:?}", server.what);
    }
    // Room for the subscriber match (10 s) and process start on top of the role's own limit.
    let budget =
        PingWindow::limit(client).max(Duration::from_secs_f64(client.max_seconds)) + Duration::from_secs(30);
    let client_report = Proc::spawn(client, allocator)?.report(budget)?;
    server.close_stdin();
    let server_report = match client.kind {
        Kind::Source => Some(server.report(budget)?),
        _ => {
            let status = server.child.wait()?;
            if !status.success() {
                bail!("{} exited with {status}", server.what);
            }
            None
        }
    };
    Ok((server_report, client_report))
}

/// The `qubot` binary built beside this one (the same build, the same profile).
pub fn qubot_beside() -> anyhow::Result<std::path::PathBuf> {
    let qubot = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("locating qubot-bench: {e}"))?
        .with_file_name("qubot");
    if !qubot.is_file() {
        anyhow::bail!(
            "no qubot binary at {} (cargo build --release -p qubot first)",
            qubot.display()
        );
    }
    Ok(qubot)
}
