//! `qubot top`'s views from the processes' `/metrics` pages: one row per actor (rates from two
//! scrapes, handler latency, mailbox, periodic ticks, restarts, drops by reason), or with
//! `--fleet` one row per robot and a line per site router. The binary refreshes them.
//!
//! The tick columns are the actor's periodic timers (the sensor's capture, the actuator's
//! control), all of its timers together: `LATE p99` is how late its ticks ran after their
//! deadlines over the refresh interval (from the increase of the lateness histogram's bucket
//! counters between the two scrapes), shown as the upper edge of the bucket the p99 lies in,
//! `≤0.12ms`: the buckets are four per octave, so that bound is what the histogram knows, the
//! p99 lying up to 19 % below it. `MISSED` is the ticks skipped since the process started,
//! `(+n)` of them in the interval. An actor without timers shows `-` in both.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    net::SocketAddr,
};

use qubot_msg::{metric_names as names, topic, Role};

use crate::promtext::{self, Quantile, Sample};

/// Commands the actuator received, and scans the planner received: the loop's two rates.
const APPLIED: [(&str, &str); 2] = [("actor", Role::Actuator.name()), ("topic", topic::CMD.name())];
const PLANNED: [(&str, &str); 2] = [("actor", Role::Planner.name()), ("topic", topic::SCAN.name())];

/// Series only a site router exports. Its global `robot` label is the site, so a page with any
/// of them is the router's and must not count as a robot.
const ROUTER_SERIES: [&str; 6] = [
    names::ROUTER_SESSIONS,
    names::ROUTER_LINKS,
    names::ROUTER_BOARDS,
    names::ROUTER_EXPECTED_BOARDS,
    names::ROUTER_IO_BYTES,
    names::ROUTER_DENIED,
];

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

/// An actor's periodic ticks as of two scrapes of its page(s).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ticks {
    /// Ticks skipped since the process (each of its processes) started.
    pub missed_total: f64,
    /// What happened between the two scrapes; `None` when a page of the actor was missing
    /// from the earlier one.
    pub interval: Option<TickInterval>,
}

/// An actor's ticks between two scrapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickInterval {
    /// p99 of how late its ticks ran, with its bucket; `None` when no tick ran.
    pub lateness_p99: Option<Quantile>,
    /// Ticks skipped.
    pub missed: f64,
}

/// The ticks of every actor with a periodic timer on the pages of `now` (one with a
/// `qubot_tick_lateness_seconds` or `qubot_ticks_missed_total` series), against the same
/// endpoints' pages in `prev`. An actor on several pages (robots of a fleet) adds them up.
pub fn ticks(
    prev: &[(SocketAddr, Option<Vec<Sample>>)],
    now: &[(SocketAddr, Option<Vec<Sample>>)],
) -> BTreeMap<String, Ticks> {
    /// One actor's figures over its pages.
    #[derive(Default)]
    struct Acc {
        /// The lateness buckets' increase over the interval, every page's.
        lateness: Vec<Sample>,
        missed_total: f64,
        missed_interval: f64,
        /// A page of the actor had no earlier scrape: no interval.
        unpaired: bool,
    }
    let lateness_bucket = format!("{}_bucket", names::TICK_LATENESS);
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for (endpoint, page) in now {
        let Some(page) = page else { continue };
        let before = prev
            .iter()
            .find(|(e, _)| e == endpoint)
            .and_then(|(_, p)| p.as_deref());
        let actors: BTreeSet<&str> = page
            .iter()
            .filter(|s| s.name == lateness_bucket || s.name == names::TICKS_MISSED)
            .filter_map(|s| s.label("actor"))
            .collect();
        for actor in actors {
            let f = [("actor", actor)];
            let a = acc.entry(actor.to_owned()).or_default();
            a.missed_total += promtext::sum(page, names::TICKS_MISSED, &f);
            let Some(before) = before else {
                a.unpaired = true;
                continue;
            };
            a.missed_interval += promtext::increase(page, before, names::TICKS_MISSED, &f)
                .iter()
                .map(|s| s.value)
                .sum::<f64>();
            a.lateness
                .extend(promtext::increase(page, before, &lateness_bucket, &f));
        }
    }
    acc.into_iter()
        .map(|(actor, a)| {
            let interval = (!a.unpaired).then(|| TickInterval {
                lateness_p99: promtext::quantile_in(&a.lateness, names::TICK_LATENESS, &[], 0.99),
                missed: a.missed_interval,
            });
            let t = Ticks {
                missed_total: a.missed_total,
                interval,
            };
            (actor, t)
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
    let ticks = ticks(prev, now);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<11} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>10} {:>8}  drops (total by reason)",
        "ACTOR", "IN/s", "OUT/s", "HANDLE p50", "HANDLE p99", "MAILBOX", "LATE p99", "MISSED", "RESTARTS"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |s| format!("{:.2}ms", s * 1e3));
    for (actor, r) in &rows {
        let drops: Vec<String> = r.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let (late, missed) = tick_columns(ticks.get(actor));
        let _ = writeln!(
            out,
            "{:<11} {:>9.1} {:>9.1} {:>10} {:>10} {:>9} {:>9} {:>10} {:>8}  {}",
            actor,
            ((r.in_total - r.in_prev) / dt).max(0.0),
            ((r.out_total - r.out_prev) / dt).max(0.0),
            ms(r.p50),
            ms(r.p99),
            format!("{}/{}", r.depth, r.capacity),
            late,
            missed,
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

/// The `LATE p99` and `MISSED` cells of an actor's row: `-` for one without timers, `no ticks`
/// when none ran in the interval, the lateness p99 as the bucket's upper edge (`>` its lower
/// edge above the last finite one), the missed ticks as `total(+interval)`.
fn tick_columns(t: Option<&Ticks>) -> (String, String) {
    let Some(t) = t else {
        return ("-".into(), "-".into());
    };
    let late = match t.interval.as_ref().map(|i| i.lateness_p99) {
        None => "-".into(),
        Some(None) => "no ticks".into(),
        Some(Some(q)) if q.upper.is_finite() => format!("≤{}", duration(q.upper)),
        Some(Some(q)) => format!(">{}", duration(q.lower)),
    };
    let missed = match &t.interval {
        Some(i) => format!("{}(+{})", t.missed_total, i.missed),
        None => t.missed_total.to_string(),
    };
    (late, missed)
}

/// A bucket edge (seconds, three significant digits) in µs, ms or s, without losing a digit.
fn duration(s: f64) -> String {
    let (v, unit) = match s {
        s if s < 1e-3 => (s * 1e6, "µs"),
        s if s < 1.0 => (s * 1e3, "ms"),
        s => (s, "s"),
    };
    let decimals = match v {
        v if v < 10.0 => 2,
        v if v < 100.0 => 1,
        _ => 0,
    };
    format!("{v:.decimals$}{unit}")
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
/// p50/p99, safe stops, restarts and drops; then a line per site router ([`router_line`]);
/// then the endpoints that did not answer.
pub fn render_fleet(
    endpoints: &[SocketAddr],
    prev: &[(SocketAddr, Option<Vec<Sample>>)],
    now: &[(SocketAddr, Option<Vec<Sample>>)],
    dt: f64,
) -> String {
    let mut rows: BTreeMap<String, RobotRow> = BTreeMap::new();
    let robot_of = |page: &[Sample]| page.iter().find_map(|s| s.label("robot")).map(str::to_owned);
    for (_, page) in now {
        let Some(page) = page.as_deref().filter(|p| !is_router(p)) else {
            continue;
        };
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
        let Some(page) = page.as_deref().filter(|p| !is_router(p)) else {
            continue;
        };
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
    for (endpoint, page) in now {
        let Some(page) = page.as_deref().filter(|p| is_router(p)) else {
            continue;
        };
        let before = prev
            .iter()
            .find(|(e, _)| e == endpoint)
            .and_then(|(_, p)| p.as_deref());
        let _ = writeln!(out, "{}", router_line(*endpoint, page, before, dt));
    }
    note_unreachable(&mut out, endpoints, now);
    out
}

fn is_router(page: &[Sample]) -> bool {
    page.iter().any(|s| ROUTER_SERIES.contains(&s.name.as_str()))
}

/// A site router's line of the fleet view, from its page and (for the rates) its page at the
/// earlier scrape, `dt` seconds before:
/// `ROUTER <host>  sessions peer=4 router=0  links 4  robots 1/2 boards r1=2/2 r2=0/2  read
/// 1.2kB/s written 3.4kB/s  denied 3 (0.50/s) put/ingress=3`. `robots` counts the robots the
/// router expects whose every expected board holds a link; a rate is `-` without an earlier
/// page; the denials by action/flow follow only when there are any.
fn router_line(endpoint: SocketAddr, page: &[Sample], before: Option<&[Sample]>, dt: f64) -> String {
    let name = page
        .iter()
        .find_map(|s| s.label("host"))
        .map_or_else(|| endpoint.to_string(), str::to_owned);
    let of = |metric: &'static str| page.iter().filter(move |s| s.name == metric);
    // Sorted by label, so the line does not move with the exporter's order.
    let mut sessions: BTreeMap<&str, f64> = BTreeMap::new();
    for s in of(names::ROUTER_SESSIONS) {
        *sessions.entry(s.label("kind").unwrap_or("?")).or_default() += s.value;
    }
    let mut boards: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for s in page {
        let Some(robot) = s.label(names::FLEET_ROBOT_LABEL) else {
            continue;
        };
        match s.name.as_str() {
            names::ROUTER_BOARDS => boards.entry(robot).or_default().0 += s.value,
            names::ROUTER_EXPECTED_BOARDS => boards.entry(robot).or_default().1 += s.value,
            _ => {}
        }
    }
    let mut denied: BTreeMap<String, f64> = BTreeMap::new();
    for s in of(names::ROUTER_DENIED) {
        let key = format!(
            "{}/{}",
            s.label("action").unwrap_or("?"),
            s.label("flow").unwrap_or("?")
        );
        *denied.entry(key).or_default() += s.value;
    }
    // Per second between the two scrapes; a series the earlier page lacks counts from 0.
    let rate = |name: &str, filter: &[(&str, &str)]| {
        before.map(|b| {
            // fold from +0: an empty `sum()` of f64 is -0, which would print as "-0".
            promtext::increase(page, b, name, filter)
                .iter()
                .fold(0.0, |a, s| a + s.value)
                / dt
        })
    };

    let mut line = format!("ROUTER {name}  sessions ");
    if sessions.is_empty() {
        line.push('-');
    } else {
        let kinds: Vec<String> = sessions.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&kinds.join(" "));
    }
    match of(names::ROUTER_LINKS).next() {
        Some(_) => {
            let _ = write!(line, "  links {}", promtext::sum(page, names::ROUTER_LINKS, &[]));
        }
        None => line.push_str("  links -"),
    }
    if boards.is_empty() {
        line.push_str("  robots -");
    } else {
        let expected = boards.values().filter(|(_, e)| *e > 0.0).count();
        let whole = boards.values().filter(|(b, e)| *e > 0.0 && b >= e).count();
        let each: Vec<String> = boards.iter().map(|(r, (b, e))| format!("{r}={b}/{e}")).collect();
        let _ = write!(line, "  robots {whole}/{expected} boards {}", each.join(" "));
    }
    let per_s = |v: Option<f64>| v.map_or("-".to_owned(), bytes_per_s);
    let _ = write!(
        line,
        "  read {} written {}",
        per_s(rate(names::ROUTER_IO_BYTES, &[("direction", "read")])),
        per_s(rate(names::ROUTER_IO_BYTES, &[("direction", "written")])),
    );
    let total = denied.values().fold(0.0, |a, v| a + v);
    let denied_rate = rate(names::ROUTER_DENIED, &[]).map_or("-".to_owned(), |r| format!("{r:.2}/s"));
    let _ = write!(line, "  denied {total} ({denied_rate})");
    for (k, v) in denied.iter().filter(|(_, v)| **v > 0.0) {
        let _ = write!(line, " {k}={v}");
    }
    line
}

/// A byte rate with a decimal (SI) prefix, one decimal: `830.0B/s`, `1.2kB/s`, `45.6MB/s`.
fn bytes_per_s(v: f64) -> String {
    let (v, unit) = match v {
        v if v < 1e3 => (v, "B"),
        v if v < 1e6 => (v / 1e3, "kB"),
        v if v < 1e9 => (v / 1e6, "MB"),
        v => (v / 1e9, "GB"),
    };
    format!("{v:.1}{unit}/s")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A sensor page: the capture timer's lateness histogram (ticks up to 0.1 ms, up to
    /// 0.119 ms, and late ones up to 20.5 ms; cumulative counts), its missed ticks.
    fn sensor(punctual: u32, slower: u32, late: u32, missed: u32) -> String {
        let series = |le: &str, n: u32| {
            format!(
                "qubot_tick_lateness_seconds_bucket{{actor=\"sensor\",timer=\"capture\",le=\"{le}\"}} {n}\n"
            )
        };
        let all = punctual + slower + late;
        [
            "# TYPE qubot_tick_lateness_seconds histogram\n".to_owned(),
            series("0.0001", punctual),
            series("0.000119", punctual + slower),
            series("0.0205", all),
            series("+Inf", all),
            "qubot_tick_lateness_seconds_sum{actor=\"sensor\",timer=\"capture\"} 0.5\n".to_owned(),
            format!("qubot_tick_lateness_seconds_count{{actor=\"sensor\",timer=\"capture\"}} {all}\n"),
            "# TYPE qubot_ticks_missed_total counter\n".to_owned(),
            format!("qubot_ticks_missed_total{{actor=\"sensor\",timer=\"capture\"}} {missed}\n"),
            "qubot_messages_published_total{actor=\"sensor\",topic=\"scan\"} 10\n".to_owned(),
        ]
        .concat()
    }

    /// A planner page: traffic, no timers.
    const PLANNER: &str = "qubot_messages_received_total{actor=\"planner\",topic=\"scan\"} 10\n";

    fn scrapes(pages: &[(u16, Option<&str>)]) -> Scrapes {
        pages
            .iter()
            .map(|(port, text)| (at(*port), text.map(|t| promtext::parse(t).expect("page"))))
            .collect()
    }

    #[test]
    fn lateness_p99_is_the_intervals_and_missed_ticks_are_counted_both_ways() {
        // Before: 100 ticks, 50 of them 20 ms late (a stall), 3 missed. Then 1000 more ticks,
        // 985 within 0.1 ms and 15 within 0.119 ms, and 2 more missed. Over the whole life the
        // p99 would lie in the stall's bucket; over the interval it is in the 0.1–0.119 ms one.
        let prev = scrapes(&[(1, Some(&sensor(50, 0, 50, 3))), (2, Some(PLANNER))]);
        let now = scrapes(&[(1, Some(&sensor(1035, 15, 50, 5))), (2, Some(PLANNER))]);
        let whole = promtext::quantile_in(&now[0].1.clone().expect("page"), names::TICK_LATENESS, &[], 0.99)
            .expect("p99");
        assert_eq!(whole.upper, 0.0205, "the cumulative p99 is the stall's");

        let t = ticks(&prev, &now);
        assert_eq!(
            t.keys().collect::<Vec<_>>(),
            ["sensor"],
            "the planner has no timers"
        );
        let s = &t["sensor"];
        assert_eq!(s.missed_total, 5.0);
        let i = s.interval.as_ref().expect("an interval");
        assert_eq!(i.missed, 2.0);
        let q = i.lateness_p99.expect("ticks ran");
        assert_eq!((q.lower, q.upper), (0.0001, 0.000119), "{q:?}");
        assert!(q.value > q.lower && q.value <= q.upper, "{q:?}");
    }

    #[test]
    fn a_restart_between_the_scrapes_counts_from_zero() {
        // The sensor restarted: fewer ticks and missed ticks than before, all since its start.
        let prev = scrapes(&[(1, Some(&sensor(5000, 0, 100, 40)))]);
        let now = scrapes(&[(1, Some(&sensor(90, 10, 0, 1)))]);
        let s = &ticks(&prev, &now)["sensor"];
        let i = s.interval.as_ref().expect("an interval");
        assert_eq!((s.missed_total, i.missed), (1.0, 1.0));
        let q = i.lateness_p99.expect("ticks ran");
        assert_eq!((q.lower, q.upper), (0.0001, 0.000119), "{q:?}");
    }

    #[test]
    fn without_an_earlier_page_or_a_tick_there_is_no_interval_figure() {
        let page = sensor(100, 0, 0, 7);
        // Unreachable at the earlier scrape: the totals only.
        let s = &ticks(&scrapes(&[(1, None)]), &scrapes(&[(1, Some(&page))]))["sensor"];
        assert_eq!((s.missed_total, s.interval.as_ref()), (7.0, None));
        // The same page twice: no tick ran in between.
        let same = scrapes(&[(1, Some(&page))]);
        let s = &ticks(&same, &same)["sensor"];
        assert_eq!(
            s.interval,
            Some(TickInterval {
                lateness_p99: None,
                missed: 0.0
            })
        );
        assert_eq!(tick_columns(Some(s)), ("no ticks".into(), "7(+0)".into()));
    }

    #[test]
    fn the_view_shows_the_tick_columns_and_a_dash_without_timers() {
        let prev = scrapes(&[(1, Some(&sensor(50, 0, 50, 3))), (2, Some(PLANNER))]);
        let now = scrapes(&[(1, Some(&sensor(1035, 15, 50, 5))), (2, Some(PLANNER))]);
        let view = render(&[at(1), at(2)], &prev, &now, 1.0);
        let head = view.lines().next().expect("header");
        assert!(head.contains(" LATE p99 ") && head.contains(" MISSED "), "{view}");
        // A row's cells: actor, in/s, out/s, handle p50, p99, mailbox, late p99, missed, ...
        let (late, missed) = (6, 7);
        let row = |actor: &str| -> Vec<String> {
            view.lines()
                .find(|l| l.split_whitespace().next() == Some(actor))
                .unwrap_or_else(|| panic!("no {actor} row:\n{view}"))
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let (s, p) = (row("sensor"), row("planner"));
        assert_eq!(
            (s[late].as_str(), s[missed].as_str()),
            ("≤119µs", "5(+2)"),
            "{view}"
        );
        assert_eq!((p[late].as_str(), p[missed].as_str()), ("-", "-"), "{view}");
        // The fleet view reads the same pages as before.
        let fleet = render_fleet(&[at(1), at(2)], &prev, &now, 1.0);
        assert!(fleet.starts_with("ROBOT"), "{fleet}");
    }

    /// A robot's actuator page with its global labels and `applied` commands.
    fn actuator(robot: &str, applied: u32) -> String {
        format!(
            "qubot_messages_received_total{{robot=\"{robot}\",host=\"{robot}-a\",actor=\"actuator\",topic=\"cmd\"}} {applied}\n"
        )
    }

    /// Site router `edge`'s page (its `robot` label is the site): robot r1 has both its boards
    /// on it, r2 none (no boards series at all), `denied` puts refused on ingress so far.
    fn router(read: u64, written: u64, denied: u32) -> String {
        let g = "robot=\"site\",host=\"edge\"";
        let mut page = format!(
            "qubot_router_sessions{{{g},kind=\"router\"}} 0\n\
             qubot_router_sessions{{{g},kind=\"peer\"}} 4\n\
             qubot_router_links{{{g}}} 4\n\
             qubot_router_boards{{{g},fleet_robot=\"r1\"}} 2\n\
             qubot_router_expected_boards{{{g},fleet_robot=\"r1\"}} 2\n\
             qubot_router_expected_boards{{{g},fleet_robot=\"r2\"}} 2\n\
             qubot_router_io_bytes_total{{{g},direction=\"read\"}} {read}\n\
             qubot_router_io_bytes_total{{{g},direction=\"written\"}} {written}\n\
             qubot_build_info{{{g},version=\"0\"}} 1\n"
        );
        if denied > 0 {
            page += &format!("qubot_router_denied_total{{{g},action=\"put\",flow=\"ingress\"}} {denied}\n");
        }
        page
    }

    #[test]
    fn the_fleet_view_shows_a_router_on_its_own_line_after_the_robots() {
        let prev = scrapes(&[(9, Some(&router(1000, 2000, 1))), (1, Some(&actuator("r1", 100)))]);
        let now = scrapes(&[(9, Some(&router(3000, 6000, 5))), (1, Some(&actuator("r1", 140)))]);
        let view = render_fleet(&[at(9), at(1)], &prev, &now, 2.0);
        let lines: Vec<&str> = view.lines().collect();
        assert_eq!(lines.len(), 3, "header, r1, the router:\n{view}");
        assert!(lines[0].starts_with("ROBOT"), "{view}");
        let r1: Vec<&str> = lines[1].split_whitespace().collect();
        // The site is no robot: r1 is the only row, its loop rate from its own page.
        assert_eq!((r1[0], r1[1], r1[2]), ("r1", "1", "20.0"), "{view}");
        assert_eq!(
            lines[2],
            "ROUTER edge  sessions peer=4 router=0  links 4  robots 1/2 boards r1=2/2 r2=0/2  \
             read 1.0kB/s written 2.0kB/s  denied 5 (2.00/s) put/ingress=5",
            "{view}"
        );
    }

    #[test]
    fn a_router_without_an_earlier_page_or_boards_shows_dashes() {
        // Up since the last scrape, no denial yet, no inventory (so no boards gauges).
        let bare = "qubot_router_sessions{robot=\"site\",kind=\"peer\"} 0\n";
        let now = scrapes(&[(9, Some(bare)), (8, Some(&router(10, 20, 0))), (7, None)]);
        let prev = scrapes(&[(9, None), (8, None), (7, None)]);
        let view = render_fleet(&[at(9), at(8), at(7)], &prev, &now, 1.0);
        let lines: Vec<&str> = view.lines().collect();
        assert_eq!(
            lines[1..],
            [
                // No host label: named by its endpoint.
                "ROUTER 127.0.0.1:9  sessions peer=0  links -  robots -  read - written -  denied 0 (-)",
                "ROUTER edge  sessions peer=4 router=0  links 4  robots 1/2 boards r1=2/2 r2=0/2  \
                 read - written -  denied 0 (-)",
                "unreachable: 127.0.0.1:7",
            ],
            "{view}"
        );
    }

    #[test]
    fn a_router_without_denials_shows_a_zero_rate() {
        let page = scrapes(&[(8, Some(&router(10, 20, 0)))]);
        let view = render_fleet(&[at(8)], &page, &page, 1.0);
        assert!(
            view.lines().any(|l| l.starts_with("ROUTER edge ")
                && l.ends_with("read 0.0B/s written 0.0B/s  denied 0 (0.00/s)")),
            "{view}"
        );
    }

    #[test]
    fn byte_rates_take_an_si_prefix() {
        for (v, text) in [
            (0.0, "0.0B/s"),
            (830.0, "830.0B/s"),
            (1234.0, "1.2kB/s"),
            (4.56e7, "45.6MB/s"),
            (2e9, "2.0GB/s"),
        ] {
            assert_eq!(bytes_per_s(v), text);
        }
    }

    #[test]
    fn bucket_edges_print_with_all_their_digits() {
        for (s, text) in [
            (1e-5, "10.0µs"),
            (1.19e-5, "11.9µs"),
            (0.000119, "119µs"),
            (0.0487, "48.7ms"),
            (0.00119, "1.19ms"),
            (0.579, "579ms"),
            (9.74, "9.74s"),
        ] {
            assert_eq!(duration(s), text);
        }
    }
}
