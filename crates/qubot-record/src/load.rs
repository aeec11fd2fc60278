//! Reading a recording back for replay: its wire channels (filtered), in file order, which is
//! receive order. A file cut short (a killed recorder) gives up what its complete chunks hold
//! and says where it ended; a file of another header version is refused.

use std::collections::BTreeMap;

use mcap::records::Record;
use qubot_msg::SCHEMA_VERSION;

use crate::file::{HEADER_VERSION_KEY, METADATA, ROBOT_KEY, WIRE_ENCODING};
use crate::filter::Filter;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not an MCAP file: {0}")]
    NotMcap(String),
    #[error("not a Qubot recording: no {METADATA:?} metadata record (written by `qubot record`)")]
    NotQubot,
    #[error(
        "recorded with header version {found}, this build reads version {SCHEMA_VERSION}: \
         replay it with the release that recorded it"
    )]
    WrongVersion { found: String },
}

/// One recorded message.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Index into [`Loaded::keys`].
    pub key: usize,
    /// When the recorder received it (ns since the epoch).
    pub log_ns: u64,
    pub wire: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Loaded {
    /// The robot the recording was made on.
    pub robot: String,
    /// The key expressions of the replayed channels.
    pub keys: Vec<String>,
    pub entries: Vec<Entry>,
    /// Why reading stopped before the file's end, when it did.
    pub cut_short: Option<String>,
}

/// Reads the wire channels of the recording `buf` that `filter` keeps.
pub fn load(buf: &[u8], filter: &Filter) -> Result<Loaded, LoadError> {
    let records =
        mcap::read::ChunkFlattener::new_with_options(buf, mcap::read::Options::IgnoreEndMagic.into())
            .map_err(|e| LoadError::NotMcap(e.to_string()))?;
    let mut out = Loaded::default();
    let mut version = None;
    // Channel id in the file -> index in `out.keys`; channels not replayed are absent.
    let mut channels: BTreeMap<u16, usize> = BTreeMap::new();
    let mut seen_any = false;
    for r in records {
        let r = match r {
            Ok(r) => r,
            Err(e) if seen_any => {
                out.cut_short = Some(e.to_string());
                break;
            }
            Err(e) => return Err(LoadError::NotMcap(e.to_string())),
        };
        seen_any = true;
        match r {
            Record::Metadata(m) if m.name == METADATA => {
                version = m.metadata.get(HEADER_VERSION_KEY).cloned();
                out.robot = m.metadata.get(ROBOT_KEY).cloned().unwrap_or_default();
            }
            // A channel is written again in the summary section: the first time counts.
            Record::Channel(c)
                if c.message_encoding == WIRE_ENCODING
                    && filter.keeps(&c.topic)
                    && !channels.contains_key(&c.id) =>
            {
                channels.insert(c.id, out.keys.len());
                out.keys.push(c.topic);
            }
            Record::Message { header, data } => {
                if let Some(&key) = channels.get(&header.channel_id) {
                    out.entries.push(Entry {
                        key,
                        log_ns: header.log_time,
                        wire: data.into_owned(),
                    });
                }
            }
            _ => {}
        }
    }
    match version {
        None => Err(LoadError::NotQubot),
        Some(v) if v != SCHEMA_VERSION.to_string() => Err(LoadError::WrongVersion { found: v }),
        Some(_) => Ok(out),
    }
}
