//! The loop's contract, declared once: every topic with the body type it carries, how it
//! travels (its [`QosClass`]), which role publishes it and which roles consume it. The roles'
//! flows ([`Role::flows`], [`Role::publishes`], [`Role::consumes`]) are derived from these
//! declarations, and a publisher or subscriber takes a [`Topic<B>`], so pairing a topic with
//! the wrong body does not compile (docs/ARCHITECTURE.md §5).

use std::{fmt, marker::PhantomData};

use crate::{
    body::{Body, Command, Frame, MemoryGrid, Ping, Scan, State},
    header::Kind,
    role::Role,
};

/// How a topic's samples travel; the bus maps a class to its transport's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QosClass {
    /// Sensor data: best effort, dropped under congestion; the consumer keeps the latest.
    Sensor,
    /// Commands: reliable, never dropped under congestion, sent at once, highest priority, so
    /// a sensor flood cannot delay them.
    Command,
    /// Feedback state: reliable but droppable under congestion, above sensor priority.
    State,
}

/// A topic without its body type: what lists of topics, metric labels and tools use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicSpec {
    /// The last segment of its key expression, and the `topic` label of its metrics.
    pub name: &'static str,
    pub kind: Kind,
    pub qos: QosClass,
    /// The role that publishes it under its own key prefix (`None`: tools and benchmarks).
    pub from: Option<Role>,
    /// The roles that subscribe to it; the first one's counters account for the flow.
    pub to: &'static [Role],
}

impl fmt::Display for TopicSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A topic whose messages have body `B`.
pub struct Topic<B> {
    spec: TopicSpec,
    _body: PhantomData<fn() -> B>,
}

// Manual impls: a derive would ask `B: Clone`, which the marker does not need.
impl<B> Clone for Topic<B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B> Copy for Topic<B> {}

impl<B> fmt::Debug for Topic<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec.fmt(f)
    }
}

impl<B: Body> Topic<B> {
    const fn new(name: &'static str, qos: QosClass, from: Option<Role>, to: &'static [Role]) -> Self {
        Topic {
            spec: TopicSpec {
                name,
                kind: B::KIND,
                qos,
                from,
                to,
            },
            _body: PhantomData,
        }
    }

    pub const fn spec(self) -> TopicSpec {
        self.spec
    }

    pub const fn name(self) -> &'static str {
        self.spec.name
    }

    pub const fn qos(self) -> QosClass {
        self.spec.qos
    }
}

impl<B> From<Topic<B>> for TopicSpec {
    fn from(t: Topic<B>) -> TopicSpec {
        t.spec
    }
}

/// LiDAR scans, sensor to planner, in shared memory on one host.
pub const SCAN: Topic<Scan> = Topic::new("scan", QosClass::Sensor, Some(Role::Sensor), &[Role::Planner]);
/// Camera frames (bulk payloads that exercise zero-copy); nobody in the loop consumes them.
pub const FRAME: Topic<Frame> = Topic::new("frame", QosClass::Sensor, Some(Role::Sensor), &[]);
/// Velocity commands, planner to actuator.
pub const CMD: Topic<Command> = Topic::new("cmd", QosClass::Command, Some(Role::Planner), &[Role::Actuator]);
/// Drive state, actuator to the sensor (where the lidar looks from) and the planner
/// (odometry). The supervisor's referee reads it too; it is not a role.
pub const STATE: Topic<State> = Topic::new(
    "state",
    QosClass::State,
    Some(Role::Actuator),
    &[Role::Sensor, Role::Planner],
);
/// Benchmark and probe requests.
pub const PING: Topic<Ping> = Topic::new("ping", QosClass::Sensor, None, &[]);
/// Benchmark and probe replies.
pub const PONG: Topic<Ping> = Topic::new("pong", QosClass::Sensor, None, &[]);

/// The planner's obstacle grid at a low rate, for viewers and recordings; nobody in the loop
/// consumes it, so it is no flow. Best effort like sensor data: a lost grid is replaced by the
/// next, and a reliable class would let a slow viewer hold up the planner's worker.
pub const MEMORY: Topic<MemoryGrid> = Topic::new("memory", QosClass::Sensor, Some(Role::Planner), &[]);

/// Every topic of the contract.
pub const ALL: [TopicSpec; 7] = [
    SCAN.spec,
    FRAME.spec,
    CMD.spec,
    STATE.spec,
    PING.spec,
    PONG.spec,
    MEMORY.spec,
];

/// The topic named `name`, if the contract has one.
pub fn by_name(name: &str) -> Option<TopicSpec> {
    ALL.into_iter().find(|t| t.name == name)
}

/// One stream of the control loop: `topic` from `from`, with `to` the subscriber whose
/// counters account for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub topic: &'static str,
    pub from: Role,
    pub to: Role,
}

impl Role {
    /// The closed loop (scans to the planner, commands to the actuator, state back), in the
    /// order the topics are declared.
    pub fn flows() -> impl Iterator<Item = Flow> {
        ALL.into_iter().filter_map(|t| {
            Some(Flow {
                topic: t.name,
                from: t.from?,
                to: *t.to.first()?,
            })
        })
    }

    /// Topics this role publishes under its own key prefix.
    pub fn publishes(self) -> impl Iterator<Item = TopicSpec> {
        ALL.into_iter().filter(move |t| t.from == Some(self))
    }

    /// Topics this role subscribes to (each names its producer in `from`).
    pub fn consumes(self) -> impl Iterator<Item = TopicSpec> {
        ALL.into_iter().filter(move |t| t.to.contains(&self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for t in ALL {
            assert_eq!(by_name(t.name), Some(t));
            assert_eq!(ALL.iter().filter(|u| u.name == t.name).count(), 1, "{t}");
        }
        assert_eq!(by_name("nope"), None);
    }

    #[test]
    fn the_loop_is_closed() {
        let flows: Vec<(&str, Role, Role)> = Role::flows().map(|f| (f.topic, f.from, f.to)).collect();
        assert_eq!(
            flows,
            [
                ("scan", Role::Sensor, Role::Planner),
                ("cmd", Role::Planner, Role::Actuator),
                ("state", Role::Actuator, Role::Sensor),
            ]
        );
        for r in Role::ALL {
            assert!(r.publishes().count() > 0, "{r} publishes nothing");
            assert!(r.consumes().count() > 0, "{r} consumes nothing");
        }
        let planner_in: Vec<&str> = Role::Planner.consumes().map(|t| t.name).collect();
        assert_eq!(planner_in, ["scan", "state"]);
    }

    #[test]
    fn bodies_match_kinds() {
        assert_eq!(SCAN.spec().kind, Kind::Scan);
        assert_eq!(CMD.spec().kind, Kind::Command);
        assert_eq!(STATE.spec().kind, Kind::State);
        assert_eq!(FRAME.spec().kind, Kind::Frame);
        assert_eq!(PING.spec().kind, Kind::Ping);
        assert_eq!(MEMORY.spec().kind, Kind::Memory);
    }
}
