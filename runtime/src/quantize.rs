//! Host-side quantisation helpers (`std` feature): float weights and activation ranges in,
//! layer specs for the [blob writer](crate::blob::write) out.
//!
//! The trainer's post-training quantisation uses these, so the arithmetic that turns a float
//! model into int8 parameters lives next to the kernels that run them. Weights are quantised
//! symmetrically per output channel (`scale = max|w| / 127`); activations asymmetrically per
//! tensor over a calibrated range that always includes 0, so that real 0 (ReLU floor,
//! padding) is exactly representable.

use std::vec::Vec;

use core::fmt;

use crate::layers::ChannelParams;
use crate::layers::conv1d::Conv1dSpec;
use crate::layers::dense::DenseSpec;
use crate::layers::head::HeadSpec;
use crate::layers::input::{FeatureParams, InputSpec};
use crate::quant::{Requant, RequantError};

/// Narrowest activation range quantised; narrower (dead) ranges are widened to this.
pub const MIN_SPAN: f32 = 1e-6;

/// Scale and zero point of an int8 activation tensor: `real = scale · (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantParams {
    /// Real value of one step (> 0).
    pub scale: f32,
    /// The int8 value of real 0.
    pub zero_point: i8,
}

impl QuantParams {
    /// Parameters covering `[min, max]` (widened to include 0) with 255 steps. A range
    /// narrower than [`MIN_SPAN`] (a dead channel) is widened to it, which keeps every
    /// rescale representable.
    pub fn from_range(min: f32, max: f32) -> Self {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let span = (max - min).max(MIN_SPAN);
        let scale = span / 255.0;
        let zero_point = (-128.0 - min / scale).round().clamp(-128.0, 127.0) as i8;
        Self { scale, zero_point }
    }

    /// Quantises a real value (round half away from zero, saturating).
    pub fn quantize(&self, x: f32) -> i8 {
        (x / self.scale + f32::from(self.zero_point))
            .round()
            .clamp(-128.0, 127.0) as i8
    }

    /// The real value of a quantised one.
    pub fn dequantize(&self, q: i8) -> f32 {
        self.scale * (f32::from(q) - f32::from(self.zero_point))
    }
}

/// Why float parameters could not be quantised.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum QuantizeError {
    /// A rescale factor is out of range.
    Requant(RequantError),
    /// A parameter array has the wrong length.
    Length {
        /// Which array.
        what: &'static str,
        /// Length the dimensions imply.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// A parameter is NaN or infinite.
    NonFinite {
        /// Which array.
        what: &'static str,
    },
    /// A normalisation scale (standard deviation) is zero or negative.
    NonPositiveScale {
        /// Feature index.
        feature: usize,
    },
}

impl fmt::Display for QuantizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Requant(e) => write!(f, "cannot represent a rescale: {e}"),
            Self::Length {
                what,
                expected,
                found,
            } => write!(f, "{what} has {found} values, expected {expected}"),
            Self::NonFinite { what } => write!(f, "{what} contains NaN or infinity"),
            Self::NonPositiveScale { feature } => {
                write!(
                    f,
                    "feature {feature} has a non-positive normalisation scale"
                )
            }
        }
    }
}

impl core::error::Error for QuantizeError {}

impl From<RequantError> for QuantizeError {
    fn from(e: RequantError) -> Self {
        Self::Requant(e)
    }
}

fn check(what: &'static str, values: &[f32], expected: usize) -> Result<(), QuantizeError> {
    if values.len() != expected {
        return Err(QuantizeError::Length {
            what,
            expected,
            found: values.len(),
        });
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(QuantizeError::NonFinite { what });
    }
    Ok(())
}

/// Symmetric per-row quantisation: returns the int8 weights and one scale per row.
///
/// # Panics
/// If `rows` is zero or does not divide `weights.len()`.
pub fn quantize_rows(weights: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let cols = weights.len() / rows;
    assert_eq!(
        cols * rows,
        weights.len(),
        "rows must divide the weight count"
    );
    let mut quantized = Vec::with_capacity(weights.len());
    let mut scales = Vec::with_capacity(rows);
    for row in weights.chunks_exact(cols.max(1)) {
        let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        quantized.extend(
            row.iter()
                .map(|w| (w / scale).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(scale);
    }
    (quantized, scales)
}

/// Per-channel records for rows with scales `weight_scales`, float `bias`, input scale and
/// output scale.
fn channel_records(
    weight_scales: &[f32],
    bias: &[f32],
    input: QuantParams,
    output: QuantParams,
) -> Result<Vec<ChannelParams>, QuantizeError> {
    weight_scales
        .iter()
        .zip(bias)
        .map(|(&sw, &b)| {
            let acc_scale = f64::from(sw) * f64::from(input.scale);
            Ok(ChannelParams {
                bias: (f64::from(b) / acc_scale)
                    .round()
                    .clamp(-f64::from(1 << 30), f64::from(1 << 30)) as i32,
                requant: Requant::from_real(acc_scale / f64::from(output.scale))?,
            })
        })
        .collect()
}

/// A dense layer from float weights (`out × in`, output-major) and bias.
///
/// # Errors
/// [`QuantizeError`] if array lengths do not match, a value is not finite, or a rescale is
/// out of range.
pub fn dense(
    in_features: u32,
    out_features: u32,
    weights: &[f32],
    bias: &[f32],
    input: QuantParams,
    output: QuantParams,
    relu: bool,
) -> Result<DenseSpec, QuantizeError> {
    check(
        "dense weights",
        weights,
        (in_features * out_features) as usize,
    )?;
    check("dense bias", bias, out_features as usize)?;
    let (weights, scales) = quantize_rows(weights, out_features as usize);
    Ok(DenseSpec {
        in_features,
        out_features,
        input_zero_point: input.zero_point,
        output_zero_point: output.zero_point,
        relu,
        weights,
        channels: channel_records(&scales, bias, input, output)?,
    })
}

/// Geometry of a 1-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input channels.
    pub in_channels: u32,
    /// Input length.
    pub in_length: u32,
    /// Output channels.
    pub out_channels: u32,
    /// Kernel width.
    pub kernel: u16,
    /// Stride.
    pub stride: u16,
    /// Zero padding on both ends.
    pub padding: u16,
}

/// A 1-D convolution from float weights (`[out][in][k]`) and bias.
///
/// # Errors
/// As [`dense`].
pub fn conv1d(
    geometry: ConvGeometry,
    weights: &[f32],
    bias: &[f32],
    input: QuantParams,
    output: QuantParams,
    relu: bool,
) -> Result<Conv1dSpec, QuantizeError> {
    let g = geometry;
    let rows = g.out_channels as usize;
    check(
        "conv weights",
        weights,
        rows * g.in_channels as usize * usize::from(g.kernel),
    )?;
    check("conv bias", bias, rows)?;
    let (weights, scales) = quantize_rows(weights, rows);
    Ok(Conv1dSpec {
        in_channels: g.in_channels,
        in_length: g.in_length,
        out_channels: g.out_channels,
        kernel: g.kernel,
        stride: g.stride,
        padding: g.padding,
        input_zero_point: input.zero_point,
        output_zero_point: output.zero_point,
        relu,
        weights,
        channels: channel_records(&scales, bias, input, output)?,
    })
}

/// The binarising head from the float layer whose positive outputs are the set bits.
///
/// # Errors
/// As [`dense`].
pub fn binary_head(
    in_features: u32,
    bits: u32,
    weights: &[f32],
    bias: &[f32],
    input: QuantParams,
) -> Result<HeadSpec, QuantizeError> {
    check("head weights", weights, (in_features * bits) as usize)?;
    check("head bias", bias, bits as usize)?;
    let (weights, scales) = quantize_rows(weights, bits as usize);
    let biases = scales
        .iter()
        .zip(bias)
        .map(|(&sw, &b)| {
            (f64::from(b) / (f64::from(sw) * f64::from(input.scale)))
                .round()
                .clamp(-f64::from(1 << 30), f64::from(1 << 30)) as i32
        })
        .collect();
    Ok(HeadSpec {
        in_features,
        bits,
        input_zero_point: input.zero_point,
        weights,
        biases,
    })
}

/// The input layer for events normalised as `(x - mean) / std` per feature, then quantised
/// with `output`.
///
/// # Errors
/// [`QuantizeError`] if lengths differ, a value is not finite, a `std` is not positive, or
/// the integer form of a gain is out of range.
pub fn input(
    channels: u32,
    length: u32,
    mean: &[f32],
    std: &[f32],
    output: QuantParams,
) -> Result<InputSpec, QuantizeError> {
    let n = (channels * length) as usize;
    check("normalisation mean", mean, n)?;
    check("normalisation std", std, n)?;
    let features = mean
        .iter()
        .zip(std)
        .enumerate()
        .map(|(feature, (&m, &s))| {
            if s <= 0.0 {
                return Err(QuantizeError::NonPositiveScale { feature });
            }
            Ok(FeatureParams::new(m, 1.0 / (s * output.scale))?)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InputSpec {
        channels,
        length,
        zero_point: output.zero_point,
        features,
    })
}

#[cfg(test)]
mod tests {
    //! Float references: int8 results must stay within the quantisation step of the same
    //! layer computed in float on the dequantised operands.
    use super::*;
    use crate::layers::testing::uniform_f32;
    use crate::layers::{Conv1d, Dense, InputQuant};
    use proptest::prelude::*;
    use std::vec;

    fn floats(n: usize, scale: f32) -> impl Strategy<Value = Vec<f32>> {
        proptest::collection::vec(uniform_f32(-scale, scale), n)
    }

    /// The largest |y| of `y = W x + b` over the given inputs, for calibrating outputs.
    fn output_params(values: &[f32], relu: bool) -> QuantParams {
        let (min, max) = values
            .iter()
            .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        QuantParams::from_range(if relu { 0.0 } else { min }, max)
    }

    proptest! {
        #[test]
        fn dense_within_one_step_of_float(
            (inputs, weights, bias, relu) in (1usize..48, 1usize..24).prop_flat_map(|(i, o)| {
                (floats(i, 3.0), floats(i * o, 1.0), floats(o, 2.0), any::<bool>())
            })
        ) {
            let (n_in, n_out) = (inputs.len(), bias.len());
            let in_q = output_params(&inputs, false);
            let x_q: Vec<i8> = inputs.iter().map(|&x| in_q.quantize(x)).collect();
            let (w_q, w_s) = quantize_rows(&weights, n_out);
            // Float reference on the dequantised operands: what int8 approximates.
            let reference: Vec<f32> = (0..n_out).map(|o| {
                let y = bias[o] + (0..n_in).map(|i| {
                    f32::from(w_q[o * n_in + i]) * w_s[o] * in_q.dequantize(x_q[i])
                }).sum::<f32>();
                if relu { y.max(0.0) } else { y }
            }).collect();
            let out_q = output_params(&reference, relu);
            let spec = dense(n_in as u32, n_out as u32, &weights, &bias, in_q, out_q, relu).unwrap();
            let mut body = Vec::new();
            spec.write_body(&mut body);
            let mut out = vec![0i8; n_out];
            Dense::parse(&body).unwrap().run(&x_q, &mut out).unwrap();
            for (o, (&q, &y)) in out.iter().zip(&reference).enumerate() {
                // Output rounding (half a step) plus bias rounding (half an accumulator unit).
                let bound = 0.5 * out_q.scale + 0.5 * w_s[o] * in_q.scale + 1e-4 * y.abs() + 1e-6;
                prop_assert!((out_q.dequantize(q) - y).abs() <= bound,
                    "output {o}: int8 {} vs float {y} (step {})", out_q.dequantize(q), out_q.scale);
            }
        }

        #[test]
        fn conv_within_one_step_of_float(
            (inputs, weights, bias) in (1usize..3, 4usize..20, 1usize..4).prop_flat_map(|(ci, len, co)| {
                (floats(ci * len, 2.0), floats(co * ci * 3, 1.0), floats(co, 1.0))
            }).prop_filter("channels divide", |(x, w, b)| x.len() % (w.len() / b.len() / 3) == 0)
        ) {
            let co = bias.len();
            let ci = weights.len() / co / 3;
            let len = inputs.len() / ci;
            let g = ConvGeometry {
                in_channels: ci as u32, in_length: len as u32, out_channels: co as u32,
                kernel: 3, stride: 1, padding: 1,
            };
            let in_q = output_params(&inputs, false);
            let x_q: Vec<i8> = inputs.iter().map(|&x| in_q.quantize(x)).collect();
            let (w_q, w_s) = quantize_rows(&weights, co);
            let mut reference = Vec::new();
            for o in 0..co {
                for t in 0..len {
                    let mut y = bias[o];
                    for c in 0..ci {
                        for j in 0..3 {
                            let p = t + j;
                            if (1..=len).contains(&p) {
                                y += f32::from(w_q[(o * ci + c) * 3 + j]) * w_s[o]
                                    * in_q.dequantize(x_q[c * len + p - 1]);
                            }
                        }
                    }
                    reference.push(y);
                }
            }
            let out_q = output_params(&reference, false);
            let spec = conv1d(g, &weights, &bias, in_q, out_q, false).unwrap();
            let mut body = Vec::new();
            spec.write_body(&mut body);
            let mut out = vec![0i8; co * len];
            Conv1d::parse(&body).unwrap().run(&x_q, &mut out).unwrap();
            for (i, (&q, &y)) in out.iter().zip(&reference).enumerate() {
                let bound = 0.5 * out_q.scale + 0.5 * w_s[i / len] * in_q.scale + 1e-4 * y.abs() + 1e-6;
                prop_assert!((out_q.dequantize(q) - y).abs() <= bound);
            }
        }

        #[test]
        fn input_within_one_step_of_float(
            (x, mean, std) in (1usize..32).prop_flat_map(|n| {
                (floats(n, 100.0), floats(n, 50.0), proptest::collection::vec(uniform_f32(0.1, 20.0), n))
            })
        ) {
            let normalised: Vec<f32> = x.iter().zip(&mean).zip(&std).map(|((x, m), s)| (x - m) / s).collect();
            let q = output_params(&normalised, false);
            let spec = input(1, x.len() as u32, &mean, &std, q).unwrap();
            let mut body = Vec::new();
            spec.write_body(&mut body);
            let mut out = vec![0i8; x.len()];
            InputQuant::parse(&body).unwrap().run(&x, &mut out).unwrap();
            for (&got, &y) in out.iter().zip(&normalised) {
                prop_assert!((q.dequantize(got) - y).abs() <= 0.5 * q.scale * 1.001 + 1e-5);
            }
        }
    }

    #[test]
    fn from_range_represents_zero_exactly() {
        for (lo, hi) in [(-1.0, 3.0), (0.0, 5.0), (-7.0, 0.0), (2.0, 3.0)] {
            let q = QuantParams::from_range(lo, hi);
            assert_eq!(q.dequantize(q.zero_point), 0.0);
            assert!(q.dequantize(127) >= hi.max(0.0) - q.scale);
            assert!(q.dequantize(-128) <= lo.min(0.0) + q.scale);
        }
        assert_eq!(QuantParams::from_range(0.0, 1.0).zero_point, -128);
    }

    #[test]
    fn bad_float_parameters_are_errors() {
        let q = QuantParams::from_range(-1.0, 1.0);
        assert!(matches!(
            dense(2, 1, &[1.0], &[0.0], q, q, false),
            Err(QuantizeError::Length { .. })
        ));
        assert!(matches!(
            dense(1, 1, &[f32::NAN], &[0.0], q, q, false),
            Err(QuantizeError::NonFinite { .. })
        ));
        assert!(matches!(
            input(1, 1, &[0.0], &[0.0], q),
            Err(QuantizeError::NonPositiveScale { feature: 0 })
        ));
    }
}
