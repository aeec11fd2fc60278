//! Cutting the server's side of a WebSocket connection into frames (RFC 6455 §5.2), just far
//! enough for the relay to tell a Foxglove data message, which it may drop, from everything
//! else, which it must pass on. Pure: bytes in, lengths out.

/// The HTTP head ends with an empty line; nothing after it is HTTP.
const HEAD_END: &[u8] = b"\r\n\r\n";
/// A head longer than this is no WebSocket handshake.
pub const MAX_HEAD: usize = 16 << 10;
/// No frame of the view comes near this (a memory grid is about 100 KiB); a longer one is a
/// broken stream, not a message.
pub const MAX_FRAME: u64 = 64 << 20;

const OP_BINARY: u8 = 0x2;
/// The Foxglove protocol's binary opcode of a message on a subscribed channel ("Message
/// Data"), the first byte of the frame's payload.
const FOXGLOVE_MESSAGE_DATA: u8 = 0x01;

/// Where the HTTP head ends (the index after its empty line), once it has all arrived.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(HEAD_END.len())
        .position(|w| w == HEAD_END)
        .map(|i| i + HEAD_END.len())
}

/// Whether the head accepts the upgrade (status 101): only then do frames follow.
pub fn switching_protocols(head: &[u8]) -> bool {
    head.starts_with(b"HTTP/1.1 101")
}

/// One whole frame at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Header and payload.
    pub len: usize,
    /// A complete Foxglove "Message Data": a message of a subscribed channel, which a client
    /// that has fallen behind can go without. Anything else (text frames with the channel
    /// list, pings, closes, fragments) changes the session and is always passed on.
    pub data: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a WebSocket frame of {0} bytes is past the relay's limit of {MAX_FRAME}")]
pub struct TooLong(pub u64);

/// The frame at the start of `buf`, or `None` until all of it has arrived.
pub fn next(buf: &[u8]) -> Result<Option<Frame>, TooLong> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut header) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if payload_len > MAX_FRAME {
        return Err(TooLong(payload_len));
    }
    let mask = if masked {
        let m = match buf.get(header..header + 4) {
            Some(m) => [m[0], m[1], m[2], m[3]],
            None => return Ok(None),
        };
        header += 4;
        m[0]
    } else {
        0
    };
    let len = header + payload_len as usize;
    if buf.len() < len {
        return Ok(None);
    }
    let first = (payload_len > 0).then(|| buf[header] ^ mask);
    Ok(Some(Frame {
        len,
        data: fin && opcode == OP_BINARY && first == Some(FOXGLOVE_MESSAGE_DATA),
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A frame as a server writes it (unmasked), or as a client does with `mask`.
    fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xffff => {
                f.push(m | 126);
                f.extend((n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend((n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                f.extend(k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => f.extend(payload),
        }
        f
    }

    #[test]
    fn the_head_ends_at_its_empty_line_and_only_101_switches() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        let mut buf = head.to_vec();
        buf.extend([0x82, 0x00]);
        assert_eq!(head_len(&buf), Some(head.len()));
        assert_eq!(head_len(&head[..head.len() - 1]), None);
        assert!(switching_protocols(head));
        assert!(!switching_protocols(b"HTTP/1.1 400 Bad Request\r\n\r\n"));
    }

    #[test]
    fn only_a_whole_foxglove_message_data_frame_may_be_dropped() {
        let data = frame(true, OP_BINARY, &[1, 7, 0, 0, 0], None);
        assert_eq!(next(&data), Ok(Some(Frame { len: 7, data: true })));
        // Time (op 2) is binary too, but not a channel's message.
        assert!(
            !next(&frame(true, OP_BINARY, &[2, 0], None))
                .unwrap()
                .unwrap()
                .data
        );
        // The channel list is text.
        assert!(
            !next(&frame(true, 0x1, b"{\"op\":\"advertise\"}", None))
                .unwrap()
                .unwrap()
                .data
        );
        // A fragment is never dropped alone: the rest of its message would be left dangling.
        assert!(
            !next(&frame(false, OP_BINARY, &[1, 2], None))
                .unwrap()
                .unwrap()
                .data
        );
        // Ping, close, an empty binary frame.
        assert!(!next(&frame(true, 0x9, &[], None)).unwrap().unwrap().data);
        assert!(!next(&frame(true, 0x8, &[3, 232], None)).unwrap().unwrap().data);
        assert!(!next(&frame(true, OP_BINARY, &[], None)).unwrap().unwrap().data);
        // Masked (as a client sends): the opcode byte is read through the mask.
        let masked = frame(true, OP_BINARY, &[1, 9], Some([0xA5, 1, 2, 3]));
        assert_eq!(next(&masked), Ok(Some(Frame { len: 8, data: true })));
    }

    #[test]
    fn a_frame_past_the_limit_is_refused_before_it_is_buffered() {
        let mut f = vec![0x82, 127];
        f.extend((MAX_FRAME + 1).to_be_bytes());
        assert_eq!(next(&f), Err(TooLong(MAX_FRAME + 1)));
    }

    proptest! {
        /// Every length encoding, cut at every point: no frame until the last byte, then
        /// exactly the frame, whatever follows it.
        #[test]
        fn a_frame_is_found_whole_and_only_whole(
            len in prop_oneof![0usize..126, 126usize..70_000],
            fin in any::<bool>(),
            opcode in prop_oneof![Just(0u8), Just(1), Just(2), Just(8), Just(9), Just(10)],
            mask in proptest::option::of(any::<[u8; 4]>()),
            cut in 0.0f64..1.0,
            first in 0u8..3,
            tail in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ first).collect();
            let f = frame(fin, opcode, &payload, mask);
            let at = ((f.len() as f64) * cut) as usize;
            prop_assert_eq!(next(&f[..at]), Ok(None));
            let mut buf = f.clone();
            buf.extend(&tail);
            let got = next(&buf).unwrap().unwrap();
            prop_assert_eq!(got.len, f.len());
            prop_assert_eq!(got.data, fin && opcode == 2 && payload.first() == Some(&1));
        }
    }
}
