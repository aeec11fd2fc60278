//! Reading Prometheus text exposition: scrape a `/metrics` endpoint over plain HTTP, parse it
//! strictly, sum series by labels and estimate histogram quantiles the way Prometheus does.
//! Used by the supervisor's run report, `qubot top` and the tests.

use qubot_msg::{metric_names as names, DropReason, TopicSpec};
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

/// The largest body accepted: a Qubot `/metrics` page is ~100 KiB; a Prometheus query answer
/// in the tests is smaller still. Anything longer is cut and reported, never buffered whole.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Connect, send and read all happen within this, however the peer trickles its bytes.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Why a GET gave no body.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad address {0:?}")]
    Address(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Deadline(Duration),
    #[error("body longer than {0} bytes: cut")]
    TooLong(usize),
    #[error("answer is not HTTP 200: {0:?}")]
    Status(String),
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
}

/// GET `http://addr/metrics`; `None` while the endpoint is not up or answers non-200. A cut
/// (oversized) or late answer is logged with its reason.
pub fn scrape(addr: &str) -> Option<String> {
    http_get(addr, "/metrics")
}

/// [`get`], with the failure logged (at debug level for "not up yet", warn for the rest).
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    match get(addr, path, DEADLINE, MAX_BODY_BYTES) {
        Ok(body) => Some(body),
        Err(HttpError::Io(e)) => {
            tracing::debug!(addr, path, error = %e, "HTTP GET failed");
            None
        }
        Err(e) => {
            tracing::warn!(addr, path, error = %e, "HTTP GET rejected");
            None
        }
    }
}

/// A minimal HTTP/1.1 GET to our own processes on loopback or the lab's addresses: one request,
/// `Connection: close`, the body of a 200 answer (de-chunked), within `deadline` and `cap`
/// bytes. Kept in-house on purpose: a client crate would bring an HTTP stack (and async or TLS
/// dependencies) into every board's binary for what these few lines do with hard bounds.
pub fn get(addr: &str, path: &str, deadline: Duration, cap: usize) -> Result<String, HttpError> {
    let sock: std::net::SocketAddr = addr.parse().map_err(|_| HttpError::Address(addr.into()))?;
    let until = std::time::Instant::now() + deadline;
    let left = || {
        until
            .checked_duration_since(std::time::Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(HttpError::Deadline(deadline))
    };
    let mut s = TcpStream::connect_timeout(&sock, left()?.min(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(left()?))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    // Head and body together: the cap plus room for the head.
    let limit = cap + 16 * 1024;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        s.set_read_timeout(Some(left()?))?;
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HttpError::Deadline(deadline))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if raw.len() + n > limit {
            return Err(HttpError::TooLong(cap));
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(raw).map_err(|_| HttpError::Malformed("not UTF-8"))?;
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or(HttpError::Malformed("no end of head"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(HttpError::Status(head.lines().next().unwrap_or("").into()));
    }
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest).ok_or(HttpError::Malformed("bad chunked encoding"))?
    } else {
        rest.to_owned()
    };
    if body.len() > cap {
        return Err(HttpError::TooLong(cap));
    }
    Ok(body)
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
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

/// Messages on `topic` handed to handlers, over every actor of the page(s).
pub fn received(samples: &[Sample], topic: TopicSpec) -> f64 {
    sum(samples, names::RECEIVED, &[("topic", topic.name)])
}

/// Messages on `topic` put on the bus.
pub fn published(samples: &[Sample], topic: TopicSpec) -> f64 {
    sum(samples, names::PUBLISHED, &[("topic", topic.name)])
}

/// Messages dropped for `reason`, over every actor and topic.
pub fn dropped(samples: &[Sample], reason: DropReason) -> f64 {
    sum(samples, names::DROPPED, &[("reason", reason.label())])
}

/// What each series of `after` gained since `before` (a series `before` lacks counts from 0):
/// counters and histogram buckets over the window between two scrapes of one page.
pub fn window(before: &[Sample], after: &[Sample]) -> Vec<Sample> {
    let start: BTreeMap<(&str, &BTreeMap<String, String>), f64> = before
        .iter()
        .map(|s| ((s.name.as_str(), &s.labels), s.value))
        .collect();
    after
        .iter()
        .map(|s| Sample {
            value: s.value - start.get(&(s.name.as_str(), &s.labels)).copied().unwrap_or(0.0),
            ..s.clone()
        })
        .collect()
}

/// The increase of the series named `name` matching `filter` (counters, or a histogram's
/// `_bucket` series) from the page `before` to the page `after` of the same process. A
/// histogram or counter that went down was reset by a restart in between and counts from zero
/// (as PromQL's `increase`); a histogram's buckets are judged together, so they stay
/// cumulative.
pub fn increase(after: &[Sample], before: &[Sample], name: &str, filter: &[(&str, &str)]) -> Vec<Sample> {
    let without_le = |s: &Sample| {
        let mut l = s.labels.clone();
        l.remove("le");
        l
    };
    let prev: BTreeMap<&BTreeMap<String, String>, f64> = before
        .iter()
        .filter(|s| s.name == name)
        .map(|s| (&s.labels, s.value))
        .collect();
    let was = |s: &Sample| prev.get(&s.labels).copied().unwrap_or(0.0);
    let matching: Vec<&Sample> = after
        .iter()
        .filter(|s| s.name == name && filter.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .collect();
    let reset: BTreeSet<BTreeMap<String, String>> = matching
        .iter()
        .filter(|s| s.value < was(s))
        .map(|s| without_le(s))
        .collect();
    matching
        .into_iter()
        .map(|s| {
            let mut d = s.clone();
            if !reset.contains(&without_le(s)) {
                d.value -= was(s);
            }
            d
        })
        .collect()
}

/// A quantile read from a histogram: the interpolated value, and the edges of the bucket it
/// lies in, which are all the histogram actually knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantile {
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
}

impl Quantile {
    /// "2.31 ms (bucket 2.18–2.59)": the figure with its resolution.
    pub fn ms(&self) -> String {
        format!(
            "{:.2} ms (bucket {:.2}–{:.2})",
            self.value * 1e3,
            self.lower * 1e3,
            self.upper * 1e3
        )
    }
}

/// The `q` quantile of histogram `name` (summed over series matching `filter`), by linear
/// interpolation inside the bucket, as PromQL's `histogram_quantile`. `None` without data.
pub fn quantile(samples: &[Sample], name: &str, filter: &[(&str, &str)], q: f64) -> Option<f64> {
    quantile_in(samples, name, filter, q).map(|q| q.value)
}

/// [`quantile`] with the bucket it lies in.
pub fn quantile_in(samples: &[Sample], name: &str, filter: &[(&str, &str)], q: f64) -> Option<Quantile> {
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
                return Some(Quantile {
                    value: lower,
                    lower,
                    upper: le,
                });
            }
            let in_bucket = count - below;
            let frac = if in_bucket > 0.0 {
                (rank - below) / in_bucket
            } else {
                0.0
            };
            return Some(Quantile {
                value: lower + (le - lower) * frac,
                lower,
                upper: le,
            });
        }
        lower = le;
        below = count;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot server on loopback that answers with `answer`, then (when `endless`) keeps
    /// sending body bytes until the client hangs up.
    fn serve(answer: Vec<u8>, endless: bool) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().expect("accept");
            // The whole request first: closing a socket with unread bytes sends a reset,
            // which could reach the client before it read the answer.
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = c.write_all(&answer);
            // An endless body: chunks until the client hangs up.
            while endless && c.write_all(&[b'x'; 64 * 1024]).is_ok() {}
            // Then wait for the client to close first (it reads to EOF after our FIN).
            let _ = c.shutdown(std::net::Shutdown::Write);
            let _ = c.read(&mut buf);
        });
        addr
    }

    #[test]
    fn an_unbounded_body_is_cut_at_the_cap() {
        let addr = serve(b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), true);
        let e = get(&addr, "/metrics", Duration::from_secs(10), 1 << 20).expect_err("must be cut");
        assert!(matches!(e, HttpError::TooLong(n) if n == 1 << 20), "{e}");
    }

    #[test]
    fn a_silent_peer_meets_the_deadline() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        // Accepted by the kernel's backlog, never answered.
        let e = get(&addr, "/metrics", Duration::from_millis(300), 1 << 20).expect_err("deadline");
        assert!(matches!(e, HttpError::Deadline(_)), "{e}");
        drop(l);
    }

    #[test]
    fn chunked_and_plain_bodies_are_read() {
        let plain = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            false,
        );
        assert_eq!(get(&plain, "/", DEADLINE, 100).expect("plain"), "hello");
        let chunked = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n".to_vec(),
            false,
        );
        assert_eq!(get(&chunked, "/", DEADLINE, 100).expect("chunked"), "hello");
        let missing = serve(b"HTTP/1.1 404 Not Found\r\n\r\n".to_vec(), false);
        assert!(matches!(
            get(&missing, "/", DEADLINE, 100),
            Err(HttpError::Status(_))
        ));
    }

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
    fn window_is_what_each_series_gained() {
        let before = parse("a_total{x=\"1\"} 5\na_total{x=\"2\"} 1\n").expect("parse");
        let after = parse("a_total{x=\"1\"} 8\na_total{x=\"2\"} 1\na_total{x=\"3\"} 4\n").expect("parse");
        let w = window(&before, &after);
        let of = |x: &str| sum(&w, "a_total", &[("x", x)]);
        assert_eq!((of("1"), of("2"), of("3")), (3.0, 0.0, 4.0));
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
