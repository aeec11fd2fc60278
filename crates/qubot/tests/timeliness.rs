//! The control loop's timing, judged from outside the actors: ticks on deadlines (a stall is
//! counted, never bunched), the lateness histogram against an independent subscriber, the
//! realtime profile as the kernel reports it, and the loop at 100 Hz.

mod common;

use std::process::Command;
use std::time::Duration;

use common::counters::metrics;
use common::pipeline::{assert_clean_run, wait_driving, Up};
use common::{qubot, serial, signal_pid, skip_or_fail, wait_for, Proc, TempFile, QUBOT};
use qubot_bus::telemetry::LATENCY_RESOLUTION;
use qubot_msg::metric_names::{REALTIME_REFUSED, TICKS_MISSED, TICK_LATENESS};
use qubot_ops::promtext::{self, quantile_in};

const SENSOR: u16 = 1;
const CAPTURE: [(&str, &str); 2] = [("actor", "sensor"), ("timer", "capture")];
/// The sensor's default period (20 Hz).
const P_NS: i64 = 50_000_000;

/// One scan as `qubot listen --print` saw it: capture stamp and arrival, ns.
struct Seen {
    origin_ns: i64,
    recv_ns: i64,
}

/// `qubot listen --print` on `up`'s bus: an independent subscriber process.
fn listener(up: &Up, count: usize) -> Proc {
    let n = count.to_string();
    Proc::spawn(
        "qubot listen",
        &["listen", "--connect", &up.hub, "--print", "--count", &n],
    )
}

fn read(l: &Proc, n: usize) -> Vec<Seen> {
    (0..n)
        .map(|_| {
            let v = common::json(&l.line(Duration::from_secs(30)));
            let ns = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}")) as i64;
            Seen {
                origin_ns: ns("origin_ns"),
                recv_ns: ns("recv_ns"),
            }
        })
        .collect()
}

fn missed(up: &Up) -> f64 {
    let m = metrics(&up.metrics_of(SENSOR)).expect("sensor /metrics");
    promtext::sum(&m, TICKS_MISSED, &CAPTURE)
}

fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
fn a_stalled_sensor_counts_its_missed_ticks_and_does_not_bunch_them() {
    let _g = serial();
    let up = Up::start("tl-stall", "default", &[]);
    let sensor = up.spawned("sensor");
    wait_driving(&up, 20.0);
    let l = listener(&up, 0);
    let before = read(&l, 20);
    let missed0 = missed(&up);

    // Stopped for 1 s: at 20 Hz about 20 deadlines pass with nobody to run them.
    signal_pid(sensor, "STOP");
    std::thread::sleep(Duration::from_secs(1));
    signal_pid(sensor, "CONT");
    let after = read(&l, 40);
    let counted = wait_for("the missed ticks counted", Duration::from_secs(10), || {
        let d = missed(&up) - missed0;
        (d > 0.0).then_some(d)
    });
    // 19 or 20 at an exact second; SIGSTOP/SIGCONT and the sleep are each off by a few ms.
    assert!(
        (17.0..=23.0).contains(&counted),
        "missed ticks counted: {counted}"
    );

    let stamps: Vec<i64> = before.iter().chain(&after).map(|s| s.origin_ns).collect();
    let gaps: Vec<i64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    let stall = gaps
        .iter()
        .position(|&g| g > 900_000_000)
        .unwrap_or_else(|| panic!("no stall in the capture stamps: {gaps:?}"));
    // The tick that runs at the resume is the latest deadline, up to a period late; the one
    // after it is back on the grid, so that first interval may be anything up to a period.
    // From then on: no two captures within half a period (nothing bunched), and the period
    // holds (median within 1 % of nominal).
    let steady = &gaps[stall + 2..];
    assert!(steady.len() >= 20, "{steady:?}");
    assert!(
        steady.iter().all(|&g| g > P_NS / 2),
        "captures bunched after the stall: {steady:?}"
    );
    let m = median(steady.to_vec());
    assert!(
        (m - P_NS).abs() < P_NS / 100,
        "median period after the stall {m} ns"
    );
}

#[test]
fn tick_lateness_agrees_with_an_independent_subscriber() {
    let _g = serial();
    let up = Up::start("tl-truth", "default", &[]);
    wait_driving(&up, 20.0);
    let l = listener(&up, 0);
    read(&l, 5);
    // The same ticks on both sides: the scans captured between the two scrapes (by their
    // capture stamps; the subscriber may lag behind the sensor on a busy machine).
    let h0 = metrics(&up.metrics_of(SENSOR)).expect("sensor");
    let from = qubot_msg::now_ns() as i64;
    std::thread::sleep(Duration::from_secs(10)); // 200 ticks at 20 Hz: the window, not a wait
    let to = qubot_msg::now_ns() as i64;
    let h1 = metrics(&up.metrics_of(SENSOR)).expect("sensor");
    let mut seen = Vec::new();
    loop {
        let s = read(&l, 1).remove(0);
        if s.origin_ns > to {
            break;
        }
        if s.origin_ns > from {
            seen.push(s);
        }
    }
    assert!(seen.len() >= 150, "{} scans in 10 s", seen.len());
    // The actors' histogram over the same window (bucket counters are cumulative).
    let window = promtext::window(&h0, &h1);
    // The 90th percentile: with 200 ticks, a p99 is the third largest, which one tick that
    // falls into one window and not the other (a tick recorded during a scrape) can move by
    // milliseconds; the 90th is 20 ticks in.
    const Q: f64 = 0.9;
    let hist = quantile_in(&window, TICK_LATENESS, &CAPTURE, Q).expect("lateness observed");

    // The subscriber's view: a capture stamp minus its slot's place on the grid is how much
    // later than the grid's origin this tick was. The origin is unknown to the subscriber; it is
    // found from the stamps themselves, not from one scan (the first scan of the window may be
    // late itself, which once shifted every punctual tick by most of a period). Taken modulo
    // the period, most ticks crowd within a fraction of a millisecond: the densest millisecond
    // of the circle is the origin, up to the lateness of its most punctual tick.
    let o0 = seen[0].origin_ns;
    let ring: Vec<i64> = seen.iter().map(|s| (s.origin_ns - o0).rem_euclid(P_NS)).collect();
    let crowd = |a: i64| {
        ring.iter()
            .filter(|&&b| (b - a).rem_euclid(P_NS) < 1_000_000)
            .count()
    };
    let densest = *ring.iter().max_by_key(|&&a| crowd(a)).expect("scans");
    let base = o0 + densest;
    // A scan's place on the grid: its slot, and how far past the slot it was captured, taken in
    // [-P/10, 9P/10): a tick 45 ms late is rare, one a whole period late is skipped.
    let place = |s: &Seen| {
        let d = s.origin_ns - base + P_NS / 10;
        (d.div_euclid(P_NS), d.rem_euclid(P_NS) - P_NS / 10)
    };
    let r0 = seen[0].recv_ns;
    let late = |at: &dyn Fn(&Seen) -> i64| -> f64 {
        let off: Vec<i64> = seen.iter().map(|s| at(s) - place(s).0 * P_NS).collect();
        let best = *off.iter().min().expect("scans");
        let mut v: Vec<i64> = off.iter().map(|o| o - best).collect();
        v.sort_unstable();
        v[(v.len() as f64 * Q) as usize] as f64 * 1e-9
    };
    let least = quantile_in(&window, TICK_LATENESS, &CAPTURE, 0.0).map_or(0.0, |q| q.upper);
    // 1. Capture stamps, as the subscriber read them off the wire: the sensor stamps a scan a
    //    few microseconds after the histogram's instant, so both must say the same, to within
    //    the bucket, the most punctual tick's own lateness (the grid's origin is unknown to the
    //    subscriber) and 0.1 ms.
    let by_capture = late(&|s| s.origin_ns - base);
    // 2. Arrival stamps, the subscriber's own clock: each arrival is the tick's lateness plus
    //    its trip over the bus, which only adds, so the histogram must not claim more than the
    //    subscriber saw (to within the bucket and the most punctual tick's lateness). Its trip
    //    has no upper bound on a loaded machine, so arrivals cannot bound the histogram from
    //    below; the capture stamps do that.
    let by_arrival = late(&|s| s.recv_ns - r0);
    println!(
        "lateness p90: histogram {}, from capture stamps {:.3} ms, from arrivals {:.3} ms",
        hist.ms(),
        by_capture * 1e3,
        by_arrival * 1e3
    );
    // Both measures are quantiles of nearly the same ticks (the two windows may differ by a
    // tick at either edge, and a busy machine can preempt the sensor between the two clock
    // reads), so they agree to within one bucket step either side, not within the bucket.
    let slack = least + 1e-4;
    let (lower, upper) = (hist.lower / LATENCY_RESOLUTION, hist.upper * LATENCY_RESOLUTION);
    assert!(
        by_capture <= upper + slack && lower <= by_capture + slack,
        "capture stamps say p90 {:.3} ms late, the histogram {}",
        by_capture * 1e3,
        hist.ms()
    );
    assert!(
        lower <= by_arrival + slack,
        "the histogram's p90 {} is more than the subscriber saw ({:.3} ms)",
        hist.ms(),
        by_arrival * 1e3
    );
    // The capture stamps are the producer's own: the grid holds (no drift). The typical offset
    // from the grid of the first and of the last 50 scans, ~150 periods apart, may differ by
    // under 1 ms: under 0.02 % of the period.
    let typical = |part: &[Seen]| median(part.iter().map(|s| place(s).1).collect());
    let n = seen.len();
    let drift = typical(&seen[n - 50..]) - typical(&seen[..50]);
    assert!(drift.abs() < 1_000_000, "the capture grid drifted by {drift} ns");
}

/// A node config with the realtime profile on for the sensor and the actuator.
fn realtime_config(name: &str, extra: &str) -> TempFile {
    TempFile::toml(
        name,
        &format!("[realtime]\nenabled = true\npriority = 10\ncpus = [0]\nlock_memory = true\n{extra}"),
    )
}

/// `qubot up ARGS` run as a root without CAP_SYS_NICE and CAP_IPC_LOCK and with no realtime
/// priority allowed: what an unprivileged board user gets.
fn unprivileged_up(up_args: &[&str]) -> Option<Command> {
    if !common::runs("setpriv", &["--version"]) {
        skip_or_fail(
            "realtime without privilege",
            "setpriv (util-linux) is not installed",
        );
        return None;
    }
    let mut c = Command::new("prlimit");
    c.args([
        "--rtprio=0",
        "--memlock=65536",
        "--",
        "setpriv",
        "--bounding-set",
        "-sys_nice,-ipc_lock",
        "--",
    ])
    .arg(QUBOT)
    .arg("up")
    .args(up_args)
    .env("RUST_LOG", "warn");
    Some(c)
}

#[test]
fn a_refused_realtime_profile_warns_counts_and_runs_normally() {
    let _g = serial();
    let file = realtime_config("tl-rt-refused", "");
    let (hub, base) = common::pipeline::pipeline_ports();
    let base_s = base.to_string();
    let args = [
        "--config",
        &file.arg(),
        "--robot",
        "tl-rt-refused",
        "--hub",
        &hub,
        "--metrics-port-base",
        &base_s,
    ];
    let Some(cmd) = unprivileged_up(&args) else {
        return;
    };
    let (p, stderr) = Proc::from_command_keeping_stderr("qubot up (unprivileged)", cmd);
    let sensor = format!("127.0.0.1:{}", base + SENSOR);
    let actuator = format!("127.0.0.1:{}", base + 3);
    let refused = wait_for("the refusal counted", Duration::from_secs(60), || {
        let m = metrics(&sensor)?;
        let n = promtext::sum(&m, REALTIME_REFUSED, &[("actor", "sensor"), ("part", "priority")]);
        (n > 0.0).then_some(n)
    });
    assert!(refused >= 1.0);
    // And the loop runs, with normal scheduling.
    wait_for("commands applied", Duration::from_secs(60), || {
        let m = metrics(&actuator)?;
        (promtext::sum(&m, common::counters::RECEIVED, &[("topic", "cmd")]) > 20.0).then_some(())
    });
    let err = stderr.lock().expect("stderr").join("\n");
    assert!(
        err.contains("realtime.priority: refused by the system") && err.contains("normal scheduling"),
        "no clear warning in:\n{err}"
    );
    signal_pid(p.child.id(), "INT");
    let (code, _) = p.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "the unprivileged run did not stop cleanly");
}

#[test]
fn a_required_realtime_profile_that_is_refused_starts_nothing() {
    let _g = serial();
    let file = realtime_config("tl-rt-required", "required = true\n");
    let port = common::free_port().to_string();
    let args = [
        "--config",
        &file.arg(),
        "--robot",
        "tl-rt-required",
        "--metrics-port-base",
        &port,
    ];
    let Some(mut cmd) = unprivileged_up(&args) else {
        return;
    };
    let out = cmd.output().expect("qubot up");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    assert!(
        err.contains("realtime.priority") && err.contains("required"),
        "{err}"
    );
    // Nothing started: no event on stdout, no child spawned.
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn bad_realtime_values_are_refused_naming_the_field() {
    for (toml, field) in [
        ("[realtime]\npriority = 0\n", "realtime.priority"),
        ("[realtime]\npriority = 100\n", "realtime.priority"),
        ("[realtime]\ncpus = [4096]\n", "realtime.cpus"),
        ("[realtime]\nactors = [\"lidar\"]\n", "realtime.actors"),
    ] {
        let f = TempFile::toml("tl-rt-bad", toml);
        let out = qubot(&["up", "--config", &f.arg()]).output().expect("qubot up");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{toml}: {err}");
        assert!(err.contains(field), "{toml}: {err}");
    }
}

/// `(policy, rt_priority)` of thread `tid` of `pid`, from /proc (stat fields 41 and 40).
fn sched_of(pid: u32, tid: &str) -> (u32, u32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    (
        f[41 - 3].parse().expect("policy"),
        f[40 - 3].parse().expect("rt_priority"),
    )
}

fn status_field(path: &str, key: &str) -> String {
    std::fs::read_to_string(path)
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("{key} in {path}"))
}

#[test]
fn the_realtime_profile_applied_as_root_reads_back_from_proc() {
    let _g = serial();
    if !nix::unistd::geteuid().is_root() {
        skip_or_fail("realtime as root", "not running as root");
        return;
    }
    let file = realtime_config("tl-rt-root", "");
    let up = Up::start("tl-rt-root", "default", &["--config", &file.arg()]);
    let sensor = up.spawned("sensor");
    wait_driving(&up, 10.0);
    let tid = wait_for(
        "the sensor's capture timer thread",
        Duration::from_secs(10),
        || {
            std::fs::read_dir(format!("/proc/{sensor}/task"))
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|t| {
                    std::fs::read_to_string(format!("/proc/{sensor}/task/{t}/comm"))
                        .is_ok_and(|c| c.trim() == "tick-capture")
                })
        },
    );
    const SCHED_FIFO: u32 = 1;
    for t in [tid.as_str(), &sensor.to_string()] {
        assert_eq!(sched_of(sensor, t), (SCHED_FIFO, 10), "thread {t} of the sensor");
        let cpus = status_field(&format!("/proc/{sensor}/task/{t}/status"), "Cpus_allowed_list:");
        assert_eq!(cpus, "0", "thread {t} of the sensor");
    }
    let locked = status_field(&format!("/proc/{sensor}/status"), "VmLck:");
    assert_ne!(locked, "0 kB", "mlockall did not lock the sensor's memory");
    // The planner is not in `realtime.actors`: normal scheduling.
    let planner = up.spawned("planner");
    assert_eq!(sched_of(planner, &planner.to_string()).0, 0, "the planner");
}

#[test]
fn the_corridor_world_is_reached_at_100_hz() {
    let _g = serial();
    let file = TempFile::toml(
        "tl-100hz",
        "[sensor]\nrate_hz = 100.0\n[actuator]\ntick_hz = 200.0\n",
    );
    let up = Up::start(
        "tl-100hz",
        "corridor",
        &["--config", &file.arg(), "--exit-on-goal", "--timeout", "120"],
    );
    let (code, report) = up.report();
    assert_eq!(code, 0, "{report:?}");
    assert_clean_run(&report);
}
