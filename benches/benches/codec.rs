//! Encode and decode cost vs payload size. Decoding borrows the payload, so its cost should be
//! flat in the payload size; encoding writes the payload once (the caller's fill).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use qubot_msg::{decode, encode_into, encoded_len, Ping, Stamp};

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    for size in [64usize, 1024, 65_536, 1 << 20, 4 << 20] {
        let body = Ping { reply_to: u64::MAX };
        let len = encoded_len(&body, size).expect("len");
        let mut buf = vec![0u8; len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("encode_header_body", size), &size, |b, _| {
            b.iter(|| {
                let payload =
                    encode_into(&Stamp::default(), black_box(&body), black_box(&mut buf)).expect("encode");
                black_box(payload.len())
            })
        });
        g.bench_with_input(BenchmarkId::new("decode_in_place", size), &size, |b, _| {
            b.iter(|| {
                let d = decode::<Ping>(black_box(&buf)).expect("decode");
                black_box(d.payload.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
