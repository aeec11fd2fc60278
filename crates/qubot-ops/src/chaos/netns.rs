//! Two network namespaces joined by a veth pair, for the partition scenario: the link can be
//! cut (every packet dropped, both directions) and healed. Names are unique to the run and
//! everything is removed on drop, also when the scenario fails half-way.

use std::process::Command;

use anyhow::{bail, Context};

pub struct NetnsPair {
    pub ns: [String; 2],
    veth: [String; 2],
    /// Addresses of the two ends (10.213.x.1 in the first namespace, .2 in the second); they
    /// exist only inside these namespaces.
    pub addr: [String; 2],
    cut: bool,
}

/// Why the partition scenario cannot run here, or `None` when it can.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not running as root (network namespaces need CAP_NET_ADMIN)".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Some(format!(
                "`ip netns` unavailable: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return Some(format!("`ip` (iproute2) not found: {e}")),
    }
    if Command::new("tc").arg("-V").output().is_err() {
        return Some("`tc` (iproute2) not found".into());
    }
    None
}

impl NetnsPair {
    pub fn create() -> anyhow::Result<NetnsPair> {
        let id = std::process::id();
        let net = id % 250 + 1;
        let pair = NetnsPair {
            ns: [format!("qubot-{id}-a"), format!("qubot-{id}-b")],
            // Interface names are limited to 15 bytes.
            veth: [format!("qva{id}"), format!("qvb{id}")],
            addr: [format!("10.213.{net}.1"), format!("10.213.{net}.2")],
            cut: false,
        };
        // From here on, drop removes whatever was made.
        for ns in &pair.ns {
            ip(&["netns", "add", ns])?;
        }
        ip(&[
            "link",
            "add",
            &pair.veth[0],
            "type",
            "veth",
            "peer",
            "name",
            &pair.veth[1],
        ])?;
        for i in 0..2 {
            let (ns, dev) = (&pair.ns[i], &pair.veth[i]);
            ip(&["link", "set", dev, "netns", ns])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", pair.addr[i]),
                "dev",
                dev,
            ])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    /// Drops every packet on the link, both ways. `tc netem loss 100%` when the kernel has
    /// netem; otherwise a zero-length `pfifo` queue, which drops every packet just the same.
    /// Returns the qdisc used.
    pub fn cut(&mut self) -> anyhow::Result<&'static str> {
        let mut used = "netem loss 100%";
        for i in 0..2 {
            let (ns, dev) = (&self.ns[i], &self.veth[i]);
            let netem = tc(&[
                "-n", ns, "qdisc", "add", "dev", dev, "root", "netem", "loss", "100%",
            ]);
            if netem.is_err() {
                tc(&[
                    "-n", ns, "qdisc", "add", "dev", dev, "root", "pfifo", "limit", "0",
                ])
                .context("neither netem nor pfifo is available to cut the link")?;
                used = "pfifo limit 0 (no netem in this kernel)";
            }
            self.cut = true;
        }
        Ok(used)
    }

    pub fn heal(&mut self) -> anyhow::Result<()> {
        if std::mem::take(&mut self.cut) {
            for i in 0..2 {
                tc(&["-n", &self.ns[i], "qdisc", "del", "dev", &self.veth[i], "root"])?;
            }
        }
        Ok(())
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        let _ = self.heal();
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        for ns in &self.ns {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Runs `f` on a thread that has joined namespace `ns`, so sockets it opens live there (a
/// network namespace is a per-thread attribute).
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // Changes only this (scoped) thread's network namespace.
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("setns {ns}"))?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in {ns} panicked"))?
    })
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run("ip", args)
}

fn tc(args: &[&str]) -> anyhow::Result<()> {
    run("tc", args)
}

fn run(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
