//! Encoding on a host (`std` feature): the one helper that the device emulator, the trainer's
//! post-training quantisation and the benchmarks use to turn many events into codes. It
//! gives the encoder the host scratch ([`Model::batch_scratch_bytes`]) and runs
//! [`Encoder::encode_batch`], so hosts take the fast paths the runtime documents, and it
//! produces exactly the codes a front-end would.

use std::vec;
use std::vec::Vec;

use crate::Model;
use crate::code::Code;
use crate::encoder::{EncodeError, Encoder};
use crate::layers::Sample;

/// Events encoded per `encode_batch` call: large enough to amortise the call, small enough
/// that the code buffer stays in cache.
const CHUNK: usize = 256;

/// Encodes `events` (back to back, [`Model::input_len`] samples each) and returns their codes
/// back to back, `code_bits.div_ceil(8)` bytes each, laid out as [`crate::code`] describes.
///
/// # Errors
/// [`EncodeError::BatchLength`] if `events` is not a whole number of events; otherwise as
/// [`Encoder::encode_batch`] (sample indices count from the start of `events`).
/// [`EncodeError::CodeTooSmall`] for models of more than 512 code bits.
pub fn encode_events<S: Sample>(model: Model<'_>, events: &[S]) -> Result<Vec<u8>, EncodeError> {
    match model.code_bits().div_ceil(8) {
        0..=16 => encode_with::<S, 16>(model, events),
        17..=32 => encode_with::<S, 32>(model, events),
        _ => encode_with::<S, 64>(model, events),
    }
}

fn encode_with<S: Sample, const BYTES: usize>(
    model: Model<'_>,
    events: &[S],
) -> Result<Vec<u8>, EncodeError> {
    let per_event = model.input_len().max(1);
    if !events.len().is_multiple_of(per_event) {
        return Err(EncodeError::BatchLength {
            samples: events.len(),
            codes: events.len() / per_event,
            per_event,
        });
    }
    let code_bytes = (model.code_bits() as usize).div_ceil(8);
    let mut scratch = vec![0i8; model.batch_scratch_bytes()];
    let mut encoder = Encoder::with_slice(model, &mut scratch)?;
    let count = events.len() / per_event;
    let mut out = Vec::with_capacity(count * code_bytes);
    let mut codes = vec![Code::<BYTES>::zero(); CHUNK.min(count)];
    for (chunk, events) in events.chunks(CHUNK * per_event).enumerate() {
        let codes = codes.get_mut(..events.len() / per_event).unwrap_or(&mut []);
        encoder
            .encode_batch(events, codes)
            .map_err(|error| match error {
                EncodeError::NonFiniteSample { index } => EncodeError::NonFiniteSample {
                    index: index + chunk * CHUNK * per_event,
                },
                other => other,
            })?;
        for code in codes.iter() {
            out.extend_from_slice(code.as_bytes().get(..code_bytes).unwrap_or(&[]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::write::{LayerSpec, write_blob};
    use crate::layers::head::HeadSpec;
    use crate::layers::input::{FeatureParams, InputSpec};

    fn tiny_blob() -> Vec<u8> {
        let features = 8u32;
        let bits = 12u32;
        write_blob(&[
            LayerSpec::Input(InputSpec {
                channels: 1,
                length: features,
                zero_point: 0,
                features: (0..features)
                    .map(|i| FeatureParams::new(i as f32 * 0.1, 20.0).unwrap())
                    .collect(),
            }),
            LayerSpec::BinaryHead(HeadSpec {
                in_features: features,
                bits,
                input_zero_point: 0,
                weights: (0..bits * features).map(|i| (i * 37 % 255) as i8).collect(),
                biases: (0..bits).map(|i| i as i32 * 50 - 300).collect(),
            }),
        ])
        .unwrap()
    }

    #[test]
    fn equals_encoding_one_event_at_a_time_across_chunks() {
        let blob = tiny_blob();
        let model = Model::from_bytes(&blob).unwrap();
        let n = CHUNK + 7;
        let events: Vec<f32> = (0..n * 8)
            .map(|i| ((i * 13) % 29) as f32 * 0.07 - 1.0)
            .collect();
        let codes = encode_events(model, &events).unwrap();
        assert_eq!(codes.len(), n * 2);
        let mut scratch = vec![0i8; model.scratch_bytes()];
        let mut encoder = Encoder::with_slice(model, &mut scratch).unwrap();
        for (event, code) in events.chunks(8).zip(codes.chunks(2)) {
            let one: Code<2> = encoder.encode(event).unwrap();
            assert_eq!(one.as_bytes(), code);
        }
    }

    #[test]
    fn reports_a_bad_sample_at_its_index_in_the_whole_batch() {
        let blob = tiny_blob();
        let model = Model::from_bytes(&blob).unwrap();
        let mut events = vec![0.5f32; (CHUNK + 3) * 8];
        let bad = (CHUNK + 1) * 8 + 5;
        events[bad] = f32::NAN;
        assert_eq!(
            encode_events(model, &events),
            Err(EncodeError::NonFiniteSample { index: bad })
        );
        assert!(matches!(
            encode_events(model, &events[..9]),
            Err(EncodeError::BatchLength { .. })
        ));
    }
}
