//! `qubot inject`: a foreign peer that puts damaged bytes on a key, to prove receivers count
//! and survive bad input. It bypasses the Qubot publisher on purpose.

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use qubot_msg::{encode_into, encoded_len, now_ns, Command, Scan, Stamp, HEADER_LEN, MAGIC};
use zenoh::Wait;

use crate::cli::{InjectArgs, Malformed};

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
    let bus = super::start(&args.common, "inject", "inject0")?;
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
    let deadline = std::time::Instant::now() + Duration::from_secs_f64(args.wait_subscriber.max(0.0));
    let peers = || bus.session().info().peers_zid().wait().count();
    while !publisher
        .matching_status()
        .wait()
        .map(|s| s.matching())
        .unwrap_or(false)
        || peers() < args.wait_peers
    {
        if std::time::Instant::now() >= deadline {
            anyhow::bail!(
                "no subscriber on {} (or fewer than {} peers) within {} s",
                args.key,
                args.wait_peers,
                args.wait_subscriber
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if args.wait_peers > 0 {
        // The subscriptions of peers just connected arrive right after their links open.
        std::thread::sleep(Duration::from_millis(200));
    }
    let what = if args.what.is_empty() {
        ALL.to_vec()
    } else {
        args.what.clone()
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut sent = serde_json::Map::new();
    for w in &what {
        for _ in 0..args.count {
            let bytes = damaged(*w, &mut rng)?;
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
    }
}

/// A valid 8-beam scan, then damaged as asked. Offsets follow the header layout of qubot-msg
/// (magic 0..4, version 4..6, kind 6..8, payload_len 44..48).
fn damaged(w: Malformed, rng: &mut u64) -> anyhow::Result<Vec<u8>> {
    match w {
        Malformed::StaleCommand => return command(-1.0, 0.5),
        Malformed::InvalidCommand => return command(1.0, f64::NAN),
        _ => {}
    }
    let scan = Scan {
        beams: 8,
        range_max: 8.0,
        ..Scan::default()
    };
    let mut v = vec![0u8; encoded_len(&scan, 32)?];
    encode_into(&Stamp::default(), &scan, &mut v)?;
    match w {
        Malformed::Garbage => {
            let len = 8 + (next(rng) % 200) as usize;
            v = (0..len).map(|_| next(rng) as u8).collect();
            if v[..4] == MAGIC.to_le_bytes() {
                v[0] ^= 0xff;
            }
        }
        Malformed::Empty => v.clear(),
        Malformed::Truncated => v.truncate(v.len() - 5),
        Malformed::BadMagic => v[0] = b'X',
        Malformed::BadVersion => v[4..6].copy_from_slice(&99u16.to_le_bytes()),
        Malformed::BadKind => v[6..8].copy_from_slice(&77u16.to_le_bytes()),
        Malformed::Oversize => v[44..48].copy_from_slice(&u32::MAX.to_le_bytes()),
        Malformed::BadBody => {
            // The scan body's `beams` field (after 3 f64 and 3 f32) now disagrees with the payload.
            let at = HEADER_LEN + 3 * 8 + 3 * 4;
            v[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
        }
        Malformed::Trailing => v.push(0),
        Malformed::StaleCommand | Malformed::InvalidCommand => {}
    }
    Ok(v)
}

/// A valid command message; `deadline_s` is relative to now (negative: already expired).
fn command(deadline_s: f64, w: f64) -> anyhow::Result<Vec<u8>> {
    let now = now_ns();
    let deadline = (now as f64 + deadline_s * 1e9).max(0.0) as u64;
    let cmd = Command {
        v: 0.5,
        w,
        deadline_ns: deadline,
        scan_seq: 0,
    };
    let stamp = Stamp {
        origin_ns: now,
        publish_ns: now,
        ..Stamp::default()
    };
    let mut v = vec![0u8; encoded_len(&cmd, 0)?];
    encode_into(&stamp, &cmd, &mut v)?;
    Ok(v)
}

fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}
