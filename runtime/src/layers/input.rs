//! Input quantisation: raw samples (`f32`, or `i16`/`u16` straight from an ADC) to int8.
//!
//! Each input feature `f` has an offset and a gain that fold the training normalisation and
//! the input scale together: `q = saturate(z + round((x - offset_f) · gain_f))`. The float
//! path rounds half away from zero. Integer samples never touch a float unit: they use a
//! precomputed offset in 1/256 counts and a fixed-point gain,
//! `q = saturate(z + requant((x·256) - int_offset_f))`, which agrees with the float path to
//! within one step.
//!
//! # Body layout
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `channels` u32 |
//! | 4 | 4 | `length` u32 (features = `channels·length`) |
//! | 8 | 1 | output zero point i8 |
//! | 9 | 3 | reserved, 0 |
//! | 12 | `20·features` | per feature: offset f32, gain f32 (finite, ≥ 0), `int_offset` i32 (\|·\| ≤ 2^30), gain multiplier i32, gain shift i32 |

use core::fmt;

use super::{
    BufferLengthError, ByteReader, Checks, LayerError, MAX_ELEMENTS, Shape, check_len, dimension,
    elements,
};
use crate::quant::{Requant, saturate_i8};

pub use crate::records::FEATURE_RECORD_LEN;
/// Fractional bits of the integer offset.
const INT_OFFSET_FRACTION_BITS: u32 = 8;
/// Largest magnitude of the integer offset.
const MAX_INT_OFFSET: i32 = 1 << 30;

/// A validated view of the input quantisation layer.
#[derive(Debug, Clone, Copy)]
pub struct InputQuant<'a> {
    shape: Shape,
    zero_point: i8,
    features: &'a [[u8; FEATURE_RECORD_LEN]],
}

/// One feature's parameters, decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureParams {
    /// Offset subtracted from the raw sample.
    pub offset: f32,
    /// Factor from offset-corrected sample to int8 steps.
    pub gain: f32,
    /// `offset` in 1/256 counts, for integer samples.
    pub int_offset: i32,
    /// `gain / 256` as a fixed-point rescale, for integer samples.
    pub int_gain: Requant,
}

impl FeatureParams {
    fn decode(record: &[u8; FEATURE_RECORD_LEN]) -> Result<Self, ()> {
        let [
            o0,
            o1,
            o2,
            o3,
            g0,
            g1,
            g2,
            g3,
            i0,
            i1,
            i2,
            i3,
            m0,
            m1,
            m2,
            m3,
            s0,
            s1,
            s2,
            s3,
        ] = *record;
        let params = Self {
            offset: f32::from_le_bytes([o0, o1, o2, o3]),
            gain: f32::from_le_bytes([g0, g1, g2, g3]),
            int_offset: i32::from_le_bytes([i0, i1, i2, i3]),
            int_gain: Requant::new(
                i32::from_le_bytes([m0, m1, m2, m3]),
                i32::from_le_bytes([s0, s1, s2, s3]),
            )
            .map_err(|_| ())?,
        };
        let valid = params.offset.is_finite()
            && params.gain.is_finite()
            && params.gain >= 0.0
            && params.int_offset.unsigned_abs() <= MAX_INT_OFFSET.unsigned_abs();
        if valid { Ok(params) } else { Err(()) }
    }

    /// Builds the parameters for a feature from its float offset and gain (exporter side).
    ///
    /// # Errors
    /// If `offset` or `gain` is not finite, `gain` is negative, or the integer form is out of
    /// range.
    pub fn new(offset: f32, gain: f32) -> Result<Self, crate::quant::RequantError> {
        use crate::quant::RequantError;
        let scaled_offset = f64::from(offset) * f64::from(1u32 << INT_OFFSET_FRACTION_BITS);
        if !offset.is_finite() || scaled_offset.abs() > f64::from(MAX_INT_OFFSET) {
            return Err(RequantError::NotFiniteOrNegative);
        }
        let int_gain =
            Requant::from_real(f64::from(gain) / f64::from(1u32 << INT_OFFSET_FRACTION_BITS))?;
        Ok(Self {
            offset,
            gain,
            int_offset: round_half_away(scaled_offset as f32),
            int_gain,
        })
    }

    #[cfg(any(test, feature = "std"))]
    fn write(&self, out: &mut [u8; FEATURE_RECORD_LEN]) {
        let fields = [
            self.offset.to_le_bytes(),
            self.gain.to_le_bytes(),
            self.int_offset.to_le_bytes(),
            self.int_gain.multiplier().to_le_bytes(),
            self.int_gain.shift().to_le_bytes(),
        ];
        for (chunk, field) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&field);
        }
    }
}

/// `round(v)` with halves away from zero, saturated to `i32` (NaN gives 0). `f32::round` is
/// not in `core`.
#[inline]
fn round_half_away(v: f32) -> i32 {
    if v >= 0.0 {
        (v + 0.5) as i32
    } else {
        (v - 0.5) as i32
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i16 {}
    impl Sealed for u16 {}
}

/// A raw input sample type the encoder accepts: `f32`, `i16` or `u16`.
pub trait Sample: Copy + sealed::Sealed {
    /// Quantises one sample to int8 steps relative to the zero point (before saturation), or
    /// `None` if it is NaN or infinite.
    fn steps(self, params: &FeatureParams) -> Option<i32>;

    /// As [`Sample::steps`], straight from a feature record that `parse` validated: the hot
    /// path, which reads only the fields this sample type uses.
    fn steps_from_record(self, record: &[u8; FEATURE_RECORD_LEN]) -> Option<i32> {
        FeatureParams::decode(record)
            .ok()
            .and_then(|params| self.steps(&params))
    }

    /// Quantises the leading samples of an event with a vector path, where this sample type
    /// and CPU have one, and returns how many it wrote; [`InputQuant::run`] does the rest.
    #[doc(hidden)]
    fn quantise_leading(
        _event: &[Self],
        _features: &[[u8; FEATURE_RECORD_LEN]],
        _zero_point: i8,
        _output: &mut [i8],
    ) -> usize {
        0
    }
}

impl Sample for f32 {
    #[inline]
    fn steps(self, params: &FeatureParams) -> Option<i32> {
        self.is_finite()
            .then(|| round_half_away((self - params.offset) * params.gain))
    }

    #[inline]
    fn steps_from_record(self, record: &[u8; FEATURE_RECORD_LEN]) -> Option<i32> {
        // The same arithmetic as `steps`, on the offset and gain fields only.
        let [o0, o1, o2, o3, g0, g1, g2, g3, ..] = *record;
        let offset = f32::from_le_bytes([o0, o1, o2, o3]);
        let gain = f32::from_le_bytes([g0, g1, g2, g3]);
        self.is_finite()
            .then(|| round_half_away((self - offset) * gain))
    }

    #[inline]
    fn quantise_leading(
        event: &[Self],
        features: &[[u8; FEATURE_RECORD_LEN]],
        zero_point: i8,
        output: &mut [i8],
    ) -> usize {
        crate::kernels::quantise_f32(event, features, zero_point, output)
    }
}

impl Sample for i16 {
    #[inline]
    fn steps(self, params: &FeatureParams) -> Option<i32> {
        Some(integer_steps(i32::from(self), params))
    }
}

impl Sample for u16 {
    #[inline]
    fn steps(self, params: &FeatureParams) -> Option<i32> {
        Some(integer_steps(i32::from(self), params))
    }
}

#[inline]
fn integer_steps(sample: i32, params: &FeatureParams) -> i32 {
    // |sample·256| ≤ 2^24 and |int_offset| ≤ 2^30, so the difference fits in i32.
    params
        .int_gain
        .apply((sample << INT_OFFSET_FRACTION_BITS) - params.int_offset)
}

/// Why raw input could not be quantised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// The event has the wrong number of samples.
    Length(BufferLengthError),
    /// A sample is NaN or infinite.
    NonFinite {
        /// Index of the sample in the event.
        index: usize,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length(e) => write!(f, "event has the wrong length: {e}"),
            Self::NonFinite { index } => write!(f, "sample {index} is NaN or infinite"),
        }
    }
}

impl core::error::Error for InputError {}

impl<'a> InputQuant<'a> {
    /// Parses and validates a body.
    ///
    /// # Errors
    /// [`LayerError`] naming the field that is out of range or the bytes that are missing.
    pub fn parse(body: &'a [u8]) -> Result<Self, LayerError> {
        Self::parse_with(body, Checks::Full)
    }

    /// [`Self::parse`] with the given depth of checks.
    pub(crate) fn parse_with(body: &'a [u8], checks: Checks) -> Result<Self, LayerError> {
        let mut reader = ByteReader::new(body, checks);
        let channels = dimension("channels", reader.u32()?, MAX_ELEMENTS)?;
        let length = dimension("length", reader.u32()?, MAX_ELEMENTS)?;
        let shape = elements("input", Shape { channels, length })?;
        let zero_point = reader.i8()?;
        reader.reserved(3)?;
        let features = reader.records::<FEATURE_RECORD_LEN>(shape.elements())?;
        reader.finish()?;
        if checks == Checks::Full {
            for (feature, record) in features.iter().enumerate() {
                FeatureParams::decode(record).map_err(|()| LayerError::InvalidFeature {
                    feature: feature as u32,
                })?;
            }
        }
        Ok(Self {
            shape,
            zero_point,
            features,
        })
    }

    /// Shape of the event and of the quantised output.
    pub const fn shape(&self) -> Shape {
        self.shape
    }

    /// Zero point of the output.
    pub const fn zero_point(&self) -> i8 {
        self.zero_point
    }

    /// Bytes of per-feature parameters.
    pub const fn parameter_bytes(&self) -> usize {
        self.features.len() * FEATURE_RECORD_LEN
    }

    /// Parameters of feature `index`, if it exists.
    pub fn feature(&self, index: usize) -> Option<FeatureParams> {
        self.features
            .get(index)
            .and_then(|record| FeatureParams::decode(record).ok())
    }

    /// Quantises one event.
    ///
    /// # Errors
    /// [`InputError`] if the event has the wrong length or holds a NaN or infinity.
    pub fn run<S: Sample>(&self, event: &[S], output: &mut [i8]) -> Result<(), InputError> {
        check_len(self.shape.elements(), event.len()).map_err(InputError::Length)?;
        check_len(self.shape.elements(), output.len()).map_err(InputError::Length)?;
        let zero = i32::from(self.zero_point);
        let done = S::quantise_leading(event, self.features, self.zero_point, output);
        let rest = event
            .iter()
            .zip(self.features)
            .zip(output.iter_mut())
            .enumerate()
            .skip(done);
        for (index, ((&sample, record), out)) in rest {
            let steps = sample
                .steps_from_record(record)
                .ok_or(InputError::NonFinite { index })?;
            *out = saturate_i8(zero.saturating_add(steps), -128);
        }
        Ok(())
    }
}

/// The owned description of the input layer that the blob writer serialises.
#[cfg(any(test, feature = "std"))]
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// Channels of the event (1 for flat events).
    pub channels: u32,
    /// Samples per channel.
    pub length: u32,
    /// Output zero point.
    pub zero_point: i8,
    /// One entry per feature, channel-major.
    pub features: std::vec::Vec<FeatureParams>,
}

#[cfg(any(test, feature = "std"))]
impl InputSpec {
    /// Appends the body bytes (layout in the module docs).
    pub fn write_body(&self, out: &mut std::vec::Vec<u8>) {
        out.extend_from_slice(&self.channels.to_le_bytes());
        out.extend_from_slice(&self.length.to_le_bytes());
        out.extend_from_slice(&self.zero_point.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0]);
        for feature in &self.features {
            let mut record = [0u8; FEATURE_RECORD_LEN];
            feature.write(&mut record);
            out.extend_from_slice(&record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::uniform_f32;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn layer_bytes(zero_point: i8, features: Vec<FeatureParams>) -> Vec<u8> {
        let mut bytes = Vec::new();
        InputSpec {
            channels: 1,
            length: features.len() as u32,
            zero_point,
            features,
        }
        .write_body(&mut bytes);
        bytes
    }

    #[test]
    fn float_path_rounds_and_saturates() {
        let bytes = layer_bytes(-5, vec![FeatureParams::new(10.0, 2.0).unwrap(); 4]);
        let layer = InputQuant::parse(&bytes).unwrap();
        let mut out = [0i8; 4];
        layer
            .run(&[10.0f32, 11.25, 1000.0, -1000.0], &mut out)
            .unwrap();
        assert_eq!(out, [-5, -5 + 3, 127, -128]); // 2.5 rounds away from zero to 3
    }

    #[test]
    fn nan_and_wrong_length_are_errors() {
        let bytes = layer_bytes(0, vec![FeatureParams::new(0.0, 1.0).unwrap(); 2]);
        let layer = InputQuant::parse(&bytes).unwrap();
        let mut out = [0i8; 2];
        assert_eq!(
            layer.run(&[0.0f32, f32::NAN], &mut out),
            Err(InputError::NonFinite { index: 1 })
        );
        assert!(matches!(
            layer.run(&[0.0f32], &mut out),
            Err(InputError::Length(_))
        ));
    }

    #[test]
    fn rejects_non_finite_parameters() {
        let mut bytes = layer_bytes(0, vec![FeatureParams::new(0.0, 1.0).unwrap()]);
        bytes[12..16].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(
            InputQuant::parse(&bytes).err(),
            Some(LayerError::InvalidFeature { feature: 0 })
        );
    }

    proptest! {
        #[test]
        fn integer_path_agrees_with_float_path(
            offset in uniform_f32(-3000.0, 3000.0), gain in uniform_f32(0.0, 2.0), zero in any::<i8>(),
            samples in proptest::collection::vec(any::<i16>(), 1..16),
        ) {
            let params = FeatureParams::new(offset, gain).unwrap();
            let bytes = layer_bytes(zero, vec![params; samples.len()]);
            let layer = InputQuant::parse(&bytes).unwrap();
            let floats: Vec<f32> = samples.iter().map(|&s| f32::from(s)).collect();
            let mut from_int = vec![0i8; samples.len()];
            let mut from_float = vec![0i8; samples.len()];
            layer.run(&samples, &mut from_int).unwrap();
            layer.run(&floats, &mut from_float).unwrap();
            for (a, b) in from_int.iter().zip(&from_float) {
                prop_assert!((i32::from(*a) - i32::from(*b)).abs() <= 1, "{a} vs {b}");
            }
        }

        #[test]
        fn u16_samples_work(offset in uniform_f32(0.0, 60000.0), sample in any::<u16>()) {
            let params = FeatureParams::new(offset, 0.01).unwrap();
            let bytes = layer_bytes(0, vec![params]);
            let layer = InputQuant::parse(&bytes).unwrap();
            let mut out = [0i8];
            layer.run(&[sample], &mut out).unwrap();
            let expected = ((f32::from(sample) - offset) * 0.01).clamp(-128.0, 127.0);
            prop_assert!((f32::from(out[0]) - expected).abs() <= 1.0);
        }
    }
}
