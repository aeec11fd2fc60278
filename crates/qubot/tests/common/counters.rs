//! `/metrics` scrapes and the message counters the tests judge by.

#[allow(unused_imports)] // each test binary uses its own subset
pub use qubot_msg::metric_names::{DROPPED, PUBLISHED, RECEIVED};
#[allow(unused_imports)]
pub use qubot_ops::promtext::{parse as parse_metrics, scrape, sum, Sample};

/// Scrapes and parses, panicking on a malformed page.
pub fn metrics(addr: &str) -> Option<Vec<Sample>> {
    let text = scrape(addr)?;
    Some(parse_metrics(&text).unwrap_or_else(|e| panic!("{addr}/metrics does not parse: {e}")))
}

/// `name` summed over the series of `addr`'s page that match `filter`, scraped now (`None`
/// when nothing answers there).
pub fn counter(addr: &str, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
    metrics(addr).map(|m| sum(&m, name, filter))
}

/// Messages dropped, summed over the series of a page that match `filter` (e.g. a reason).
pub fn dropped(samples: &[Sample], filter: &[(&str, &str)]) -> f64 {
    sum(samples, DROPPED, filter)
}

/// [`dropped`] on `addr`'s page, scraped now.
pub fn dropped_at(addr: &str, filter: &[(&str, &str)]) -> Option<f64> {
    counter(addr, DROPPED, filter)
}

/// One robot's traffic kept its own: its planner (`planner`, a `/metrics` address) took scans,
/// never more than its own sensor (`sensor`) published (so no other robot's and no
/// duplicate), and no actor in `actors` counted a foreign message.
pub fn assert_apart(who: &str, sensor: &str, planner: &str, actors: &[String]) {
    let taken = counter(planner, RECEIVED, &[("topic", "scan")])
        .unwrap_or_else(|| panic!("{who}: no planner /metrics at {planner}"));
    let sent = counter(sensor, PUBLISHED, &[("topic", "scan")])
        .unwrap_or_else(|| panic!("{who}: no sensor /metrics at {sensor}"));
    assert!(
        taken > 0.0 && taken <= sent,
        "{who}: the planner took {taken} scans, its sensor sent {sent}"
    );
    for actor in actors {
        let foreign = dropped_at(actor, &[("reason", "foreign")]);
        assert_eq!(
            foreign,
            Some(0.0),
            "{who}: a foreign message reached the actor at {actor}"
        );
    }
}
