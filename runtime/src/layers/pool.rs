//! 1-D max and average pooling over channel-major `[channels × length]` activations.
//!
//! No padding: output length is `(in_length - kernel) / stride + 1`. Both keep the input's
//! quantisation (scale and zero point), since the maximum and the mean of quantised values are
//! quantised values of the same scale. The mean rounds halves away from zero.
//!
//! # Body layout (the same for both kinds)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `channels` u32 |
//! | 4 | 4 | `in_length` u32 |
//! | 8 | 2 | `kernel` u16 (1..=`in_length`) |
//! | 10 | 2 | `stride` u16 (≥ 1) |
//! | 12 | 1 | zero point i8 (input and output) |
//! | 13 | 3 | reserved, 0 |

use super::{
    BufferLengthError, ByteReader, Checks, LayerError, MAX_ELEMENTS, Shape, check_len, dimension,
    elements,
};

/// Which reduction a pooling layer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum over the window.
    Max,
    /// Mean over the window.
    Average,
}

/// A validated view of a pooling layer (it has no weights, so nothing is borrowed).
#[derive(Debug, Clone, Copy)]
pub struct Pool1d {
    kind: PoolKind,
    input: Shape,
    kernel: u16,
    stride: u16,
    zero_point: i8,
}

impl Pool1d {
    /// Parses and validates a body.
    ///
    /// # Errors
    /// [`LayerError`] naming the field that is out of range or the bytes that are missing.
    pub fn parse(kind: PoolKind, body: &[u8]) -> Result<Self, LayerError> {
        let mut reader = ByteReader::new(body, Checks::Full);
        let channels = dimension("channels", reader.u32()?, MAX_ELEMENTS)?;
        let in_length = dimension("in_length", reader.u32()?, MAX_ELEMENTS)?;
        let kernel = reader.u16()?;
        let stride = reader.u16()?;
        dimension("kernel", u32::from(kernel), in_length)?;
        dimension("stride", u32::from(stride), u32::from(u16::MAX))?;
        let input = elements(
            "input",
            Shape {
                channels,
                length: in_length,
            },
        )?;
        let zero_point = reader.i8()?;
        reader.reserved(3)?;
        reader.finish()?;
        Ok(Self {
            kind,
            input,
            kernel,
            stride,
            zero_point,
        })
    }

    /// Max or average.
    pub const fn kind(&self) -> PoolKind {
        self.kind
    }

    /// Input shape.
    pub const fn input_shape(&self) -> Shape {
        self.input
    }

    /// Output shape: same channels, `(in_length - kernel) / stride + 1` samples.
    pub const fn output_shape(&self) -> Shape {
        Shape {
            channels: self.input.channels,
            length: (self.input.length - self.kernel as u32) / self.stride as u32 + 1,
        }
    }

    /// Zero point of input and output.
    pub const fn zero_point(&self) -> i8 {
        self.zero_point
    }

    /// Runs the pooling.
    ///
    /// # Errors
    /// [`BufferLengthError`] if `input` or `output` has the wrong length.
    pub fn run(&self, input: &[i8], output: &mut [i8]) -> Result<(), BufferLengthError> {
        let out_shape = self.output_shape();
        check_len(self.input.elements(), input.len())?;
        check_len(out_shape.elements(), output.len())?;
        let (kernel, stride) = (usize::from(self.kernel), usize::from(self.stride));
        let rows = input.chunks_exact(self.input.length as usize);
        let out_rows = output.chunks_exact_mut(out_shape.length as usize);
        for (signal, out_row) in rows.zip(out_rows) {
            for (t, out) in out_row.iter_mut().enumerate() {
                let window = signal.get(t * stride..t * stride + kernel).unwrap_or(&[]);
                *out = match self.kind {
                    PoolKind::Max => window.iter().copied().max().unwrap_or(self.zero_point),
                    PoolKind::Average => {
                        let sum: i32 = window.iter().map(|&x| i32::from(x)).sum();
                        rounded_mean(sum, kernel as i32)
                    }
                };
            }
        }
        Ok(())
    }
}

/// `sum / count` rounded half away from zero; the result lies within the inputs' range.
fn rounded_mean(sum: i32, count: i32) -> i8 {
    let half = count / 2;
    let mean = if sum >= 0 {
        (sum + half) / count
    } else {
        (sum - half) / count
    };
    crate::quant::saturate_i8(mean, -128)
}

/// The owned description of a pooling layer that the blob writer serialises.
#[cfg(any(test, feature = "std"))]
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    /// Channels.
    pub channels: u32,
    /// Input length per channel.
    pub in_length: u32,
    /// Window.
    pub kernel: u16,
    /// Step between windows.
    pub stride: u16,
    /// Zero point of input and output.
    pub zero_point: i8,
}

#[cfg(any(test, feature = "std"))]
impl PoolSpec {
    /// Output length for these dimensions.
    pub const fn out_length(&self) -> u32 {
        (self.in_length - self.kernel as u32) / self.stride as u32 + 1
    }

    /// Appends the body bytes (layout in the module docs).
    pub fn write_body(&self, out: &mut std::vec::Vec<u8>) {
        out.extend_from_slice(&self.channels.to_le_bytes());
        out.extend_from_slice(&self.in_length.to_le_bytes());
        out.extend_from_slice(&self.kernel.to_le_bytes());
        out.extend_from_slice(&self.stride.to_le_bytes());
        out.extend_from_slice(&self.zero_point.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn parse(kind: PoolKind, spec: &PoolSpec) -> Pool1d {
        let mut bytes = Vec::new();
        spec.write_body(&mut bytes);
        Pool1d::parse(kind, &bytes).unwrap()
    }

    #[test]
    fn known_values() {
        let spec = PoolSpec {
            channels: 2,
            in_length: 4,
            kernel: 2,
            stride: 2,
            zero_point: 0,
        };
        let input = [1, 5, -3, -4, 2, 3, 7, -8];
        let mut out = [0i8; 4];
        parse(PoolKind::Max, &spec).run(&input, &mut out).unwrap();
        assert_eq!(out, [5, -3, 3, 7]);
        parse(PoolKind::Average, &spec)
            .run(&input, &mut out)
            .unwrap();
        // 3, -3.5 -> -4 (half away from zero), 2.5 -> 3, -0.5 -> -1.
        assert_eq!(out, [3, -4, 3, -1]);
    }

    #[test]
    fn rejects_kernel_longer_than_input() {
        let mut bytes = Vec::new();
        PoolSpec {
            channels: 1,
            in_length: 2,
            kernel: 3,
            stride: 1,
            zero_point: 0,
        }
        .write_body(&mut bytes);
        assert!(matches!(
            Pool1d::parse(PoolKind::Max, &bytes),
            Err(LayerError::TooLarge {
                field: "kernel",
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn matches_reference(
            channels in 1u32..4, in_length in 1u32..30, kernel in 1u16..6, stride in 1u16..4,
            seed in proptest::collection::vec(any::<i8>(), 120),
        ) {
            prop_assume!(u32::from(kernel) <= in_length);
            let spec = PoolSpec { channels, in_length, kernel, stride, zero_point: 0 };
            let input = &seed[..(channels * in_length) as usize];
            for kind in [PoolKind::Max, PoolKind::Average] {
                let layer = parse(kind, &spec);
                let mut out = vec![0i8; layer.output_shape().elements()];
                layer.run(input, &mut out).unwrap();
                let mut expected = Vec::new();
                for c in 0..channels as usize {
                    for t in 0..spec.out_length() as usize {
                        let start = c * in_length as usize + t * stride as usize;
                        let window = &input[start..start + kernel as usize];
                        expected.push(match kind {
                            PoolKind::Max => *window.iter().max().unwrap(),
                            PoolKind::Average => {
                                let mean = window.iter().map(|&x| f64::from(x)).sum::<f64>()
                                    / f64::from(kernel);
                                mean.round() as i8 // f64::round rounds half away from zero
                            }
                        });
                    }
                }
                prop_assert_eq!(out, expected);
            }
        }
    }
}
