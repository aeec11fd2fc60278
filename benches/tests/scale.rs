//! The fleet's cost curve in its smallest form: one and two robots through one router, a short
//! window. It runs real `qubot router` and `qubot up` processes (the workspace's `qubot`
//! binary, built beside `qubot-bench`), writes scale.json and the two plots, and finds no
//! robot's traffic reaching another.

use std::process::Command;

use serde_json::Value;

#[test]
fn two_fleet_sizes_are_measured_and_kept_apart() {
    let out = std::env::temp_dir().join(format!("qubot-scale-test-{}", std::process::id()));
    let worlds = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/worlds");
    let run = Command::new(env!("CARGO_BIN_EXE_qubot-bench"))
        .args([
            "scale",
            "--robots",
            "1,2",
            "--warmup",
            "1",
            "--window",
            "3",
            "--worlds-dir",
            worlds,
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("running qubot-bench scale");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "qubot-bench scale failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("| robots |"), "no table printed:\n{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scale.json")).expect("scale.json"))
            .expect("JSON");
    let points = report["points"].as_array().expect("points");
    let sizes: Vec<u64> = points.iter().filter_map(|p| p["robots"].as_u64()).collect();
    assert_eq!(sizes, [1, 2], "{report}");
    for p in points {
        assert_eq!(p["cross_robot_deliveries"], 0.0, "{p}");
        // Every robot's loop runs at the sensor's 20 Hz within the window.
        let hz = p["loop_hz_mean"].as_f64().unwrap_or(0.0);
        assert!((15.0..=25.0).contains(&hz), "loop rate {hz}: {p}");
        let cpu = p["robot_cpu_pct_mean"].as_f64().unwrap_or(0.0);
        assert!(
            cpu > 0.0 && cpu <= p["robot_cpu_pct_max"].as_f64().unwrap_or(0.0),
            "{p}"
        );
        let (p50, p99) = (p["latency_p50_ms"].as_f64(), p["latency_p99_ms"].as_f64());
        assert!(p50.is_some() && p99 >= p50, "{p}");
    }
    for plot in ["scale-cpu.svg", "scale-latency.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).expect(plot);
        assert!(
            svg.starts_with("<svg") && svg.contains("robots"),
            "{plot} is not a plot"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
