//! 1-D convolution over channel-major `[channels × length]` activations.
//!
//! Output length is `(in_length + 2·padding - kernel) / stride + 1`. Padding stands for the
//! real value 0, i.e. the input zero point, so padded taps contribute nothing to the sum.
//!
//! # Body layout
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `in_channels` u32 |
//! | 4 | 4 | `in_length` u32 |
//! | 8 | 4 | `out_channels` u32 |
//! | 12 | 2 | `kernel` u16 (`in_channels·kernel` ≤ [`MAX_FAN_IN`]) |
//! | 14 | 2 | `stride` u16 (≥ 1) |
//! | 16 | 2 | `padding` u16 (< `kernel`) |
//! | 18 | 1 | input zero point i8 |
//! | 19 | 1 | output zero point i8 |
//! | 20 | 1 | activation: 0 none, 1 ReLU |
//! | 21 | 3 | reserved, 0 |
//! | 24 | `out·in·k` | weights i8, `[out][in][k]` |
//! | … | `12·out` | channel records ([`ChannelParams`]) |

use super::{
    BufferLengthError, ByteReader, CHANNEL_RECORD_LEN, ChannelParams, Checks, LayerError,
    MAX_ELEMENTS, MAX_FAN_IN, Shape, channel_records, check_len, dimension, elements, read_relu,
};
use crate::kernels::generic::weight;

/// A validated view of a 1-D convolution.
#[derive(Debug, Clone, Copy)]
pub struct Conv1d<'a> {
    input: Shape,
    out_channels: u32,
    out_length: u32,
    kernel: u16,
    stride: u16,
    padding: u16,
    input_zero_point: i8,
    output_zero_point: i8,
    relu: bool,
    weights: &'a [u8],
    channels: &'a [[u8; CHANNEL_RECORD_LEN]],
}

impl<'a> Conv1d<'a> {
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
        let in_channels = dimension("in_channels", reader.u32()?, MAX_ELEMENTS)?;
        let in_length = dimension("in_length", reader.u32()?, MAX_ELEMENTS)?;
        let out_channels = dimension("out_channels", reader.u32()?, MAX_ELEMENTS)?;
        let kernel = reader.u16()?;
        let stride = reader.u16()?;
        let padding = reader.u16()?;
        dimension("kernel", u32::from(kernel), u32::from(u16::MAX))?;
        dimension("stride", u32::from(stride), u32::from(u16::MAX))?;
        let fan_in = u64::from(in_channels) * u64::from(kernel);
        if fan_in > u64::from(MAX_FAN_IN) {
            return Err(LayerError::TooLarge {
                field: "in_channels·kernel",
                value: fan_in,
                max: u64::from(MAX_FAN_IN),
            });
        }
        if padding >= kernel {
            return Err(LayerError::Geometry {
                reason: "padding must be smaller than the kernel",
            });
        }
        let padded = in_length + 2 * u32::from(padding);
        if padded < u32::from(kernel) {
            return Err(LayerError::Geometry {
                reason: "kernel is longer than the padded input",
            });
        }
        let out_length = (padded - u32::from(kernel)) / u32::from(stride) + 1;
        let input = elements(
            "input",
            Shape {
                channels: in_channels,
                length: in_length,
            },
        )?;
        elements(
            "output",
            Shape {
                channels: out_channels,
                length: out_length,
            },
        )?;
        let input_zero_point = reader.i8()?;
        let output_zero_point = reader.i8()?;
        let relu = read_relu(&mut reader)?;
        reader.reserved(3)?;
        let weights = reader.take(fan_in as usize * out_channels as usize)?;
        let channels = channel_records(&mut reader, out_channels as usize)?;
        reader.finish()?;
        Ok(Self {
            input,
            out_channels,
            out_length,
            kernel,
            stride,
            padding,
            input_zero_point,
            output_zero_point,
            relu,
            weights,
            channels,
        })
    }

    /// Input shape `[in_channels × in_length]`.
    pub const fn input_shape(&self) -> Shape {
        self.input
    }

    /// Output shape `[out_channels × out_length]`.
    pub const fn output_shape(&self) -> Shape {
        Shape {
            channels: self.out_channels,
            length: self.out_length,
        }
    }

    /// Zero point of the input activations.
    pub const fn input_zero_point(&self) -> i8 {
        self.input_zero_point
    }

    /// Zero point of the output activations.
    pub const fn output_zero_point(&self) -> i8 {
        self.output_zero_point
    }

    /// Multiply-accumulates per run (padded taps included).
    pub const fn macs(&self) -> u64 {
        self.out_channels as u64
            * self.out_length as u64
            * self.input.channels as u64
            * self.kernel as u64
    }

    /// Bytes of weights and channel records.
    pub const fn parameter_bytes(&self) -> usize {
        self.weights.len() + self.channels.len() * CHANNEL_RECORD_LEN
    }

    /// Runs the convolution.
    ///
    /// # Errors
    /// [`BufferLengthError`] if `input` or `output` has the wrong length.
    pub fn run(&self, input: &[i8], output: &mut [i8]) -> Result<(), BufferLengthError> {
        check_len(self.input.elements(), input.len())?;
        check_len(self.output_shape().elements(), output.len())?;
        let zero = i32::from(self.input_zero_point);
        let kernel = usize::from(self.kernel);
        let in_length = self.input.length as usize;
        let filters = self
            .weights
            .chunks_exact(self.input.channels as usize * kernel);
        let out_rows = output.chunks_exact_mut(self.out_length as usize);
        for ((filter, record), out_row) in filters.zip(self.channels).zip(out_rows) {
            let params = ChannelParams::decode(record);
            for (t, out) in out_row.iter_mut().enumerate() {
                // Position of tap 0 in unpadded coordinates; may be negative inside the padding.
                let start = (t * usize::from(self.stride)) as isize - self.padding as isize;
                let mut acc = 0i32;
                for (taps, signal) in filter
                    .chunks_exact(kernel)
                    .zip(input.chunks_exact(in_length))
                {
                    for (j, &w) in taps.iter().enumerate() {
                        let position = usize::try_from(start + j as isize).ok();
                        if let Some(&x) = position.and_then(|p| signal.get(p)) {
                            acc += weight(w) * (i32::from(x) - zero);
                        }
                    }
                }
                *out = params.finish(acc, self.output_zero_point, self.relu);
            }
        }
        Ok(())
    }
}

/// The owned description of a 1-D convolution that the blob writer serialises.
#[cfg(any(test, feature = "std"))]
#[derive(Debug, Clone, PartialEq)]
pub struct Conv1dSpec {
    /// Input channels.
    pub in_channels: u32,
    /// Input length per channel.
    pub in_length: u32,
    /// Output channels.
    pub out_channels: u32,
    /// Kernel width.
    pub kernel: u16,
    /// Stride.
    pub stride: u16,
    /// Zero padding on both ends.
    pub padding: u16,
    /// Input zero point.
    pub input_zero_point: i8,
    /// Output zero point.
    pub output_zero_point: i8,
    /// Fused ReLU.
    pub relu: bool,
    /// `[out][in][k]` weights.
    pub weights: std::vec::Vec<i8>,
    /// One record per output channel.
    pub channels: std::vec::Vec<ChannelParams>,
}

#[cfg(any(test, feature = "std"))]
impl Conv1dSpec {
    /// Output length for these dimensions.
    pub const fn out_length(&self) -> u32 {
        (self.in_length + 2 * self.padding as u32 - self.kernel as u32) / self.stride as u32 + 1
    }

    /// Appends the body bytes (layout in the module docs).
    pub fn write_body(&self, out: &mut std::vec::Vec<u8>) {
        for v in [self.in_channels, self.in_length, self.out_channels] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.kernel, self.stride, self.padding] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.input_zero_point.to_le_bytes());
        out.extend_from_slice(&self.output_zero_point.to_le_bytes());
        out.extend_from_slice(&[u8::from(self.relu), 0, 0, 0]);
        out.extend(self.weights.iter().map(|&w| w as u8));
        self.channels.iter().for_each(|c| c.write(out));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::layers::testing::{channel_params, reference_finish};
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// Random convolutions whose geometry is valid.
    pub(crate) fn conv_spec() -> impl Strategy<Value = Conv1dSpec> {
        (
            1u32..=4,
            1u32..=24,
            1u32..=6,
            1u16..=5,
            1u16..=3,
            any::<i8>(),
            any::<i8>(),
            any::<bool>(),
        )
            .prop_flat_map(|(ci, len, co, k, stride, zin, zout, relu)| {
                let max_pad = (k - 1).min(3);
                (0..=max_pad).prop_filter_map("kernel fits", move |padding| {
                    (len + 2 * u32::from(padding) >= u32::from(k))
                        .then_some((ci, len, co, k, stride, padding, zin, zout, relu))
                })
            })
            .prop_flat_map(|(ci, len, co, k, stride, padding, zin, zout, relu)| {
                let fan_in = ci * u32::from(k);
                (
                    proptest::collection::vec(any::<i8>(), (fan_in * co) as usize),
                    proptest::collection::vec(channel_params(fan_in), co as usize),
                )
                    .prop_map(move |(weights, channels)| Conv1dSpec {
                        in_channels: ci,
                        in_length: len,
                        out_channels: co,
                        kernel: k,
                        stride,
                        padding,
                        input_zero_point: zin,
                        output_zero_point: zout,
                        relu,
                        weights,
                        channels,
                    })
            })
    }

    /// Reference written from the definition with explicit zero padding.
    pub(crate) fn reference(spec: &Conv1dSpec, input: &[i8]) -> Vec<i8> {
        let (ci, len, k) = (
            spec.in_channels as usize,
            spec.in_length as usize,
            spec.kernel as usize,
        );
        let pad = spec.padding as usize;
        let mut out = Vec::new();
        for o in 0..spec.out_channels as usize {
            for t in 0..spec.out_length() as usize {
                let mut acc = 0i64;
                for c in 0..ci {
                    for j in 0..k {
                        let padded_pos = t * spec.stride as usize + j;
                        let x = if padded_pos < pad || padded_pos - pad >= len {
                            spec.input_zero_point
                        } else {
                            input[c * len + padded_pos - pad]
                        };
                        acc += i64::from(spec.weights[(o * ci + c) * k + j])
                            * (i64::from(x) - i64::from(spec.input_zero_point));
                    }
                }
                out.push(reference_finish(
                    acc,
                    spec.channels[o],
                    spec.output_zero_point,
                    spec.relu,
                ));
            }
        }
        out
    }

    fn body(spec: &Conv1dSpec) -> Vec<u8> {
        let mut bytes = Vec::new();
        spec.write_body(&mut bytes);
        bytes
    }

    #[test]
    fn known_values_with_padding_and_stride() {
        let spec = Conv1dSpec {
            in_channels: 1,
            in_length: 4,
            out_channels: 1,
            kernel: 3,
            stride: 2,
            padding: 1,
            input_zero_point: 0,
            output_zero_point: 0,
            relu: false,
            weights: vec![1, 10, 100],
            channels: vec![ChannelParams {
                bias: 0,
                requant: crate::quant::Requant::IDENTITY,
            }],
        };
        let bytes = body(&spec);
        let layer = Conv1d::parse(&bytes).unwrap();
        assert_eq!(
            layer.output_shape(),
            Shape {
                channels: 1,
                length: 2
            }
        );
        let mut out = [0i8; 2];
        layer.run(&[1, 0, 0, 1], &mut out).unwrap();
        // t=0 taps (pad, x0, x1) = 10*1; t=1 taps (x1, x2, x3) = 100*1.
        assert_eq!(out, [10, 100]);
    }

    #[test]
    fn rejects_bad_geometry() {
        let mut spec = Conv1dSpec {
            in_channels: 1,
            in_length: 2,
            out_channels: 1,
            kernel: 5,
            stride: 1,
            padding: 1,
            input_zero_point: 0,
            output_zero_point: 0,
            relu: false,
            weights: vec![0; 5],
            channels: vec![ChannelParams {
                bias: 0,
                requant: crate::quant::Requant::IDENTITY,
            }],
        };
        assert!(matches!(
            Conv1d::parse(&body(&spec)),
            Err(LayerError::Geometry { .. })
        ));
        spec.padding = 5;
        assert!(matches!(
            Conv1d::parse(&body(&spec)),
            Err(LayerError::Geometry { .. })
        ));
        spec.padding = 0;
        spec.kernel = 2;
        spec.stride = 0;
        assert!(matches!(
            Conv1d::parse(&body(&spec)),
            Err(LayerError::ZeroDimension { .. })
        ));
    }

    proptest! {
        #[test]
        fn kernel_matches_reference(
            (spec, input) in conv_spec().prop_flat_map(|s| {
                let n = (s.in_channels * s.in_length) as usize;
                (Just(s), proptest::collection::vec(any::<i8>(), n))
            })
        ) {
            let bytes = body(&spec);
            let layer = Conv1d::parse(&bytes).unwrap();
            let mut out = vec![0i8; layer.output_shape().elements()];
            layer.run(&input, &mut out).unwrap();
            prop_assert_eq!(out, reference(&spec, &input));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Conv1d::parse(&bytes);
        }
    }
}
