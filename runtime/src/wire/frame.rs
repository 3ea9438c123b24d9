//! The frame: a zero-copy checked view ([`Frame`]) and the validated header ([`FrameRepr`]),
//! in the manner of smoltcp. Layout in the [module docs](super).
//!
//! After [`Frame::new_checked`] succeeds (length, checksum, version, layout), every accessor
//! reads within the buffer; none panics. [`FrameRepr::parse`] then reads the header without
//! computing the checksum again: the receive path hashes each frame once.
//! [`Frame::check_authentication`] then holds the frame against the listener's key.

use core::fmt;

use super::auth::{FrameKey, TAG_LEN};
use crate::checksum::{self, crc32c};

/// The frame format version this runtime reads and writes.
pub const VERSION: u8 = 2;
/// Bytes before the codes.
pub const HEADER_LEN: usize = 31;
/// The authentication byte of a frame without a tag.
pub const AUTH_NONE: u8 = 0;
/// The authentication byte of a frame with a SipHash-2-4 tag ([`crate::wire::auth`]).
pub const AUTH_SIPHASH24: u8 = 1;
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
    pub const BOOT: Range<usize> = 26..30;
    pub const AUTHENTICATION: usize = 30;
}

/// Bytes a frame of `code_count` codes of `code_bytes` takes on a byte stream, at most
/// (worst-case COBS overhead plus the delimiter), with or without a tag.
pub const fn stream_len(code_count: usize, code_bytes: usize, authenticated: bool) -> usize {
    cobs::max_encoding_length(raw_len(code_count, code_bytes, authenticated)) + 1
}

/// Bytes of a raw frame of `code_count` codes of `code_bytes`.
pub const fn raw_len(code_count: usize, code_bytes: usize, authenticated: bool) -> usize {
    HEADER_LEN + code_count * code_bytes + if authenticated { TAG_LEN } else { 0 } + CRC_LEN
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
    /// An authentication byte this runtime does not know.
    UnsupportedAuthentication {
        /// The byte found.
        found: u8,
    },
    /// The listener has a key and the frame carries no tag.
    Unauthenticated,
    /// The frame's tag is not the key's tag of its bytes: forged, or sealed with another key.
    Forged,
    /// The frame carries a tag and the listener has no key to check it with.
    Unverifiable,
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
            Self::UnsupportedAuthentication { found } => write!(
                f,
                "frame authentication {found} is unknown (0: none, 1: SipHash-2-4)"
            ),
            Self::Unauthenticated => f.write_str("frame has no authentication tag"),
            Self::Forged => f.write_str(
                "frame authentication tag does not match: forged, or sealed with another key",
            ),
            Self::Unverifiable => {
                f.write_str("frame carries an authentication tag and no key was given to check it")
            }
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

    /// Wraps a buffer after checking, in order: length bounds, checksum, version, the
    /// authentication byte, and that the code width and count match the length. The tag is
    /// checked apart, by [`Frame::check_authentication`].
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
        let authenticated = match self.authentication() {
            AUTH_NONE => false,
            AUTH_SIPHASH24 => true,
            found => return Err(FrameError::UnsupportedAuthentication { found }),
        };
        let codes_len = usize::from(self.code_count()) * usize::from(self.code_bytes());
        let expected = if codes_len == 0 {
            0
        } else {
            raw_len(
                usize::from(self.code_count()),
                usize::from(self.code_bytes()),
                authenticated,
            )
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

    /// Boot nonce of the front-end's run: a new value when it starts again (0: it has none).
    pub fn boot(&self) -> u32 {
        u32::from_le_bytes(self.bytes_at(field::BOOT))
    }

    /// The authentication byte: [`AUTH_NONE`] or [`AUTH_SIPHASH24`] in a checked frame.
    pub fn authentication(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(field::AUTHENTICATION)
            .copied()
            .unwrap_or(0)
    }

    /// Whether the frame carries a tag.
    pub fn is_authenticated(&self) -> bool {
        self.authentication() == AUTH_SIPHASH24
    }

    fn tag_len(&self) -> usize {
        if self.is_authenticated() { TAG_LEN } else { 0 }
    }

    /// Holds the frame against the listener's key: with a key, the frame must carry that
    /// key's tag of its bytes; without one, it must carry no tag (a tag nobody checks would
    /// pass forged frames as if they were checked).
    ///
    /// # Errors
    /// [`FrameError::Unauthenticated`], [`FrameError::Forged`] or
    /// [`FrameError::Unverifiable`].
    pub fn check_authentication(&self, key: Option<&FrameKey>) -> Result<(), FrameError> {
        let bytes = self.buffer.as_ref();
        let tag_end = bytes.len().saturating_sub(CRC_LEN);
        let tag_start = tag_end.saturating_sub(TAG_LEN);
        match (key, self.is_authenticated()) {
            (None, false) => Ok(()),
            (None, true) => Err(FrameError::Unverifiable),
            (Some(_), false) => Err(FrameError::Unauthenticated),
            (Some(key), true) => {
                let tag = self.bytes_at(tag_start..tag_end);
                if key.verify(bytes.get(..tag_start).unwrap_or(&[]), tag) {
                    Ok(())
                } else {
                    Err(FrameError::Forged)
                }
            }
        }
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
        let end = bytes.len().saturating_sub(CRC_LEN + self.tag_len());
        bytes.get(HEADER_LEN..end).unwrap_or(&[])
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

    /// The code bytes, for writing (after the header, which says whether a tag follows).
    pub fn codes_mut(&mut self) -> &mut [u8] {
        let end = self
            .buffer
            .as_ref()
            .len()
            .saturating_sub(CRC_LEN + self.tag_len());
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or(&mut [])
    }

    /// Computes and stores the tag of an authenticated frame; call after writing header and
    /// codes, before [`Frame::fill_checksum`]. Does nothing to a frame without a tag.
    pub fn fill_tag(&mut self, key: &FrameKey) {
        if !self.is_authenticated() {
            return;
        }
        let tag_end = self.buffer.as_ref().len().saturating_sub(CRC_LEN);
        let tag_start = tag_end.saturating_sub(TAG_LEN);
        let tag = key.tag(self.buffer.as_ref().get(..tag_start).unwrap_or(&[]));
        self.set_bytes(tag_start..tag_end, &tag);
    }

    /// Computes and stores the checksum; call after writing header, codes and tag.
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
    /// Boot nonce of the sender's run (0: the sender has none; see [`Frame::boot`]).
    pub boot: u32,
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
            boot: frame.boot(),
        })
    }

    /// Length of the raw frame this header describes, with or without a tag.
    pub const fn buffer_len(&self, authenticated: bool) -> usize {
        raw_len(
            self.code_count as usize,
            self.code_bytes as usize,
            authenticated,
        )
    }

    /// Writes the header into a frame whose buffer is exactly [`FrameRepr::buffer_len`] bytes;
    /// then write the codes with [`Frame::codes_mut`], and call [`Frame::fill_tag`] (when
    /// authenticated) and [`Frame::fill_checksum`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>, authenticated: bool) {
        frame.set_bytes(field::VERSION..field::VERSION + 1, &[VERSION]);
        frame.set_bytes(field::CODE_BYTES..field::CODE_BYTES + 1, &[self.code_bytes]);
        frame.set_bytes(field::CODE_COUNT, &self.code_count.to_le_bytes());
        frame.set_bytes(field::MODEL_ID, &self.model_id.to_le_bytes());
        frame.set_bytes(field::STREAM_ID, &self.stream_id.to_le_bytes());
        frame.set_bytes(field::SEQUENCE, &self.sequence.to_le_bytes());
        frame.set_bytes(field::FIRST_EVENT, &self.first_event.to_le_bytes());
        frame.set_bytes(field::BOOT, &self.boot.to_le_bytes());
        let authentication = if authenticated {
            AUTH_SIPHASH24
        } else {
            AUTH_NONE
        };
        frame.set_bytes(
            field::AUTHENTICATION..field::AUTHENTICATION + 1,
            &[authentication],
        );
    }

    /// Writes a complete raw frame (header, `codes`, the tag under `key` if one is given,
    /// checksum) to the front of `buf` and returns its length. This is the datagram form.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] if `codes` is not `code_count · code_bytes` bytes or either is
    /// zero, [`FrameError::Oversize`] past [`MAX_FRAME_LEN`], [`FrameError::BufferTooSmall`].
    pub fn emit_with_codes(
        &self,
        codes: &[u8],
        key: Option<&FrameKey>,
        buf: &mut [u8],
    ) -> Result<usize, FrameError> {
        let len = self.buffer_len(key.is_some());
        let expected_codes = usize::from(self.code_count) * usize::from(self.code_bytes);
        if expected_codes == 0 || codes.len() != expected_codes {
            return Err(FrameError::Malformed {
                expected: len,
                len: len + codes.len() - expected_codes,
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
        self.emit(&mut frame, key.is_some());
        frame.codes_mut().copy_from_slice(codes);
        if let Some(key) = key {
            frame.fill_tag(key);
        }
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
pub fn encode_frame(
    repr: &FrameRepr,
    codes: &[u8],
    key: Option<&FrameKey>,
    out: &mut [u8],
) -> Result<usize, FrameError> {
    let mut raw = [0u8; MAX_FRAME_LEN];
    let len = repr.emit_with_codes(codes, key, &mut raw)?;
    encode_raw(raw.get(..len).unwrap_or(&[]), out)
}

/// Writes a raw frame, full or compact, in its byte-stream form (COBS, then one `0x00`).
pub(super) fn encode_raw(raw: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    let needed = cobs::max_encoding_length(raw.len()) + 1;
    let available = out.len();
    let too_small = FrameError::BufferTooSmall { needed, available };
    let encoded = cobs::try_encode(raw, out).map_err(|_| too_small)?;
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
            boot: 0x5eed_0001,
        }
    }

    fn test_key() -> FrameKey {
        FrameKey::from_bytes(&core::array::from_fn(|i| i as u8))
    }

    #[test]
    fn known_answer_bytes() {
        // Pinned bytes; CRC-32C, SipHash-2-4 and COBS computed by an independent reference
        // written from their specifications: a change of field order, byte order, checksum
        // or tag coverage, or stuffing fails here.
        let repr = FrameRepr {
            model_id: 0x0102_0304_0506_0708,
            stream_id: 0x0a0b,
            sequence: 0x1122_3344,
            first_event: 0x0000_0100_0000_0005,
            code_bytes: 2,
            code_count: 2,
            boot: 0xcafe_0001,
        };
        let codes = [0xde, 0xad, 0xbe, 0xef];
        let header = [
            0x02, 0x02, 0x02, 0x00, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x0b, 0x0a,
            0x44, 0x33, 0x22, 0x11, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00,
            0xfe, 0xca,
        ];
        let plain_tail = [0x00, 0xde, 0xad, 0xbe, 0xef, 0x08, 0x0f, 0x70, 0xa3];
        let sealed_tail = [
            0x01, 0xde, 0xad, 0xbe, 0xef, 0xfa, 0xd5, 0x99, 0x84, 0xb7, 0xcd, 0x22, 0xa2, 0x51,
            0x19, 0x9f, 0x8e,
        ];
        let key = test_key();
        for (key, tail) in [(None, &plain_tail[..]), (Some(&key), &sealed_tail[..])] {
            let mut raw = [0u8; 64];
            let len = repr.emit_with_codes(&codes, key, &mut raw).unwrap();
            assert_eq!(raw[..30], header);
            assert_eq!(&raw[30..len], tail);
            let frame = Frame::new_checked(&raw[..len]).unwrap();
            assert_eq!(FrameRepr::parse(&frame), Ok(repr));
            assert_eq!(frame.check_authentication(key), Ok(()));
        }
        let mut encoded = [0u8; 64];
        let n = encode_frame(&repr, &codes, Some(&key), &mut encoded).unwrap();
        assert_eq!(
            encoded[..n],
            [
                0x04, 0x02, 0x02, 0x02, 0x10, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x0b,
                0x0a, 0x44, 0x33, 0x22, 0x11, 0x05, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x01,
                0x14, 0xfe, 0xca, 0x01, 0xde, 0xad, 0xbe, 0xef, 0xfa, 0xd5, 0x99, 0x84, 0xb7, 0xcd,
                0x22, 0xa2, 0x51, 0x19, 0x9f, 0x8e, 0x00,
            ]
        );
    }

    #[test]
    fn round_trip_and_layout() {
        let codes: Vec<u8> = (0..32).collect();
        let mut buf = [0u8; 128];
        let len = repr(2).emit_with_codes(&codes, None, &mut buf).unwrap();
        assert_eq!(len, 31 + 32 + 4);
        assert_eq!(buf[0], VERSION);
        assert_eq!(buf[1], 16);
        assert_eq!(&buf[2..4], &[2, 0]);
        assert_eq!(&buf[4..12], &0x0123_4567_89ab_cdefu64.to_le_bytes());
        assert_eq!(&buf[26..30], &0x5eed_0001u32.to_le_bytes());
        let frame = Frame::new_checked(&buf[..len]).unwrap();
        assert_eq!(FrameRepr::parse(&frame), Ok(repr(2)));
        assert_eq!(frame.codes(), &codes[..]);
        assert_eq!(frame.iter_codes().nth(1), Some(&codes[16..]));

        let len = repr(2)
            .emit_with_codes(&codes, Some(&test_key()), &mut buf)
            .unwrap();
        assert_eq!(len, 31 + 32 + 8 + 4);
        let frame = Frame::new_checked(&buf[..len]).unwrap();
        assert!(frame.is_authenticated());
        assert_eq!(frame.codes(), &codes[..]);
    }

    #[test]
    fn payload_efficiency_table_in_docs_is_right() {
        // (codes, authenticated, raw, stream, stream %, datagram %), as in the module docs.
        let table = [
            (1, false, 51, 53, 30.2, 31.4),
            (16, false, 291, 294, 87.1, 88.0),
            (64, false, 1059, 1065, 96.2, 96.7),
            (1, true, 59, 61, 26.2, 27.1),
            (16, true, 299, 302, 84.8, 85.6),
            (64, true, 1067, 1073, 95.4, 96.0),
        ];
        for (count, sealed, raw, stream, stream_eff, datagram_eff) in table {
            let raw_len = repr(count).buffer_len(sealed);
            let stream_bytes = stream_len(usize::from(count), 16, sealed);
            let payload = f64::from(count) * 16.0;
            assert_eq!((raw_len, stream_bytes), (raw, stream));
            assert!((100.0 * payload / stream_bytes as f64 - stream_eff).abs() < 0.05);
            assert!((100.0 * payload / raw_len as f64 - datagram_eff).abs() < 0.05);
        }
        assert_eq!(
            (MAX_FRAME_LEN - HEADER_LEN - TAG_LEN - CRC_LEN) / 16,
            89,
            "the docs say 89 codes of 128 bits fit in one frame"
        );
    }

    #[test]
    fn errors_are_classified() {
        let codes = [0xaau8; 16];
        let mut buf = [0u8; 64];
        let len = repr(1).emit_with_codes(&codes, None, &mut buf).unwrap();
        let good = &buf[..len];
        assert_eq!(
            Frame::new_checked(&good[..10]).err(),
            Some(FrameError::Truncated { len: 10 })
        );
        let mut flipped = good.to_vec();
        flipped[40] ^= 1;
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
        let mut authentication = good.to_vec();
        authentication[30] = 7;
        Frame::new_unchecked(&mut authentication[..]).fill_checksum();
        assert_eq!(
            Frame::new_checked(&authentication[..]).err(),
            Some(FrameError::UnsupportedAuthentication { found: 7 })
        );
        assert!(matches!(
            repr(1).emit_with_codes(&codes[..8], None, &mut buf),
            Err(FrameError::Malformed { .. })
        ));
        assert!(matches!(
            repr(1).emit_with_codes(&codes, None, &mut buf[..20]),
            Err(FrameError::BufferTooSmall { .. })
        ));
        let big = vec![0u8; 100 * 16];
        assert!(matches!(
            repr(100).emit_with_codes(&big, None, &mut [0u8; 2048]),
            Err(FrameError::Oversize { .. })
        ));
        assert!(matches!(
            Frame::new_checked(&[0u8; MAX_FRAME_LEN + 1][..]),
            Err(FrameError::Oversize { .. })
        ));
    }

    #[test]
    fn authentication_is_held_against_the_key() {
        let key = test_key();
        let other = FrameKey::from_bytes(&[0x42; 16]);
        let codes = [0x5a; 32];
        let mut plain = [0u8; 128];
        let plain_len = repr(2).emit_with_codes(&codes, None, &mut plain).unwrap();
        let plain = Frame::new_checked(&plain[..plain_len]).unwrap();
        let mut sealed = [0u8; 128];
        let sealed_len = repr(2)
            .emit_with_codes(&codes, Some(&key), &mut sealed)
            .unwrap();
        let sealed = Frame::new_checked(&sealed[..sealed_len]).unwrap();

        assert_eq!(plain.check_authentication(None), Ok(()));
        assert_eq!(
            plain.check_authentication(Some(&key)),
            Err(FrameError::Unauthenticated)
        );
        assert_eq!(sealed.check_authentication(Some(&key)), Ok(()));
        assert_eq!(
            sealed.check_authentication(Some(&other)),
            Err(FrameError::Forged)
        );
        assert_eq!(
            sealed.check_authentication(None),
            Err(FrameError::Unverifiable)
        );
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(
            model_id in any::<u64>(), stream_id in any::<u16>(), sequence in any::<u32>(),
            first_event in any::<u64>(), code_bytes in 1u8..=32, code_count in 1u16..=40,
            boot in any::<u32>(), sealed in any::<bool>(), seed in any::<u8>(),
        ) {
            let repr = FrameRepr { model_id, stream_id, sequence, first_event, code_bytes, code_count, boot };
            let key = test_key();
            let key = sealed.then_some(&key);
            let codes: Vec<u8> = (0..usize::from(code_count) * usize::from(code_bytes))
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                .collect();
            let mut raw = [0u8; MAX_FRAME_LEN];
            let len = repr.emit_with_codes(&codes, key, &mut raw).unwrap();
            prop_assert_eq!(len, repr.buffer_len(sealed));
            let frame = Frame::new_checked(&raw[..len]).unwrap();
            prop_assert_eq!(FrameRepr::parse(&frame).unwrap(), repr);
            prop_assert_eq!(frame.codes(), &codes[..]);
            prop_assert_eq!(frame.check_authentication(key), Ok(()));

            let mut stream = [0u8; MAX_ENCODED_LEN];
            let n = encode_frame(&repr, &codes, key, &mut stream).unwrap();
            prop_assert!(n <= stream_len(usize::from(code_count), usize::from(code_bytes), sealed));
            prop_assert_eq!(stream[n - 1], 0);
            prop_assert!(!stream[..n - 1].contains(&0));
        }

        #[test]
        fn any_single_bit_flip_is_rejected(byte in 0usize..75, bit in 0u8..8) {
            let mut raw = [0u8; 80];
            let len = repr(2).emit_with_codes(&[0x5a; 32], Some(&test_key()), &mut raw).unwrap();
            raw[byte % len] ^= 1 << bit;
            prop_assert!(Frame::new_checked(&raw[..len]).is_err());
        }

        #[test]
        fn a_changed_byte_with_a_fixed_crc_fails_the_tag(byte in 0usize..63, bit in 0u8..8) {
            // What a forger who knows CRC-32C but not the key can do: change any byte before
            // the tag, recompute the CRC. The authentication byte itself is excluded: changing
            // it gives an unauthenticated or unknown frame, refused as such.
            let key = test_key();
            let mut raw = [0u8; 80];
            let len = repr(2).emit_with_codes(&[0x5a; 32], Some(&key), &mut raw).unwrap();
            let byte = byte % (len - TAG_LEN - CRC_LEN);
            prop_assume!(byte != field::AUTHENTICATION);
            raw[byte] ^= 1 << bit;
            Frame::new_unchecked(&mut raw[..len]).fill_checksum();
            let verdict = Frame::new_checked(&raw[..len])
                .and_then(|frame| frame.check_authentication(Some(&key)));
            prop_assert!(verdict.is_err());
        }
    }
}
