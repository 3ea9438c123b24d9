//! Point-set block (PointNet style): the same small stack of dense layers is applied to every
//! point, then a global max-pool over points gives one feature vector for the whole set. The
//! result does not depend on the order of the points.
//!
//! The input is `[1 × points·features]`, point-major (point `p`'s features are contiguous).
//! Each point runs through the inner layers in a small temporary region of the scratch, so
//! the block never materialises a `[points × width]` tensor.
//!
//! # Body layout
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `points` u32 |
//! | 4 | 4 | `features` u32 (inputs per point) |
//! | 8 | 1 | inner layer count, 1..=[`MAX_INNER_LAYERS`] |
//! | 9 | 3 | reserved, 0 |
//! | 12 | … | per inner layer: body length u32, then a [dense](super::dense) body |
//!
//! The first inner layer takes `features` inputs, each next one takes the previous one's
//! outputs, and zero points chain likewise. Output: `[1 × last out_features]` with the last
//! inner layer's zero point (max commutes with the monotonic quantisation).

use heapless::Vec;

use crate::scratch::{End, at_end, split_ends};

use super::{
    BufferLengthError, ByteReader, Checks, Dense, LayerError, MAX_ELEMENTS, Shape, check_len,
    dimension, elements,
};

/// Most inner dense layers a point-set block may have.
pub const MAX_INNER_LAYERS: usize = 4;

/// A validated view of a point-set block.
#[derive(Debug, Clone)]
pub struct PointSet<'a> {
    points: u32,
    features: u32,
    inner: Vec<Dense<'a>, MAX_INNER_LAYERS>,
}

impl<'a> PointSet<'a> {
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
        let points = dimension("points", reader.u32()?, MAX_ELEMENTS)?;
        let features = dimension("features", reader.u32()?, MAX_ELEMENTS)?;
        elements(
            "input",
            Shape {
                channels: points,
                length: features,
            },
        )?;
        let count = reader.u8()?;
        dimension(
            "inner layer count",
            u32::from(count),
            MAX_INNER_LAYERS as u32,
        )?;
        reader.reserved(3)?;
        let mut inner = Vec::new();
        let (mut width, mut zero_point) = (features, None);
        for index in 0..count {
            let length = reader.u32()? as usize;
            let dense = Dense::parse_with(reader.take(length)?, checks)?;
            let chains = dense.input_shape() == Shape::flat(width)
                && zero_point.is_none_or(|z| z == dense.input_zero_point());
            if !chains {
                return Err(LayerError::InnerShape { inner: index });
            }
            width = dense.output_shape().length;
            zero_point = Some(dense.output_zero_point());
            inner
                .push(dense)
                .map_err(|_| LayerError::InnerShape { inner: index })?;
        }
        reader.finish()?;
        Ok(Self {
            points,
            features,
            inner,
        })
    }

    /// Input shape `[1 × points·features]`.
    pub const fn input_shape(&self) -> Shape {
        Shape::flat(self.points * self.features)
    }

    /// Output shape `[1 × last width]`.
    pub fn output_shape(&self) -> Shape {
        self.inner
            .last()
            .map_or(Shape::flat(self.features), Dense::output_shape)
    }

    /// Number of points.
    pub const fn points(&self) -> u32 {
        self.points
    }

    /// The inner dense layers.
    pub fn inner(&self) -> &[Dense<'a>] {
        &self.inner
    }

    /// Zero point of the input.
    pub fn input_zero_point(&self) -> i8 {
        self.inner.first().map_or(0, Dense::input_zero_point)
    }

    /// Zero point of the output.
    pub fn output_zero_point(&self) -> i8 {
        self.inner.last().map_or(0, Dense::output_zero_point)
    }

    /// Multiply-accumulates per run.
    pub fn macs(&self) -> u64 {
        u64::from(self.points) * self.inner.iter().map(Dense::macs).sum::<u64>()
    }

    /// Bytes of weights and channel records.
    pub fn parameter_bytes(&self) -> usize {
        self.inner.iter().map(Dense::parameter_bytes).sum()
    }

    /// Scratch the per-point temporaries need: the largest adjacent pair of inner widths.
    pub fn temp_len(&self) -> usize {
        let mut previous = 0;
        let mut need = 0;
        for dense in &self.inner {
            let width = dense.output_shape().elements();
            need = need.max(previous + width);
            previous = width;
        }
        need
    }

    /// Runs the block. `temp` must hold at least [`Self::temp_len`] elements.
    ///
    /// # Errors
    /// [`BufferLengthError`] if a buffer has the wrong length or `temp` is too short.
    pub fn run(
        &self,
        input: &[i8],
        output: &mut [i8],
        temp: &mut [i8],
    ) -> Result<(), BufferLengthError> {
        check_len(self.input_shape().elements(), input.len())?;
        check_len(self.output_shape().elements(), output.len())?;
        let temp_len = self.temp_len();
        let misfit = BufferLengthError {
            expected: temp_len,
            found: temp.len(),
        };
        let temp = temp.get_mut(..temp_len).ok_or(misfit)?;
        output.fill(i8::MIN);
        for point in input.chunks_exact(self.features as usize) {
            let (mut end, mut len) = (End::Front, 0);
            for (index, dense) in self.inner.iter().enumerate() {
                let out_len = dense.output_shape().elements();
                let (source, destination, _) = split_ends(temp, end, len, out_len).ok_or(misfit)?;
                dense.run(if index == 0 { point } else { source }, destination)?;
                (end, len) = (end.other(), out_len);
            }
            let result = at_end(temp, end, len).ok_or(misfit)?;
            for (max, &value) in output.iter_mut().zip(result.iter()) {
                *max = (*max).max(value);
            }
        }
        Ok(())
    }
}

/// The owned description of a point-set block that the blob writer serialises.
#[cfg(any(test, feature = "std"))]
#[derive(Debug, Clone, PartialEq)]
pub struct PointSetSpec {
    /// Number of points.
    pub points: u32,
    /// Features per point.
    pub features: u32,
    /// The shared per-point dense layers.
    pub inner: std::vec::Vec<super::dense::DenseSpec>,
}

#[cfg(any(test, feature = "std"))]
impl PointSetSpec {
    /// Appends the body bytes (layout in the module docs).
    pub fn write_body(&self, out: &mut std::vec::Vec<u8>) {
        out.extend_from_slice(&self.points.to_le_bytes());
        out.extend_from_slice(&self.features.to_le_bytes());
        out.extend_from_slice(&[self.inner.len() as u8, 0, 0, 0]);
        for dense in &self.inner {
            let mut body = std::vec::Vec::new();
            dense.write_body(&mut body);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&body);
        }
    }
}
