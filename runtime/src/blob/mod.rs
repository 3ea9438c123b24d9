//! The runtime blob: the int8 encoder as one versioned, checksummed byte string that the
//! device reads in place (for example from `include_bytes!`).
//!
//! # Contract (docs/ARCHITECTURE.md, contract 3)
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

//! # Files
//!
//! | file | what |
//! |---|---|
//! | `format.rs` | header constants and field offsets |
//! | `kind.rs` | [`LayerKind`], the record kind byte |
//! | `error.rs` | [`BlobError`] |
//! | `layer.rs` | [`Layer`] views of records and the [`Layers`] iterator |
//! | `model.rs` | [`Model`]: validation and what the layers imply |
//! | `write.rs` | the blob writer (`std` only) |

mod error;
mod format;
mod kind;
mod layer;
mod model;
#[cfg(any(test, feature = "std"))]
pub mod write;

pub use error::BlobError;
pub use format::{CHECKSUM_LEN, HEADER_LEN, MAGIC, MAX_LAYERS, RECORD_HEADER_LEN, VERSION};
pub use kind::LayerKind;
pub use layer::{Layer, Layers};
pub use model::Model;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::write::{LayerSpec, write_blob};
    use crate::layers::activation::ElementwiseSpec;
    use crate::layers::dense::DenseSpec;
    use crate::layers::head::HeadSpec;
    use crate::layers::input::{FeatureParams, InputSpec};
    use crate::layers::{ChannelParams, LayerError, Shape};
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
        let crc = crate::checksum::crc32c(&bytes[..end]);
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
