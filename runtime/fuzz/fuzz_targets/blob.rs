//! Blob validation followed by inference on whatever validates.
//!
//! Random bytes almost never pass the checksum, so half the inputs are instead applied as
//! edits to a valid blob and resealed (length and CRC fixed), which drives the fuzzer deep
//! into layer parsing, shape chaining and the kernels.
#![no_main]

use std::sync::OnceLock;

use latentlink_runtime::blob::write::{LayerSpec, write_blob};
use latentlink_runtime::layers::ChannelParams;
use latentlink_runtime::layers::activation::ElementwiseSpec;
use latentlink_runtime::layers::conv1d::Conv1dSpec;
use latentlink_runtime::layers::dense::DenseSpec;
use latentlink_runtime::layers::head::HeadSpec;
use latentlink_runtime::layers::input::{FeatureParams, InputSpec};
use latentlink_runtime::layers::point_set::PointSetSpec;
use latentlink_runtime::layers::pool::PoolSpec;
use latentlink_runtime::quant::Requant;
use latentlink_runtime::{Encoder, Model};
use libfuzzer_sys::fuzz_target;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

fn channels(n: u32) -> Vec<ChannelParams> {
    (0..n)
        .map(|i| ChannelParams {
            bias: i as i32 * 5 - 7,
            requant: Requant::from_real(0.01 + f64::from(i) * 1e-3).expect("valid rescale"),
        })
        .collect()
}

/// Two small valid blobs covering every layer kind.
fn seeds() -> &'static [Vec<u8>; 2] {
    static SEEDS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let input = |channels, length| InputSpec {
            channels,
            length,
            zero_point: -1,
            features: vec![FeatureParams::new(0.5, 20.0).expect("valid"); (channels * length) as usize],
        };
        let conv = Conv1dSpec {
            in_channels: 2,
            in_length: 8,
            out_channels: 3,
            kernel: 3,
            stride: 1,
            padding: 1,
            input_zero_point: -1,
            output_zero_point: -128,
            relu: true,
            weights: (0..18).map(|i| i as i8 - 9).collect(),
            channels: channels(3),
        };
        let shape = ElementwiseSpec { channels: 3, length: 4, zero_point: -128 };
        let dense = |n_in: u32, n_out: u32, zin: i8| DenseSpec {
            in_features: n_in,
            out_features: n_out,
            input_zero_point: zin,
            output_zero_point: 3,
            relu: false,
            weights: (0..n_in * n_out).map(|i| (i * 13 % 31) as i8 - 15).collect(),
            channels: channels(n_out),
        };
        let head = |n_in: u32| HeadSpec {
            in_features: n_in,
            bits: 16,
            input_zero_point: 3,
            weights: (0..n_in * 16).map(|i| (i * 7 % 17) as i8 - 8).collect(),
            biases: (0..16).map(|i| i * 11 - 80).collect(),
        };
        let spectrum = vec![
            LayerSpec::Input(input(2, 8)),
            LayerSpec::Conv1d(conv),
            LayerSpec::MaxPool1d(PoolSpec { channels: 3, in_length: 8, kernel: 2, stride: 2, zero_point: -128 }),
            LayerSpec::AvgPool1d(PoolSpec { channels: 3, in_length: 4, kernel: 1, stride: 1, zero_point: -128 }),
            LayerSpec::Relu(shape.clone()),
            LayerSpec::LeakyRelu(shape.clone(), Requant::from_real(0.2).expect("valid")),
            LayerSpec::Flatten(shape),
            LayerSpec::Dense(dense(12, 6, -128)),
            LayerSpec::BinaryHead(head(6)),
        ];
        let mut inner = dense(3, 5, -1);
        inner.output_zero_point = 3;
        let points = vec![
            LayerSpec::Input(input(1, 12)),
            LayerSpec::PointSet(PointSetSpec { points: 4, features: 3, inner: vec![inner, dense(5, 4, 3)] }),
            LayerSpec::BinaryHead(head(4)),
        ];
        [
            write_blob(&spectrum).expect("seed blob is valid"),
            write_blob(&points).expect("seed blob is valid"),
        ]
    })
}

fn run(bytes: &[u8], probe: &[u8]) {
    let Ok(model) = Model::from_bytes(bytes) else { return };
    // Bounded by the format's limits; keep fuzzing fast on huge (valid) declarations.
    if model.scratch_bytes() > 1 << 20 || model.macs() > 1 << 22 {
        return;
    }
    let mut scratch = vec![0i8; model.scratch_bytes()];
    let mut encoder = Encoder::with_slice(model, &mut scratch).expect("scratch sized to the model");
    let n = model.input_len();
    let floats: Vec<f32> = (0..n).map(|i| f32::from(probe.get(i % probe.len().max(1)).copied().unwrap_or(0)) - 100.0).collect();
    let ints: Vec<i16> = floats.iter().map(|&v| v as i16 * 97).collect();
    let single = encoder.encode::<f32, 32>(&floats);
    let _ = encoder.encode::<i16, 32>(&ints);
    let _ = encoder.encode::<u16, 4>(&vec![u16::MAX; n]);
    // Host scratch takes the other paths (events side by side, the weight-sum table): they
    // must give the same codes, one event at a time and in a batch.
    let mut wide = vec![0i8; model.batch_scratch_bytes()];
    let mut fast = Encoder::with_slice(model, &mut wide).expect("batch scratch is larger");
    assert_eq!(fast.encode::<f32, 32>(&floats), single);
    let batch: Vec<f32> = floats.iter().copied().cycle().take(5 * n).collect();
    let mut codes = [latentlink_runtime::Code::<32>::zero(); 5];
    if fast.encode_batch(&batch, &mut codes).is_ok() {
        assert!(codes.iter().all(|code| Ok(*code) == single));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode < 128 {
        run(rest, rest);
        return;
    }
    // Edits to a seed blob: (offset u16, value u8) triples, then reseal length and CRC.
    let mut blob = seeds()[usize::from(mode & 1)].clone();
    let mut edits = rest.chunks_exact(3);
    for edit in &mut edits {
        let offset = usize::from(u16::from_le_bytes([edit[0], edit[1]]));
        if offset < blob.len() {
            blob[offset] = edit[2];
        }
    }
    if mode & 2 != 0 {
        // Also change the length: truncate or extend by the leftover bytes.
        let tail = edits.remainder();
        blob.truncate(blob.len().saturating_sub(tail.len() * 8).max(36));
        blob.extend_from_slice(tail);
    }
    let len = blob.len();
    blob[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    let crc = CRC32C.checksum(&blob[..len - 4]);
    blob[len - 4..].copy_from_slice(&crc.to_le_bytes());
    run(&blob, rest);
});
