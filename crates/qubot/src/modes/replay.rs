//! `qubot replay FILE`: plays a recording's wire channels back onto the bus with their
//! original timing (scaled by `--rate`), on the recorded keys or another robot's. The bytes go
//! out as recorded except the header's source id, which becomes the replay's own: a live robot
//! counts them as foreign, like any flood (`--keep-sources` sends them unchanged). With
//! `--as-producer` it stands in for the robot's sensors and actuators instead: a source id and
//! a liveliness token of its own for each, and stamps moved to the time of playing, so a live
//! planner binds to it and plans on what the robot saw (docs/ARCHITECTURE.md, "Recording").

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use qubot_bus::{zenoh_qos, BusConfig};
use qubot_msg::metric_names::{BYTES_PUBLISHED, PUBLISHED};
use qubot_msg::{now_ns, topic, Role};
use qubot_record::{topic_of, Entry, Filter};
use qubot_runtime::shutdown_signal;
use zenoh::Wait;

use crate::cli::ReplayArgs;

/// The robot a replay without `--robot` (or `QUBOT_ROBOT`) targets: every process's default.
const DEFAULT_ROBOT: &str = "qubot-one";

/// Larger files are refused: replay holds the recording in memory.
const MAX_FILE_BYTES: u64 = 4 << 30;

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        anyhow::bail!(
            "{}: {size} bytes; replay holds a recording in memory and takes up to {MAX_FILE_BYTES}",
            args.file.display()
        );
    }
    let buf = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let filter = Filter {
        include: args.include.clone(),
        exclude: args.exclude.clone(),
    };
    let mut rec = qubot_record::load(&buf, &filter).with_context(|| args.file.display().to_string())?;
    drop(buf);
    if let Some(why) = &rec.cut_short {
        tracing::warn!(file = %args.file.display(), why, "the recording ends early (its recorder was killed?): playing what it holds");
    }
    let robot = match &args.robot {
        Some(r) => r.clone(),
        None if rec.robot == DEFAULT_ROBOT => rec.robot.clone(),
        None => anyhow::bail!(
            "{}: recorded on robot {:?}, and this replay targets {DEFAULT_ROBOT:?}: name the robot to play onto with --robot {} (or another)",
            args.file.display(),
            rec.robot,
            rec.robot
        ),
    };
    let keys: Vec<String> = rec.keys.iter().map(|k| on_robot(k, &robot)).collect();
    let producers = if args.as_producer {
        let producers = producers_of(&keys);
        if producers.iter().all(Option::is_none) {
            anyhow::bail!(
                "{}: --as-producer stands in for sensors and actuators, and the recording holds none of their topics (with those topic filters)",
                args.file.display()
            );
        }
        // Only what the stood-in producers published goes out: the robot's own planner
        // answers them.
        rec.entries.retain(|e| producers[e.key].is_some());
        producers
    } else {
        Vec::new()
    };
    let window = window(&rec.entries, args.start, args.duration);
    if window.is_empty() {
        anyhow::bail!(
            "{}: no message to replay in that window and those topics",
            args.file.display()
        );
    }

    let cfg = crate::startup::with_bus_args(BusConfig::new(&robot, "replay", "main"), &args.bus);
    let bus = crate::startup::open(&cfg, args.bus.metrics_addr, args.bus.host_label.as_deref())?;
    // Each producer stood in for gets a source id and a token of its own, as if it had
    // (re)started: its consumers bind to it (docs/ARCHITECTURE.md §4a).
    let mut ids: BTreeMap<&(String, String), qubot_bus::ActorId> = BTreeMap::new();
    let mut tokens = Vec::new();
    for p in producers.iter().flatten() {
        if ids.contains_key(p) {
            continue;
        }
        let id = qubot_bus::random_source();
        let token = qubot_bus::token_key(&robot, &p.0, &p.1, id);
        tokens.push(
            bus.session()
                .liveliness()
                .declare_token(token.clone())
                .wait()
                .map_err(|e| anyhow::anyhow!("declaring the liveliness token {token}: {e}"))?,
        );
        ids.insert(p, id);
    }
    let stood_in: Vec<String> = ids.keys().map(|(a, i)| format!("{a}/{i}")).collect();
    let pubs = keys
        .iter()
        .enumerate()
        .map(|(k, key)| {
            let stamping = match producers.get(k).and_then(Option::as_ref) {
                Some(p) => Stamping::Producer(ids[p]),
                None if args.keep_sources => Stamping::Keep,
                None => Stamping::Source(bus.source()),
            };
            declare(&bus, key, stamping)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.wait_subscriber > 0.0
        && !qubot_bus::wait_until(Duration::from_secs_f64(args.wait_subscriber), || {
            pubs.iter().any(|p| qubot_bus::has_subscribers(&p.publisher))
        })
    {
        anyhow::bail!(
            "no subscriber on the replayed keys within {} s",
            args.wait_subscriber
        );
    }

    // Played on a thread of its own: the main thread waits for a signal.
    let stop = Arc::new(AtomicBool::new(false));
    let (rate, loops) = (args.rate, args.loops);
    let until = (args.for_s > 0.0).then(|| Instant::now() + Duration::from_secs_f64(args.for_s));
    let played = std::thread::scope(|s| {
        let player = s.spawn(|| play(window, &pubs, rate, loops, until, &stop));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the signal runtime")?;
        rt.block_on(async {
            tokio::select! {
                sig = shutdown_signal() => {
                    if let Ok(sig) = sig {
                        tracing::info!(signal = sig, "stopping");
                    }
                }
                _ = async {
                    while !player.is_finished() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                } => {}
            }
        });
        stop.store(true, Ordering::Relaxed);
        player
            .join()
            .map_err(|_| anyhow::anyhow!("the player thread panicked"))
    })?;
    drop(pubs);
    drop(tokens);
    bus.close();
    let line = serde_json::json!({
        "file": args.file.display().to_string(),
        "robot": robot,
        "published": played.published,
        "loops": played.loops,
        "seconds": played.seconds,
        "recorded_seconds": span_s(window),
        "window_messages": window.len(),
        "cut_short": rec.cut_short,
        "as_producer": stood_in,
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// The entries from `start_s` after the first, for `duration_s` (0: to the end).
fn window(entries: &[Entry], start_s: f64, duration_s: f64) -> &[Entry] {
    let Some(first) = entries.first() else {
        return entries;
    };
    let from = first.log_ns + (start_s * 1e9) as u64;
    let to = if duration_s > 0.0 {
        from + (duration_s * 1e9) as u64
    } else {
        u64::MAX
    };
    let a = entries.partition_point(|e| e.log_ns < from);
    let b = entries.partition_point(|e| e.log_ns < to);
    &entries[a..b.max(a)]
}

fn span_s(w: &[Entry]) -> f64 {
    match (w.first(), w.last()) {
        (Some(a), Some(b)) => (b.log_ns - a.log_ns) as f64 * 1e-9,
        _ => 0.0,
    }
}

/// `key` (`qubot/<robot>/<actor>/<instance>/<topic>`) on `robot`.
fn on_robot(key: &str, robot: &str) -> String {
    match key
        .split_once('/')
        .and_then(|(root, rest)| Some((root, rest.split_once('/')?.1)))
    {
        Some((root, rest)) => format!("{root}/{robot}/{rest}"),
        None => key.to_owned(),
    }
}

/// For each key, the producer (`actor`, `instance`) a replay `--as-producer` stands in for:
/// the robot's sensors and actuators, whose topics its planner consumes.
fn producers_of(keys: &[String]) -> Vec<Option<(String, String)>> {
    keys.iter()
        .map(|k| {
            let parts: Vec<&str> = k.split('/').collect();
            match parts[..] {
                [_, _, actor, instance, _]
                    if actor == Role::Sensor.name() || actor == Role::Actuator.name() =>
                {
                    Some((actor.to_owned(), instance.to_owned()))
                }
                _ => None,
            }
        })
        .collect()
}

/// What a replayed message's header carries on the way out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stamping {
    /// The recorded bytes, unchanged (`--keep-sources`).
    Keep,
    /// The replay's own source id: foreign to every consumer.
    Source(qubot_bus::ActorId),
    /// A stood-in producer's source id, and stamps moved to the time of playing.
    Producer(qubot_bus::ActorId),
}

struct Out<'s> {
    publisher: zenoh::pubsub::Publisher<'s>,
    stamping: Stamping,
    published: metrics::Counter,
    bytes: metrics::Counter,
}

/// A publisher on `key` with its topic's QoS class (unknown topics go best effort).
fn declare<'s>(bus: &'s qubot_bus::Bus, key: &str, stamping: Stamping) -> anyhow::Result<Out<'s>> {
    let t = topic_of(key).to_owned();
    let q = zenoh_qos(topic::by_name(&t).map_or(qubot_msg::QosClass::Sensor, |s| s.qos));
    let publisher = bus
        .session()
        .declare_publisher(key.to_owned())
        .reliability(q.reliability)
        .congestion_control(q.congestion)
        .priority(q.priority)
        .express(q.express)
        .wait()
        .map_err(|e| anyhow::anyhow!("declaring a publisher on {key}: {e}"))?;
    Ok(Out {
        publisher,
        stamping,
        published: metrics::counter!(PUBLISHED, "actor" => "replay", "topic" => t.clone()),
        bytes: metrics::counter!(BYTES_PUBLISHED, "actor" => "replay", "topic" => t),
    })
}

struct Played {
    published: u64,
    loops: u64,
    seconds: f64,
}

/// Publishes `w` `loops` times (0: until `stop` or `until`), each message at its recorded
/// offset from the first divided by `rate` (0: no waiting), on absolute deadlines so waits do
/// not add up.
fn play(
    w: &[Entry],
    pubs: &[Out],
    rate: f64,
    loops: u64,
    until: Option<Instant>,
    stop: &AtomicBool,
) -> Played {
    let t0 = Instant::now();
    let first = w[0].log_ns;
    let mut p = Played {
        published: 0,
        loops: 0,
        seconds: 0.0,
    };
    let mut scratch = Vec::new();
    'outer: while loops == 0 || p.loops < loops {
        let start = Instant::now();
        let start_ns = now_ns();
        for e in w {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            let offset_ns = if rate > 0.0 {
                let offset = Duration::from_secs_f64((e.log_ns - first) as f64 * 1e-9 / rate);
                let due = start + offset;
                if until.is_some_and(|u| due >= u) {
                    break 'outer;
                }
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                offset.as_nanos() as u64
            } else {
                if until.is_some_and(|u| Instant::now() >= u) {
                    break 'outer;
                }
                now_ns().saturating_sub(start_ns)
            };
            let out = &pubs[e.key];
            let bytes = match out.stamping {
                Stamping::Keep => e.wire.as_slice(),
                Stamping::Source(id) | Stamping::Producer(id) => {
                    // Stamped as if received at its (scheduled) time of playing: at rate 1
                    // every stamp moves by the same amount, so the intervals between them,
                    // which the planner matches scans to odometry by, are the recorded ones.
                    let shift = match out.stamping {
                        Stamping::Producer(_) => (start_ns + offset_ns) as i64 - e.log_ns as i64,
                        _ => 0,
                    };
                    scratch.clear();
                    scratch.extend_from_slice(&e.wire);
                    // A message that was recorded undecodable goes out as it came.
                    let _ = qubot_msg::restamp(&mut scratch, id, shift);
                    scratch.as_slice()
                }
            };
            match out.publisher.put(bytes).wait() {
                Ok(()) => {
                    out.published.increment(1);
                    out.bytes.increment(bytes.len() as u64);
                    p.published += 1;
                }
                Err(err) => tracing::warn!(error = %err, "a replayed message was not sent"),
            }
        }
        p.loops += 1;
    }
    p.seconds = t0.elapsed().as_secs_f64();
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_move_to_another_robot_and_windows_cut_by_time() {
        assert_eq!(
            on_robot("qubot/r1/sensor/lidar0/scan", "r2"),
            "qubot/r2/sensor/lidar0/scan"
        );
        let e = |s: u64| Entry {
            key: 0,
            log_ns: s * 1_000_000_000,
            wire: vec![],
        };
        let all: Vec<Entry> = (10..20).map(e).collect();
        assert_eq!(window(&all, 0.0, 0.0).len(), 10);
        let w = window(&all, 2.0, 3.0);
        assert_eq!((w[0].log_ns, w.len()), (12_000_000_000, 3));
        assert!(window(&all, 20.0, 0.0).is_empty());
    }

    #[test]
    fn a_producer_replay_stands_in_for_sensors_and_actuators_only() {
        let keys = [
            "qubot/r/sensor/lidar0/scan",
            "qubot/r/planner/main/cmd",
            "qubot/r/actuator/base/state",
            "qubot/r/flood/flood0/scan",
        ]
        .map(String::from);
        let p = producers_of(&keys);
        assert_eq!(p[0], Some(("sensor".into(), "lidar0".into())));
        assert_eq!(p[1], None);
        assert_eq!(p[2], Some(("actuator".into(), "base".into())));
        assert_eq!(p[3], None);
    }
}
