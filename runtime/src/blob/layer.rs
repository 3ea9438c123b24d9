//! Layer records: the [`Layer`] view of each record and the iterator that walks them.

use super::error::BlobError;
use super::format::RECORD_HEADER_LEN;
use super::kind::LayerKind;
use crate::layers::{
    BinaryHead, Checks, Conv1d, Dense, Flatten, InputQuant, LayerError, LeakyRelu, PointSet,
    Pool1d, Relu, Shape, pool::PoolKind,
};

/// A parsed, validated layer view.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Layer<'a> {
    /// Input quantisation (first layer).
    Input(InputQuant<'a>),
    /// Fully connected layer.
    Dense(Dense<'a>),
    /// 1-D convolution.
    Conv1d(Conv1d<'a>),
    /// 1-D max or average pooling.
    Pool1d(Pool1d),
    /// ReLU.
    Relu(Relu),
    /// Leaky ReLU.
    LeakyRelu(LeakyRelu),
    /// Flatten.
    Flatten(Flatten),
    /// PointNet-style point-set block.
    PointSet(PointSet<'a>),
    /// Binarising head (last layer).
    BinaryHead(BinaryHead<'a>),
}

impl<'a> Layer<'a> {
    /// Parses a body of the given kind.
    ///
    /// # Errors
    /// [`LayerError`] if the body is invalid.
    pub fn parse(kind: LayerKind, body: &'a [u8]) -> Result<Self, LayerError> {
        Self::parse_with(kind, body, Checks::Full)
    }

    /// [`Self::parse`] with the given depth of checks.
    fn parse_with(kind: LayerKind, body: &'a [u8], checks: Checks) -> Result<Self, LayerError> {
        Ok(match kind {
            LayerKind::Input => Self::Input(InputQuant::parse_with(body, checks)?),
            LayerKind::Dense => Self::Dense(Dense::parse_with(body, checks)?),
            LayerKind::Conv1d => Self::Conv1d(Conv1d::parse_with(body, checks)?),
            LayerKind::MaxPool1d => Self::Pool1d(Pool1d::parse(PoolKind::Max, body)?),
            LayerKind::AvgPool1d => Self::Pool1d(Pool1d::parse(PoolKind::Average, body)?),
            LayerKind::Relu => Self::Relu(Relu::parse(body)?),
            LayerKind::LeakyRelu => Self::LeakyRelu(LeakyRelu::parse(body)?),
            LayerKind::Flatten => Self::Flatten(Flatten::parse(body)?),
            LayerKind::PointSet => Self::PointSet(PointSet::parse_with(body, checks)?),
            LayerKind::BinaryHead => Self::BinaryHead(BinaryHead::parse_with(body, checks)?),
        })
    }

    /// The record kind of this layer.
    pub fn kind(&self) -> LayerKind {
        match self {
            Self::Input(_) => LayerKind::Input,
            Self::Dense(_) => LayerKind::Dense,
            Self::Conv1d(_) => LayerKind::Conv1d,
            Self::Pool1d(p) => match p.kind() {
                PoolKind::Max => LayerKind::MaxPool1d,
                PoolKind::Average => LayerKind::AvgPool1d,
            },
            Self::Relu(_) => LayerKind::Relu,
            Self::LeakyRelu(_) => LayerKind::LeakyRelu,
            Self::Flatten(_) => LayerKind::Flatten,
            Self::PointSet(_) => LayerKind::PointSet,
            Self::BinaryHead(_) => LayerKind::BinaryHead,
        }
    }

    /// Input shape and zero point; `None` for the input layer, which reads raw samples.
    pub fn input(&self) -> Option<(Shape, i8)> {
        Some(match self {
            Self::Input(_) => return None,
            Self::Dense(l) => (l.input_shape(), l.input_zero_point()),
            Self::Conv1d(l) => (l.input_shape(), l.input_zero_point()),
            Self::Pool1d(l) => (l.input_shape(), l.zero_point()),
            Self::Relu(l) => (l.shape(), l.zero_point()),
            Self::LeakyRelu(l) => (l.shape(), l.zero_point()),
            Self::Flatten(l) => (l.input_shape(), l.zero_point()),
            Self::PointSet(l) => (l.input_shape(), l.input_zero_point()),
            Self::BinaryHead(l) => (l.input_shape(), l.input_zero_point()),
        })
    }

    /// Output shape and zero point; `None` for the head, which writes code bits.
    pub fn output(&self) -> Option<(Shape, i8)> {
        Some(match self {
            Self::Input(l) => (l.shape(), l.zero_point()),
            Self::Dense(l) => (l.output_shape(), l.output_zero_point()),
            Self::Conv1d(l) => (l.output_shape(), l.output_zero_point()),
            Self::Pool1d(l) => (l.output_shape(), l.zero_point()),
            Self::Relu(l) => (l.shape(), l.zero_point()),
            Self::LeakyRelu(l) => (l.shape(), l.zero_point()),
            Self::Flatten(l) => (l.output_shape(), l.zero_point()),
            Self::PointSet(l) => (l.output_shape(), l.output_zero_point()),
            Self::BinaryHead(_) => return None,
        })
    }

    /// Multiply-accumulates per event.
    pub fn macs(&self) -> u64 {
        match self {
            Self::Dense(l) => l.macs(),
            Self::Conv1d(l) => l.macs(),
            Self::PointSet(l) => l.macs(),
            Self::BinaryHead(l) => l.macs(),
            _ => 0,
        }
    }

    /// Bytes of parameters (weights, biases, rescales, input normalisation).
    pub fn parameter_bytes(&self) -> usize {
        match self {
            Self::Input(l) => l.parameter_bytes(),
            Self::Dense(l) => l.parameter_bytes(),
            Self::Conv1d(l) => l.parameter_bytes(),
            Self::PointSet(l) => l.parameter_bytes(),
            Self::BinaryHead(l) => l.parameter_bytes(),
            _ => 0,
        }
    }

    /// Scratch bytes the encoder needs while running this layer (see [`crate::encoder`]):
    /// input and output at the two ends of the scratch, plus the point-set temporaries
    /// between them. In-place layers need only their tensor.
    pub fn scratch_need(&self) -> usize {
        let len = |io: Option<(Shape, i8)>| io.map_or(0, |(shape, _)| shape.elements());
        let (input, output) = (len(self.input()), len(self.output()));
        match self {
            Self::Relu(_) | Self::LeakyRelu(_) | Self::Flatten(_) => input,
            Self::PointSet(l) => input + output + l.temp_len(),
            _ => input + output,
        }
    }
}

/// Iterator over the layer records of a blob.
#[derive(Debug, Clone)]
pub struct Layers<'a> {
    pub(super) rest: &'a [u8],
    pub(super) index: u16,
    pub(super) count: u16,
    pub(super) checks: Checks,
}

impl<'a> Layers<'a> {
    /// The bytes after the last record parsed so far.
    pub(super) fn remainder(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Layers<'a> {
    type Item = Result<Layer<'a>, BlobError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        let index = self.index;
        self.index = self.count; // an error ends the iteration
        let result = parse_record(self.rest, index, self.checks).map(|(layer, rest)| {
            self.rest = rest;
            self.index = index + 1;
            layer
        });
        Some(result)
    }
}

fn parse_record(bytes: &[u8], index: u16, checks: Checks) -> Result<(Layer<'_>, &[u8]), BlobError> {
    let (header, rest) = bytes
        .split_first_chunk::<RECORD_HEADER_LEN>()
        .ok_or(BlobError::RecordTruncated { index })?;
    let [kind_byte, r0, r1, r2, l0, l1, l2, l3] = *header;
    let kind = LayerKind::from_byte(kind_byte).ok_or(BlobError::UnknownLayerKind {
        index,
        kind: kind_byte,
    })?;
    if [r0, r1, r2] != [0, 0, 0] {
        return Err(BlobError::RecordReservedNotZero { index });
    }
    let body_len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    let (body, rest) = rest
        .split_at_checked(body_len)
        .ok_or(BlobError::RecordTruncated { index })?;
    let layer = Layer::parse_with(kind, body, checks).map_err(|error| BlobError::Layer {
        index,
        kind,
        error,
    })?;
    Ok((layer, rest))
}
