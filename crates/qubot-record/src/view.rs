//! The Foxglove view of the bus: Qubot's wire messages mapped to Foxglove's schemas, so a
//! recording opens and renders in Foxglove with no configuration (docs/ARCHITECTURE.md §11,
//! "Derived channels"). One job, and the one place that knows the mapping: a wire message in,
//! zero or more encoded Foxglove messages out. Pure (no I/O, no zenoh, no actix): the
//! recorder's writer thread runs it, and a live view can serve the same channels.
//!
//! Times, for every derived message: log time = when the recorder received the wire message,
//! publish time = its header's `publish_ns`, the message's own timestamp = its capture stamp
//! (`origin_ns`).

use foxglove::messages::{
    packed_element_field::NumericType, scene_entity_deletion, Color, CubePrimitive, CylinderPrimitive,
    FrameTransform, FrameTransforms, Grid, KeyValuePair, LaserScan, PackedElementField, Pose, PoseInFrame,
    Quaternion, SceneEntity, SceneEntityDeletion, SceneUpdate, Timestamp, Vector2, Vector3,
};
use foxglove::{Encode, Schema};
use qubot_msg::{decode, topic, Command, DecodeError, Header, MemoryGrid, Scan, ScanRanges, State};
use qubot_robot::{Shape, World};
use serde::Serialize;

use crate::filter::topic_of;

/// The fixed frame: the world's coordinates, in which scans carry their capture pose.
pub const MAP_FRAME: &str = "map";
/// The robot's body frame, placed in the map by `/tf`.
pub const BASE_FRAME: &str = "base_link";

/// The message encoding of the plottable channels.
const JSON: &str = "json";
/// How tall the world's shapes are drawn (the world is flat; a lidar sees in its plane).
const HEIGHT_M: f64 = 0.3;
/// How thick walls (segments and the map border) are drawn.
const WALL_M: f64 = 0.05;
const OBSTACLE: Color = Color {
    r: 0.55,
    g: 0.55,
    b: 0.6,
    a: 0.8,
};
const MOVER: Color = Color {
    r: 1.0,
    g: 0.55,
    b: 0.1,
    a: 0.9,
};
const GOAL: Color = Color {
    r: 0.2,
    g: 0.8,
    b: 0.3,
    a: 0.4,
};

/// The wire topics some channel is drawn from ([`Channel::drawn_from`]): [`View::derive`] gives
/// nothing for any other.
pub const DRAWN_TOPICS: [&str; 4] = [
    topic::SCAN.name(),
    topic::STATE.name(),
    topic::CMD.name(),
    topic::MEMORY.name(),
];

/// A derived channel. Topics carry no robot name: a recording is one robot's (the recorder
/// subscribes to `qubot/<robot>/**`), and fixed names let one layout open every file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `foxglove.LaserScan` in the map frame at the scan's capture pose.
    Scan,
    /// `foxglove.FrameTransforms`: map → base_link, from the drive state.
    Tf,
    /// `foxglove.PoseInFrame`: the robot's pose in the map, from the drive state.
    Pose,
    /// `foxglove.SceneUpdate`: the world's static shapes and goal, once per file.
    World,
    /// `foxglove.SceneUpdate`: the moving obstacles where they stood at each scan's capture.
    /// A topic of its own: a player that seeks shows the last message of each topic, and the
    /// static world must not be replaced by a movers-only update.
    Movers,
    /// JSON: each velocity command's figures.
    Cmd,
    /// JSON: the loop's figures at each command (latency, the drive's measured velocity).
    Loop,
    /// `foxglove.Grid` in the map frame: the planner's memory, one u8 `occupancy` per cell.
    Memory,
}

impl Channel {
    pub const COUNT: usize = 8;
    pub const ALL: [Channel; Channel::COUNT] = [
        Channel::Scan,
        Channel::Tf,
        Channel::Pose,
        Channel::World,
        Channel::Movers,
        Channel::Cmd,
        Channel::Loop,
        Channel::Memory,
    ];

    /// Position in [`Channel::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn topic(self) -> &'static str {
        match self {
            Channel::Scan => "/scan",
            Channel::Tf => "/tf",
            Channel::Pose => "/pose",
            Channel::World => "/world",
            Channel::Movers => "/movers",
            Channel::Cmd => "/cmd",
            Channel::Loop => "/loop",
            Channel::Memory => "/memory",
        }
    }

    /// The wire topic its messages are derived from; `None` for the world (from `--world`).
    pub fn drawn_from(self) -> Option<&'static str> {
        match self {
            Channel::Scan | Channel::Movers => Some(topic::SCAN.name()),
            Channel::Tf | Channel::Pose => Some(topic::STATE.name()),
            Channel::Cmd | Channel::Loop => Some(topic::CMD.name()),
            Channel::Memory => Some(topic::MEMORY.name()),
            Channel::World => None,
        }
    }

    pub fn message_encoding(self) -> &'static str {
        match self {
            Channel::Cmd | Channel::Loop => JSON,
            _ => "protobuf",
        }
    }

    /// The schema record: Foxglove's own (a protobuf file descriptor set) or a JSON schema.
    pub fn schema(self) -> Option<Schema> {
        match self {
            Channel::Scan => LaserScan::get_schema(),
            Channel::Tf => FrameTransforms::get_schema(),
            Channel::Pose => PoseInFrame::get_schema(),
            Channel::World | Channel::Movers => SceneUpdate::get_schema(),
            Channel::Cmd => Some(Schema::new("qubot.Cmd", "jsonschema", CMD_SCHEMA.as_bytes())),
            Channel::Loop => Some(Schema::new("qubot.Loop", "jsonschema", LOOP_SCHEMA.as_bytes())),
            Channel::Memory => Grid::get_schema(),
        }
    }
}

const CMD_SCHEMA: &str = r#"{"title":"qubot.Cmd","description":"A velocity command from the planner to the actuator.","type":"object","properties":{"v":{"type":"number","description":"Linear velocity, m/s."},"w":{"type":"number","description":"Angular velocity, rad/s."},"scan_seq":{"type":"integer","description":"Sequence number of the scan it was planned from."},"deadline_in_ms":{"type":"number","description":"From its publication to the deadline after which the actuator must not apply it, ms."}}}"#;

const LOOP_SCHEMA: &str = r#"{"title":"qubot.Loop","description":"The loop at each velocity command.","type":"object","properties":{"latency_ms":{"type":"number","description":"From the scan's capture to the command's publication, ms."},"v":{"type":"number","description":"Linear velocity the drive last reported, m/s (absent before its first state)."},"w":{"type":"number","description":"Angular velocity the drive last reported, rad/s (absent before its first state)."}}}"#;

#[derive(Serialize)]
struct CmdFigures {
    v: f64,
    w: f64,
    scan_seq: u64,
    deadline_in_ms: f64,
}

#[derive(Serialize)]
struct LoopFigures {
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    w: Option<f64>,
}

/// Why a wire message gave no derived messages. It is still recorded on its wire channel.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("not a well-formed {topic} message: {source}")]
    Decode {
        topic: &'static str,
        source: DecodeError,
    },
    #[error("encoding {topic}: {reason}")]
    Encode { topic: &'static str, reason: String },
}

impl ViewError {
    /// The `reason` label it is counted under: a drop reason's for a message that does not
    /// decode (docs/ARCHITECTURE.md §6), `encode` for one that did not encode.
    pub fn reason(&self) -> &'static str {
        match self {
            ViewError::Decode { source, .. } => source.reason().label(),
            ViewError::Encode { .. } => "encode",
        }
    }
}

/// One derived message; its bytes are the channel's message encoding.
#[derive(Debug, Clone)]
pub struct Derived {
    pub channel: Channel,
    /// When the recorder received the wire message (ns since the epoch).
    pub log_ns: u64,
    /// The wire header's `publish_ns`.
    pub publish_ns: u64,
    /// The low 32 bits of the wire header's sequence number.
    pub sequence: u32,
    pub data: Vec<u8>,
}

/// What the view draws besides the wire messages.
#[derive(Debug, Clone, Default)]
pub struct ViewOptions {
    /// The world the robot runs in (the simulator's truth), if there is one: a real robot has
    /// no world file, and then there are no `/world` and `/movers` channels.
    pub world: Option<World>,
    /// The run's world clock zero (ns since the epoch): where movers stand is a function of it.
    pub world_epoch_ns: u64,
}

/// The mapping, with what it keeps between messages: the drive's last state (for `/loop`),
/// whether the current file still needs the static world, and the buffers it reuses.
pub struct View {
    opts: ViewOptions,
    world_due: bool,
    last_state: Option<State>,
    out: Outputs,
    // Reused between messages, so a scan's ranges are not allocated anew every time.
    scan: LaserScan,
    tf: FrameTransforms,
    pose: PoseInFrame,
}

/// The derived messages of one wire message: the buffers of the first `n` are this message's.
struct Outputs {
    list: Vec<Derived>,
    n: usize,
}

impl Outputs {
    /// The next output, stamped from `header` and received at `recv_ns`: its cleared buffer.
    fn push(&mut self, channel: Channel, header: &Header, recv_ns: u64) -> &mut Vec<u8> {
        if self.n == self.list.len() {
            self.list.push(Derived {
                channel,
                log_ns: 0,
                publish_ns: 0,
                sequence: 0,
                data: Vec::new(),
            });
        }
        let d = &mut self.list[self.n];
        self.n += 1;
        d.channel = channel;
        d.log_ns = recv_ns;
        d.publish_ns = header.stamp.publish_ns;
        // MCAP's sequence is 32 bits; the full one stays in the wire message.
        d.sequence = header.stamp.seq as u32;
        d.data.clear();
        &mut d.data
    }
}

/// One wire message of a mapped topic, decoded (its payload borrowed, not copied).
enum Wire<'a> {
    Scan(qubot_msg::Decoded<'a, Scan>),
    State(qubot_msg::Decoded<'a, State>),
    Cmd(qubot_msg::Decoded<'a, Command>),
    Memory(qubot_msg::Decoded<'a, MemoryGrid>),
}

impl Wire<'_> {
    fn header(&self) -> &Header {
        match self {
            Wire::Scan(d) => &d.header,
            Wire::State(d) => &d.header,
            Wire::Cmd(d) => &d.header,
            Wire::Memory(d) => &d.header,
        }
    }
}

impl View {
    pub fn new(opts: ViewOptions) -> View {
        View {
            opts,
            world_due: true,
            last_state: None,
            out: Outputs {
                list: Vec::new(),
                n: 0,
            },
            scan: LaserScan {
                frame_id: MAP_FRAME.to_owned(),
                ..LaserScan::default()
            },
            tf: FrameTransforms {
                transforms: vec![FrameTransform {
                    parent_frame_id: MAP_FRAME.to_owned(),
                    child_frame_id: BASE_FRAME.to_owned(),
                    ..FrameTransform::default()
                }],
            },
            pose: PoseInFrame {
                frame_id: MAP_FRAME.to_owned(),
                ..PoseInFrame::default()
            },
        }
    }

    /// A new file has begun: it gets the static world again, so that every file is whole.
    pub fn new_file(&mut self) {
        self.world_due = true;
    }

    /// The static world as one `/world` message stamped `now_ns`, for a viewer that joins a
    /// running robot; `None` without a world.
    pub fn world_update(&self, now_ns: u64) -> Option<Result<Derived, ViewError>> {
        let world = self.opts.world.as_ref()?;
        let mut data = Vec::new();
        Some(
            encode(&static_world(world, now_ns), Channel::World, &mut data).map(|()| Derived {
                channel: Channel::World,
                log_ns: now_ns,
                publish_ns: now_ns,
                sequence: 0,
                data,
            }),
        )
    }

    /// The Foxglove messages derived from `wire`, received on `key` at `recv_ns`: none for a
    /// topic with no Foxglove counterpart (frames, pings).
    pub fn derive(&mut self, key: &str, wire: &[u8], recv_ns: u64) -> Result<&[Derived], ViewError> {
        self.out.n = 0;
        let name = topic_of(key);
        let msg = if name == topic::SCAN.name() {
            Wire::Scan(decode(wire).map_err(|e| decode_error(topic::SCAN.name(), e))?)
        } else if name == topic::STATE.name() {
            Wire::State(decode(wire).map_err(|e| decode_error(topic::STATE.name(), e))?)
        } else if name == topic::CMD.name() {
            Wire::Cmd(decode(wire).map_err(|e| decode_error(topic::CMD.name(), e))?)
        } else if name == topic::MEMORY.name() {
            Wire::Memory(decode(wire).map_err(|e| decode_error(topic::MEMORY.name(), e))?)
        } else {
            return Ok(&[]);
        };
        let header = *msg.header();
        if self.world_due {
            if let Some(world) = &self.opts.world {
                let update = static_world(world, header.stamp.origin_ns);
                encode(
                    &update,
                    Channel::World,
                    self.out.push(Channel::World, &header, recv_ns),
                )?;
            }
            self.world_due = false;
        }
        match msg {
            Wire::Scan(d) => self.scan(&d, recv_ns)?,
            Wire::State(d) => self.state(&d, recv_ns)?,
            Wire::Cmd(d) => self.cmd(&d, recv_ns)?,
            Wire::Memory(d) => self.memory(&d, recv_ns)?,
        }
        Ok(&self.out.list[..self.out.n])
    }

    fn scan(&mut self, d: &qubot_msg::Decoded<'_, Scan>, recv_ns: u64) -> Result<(), ViewError> {
        let s = &d.body;
        let ranges = ScanRanges::new(d.payload);
        self.scan.timestamp = Some(timestamp(d.header.stamp.origin_ns));
        self.scan.pose = Some(pose(s.pose_x, s.pose_y, s.pose_theta));
        // Foxglove spaces the ranges evenly from the first bearing to the last.
        let start = f64::from(s.angle_min);
        self.scan.start_angle = start;
        self.scan.end_angle = start + ranges.len().saturating_sub(1) as f64 * f64::from(s.angle_increment);
        self.scan.ranges.clear();
        self.scan.ranges.extend(ranges.iter().map(f64::from));
        encode(
            &self.scan,
            Channel::Scan,
            self.out.push(Channel::Scan, &d.header, recv_ns),
        )?;
        if let Some(world) = self.opts.world.as_ref().filter(|w| w.is_dynamic()) {
            // The true world at the scan's capture: what the lidar was looking at.
            let origin = d.header.stamp.origin_ns;
            let t = qubot_node::world_time_s(self.opts.world_epoch_ns, origin);
            let update = movers(world, t, origin);
            encode(
                &update,
                Channel::Movers,
                self.out.push(Channel::Movers, &d.header, recv_ns),
            )?;
        }
        Ok(())
    }

    fn state(&mut self, d: &qubot_msg::Decoded<'_, State>, recv_ns: u64) -> Result<(), ViewError> {
        let s = &d.body;
        let stamp = Some(timestamp(d.header.stamp.origin_ns));
        let at = pose(s.x, s.y, s.theta);
        if let Some(t) = self.tf.transforms.first_mut() {
            t.timestamp = stamp;
            t.translation = at.position;
            t.rotation = at.orientation;
        }
        encode(
            &self.tf,
            Channel::Tf,
            self.out.push(Channel::Tf, &d.header, recv_ns),
        )?;
        self.pose.timestamp = stamp;
        self.pose.pose = Some(at);
        encode(
            &self.pose,
            Channel::Pose,
            self.out.push(Channel::Pose, &d.header, recv_ns),
        )?;
        self.last_state = Some(*s);
        Ok(())
    }

    fn cmd(&mut self, d: &qubot_msg::Decoded<'_, Command>, recv_ns: u64) -> Result<(), ViewError> {
        let c = &d.body;
        let stamp = d.header.stamp;
        let cmd = CmdFigures {
            v: c.v,
            w: c.w,
            scan_seq: c.scan_seq,
            deadline_in_ms: ms_between(stamp.publish_ns, c.deadline_ns),
        };
        json(
            &cmd,
            Channel::Cmd,
            self.out.push(Channel::Cmd, &d.header, recv_ns),
        )?;
        let figures = LoopFigures {
            latency_ms: ms_between(stamp.origin_ns, stamp.publish_ns),
            v: self.last_state.map(|s| s.v),
            w: self.last_state.map(|s| s.w),
        };
        json(
            &figures,
            Channel::Loop,
            self.out.push(Channel::Loop, &d.header, recv_ns),
        )?;
        Ok(())
    }

    /// The grid as Foxglove draws it: cell (0, 0) at the pose, columns along x, rows along y,
    /// one byte a cell. At a hertz or so, copying the cells into the message costs little.
    fn memory(&mut self, d: &qubot_msg::Decoded<'_, MemoryGrid>, recv_ns: u64) -> Result<(), ViewError> {
        let m = &d.body;
        let grid = Grid {
            timestamp: Some(timestamp(d.header.stamp.origin_ns)),
            frame_id: MAP_FRAME.to_owned(),
            pose: Some(pose(m.origin_x, m.origin_y, 0.0)),
            column_count: m.width,
            cell_size: Some(Vector2 {
                x: m.resolution_m,
                y: m.resolution_m,
            }),
            row_stride: m.width,
            cell_stride: 1,
            fields: vec![PackedElementField {
                name: "occupancy".to_owned(),
                offset: 0,
                r#type: NumericType::Uint8 as i32,
            }],
            data: d.payload.to_vec().into(),
        };
        encode(
            &grid,
            Channel::Memory,
            self.out.push(Channel::Memory, &d.header, recv_ns),
        )
    }
}

fn decode_error(topic: &'static str, source: DecodeError) -> ViewError {
    ViewError::Decode { topic, source }
}

fn encode<M: Encode>(msg: &M, channel: Channel, buf: &mut Vec<u8>) -> Result<(), ViewError> {
    msg.encode(buf).map_err(|e| ViewError::Encode {
        topic: channel.topic(),
        reason: e.to_string(),
    })
}

fn json<T: Serialize>(figures: &T, channel: Channel, buf: &mut Vec<u8>) -> Result<(), ViewError> {
    serde_json::to_writer(buf, figures).map_err(|e| ViewError::Encode {
        topic: channel.topic(),
        reason: e.to_string(),
    })
}

/// `to - from` in milliseconds, negative when `to` is earlier (clocks of different hosts).
fn ms_between(from_ns: u64, to_ns: u64) -> f64 {
    (i128::from(to_ns) - i128::from(from_ns)) as f64 * 1e-6
}

fn timestamp(ns: u64) -> Timestamp {
    let sec = u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX);
    // Below a second's worth of nanoseconds: nothing carries into the seconds.
    Timestamp::new(sec, (ns % 1_000_000_000) as u32)
}

/// A pose in the map's plane: at `(x, y)`, turned `theta` about the vertical.
fn pose(x: f64, y: f64, theta: f64) -> Pose {
    place(x, y, 0.0, theta)
}

fn place(x: f64, y: f64, z: f64, yaw: f64) -> Pose {
    let (s, c) = (yaw / 2.0).sin_cos();
    Pose {
        position: Some(Vector3 { x, y, z }),
        orientation: Some(Quaternion {
            x: 0.0,
            y: 0.0,
            z: s,
            w: c,
        }),
    }
}

fn entity(id: String, origin_ns: u64) -> SceneEntity {
    SceneEntity {
        timestamp: Some(timestamp(origin_ns)),
        frame_id: MAP_FRAME.to_owned(),
        id,
        ..SceneEntity::default()
    }
}

/// The world's static shapes, its border and its goal.
fn static_world(world: &World, origin_ns: u64) -> SceneUpdate {
    let mut walls = entity("world".to_owned(), origin_ns);
    let (w, h) = (world.width_m, world.height_m);
    // The map's border is a wall of every world, listed or not: drawn like the others.
    for (x0, y0, x1, y1) in [
        (0.0, 0.0, w, 0.0),
        (w, 0.0, w, h),
        (w, h, 0.0, h),
        (0.0, h, 0.0, 0.0),
    ] {
        add_shape(&mut walls, &Shape::Segment { x0, y0, x1, y1 }, OBSTACLE);
    }
    for shape in &world.obstacles {
        add_shape(&mut walls, shape, OBSTACLE);
    }
    let mut goal = entity("goal".to_owned(), origin_ns);
    let d = 2.0 * world.goal_tolerance_m;
    goal.cylinders.push(CylinderPrimitive {
        pose: Some(place(world.goal.x, world.goal.y, 0.01, 0.0)),
        size: Some(Vector3 { x: d, y: d, z: 0.02 }),
        bottom_scale: 1.0,
        top_scale: 1.0,
        color: Some(GOAL),
    });
    SceneUpdate {
        deletions: vec![],
        entities: vec![walls, goal],
    }
}

/// Every mover at world time `t`: its shape where it stands, or the deletion of its entity
/// while it is absent (a door that is open).
fn movers(world: &World, t: f64, origin_ns: u64) -> SceneUpdate {
    let mut update = SceneUpdate::default();
    for (i, m) in world.movers.iter().enumerate() {
        let id = format!("mover-{i}");
        match m.shape_at(t) {
            Some(shape) => {
                let mut e = entity(id, origin_ns);
                if !m.name.is_empty() {
                    e.metadata.push(KeyValuePair {
                        key: "name".to_owned(),
                        value: m.name.clone(),
                    });
                }
                add_shape(&mut e, &shape, MOVER);
                update.entities.push(e);
            }
            None => update.deletions.push(SceneEntityDeletion {
                timestamp: Some(timestamp(origin_ns)),
                r#type: scene_entity_deletion::Type::MatchingId as i32,
                id,
            }),
        }
    }
    update
}

/// `shape` as a primitive standing on the map: a box, a cylinder, or a thin wall.
fn add_shape(e: &mut SceneEntity, shape: &Shape, color: Color) {
    let z = HEIGHT_M / 2.0;
    match *shape {
        Shape::Rect {
            x_min,
            y_min,
            x_max,
            y_max,
        } => e.cubes.push(CubePrimitive {
            pose: Some(place((x_min + x_max) / 2.0, (y_min + y_max) / 2.0, z, 0.0)),
            size: Some(Vector3 {
                x: x_max - x_min,
                y: y_max - y_min,
                z: HEIGHT_M,
            }),
            color: Some(color),
        }),
        Shape::Circle { cx, cy, r } => e.cylinders.push(CylinderPrimitive {
            pose: Some(place(cx, cy, z, 0.0)),
            size: Some(Vector3 {
                x: 2.0 * r,
                y: 2.0 * r,
                z: HEIGHT_M,
            }),
            bottom_scale: 1.0,
            top_scale: 1.0,
            color: Some(color),
        }),
        Shape::Segment { x0, y0, x1, y1 } => e.cubes.push(CubePrimitive {
            pose: Some(place(
                (x0 + x1) / 2.0,
                (y0 + y1) / 2.0,
                z,
                (y1 - y0).atan2(x1 - x0),
            )),
            size: Some(Vector3 {
                x: (x1 - x0).hypot(y1 - y0),
                y: WALL_M,
                z: HEIGHT_M,
            }),
            color: Some(color),
        }),
    }
}

#[cfg(test)]
mod tests {
    use foxglove::Decode;
    use qubot_msg::{encode_into, encoded_len, ranges_to_bytes, replace_body, ActorId, Body, Stamp};

    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;

    fn wire<B: Body>(body: &B, payload: &[u8], seq: u64, origin_ns: u64, publish_ns: u64) -> Vec<u8> {
        let mut buf = vec![0; encoded_len(body, payload.len()).expect("size")];
        let stamp = Stamp {
            seq,
            source: ActorId(7),
            origin_ns,
            publish_ns,
        };
        encode_into(&stamp, body, &mut buf)
            .expect("encode")
            .copy_from_slice(payload);
        buf
    }

    fn scan_wire(ranges: &[f32], origin_ns: u64) -> Vec<u8> {
        let body = Scan {
            pose_x: 1.5,
            pose_y: 2.0,
            pose_theta: std::f64::consts::FRAC_PI_2,
            angle_min: -1.0,
            angle_increment: 0.5,
            range_max: 8.0,
            beams: ranges.len() as u32,
        };
        wire(
            &body,
            &ranges_to_bytes(ranges),
            5,
            origin_ns,
            origin_ns + 2_000_000,
        )
    }

    fn world(text: &str) -> World {
        World::from_toml_str(text).expect("world")
    }

    const ROOM: &str = r#"
        name = "room"
        width_m = 10.0
        height_m = 4.0
        start = { x = 1.0, y = 2.0 }
        goal = { x = 9.0, y = 2.0 }
        [[obstacles]]
        kind = "rect"
        x_min = 4.0
        y_min = 0.0
        x_max = 5.0
        y_max = 1.0
        [[obstacles]]
        kind = "circle"
        cx = 6.0
        cy = 3.0
        r = 0.3
        [[movers]]
        name = "cart"
        shape = { kind = "circle", cx = 3.0, cy = 1.0, r = 0.2 }
        waypoints = [{ x = 3.0, y = 1.0 }, { x = 3.0, y = 3.0 }]
        speed_mps = 1.0
        [[movers]]
        name = "door"
        shape = { kind = "segment", x0 = 7.0, y0 = 0.0, x1 = 7.0, y1 = 1.0 }
        present = [[0.0, 1.0]]
    "#;

    #[test]
    fn a_scan_is_a_laser_scan_in_the_map_at_its_capture_pose() {
        let mut view = View::new(ViewOptions::default());
        let ranges = [1.0f32, 2.5, f32::INFINITY, 0.25];
        let out = view
            .derive("qubot/r/sensor/main/scan", &scan_wire(&ranges, T0), T0 + 9)
            .expect("derived");
        assert_eq!(out.len(), 1, "no world, so no /world");
        let d = &out[0];
        assert_eq!(
            (d.channel, d.log_ns, d.publish_ns, d.sequence),
            (Channel::Scan, T0 + 9, T0 + 2_000_000, 5)
        );
        let s = LaserScan::decode(d.data.as_slice()).expect("protobuf");
        assert_eq!(s.frame_id, "map");
        assert_eq!(s.timestamp.map(|t| t.total_nanos()), Some(T0));
        assert_eq!(s.ranges, ranges.map(f64::from));
        assert_eq!((s.start_angle, s.end_angle), (-1.0, 0.5));
        let p = s.pose.expect("pose");
        let (pos, q) = (p.position.expect("position"), p.orientation.expect("orientation"));
        assert_eq!((pos.x, pos.y, pos.z), (1.5, 2.0, 0.0));
        let yaw = 2.0 * q.z.atan2(q.w);
        assert!((yaw - std::f64::consts::FRAC_PI_2).abs() < 1e-12, "{yaw}");
    }

    #[test]
    fn state_places_base_link_in_the_map_and_commands_are_plottable() {
        let mut view = View::new(ViewOptions::default());
        let cmd = Command {
            v: 0.4,
            w: -0.1,
            deadline_ns: T0 + 250_000_000,
            scan_seq: 41,
        };
        let cmd_wire = wire(&cmd, &[], 3, T0 - 12_000_000, T0);
        // Before any state, /loop has no measured velocity.
        let out = view
            .derive("qubot/r/planner/main/cmd", &cmd_wire, T0)
            .expect("cmd");
        let figures: Vec<serde_json::Value> = out
            .iter()
            .map(|d| serde_json::from_slice(&d.data).expect("json"))
            .collect();
        assert_eq!(
            out.iter().map(|d| d.channel).collect::<Vec<_>>(),
            [Channel::Cmd, Channel::Loop]
        );
        assert_eq!(
            figures[0],
            serde_json::json!({"v": 0.4, "w": -0.1, "scan_seq": 41, "deadline_in_ms": 250.0})
        );
        assert_eq!(figures[1], serde_json::json!({"latency_ms": 12.0}));

        let state = State {
            x: 3.0,
            y: 1.0,
            theta: 0.0,
            v: 0.35,
            w: 0.05,
            ..State::default()
        };
        let out = view
            .derive(
                "qubot/r/actuator/main/state",
                &wire(&state, &[], 9, T0, T0 + 1),
                T0 + 2,
            )
            .expect("state");
        assert_eq!(
            out.iter().map(|d| d.channel).collect::<Vec<_>>(),
            [Channel::Tf, Channel::Pose]
        );
        let tf = FrameTransforms::decode(out[0].data.as_slice()).expect("tf");
        let t = &tf.transforms[0];
        assert_eq!(
            (t.parent_frame_id.as_str(), t.child_frame_id.as_str()),
            ("map", "base_link")
        );
        assert_eq!(t.translation.map(|v| (v.x, v.y)), Some((3.0, 1.0)));
        let pose = PoseInFrame::decode(out[1].data.as_slice()).expect("pose");
        assert_eq!(pose.frame_id, "map");

        let out = view
            .derive("qubot/r/planner/main/cmd", &cmd_wire, T0)
            .expect("cmd");
        let figures: serde_json::Value = serde_json::from_slice(&out[1].data).expect("json");
        assert_eq!(
            figures,
            serde_json::json!({"latency_ms": 12.0, "v": 0.35, "w": 0.05})
        );
    }

    #[test]
    fn the_world_is_drawn_once_per_file_and_movers_at_each_scan() {
        let w = world(ROOM);
        let epoch = T0;
        let mut view = View::new(ViewOptions {
            world: Some(w),
            world_epoch_ns: epoch,
        });
        let key = "qubot/r/sensor/main/scan";
        // Half a second into the run: the cart has moved 0.5 m, the door is there.
        let out = view
            .derive(key, &scan_wire(&[1.0], epoch + 500_000_000), 1)
            .expect("scan");
        let channels: Vec<Channel> = out.iter().map(|d| d.channel).collect();
        assert_eq!(channels, [Channel::World, Channel::Scan, Channel::Movers]);
        let world = SceneUpdate::decode(out[0].data.as_slice()).expect("world");
        let walls = &world.entities[0];
        assert_eq!((walls.id.as_str(), walls.frame_id.as_str()), ("world", "map"));
        // Four border walls and the rect as boxes, the circle as a cylinder; then the goal.
        assert_eq!((walls.cubes.len(), walls.cylinders.len()), (5, 1));
        assert_eq!(world.entities[1].id, "goal");
        let movers = SceneUpdate::decode(out[2].data.as_slice()).expect("movers");
        assert_eq!(movers.entities.len(), 2);
        let cart = &movers.entities[0];
        assert_eq!(cart.id, "mover-0");
        let at = cart.cylinders[0].pose.and_then(|p| p.position).expect("position");
        assert!((at.x - 3.0).abs() < 1e-9 && (at.y - 1.5).abs() < 1e-9, "{at:?}");

        // Later in the same file: no static world again; the door has gone.
        let out = view
            .derive(key, &scan_wire(&[1.0], epoch + 1_500_000_000), 2)
            .expect("scan");
        assert_eq!(
            out.iter().map(|d| d.channel).collect::<Vec<_>>(),
            [Channel::Scan, Channel::Movers]
        );
        let movers = SceneUpdate::decode(out[1].data.as_slice()).expect("movers");
        assert_eq!(movers.entities.len(), 1);
        assert_eq!(movers.deletions.len(), 1);
        assert_eq!(movers.deletions[0].id, "mover-1");

        view.new_file();
        let out = view
            .derive(key, &scan_wire(&[1.0], epoch + 1_600_000_000), 3)
            .expect("scan");
        assert_eq!(out[0].channel, Channel::World, "a new file is whole");
    }

    #[test]
    fn the_memory_is_a_grid_of_its_cells_at_its_origin() {
        let mut view = View::new(ViewOptions::default());
        let body = MemoryGrid {
            origin_x: -3.2,
            origin_y: 1.6,
            resolution_m: 0.1,
            width: 4,
            height: 3,
        };
        let cells: Vec<u8> = (0..12).map(|i| if i % 5 == 0 { 100 } else { 0 }).collect();
        let out = view
            .derive(
                "qubot/r/planner/main/memory",
                &wire(&body, &cells, 4, T0, T0 + 1),
                T0 + 2,
            )
            .expect("memory");
        assert_eq!(
            out.iter().map(|d| d.channel).collect::<Vec<_>>(),
            [Channel::Memory]
        );
        let g = Grid::decode(out[0].data.as_slice()).expect("grid");
        assert_eq!(g.frame_id, "map");
        assert_eq!(g.timestamp.map(|t| t.total_nanos()), Some(T0));
        assert_eq!((g.column_count, g.row_stride, g.cell_stride), (4, 4, 1));
        assert_eq!(g.data.len() as u32 / g.row_stride, 3, "rows");
        assert_eq!(g.data.as_ref(), cells.as_slice());
        assert_eq!(g.cell_size.map(|c| (c.x, c.y)), Some((0.1, 0.1)));
        let at = g.pose.and_then(|p| p.position).expect("position");
        assert_eq!((at.x, at.y), (-3.2, 1.6));
        assert_eq!(g.fields.len(), 1);
        assert_eq!(g.fields[0].name, "occupancy");
        assert_eq!(g.fields[0].r#type, NumericType::Uint8 as i32);
    }

    #[test]
    fn a_malformed_message_maps_to_nothing_and_says_why() {
        let mut view = View::new(ViewOptions::default());
        // A scan whose beam count disagrees with its payload.
        let mut bad = scan_wire(&[1.0, 2.0], T0);
        let body = Scan {
            beams: 3,
            ..Scan::default()
        };
        replace_body(&mut bad, &body).expect("forged");
        let err = view
            .derive("qubot/r/sensor/main/scan", &bad, T0)
            .expect_err("malformed");
        assert_eq!(err.reason(), "malformed");
        let err = view
            .derive("qubot/r/sensor/main/scan", b"not a message", T0)
            .expect_err("garbage");
        assert_eq!(err.reason(), "bad_magic");
        // Topics with no Foxglove counterpart map to nothing, without an error.
        assert!(view
            .derive("qubot/r/bench/main/ping", b"anything", T0)
            .expect("ping")
            .is_empty());
    }

    #[test]
    fn every_channel_has_its_schema() {
        for c in Channel::ALL {
            assert_eq!(Channel::ALL[c.index()], c);
            match c.drawn_from() {
                Some(t) => assert!(DRAWN_TOPICS.contains(&t), "{c:?}"),
                None => assert_eq!(c, Channel::World),
            }
            let s = c.schema().expect("schema");
            match c.message_encoding() {
                "protobuf" => assert!(
                    s.name.starts_with("foxglove.") && s.encoding == "protobuf",
                    "{c:?}"
                ),
                _ => {
                    assert_eq!(s.encoding, "jsonschema");
                    let v: serde_json::Value = serde_json::from_slice(&s.data).expect("a JSON schema");
                    assert_eq!(v["type"], "object", "{c:?}");
                }
            }
        }
    }
}
