//! The writer thread: the receiving side only copies a message into a bounded queue; the
//! thread derives the Foxglove messages, compresses and writes. A full queue drops the newest
//! message, counted with its topic and reason, and never blocks the thread that received it.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use metrics::Counter;
use qubot_msg::metric_names::{
    RECORD_BYTES, RECORD_DISK_LOW, RECORD_DROPPED, RECORD_FILES, RECORD_MESSAGES, RECORD_WRITE_ERRORS,
};

use crate::file::RecordError;
use crate::filter::topic_of;
use crate::rotate::{Finished, Rotating, Written};
use crate::view::Channel;

/// Foxglove messages the recorder derived and wrote, by `channel` (its topic, `/scan`...):
/// apart from `qubot_record_messages_total`, which counts wire messages only
/// (docs/ARCHITECTURE.md §6 and §11).
pub const RECORD_DERIVED: &str = "qubot_record_derived_total";
/// Their bytes (before compression), by `channel`.
pub const RECORD_DERIVED_BYTES: &str = "qubot_record_derived_bytes_total";
/// Wire messages that gave no derived messages, by `topic` and `reason` (a drop reason's
/// label: the message did not decode); they are on their wire channel all the same.
pub const RECORD_UNDERIVED: &str = "qubot_record_underived_total";

/// One received message, copied out of the receive buffer.
pub struct Offer {
    pub key: String,
    pub recv_ns: u64,
    pub wire: Vec<u8>,
}

pub struct Writer {
    tx: SyncSender<Offer>,
    thread: JoinHandle<Result<Finished, RecordError>>,
}

impl Writer {
    /// Starts the thread that writes into `rec`; at most `capacity` messages wait for it.
    pub fn start(rec: Rotating, capacity: usize) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("record-write".into())
            .spawn(move || drain(rec, rx))?;
        Ok(Writer { tx, thread })
    }

    /// A handle for the receiving side; every one must be dropped before [`Writer::finish`].
    pub fn offerer(&self) -> Offerer {
        Offerer { tx: self.tx.clone() }
    }

    /// Whether the thread has ended on its own: the free-disk guard closed the recording, or
    /// a write failed.
    pub fn stopped(&self) -> bool {
        self.thread.is_finished()
    }

    /// Writes what is queued, then the file's summary and footer.
    pub fn finish(self) -> Result<Finished, RecordError> {
        drop(self.tx);
        self.thread
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

#[derive(Clone)]
pub struct Offerer {
    tx: SyncSender<Offer>,
}

impl Offerer {
    /// Queues `o` for writing; `false` when it was dropped (counted).
    pub fn offer(&self, o: Offer) -> bool {
        match self.tx.try_send(o) {
            Ok(()) => true,
            Err(TrySendError::Full(o)) => drop_counted(&o.key, "queue_full"),
            Err(TrySendError::Disconnected(o)) => drop_counted(&o.key, "writer_stopped"),
        }
    }
}

fn drop_counted(key: &str, reason: &'static str) -> bool {
    metrics::counter!(RECORD_DROPPED, "topic" => topic_of(key).to_owned(), "reason" => reason).increment(1);
    false
}

/// Help texts of the series only the recorder exports (the contract's are described by the
/// binary's exporter set-up): call once the exporter is installed.
pub fn describe_metrics() {
    metrics::describe_counter!(
        RECORD_DERIVED,
        "Foxglove messages derived from the wire messages and written to the recording, by channel."
    );
    metrics::describe_counter!(
        RECORD_DERIVED_BYTES,
        metrics::Unit::Bytes,
        "Bytes of the derived Foxglove messages (before compression), by channel."
    );
    metrics::describe_counter!(
        RECORD_UNDERIVED,
        "Wire messages recorded without derived messages (they did not decode), by topic and reason."
    );
}

/// The derived channels' counters, created at their first message.
#[derive(Default)]
struct DerivedMeters([Option<(Counter, Counter)>; Channel::COUNT]);

impl DerivedMeters {
    fn count(&mut self, key: &str, w: &Written) {
        for c in Channel::ALL {
            let (n, bytes) = w.derived[c.index()];
            if n == 0 {
                continue;
            }
            let (messages, b) = self.0[c.index()].get_or_insert_with(|| {
                (
                    metrics::counter!(RECORD_DERIVED, "channel" => c.topic()),
                    metrics::counter!(RECORD_DERIVED_BYTES, "channel" => c.topic()),
                )
            });
            messages.increment(u64::from(n));
            b.increment(bytes);
        }
        if let Some(reason) = w.underived {
            metrics::counter!(RECORD_UNDERIVED, "topic" => topic_of(key).to_owned(), "reason" => reason)
                .increment(1);
        }
    }
}

fn drain(mut rec: Rotating, rx: Receiver<Offer>) -> Result<Finished, RecordError> {
    let mut meters: HashMap<String, (Counter, Counter)> = HashMap::new();
    let mut derived = DerivedMeters::default();
    // Files started, read off the rotation rather than counted a second time here.
    let files = metrics::counter!(RECORD_FILES);
    files.absolute(u64::from(rec.started()));
    for o in rx {
        let written = match rec.write(&o.key, o.recv_ns, &o.wire) {
            Ok(w) => w,
            Err(e) => {
                // The file cannot take more: stop, so that later offers are counted as dropped.
                metrics::counter!(RECORD_WRITE_ERRORS).increment(1);
                return Err(e);
            }
        };
        if rec.closed() {
            // The free-disk guard closed the file cleanly; this message was not written.
            metrics::counter!(RECORD_DISK_LOW).increment(1);
            drop_counted(&o.key, "disk_low");
            break;
        }
        files.absolute(u64::from(rec.started()));
        let topic = topic_of(&o.key);
        let (messages, bytes) = meters.entry(topic.to_owned()).or_insert_with(|| {
            (
                metrics::counter!(RECORD_MESSAGES, "topic" => topic.to_owned()),
                metrics::counter!(RECORD_BYTES, "topic" => topic.to_owned()),
            )
        });
        messages.increment(1);
        bytes.increment(o.wire.len() as u64);
        derived.count(&o.key, &written);
    }
    rec.finish()
}
