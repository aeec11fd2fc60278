//! The bench harness end to end, in its quick form: it runs real raw-zenoh and Qubot process
//! pairs, writes `report.json` with the fields the bench issue names, and draws the plots.

use std::{collections::BTreeSet, process::Command};

use serde_json::Value;

#[test]
fn quick_latency_run_writes_the_report_and_the_plots() {
    let out = std::env::temp_dir().join(format!("qubot-bench-test-{}", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_qubot-bench"))
        .args(["run", "--quick", "--only", "latency", "--out"])
        .arg(&out)
        .output()
        .expect("running qubot-bench");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "qubot-bench failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("| latency (one hop) |"),
        "no table printed:\n{stdout}"
    );

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report.json"))
            .expect("JSON");
    assert!(
        report["machine"]["cpus"].as_u64().unwrap_or(0) >= 1,
        "{}",
        report["machine"]
    );
    assert!(report["git_rev"].is_string(), "{}", report["git_rev"]);
    let cases = report["cases"].as_array().expect("cases");
    // Every (transport, payload, allocator) combination is measured exactly once, whatever
    // the harness's lists hold; the process's own allocator is among those measured.
    let key = |c: &Value| {
        (
            c["transport"].as_str().unwrap_or("").to_owned(),
            c["payload_bytes"].as_u64().unwrap_or(0),
            c["allocator"].as_str().unwrap_or("").to_owned(),
        )
    };
    let keys: BTreeSet<_> = cases.iter().map(key).collect();
    let axis = |i: usize| -> BTreeSet<String> {
        keys.iter()
            .map(|k| [k.0.clone(), k.1.to_string(), k.2.clone()][i].clone())
            .collect()
    };
    let (transports, payloads, allocators) = (axis(0), axis(1), axis(2));
    assert_eq!(keys.len(), cases.len(), "a combination measured twice");
    assert_eq!(cases.len(), transports.len() * payloads.len() * allocators.len());
    assert_eq!(transports, BTreeSet::from(["shm".to_owned(), "tcp".to_owned()]));
    assert!(payloads.len() >= 2 && allocators.len() >= 2, "{keys:?}");
    let own = report["allocator"].as_str().expect("the harness's allocator");
    assert!(allocators.contains(own), "{own} not among {allocators:?}");
    for c in cases {
        assert_eq!(c["kind"], "latency");
        assert!(c["payload_bytes"].as_u64().unwrap_or(0) >= 64, "{c}");
        for k in [
            "raw_p50_us",
            "raw_p99_us",
            "qubot_p50_us",
            "qubot_p99_us",
            "ratio_p50",
            "ratio_p99",
            "latency_profile_p50_us",
            "latency_profile_p99_us",
            "latency_profile_ratio_p50",
            "handoff_p50_us",
            "handoff_p99_us",
            "handoff_ratio_p50",
            "qubot_over_handoff_p50",
        ] {
            let v = c[k].as_f64().unwrap_or(f64::NAN);
            assert!(v.is_finite() && v > 0.0, "{k} in {c}");
        }
        assert!(c["qubot_p99_us"].as_f64() >= c["qubot_p50_us"].as_f64(), "{c}");
        for who in ["latency_profile", "handoff"] {
            let q = |p: &str| c[format!("{who}_{p}_us")].as_f64();
            assert!(q("p99") >= q("p50"), "{who} in {c}");
        }
    }
    for plot in ["latency.svg", "allocators.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).expect(plot);
        assert!(
            svg.starts_with("<svg")
                && svg.contains("Qubot")
                && (plot != "latency.svg" || svg.contains("handed off")),
            "{plot} is not a plot"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
