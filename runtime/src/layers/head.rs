//! The binarising head: a linear layer whose sign gives each code bit.
//!
//! The trained model's code bit `i` is "posterior mean of latent `i` > 0.5". For a Beta-like
//! posterior whose mean is a logistic function of a linear pre-activation, that is the sign of
//! the pre-activation, so the head needs no requantisation: bit `i` is
//! `bias_i + Σ_j w[i,j]·(x_j - z_in) > 0` (a zero sum gives 0, matching the strict `> 0.5`).
//!
//! # Body layout
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `in_features` u32 (1..=[`MAX_FAN_IN`]) |
//! | 4 | 4 | `bits` u32 (1..=65535) |
//! | 8 | 1 | input zero point i8 |
//! | 9 | 3 | reserved, 0 |
//! | 12 | `bits·in` | weights i8, row `i` for bit `i` |
//! | … | `4·bits` | bias i32 (\|·\| ≤ 2^30) |

use super::{
    BufferLengthError, ByteReader, Checks, LayerError, MAX_BIAS, MAX_FAN_IN, Shape, check_len,
    dimension,
};
use crate::kernels::{FINISH_BLOCK, block_dots, dot};

/// A validated view of the binarising head.
#[derive(Debug, Clone, Copy)]
pub struct BinaryHead<'a> {
    in_features: u32,
    bits: u32,
    input_zero_point: i8,
    weights: &'a [u8],
    biases: &'a [[u8; 4]],
}

impl<'a> BinaryHead<'a> {
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
        let in_features = dimension("in_features", reader.u32()?, MAX_FAN_IN)?;
        let bits = dimension("bits", reader.u32()?, u32::from(u16::MAX))?;
        let input_zero_point = reader.i8()?;
        reader.reserved(3)?;
        let weights = reader.take(in_features as usize * bits as usize)?;
        let biases = reader.records::<4>(bits as usize)?;
        if reader.checks_records()
            && let Some(bit) = biases
                .iter()
                .position(|b| i32::from_le_bytes(*b).unsigned_abs() > MAX_BIAS.unsigned_abs())
        {
            return Err(LayerError::InvalidChannel {
                channel: bit as u32,
            });
        }
        reader.finish()?;
        Ok(Self {
            in_features,
            bits,
            input_zero_point,
            weights,
            biases,
        })
    }

    /// Input shape `[1 × in]`.
    pub const fn input_shape(&self) -> Shape {
        Shape::flat(self.in_features)
    }

    /// Number of code bits produced.
    pub const fn bits(&self) -> u32 {
        self.bits
    }

    /// Zero point of the input.
    pub const fn input_zero_point(&self) -> i8 {
        self.input_zero_point
    }

    /// Multiply-accumulates per run.
    pub const fn macs(&self) -> u64 {
        self.in_features as u64 * self.bits as u64
    }

    /// The weights, row by row (`bits` rows of `in_features`), int8 as bytes.
    pub const fn weights(&self) -> &'a [u8] {
        self.weights
    }

    /// Each bit's bias, in accumulator units, in order.
    pub fn biases(&self) -> impl Iterator<Item = i32> + 'a {
        self.biases.iter().map(|bias| i32::from_le_bytes(*bias))
    }

    /// The weights and the row length, for the encoder's weight-sum table (see
    /// [`crate::kernels::weight_sums`]).
    pub(crate) fn weight_rows(self) -> (&'a [u8], usize) {
        (self.weights, self.in_features as usize)
    }

    /// Bytes of weights and biases.
    pub const fn parameter_bytes(&self) -> usize {
        self.weights.len() + 4 * self.biases.len()
    }

    /// Writes the pre-activation of every bit (`bias + Σ w·(x - z)`) to `logits`; useful to
    /// see how close a bit is to flipping.
    ///
    /// # Errors
    /// [`BufferLengthError`] if `input` or `logits` has the wrong length.
    pub fn logits(&self, input: &[i8], logits: &mut [i32]) -> Result<(), BufferLengthError> {
        check_len(self.in_features as usize, input.len())?;
        check_len(self.bits as usize, logits.len())?;
        let zero = i32::from(self.input_zero_point);
        let rows = self.weights.chunks_exact(self.in_features as usize);
        for ((row, bias), logit) in rows.zip(self.biases).zip(logits) {
            let acc = dot(row, input, zero);
            *logit = acc + i32::from_le_bytes(*bias);
        }
        Ok(())
    }

    /// Sets bit `i` of `code` (LSB-first bytes, as in [`crate::Code`]) for every positive
    /// logit and clears it otherwise. Bytes past the code width are left as they are.
    ///
    /// # Errors
    /// [`BufferLengthError`] if `input` has the wrong length or `code` is shorter than
    /// `ceil(bits / 8)` bytes.
    pub fn run(&self, input: &[i8], code: &mut [u8]) -> Result<(), BufferLengthError> {
        self.run_lanes([input], [code], None)
    }

    /// [`BinaryHead::run`] on `E` events side by side, so that each weight is read once for
    /// all of them (the batch path of the encoder), with the rows' weight sums if the encoder
    /// keeps them.
    ///
    /// # Errors
    /// As [`BinaryHead::run`], for any of the events.
    pub(crate) fn run_lanes<const E: usize>(
        &self,
        inputs: [&[i8]; E],
        mut codes: [&mut [u8]; E],
        weight_sums: Option<&[[i8; 4]]>,
    ) -> Result<(), BufferLengthError> {
        let bytes = (self.bits as usize).div_ceil(8);
        for (input, code) in inputs.iter().zip(&codes) {
            check_len(self.in_features as usize, input.len())?;
            if code.len() < bytes {
                return Err(BufferLengthError {
                    expected: bytes,
                    found: code.len(),
                });
            }
        }
        for code in &mut codes {
            code.iter_mut().take(bytes).for_each(|byte| *byte = 0);
        }
        let zero = i32::from(self.input_zero_point);
        let n = self.in_features as usize;
        let mut set = |bit: usize, lane: usize, acc: i32, bias: &[u8; 4]| {
            if acc + i32::from_le_bytes(*bias) > 0
                && let Some(byte) = codes.get_mut(lane).and_then(|code| code.get_mut(bit / 8))
            {
                *byte |= 1 << (bit % 8);
            }
        };
        let blocks = self
            .weights
            .chunks(FINISH_BLOCK * n)
            .zip(self.biases.chunks(FINISH_BLOCK));
        for (block, (rows, biases)) in blocks.enumerate() {
            let first_bit = block * FINISH_BLOCK;
            let accs = block_dots(rows, n, inputs, zero, weight_sums, first_bit);
            for (lane, accs) in accs.iter().enumerate() {
                for (bit, (&acc, bias)) in accs.iter().zip(biases).enumerate() {
                    set(first_bit + bit, lane, acc, bias);
                }
            }
        }
        Ok(())
    }
}

/// The owned description of the binarising head that the blob writer serialises.
#[cfg(any(test, feature = "std"))]
#[derive(Debug, Clone, PartialEq)]
pub struct HeadSpec {
    /// Inputs.
    pub in_features: u32,
    /// Code bits.
    pub bits: u32,
    /// Input zero point.
    pub input_zero_point: i8,
    /// `bits × in` weights.
    pub weights: std::vec::Vec<i8>,
    /// One bias per bit.
    pub biases: std::vec::Vec<i32>,
}

#[cfg(any(test, feature = "std"))]
impl HeadSpec {
    /// Appends the body bytes (layout in the module docs).
    pub fn write_body(&self, out: &mut std::vec::Vec<u8>) {
        out.extend_from_slice(&self.in_features.to_le_bytes());
        out.extend_from_slice(&self.bits.to_le_bytes());
        out.extend_from_slice(&self.input_zero_point.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0]);
        out.extend(self.weights.iter().map(|&w| w as u8));
        self.biases
            .iter()
            .for_each(|b| out.extend_from_slice(&b.to_le_bytes()));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    pub(crate) fn head_spec(in_features: u32, bits: u32) -> impl Strategy<Value = HeadSpec> {
        (
            any::<i8>(),
            proptest::collection::vec(any::<i8>(), (in_features * bits) as usize),
            proptest::collection::vec(-(1i32 << 16)..(1 << 16), bits as usize),
        )
            .prop_map(move |(zero, weights, biases)| HeadSpec {
                in_features,
                bits,
                input_zero_point: zero,
                weights,
                biases,
            })
    }

    fn body(spec: &HeadSpec) -> Vec<u8> {
        let mut bytes = Vec::new();
        spec.write_body(&mut bytes);
        bytes
    }

    #[test]
    fn zero_logit_gives_zero_bit() {
        let spec = HeadSpec {
            in_features: 1,
            bits: 3,
            input_zero_point: 0,
            weights: vec![1, -1, 0],
            biases: vec![0, 0, 0],
        };
        let bytes = body(&spec);
        let head = BinaryHead::parse(&bytes).unwrap();
        let mut code = [0xffu8; 2];
        head.run(&[5], &mut code).unwrap();
        assert_eq!(code, [0b001, 0xff]); // bytes past the width untouched
        assert!(head.run(&[5], &mut []).is_err());
    }

    proptest! {
        #[test]
        fn bits_are_signs_of_reference_logits(
            (spec, input) in (1u32..40, 1u32..70).prop_flat_map(|(i, b)| {
                (head_spec(i, b), proptest::collection::vec(any::<i8>(), i as usize))
            })
        ) {
            let bytes = body(&spec);
            let head = BinaryHead::parse(&bytes).unwrap();
            let mut code = [0u8; 9];
            head.run(&input, &mut code).unwrap();
            let mut logits = vec![0i32; spec.bits as usize];
            head.logits(&input, &mut logits).unwrap();
            for bit in 0..spec.bits as usize {
                let n = spec.in_features as usize;
                let reference: i64 = i64::from(spec.biases[bit]) + (0..n)
                    .map(|j| i64::from(spec.weights[bit * n + j])
                        * (i64::from(input[j]) - i64::from(spec.input_zero_point)))
                    .sum::<i64>();
                prop_assert_eq!(i64::from(logits[bit]), reference);
                prop_assert_eq!(code[bit / 8] >> (bit % 8) & 1 == 1, reference > 0);
            }
        }
    }
}
