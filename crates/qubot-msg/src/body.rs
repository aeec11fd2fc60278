use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::header::Kind;

/// A message body: a small serde struct with a fixed kind. `check_payload` says whether a bulk
/// payload of `len` bytes belongs with this body; the codec calls it on encode and decode.
pub trait Body: Serialize + DeserializeOwned {
    const KIND: Kind;

    fn check_payload(&self, len: usize) -> Result<(), String> {
        if len == 0 {
            Ok(())
        } else {
            Err(format!("{:?} carries no payload", Self::KIND))
        }
    }
}

/// A 2D LiDAR scan. Payload: `beams` ranges (read and written by `ranges`), beam `i` at
/// `angle_min + i * angle_increment` radians in the robot frame (CCW from forward).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Scan {
    /// Robot pose in the world frame when the scan was captured (m, m, rad).
    pub pose_x: f64,
    pub pose_y: f64,
    pub pose_theta: f64,
    pub angle_min: f32,
    pub angle_increment: f32,
    pub range_max: f32,
    pub beams: u32,
}

impl Body for Scan {
    const KIND: Kind = Kind::Scan;
    fn check_payload(&self, len: usize) -> Result<(), String> {
        let want = crate::ranges::ranges_len(self.beams as usize);
        if len == want {
            Ok(())
        } else {
            Err(format!(
                "{} beams need {want} payload bytes, got {len}",
                self.beams
            ))
        }
    }
}

/// A camera frame. Payload: `width * height * channels` bytes, row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
}

impl Body for Frame {
    const KIND: Kind = Kind::Frame;
    fn check_payload(&self, len: usize) -> Result<(), String> {
        let want = self.width as u64 * self.height as u64 * self.channels as u64;
        if len as u64 == want {
            Ok(())
        } else {
            Err(format!(
                "{}x{}x{} frame needs {want} payload bytes, got {len}",
                self.width, self.height, self.channels
            ))
        }
    }
}

/// A velocity command for a differential drive (m/s, rad/s).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Command {
    pub v: f64,
    pub w: f64,
    /// After this instant (ns since epoch) the command must not be applied.
    pub deadline_ns: u64,
    /// Sequence number of the scan this command was planned from.
    pub scan_seq: u64,
}

impl Body for Command {
    const KIND: Kind = Kind::Command;
}

/// Drive state published by the actuator (world frame; m, rad, m/s, rad/s).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    pub x: f64,
    pub y: f64,
    pub theta: f64,
    pub v: f64,
    pub w: f64,
    pub last_cmd_seq: u64,
    pub safe_stopped: bool,
    pub goal_reached: bool,
}

impl Body for State {
    const KIND: Kind = Kind::State;
}

/// Benchmark and probe traffic: an opaque payload of any size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ping {
    /// Sequence number of the ping this answers, or `u64::MAX` for a request.
    pub reply_to: u64,
}

impl Body for Ping {
    const KIND: Kind = Kind::Ping;
    fn check_payload(&self, _len: usize) -> Result<(), String> {
        Ok(())
    }
}

/// The planner's memory: the obstacle grid it plans around, published at a low rate for
/// viewers and recordings. Payload: `width * height` cells of one byte, row-major from the
/// cell at the origin (x grows along a row, rows grow in y); a cell is 0 (free or never seen)
/// to 100 (an obstacle seen on as many scans as the grid remembers).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MemoryGrid {
    /// World coordinates of the outer corner of cell (0, 0) (m).
    pub origin_x: f64,
    pub origin_y: f64,
    /// Side of a square cell (m).
    pub resolution_m: f64,
    pub width: u32,
    pub height: u32,
}

impl MemoryGrid {
    /// The value of a cell with the most evidence.
    pub const OCCUPIED: u8 = 100;
}

impl Body for MemoryGrid {
    const KIND: Kind = Kind::Memory;
    fn check_payload(&self, len: usize) -> Result<(), String> {
        let want = self.width as u64 * self.height as u64;
        if len as u64 == want {
            Ok(())
        } else {
            Err(format!(
                "{}x{} grid needs {want} payload bytes, got {len}",
                self.width, self.height
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, encode_into, encoded_len, ActorId, EncodeError, Stamp};

    #[test]
    fn a_memory_grid_carries_one_byte_per_cell() {
        let body = MemoryGrid {
            origin_x: -1.5,
            origin_y: 2.0,
            resolution_m: 0.1,
            width: 3,
            height: 2,
        };
        assert!(body.check_payload(6).is_ok());
        assert!(body.check_payload(5).is_err());
        assert!(body.check_payload(0).is_err());
        assert!(matches!(
            encoded_len(&body, 7),
            Err(EncodeError::PayloadMismatch { len: 7, .. })
        ));

        let cells = [0, 100, 0, 33, 0, 100];
        let mut msg = vec![0; encoded_len(&body, cells.len()).expect("len")];
        let stamp = Stamp {
            seq: 1,
            source: ActorId(7),
            origin_ns: 10,
            publish_ns: 11,
        };
        encode_into(&stamp, &body, &mut msg)
            .expect("encode")
            .copy_from_slice(&cells);
        let d = decode::<MemoryGrid>(&msg).expect("decode");
        assert_eq!(d.header.kind, Kind::Memory);
        assert_eq!(Kind::from_wire(Kind::Memory as u16), Some(Kind::Memory));
        assert_eq!(d.body, body);
        assert_eq!(d.payload, cells);
    }
}
