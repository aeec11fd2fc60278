//! A recording as a series of files: a new file once the current one holds `split_bytes` or
//! has been open `split_after`, at most `max_files` kept (the oldest removed: the recent past
//! is what a robot's disk keeps, like a flight recorder), and a free-disk guard that closes the
//! recording cleanly before the disk fills (docs/ARCHITECTURE.md §11).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::file::{Options, RecordError, Recording, Summary};

/// Free space is read again after this many messages (and at every new file).
const CHECK_EVERY: u64 = 256;

#[derive(Debug, Clone)]
pub struct Plan {
    /// The file; with splitting, `<stem>-000.<ext>`, `<stem>-001.<ext>`... beside it.
    pub path: PathBuf,
    pub opts: Options,
    pub robot: String,
    /// Start a new file after this many wire bytes (0: never by size).
    pub split_bytes: u64,
    /// Start a new file after this long (None: never by time).
    pub split_after: Option<Duration>,
    /// Files kept (0: all).
    pub max_files: usize,
    /// Stop before the file system holding the recording has less free than this.
    pub min_free_bytes: u64,
}

impl Plan {
    fn splits(&self) -> bool {
        self.split_bytes > 0 || self.split_after.is_some()
    }

    fn file(&self, index: u32) -> PathBuf {
        if !self.splits() {
            return self.path.clone();
        }
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = self
            .path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| "mcap".into());
        self.path.with_file_name(format!("{stem}-{index:03}.{ext}"))
    }
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

pub struct Rotating {
    plan: Plan,
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
        let mut r = Rotating {
            plan,
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

    pub fn write(&mut self, key: &str, recv_ns: u64, wire: &[u8]) -> Result<(), RecordError> {
        if self.current.is_none() {
            return Ok(());
        }
        let due = (self.plan.split_bytes > 0 && self.bytes >= self.plan.split_bytes)
            || self.plan.split_after.is_some_and(|d| self.opened.elapsed() >= d);
        self.since_check += 1;
        if due || self.since_check >= CHECK_EVERY {
            self.since_check = 0;
            if let Some(low) = self.disk_low() {
                self.close_current()?;
                self.done.disk_low = Some(low);
                return Ok(());
            }
        }
        if due {
            self.close_current()?;
            self.next_file()?;
        }
        let rec = self.current.as_mut().expect("a file is open");
        rec.write(key, recv_ns, wire)?;
        self.bytes += wire.len() as u64;
        Ok(())
    }

    pub fn finish(mut self) -> Result<Finished, RecordError> {
        self.close_current()?;
        self.done.files = self.kept.into_iter().collect();
        Ok(self.done)
    }

    fn next_file(&mut self) -> Result<(), RecordError> {
        let path = self.plan.file(self.done.started);
        self.current = Some(Recording::create(&path, &self.plan.opts, &self.plan.robot)?);
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
