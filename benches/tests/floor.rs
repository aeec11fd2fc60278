//! The floor in its smallest form: one rate, one round, a short window. It runs the raw loop
//! (three `qubot-bench floor role` processes) and a real `qubot up` (the workspace's `qubot`
//! binary, built beside `qubot-bench`), and checks that both closed the loop at the rate and
//! that floor.json holds what the table says.

use std::process::Command;

use serde_json::Value;

#[test]
fn raw_loop_and_pipeline_are_measured_side_by_side() {
    let out = std::env::temp_dir().join(format!("qubot-floor-test-{}", std::process::id()));
    let worlds = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/worlds");
    let run = Command::new(env!("CARGO_BIN_EXE_qubot-bench"))
        .args([
            "floor",
            "--rates",
            "20",
            "--rounds",
            "1",
            "--warmup",
            "1",
            "--window",
            "2",
            "--worlds-dir",
            worlds,
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("running qubot-bench floor");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "qubot-bench floor failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("| rate | raw floor"),
        "no table printed:\n{stdout}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("floor.json")).expect("floor.json"))
            .expect("JSON");
    assert_eq!(report["wire_bytes"]["scan"], 2968, "{report}");
    let points = report["points"].as_array().expect("points");
    assert_eq!(points.len(), 1, "{report}");
    let p = &points[0];
    assert_eq!(p["tick_hz"], 50.0, "{p}");
    for side in ["raw", "pipeline"] {
        let hz = p[format!("{side}_loop_hz")].as_f64().unwrap_or(0.0);
        assert!((15.0..=25.0).contains(&hz), "{side} loop rate {hz}: {p}");
        let cpu = p[format!("{side}_cpu_pct")].as_f64().unwrap_or(0.0);
        assert!(cpu > 0.0 && cpu < 200.0, "{side} CPU {cpu}: {p}");
        for part in ["sensor", "planner", "actuator"] {
            assert!(
                p[format!("{side}_processes")][part]["threads"].as_u64() > Some(0),
                "{p}"
            );
        }
    }
    assert!(p["ratio"].as_f64().is_some_and(|r| r > 0.0), "{p}");
    let windows = report["windows"].as_array().expect("windows");
    assert_eq!(windows.len(), 2, "{report}");
    let _ = std::fs::remove_dir_all(&out);
}
