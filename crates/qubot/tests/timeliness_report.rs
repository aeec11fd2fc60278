//! The run report's account of the loop's clock: `qubot up` of the default robot to its goal,
//! then the figures of the sensor's capture timer and the actuator's control timer in its last
//! line, read from those processes' `/metrics` before they stopped.
//!
//! The periods come from histograms of four buckets per octave (each edge about 1.19 times the
//! one before), so a quantile is only known to lie in its bucket: the p50 is interpolated
//! linearly inside it, as PromQL's `histogram_quantile` does, which for ticks all about one
//! period apart gives about the bucket's middle, not the period (ticks exactly 50 ms apart read
//! as 53.3 ms, 6.6 % off; exactly 20 ms as 18.9 ms, 5.8 % off). No tolerance finer than the
//! bucket is honest, so the test asserts that the p50 lies in the bucket holding the nominal
//! period, the bucket the report gives beside it.

mod common;

use common::pipeline::{assert_clean_run, Up};
use common::serial;
use qubot_bus::telemetry::LATENCY_BUCKETS;
use qubot_node::NodeConfig;

/// `[lower, upper]` of the histogram bucket that holds `s` seconds (`lower < s <= upper`), in
/// ms.
fn bucket_of_ms(s: f64) -> [f64; 2] {
    let i = LATENCY_BUCKETS
        .iter()
        .position(|&le| s <= le)
        .unwrap_or_else(|| panic!("{s} s is beyond the buckets"));
    let lower = if i == 0 { 0.0 } else { LATENCY_BUCKETS[i - 1] };
    [lower * 1e3, LATENCY_BUCKETS[i] * 1e3]
}

/// Equal but for the rounding of the report's text (edges have three significant digits).
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn the_report_gives_the_loop_periods_in_the_buckets_of_the_nominal_ones() {
    let _g = serial();
    let cfg = NodeConfig::default();
    // The default robot's clock: the sensor captures at 20 Hz (50 ms), the actuator ticks at
    // 50 Hz (20 ms).
    let timers = [
        ("sensor/capture", 1.0 / cfg.sensor.rate_hz),
        ("actuator/control", 1.0 / cfg.actuator.tick_hz),
    ];
    assert_eq!(timers.map(|(_, s)| (s * 1e3).round()), [50.0, 20.0]);
    let up = Up::start("tickreport", "default", &["--exit-on-goal", "--timeout", "120"]);
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_clean_run(&report);
    eprintln!("periods: {:?}", report.periods);
    for (key, period_s) in timers {
        let nominal = period_s * 1e3;
        let p = report
            .periods
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", report.periods));
        let p50 = p.period_p50_ms.unwrap_or_else(|| panic!("{key}: no p50: {p:?}"));
        let [lo, hi] = p
            .period_p50_bucket_ms
            .unwrap_or_else(|| panic!("{key}: no p50 bucket: {p:?}"));
        let want = bucket_of_ms(period_s);
        assert!(
            same(lo, want[0]) && same(hi, want[1]),
            "{key}: p50 {p50} ms lies in bucket [{lo}, {hi}] ms, not in the {nominal} ms period's \
             {want:?}: {p:?}"
        );
        assert!(lo <= p50 && p50 <= hi, "{key}: p50 outside its own bucket: {p:?}");
        // The other figures are there and agree with each other.
        let p99 = p.period_p99_ms.unwrap_or_else(|| panic!("{key}: no p99: {p:?}"));
        let max = p
            .period_max_ms_at_most
            .unwrap_or_else(|| panic!("{key}: no bound on the longest period: {p:?}"));
        assert!(p50 <= p99 && p99 <= max, "{key}: {p:?}");
        assert!(
            max >= hi,
            "{key}: the longest period is at least the median's bucket: {p:?}"
        );
        // A tick a period late or more is skipped, not timed: its lateness lies below that.
        let [late_lo, _] = p
            .lateness_p99_bucket_ms
            .unwrap_or_else(|| panic!("{key}: no lateness p99 bucket: {p:?}"));
        assert!(p.lateness_p99_ms.is_some(), "{key}: {p:?}");
        assert!(late_lo < nominal, "{key}: {p:?}");
        let missed = p
            .missed
            .unwrap_or_else(|| panic!("{key}: no missed-tick count: {p:?}"));
        eprintln!("{key}: p50 {p50} ms in [{lo}, {hi}], p99 {p99} ms, max <= {max} ms, missed {missed}");
    }
}
