//! Compact frames: a full frame with the header fields both ends of a byte stream already know
//! left out. Layout and rules in the [module docs](super#compact-frames-version-3).
//!
//! A compact frame is a full (version 2) frame in short form: the sender builds the full
//! frame, tag and CRC included, then drops the 26 header bytes that the last full frame on the
//! link told the receiver, and keeps the low bits of the sequence number and first event id.
//! The receiver ([`StreamContext::expand`]) writes the full frame back and accepts it only if
//! the full frame's own CRC holds, so the fields it restored are checked exactly as if they
//! had travelled: a wrong guess of the high bits, a context of another stream or model, or a
//! corrupted byte all fail the same CRC-32C. Everything after the expansion (authentication,
//! model check, accounting) sees a full frame.

use super::auth::FrameKey;
use super::frame::{
    CRC_LEN, Frame, FrameError, FrameRepr, HEADER_LEN, MAX_FRAME_LEN, encode_raw, raw_len,
};

/// The version byte of a compact frame.
pub const COMPACT_VERSION: u8 = 3;
/// Bytes before the codes in a compact frame.
pub const COMPACT_HEADER_LEN: usize = 5;
/// A sender on a byte stream sends at least every this many frames a full one, so a receiver
/// that joins mid-stream (or lost the last full frame) learns the context again.
pub const FULL_FRAME_INTERVAL: u32 = 64;

/// Bytes the compact form saves against the full one.
const SAVED: usize = HEADER_LEN - COMPACT_HEADER_LEN;

/// How far, in wraps of the low bits sent, a receiver looks for the sequence number and first
/// event id of a compact frame around the ones it expects: one wrap back (a duplicate or a
/// late frame), up to three ahead (a long loss). In this order, likeliest first.
const WRAPS: [i64; 5] = [0, -1, 1, 2, 3];

mod field {
    use core::ops::Range;
    pub const CODE_COUNT: usize = 1;
    pub const SEQUENCE_LOW: usize = 2;
    pub const FIRST_EVENT_LOW: Range<usize> = 3..5;
}

/// Bytes of a compact frame of `code_count` codes of `code_bytes`.
pub const fn compact_len(code_count: usize, code_bytes: usize, authenticated: bool) -> usize {
    raw_len(code_count, code_bytes, authenticated) - SAVED
}

/// Bytes a compact frame takes on a byte stream, at most (worst-case COBS overhead plus the
/// delimiter).
pub const fn compact_stream_len(
    code_count: usize,
    code_bytes: usize,
    authenticated: bool,
) -> usize {
    cobs::max_encoding_length(compact_len(code_count, code_bytes, authenticated)) + 1
}

/// What a compact frame leaves out: the stream's identity from its last full frame, and where
/// the stream stood at its newest frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamContext {
    /// Model id.
    pub model_id: u64,
    /// Stream id.
    pub stream_id: u16,
    /// Boot nonce.
    pub boot: u32,
    /// Bytes per code.
    pub code_bytes: u8,
    /// Whether the frames carry a tag.
    pub authenticated: bool,
    /// Sequence number of the newest frame.
    pub sequence: u32,
    /// Event id after the newest frame's last event.
    pub next_event: u64,
}

impl StreamContext {
    /// The context a full frame sets.
    pub const fn of(repr: &FrameRepr, authenticated: bool) -> Self {
        Self {
            model_id: repr.model_id,
            stream_id: repr.stream_id,
            boot: repr.boot,
            code_bytes: repr.code_bytes,
            authenticated,
            sequence: repr.sequence,
            next_event: repr.first_event.saturating_add(repr.code_count as u64),
        }
    }

    /// Whether `repr` belongs to the stream this context describes (same model, stream, run,
    /// code width and authentication).
    pub const fn describes(&self, repr: &FrameRepr, authenticated: bool) -> bool {
        self.model_id == repr.model_id
            && self.stream_id == repr.stream_id
            && self.boot == repr.boot
            && self.code_bytes == repr.code_bytes
            && self.authenticated == authenticated
    }

    /// Follows a frame that passed its CRC, full or expanded: a frame of another stream (or
    /// the first one) sets a new context; a newer frame of the same stream moves it on; an
    /// older one (a duplicate, a late frame) leaves it.
    pub fn follow(context: &mut Option<Self>, repr: &FrameRepr, authenticated: bool) {
        match context {
            Some(known) if known.describes(repr, authenticated) => {
                // Newer by serial-number arithmetic (RFC 1982), so the wrap of u32 is no step
                // back.
                if repr.sequence.wrapping_sub(known.sequence).cast_signed() > 0 {
                    *known = Self::of(repr, authenticated);
                }
            }
            _ => *context = Some(Self::of(repr, authenticated)),
        }
    }

    /// Whether the next frame of the stream, `repr`, can go compact: it is the same stream's
    /// next frame, its first event id is within reach of the low bits, and its count fits
    /// the count byte.
    fn admits(&self, repr: &FrameRepr, authenticated: bool) -> bool {
        let gap = repr.first_event.checked_sub(self.next_event);
        self.describes(repr, authenticated)
            && repr.sequence == self.sequence.wrapping_add(1)
            && gap.is_some_and(|gap| gap <= u64::from(u16::MAX))
            && repr.code_count <= u16::from(u8::MAX)
    }

    /// The header of a compact frame under the likeliest reading of its low bits, without
    /// checking the CRC: what a rejected compact frame claims (see the bridge's accounting).
    /// `None` if its header is not whole or not compact.
    pub fn guess(&self, compact: &[u8]) -> Option<FrameRepr> {
        self.candidates(compact)?.next()
    }

    /// The readings of a compact frame's header, likeliest first.
    fn candidates(&self, compact: &[u8]) -> Option<impl Iterator<Item = FrameRepr> + '_> {
        let header = compact.get(..COMPACT_HEADER_LEN)?;
        if header.first() != Some(&COMPACT_VERSION) {
            return None;
        }
        let code_count = u16::from(*header.get(field::CODE_COUNT)?);
        let sequence_low = *header.get(field::SEQUENCE_LOW)?;
        let event_low = u16::from_le_bytes(header.get(field::FIRST_EVENT_LOW)?.try_into().ok()?);
        // The readings that need no wrap: the first sequence number at or after the expected
        // one, and the first event id at or after the expected one, with these low bits.
        let sequence = self.sequence.wrapping_add(1);
        let sequence = sequence.wrapping_add(u32::from(sequence_low.wrapping_sub(sequence as u8)));
        let event = self.next_event;
        let event = event.checked_add(u64::from(event_low.wrapping_sub(event as u16)));
        Some(WRAPS.into_iter().flat_map(move |sequence_wraps| {
            WRAPS.into_iter().filter_map(move |event_wraps| {
                let first_event = event?.checked_add_signed(event_wraps.checked_mul(1 << 16)?)?;
                Some(FrameRepr {
                    model_id: self.model_id,
                    stream_id: self.stream_id,
                    // Wrapping: sequence numbers wrap, and the offset is taken modulo 2^32.
                    sequence: sequence.wrapping_add((sequence_wraps * 256) as u32),
                    first_event,
                    code_bytes: self.code_bytes,
                    code_count,
                    boot: self.boot,
                })
            })
        }))
    }

    /// Writes the full frame a compact one stands for to the front of `out` and returns its
    /// length, after checking its CRC-32C. The low bits are read as the sequence number and
    /// event id nearest at or past the expected ones, or one wrap behind, or up to three
    /// ahead; the first reading under which the full frame's CRC holds is taken. The tag,
    /// when the stream has one, is left to [`Frame::check_authentication`] on the result.
    ///
    /// A corrupted compact frame passes with a chance of at most 25 · 2⁻³² (one CRC per
    /// reading tried), against 2⁻³² for a full frame.
    ///
    /// # Errors
    /// [`FrameError::UnsupportedVersion`] for a frame that is not compact;
    /// [`FrameError::Truncated`] or [`FrameError::Malformed`] when its length does not
    /// match its count and this context's code width; [`FrameError::Oversize`] when the full
    /// frame would exceed [`MAX_FRAME_LEN`]; [`FrameError::Checksum`] (with the
    /// likeliest reading's CRC) when no reading holds; [`FrameError::BufferTooSmall`].
    pub fn expand(&self, compact: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
        let len = compact.len();
        if len < COMPACT_HEADER_LEN + CRC_LEN {
            return Err(FrameError::Truncated { len });
        }
        if let Some(&found) = compact.first()
            && found != COMPACT_VERSION
        {
            return Err(FrameError::UnsupportedVersion { found });
        }
        let count = compact.get(field::CODE_COUNT).copied().unwrap_or(0);
        let codes_len = usize::from(count) * usize::from(self.code_bytes);
        let expected = if codes_len == 0 {
            0
        } else {
            compact_len(
                usize::from(count),
                usize::from(self.code_bytes),
                self.authenticated,
            )
        };
        if expected != len {
            return Err(FrameError::Malformed { expected, len });
        }
        let full_len = len + SAVED;
        if full_len > MAX_FRAME_LEN {
            return Err(FrameError::Oversize { len: full_len });
        }
        let available = out.len();
        let full = out.get_mut(..full_len).ok_or(FrameError::BufferTooSmall {
            needed: full_len,
            available,
        })?;
        if let (Some(body), Some(rest)) = (
            full.get_mut(HEADER_LEN..),
            compact.get(COMPACT_HEADER_LEN..),
        ) {
            body.copy_from_slice(rest);
        }
        let mut frame = Frame::new_unchecked(full);
        let stored = frame.checksum();
        let mut likeliest = None;
        for repr in self.candidates(compact).into_iter().flatten() {
            repr.emit(&mut frame, self.authenticated);
            let computed = frame.compute_checksum();
            if computed == stored {
                return Ok(full_len);
            }
            likeliest.get_or_insert(computed);
        }
        Err(FrameError::Checksum {
            stored,
            computed: likeliest.unwrap_or(0),
        })
    }
}

/// The sending side of a byte stream: writes each frame compact when the receiver can expand
/// it from the frames before, full otherwise. One per link (connection, serial line); a new
/// link starts with a new one, so its first frame is full.
#[derive(Debug, Clone, Default)]
pub struct StreamFramer {
    context: Option<StreamContext>,
    compact_since_full: u32,
}

impl StreamFramer {
    /// A framer whose first frame will be full.
    pub const fn new() -> Self {
        Self {
            context: None,
            compact_since_full: 0,
        }
    }

    /// Writes a raw frame (before COBS) to the front of `buf` and returns its length: compact
    /// if the frame follows the previous one of its stream (next sequence number, event ids
    /// within 2^16 ahead, at most 255 codes) and fewer than [`FULL_FRAME_INTERVAL`] − 1
    /// compact frames were written since the last full one; full otherwise.
    ///
    /// # Errors
    /// As [`FrameRepr::emit_with_codes`].
    pub fn emit(
        &mut self,
        repr: &FrameRepr,
        codes: &[u8],
        key: Option<&FrameKey>,
        buf: &mut [u8],
    ) -> Result<usize, FrameError> {
        let authenticated = key.is_some();
        let len = repr.emit_with_codes(codes, key, buf)?;
        let compact = self.compact_since_full + 1 < FULL_FRAME_INTERVAL
            && self
                .context
                .is_some_and(|context| context.admits(repr, authenticated));
        StreamContext::follow(&mut self.context, repr, authenticated);
        if !compact {
            self.compact_since_full = 0;
            return Ok(len);
        }
        self.compact_since_full += 1;
        // The full frame is in `buf`, which is at least `len` long: shift its body down over
        // the header bytes the receiver restores, then write the short header.
        let Some(frame) = buf.get_mut(..len) else {
            return Ok(len);
        };
        frame.copy_within(HEADER_LEN.., COMPACT_HEADER_LEN);
        let [version, count, sequence, event_0, event_1, ..] = frame else {
            return Ok(len);
        };
        let event = (repr.first_event as u16).to_le_bytes();
        (*version, *count, *sequence) =
            (COMPACT_VERSION, repr.code_count as u8, repr.sequence as u8);
        (*event_0, *event_1) = (event[0], event[1]);
        Ok(len - SAVED)
    }

    /// As [`StreamFramer::emit`], in the byte-stream form (COBS-encoded, then one `0x00`).
    ///
    /// # Errors
    /// As [`StreamFramer::emit`]; [`FrameError::BufferTooSmall`] if `out` is shorter than
    /// the encoding ([`super::stream_len`] of the full frame is always enough).
    pub fn encode(
        &mut self,
        repr: &FrameRepr,
        codes: &[u8],
        key: Option<&FrameKey>,
        out: &mut [u8],
    ) -> Result<usize, FrameError> {
        let mut raw = [0u8; MAX_FRAME_LEN];
        let len = self.emit(repr, codes, key, &mut raw)?;
        encode_raw(raw.get(..len).unwrap_or(&[]), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Accumulator, FeedResult};
    use proptest::prelude::*;
    use std::vec::Vec;

    fn repr(sequence: u32, first_event: u64, code_count: u16) -> FrameRepr {
        FrameRepr {
            model_id: 0x0123_4567_89ab_cdef,
            stream_id: 7,
            sequence,
            first_event,
            code_bytes: 16,
            code_count,
            boot: 0x5eed_0001,
        }
    }

    fn codes(count: u16, seed: u8) -> Vec<u8> {
        (0..usize::from(count) * 16)
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
            .collect()
    }

    /// The frames of a stream of `frames` frames of 16 codes, sequence numbers and event ids
    /// from `start`, as the framer writes them (raw), with the header each stands for.
    fn stream(frames: u32, start: (u32, u64), key: Option<&FrameKey>) -> Vec<(FrameRepr, Vec<u8>)> {
        let mut framer = StreamFramer::new();
        (0..frames)
            .map(|i| {
                let repr = repr(start.0.wrapping_add(i), start.1 + 16 * u64::from(i), 16);
                let mut raw = [0u8; MAX_FRAME_LEN];
                let len = framer
                    .emit(&repr, &codes(16, i as u8), key, &mut raw)
                    .unwrap();
                (repr, raw[..len].to_vec())
            })
            .collect()
    }

    /// What a receiver does with one frame: expands it under its context (or takes it as it
    /// is, if full), checks it, and follows it.
    fn receive(context: &mut Option<StreamContext>, raw: &[u8]) -> Result<FrameRepr, FrameError> {
        let mut full = [0u8; MAX_FRAME_LEN];
        let full = if raw.first() == Some(&COMPACT_VERSION) {
            let context = context.as_ref().expect("a full frame came first");
            let len = context.expand(raw, &mut full)?;
            &full[..len]
        } else {
            raw
        };
        let frame = Frame::new_checked(full)?;
        let repr = FrameRepr::parse(&frame)?;
        StreamContext::follow(context, &repr, frame.is_authenticated());
        Ok(repr)
    }

    #[test]
    fn known_answer_bytes() {
        // The compact frame is the full frame's body and CRC behind a five-byte header.
        let mut framer = StreamFramer::new();
        let mut raw = [0u8; 128];
        let first = repr(0x1122_33ff, 0x0001_0000_fffe, 2);
        let len = framer.emit(&first, &codes(2, 0), None, &mut raw).unwrap();
        assert_eq!((len, raw[0]), (raw_len(2, 16, false), 2));
        let next = repr(0x1122_3400, 0x0001_0001_0000, 1);
        let mut full = [0u8; 128];
        let full_len = next.emit_with_codes(&codes(1, 9), None, &mut full).unwrap();
        let len = framer.emit(&next, &codes(1, 9), None, &mut raw).unwrap();
        assert_eq!(len, compact_len(1, 16, false));
        assert_eq!(raw[..5], [COMPACT_VERSION, 1, 0x00, 0x00, 0x00]);
        assert_eq!(raw[5..len], full[HEADER_LEN..full_len]);
    }

    #[test]
    fn a_stream_round_trips_with_a_full_frame_every_interval() {
        let key = FrameKey::from_bytes(&[3; 16]);
        for key in [None, Some(&key)] {
            let frames = stream(200, (u32::MAX - 100, (1 << 32) - 700), key);
            let mut context = None;
            for (i, (repr, raw)) in frames.iter().enumerate() {
                let full = i % FULL_FRAME_INTERVAL as usize == 0;
                assert_eq!(raw[0] == COMPACT_VERSION, !full, "frame {i}");
                assert_eq!(receive(&mut context, raw), Ok(*repr), "frame {i}");
            }
        }
    }

    #[test]
    fn the_framer_goes_full_when_the_stream_does_not_follow_on() {
        let mut framer = StreamFramer::new();
        let mut raw = [0u8; MAX_FRAME_LEN];
        let mut kinds = Vec::new();
        let mut send = |repr: FrameRepr, framer: &mut StreamFramer| {
            let n = framer
                .emit(&repr, &codes(repr.code_count, 0), None, &mut raw)
                .unwrap();
            kinds.push(
                raw[0] == COMPACT_VERSION
                    && n == compact_len(usize::from(repr.code_count), 16, false),
            );
        };
        send(repr(0, 0, 4), &mut framer);
        send(repr(1, 4, 4), &mut framer);
        // A sequence number skipped, event ids too far ahead, another stream, another run.
        send(repr(3, 8, 4), &mut framer);
        send(repr(4, 12 + (1 << 16), 4), &mut framer);
        send(
            FrameRepr {
                stream_id: 8,
                ..repr(5, 1 << 20, 4)
            },
            &mut framer,
        );
        send(
            FrameRepr {
                boot: 9,
                ..repr(6, 1 << 21, 4)
            },
            &mut framer,
        );
        send(
            FrameRepr {
                boot: 9,
                ..repr(7, (1 << 21) + 4 + u64::from(u16::MAX), 4)
            },
            &mut framer,
        );
        assert_eq!(kinds, [false, true, false, false, false, false, true]);
    }

    #[test]
    fn errors_are_classified() {
        let frames = stream(3, (0, 0), None);
        let context = StreamContext::of(&frames[0].0, false);
        let compact = &frames[1].1;
        let mut out = [0u8; MAX_FRAME_LEN];
        assert_eq!(
            context.expand(&compact[..6], &mut out),
            Err(FrameError::Truncated { len: 6 })
        );
        assert!(matches!(
            context.expand(&compact[..compact.len() - 16], &mut out),
            Err(FrameError::Malformed { .. })
        ));
        let mut flipped = compact.clone();
        flipped[40] ^= 4;
        assert!(matches!(
            context.expand(&flipped, &mut out),
            Err(FrameError::Checksum { .. })
        ));
        // A context of another model, run or stream fails the CRC too: those fields are in it.
        for other in [
            StreamContext {
                model_id: 1,
                ..context
            },
            StreamContext { boot: 1, ..context },
            StreamContext {
                stream_id: 1,
                ..context
            },
        ] {
            assert!(matches!(
                other.expand(compact, &mut out),
                Err(FrameError::Checksum { .. })
            ));
        }
        assert!(matches!(
            context.expand(compact, &mut out[..100]),
            Err(FrameError::BufferTooSmall { .. })
        ));
        assert_eq!(
            context.expand(&frames[0].1, &mut out),
            Err(FrameError::UnsupportedVersion { found: 2 })
        );
        // What a rejected frame claims: the likeliest reading.
        assert_eq!(context.guess(&flipped), Some(frames[1].0));
        assert_eq!(context.guess(&compact[..4]), None);
    }

    #[test]
    fn losses_duplicates_and_late_frames_are_read_right() {
        let frames = stream(1500, (250, 62_000), None);
        let mut context = None;
        // Frame 0 (full), then a loss of 300 frames (4800 events, over a wrap of both low
        // fields) with every full frame in it, a duplicate, a late frame.
        let order = [0, 1, 302, 303, 303, 305, 304, 306];
        for i in order {
            let (repr, raw) = &frames[i];
            assert_eq!(receive(&mut context, raw), Ok(*repr), "frame {i}");
        }
        assert_eq!(context.map(|c| c.sequence), Some(frames[306].0.sequence));
        // Past the reach of the readings (1100 frames lost: over 3 wraps of the sequence's low
        // byte), a compact frame fails its CRC; the next full frame resynchronises.
        assert!(matches!(
            receive(&mut context, &frames[1406].1),
            Err(FrameError::Checksum { .. })
        ));
        assert_eq!(receive(&mut context, &frames[1408].1), Ok(frames[1408].0));
        assert_eq!(receive(&mut context, &frames[1409].1), Ok(frames[1409].0));
    }

    #[test]
    fn payload_efficiency_at_16_codes() {
        // The figures in the module docs.
        let interval = FULL_FRAME_INTERVAL as usize;
        // (tag, full frame, compact frame, mean over one full and 63 compact, efficiency):
        // 95.4 % unsealed meets the target of 95 %.
        for (sealed, full, compact, mean, efficiency) in [
            (false, 294, 268, 268.4, 95.4),
            (true, 302, 276, 276.4, 92.6),
        ] {
            assert_eq!(crate::wire::stream_len(16, 16, sealed), full);
            assert_eq!(compact_stream_len(16, 16, sealed), compact);
            let measured = (full + (interval - 1) * compact) as f64 / interval as f64;
            assert!((measured - mean).abs() < 0.05, "{measured}");
            assert!((100.0 * 256.0 / measured - efficiency).abs() < 0.05);
        }
    }

    proptest! {
        #[test]
        fn any_lossy_stream_is_read_exactly(
            start_sequence in any::<u32>(), start_event in 0u64..(1 << 50),
            counts in proptest::collection::vec(1u16..=40, 1..150),
            fates in proptest::collection::vec(0u8..10, 150), sealed in any::<bool>(),
        ) {
            // Frames of varying counts, some lost (fate 0), some sent twice (fate 1), some
            // held back one frame (fate 2), the first always sent on time; each that arrives is
            // read as what was sent, in
            // its byte-stream form through the accumulator.
            let key = FrameKey::from_bytes(&[5; 16]);
            let key = sealed.then_some(&key);
            let mut framer = StreamFramer::new();
            let mut event = start_event;
            let mut sent = Vec::new();
            for (i, &count) in counts.iter().enumerate() {
                let repr = repr(start_sequence.wrapping_add(i as u32), event, count);
                event += u64::from(count);
                let mut out = [0u8; crate::wire::MAX_ENCODED_LEN];
                let n = framer.encode(&repr, &codes(count, i as u8), key, &mut out).unwrap();
                prop_assert!(n <= crate::wire::stream_len(usize::from(count), 16, sealed));
                sent.push((repr, out[..n].to_vec()));
            }
            let mut arrive = Vec::new();
            let mut held = None;
            for (i, frame) in sent.iter().enumerate() {
                match fates[i] {
                    0 if i > 0 => continue,
                    1 => arrive.extend([frame, frame]),
                    2 if i > 0 && held.is_none() => { held = Some(frame); continue; }
                    _ => arrive.push(frame),
                }
                arrive.extend(held.take());
            }
            let mut accumulator: Accumulator = Accumulator::new();
            let mut context = None;
            for (repr, bytes) in arrive {
                let FeedResult::Frame { frame, .. } = accumulator.feed(bytes) else {
                    return Err(TestCaseError::fail("no frame"));
                };
                prop_assert_eq!(receive(&mut context, frame), Ok(*repr));
            }
        }

        #[test]
        fn any_single_bit_flip_is_rejected(bit in 0usize..(8 * compact_len(16, 16, true))) {
            let key = FrameKey::from_bytes(&[5; 16]);
            let frames = stream(2, (9, 90), Some(&key));
            let mut context = Some(StreamContext::of(&frames[0].0, true));
            let mut compact = frames[1].1.clone();
            compact[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(receive(&mut context, &compact).is_err());
        }

        #[test]
        fn any_bytes_under_any_context_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            sequence in any::<u32>(), next_event in any::<u64>(), code_bytes in 0u8..=32,
            authenticated in any::<bool>(),
        ) {
            let context = StreamContext { code_bytes, authenticated, sequence, next_event, ..StreamContext::of(&repr(0, 0, 1), false) };
            let mut out = [0u8; MAX_FRAME_LEN];
            if let Ok(len) = context.expand(&bytes, &mut out) {
                prop_assert_eq!(len, bytes.len() + SAVED);
                prop_assert!(Frame::new_checked(&out[..len]).is_ok());
            }
            let _ = context.guess(&bytes);
        }
    }
}
