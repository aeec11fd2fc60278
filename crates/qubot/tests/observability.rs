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
    prometheus::{dashboard_queries, tool, Prometheus, ROUTER_SERIES},
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
    // The site router's panels are checked against a deployed router: fleet_lab.rs.
    let pipeline_panels: Vec<_> = queries
        .into_iter()
        .filter(|q| !q.2.contains(ROUTER_SERIES))
        .collect();
    let missing = prom.panels_without_data(&pipeline_panels, "dash");
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
