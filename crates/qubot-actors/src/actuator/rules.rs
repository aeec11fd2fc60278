//! The actuator's rules as a plain state machine: which commands are applied, the watchdog,
//! the command deadline and the goal (docs/ARCHITECTURE.md §2, §4a, §9).
//!
//! No actix, no zenoh, no metrics, no clock reads: time comes in as arguments (an `Instant`
//! for the watchdog, which runs on the local monotonic clock from receipt; wall-clock ns for
//! deadlines, which are stamped from the capture on another process) and what happened goes
//! out as outcomes for the shell to count, log and publish. How ticks are scheduled is the
//! caller's business: [`ActuatorRules::tick`] integrates whatever time passed since the last.

use std::time::{Duration, Instant};

use qubot_msg::{Command, DropReason, Stamp, State};
use qubot_robot::{DiffDrive, DriveLimits, Point, Pose2};

/// Commands beyond these are nonsense from a broken or hostile peer, not "fast" (§4a): no
/// drive may apply them. Within them, the drive clamps to its own limits.
pub const V_ABS_LIMIT: f64 = 10.0;
pub const W_ABS_LIMIT: f64 = 50.0;

/// The longest time one tick integrates: after a stall the drive does not leap.
pub const MAX_TICK_S: f64 = 0.5;

/// A command a drive may apply: finite, and within the absolute limits (inclusive).
pub fn is_valid(c: &Command) -> bool {
    c.v.is_finite() && c.w.is_finite() && c.v.abs() <= V_ABS_LIMIT && c.w.abs() <= W_ABS_LIMIT
}

/// What the rules need to know about the robot and its budgets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActuatorParams {
    pub start: Pose2,
    pub goal: Point,
    pub goal_tolerance_m: f64,
    pub limits: DriveLimits,
    /// No fresh command for this long while driving: safe stop.
    pub cmd_timeout: Duration,
}

/// What a received command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Applied from now on. `started`: it ended a stop (the first command, or the first after
    /// a safe stop). `latency_ns`: capture → accepted, when the origin stamp is sane (set,
    /// and not in the future).
    Accepted { started: bool, latency_ns: Option<u64> },
    /// Not finite, or beyond the absolute limits: `invalid`.
    Invalid,
    /// Already past its deadline when it arrived: `stale`.
    Stale { late_ns: u64 },
    /// Valid and fresh, but the goal is reached: ignored, not a drop.
    AfterGoal,
}

impl CommandOutcome {
    /// The drop reason the shell counts, if the command was dropped.
    pub fn drop_reason(&self) -> Option<DropReason> {
        match self {
            CommandOutcome::Invalid => Some(DropReason::Invalid),
            CommandOutcome::Stale { .. } => Some(DropReason::Stale),
            CommandOutcome::Accepted { .. } | CommandOutcome::AfterGoal => None,
        }
    }
}

/// The watchdog tripped on this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafeStop {
    /// Time since the last accepted command.
    pub silence: Duration,
}

/// What one tick did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickOutcome {
    /// What to publish.
    pub state: State,
    /// The watchdog commanded zero velocity on this tick (before anything was applied).
    pub safe_stop: Option<SafeStop>,
    /// The goal was reached on this tick (stopping there is the plan, not a safe stop).
    pub goal_reached: bool,
    /// Seconds of this tick the command drove (the rest, if any, commanded zero).
    pub driven_s: f64,
    /// Seconds this tick integrated.
    pub dt_s: f64,
}

/// The drive and the rules that decide what it is told.
#[derive(Debug, Clone)]
pub struct ActuatorRules {
    drive: DiffDrive,
    goal: Point,
    goal_tolerance_m: f64,
    cmd_timeout: Duration,
    /// The command being applied; meaningful only while `driving`.
    cmd: (f64, f64),
    /// When the command being applied expires (ns since epoch): capture of the scan it was
    /// planned on plus the pipeline budget. Past it the drive gets zero, whatever the timer.
    cmd_deadline_ns: u64,
    driving: bool,
    goal_reached: bool,
    last_cmd_seq: u64,
    last_cmd_at: Instant,
    last_tick: Instant,
}

impl ActuatorRules {
    /// Standing at the start, not driving; `now` starts the tick clock.
    pub fn new(p: ActuatorParams, now: Instant) -> ActuatorRules {
        ActuatorRules {
            drive: DiffDrive::new(p.start, p.limits),
            goal: p.goal,
            goal_tolerance_m: p.goal_tolerance_m,
            cmd_timeout: p.cmd_timeout,
            cmd: (0.0, 0.0),
            cmd_deadline_ns: 0,
            driving: false,
            goal_reached: false,
            last_cmd_seq: 0,
            last_cmd_at: now,
            last_tick: now,
        }
    }

    /// Restarts the tick clock (the first tick integrates from here).
    pub fn start_ticks(&mut self, now: Instant) {
        self.last_tick = now;
    }

    /// A command from the bound planner, received at `now` (monotonic) / `now_ns` (wall).
    pub fn on_command(&mut self, c: &Command, stamp: &Stamp, now: Instant, now_ns: u64) -> CommandOutcome {
        if !is_valid(c) {
            return CommandOutcome::Invalid;
        }
        if c.deadline_ns < now_ns {
            return CommandOutcome::Stale {
                late_ns: now_ns - c.deadline_ns,
            };
        }
        if self.goal_reached {
            return CommandOutcome::AfterGoal;
        }
        self.cmd = (c.v, c.w);
        self.cmd_deadline_ns = c.deadline_ns;
        self.last_cmd_seq = stamp.seq;
        self.last_cmd_at = now;
        let started = !self.driving;
        self.driving = true;
        let origin = stamp.origin_ns;
        CommandOutcome::Accepted {
            started,
            latency_ns: (origin > 0 && origin <= now_ns).then(|| now_ns - origin),
        }
    }

    /// One control tick at `now` (monotonic) / `now_ns` (wall): the watchdog first, then the
    /// command up to its deadline, then the goal check; returns the state to publish.
    pub fn tick(&mut self, now: Instant, now_ns: u64) -> TickOutcome {
        let dt = now
            .saturating_duration_since(self.last_tick)
            .as_secs_f64()
            .min(MAX_TICK_S);
        self.last_tick = now;
        // The watchdog runs on every tick, before anything is applied: no fresh command within
        // the timeout is a safe stop, and a late tick (a stalled process) must not apply an
        // old command for its whole `dt`.
        let silence = now.saturating_duration_since(self.last_cmd_at);
        let safe_stop = (self.driving && silence >= self.cmd_timeout).then(|| {
            // Zero velocity: the drive decelerates within its limits.
            self.driving = false;
            self.cmd = (0.0, 0.0);
            SafeStop { silence }
        });
        // The command holds from this tick for one tick's time, and only until its deadline;
        // the rest of the tick commands zero.
        let left_s = self.cmd_deadline_ns.saturating_sub(now_ns) as f64 * 1e-9;
        let commanding = self.driving && !self.goal_reached;
        let (v, w) = if commanding { self.cmd } else { (0.0, 0.0) };
        let applied = dt.min(left_s);
        self.drive.step(v, w, applied);
        if applied < dt {
            self.drive.step(0.0, 0.0, dt - applied);
        }
        let mut reached = false;
        if !self.goal_reached && self.drive.pose.point().dist(self.goal) <= self.goal_tolerance_m {
            self.goal_reached = true;
            reached = true;
            // Stopping at the goal is the plan, not a safe stop: the watchdog has nothing to do.
            self.driving = false;
        }
        TickOutcome {
            state: self.state(),
            safe_stop,
            goal_reached: reached,
            driven_s: if commanding { applied.max(0.0) } else { 0.0 },
            dt_s: dt,
        }
    }

    /// The drive's state as published.
    pub fn state(&self) -> State {
        let p = self.drive.pose;
        State {
            x: p.x,
            y: p.y,
            theta: p.theta,
            v: self.drive.v,
            w: self.drive.w,
            last_cmd_seq: self.last_cmd_seq,
            safe_stopped: !self.driving,
            goal_reached: self.goal_reached,
        }
    }

    pub fn pose(&self) -> Pose2 {
        self.drive.pose
    }

    /// A command is being applied (not stopped by the watchdog, the deadline's expiry aside).
    pub fn is_driving(&self) -> bool {
        self.driving
    }

    pub fn goal_reached(&self) -> bool {
        self.goal_reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qubot_msg::ActorId;

    const MS: u64 = 1_000_000;
    /// A wall clock far from zero, so that "origin unset" (0) is not confused with a time.
    const T0_NS: u64 = 1_700_000_000_000_000_000;
    const TICK: Duration = Duration::from_millis(20);
    const TIMEOUT: Duration = Duration::from_millis(250);

    fn params() -> ActuatorParams {
        ActuatorParams {
            start: Pose2::new(1.0, 1.0, 0.0),
            goal: Point::new(9.0, 1.0),
            goal_tolerance_m: 0.25,
            limits: DriveLimits::default(),
            cmd_timeout: TIMEOUT,
        }
    }

    /// Both clocks of one instant: monotonic and wall, advanced together.
    #[derive(Clone, Copy)]
    struct Clock {
        t0: Instant,
        elapsed: Duration,
    }

    impl Clock {
        fn new() -> Clock {
            Clock {
                t0: Instant::now(),
                elapsed: Duration::ZERO,
            }
        }
        fn now(&self) -> Instant {
            self.t0 + self.elapsed
        }
        fn ns(&self) -> u64 {
            T0_NS + self.elapsed.as_nanos() as u64
        }
        fn advance(&mut self, d: Duration) {
            self.elapsed += d;
        }
    }

    fn rules(c: &Clock) -> ActuatorRules {
        ActuatorRules::new(params(), c.now())
    }

    fn cmd(v: f64, w: f64, deadline_ns: u64) -> Command {
        Command {
            v,
            w,
            deadline_ns,
            scan_seq: 0,
        }
    }

    fn stamp(seq: u64, origin_ns: u64) -> Stamp {
        Stamp {
            seq,
            source: ActorId(7),
            origin_ns,
            publish_ns: origin_ns,
        }
    }

    /// Sends a fresh command planned on a scan captured 10 ms ago, budget 300 ms.
    fn send(r: &mut ActuatorRules, c: &Clock, v: f64, w: f64, seq: u64) -> CommandOutcome {
        let origin = c.ns() - 10 * MS;
        r.on_command(
            &cmd(v, w, origin + 300 * MS),
            &stamp(seq, origin),
            c.now(),
            c.ns(),
        )
    }

    fn tick(r: &mut ActuatorRules, c: &mut Clock) -> TickOutcome {
        c.advance(TICK);
        r.tick(c.now(), c.ns())
    }

    #[test]
    fn a_fresh_valid_command_is_accepted_and_drives() {
        let mut c = Clock::new();
        let mut r = rules(&c);
        assert!(
            tick(&mut r, &mut c).state.safe_stopped,
            "standing before any command"
        );
        let out = send(&mut r, &c, 0.5, 0.0, 42);
        assert_eq!(
            out,
            CommandOutcome::Accepted {
                started: true,
                latency_ns: Some(10 * MS)
            }
        );
        assert_eq!(out.drop_reason(), None);
        let t = tick(&mut r, &mut c);
        assert!(!t.state.safe_stopped);
        assert_eq!(t.state.last_cmd_seq, 42);
        assert!(t.state.v > 0.0 && t.state.x > 1.0, "it moved: {:?}", t.state);
        assert!(
            (t.driven_s - 0.020).abs() < 1e-9,
            "the whole tick: {}",
            t.driven_s
        );
        // The next command continues the drive: not a new start.
        assert!(matches!(
            send(&mut r, &c, 0.5, 0.0, 43),
            CommandOutcome::Accepted { started: false, .. }
        ));
    }

    #[test]
    fn latency_needs_a_sane_origin() {
        let c = Clock::new();
        let mut r = rules(&c);
        let unset = r.on_command(&cmd(0.1, 0.0, c.ns() + 300 * MS), &stamp(1, 0), c.now(), c.ns());
        assert!(matches!(unset, CommandOutcome::Accepted { latency_ns: None, .. }));
        let future = c.ns() + 5 * MS;
        let out = r.on_command(
            &cmd(0.1, 0.0, c.ns() + 300 * MS),
            &stamp(2, future),
            c.now(),
            c.ns(),
        );
        assert!(matches!(out, CommandOutcome::Accepted { latency_ns: None, .. }));
    }

    #[test]
    fn non_finite_or_beyond_absolute_limits_is_invalid_and_changes_nothing() {
        let c = Clock::new();
        let fresh = c.ns() + 300 * MS;
        for (v, w) in [
            (f64::NAN, 0.0),
            (0.0, f64::NAN),
            (f64::INFINITY, 0.0),
            (0.0, f64::NEG_INFINITY),
            (V_ABS_LIMIT + 0.001, 0.0),
            (-V_ABS_LIMIT - 0.001, 0.0),
            (0.0, W_ABS_LIMIT + 0.001),
            (0.0, -W_ABS_LIMIT - 0.001),
        ] {
            let mut r = rules(&c);
            let out = r.on_command(&cmd(v, w, fresh), &stamp(5, c.ns()), c.now(), c.ns());
            assert_eq!(out, CommandOutcome::Invalid, "({v}, {w})");
            assert_eq!(out.drop_reason(), Some(DropReason::Invalid));
            assert!(!r.is_driving(), "({v}, {w}) must not start the drive");
            assert_eq!(r.state().last_cmd_seq, 0);
        }
        // The limits themselves are valid (nonsense starts beyond them).
        assert!(is_valid(&cmd(V_ABS_LIMIT, -W_ABS_LIMIT, 0)));
        assert!(is_valid(&cmd(-V_ABS_LIMIT, W_ABS_LIMIT, 0)));
    }

    #[test]
    fn a_valid_command_beyond_the_drive_limits_is_clamped_by_the_drive() {
        let mut c = Clock::new();
        let mut r = rules(&c);
        let lim = DriveLimits::default();
        // Within the absolute limits, far beyond the drive's: applied, but clamped.
        assert!(matches!(
            send(&mut r, &c, 9.0, -40.0, 1),
            CommandOutcome::Accepted { .. }
        ));
        let first = tick(&mut r, &mut c);
        // One 20 ms tick: the acceleration limits bound the change.
        assert!(first.state.v <= lim.a_max * 0.020 + 1e-12, "{}", first.state.v);
        assert!(
            first.state.w >= -lim.alpha_max * 0.020 - 1e-12,
            "{}",
            first.state.w
        );
        for seq in 2..200 {
            send(&mut r, &c, 9.0, -40.0, seq);
            let t = tick(&mut r, &mut c);
            assert!(t.state.v <= lim.v_max + 1e-12, "{}", t.state.v);
            assert!(t.state.w >= -lim.w_max - 1e-12, "{}", t.state.w);
        }
        assert!(
            (r.state().v - lim.v_max).abs() < 1e-9,
            "reaches v_max: {}",
            r.state().v
        );
        assert!(
            (r.state().w + lim.w_max).abs() < 1e-9,
            "reaches -w_max: {}",
            r.state().w
        );
    }

    #[test]
    fn a_command_past_its_deadline_is_stale_and_not_applied() {
        let mut c = Clock::new();
        let mut r = rules(&c);
        let late = cmd(0.5, 0.0, c.ns() - MS);
        let out = r.on_command(&late, &stamp(9, c.ns() - 301 * MS), c.now(), c.ns());
        assert_eq!(out, CommandOutcome::Stale { late_ns: MS });
        assert_eq!(out.drop_reason(), Some(DropReason::Stale));
        let t = tick(&mut r, &mut c);
        assert!(t.state.safe_stopped);
        assert_eq!(t.state.last_cmd_seq, 0);
        assert_eq!((t.state.x, t.state.v), (1.0, 0.0));
        // Exactly at its deadline it is still in time.
        let on_time = cmd(0.5, 0.0, c.ns());
        assert!(matches!(
            r.on_command(&on_time, &stamp(10, c.ns()), c.now(), c.ns()),
            CommandOutcome::Accepted { .. }
        ));
    }

    #[test]
    fn a_stale_command_does_not_feed_the_watchdog() {
        let mut c = Clock::new();
        let mut r = rules(&c);
        send(&mut r, &c, 0.5, 0.0, 1);
        for _ in 0..12 {
            tick(&mut r, &mut c);
            let late = cmd(0.5, 0.0, c.ns() - 1);
            assert!(matches!(
                r.on_command(&late, &stamp(2, c.ns() - 400 * MS), c.now(), c.ns()),
                CommandOutcome::Stale { .. }
            ));
        }
        // 12 ticks = 240 ms; the 13th is at 260 ms: only stale commands since 0 → trip.
        assert!(tick(&mut r, &mut c).safe_stop.is_some());
    }

    #[test]
    fn a_command_drives_only_until_its_deadline_within_a_tick() {
        let mut c = Clock::new();
        let mut r = rules(&c);
        // A long deadline: the drive picks up speed.
        for seq in 0..25 {
            send(&mut r, &c, 0.8, 0.0, seq);
            tick(&mut r, &mut c);
        }
        let v_before = r.state().v;
        assert!(v_before > 0.3, "{v_before}");
        // A command whose deadline falls 5 ms after the next tick: it holds for 5 ms of that
        // tick's 20, then the drive brakes.
        let deadline = c.ns() + 25 * MS;
        let out = r.on_command(&cmd(0.8, 0.0, deadline), &stamp(99, c.ns()), c.now(), c.ns());
        assert!(matches!(out, CommandOutcome::Accepted { .. }));
        let t = tick(&mut r, &mut c);
        assert!(
            (t.driven_s - 0.005).abs() < 1e-9,
            "driven {} s of the tick",
            t.driven_s
        );
        assert!((t.dt_s - 0.020).abs() < 1e-9);
        let lim = DriveLimits::default();
        let want = v_before + lim.a_max * 0.005 - lim.a_max * 0.015;
        assert!((t.state.v - want).abs() < 1e-9, "v {} want {want}", t.state.v);
        // Past its deadline the command drives nothing, though the watchdog has not tripped.
        let t = tick(&mut r, &mut c);
        assert_eq!(t.driven_s, 0.0);
        assert!(t.safe_stop.is_none() && r.is_driving());
        assert!(
            (t.state.v - (want - lim.a_max * 0.020)).abs() < 1e-9,
            "{}",
            t.state.v
        );
    }

    #[test]
    fn the_watchdog_trips_when_no_fresh_command_arrives_within_the_timeout() {
        let mut c = Clock::new();
        let mut r = rules(&c);
        send(&mut r, &c, 0.5, 0.0, 1);
        // Keep it alive for a while: no trip while commands are fresh.
        for seq in 2..10 {
            let t = tick(&mut r, &mut c);
            assert!(t.safe_stop.is_none());
            send(&mut r, &c, 0.5, 0.0, seq);
        }
        // Silence: 12 ticks (240 ms) are under the timeout, the 13th (260 ms) is not.
        for _ in 0..12 {
            assert!(tick(&mut r, &mut c).safe_stop.is_none());
        }
        let t = tick(&mut r, &mut c);
        assert_eq!(
            t.safe_stop,
            Some(SafeStop {
                silence: Duration::from_millis(260)
            })
        );
        assert!(t.state.safe_stopped && !r.is_driving());
        assert!(
            !t.goal_reached && !t.state.goal_reached,
            "a safe stop is not the goal"
        );
        // Once: further silent ticks do not trip again.
        assert!(tick(&mut r, &mut c).safe_stop.is_none());
        // A fresh command ends the stop.
        assert!(matches!(
            send(&mut r, &c, 0.5, 0.0, 20),
            CommandOutcome::Accepted { started: true, .. }
        ));
        assert!(!tick(&mut r, &mut c).state.safe_stopped);
    }

    #[test]
    fn the_watchdog_acts_before_the_command_is_applied() {
        let mut c = Clock::new();
        let mut r = rules(&c);
        for seq in 0..40 {
            send(&mut r, &c, 0.5, 0.0, seq);
            tick(&mut r, &mut c);
        }
        let v = r.state().v;
        assert!((v - 0.5).abs() < 1e-9, "{v}");
        // A faster command whose deadline is far off, but the process stalls past the timeout:
        // the late tick must brake for its whole dt, not drive the command first.
        let far = c.ns() + 10_000 * MS;
        r.on_command(&cmd(0.8, 0.0, far), &stamp(50, c.ns()), c.now(), c.ns());
        c.advance(Duration::from_millis(300));
        let t = r.tick(c.now(), c.ns());
        assert!(t.safe_stop.is_some());
        assert_eq!(t.driven_s, 0.0);
        let lim = DriveLimits::default();
        assert!(
            (t.state.v - (v - lim.a_max * 0.3).max(0.0)).abs() < 1e-9,
            "{}",
            t.state.v
        );
    }

    #[test]
    fn a_tick_integrates_at_most_half_a_second() {
        let mut c = Clock::new();
        let mut r = rules(&c);
        c.advance(Duration::from_secs(3));
        assert_eq!(r.tick(c.now(), c.ns()).dt_s, MAX_TICK_S);
        // The tick clock restarts where the shell says ticks start.
        r.start_ticks(c.now());
        c.advance(TICK);
        assert!((r.tick(c.now(), c.ns()).dt_s - 0.020).abs() < 1e-9);
    }

    #[test]
    fn reaching_the_goal_stops_driving_without_a_safe_stop() {
        let mut c = Clock::new();
        let mut p = params();
        p.goal = Point::new(1.3, 1.0);
        let mut r = ActuatorRules::new(p, c.now());
        let mut reached_at = None;
        for seq in 0..100 {
            send(&mut r, &c, 0.5, 0.0, seq);
            let t = tick(&mut r, &mut c);
            assert!(t.safe_stop.is_none());
            if t.goal_reached {
                reached_at = Some(seq);
                assert!(t.state.goal_reached);
                break;
            }
        }
        assert!(reached_at.is_some(), "never reached the goal: {:?}", r.pose());
        assert!(r.goal_reached() && !r.is_driving());
        // Commands after the goal are ignored, not dropped, and drive nothing.
        let out = send(&mut r, &c, 0.5, 0.0, 500);
        assert_eq!(out, CommandOutcome::AfterGoal);
        assert_eq!(out.drop_reason(), None);
        let mut v = f64::INFINITY;
        for _ in 0..100 {
            let t = tick(&mut r, &mut c);
            assert!(
                t.safe_stop.is_none(),
                "the watchdog has nothing to do at the goal"
            );
            assert!(!t.goal_reached, "reached once");
            assert_eq!(t.driven_s, 0.0);
            assert!(t.state.v <= v);
            v = t.state.v;
        }
        assert_eq!(r.state().v, 0.0, "stopped at the goal");
        assert_ne!(r.state().last_cmd_seq, 500);
    }
}
