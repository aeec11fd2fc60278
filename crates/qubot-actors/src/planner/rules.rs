//! The planner's rules as plain state: which scans are planned on and with which pose, what a
//! scan does while the worker is busy, and a command's deadline (docs/ARCHITECTURE.md §2, §4a,
//! §9).
//!
//! No actix, no zenoh, no metrics, no clock reads: the wall-clock time a scan is taken comes
//! in as an argument, and verdicts go out for the shell to count.

use std::{collections::VecDeque, time::Duration};

use qubot_msg::{Command, DropReason, Scan, State};
use qubot_robot::Pose2;

/// Odometry poses kept, by the actuator's publish time: about a second at 50 Hz.
pub const POSE_HISTORY: usize = 64;

/// More beams than configured: refused before the inbox, so nothing is ever sized by it.
pub fn admit_scan(max_beams: u32, scan: &Scan) -> Option<DropReason> {
    (scan.beams > max_beams).then_some(DropReason::Oversize)
}

/// The last [`POSE_HISTORY`] odometry poses, oldest first.
#[derive(Debug, Clone, Default)]
pub struct PoseHistory {
    poses: VecDeque<(u64, Pose2)>,
}

impl PoseHistory {
    pub fn new() -> PoseHistory {
        PoseHistory {
            poses: VecDeque::with_capacity(POSE_HISTORY),
        }
    }

    /// Records the pose of a state published at `publish_ns`; a non-finite pose is ignored
    /// (returns false). The oldest pose goes when the history is full.
    pub fn record(&mut self, publish_ns: u64, s: &State) -> bool {
        if !(s.x.is_finite() && s.y.is_finite() && s.theta.is_finite()) {
            return false;
        }
        if self.poses.len() == POSE_HISTORY {
            self.poses.pop_front();
        }
        self.poses.push_back((
            publish_ns,
            Pose2 {
                x: s.x,
                y: s.y,
                theta: s.theta,
            },
        ));
        true
    }

    /// The odometry pose at `t_ns`: the newest state published at or before it (the one the
    /// sensor ray-cast from), else the oldest one after it; `None` before any state.
    pub fn at(&self, t_ns: u64) -> Option<Pose2> {
        self.poses
            .iter()
            .rev()
            .find(|(t, _)| *t <= t_ns)
            .or_else(|| self.poses.front())
            .map(|(_, p)| *p)
    }

    pub fn len(&self) -> usize {
        self.poses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.poses.is_empty()
    }
}

/// What to do with a scan the planner takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScanVerdict {
    /// Plan on it with this odometry pose (at its capture time).
    Plan(Pose2),
    /// Older than the budget: a command planned on it would be stale before it left.
    Stale,
    /// No odometry yet to plan with.
    NoPose,
    /// Its stamped pose is off odometry by more than the tolerance, or NaN.
    Implausible,
}

impl ScanVerdict {
    /// The drop reason the shell counts, if the scan is not planned on.
    pub fn drop_reason(&self) -> Option<DropReason> {
        match self {
            ScanVerdict::Plan(_) => None,
            ScanVerdict::Stale => Some(DropReason::Stale),
            ScanVerdict::NoPose => Some(DropReason::NoPose),
            ScanVerdict::Implausible => Some(DropReason::Implausible),
        }
    }
}

/// Freshness and binding of scans to odometry.
#[derive(Debug, Clone)]
pub struct PlannerRules {
    /// The pipeline budget (capture to applied).
    budget: Duration,
    pose_tolerance_m: f64,
    poses: PoseHistory,
}

impl PlannerRules {
    pub fn new(budget: Duration, pose_tolerance_m: f64) -> PlannerRules {
        PlannerRules {
            budget,
            pose_tolerance_m,
            poses: PoseHistory::new(),
        }
    }

    /// Odometry from the bound actuator, published at `publish_ns`; false when ignored.
    pub fn on_state(&mut self, publish_ns: u64, s: &State) -> bool {
        self.poses.record(publish_ns, s)
    }

    pub fn poses(&self) -> &PoseHistory {
        &self.poses
    }

    /// The verdict on a scan captured at `origin_ns`, taken at `now_ns` (both wall clock).
    pub fn check_scan(&self, scan: &Scan, origin_ns: u64, now_ns: u64) -> ScanVerdict {
        if now_ns.saturating_sub(origin_ns) > self.budget_ns() {
            // Replayed, or we stalled.
            return ScanVerdict::Stale;
        }
        let Some(pose) = self.poses.at(origin_ns) else {
            return ScanVerdict::NoPose;
        };
        let off = (scan.pose_x - pose.x).hypot(scan.pose_y - pose.y);
        // A NaN pose in the scan is implausible too.
        if off.is_nan() || off > self.pose_tolerance_m {
            return ScanVerdict::Implausible;
        }
        ScanVerdict::Plan(pose)
    }

    /// A command's deadline: the capture of the scan it was planned on plus the budget, never
    /// "now + budget", so a plan made from an old scan expires with it.
    pub fn deadline_ns(&self, origin_ns: u64) -> u64 {
        origin_ns.saturating_add(self.budget_ns())
    }

    /// The command for a plan `(v, w)` made on the scan `scan_seq` captured at `origin_ns`.
    pub fn command(&self, v: f64, w: f64, origin_ns: u64, scan_seq: u64) -> Command {
        Command {
            v,
            w,
            deadline_ns: self.deadline_ns(origin_ns),
            scan_seq,
        }
    }

    fn budget_ns(&self) -> u64 {
        u64::try_from(self.budget.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One planning step at a time, keeping only the latest scan that arrived meanwhile.
///
/// Generic over what is parked: in the shell it is the inbox's wake-up (`Deliver<Scan>`) and
/// the scans themselves wait in the keep-latest inbox, which counts each one a newer scan
/// replaces as `superseded` before delivery; the rule is the same either way.
#[derive(Debug)]
pub struct KeepLatest<T> {
    busy: bool,
    parked: Option<T>,
}

/// What an arriving scan does.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival<T> {
    /// Idle: take it now.
    Take(T),
    /// Busy: it waits for the step to finish, replacing the one that waited (`superseded`).
    Parked { superseded: Option<T> },
}

impl<T> Default for KeepLatest<T> {
    fn default() -> Self {
        KeepLatest {
            busy: false,
            parked: None,
        }
    }
}

impl<T> KeepLatest<T> {
    pub fn new() -> KeepLatest<T> {
        KeepLatest::default()
    }

    pub fn arrive(&mut self, t: T) -> Arrival<T> {
        if self.busy {
            Arrival::Parked {
                superseded: self.parked.replace(t),
            }
        } else {
            Arrival::Take(t)
        }
    }

    /// A step started (a scan passed its checks and went to the worker).
    pub fn begin(&mut self) {
        self.busy = true;
    }

    /// The step finished: what waited meanwhile, to take next.
    pub fn finish(&mut self) -> Option<T> {
        self.busy = false;
        self.parked.take()
    }

    pub fn is_busy(&self) -> bool {
        self.busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const T0_NS: u64 = 1_700_000_000_000_000_000;
    const BUDGET: Duration = Duration::from_millis(300);
    const TOLERANCE: f64 = 0.3;

    fn state(x: f64, y: f64, theta: f64) -> State {
        State {
            x,
            y,
            theta,
            ..State::default()
        }
    }

    fn scan_at(x: f64, y: f64) -> Scan {
        Scan {
            pose_x: x,
            pose_y: y,
            beams: 720,
            ..Scan::default()
        }
    }

    /// Odometry at (1, 2) published at T0 and at (2, 2) at T0 + 100 ms.
    fn rules() -> PlannerRules {
        let mut r = PlannerRules::new(BUDGET, TOLERANCE);
        assert!(r.on_state(T0_NS, &state(1.0, 2.0, 0.0)));
        assert!(r.on_state(T0_NS + 100 * MS, &state(2.0, 2.0, 0.5)));
        r
    }

    #[test]
    fn a_fresh_scan_on_odometry_is_planned_with_the_odometry_pose() {
        let r = rules();
        // Stamped pose a little off (the sensor is a tick behind): planned with odometry's.
        let v = r.check_scan(&scan_at(1.1, 2.1), T0_NS + 50 * MS, T0_NS + 60 * MS);
        assert_eq!(v, ScanVerdict::Plan(Pose2::new(1.0, 2.0, 0.0)));
        assert_eq!(v.drop_reason(), None);
    }

    #[test]
    fn a_scan_older_than_the_budget_is_stale() {
        let r = rules();
        let origin = T0_NS + 50 * MS;
        let at_budget = r.check_scan(&scan_at(1.0, 2.0), origin, origin + 300 * MS);
        assert!(
            matches!(at_budget, ScanVerdict::Plan(_)),
            "exactly the budget is in time"
        );
        let v = r.check_scan(&scan_at(1.0, 2.0), origin, origin + 300 * MS + 1);
        assert_eq!(v, ScanVerdict::Stale);
        assert_eq!(v.drop_reason(), Some(DropReason::Stale));
        // Stale wins over everything else: no pose needed to refuse an old scan.
        let empty = PlannerRules::new(BUDGET, TOLERANCE);
        assert_eq!(
            empty.check_scan(&scan_at(f64::NAN, 0.0), origin, origin + 400 * MS),
            ScanVerdict::Stale
        );
        // A capture stamped in the future is not old.
        assert!(matches!(
            r.check_scan(&scan_at(1.0, 2.0), T0_NS + 20 * MS, T0_NS),
            ScanVerdict::Plan(_)
        ));
    }

    #[test]
    fn a_scan_without_odometry_has_no_pose() {
        let mut r = PlannerRules::new(BUDGET, TOLERANCE);
        let v = r.check_scan(&scan_at(1.0, 2.0), T0_NS, T0_NS + MS);
        assert_eq!(v, ScanVerdict::NoPose);
        assert_eq!(v.drop_reason(), Some(DropReason::NoPose));
        // A non-finite state gives no pose either.
        assert!(!r.on_state(T0_NS, &state(f64::NAN, 2.0, 0.0)));
        assert!(!r.on_state(T0_NS, &state(1.0, f64::INFINITY, 0.0)));
        assert!(!r.on_state(T0_NS, &state(1.0, 2.0, f64::NAN)));
        assert!(r.poses().is_empty());
        assert_eq!(
            r.check_scan(&scan_at(1.0, 2.0), T0_NS, T0_NS + MS),
            ScanVerdict::NoPose
        );
    }

    #[test]
    fn a_scan_off_odometry_at_its_capture_is_implausible() {
        let r = rules();
        let origin = T0_NS + 50 * MS;
        // Captured while odometry said (1, 2): 0.31 m off is too far.
        let v = r.check_scan(&scan_at(1.31, 2.0), origin, origin + MS);
        assert_eq!(v, ScanVerdict::Implausible);
        assert_eq!(v.drop_reason(), Some(DropReason::Implausible));
        // The same stamped pose is fine for a scan captured after the robot got there: the
        // check is against odometry at the capture time, not the latest.
        let later = T0_NS + 150 * MS;
        assert_eq!(
            r.check_scan(&scan_at(2.2, 2.0), later, later + MS),
            ScanVerdict::Plan(Pose2::new(2.0, 2.0, 0.5))
        );
        assert_eq!(
            r.check_scan(&scan_at(2.2, 2.0), origin, origin + MS),
            ScanVerdict::Implausible
        );
        // Within the tolerance in both axes together (hypot), not each alone.
        assert_eq!(
            r.check_scan(&scan_at(1.25, 2.25), origin, origin + MS),
            ScanVerdict::Implausible
        );
        assert!(matches!(
            r.check_scan(&scan_at(1.2, 2.2), origin, origin + MS),
            ScanVerdict::Plan(_)
        ));
        // NaN or infinite stamped poses are implausible, never planned on.
        for (x, y) in [(f64::NAN, 2.0), (1.0, f64::NAN), (f64::INFINITY, 2.0)] {
            assert_eq!(
                r.check_scan(&scan_at(x, y), origin, origin + MS),
                ScanVerdict::Implausible
            );
        }
    }

    #[test]
    fn the_pose_at_a_time_is_the_newest_at_or_before_it_else_the_oldest() {
        let mut h = PoseHistory::new();
        assert_eq!(h.at(T0_NS), None);
        for i in 0..3u64 {
            assert!(h.record(T0_NS + i * 20 * MS, &state(i as f64, 0.0, 0.0)));
        }
        assert_eq!(h.at(T0_NS + 20 * MS).map(|p| p.x), Some(1.0), "at: that one");
        assert_eq!(
            h.at(T0_NS + 39 * MS).map(|p| p.x),
            Some(1.0),
            "between: the earlier"
        );
        assert_eq!(
            h.at(T0_NS + 10_000 * MS).map(|p| p.x),
            Some(2.0),
            "after all: the newest"
        );
        assert_eq!(h.at(T0_NS - MS).map(|p| p.x), Some(0.0), "before all: the oldest");
    }

    #[test]
    fn the_pose_history_is_bounded_and_forgets_the_oldest() {
        let mut h = PoseHistory::new();
        let n = POSE_HISTORY as u64 + 10;
        for i in 0..n {
            h.record(T0_NS + i * MS, &state(i as f64, 0.0, 0.0));
        }
        assert_eq!(h.len(), POSE_HISTORY);
        // The first ten are gone: before the window, the oldest kept answers.
        assert_eq!(h.at(T0_NS).map(|p| p.x), Some(10.0));
        assert_eq!(h.at(T0_NS + (n - 1) * MS).map(|p| p.x), Some((n - 1) as f64));
    }

    #[test]
    fn the_deadline_is_capture_plus_budget_not_now_plus_budget() {
        let r = rules();
        let origin = T0_NS + 50 * MS;
        let c = r.command(0.4, -0.2, origin, 17);
        assert_eq!(
            c,
            Command {
                v: 0.4,
                w: -0.2,
                deadline_ns: origin + 300 * MS,
                scan_seq: 17,
            }
        );
        assert_eq!(r.deadline_ns(u64::MAX - 1), u64::MAX, "saturates");
    }

    #[test]
    fn scans_over_the_beam_limit_are_refused_as_oversize() {
        let mut s = scan_at(0.0, 0.0);
        s.beams = 4096;
        assert_eq!(admit_scan(4096, &s), None);
        s.beams = 4097;
        assert_eq!(admit_scan(4096, &s), Some(DropReason::Oversize));
    }

    #[test]
    fn while_busy_the_latest_scan_waits_and_supersedes_the_one_before() {
        let mut k = KeepLatest::new();
        // Idle: taken at once, nothing waits.
        assert_eq!(k.arrive(1u64), Arrival::Take(1));
        k.begin();
        assert!(k.is_busy());
        assert_eq!(k.arrive(2), Arrival::Parked { superseded: None });
        assert_eq!(k.arrive(3), Arrival::Parked { superseded: Some(2) });
        assert_eq!(k.arrive(4), Arrival::Parked { superseded: Some(3) });
        // The step ends: the newest is next, and only it.
        assert_eq!(k.finish(), Some(4));
        assert!(!k.is_busy());
        assert_eq!(k.finish(), None);
        assert_eq!(k.arrive(5), Arrival::Take(5));
        // A step that ends with nothing waiting leaves it idle.
        k.begin();
        assert_eq!(k.finish(), None);
        assert_eq!(k.arrive(6), Arrival::Take(6));
    }
}
