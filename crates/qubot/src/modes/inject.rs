//! `qubot inject`: a foreign peer that puts damaged or well-formed-but-unwelcome bytes on a
//! key, to prove receivers count and survive bad input. It bypasses the Qubot publisher on
//! purpose. It stamps a fresh random source id (so bound consumers count it `foreign`), the id
//! given with `--source`, or, with `--as-producer`, joins as the producer the key names.
//!
//! Below the bus API on purpose: a raw zenoh put of arbitrary bytes on any key (and the peer
//! count of the session) is exactly what a Qubot publisher must never offer.

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use qubot_bus::ActorId;
use qubot_msg::{
    damage_header, decode_header, encode_into, encoded_len, now_ns, replace_body, Body, Command, DecodeError,
    HeaderDamage, Scan, Stamp, State,
};
use zenoh::Wait;

use crate::cli::{InjectArgs, Malformed};

/// A command's default pipeline budget (planner.cmd_deadline_ms): how a replayed plan's
/// deadline is computed.
const BUDGET_NS: u64 = 300_000_000;

const ALL: [Malformed; 9] = [
    Malformed::Garbage,
    Malformed::Empty,
    Malformed::Truncated,
    Malformed::BadMagic,
    Malformed::BadVersion,
    Malformed::BadKind,
    Malformed::Oversize,
    Malformed::BadBody,
    Malformed::Trailing,
];

pub fn run(args: InjectArgs) -> anyhow::Result<ExitCode> {
    // Bad arguments fail before anything joins the bus.
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        anyhow::bail!("--rate must be a finite number >= 0, got {}", args.rate);
    }
    let bus = if args.as_producer {
        // qubot/<robot>/<actor>/<instance>/<topic>: join as that actor instance.
        let parts: Vec<&str> = args.key.split('/').collect();
        let [_, robot, actor, instance, _] = parts[..] else {
            anyhow::bail!(
                "--as-producer needs a key qubot/<robot>/<actor>/<instance>/<topic>, got {}",
                args.key
            );
        };
        let mut common = args.common.clone();
        common.robot = robot.to_owned();
        common.instance = Some(instance.to_owned());
        crate::startup::start(&common, actor, instance)?
    } else {
        crate::startup::start(&args.common, "inject", "inject0")?
    };
    let fixed = if args.as_producer {
        Some(bus.source())
    } else {
        args.source.map(ActorId)
    };
    let publisher = bus
        .session()
        .declare_publisher(args.key.clone())
        // Reliable and blocking: a storm must arrive whole, so receivers can be held to
        // counting every message.
        .reliability(zenoh::qos::Reliability::Reliable)
        .congestion_control(zenoh::qos::CongestionControl::Block)
        .wait()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("declaring a publisher on {}", args.key))?;
    let peers = || bus.session().info().peers_zid().wait().count();
    let ready = || qubot_bus::has_subscribers(&publisher) && peers() >= args.wait_peers;
    if !qubot_bus::wait_until(Duration::from_secs_f64(args.wait_subscriber.max(0.0)), ready) {
        anyhow::bail!(
            "no subscriber on {} (or fewer than {} peers) within {} s",
            args.key,
            args.wait_peers,
            args.wait_subscriber
        );
    }
    if args.wait_peers > 0 || args.as_producer {
        // As a producer, our liveliness token (declared at start) must also have reached the
        // consumers that bind to it; it travels the same links as the subscription did.
        // The subscriptions of peers just connected arrive right after their links open.
        std::thread::sleep(Duration::from_millis(200));
    }
    let what = if args.what.is_empty() {
        ALL.to_vec()
    } else {
        args.what.clone()
    };
    let tick = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let mut next = std::time::Instant::now();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut sent = serde_json::Map::new();
    for w in &what {
        for _ in 0..args.count {
            if let Some(tick) = tick {
                next += tick;
                std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
            }
            let source = fixed.unwrap_or_else(qubot_bus::random_source);
            let bytes = damaged(*w, &mut rng, source)?;
            publisher
                .put(bytes)
                .wait()
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("putting bytes")?;
        }
        sent.insert(name(*w).into(), args.count.into());
    }
    // Closing the session drops what is still queued for the network: let it drain first.
    std::thread::sleep(Duration::from_millis(200));
    drop(publisher);
    bus.close();
    let report = serde_json::json!({
        "key": args.key,
        "sent": sent,
        "total": args.count * what.len() as u64,
    });
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn name(w: Malformed) -> &'static str {
    match w {
        Malformed::Garbage => "garbage",
        Malformed::Empty => "empty",
        Malformed::Truncated => "truncated",
        Malformed::BadMagic => "bad_magic",
        Malformed::BadVersion => "bad_version",
        Malformed::BadKind => "bad_kind",
        Malformed::Oversize => "oversize",
        Malformed::BadBody => "bad_body",
        Malformed::Trailing => "trailing",
        Malformed::StaleCommand => "stale_command",
        Malformed::InvalidCommand => "invalid_command",
        Malformed::DriveCommand => "drive_command",
        Malformed::FarState => "far_state",
        Malformed::StaleScan => "stale_scan",
        Malformed::HugeScan => "huge_scan",
        Malformed::DistinctSources => "distinct_sources",
    }
}

/// A valid 8-beam scan, then damaged as asked (through the codec's own damage helpers: this
/// file knows no byte offsets).
fn damaged(w: Malformed, rng: &mut u64, source: ActorId) -> anyhow::Result<Vec<u8>> {
    let now = now_ns();
    let stamp = |origin_ns: u64| Stamp {
        source,
        origin_ns,
        publish_ns: now,
        ..Stamp::default()
    };
    match w {
        // Planned on a scan captured 2 s ago: capture + budget is long past.
        Malformed::StaleCommand => {
            let origin = now.saturating_sub(2_000_000_000);
            return command(stamp(origin), origin + BUDGET_NS, 0.5);
        }
        Malformed::InvalidCommand => return command(stamp(now), now + BUDGET_NS, f64::NAN),
        Malformed::DriveCommand => {
            let cmd = Command {
                v: 0.8,
                w: 0.0,
                deadline_ns: now + BUDGET_NS,
                scan_seq: 0,
            };
            return encoded(&stamp(now), &cmd, 0);
        }
        Malformed::FarState => {
            let state = State {
                x: 1000.0,
                y: -1000.0,
                ..State::default()
            };
            return encoded(&stamp(now), &state, 0);
        }
        Malformed::StaleScan => {
            return encoded(&stamp(now.saturating_sub(2_000_000_000)), &scan(8), 32);
        }
        Malformed::HugeScan => return encoded(&stamp(now), &scan(16 << 20), 64 << 20),
        Malformed::DistinctSources => {
            let own = Stamp {
                source: ActorId(next(rng) | 1),
                ..stamp(now)
            };
            return encoded(&own, &scan(8), 32);
        }
        _ => {}
    }
    let mut v = encoded(&Stamp::default(), &scan(8), 32)?;
    match w {
        Malformed::Garbage => {
            let len = 8 + (next(rng) % 200) as usize;
            v = (0..len).map(|_| next(rng) as u8).collect();
            // Random bytes that happen to start like a message would be counted otherwise.
            if !matches!(decode_header(&v), Err(DecodeError::BadMagic { .. })) {
                v[0] ^= 0xff;
            }
        }
        Malformed::Empty => v.clear(),
        Malformed::Truncated => v.truncate(v.len() - 5),
        Malformed::BadMagic => damage_header(&mut v, HeaderDamage::Magic)?,
        Malformed::BadVersion => damage_header(&mut v, HeaderDamage::Version)?,
        Malformed::BadKind => damage_header(&mut v, HeaderDamage::Kind)?,
        Malformed::Oversize => damage_header(&mut v, HeaderDamage::PayloadLen)?,
        // The scan body's beam count now disagrees with its 8-beam payload.
        Malformed::BadBody => replace_body(&mut v, &scan(9))?,
        Malformed::Trailing => v.push(0),
        _ => {}
    }
    Ok(v)
}

/// A scan of `beams` far returns (the payload is zeroed: only its size matters here).
fn scan(beams: u32) -> Scan {
    Scan {
        beams,
        range_max: 8.0,
        ..Scan::default()
    }
}

/// One well-formed message with a zeroed payload of `payload` bytes.
fn encoded<B: Body>(stamp: &Stamp, body: &B, payload: usize) -> anyhow::Result<Vec<u8>> {
    let mut v = vec![0u8; encoded_len(body, payload)?];
    encode_into(stamp, body, &mut v)?;
    Ok(v)
}

/// A valid command message with the given deadline.
fn command(stamp: Stamp, deadline_ns: u64, w: f64) -> anyhow::Result<Vec<u8>> {
    let cmd = Command {
        v: 0.5,
        w,
        deadline_ns,
        scan_seq: 0,
    };
    encoded(&stamp, &cmd, 0)
}

fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}
