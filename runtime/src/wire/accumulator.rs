//! Reassembles frames from a byte stream: I/O-free, fixed capacity, resynchronising.
//!
//! Transports only move bytes; they hand whatever arrived to [`Accumulator::feed`], which
//! returns at the first complete frame (with the input it did not look at yet) or once it has
//! consumed everything. Bytes are buffered up to the next `0x00`, then COBS-decoded in place.
//!
//! Recovery: garbage, a truncated frame or a bit error costs the bytes up to the next
//! delimiter and one [`FeedResult::Error`] (or a frame that then fails its CRC); a run longer
//! than the capacity is dropped without being stored and reported as
//! [`AccumulatorError::Oversize`] at its delimiter. Runs of delimiters are ignored, so a
//! sender should write one `0x00` whenever a stream (re)starts: then the half frame a
//! restarted sender left behind cannot swallow the first new frame. Each input byte is
//! looked at a bounded number of times, so no input makes `feed` work unboundedly.

use core::fmt;

use heapless::Vec;

use super::MAX_ENCODED_LEN;

/// What a call to [`Accumulator::feed`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum FeedResult<'a, 'b> {
    /// All input was consumed without completing a frame.
    Consumed,
    /// A COBS-decoded raw frame (check it with [`super::Frame::new_checked`]) and the input
    /// after its delimiter, to feed next.
    Frame {
        /// The raw frame bytes.
        frame: &'a [u8],
        /// Input not consumed yet.
        remaining: &'b [u8],
    },
    /// The bytes up to a delimiter were not a frame; they were dropped.
    Error {
        /// What was wrong.
        error: AccumulatorError,
        /// Input not consumed yet.
        remaining: &'b [u8],
    },
}

/// Why delimited bytes were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccumulatorError {
    /// More bytes than the capacity arrived before a delimiter.
    Oversize {
        /// Bytes in the run (saturating).
        len: usize,
    },
    /// The bytes are not valid COBS.
    Cobs {
        /// Bytes in the run.
        len: usize,
    },
}

impl fmt::Display for AccumulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Oversize { len } => write!(f, "{len} bytes without a delimiter, dropped"),
            Self::Cobs { len } => write!(f, "{len} bytes are not a COBS-encoded frame, dropped"),
        }
    }
}

impl core::error::Error for AccumulatorError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Collecting,
    /// Dropping an oversize run until its delimiter.
    Discarding {
        len: usize,
    },
    /// The buffer holds the frame returned last; clear it on the next feed.
    Delivered,
}

/// A frame accumulator holding up to `N` encoded bytes (default: the largest frame).
#[derive(Debug, Clone)]
pub struct Accumulator<const N: usize = MAX_ENCODED_LEN> {
    buf: Vec<u8, N>,
    state: State,
}

impl<const N: usize> Default for Accumulator<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Accumulator<N> {
    /// An empty accumulator.
    pub const fn new() -> Self {
        Self {
            buf: Vec::new(),
            state: State::Collecting,
        }
    }

    /// Drops any partial frame (for example after a reconnect).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.state = State::Collecting;
    }

    /// Bytes of a partial frame held now.
    pub fn pending(&self) -> usize {
        match self.state {
            State::Collecting => self.buf.len(),
            State::Discarding { len } => len,
            State::Delivered => 0,
        }
    }

    fn absorb(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Discarding { len } => *len = len.saturating_add(bytes.len()),
            State::Collecting | State::Delivered => {
                if self.buf.extend_from_slice(bytes).is_err() {
                    let len = self.buf.len().saturating_add(bytes.len());
                    self.buf.clear();
                    self.state = State::Discarding { len };
                }
            }
        }
    }

    /// Consumes `input` up to the end of the first complete frame.
    pub fn feed<'a, 'b>(&'a mut self, input: &'b [u8]) -> FeedResult<'a, 'b> {
        if self.state == State::Delivered {
            self.buf.clear();
            self.state = State::Collecting;
        }
        let mut input = input;
        loop {
            let Some(delimiter) = input.iter().position(|&b| b == 0) else {
                self.absorb(input);
                return FeedResult::Consumed;
            };
            let (chunk, rest) = input.split_at(delimiter);
            let remaining = rest.get(1..).unwrap_or(&[]);
            self.absorb(chunk);
            match self.state {
                State::Discarding { len } => {
                    self.state = State::Collecting;
                    return FeedResult::Error {
                        error: AccumulatorError::Oversize { len },
                        remaining,
                    };
                }
                _ if self.buf.is_empty() => input = remaining, // a run of delimiters
                _ => {
                    let len = self.buf.len();
                    return match cobs::decode_in_place(&mut self.buf) {
                        Ok(n) => {
                            self.state = State::Delivered;
                            FeedResult::Frame {
                                frame: self.buf.get(..n).unwrap_or(&[]),
                                remaining,
                            }
                        }
                        Err(_) => {
                            self.buf.clear();
                            self.state = State::Collecting;
                            FeedResult::Error {
                                error: AccumulatorError::Cobs { len },
                                remaining,
                            }
                        }
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Frame, FrameRepr, encode_frame, stream_len};
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn stream_frame(sequence: u32) -> Vec<u8> {
        let repr = FrameRepr {
            model_id: 42,
            stream_id: 1,
            sequence,
            first_event: u64::from(sequence) * 4,
            code_bytes: 16,
            code_count: 4,
            boot: 1,
        };
        // Codes full of zeros and 0xff exercise COBS stuffing.
        let codes: Vec<u8> = (0..64)
            .map(|i| {
                if i % 3 == 0 {
                    0
                } else {
                    (sequence as u8) ^ 0xff
                }
            })
            .collect();
        let mut out = vec![0u8; stream_len(4, 16, false)];
        let n = encode_frame(&repr, &codes, None, &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// Feeds `chunks` and returns (sequence numbers of valid frames, errors + invalid frames).
    fn run<const N: usize>(acc: &mut Accumulator<N>, chunks: &[&[u8]]) -> (Vec<u32>, usize) {
        let (mut good, mut bad) = (Vec::new(), 0);
        for chunk in chunks {
            let mut input: &[u8] = chunk;
            loop {
                match acc.feed(input) {
                    FeedResult::Consumed => break,
                    FeedResult::Frame { frame, remaining } => {
                        match Frame::new_checked(frame).and_then(|f| FrameRepr::parse(&f)) {
                            Ok(repr) => good.push(repr.sequence),
                            Err(_) => bad += 1,
                        }
                        input = remaining;
                    }
                    FeedResult::Error { remaining, .. } => {
                        bad += 1;
                        input = remaining;
                    }
                }
            }
        }
        (good, bad)
    }

    #[test]
    fn frames_split_across_feeds() {
        let stream: Vec<u8> = (0..3).flat_map(stream_frame).collect();
        let mut acc = Accumulator::<{ MAX_ENCODED_LEN }>::new();
        let chunks: Vec<&[u8]> = stream.chunks(7).collect();
        assert_eq!(run(&mut acc, &chunks), (vec![0, 1, 2], 0));
        assert_eq!(acc.pending(), 0);
    }

    #[test]
    fn resyncs_after_garbage_truncation_and_oversize() {
        let mut stream = vec![0u8, 0]; // leading delimiters are ignored
        stream.extend(stream_frame(1));
        stream.extend([1, 2, 3, 0]); // garbage
        let truncated = stream_frame(2);
        stream.extend(&truncated[..truncated.len() / 2]);
        stream.push(0); // sender restarted and wrote its delimiter
        stream.extend(stream_frame(3));
        stream.extend([0x55; 300]); // longer than the small accumulator below
        stream.push(0);
        stream.extend(stream_frame(4));
        let mut acc = Accumulator::<200>::new();
        let (good, bad) = run(&mut acc, &[&stream]);
        assert_eq!(good, vec![1, 3, 4]);
        assert_eq!(bad, 3);
    }

    #[test]
    fn oversize_is_reported_with_its_length() {
        let mut acc = Accumulator::<8>::new();
        assert_eq!(acc.feed(&[1; 5]), FeedResult::Consumed);
        assert_eq!(acc.feed(&[1; 5]), FeedResult::Consumed);
        assert_eq!(
            acc.feed(&[1, 0, 9]),
            FeedResult::Error {
                error: AccumulatorError::Oversize { len: 11 },
                remaining: &[9]
            }
        );
    }

    proptest! {
        #[test]
        fn recovers_every_frame_between_garbage(
            garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 6),
            chunk in 1usize..100,
        ) {
            let mut stream = Vec::new();
            for (i, junk) in garbage.iter().enumerate() {
                stream.extend(junk);
                stream.push(0); // the resync point a restarting sender writes
                stream.extend(stream_frame(i as u32));
            }
            let mut acc = Accumulator::<{ MAX_ENCODED_LEN }>::new();
            let chunks: Vec<&[u8]> = stream.chunks(chunk).collect();
            let (good, _) = run(&mut acc, &chunks);
            prop_assert_eq!(good, (0..6).collect::<Vec<u32>>());
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000), chunk in 1usize..64) {
            let mut acc = Accumulator::<64>::new();
            let chunks: Vec<&[u8]> = bytes.chunks(chunk).collect();
            let _ = run(&mut acc, &chunks);
        }
    }
}
