#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmarks, like tests, stop at the first failure
//! Encode: the shipped `opis-b128` encoder, raw event to code, in the runtime (int8) against
//! tract running the same model's `encoder.onnx` and the burn model on the flex CPU backend,
//! at batch 1 and 64; and the runtime's per-call overhead on a tiny model.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latentlink_benches::{TractPlan, opis_events, shipped};
use latentlink_model::Backend;
use latentlink_model::latent;
use latentlink_model::tensor::to_tensor;
use latentlink_model::vae::VaeConfig;
use latentlink_runtime::{Code128, Encoder, Model};
use latentlink_trainer::data::{EventShape, Events, Normalisation};
use latentlink_trainer::ptq;

fn encode(c: &mut Criterion) {
    let dir = shipped();
    let opened = latentlink_package::Package::open(&dir).expect("shipped package");
    let manifest = &opened.manifest;
    let device = Backend::Flex.device();
    let burn_model = latentlink_model::load_vae(&opened, &device).expect("model record");
    let normalisation = manifest.input.normalisation();
    let model = Model::from_bytes(&opened.blob).expect("blob");
    // Scratch for a batch, so that `encode_batch` runs events side by side; a single event
    // uses one slot of it.
    let mut scratch = vec![0i8; model.batch_scratch_bytes()];
    let mut encoder = Encoder::with_slice(model, &mut scratch).expect("scratch");

    for batch in [1usize, 64] {
        let events = opis_events(batch, 5);
        let samples: Vec<f32> = events.iter().copied().collect();
        let tract = TractPlan::new(&dir.join("encoder.onnx"), batch, events.ncols())
            .expect("encoder.onnx in tract");
        let mut group = c.benchmark_group(format!("encode/batch_{batch}"));
        group.throughput(Throughput::Elements(batch as u64));
        assert_eq!(
            manifest.code.bytes, 16,
            "the shipped model has 128-bit codes"
        );
        let mut codes = vec![Code128::zero(); batch];
        group.bench_function("runtime_int8", |b| {
            b.iter(|| {
                encoder
                    .encode_batch(black_box(&samples), &mut codes)
                    .expect("encodes");
                black_box(&codes);
            });
        });
        group.bench_function("tract", |b| {
            b.iter(|| black_box(tract.run(black_box(&samples)).expect("runs")));
        });
        group.bench_function("burn_flex", |b| {
            b.iter(|| {
                let normalised = normalisation.apply(black_box(&events));
                let mean = burn_model.encode(to_tensor(&normalised, &device)).mu;
                black_box(latent::binarise(mean).into_data())
            });
        });
        group.finish();
    }

    // Per-call overhead: a 16-sample, 8-bit model with one 8-wide hidden layer.
    let tiny = tiny_blob();
    let tiny_model = Model::from_bytes(&tiny).expect("tiny blob");
    let mut tiny_scratch = vec![0i8; tiny_model.scratch_bytes()];
    let mut tiny_encoder = Encoder::with_slice(tiny_model, &mut tiny_scratch).expect("scratch");
    let event: Vec<f32> = (0..16).map(|i| i as f32 * 0.1).collect();
    let mut group = c.benchmark_group("encode/tiny_model");
    group.throughput(Throughput::Elements(1));
    group.bench_function("runtime_int8", |b| {
        let mut code = [0u8; 1];
        b.iter(|| {
            tiny_encoder
                .encode_into(black_box(&event), &mut code)
                .expect("encodes");
            black_box(code)
        });
    });
    group.finish();
}

/// A real (untrained) tiny model quantised by the trainer: only its size matters here.
fn tiny_blob() -> Vec<u8> {
    let device = Backend::Flex.device();
    let shape = EventShape {
        channels: 1,
        length: 16,
    };
    let data = ndarray::Array2::from_shape_fn((64, 16), |(i, j)| ((i * 7 + j * 3) % 11) as f32);
    let events = Events::from_array(data.clone().into_dyn(), "tiny").expect("events");
    let normalisation = Normalisation::fit(&events.data);
    let model = VaeConfig::new(1, 16, 8, vec![8]).init(&device);
    ptq::quantize(&model, &normalisation, shape, &data, &device).expect("quantises")
}

criterion_group!(benches, encode);
criterion_main!(benches);
