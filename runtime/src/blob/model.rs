//! [`Model`]: a blob validated once, and what its layers imply.

use super::error::BlobError;
use super::format::{CHECKSUM_LEN, HEADER_LEN, MAGIC, MAX_LAYERS, VERSION, field};
use super::layer::{Layer, Layers};
use crate::layers::{Checks, Shape};

/// What the layers of a blob imply, found by walking them once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Analysis {
    pub(crate) input: Shape,
    pub(crate) code_bits: u32,
    pub(crate) scratch_bytes: usize,
    pub(crate) macs: u64,
    pub(crate) parameter_bytes: usize,
    /// Rows of dense layers and the head: the entries of the encoder's weight-sum table.
    pub(crate) weight_rows: usize,
}

/// Walks `count` layer records in `bytes`, checking order and the shape and zero-point chain.
pub(crate) fn analyse(bytes: &[u8], count: u16) -> Result<Analysis, BlobError> {
    if count == 0 || count > MAX_LAYERS {
        return Err(BlobError::LayerCount { count });
    }
    let mut layers = Layers {
        rest: bytes,
        index: 0,
        count,
        checks: Checks::Full,
    };
    let mut analysis = Analysis {
        input: Shape::flat(0),
        code_bits: 0,
        scratch_bytes: 0,
        macs: 0,
        parameter_bytes: 0,
        weight_rows: 0,
    };
    let mut previous: Option<(Shape, i8)> = None;
    for index in 0..count {
        let layer = layers
            .next()
            .unwrap_or(Err(BlobError::RecordTruncated { index }))?;
        let is_first = index == 0;
        let is_last = index + 1 == count;
        let misplaced = match layer {
            Layer::Input(_) => !is_first,
            Layer::BinaryHead(_) => !is_last,
            _ => is_first || is_last,
        };
        if misplaced {
            return Err(BlobError::Misplaced {
                index,
                kind: layer.kind(),
            });
        }
        if let (Some((expected, expected_zero)), Some((found, found_zero))) =
            (previous, layer.input())
        {
            if expected != found {
                return Err(BlobError::ShapeMismatch {
                    index,
                    expected,
                    found,
                });
            }
            if expected_zero != found_zero {
                return Err(BlobError::ZeroPointMismatch {
                    index,
                    expected: expected_zero,
                    found: found_zero,
                });
            }
        }
        match &layer {
            Layer::Input(l) => analysis.input = l.shape(),
            Layer::BinaryHead(l) => {
                analysis.code_bits = l.bits();
                analysis.weight_rows += l.bits() as usize;
            }
            Layer::Dense(l) => analysis.weight_rows += l.output_shape().elements(),
            _ => {}
        }
        analysis.scratch_bytes = analysis.scratch_bytes.max(layer.scratch_need());
        analysis.macs += layer.macs();
        analysis.parameter_bytes += layer.parameter_bytes();
        previous = layer.output();
    }
    match layers.remainder().len() {
        0 => Ok(analysis),
        extra => Err(BlobError::TrailingBytes { extra }),
    }
}

/// A validated encoder blob, borrowed zero-copy.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    layers: &'a [u8],
    layer_count: u16,
    total_len: usize,
    checksum: u32,
    analysis: Analysis,
}

impl<'a> Model<'a> {
    /// Validates `bytes` as an encoder blob (see the module docs for every check).
    ///
    /// # Errors
    /// [`BlobError`] naming the first problem found.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, BlobError> {
        let (header, _) = bytes
            .split_first_chunk::<HEADER_LEN>()
            .filter(|_| bytes.len() >= HEADER_LEN + CHECKSUM_LEN)
            .ok_or(BlobError::Truncated {
                needed: HEADER_LEN + CHECKSUM_LEN,
                found: bytes.len(),
            })?;
        let u16_at = |range: core::ops::Range<usize>| {
            header
                .get(range)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u16::from_le_bytes)
        };
        let u32_at = |range: core::ops::Range<usize>| {
            header
                .get(range)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        let magic = header
            .get(field::MAGIC)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 4]);
        if magic != MAGIC {
            return Err(BlobError::BadMagic { found: magic });
        }
        let version = u16_at(field::VERSION);
        if version != VERSION {
            return Err(BlobError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        for range in [field::RESERVED_A, field::RESERVED_B] {
            if let Some(offset) = header
                .get(range.clone())
                .and_then(|b| b.iter().position(|&x| x != 0))
            {
                return Err(BlobError::ReservedNotZero {
                    offset: range.start + offset,
                });
            }
        }
        let declared = u32_at(field::TOTAL_LEN);
        if declared as usize != bytes.len() {
            return Err(BlobError::LengthMismatch {
                declared,
                actual: bytes.len(),
            });
        }
        let (body, stored) =
            bytes
                .split_last_chunk::<CHECKSUM_LEN>()
                .ok_or(BlobError::Truncated {
                    needed: HEADER_LEN + CHECKSUM_LEN,
                    found: bytes.len(),
                })?;
        let stored = u32::from_le_bytes(*stored);
        let computed = crate::checksum::crc32c(body);
        if stored != computed {
            return Err(BlobError::ChecksumMismatch { stored, computed });
        }
        let layers = body.get(HEADER_LEN..).unwrap_or(&[]);
        let layer_count = u16_at(field::LAYER_COUNT);
        let analysis = analyse(layers, layer_count)?;
        let checks = [
            (
                "input features",
                u32_at(field::INPUT_FEATURES),
                analysis.input.elements(),
            ),
            (
                "code bits",
                u32::from(u16_at(field::CODE_BITS)),
                analysis.code_bits as usize,
            ),
            (
                "scratch bytes",
                u32_at(field::SCRATCH_BYTES),
                analysis.scratch_bytes,
            ),
        ];
        for (name, declared, computed) in checks {
            if declared as usize != computed {
                return Err(BlobError::HeaderMismatch {
                    field: name,
                    declared,
                    computed: computed as u32,
                });
            }
        }
        Ok(Self {
            layers,
            layer_count,
            total_len: bytes.len(),
            checksum: stored,
            analysis,
        })
    }

    /// The layers, in order. They were validated by [`Model::from_bytes`], so the iterator
    /// yields no errors for a model that exists; it still reports them rather than panicking.
    pub fn layers(&self) -> Layers<'a> {
        Layers {
            rest: self.layers,
            index: 0,
            count: self.layer_count,
            // `from_bytes` checked every record of these immutably borrowed bytes.
            checks: Checks::SkipRecords,
        }
    }

    /// Number of layers.
    pub const fn layer_count(&self) -> u16 {
        self.layer_count
    }

    /// Shape of one event (`[channels × length]`).
    pub const fn input_shape(&self) -> Shape {
        self.analysis.input
    }

    /// Samples per event.
    pub const fn input_len(&self) -> usize {
        self.analysis.input.elements()
    }

    /// Code bits per event.
    pub const fn code_bits(&self) -> u32 {
        self.analysis.code_bits
    }

    /// Worst-case scratch bytes the encoder needs for this model.
    pub const fn scratch_bytes(&self) -> usize {
        self.analysis.scratch_bytes
    }

    /// Scratch bytes with which the encoder takes its fast paths on hosts: one
    /// [`Model::scratch_bytes`] slot for each of the [`crate::kernels::LANES`] events that
    /// [`crate::Encoder::encode_batch`] runs side by side, and a table of each weight row's
    /// sum (4 bytes per row of the dense layers and the head) that the x86 kernels would
    /// otherwise form on every call.
    pub const fn batch_scratch_bytes(&self) -> usize {
        let slot = if self.analysis.scratch_bytes == 0 {
            1
        } else {
            self.analysis.scratch_bytes
        };
        crate::kernels::LANES * slot + self.weight_sum_bytes()
    }

    /// Bytes of the weight-sum table in [`Model::batch_scratch_bytes`].
    pub(crate) const fn weight_sum_bytes(&self) -> usize {
        4 * self.analysis.weight_rows
    }

    /// Multiply-accumulates per event.
    pub const fn macs(&self) -> u64 {
        self.analysis.macs
    }

    /// Bytes of parameters (weights, biases, rescales, input normalisation): the flash the
    /// weights take.
    pub const fn parameter_bytes(&self) -> usize {
        self.analysis.parameter_bytes
    }

    /// Bytes of the whole blob (parameters plus headers): the flash the model takes.
    pub const fn blob_len(&self) -> usize {
        self.total_len
    }

    /// The blob's CRC-32C, a cheap fingerprint for logs.
    pub const fn checksum(&self) -> u32 {
        self.checksum
    }
}
