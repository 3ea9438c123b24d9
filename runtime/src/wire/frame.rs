//! The frame: a zero-copy checked view ([`Frame`]) and the validated header ([`FrameRepr`]),
//! in the manner of smoltcp. Layout in the [module docs](super).
//!
//! After [`Frame::new_checked`] succeeds (length, checksum, version, layout), every accessor
//! reads within the buffer; none panics. [`FrameRepr::parse`] then reads the header without
//! computing the checksum again: the receive path hashes each frame once.

use core::fmt;

use crate::checksum::{self, crc32c};

/// The frame format version this runtime reads and writes.
pub const VERSION: u8 = 1;
/// Bytes before the codes.
pub const HEADER_LEN: usize = 26;
/// Bytes of the trailing CRC-32C.
pub const CRC_LEN: usize = checksum::CHECKSUM_LEN;
/// Largest raw frame: one unfragmented UDP datagram on Ethernet (1500 − 20 − 8).
pub const MAX_FRAME_LEN: usize = 1472;
/// Largest frame on a byte stream: worst-case COBS encoding plus the delimiter.
pub const MAX_ENCODED_LEN: usize = cobs::max_encoding_length(MAX_FRAME_LEN) + 1;

mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const CODE_BYTES: usize = 1;
    pub const CODE_COUNT: Range<usize> = 2..4;
    pub const MODEL_ID: Range<usize> = 4..12;
    pub const STREAM_ID: Range<usize> = 12..14;
    pub const SEQUENCE: Range<usize> = 14..18;
    pub const FIRST_EVENT: Range<usize> = 18..26;
}

/// Bytes a frame of `code_count` codes of `code_bytes` takes on a byte stream, at most
/// (worst-case COBS overhead plus the delimiter).
pub const fn stream_len(code_count: usize, code_bytes: usize) -> usize {
    cobs::max_encoding_length(HEADER_LEN + code_count * code_bytes + CRC_LEN) + 1
}

/// Why bytes are not a valid frame, or a frame could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than a header and checksum.
    Truncated {
        /// Bytes given.
        len: usize,
    },
    /// Longer than [`MAX_FRAME_LEN`].
    Oversize {
        /// Bytes given.
        len: usize,
    },
    /// The checksum does not match: the frame was corrupted.
    Checksum {
        /// CRC-32C in the frame.
        stored: u32,
        /// CRC-32C of the bytes.
        computed: u32,
    },
    /// A version this runtime does not read.
    UnsupportedVersion {
        /// Version byte found.
        found: u8,
    },
    /// The code width or count is zero, or they do not match the frame length.
    Malformed {
        /// Frame length the header implies (0 if width or count is zero).
        expected: usize,
        /// Bytes given.
        len: usize,
    },
    /// The output buffer is too small to write the frame.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { len } => write!(
                f,
                "frame of {len} bytes is shorter than a header and checksum ({} bytes)",
                HEADER_LEN + CRC_LEN
            ),
            Self::Oversize { len } => {
                write!(
                    f,
                    "frame of {len} bytes exceeds the maximum of {MAX_FRAME_LEN}"
                )
            }
            Self::Checksum { stored, computed } => write!(
                f,
                "frame CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::UnsupportedVersion { found } => {
                write!(
                    f,
                    "frame version {found}, this runtime reads version {VERSION}"
                )
            }
            Self::Malformed { expected, len } => write!(
                f,
                "frame header implies {expected} bytes but the frame has {len}"
            ),
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "buffer of {available} bytes cannot hold a frame of {needed} bytes"
            ),
        }
    }
}

impl core::error::Error for FrameError {}

/// A zero-copy view of a raw (not COBS-encoded) frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it; accessors may then return wrong values (never
    /// panic). Use for writing.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after checking, in order: length bounds, checksum, version, and that the
    /// code width and count match the length.
    ///
    /// # Errors
    /// The first [`FrameError`] found.
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let frame = Self::new_unchecked(buffer);
        frame.check()?;
        Ok(frame)
    }

    fn check(&self) -> Result<(), FrameError> {
        self.check_len()?;
        let computed = self.compute_checksum();
        let stored = self.checksum();
        if stored != computed {
            return Err(FrameError::Checksum { stored, computed });
        }
        self.check_fields()
    }

    fn check_len(&self) -> Result<(), FrameError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN + CRC_LEN {
            return Err(FrameError::Truncated { len });
        }
        if len > MAX_FRAME_LEN {
            return Err(FrameError::Oversize { len });
        }
        Ok(())
    }

    /// Version, and the code width and count against the length: everything but the
    /// checksum, so that [`FrameRepr::parse`] can re-check a frame without hashing it again.
    fn check_fields(&self) -> Result<(), FrameError> {
        self.check_len()?;
        let len = self.buffer.as_ref().len();
        if self.version() != VERSION {
            return Err(FrameError::UnsupportedVersion {
                found: self.version(),
            });
        }
        let codes_len = usize::from(self.code_count()) * usize::from(self.code_bytes());
        let expected = if codes_len == 0 {
            0
        } else {
            HEADER_LEN + codes_len + CRC_LEN
        };
        if expected != len {
            return Err(FrameError::Malformed { expected, len });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes_at<const N: usize>(&self, range: core::ops::Range<usize>) -> [u8; N] {
        self.buffer
            .as_ref()
            .get(range)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; N])
    }

    /// Format version.
    pub fn version(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(field::VERSION)
            .copied()
            .unwrap_or(0)
    }

    /// Bytes per code.
    pub fn code_bytes(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(field::CODE_BYTES)
            .copied()
            .unwrap_or(0)
    }

    /// Codes in the frame.
    pub fn code_count(&self) -> u16 {
        u16::from_le_bytes(self.bytes_at(field::CODE_COUNT))
    }

    /// Model id.
    pub fn model_id(&self) -> u64 {
        u64::from_le_bytes(self.bytes_at(field::MODEL_ID))
    }

    /// Stream id.
    pub fn stream_id(&self) -> u16 {
        u16::from_le_bytes(self.bytes_at(field::STREAM_ID))
    }

    /// Sequence number.
    pub fn sequence(&self) -> u32 {
        u32::from_le_bytes(self.bytes_at(field::SEQUENCE))
    }

    /// Event id of the first code.
    pub fn first_event(&self) -> u64 {
        u64::from_le_bytes(self.bytes_at(field::FIRST_EVENT))
    }

    /// The stored CRC-32C.
    pub fn checksum(&self) -> u32 {
        let len = self.buffer.as_ref().len();
        u32::from_le_bytes(self.bytes_at(len.saturating_sub(CRC_LEN)..len))
    }

    /// CRC-32C of everything before the checksum field.
    pub fn compute_checksum(&self) -> u32 {
        let bytes = self.buffer.as_ref();
        crc32c(
            bytes
                .get(..bytes.len().saturating_sub(CRC_LEN))
                .unwrap_or(&[]),
        )
    }

    /// All code bytes, back to back.
    pub fn codes(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        bytes
            .get(HEADER_LEN..bytes.len().saturating_sub(CRC_LEN))
            .unwrap_or(&[])
    }

    /// The codes one by one, `code_bytes` each.
    pub fn iter_codes(&self) -> impl Iterator<Item = &[u8]> {
        self.codes()
            .chunks_exact(usize::from(self.code_bytes()).max(1))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    fn set_bytes(&mut self, range: core::ops::Range<usize>, value: &[u8]) {
        if let Some(dst) = self.buffer.as_mut().get_mut(range) {
            dst.copy_from_slice(value);
        }
    }

    /// The code bytes, for writing.
    pub fn codes_mut(&mut self) -> &mut [u8] {
        let bytes = self.buffer.as_mut();
        let end = bytes.len().saturating_sub(CRC_LEN);
        bytes.get_mut(HEADER_LEN..end).unwrap_or(&mut [])
    }

    /// Computes and stores the checksum; call after writing header and codes.
    pub fn fill_checksum(&mut self) {
        let checksum = self.compute_checksum();
        let len = self.buffer.as_ref().len();
        self.set_bytes(len.saturating_sub(CRC_LEN)..len, &checksum.to_le_bytes());
    }
}

/// A frame header as values, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameRepr {
    /// Model id.
    pub model_id: u64,
    /// Stream id.
    pub stream_id: u16,
    /// Sequence number.
    pub sequence: u32,
    /// Event id of the first code.
    pub first_event: u64,
    /// Bytes per code (≥ 1).
    pub code_bytes: u8,
    /// Codes in the frame (≥ 1).
    pub code_count: u16,
}

impl FrameRepr {
    /// Reads the header of a checked frame.
    ///
    /// # Errors
    /// The length, version and layout errors of [`Frame::new_checked`], re-checked here so that
    /// a frame built with `new_unchecked` cannot be misread. The checksum is checked once per
    /// frame, by `new_checked`, not again here.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Self, FrameError> {
        frame.check_fields()?;
        Ok(Self {
            model_id: frame.model_id(),
            stream_id: frame.stream_id(),
            sequence: frame.sequence(),
            first_event: frame.first_event(),
            code_bytes: frame.code_bytes(),
            code_count: frame.code_count(),
        })
    }

    /// Length of the raw frame this header describes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.code_count as usize * self.code_bytes as usize + CRC_LEN
    }

    /// Writes the header into a frame whose buffer is exactly [`FrameRepr::buffer_len`] bytes;
    /// then write the codes with [`Frame::codes_mut`] and call [`Frame::fill_checksum`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_bytes(field::VERSION..field::VERSION + 1, &[VERSION]);
        frame.set_bytes(field::CODE_BYTES..field::CODE_BYTES + 1, &[self.code_bytes]);
        frame.set_bytes(field::CODE_COUNT, &self.code_count.to_le_bytes());
        frame.set_bytes(field::MODEL_ID, &self.model_id.to_le_bytes());
        frame.set_bytes(field::STREAM_ID, &self.stream_id.to_le_bytes());
        frame.set_bytes(field::SEQUENCE, &self.sequence.to_le_bytes());
        frame.set_bytes(field::FIRST_EVENT, &self.first_event.to_le_bytes());
    }

    /// Writes a complete raw frame (header, `codes`, checksum) to the front of `buf` and
    /// returns its length. This is the datagram form.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] if `codes` is not `code_count · code_bytes` bytes or either is
    /// zero, [`FrameError::Oversize`] past [`MAX_FRAME_LEN`], [`FrameError::BufferTooSmall`].
    pub fn emit_with_codes(&self, codes: &[u8], buf: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.buffer_len();
        let expected_codes = usize::from(self.code_count) * usize::from(self.code_bytes);
        if expected_codes == 0 || codes.len() != expected_codes {
            return Err(FrameError::Malformed {
                expected: len,
                len: HEADER_LEN + codes.len() + CRC_LEN,
            });
        }
        if len > MAX_FRAME_LEN {
            return Err(FrameError::Oversize { len });
        }
        let available = buf.len();
        let out = buf.get_mut(..len).ok_or(FrameError::BufferTooSmall {
            needed: len,
            available,
        })?;
        let mut frame = Frame::new_unchecked(out);
        self.emit(&mut frame);
        frame.codes_mut().copy_from_slice(codes);
        frame.fill_checksum();
        Ok(len)
    }
}

/// Writes a frame in its byte-stream form (COBS-encoded, then one `0x00`) to the front of
/// `out` and returns the bytes written.
///
/// # Errors
/// As [`FrameRepr::emit_with_codes`]; [`FrameError::BufferTooSmall`] if `out` is shorter
/// than the encoding ([`stream_len`] is always enough).
pub fn encode_frame(repr: &FrameRepr, codes: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    let mut raw = [0u8; MAX_FRAME_LEN];
    let len = repr.emit_with_codes(codes, &mut raw)?;
    let needed = cobs::max_encoding_length(len) + 1;
    let available = out.len();
    let too_small = FrameError::BufferTooSmall { needed, available };
    let encoded = cobs::try_encode(raw.get(..len).unwrap_or(&[]), out).map_err(|_| too_small)?;
    *out.get_mut(encoded).ok_or(too_small)? = 0;
    Ok(encoded + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn repr(code_count: u16) -> FrameRepr {
        FrameRepr {
            model_id: 0x0123_4567_89ab_cdef,
            stream_id: 7,
            sequence: u32::MAX,
            first_event: 1 << 40,
            code_bytes: 16,
            code_count,
        }
    }

    #[test]
    fn known_answer_bytes() {
        // Pinned bytes, CRC-32C and COBS computed independently of this crate: a change of
        // field order, byte order, checksum coverage or stuffing fails here.
        let repr = FrameRepr {
            model_id: 0x0102_0304_0506_0708,
            stream_id: 0x0a0b,
            sequence: 0x1122_3344,
            first_event: 0x0000_0100_0000_0005,
            code_bytes: 2,
            code_count: 2,
        };
        let codes = [0xde, 0xad, 0xbe, 0xef];
        let mut raw = [0u8; 34];
        assert_eq!(repr.emit_with_codes(&codes, &mut raw), Ok(34));
        assert_eq!(
            raw,
            [
                0x01, 0x02, 0x02, 0x00, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x0b, 0x0a,
                0x44, 0x33, 0x22, 0x11, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0xde, 0xad,
                0xbe, 0xef, 0xa7, 0x88, 0x14, 0xd5,
            ]
        );
        let mut encoded = [0u8; 64];
        let n = encode_frame(&repr, &codes, &mut encoded).unwrap();
        assert_eq!(
            encoded[..n],
            [
                0x04, 0x01, 0x02, 0x02, 0x10, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x0b,
                0x0a, 0x44, 0x33, 0x22, 0x11, 0x05, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01, 0x09, 0xde,
                0xad, 0xbe, 0xef, 0xa7, 0x88, 0x14, 0xd5, 0x00,
            ]
        );
        assert_eq!(
            FrameRepr::parse(&Frame::new_checked(&raw[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn round_trip_and_layout() {
        let codes: Vec<u8> = (0..32).collect();
        let mut buf = [0u8; 128];
        let len = repr(2).emit_with_codes(&codes, &mut buf).unwrap();
        assert_eq!(len, 26 + 32 + 4);
        assert_eq!(buf[0], VERSION);
        assert_eq!(buf[1], 16);
        assert_eq!(&buf[2..4], &[2, 0]);
        assert_eq!(&buf[4..12], &0x0123_4567_89ab_cdefu64.to_le_bytes());
        let frame = Frame::new_checked(&buf[..len]).unwrap();
        assert_eq!(FrameRepr::parse(&frame), Ok(repr(2)));
        assert_eq!(frame.codes(), &codes[..]);
        assert_eq!(frame.iter_codes().nth(1), Some(&codes[16..]));
    }

    #[test]
    fn payload_efficiency_table_in_docs_is_right() {
        let table = [
            (1, 46, 48, 33.3, 34.8),
            (16, 286, 289, 88.6, 89.5),
            (64, 1054, 1060, 96.6, 97.2),
        ];
        for (count, raw, stream, stream_eff, datagram_eff) in table {
            let raw_len = repr(count).buffer_len();
            let stream_bytes = stream_len(usize::from(count), 16);
            let payload = f64::from(count) * 16.0;
            assert_eq!((raw_len, stream_bytes), (raw, stream));
            assert!((100.0 * payload / stream_bytes as f64 - stream_eff).abs() < 0.05);
            assert!((100.0 * payload / raw_len as f64 - datagram_eff).abs() < 0.05);
        }
        assert_eq!((MAX_FRAME_LEN - HEADER_LEN - CRC_LEN) / 16, 90);
    }

    #[test]
    fn errors_are_classified() {
        let codes = [0xaau8; 16];
        let mut buf = [0u8; 64];
        let len = repr(1).emit_with_codes(&codes, &mut buf).unwrap();
        let good = &buf[..len];
        assert_eq!(
            Frame::new_checked(&good[..10]).err(),
            Some(FrameError::Truncated { len: 10 })
        );
        let mut flipped = good.to_vec();
        flipped[30] ^= 1;
        assert!(matches!(
            Frame::new_checked(&flipped[..]),
            Err(FrameError::Checksum { .. })
        ));
        let mut version = good.to_vec();
        version[0] = 9;
        Frame::new_unchecked(&mut version[..]).fill_checksum();
        assert_eq!(
            Frame::new_checked(&version[..]).err(),
            Some(FrameError::UnsupportedVersion { found: 9 })
        );
        let mut count = good.to_vec();
        count[2] = 2;
        Frame::new_unchecked(&mut count[..]).fill_checksum();
        assert!(matches!(
            Frame::new_checked(&count[..]),
            Err(FrameError::Malformed { .. })
        ));
        assert!(matches!(
            repr(1).emit_with_codes(&codes[..8], &mut buf),
            Err(FrameError::Malformed { .. })
        ));
        assert!(matches!(
            repr(1).emit_with_codes(&codes, &mut buf[..20]),
            Err(FrameError::BufferTooSmall { .. })
        ));
        let big = vec![0u8; 100 * 16];
        assert!(matches!(
            repr(100).emit_with_codes(&big, &mut [0u8; 2048]),
            Err(FrameError::Oversize { .. })
        ));
        assert!(matches!(
            Frame::new_checked(&[0u8; MAX_FRAME_LEN + 1][..]),
            Err(FrameError::Oversize { .. })
        ));
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(
            model_id in any::<u64>(), stream_id in any::<u16>(), sequence in any::<u32>(),
            first_event in any::<u64>(), code_bytes in 1u8..=32, code_count in 1u16..=40,
            seed in any::<u8>(),
        ) {
            let repr = FrameRepr { model_id, stream_id, sequence, first_event, code_bytes, code_count };
            let codes: Vec<u8> = (0..repr.buffer_len() - HEADER_LEN - CRC_LEN)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                .collect();
            let mut raw = [0u8; MAX_FRAME_LEN];
            let len = repr.emit_with_codes(&codes, &mut raw).unwrap();
            let frame = Frame::new_checked(&raw[..len]).unwrap();
            prop_assert_eq!(FrameRepr::parse(&frame).unwrap(), repr);
            prop_assert_eq!(frame.codes(), &codes[..]);

            let mut stream = [0u8; MAX_ENCODED_LEN];
            let n = encode_frame(&repr, &codes, &mut stream).unwrap();
            prop_assert!(n <= stream_len(usize::from(code_count), usize::from(code_bytes)));
            prop_assert_eq!(stream[n - 1], 0);
            prop_assert!(!stream[..n - 1].contains(&0));
        }

        #[test]
        fn any_single_bit_flip_is_rejected(byte in 0usize..62, bit in 0u8..8) {
            let mut raw = [0u8; 64];
            let len = repr(2).emit_with_codes(&[0x5a; 32], &mut raw).unwrap();
            raw[byte % len] ^= 1 << bit;
            prop_assert!(Frame::new_checked(&raw[..len]).is_err());
        }
    }
}
