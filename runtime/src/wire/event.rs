//! Event packets: raw events sent *to* a front-end (the host's `feed` mode, or a data
//! acquisition board handing samples to an encoder MCU), the opposite direction of frames.
//!
//! # Contract (version 1)
//!
//! All integers are little-endian. On a byte stream each raw packet is COBS-encoded and
//! followed by one `0x00`, exactly as frames are, so the same [`super::Accumulator`] reads
//! them (sized with [`event_stream_len`]).
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version, currently [`EVENT_VERSION`] |
//! | 1 | 1 | kind: 1 = event, 2 = end of stream (flush codes and report) |
//! | 2 | 1 | sample format: 1 = f32 (events); 0 (end of stream) |
//! | 3 | 1 | reserved, 0 |
//! | 4 | 8 | event id u64 (the id its code will carry; the next id for end of stream) |
//! | 12 | 4 | sample count u32 (0 for end of stream) |
//! | 16 | `4·count` | the samples |
//! | end − 4 | 4 | CRC-32C (Castagnoli) of every byte before it |
//!
//! As with frames, every later version keeps the version byte first and the CRC last.

use core::fmt;

use crate::blob::CRC32C;

/// The event-packet version this runtime reads and writes.
pub const EVENT_VERSION: u8 = 1;
/// Bytes before the samples.
pub const EVENT_HEADER_LEN: usize = 16;
/// Bytes per f32 sample.
const SAMPLE_BYTES: usize = 4;

mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const KIND: usize = 1;
    pub const FORMAT: usize = 2;
    pub const RESERVED: usize = 3;
    pub const EVENT_ID: Range<usize> = 4..12;
    pub const SAMPLE_COUNT: Range<usize> = 12..16;
}

/// Raw length of a packet carrying `samples` f32 samples.
pub const fn event_packet_len(samples: usize) -> usize {
    EVENT_HEADER_LEN + samples * SAMPLE_BYTES + super::CRC_LEN
}

/// Bytes such a packet takes on a byte stream, at most: size an [`super::Accumulator`] with it.
pub const fn event_stream_len(samples: usize) -> usize {
    cobs::max_encoding_length(event_packet_len(samples)) + 1
}

/// What a packet asks of the front-end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventPacket<'a> {
    /// Encode this event.
    Event {
        /// Event id.
        id: u64,
        /// The samples as little-endian f32 bytes (read them with [`samples`]).
        samples: &'a [u8],
    },
    /// No more events: send what is pending; `next_id` is the id the next event would have.
    EndOfStream {
        /// One past the last event id.
        next_id: u64,
    },
}

/// Why bytes are not a valid event packet, or one could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventPacketError {
    /// Shorter than a header and checksum.
    Truncated {
        /// Bytes given.
        len: usize,
    },
    /// The checksum does not match.
    Checksum {
        /// CRC-32C in the packet.
        stored: u32,
        /// CRC-32C of the bytes.
        computed: u32,
    },
    /// A version this runtime does not read.
    UnsupportedVersion {
        /// Version byte found.
        found: u8,
    },
    /// Unknown kind or sample format, a non-zero reserved byte, or a sample count that does
    /// not match the length.
    Malformed {
        /// Byte offset of the offending field.
        field: usize,
    },
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
}

impl fmt::Display for EventPacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { len } => write!(
                f,
                "event packet of {len} bytes is shorter than a header and checksum"
            ),
            Self::Checksum { stored, computed } => write!(
                f,
                "event packet CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::UnsupportedVersion { found } => write!(
                f,
                "event packet version {found}, this runtime reads version {EVENT_VERSION}"
            ),
            Self::Malformed { field } => {
                write!(f, "event packet field at byte {field} is invalid")
            }
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "buffer of {available} bytes cannot hold an event packet of {needed} bytes"
            ),
        }
    }
}

impl core::error::Error for EventPacketError {}

const KIND_EVENT: u8 = 1;
const KIND_END: u8 = 2;
const FORMAT_F32: u8 = 1;

/// Little-endian integer of up to 8 bytes.
fn le_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| acc << 8 | u64::from(b))
}

/// Checks a raw (COBS-decoded) packet, in order: length, checksum, version, fields.
///
/// # Errors
/// The first [`EventPacketError`] found.
pub fn parse_event_packet(bytes: &[u8]) -> Result<EventPacket<'_>, EventPacketError> {
    let len = bytes.len();
    let crc_at = len
        .checked_sub(super::CRC_LEN)
        .filter(|&at| at >= EVENT_HEADER_LEN)
        .ok_or(EventPacketError::Truncated { len })?;
    let (body, crc) = bytes.split_at(crc_at);
    let stored = le_u64(crc) as u32;
    let computed = CRC32C.checksum(body);
    if stored != computed {
        return Err(EventPacketError::Checksum { stored, computed });
    }
    let byte = |at: usize| body.get(at).copied().unwrap_or(0);
    if byte(field::VERSION) != EVENT_VERSION {
        return Err(EventPacketError::UnsupportedVersion {
            found: byte(field::VERSION),
        });
    }
    if byte(field::RESERVED) != 0 {
        return Err(EventPacketError::Malformed {
            field: field::RESERVED,
        });
    }
    let id = le_u64(body.get(field::EVENT_ID).unwrap_or(&[]));
    let count = le_u64(body.get(field::SAMPLE_COUNT).unwrap_or(&[]));
    let samples = body.get(EVENT_HEADER_LEN..).unwrap_or(&[]);
    let malformed = |field| Err(EventPacketError::Malformed { field });
    match (byte(field::KIND), byte(field::FORMAT)) {
        (KIND_EVENT, FORMAT_F32) => {
            if count == 0 || count.checked_mul(SAMPLE_BYTES as u64) != Some(samples.len() as u64) {
                return malformed(field::SAMPLE_COUNT.start);
            }
            Ok(EventPacket::Event { id, samples })
        }
        (KIND_END, 0) => {
            if count != 0 || !samples.is_empty() {
                return malformed(field::SAMPLE_COUNT.start);
            }
            Ok(EventPacket::EndOfStream { next_id: id })
        }
        (KIND_EVENT | KIND_END, _) => malformed(field::FORMAT),
        _ => malformed(field::KIND),
    }
}

/// Decodes the little-endian f32 samples of an [`EventPacket::Event`] into `out`, which must
/// hold exactly as many samples; returns false (writing nothing) otherwise.
pub fn samples(bytes: &[u8], out: &mut [f32]) -> bool {
    if bytes.len() != out.len() * SAMPLE_BYTES {
        return false;
    }
    for (chunk, sample) in bytes.chunks_exact(SAMPLE_BYTES).zip(out) {
        let mut le = [0u8; SAMPLE_BYTES];
        le.copy_from_slice(chunk);
        *sample = f32::from_le_bytes(le);
    }
    true
}

/// Writes a raw packet for `packet` into the front of `out` and returns its length. For an
/// event, `samples` are the values to send (the `samples` field of the packet is ignored).
///
/// # Errors
/// [`EventPacketError::BufferTooSmall`].
pub fn write_event_packet(
    id: u64,
    samples: Option<&[f32]>,
    out: &mut [u8],
) -> Result<usize, EventPacketError> {
    let count = samples.map_or(0, <[f32]>::len);
    let len = event_packet_len(count);
    let available = out.len();
    let packet = out.get_mut(..len).ok_or(EventPacketError::BufferTooSmall {
        needed: len,
        available,
    })?;
    let (kind, format) = if samples.is_some() {
        (KIND_EVENT, FORMAT_F32)
    } else {
        (KIND_END, 0)
    };
    let (header, rest) = packet.split_at_mut(EVENT_HEADER_LEN);
    header.copy_from_slice(&[0; EVENT_HEADER_LEN]);
    if let [version, k, f, ..] = header {
        (*version, *k, *f) = (EVENT_VERSION, kind, format);
    }
    if let Some(dst) = header.get_mut(field::EVENT_ID) {
        dst.copy_from_slice(&id.to_le_bytes());
    }
    if let Some(dst) = header.get_mut(field::SAMPLE_COUNT) {
        dst.copy_from_slice(&(count as u32).to_le_bytes());
    }
    let (body, _) = rest.split_at_mut(count * SAMPLE_BYTES);
    for (chunk, sample) in body
        .chunks_exact_mut(SAMPLE_BYTES)
        .zip(samples.unwrap_or(&[]))
    {
        chunk.copy_from_slice(&sample.to_le_bytes());
    }
    let crc = CRC32C.checksum(packet.get(..len - super::CRC_LEN).unwrap_or(&[]));
    if let Some(dst) = packet.get_mut(len - super::CRC_LEN..) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Accumulator, FeedResult};
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn packet(id: u64, samples: Option<&[f32]>) -> Vec<u8> {
        let mut out = vec![0u8; event_packet_len(samples.map_or(0, <[f32]>::len))];
        let n = write_event_packet(id, samples, &mut out).unwrap();
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn event_round_trip() {
        let values = [1.5f32, -0.0, f32::MAX, 3.25];
        let raw = packet(7, Some(&values));
        let Ok(EventPacket::Event { id, samples: bytes }) = parse_event_packet(&raw) else {
            panic!("not an event");
        };
        assert_eq!(id, 7);
        let mut back = [0f32; 4];
        assert!(samples(bytes, &mut back));
        assert_eq!(back.map(f32::to_bits), values.map(f32::to_bits));
        assert!(!samples(bytes, &mut [0f32; 3]), "wrong count is refused");
    }

    #[test]
    fn end_of_stream_round_trip() {
        let raw = packet(300, None);
        assert_eq!(raw.len(), EVENT_HEADER_LEN + 4);
        assert_eq!(
            parse_event_packet(&raw),
            Ok(EventPacket::EndOfStream { next_id: 300 })
        );
    }

    #[test]
    fn rejects_bad_packets() {
        let good = packet(1, Some(&[1.0, 2.0]));
        assert_eq!(
            parse_event_packet(&good[..10]),
            Err(EventPacketError::Truncated { len: 10 })
        );
        let mut flipped = good.clone();
        flipped[17] ^= 4;
        assert!(matches!(
            parse_event_packet(&flipped),
            Err(EventPacketError::Checksum { .. })
        ));
        let refill = |mut bytes: Vec<u8>| {
            let n = bytes.len();
            let crc = CRC32C.checksum(&bytes[..n - 4]);
            bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
            bytes
        };
        let with = |at: usize, value: u8| {
            let mut bytes = good.clone();
            bytes[at] = value;
            parse_event_packet(&refill(bytes)).map(|_| ())
        };
        assert_eq!(
            with(0, 2),
            Err(EventPacketError::UnsupportedVersion { found: 2 })
        );
        assert_eq!(with(1, 9), Err(EventPacketError::Malformed { field: 1 }));
        assert_eq!(with(2, 0), Err(EventPacketError::Malformed { field: 2 }));
        assert_eq!(with(3, 1), Err(EventPacketError::Malformed { field: 3 }));
        assert_eq!(with(12, 3), Err(EventPacketError::Malformed { field: 12 }));
        assert_eq!(
            write_event_packet(1, Some(&[1.0]), &mut [0u8; 23]),
            Err(EventPacketError::BufferTooSmall {
                needed: 24,
                available: 23
            })
        );
    }

    #[test]
    fn the_frame_accumulator_reads_event_packets() {
        let values: Vec<f32> = (0..1024).map(|i| i as f32 * 0.5).collect();
        let raw = packet(3, Some(&values));
        let mut stream = vec![0u8; event_stream_len(values.len())];
        let n = cobs::encode(&raw, &mut stream);
        stream[n] = 0;
        let mut accumulator = Accumulator::<{ event_stream_len(1024) }>::new();
        let FeedResult::Frame { frame, remaining } = accumulator.feed(&stream[..=n]) else {
            panic!("no packet");
        };
        assert!(remaining.is_empty());
        assert_eq!(frame, &raw[..]);
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = parse_event_packet(&bytes);
        }

        #[test]
        fn any_packet_round_trips(
            id in any::<u64>(),
            values in proptest::option::of(proptest::collection::vec(any::<f32>(), 1..64)),
        ) {
            let raw = packet(id, values.as_deref());
            match (parse_event_packet(&raw), &values) {
                (Ok(EventPacket::Event { id: got, samples: bytes }), Some(values)) => {
                    prop_assert_eq!(got, id);
                    let mut back = vec![0f32; values.len()];
                    prop_assert!(samples(bytes, &mut back));
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    prop_assert_eq!(bits(&back), bits(values));
                }
                (Ok(EventPacket::EndOfStream { next_id }), None) => prop_assert_eq!(next_id, id),
                (other, _) => prop_assert!(false, "unexpected {:?}", other),
            }
        }

        #[test]
        fn every_single_bit_flip_is_rejected(
            values in proptest::collection::vec(any::<f32>(), 1..16),
            bit in any::<prop::sample::Index>(),
        ) {
            let mut raw = packet(5, Some(&values));
            let bit = bit.index(raw.len() * 8);
            raw[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(parse_event_packet(&raw).is_err());
        }
    }
}
