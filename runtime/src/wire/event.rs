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
//!
//! # Reading and writing (the smoltcp way, like [`super::Frame`])
//!
//! [`EventPacket`] is a zero-copy view over a raw packet. [`EventPacket::new_checked`] checks,
//! in order: length, checksum, version, and the fields (kind, format, reserved byte, sample
//! count against the length); after it succeeds no accessor can panic or read out of bounds.
//! [`EventRepr`] is the packet's meaning as a value: [`EventRepr::parse`] reads it from a
//! checked view (re-checking the fields, not the checksum), [`EventRepr::emit`] and
//! [`EventRepr::emit_with_samples`] write it.

use core::fmt;

use crate::checksum::{CHECKSUM_LEN, crc32c};

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
    EVENT_HEADER_LEN + samples * SAMPLE_BYTES + CHECKSUM_LEN
}

/// Bytes such a packet takes on a byte stream, at most: size an [`super::Accumulator`] with it.
pub const fn event_stream_len(samples: usize) -> usize {
    cobs::max_encoding_length(event_packet_len(samples)) + 1
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

/// A zero-copy view of a raw (not COBS-encoded) event packet.
#[derive(Debug, Clone)]
pub struct EventPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EventPacket<T> {
    /// Wraps a buffer without checking it; accessors may then return wrong values (never
    /// panic). Use for writing.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after checking, in order: length, checksum, version, and the fields.
    ///
    /// # Errors
    /// The first [`EventPacketError`] found.
    pub fn new_checked(buffer: T) -> Result<Self, EventPacketError> {
        let packet = Self::new_unchecked(buffer);
        let len = packet.buffer.as_ref().len();
        if len < EVENT_HEADER_LEN + CHECKSUM_LEN {
            return Err(EventPacketError::Truncated { len });
        }
        let (stored, computed) = (packet.checksum(), packet.compute_checksum());
        if stored != computed {
            return Err(EventPacketError::Checksum { stored, computed });
        }
        packet.check_fields()?;
        Ok(packet)
    }

    /// Version, reserved byte, kind and format, and the sample count against the length.
    fn check_fields(&self) -> Result<(), EventPacketError> {
        let len = self.buffer.as_ref().len();
        if len < EVENT_HEADER_LEN + CHECKSUM_LEN {
            return Err(EventPacketError::Truncated { len });
        }
        if self.version() != EVENT_VERSION {
            return Err(EventPacketError::UnsupportedVersion {
                found: self.version(),
            });
        }
        let malformed = |field| Err(EventPacketError::Malformed { field });
        if self.byte(field::RESERVED) != 0 {
            return malformed(field::RESERVED);
        }
        let count = u64::from(self.sample_count());
        let sample_bytes = self.sample_bytes().len() as u64;
        match (self.kind(), self.format()) {
            (KIND_EVENT, FORMAT_F32) => {
                if count == 0 || count * SAMPLE_BYTES as u64 != sample_bytes {
                    return malformed(field::SAMPLE_COUNT.start);
                }
                Ok(())
            }
            (KIND_END, 0) => {
                if count != 0 || sample_bytes != 0 {
                    return malformed(field::SAMPLE_COUNT.start);
                }
                Ok(())
            }
            (KIND_EVENT | KIND_END, _) => malformed(field::FORMAT),
            _ => malformed(field::KIND),
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
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
        self.byte(field::VERSION)
    }

    /// Kind byte (1 = event, 2 = end of stream).
    pub fn kind(&self) -> u8 {
        self.byte(field::KIND)
    }

    /// Sample format byte (1 = f32).
    pub fn format(&self) -> u8 {
        self.byte(field::FORMAT)
    }

    /// Event id (the next id, for end of stream).
    pub fn event_id(&self) -> u64 {
        u64::from_le_bytes(self.bytes_at(field::EVENT_ID))
    }

    /// Declared sample count.
    pub fn sample_count(&self) -> u32 {
        u32::from_le_bytes(self.bytes_at(field::SAMPLE_COUNT))
    }

    /// The samples as little-endian f32 bytes.
    pub fn sample_bytes(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        bytes
            .get(EVENT_HEADER_LEN..bytes.len().saturating_sub(CHECKSUM_LEN))
            .unwrap_or(&[])
    }

    /// Decodes the samples into `out`, which must hold exactly as many; returns false
    /// (writing nothing) otherwise.
    pub fn read_samples(&self, out: &mut [f32]) -> bool {
        let bytes = self.sample_bytes();
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

    /// The stored CRC-32C.
    pub fn checksum(&self) -> u32 {
        let len = self.buffer.as_ref().len();
        u32::from_le_bytes(self.bytes_at(len.saturating_sub(CHECKSUM_LEN)..len))
    }

    /// CRC-32C of everything before the checksum field.
    pub fn compute_checksum(&self) -> u32 {
        let bytes = self.buffer.as_ref();
        crc32c(
            bytes
                .get(..bytes.len().saturating_sub(CHECKSUM_LEN))
                .unwrap_or(&[]),
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EventPacket<T> {
    fn set_bytes(&mut self, range: core::ops::Range<usize>, value: &[u8]) {
        if let Some(dst) = self.buffer.as_mut().get_mut(range) {
            dst.copy_from_slice(value);
        }
    }

    /// Writes `samples` as little-endian f32 after the header (as many as fit before the
    /// checksum).
    pub fn write_samples(&mut self, samples: &[f32]) {
        let bytes = self.buffer.as_mut();
        let end = bytes.len().saturating_sub(CHECKSUM_LEN);
        let body = bytes.get_mut(EVENT_HEADER_LEN..end).unwrap_or(&mut []);
        for (chunk, sample) in body.chunks_exact_mut(SAMPLE_BYTES).zip(samples) {
            chunk.copy_from_slice(&sample.to_le_bytes());
        }
    }

    /// Computes and stores the checksum; call after writing header and samples.
    pub fn fill_checksum(&mut self) {
        let checksum = self.compute_checksum();
        let len = self.buffer.as_ref().len();
        self.set_bytes(
            len.saturating_sub(CHECKSUM_LEN)..len,
            &checksum.to_le_bytes(),
        );
    }
}

/// What a packet asks of the front-end, as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventRepr {
    /// Encode this event.
    Event {
        /// Event id.
        id: u64,
        /// Samples in the packet (read them with [`EventPacket::read_samples`]).
        samples: u32,
    },
    /// No more events: send what is pending; `next_id` is the id the next event would have.
    EndOfStream {
        /// One past the last event id.
        next_id: u64,
    },
}

impl EventRepr {
    /// Reads a checked packet.
    ///
    /// # Errors
    /// The field errors of [`EventPacket::new_checked`], re-checked here so that a packet
    /// built with `new_unchecked` cannot be misread; the checksum is checked once, by
    /// `new_checked`.
    pub fn parse<T: AsRef<[u8]>>(packet: &EventPacket<T>) -> Result<Self, EventPacketError> {
        packet.check_fields()?;
        Ok(match packet.kind() {
            KIND_EVENT => Self::Event {
                id: packet.event_id(),
                samples: packet.sample_count(),
            },
            _ => Self::EndOfStream {
                next_id: packet.event_id(),
            },
        })
    }

    /// Samples the packet carries.
    pub const fn sample_count(&self) -> usize {
        match *self {
            Self::Event { samples, .. } => samples as usize,
            Self::EndOfStream { .. } => 0,
        }
    }

    /// Length of the raw packet this value describes.
    pub const fn buffer_len(&self) -> usize {
        event_packet_len(self.sample_count())
    }

    /// Writes the header into a packet whose buffer is exactly [`EventRepr::buffer_len`]
    /// bytes; then write the samples with [`EventPacket::write_samples`] and call
    /// [`EventPacket::fill_checksum`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut EventPacket<T>) {
        let (kind, format, id) = match *self {
            Self::Event { id, .. } => (KIND_EVENT, FORMAT_F32, id),
            Self::EndOfStream { next_id } => (KIND_END, 0, next_id),
        };
        packet.set_bytes(0..EVENT_HEADER_LEN, &[0; EVENT_HEADER_LEN]);
        packet.set_bytes(field::VERSION..field::VERSION + 1, &[EVENT_VERSION]);
        packet.set_bytes(field::KIND..field::KIND + 1, &[kind]);
        packet.set_bytes(field::FORMAT..field::FORMAT + 1, &[format]);
        packet.set_bytes(field::EVENT_ID, &id.to_le_bytes());
        let count = u32::try_from(self.sample_count()).unwrap_or(u32::MAX);
        packet.set_bytes(field::SAMPLE_COUNT, &count.to_le_bytes());
    }

    /// Writes a complete raw packet (header, `samples`, checksum) to the front of `buf` and
    /// returns its length. `samples` must hold exactly the value's sample count (none for end
    /// of stream).
    ///
    /// # Errors
    /// [`EventPacketError::Malformed`] (at the sample-count field) if `samples` has another
    /// length, [`EventPacketError::BufferTooSmall`].
    pub fn emit_with_samples(
        &self,
        samples: &[f32],
        buf: &mut [u8],
    ) -> Result<usize, EventPacketError> {
        if samples.len() != self.sample_count() {
            return Err(EventPacketError::Malformed {
                field: field::SAMPLE_COUNT.start,
            });
        }
        let len = self.buffer_len();
        let available = buf.len();
        let out = buf.get_mut(..len).ok_or(EventPacketError::BufferTooSmall {
            needed: len,
            available,
        })?;
        let mut packet = EventPacket::new_unchecked(out);
        self.emit(&mut packet);
        packet.write_samples(samples);
        packet.fill_checksum();
        Ok(len)
    }

    /// The value for an event with these samples, or end of stream for `None`.
    ///
    /// # Errors
    /// [`EventPacketError::Malformed`] if more than `u32::MAX` samples, or none, are given.
    pub fn for_samples(id: u64, samples: Option<&[f32]>) -> Result<Self, EventPacketError> {
        let Some(samples) = samples else {
            return Ok(Self::EndOfStream { next_id: id });
        };
        match u32::try_from(samples.len()) {
            Ok(count) if count > 0 => Ok(Self::Event { id, samples: count }),
            _ => Err(EventPacketError::Malformed {
                field: field::SAMPLE_COUNT.start,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Accumulator, FeedResult};
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn packet(id: u64, samples: Option<&[f32]>) -> Vec<u8> {
        let repr = EventRepr::for_samples(id, samples).unwrap();
        let mut out = vec![0u8; repr.buffer_len()];
        let n = repr
            .emit_with_samples(samples.unwrap_or(&[]), &mut out)
            .unwrap();
        assert_eq!(n, out.len());
        out
    }

    fn parse(bytes: &[u8]) -> Result<(EventPacket<&[u8]>, EventRepr), EventPacketError> {
        let packet = EventPacket::new_checked(bytes)?;
        let repr = EventRepr::parse(&packet)?;
        Ok((packet, repr))
    }

    #[test]
    fn known_answer_bytes() {
        // Pinned bytes (CRC computed independently of this crate): a change of field order,
        // byte order or checksum coverage fails here.
        let raw = packet(0x0102_0304_0506_0708, Some(&[1.0]));
        assert_eq!(
            raw,
            [
                1, 1, 1, 0, 8, 7, 6, 5, 4, 3, 2, 1, 1, 0, 0, 0, 0, 0, 0x80, 0x3f, 0xc0, 0x8e, 0xd8,
                0x4b,
            ]
        );
    }

    #[test]
    fn event_round_trip() {
        let values = [1.5f32, -0.0, f32::MAX, 3.25];
        let raw = packet(7, Some(&values));
        let Ok((packet, EventRepr::Event { id, samples: 4 })) = parse(&raw) else {
            panic!("not an event");
        };
        assert_eq!(id, 7);
        let mut back = [0f32; 4];
        assert!(packet.read_samples(&mut back));
        assert_eq!(back.map(f32::to_bits), values.map(f32::to_bits));
        assert!(
            !packet.read_samples(&mut [0f32; 3]),
            "wrong count is refused"
        );
    }

    #[test]
    fn end_of_stream_round_trip() {
        let raw = packet(300, None);
        assert_eq!(raw.len(), EVENT_HEADER_LEN + 4);
        assert_eq!(
            parse(&raw).map(|(_, repr)| repr),
            Ok(EventRepr::EndOfStream { next_id: 300 })
        );
    }

    #[test]
    fn rejects_bad_packets() {
        let good = packet(1, Some(&[1.0, 2.0]));
        assert_eq!(
            parse(&good[..10]).map(|(_, repr)| repr),
            Err(EventPacketError::Truncated { len: 10 })
        );
        let mut flipped = good.clone();
        flipped[17] ^= 4;
        assert!(matches!(
            parse(&flipped),
            Err(EventPacketError::Checksum { .. })
        ));
        let refill = |mut bytes: Vec<u8>| {
            let n = bytes.len();
            let crc = crc32c(&bytes[..n - 4]);
            bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
            bytes
        };
        let with = |at: usize, value: u8| {
            let mut bytes = good.clone();
            bytes[at] = value;
            parse(&refill(bytes)).map(|_| ())
        };
        assert_eq!(
            with(0, 2),
            Err(EventPacketError::UnsupportedVersion { found: 2 })
        );
        assert_eq!(with(1, 9), Err(EventPacketError::Malformed { field: 1 }));
        assert_eq!(with(2, 0), Err(EventPacketError::Malformed { field: 2 }));
        assert_eq!(with(3, 1), Err(EventPacketError::Malformed { field: 3 }));
        assert_eq!(with(12, 3), Err(EventPacketError::Malformed { field: 12 }));
        let one = EventRepr::Event { id: 1, samples: 1 };
        assert_eq!(
            one.emit_with_samples(&[1.0], &mut [0u8; 23]),
            Err(EventPacketError::BufferTooSmall {
                needed: 24,
                available: 23
            })
        );
        assert_eq!(
            one.emit_with_samples(&[1.0, 2.0], &mut [0u8; 64]),
            Err(EventPacketError::Malformed { field: 12 })
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
            let _ = parse(&bytes);
            let _ = EventRepr::parse(&EventPacket::new_unchecked(&bytes[..]));
        }

        #[test]
        fn any_packet_round_trips(
            id in any::<u64>(),
            values in proptest::option::of(proptest::collection::vec(any::<f32>(), 1..64)),
        ) {
            let raw = packet(id, values.as_deref());
            match (parse(&raw), &values) {
                (Ok((packet, EventRepr::Event { id: got, samples })), Some(values)) => {
                    prop_assert_eq!(got, id);
                    prop_assert_eq!(samples as usize, values.len());
                    let mut back = vec![0f32; values.len()];
                    prop_assert!(packet.read_samples(&mut back));
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    prop_assert_eq!(bits(&back), bits(values));
                }
                (Ok((_, EventRepr::EndOfStream { next_id })), None) => prop_assert_eq!(next_id, id),
                (other, _) => prop_assert!(false, "unexpected {:?}", other.map(|(_, r)| r)),
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
            prop_assert!(parse(&raw).is_err());
        }
    }
}
