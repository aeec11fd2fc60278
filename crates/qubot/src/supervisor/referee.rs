//! The referee: watches the actuator's state against the ground-truth world, so a run can be
//! judged (goal reached, clearance kept, no collision) from outside the actors.

use std::sync::{Arc, Mutex, MutexGuard};

use qubot_bus::{telemetry, Binding, Bus, Received, Subscriber, Verdict};
use qubot_msg::{topic, DropReason, State};
use qubot_node::{Role, SUPERVISOR};
use qubot_robot::{Judge, Point, Pose2, Shape, World};

#[derive(Debug, Clone)]
pub struct Referee {
    world: World,
    /// The world clock's zero (wall-clock ns): moving obstacles are judged where they stood
    /// when each state was published.
    epoch_ns: u64,
    moving: Vec<Shape>,
    pub goal_reached: bool,
    /// Contacts, judged as in the in-process loop (`qubot_robot::judge`): `collisions` are
    /// the robot's fault, `struck` a moving obstacle's; and the smallest clearance (m).
    pub judge: Judge,
    pub states: u64,
    pub last: Option<State>,
    /// Path length driven so far (m).
    pub distance_m: f64,
}

impl Referee {
    pub fn new(world: World, epoch_ns: u64) -> Referee {
        Referee {
            moving: Vec::with_capacity(world.movers.len()),
            epoch_ns,
            judge: Judge::new(world.robot_radius_m),
            world,
            goal_reached: false,
            states: 0,
            last: None,
            distance_m: 0.0,
        }
    }

    pub fn robot_radius_m(&self) -> f64 {
        self.world.robot_radius_m
    }

    pub fn distance_to_goal(&self) -> Option<f64> {
        self.last.map(|s| Point { x: s.x, y: s.y }.dist(self.world.goal))
    }

    /// Judges one state, published at `stamp_ns` (wall clock).
    pub fn observe(&mut self, s: &State, stamp_ns: u64) {
        if !(s.x.is_finite() && s.y.is_finite()) {
            return;
        }
        self.states += 1;
        let t = qubot_node::world_time_s(self.epoch_ns, stamp_ns);
        self.world.movers_at(t, &mut self.moving);
        let pose = Pose2::new(s.x, s.y, s.theta);
        self.judge.observe(&self.world.scene(&self.moving), pose, s.v);
        self.goal_reached |= s.goal_reached;
        if let Some(prev) = self.last {
            self.distance_m += (s.x - prev.x).hypot(s.y - prev.y);
        }
        self.last = Some(*s);
    }
}

/// The referee fed with the states of the robot's own actuator for as long as this lives
/// (docs/ARCHITECTURE.md §4a): anything else on its key is counted as foreign and never moves the judged pose.
pub struct Following {
    pub referee: Arc<Mutex<Referee>>,
    // Fields drop in order: the subscription before the binding that filters it.
    _state: Subscriber<()>,
    _bound: Binding,
}

impl Following {
    pub async fn start(bus: &Bus, actuator_instance: &str, referee: Referee) -> anyhow::Result<Following> {
        let referee = Arc::new(Mutex::new(referee));
        let bound = bus.bind(Role::Actuator.name(), actuator_instance).await?;
        let (own, foreign, r) = (
            bound.filter(),
            telemetry::dropped(SUPERVISOR, topic::STATE.name(), DropReason::Foreign),
            referee.clone(),
        );
        let state = bus
            .subscribe(&bound.key(topic::STATE.name()), move |sample| {
                if let Ok(m) = Received::<State>::decode(sample.payload().clone()) {
                    if own.check(m.header.stamp.source) == Verdict::Own {
                        lock(&r).observe(&m.body, m.header.stamp.publish_ns);
                    } else {
                        foreign.increment(1);
                    }
                }
            })
            .await?;
        Ok(Following {
            referee,
            _state: state,
            _bound: bound,
        })
    }
}

/// The referee, whatever a panicking holder left: its figures are still the best account.
pub fn lock(r: &Mutex<Referee>) -> MutexGuard<'_, Referee> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_collisions_once_per_contact() {
        let world = World::builtin();
        let mut r = Referee::new(world.clone(), 0);
        let at = |x: f64, y: f64| State {
            x,
            y,
            ..State::default()
        };
        r.observe(&at(world.start.x, world.start.y), 0);
        assert_eq!(r.judge.collisions, 0);
        // Against the map border: touching.
        r.observe(&at(0.05, world.start.y), 0);
        r.observe(&at(0.06, world.start.y), 0);
        assert_eq!(r.judge.collisions, 1);
        r.observe(&at(world.start.x, world.start.y), 0);
        r.observe(&at(0.05, world.start.y), 0);
        assert_eq!(r.judge.collisions, 2);
        assert!(r.judge.min_clearance_m < world.robot_radius_m);
    }

    #[test]
    fn moving_obstacles_are_judged_where_they_stood_at_the_stamp() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/worlds/door.toml"
        ))
        .expect("door world");
        let world = World::from_toml_str(&text).expect("valid");
        let epoch = 1_000_000_000_000;
        let mut r = Referee::new(world, epoch);
        // Driving at the doorway (x = 6.75, y = 2, facing it): clear while the door is open,
        // a collision when the closed leaf is 0.17 m ahead (the robot drives into it).
        let at = State {
            x: 6.75,
            y: 2.0,
            v: 0.5,
            ..State::default()
        };
        r.observe(&at, epoch + 1_000_000_000);
        assert_eq!(r.judge.collisions, 0, "door open at 1 s");
        r.observe(&at, epoch + 3_000_000_000);
        assert_eq!(r.judge.collisions, 1, "door closed at 3 s");
        r.observe(&at, epoch + 10_000_000_000);
        assert_eq!(r.judge.collisions, 1, "open again at 10 s");
        assert!(r.judge.min_clearance_m < 0.2);
        // Standing still when the leaf closes next to it: struck, not a collision.
        let still = State { v: 0.0, ..at };
        r.observe(&still, epoch + 3_000_000_000);
        assert_eq!((r.judge.collisions, r.judge.struck), (1, 1));
    }

    #[test]
    fn goal_flag_sticks() {
        let mut r = Referee::new(World::builtin(), 0);
        r.observe(
            &State {
                x: 1.0,
                y: 1.0,
                goal_reached: true,
                ..State::default()
            },
            0,
        );
        r.observe(
            &State {
                x: 1.0,
                y: 1.0,
                ..State::default()
            },
            0,
        );
        assert!(r.goal_reached);
    }
}
