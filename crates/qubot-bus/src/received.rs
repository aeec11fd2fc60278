use std::sync::OnceLock;

use qubot_msg::{decode, decode_body, decode_header_sized, Body, DecodeError, Header, HEADER_LEN};
use zenoh::bytes::ZBytes;

/// A received, validated message. It owns the sample's buffer (for SHM: a reference to the
/// sender's shared memory) and hands out the payload as a borrow of that buffer.
///
/// A message that arrived over the network in several fragments is decoded in place: header
/// and body from the first fragment, the payload left in the fragments
/// ([`Received::payload_slices`]). It is gathered into one buffer only if and when
/// [`Received::payload`] asks for it contiguous.
pub struct Received<B> {
    pub header: Header,
    pub body: B,
    bytes: ZBytes,
    payload_at: usize,
    /// The payload of a fragmented message, gathered on the first `payload()` call.
    gathered: OnceLock<Vec<u8>>,
}

impl<B: Body> Received<B> {
    /// Decodes `bytes` as a `B` message. Errors are the same whether the message arrived whole
    /// or in fragments.
    pub fn decode(bytes: ZBytes) -> Result<Self, DecodeError> {
        let total = bytes.len();
        let first = first_slice(&bytes);
        // Header and body almost always lie in the first fragment (a whole zenoh batch).
        if first.len() >= HEADER_LEN || first.len() == total {
            let header = decode_header_sized(first, total)?;
            let body_end = HEADER_LEN + header.body_len as usize;
            if let Some(body_bytes) = first.get(HEADER_LEN..body_end) {
                let body = decode_body::<B>(&header, body_bytes)?;
                return Ok(Received {
                    header,
                    body,
                    bytes,
                    payload_at: body_end,
                    gathered: OnceLock::new(),
                });
            }
        }
        // The header or the body straddles two fragments (a whole message took the branch
        // above): gather the message once, and keep the gathered copy.
        let whole = bytes.to_bytes().into_owned();
        let (header, body, payload_at) = {
            let d = decode::<B>(&whole)?;
            (d.header, d.body, whole.len() - d.payload.len())
        };
        Ok(Received {
            header,
            body,
            bytes: ZBytes::from(whole),
            payload_at,
            gathered: OnceLock::new(),
        })
    }

    /// The bulk payload, contiguous: in place in the received buffer (SHM or a whole
    /// message), or gathered once from the fragments it arrived in.
    pub fn payload(&self) -> &[u8] {
        if !self.fragmented() {
            return first_slice(&self.bytes).get(self.payload_at..).unwrap_or(&[]);
        }
        self.gathered.get_or_init(|| {
            let mut v = Vec::with_capacity(self.payload_len());
            self.payload_slices().for_each(|s| v.extend_from_slice(s));
            v
        })
    }

    /// The payload's length, without touching it.
    pub fn payload_len(&self) -> usize {
        self.bytes.len() - self.payload_at
    }

    /// The payload as the pieces it arrived in, without copying: one piece for SHM and
    /// whole messages, several for a message that was fragmented on the network.
    pub fn payload_slices(&self) -> impl Iterator<Item = &[u8]> {
        let mut skip = self.payload_at;
        self.bytes.slices().filter_map(move |s| {
            let piece = s.get(skip.min(s.len())..).unwrap_or(&[]);
            skip = skip.saturating_sub(s.len());
            (!piece.is_empty()).then_some(piece)
        })
    }

    /// Whether the message arrived in several fragments (its payload is gathered only when
    /// [`Received::payload`] is called).
    pub fn fragmented(&self) -> bool {
        first_slice(&self.bytes).len() != self.bytes.len()
    }

    /// The whole message as received (header, body, payload), e.g. to relay it unchanged.
    pub fn bytes(&self) -> &ZBytes {
        &self.bytes
    }

    pub fn wire_len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the received buffer is the sender's shared memory (zero copy on one host).
    pub fn is_shm(&self) -> bool {
        self.bytes.as_shm().is_some()
    }

    /// Whether `payload()` points into the shared-memory buffer itself: the proof that the
    /// decoded payload is a borrow, not a copy.
    pub fn payload_borrows_shm(&self) -> bool {
        match self.bytes.as_shm() {
            Some(shm) => {
                let range = shm.as_ptr_range();
                let p = self.payload();
                p.is_empty() || (range.contains(&p.as_ptr()) && p.as_ptr_range().end <= range.end)
            }
            None => false,
        }
    }
}

fn first_slice(bytes: &ZBytes) -> &[u8] {
    bytes.slices().next().unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use qubot_msg::{encode_into, encoded_len, Ping, Stamp};

    fn message(payload: &[u8]) -> Vec<u8> {
        let body = Ping { reply_to: 3 };
        let mut out = vec![0u8; encoded_len(&body, payload.len()).expect("len")];
        encode_into(&Stamp::default(), &body, &mut out)
            .expect("encode")
            .copy_from_slice(payload);
        out
    }

    /// A ZBytes made of the pieces of `msg` cut at `cuts`, as a fragmented message arrives.
    fn fragments(msg: &[u8], cuts: &[usize]) -> ZBytes {
        let mut w = ZBytes::writer();
        let mut at = 0;
        for &c in cuts.iter().chain([&msg.len()]) {
            w.append(ZBytes::from(msg[at..c].to_vec()));
            at = c;
        }
        w.finish()
    }

    #[test]
    fn a_fragmented_message_decodes_in_place_whatever_the_cuts() {
        let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let msg = message(&payload);
        // Cuts inside the header, inside the body, at the payload's start, inside it.
        for cuts in [
            vec![3],
            vec![HEADER_LEN + 2],
            vec![msg.len() - 5000],
            vec![100, 2000, 4000],
        ] {
            let bytes = fragments(&msg, &cuts);
            assert_eq!(bytes.slices().count(), cuts.len() + 1, "{cuts:?}");
            let m = Received::<Ping>::decode(bytes).expect("decodes");
            assert_eq!(m.body.reply_to, 3);
            assert_eq!(m.payload_len(), payload.len(), "{cuts:?}");
            let pieces: Vec<u8> = m.payload_slices().flatten().copied().collect();
            assert_eq!(pieces, payload, "{cuts:?}");
            assert_eq!(m.payload(), &payload[..], "{cuts:?}");
        }
    }

    #[test]
    fn fragments_give_the_same_errors_as_a_whole_message() {
        let msg = message(&[7; 300]);
        let mut short = msg.clone();
        short.truncate(msg.len() - 1);
        let mut long = msg.clone();
        long.push(0);
        for bad in [short, long] {
            let whole = Received::<Ping>::decode(ZBytes::from(bad.clone())).err();
            let cut = Received::<Ping>::decode(fragments(&bad, &[HEADER_LEN + 20])).err();
            assert!(whole.is_some());
            assert_eq!(whole.map(|e| e.to_string()), cut.map(|e| e.to_string()));
        }
    }

    #[test]
    fn a_whole_message_is_not_fragmented() {
        let m = Received::<Ping>::decode(ZBytes::from(message(&[1, 2, 3]))).expect("decodes");
        assert!(!m.fragmented());
        assert_eq!(m.payload(), &[1, 2, 3]);
        assert_eq!(m.payload_slices().count(), 1);
    }
}
