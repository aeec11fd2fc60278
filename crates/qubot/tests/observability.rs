//! Observability end to end: every process's `/metrics` passes `promtool check metrics`, the
//! shipped Prometheus config and alert rules pass promtool, a real Prometheus scrapes a real
//! `qubot up`, and every panel query of every shipped dashboard returns data. `qubot top`
//! shows every actor with traffic.

mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use common::{
    counters::*,
    pipeline::*,
    prometheus::{tool, Prometheus},
    *,
};

const T: Duration = Duration::from_secs(90);

/// The `host` label `qubot up` is given: every process it starts must carry it.
const HOST_LABEL: &str = "lint-board";

/// `qubot up` of `robot` on its own ports, driving the corridor world (until stopped: on
/// drop) with more than 10 commands applied.
fn pipeline(robot: &str) -> Up {
    let up = Up::start(
        robot,
        "corridor",
        &["--timeout", "300", "--host-label", HOST_LABEL],
    );
    wait_driving_within(&up, 11.0, T);
    up
}

#[test]
fn every_process_metrics_page_passes_promtool() {
    let _g = serial();
    let promtool = tool("promtool");
    let p = pipeline("lint");
    for (i, process) in ["supervisor", "sensor", "planner", "actuator"].iter().enumerate() {
        let text = scrape(&p.metrics_of(i as u16)).expect("scrape");
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

#[test]
fn every_dashboard_panel_returns_data_from_a_real_prometheus() {
    let _g = serial();
    let queries = dashboard_queries();
    let p = pipeline("dash");
    let endpoints: Vec<String> = (0..4).map(|i| p.metrics_of(i)).collect();
    let prom = Prometheus::scraping(&endpoints);
    wait_for("all four processes scraped", T, || {
        (prom.query("count(up{job=\"qubot\"} == 1)")? >= 1 && prom.query("up{job=\"qubot\"} == 1")? == 4)
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
            let n = prom.query(&q).unwrap_or(0);
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
    let p = pipeline("top");
    let mut args = vec!["top".to_owned(), "--once".to_owned()];
    for i in 0..4 {
        args.push("--endpoint".into());
        args.push(p.metrics_of(i));
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
