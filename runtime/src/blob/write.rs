//! The blob writer (host only, `std` feature): the one place besides the reader that knows the
//! byte layout, and it reuses the reader to validate what it wrote.

use std::vec;
use std::vec::Vec;

use super::format::{CHECKSUM_LEN, HEADER_LEN, MAGIC, VERSION, field};
use super::model::analyse;
use super::{BlobError, LayerKind, Model};
use crate::layers::LayerError;
use crate::layers::activation::ElementwiseSpec;
use crate::layers::conv1d::Conv1dSpec;
use crate::layers::dense::DenseSpec;
use crate::layers::head::HeadSpec;
use crate::layers::input::InputSpec;
use crate::layers::point_set::PointSetSpec;
use crate::layers::pool::PoolSpec;
use crate::quant::Requant;

/// The owned description of one layer, as the exporter builds it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LayerSpec {
    /// Input quantisation.
    Input(InputSpec),
    /// Fully connected layer.
    Dense(DenseSpec),
    /// 1-D convolution.
    Conv1d(Conv1dSpec),
    /// 1-D max pooling.
    MaxPool1d(PoolSpec),
    /// 1-D average pooling.
    AvgPool1d(PoolSpec),
    /// ReLU.
    Relu(ElementwiseSpec),
    /// Leaky ReLU with slope `alpha`.
    LeakyRelu(ElementwiseSpec, Requant),
    /// Flatten.
    Flatten(ElementwiseSpec),
    /// Point-set block.
    PointSet(PointSetSpec),
    /// Binarising head.
    BinaryHead(HeadSpec),
}

impl LayerSpec {
    /// The record kind.
    pub fn kind(&self) -> LayerKind {
        match self {
            Self::Input(_) => LayerKind::Input,
            Self::Dense(_) => LayerKind::Dense,
            Self::Conv1d(_) => LayerKind::Conv1d,
            Self::MaxPool1d(_) => LayerKind::MaxPool1d,
            Self::AvgPool1d(_) => LayerKind::AvgPool1d,
            Self::Relu(_) => LayerKind::Relu,
            Self::LeakyRelu(..) => LayerKind::LeakyRelu,
            Self::Flatten(_) => LayerKind::Flatten,
            Self::PointSet(_) => LayerKind::PointSet,
            Self::BinaryHead(_) => LayerKind::BinaryHead,
        }
    }

    /// Appends the layer's body bytes.
    pub fn write_body(&self, out: &mut Vec<u8>) {
        match self {
            Self::Input(s) => s.write_body(out),
            Self::Dense(s) => s.write_body(out),
            Self::Conv1d(s) => s.write_body(out),
            Self::MaxPool1d(s) | Self::AvgPool1d(s) => s.write_body(out),
            Self::Relu(s) | Self::Flatten(s) => s.write_body(out),
            Self::LeakyRelu(s, alpha) => s.write_leaky_body(*alpha, out),
            Self::PointSet(s) => s.write_body(out),
            Self::BinaryHead(s) => s.write_body(out),
        }
    }
}

/// Serialises layers into a blob and validates the result with [`Model::from_bytes`].
///
/// # Errors
/// The [`BlobError`] the reader reports for the written bytes, for example a shape that does
/// not chain or an out-of-range parameter, so an exporter cannot write a blob the device
/// would refuse.
pub fn write_blob(layers: &[LayerSpec]) -> Result<Vec<u8>, BlobError> {
    let count =
        u16::try_from(layers.len()).map_err(|_| BlobError::LayerCount { count: u16::MAX })?;
    let mut bytes = vec![0u8; HEADER_LEN];
    for (index, layer) in layers.iter().enumerate() {
        let mut body = Vec::new();
        layer.write_body(&mut body);
        let body_len = u32::try_from(body.len()).map_err(|_| BlobError::Layer {
            index: index as u16,
            kind: layer.kind(),
            error: LayerError::TooLarge {
                field: "body length",
                value: body.len() as u64,
                max: u64::from(u32::MAX),
            },
        })?;
        bytes.extend_from_slice(&[layer.kind() as u8, 0, 0, 0]);
        bytes.extend_from_slice(&body_len.to_le_bytes());
        bytes.extend_from_slice(&body);
    }
    let analysis = analyse(&bytes[HEADER_LEN..], count)?;
    let total = bytes.len() + CHECKSUM_LEN;
    let header_fields: [(core::ops::Range<usize>, Vec<u8>); 6] = [
        (field::MAGIC, MAGIC.to_vec()),
        (field::VERSION, VERSION.to_le_bytes().to_vec()),
        (field::LAYER_COUNT, count.to_le_bytes().to_vec()),
        (field::TOTAL_LEN, (total as u32).to_le_bytes().to_vec()),
        (
            field::INPUT_FEATURES,
            (analysis.input.elements() as u32).to_le_bytes().to_vec(),
        ),
        (
            field::SCRATCH_BYTES,
            (analysis.scratch_bytes as u32).to_le_bytes().to_vec(),
        ),
    ];
    for (range, value) in header_fields {
        bytes[range].copy_from_slice(&value);
    }
    let code_bits = u16::try_from(analysis.code_bits).map_err(|_| BlobError::HeaderMismatch {
        field: "code bits",
        declared: u32::from(u16::MAX),
        computed: analysis.code_bits,
    })?;
    bytes[field::CODE_BITS].copy_from_slice(&code_bits.to_le_bytes());
    let checksum = crate::checksum::crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    Model::from_bytes(&bytes)?;
    Ok(bytes)
}
