//! `qubot top`'s view: one row per actor (rates from two scrapes, handler latency, mailbox,
//! restarts, drops by reason) from the processes' `/metrics` pages. The binary refreshes it.

use std::{collections::BTreeMap, fmt::Write as _, net::SocketAddr};

use qubot_msg::metric_names as names;

use crate::promtext::{self, Sample};

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
    let down: Vec<String> = endpoints
        .iter()
        .zip(now)
        .filter(|(_, (_, s))| s.is_none())
        .map(|(e, _)| e.to_string())
        .collect();
    if !down.is_empty() {
        let _ = writeln!(out, "unreachable: {}", down.join(", "));
    }
    out
}
