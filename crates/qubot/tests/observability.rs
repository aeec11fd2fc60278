//! Observability end to end: every process's `/metrics` passes `promtool check metrics`, the
//! shipped Prometheus config and alert rules pass promtool, a real Prometheus scrapes a real
//! `qubot up`, and every panel query of every shipped dashboard returns data. `qubot top`
//! shows every actor with traffic.

mod common;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::*;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const T: Duration = Duration::from_secs(90);

fn tool(name: &str) -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "{name} is not installed: `apt-get install prometheus` (bash .ci/run installs it)"
    );
    PathBuf::from(path)
}

/// The `host` label `qubot up` is given: every process it starts must carry it.
const HOST_LABEL: &str = "lint-board";

/// `qubot up` on its own ports, driving the corridor world until stopped.
struct Pipeline {
    proc: Proc,
    base: u16,
}

impl Pipeline {
    fn start(robot: &str) -> Pipeline {
        let (hub, base) = pipeline_ports();
        let base_s = base.to_string();
        let worlds = format!("{REPO}/deploy/worlds");
        let proc = Proc::spawn(
            "qubot up",
            &[
                "up",
                "--robot",
                robot,
                "--world",
                "corridor",
                "--worlds-dir",
                &worlds,
                "--hub",
                &hub,
                "--metrics-port-base",
                &base_s,
                "--timeout",
                "300",
                "--host-label",
                HOST_LABEL,
            ],
        );
        let p = Pipeline { proc, base };
        wait_for("commands flowing", T, || {
            let m = metrics(&p.endpoint(3))?;
            (sum(&m, "qubot_messages_received_total", &[("topic", "cmd")]) > 10.0).then_some(())
        });
        p
    }

    fn endpoint(&self, i: u16) -> String {
        format!("127.0.0.1:{}", self.base + i)
    }
}

impl Drop for Pipeline {
    /// A graceful stop, so the supervisor cleans up its children's shared memory.
    fn drop(&mut self) {
        if self.proc.is_running() {
            self.proc.signal("INT");
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while self.proc.is_running() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn every_process_metrics_page_passes_promtool() {
    let _g = serial();
    let promtool = tool("promtool");
    let p = Pipeline::start("lint");
    for (i, process) in ["supervisor", "sensor", "planner", "actuator"].iter().enumerate() {
        let text = scrape(&p.endpoint(i as u16)).expect("scrape");
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("promtool");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && report.trim().is_empty(),
            "{process}: promtool check metrics:\n{report}"
        );
        let samples = parse_metrics(&text).expect("parse");
        assert!(
            samples
                .iter()
                .all(|s| s.label("robot") == Some("lint") && s.label("host") == Some(HOST_LABEL)),
            "{process}: every series carries robot and the host label `qubot up` was given"
        );
        assert_eq!(sum(&samples, "qubot_build_info", &[]), 1.0, "{process}");
    }
}

#[test]
fn shipped_prometheus_config_and_alert_rules_pass_promtool() {
    let promtool = tool("promtool");
    let deploy = format!("{REPO}/deploy");
    for args in [
        vec!["check", "config", "prometheus.yml"],
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(&deploy)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every panel target of every dashboard in `dashboards/`: (file, panel title, expr).
fn dashboard_queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let dir = format!("{REPO}/dashboards");
    for entry in std::fs::read_dir(&dir)
        .expect("dashboards dir")
        .filter_map(|e| e.ok())
    {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read dashboard");
        let d: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .expect("templating.list")
            .iter()
            .filter(|v| v["type"] == "datasource")
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert!(!vars.is_empty(), "{path:?}: the datasource must be a variable");
        let panels = d["panels"].as_array().expect("panels");
        assert!(!panels.is_empty(), "{path:?}: no panels");
        for panel in panels
            .iter()
            .flat_map(|p| std::iter::once(p).chain(p["panels"].as_array().into_iter().flatten()))
        {
            if panel["type"] == "row" {
                continue;
            }
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            let uid = panel["datasource"]["uid"].as_str().unwrap_or("");
            assert!(
                vars.iter()
                    .any(|v| uid == format!("${{{v}}}") || uid == format!("${v}")),
                "{path:?} panel {title:?}: datasource {uid:?} is not a datasource variable"
            );
            let targets = panel["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("panel {title:?} has no targets"));
            assert!(!targets.is_empty(), "panel {title:?} has no targets");
            for t in targets {
                let expr = t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("panel {title:?}: target without expr"));
                out.push((
                    path.file_name().expect("name").to_string_lossy().into_owned(),
                    title.clone(),
                    expr.to_owned(),
                ));
            }
        }
    }
    assert!(!out.is_empty(), "no dashboard queries found");
    out
}

#[test]
fn dashboards_parse_and_use_a_datasource_variable() {
    assert!(dashboard_queries().len() >= 14);
}

struct Prometheus {
    child: std::process::Child,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real Prometheus with the shipped config, pointed at this test's ports, scraping every second.
fn prometheus(p: &Pipeline, listen: &str) -> Prometheus {
    let bin = tool("prometheus");
    let dir = std::env::temp_dir().join(format!("qubot-prom-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("targets")).expect("dir");
    let deploy = Path::new(REPO).join("deploy");
    let mut cfg = std::fs::read_to_string(deploy.join("prometheus.yml")).expect("prometheus.yml");
    for i in 0..4u16 {
        cfg = cfg.replace(&format!("127.0.0.1:990{i}"), &p.endpoint(i));
    }
    cfg = cfg
        .replace("scrape_interval: 5s", "scrape_interval: 1s")
        .replace("evaluation_interval: 5s", "evaluation_interval: 1s");
    std::fs::write(dir.join("prometheus.yml"), cfg).expect("write config");
    std::fs::copy(deploy.join("alerts.yml"), dir.join("alerts.yml")).expect("copy alerts");
    let child = Command::new(bin)
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={listen}"))
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    Prometheus { child, dir }
}

#[test]
fn every_dashboard_panel_returns_data_from_a_real_prometheus() {
    let _g = serial();
    let queries = dashboard_queries();
    let p = Pipeline::start("dash");
    let listen = format!("127.0.0.1:{}", free_port());
    let _prom = prometheus(&p, &listen);
    wait_for("all four processes scraped", T, || {
        (prom_query(&listen, "count(up{job=\"qubot\"} == 1)")? >= 1
            && prom_query(&listen, "up{job=\"qubot\"} == 1")? == 4)
            .then_some(())
    });
    let mut missing = Vec::new();
    for (file, title, expr) in &queries {
        let q = expr
            .replace("$__rate_interval", "10s")
            .replace("${robot}", "dash")
            .replace("$robot", "dash")
            .replace("${host}", ".*")
            .replace("$host", ".*");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let series = loop {
            let n = prom_query(&listen, &q).unwrap_or(0);
            if n > 0 || std::time::Instant::now() >= deadline {
                break n;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        if series == 0 {
            missing.push(format!("{file} / {title}: {q}"));
        }
    }
    assert!(
        missing.is_empty(),
        "panel queries without data:\n{}",
        missing.join("\n")
    );
}

#[test]
fn top_once_shows_every_actor_with_traffic() {
    let _g = serial();
    let p = Pipeline::start("top");
    let mut args = vec!["top".to_owned(), "--once".to_owned()];
    for i in 0..4 {
        args.push("--endpoint".into());
        args.push(p.endpoint(i));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run(&argv, T);
    assert_eq!(code, 0, "{err}");
    for actor in ["sensor", "planner", "actuator"] {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(actor))
            .unwrap_or_else(|| panic!("no {actor} row in:\n{out}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        let (rate_in, rate_out): (f64, f64) = (cols[1].parse().expect("in"), cols[2].parse().expect("out"));
        assert!(
            rate_in > 0.0 && rate_out > 0.0,
            "{actor} must show traffic both ways: {row}"
        );
    }
    drop(p);
}
