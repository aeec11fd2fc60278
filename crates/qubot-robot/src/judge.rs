//! Judging contacts between the robot's disc and the world, the same way in the in-process
//! loop and in the pipeline's referee.
//!
//! A contact starts when the disc first overlaps something and ends when it is free again;
//! each contact is counted once, at its start. Contacts with static obstacles are always the
//! robot's: it drove there. A contact with a moving obstacle is the robot's too, unless the
//! robot was standing still or the obstacle came at it from behind (the contact lies in the
//! rear half of the disc) — then the robot was *struck*. This is the at-fault rule of
//! motion-planning benchmarks for dynamic scenes (nuPlan's "no ego at-fault collisions"
//! ignores collisions with a stopped ego and rear collisions by another agent): a reactive
//! robot must not drive into people, but cannot be asked to outrun one who walks into it.

use crate::geom::{Point, Pose2};
use crate::world::{Scene, Shape};

/// Below this speed the robot counts as standing still, m/s.
pub const STILL_MPS: f64 = 0.05;

/// What a contact was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contact {
    /// The robot drove into something: a collision.
    AtFault,
    /// A moving obstacle ran into the robot while it stood still or from behind.
    Struck,
}

/// Counts contacts over a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Judge {
    radius: f64,
    in_contact: bool,
    /// Contacts the robot caused.
    pub collisions: u32,
    /// Contacts a moving obstacle caused.
    pub struck: u32,
    /// Smallest clearance of the robot's centre to anything, metres.
    pub min_clearance_m: f64,
}

impl Judge {
    pub fn new(robot_radius_m: f64) -> Judge {
        Judge {
            radius: robot_radius_m,
            in_contact: false,
            collisions: 0,
            struck: 0,
            min_clearance_m: f64::INFINITY,
        }
    }

    /// Judges the robot at `pose` moving at `v` (m/s, forward positive) in `scene`; returns
    /// the contact that starts now, if one does.
    pub fn observe(&mut self, scene: &Scene, pose: Pose2, v: f64) -> Option<Contact> {
        let p = pose.point();
        let fixed = scene.world.clearance(p);
        let clearance = scene.clearance(p);
        self.min_clearance_m = self.min_clearance_m.min(clearance);
        let touching = clearance < self.radius;
        let starts = touching && !self.in_contact;
        self.in_contact = touching;
        if !starts {
            return None;
        }
        let contact = if fixed < self.radius {
            Contact::AtFault
        } else {
            let struck = scene
                .moving
                .iter()
                .filter(|s| s.signed_distance(p) < self.radius)
                .all(|s| v.abs() < STILL_MPS || from_behind(s, pose, v));
            if struck {
                Contact::Struck
            } else {
                Contact::AtFault
            }
        };
        match contact {
            Contact::AtFault => self.collisions += 1,
            Contact::Struck => self.struck += 1,
        }
        Some(contact)
    }
}

/// True when the shape's nearest point lies behind the robot's direction of travel.
fn from_behind(shape: &Shape, pose: Pose2, v: f64) -> bool {
    // Direction to the shape: minus the gradient of its distance field (central differences).
    let h = 1e-4;
    let d = |dx: f64, dy: f64| shape.signed_distance(Point::new(pose.x + dx, pose.y + dy));
    let gx = d(h, 0.0) - d(-h, 0.0);
    let gy = d(0.0, h) - d(0.0, -h);
    let (ht, hc) = pose.theta.sin_cos();
    let travel = v.signum();
    // `-grad` points at the shape; behind means against the direction of travel.
    -(gx * hc + gy * ht) * travel < 0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{test_world, World};

    fn hall() -> World {
        let shelf = Shape::Rect {
            x_min: 12.0,
            y_min: 0.0,
            x_max: 13.0,
            y_max: 5.0,
        };
        test_world(
            20.0,
            20.0,
            Pose2::new(2.0, 10.0, 0.0),
            Point::new(18.0, 10.0),
            vec![shelf],
        )
    }

    fn walker_at(x: f64, y: f64) -> Shape {
        Shape::Circle {
            cx: x,
            cy: y,
            r: 0.25,
        }
    }

    #[test]
    fn driving_into_a_walker_is_a_collision_being_walked_into_is_not() {
        let w = hall();
        let pose = Pose2::new(10.0, 10.0, 0.0);
        // Walker just ahead, robot driving forward: the robot's fault.
        let ahead = [walker_at(10.4, 10.0)];
        let mut j = Judge::new(0.2);
        assert_eq!(j.observe(&w.scene(&ahead), pose, 0.5), Some(Contact::AtFault));
        assert_eq!(
            j.observe(&w.scene(&ahead), pose, 0.5),
            None,
            "one contact, counted once"
        );
        // Same walker while the robot stands still: struck.
        let mut j = Judge::new(0.2);
        assert_eq!(j.observe(&w.scene(&ahead), pose, 0.0), Some(Contact::Struck));
        // Walker behind a robot driving away from it: struck.
        let behind = [walker_at(9.6, 10.1)];
        let mut j = Judge::new(0.2);
        assert_eq!(j.observe(&w.scene(&behind), pose, 0.5), Some(Contact::Struck));
        // Reversing into it is the robot's fault again.
        let mut j = Judge::new(0.2);
        assert_eq!(j.observe(&w.scene(&behind), pose, -0.3), Some(Contact::AtFault));
        assert_eq!((j.collisions, j.struck), (1, 0));
    }

    #[test]
    fn static_contacts_are_always_collisions() {
        let w = hall();
        let mut j = Judge::new(0.2);
        assert_eq!(
            j.observe(&w.scene(&[]), Pose2::new(11.9, 2.0, 0.0), 0.0),
            Some(Contact::AtFault)
        );
        assert!(j.min_clearance_m < 0.2);
        // Free again, then a new contact: counted again.
        assert_eq!(j.observe(&w.scene(&[]), Pose2::new(10.0, 2.0, 0.0), 0.0), None);
        assert_eq!(
            j.observe(&w.scene(&[]), Pose2::new(0.1, 2.0, 0.0), 0.0),
            Some(Contact::AtFault)
        );
        assert_eq!(j.collisions, 2);
    }
}
