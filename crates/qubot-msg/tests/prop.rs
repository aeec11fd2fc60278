//! Property tests: decoding is total (no panic on any input) and encoding round-trips.
//! Run longer with `PROPTEST_CASES=1000000 cargo test --release -p qubot-msg --test prop`.

use proptest::prelude::*;
use qubot_msg::{
    decode, decode_header, encode_into, encoded_len, ActorId, Body, Command, DecodeError, Frame, Ping, Scan,
    Stamp, State, HEADER_LEN,
};

fn encode_vec<B: Body>(stamp: &Stamp, body: &B, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; encoded_len(body, payload.len()).expect("len")];
    encode_into(stamp, body, &mut out)
        .expect("encode")
        .copy_from_slice(payload);
    out
}

fn any_stamp() -> impl Strategy<Value = Stamp> {
    (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(seq, s, o, p)| Stamp {
        seq,
        source: ActorId(s),
        origin_ns: o,
        publish_ns: p,
    })
}

/// Decodes as every kind; panics are the failure this guards against.
fn decode_all(bytes: &[u8]) {
    let _ = decode_header(bytes);
    let _ = decode::<Scan>(bytes);
    let _ = decode::<Frame>(bytes);
    let _ = decode::<Command>(bytes);
    let _ = decode::<State>(bytes);
    let _ = decode::<Ping>(bytes);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_bytes_behind_valid_magic_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"QBOT\x01\x00".to_vec();
        bytes.extend_from_slice(&tail);
        decode_all(&bytes);
    }

    #[test]
    fn scan_round_trips(stamp in any_stamp(), ranges in proptest::collection::vec(any::<f32>(), 0..256),
                        x in any::<f64>(), amin in any::<f32>()) {
        let scan = Scan { pose_x: x, angle_min: amin, beams: ranges.len() as u32, ..Scan::default() };
        let payload: Vec<u8> = ranges.iter().flat_map(|r| r.to_le_bytes()).collect();
        let buf = encode_vec(&stamp, &scan, &payload);
        let d = decode::<Scan>(&buf).expect("decode");
        prop_assert_eq!(d.header.stamp, stamp);
        prop_assert_eq!(d.payload, &payload[..]);
        prop_assert_eq!(d.body.beams, scan.beams);
        prop_assert_eq!(d.body.pose_x.to_bits(), x.to_bits());
    }

    #[test]
    fn state_and_command_round_trip(stamp in any_stamp(), v in -10.0f64..10.0, seq in any::<u64>(), b in any::<bool>()) {
        let st = State { x: v, v, last_cmd_seq: seq, goal_reached: b, ..State::default() };
        prop_assert_eq!(decode::<State>(&encode_vec(&stamp, &st, &[])).expect("state").body, st);
        let c = Command { v, w: -v, deadline_ns: seq, scan_seq: seq };
        prop_assert_eq!(decode::<Command>(&encode_vec(&stamp, &c, &[])).expect("cmd").body, c);
    }

    /// Every truncation of a valid message is reported as truncated (never decoded, never a panic).
    #[test]
    fn truncations_are_typed(stamp in any_stamp(), n in 0usize..64, cut in any::<prop::sample::Index>()) {
        let buf = encode_vec(&stamp, &Ping { reply_to: 1 }, &vec![0xAB; n]);
        let at = cut.index(buf.len());
        let err = decode::<Ping>(&buf[..at]).expect_err("truncated must not decode");
        prop_assert!(matches!(err, DecodeError::Truncated { .. }), "{:?}", err);
    }

    /// Flipping bytes of a valid message gives a message or a typed error, never a panic.
    #[test]
    fn mutations_never_panic(stamp in any_stamp(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let scan = Scan { beams: 16, ..Scan::default() };
        let mut buf = encode_vec(&stamp, &scan, &[0u8; 64]);
        for (i, b) in flips {
            let at = i.index(buf.len());
            buf[at] ^= b;
        }
        decode_all(&buf);
        prop_assert!(buf.len() > HEADER_LEN);
    }
}
