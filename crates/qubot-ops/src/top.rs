//! `qubot top`'s views from the processes' `/metrics` pages: one row per actor (rates from two
//! scrapes, handler latency, mailbox, restarts, drops by reason), or with `--fleet` one row per
//! robot. The binary refreshes them.

use std::{collections::BTreeMap, fmt::Write as _, net::SocketAddr};

use qubot_msg::{metric_names as names, topic, Role};

use crate::promtext::{self, Sample};

/// Commands the actuator received, and scans the planner received: the loop's two rates.
const APPLIED: [(&str, &str); 2] = [("actor", Role::Actuator.name()), ("topic", topic::CMD.name())];
const PLANNED: [(&str, &str); 2] = [("actor", Role::Planner.name()), ("topic", topic::SCAN.name())];

/// Every endpoint's page, or `None` for one that did not answer.
pub type Scrapes = Vec<(SocketAddr, Option<Vec<Sample>>)>;

pub fn scrape_all(endpoints: &[SocketAddr]) -> Scrapes {
    endpoints
        .iter()
        .map(|e| {
            (
                *e,
                promtext::scrape(&e.to_string()).and_then(|t| promtext::parse(&t).ok()),
            )
        })
        .collect()
}

#[derive(Default)]
struct Row {
    in_total: f64,
    out_total: f64,
    in_prev: f64,
    out_prev: f64,
    depth: f64,
    capacity: f64,
    drops: BTreeMap<String, f64>,
    restarts: f64,
    p50: Option<f64>,
    p99: Option<f64>,
}

/// The view of `now`, with rates against `prev` taken `dt` seconds earlier.
pub fn render(
    endpoints: &[SocketAddr],
    prev: &[(SocketAddr, Option<Vec<Sample>>)],
    now: &[(SocketAddr, Option<Vec<Sample>>)],
    dt: f64,
) -> String {
    let all_now: Vec<Sample> = now.iter().filter_map(|(_, s)| s.clone()).flatten().collect();
    let all_prev: Vec<Sample> = prev.iter().filter_map(|(_, s)| s.clone()).flatten().collect();
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for s in &all_now {
        let Some(actor) = s.label("actor") else { continue };
        let row = rows.entry(actor.to_owned()).or_default();
        match s.name.as_str() {
            names::RECEIVED => row.in_total += s.value,
            names::PUBLISHED => row.out_total += s.value,
            names::MAILBOX_DEPTH => row.depth += s.value,
            names::MAILBOX_CAPACITY => row.capacity += s.value,
            names::ACTOR_RESTARTS => row.restarts += s.value,
            names::DROPPED if s.value > 0.0 => {
                *row.drops
                    .entry(s.label("reason").unwrap_or("?").to_owned())
                    .or_default() += s.value;
            }
            _ => {}
        }
    }
    for s in &all_prev {
        let Some(row) = s.label("actor").and_then(|a| rows.get_mut(a)) else {
            continue;
        };
        match s.name.as_str() {
            names::RECEIVED => row.in_prev += s.value,
            names::PUBLISHED => row.out_prev += s.value,
            _ => {}
        }
    }
    for (actor, row) in rows.iter_mut() {
        let f = [("actor", actor.as_str())];
        row.p50 = promtext::quantile(&all_now, names::HANDLER_DURATION, &f, 0.5);
        row.p99 = promtext::quantile(&all_now, names::HANDLER_DURATION, &f, 0.99);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<11} {:>9} {:>9} {:>10} {:>10} {:>9} {:>8}  drops (total by reason)",
        "ACTOR", "IN/s", "OUT/s", "HANDLE p50", "HANDLE p99", "MAILBOX", "RESTARTS"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |s| format!("{:.2}ms", s * 1e3));
    for (actor, r) in &rows {
        let drops: Vec<String> = r.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "{:<11} {:>9.1} {:>9.1} {:>10} {:>10} {:>9} {:>8}  {}",
            actor,
            ((r.in_total - r.in_prev) / dt).max(0.0),
            ((r.out_total - r.out_prev) / dt).max(0.0),
            ms(r.p50),
            ms(r.p99),
            format!("{}/{}", r.depth, r.capacity),
            r.restarts,
            if drops.is_empty() {
                "-".to_owned()
            } else {
                drops.join(" ")
            },
        );
    }
    let p99 = promtext::quantile(&all_now, names::PIPELINE_LATENCY, &[], 0.99);
    let stops = promtext::sum(&all_now, names::SAFE_STOPS, &[]);
    let _ = writeln!(out, "pipeline latency p99 {}   safe stops {stops}", ms(p99));
    note_unreachable(&mut out, endpoints, now);
    out
}

/// One robot's figures in the fleet view.
#[derive(Default)]
struct RobotRow {
    processes: usize,
    applied: f64,
    applied_prev: f64,
    scans: f64,
    scans_prev: f64,
    stops: f64,
    restarts: f64,
    drops: f64,
    latency: Vec<Sample>,
}

/// The fleet view: one row per robot (the `robot` label of the series), with its loop rate
/// (commands applied at its actuator per second), scan rate at its planner, pipeline latency
/// p50/p99, safe stops, restarts and drops; then the endpoints that did not answer.
pub fn render_fleet(
    endpoints: &[SocketAddr],
    prev: &[(SocketAddr, Option<Vec<Sample>>)],
    now: &[(SocketAddr, Option<Vec<Sample>>)],
    dt: f64,
) -> String {
    let mut rows: BTreeMap<String, RobotRow> = BTreeMap::new();
    let robot_of = |page: &[Sample]| page.iter().find_map(|s| s.label("robot")).map(str::to_owned);
    for (_, page) in now {
        let Some(page) = page else { continue };
        let Some(robot) = robot_of(page) else { continue };
        let row = rows.entry(robot).or_default();
        row.processes += 1;
        row.applied += promtext::sum(page, names::RECEIVED, &APPLIED);
        row.scans += promtext::sum(page, names::RECEIVED, &PLANNED);
        row.stops += promtext::sum(page, names::SAFE_STOPS, &[]);
        row.restarts += promtext::sum(page, names::ACTOR_RESTARTS, &[]);
        row.drops += promtext::sum(page, names::DROPPED, &[]);
        row.latency.extend(
            page.iter()
                .filter(|s| s.name.starts_with(names::PIPELINE_LATENCY))
                .cloned(),
        );
    }
    for (_, page) in prev {
        let Some(page) = page else { continue };
        let Some(row) = robot_of(page).and_then(|r| rows.get_mut(&r)) else {
            continue;
        };
        row.applied_prev += promtext::sum(page, names::RECEIVED, &APPLIED);
        row.scans_prev += promtext::sum(page, names::RECEIVED, &PLANNED);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>5} {:>8} {:>8} {:>11} {:>11} {:>10} {:>8} {:>8}",
        "ROBOT",
        "PROCS",
        "LOOP Hz",
        "SCAN Hz",
        "LATENCY p50",
        "LATENCY p99",
        "SAFE STOPS",
        "RESTARTS",
        "DROPS"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |s| format!("{:.2}ms", s * 1e3));
    for (robot, r) in &rows {
        let _ = writeln!(
            out,
            "{:<16} {:>5} {:>8.1} {:>8.1} {:>11} {:>11} {:>10} {:>8} {:>8}",
            robot,
            r.processes,
            ((r.applied - r.applied_prev) / dt).max(0.0),
            ((r.scans - r.scans_prev) / dt).max(0.0),
            ms(promtext::quantile(&r.latency, names::PIPELINE_LATENCY, &[], 0.5)),
            ms(promtext::quantile(&r.latency, names::PIPELINE_LATENCY, &[], 0.99)),
            r.stops,
            r.restarts,
            r.drops,
        );
    }
    note_unreachable(&mut out, endpoints, now);
    out
}

/// The endpoints whose page did not come, as the last line of a view.
fn note_unreachable(out: &mut String, endpoints: &[SocketAddr], now: &[(SocketAddr, Option<Vec<Sample>>)]) {
    let down: Vec<String> = endpoints
        .iter()
        .zip(now)
        .filter(|(_, (_, s))| s.is_none())
        .map(|(e, _)| e.to_string())
        .collect();
    if !down.is_empty() {
        let _ = writeln!(out, "unreachable: {}", down.join(", "));
    }
}
