//! Sharing stderr between log lines and the supervisor's refreshed status line: a log line
//! first erases a status line that is on screen, so the two never share a row. The status
//! line is drawn again at its next refresh.

use std::{
    io::{StderrLock, Write},
    sync::atomic::{AtomicBool, Ordering},
};

/// True while a status line (no newline at its end) is on the terminal's last row.
static STATUS_SHOWN: AtomicBool = AtomicBool::new(false);

/// Draws `line` as the status line (replacing the previous one).
pub fn show_status(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{line}\x1b[K");
    let _ = err.flush();
    STATUS_SHOWN.store(true, Ordering::Release);
}

/// Leaves the status line on screen and moves below it (at the end of a run).
pub fn end_status() {
    let mut err = std::io::stderr().lock();
    if STATUS_SHOWN.swap(false, Ordering::AcqRel) {
        let _ = writeln!(err);
    }
}

/// One line from elsewhere (a child's stderr), on a row of its own.
pub fn log_line(line: &str) {
    use tracing_subscriber::fmt::MakeWriter;
    let mut err = LogWriter.make_writer();
    let _ = writeln!(err, "{line}");
}

/// tracing's writer: stderr, after erasing a status line on screen.
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = StderrLock<'static>;

    fn make_writer(&'a self) -> Self::Writer {
        let mut err = std::io::stderr().lock();
        if STATUS_SHOWN.swap(false, Ordering::AcqRel) {
            let _ = write!(err, "\r\x1b[K");
        }
        err
    }
}
