//! One recording file: MCAP with a channel per key expression whose messages are the wire
//! bytes as received, and the Foxglove channels derived from them (`view`). Times: log time =
//! when the recorder received the message (kept monotonic in the file), publish time = the
//! header's publish stamp; the capture stamp stays in the bytes' own header
//! (docs/ARCHITECTURE.md, "Recording").

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use qubot_msg::{decode_header, SCHEMA_VERSION};

use crate::filter::topic_of;
use crate::view::{Channel, Derived};

/// The message encoding of the wire channels: a Qubot header, its body, its payload
/// (docs/ARCHITECTURE.md §3). No schema record: the header says what each message is.
pub const WIRE_ENCODING: &str = "qubot-wire";
/// The MCAP profile of a Qubot recording.
pub const PROFILE: &str = "qubot";
/// The name of the file's metadata record that says what wrote it and for which robot.
pub const METADATA: &str = "qubot";
/// Its key for the wire format's header version (also on every wire channel).
pub const HEADER_VERSION_KEY: &str = "header_version";
/// Its key for the robot the recording was made on.
pub const ROBOT_KEY: &str = "robot";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    Lz4,
    None,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub compression: Compression,
    /// Chunk size (bytes, before compression): what a killed recorder loses at most, besides
    /// what it had queued.
    pub chunk_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            compression: Compression::Zstd,
            chunk_bytes: 256 << 10,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("creating {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("writing the recording: {0}")]
    Mcap(#[from] mcap::McapError),
    #[error("not recording: {0}")]
    DiskLow(String),
}

/// What a recording holds when it is finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub messages: u64,
    pub bytes: u64,
    /// Messages per topic segment (`scan`, `cmd`...).
    pub by_topic: BTreeMap<String, u64>,
    /// Messages whose header did not decode: recorded as received, with the receive time as
    /// their publish time.
    pub undecodable: u64,
    /// Foxglove messages derived from the wire messages, per channel topic (`/scan`...); not
    /// in `messages`, `bytes` or `by_topic`, which count the wire messages only.
    pub derived: BTreeMap<String, u64>,
    /// Wire messages of a mapped topic that gave no derived messages (malformed): recorded on
    /// their wire channel all the same.
    pub underived: u64,
}

impl Summary {
    /// Adds another file's counts (a recording split into several files).
    pub fn merge(&mut self, other: Summary) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.undecodable += other.undecodable;
        self.underived += other.underived;
        for (t, n) in other.by_topic {
            *self.by_topic.entry(t).or_default() += n;
        }
        for (t, n) in other.derived {
            *self.derived.entry(t).or_default() += n;
        }
    }
}

pub struct Recording {
    out: mcap::Writer<BufWriter<File>>,
    channels: HashMap<String, u16>,
    /// The derived channels' ids, by [`Channel::index`]: registered at their first message,
    /// in every file.
    derived: [Option<u16>; Channel::COUNT],
    last_log_ns: u64,
    summary: Summary,
}

impl Recording {
    pub fn create(path: &Path, opts: &Options, robot: &str) -> Result<Recording, RecordError> {
        let file = File::create(path).map_err(|source| RecordError::Create {
            path: path.to_owned(),
            source,
        })?;
        let compression = match opts.compression {
            Compression::Zstd => Some(mcap::Compression::Zstd),
            Compression::Lz4 => Some(mcap::Compression::Lz4),
            Compression::None => None,
        };
        let mut out = mcap::WriteOptions::new()
            .profile(PROFILE)
            .library(concat!("qubot ", env!("CARGO_PKG_VERSION")))
            .compression(compression)
            .chunk_size(Some(opts.chunk_bytes))
            .create(BufWriter::new(file))?;
        let meta = BTreeMap::from([
            (HEADER_VERSION_KEY.to_owned(), SCHEMA_VERSION.to_string()),
            (ROBOT_KEY.to_owned(), robot.to_owned()),
        ]);
        out.write_metadata(&mcap::records::Metadata {
            name: METADATA.to_owned(),
            metadata: meta,
        })?;
        Ok(Recording {
            out,
            channels: HashMap::new(),
            derived: [None; Channel::COUNT],
            last_log_ns: 0,
            summary: Summary::default(),
        })
    }

    /// Appends the message `wire` received on `key` at `recv_ns` (ns since the epoch).
    pub fn write(&mut self, key: &str, recv_ns: u64, wire: &[u8]) -> Result<(), RecordError> {
        let channel_id = match self.channels.get(key) {
            Some(&id) => id,
            None => {
                let meta = BTreeMap::from([
                    ("topic".to_owned(), topic_of(key).to_owned()),
                    (HEADER_VERSION_KEY.to_owned(), SCHEMA_VERSION.to_string()),
                ]);
                let id = self.out.add_channel(0, key, WIRE_ENCODING, &meta)?;
                self.channels.insert(key.to_owned(), id);
                id
            }
        };
        // A wall clock stepped back would break the file's time order; hold it instead.
        let log_time = recv_ns.max(self.last_log_ns);
        self.last_log_ns = log_time;
        let header = decode_header(wire).ok();
        if header.is_none() {
            self.summary.undecodable += 1;
        }
        self.out.write_to_known_channel(
            &mcap::records::MessageHeader {
                channel_id,
                // MCAP's sequence is 32 bits: the header's own (64) stays in the bytes.
                sequence: header.map_or(0, |h| h.stamp.seq as u32),
                log_time,
                publish_time: header.map_or(log_time, |h| h.stamp.publish_ns),
            },
            wire,
        )?;
        self.summary.messages += 1;
        self.summary.bytes += wire.len() as u64;
        *self.summary.by_topic.entry(topic_of(key).to_owned()).or_default() += 1;
        Ok(())
    }

    /// Appends a message derived from a wire message (after that wire message: its log time is
    /// held to the file's order the same way).
    pub fn write_derived(&mut self, d: &Derived) -> Result<(), RecordError> {
        let channel_id = match self.derived[d.channel.index()] {
            Some(id) => id,
            None => {
                let schema_id = match d.channel.schema() {
                    Some(s) => self.out.add_schema(&s.name, &s.encoding, &s.data)?,
                    None => 0,
                };
                let topic = d.channel.topic();
                let id =
                    self.out
                        .add_channel(schema_id, topic, d.channel.message_encoding(), &BTreeMap::new())?;
                self.derived[d.channel.index()] = Some(id);
                id
            }
        };
        let log_time = d.log_ns.max(self.last_log_ns);
        self.last_log_ns = log_time;
        self.out.write_to_known_channel(
            &mcap::records::MessageHeader {
                channel_id,
                sequence: d.sequence,
                log_time,
                publish_time: d.publish_ns,
            },
            &d.data,
        )?;
        let topic = d.channel.topic();
        match self.summary.derived.get_mut(topic) {
            Some(n) => *n += 1,
            None => {
                self.summary.derived.insert(topic.to_owned(), 1);
            }
        }
        Ok(())
    }

    /// Counts a wire message of a mapped topic that gave no derived messages.
    pub fn count_underived(&mut self) {
        self.summary.underived += 1;
    }

    /// Writes the summary and footer: the file is complete.
    pub fn finish(mut self) -> Result<Summary, RecordError> {
        self.out.finish()?;
        Ok(self.summary)
    }
}
