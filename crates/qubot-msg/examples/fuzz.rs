//! Long-running decode fuzzer: feeds millions of random and mutated byte strings to every
//! decoder and fails on the first panic. `cargo run --release -p qubot-msg --example fuzz -- 10000000`

use qubot_msg::{decode, decode_header, encode_into, encoded_len, Command, Frame, Ping, Scan, Stamp, State};

/// xorshift64*: deterministic, so a failing iteration can be replayed from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = Rng(seed | 1);
    let scan = Scan {
        beams: 32,
        ..Scan::default()
    };
    let mut valid = vec![0u8; encoded_len(&scan, 128).expect("len")];
    encode_into(&Stamp::default(), &scan, &mut valid).expect("encode");
    let mut buf = Vec::with_capacity(4096);
    let (mut ok, mut err) = (0u64, 0u64);
    for i in 0..n {
        buf.clear();
        if i % 2 == 0 {
            buf.extend_from_slice(&valid);
            for _ in 0..1 + rng.next() % 8 {
                let at = (rng.next() as usize) % buf.len();
                buf[at] ^= rng.next() as u8;
            }
            buf.truncate(buf.len() - (rng.next() as usize % 4) * (rng.next() as usize % 2));
        } else {
            let len = (rng.next() % 300) as usize;
            buf.extend((0..len).map(|_| rng.next() as u8));
            if len >= 6 && rng.next().is_multiple_of(2) {
                buf[..6].copy_from_slice(b"QBOT\x01\x00");
            }
        }
        let results = [
            decode_header(&buf).is_ok(),
            decode::<Scan>(&buf).is_ok(),
            decode::<Frame>(&buf).is_ok(),
            decode::<Command>(&buf).is_ok(),
            decode::<State>(&buf).is_ok(),
            decode::<Ping>(&buf).is_ok(),
        ];
        if results.iter().any(|r| *r) {
            ok += 1;
        } else {
            err += 1;
        }
    }
    println!("{{\"inputs\":{n},\"decoded\":{ok},\"rejected\":{err},\"seed\":{seed}}}");
}
