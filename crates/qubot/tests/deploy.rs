//! Deploying to edge devices, for real: `deploy/lab.sh` makes network-namespace devices with
//! an sshd each, `deploy/deploy.sh` bundles, copies over SSH, switches, restarts, waits for
//! health and rolls back. Needs root and `ip netns`; skipped (with a message) elsewhere, and a
//! failure under `CI=true`. Each test has its own lab (names and a /24 unique to the run) and
//! removes it even on failure.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use common::*;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const T: Duration = Duration::from_secs(90);

/// Why the namespace tests cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    let ok = |cmd: &str| {
        Command::new("sh")
            .args(["-c", cmd])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok("ip netns list") {
        return Some("`ip netns` is unavailable (apt-get install iproute2)".into());
    }
    if !ok("test -x /usr/sbin/sshd && command -v ssh") {
        return Some("sshd/ssh are missing (apt-get install openssh-server; .ci/run does)".into());
    }
    None
}

/// A lab of `$n` devices for test `$test`, or return from the test (`skip_or_fail`: a failure
/// under `CI=true`, `SKIPPED: ...` elsewhere) when this machine cannot make one.
macro_rules! lab_or_skip {
    ($test:expr, $n:expr) => {
        match unavailable() {
            Some(why) => {
                skip_or_fail($test, &format!("network-namespace deploy test: {why}"));
                return;
            }
            None => Lab::up($n),
        }
    };
}

static LABS: AtomicU32 = AtomicU32::new(0);

/// N namespace devices `devI` at `<net>.I`, removed on drop.
struct Lab {
    name: String,
    net: String,
    dir: PathBuf,
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

    fn addr(&self, i: usize) -> String {
        format!("{}.{i}", self.net)
    }

    fn root(&self, i: usize) -> PathBuf {
        self.dir.join(format!("dev{i}/opt/qubot"))
    }

    fn netns(&self, i: usize) -> String {
        format!("{}-dev{i}", self.name)
    }

    /// Runs a deploy/ script with this lab's environment; exit code and stdout+stderr.
    fn script(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        self.script_at(&Path::new(REPO).join("deploy").join(script), args, env)
    }

    /// Runs the script at `path` (a copy of deploy/ may sit elsewhere) with this lab's
    /// environment; exit code and stdout+stderr.
    fn script_at(&self, path: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
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
    fn inventory(&self, file: &str, head: &str, actors: &[&str], extra: &str) -> PathBuf {
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

    fn deploy(&self, inv: &Path, hosts: &str, health_s: u32) -> (i32, String) {
        self.deploy_with(&Path::new(REPO).join("deploy/deploy.sh"), inv, hosts, health_s)
    }

    /// `deploy` with the deploy script at `script` (the bundle takes its files from there).
    fn deploy_with(&self, script: &Path, inv: &Path, hosts: &str, health_s: u32) -> (i32, String) {
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
    fn ssh(&self, i: usize, cmd: &str) -> (i32, String) {
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
    fn exec(&self, i: usize, args: &[&str]) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.netns(i)])
            .args(args)
            .stderr(Stdio::null())
            .status()
            .expect("ip netns exec")
            .success()
    }

    /// Drops every packet device I sends and receives, both ends of its link: `netem loss
    /// 100%` where the kernel has netem, else a token bucket that passes nothing. Returns
    /// which one.
    fn cut(&self, i: usize) -> &'static str {
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

    fn heal(&self, i: usize) {
        assert!(self.exec(i, &["tc", "qdisc", "del", "dev", "eth0", "root"]));
        let veth = format!("{}v{i}", self.name);
        let ok = Command::new("tc")
            .args(["qdisc", "del", "dev", &veth, "root"])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "tc qdisc del dev {veth}");
    }

    fn metric(&self, i: usize, port: u16, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
        metrics(&format!("{}:{port}", self.addr(i))).map(|m| sum(&m, name, filter))
    }

    fn current(&self, i: usize) -> String {
        std::fs::read_link(self.root(i).join("current"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn supervisor_pid(&self, i: usize) -> String {
        std::fs::read_to_string(self.root(i).join("qubot.pid")).unwrap_or_default()
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
fn switched_to(out: &str, host: &str) -> String {
    let prefix = format!("deploy:   {host}: switched ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|l| l.split(" -> ").nth(1))
        .unwrap_or_else(|| panic!("{host} was not switched:\n{out}"))
        .trim()
        .to_owned()
}

const SPLIT: [&str; 2] = ["\"sensor\"", "\"planner\", \"actuator\""];

#[test]
fn two_device_lab_reaches_the_goal_and_prometheus_scrapes_every_actor() {
    let _g = serial();
    let lab = lab_or_skip!(
        "two_device_lab_reaches_the_goal_and_prometheus_scrapes_every_actor",
        2
    );
    let inv = lab.inventory(
        "inventory.toml",
        "[groups]\nlab = [\"dev1\", \"dev2\"]",
        &SPLIT,
        "",
    );
    let (code, out) = lab.deploy(&inv, "lab", 30);
    assert_eq!(code, 0, "deploy failed");
    // fleet.tls = false: said once per deploy, and the deploy goes on.
    assert_eq!(
        out.matches("the fleet is UNAUTHENTICATED").count(),
        1,
        "the unauthenticated-fleet warning, once:\n{out}"
    );
    let v2 = switched_to(&out, "dev2");
    switched_to(&out, "dev1");
    assert_eq!(lab.current(2), format!("releases/{v2}"));

    // Scans cross the link (dev1 -> dev2), commands stay on dev2, the robot arrives.
    let root2 = lab.root(2).display().to_string();
    wait_for("the robot to reach its goal across the link", T, || {
        let (_, n) = lab.ssh(2, &format!("grep -c 'goal reached' {root2}/qubot.log || true"));
        (n.trim() != "0").then_some(())
    });
    let scans = lab
        .metric(2, 9902, "qubot_messages_received_total", &[("topic", "scan")])
        .expect("planner metrics");
    assert!(scans > 0.0, "the planner on dev2 received no scan from dev1");
    // Shared memory on the sensor's own device, the network to the other one.
    let probe = |i: usize| {
        let root = lab.root(i).display().to_string();
        let (_, out) = lab.ssh(
            i,
            &format!(
                "timeout 20 {root}/current/qubot listen --print --count 3 --connect tcp/{a}:7447 --listen tcp/{a}:0",
                a = lab.addr(i)
            ),
        );
        let last = out.lines().rfind(|l| l.contains("\"seq\"")).map(json);
        last.unwrap_or_else(|| panic!("no scan on dev{i}: {out}"))["shm"].clone()
    };
    assert_eq!(
        probe(1),
        serde_json::json!(true),
        "scans on the sensor's device are not in SHM"
    );
    assert_eq!(
        probe(2),
        serde_json::json!(false),
        "scans crossed devices through SHM"
    );

    // The shipped Prometheus config finds every process through the file the deploy wrote.
    let prom = Prometheus::start(&lab.dir.join("prom"));
    wait_for("Prometheus to scrape all 5 fleet processes", T, || {
        (prom_query(&prom.addr, "up{job=\"qubot-fleet\"} == 1") == Some(5)).then_some(())
    });
    // Each device has its own hostname, so the series of the two boards stay apart.
    let hosts = "count by (host) (qubot_build_info{job=\"qubot-fleet\"})";
    assert_eq!(prom_query(&prom.addr, hosts), Some(2), "{hosts}");
    for process in ["supervisor", "sensor", "planner", "actuator"] {
        let q = format!("qubot_build_info{{job=\"qubot-fleet\",process=\"{process}\"}}");
        assert!(prom_query(&prom.addr, &q).unwrap_or(0) > 0, "no series for {q}");
    }

    // The same bundle again: nothing is copied or restarted.
    let pid = lab.supervisor_pid(2);
    let (code, out) = lab.deploy(&inv, "lab", 30);
    assert_eq!(code, 0);
    assert!(
        out.contains("dev1: unchanged") && out.contains("dev2: unchanged"),
        "{out}"
    );
    assert_eq!(lab.supervisor_pid(2), pid, "a no-op deploy restarted the service");
}

#[test]
fn unhealthy_release_rolls_back_and_the_previous_one_keeps_running() {
    let _g = serial();
    let lab = lab_or_skip!(
        "unhealthy_release_rolls_back_and_the_previous_one_keeps_running",
        2
    );
    let good = lab.inventory("good.toml", "", &SPLIT, "");
    let (code, out) = lab.deploy(&good, "all", 30);
    assert_eq!(code, 0, "first deploy failed");
    let v2 = switched_to(&out, "dev2");

    // dev1 gets a harmless change; dev2 a config that is valid on paper but fatal at run
    // time: the actuator's metrics port is the one sshd holds.
    let bad = lab.inventory(
        "bad.toml",
        "",
        &SPLIT,
        "[hosts.dev1.node.sensor]\nbeams = 721\n[hosts.dev2.node.actuator]\nmetrics_port = 22\n",
    );
    let (code, out) = lab.deploy(&bad, "dev1,dev2", 10);
    assert_eq!(code, 1, "an unhealthy deploy must fail");
    switched_to(&out, "dev1");
    assert!(
        out.contains(&format!("dev2: rolled back to {v2}")),
        "no rollback in:\n{out}"
    );
    assert!(out.contains("WARNING: the fleet is mixed"), "{out}");
    assert_eq!(lab.current(2), format!("releases/{v2}"));
    let root = lab.root(2).display().to_string();
    let (code, health) = lab.ssh(
        2,
        &format!("{root}/current/qubot health --config {root}/current/node.toml --timeout 20"),
    );
    assert_eq!(code, 0, "the previous release is not healthy: {health}");
    let cmds = || lab.metric(2, 9903, "qubot_messages_received_total", &[("topic", "cmd")]);
    let before = cmds().expect("actuator of the previous release");
    wait_for("commands flowing again after the rollback", T, || {
        (cmds()? > before).then_some(())
    });

    // A failed host stops the rollout: the hosts after it are not touched.
    let (code, out) = lab.deploy(&bad, "dev2,dev1", 10);
    assert_eq!(code, 1);
    assert!(out.contains("dev1: skipped"), "{out}");
}

/// The release a deploy copied to `host`, from its progress line.
fn copied(out: &str, host: &str) -> String {
    let prefix = format!("deploy: {host}: copying release ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("nothing was copied to {host}:\n{out}"))
        .to_owned()
}

/// `qubot health` on device I against the release it runs now; returns its report.
fn assert_healthy(lab: &Lab, i: usize) -> serde_json::Value {
    let root = lab.root(i).display().to_string();
    let (code, health) = lab.ssh(
        i,
        &format!("{root}/current/qubot health --config {root}/current/node.toml --timeout 20"),
    );
    assert_eq!(code, 0, "dev{i}: the release it runs is not healthy: {health}");
    json(health.lines().last().expect("health report"))
}

/// A copy of deploy/ under `dir` whose service wrapper cannot start anything, as after a bad
/// edit: its `restart` stops the running release, then fails. Returns the copy's deploy.sh.
fn broken_wrapper_tree(dir: &Path) -> PathBuf {
    let tree = dir.join("broken");
    std::fs::create_dir_all(&tree).expect("dir");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(Path::new(REPO).join("deploy"))
        .arg(&tree)
        .status()
        .expect("cp")
        .success();
    assert!(ok, "copying deploy/");
    let wrapper = tree.join("deploy/qubot-service");
    let text = std::fs::read_to_string(&wrapper).expect("wrapper");
    let start = "start() {\n  running && return 0\n";
    assert!(
        text.contains(start),
        "deploy/qubot-service changed: update how this test breaks it"
    );
    let broken = "start() {\n  echo \"qubot-service: cannot start (broken wrapper)\" >&2\n  return 1\n";
    std::fs::write(&wrapper, text.replace(start, broken)).expect("write wrapper");
    tree.join("deploy/deploy.sh")
}

#[test]
fn failed_restart_or_switch_rolls_back_and_ends_in_the_summary() {
    let _g = serial();
    let lab = lab_or_skip!("failed_restart_or_switch_rolls_back_and_ends_in_the_summary", 2);
    let inv = lab.inventory("inventory.toml", "", &SPLIT, "");
    let broken = broken_wrapper_tree(&lab.dir);

    // A first release that cannot start: nothing to roll back to, so dev2 is stopped, the
    // rollout stops before dev1, and the script still ends in the summary.
    let (code, out) = lab.deploy_with(&broken, &inv, "dev2,dev1", 10);
    assert_eq!(code, 1, "a failed restart must fail the deploy");
    let vb = copied(&out, "dev2");
    assert!(
        out.contains(&format!(
            "deploy:   dev2: FAILED: restarting on {vb} failed and no previous release to roll back to (stopped)"
        )),
        "{out}"
    );
    assert!(out.contains("deploy:   dev1: skipped"), "{out}");
    assert!(!lab.root(1).exists(), "dev1 was touched after dev2 failed");

    // A good release on both.
    let (code, out) = lab.deploy(&inv, "all", 30);
    assert_eq!(code, 0, "good deploy failed");
    let v1 = switched_to(&out, "dev1");
    let v2 = switched_to(&out, "dev2");
    let pid = lab.supervisor_pid(2);

    // The broken release again: its restart stops dev2's supervisor, then fails. dev2 goes
    // back to v2, started again and healthy; dev1 is not touched.
    let (code, out) = lab.deploy_with(&broken, &inv, "dev2,dev1", 10);
    assert_eq!(code, 1, "a failed restart must fail the deploy");
    let vb = copied(&out, "dev2");
    assert!(
        out.contains(&format!(
            "deploy:   dev2: rolled back to {v2} (restarting on {vb} failed)"
        )),
        "no rollback in:\n{out}"
    );
    assert!(out.contains("deploy:   dev1: skipped"), "{out}");
    assert_eq!(lab.current(2), format!("releases/{v2}"));
    assert_eq!(lab.current(1), format!("releases/{v1}"));
    assert_ne!(
        lab.supervisor_pid(2),
        pid,
        "the rollback did not start the previous release again"
    );
    assert_healthy(&lab, 2);

    // A switch that fails: a directory (an operator's leftover) where the switch makes its
    // new link, so renaming it over `current` fails. dev2 stays on v2 and is restarted there.
    std::fs::create_dir_all(lab.root(2).join("current.new")).expect("dir");
    let changed = lab.inventory(
        "changed.toml",
        "",
        &SPLIT,
        "[hosts.dev2.node.planner]\nv_max = 0.15\n",
    );
    let pid = lab.supervisor_pid(2);
    let (code, out) = lab.deploy(&changed, "dev2", 10);
    assert_eq!(code, 1, "a failed switch must fail the deploy");
    let vs = copied(&out, "dev2");
    assert_ne!(vs, v2);
    assert!(
        out.contains(&format!(
            "deploy:   dev2: rolled back to {v2} (switching to {vs} failed)"
        )),
        "no rollback in:\n{out}"
    );
    assert_eq!(lab.current(2), format!("releases/{v2}"));
    assert_ne!(lab.supervisor_pid(2), pid, "the rollback did not restart v2");
    assert_healthy(&lab, 2);
}

/// Everything in /tmp whose name starts with `prefix`.
fn tmp_entries(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/tmp")
        .expect("/tmp")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn hostile_inventory_values_are_rejected_before_any_host_is_touched() {
    let _g = serial();
    let lab = lab_or_skip!(
        "hostile_inventory_values_are_rejected_before_any_host_is_touched",
        1
    );
    let pid = std::process::id();
    let marker = format!("qubot-pwned-{pid}");
    let escape = format!("qubot-x-{pid}");
    let good = lab.inventory("good.toml", "", &["\"sensor\", \"planner\", \"actuator\""], "");
    let text = std::fs::read_to_string(&good).expect("inventory");
    let root_line = format!("root = \"{}\"", lab.root(1).display());
    let addr_line = format!("address = \"{}\"", lab.addr(1));
    assert!(text.contains(&root_line) && text.contains(&addr_line), "{text}");
    // Each would run `touch` somewhere: in the remote commands (root), as ssh's ProxyCommand
    // (user), when the service sources its env file on the device (log); the address only
    // reaches ssh's arguments, but is held to being an IP address all the same.
    let cases = [
        (
            "hosts.dev1.root",
            text.replace(
                &root_line,
                &format!("root = \"/tmp/{escape}'; touch /tmp/{marker}-root; '\""),
            ),
        ),
        (
            "hosts.dev1.user",
            format!("{text}user = \"-oProxyCommand=touch /tmp/{marker}-user\"\n"),
        ),
        (
            "hosts.dev1.log",
            format!("{text}log = \"info`touch /tmp/{marker}-log`\"\n"),
        ),
        (
            "hosts.dev1.address",
            text.replace(
                &addr_line,
                &format!("address = \"{}$(touch /tmp/{marker}-address)\"", lab.addr(1)),
            ),
        ),
    ];
    for (field, inventory) in cases {
        let f = lab.dir.join("hostile.toml");
        std::fs::write(&f, &inventory).expect("write inventory");
        let (code, _, err) = run(&["inventory", "check", &f.display().to_string()], T);
        assert_eq!(code, 2, "{field}: inventory check: {err}");
        assert!(err.contains(&format!("inventory: {field}: ")), "{err}");
        let (code, out) = lab.deploy(&f, "all", 10);
        assert_eq!(code, 2, "{field}: the deploy was not refused");
        assert!(
            out.contains(&format!("inventory: {field}: ")),
            "the error does not name {field}:\n{out}"
        );
        // Nothing ran and nothing was built or copied.
        assert_eq!(tmp_entries(&marker), Vec::<String>::new(), "{field}");
        assert_eq!(tmp_entries(&escape), Vec::<String>::new(), "{field}");
        assert!(!lab.dir.join("stage").exists(), "{field}: a bundle was built");
        assert!(!lab.root(1).exists(), "{field}: dev1 was touched");
    }
    // The device was reachable all along: the refusals are the inventory check's.
    assert_eq!(lab.ssh(1, "true").0, 0, "dev1 does not answer over SSH");
}

#[test]
fn partitioned_link_safe_stops_then_the_flow_resumes() {
    let _g = serial();
    let lab = lab_or_skip!("partitioned_link_safe_stops_then_the_flow_resumes", 2);
    // Slow driving, so that the goal is still far when the link goes down.
    let inv = lab.inventory(
        "inventory.toml",
        "",
        &SPLIT,
        "[hosts.dev2.node.planner]\nv_max = 0.15\n",
    );
    let (code, _) = lab.deploy(&inv, "dev1,dev2", 30);
    assert_eq!(code, 0, "deploy failed");
    let cmds = |lab: &Lab| lab.metric(2, 9903, "qubot_messages_received_total", &[("topic", "cmd")]);
    let scans = |lab: &Lab| lab.metric(2, 9902, "qubot_messages_received_total", &[("topic", "scan")]);
    let stops = |lab: &Lab| lab.metric(2, 9903, "qubot_safe_stops_total", &[("reason", "cmd_timeout")]);
    wait_for("the robot driving", T, || (cmds(&lab)? > 20.0).then_some(()));
    let rss = |lab: &Lab| -> f64 {
        [(1, 9901), (2, 9902), (2, 9903)]
            .iter()
            .map(|&(i, p)| {
                lab.metric(i, p, "process_resident_memory_bytes", &[])
                    .unwrap_or(0.0)
            })
            .sum()
    };
    let rss_before = rss(&lab);
    let stops_before = stops(&lab).expect("actuator metrics");

    // dev1 (the sensor) drops every packet for 10 s.
    let cut = Instant::now();
    let how = lab.cut(1);
    let stopped = wait_for("the actuator to safe-stop", Duration::from_secs(10), || {
        (stops(&lab)? > stops_before).then(|| cut.elapsed())
    });
    let mut rss_max = rss_before;
    while cut.elapsed() < Duration::from_secs(10) {
        rss_max = rss_max.max(rss(&lab));
        std::thread::sleep(Duration::from_millis(500));
    }
    let scans_cut = scans(&lab).expect("planner metrics");
    lab.heal(1);
    let healed = Instant::now();
    let (c0, s0) = (cmds(&lab).expect("actuator"), scans_cut);
    wait_for("scans and commands flowing again after the heal", T, || {
        (scans(&lab)? > s0 + 10.0 && cmds(&lab)? > c0 + 10.0).then_some(())
    });
    let resumed = healed.elapsed();
    rss_max = rss_max.max(rss(&lab));
    println!(
        "partition ({how}): safe stop {stopped:?} after the cut, flow resumed {resumed:?} after the heal, \
         RSS of the three actors {:.1} MiB before, {:.1} MiB max",
        rss_before / 1048576.0,
        rss_max / 1048576.0
    );
    assert!(
        rss_max < rss_before + 64.0 * 1048576.0,
        "memory grew during the partition: {rss_before} -> {rss_max} bytes"
    );
}

#[test]
fn inventory_errors_name_the_field_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("qubot-inv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("bad.toml");
    std::fs::write(
        &f,
        "robot = \"r\"\n[hosts.a]\naddress = \"10.0.0.1\"\nactors = [\"sensor\", \"planner\", \"lidar\"]\n",
    )
    .expect("write");
    let (code, _, err) = run(&["inventory", "check", &f.display().to_string()], T);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("hosts.a.actors") && err.contains("\"lidar\""),
        "{err}"
    );
    // A deploy root that would end the quoting of the remote commands.
    std::fs::write(
        &f,
        "robot = \"r\"\n[hosts.a]\naddress = \"10.0.0.1\"\nroot = \"/opt/q'; reboot; '\"\n\
         actors = [\"sensor\", \"planner\", \"actuator\"]\n",
    )
    .expect("write");
    let (code, _, err) = run(&["inventory", "check", &f.display().to_string()], T);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("inventory: hosts.a.root: "), "{err}");
    let (code, out, err) = run(
        &["inventory", "check", &format!("{REPO}/deploy/inventory.toml")],
        T,
    );
    assert_eq!(code, 0, "shipped inventory: {err}");
    assert!(out.contains("ok (2 hosts, robot qubot-one)"), "{out}");
    let (code, out, err) = run(&["inventory", "check", &format!("{REPO}/deploy/fleet.toml")], T);
    assert_eq!(code, 0, "shipped fleet inventory: {err}");
    assert!(out.contains("ok (4 hosts, robots qubot-one qubot-two)"), "{out}");
    // A robot is a selector: its boards.
    let (code, out, err) = run(
        &[
            "inventory",
            "hosts",
            &format!("{REPO}/deploy/fleet.toml"),
            "qubot-two",
        ],
        T,
    );
    assert_eq!(code, 0, "{err}");
    let hosts: Vec<&str> = out.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(hosts, ["dev3", "dev4"], "{out}");
}

#[test]
fn inventory_check_warns_on_stderr_when_the_fleet_is_unauthenticated() {
    let dir = std::env::temp_dir().join(format!("qubot-inv-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("inventory.toml");
    let check = |fleet: &str| {
        std::fs::write(
            &f,
            format!(
                "robot = \"r\"\n{fleet}[hosts.a]\naddress = \"10.0.0.1\"\n\
                 actors = [\"sensor\", \"planner\", \"actuator\"]\n"
            ),
        )
        .expect("write");
        run(&["inventory", "check", &f.display().to_string()], T)
    };
    let name = f.display().to_string();
    for fleet in ["[fleet]\ntls = false\nzenoh_port = 7500\n", ""] {
        let (code, out, err) = check(fleet);
        assert_eq!(code, 0, "a warning, not an error: {err}");
        assert_eq!(
            out,
            format!("{name}: ok (1 hosts, robot r)\n"),
            "stdout stays as it was"
        );
        assert_eq!(err.matches("the fleet is UNAUTHENTICATED").count(), 1, "{err}");
        assert!(
            err.contains(&format!("WARNING: {name}: fleet.tls = false")),
            "{err}"
        );
        assert!(
            err.contains("put scans, commands and state") && err.contains("tls = true"),
            "{err}"
        );
        let port = if fleet.is_empty() { "7447" } else { "7500" };
        assert!(err.contains(&format!("port {port}")), "{err}");
    }
    let (code, out, err) = check("[fleet]\ntls = true\n");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok ("), "{out}");
    assert!(
        !err.contains("WARNING"),
        "a fleet with mutual TLS was warned about: {err}"
    );
    // The shipped inventory is a lab's: unauthenticated, and said so.
    let (code, _, err) = run(
        &["inventory", "check", &format!("{REPO}/deploy/inventory.toml")],
        T,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the fleet is UNAUTHENTICATED"), "{err}");
}

#[test]
fn systemd_unit_verifies_clean() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        skip_or_fail(
            "systemd_unit_verifies_clean",
            "systemd-analyze is not installed (apt-get install systemd)",
        );
        return;
    };
    assert!(out.status.success());
    // verify checks that ExecStart exists: point the unit at a release holding this binary.
    let dir = std::env::temp_dir().join(format!("qubot-unit-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("current")).expect("dir");
    std::fs::copy(QUBOT, dir.join("current/qubot")).expect("copy binary");
    let unit = std::fs::read_to_string(format!("{REPO}/deploy/systemd/qubot.service")).expect("unit");
    let f = dir.join("qubot.service");
    std::fs::write(&f, unit.replace("/opt/qubot", &dir.display().to_string())).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&f)
        .output()
        .expect("systemd-analyze");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {err}"
    );
}

/// A real Prometheus with the shipped config (1 s scrapes) in `dir`, whose `targets/` the
/// deploy script has written.
struct Prometheus {
    child: std::process::Child,
    addr: String,
}

impl Prometheus {
    fn start(dir: &Path) -> Prometheus {
        let deploy = Path::new(REPO).join("deploy");
        let cfg = std::fs::read_to_string(deploy.join("prometheus.yml"))
            .expect("prometheus.yml")
            .replace("scrape_interval: 5s", "scrape_interval: 1s")
            .replace("evaluation_interval: 5s", "evaluation_interval: 1s");
        std::fs::write(dir.join("prometheus.yml"), cfg).expect("write config");
        std::fs::copy(deploy.join("alerts.yml"), dir.join("alerts.yml")).expect("copy alerts");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is not installed (apt-get install prometheus)");
        Prometheus { child, addr }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A zenoh config for a process outside the fleet's deploy: `tls` is the json5 body of
/// `transport/link/tls`.
fn peer_config(dir: &Path, name: &str, tls: &str) -> String {
    let p = dir.join(format!("{name}.json5"));
    let text = format!(
        "{{ mode: \"peer\", scouting: {{ multicast: {{ enabled: false }} }}, listen: {{ endpoints: [] }},\n  transport: {{ link: {{ tls: {{ {tls} }} }} }} }}\n"
    );
    std::fs::write(&p, text).expect("write zenoh config");
    p.display().to_string()
}

fn member_tls(certs: &Path, host: &str) -> String {
    let c = certs.display();
    format!(
        "root_ca_certificate: \"{c}/ca.crt\", enable_mtls: true, \
         connect_certificate: \"{c}/{host}.crt\", connect_private_key: \"{c}/{host}.key\", \
         listen_certificate: \"{c}/{host}.crt\", listen_private_key: \"{c}/{host}.key\""
    )
}

/// Runs `qubot args...` for at most `secs` seconds (it may legitimately never finish):
/// its stdout and stderr.
fn bounded(secs: u32, args: &[&str]) -> (String, String) {
    let out = Command::new("timeout")
        .arg(secs.to_string())
        .arg(QUBOT)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("timeout qubot");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn only_fleet_certificates_connect_and_only_the_planner_commands() {
    let _g = serial();
    let lab = lab_or_skip!("only_fleet_certificates_connect_and_only_the_planner_commands", 2);
    // dev2 logs zenoh's access-control decisions, so that a denial is visible.
    let inv = lab.inventory(
        "inventory.toml",
        "[fleet]\ntls = true",
        &SPLIT,
        "log = \"info,zenoh=warn,zenoh::net::routing::interceptor::access_control=trace\"\n",
    );
    let (code, out) = lab.script("certs.sh", &[&inv.display().to_string()], &[]);
    assert_eq!(code, 0, "certs: {out}");
    let (code, _) = lab.deploy(&inv, "all", 30);
    assert_eq!(code, 0, "deploy over mutual TLS failed");
    let cmds = || lab.metric(2, 9903, "qubot_messages_received_total", &[("topic", "cmd")]);
    wait_for("the robot driving over mutual TLS", T, || {
        (cmds()? > 20.0).then_some(())
    });

    let certs = lab.dir.join("certs");
    let ca = format!("root_ca_certificate: \"{}/ca.crt\"", certs.display());
    // A stranger that trusts the fleet CA but has no certificate of its own.
    let stranger = peer_config(&lab.dir, "stranger", &ca);
    // A stranger with a self-signed certificate that claims to be the planner's host.
    let fake = lab.dir.join("fake");
    std::fs::create_dir_all(&fake).expect("dir");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=dev2", "-keyout"])
        .arg(fake.join("dev2.key"))
        .arg("-out")
        .arg(fake.join("dev2.crt"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl self-signed certificate");
    std::fs::copy(certs.join("ca.crt"), fake.join("ca.crt")).expect("ca");
    let impostor = peer_config(&lab.dir, "impostor", &member_tls(&fake, "dev2"));
    let member1 = peer_config(&lab.dir, "member1", &member_tls(&certs, "dev1"));
    let member2 = peer_config(&lab.dir, "member2", &member_tls(&certs, "dev2"));
    let hub1 = format!("tls/{}:7447", lab.addr(1));
    let hub2 = format!("tls/{}:7447", lab.addr(2));

    // Scans: strangers read nothing; a fleet member does.
    let listen = |cfg: &str| {
        bounded(
            10,
            &[
                "listen",
                "--print",
                "--count",
                "1",
                "--zenoh-config",
                cfg,
                "--connect",
                &hub1,
            ],
        )
        .0
    };
    for (who, cfg) in [("stranger", &stranger), ("impostor", &impostor)] {
        let out = listen(cfg);
        assert!(!out.contains("\"seq\""), "{who} read a scan: {out}");
    }
    assert!(
        listen(&member1).contains("\"seq\""),
        "a fleet member cannot read scans"
    );

    // Commands: only the planner's host gets one through. The injected commands come from a
    // source the actuator is not bound to, so any that reached it would be counted as dropped
    // with reason "foreign" (or "stale", were it bound to them).
    let stale = || {
        let reached = |reason| {
            lab.metric(
                2,
                9903,
                "qubot_messages_dropped_total",
                &[("topic", "cmd"), ("reason", reason)],
            )
        };
        Some(reached("stale")? + reached("foreign")?)
    };
    let key = "qubot/qubot-one/planner/main/cmd";
    let inject = |cfg: &str| {
        bounded(
            20,
            &[
                "inject",
                "--what",
                "stale-command",
                "--count",
                "5",
                "--key",
                key,
                "--wait-subscriber",
                "5",
                "--zenoh-config",
                cfg,
                "--connect",
                &hub2,
            ],
        )
    };
    for (who, cfg) in [("stranger", &stranger), ("impostor", &impostor)] {
        let (out, err) = inject(cfg);
        assert!(!out.contains("\"sent\""), "{who} could publish: {out} {err}");
    }
    let (out, err) = inject(&member1);
    assert!(out.contains("\"total\":5"), "dev1 did not even try: {out} {err}");
    let root2 = lab.root(2).display().to_string();
    wait_for("the denial in dev2's log", T, || {
        let (_, n) = lab.ssh(
            2,
            &format!("grep -a 'is unauthorized to' {root2}/qubot.log | grep -c '/cmd' || true"),
        );
        (n.trim() != "0").then_some(())
    });
    assert_eq!(
        stale(),
        Some(0.0),
        "a command from a non-planner host reached the actuator"
    );
    // The control: the same commands with the planner host's certificate do arrive.
    let (out, _) = inject(&member2);
    assert!(out.contains("\"total\":5"), "{out}");
    wait_for("the planner host's commands to arrive", T, || {
        (stale()? >= 5.0).then_some(())
    });
}

/// `qubot args...` inside device I's network namespace, for at most `secs` seconds: its
/// stdout and stderr.
fn bounded_on(lab: &Lab, i: usize, secs: u32, args: &[&str]) -> (String, String) {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.netns(i),
            "timeout",
            &secs.to_string(),
            QUBOT,
        ])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("ip netns exec timeout qubot");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Lines of device I's `qubot.log` (every process of the host logs there) that contain every
/// one of `parts`.
fn log_lines(lab: &Lab, i: usize, parts: &[&str]) -> usize {
    let log = std::fs::read(lab.root(i).join("qubot.log")).unwrap_or_default();
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .count()
}

#[test]
fn each_host_puts_only_the_keys_of_the_actors_it_runs() {
    let _g = serial();
    let lab = lab_or_skip!("each_host_puts_only_the_keys_of_the_actors_it_runs", 3);
    // One actor per device, each logging zenoh's access-control decisions.
    let inv = lab.inventory(
        "inventory.toml",
        "[fleet]\ntls = true",
        &["\"sensor\"", "\"planner\"", "\"actuator\""],
        "",
    );
    let acl_log = "log = \"info,zenoh=warn,zenoh::net::routing::interceptor::access_control=trace\"";
    let text = std::fs::read_to_string(&inv).expect("inventory");
    let mut logged = String::new();
    for line in text.lines() {
        logged.push_str(line);
        logged.push('\n');
        if line.starts_with("actors = ") {
            logged.push_str(acl_log);
            logged.push('\n');
        }
    }
    assert_eq!(logged.matches(acl_log).count(), 3, "{logged}");
    std::fs::write(&inv, logged).expect("write inventory");
    let (code, out) = lab.script("certs.sh", &[&inv.display().to_string()], &[]);
    assert_eq!(code, 0, "certs: {out}");
    let (code, out) = lab.deploy(&inv, "all", 30);
    assert_eq!(code, 0, "deploy over mutual TLS failed");
    assert!(
        !out.contains("UNAUTHENTICATED"),
        "a fleet with tls = true was warned about:\n{out}"
    );

    // Every role's own keys cross hosts: scans dev1 -> dev2, commands dev2 -> dev3, state
    // dev3 -> dev1 (each every host's health saw its own tokens, or the deploy would fail).
    let received = |i: usize, port: u16, topic: &str| {
        lab.metric(i, port, "qubot_messages_received_total", &[("topic", topic)])
    };
    wait_for("scans, commands and state crossing the three hosts", T, || {
        (received(2, 9902, "scan")? > 20.0
            && received(3, 9903, "cmd")? > 20.0
            && received(1, 9901, "state")? > 20.0)
            .then_some(())
    });
    // The clock probe crosses hosts under the same rules: the planner's host measures the
    // clocks of all three supervisors and actors (one kernel clock here: no skew).
    let health = assert_healthy(&lab, 2);
    let clocks = health["clocks"].as_object().expect("clocks");
    for (process, n) in [
        ("supervisor/", 3),
        ("sensor/", 1),
        ("planner/", 1),
        ("actuator/", 1),
    ] {
        assert_eq!(
            clocks.keys().filter(|k| k.starts_with(process)).count(),
            n,
            "clocks of {process} measured from dev2: {health}"
        );
    }

    // Damaged messages (bad magic) that any receiver counts as dropped when they reach it.
    let bad_magic = |i: usize, port: u16, topic: &str| {
        lab.metric(
            i,
            port,
            "qubot_messages_dropped_total",
            &[("topic", topic), ("reason", "bad_magic")],
        )
    };
    let certs = lab.dir.join("certs");
    // `qubot inject` inside device I's namespace, with device I's certificate, once it is
    // connected to every process of the fleet (three supervisors, three actors). The injector
    // does not listen, so it opens every link itself from what gossip tells it; zenoh never
    // retries a gossip link that failed to open (a TLS handshake lost on a busy machine), so
    // a fresh session gets up to three tries. Nothing is put before all six are connected, so
    // a retry cannot double the count.
    let inject = |i: usize, key: &str| {
        let host = format!("dev{i}");
        let cfg = peer_config(&lab.dir, &format!("member{i}"), &member_tls(&certs, &host));
        let hub = format!("tls/{}:7447", lab.addr(i));
        let mut tries = Vec::new();
        for _ in 0..3 {
            let (out, err) = bounded_on(
                &lab,
                i,
                40,
                &[
                    "inject",
                    "--what",
                    "bad-magic",
                    "--count",
                    "5",
                    "--key",
                    key,
                    "--wait-subscriber",
                    "30",
                    "--wait-peers",
                    "6",
                    "--zenoh-config",
                    &cfg,
                    "--connect",
                    &hub,
                ],
            );
            if out.contains("\"total\":5") {
                return;
            }
            tries.push(format!("{out} {err}"));
        }
        panic!("{host} did not even try to put on {key}: {tries:?}");
    };
    let denied = |i: usize, key: &str| log_lines(&lab, i, &["is unauthorized to", "Put (ingress)", key]);

    // Scans: the planner's host (dev2) and the actuator's (dev3) are refused by the planner.
    let scan = "qubot/qubot-one/sensor/lidar0/scan";
    for i in [2, 3] {
        let before = denied(2, scan);
        inject(i, scan);
        // Until the planner has refused all five, or one got through (said just below).
        wait_for(&format!("the planner refusing dev{i}'s 5 scans"), T, || {
            (denied(2, scan) >= before + 5 || bad_magic(2, 9902, "scan")? > 0.0).then_some(())
        });
        assert_eq!(
            bad_magic(2, 9902, "scan"),
            Some(0.0),
            "a scan put by dev{i} reached the planner"
        );
    }
    // State: the sensor's own host (dev1) and the planner's (dev2) are refused by the sensor
    // (and by every supervisor).
    let state = "qubot/qubot-one/actuator/base/state";
    for i in [1, 2] {
        let before = denied(1, state);
        inject(i, state);
        wait_for(&format!("dev1 refusing dev{i}'s state"), T, || {
            (denied(1, state) >= before + 5 || bad_magic(1, 9901, "state")? > 0.0).then_some(())
        });
        assert_eq!(
            bad_magic(1, 9901, "state"),
            Some(0.0),
            "a state put by dev{i} reached the sensor"
        );
    }
    // A tool's own liveliness token is no fleet actor's: refused too.
    assert!(
        log_lines(
            &lab,
            2,
            &[
                "is unauthorized to",
                "Liveliness Token (ingress)",
                "qubot/qubot-one/@live/inject/"
            ]
        ) > 0,
        "dev2 accepted the liveliness token of a `qubot inject`"
    );

    // The controls: the same bytes from the role's own host do arrive, all five and only them.
    inject(1, scan);
    wait_for("the sensor host's scans to reach the planner", T, || {
        (bad_magic(2, 9902, "scan")? >= 5.0).then_some(())
    });
    inject(3, state);
    wait_for("the actuator host's state to reach the sensor", T, || {
        (bad_magic(1, 9901, "state")? >= 5.0).then_some(())
    });
    assert_eq!(
        bad_magic(2, 9902, "scan"),
        Some(5.0),
        "scans from other hosts arrived late"
    );
    assert_eq!(
        bad_magic(1, 9901, "state"),
        Some(5.0),
        "state from other hosts arrived late"
    );
}

/// Two robots of two boards each on four lab devices: robot one on dev1 (sensor) and dev2
/// (planner, actuator), robot two on dev3 and dev4 likewise. `extra` is appended verbatim.
fn fleet_inventory(lab: &Lab, file: &str, head: &str, extra: &str) -> PathBuf {
    let mut s = format!("robot = \"qubot-one\"\n{head}\n");
    for i in 1..=4 {
        let robot = if i <= 2 { "qubot-one" } else { "qubot-two" };
        s.push_str(&format!(
            "[hosts.dev{i}]\nrobot = \"{robot}\"\naddress = \"{}\"\nroot = \"{}\"\nactors = [{}]\n",
            lab.addr(i),
            lab.root(i).display(),
            SPLIT[(i - 1) % 2]
        ));
    }
    s.push_str(extra);
    let p = lab.dir.join(file);
    std::fs::write(&p, s).expect("write inventory");
    p
}

/// A wave deploy to four devices: the canary alone, then waves of two in parallel, each
/// gated on health and on the loops of the robots it completed. A release broken on the last
/// wave's host rolls that wave back and stops, leaving the robot the earlier waves completed on
/// the new release (and the fleet mixed, said so); a release broken beside a good host rolls
/// the whole wave back, the good host too, and skips the waves after it.
#[test]
fn wave_deploy_gates_each_wave_and_rolls_a_failed_wave_back() {
    let _g = serial();
    let lab = lab_or_skip!("wave_deploy_gates_each_wave_and_rolls_a_failed_wave_back", 4);
    let head = "[fleet]\nwave = 2\n";
    let good = fleet_inventory(&lab, "fleet.toml", head, "");
    let (code, out) = lab.deploy(&good, "all", 30);
    assert_eq!(code, 0, "first wave deploy failed");
    assert!(out.contains("deploy: canary: dev1\n"), "{out}");
    assert!(out.contains("deploy: wave 1: dev2 dev3\n"), "{out}");
    assert!(out.contains("deploy: wave 2: dev4\n"), "{out}");
    for robot in ["qubot-one", "qubot-two"] {
        assert!(
            out.contains(&format!("robot {robot}: waiting")),
            "the loop of {robot} was not checked:\n{out}"
        );
    }
    let first: Vec<String> = (1..=4).map(|i| switched_to(&out, &format!("dev{i}"))).collect();

    // Every host gets a new release (harmless tuning); dev4's actuator cannot bind its
    // metrics port (sshd holds 22), so wave 2 fails.
    let tuned = "[hosts.dev1.node.sensor]\nbeams = 721\n[hosts.dev2.node.planner]\nsafety_margin_m = 0.16\n\
                 [hosts.dev3.node.sensor]\nbeams = 721\n";
    let bad = fleet_inventory(
        &lab,
        "bad.toml",
        head,
        &format!("{tuned}[hosts.dev4.node.actuator]\nmetrics_port = 22\n"),
    );
    let (code, out) = lab.deploy(&bad, "all", 10);
    assert_eq!(code, 1, "a failed wave must fail the deploy");
    let second: Vec<String> = (1..=3).map(|i| switched_to(&out, &format!("dev{i}"))).collect();
    assert!(
        out.contains(&format!("dev4: rolled back to {}", first[3])),
        "{out}"
    );
    assert!(out.contains("WARNING: the fleet is mixed"), "{out}");
    assert!(out.contains("robot qubot-one: waiting"), "{out}");
    for i in 1..=3 {
        assert_eq!(lab.current(i), format!("releases/{}", second[i - 1]), "dev{i}");
    }
    assert_eq!(lab.current(4), format!("releases/{}", first[3]), "dev4");
    // Robot one, completed by the canary and wave 1, runs the new release with its loop closed.
    let cmds = || lab.metric(2, 9903, "qubot_messages_received_total", &[("topic", "cmd")]);
    let before = cmds().expect("robot one's actuator");
    wait_for("robot one's loop on the new release", T, || {
        (cmds()? > before + 10.0).then_some(())
    });

    // Broken beside a good host in the same wave: the good one (dev2) is rolled back too, and
    // wave 2 is not touched.
    let beside = fleet_inventory(
        &lab,
        "beside.toml",
        head,
        "[hosts.dev1.node.sensor]\nbeams = 721\n[hosts.dev2.node.planner]\nsafety_margin_m = 0.17\n\
         [hosts.dev3.node.sensor]\nmetrics_port = 22\n",
    );
    let (code, out) = lab.deploy(&beside, "all", 10);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("deploy:   dev2: rolled back to "), "{out}");
    assert!(out.contains("wave 1 (dev3)"), "{out}");
    assert!(out.contains("deploy:   dev4: skipped"), "{out}");
}

/// The site-router lab: four boards (two robots of two boards each) and a fifth namespace for
/// the router, started with the arguments the inventory generates. Both robots reach their
/// goals, neither takes the other's traffic (counted), the router holds every process's
/// session, and Prometheus finds both robots through the file the deploy wrote.
#[test]
fn two_robots_of_two_boards_through_a_router_namespace() {
    let _g = serial();
    let lab = lab_or_skip!("two_robots_of_two_boards_through_a_router_namespace", 5);
    let router = lab.addr(5);
    let inv = fleet_inventory(
        &lab,
        "fleet.toml",
        &format!("world = \"corridor\"\n[fleet]\nwave = 2\nrouter = \"site\"\n[routers.site]\naddress = \"{router}\"\n"),
        "",
    );
    let (code, args, err) = run(&["inventory", "router", &inv.display().to_string(), "site"], T);
    assert_eq!(code, 0, "{err}");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.netns(5), QUBOT, "router"])
        .args(args.split_whitespace())
        .env("RUST_LOG", "warn");
    let _router = Proc::from_command("qubot router in dev5", cmd);
    let sessions =
        || metrics(&format!("{router}:9899")).map(|m| sum(&m, "qubot_router_sessions", &[("kind", "peer")]));
    wait_for("the router's /metrics", T, sessions);

    let (code, out) = lab.deploy(&inv, "all", 30);
    assert_eq!(code, 0, "fleet deploy failed");
    for (board, robot) in [(2, "qubot-one"), (4, "qubot-two")] {
        let root = lab.root(board).display().to_string();
        wait_for(&format!("{robot} to reach its goal"), T, || {
            let (_, n) = lab.ssh(board, &format!("grep -c 'goal reached' {root}/qubot.log || true"));
            (n.trim() != "0").then_some(())
        });
    }
    // Every process of every board on the router: four supervisors and six actors.
    wait_for("all ten processes on the router", T, || {
        (sessions()? == 10.0).then_some(())
    });
    // Apart: no planner took more scans than its own robot's sensor sent, nothing foreign.
    for (sensor, planner) in [(1, 2), (3, 4)] {
        let taken = lab
            .metric(
                planner,
                9902,
                "qubot_messages_received_total",
                &[("topic", "scan")],
            )
            .expect("planner");
        let sent = lab
            .metric(
                sensor,
                9901,
                "qubot_messages_published_total",
                &[("topic", "scan")],
            )
            .expect("sensor");
        assert!(
            taken > 0.0 && taken <= sent,
            "dev{planner} took {taken} scans, dev{sensor} sent {sent}"
        );
        for (dev, port) in [(planner, 9902), (planner, 9903)] {
            let foreign = lab.metric(
                dev,
                port,
                "qubot_messages_dropped_total",
                &[("reason", "foreign")],
            );
            assert_eq!(foreign, Some(0.0), "dev{dev}:{port}");
        }
    }
    // One targets file covers both robots.
    let prom = Prometheus::start(&lab.dir.join("prom"));
    wait_for("Prometheus to scrape all 10 fleet processes", T, || {
        (prom_query(&prom.addr, "up{job=\"qubot-fleet\"} == 1") == Some(10)).then_some(())
    });
    let robots = "count by (robot) (qubot_build_info{job=\"qubot-fleet\"})";
    assert_eq!(prom_query(&prom.addr, robots), Some(2), "{robots}\n{out}");
}
