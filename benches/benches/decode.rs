#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmarks, like tests, stop at the first failure
//! Decode: codes per second for each bridge decoder (burn flex and ndarray on the CPU, burn
//! wgpu on whatever Vulkan device is present — Mesa's software lavapipe on this machine — and
//! tract on `decoder.onnx`) at batch 64 and 1024. tract is the baseline.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latentlink_benches::shipped;
use latentlink_bridge::decode::{self, DecoderKind};
use ndarray::Array2;

fn decode(c: &mut Criterion) {
    let dir = shipped();
    let kinds = [
        ("tract", DecoderKind::Tract),
        ("burn_flex", DecoderKind::Flex),
        ("burn_ndarray", DecoderKind::Ndarray),
        ("burn_wgpu", DecoderKind::Wgpu),
    ];
    for batch in [64usize, 1024] {
        // Random code bits, as the decoders see them (0/1 floats).
        let codes = Array2::from_shape_fn((batch, 128), |(i, j)| {
            f32::from(u8::from((i * 131 + j * 31) % 7 < 3))
        });
        let mut group = c.benchmark_group(format!("decode/batch_{batch}"));
        group.throughput(Throughput::Elements(batch as u64));
        group.sample_size(20);
        for (name, kind) in kinds {
            let mut decoder =
                match decode::open(&latentlink_package::Package::open(&dir).unwrap(), kind) {
                    Ok(decoder) => decoder,
                    Err(error) => {
                        eprintln!("{name}: not measured ({error})");
                        continue;
                    }
                };
            group.bench_function(name, |b| {
                b.iter(|| black_box(decoder.decode(black_box(&codes)).expect("decodes")))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, decode);
criterion_main!(benches);
