//! `qubot replay FILE`: plays a recording's wire channels back onto the bus with their
//! original timing (scaled by `--rate`), on the recorded keys or another robot's. The bytes go
//! out as recorded except the header's source id, which becomes the replay's own: a live robot
//! counts them as foreign, like any flood (`--keep-sources` sends them unchanged)
//! (docs/ARCHITECTURE.md, "Recording").

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use qubot_bus::{zenoh_qos, BusConfig};
use qubot_msg::metric_names::{BYTES_PUBLISHED, PUBLISHED};
use qubot_msg::topic;
use qubot_record::{topic_of, Entry, Filter};
use qubot_runtime::shutdown_signal;
use zenoh::Wait;

use crate::cli::ReplayArgs;

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
    if window(&rec.entries, args.start, args.duration).is_empty() {
        anyhow::bail!(
            "{}: no message to replay in that window and those topics",
            args.file.display()
        );
    }
    let robot = args.robot.clone().unwrap_or_else(|| rec.robot.clone());
    let keys: Vec<String> = rec.keys.iter().map(|k| on_robot(k, &robot)).collect();

    let cfg = crate::startup::with_bus_args(BusConfig::new(&robot, "replay", "main"), &args.bus);
    let bus = crate::startup::open(&cfg, args.bus.metrics_addr, args.bus.host_label.as_deref())?;
    if !args.keep_sources {
        for e in &mut rec.entries {
            // A message that was recorded undecodable goes out as it came.
            let _ = qubot_msg::restamp_source(&mut e.wire, bus.source());
        }
    }
    let window = window(&rec.entries, args.start, args.duration);
    let pubs = keys
        .iter()
        .map(|k| declare(&bus, k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.wait_subscriber > 0.0 {
        let deadline = Instant::now() + Duration::from_secs_f64(args.wait_subscriber);
        while !pubs
            .iter()
            .any(|p| p.publisher.matching_status().wait().is_ok_and(|s| s.matching()))
        {
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "no subscriber on the replayed keys within {} s",
                    args.wait_subscriber
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    // Played on a thread of its own: the main thread waits for a signal.
    let stop = Arc::new(AtomicBool::new(false));
    let (rate, loops) = (args.rate, args.loops);
    let played = std::thread::scope(|s| {
        let player = s.spawn(|| play(window, &pubs, rate, loops, &stop));
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
    bus.close();
    let line = serde_json::json!({
        "file": args.file.display().to_string(),
        "robot": robot,
        "published": played.published,
        "loops": played.loops,
        "seconds": played.seconds,
        "recorded_seconds": span_s(window),
        "cut_short": rec.cut_short,
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

struct Out<'s> {
    publisher: zenoh::pubsub::Publisher<'s>,
    published: metrics::Counter,
    bytes: metrics::Counter,
}

/// A publisher on `key` with its topic's QoS class (unknown topics go best effort).
fn declare<'s>(bus: &'s qubot_bus::Bus, key: &str) -> anyhow::Result<Out<'s>> {
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
        published: metrics::counter!(PUBLISHED, "actor" => "replay", "topic" => t.clone()),
        bytes: metrics::counter!(BYTES_PUBLISHED, "actor" => "replay", "topic" => t),
    })
}

struct Played {
    published: u64,
    loops: u64,
    seconds: f64,
}

/// Publishes `w` `loops` times (0: until `stop`), each message at its recorded offset from the
/// first divided by `rate` (0: no waiting), on absolute deadlines so waits do not add up.
fn play(w: &[Entry], pubs: &[Out], rate: f64, loops: u64, stop: &AtomicBool) -> Played {
    let t0 = Instant::now();
    let first = w[0].log_ns;
    let mut p = Played {
        published: 0,
        loops: 0,
        seconds: 0.0,
    };
    'outer: while loops == 0 || p.loops < loops {
        let start = Instant::now();
        for e in w {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            if rate > 0.0 {
                let due = start + Duration::from_secs_f64((e.log_ns - first) as f64 * 1e-9 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            let out = &pubs[e.key];
            match out.publisher.put(e.wire.as_slice()).wait() {
                Ok(()) => {
                    out.published.increment(1);
                    out.bytes.increment(e.wire.len() as u64);
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
}
