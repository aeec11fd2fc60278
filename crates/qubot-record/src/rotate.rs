//! A recording as a series of files: a new file once the current one holds `split_bytes` or
//! has been open `split_after`, at most `max_files` kept (the oldest removed: the recent past
//! is what a robot's disk keeps, like a flight recorder), and a free-disk guard that closes the
//! recording cleanly before the disk fills (docs/ARCHITECTURE.md §11).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::file::{Options, RecordError, Recording, Summary};
use crate::view::{Channel, View, ViewOptions};

/// Free space is read again after this many messages (and at every new file).
const CHECK_EVERY: u64 = 256;

#[derive(Debug, Clone)]
pub struct Plan {
    /// The file; with splitting, `<stem>-000.<ext>`, `<stem>-001.<ext>`... beside it.
    pub path: PathBuf,
    pub opts: Options,
    pub robot: String,
    /// Start a new file after this many bytes of messages, wire and derived (0: never by
    /// size).
    pub split_bytes: u64,
    /// Start a new file after this long (None: never by time).
    pub split_after: Option<Duration>,
    /// Files kept (0: all).
    pub max_files: usize,
    /// Stop before the file system holding the recording has less free than this.
    pub min_free_bytes: u64,
    /// The Foxglove channels derived from the wire messages (None: the wire channels only).
    pub view: Option<ViewOptions>,
}

impl Plan {
    fn splits(&self) -> bool {
        self.split_bytes > 0 || self.split_after.is_some()
    }

    fn file(&self, index: u32) -> PathBuf {
        if !self.splits() {
            return self.path.clone();
        }
        numbered(&self.path, index)
    }
}

/// File number `index` of a recording asked for at `path`: `<stem>-007.<ext>` beside it (the
/// names of split files, and of the files of a restarted recorder under `qubot up`).
pub fn numbered(path: &Path, index: u32) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mcap".into());
    path.with_file_name(format!("{stem}-{index:03}.{ext}"))
}

/// How a recording ended.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub summary: Summary,
    /// The files that remain, oldest first.
    pub files: Vec<PathBuf>,
    /// Files started (one more than the rotations).
    pub started: u32,
    /// Set when the free-disk guard closed the recording: what it saw.
    pub disk_low: Option<String>,
}

/// What one offered message became, for the writer's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    /// Derived messages and their bytes, by [`Channel::index`].
    pub derived: [(u32, u64); Channel::COUNT],
    /// Why a message of a mapped topic gave no derived messages (a drop reason's label), when
    /// it gave none; the wire message was written all the same.
    pub underived: Option<&'static str>,
}

pub struct Rotating {
    plan: Plan,
    view: Option<View>,
    current: Option<Recording>,
    opened: Instant,
    bytes: u64,
    since_check: u64,
    kept: VecDeque<PathBuf>,
    done: Finished,
}

impl Rotating {
    /// Opens the first file; refuses to start where the disk is already below the guard.
    pub fn open(plan: Plan) -> Result<Rotating, RecordError> {
        let view = plan.view.clone().map(View::new);
        let mut r = Rotating {
            plan,
            view,
            current: None,
            opened: Instant::now(),
            bytes: 0,
            since_check: 0,
            kept: VecDeque::new(),
            done: Finished::default(),
        };
        if let Some(low) = r.disk_low() {
            return Err(RecordError::DiskLow(low));
        }
        r.next_file()?;
        Ok(r)
    }

    /// Files started so far.
    pub fn started(&self) -> u32 {
        self.done.started
    }

    /// Whether the guard has closed the recording: nothing more is written.
    pub fn closed(&self) -> bool {
        self.current.is_none()
    }

    /// Writes `wire` to its wire channel, then what the view derives from it to theirs.
    pub fn write(&mut self, key: &str, recv_ns: u64, wire: &[u8]) -> Result<Written, RecordError> {
        let mut written = Written::default();
        if self.current.is_none() {
            return Ok(written);
        }
        let due = (self.plan.split_bytes > 0 && self.bytes >= self.plan.split_bytes)
            || self.plan.split_after.is_some_and(|d| self.opened.elapsed() >= d);
        self.since_check += 1;
        if due || self.since_check >= CHECK_EVERY {
            self.since_check = 0;
            if let Some(low) = self.disk_low() {
                self.close_current()?;
                self.done.disk_low = Some(low);
                return Ok(written);
            }
        }
        if due {
            self.close_current()?;
            self.next_file()?;
        }
        let Some(rec) = self.current.as_mut() else {
            return Ok(written);
        };
        rec.write(key, recv_ns, wire)?;
        self.bytes += wire.len() as u64;
        if let Some(view) = self.view.as_mut() {
            match view.derive(key, wire, recv_ns) {
                Ok(derived) => {
                    for d in derived {
                        rec.write_derived(d)?;
                        let (n, bytes) = &mut written.derived[d.channel.index()];
                        *n += 1;
                        *bytes += d.data.len() as u64;
                        self.bytes += d.data.len() as u64;
                    }
                }
                Err(e) => {
                    rec.count_underived();
                    written.underived = Some(e.reason());
                }
            }
        }
        Ok(written)
    }

    pub fn finish(mut self) -> Result<Finished, RecordError> {
        self.close_current()?;
        self.done.files = self.kept.into_iter().collect();
        Ok(self.done)
    }

    fn next_file(&mut self) -> Result<(), RecordError> {
        let path = self.plan.file(self.done.started);
        self.current = Some(Recording::create(&path, &self.plan.opts, &self.plan.robot)?);
        if let Some(view) = self.view.as_mut() {
            view.new_file();
        }
        self.done.started += 1;
        self.kept.push_back(path);
        if self.plan.max_files > 0 {
            while self.kept.len() > self.plan.max_files {
                if let Some(old) = self.kept.pop_front() {
                    // Already gone is fine: the operator may have moved it.
                    let _ = std::fs::remove_file(&old);
                }
            }
        }
        self.opened = Instant::now();
        self.bytes = 0;
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), RecordError> {
        if let Some(rec) = self.current.take() {
            self.done.summary.merge(rec.finish()?);
        }
        Ok(())
    }

    /// `Some(what was seen)` when the file system of the recording has less free space than
    /// the guard allows.
    fn disk_low(&self) -> Option<String> {
        let dir = match self.plan.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let free = free_bytes(dir)?;
        (free < self.plan.min_free_bytes).then(|| {
            format!(
                "{} MiB free on {}, below the {} MiB the recorder leaves",
                free >> 20,
                dir.display(),
                self.plan.min_free_bytes >> 20
            )
        })
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One file at `path`, no guard.
    fn plan(path: PathBuf) -> Plan {
        Plan {
            path,
            opts: Options::default(),
            robot: "r".into(),
            split_bytes: 0,
            split_after: None,
            max_files: 0,
            min_free_bytes: 0,
            view: None,
        }
    }

    #[test]
    fn split_files_are_numbered_beside_the_named_one() {
        let mut p = plan(PathBuf::from("/data/run.mcap"));
        assert_eq!(p.file(3), PathBuf::from("/data/run.mcap"));
        p.split_bytes = 1;
        assert_eq!(p.file(3), PathBuf::from("/data/run-003.mcap"));
        assert!(free_bytes(Path::new("/")).is_some_and(|b| b > 0));
    }

    #[test]
    fn derived_channels_are_in_every_file_and_load_skips_them() {
        use qubot_msg::{encode_into, encoded_len, ranges_to_bytes, ActorId, Scan, Stamp};
        let scan = |seq: u64| {
            let body = Scan {
                beams: 3,
                ..Scan::default()
            };
            let payload = ranges_to_bytes(&[1.0, 2.0, 3.0]);
            let mut buf = vec![0; encoded_len(&body, payload.len()).expect("size")];
            let stamp = Stamp {
                seq,
                source: ActorId(7),
                origin_ns: 1_000 + seq,
                publish_ns: 2_000 + seq,
            };
            encode_into(&stamp, &body, &mut buf)
                .expect("encode")
                .copy_from_slice(&payload);
            buf
        };
        let path = std::env::temp_dir().join(format!("qubot-derived-{}.mcap", std::process::id()));
        let mut p = plan(path);
        p.view = Some(ViewOptions {
            world: Some(qubot_robot::World::builtin()),
            world_epoch_ns: 0,
        });
        // A file a message.
        p.split_bytes = 1;
        let mut r = Rotating::open(p).expect("open");
        let key = "qubot/r/sensor/main/scan";
        for seq in 0..6 {
            let w = r.write(key, 10_000 + seq, &scan(seq)).expect("write");
            assert_eq!(w.derived[Channel::Scan.index()].0, 1);
            assert!(w.underived.is_none());
        }
        // Malformed: recorded, not derived, said why.
        let w = r.write(key, 20_000, b"not a message").expect("write");
        assert_eq!(
            (w.underived, w.derived[Channel::Scan.index()].0),
            (Some("bad_magic"), 0)
        );
        let done = r.finish().expect("finish");
        assert_eq!(done.summary.messages, 7, "wire messages only");
        assert_eq!(done.summary.derived["/scan"], 6);
        // Once in each file with a message to draw it with (the last holds only the malformed).
        assert_eq!((done.started, done.summary.derived["/world"]), (7, 6));
        assert_eq!(done.summary.underived, 1);
        for f in &done.files {
            let buf = std::fs::read(f).expect("read");
            let got = crate::load(&buf, &crate::Filter::default()).expect("load");
            assert_eq!(got.keys, [key], "{}", f.display());
            assert!(got
                .entries
                .iter()
                .all(|e| e.wire.len() > 13 || e.wire == b"not a message"));
            std::fs::remove_file(f).ok();
        }
    }

    #[test]
    fn the_disk_guard_closes_a_running_recording_into_a_complete_file() {
        let path = std::env::temp_dir().join(format!("qubot-guard-{}.mcap", std::process::id()));
        let mut r = Rotating::open(plan(path.clone())).expect("open");
        for i in 0..100 {
            r.write("qubot/r/a/b/ping", i, b"not a qubot message")
                .expect("write");
        }
        // The disk "fills": the guard sees it at its next check.
        r.plan.min_free_bytes = u64::MAX;
        for i in 100..100 + CHECK_EVERY {
            r.write("qubot/r/a/b/ping", i, b"not a qubot message")
                .expect("write");
        }
        assert!(r.closed());
        let done = r.finish().expect("finish");
        assert!(
            done.disk_low.as_deref().is_some_and(|l| l.contains("MiB free")),
            "{done:?}"
        );
        let written = done.summary.messages;
        assert!((100..100 + CHECK_EVERY).contains(&written), "{written}");
        // Closed cleanly: summary and footer written, every message readable.
        let buf = std::fs::read(&path).expect("read");
        let got = crate::load(&buf, &crate::Filter::default()).expect("load");
        assert!(got.cut_short.is_none(), "{:?}", got.cut_short);
        assert_eq!(got.entries.len() as u64, written);
        std::fs::remove_file(&path).ok();
    }
}
