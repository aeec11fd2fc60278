//! Edge devices, for real: `deploy/lab.sh` makes network-namespace devices with an sshd each
//! (one more for the site router, [`ROUTER`]), `deploy/deploy.sh` bundles, copies over SSH,
//! switches, restarts, waits for health and rolls back. Needs root, `ip netns` and sshd: a test gets its lab from [`lab_or_skip`], which says
//! `SKIPPED: ...` elsewhere (a failure under `CI=true`). Each lab has names and a /24 unique
//! to the run and is removed on drop, also when its test fails.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use super::{
    bounded_in,
    counters::{counter, RECEIVED},
    json, runs, skip_or_fail, wait_for, QUBOT, REPO,
};

/// Deadline of one step of a lab test (a deploy's effect, a metric reaching a value).
pub const T: Duration = Duration::from_secs(90);

/// A robot on two devices: the sensor on the first, the planner and the actuator on the
/// second (the actors of [`Lab::inventory`]).
pub const SPLIT: [&str; 2] = ["\"sensor\"", "\"planner\", \"actuator\""];

/// The device `deploy/lab.sh` always makes for the site router, at `<net>.100`.
pub const ROUTER: usize = 100;

/// A zenoh config for a process outside the fleet's deploy: `tls` is the json5 body of
/// `transport/link/tls`.
pub fn peer_config(dir: &Path, name: &str, tls: &str) -> String {
    let p = dir.join(format!("{name}.json5"));
    let text = format!(
        "{{ mode: \"peer\", scouting: {{ multicast: {{ enabled: false }} }}, listen: {{ endpoints: [] }},\n  transport: {{ link: {{ tls: {{ {tls} }} }} }} }}\n"
    );
    std::fs::write(&p, text).expect("write zenoh config");
    p.display().to_string()
}

/// The TLS section of a process that holds `host`'s certificate from `certs`.
pub fn member_tls(certs: &Path, host: &str) -> String {
    let c = certs.display();
    format!(
        "root_ca_certificate: \"{c}/ca.crt\", enable_mtls: true, \
         connect_certificate: \"{c}/{host}.crt\", connect_private_key: \"{c}/{host}.key\", \
         listen_certificate: \"{c}/{host}.crt\", listen_private_key: \"{c}/{host}.key\""
    )
}

/// Why the namespace tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    let ok = |cmd: &str| runs("sh", &["-c", cmd]);
    if !ok("ip netns list") {
        return Some("`ip netns` is unavailable (apt-get install iproute2)".into());
    }
    if !ok("test -x /usr/sbin/sshd && command -v ssh") {
        return Some("sshd/ssh are missing (apt-get install openssh-server; .ci/run does)".into());
    }
    None
}

/// A lab of `n` devices for test `test`, or `None` (the test returns) when this machine
/// cannot make one: [`skip_or_fail`], so a failure under `CI=true` and `SKIPPED: ...`
/// elsewhere.
pub fn lab_or_skip(test: &str, n: usize) -> Option<Lab> {
    match unavailable() {
        Some(why) => {
            skip_or_fail(test, &format!("network-namespace deploy test: {why}"));
            None
        }
        None => Some(Lab::up(n)),
    }
}

static LABS: AtomicU32 = AtomicU32::new(0);

/// N namespace devices `devI` at `<net>.I`, removed on drop.
pub struct Lab {
    pub name: String,
    pub net: String,
    pub dir: PathBuf,
}

impl Lab {
    fn up(n: usize) -> Lab {
        let k = LABS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("qbt{:04}{k}", pid % 10_000);
        let net = format!("10.77.{}", 100 + (pid * 7 + k) % 150);
        let dir = std::env::temp_dir().join(format!("qubot-lab-{name}"));
        let lab = Lab { name, net, dir };
        let (code, out) = lab.script("lab.sh", &["up", &n.to_string()], &[]);
        assert_eq!(code, 0, "lab up failed:\n{out}");
        lab
    }

    pub fn addr(&self, i: usize) -> String {
        format!("{}.{i}", self.net)
    }

    /// Device I's `host:port` (a `/metrics` address on the lab's network).
    pub fn at(&self, i: usize, port: u16) -> String {
        format!("{}:{port}", self.addr(i))
    }

    pub fn root(&self, i: usize) -> PathBuf {
        self.dir.join(format!("dev{i}/opt/qubot"))
    }

    pub fn netns(&self, i: usize) -> String {
        format!("{}-dev{i}", self.name)
    }

    /// Runs a deploy/ script with this lab's environment; exit code and stdout+stderr.
    pub fn script(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        self.script_at(&Path::new(REPO).join("deploy").join(script), args, env)
    }

    /// Runs the script at `path` (a copy of deploy/ may sit elsewhere) with this lab's
    /// environment; exit code and stdout+stderr.
    pub fn script_at(&self, path: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        let out = Command::new("bash")
            .arg(path)
            .args(args)
            .env("LAB_NAME", &self.name)
            .env("LAB_NET", &self.net)
            .env("LAB_DIR", &self.dir)
            .env("QUBOT_BIN", QUBOT)
            .env("QUBOT_SSH_CONFIG", self.dir.join("ssh/config"))
            .env("QUBOT_TARGETS", self.dir.join("prom/targets"))
            .env("QUBOT_STAGE", self.dir.join("stage"))
            .env("QUBOT_CERTS", self.dir.join("certs"))
            .envs(env.iter().copied())
            .output()
            .expect("bash");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Writes an inventory: host `devI` runs `actors[I-1]`; `extra` is appended verbatim.
    pub fn inventory(&self, file: &str, head: &str, actors: &[&str], extra: &str) -> PathBuf {
        let mut s = format!("robot = \"qubot-one\"\n{head}\n");
        for (i, a) in actors.iter().enumerate() {
            let i = i + 1;
            s.push_str(&format!(
                "[hosts.dev{i}]\naddress = \"{}\"\nroot = \"{}\"\nactors = [{a}]\n",
                self.addr(i),
                self.root(i).display()
            ));
        }
        s.push_str(extra);
        let p = self.dir.join(file);
        std::fs::write(&p, s).expect("write inventory");
        p
    }

    /// Two robots of two boards each on four lab devices: robot one on dev1 (sensor) and dev2
    /// (planner, actuator), robot two on dev3 and dev4 likewise. `extra` is appended verbatim.
    pub fn fleet_inventory(&self, file: &str, head: &str, extra: &str) -> PathBuf {
        let mut s = format!("robot = \"qubot-one\"\n{head}\n");
        for i in 1..=4 {
            let robot = if i <= 2 { "qubot-one" } else { "qubot-two" };
            s.push_str(&format!(
                "[hosts.dev{i}]\nrobot = \"{robot}\"\naddress = \"{}\"\nroot = \"{}\"\nactors = [{}]\n",
                self.addr(i),
                self.root(i).display(),
                SPLIT[(i - 1) % 2]
            ));
        }
        s.push_str(extra);
        let p = self.dir.join(file);
        std::fs::write(&p, s).expect("write inventory");
        p
    }

    pub fn deploy(&self, inv: &Path, hosts: &str, health_s: u32) -> (i32, String) {
        self.deploy_with(&Path::new(REPO).join("deploy/deploy.sh"), inv, hosts, health_s)
    }

    /// `deploy` with the deploy script at `script` (the bundle takes its files from there).
    pub fn deploy_with(&self, script: &Path, inv: &Path, hosts: &str, health_s: u32) -> (i32, String) {
        let t = health_s.to_string();
        let (code, out) = self.script_at(
            script,
            &["--inventory", &inv.display().to_string(), hosts],
            &[("QUBOT_HEALTH_TIMEOUT", &t)],
        );
        println!("{out}");
        (code, out)
    }

    /// A command on device I over SSH: exit code and stdout.
    pub fn ssh(&self, i: usize, cmd: &str) -> (i32, String) {
        let out = Command::new("ssh")
            .arg("-F")
            .arg(self.dir.join("ssh/config"))
            .arg(format!("root@{}", self.addr(i)))
            .arg(cmd)
            .stderr(Stdio::inherit())
            .output()
            .expect("ssh");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// `ip netns exec <devI> args...`: did it succeed?
    pub fn exec(&self, i: usize, args: &[&str]) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.netns(i)])
            .args(args)
            .stderr(Stdio::null())
            .status()
            .expect("ip netns exec")
            .success()
    }

    /// `qubot args...` inside device I's network namespace, for at most `secs` seconds: its
    /// stdout and stderr.
    pub fn bounded_on(&self, i: usize, secs: u32, args: &[&str]) -> (String, String) {
        bounded_in(&["ip", "netns", "exec", &self.netns(i)], secs, args)
    }

    /// Drops every packet device I sends and receives, both ends of its link: `netem loss
    /// 100%` where the kernel has netem, else a token bucket that passes nothing. Returns
    /// which one.
    pub fn cut(&self, i: usize) -> &'static str {
        let veth = format!("{}v{i}", self.name);
        let root_tc = |args: &[&str]| {
            Command::new("tc")
                .args(args)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let netem = ["netem", "loss", "100%"];
        let tbf = ["tbf", "rate", "8bit", "burst", "1", "latency", "1ms"];
        for (name, q) in [
            ("netem loss 100%", &netem[..]),
            ("tbf (no netem in this kernel)", &tbf[..]),
        ] {
            let dev: Vec<&str> = ["tc", "qdisc", "add", "dev", "eth0", "root"]
                .into_iter()
                .chain(q.iter().copied())
                .collect();
            if self.exec(i, &dev) {
                let host: Vec<&str> = ["qdisc", "add", "dev", &veth, "root"]
                    .into_iter()
                    .chain(q.iter().copied())
                    .collect();
                assert!(root_tc(&host), "tc {host:?}");
                return name;
            }
        }
        panic!("neither netem nor tbf qdiscs are available");
    }

    pub fn heal(&self, i: usize) {
        assert!(self.exec(i, &["tc", "qdisc", "del", "dev", "eth0", "root"]));
        let veth = format!("{}v{i}", self.name);
        let ok = Command::new("tc")
            .args(["qdisc", "del", "dev", &veth, "root"])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "tc qdisc del dev {veth}");
    }

    /// `name` on device I's `/metrics` at `port`, summed over the series matching `filter`.
    pub fn metric(&self, i: usize, port: u16, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
        counter(&self.at(i, port), name, filter)
    }

    /// Messages on `topic` the process at device I's `port` received.
    pub fn received(&self, i: usize, port: u16, topic: &str) -> Option<f64> {
        self.metric(i, port, RECEIVED, &[("topic", topic)])
    }

    /// Device I's `current` link (`releases/<version>`), or "" when it has none.
    pub fn current(&self, i: usize) -> String {
        std::fs::read_link(self.root(i).join("current"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    pub fn supervisor_pid(&self, i: usize) -> String {
        std::fs::read_to_string(self.root(i).join("qubot.pid")).unwrap_or_default()
    }

    /// `qubot health` on device I against the release it runs now; returns its report.
    pub fn assert_healthy(&self, i: usize) -> serde_json::Value {
        let root = self.root(i).display().to_string();
        let (code, health) = self.ssh(
            i,
            &format!("{root}/current/qubot health --config {root}/current/node.toml --timeout 20"),
        );
        assert_eq!(code, 0, "dev{i}: the release it runs is not healthy: {health}");
        json(health.lines().last().expect("health report"))
    }

    /// Waits until the robot whose actuator runs on device I logged reaching its goal.
    pub fn wait_goal(&self, i: usize, what: &str) {
        let root = self.root(i).display().to_string();
        wait_for(what, T, || {
            let (_, n) = self.ssh(i, &format!("grep -c 'goal reached' {root}/qubot.log || true"));
            (n.trim() != "0").then_some(())
        });
    }

    /// Lines of device I's `qubot.log` (every process of the host logs there) that contain
    /// every one of `parts`.
    pub fn log_lines(&self, i: usize, parts: &[&str]) -> usize {
        let log = std::fs::read(self.root(i).join("qubot.log")).unwrap_or_default();
        String::from_utf8_lossy(&log)
            .lines()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .count()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let (code, out) = self.script("lab.sh", &["down"], &[]);
        if code != 0 {
            eprintln!("lab down failed:\n{out}");
        }
    }
}

/// The release a deploy switched `host` to, from its summary line.
pub fn switched_to(out: &str, host: &str) -> String {
    let prefix = format!("deploy:   {host}: switched ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|l| l.split(" -> ").nth(1))
        .unwrap_or_else(|| panic!("{host} was not switched:\n{out}"))
        .trim()
        .to_owned()
}
