//! The judge: turns metric snapshots taken around the fault phase, the fault log and the run
//! report into one verdict per SLO. Every figure comes from the processes' own `/metrics`.

use std::collections::BTreeMap;

use qubot_msg::{metric_names as names, topic, DropReason};
use qubot_node::{NodeConfig, Role};
use serde_json::{json, Value};

use super::watch::Watch;
use super::{
    faults::FaultLog,
    pipeline::Snapshot,
    scenario::{Measure, Scenario, Slo},
};
use crate::{
    promtext::{self, Quantile, Sample},
    run::RunReport,
};

// Accounting: a published message ends as exactly one of received, one of
// `DropReason::BEFORE_HANDLER` (inbox policies, transport gaps, foreign sources), or still in
// flight. Handler-level rejections (`stale`, `invalid`, `implausible`) are received messages,
// and decode errors are foreign bytes no Qubot publisher counted. A flood's well-formed scans
// are published (they count) and refused before the inbox as `foreign`.
const CMD: &str = topic::CMD.name();
const SCAN: &str = topic::SCAN.name();
const ACTUATOR: &str = Role::Actuator.name();
const PLANNER: &str = Role::Planner.name();
const SENSOR: &str = Role::Sensor.name();

/// The snapshots a verdict is computed from.
pub struct Windows {
    /// Start and end of the idle baseline.
    pub idle: (Snapshot, Snapshot),
    /// End of the fault phase.
    pub faulted: Snapshot,
    /// Start of the accounting window: the idle end, or after the last restart recovered.
    pub accounting_from: Option<Snapshot>,
    pub end: Snapshot,
}

#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub target: String,
    pub measured: Option<f64>,
    pub passed: bool,
    pub detail: Option<String>,
}

impl Outcome {
    pub fn json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "target": self.target,
            "measured": self.measured.map(round),
            "passed": self.passed,
        });
        if let Some(d) = &self.detail {
            v["detail"] = json!(d);
        }
        v
    }
}

fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

pub struct Evidence<'a> {
    pub scenario: &'a Scenario,
    pub cfg: &'a NodeConfig,
    pub w: &'a Windows,
    pub log: &'a FaultLog,
    pub watch: &'a Watch,
    pub reports: &'a [RunReport],
}

pub fn judge(e: &Evidence) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = e.scenario.slos.iter().map(|slo| judge_one(e, slo)).collect();
    out.extend(accounting(e));
    out.push(Outcome {
        name: "faults applied as scheduled".into(),
        target: "== 0 errors".into(),
        measured: Some(e.log.errors.len() as f64),
        passed: e.log.errors.is_empty(),
        detail: (!e.log.errors.is_empty()).then(|| e.log.errors.join("; ")),
    });
    out
}

fn judge_one(e: &Evidence, slo: &Slo) -> Outcome {
    let f = measure(e, slo.measure);
    let (passed, sharp) = verdict(&f, slo.min, slo.max);
    let mut detail = f.detail;
    if passed && !sharp {
        detail = Some(format!(
            "{}; beyond the target only within the histogram's resolution, so not judged a miss",
            detail.unwrap_or_default()
        ));
    }
    let target = match (slo.min, slo.max) {
        (Some(lo), Some(hi)) => format!(">= {lo} and <= {hi}"),
        (Some(lo), None) => format!(">= {lo}"),
        (None, Some(hi)) => format!("<= {hi}"),
        (None, None) => "none".into(),
    };
    Outcome {
        name: slo.name.clone(),
        target,
        measured: f.value,
        passed,
        detail,
    }
}

/// Whether `f` meets the target, and whether its value alone does. Only a figure whose whole
/// known range is beyond the limit fails: histogram buckets cannot tell anything finer apart.
fn verdict(f: &Figure, min: Option<f64>, max: Option<f64>) -> (bool, bool) {
    let Some(v) = f.value else {
        return (false, false);
    };
    let (lo, hi) = f.within.unwrap_or((v, v));
    let passed = max.is_none_or(|x| lo <= x) && min.is_none_or(|x| hi >= x);
    let sharp = max.is_none_or(|x| v <= x) && min.is_none_or(|x| v >= x);
    (passed, sharp)
}

/// A measured figure: its value, the range it is known to lie in when it comes from histogram
/// buckets, and what it was computed from.
struct Figure {
    value: Option<f64>,
    within: Option<(f64, f64)>,
    detail: Option<String>,
}

/// Quantiles come from the buckets the processes export; a ratio of two of them is known only
/// as finely as both buckets allow.
fn measure(e: &Evidence, m: Measure) -> Figure {
    let w = e.w;
    let (i0, i1) = (&w.idle.0, &w.idle.1);
    let cmd_age = [("actor", ACTUATOR), ("topic", CMD)];
    let fault =
        |name, filter: &[(&str, &str)]| p99(actor(&w.faulted, ACTUATOR), actor(i1, ACTUATOR), name, filter);
    let idle = |name, filter: &[(&str, &str)]| p99(actor(i1, ACTUATOR), actor(i0, ACTUATOR), name, filter);
    match m {
        Measure::PipelineP99Ratio => {
            let mut f = ratio(
                fault(names::PIPELINE_LATENCY, &[]),
                idle(names::PIPELINE_LATENCY, &[]),
            );
            f.detail = Some(format!("{}; {}", f.detail.unwrap_or_default(), stages(w)));
            f
        }
        Measure::CmdAgeP99Ratio => ratio(
            fault(names::MESSAGE_AGE, &cmd_age),
            idle(names::MESSAGE_AGE, &cmd_age),
        ),
        Measure::PipelineP99Ms => {
            let q = fault(names::PIPELINE_LATENCY, &[]);
            Figure {
                value: q.map(|q| q.value * 1e3),
                within: q.map(|q| (q.lower * 1e3, q.upper * 1e3)),
                detail: q.map(|q| format!("p99 {}", q.ms())),
            }
        }
        other => {
            let (value, detail) = plain(e, other);
            Figure {
                value,
                within: None,
                detail,
            }
        }
    }
}

/// Figures that are counts, times and sizes, known exactly.
fn plain(e: &Evidence, m: Measure) -> (Option<f64>, Option<String>) {
    let w = e.w;
    let i1 = &w.idle.1;
    match m {
        // Quantiles: `measure`.
        Measure::PipelineP99Ratio | Measure::CmdAgeP99Ratio | Measure::PipelineP99Ms => (None, None),
        Measure::SafeStops => (Some(e.watch.safe_stops()), None),
        Measure::SafeStopLateTicks => {
            let timeout = e.cfg.actuator.cmd_timeout_ms as f64 / 1e3;
            let tick = 1.0 / e.cfg.actuator.tick_hz;
            let Some(silence) = e.watch.worst_silence() else {
                return (None, Some("the watchdog never tripped".into()));
            };
            (
                Some((silence - timeout) / tick),
                Some(format!(
                    "worst safe stop after {:.1} ms of silence (timeout {:.0} ms, tick {:.0} ms)",
                    silence * 1e3,
                    timeout * 1e3,
                    tick * 1e3
                )),
            )
        }
        Measure::RecoveryS => {
            let r = &e.log.recoveries;
            let detail = r
                .iter()
                .map(|(what, s)| match s {
                    Some(s) => format!("{what}: {s:.2} s"),
                    None => format!("{what}: not recovered"),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let worst = if r.is_empty() || r.iter().any(|(_, s)| s.is_none()) {
                None
            } else {
                r.iter().filter_map(|(_, s)| *s).reduce(f64::max)
            };
            (
                worst,
                Some(if r.is_empty() {
                    "no fault to recover from".into()
                } else {
                    detail
                }),
            )
        }
        Measure::Restarts => (
            Some(delta(
                actor(&w.end, "supervisor"),
                actor(i1, "supervisor"),
                names::ACTOR_RESTARTS,
                &[],
            )),
            Some(format!("{} kill -9 sent", e.log.kills)),
        ),
        Measure::MalformedUncounted => {
            let mut injected = 0.0;
            let mut counted = 0.0;
            let mut per = Vec::new();
            for ((a, topic), n) in &e.log.injected {
                let c: f64 = DropReason::DECODE
                    .iter()
                    .map(|r| {
                        delta(
                            actor(&w.end, a),
                            actor(i1, a),
                            names::DROPPED,
                            &[("actor", a), ("topic", topic), ("reason", r.label())],
                        )
                    })
                    .sum();
                per.push(format!("{a} {topic} {c} of {n}"));
                injected += n;
                counted += c;
            }
            (
                Some((injected - counted).abs()),
                Some(format!("counted by a decode reason: {}", per.join(", "))),
            )
        }
        Measure::RssGrowthMib => rss_growth(e),
        Measure::FloodRateRatio => {
            let worst = e
                .log
                .floods
                .iter()
                .map(|f| f.achieved_rate / f.requested_rate)
                .reduce(f64::min);
            let detail = e
                .log
                .floods
                .iter()
                .map(|f| {
                    format!(
                        "{}: {:.0}/s of {:.0}/s, {} sent",
                        f.topic, f.achieved_rate, f.requested_rate, f.sent
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            (worst, Some(detail))
        }
        Measure::Collisions => (report_sum(e, |r| r.collisions.into()), None),
        Measure::DistanceM => (report_sum(e, |r| r.distance_m), None),
    }
}

/// A figure of the supervisors' run reports, summed over them (`None` without a report).
fn report_sum(e: &Evidence, figure: impl Fn(&RunReport) -> f64) -> Option<f64> {
    e.reports.iter().map(figure).reduce(|a, b| a + b)
}

fn ratio(num: Option<Quantile>, den: Option<Quantile>) -> Figure {
    let show = |q: Option<Quantile>| q.map_or("-".into(), |q| q.ms());
    let detail = Some(format!("fault phase p99 {}, idle p99 {}", show(num), show(den)));
    match (num, den) {
        (Some(n), Some(d)) if d.value > 0.0 && d.lower > 0.0 => Figure {
            value: Some(n.value / d.value),
            within: Some((n.lower / d.upper, n.upper / d.lower)),
            detail,
        },
        (Some(n), Some(d)) if d.value > 0.0 => Figure {
            value: Some(n.value / d.value),
            within: None,
            detail,
        },
        _ => Figure {
            value: None,
            within: None,
            detail,
        },
    }
}

/// Where a scan's way from capture to applied command spends its time, stage by stage, p99
/// idle → fault phase: the figure that says why a pipeline ratio moved. p99s do not add up
/// (each stage's worst scans are not the same scans), but a stage that grew is where to look.
fn stages(w: &Windows) -> String {
    const STAGES: [(&str, &str, &str, &str, &str); 5] = [
        (
            "capture work",
            SENSOR,
            names::HANDLER_DURATION,
            "message",
            "capture",
        ),
        (
            "scan publish -> planner receive",
            PLANNER,
            names::MESSAGE_AGE,
            "topic",
            SCAN,
        ),
        (
            "planner scan handling",
            PLANNER,
            names::HANDLER_DURATION,
            "message",
            SCAN,
        ),
        ("planning", PLANNER, names::HANDLER_DURATION, "message", "plan"),
        (
            "command publish -> actuator receive",
            ACTUATOR,
            names::MESSAGE_AGE,
            "topic",
            CMD,
        ),
    ];
    let (i0, i1) = (&w.idle.0, &w.idle.1);
    let show = |q: Option<Quantile>| q.map_or("-".into(), |q| format!("{:.2}", q.value * 1e3));
    let parts: Vec<String> = STAGES
        .iter()
        .map(|&(what, a, name, label, value)| {
            let filter = [("actor", a), (label, value)];
            let idle = p99(actor(i1, a), actor(i0, a), name, &filter);
            let fault = p99(actor(&w.faulted, a), actor(i1, a), name, &filter);
            format!("{what} {} -> {}", show(idle), show(fault))
        })
        .collect();
    format!("stage p99 ms, idle -> fault: {}", parts.join(", "))
}

fn actor<'a>(s: &'a Snapshot, a: &str) -> &'a [Sample] {
    s.first.get(a).map(Vec::as_slice).unwrap_or(&[])
}

/// Increase of counter `name` between two scrapes, per series; a series that went down was
/// reset by a restart and counts from zero (as PromQL's `increase`).
pub fn delta(after: &[Sample], before: &[Sample], name: &str, filter: &[(&str, &str)]) -> f64 {
    promtext::increase(after, before, name, filter)
        .iter()
        .map(|s| s.value)
        .sum()
}

/// p99 of histogram `name` over the observations made between two scrapes (seconds).
fn p99(after: &[Sample], before: &[Sample], name: &str, filter: &[(&str, &str)]) -> Option<Quantile> {
    let buckets = promtext::increase(after, before, &format!("{name}_bucket"), filter);
    promtext::quantile_in(&buckets, name, filter, 0.99)
}

/// Largest growth of any actor process's RSS between warm-up and the end of the fault
/// phase (the load, not the recovery after it): median of the last ten samples minus median of the first ten after warm-up, for
/// processes that lived through the whole window.
fn rss_growth(e: &Evidence) -> (Option<f64>, Option<String>) {
    let warm = e.scenario.warmup_s.unwrap_or(e.scenario.duration_s / 4.0);
    let mut by: BTreeMap<(String, u32), Vec<f64>> = BTreeMap::new();
    let phase = e.scenario.duration_s;
    for s in e.watch.rss.iter().filter(|s| s.t_s >= warm && s.t_s <= phase) {
        by.entry((s.actor.clone(), s.pid))
            .or_default()
            .push(s.bytes as f64);
    }
    let mut worst: Option<f64> = None;
    let mut parts = Vec::new();
    for ((actor, _), v) in by.iter().filter(|(_, v)| v.len() >= 2) {
        let k = (v.len() / 3).clamp(1, 10);
        let growth = (median(&v[v.len() - k..]) - median(&v[..k])) / (1024.0 * 1024.0);
        parts.push(format!("{actor} {:+.2} MiB over {} samples", growth, v.len()));
        worst = Some(worst.map_or(growth, |w| w.max(growth)));
    }
    let detail = if parts.is_empty() {
        "too few RSS samples after warm-up".to_owned()
    } else {
        parts.join("; ")
    };
    (worst, Some(detail))
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// published = received + dropped (by reason, before the handler) + queued, per topic and
/// subscriber, over the accounting window. Floods count as publishers of the sensor's scan.
fn accounting(e: &Evidence) -> Vec<Outcome> {
    let w = e.w;
    let from = w.accounting_from.as_ref().unwrap_or(&w.idle.1);
    balance(
        from,
        &w.end,
        w.accounting_from.is_none(),
        e.log,
        e.scenario.accounting_tolerance,
    )
}

/// The accounting of every flow between two snapshots (`floods_inside`: the floods' scans
/// were sent inside the window, so they count as published).
pub fn balance(
    from: &Snapshot,
    to: &Snapshot,
    floods_inside: bool,
    log: &FaultLog,
    tol: f64,
) -> Vec<Outcome> {
    let flows: Vec<_> = Role::flows()
        .map(|f| (f.topic, f.from.name(), f.to.name()))
        .collect();
    flows
        .iter()
        .filter(|(_, p, s)| to.second.contains_key(p) && to.first.contains_key(s))
        .map(|&(topic, publisher, subscriber)| {
            let second = |s: &'_ Snapshot| s.second.get(publisher).cloned().unwrap_or_default();
            let mut published = delta(&second(to), &second(from), names::PUBLISHED, &[("topic", topic)]);
            if topic == SCAN && floods_inside {
                published += log
                    .floods
                    .iter()
                    .filter(|f| f.topic == SCAN)
                    .map(|f| f.sent)
                    .sum::<f64>();
            }
            let (end, start) = (actor(to, subscriber), actor(from, subscriber));
            let mine = [("actor", subscriber), ("topic", topic)];
            let received = delta(end, start, names::RECEIVED, &mine);
            let mut dropped = 0.0;
            let mut reasons = Vec::new();
            for r in DropReason::BEFORE_HANDLER.map(DropReason::label) {
                let d = delta(
                    end,
                    start,
                    names::DROPPED,
                    &[("actor", subscriber), ("topic", topic), ("reason", r)],
                );
                if d > 0.0 {
                    reasons.push(format!("{r} {d}"));
                }
                dropped += d;
            }
            let depth = |s: &[Sample]| promtext::sum(s, names::MAILBOX_DEPTH, &[("actor", subscriber)]);
            let queued = depth(end) - depth(start);
            let imbalance = published - received - dropped - queued;
            Outcome {
                name: format!("accounting closes: {topic} ({publisher} -> {subscriber})"),
                target: format!("|published - received - dropped - queued| <= {tol}"),
                measured: Some(imbalance),
                passed: imbalance.abs() <= tol,
                detail: Some(format!(
                    "published {published}, received {received}, dropped {dropped} ({}), queued {queued:+}",
                    if reasons.is_empty() {
                        "none".into()
                    } else {
                        reasons.join(", ")
                    }
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(text: &str) -> Vec<Sample> {
        promtext::parse(text).expect("parse")
    }

    #[test]
    fn delta_treats_a_decrease_as_a_restart() {
        let before = samples("c_total{a=\"1\"} 10\nc_total{a=\"2\"} 5\n");
        let after = samples("c_total{a=\"1\"} 15\nc_total{a=\"2\"} 2\nc_total{a=\"3\"} 1\n");
        assert_eq!(delta(&after, &before, "c_total", &[]), 5.0 + 2.0 + 1.0);
        assert_eq!(delta(&after, &before, "c_total", &[("a", "1")]), 5.0);
    }

    #[test]
    fn p99_is_taken_over_the_window_only() {
        // 100 fast observations before the window, 100 slow ones inside it.
        let before =
            samples("h_bucket{le=\"0.01\"} 100\nh_bucket{le=\"1\"} 100\nh_bucket{le=\"+Inf\"} 100\n");
        let after = samples("h_bucket{le=\"0.01\"} 100\nh_bucket{le=\"1\"} 200\nh_bucket{le=\"+Inf\"} 200\n");
        let q = p99(&after, &before, "h", &[]).expect("p99");
        assert!(q.value > 0.9, "{q:?}");
        assert_eq!((q.lower, q.upper), (0.01, 1.0));
    }

    fn q(value: f64, lower: f64, upper: f64) -> Option<Quantile> {
        Some(Quantile { value, lower, upper })
    }

    #[test]
    fn a_ratio_is_failed_only_when_its_whole_bucket_range_is_beyond_the_limit() {
        // flood-10x's old verdict: 4.99 ms against 2.46 ms, read from the 2.5–5 ms and
        // 1–2.5 ms buckets: 2.03x, but anything from 1x to 5x fits the same buckets.
        let f = ratio(q(4.99e-3, 2.5e-3, 5e-3), q(2.46e-3, 1e-3, 2.5e-3));
        assert!((f.value.unwrap() - 2.028).abs() < 1e-3);
        assert_eq!(verdict(&f, None, Some(2.0)), (true, false));
        // Fine buckets that put it beyond doubt: 2.6–3.1 over 1.0–1.19.
        let f = ratio(q(2.9e-3, 2.6e-3, 3.1e-3), q(1.1e-3, 1.0e-3, 1.19e-3));
        assert_eq!(verdict(&f, None, Some(2.0)), (false, false));
        // Well within.
        let f = ratio(q(1.5e-3, 1.41e-3, 1.68e-3), q(1.1e-3, 1.0e-3, 1.19e-3));
        assert_eq!(verdict(&f, None, Some(2.0)), (true, true));
        // No idle figure, no verdict.
        assert_eq!(
            verdict(&ratio(q(1e-3, 1e-3, 2e-3), None), None, Some(2.0)),
            (false, false)
        );
    }
}
