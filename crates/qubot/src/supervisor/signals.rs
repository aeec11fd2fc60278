//! SIGINT and SIGTERM for the supervisor, without signal handlers: both are blocked in every
//! thread and one thread takes them with `sigwait`, so a signal is never lost, whatever the
//! process is doing when it arrives and whichever of the process's several tokio runtimes
//! (ours, zenoh's) would otherwise have read tokio's shared signal pipe. (Measured: with
//! tokio's handlers, about one Ctrl-C in a hundred went unnoticed under `just stress-stop`.)
//! Blocked signals are also delivered to a PID 1 that has no handler, which a container's
//! entrypoint needs.

use nix::sys::signal::{SigSet, Signal};
use tokio::sync::mpsc;

fn stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}

pub struct Signals {
    rx: mpsc::UnboundedReceiver<&'static str>,
}

impl Signals {
    /// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread started after
    /// it, then starts the thread that waits for them. Call it before any other thread starts.
    pub fn block_and_watch() -> std::io::Result<Signals> {
        let set = stop_signals();
        set.thread_block().map_err(std::io::Error::from)?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                let Ok(sig) = set.wait() else { continue };
                let name = if sig == Signal::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                if tx.send(name).is_err() {
                    return;
                }
            })?;
        Ok(Signals { rx })
    }

    /// The next SIGINT or SIGTERM (never resolves if the waiting thread is gone).
    pub async fn recv(&mut self) -> &'static str {
        match self.rx.recv().await {
            Some(sig) => sig,
            None => std::future::pending().await,
        }
    }

    /// For a child, between fork and exec: the blocked mask is inherited across exec, and an
    /// actor must receive the SIGTERM that stops it. Only async-signal-safe calls.
    pub fn unblock_in_child() -> std::io::Result<()> {
        stop_signals().thread_unblock().map_err(std::io::Error::from)
    }
}
