//! `qubot record`: a process of its own on the robot's bus that writes the wire bytes of every
//! topic, as received, into an MCAP file, with the Foxglove channels derived from them
//! (docs/ARCHITECTURE.md, "Recording"). zenoh's callback only copies a message into the
//! writer's bounded queue; derivation, compression and disk I/O run on the writer thread, and
//! nothing here is on the robot's loop. With `--live` the same channels are served to Foxglove
//! as they come (`qubot_live`), with or without a file.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use qubot_live::{Limits, Live, LiveOptions};
use qubot_msg::now_ns;
use qubot_record::{Compression, Filter, Offer, Options, Plan, Rotating, ViewOptions, Writer};
use qubot_robot::World;
use qubot_runtime::shutdown_signal;
use zenoh::Wait;

use crate::cli::{RecordArgs, RecordCompression};

/// What the derived channels draw: the world (resolved before the file is created, so a bad
/// name is refused with nothing written) and its clock.
fn view_options(args: &RecordArgs) -> anyhow::Result<Option<ViewOptions>> {
    if args.no_view {
        return Ok(None);
    }
    let world = args
        .world
        .as_deref()
        .map(|w| World::resolve(w, &args.worlds_dir).with_context(|| format!("--world {w}")))
        .transpose()?;
    if world.as_ref().is_some_and(World::is_dynamic) && args.world_epoch_ns.is_none() {
        tracing::warn!(
            "--world has moving obstacles and no --world-epoch-ns was given: /movers places them \
             on the recorder's own clock zero, not the run's"
        );
    }
    Ok(Some(ViewOptions {
        world,
        world_epoch_ns: args.world_epoch_ns.unwrap_or_else(now_ns),
    }))
}

/// Wire messages waiting for the live view's thread at most.
const LIVE_QUEUE: usize = 1024;

/// The live view of `--live`, started before the bus is joined: a taken address is refused
/// (exit 2) with nothing else started.
fn live_view(args: &RecordArgs, view: &Option<ViewOptions>) -> anyhow::Result<Option<Live>> {
    let (Some(addr), Some(view)) = (args.live, view) else {
        return Ok(None);
    };
    let live = Live::start(LiveOptions {
        addr,
        view: view.clone(),
        name: format!("qubot {}", args.common.robot),
        // Seconds of the drawn topics (about 90 messages/s); a live view has no use for an
        // older backlog, unlike the file's writer (`--queue`).
        queue: LIVE_QUEUE,
        limits: Limits::default(),
    })?;
    Ok(Some(live))
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let opts = Options {
        compression: match args.compression {
            RecordCompression::Zstd => Compression::Zstd,
            RecordCompression::Lz4 => Compression::Lz4,
            RecordCompression::None => Compression::None,
        },
        chunk_bytes: args.chunk_kib << 10,
    };
    let view = view_options(&args)?;
    // The file first: a path that cannot be written is refused before joining the bus.
    let writer = match &args.out {
        Some(out) => {
            let rec = Rotating::open(Plan {
                path: out.clone(),
                opts,
                robot: args.common.robot.clone(),
                split_bytes: args.split_kib << 10,
                split_after: (args.split_s > 0.0).then(|| Duration::from_secs_f64(args.split_s)),
                max_files: args.max_files as usize,
                min_free_bytes: args.min_free_mib << 20,
                view: view.clone(),
            })?;
            Some(Writer::start(rec, args.queue as usize).context("starting the writer thread")?)
        }
        None => None,
    };
    let live = live_view(&args, &view)?;
    let bus = crate::startup::start(&args.common, "record", "main")?;
    // Once the exporter is installed (by `startup`).
    if writer.is_some() {
        qubot_record::describe_metrics();
    }
    if live.is_some() {
        qubot_live::describe_metrics();
    }

    let filter = Filter {
        include: args.include.clone(),
        exclude: args.exclude.clone(),
    };
    let limit = if args.count == 0 { u64::MAX } else { args.count };
    let taken = Arc::new(AtomicU64::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let key = format!("qubot/{}/**", args.common.robot);
    let sub = {
        let offerer = writer.as_ref().map(Writer::offerer);
        let feeder = live.as_ref().map(Live::feeder);
        let (taken, done) = (taken.clone(), done.clone());
        bus.session()
            .declare_subscriber(key.clone())
            .callback(move |sample| {
                let key = sample.key_expr().as_str();
                if !filter.keeps(key) {
                    return;
                }
                // Past the count the recording is over: neither written nor a drop.
                let n = taken.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    return;
                }
                let recv_ns = now_ns();
                let wire = sample.payload().to_bytes();
                // The live view copies only what it draws, and never waits.
                if let Some(f) = &feeder {
                    f.offer(key, recv_ns, &wire);
                }
                if let Some(o) = &offerer {
                    o.offer(Offer {
                        key: key.to_owned(),
                        recv_ns,
                        wire: wire.into_owned(),
                    });
                }
                if n + 1 == limit {
                    done.notify_one();
                }
            })
            .wait()
            .map_err(|e| anyhow::anyhow!("subscribing to {key}: {e}"))?
    };
    let file = args.out.as_ref().map(|f| f.display().to_string());
    let live_addr = live.as_ref().map(|l| l.local_addr().to_string());
    tracing::info!(key, file, live = live_addr, "recording");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    let duration = args.duration;
    let why = rt.block_on(async {
        let until = async {
            if duration > 0.0 {
                tokio::time::sleep(Duration::from_secs_f64(duration)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        // The writer ends on its own when the free-disk guard closes the file (or a write
        // fails): then there is nothing left to record.
        let writer_ended = async {
            match &writer {
                Some(w) => {
                    while !w.stopped() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = done.notified() => Ok("count"),
            _ = until => Ok("duration"),
            _ = writer_ended => Ok("writer"),
            sig = shutdown_signal() => sig,
        }
    })?;
    // The subscriber holds an offerer: undeclared here, on the plain main thread
    // (docs/ARCHITECTURE.md §10), before the writer is told to finish.
    drop(sub);
    bus.close();
    if let Some(l) = live {
        l.stop();
    }
    let Some(writer) = writer else {
        println!("{}", serde_json::json!({ "live": live_addr, "stopped_by": why }));
        return Ok(ExitCode::SUCCESS);
    };
    let done = writer.finish().context("finishing the recording")?;
    let why = match &done.disk_low {
        Some(low) => {
            tracing::error!("recording closed by the free-disk guard: {low}");
            "disk_low"
        }
        None => why,
    };
    let summary = done.summary;
    let files: Vec<String> = done.files.iter().map(|f| f.display().to_string()).collect();
    let line = serde_json::json!({
        "file": file,
        "files": files,
        "files_started": done.started,
        "stopped_by": why,
        "messages": summary.messages,
        "bytes": summary.bytes,
        "by_topic": summary.by_topic,
        "undecodable": summary.undecodable,
        "live": live_addr,
    });
    println!("{line}");
    // Its own code, so that `qubot up --record` tells a full disk (left stopped) from a crash.
    Ok(match done.disk_low {
        Some(_) => ExitCode::from(RecordArgs::EXIT_DISK_LOW),
        None => ExitCode::SUCCESS,
    })
}
