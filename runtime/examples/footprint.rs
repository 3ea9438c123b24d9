//! Prints what a front-end designer needs to size a device for an encoder: scratch RAM, flash,
//! multiply-accumulates per event, and link bytes per event at several frame sizes.
//!
//! ```text
//! cargo run -p latentlink-runtime --features std --example footprint
//! ```
//!
//! The encoder here is the reference shape 1024 → 256 → 128 → 128 bits (dense, ReLU) with
//! arbitrary weights: footprint does not depend on the values. For a trained model, the
//! trainer prints the same figures from its blob.

#![allow(clippy::print_stdout)] // printing the figures is what this example is for

use std::error::Error;

use latentlink_runtime::blob::write::{LayerSpec, write_blob};
use latentlink_runtime::quantize::{self, QuantParams};
use latentlink_runtime::wire::{FrameRepr, stream_len};
use latentlink_runtime::{Code128, Encoder, Model};

fn dense_encoder() -> Result<Vec<u8>, Box<dyn Error>> {
    let activations = QuantParams::from_range(0.0, 4.0);
    let input = QuantParams::from_range(-4.0, 4.0);
    let weights = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0)
            .collect()
    };
    let layers = vec![
        LayerSpec::Input(quantize::input(1, 1024, &[0.0; 1024], &[1.0; 1024], input)?),
        LayerSpec::Dense(quantize::dense(
            1024,
            256,
            &weights(1024 * 256),
            &[0.0; 256],
            input,
            activations,
            true,
        )?),
        LayerSpec::Dense(quantize::dense(
            256,
            128,
            &weights(256 * 128),
            &[0.0; 128],
            activations,
            activations,
            true,
        )?),
        LayerSpec::BinaryHead(quantize::binary_head(
            128,
            128,
            &weights(128 * 128),
            &[0.0; 128],
            activations,
        )?),
    ];
    Ok(write_blob(&layers)?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let blob = dense_encoder()?;
    let model = Model::from_bytes(&blob)?;
    println!("encoder 1024 -> 256 -> 128 -> 128 bits (int8)");
    println!("  scratch RAM        {:>8} B", model.scratch_bytes());
    println!("  parameters (flash) {:>8} B", model.parameter_bytes());
    println!("  whole blob (flash) {:>8} B", model.blob_len());
    println!("  MACs per event     {:>8}", model.macs());

    let mut scratch = vec![0i8; model.scratch_bytes()];
    let mut encoder = Encoder::with_slice(model, &mut scratch)?;
    let event: Vec<f32> = (0..1024).map(|i| (i as f32 / 50.0).sin()).collect();
    let code: Code128 = encoder.encode(&event)?;
    println!("  code of a test event {code}");

    println!(
        "\nlink bytes for 128-bit codes, authenticated frames (raw event: 1024 x f32 = 4096 B)"
    );
    println!(
        "  codes/frame  stream B  stream eff.  datagram B  datagram eff.  compression (stream)"
    );
    for count in [1u16, 16, 64] {
        let repr = FrameRepr {
            model_id: 0,
            stream_id: 0,
            sequence: 0,
            first_event: 0,
            code_bytes: 16,
            code_count: count,
            boot: 0,
        };
        let stream = stream_len(usize::from(count), 16, true);
        let payload = f64::from(count) * 16.0;
        println!(
            "  {count:>11}  {stream:>8}  {:>10.1}%  {:>10}  {:>12.1}%  {:>10.0}x",
            100.0 * payload / stream as f64,
            repr.buffer_len(true),
            100.0 * payload / repr.buffer_len(true) as f64,
            4096.0 * f64::from(count) / stream as f64,
        );
    }
    Ok(())
}
