//! The runtime blob: the int8 encoder as one versioned, checksummed byte string that the
//! device reads in place (for example from `include_bytes!`).
//!
//! # Contract (DESIGN.md, contract 3)
//!
//! All integers are little-endian; nothing needs alignment. A blob is a header, a sequence of
//! layer records, and a CRC-32C (Castagnoli) of every byte before it.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"LLEB"` (latentlink encoder blob) |
//! | 4 | 2 | format version u16, currently [`VERSION`] |
//! | 6 | 2 | layer count u16 (1..=[`MAX_LAYERS`]) |
//! | 8 | 4 | total length u32, checksum included |
//! | 12 | 4 | input features u32 (samples per event) |
//! | 16 | 2 | code bits u16 |
//! | 18 | 2 | reserved, 0 |
//! | 20 | 4 | scratch bytes u32: what the encoder needs, recomputed and checked on load |
//! | 24 | 8 | reserved, 0 |
//! | 32 | … | layer records |
//! | total − 4 | 4 | CRC-32C of bytes `0..total − 4` |
//!
//! A layer record is an 8-byte header followed by the layer's body, whose layout is in the
//! docs of the layer's module ([`crate::layers`]):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | kind ([`LayerKind`]) |
//! | 1 | 3 | reserved, 0 |
//! | 4 | 4 | body length u32 |
//!
//! The first layer is the input quantisation, the last the binarising head, and neither
//! appears anywhere else. Each layer's input shape and zero point equal the previous layer's
//! output shape and zero point.
//!
//! # Validation
//!
//! [`Model::from_bytes`] checks, in this order: length, magic, version, reserved bytes,
//! declared length, checksum, every layer record (bounds, dimensions, parameter ranges), the
//! order of layers, the shape and zero-point chain, and the header's input width, code width
//! and scratch size against what the layers imply. Each failure is a [`BlobError`] that says
//! which layer and which field. After that, no kernel can panic or read out of bounds: each
//! layer view re-checks its own body when the encoder walks the layers again (that costs a
//! few comparisons per output channel, nothing next to the multiply-accumulates).

#[cfg(any(test, feature = "std"))]
pub mod write;

use core::fmt;

use crate::layers::{
    BinaryHead, Checks, Conv1d, Dense, Flatten, InputQuant, LayerError, LeakyRelu, PointSet,
    Pool1d, Relu, Shape, pool::PoolKind,
};

/// First four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"LLEB";
/// The format version this runtime reads and writes.
pub const VERSION: u16 = 1;
/// Bytes in the blob header.
pub const HEADER_LEN: usize = 32;
/// Bytes in a layer record header.
pub const RECORD_HEADER_LEN: usize = 8;
/// Bytes of the trailing checksum.
pub const CHECKSUM_LEN: usize = 4;
/// Most layers a blob may hold.
pub const MAX_LAYERS: u16 = 64;

/// Byte offsets of the header fields.
mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: Range<usize> = 4..6;
    pub const LAYER_COUNT: Range<usize> = 6..8;
    pub const TOTAL_LEN: Range<usize> = 8..12;
    pub const INPUT_FEATURES: Range<usize> = 12..16;
    pub const CODE_BITS: Range<usize> = 16..18;
    pub const RESERVED_A: Range<usize> = 18..20;
    pub const SCRATCH_BYTES: Range<usize> = 20..24;
    pub const RESERVED_B: Range<usize> = 24..32;
}

/// The CRC-32C used for blobs and wire frames.
pub(crate) const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The kind byte of a layer record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum LayerKind {
    /// [`InputQuant`].
    Input = 1,
    /// [`Dense`].
    Dense = 2,
    /// [`Conv1d`].
    Conv1d = 3,
    /// [`Pool1d`] taking the maximum.
    MaxPool1d = 4,
    /// [`Pool1d`] taking the mean.
    AvgPool1d = 5,
    /// [`Relu`].
    Relu = 6,
    /// [`LeakyRelu`].
    LeakyRelu = 7,
    /// [`Flatten`].
    Flatten = 8,
    /// [`PointSet`].
    PointSet = 9,
    /// [`BinaryHead`].
    BinaryHead = 10,
}

impl LayerKind {
    /// The kind for a record's kind byte.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Input,
            2 => Self::Dense,
            3 => Self::Conv1d,
            4 => Self::MaxPool1d,
            5 => Self::AvgPool1d,
            6 => Self::Relu,
            7 => Self::LeakyRelu,
            8 => Self::Flatten,
            9 => Self::PointSet,
            10 => Self::BinaryHead,
            _ => return None,
        })
    }

    /// A short lowercase name, as printed in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Dense => "dense",
            Self::Conv1d => "conv1d",
            Self::MaxPool1d => "maxpool1d",
            Self::AvgPool1d => "avgpool1d",
            Self::Relu => "relu",
            Self::LeakyRelu => "leaky_relu",
            Self::Flatten => "flatten",
            Self::PointSet => "point_set",
            Self::BinaryHead => "binary_head",
        }
    }
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a byte string is not a valid blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobError {
    /// Fewer bytes than a header and checksum.
    Truncated {
        /// Bytes needed at least.
        needed: usize,
        /// Bytes given.
        found: usize,
    },
    /// The magic bytes are wrong: this is not a latentlink encoder blob.
    BadMagic {
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// A format version this runtime does not read.
    UnsupportedVersion {
        /// Version in the blob.
        found: u16,
        /// Version this runtime reads.
        supported: u16,
    },
    /// A reserved header byte is not zero.
    ReservedNotZero {
        /// Offset of the byte.
        offset: usize,
    },
    /// The header's total length differs from the bytes given.
    LengthMismatch {
        /// Length in the header.
        declared: u32,
        /// Bytes given.
        actual: usize,
    },
    /// The checksum does not match: the bytes were corrupted.
    ChecksumMismatch {
        /// CRC-32C stored in the blob.
        stored: u32,
        /// CRC-32C of the bytes.
        computed: u32,
    },
    /// The layer count is zero or above [`MAX_LAYERS`].
    LayerCount {
        /// Count in the header.
        count: u16,
    },
    /// A layer record runs past the end of the layer section.
    RecordTruncated {
        /// Layer index.
        index: u16,
    },
    /// A layer record has a kind byte this runtime does not know.
    UnknownLayerKind {
        /// Layer index.
        index: u16,
        /// The kind byte.
        kind: u8,
    },
    /// A layer record's reserved bytes are not zero.
    RecordReservedNotZero {
        /// Layer index.
        index: u16,
    },
    /// A layer's body is invalid.
    Layer {
        /// Layer index.
        index: u16,
        /// Layer kind.
        kind: LayerKind,
        /// What is wrong.
        error: LayerError,
    },
    /// The input layer is not first, the head not last, or one of them appears twice.
    Misplaced {
        /// Layer index.
        index: u16,
        /// Layer kind.
        kind: LayerKind,
    },
    /// A layer's input shape is not the previous layer's output shape.
    ShapeMismatch {
        /// Layer index.
        index: u16,
        /// The previous layer's output shape.
        expected: Shape,
        /// This layer's input shape.
        found: Shape,
    },
    /// A layer's input zero point is not the previous layer's output zero point.
    ZeroPointMismatch {
        /// Layer index.
        index: u16,
        /// The previous layer's output zero point.
        expected: i8,
        /// This layer's input zero point.
        found: i8,
    },
    /// Bytes after the last layer record.
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A header field disagrees with what the layers imply.
    HeaderMismatch {
        /// Which field.
        field: &'static str,
        /// Value in the header.
        declared: u32,
        /// Value the layers imply.
        computed: u32,
    },
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, found } => write!(
                f,
                "blob is truncated: {found} bytes, at least {needed} needed (was the file copied completely?)"
            ),
            Self::BadMagic { found } => write!(
                f,
                "not a latentlink encoder blob: starts with {found:02x?}, expected \"LLEB\" (use the model package's encoder.blob)"
            ),
            Self::UnsupportedVersion { found, supported } => write!(
                f,
                "blob format version {found}, this runtime reads version {supported}: re-export the model with a matching trainer"
            ),
            Self::ReservedNotZero { offset } => {
                write!(f, "reserved header byte at offset {offset} is not zero")
            }
            Self::LengthMismatch { declared, actual } => write!(
                f,
                "blob header says {declared} bytes but {actual} were given (truncated or padded file?)"
            ),
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "blob checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupted, re-export or re-copy it"
            ),
            Self::LayerCount { count } => {
                write!(f, "blob has {count} layers, expected 1..={MAX_LAYERS}")
            }
            Self::RecordTruncated { index } => {
                write!(f, "layer {index}: record runs past the end of the blob")
            }
            Self::UnknownLayerKind { index, kind } => write!(
                f,
                "layer {index}: unknown kind {kind} (blob written by a newer trainer?)"
            ),
            Self::RecordReservedNotZero { index } => {
                write!(f, "layer {index}: reserved record bytes are not zero")
            }
            Self::Layer { index, kind, error } => write!(f, "layer {index} ({kind}): {error}"),
            Self::Misplaced { index, kind } => write!(
                f,
                "layer {index} ({kind}) is misplaced: the input layer must come first and the binary head last, once each"
            ),
            Self::ShapeMismatch {
                index,
                expected,
                found,
            } => write!(
                f,
                "layer {index} takes {found} but the previous layer produces {expected}"
            ),
            Self::ZeroPointMismatch {
                index,
                expected,
                found,
            } => write!(
                f,
                "layer {index} expects input zero point {found} but the previous layer produces {expected}"
            ),
            Self::TrailingBytes { extra } => {
                write!(f, "{extra} unexpected bytes after the last layer")
            }
            Self::HeaderMismatch {
                field,
                declared,
                computed,
            } => write!(
                f,
                "header {field} is {declared} but the layers imply {computed}"
            ),
        }
    }
}

impl core::error::Error for BlobError {}

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
    rest: &'a [u8],
    index: u16,
    count: u16,
    checks: Checks,
}

impl<'a> Layers<'a> {
    /// The bytes after the last record parsed so far.
    fn remainder(&self) -> &'a [u8] {
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
        let computed = CRC32C.checksum(body);
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
    /// [`Model::scratch_bytes`] slot for each of the [`crate::encoder::LANES`] events that
    /// [`crate::Encoder::encode_batch`] runs side by side, and a table of each weight row's
    /// sum (4 bytes per row of the dense layers and the head) that the x86 kernels would
    /// otherwise form on every call.
    pub const fn batch_scratch_bytes(&self) -> usize {
        let slot = if self.analysis.scratch_bytes == 0 {
            1
        } else {
            self.analysis.scratch_bytes
        };
        crate::encoder::LANES * slot + self.weight_sum_bytes()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::write::{LayerSpec, write_blob};
    use crate::layers::ChannelParams;
    use crate::layers::activation::ElementwiseSpec;
    use crate::layers::dense::DenseSpec;
    use crate::layers::head::HeadSpec;
    use crate::layers::input::{FeatureParams, InputSpec};
    use crate::quant::Requant;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn small_network() -> Vec<LayerSpec> {
        let input = InputSpec {
            channels: 1,
            length: 4,
            zero_point: -3,
            features: vec![FeatureParams::new(1.0, 10.0).unwrap(); 4],
        };
        let dense = DenseSpec {
            in_features: 4,
            out_features: 3,
            input_zero_point: -3,
            output_zero_point: 5,
            relu: true,
            weights: vec![1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12],
            channels: vec![
                ChannelParams {
                    bias: 7,
                    requant: Requant::from_real(0.05).unwrap()
                };
                3
            ],
        };
        let head = HeadSpec {
            in_features: 3,
            bits: 10,
            input_zero_point: 5,
            weights: (0..30).map(|i| (i * 7 % 19) as i8 - 9).collect(),
            biases: (0..10).map(|i| i * 3 - 15).collect(),
        };
        vec![
            LayerSpec::Input(input),
            LayerSpec::Dense(dense),
            LayerSpec::BinaryHead(head),
        ]
    }

    /// Rewrites the checksum so a deliberate edit reaches the checks after it.
    fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
        let end = bytes.len() - CHECKSUM_LEN;
        let crc = CRC32C.checksum(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[test]
    fn round_trip_reports_the_model() {
        let blob = write_blob(&small_network()).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        assert_eq!(model.input_len(), 4);
        assert_eq!(model.code_bits(), 10);
        assert_eq!(model.layer_count(), 3);
        assert_eq!(model.scratch_bytes(), 4 + 3);
        assert_eq!(model.macs(), 12 + 30);
        assert_eq!(model.blob_len(), blob.len());
        let kinds: Vec<LayerKind> = model.layers().map(|l| l.unwrap().kind()).collect();
        assert_eq!(
            kinds,
            [LayerKind::Input, LayerKind::Dense, LayerKind::BinaryHead]
        );
        assert_eq!(&blob[..4], b"LLEB");
    }

    #[test]
    fn rejects_truncated_blobs() {
        let blob = write_blob(&small_network()).unwrap();
        assert!(matches!(
            Model::from_bytes(&blob[..10]),
            Err(BlobError::Truncated { .. })
        ));
        assert!(matches!(
            Model::from_bytes(&blob[..blob.len() - 1]),
            Err(BlobError::LengthMismatch { .. })
        ));
        // A truncated blob whose header was patched to match still fails on its layers.
        let mut cut = blob[..blob.len() - 9].to_vec();
        let len = (cut.len() + 4) as u32;
        cut[8..12].copy_from_slice(&len.to_le_bytes());
        cut.extend_from_slice(&[0; 4]);
        assert!(matches!(
            Model::from_bytes(&reseal(cut)),
            Err(BlobError::RecordTruncated { index: 2 })
        ));
    }

    #[test]
    fn rejects_wrong_magic_version_and_checksum() {
        let blob = write_blob(&small_network()).unwrap();
        let mut magic = blob.clone();
        magic[0] = b'X';
        assert!(matches!(
            Model::from_bytes(&magic),
            Err(BlobError::BadMagic { .. })
        ));
        let mut version = blob.clone();
        version[4] = 2;
        assert_eq!(
            Model::from_bytes(&version).err(),
            Some(BlobError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
        let mut flipped = blob.clone();
        flipped[HEADER_LEN + 20] ^= 0x10;
        assert!(matches!(
            Model::from_bytes(&flipped),
            Err(BlobError::ChecksumMismatch { .. })
        ));
        let mut reserved = blob;
        reserved[26] = 1;
        assert_eq!(
            Model::from_bytes(&reseal(reserved)).err(),
            Some(BlobError::ReservedNotZero { offset: 26 })
        );
    }

    #[test]
    fn rejects_inconsistent_shapes_and_zero_points() {
        let mut layers = small_network();
        if let LayerSpec::BinaryHead(head) = &mut layers[2] {
            head.in_features = 2;
            head.weights.truncate(20);
        }
        assert_eq!(
            write_blob(&layers).err(),
            Some(BlobError::ShapeMismatch {
                index: 2,
                expected: Shape::flat(3),
                found: Shape::flat(2)
            })
        );
        let mut layers = small_network();
        if let LayerSpec::Dense(dense) = &mut layers[1] {
            dense.input_zero_point = 0;
        }
        assert_eq!(
            write_blob(&layers).err(),
            Some(BlobError::ZeroPointMismatch {
                index: 1,
                expected: -3,
                found: 0
            })
        );
    }

    #[test]
    fn rejects_misplaced_layers() {
        let mut layers = small_network();
        layers.swap(0, 1);
        assert!(matches!(
            write_blob(&layers),
            Err(BlobError::Misplaced { index: 0, .. })
        ));
        let mut layers = small_network();
        layers.pop();
        assert!(matches!(
            write_blob(&layers),
            Err(BlobError::Misplaced { index: 1, .. })
        ));
        let mut layers = small_network();
        let relu = ElementwiseSpec {
            channels: 1,
            length: 4,
            zero_point: -3,
        };
        layers.insert(0, LayerSpec::Relu(relu));
        assert!(matches!(
            write_blob(&layers),
            Err(BlobError::Misplaced { index: 0, .. })
        ));
    }

    #[test]
    fn rejects_header_that_disagrees_with_layers() {
        let blob = write_blob(&small_network()).unwrap();
        let mut scratch = blob.clone();
        scratch[20] += 1;
        assert_eq!(
            Model::from_bytes(&reseal(scratch)).err(),
            Some(BlobError::HeaderMismatch {
                field: "scratch bytes",
                declared: 8,
                computed: 7
            })
        );
        let mut bits = blob.clone();
        bits[16] = 11;
        assert!(matches!(
            Model::from_bytes(&reseal(bits)),
            Err(BlobError::HeaderMismatch {
                field: "code bits",
                ..
            })
        ));
        let mut count = blob.clone();
        count[6] = 0;
        assert_eq!(
            Model::from_bytes(&reseal(count)).err(),
            Some(BlobError::LayerCount { count: 0 })
        );
        let mut kind = blob;
        kind[HEADER_LEN] = 99;
        assert_eq!(
            Model::from_bytes(&reseal(kind)).err(),
            Some(BlobError::UnknownLayerKind { index: 0, kind: 99 })
        );
    }

    #[test]
    fn rejects_bad_layer_parameters_with_their_location() {
        let mut layers = small_network();
        if let LayerSpec::Dense(dense) = &mut layers[1] {
            dense.channels[2].bias = (1 << 30) + 1;
        }
        let error = write_blob(&layers).err().unwrap();
        assert_eq!(
            error,
            BlobError::Layer {
                index: 1,
                kind: LayerKind::Dense,
                error: LayerError::InvalidChannel { channel: 2 }
            }
        );
        let message = std::format!("{error}");
        assert!(
            message.contains("layer 1 (dense)") && message.contains("channel 2"),
            "{message}"
        );
    }

    #[test]
    fn error_messages_name_the_fix() {
        let blob = write_blob(&small_network()).unwrap();
        let message = std::format!(
            "{}",
            Model::from_bytes(&blob[..blob.len() - 1]).unwrap_err()
        );
        assert!(message.contains("truncated or padded"), "{message}");
        let mut flipped = blob;
        flipped[40] ^= 1;
        let message = std::format!("{}", Model::from_bytes(&flipped).unwrap_err());
        assert!(message.contains("corrupted"), "{message}");
    }

    proptest! {
        #[test]
        fn every_byte_flip_is_rejected(position in 0usize..1000, mask in 1u8..=255) {
            let mut blob = write_blob(&small_network()).unwrap();
            let position = position % blob.len();
            blob[position] ^= mask;
            prop_assert!(Model::from_bytes(&blob).is_err());
        }

        #[test]
        fn resealed_garbage_never_panics(position in 0usize..1000, value in any::<u8>()) {
            let mut blob = write_blob(&small_network()).unwrap();
            let n = blob.len();
            blob[position % (n - CHECKSUM_LEN)] = value;
            let blob = reseal(blob);
            if let Ok(model) = Model::from_bytes(&blob) {
                let mut scratch = vec![0i8; model.scratch_bytes()];
                let mut encoder = crate::Encoder::with_slice(model, &mut scratch).unwrap();
                let event = vec![0.5f32; model.input_len()];
                let _ = encoder.encode::<f32, 16>(&event);
            }
        }
    }
}
