//! Counting what the router's access control refuses. zenoh 1.10 has no counter for it: each
//! decision is only a trace event of `zenoh::net::routing::interceptor::access_control`
//! ("… is unauthorized to Put (ingress) on qubot/…", also for cached decisions). This layer
//! enables that one target at trace level, for itself only (the log's own filter is
//! unchanged). It tells the verdicts zenoh logs while caching a new key's permissions (no
//! message is refused then) from those on messages, counts every refusal in
//! `qubot_router_denied_total{action,flow}`, and says the first distinct ones in the log
//! within a second ("access control denied <action> (<flow>) on <key> to <zenoh id> ...
//! (certificate <name>)"), so an operator finds them with
//! `grep 'access control denied' qubot.log`. The price is formatting one short message per
//! message the router routes, which only the router pays.

use std::{
    collections::{BTreeSet, HashMap},
    fmt::{self, Write as _},
    sync::Mutex,
};

use qubot_bus::telemetry as names;
use tracing::{field::Field, Event, Level, Subscriber};
use tracing_subscriber::{filter::Targets, layer::Context, Layer};

/// zenoh's access-control target.
const TARGET: &str = "zenoh::net::routing::interceptor::access_control";
/// Distinct refusals (who, what, where) said in the log; later ones are counted only.
const LOGGED: usize = 200;

/// The layer, filtered to zenoh's access-control events.
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    Denials.with_filter(Targets::new().with_target(TARGET, Level::TRACE))
}

struct Denials;

/// Refusals said so far, and those still to be said. tracing drops an event raised inside
/// another's handling, so the layer only notes them and [`say_new`] logs them, from the
/// router's one-second tick.
static NOTED: Mutex<Noted> = Mutex::new(Noted {
    seen: BTreeSet::new(),
    pending: Vec::new(),
});

struct Noted {
    seen: BTreeSet<String>,
    /// (what was refused, the zenoh id of the link's other end).
    pending: Vec<(String, String)>,
}

/// What a board may try to send a router (the ingress refusals it can earn): counted from
/// zero, so that the first refusal is an increase for Prometheus too.
const INGRESS: [&str; 9] = [
    "put",
    "delete",
    "declare_subscriber",
    "declare_queryable",
    "declare_liveliness_subscriber",
    "liveliness_token",
    "liveliness_query",
    "query",
    "reply",
];

/// Registers the refusal counters at zero (once the metrics recorder is installed).
pub fn register() {
    for action in INGRESS {
        metrics::counter!(names::ROUTER_DENIED, "action" => action, "flow" => "ingress").increment(0);
    }
}

/// Logs the refusals noted since the last call, at most [`LOGGED`] distinct ones in all,
/// each with the certificate of the link it came from or went to when `certificates`
/// (zenoh id -> certificate name, of the links held now) knows it.
pub fn say_new(certificates: &HashMap<String, String>) {
    let pending = std::mem::take(&mut NOTED.lock().unwrap_or_else(|p| p.into_inner()).pending);
    for (line, zid) in pending {
        match certificates.get(&zid) {
            Some(cn) => tracing::warn!("{line} (certificate {cn})"),
            None => tracing::warn!("{line}"),
        }
    }
}

/// One refusal, read from zenoh's message.
#[derive(Debug, PartialEq)]
struct Denial<'a> {
    /// Whose link: a zenoh id, with the certificate's subject when zenoh names it.
    who: &'a str,
    /// `put`, `declare_subscriber`, `liveliness_token`, ...
    action: String,
    /// `ingress` or `egress`.
    flow: &'a str,
    key: &'a str,
    /// Decided from the key's cached permissions: always a message's own verdict.
    cached: bool,
}

thread_local! {
    /// The (flow, key) whose permissions zenoh last computed on this thread: zenoh computes
    /// them synchronously, so verdicts on that key that follow, not from the cache, are that
    /// computation's and not a message's.
    static CACHING: std::cell::RefCell<Option<(String, String)>> = const { std::cell::RefCell::new(None) };
}

/// `ACL (ingress): caching permissions for `<key>` ...`: zenoh is about to compute the
/// permissions of every action on a key it has just met; the verdicts it logs while doing so
/// are no refusal of any message. Gives (flow, key).
fn parse_caching(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("ACL (")?;
    let (flow, rest) = rest.split_once("): caching permissions for `")?;
    let (key, _) = rest.split_once('`')?;
    Some((flow, key))
}

fn parse(message: &str) -> Option<Denial<'_>> {
    let (who, rest) = message.split_once(" is unauthorized to ")?;
    let (who, cached) = match who.strip_prefix("Using cached result: ") {
        Some(w) => (w, true),
        None => (who, false),
    };
    let (what, key) = rest.split_once(" on ")?;
    let (action, flow) = what.rsplit_once(" (")?;
    let flow = flow.strip_suffix(')')?;
    if !matches!(flow, "ingress" | "egress") {
        return None;
    }
    let action = action.to_ascii_lowercase().replace(' ', "_");
    // A bounded label: zenoh's message names are a fixed set of words.
    if action.is_empty() || !action.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return None;
    }
    Some(Denial {
        who,
        action,
        flow,
        key,
        cached,
    })
}

/// Collects an event's `message` field.
#[derive(Default)]
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Denials {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut m = Message::default();
        event.record(&mut m);
        if let Some((flow, key)) = parse_caching(&m.0) {
            CACHING.with(|c| *c.borrow_mut() = Some((flow.to_owned(), key.to_owned())));
            return;
        }
        let Some(d) = parse(&m.0) else {
            return;
        };
        let computing =
            |c: &Option<(String, String)>| c.as_ref().is_some_and(|(f, k)| f == d.flow && k == d.key);
        if !d.cached && CACHING.with(|c| computing(&c.borrow())) {
            return;
        }
        metrics::counter!(names::ROUTER_DENIED, "action" => d.action.clone(), "flow" => d.flow.to_owned())
            .increment(1);
        let mut noted = NOTED.lock().unwrap_or_else(|p| p.into_inner());
        let line = format!(
            "access control denied {} ({}) on {} to {}",
            d.action, d.flow, d.key, d.who
        );
        if noted.seen.len() < LOGGED && noted.seen.insert(line.clone()) {
            let zid = d.who.split(' ').next().unwrap_or_default().to_owned();
            noted.pending.push((line, zid));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_read_from_zenohs_messages() {
        let d = parse(
            "a1b2 on dev1 is unauthorized to Declare Subscriber (ingress) on qubot/qubot-two/sensor/*/scan",
        )
        .expect("a refusal");
        assert_eq!(
            d,
            Denial {
                who: "a1b2 on dev1",
                action: "declare_subscriber".into(),
                flow: "ingress",
                key: "qubot/qubot-two/sensor/*/scan",
                cached: false,
            }
        );
        let d =
            parse("Using cached result: a1b2 is unauthorized to Put (egress) on qubot/r/x").expect("cached");
        assert_eq!(
            (d.who, d.action.as_str(), d.flow, d.cached),
            ("a1b2", "put", "egress", true)
        );
        assert_eq!(
            parse_caching("ACL (egress): caching permissions for `qubot/r/@live/x` ..."),
            Some(("egress", "qubot/r/@live/x"))
        );
        assert_eq!(parse_caching("a1b2 is unauthorized to Put (egress) on k"), None);
        assert_eq!(
            parse("a1b2 on dev1 is unauthorized to Liveliness Token (ingress) on qubot/r/@live/sensor/main")
                .map(|d| d.action),
            Some("liveliness_token".into())
        );
        // Allowed decisions and other messages are not refusals.
        assert_eq!(
            parse("a1b2 on dev1 is authorized to Put (ingress) on qubot/r/x"),
            None
        );
        assert_eq!(
            parse("ACL (ingress): caching permissions for `qubot/r/x` ..."),
            None
        );
        assert_eq!(parse("x is unauthorized to Put (sideways) on k"), None);
    }
}
