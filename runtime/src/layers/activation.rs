//! Element-wise activations (ReLU, leaky ReLU) and flatten. All three work in place and keep
//! the tensor's scale and zero point.
//!
//! # Body layouts
//!
//! ReLU and flatten:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `channels` u32 |
//! | 4 | 4 | `length` u32 |
//! | 8 | 1 | zero point i8 |
//! | 9 | 3 | reserved, 0 |
//!
//! Leaky ReLU adds the negative slope `alpha` (0 ≤ alpha < 1) as a fixed-point rescale:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 12 | 4 | alpha multiplier i32 |
//! | 16 | 4 | alpha shift i32 |
//!
//! Flatten turns `[channels × length]` into `[1 × channels·length]`; because activations are
//! channel-major, the bytes do not move.

use super::{
    BufferLengthError, ByteReader, Checks, LayerError, MAX_ELEMENTS, Shape, check_len, dimension,
    elements,
};
use crate::quant::{Requant, saturate_i8};

fn read_shape(reader: &mut ByteReader<'_>) -> Result<(Shape, i8), LayerError> {
    let channels = dimension("channels", reader.u32()?, MAX_ELEMENTS)?;
    let length = dimension("length", reader.u32()?, MAX_ELEMENTS)?;
    let shape = elements("tensor", Shape { channels, length })?;
    let zero_point = reader.i8()?;
    reader.reserved(3)?;
    Ok((shape, zero_point))
}

/// ReLU: `x = max(x, zero_point)` (real values below 0 become 0).
#[derive(Debug, Clone, Copy)]
pub struct Relu {
    shape: Shape,
    zero_point: i8,
}

impl Relu {
    /// Parses and validates a body.
    ///
    /// # Errors
    /// [`LayerError`] naming the field that is out of range or the bytes that are missing.
    pub fn parse(body: &[u8]) -> Result<Self, LayerError> {
        let mut reader = ByteReader::new(body, Checks::Full);
        let (shape, zero_point) = read_shape(&mut reader)?;
        reader.finish()?;
        Ok(Self { shape, zero_point })
    }

    /// Input and output shape.
    pub const fn shape(&self) -> Shape {
        self.shape
    }

    /// Zero point of input and output.
    pub const fn zero_point(&self) -> i8 {
        self.zero_point
    }

    /// Applies the activation in place.
    ///
    /// # Errors
    /// [`BufferLengthError`] if `data` has the wrong length.
    pub fn run(&self, data: &mut [i8]) -> Result<(), BufferLengthError> {
        check_len(self.shape.elements(), data.len())?;
        data.iter_mut().for_each(|x| *x = (*x).max(self.zero_point));
        Ok(())
    }
}

/// Leaky ReLU: values below the zero point are scaled by `alpha` towards it.
#[derive(Debug, Clone, Copy)]
pub struct LeakyRelu {
    shape: Shape,
    zero_point: i8,
    alpha: Requant,
}

impl LeakyRelu {
    /// Parses and validates a body.
    ///
    /// # Errors
    /// [`LayerError`] naming the field that is out of range or the bytes that are missing.
    pub fn parse(body: &[u8]) -> Result<Self, LayerError> {
        let mut reader = ByteReader::new(body, Checks::Full);
        let (shape, zero_point) = read_shape(&mut reader)?;
        let alpha = Requant::new(reader.i32()?, reader.i32()?)
            .ok()
            .filter(|alpha| alpha.to_real() < 1.0)
            .ok_or(LayerError::Geometry {
                reason: "leaky ReLU slope must be a valid rescale in [0, 1)",
            })?;
        reader.finish()?;
        Ok(Self {
            shape,
            zero_point,
            alpha,
        })
    }

    /// Input and output shape.
    pub const fn shape(&self) -> Shape {
        self.shape
    }

    /// Zero point of input and output.
    pub const fn zero_point(&self) -> i8 {
        self.zero_point
    }

    /// The negative slope.
    pub const fn alpha(&self) -> Requant {
        self.alpha
    }

    /// Applies the activation in place.
    ///
    /// # Errors
    /// [`BufferLengthError`] if `data` has the wrong length.
    pub fn run(&self, data: &mut [i8]) -> Result<(), BufferLengthError> {
        check_len(self.shape.elements(), data.len())?;
        let zero = i32::from(self.zero_point);
        for x in data.iter_mut().filter(|x| **x < self.zero_point) {
            *x = saturate_i8(zero + self.alpha.apply(i32::from(*x) - zero), -128);
        }
        Ok(())
    }
}

/// Flatten: a shape change with no data movement.
#[derive(Debug, Clone, Copy)]
pub struct Flatten {
    shape: Shape,
    zero_point: i8,
}

impl Flatten {
    /// Parses and validates a body.
    ///
    /// # Errors
    /// [`LayerError`] naming the field that is out of range or the bytes that are missing.
    pub fn parse(body: &[u8]) -> Result<Self, LayerError> {
        let mut reader = ByteReader::new(body, Checks::Full);
        let (shape, zero_point) = read_shape(&mut reader)?;
        reader.finish()?;
        Ok(Self { shape, zero_point })
    }

    /// Input shape.
    pub const fn input_shape(&self) -> Shape {
        self.shape
    }

    /// Output shape `[1 × channels·length]`.
    pub const fn output_shape(&self) -> Shape {
        Shape::flat(self.shape.channels * self.shape.length)
    }

    /// Zero point of input and output.
    pub const fn zero_point(&self) -> i8 {
        self.zero_point
    }
}

/// The owned description of an element-wise layer or flatten that the blob writer serialises.
#[cfg(any(test, feature = "std"))]
#[derive(Debug, Clone, PartialEq)]
pub struct ElementwiseSpec {
    /// Channels.
    pub channels: u32,
    /// Samples per channel.
    pub length: u32,
    /// Zero point of input and output.
    pub zero_point: i8,
}

#[cfg(any(test, feature = "std"))]
impl ElementwiseSpec {
    /// Appends the shape part of a body (ReLU and flatten bodies are only this).
    pub fn write_body(&self, out: &mut std::vec::Vec<u8>) {
        out.extend_from_slice(&self.channels.to_le_bytes());
        out.extend_from_slice(&self.length.to_le_bytes());
        out.extend_from_slice(&self.zero_point.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0]);
    }

    /// Appends a leaky ReLU body with slope `alpha`.
    pub fn write_leaky_body(&self, alpha: Requant, out: &mut std::vec::Vec<u8>) {
        self.write_body(out);
        out.extend_from_slice(&alpha.multiplier().to_le_bytes());
        out.extend_from_slice(&alpha.shift().to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::uniform_f64;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn spec(n: u32, zero_point: i8) -> ElementwiseSpec {
        ElementwiseSpec {
            channels: 1,
            length: n,
            zero_point,
        }
    }

    #[test]
    fn relu_clamps_at_zero_point() {
        let mut bytes = Vec::new();
        spec(4, -10).write_body(&mut bytes);
        let layer = Relu::parse(&bytes).unwrap();
        let mut data = [-128, -11, -10, 50];
        layer.run(&mut data).unwrap();
        assert_eq!(data, [-10, -10, -10, 50]);
    }

    #[test]
    fn leaky_relu_scales_negative_side() {
        let mut bytes = Vec::new();
        spec(3, 0).write_leaky_body(Requant::from_real(0.25).unwrap(), &mut bytes);
        let layer = LeakyRelu::parse(&bytes).unwrap();
        let mut data = [-100, -2, 40];
        layer.run(&mut data).unwrap();
        assert_eq!(data, [-25, 0, 40]); // -0.5 rounds half up to 0
    }

    #[test]
    fn leaky_relu_rejects_slope_of_one_or_more() {
        let mut bytes = Vec::new();
        spec(3, 0).write_leaky_body(Requant::IDENTITY, &mut bytes);
        assert!(LeakyRelu::parse(&bytes).is_err());
    }

    #[test]
    fn flatten_reshapes() {
        let mut bytes = Vec::new();
        ElementwiseSpec {
            channels: 3,
            length: 5,
            zero_point: 0,
        }
        .write_body(&mut bytes);
        assert_eq!(
            Flatten::parse(&bytes).unwrap().output_shape(),
            Shape::flat(15)
        );
    }

    proptest! {
        #[test]
        fn leaky_relu_matches_float(alpha in uniform_f64(0.0, 0.99), zero in any::<i8>(), x in any::<i8>()) {
            let mut bytes = Vec::new();
            let rq = Requant::from_real(alpha).unwrap();
            spec(1, zero).write_leaky_body(rq, &mut bytes);
            let mut data = [x];
            LeakyRelu::parse(&bytes).unwrap().run(&mut data).unwrap();
            let real = f64::from(x) - f64::from(zero);
            let expected = if real < 0.0 { real * rq.to_real() } else { real } + f64::from(zero);
            prop_assert!((f64::from(data[0]) - expected.clamp(-128.0, 127.0)).abs() <= 0.5 + 1e-9);
        }
    }
}
