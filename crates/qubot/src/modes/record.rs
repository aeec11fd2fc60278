//! `qubot record`: a process of its own on the robot's bus that writes the wire bytes of every
//! topic, as received, into an MCAP file, with the Foxglove channels derived from them
//! (docs/ARCHITECTURE.md, "Recording"). zenoh's callback only copies a message into the
//! writer's bounded queue; derivation, compression and disk I/O run on the writer thread, and
//! nothing here is on the robot's loop.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
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
    let rec = Rotating::open(Plan {
        path: args.out.clone(),
        opts,
        robot: args.common.robot.clone(),
        split_bytes: args.split_kib << 10,
        split_after: (args.split_s > 0.0).then(|| Duration::from_secs_f64(args.split_s)),
        max_files: args.max_files as usize,
        min_free_bytes: args.min_free_mib << 20,
        view,
    })?;
    let writer = Writer::start(rec, args.queue as usize).context("starting the writer thread")?;
    let bus = crate::startup::start(&args.common, "record", "main")?;
    qubot_record::describe_metrics();

    let filter = Filter {
        include: args.include.clone(),
        exclude: args.exclude.clone(),
    };
    let limit = if args.count == 0 { u64::MAX } else { args.count };
    let taken = Arc::new(AtomicU64::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let key = format!("qubot/{}/**", args.common.robot);
    let sub = {
        let (offerer, taken, done) = (writer.offerer(), taken.clone(), done.clone());
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
                offerer.offer(Offer {
                    key: key.to_owned(),
                    recv_ns: now_ns(),
                    wire: sample.payload().to_bytes().into_owned(),
                });
                if n + 1 == limit {
                    done.notify_one();
                }
            })
            .wait()
            .map_err(|e| anyhow::anyhow!("subscribing to {key}: {e}"))?
    };
    tracing::info!(key, file = %args.out.display(), "recording");

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
            while !writer.stopped() {
                tokio::time::sleep(Duration::from_millis(100)).await;
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
        "file": args.out.display().to_string(),
        "files": files,
        "files_started": done.started,
        "stopped_by": why,
        "messages": summary.messages,
        "bytes": summary.bytes,
        "by_topic": summary.by_topic,
        "undecodable": summary.undecodable,
    });
    println!("{line}");
    // Its own code, so that `qubot up --record` tells a full disk (left stopped) from a crash.
    Ok(match done.disk_low {
        Some(_) => ExitCode::from(RecordArgs::EXIT_DISK_LOW),
        None => ExitCode::SUCCESS,
    })
}
