//! Why a byte string is not a valid blob.

use core::fmt;

use super::format::MAX_LAYERS;
use super::kind::LayerKind;
use crate::layers::{LayerError, Shape};

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
