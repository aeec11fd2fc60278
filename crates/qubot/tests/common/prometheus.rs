//! A real Prometheus with the shipped config and alert rules, scraping every second.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use super::{free_port, TempDir, REPO};

/// The path of an installed tool that the test cannot do without (`prometheus`, `promtool`).
pub fn tool(name: &str) -> PathBuf {
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

/// `prometheus` with the shipped `prometheus.yml` (1 s scrapes and evaluations) and
/// `alerts.yml`, listening on a free loopback port; killed on drop.
pub struct Prometheus {
    child: std::process::Child,
    /// Where its HTTP API listens (host:port).
    pub addr: String,
    /// Its own directory, when it has one (removed on drop, after the kill).
    _dir: Option<TempDir>,
}

impl Prometheus {
    /// In `dir`, whose `targets/` the deploy script has written (the file-discovered fleet).
    pub fn start(dir: &Path) -> Prometheus {
        Prometheus::spawn(dir, &[], None)
    }

    /// In a fresh directory of its own, the shipped config's static targets (the default
    /// ports `127.0.0.1:9900..9903`: supervisor, sensor, planner, actuator) replaced by
    /// `endpoints`.
    pub fn scraping(endpoints: &[String]) -> Prometheus {
        let dir = TempDir::new("prom");
        std::fs::create_dir_all(dir.join("targets")).expect("dir");
        let path = dir.path().to_owned();
        Prometheus::spawn(&path, endpoints, Some(dir))
    }

    fn spawn(dir: &Path, endpoints: &[String], own: Option<TempDir>) -> Prometheus {
        let bin = tool("prometheus");
        let deploy = Path::new(REPO).join("deploy");
        let mut cfg = std::fs::read_to_string(deploy.join("prometheus.yml")).expect("prometheus.yml");
        for (i, endpoint) in endpoints.iter().enumerate() {
            cfg = cfg.replace(&format!("127.0.0.1:990{i}"), endpoint);
        }
        cfg = cfg
            .replace("scrape_interval: 5s", "scrape_interval: 1s")
            .replace("evaluation_interval: 5s", "evaluation_interval: 1s");
        std::fs::write(dir.join("prometheus.yml"), cfg).expect("write config");
        std::fs::copy(deploy.join("alerts.yml"), dir.join("alerts.yml")).expect("copy alerts");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(bin)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            addr,
            _dir: own,
        }
    }

    /// An instant query: `Some(number of series)` when Prometheus answered.
    /// The dashboard `queries` (as [`dashboard_queries`] gives them) that return no series
    /// within 30 s each, with `$robot` set to `robot`, every host and a 10 s rate window.
    #[allow(dead_code)] // each test binary uses its own subset
    pub fn panels_without_data(&self, queries: &[(String, String, String)], robot: &str) -> Vec<String> {
        let mut missing = Vec::new();
        for (file, title, expr) in queries {
            let q = expr
                .replace("$__rate_interval", "10s")
                .replace("${robot}", robot)
                .replace("$robot", robot)
                .replace("${host}", ".*")
                .replace("$host", ".*");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let series = loop {
                let n = self.query(&q).unwrap_or(0);
                if n > 0 || std::time::Instant::now() >= deadline {
                    break n;
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            };
            if series == 0 {
                missing.push(format!("{file} / {title}: {q}"));
            }
        }
        missing
    }

    pub fn query(&self, expr: &str) -> Option<usize> {
        let path = format!("/api/v1/query?query={}", url_encode(expr));
        let body = qubot_ops::promtext::http_get(&self.addr, &path)?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["status"] == "success").then(|| v["data"]["result"].as_array().map_or(0, Vec::len))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The prefix of the site router's series: its dashboard panels need a router to have data.
pub const ROUTER_SERIES: &str = "qubot_router_";

/// Every panel target of every dashboard in `dashboards/`: (file, panel title, expr).
pub fn dashboard_queries() -> Vec<(String, String, String)> {
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
