//! The referee: watches the actuator's state against the ground-truth world, so a run can be
//! judged (goal reached, clearance kept, no collision) from outside the actors.

use qubot_msg::State;
use qubot_robot::{Point, World};

#[derive(Debug, Clone)]
pub struct Referee {
    world: World,
    pub goal_reached: bool,
    /// Smallest distance from the robot's centre to any obstacle seen so far (m).
    pub min_clearance_m: f64,
    /// Times the robot's disc went from free to touching an obstacle.
    pub collisions: u32,
    in_collision: bool,
    pub states: u64,
    pub last: Option<State>,
    /// Path length driven so far (m).
    pub distance_m: f64,
}

impl Referee {
    pub fn new(world: World) -> Referee {
        Referee {
            world,
            goal_reached: false,
            min_clearance_m: f64::INFINITY,
            collisions: 0,
            in_collision: false,
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

    pub fn observe(&mut self, s: &State) {
        if !(s.x.is_finite() && s.y.is_finite()) {
            return;
        }
        self.states += 1;
        let clearance = self.world.clearance(Point { x: s.x, y: s.y });
        self.min_clearance_m = self.min_clearance_m.min(clearance);
        let touching = clearance < self.world.robot_radius_m;
        if touching && !self.in_collision {
            self.collisions += 1;
        }
        self.in_collision = touching;
        self.goal_reached |= s.goal_reached;
        if let Some(prev) = self.last {
            self.distance_m += (s.x - prev.x).hypot(s.y - prev.y);
        }
        self.last = Some(*s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_collisions_once_per_contact() {
        let world = World::builtin();
        let mut r = Referee::new(world.clone());
        let at = |x: f64, y: f64| State {
            x,
            y,
            ..State::default()
        };
        r.observe(&at(world.start.x, world.start.y));
        assert_eq!(r.collisions, 0);
        // Against the map border: touching.
        r.observe(&at(0.05, world.start.y));
        r.observe(&at(0.06, world.start.y));
        assert_eq!(r.collisions, 1);
        r.observe(&at(world.start.x, world.start.y));
        r.observe(&at(0.05, world.start.y));
        assert_eq!(r.collisions, 2);
        assert!(r.min_clearance_m < world.robot_radius_m);
    }

    #[test]
    fn goal_flag_sticks() {
        let mut r = Referee::new(World::builtin());
        r.observe(&State {
            x: 1.0,
            y: 1.0,
            goal_reached: true,
            ..State::default()
        });
        r.observe(&State {
            x: 1.0,
            y: 1.0,
            ..State::default()
        });
        assert!(r.goal_reached);
    }
}
