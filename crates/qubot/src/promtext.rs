//! Reading Prometheus text exposition: scrape a `/metrics` endpoint over plain HTTP, parse it
//! strictly, sum series by labels and estimate histogram quantiles the way Prometheus does.
//! Used by the supervisor's run report, `qubot top` and the tests.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }
}

/// GET `http://addr/metrics`; `None` while the endpoint is not up or answers non-200.
pub fn scrape(addr: &str) -> Option<String> {
    http_get(addr, "/metrics")
}

/// A minimal HTTP/1.1 GET on loopback (no client crate for two local uses): the body of a 200
/// answer, de-chunked if needed; `None` otherwise.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let (head, rest) = body.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Some(rest.to_owned());
    }
    let (mut out, mut rest) = (String::new(), rest);
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            break;
        }
        out.push_str(tail.get(..n)?);
        rest = tail.get(n + 2..)?;
    }
    Some(out)
}

/// Parses the text format; an error names the line.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    let mut typed = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix("# ") {
            let mut parts = c.splitn(3, ' ');
            match parts.next() {
                Some("TYPE") => {
                    let name = parts.next().ok_or_else(|| err("TYPE without name"))?;
                    let ty = parts.next().ok_or_else(|| err("TYPE without type"))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty) {
                        return Err(err("unknown type"));
                    }
                    if !typed.insert(name.to_owned()) {
                        return Err(err("duplicate TYPE"));
                    }
                }
                Some("HELP") => {}
                _ => return Err(err("unknown comment")),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| err("no value"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| err("bad value"))?,
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').ok_or_else(|| err("unclosed labels"))?;
                (name.to_owned(), parse_labels(body).map_err(|m| err(&m))?)
            }
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            return Err(err("bad metric name"));
        }
        out.push(Sample { name, labels, value });
    }
    Ok(out)
}

fn parse_labels(body: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (k, after) = rest.split_once("=\"").ok_or("label without =\"")?;
        let mut val = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => val.push('\n'),
                    Some((_, c)) => val.push(c),
                    None => return Err("dangling escape".into()),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => val.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        map.insert(k.trim_start_matches(',').to_owned(), val);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Ok(map)
}

/// Sum of every sample named `name` whose labels include all of `filter`.
pub fn sum(samples: &[Sample], name: &str, filter: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && filter.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
        .sum()
}

/// The `q` quantile of histogram `name` (summed over series matching `filter`), by linear
/// interpolation inside the bucket, as PromQL's `histogram_quantile`. `None` without data.
pub fn quantile(samples: &[Sample], name: &str, filter: &[(&str, &str)], q: f64) -> Option<f64> {
    let bucket = format!("{name}_bucket");
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.name == bucket && filter.iter().all(|(k, v)| s.label(k) == Some(*v)))
    {
        let le: f64 = match s.label("le")? {
            "+Inf" => f64::INFINITY,
            v => v.parse().ok()?,
        };
        by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
    }
    let mut buckets: Vec<(f64, f64)> = by_le.into_values().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let in_bucket = count - below;
            let frac = if in_bucket > 0.0 {
                (rank - below) / in_bucket
            } else {
                0.0
            };
            return Some(lower + (le - lower) * frac);
        }
        lower = le;
        below = count;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# TYPE x_seconds histogram\n\
        x_seconds_bucket{a=\"1\",le=\"0.1\"} 50\n\
        x_seconds_bucket{a=\"1\",le=\"0.2\"} 100\n\
        x_seconds_bucket{a=\"1\",le=\"+Inf\"} 100\n\
        x_seconds_sum{a=\"1\"} 9\n\
        x_seconds_count{a=\"1\"} 100\n\
        c_total{reason=\"a \\\"q\\\"\"} 3\n";

    #[test]
    fn parses_and_sums() {
        let s = parse(PAGE).expect("parse");
        assert_eq!(sum(&s, "c_total", &[("reason", "a \"q\"")]), 3.0);
        assert_eq!(sum(&s, "x_seconds_count", &[]), 100.0);
    }

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let s = parse(PAGE).expect("parse");
        let p50 = quantile(&s, "x_seconds", &[], 0.5).expect("p50");
        assert!((p50 - 0.1).abs() < 1e-9, "{p50}");
        let p75 = quantile(&s, "x_seconds", &[], 0.75).expect("p75");
        assert!((p75 - 0.15).abs() < 1e-9, "{p75}");
        assert_eq!(quantile(&s, "nothing", &[], 0.5), None);
    }

    #[test]
    fn rejects_broken_pages() {
        assert!(parse("metric{a=\"1\" 3").is_err());
        assert!(parse("metric notanumber").is_err());
        assert!(parse("# TYPE m bogus").is_err());
        assert!(parse("bad-name 1").is_err());
    }
}
