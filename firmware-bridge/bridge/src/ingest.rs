//! From link bytes to accepted codes, free of I/O: the runtime's accumulator and frame parser
//! (no second implementation), the model check, and the [`Accounting`].
//!
//! Each connection of a stream link has its own accumulator, dropped when it closes: a frame
//! left unfinished by one connection is counted as a malformed run and never joins bytes of
//! another.
//!
//! Each connection also keeps the context its compact frames are read in (the runtime's
//! `StreamContext`): set by every full frame that passes its CRC and the key, of our model
//! or not, and moved on by every newer frame. A compact frame is expanded to the full frame it stands for
//! and then goes the same way as any other. A compact frame before any full frame on its
//! connection cannot be read and is refused as [`RejectReason::NoContext`]; one that fails
//! its CRC claims the events its likeliest reading names. Datagrams carry full frames only.
//!
//! With a deployment key, every frame must carry that key's tag (checked right after the
//! CRC); a frame without it never reaches the accounting and claims nothing. A frame that
//! fails its CRC cannot be told from a forged one, and its header still claims its events as
//! rejected (see `crate::accounting`): a claim only relabels ids that were never received
//! from lost to rejected, so whoever sends it can neither hide nor add an event. Without a
//! key, tagged frames are refused as unverifiable, with one warning.
//!
//! A front-end that restarts begins again at sequence number 0 and event id 0, which would
//! otherwise read as duplicates of its first run. Its frames carry a new boot nonce, and the
//! accounting starts a new run of the stream from it, on any link. For senders without a
//! nonce (nonce 0), where the link shows it (a new TCP connection, or datagrams from a new
//! source address), ingest tells the accounting that a stream's frame comes from a new
//! origin, and the accounting's rule decides whether it starts a new run.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use latentlink_runtime::wire::{
    Accumulator, COMPACT_VERSION, FeedResult, Frame, FrameError, FrameKey, FrameRepr, HEADER_LEN,
    MAX_FRAME_LEN, StreamContext, VERSION, raw_len,
};

use crate::accounting::{Accounting, RejectReason};

/// Codes of consecutive events of one stream, ready to decode and archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Stream id.
    pub stream: u16,
    /// Event id of the first code.
    pub first_event: u64,
    /// The codes, back to back.
    pub codes: Vec<u8>,
}

/// Where a frame came from: a connection of a stream link, or a datagram's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Connection(u64),
    Peer(SocketAddr),
}

/// What one connection of a stream link holds between reads.
#[derive(Debug, Default)]
struct Connection {
    accumulator: Accumulator,
    /// What its compact frames leave out; none before its first full frame.
    context: Option<StreamContext>,
}

/// Turns bytes and datagrams into [`Accepted`] codes of one model, counting everything.
#[derive(Debug)]
pub struct Ingest {
    connections: BTreeMap<u64, Box<Connection>>,
    /// The origin of each stream's last good frame (one entry per tracked stream).
    stream_origins: BTreeMap<u16, Origin>,
    model_id: u64,
    code_bytes: u8,
    key: Option<FrameKey>,
    accounting: Accounting,
}

impl Ingest {
    /// Accepts frames of `model_id` with `code_bytes`-byte codes, authenticated with `key`
    /// when one is given (and then only those).
    pub fn new(model_id: u64, code_bytes: u8, key: Option<FrameKey>) -> Self {
        Self {
            connections: BTreeMap::new(),
            stream_origins: BTreeMap::new(),
            model_id,
            code_bytes,
            key,
            accounting: Accounting::default(),
        }
    }

    /// The counters.
    pub fn accounting(&self) -> &Accounting {
        &self.accounting
    }

    /// The counters, to record decoder drops.
    pub fn accounting_mut(&mut self) -> &mut Accounting {
        &mut self.accounting
    }

    /// Feeds bytes of one connection of a stream link (COBS frames), appending what was
    /// accepted to `out`.
    pub fn bytes(&mut self, connection: u64, mut input: &[u8], out: &mut Vec<Accepted>) {
        self.accounting.bytes(input.len());
        while !input.is_empty() {
            let state = self.connections.entry(connection).or_default();
            match state.accumulator.feed(input) {
                FeedResult::Consumed => break,
                FeedResult::Frame { frame, remaining } => {
                    let raw = frame.to_vec();
                    input = remaining;
                    self.stream_frame(connection, &raw, out);
                }
                FeedResult::Error { error, remaining } => {
                    tracing::debug!(%error, "dropped bytes");
                    self.accounting
                        .reject(RejectReason::of_accumulator_error(error), None);
                    input = remaining;
                }
            }
        }
    }

    /// A connection ended: a frame it left unfinished is counted as malformed.
    pub fn closed(&mut self, connection: u64) {
        if let Some(state) = self.connections.remove(&connection)
            && state.accumulator.pending() > 0
        {
            tracing::debug!(
                connection,
                bytes = state.accumulator.pending(),
                "unfinished frame at close"
            );
            self.accounting.reject(RejectReason::Malformed, None);
        }
    }

    /// Feeds one datagram (one raw frame) sent from `from`.
    pub fn datagram(&mut self, from: SocketAddr, datagram: &[u8], out: &mut Vec<Accepted>) {
        self.accounting.bytes(datagram.len());
        if datagram.first() == Some(&COMPACT_VERSION) {
            // A datagram may come after others were lost or reordered, from any sender: there
            // is no context to read a compact frame in.
            tracing::debug!(%from, "compact frame in a datagram");
            self.accounting.reject(RejectReason::Version, None);
            return;
        }
        self.frame(Origin::Peer(from), datagram, out);
    }

    /// One frame of a stream connection: a full frame as it is, a compact one expanded in the
    /// connection's context; either then moves the context on.
    fn stream_frame(&mut self, connection: u64, raw: &[u8], out: &mut Vec<Accepted>) {
        let origin = Origin::Connection(connection);
        let context = self.connections.get(&connection).and_then(|c| c.context);
        let followed = if raw.first() == Some(&COMPACT_VERSION) {
            let Some(context) = context else {
                tracing::debug!(connection, "compact frame before any full frame");
                self.accounting.reject(RejectReason::NoContext, None);
                return;
            };
            let mut full = [0u8; MAX_FRAME_LEN];
            // The expansion proved the CRC; parsing re-checks the layout without hashing again.
            let expanded = context.expand(raw, &mut full).and_then(|len| {
                let frame = Frame::new_unchecked(&full[..len]);
                FrameRepr::parse(&frame).map(|repr| (frame, repr))
            });
            match expanded {
                Ok((frame, repr)) => self.checked_frame(origin, &frame, repr, out),
                Err(error) => {
                    tracing::debug!(%error, "rejected compact frame");
                    let claim = context
                        .guess(raw)
                        .map(|repr| (repr.stream_id, repr.first_event, repr.code_count));
                    self.accounting
                        .reject(RejectReason::of_frame_error(error), claim);
                    return;
                }
            }
        } else {
            self.frame(origin, raw, out)
        };
        if let (Some((repr, authenticated)), Some(state)) =
            (followed, self.connections.get_mut(&connection))
        {
            StreamContext::follow(&mut state.context, &repr, authenticated);
        }
    }

    /// One full frame: checked, then as [`Ingest::checked_frame`].
    fn frame(
        &mut self,
        origin: Origin,
        raw: &[u8],
        out: &mut Vec<Accepted>,
    ) -> Option<(FrameRepr, bool)> {
        let frame = match Frame::new_checked(raw).and_then(|f| FrameRepr::parse(&f).map(|r| (f, r)))
        {
            Ok(ok) => ok,
            Err(error) => {
                tracing::debug!(%error, "rejected frame");
                // The checksum is checked first; a frame whose length disagrees with its
                // header was cut short or padded rather than bit-flipped.
                let reason = match error {
                    FrameError::Checksum { .. } if implied_len(raw) != Some(raw.len()) => {
                        RejectReason::Malformed
                    }
                    other => RejectReason::of_frame_error(other),
                };
                self.accounting.reject(reason, claim(raw));
                return None;
            }
        };
        self.checked_frame(origin, &frame.0, frame.1, out)
    }

    /// A frame whose CRC and layout held: authenticated, held against our model, accounted,
    /// and its events to decode appended to `out`. Returns its header (and whether it carries
    /// a tag) when it also passed the key, whatever became of it after: the compact frames
    /// that follow are read in its context.
    fn checked_frame(
        &mut self,
        origin: Origin,
        frame: &Frame<&[u8]>,
        repr: FrameRepr,
        out: &mut Vec<Accepted>,
    ) -> Option<(FrameRepr, bool)> {
        let checked = Some((repr, frame.is_authenticated()));
        if let Err(error) = frame.check_authentication(self.key.as_ref()) {
            let reason = RejectReason::of_frame_error(error);
            if !self
                .accounting
                .counters()
                .rejected_frames
                .contains_key(&reason)
            {
                tracing::warn!(stream = repr.stream_id, %error, "refusing frames");
            }
            self.accounting.reject(reason, None);
            // Only a frame that passed the key sets what later compact frames are read in.
            return None;
        }
        if repr.model_id != self.model_id || repr.code_bytes != self.code_bytes {
            let reason = if repr.model_id == self.model_id {
                RejectReason::Malformed
            } else {
                RejectReason::UnknownModel
            };
            tracing::debug!(
                model = format_args!("{:016x}", repr.model_id),
                "rejected frame of another model"
            );
            self.accounting.reject(
                reason,
                Some((repr.stream_id, repr.first_event, repr.code_count)),
            );
            return checked;
        }
        let from_new_origin = self
            .stream_origins
            .get(&repr.stream_id)
            .is_some_and(|last| *last != origin);
        let verdict = self.accounting.accept(&repr, from_new_origin);
        if self
            .accounting
            .counters()
            .streams
            .contains_key(&repr.stream_id)
        {
            self.stream_origins.insert(repr.stream_id, origin);
        }
        let width = usize::from(repr.code_bytes);
        for range in verdict.decode {
            out.push(Accepted {
                stream: repr.stream_id,
                first_event: repr.first_event + range.start as u64,
                codes: frame.codes()[range.start * width..range.end * width].to_vec(),
            });
        }
        checked
    }
}

/// The frame length a header announces.
fn implied_len(raw: &[u8]) -> Option<usize> {
    (raw.len() >= HEADER_LEN).then(|| {
        let frame = Frame::new_unchecked(raw);
        raw_len(
            usize::from(frame.code_count()),
            usize::from(frame.code_bytes()),
            frame.is_authenticated(),
        )
    })
}

/// The stream and events a rejected frame's header names, if it is whole and of our version.
fn claim(raw: &[u8]) -> Option<(u16, u64, u16)> {
    if raw.len() < HEADER_LEN || raw.first() != Some(&VERSION) {
        return None;
    }
    let frame = Frame::new_unchecked(raw);
    Some((frame.stream_id(), frame.first_event(), frame.code_count()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use latentlink_runtime::wire::{MAX_ENCODED_LEN, StreamFramer, encode_frame};

    /// A frame of a sender without a boot nonce (its restarts are inferred).
    fn frame(model_id: u64, sequence: u32, first_event: u64) -> (FrameRepr, Vec<u8>) {
        let repr = FrameRepr {
            model_id,
            stream_id: 3,
            sequence,
            first_event,
            code_bytes: 2,
            code_count: 2,
            boot: 0,
        };
        (repr, vec![sequence as u8, 1, 2, 3])
    }

    fn stream_bytes(repr: &FrameRepr, codes: &[u8]) -> Vec<u8> {
        sealed_stream_bytes(repr, codes, None)
    }

    fn sealed_stream_bytes(repr: &FrameRepr, codes: &[u8], key: Option<&FrameKey>) -> Vec<u8> {
        let mut out = vec![0u8; MAX_ENCODED_LEN];
        let n = encode_frame(repr, codes, key, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn datagram(repr: &FrameRepr, codes: &[u8], key: Option<&FrameKey>) -> Vec<u8> {
        let mut raw = vec![0u8; repr.buffer_len(key.is_some())];
        repr.emit_with_codes(codes, key, &mut raw).unwrap();
        raw
    }

    /// Frames `sequences` of stream 3 (two events each, from event 2 × sequence) as stream
    /// bytes.
    fn stream_of(sequences: std::ops::Range<u32>) -> Vec<u8> {
        sequences
            .flat_map(|i| {
                let (repr, codes) = frame(42, i, 2 * u64::from(i));
                stream_bytes(&repr, &codes)
            })
            .collect()
    }

    #[test]
    fn stream_and_datagram_paths_accept_and_reject() {
        let mut ingest = Ingest::new(42, 2, None);
        let mut out = Vec::new();
        let (r0, c0) = frame(42, 0, 0);
        let (r1, c1) = frame(42, 1, 2);
        let (r2, c2) = frame(7, 2, 4);
        let mut bytes = stream_bytes(&r0, &c0);
        bytes.extend_from_slice(b"\x05garbage\x00");
        let mut flipped = stream_bytes(&r1, &c1);
        // Corrupt the frame's last code byte before COBS would matter: re-encode a bad raw.
        let mut raw = datagram(&r1, &c1, None);
        raw[HEADER_LEN] ^= 1;
        let mut encoded = vec![0u8; MAX_ENCODED_LEN];
        let n = cobs::try_encode(&raw, &mut encoded).unwrap();
        flipped.clear();
        flipped.extend_from_slice(&encoded[..n]);
        flipped.push(0);
        bytes.extend_from_slice(&flipped);
        bytes.extend_from_slice(&stream_bytes(&r2, &c2));
        // Byte by byte, as a slow serial line delivers them.
        for b in &bytes {
            ingest.bytes(0, std::slice::from_ref(b), &mut out);
        }
        assert_eq!(
            out,
            vec![Accepted {
                stream: 3,
                first_event: 0,
                codes: c0.clone()
            }]
        );
        let counters = ingest.accounting().counters();
        assert_eq!(counters.rejected_frames[&RejectReason::Crc], 1);
        assert_eq!(counters.rejected_frames[&RejectReason::UnknownModel], 1);
        assert_eq!(counters.rejected_frames[&RejectReason::Malformed], 1);
        assert_eq!(counters.streams[&3].rejected, 0);

        // Events 2..6 were in rejected frames; the next good frame reveals the gap.
        let (r3, c3) = frame(42, 3, 6);
        ingest.bytes(0, &stream_bytes(&r3, &c3), &mut out);
        let s = &ingest.accounting().counters().streams[&3];
        assert_eq!((s.decoded, s.lost, s.rejected), (4, 0, 4));

        // The first frame again, as a datagram from a new sender: the front-end restarted,
        // and its new run is decoded, not counted duplicate. From the same sender again it
        // is a duplicate.
        let raw = datagram(&r0, &c0, None);
        let sender: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        ingest.datagram(sender, &raw, &mut out);
        ingest.datagram(sender, &raw, &mut out);
        assert_eq!(out.len(), 3);
        let s = &ingest.accounting().counters().streams[&3];
        assert_eq!((s.decoded, s.restarts, s.duplicated), (6, 1, 2));
    }

    #[test]
    fn a_front_end_that_restarts_on_a_new_connection_starts_a_new_run() {
        let mut ingest = Ingest::new(42, 2, None);
        let mut out = Vec::new();
        let run = stream_of(0..3);
        ingest.bytes(1, &run, &mut out);
        // Connection 1 ends; the front-end reboots and sends the same ids on connection 2.
        ingest.closed(1);
        ingest.bytes(2, &run, &mut out);
        let s = &ingest.accounting().counters().streams[&3];
        assert_eq!((s.decoded, s.duplicated, s.restarts, s.lost), (12, 0, 1, 0));
        assert_eq!(out.len(), 6);
        // A connection that resumes where the last stopped (not at 0, 0) continues the run.
        ingest.closed(2);
        let (repr, codes) = frame(42, 3, 6);
        ingest.bytes(3, &stream_bytes(&repr, &codes), &mut out);
        let s = &ingest.accounting().counters().streams[&3];
        assert_eq!((s.decoded, s.restarts, s.lost), (14, 1, 0));
    }

    #[test]
    fn a_restart_whose_first_frame_was_lost_is_still_a_new_run() {
        let mut ingest = Ingest::new(42, 2, None);
        let mut out = Vec::new();
        ingest.bytes(1, &stream_of(0..6), &mut out);
        // Rebooted, on a new connection; its frame 0 never arrived.
        ingest.bytes(2, &stream_of(1..6), &mut out);
        let s = &ingest.accounting().counters().streams[&3];
        assert_eq!((s.decoded, s.duplicated, s.restarts), (22, 0, 1));
        // A new connection that goes on where the last one stopped is no restart, and
        // neither is a repeat of the latest frame over it.
        ingest.bytes(3, &stream_of(6..8), &mut out);
        ingest.bytes(4, &stream_of(7..8), &mut out);
        let s = &ingest.accounting().counters().streams[&3];
        assert_eq!((s.decoded, s.duplicated, s.restarts), (26, 2, 1));
    }

    #[test]
    fn forged_frames_never_reach_the_accounting() {
        // The attack of issue 15: frames claiming ids far ahead of the real stream, sent
        // by someone without the key (no tag, or a tag under another key), then the
        // honest run. Every honest event is decoded; nothing forged is, or starts a stream.
        let key = FrameKey::from_bytes(&[7; 16]);
        let wrong = FrameKey::from_bytes(&[8; 16]);
        let mut ingest = Ingest::new(42, 2, Some(key.clone()));
        let mut out = Vec::new();
        let from: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        for i in 0..16u32 {
            let mut forged = frame(42, i, 90 * u64::from(i)).0;
            forged.boot = 0xbad;
            let codes = [0xee; 4];
            let forger_key = (i % 2 == 0).then_some(&wrong);
            ingest.datagram(from, &datagram(&forged, &codes, forger_key), &mut out);
            // A tagged frame with a broken CRC: rejected, and its claim finds no stream.
            let mut broken = datagram(&forged, &codes, Some(&wrong));
            broken[HEADER_LEN] ^= 1;
            ingest.datagram(from, &broken, &mut out);
        }
        assert!(out.is_empty());
        for i in 0..20u32 {
            let (mut repr, codes) = frame(42, i, 2 * u64::from(i));
            repr.boot = 0x600d;
            ingest.datagram(from, &datagram(&repr, &codes, Some(&key)), &mut out);
        }
        let counters = ingest.accounting().counters();
        let s = &counters.streams[&3];
        assert_eq!((s.decoded, s.duplicated, s.lost, s.rejected), (40, 0, 0, 0));
        assert_eq!(counters.rejected_frames[&RejectReason::Forged], 8);
        assert_eq!(counters.rejected_frames[&RejectReason::Unauthenticated], 8);
        assert_eq!(counters.rejected_frames[&RejectReason::Crc], 16);
        assert_eq!(out.len(), 20);

        // A listener without a key refuses tagged frames rather than pass them unchecked.
        let mut keyless = Ingest::new(42, 2, None);
        let (repr, codes) = frame(42, 0, 0);
        keyless.datagram(from, &datagram(&repr, &codes, Some(&key)), &mut out);
        let counters = keyless.accounting().counters();
        assert_eq!(counters.rejected_frames[&RejectReason::Unverifiable], 1);
        assert!(counters.streams.is_empty());
    }

    #[test]
    fn a_front_end_that_reboots_on_the_same_serial_line_starts_a_new_run() {
        // One connection throughout (a serial line shows no reconnect): the boot nonce
        // alone tells the new run, and its events are decoded, not counted duplicate.
        let key = FrameKey::from_bytes(&[7; 16]);
        let mut ingest = Ingest::new(42, 2, Some(key.clone()));
        let mut out = Vec::new();
        for boot in [0x1111, 0x2222] {
            for i in 0..5u32 {
                let (mut repr, codes) = frame(42, i, 2 * u64::from(i));
                repr.boot = boot;
                ingest.bytes(0, &sealed_stream_bytes(&repr, &codes, Some(&key)), &mut out);
            }
        }
        let s = &ingest.accounting().counters().streams[&3];
        assert_eq!((s.decoded, s.duplicated, s.restarts), (20, 0, 1));
        assert_eq!(out.len(), 10);
    }

    /// Frames `sequences` of stream 3 of `model_id` as a front-end writes them on one link,
    /// compact where it can, each in its byte-stream form.
    fn framed(model_id: u64, sequences: std::ops::Range<u32>) -> Vec<Vec<u8>> {
        let mut framer = StreamFramer::new();
        sequences
            .map(|i| {
                let (repr, codes) = frame(model_id, i, 2 * u64::from(i));
                let mut out = vec![0u8; MAX_ENCODED_LEN];
                let n = framer.encode(&repr, &codes, None, &mut out).unwrap();
                out.truncate(n);
                out
            })
            .collect()
    }

    #[test]
    fn compact_frames_are_read_in_their_connections_context() {
        let mut ingest = Ingest::new(42, 2, None);
        let mut out = Vec::new();
        let frames = framed(42, 0..100);
        // Compact frames are shorter: 26 header bytes fewer, and they are most frames.
        assert!(frames[1].len() + 26 == frames[0].len() && frames[64].len() == frames[0].len());
        // Frame 5 corrupted in a code byte (after its COBS code byte and 5-byte header).
        let mut corrupted = frames.clone();
        corrupted[5][8] ^= 0x40;
        for (i, bytes) in corrupted.iter().enumerate() {
            // Frames 10..20 lost.
            if !(10..20).contains(&i) {
                ingest.bytes(1, bytes, &mut out);
            }
        }
        let counters = ingest.accounting().counters();
        let s = &counters.streams[&3];
        assert_eq!((s.decoded, s.rejected, s.lost), (2 * 89, 2, 2 * 10));
        assert_eq!((s.frames, s.frames_lost), (89, 11));
        assert_eq!(counters.rejected_frames[&RejectReason::Crc], 1);
        assert_eq!(out.len(), 89);
        assert_eq!(out[88].first_event, 198);

        // A listener that joins mid-stream (a new connection, here) cannot read compact
        // frames until the sender's next full frame, and says so; a compact frame in a
        // datagram is refused.
        let mut joined = Ingest::new(42, 2, None);
        for bytes in &frames[60..70] {
            joined.bytes(2, bytes, &mut out);
        }
        let counters = joined.accounting().counters();
        assert_eq!(counters.rejected_frames[&RejectReason::NoContext], 4);
        assert_eq!(counters.streams[&3].decoded, 2 * 6);
        let mut raw = vec![0u8; MAX_FRAME_LEN];
        let n = cobs::decode(&frames[1][..frames[1].len() - 1], &mut raw)
            .unwrap()
            .frame_size();
        joined.datagram("127.0.0.1:5000".parse().unwrap(), &raw[..n], &mut out);
        assert_eq!(
            joined.accounting().counters().rejected_frames[&RejectReason::Version],
            1
        );
    }

    #[test]
    fn compact_frames_of_another_model_are_refused_as_such() {
        let mut ingest = Ingest::new(42, 2, None);
        let mut out = Vec::new();
        for bytes in framed(7, 0..5) {
            ingest.bytes(1, &bytes, &mut out);
        }
        assert!(out.is_empty());
        let counters = ingest.accounting().counters();
        assert_eq!(counters.rejected_frames[&RejectReason::UnknownModel], 5);
        assert!(counters.streams.is_empty());
    }

    #[test]
    fn an_unfinished_frame_of_one_connection_never_swallows_another_connections_frame() {
        let mut ingest = Ingest::new(42, 2, None);
        let mut out = Vec::new();
        let (r0, c0) = frame(42, 0, 0);
        let (r1, c1) = frame(42, 1, 2);
        let first = stream_bytes(&r0, &c0);
        // Connection 1 stops halfway through a frame; connection 2 sends a whole one.
        ingest.bytes(1, &first[..first.len() / 2], &mut out);
        ingest.bytes(2, &stream_bytes(&r1, &c1), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].first_event, 2);
        // Connection 1 closes: its half frame is a malformed run, counted once.
        ingest.closed(1);
        ingest.closed(2);
        let counters = ingest.accounting().counters();
        assert_eq!(counters.rejected_frames[&RejectReason::Malformed], 1);
        assert_eq!(counters.frames, 1);
    }
}
