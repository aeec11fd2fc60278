use serde::{Deserialize, Serialize};

/// First four bytes of every message: "QBOT" read as a little-endian u32.
pub const MAGIC: u32 = u32::from_le_bytes(*b"QBOT");
/// Bumped on any incompatible change of header or body layout.
pub const SCHEMA_VERSION: u16 = 1;
/// Encoded header size; fixed so a receiver can check lengths before decoding bodies.
pub const HEADER_LEN: usize = 48;
/// Bodies are small structs; anything larger is hostile or a bug.
pub const MAX_BODY_LEN: usize = 4096;
/// Largest bulk payload accepted (a 4K RGBA frame is ~33 MiB).
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;

/// What the body is. The discriminant is the wire value; new kinds are appended and never
/// renumbered, so adding one does not bump [`SCHEMA_VERSION`]: a reader that predates a kind
/// refuses its messages as unknown and understands every other (docs/ARCHITECTURE.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u16)]
pub enum Kind {
    Scan = 1,
    Frame = 2,
    Command = 3,
    State = 4,
    Ping = 5,
    Memory = 6,
}

impl Kind {
    pub fn from_wire(v: u16) -> Option<Kind> {
        Some(match v {
            1 => Kind::Scan,
            2 => Kind::Frame,
            3 => Kind::Command,
            4 => Kind::State,
            5 => Kind::Ping,
            6 => Kind::Memory,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Scan => "scan",
            Kind::Frame => "frame",
            Kind::Command => "cmd",
            Kind::State => "state",
            Kind::Ping => "ping",
            Kind::Memory => "memory",
        }
    }
}

/// Identifies a publishing actor instance on the wire: FNV-1a of `"<actor>/<instance>"`.
/// A hash keeps the header fixed-size; the key expression carries the readable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ActorId(pub u64);

impl ActorId {
    pub const fn from_name(actor: &str, instance: &str) -> ActorId {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        let (a, i) = (actor.as_bytes(), instance.as_bytes());
        let mut k = 0;
        while k < a.len() + 1 + i.len() {
            let b = if k < a.len() {
                a[k]
            } else if k == a.len() {
                b'/'
            } else {
                i[k - a.len() - 1]
            };
            h ^= b as u64;
            h = h.wrapping_mul(PRIME);
            k += 1;
        }
        ActorId(h)
    }
}

/// The per-message fields a publisher fills in; the codec adds magic, version, kind, lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// Per-publisher sequence number, starting at 0 and incremented by one per message.
    pub seq: u64,
    pub source: ActorId,
    /// When the data was captured (ns since epoch); carried from sensor to actuator.
    pub origin_ns: u64,
    /// When this message was put on the bus (ns since epoch).
    pub publish_ns: u64,
}

/// A validated header: magic and version were checked, kind is known, lengths fit the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub kind: Kind,
    pub stamp: Stamp,
    pub body_len: u32,
    pub payload_len: u32,
}
