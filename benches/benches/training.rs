#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmarks, like tests, stop at the first failure
//! Training: one epoch of the default OPIS model (4 × 256 samples, hidden 256,128, 128 bits,
//! batch 128) over 2048 events on the CPU backends, so time per step is the time divided by
//! 16 steps. Each epoch also runs the validation pass over 256 events, as training does.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latentlink_benches::opis_events;
use latentlink_model::Backend;
use latentlink_model::vae::VaeConfig;
use latentlink_trainer::train::{self, TrainConfig};

const EVENTS: usize = 2048;

fn training(c: &mut Criterion) {
    let events = opis_events(EVENTS + 256, 9);
    let mean = events.mean().unwrap_or(0.0);
    let std = events.std(0.0).max(1e-6);
    let normalised = events.mapv(|v| (v - mean) / std);
    let train_data = normalised.slice(ndarray::s![..EVENTS, ..]).to_owned();
    let validation = normalised.slice(ndarray::s![EVENTS.., ..]).to_owned();
    let config = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let mut group = c.benchmark_group("training/opis_default_epoch");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(40));
    for (name, backend) in [
        ("burn_flex", Backend::Flex),
        ("burn_ndarray", Backend::Ndarray),
    ] {
        let device = backend.training_device();
        group.bench_function(name, |b| {
            b.iter(|| {
                let model = VaeConfig::new(4, 256, 128, vec![256, 128]).init(&device);
                black_box(
                    train::train(
                        model,
                        &config,
                        &train_data,
                        &validation,
                        &device,
                        None,
                        false,
                    )
                    .expect("trains"),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, training);
criterion_main!(benches);
