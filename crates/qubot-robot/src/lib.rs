//! Qubot simulated robot: the world model, a 2D lidar, the local planner and a differential
//! drive, plus an in-process closed loop (`sim`) that ties them together.
//!
//! Owns: world files and their validation (`world`), exact analytic ray casting, the
//! obstacle-avoiding planner that turns one scan into one velocity command (`planner`, with
//! its private obstacle memory in `navgrid`), and the kinematics of the base (`drive`). Pure computation: no I/O besides reading a world
//! file on request, no zenoh, no actix, no clocks; of the wire format it knows only the scan
//! payload's reader and writer (`qubot_msg::ScanRanges`), so the simulator feeds the planner
//! exactly what a message carries. The processes that publish scans and
//! commands live elsewhere and call into this crate.
//!
//! Conventions: metres, radians, seconds; the world frame has +x to the right and +y up,
//! angles are counter-clockwise from +x; the robot frame has +x forward.

pub mod drive;
pub mod geom;
pub mod judge;
pub mod lidar;
pub mod mover;
mod navgrid;
pub mod optimal;
pub mod planner;
pub mod shape;
pub mod sim;
pub mod world;

pub use drive::{DiffDrive, DriveLimits};
pub use geom::{normalize_angle, Point, Pose2};
pub use judge::{Contact, Judge};
pub use lidar::{Lidar, LidarConfig};
pub use mover::{Mover, Repeat, Waypoint};
pub use optimal::shortest_path_m;
pub use planner::{Plan, Planner, PlannerConfig, RangeSource, RouteStats, ScanInput};
pub use sim::{run_closed_loop, SimConfig, SimReport};
pub use world::{RayCast, Scene, Shape, World, WorldError};
