//! The one place that knows the byte layout: swap bincode here and nowhere else.

use bincode::{
    config::{Configuration, Fixint, Limit, LittleEndian},
    enc::write::SizeWriter,
};
use serde::{Deserialize, Serialize};

use crate::{
    body::Body,
    error::{DecodeError, EncodeError},
    header::{
        ActorId, Header, Kind, Stamp, HEADER_LEN, MAGIC, MAX_BODY_LEN, MAX_PAYLOAD_LEN, SCHEMA_VERSION,
    },
};

/// Fixed-width little-endian integers: the header has one size, and a body's size depends
/// only on its type. The limit stops a hostile length prefix from allocating.
type Config = Configuration<LittleEndian, Fixint, Limit<MAX_BODY_LEN>>;
const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_BODY_LEN>();

/// The header exactly as it sits on the wire (field order is the layout).
#[derive(Serialize, Deserialize)]
struct WireHeader {
    magic: u32,
    version: u16,
    kind: u16,
    seq: u64,
    source: u64,
    origin_ns: u64,
    publish_ns: u64,
    body_len: u32,
    payload_len: u32,
}

/// A decoded message whose payload borrows the received buffer: nothing bulk is copied.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<'a, B> {
    pub header: Header,
    pub body: B,
    pub payload: &'a [u8],
}

/// Total size of a message with this body and a payload of `payload_len` bytes: allocate
/// exactly this much (e.g. an SHM loan), then call [`encode_into`].
pub fn encoded_len<B: Body>(body: &B, payload_len: usize) -> Result<usize, EncodeError> {
    let mut size = SizeWriter::default();
    bincode::serde::encode_into_writer(body, &mut size, CONFIG).map_err(EncodeError::Body)?;
    check_lengths::<B>(body, size.bytes_written, payload_len)?;
    Ok(HEADER_LEN + size.bytes_written + payload_len)
}

/// Writes header and body at the start of `out` and returns the payload region that follows,
/// for the caller to fill in place. `out` must be exactly [`encoded_len`] bytes.
pub fn encode_into<'o, B: Body>(
    stamp: &Stamp,
    body: &B,
    out: &'o mut [u8],
) -> Result<&'o mut [u8], EncodeError> {
    if out.len() < HEADER_LEN {
        return Err(EncodeError::BufferTooSmall {
            need: HEADER_LEN,
            have: out.len(),
        });
    }
    let (head, rest) = out.split_at_mut(HEADER_LEN);
    let body_len = bincode::serde::encode_into_slice(body, rest, CONFIG).map_err(|e| match e {
        bincode::error::EncodeError::UnexpectedEnd => EncodeError::BufferTooSmall {
            need: HEADER_LEN + MAX_BODY_LEN,
            have: HEADER_LEN + rest.len(),
        },
        e => EncodeError::Body(e),
    })?;
    let payload_len = rest.len() - body_len;
    check_lengths::<B>(body, body_len, payload_len)?;
    let wire = WireHeader {
        magic: MAGIC,
        version: SCHEMA_VERSION,
        kind: B::KIND as u16,
        seq: stamp.seq,
        source: stamp.source.0,
        origin_ns: stamp.origin_ns,
        publish_ns: stamp.publish_ns,
        // Both lengths were bounded by check_lengths, so they fit u32.
        body_len: body_len as u32,
        payload_len: payload_len as u32,
    };
    let written = bincode::serde::encode_into_slice(&wire, head, CONFIG).map_err(EncodeError::Body)?;
    debug_assert_eq!(written, HEADER_LEN);
    Ok(&mut rest[body_len..])
}

/// Damage done on purpose to one header field of an encoded message, for fault injection
/// (`qubot inject`) and tests: each makes a receiver drop the message for one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderDamage {
    /// Not "QBOT": `bad_magic`.
    Magic,
    /// A schema version this build does not speak: `bad_version`.
    Version,
    /// A kind no body has: `bad_kind`.
    Kind,
    /// A payload length above the wire format's limit: `oversize`.
    PayloadLen,
}

/// Rewrites one field of the header at the start of `msg` (at least [`HEADER_LEN`] bytes).
pub fn damage_header(msg: &mut [u8], damage: HeaderDamage) -> Result<(), EncodeError> {
    let have = msg.len();
    let too_small = || EncodeError::BufferTooSmall {
        need: HEADER_LEN,
        have,
    };
    let head = msg.get_mut(..HEADER_LEN).ok_or_else(too_small)?;
    let (mut w, _): (WireHeader, usize) =
        bincode::serde::decode_from_slice(head, CONFIG).map_err(|_| too_small())?;
    match damage {
        HeaderDamage::Magic => w.magic = u32::from_le_bytes(*b"XBOT"),
        HeaderDamage::Version => w.version = SCHEMA_VERSION.wrapping_add(98),
        HeaderDamage::Kind => w.kind = 77,
        HeaderDamage::PayloadLen => w.payload_len = u32::MAX,
    }
    bincode::serde::encode_into_slice(&w, head, CONFIG).map_err(EncodeError::Body)?;
    Ok(())
}

/// Puts `source` in the header of the well-formed message `msg`, leaving every other byte as it
/// was: how a replay publishes recorded messages as a source of its own, which a robot's
/// consumers then count as foreign instead of taking them for their producer's.
pub fn restamp_source(msg: &mut [u8], source: ActorId) -> Result<(), DecodeError> {
    restamp(msg, source, 0)
}

/// As [`restamp_source`], and moves both time stamps (capture and publish) by `shift_ns`,
/// keeping their difference: how a replay standing in for a robot's producers makes recorded
/// messages as fresh as live ones (docs/ARCHITECTURE.md, "Recording"). A stamp the shift would
/// take below zero or past `u64::MAX` saturates.
pub fn restamp(msg: &mut [u8], source: ActorId, shift_ns: i64) -> Result<(), DecodeError> {
    decode_header(msg)?;
    let head = &mut msg[..HEADER_LEN];
    let (mut w, _): (WireHeader, usize) =
        bincode::serde::decode_from_slice(head, CONFIG).map_err(|_| DecodeError::Truncated {
            need: HEADER_LEN,
            have: HEADER_LEN,
        })?;
    w.source = source.0;
    w.origin_ns = w.origin_ns.saturating_add_signed(shift_ns);
    w.publish_ns = w.publish_ns.saturating_add_signed(shift_ns);
    // Fixed-width fields: the same 48 bytes, so the encode cannot fail on a valid header.
    if bincode::serde::encode_into_slice(&w, head, CONFIG).is_err() {
        unreachable!("a decoded header re-encodes into its own 48 bytes");
    }
    Ok(())
}

/// Overwrites the body of an encoded message with `body`, skipping the check that body and
/// payload agree: the way to forge a malformed message (a scan whose beam count disagrees
/// with its payload). `body` must encode to the same length as the body it replaces.
pub fn replace_body<B: Body>(msg: &mut [u8], body: &B) -> Result<(), EncodeError> {
    let have = msg.len();
    let (w, _): (WireHeader, usize) =
        bincode::serde::decode_from_slice(msg.get(..HEADER_LEN).unwrap_or_default(), CONFIG).map_err(
            |_| EncodeError::BufferTooSmall {
                need: HEADER_LEN,
                have,
            },
        )?;
    let end = HEADER_LEN + w.body_len as usize;
    let region = msg
        .get_mut(HEADER_LEN..end)
        .ok_or(EncodeError::BufferTooSmall { need: end, have })?;
    let n = bincode::serde::encode_into_slice(body, region, CONFIG).map_err(EncodeError::Body)?;
    if n != w.body_len as usize {
        return Err(EncodeError::BufferTooSmall {
            need: HEADER_LEN + n,
            have: end,
        });
    }
    Ok(())
}

/// The size limits both directions enforce: `Err((what, len, max))` names the part too big.
fn within_limits(body_len: usize, payload_len: usize) -> Result<(), (&'static str, usize, usize)> {
    if body_len > MAX_BODY_LEN {
        return Err(("body", body_len, MAX_BODY_LEN));
    }
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(("payload", payload_len, MAX_PAYLOAD_LEN));
    }
    Ok(())
}

fn check_lengths<B: Body>(body: &B, body_len: usize, payload_len: usize) -> Result<(), EncodeError> {
    within_limits(body_len, payload_len).map_err(|(what, len, max)| EncodeError::Oversize {
        what,
        len,
        max,
    })?;
    body.check_payload(payload_len)
        .map_err(|reason| EncodeError::PayloadMismatch {
            kind: B::KIND,
            len: payload_len,
            reason,
        })
}

/// Validates and decodes the header; checks that the buffer holds exactly header, body and
/// payload. Total: any byte string gives a header or an error, never a panic.
pub fn decode_header(buf: &[u8]) -> Result<Header, DecodeError> {
    decode_header_sized(buf, buf.len())
}

/// As [`decode_header`], for a message of `total` bytes of which `buf` holds the first ones
/// (a message that arrived in several fragments): the lengths are checked against `total`.
pub fn decode_header_sized(buf: &[u8], total: usize) -> Result<Header, DecodeError> {
    if buf.len() < HEADER_LEN {
        // Say "bad magic" rather than "truncated" when even the first bytes are wrong.
        if buf.len() >= 4 {
            let got = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
            if got != MAGIC {
                return Err(DecodeError::BadMagic { got });
            }
        }
        return Err(DecodeError::Truncated {
            need: HEADER_LEN,
            have: buf.len(),
        });
    }
    let (w, _): (WireHeader, usize) = bincode::serde::decode_from_slice(&buf[..HEADER_LEN], CONFIG)
        // A fixed-int decode of 48 bytes into plain integers cannot fail; keep it total anyway.
        .map_err(|_| DecodeError::Truncated {
            need: HEADER_LEN,
            have: buf.len(),
        })?;
    if w.magic != MAGIC {
        return Err(DecodeError::BadMagic { got: w.magic });
    }
    if w.version != SCHEMA_VERSION {
        return Err(DecodeError::UnknownVersion {
            got: w.version,
            supported: SCHEMA_VERSION,
        });
    }
    let kind = Kind::from_wire(w.kind).ok_or(DecodeError::UnknownKind { got: w.kind })?;
    let (body_len, payload_len) = (w.body_len as usize, w.payload_len as usize);
    within_limits(body_len, payload_len).map_err(|(what, len, max)| DecodeError::Oversize {
        what,
        len,
        max,
    })?;
    let need = HEADER_LEN + body_len + payload_len;
    if total < need {
        return Err(DecodeError::Truncated { need, have: total });
    }
    if total > need {
        return Err(DecodeError::Trailing { extra: total - need });
    }
    Ok(Header {
        version: w.version,
        kind,
        stamp: Stamp {
            seq: w.seq,
            source: crate::ActorId(w.source),
            origin_ns: w.origin_ns,
            publish_ns: w.publish_ns,
        },
        body_len: w.body_len,
        payload_len: w.payload_len,
    })
}

/// Decodes a message of body type `B`; the payload is a borrow of `buf`.
pub fn decode<B: Body>(buf: &[u8]) -> Result<Decoded<'_, B>, DecodeError> {
    let header = decode_header(buf)?;
    let body_end = HEADER_LEN + header.body_len as usize;
    let body = decode_body::<B>(&header, &buf[HEADER_LEN..body_end])?;
    Ok(Decoded {
        header,
        body,
        payload: &buf[body_end..],
    })
}

/// Decodes the body of a message whose header is `header` from its `header.body_len` bytes,
/// and checks it against the payload length the header declares. With
/// [`decode_header_sized`], decodes a fragmented message without gathering its payload.
pub fn decode_body<B: Body>(header: &Header, body_bytes: &[u8]) -> Result<B, DecodeError> {
    if header.kind != B::KIND {
        return Err(DecodeError::WrongKind {
            expected: B::KIND,
            got: header.kind,
        });
    }
    let bad = |reason: String| DecodeError::BadBody {
        kind: B::KIND,
        reason,
    };
    if body_bytes.len() != header.body_len as usize {
        return Err(bad(format!(
            "body_len {} but {} body bytes given",
            header.body_len,
            body_bytes.len()
        )));
    }
    let (body, used): (B, usize) =
        bincode::serde::decode_from_slice(body_bytes, CONFIG).map_err(|e| bad(e.to_string()))?;
    if used != body_bytes.len() {
        return Err(bad(format!(
            "body_len {} but body used {used} bytes",
            body_bytes.len()
        )));
    }
    body.check_payload(header.payload_len as usize).map_err(bad)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restamping_the_source_changes_those_eight_bytes_and_nothing_else() {
        let body = Ping { reply_to: 3 };
        let mut msg = vec![0; encoded_len(&body, 0).expect("len")];
        let stamp = Stamp {
            seq: 9,
            source: ActorId(1),
            origin_ns: 5,
            publish_ns: 6,
        };
        encode_into(&stamp, &body, &mut msg).expect("encode");
        let before = msg.clone();
        restamp_source(&mut msg, ActorId(0xabcd)).expect("restamp");
        let h = decode_header(&msg).expect("still a message");
        assert_eq!(
            h.stamp,
            Stamp {
                source: ActorId(0xabcd),
                ..stamp
            }
        );
        let changed: Vec<usize> = (0..msg.len()).filter(|&i| msg[i] != before[i]).collect();
        assert!(changed.iter().all(|i| (16..24).contains(i)), "{changed:?}");
        assert!(restamp_source(&mut msg[..10], ActorId(2)).is_err());
    }

    #[test]
    fn a_shift_moves_both_stamps_and_keeps_the_rest() {
        let body = Ping { reply_to: 3 };
        let mut msg = vec![0; encoded_len(&body, 4).expect("len")];
        let stamp = Stamp {
            seq: 9,
            source: ActorId(1),
            origin_ns: 1_000,
            publish_ns: 1_500,
        };
        encode_into(&stamp, &body, &mut msg).expect("encode");
        restamp(&mut msg, ActorId(2), 10_000).expect("forward");
        let h = decode_header(&msg).expect("a message");
        assert_eq!((h.stamp.seq, h.stamp.source), (9, ActorId(2)));
        assert_eq!((h.stamp.origin_ns, h.stamp.publish_ns), (11_000, 11_500));
        restamp(&mut msg, ActorId(2), -11_200).expect("back");
        let h = decode_header(&msg).expect("a message");
        assert_eq!(
            (h.stamp.origin_ns, h.stamp.publish_ns),
            (0, 300),
            "saturates at 0"
        );
        assert_eq!(decode::<Ping>(&msg).expect("whole").body, body);
    }
    use crate::{ActorId, Command, Ping, Scan};

    fn stamp() -> Stamp {
        Stamp {
            seq: 7,
            source: ActorId::from_name("sensor", "lidar0"),
            origin_ns: 11,
            publish_ns: 12,
        }
    }

    fn encode_vec<B: Body>(body: &B, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; encoded_len(body, payload.len()).expect("len")];
        encode_into(&stamp(), body, &mut out)
            .expect("encode")
            .copy_from_slice(payload);
        out
    }

    #[test]
    fn header_is_fixed_size() {
        let buf = encode_vec(&Command::default(), &[]);
        let h = decode_header(&buf).expect("header");
        assert_eq!(buf.len(), HEADER_LEN + h.body_len as usize);
        assert_eq!(&buf[..4], b"QBOT");
    }

    #[test]
    fn scan_round_trip_borrows_payload() {
        let ranges: Vec<u8> = (0..360u32)
            .flat_map(|i| (i as f32 * 0.01).to_le_bytes())
            .collect();
        let scan = Scan {
            beams: 360,
            range_max: 8.0,
            ..Scan::default()
        };
        let buf = encode_vec(&scan, &ranges);
        let d = decode::<Scan>(&buf).expect("decode");
        assert_eq!(d.body, scan);
        assert_eq!(d.header.stamp, stamp());
        assert_eq!(d.payload, &ranges[..]);
        // In place: the payload slice points into the received buffer.
        let inside = buf.as_ptr_range();
        assert!(inside.contains(&d.payload.as_ptr()));
        assert_eq!(crate::ScanRanges::new(d.payload).get(100), Some(1.0));
        assert_eq!(crate::ScanRanges::new(d.payload).get(360), None);
    }

    #[test]
    fn typed_errors() {
        let buf = encode_vec(&Ping { reply_to: 3 }, &[1, 2, 3]);
        assert!(matches!(
            decode::<Ping>(&buf[..10]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode::<Ping>(&buf[..buf.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut long = buf.clone();
        long.push(0);
        assert!(matches!(
            decode::<Ping>(&long),
            Err(DecodeError::Trailing { extra: 1 })
        ));
        let mut bad = buf.clone();
        bad[0] = b'X';
        assert!(matches!(decode::<Ping>(&bad), Err(DecodeError::BadMagic { .. })));
        let mut v2 = buf.clone();
        v2[4] = 2;
        assert_eq!(
            decode::<Ping>(&v2).unwrap_err(),
            DecodeError::UnknownVersion {
                got: 2,
                supported: SCHEMA_VERSION
            }
        );
        let mut k = buf.clone();
        k[6] = 99;
        assert_eq!(
            decode::<Ping>(&k).unwrap_err(),
            DecodeError::UnknownKind { got: 99 }
        );
        assert!(matches!(
            decode::<Command>(&buf),
            Err(DecodeError::WrongKind { .. })
        ));
        let mut huge = buf.clone();
        huge[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Ping>(&huge),
            Err(DecodeError::Oversize { what: "payload", .. })
        ));
    }

    #[test]
    fn scan_payload_must_match_beams() {
        let scan = Scan {
            beams: 4,
            ..Scan::default()
        };
        assert!(matches!(
            encoded_len(&scan, 15),
            Err(EncodeError::PayloadMismatch { .. })
        ));
        // A hostile sender lies about beams: decode refuses instead of reading past the end.
        let good = encode_vec(&scan, &[0u8; 16]);
        let mut lie = good.clone();
        let beams_at = HEADER_LEN + 3 * 8 + 3 * 4;
        lie[beams_at..beams_at + 4].copy_from_slice(&5u32.to_le_bytes());
        assert!(matches!(decode::<Scan>(&lie), Err(DecodeError::BadBody { .. })));
    }

    #[test]
    fn command_rejects_payload() {
        assert!(encoded_len(&Command::default(), 1).is_err());
    }

    #[test]
    fn damage_helpers_fail_decoding_with_one_reason() {
        use crate::DropReason;
        let good = encode_vec(
            &Scan {
                beams: 2,
                ..Scan::default()
            },
            &[0u8; 8],
        );
        for (damage, reason) in [
            (HeaderDamage::Magic, DropReason::BadMagic),
            (HeaderDamage::Version, DropReason::BadVersion),
            (HeaderDamage::Kind, DropReason::BadKind),
            (HeaderDamage::PayloadLen, DropReason::Oversize),
        ] {
            let mut m = good.clone();
            damage_header(&mut m, damage).expect("damage");
            assert_eq!(decode::<Scan>(&m).unwrap_err().reason(), reason, "{damage:?}");
        }
        let mut lie = good.clone();
        replace_body(
            &mut lie,
            &Scan {
                beams: 3,
                ..Scan::default()
            },
        )
        .expect("same size body");
        assert_eq!(decode::<Scan>(&lie).unwrap_err().reason(), DropReason::Malformed);
        assert!(damage_header(&mut [0u8; 10], HeaderDamage::Magic).is_err());
    }
}
