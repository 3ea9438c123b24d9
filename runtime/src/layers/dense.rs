//! Fully connected int8 layer.
//!
//! # Body layout
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `in_features` u32 (1..=[`MAX_FAN_IN`]) |
//! | 4 | 4 | `out_features` u32 |
//! | 8 | 1 | input zero point i8 |
//! | 9 | 1 | output zero point i8 |
//! | 10 | 1 | activation: 0 none, 1 ReLU (clamp at the output zero point) |
//! | 11 | 1 | reserved, 0 |
//! | 12 | `out·in` | weights i8, row `o` holds output `o`'s `in` weights |
//! | … | `12·out` | channel records ([`super::ChannelParams`]) |
//!
//! Shapes: input `[1×in]`, output `[1×out]`.

use super::{
    BufferLengthError, ByteReader, CHANNEL_RECORD_LEN, ChannelParams, Checks, LayerError,
    MAX_ELEMENTS, MAX_FAN_IN, Shape, channel_records, check_len, dimension, read_relu,
};
use crate::kernels::{FINISH_BLOCK, block_dots, finish_block};

/// A validated view of a dense layer.
#[derive(Debug, Clone, Copy)]
pub struct Dense<'a> {
    in_features: u32,
    out_features: u32,
    input_zero_point: i8,
    output_zero_point: i8,
    relu: bool,
    weights: &'a [u8],
    channels: &'a [[u8; CHANNEL_RECORD_LEN]],
}

impl<'a> Dense<'a> {
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
        let layer = Self::read(&mut reader)?;
        reader.finish()?;
        Ok(layer)
    }

    /// Reads a body from a cursor (also used inside point-set blocks).
    pub(crate) fn read(reader: &mut ByteReader<'a>) -> Result<Self, LayerError> {
        let in_features = dimension("in_features", reader.u32()?, MAX_FAN_IN)?;
        let out_features = dimension("out_features", reader.u32()?, MAX_ELEMENTS)?;
        let input_zero_point = reader.i8()?;
        let output_zero_point = reader.i8()?;
        let relu = read_relu(reader)?;
        reader.reserved(1)?;
        let weights = reader.take(in_features as usize * out_features as usize)?;
        let channels = channel_records(reader, out_features as usize)?;
        Ok(Self {
            in_features,
            out_features,
            input_zero_point,
            output_zero_point,
            relu,
            weights,
            channels,
        })
    }

    /// Input shape `[1×in]`.
    pub const fn input_shape(&self) -> Shape {
        Shape::flat(self.in_features)
    }

    /// Output shape `[1×out]`.
    pub const fn output_shape(&self) -> Shape {
        Shape::flat(self.out_features)
    }

    /// Zero point of the input activations.
    pub const fn input_zero_point(&self) -> i8 {
        self.input_zero_point
    }

    /// Zero point of the output activations.
    pub const fn output_zero_point(&self) -> i8 {
        self.output_zero_point
    }

    /// Multiply-accumulates per run.
    pub const fn macs(&self) -> u64 {
        self.in_features as u64 * self.out_features as u64
    }

    /// Whether outputs are clamped at the zero point (a fused ReLU).
    pub const fn relu(&self) -> bool {
        self.relu
    }

    /// The weights, row by row (`out_features` rows of `in_features`), int8 as bytes: what
    /// other inference stacks take (the int8 ONNX export).
    pub const fn weights(&self) -> &'a [u8] {
        self.weights
    }

    /// Each output channel's bias and rescale, in order.
    pub fn channels(&self) -> impl Iterator<Item = ChannelParams> + 'a {
        self.channels.iter().map(ChannelParams::decode)
    }

    /// The weights and the row length, for the encoder's weight-sum table (see
    /// [`crate::kernels::weight_sums`]).
    pub(crate) fn weight_rows(self) -> (&'a [u8], usize) {
        (self.weights, self.in_features as usize)
    }

    /// Bytes of weights and channel records.
    pub const fn parameter_bytes(&self) -> usize {
        self.weights.len() + self.channels.len() * CHANNEL_RECORD_LEN
    }

    /// Runs the layer: `output[o] = finish(Σ_i w[o,i]·(input[i] - z_in))`.
    ///
    /// # Errors
    /// [`BufferLengthError`] if `input` or `output` has the wrong length.
    pub fn run(&self, input: &[i8], output: &mut [i8]) -> Result<(), BufferLengthError> {
        self.run_lanes([input], [output], None)
    }

    /// Runs the layer on `E` events side by side, so that each weight is read once for all
    /// of them (the batch path of the encoder), with the rows' weight sums if the encoder
    /// keeps them. The outputs equal `E` calls of [`Dense::run`].
    ///
    /// # Errors
    /// [`BufferLengthError`] if an input or output has the wrong length.
    pub(crate) fn run_lanes<const E: usize>(
        &self,
        inputs: [&[i8]; E],
        mut outputs: [&mut [i8]; E],
        weight_sums: Option<&[[i8; 4]]>,
    ) -> Result<(), BufferLengthError> {
        for (input, output) in inputs.iter().zip(&outputs) {
            check_len(self.in_features as usize, input.len())?;
            check_len(self.out_features as usize, output.len())?;
        }
        let zero = i32::from(self.input_zero_point);
        let n = self.in_features as usize;
        // Blocks of sixteen outputs: their sums, then the output arithmetic of the whole block
        // at once.
        let blocks = self
            .weights
            .chunks(FINISH_BLOCK * n)
            .zip(self.channels.chunks(FINISH_BLOCK));
        for (block, (rows, records)) in blocks.enumerate() {
            let first_row = block * FINISH_BLOCK;
            let accs = block_dots(rows, n, inputs, zero, weight_sums, first_row);
            for (accs, output) in accs.iter().zip(&mut outputs) {
                if let Some(out) = output.get_mut(first_row..first_row + records.len()) {
                    let (zero_point, relu) = (self.output_zero_point, self.relu);
                    if !finish_block(accs, records, zero_point, relu, out) {
                        for ((out, &acc), record) in out.iter_mut().zip(accs).zip(records) {
                            *out = ChannelParams::decode(record).finish(acc, zero_point, relu);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The owned description of a dense layer that the blob writer serialises.
#[cfg(any(test, feature = "std"))]
#[derive(Debug, Clone, PartialEq)]
pub struct DenseSpec {
    /// Inputs.
    pub in_features: u32,
    /// Outputs.
    pub out_features: u32,
    /// Input zero point.
    pub input_zero_point: i8,
    /// Output zero point.
    pub output_zero_point: i8,
    /// Fused ReLU.
    pub relu: bool,
    /// `out × in` weights, output-major.
    pub weights: std::vec::Vec<i8>,
    /// One record per output.
    pub channels: std::vec::Vec<ChannelParams>,
}

#[cfg(any(test, feature = "std"))]
impl DenseSpec {
    /// Appends the body bytes (layout in the module docs).
    pub fn write_body(&self, out: &mut std::vec::Vec<u8>) {
        out.extend_from_slice(&self.in_features.to_le_bytes());
        out.extend_from_slice(&self.out_features.to_le_bytes());
        out.extend_from_slice(&self.input_zero_point.to_le_bytes());
        out.extend_from_slice(&self.output_zero_point.to_le_bytes());
        out.extend_from_slice(&[u8::from(self.relu), 0]);
        out.extend(self.weights.iter().map(|&w| w as u8));
        self.channels.iter().for_each(|c| c.write(out));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::layers::ChannelParams;
    use crate::layers::testing::{channel_params, reference_finish};
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// Random dense specs with matching inputs.
    pub(crate) fn dense_spec(max_in: u32, max_out: u32) -> impl Strategy<Value = DenseSpec> {
        (
            1..=max_in,
            1..=max_out,
            any::<i8>(),
            any::<i8>(),
            any::<bool>(),
        )
            .prop_flat_map(|(i, o, zin, zout, relu)| {
                (
                    proptest::collection::vec(any::<i8>(), (i * o) as usize),
                    proptest::collection::vec(channel_params(i), o as usize),
                )
                    .prop_map(move |(weights, channels)| DenseSpec {
                        in_features: i,
                        out_features: o,
                        input_zero_point: zin,
                        output_zero_point: zout,
                        relu,
                        weights,
                        channels,
                    })
            })
    }

    /// Straightforward reference: one output at a time, wide integers.
    pub(crate) fn reference(spec: &DenseSpec, input: &[i8]) -> Vec<i8> {
        (0..spec.out_features as usize)
            .map(|o| {
                let acc: i64 = (0..spec.in_features as usize)
                    .map(|i| {
                        i64::from(spec.weights[o * spec.in_features as usize + i])
                            * (i64::from(input[i]) - i64::from(spec.input_zero_point))
                    })
                    .sum();
                reference_finish(acc, spec.channels[o], spec.output_zero_point, spec.relu)
            })
            .collect()
    }

    fn body(spec: &DenseSpec) -> Vec<u8> {
        let mut bytes = Vec::new();
        spec.write_body(&mut bytes);
        bytes
    }

    #[test]
    fn known_values() {
        let spec = DenseSpec {
            in_features: 2,
            out_features: 2,
            input_zero_point: 1,
            output_zero_point: -3,
            relu: true,
            weights: vec![2, -1, -4, 3],
            channels: vec![
                ChannelParams {
                    bias: 10,
                    requant: crate::quant::Requant::IDENTITY,
                },
                ChannelParams {
                    bias: 0,
                    requant: crate::quant::Requant::IDENTITY,
                },
            ],
        };
        let bytes = body(&spec);
        let layer = Dense::parse(&bytes).unwrap();
        let mut out = [0i8; 2];
        layer.run(&[5, 2], &mut out).unwrap();
        // o0: 10 + 2*4 - 1*1 = 17 -> -3 + 17 = 14. o1: -16 + 3 = -13 -> -16, clamped at -3.
        assert_eq!(out, [14, -3]);
        assert_eq!(layer.macs(), 4);
    }

    #[test]
    fn rejects_bad_bodies() {
        let mut spec = DenseSpec {
            in_features: 3,
            out_features: 1,
            input_zero_point: 0,
            output_zero_point: 0,
            relu: false,
            weights: vec![1, 2, 3],
            channels: vec![ChannelParams {
                bias: 0,
                requant: crate::quant::Requant::IDENTITY,
            }],
        };
        let good = body(&spec);
        assert!(Dense::parse(&good).is_ok());
        assert!(matches!(
            Dense::parse(&good[..good.len() - 1]),
            Err(LayerError::Truncated { .. })
        ));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            Dense::parse(&long).err(),
            Some(LayerError::TrailingBytes { extra: 1 })
        );
        let mut bad_act = good.clone();
        bad_act[10] = 7;
        assert!(matches!(
            Dense::parse(&bad_act),
            Err(LayerError::InvalidByte { .. })
        ));
        spec.channels[0].bias = i32::MAX;
        assert_eq!(
            Dense::parse(&body(&spec)).err(),
            Some(LayerError::InvalidChannel { channel: 0 })
        );
        spec.in_features = 0;
        assert!(matches!(
            Dense::parse(&body(&spec)),
            Err(LayerError::ZeroDimension { .. })
        ));
        let mut huge = good;
        huge[0..4].copy_from_slice(&(MAX_FAN_IN + 1).to_le_bytes());
        assert!(matches!(
            Dense::parse(&huge),
            Err(LayerError::TooLarge { .. })
        ));
    }

    #[test]
    fn wrong_buffer_lengths_are_errors() {
        let spec = DenseSpec {
            in_features: 2,
            out_features: 1,
            input_zero_point: 0,
            output_zero_point: 0,
            relu: false,
            weights: vec![1, 1],
            channels: vec![ChannelParams {
                bias: 0,
                requant: crate::quant::Requant::IDENTITY,
            }],
        };
        let bytes = body(&spec);
        let layer = Dense::parse(&bytes).unwrap();
        let mut out = [0i8; 1];
        assert_eq!(
            layer.run(&[1], &mut out),
            Err(BufferLengthError {
                expected: 2,
                found: 1
            })
        );
    }

    proptest! {
        #[test]
        fn kernel_matches_reference(
            (spec, input) in dense_spec(64, 32).prop_flat_map(|s| {
                let n = s.in_features as usize;
                (Just(s), proptest::collection::vec(any::<i8>(), n))
            })
        ) {
            let bytes = body(&spec);
            let layer = Dense::parse(&bytes).unwrap();
            let mut out = vec![0i8; spec.out_features as usize];
            layer.run(&input, &mut out).unwrap();
            prop_assert_eq!(out, reference(&spec, &input));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Dense::parse(&bytes);
        }
    }
}
