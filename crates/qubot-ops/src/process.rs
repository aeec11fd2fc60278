//! Starting and watching child processes, the one way the binary's chaos runner, the bench
//! harness and the tests do it: spawn with stdout read line by line on a thread, wait for a
//! line or for the exit within a deadline, stop (signal, then kill at a deadline), and never
//! leave a child behind (killed on drop). Also the free loopback ports they start them on.

use std::{
    io::{self, BufRead, BufReader, Read},
    net::TcpListener,
    process::{ChildStdin, Command, ExitStatus, Stdio},
    sync::{mpsc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub use std::sync::mpsc::RecvTimeoutError;

/// How often exits are polled while waiting with a deadline.
const POLL: Duration = Duration::from_millis(20);

/// A running child whose stdout is read line by line: killed (and reaped) on drop.
pub struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    /// In a mutex so that a `Child` can be shared between threads (`&Child` is `Sync`).
    lines: Mutex<mpsc::Receiver<String>>,
    reader: Option<JoinHandle<()>>,
    /// What the child is, for error messages.
    pub name: String,
}

impl Child {
    /// Starts `cmd` with stdout piped and read line by line; stdin and stderr as `cmd` sets
    /// them (stdin piped stays open until [`Child::close_stdin`]).
    pub fn spawn(name: &str, cmd: Command) -> io::Result<Child> {
        Child::spawn_tapped(name, cmd, |_| {})
    }

    /// [`Child::spawn`], with every stdout line shown to `tap` on the reader thread as it
    /// arrives (before [`Child::line`] returns it), for state that must follow the output
    /// while nobody is reading it.
    pub fn spawn_tapped(
        name: &str,
        mut cmd: Command,
        mut tap: impl FnMut(&str) + Send + 'static,
    ) -> io::Result<Child> {
        let mut child = cmd.stdout(Stdio::piped()).spawn()?;
        let stdin = child.stdin.take();
        let out = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other(format!("{name}: no stdout")))?;
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("child-stdout".into())
            .spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    tap(&line);
                    // Nobody reads the lines any more: keep draining, so the child never
                    // blocks on a full pipe, and keep tapping.
                    let _ = tx.send(line);
                }
            });
        let reader = match reader {
            Ok(r) => r,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Child {
            child,
            stdin,
            lines: Mutex::new(rx),
            reader: Some(reader),
            name: name.into(),
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line within `timeout`; `Disconnected` once stdout closed and every
    /// line was read.
    pub fn line(&self, timeout: Duration) -> Result<String, RecvTimeoutError> {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(timeout)
    }

    /// Every line still to come until stdout closes or `deadline` passes (given at least
    /// 100 ms, for lines written just before an exit).
    pub fn drain_lines(&self, deadline: Instant) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100));
            match self.line(left) {
                Ok(l) => out.push(l),
                Err(_) => return out,
            }
        }
    }

    /// True once stdout closed and the reader saw its last line.
    pub fn output_closed(&self) -> bool {
        self.reader.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the reader to see the end of stdout (after an exit: every line is tapped).
    pub fn join_output(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// Closes the child's stdin (a server's signal to finish).
    /// The child's stderr, when it was spawned piped (once: the caller reads it from then on).
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait()
    }

    /// The exit status, or `None` if the child is still running at the deadline.
    pub fn wait_within(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        wait_within(&mut self.child, timeout)
    }

    /// Sends `signal` to the child (harmless once it exited: it is not reaped before drop).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        send(self.child.id(), signal);
    }

    /// Sends `signal` (e.g. SIGINT), waits `grace` for the exit, then kills: `Ok(true)` when
    /// the child stopped on its own within the grace.
    pub fn stop(&mut self, signal: nix::sys::signal::Signal, grace: Duration) -> io::Result<bool> {
        if self.child.try_wait()?.is_none() {
            self.signal(signal);
        }
        if self.wait_within(grace)?.is_some() {
            return Ok(true);
        }
        self.kill();
        Ok(false)
    }

    /// SIGKILL and reap, if it is still running.
    pub fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `signal` to a pid this process spawned and has not reaped (never 0 or negative: that
/// would be a process group).
fn send(pid: u32, signal: nix::sys::signal::Signal) {
    if let Some(pid) = i32::try_from(pid).ok().filter(|&p| p > 0) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

fn wait_within(child: &mut std::process::Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

/// A child run to completion: its exit status and everything it wrote.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion with stdout and stderr captured (stdin: null unless set). At the
/// deadline the child is killed and the error is `TimedOut`.
pub fn run(mut cmd: Command, timeout: Duration) -> io::Result<Finished> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let out = std::thread::spawn(move || read_all(out));
    let err = std::thread::spawn(move || read_all(err));
    let Some(status) = wait_within(&mut child, timeout)? else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("did not finish within {timeout:?}"),
        ));
    };
    Ok(Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn read_all(r: Option<impl Read>) -> String {
    let mut s = String::new();
    if let Some(mut r) = r {
        let _ = r.read_to_string(&mut s);
    }
    s
}

/// A loopback port that was free a moment ago (see [`free_port_run`]).
pub fn free_port() -> io::Result<u16> {
    free_port_run(1)
}

/// The first of `n` consecutive loopback ports that are free now, for servers started a
/// moment later (hubs, `/metrics`). They are taken from below the kernel's ephemeral range:
/// a port from that range (what `bind(0)` hands out) can be taken by any outgoing connection
/// before the server binds it, which the suite saw as an actor's `/metrics` port "already in
/// use" and a supervisor giving up. The start is random, so parallel callers rarely meet.
pub fn free_port_run(n: u16) -> io::Result<u16> {
    let (lo, hi) = server_ports();
    // A port is free when it can be listened on; the probes are let go at once.
    free_run_in(n, lo, hi, |first| {
        let held: Vec<_> = (first..first + n)
            .map_while(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        held.len() == usize::from(n)
    })
}

/// The first of a run of `n` ports within `lo..hi` that `run_free` says are free, tried from
/// random starts.
fn free_run_in(n: u16, lo: u16, hi: u16, run_free: impl Fn(u16) -> bool) -> io::Result<u16> {
    if n == 0 || hi.saturating_sub(lo) <= n {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no room for {n} ports in {lo}..{hi}"),
        ));
    }
    let span = u64::from(hi - lo - n);
    let seed = std::hash::RandomState::new();
    for attempt in 0u64..500 {
        let first = lo + (std::hash::BuildHasher::hash_one(&seed, attempt) % span) as u16;
        if run_free(first) {
            return Ok(first);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!("no run of {n} free loopback ports in {lo}..{hi}"),
    ))
}

/// Ports for servers: from 10000 up to where the ephemeral range starts (32768 by default).
fn server_ports() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    (10_000, ephemeral_low.max(10_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_and_the_exit_is_seen() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo one; echo two"]).stdin(Stdio::null());
        let mut child = Child::spawn("sh", c).expect("spawn sh");
        assert_eq!(child.line(Duration::from_secs(10)).as_deref(), Ok("one"));
        let status = child.wait_within(Duration::from_secs(10)).expect("wait");
        assert!(status.is_some_and(|s| s.success()));
        assert_eq!(child.drain_lines(Instant::now()), ["two"]);
        child.join_output();
        assert!(child.output_closed());
    }

    #[test]
    fn stop_kills_what_ignores_the_signal() {
        let mut c = Command::new("sh");
        c.args(["-c", "trap '' INT; echo ready; sleep 30"]);
        let mut child = Child::spawn("sh", c).expect("spawn sh");
        assert_eq!(child.line(Duration::from_secs(10)).as_deref(), Ok("ready"));
        let stopped = child
            .stop(nix::sys::signal::Signal::SIGINT, Duration::from_millis(200))
            .expect("stop");
        assert!(!stopped, "SIGINT is ignored: the child was killed");
        assert!(child.try_wait().expect("try_wait").is_some());
    }

    #[test]
    fn run_captures_both_streams_and_enforces_the_deadline() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2; exit 3"]);
        let f = run(c, Duration::from_secs(10)).expect("run");
        assert_eq!(
            (f.status.code(), f.stdout.as_str(), f.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
        let mut c = Command::new("sleep");
        c.arg("30");
        let e = run(c, Duration::from_millis(100)).expect_err("deadline");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    // Whether a returned run is still free when the caller binds it cannot be asserted: any
    // process (another test of this binary, running in parallel) may take a port between the
    // probe and the bind, which is why the pipeline helpers retry on "Address already in
    // use". The choice itself is checked with a known set of busy ports.
    #[test]
    fn a_run_is_chosen_among_free_ports_only_and_below_the_ephemeral_range() {
        let busy = |p: u16| (100..120).contains(&p) && p != 117;
        for _ in 0..50 {
            // Only 120 (busy 100..120 but 117) starts a free run of 3 in 100..124.
            let first = free_run_in(3, 100, 124, |f| (f..f + 3).all(|p| !busy(p))).expect("a run");
            assert_eq!(first, 120);
        }
        let none = free_run_in(3, 100, 110, |_| false).expect_err("nothing is free");
        assert_eq!(none.kind(), io::ErrorKind::AddrNotAvailable);
        assert!(
            free_run_in(5, 100, 104, |_| true).is_err(),
            "no room for 5 in 4 ports"
        );
        // The real one: never from the range outgoing connections take their ports from.
        let first = free_port_run(4).expect("ports");
        let (lo, hi) = server_ports();
        assert!(first >= lo && first + 4 <= hi, "{first} not in {lo}..{hi}");
    }
}
