#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmarks, like tests, stop at the first failure
//! Working on codes without decoding them ([`latentlink_archive::search`]): the
//! nearest 10 codes of one event among a million 128-bit codes, by the packed `u64`
//! XOR-popcount scan and, as the baseline in the same run, by the plain byte-by-byte scan a
//! first version would write; and the surprise score of every code.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latentlink_archive::search::{CodeIndex, EventKey};

const CODES: usize = 1_000_000;
const CODE_BYTES: usize = 16;

/// Pseudo-random codes, `CODES × CODE_BYTES` bytes.
fn codes() -> Vec<u8> {
    (0..CODES * CODE_BYTES)
        .map(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()[7])
        .collect()
}

/// The baseline: the 10 smallest byte-wise Hamming distances to code 0, by a full sort.
fn byte_scan(codes: &[u8]) -> Vec<(u32, usize)> {
    let query = &codes[..CODE_BYTES];
    let mut distances: Vec<(u32, usize)> = codes
        .chunks_exact(CODE_BYTES)
        .enumerate()
        .skip(1)
        .map(|(i, code)| {
            let d = query
                .iter()
                .zip(code)
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            (d, i)
        })
        .collect();
    distances.sort_unstable();
    distances.truncate(10);
    distances
}

fn search(c: &mut Criterion) {
    let bytes = codes();
    let mut index = CodeIndex::new(CODE_BYTES as u8, 0);
    for (event, code) in bytes.chunks_exact(CODE_BYTES).enumerate() {
        index.push(
            EventKey {
                stream: 0,
                event: event as u64,
            },
            code,
        );
    }
    // Both find the same neighbours.
    let packed: Vec<u32> = index.nearest(0, 10).iter().map(|n| n.distance).collect();
    let plain: Vec<u32> = byte_scan(&bytes).iter().map(|&(d, _)| d).collect();
    assert_eq!(packed, plain);

    let mut group = c.benchmark_group("search");
    group.sample_size(20);
    group.throughput(Throughput::Elements(CODES as u64));
    group.bench_function("nearest 10 of 10^6, packed u64 scan", |b| {
        b.iter(|| black_box(index.nearest(black_box(0), 10)));
    });
    group.bench_function("nearest 10 of 10^6, byte scan and sort", |b| {
        b.iter(|| black_box(byte_scan(black_box(&bytes))));
    });
    group.bench_function("surprise of 10^6 codes", |b| {
        b.iter(|| black_box(index.surprise()));
    });
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
