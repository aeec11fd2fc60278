//! `qubot-bench jitter`: the control loop's timeliness, at 20 Hz and 100 Hz, idle, under a 10×
//! scan flood and under a CPU hog (a busy process on every core), the last two again with the
//! realtime profile. Each figure twice: from the actors' own histograms
//! (`qubot_tick_period_seconds`, `qubot_tick_lateness_seconds`) and from an independent
//! subscriber (`qubot listen --print`, the producers' capture stamps as read off the wire).

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use nix::sys::signal::Signal;
use qubot_msg::metric_names::{TICKS_MISSED, TICK_LATENESS, TICK_PERIOD};
use qubot_ops::{
    process::{free_port_run, Child},
    promtext::{self, Quantile, Sample},
};
use serde::Serialize;

use crate::report::{git_rev, Machine};
use crate::scale::{spawn, wait};
use crate::stats::{quantile, sorted};

pub struct Options {
    pub rates: Vec<u32>,
    /// The conditions to run, in the order of [`Condition::ALL`].
    pub conditions: Vec<Condition>,
    pub warmup_s: f64,
    pub window_s: f64,
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    Idle,
    Flood,
    Hog,
    FloodRt,
    HogRt,
}

impl Condition {
    pub const ALL: [Condition; 5] = [
        Condition::Idle,
        Condition::Flood,
        Condition::Hog,
        Condition::FloodRt,
        Condition::HogRt,
    ];
    fn name(self) -> &'static str {
        match self {
            Condition::Idle => "idle",
            Condition::Flood => "10x scan flood",
            Condition::Hog => "CPU hog",
            Condition::FloodRt => "10x scan flood, realtime",
            Condition::HogRt => "CPU hog, realtime",
        }
    }
    fn realtime(self) -> bool {
        matches!(self, Condition::FloodRt | Condition::HogRt)
    }
    fn flood(self) -> bool {
        matches!(self, Condition::Flood | Condition::FloodRt)
    }
    fn hog(self) -> bool {
        matches!(self, Condition::Hog | Condition::HogRt)
    }
    /// The targets for lateness p99 and the period's p99 deviation, ms; `None`: none
    /// set (the CPU hog without the realtime profile is reported, not judged).
    fn target_ms(self) -> Option<f64> {
        match self {
            Condition::Idle => Some(0.5),
            Condition::Flood | Condition::FloodRt | Condition::HogRt => Some(1.0),
            Condition::Hog => None,
        }
    }
}

/// One timer's figures in one window.
#[derive(Debug, Serialize)]
pub struct Timing {
    pub nominal_ms: f64,
    /// The actor's histograms: period p50/p99 (bucket edges beside), lateness p99, missed.
    pub hist_period_p50_ms: Option<f64>,
    pub hist_period_p99_ms: Option<f64>,
    pub hist_lateness_p99_ms: Option<f64>,
    pub hist_lateness_p99_bucket_ms: Option<(f64, f64)>,
    pub missed: f64,
    /// The subscriber: intervals between consecutive capture stamps.
    pub sub_period_p50_ms: f64,
    pub sub_period_p99_ms: f64,
    pub sub_period_max_ms: f64,
    /// p99 of |interval − nominal|.
    pub sub_deviation_p99_ms: f64,
    pub samples: usize,
}

#[derive(Debug, Serialize)]
pub struct Cell {
    pub rate_hz: u32,
    pub condition: Condition,
    pub sensor: Timing,
    pub actuator: Timing,
    /// Whether the realtime profile was granted (no refusal counted).
    pub realtime_granted: Option<bool>,
    pub load_avg: f64,
}

#[derive(Debug, Serialize)]
pub struct JitterReport {
    pub machine: Machine,
    pub git_rev: String,
    pub warmup_s: f64,
    pub window_s: f64,
    pub cells: Vec<Cell>,
}

pub fn run(o: &Options) -> anyhow::Result<JitterReport> {
    let qubot = crate::spawn::qubot_beside()?;
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let mut cells = Vec::new();
    for &rate in &o.rates {
        for c in Condition::ALL.into_iter().filter(|c| o.conditions.contains(c)) {
            eprintln!("jitter: {rate} Hz, {}", c.name());
            cells.push(cell(&qubot, o, rate, c).with_context(|| format!("{rate} Hz, {}", c.name()))?);
        }
    }
    let report = JitterReport {
        machine: Machine::read(),
        git_rev: git_rev(),
        warmup_s: o.warmup_s,
        window_s: o.window_s,
        cells,
    };
    std::fs::write(o.out.join("jitter.json"), serde_json::to_string_pretty(&report)?)?;
    Ok(report)
}

/// The actuator's tick rate for a sensor rate: 50 Hz at the default 20, 200 Hz at 100.
fn tick_hz(rate: u32) -> f64 {
    if rate >= 100 {
        200.0
    } else {
        50.0
    }
}

fn scrape(port: u16) -> Option<Vec<Sample>> {
    promtext::parse(&promtext::scrape(&format!("127.0.0.1:{port}"))?).ok()
}

fn cell(qubot: &Path, o: &Options, rate: u32, c: Condition) -> anyhow::Result<Cell> {
    let base = free_port_run(5)?;
    let hub = format!("tcp/127.0.0.1:{}", base + 4);
    let cfg = o
        .out
        .join(format!("node-{rate}-{}.toml", c.name().replace([' ', ','], "")));
    let mut text = format!(
        "[sensor]\nrate_hz = {rate}.0\n[actuator]\ntick_hz = {}\n",
        tick_hz(rate)
    );
    if c.realtime() {
        text.push_str("[realtime]\nenabled = true\npriority = 80\nlock_memory = true\n");
    }
    std::fs::write(&cfg, text)?;
    let span = o.warmup_s + o.window_s + 60.0;
    let s = |v: &str| v.to_string();
    let mut up = spawn(
        qubot,
        "qubot up",
        &[
            s("up"),
            s("--config"),
            cfg.display().to_string(),
            s("--world"),
            s("corridor"),
            s("--hub"),
            hub.clone(),
            s("--metrics-port-base"),
            base.to_string(),
            s("--timeout"),
            span.to_string(),
        ],
    )?;
    let (sensor, actuator) = (base + 1, base + 3);
    wait("the loop closing", Duration::from_secs(60), || {
        let m = scrape(actuator)?;
        (promtext::sum(&m, qubot_msg::metric_names::RECEIVED, &[("topic", "cmd")]) >= 20.0).then_some(())
    })?;
    let listen = |key: &str, kind: &str| {
        spawn(
            qubot,
            "qubot listen",
            &[
                s("listen"),
                s("--connect"),
                hub.clone(),
                s("--key"),
                s(key),
                s("--kind"),
                s(kind),
                s("--mailbox"),
                s("4096"),
                s("--print"),
            ],
        )
    };
    let mut scans = listen("qubot/*/sensor/*/scan", "scan")?;
    let mut states = listen("qubot/*/actuator/*/state", "state")?;
    // The producers' ids, learnt before any flood (whose scans the listener hears too).
    let first = |p: &Child| -> anyhow::Result<String> {
        let line = p
            .line(Duration::from_secs(10))
            .context("the listener heard nothing")?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        Ok(v["source"].as_str().unwrap_or_default().to_owned())
    };
    let (sensor_id, actuator_id) = (first(&scans)?, first(&states)?);
    let window = Duration::from_secs_f64(o.window_s);
    let mut load: Vec<Child> = Vec::new();
    let bounded = (o.warmup_s + o.window_s + 5.0).ceil() as u64;
    if c.flood() {
        let r = 10 * rate;
        load.push(spawn(
            qubot,
            "qubot flood",
            &[
                s("flood"),
                s("--connect"),
                hub.clone(),
                s("--rate"),
                r.to_string(),
                s("--size"),
                s("2880"),
                s("--duration"),
                bounded.to_string(),
                s("--count"),
                (u64::from(r) * bounded).to_string(),
            ],
        )?);
    }
    if c.hog() {
        // A busy process per core, each ending on its own deadline (`qubot-bench hog`), so
        // that nothing outlives the cell however this one ends.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let me = std::env::current_exe().context("locating qubot-bench")?;
        for _ in 0..cores {
            load.push(spawn(
                &me,
                "cpu hog",
                &[s("hog"), s("--seconds"), bounded.to_string()],
            )?);
        }
    }
    std::thread::sleep(Duration::from_secs_f64(o.warmup_s));
    drain(&scans);
    drain(&states);
    let before = (scrape(sensor), scrape(actuator));
    let t0 = Instant::now();
    let mut scan_stamps = Vec::new();
    let mut state_stamps = Vec::new();
    while t0.elapsed() < window {
        scan_stamps.extend(read_stamps(&scans, &sensor_id, Duration::from_millis(50)));
        state_stamps.extend(read_stamps(&states, &actuator_id, Duration::from_millis(5)));
    }
    let after = (scrape(sensor), scrape(actuator));
    let load_avg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN);
    for p in load.iter_mut().chain([&mut scans, &mut states]) {
        p.kill();
    }
    let refused = after
        .0
        .as_ref()
        .map(|m| promtext::sum(m, qubot_msg::metric_names::REALTIME_REFUSED, &[]));
    let _ = up.stop(Signal::SIGINT, Duration::from_secs(20));
    let timing = |b: &Option<Vec<Sample>>,
                  a: &Option<Vec<Sample>>,
                  actor: &str,
                  timer: &str,
                  stamps: &[i64],
                  hz: f64| { figures(b.as_deref(), a.as_deref(), actor, timer, stamps, hz) };
    Ok(Cell {
        rate_hz: rate,
        condition: c,
        sensor: timing(
            &before.0,
            &after.0,
            "sensor",
            "capture",
            &scan_stamps,
            f64::from(rate),
        ),
        actuator: timing(
            &before.1,
            &after.1,
            "actuator",
            "control",
            &state_stamps,
            tick_hz(rate),
        ),
        realtime_granted: c.realtime().then(|| refused == Some(0.0)),
        load_avg,
    })
}

/// `qubot-bench hog`: one core busy until `seconds` have passed.
pub fn hog(seconds: u64) {
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut x = 0u64;
    while Instant::now() < end {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
}

/// Lines already printed, thrown away (the warm-up's).
fn drain(p: &Child) {
    while p.line(Duration::ZERO).is_ok() {}
}

/// Capture stamps (ns) of `source`'s messages among the lines printed within `wait`.
fn read_stamps(p: &Child, source: &str, wait: Duration) -> Vec<i64> {
    let mut out = Vec::new();
    let mut budget = wait;
    while let Ok(line) = p.line(budget) {
        budget = Duration::ZERO;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["source"].as_str() == Some(source) {
            out.extend(v["origin_ns"].as_i64());
        }
    }
    out
}

fn figures(
    before: Option<&[Sample]>,
    after: Option<&[Sample]>,
    actor: &str,
    timer: &str,
    stamps: &[i64],
    hz: f64,
) -> Timing {
    let filter = [("actor", actor), ("timer", timer)];
    let window = match (before, after) {
        (Some(b), Some(a)) => promtext::window(b, a),
        _ => Vec::new(),
    };
    let q = |name: &str, p: f64| promtext::quantile_in(&window, name, &filter, p);
    let ms = |q: Option<Quantile>| q.map(|q| q.value * 1e3);
    let late = q(TICK_LATENESS, 0.99);
    let nominal_ms = 1e3 / hz;
    let intervals = sorted(stamps.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e6).collect());
    let deviations = sorted(intervals.iter().map(|i| (i - nominal_ms).abs()).collect());
    let at = |v: &[f64], p: f64| if v.is_empty() { f64::NAN } else { quantile(v, p) };
    Timing {
        nominal_ms,
        hist_period_p50_ms: ms(q(TICK_PERIOD, 0.5)),
        hist_period_p99_ms: ms(q(TICK_PERIOD, 0.99)),
        hist_lateness_p99_ms: ms(late),
        hist_lateness_p99_bucket_ms: late.map(|q| (q.lower * 1e3, q.upper * 1e3)),
        missed: promtext::sum(&window, TICKS_MISSED, &filter),
        sub_period_p50_ms: at(&intervals, 0.5),
        sub_period_p99_ms: at(&intervals, 0.99),
        sub_period_max_ms: intervals.last().copied().unwrap_or(f64::NAN),
        sub_deviation_p99_ms: at(&deviations, 0.99),
        samples: intervals.len(),
    }
}

/// The report as a markdown table, each cell judged against the targets.
pub fn table(r: &JitterReport) -> String {
    let mut out = String::from(
        "| rate | condition | timer | period p50 ms (subscriber / histogram) | p50 vs nominal | period p99 / max ms (subscriber) | deviation p99 ms | lateness p99 ms (bucket) | missed | target | met |\n\
         | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
    for c in &r.cells {
        for (name, t) in [("sensor", &c.sensor), ("actuator", &c.actuator)] {
            let drift = (t.sub_period_p50_ms - t.nominal_ms) / t.nominal_ms * 100.0;
            let target = c.condition.target_ms();
            let met = match target {
                None => "(reported)".to_string(),
                Some(limit) => {
                    let late_ok = t.hist_lateness_p99_bucket_ms.is_some_and(|(lo, _)| lo <= limit);
                    let ok = drift.abs() <= 0.1 && late_ok && t.sub_deviation_p99_ms <= limit;
                    if ok { "yes" } else { "**no**" }.to_string()
                }
            };
            let rt = match c.realtime_granted {
                Some(false) => " (profile refused)",
                _ => "",
            };
            out.push_str(&format!(
                "| {} Hz | {}{rt} | {name} {:.0} Hz | {:.3} / {} | {:+.3} % | {:.3} / {:.3} | {:.3} | {} ({}) | {} | {} | {met} |\n",
                c.rate_hz,
                c.condition.name(),
                1e3 / t.nominal_ms,
                t.sub_period_p50_ms,
                f(t.hist_period_p50_ms),
                drift,
                t.sub_period_p99_ms,
                t.sub_period_max_ms,
                t.sub_deviation_p99_ms,
                f(t.hist_lateness_p99_ms),
                t.hist_lateness_p99_bucket_ms
                    .map_or("-".into(), |(lo, hi)| format!("{lo:.3}–{hi:.3}")),
                t.missed,
                target.map_or("-".into(), |t| format!("≤ {t}")),
            ));
        }
    }
    out
}
